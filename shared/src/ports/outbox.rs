//! Notices to send, kept as records first: a failed publish never holds up record keeping,
//! and a notice is never lost, only retried (by the Lambda retry of the event that wrote it).

use super::StoreError;
use crate::domain::notice::Notice;
use chrono::{DateTime, Utc};
use std::future::Future;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub notice: Notice,
    pub sent: bool,
}

pub trait Outbox: Send + Sync {
    /// Keeps the notice under `key` (a business key of the event it tells about) unless one
    /// is kept already: `false` then. The entry is forgotten after `expires`.
    fn enqueue(
        &self,
        key: &str,
        notice: &Notice,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn entry(&self, key: &str) -> impl Future<Output = Result<Option<OutboxEntry>, StoreError>> + Send;

    fn mark_sent(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}
