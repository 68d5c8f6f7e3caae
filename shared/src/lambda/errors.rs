//! How a handler's failure reaches Lambda: a short, stable error type (alarms and readers of
//! the failed-events queue filter on it) and a message naming what failed.
//!
//! Every error is returned to Lambda, which retries the event twice and then keeps it in the
//! failed-events queue for `pipectl redrive`: a transient one (throttling, 5xx, a busy
//! service) usually succeeds on a retry; a permanent one (a service missing from the account,
//! a container the task definition lacks, a request AWS refuses) waits there until the
//! pipeline file or the account is fixed. Ignoring such an event would lose it.

use crate::lambda::service_lock::LOCK_WAIT;
use crate::ports::{AlarmStateError, EcsError, NotifyError, SnapshotError, StoreError};

/// Why one service's work failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Ecs(#[from] EcsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Alarms(#[from] AlarmStateError),
    #[error(transparent)]
    Snapshots(#[from] SnapshotError),
    #[error("another handler held this service's lock for {}s; retry later", LOCK_WAIT.num_seconds())]
    Busy,
    /// Too little of the invocation was left to act on ECS and record it: the record stays
    /// REQUESTED and the retry resumes it.
    #[error("too little time left in this invocation to act and record it; retry later")]
    OutOfTime,
}

impl ServiceError {
    /// Short, stable names for the Lambda error type, which alarms and DLQ readers filter on.
    /// A failure no retry will fix: the pipeline file and the account disagree, or AWS refuses.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ServiceError::Ecs(EcsError::NotFound(_) | EcsError::Rejected(_) | EcsError::ContainerMissing(_))
                | ServiceError::Store(StoreError { retryable: false, .. })
                | ServiceError::Snapshots(SnapshotError::Refused(_))
        )
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            ServiceError::Ecs(err) => err.error_type(),
            ServiceError::Store(err) => err.error_type(),
            ServiceError::Notify(_) => "NotifyFailed",
            ServiceError::Alarms(_) => "AlarmStatesUnavailable",
            ServiceError::Snapshots(SnapshotError::Transient(_)) => "RdsUnavailable",
            ServiceError::Snapshots(SnapshotError::Refused(_)) => "RdsRefused",
            ServiceError::Busy => "ServiceBusy",
            ServiceError::OutOfTime => "OutOfTime",
        }
    }
}

/// Every service of an event was attempted; these failed (the others are done and stay done).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(stage, service, err)| format!("{stage}/{service}: {err}")).collect::<Vec<_>>().join("; "))]
pub struct ServiceFailures(pub Vec<(String, String, ServiceError)>);

impl ServiceFailures {
    /// The failures' common error type, or `fallback` when they differ.
    pub fn error_type(&self, fallback: &'static str) -> &'static str {
        let mut kinds = self.0.iter().map(|(_, _, err)| err.error_type());
        let first = kinds.next().unwrap_or(fallback);
        if kinds.all(|k| k == first) { first } else { fallback }
    }
}
