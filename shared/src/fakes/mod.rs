//! The ports in memory, for fast unit tests of handler logic (the moto tests stay the
//! integration layer). They keep the contracts the adapters keep: conditional writes lose
//! cleanly, history is newest first, a lock is held until released or expired.

use crate::domain::names::{ClusterName, ServiceName};

mod alarms;
mod cost;
mod ecs;
mod notifier;
mod records;
mod snapshots;
pub use alarms::FakeAlarms;
pub use cost::{FakeBilling, FakeInventory};
pub use ecs::{FakeEcs, UpdateFailure};
pub use notifier::{FakeApproverMail, FakeNotifier};
pub use records::MemoryRecords;
pub use snapshots::FakeSnapshots;

type ServiceKey = (String, String);

fn service_key(cluster: &ClusterName, service: &ServiceName) -> ServiceKey {
    (cluster.to_string(), service.to_string())
}
