//! What CloudWatch says about alarms now.

use crate::domain::names::AlarmName;
use std::future::Future;

/// CloudWatch could not be asked (throttling, 5xx, network, access): worth a retry.
#[derive(Debug, thiserror::Error)]
#[error("alarm states: {0}")]
pub struct AlarmStateError(pub String);

pub trait AlarmStates: Send + Sync {
    /// Those of `alarms` in ALARM now (metric and composite alarms alike).
    fn in_alarm(&self, alarms: &[AlarmName]) -> impl Future<Output = Result<Vec<AlarmName>, AlarmStateError>> + Send;
}
