use super::describe_sdk_error;
use crate::domain::names::AlarmName;
use crate::ports::{AlarmStateError, AlarmStates};
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};

#[derive(Clone)]
pub struct CloudWatchAlarms {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchAlarms {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_cloudwatch::Client::new(config),
        }
    }
}

/// DescribeAlarms takes at most 100 names a call.
const NAMES_PER_CALL: usize = 100;

impl AlarmStates for CloudWatchAlarms {
    async fn in_alarm(&self, alarms: &[AlarmName]) -> Result<Vec<AlarmName>, AlarmStateError> {
        let mut firing = Vec::new();
        for names in alarms.chunks(NAMES_PER_CALL) {
            let mut next_token = None;
            loop {
                // No `StateValue` filter: not every endpoint applies it together with names
                // (the emulator ignores it), so each returned alarm's own state is what counts.
                let output = self
                    .client
                    .describe_alarms()
                    .set_alarm_names(Some(names.iter().map(ToString::to_string).collect()))
                    .alarm_types(AlarmType::MetricAlarm)
                    .alarm_types(AlarmType::CompositeAlarm)
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(|err| AlarmStateError(describe_sdk_error("DescribeAlarms", &err)))?;
                let metric = output
                    .metric_alarms()
                    .iter()
                    .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                    .filter_map(|a| a.alarm_name());
                let composite = output
                    .composite_alarms()
                    .iter()
                    .filter(|a| a.state_value() == Some(&StateValue::Alarm))
                    .filter_map(|a| a.alarm_name());
                firing.extend(
                    metric
                        .chain(composite)
                        .filter_map(|name| names.iter().find(|n| n.as_str() == name).cloned()),
                );
                match output.next_token {
                    Some(token) if !token.is_empty() => next_token = Some(token),
                    _ => break,
                }
            }
        }
        Ok(firing)
    }
}
