//! What the promotion needs from RDS (a pre-deployment snapshot of a DB, and how it stands),
//! and what the scheduled snapshot function needs besides (listing, pruning, copying).

use crate::domain::names::{DbInstanceId, Region};
use crate::domain::pipeline::CopyTarget;
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

/// A manual snapshot in a region as RDS lists it, ours or another tool's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedSnapshot {
    pub id: String,
    /// The DB instance it was taken of, or the Aurora cluster for a cluster snapshot.
    pub source: String,
    pub cluster: bool,
    pub arn: String,
    /// When it was taken; for a copy, when its source was.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status: String,
    pub encrypted: bool,
    pub tags: Vec<(String, String)>,
}

impl ListedSnapshot {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What the scheduled snapshot function needs from RDS beyond taking a snapshot: the region's
/// manual snapshots (for retention and the quota), removing ours, and copying them to the
/// disaster-recovery region.
pub trait SnapshotAdmin: Snapshots {
    /// Every manual snapshot, instance and cluster, in this function's region or in `region`.
    fn manual_snapshots(
        &self,
        region: Option<&Region>,
    ) -> impl Future<Output = Result<Vec<ListedSnapshot>, SnapshotError>> + Send;

    /// Deletes `snapshot` (in `region`, or this function's); one already gone is no error.
    fn delete_snapshot(
        &self,
        snapshot: &ListedSnapshot,
        region: Option<&Region>,
    ) -> impl Future<Output = Result<(), SnapshotError>> + Send;

    /// Starts a copy of `source` under the same id in `to`'s region (with its KMS key for an
    /// encrypted one), tagged `tags`; a copy that exists already is adopted.
    fn copy_snapshot(
        &self,
        source: &ListedSnapshot,
        to: &CopyTarget,
        tags: &[(&str, &str)],
    ) -> impl Future<Output = Result<SnapshotState, SnapshotError>> + Send;
}
