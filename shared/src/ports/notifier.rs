//! Telling people: one plain-text message to the team's topic.

use crate::domain::names::Approver;
use crate::domain::notice::Notice;
use std::future::Future;

/// Publishing failed (throttling, 5xx, network, or a wrong topic): worth a retry.
#[derive(Debug, thiserror::Error)]
#[error("notify: {0}")]
pub struct NotifyError(pub String);

pub trait Notifier: Send + Sync {
    fn publish(&self, notice: &Notice) -> impl Future<Output = Result<(), NotifyError>> + Send;
}

/// An approver's own message (their link), published so that only their subscription gets it:
/// the message names them in an attribute their subscription's filter policy matches.
pub trait ApproverMail: Send + Sync {
    fn send_to(&self, approver: &Approver, notice: &Notice) -> impl Future<Output = Result<(), NotifyError>> + Send;
}
