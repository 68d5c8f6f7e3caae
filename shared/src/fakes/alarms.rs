//! CloudWatch alarm states in memory.

use crate::domain::names::AlarmName;
use crate::ports::{AlarmStateError, AlarmStates};
use std::sync::{Arc, Mutex};

/// Alarms in ALARM are those set so; the rest are OK. Clones share it.
#[derive(Clone, Default)]
pub struct FakeAlarms {
    firing: Arc<Mutex<Vec<AlarmName>>>,
}

impl FakeAlarms {
    pub fn set_firing(&self, alarms: &[&str]) {
        *self.firing.lock().unwrap() = alarms.iter().map(|a| AlarmName::parse(*a).unwrap()).collect();
    }
}

impl AlarmStates for FakeAlarms {
    async fn in_alarm(&self, alarms: &[AlarmName]) -> Result<Vec<AlarmName>, AlarmStateError> {
        let firing = self.firing.lock().unwrap();
        Ok(alarms.iter().filter(|a| firing.contains(a)).cloned().collect())
    }
}
