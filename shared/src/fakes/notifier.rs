//! SNS in memory: the team's notices and the approvers' mail.

use crate::domain::names::Approver;
use crate::domain::notice::Notice;
use crate::ports::{ApproverMail, Notifier, NotifyError};
use std::sync::{Arc, Mutex};

/// Keeps what was published; can be told to fail. Clones share it.
#[derive(Clone, Default)]
pub struct FakeNotifier {
    published: Arc<Mutex<Vec<Notice>>>,
    failing: Arc<Mutex<bool>>,
}

impl FakeNotifier {
    pub fn published(&self) -> Vec<Notice> {
        self.published.lock().unwrap().clone()
    }

    pub fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

impl Notifier for FakeNotifier {
    async fn publish(&self, notice: &Notice) -> Result<(), NotifyError> {
        if *self.failing.lock().unwrap() {
            return Err(NotifyError("Publish: InternalError".into()));
        }
        self.published.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

/// Keeps each approver's messages; can be told to fail. Clones share it.
#[derive(Clone, Default)]
pub struct FakeApproverMail {
    sent: Arc<Mutex<Vec<(Approver, Notice)>>>,
    failing: Arc<Mutex<bool>>,
}

impl FakeApproverMail {
    pub fn sent(&self) -> Vec<(Approver, Notice)> {
        self.sent.lock().unwrap().clone()
    }

    pub fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

impl ApproverMail for FakeApproverMail {
    async fn send_to(&self, approver: &Approver, notice: &Notice) -> Result<(), NotifyError> {
        if *self.failing.lock().unwrap() {
            return Err(NotifyError("Publish: InternalError".into()));
        }
        self.sent.lock().unwrap().push((approver.clone(), notice.clone()));
        Ok(())
    }
}
