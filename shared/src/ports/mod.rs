//! The narrow interfaces the handlers need from the outside world, one per capability, so a
//! handler names exactly what it uses. Adapters implement them over the AWS SDK (`adapters`),
//! in-memory fakes for fast unit tests (`fakes`); the handlers never see an SDK client.

pub mod alarms;
pub mod approvals;
pub mod callers;
pub mod cost;
pub mod deployments;
pub mod ecs;
pub mod locks;
pub mod notifier;
pub mod outbox;
pub mod pipelines;
pub mod quarantine;
pub mod snapshots;

pub use alarms::{AlarmStateError, AlarmStates};
pub use approvals::{Approvals, Change, OpenRequest, update_approval, update_decision};
pub use callers::{Callers, ProofError};
pub use cost::{
    CostExplorer, CostExplorerError, CostReports, DbInventory, KeptReport, PriceList, PriceListError, ServiceInventory,
};
pub use deployments::{Deployments, HistoryPage, held_records};
pub use ecs::{Ecs, EcsError, Registered, Running};
pub use locks::{ServiceLocks, StateMove};
pub use notifier::{ApproverMail, Notifier, NotifyError};
pub use outbox::{Outbox, OutboxEntry};
pub use pipelines::{PipelineStore, StoredPipeline};
pub use quarantine::Quarantine;
pub use snapshots::{ListedSnapshot, SnapshotAdmin, SnapshotError, Snapshots};

/// A records call failed. `retryable` tells throttling, 5xx and network trouble (worth a
/// Lambda retry) from a request the table refuses (a missing table, access denied, a
/// malformed item), which a retry will not fix.
#[derive(Debug, thiserror::Error)]
#[error("records: {message}")]
pub struct StoreError {
    pub message: String,
    pub retryable: bool,
}

impl StoreError {
    pub fn retryable(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            "RecordsUnavailable"
        } else {
            "RecordsRejected"
        }
    }
}
