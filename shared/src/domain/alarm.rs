//! A CloudWatch alarm state change, read into what it means for the pipeline: an alarm that
//! guards an application in a stage moved into ALARM (and when), or nothing to act on.
//!
//! The alarm's `configuration` is never read: metric alarms of any period, metric-math and
//! composite alarms differ only there, and a typed reading of it rejects real events.

use super::names::{AlarmName, InvalidName};
use super::pipeline::{Application, Pipeline, Stage};
use crate::events::{AlarmEvent, WrongKind, expect_kind};
use chrono::{DateTime, TimeDelta, Utc};

/// An alarm event older than this is history, not news: EventBridge delivers within
/// seconds, so a delivery this late (a redrive, a retry after an outage) must not start a
/// rollback of what has been deployed since. It still finishes what an earlier delivery of
/// it started (a rollback under way, a notice kept but not sent).
pub const ALARM_FRESHNESS: TimeDelta = TimeDelta::minutes(15);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadAlarm {
    #[error(transparent)]
    WrongKind(#[from] WrongKind),
    #[error("event field `detail.alarmName`: {0}")]
    Invalid(InvalidName),
    #[error("event has no time: neither `detail.state.timestamp` nor `time` is readable")]
    NoTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AlarmMeaning<'a> {
    Ignore(String),
    /// An alarm guarding `application` in `stage` moved into ALARM at `at`; `late` when that
    /// was more than `ALARM_FRESHNESS` before it is handled.
    Fired {
        alarm: AlarmName,
        stage: &'a Stage,
        application: &'a Application,
        at: DateTime<Utc>,
        late: bool,
    },
}

/// CloudWatch writes `2026-11-22T10:20:00.000+0000`; the event's own `time` is the fallback.
fn state_time(event: &AlarmEvent) -> Option<DateTime<Utc>> {
    event
        .detail
        .state
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map(|t| t.with_timezone(&Utc))
        .or(event.time)
}

/// What the alarm event means at `now`. An alarm that guards nothing is ignored before
/// anything else about it is checked: the rule may deliver alarms this pipeline never named.
pub fn read_alarm<'a>(
    pipeline: &'a Pipeline,
    event: &AlarmEvent,
    now: DateTime<Utc>,
) -> Result<AlarmMeaning<'a>, BadAlarm> {
    expect_kind(event, "aws.cloudwatch", "CloudWatch Alarm State Change")?;
    let name = &event.detail.alarm_name;
    let Some((stage, application)) = pipeline.guarded_by(name) else {
        return Ok(AlarmMeaning::Ignore(format!(
            "alarm `{name}` guards nothing in the pipeline file"
        )));
    };
    let alarm = AlarmName::parse(name.clone()).map_err(BadAlarm::Invalid)?;
    let (state, before) = (
        event.detail.state.value.as_str(),
        event.detail.previous_state.value.as_str(),
    );
    if state != "ALARM" {
        return Ok(AlarmMeaning::Ignore(format!("alarm `{alarm}` went {before} → {state}")));
    }
    if !matches!(before, "OK" | "INSUFFICIENT_DATA") {
        return Ok(AlarmMeaning::Ignore(format!("alarm `{alarm}` was already in {before}")));
    }
    let at = state_time(event).ok_or(BadAlarm::NoTime)?;
    Ok(AlarmMeaning::Fired {
        alarm,
        stage,
        application,
        at,
        late: now - at > ALARM_FRESHNESS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
    }

    fn pipeline() -> Pipeline {
        Pipeline::parse(include_str!("../../../tests/fixtures/three-stages.toml")).unwrap()
    }

    fn alarm(name: &str, before: &str, now: &str, configuration: serde_json::Value) -> AlarmEvent {
        serde_json::from_value(json!({
            "version": "0",
            "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2026-11-22T10:20:05Z",
            "region": "us-east-1",
            "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
            "detail": {
                "alarmName": name,
                "state": { "value": now, "reason": "Threshold Crossed", "timestamp": "2026-11-22T10:20:00.000+0000" },
                "previousState": { "value": before, "reason": "", "timestamp": "2026-11-22T09:00:00.000+0000" },
                "configuration": configuration
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_move_into_alarm_fires_for_metric_math_daily_and_composite_alarms() {
        let pipeline = pipeline();
        let configurations = [
            json!({"metrics": [{"id": "e1", "expression": "m1/m2*100", "returnData": true},
                               {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count"}, "period": 60, "stat": "Sum"}, "returnData": false}]}),
            json!({"metrics": [{"id": "m1", "metricStat": {"metric": {"namespace": "AWS/ECS", "name": "CPUUtilization"}, "period": 86400, "stat": "Average"}, "returnData": true}]}),
            json!({"alarmRule": "ALARM(backend-dev-5xx) OR ALARM(backend-dev-error-rate)", "actionsSuppressor": null}),
        ];
        for (name, configuration) in ["backend-dev-error-rate", "backend-dev-5xx", "backend-dev-health"]
            .iter()
            .zip(configurations)
        {
            for before in ["OK", "INSUFFICIENT_DATA"] {
                match read_alarm(&pipeline, &alarm(name, before, "ALARM", configuration.clone()), at(21)).unwrap() {
                    AlarmMeaning::Fired {
                        alarm,
                        stage,
                        application,
                        at: fired,
                        late: false,
                    } => {
                        assert_eq!(
                            (alarm.as_str(), stage.name.as_str(), application.name.as_str()),
                            (*name, "dev", "backend")
                        );
                        assert_eq!(fired, at(20));
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn other_transitions_and_unguarded_alarms_are_ignored() {
        let pipeline = pipeline();
        for (before, now) in [("ALARM", "OK"), ("OK", "INSUFFICIENT_DATA"), ("ALARM", "ALARM")] {
            assert!(matches!(
                read_alarm(&pipeline, &alarm("backend-dev-5xx", before, now, json!({})), at(21)).unwrap(),
                AlarmMeaning::Ignore(_)
            ));
        }
        assert_eq!(
            read_alarm(&pipeline, &alarm("billing", "OK", "ALARM", json!({})), at(21)).unwrap(),
            AlarmMeaning::Ignore("alarm `billing` guards nothing in the pipeline file".into())
        );
        let mut wrong = alarm("backend-dev-5xx", "OK", "ALARM", json!({}));
        wrong.source = "aws.ecs".into();
        assert!(matches!(
            read_alarm(&pipeline, &wrong, at(21)),
            Err(BadAlarm::WrongKind(_))
        ));
    }

    #[test]
    fn an_alarm_that_guards_nothing_is_ignored_before_any_validation() {
        let pipeline = pipeline();
        // Not a name CloudWatch allows (control character), and no time at all: still only
        // "not ours", since nothing of it is read.
        let mut odd = alarm("someone\u{7}else", "OK", "ALARM", json!({}));
        odd.detail.state.timestamp = None;
        odd.time = None;
        assert!(matches!(
            read_alarm(&pipeline, &odd, at(21)).unwrap(),
            AlarmMeaning::Ignore(_)
        ));
        // A guarding alarm without any time is a bad event, not a guess at "now".
        let mut timeless = alarm("backend-dev-5xx", "OK", "ALARM", json!({}));
        timeless.detail.state.timestamp = None;
        timeless.time = None;
        assert_eq!(read_alarm(&pipeline, &timeless, at(21)), Err(BadAlarm::NoTime));
    }

    #[test]
    fn an_alarm_delivered_long_after_it_fired_is_late() {
        let pipeline = pipeline();
        let event = alarm("backend-dev-5xx", "OK", "ALARM", json!({}));
        assert!(matches!(
            read_alarm(&pipeline, &event, at(20) + ALARM_FRESHNESS).unwrap(),
            AlarmMeaning::Fired { late: false, .. }
        ));
        assert!(matches!(
            read_alarm(&pipeline, &event, at(21) + ALARM_FRESHNESS).unwrap(),
            AlarmMeaning::Fired { late: true, .. }
        ));
    }
}
