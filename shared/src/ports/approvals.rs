//! Approval requests, one item each, every write conditional on the version it read: two
//! approvers voting at once, or a vote racing a supersede, cannot overwrite each other.

use super::StoreError;
use crate::domain::approval::{ApprovalId, ApprovalRequest, Successor};
use crate::domain::deployment::Deployment;
use crate::domain::names::{AppName, StageName};
use chrono::{DateTime, Utc};
use std::future::Future;

/// The newest request opened for a stage and application: the one a newer release supersedes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    pub id: ApprovalId,
    /// When its image was pushed: a request for an older push never replaces it.
    pub pushed_at: DateTime<Utc>,
}

pub trait Approvals: Send + Sync {
    /// Creates the request unless one with its id exists: `false` then (read it instead).
    fn create_approval(&self, request: &ApprovalRequest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A strongly consistent read: a vote must see the vote before it.
    fn get_approval(&self, id: &ApprovalId)
    -> impl Future<Output = Result<Option<ApprovalRequest>, StoreError>> + Send;

    /// Writes `request` (whose `version` is one above the one it was read at) if the stored
    /// version is still the one read; `false` if another write came first (read again).
    fn save_approval(&self, request: &ApprovalRequest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes only what a decision changes (`DECISION_ATTRIBUTES`: the ballots, the status,
    /// when it was decided, a cancel), under the same condition as `save_approval`. The
    /// internet-facing page's role may write nothing else, so nothing else of the request can
    /// be forged through it.
    fn save_decision(&self, request: &ApprovalRequest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes `record` (an older release's deploy, SUPERSEDED from AWAITING_APPROVAL) and marks
    /// its release's request `request` SUPERSEDED by `by`, in one transaction: only while the
    /// request still awaits approval (or `by` superseded it already) and the record still awaits
    /// it. `false`: the request was decided meanwhile (its approval stands) or the record moved
    /// on; nothing was written.
    fn supersede_awaiting(
        &self,
        record: &Deployment,
        request: &ApprovalId,
        by: &Successor,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every request in flight (awaiting a decision, or approved and not yet deployed or given
    /// up): what the promotion's sweeper looks at each minute.
    fn in_flight_approvals(&self) -> impl Future<Output = Result<Vec<ApprovalId>, StoreError>> + Send;

    /// Removes a request that lists no service (its release changed none) if it is still as
    /// read; a request with services is never removed.
    fn discard_approval(&self, request: &ApprovalRequest) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn open_request(
        &self,
        stage: &StageName,
        application: &AppName,
    ) -> impl Future<Output = Result<Option<OpenRequest>, StoreError>> + Send;

    /// Points the stage and application at `id` if the pointer still names `expected` (`None`:
    /// no pointer yet); `false` if it moved meanwhile.
    fn point_open_request(
        &self,
        stage: &StageName,
        application: &AppName,
        id: &ApprovalId,
        pushed_at: DateTime<Utc>,
        expected: Option<&ApprovalId>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What a change made of the request it was handed.
pub enum Change<T> {
    /// Write the request as changed (one version up), then answer `T`.
    Write(T),
    /// Nothing to write: answer `T` (with the request as read, whatever the change did).
    Leave(T),
}

/// How many times a change is made again on a request another write changed first.
const UPDATE_ATTEMPTS: usize = 6;

/// Reads request `id`, hands it to `change`, and writes what it made of it, conditional on
/// the version read; when another write came first, reads again and changes that. `None`: no
/// such request. Fails (retryable) when the request kept changing, naming `what` was done.
pub async fn update_approval<A: Approvals, T>(
    store: &A,
    id: &ApprovalId,
    what: &str,
    change: impl FnMut(&mut ApprovalRequest) -> Change<T>,
) -> Result<Option<(ApprovalRequest, T)>, StoreError> {
    update(store, id, what, change, Written::Whole).await
}

/// As `update_approval`, writing only the decision's attributes (`save_decision`): what the
/// approval page does, and all its role allows.
pub async fn update_decision<A: Approvals, T>(
    store: &A,
    id: &ApprovalId,
    what: &str,
    change: impl FnMut(&mut ApprovalRequest) -> Change<T>,
) -> Result<Option<(ApprovalRequest, T)>, StoreError> {
    update(store, id, what, change, Written::Decision).await
}

enum Written {
    Whole,
    Decision,
}

async fn update<A: Approvals, T>(
    store: &A,
    id: &ApprovalId,
    what: &str,
    mut change: impl FnMut(&mut ApprovalRequest) -> Change<T>,
    written: Written,
) -> Result<Option<(ApprovalRequest, T)>, StoreError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let Some(read) = store.get_approval(id).await? else {
            return Ok(None);
        };
        let mut request = read.clone();
        match change(&mut request) {
            Change::Leave(answer) => return Ok(Some((read, answer))),
            Change::Write(answer) => {
                request.version += 1;
                let saved = match written {
                    Written::Whole => store.save_approval(&request).await?,
                    Written::Decision => store.save_decision(&request).await?,
                };
                if saved {
                    return Ok(Some((request, answer)));
                }
            }
        }
    }
    Err(StoreError::retryable(format!("{id} kept changing while {what}")))
}
