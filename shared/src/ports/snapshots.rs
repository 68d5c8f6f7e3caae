//! What the promotion needs from RDS: a pre-deployment snapshot of a DB, and how it stands.

use crate::domain::names::DbInstanceId;
use crate::domain::promotion::{SnapshotId, SnapshotState};
use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Throttling, 5xx, network: worth a retry.
    #[error("RDS: {0}")]
    Transient(String),
    /// RDS refused (access, quota, an invalid request): the promotion fails with the reason.
    #[error("RDS refused: {0}")]
    Refused(String),
}

pub trait Snapshots: Send + Sync {
    /// Starts snapshot `id` of `db` (of its Aurora cluster when `db` is a cluster member,
    /// since RDS refuses instance snapshots of those), tagged with `tags`. A snapshot `id` that
    /// exists already, made by an earlier try, is adopted. A DB that is not `available` or
    /// does not exist comes back as the snapshot's `Failed` state, not as an error.
    fn take_snapshot(
        &self,
        db: &DbInstanceId,
        id: &SnapshotId,
        tags: &[(&str, &str)],
    ) -> impl Future<Output = Result<SnapshotState, SnapshotError>> + Send;

    /// How snapshot `id` (instance or cluster) stands; `None` if RDS knows none.
    fn snapshot_state(
        &self,
        id: &SnapshotId,
    ) -> impl Future<Output = Result<Option<SnapshotState>, SnapshotError>> + Send;
}
