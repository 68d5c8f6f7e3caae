//! One handler at a time per service (see `lambda::service_lock`).

use super::StoreError;
use crate::domain::deployment::{DeploymentRef, ServiceState, ServiceStateField};
use crate::domain::names::{ClusterName, ServiceName};
use chrono::{DateTime, Utc};
use std::future::Future;

/// A pointer of the service state to move when the lock is released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMove {
    pub field: ServiceStateField,
    pub to: DeploymentRef,
}

pub trait ServiceLocks: Send + Sync {
    /// Takes the service's lock until `until` unless another owner holds an unexpired one;
    /// returns the service state on success, `None` while someone else holds it.
    fn lock_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ServiceState>, StoreError>> + Send;

    /// Releases the lock and, in the same write, makes the move. `false` if the lock was no
    /// longer ours (its lease ran out).
    fn release_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        moved: Option<&StateMove>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
