//! Whether an alarm rolls a service back, and to what. Pure: the handler brings the alarm, the
//! service's current deployment and its history.
//!
//! The alarm's `configuration` is never read: metric alarms of any period, metric-math and
//! composite alarms differ only there, and a typed reading of it rejects real events.

use super::deployment::{Deployment, DeploymentId, Kind, Status};
use super::names::AlarmName;
use super::pipeline::{Pipeline, Stage};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub state: AlarmState,
    pub previous_state: AlarmState,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct AlarmState {
    pub value: String,
    #[serde(default)]
    pub timestamp: Option<String>,
}

pub type AlarmEvent = EventBridgeEvent<AlarmStateChange>;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadAlarm {
    #[error(transparent)]
    WrongKind(#[from] super::WrongKind),
    #[error("event field `detail.alarmName`: {0}")]
    Invalid(super::names::InvalidName),
}

#[derive(Debug, PartialEq, Eq)]
pub enum AlarmReading<'a> {
    Ignore(String),
    /// A guarding alarm moved into ALARM.
    Fired {
        alarm: AlarmName,
        stage: &'a Stage,
        at: DateTime<Utc>,
    },
}

/// CloudWatch writes `2026-11-22T10:20:00.000+0000`; the event's own `time` is the fallback.
fn state_time(event: &AlarmEvent) -> DateTime<Utc> {
    event
        .detail
        .state
        .timestamp
        .as_deref()
        .and_then(|t| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .map(|t| t.with_timezone(&Utc))
        .or(event.time)
        .unwrap_or_else(Utc::now)
}

pub fn read_alarm<'a>(pipeline: &'a Pipeline, event: &AlarmEvent) -> Result<AlarmReading<'a>, BadAlarm> {
    super::expect_kind(event, "aws.cloudwatch", "CloudWatch Alarm State Change")?;
    let alarm = AlarmName::parse(event.detail.alarm_name.clone()).map_err(BadAlarm::Invalid)?;
    let Some(stage) = pipeline.stage_guarded_by(&alarm) else {
        return Ok(AlarmReading::Ignore(format!("alarm `{alarm}` guards no stage")));
    };
    let (now, before) = (
        event.detail.state.value.as_str(),
        event.detail.previous_state.value.as_str(),
    );
    if now != "ALARM" {
        return Ok(AlarmReading::Ignore(format!("alarm `{alarm}` went {before} → {now}")));
    }
    if !matches!(before, "OK" | "INSUFFICIENT_DATA") {
        return Ok(AlarmReading::Ignore(format!("alarm `{alarm}` was already in {before}")));
    }
    Ok(AlarmReading::Fired {
        alarm,
        stage,
        at: state_time(event),
    })
}

/// What a rollback points the service at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollbackTarget {
    pub task_definition: String,
    /// The stored definition, to register it again if ECS no longer has it.
    pub definition: Option<String>,
    /// The deployment that ran it: the last known good, or the first deploy (whose previous
    /// revision is what the service ran before this pipeline touched it).
    pub from: DeploymentId,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RollbackPlan {
    Rollback {
        bad: DeploymentId,
        target: RollbackTarget,
    },
    /// Tell people, change nothing.
    NotifyOnly(Why),
    /// Nothing to do (a duplicate, or a rollback already in charge).
    Nothing(Why),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Why {
    NoDeployment,
    /// The deploy completed longer than the watch window before the alarm: not its fault.
    OutsideWatchWindow {
        completed_at: DateTime<Utc>,
    },
    NoKnownGood,
    /// The current deployment is itself a rollback: never roll back a rollback.
    RollbackInCharge(DeploymentId),
    AlreadyRolledBack(DeploymentId),
    NotLive(Status),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NoDeployment => f.write_str("no deployment of this service is recorded"),
            Why::OutsideWatchWindow { completed_at } => {
                write!(
                    f,
                    "the current deployment completed at {completed_at}, before the watch window"
                )
            }
            Why::NoKnownGood => f.write_str("no known-good revision to roll back to"),
            Why::RollbackInCharge(id) => write!(f, "the current deployment {id} is a rollback"),
            Why::AlreadyRolledBack(id) => write!(f, "{id} is already rolled back"),
            Why::NotLive(status) => write!(f, "the current deployment is {status}"),
        }
    }
}

/// `current` is the deployment the service state points at; `history` is the service's
/// deployments, newest first.
pub fn plan_rollback(
    current: Option<&Deployment>,
    history: &[Deployment],
    fired_at: DateTime<Utc>,
    watch_window: TimeDelta,
) -> RollbackPlan {
    let Some(current) = current else {
        return RollbackPlan::NotifyOnly(Why::NoDeployment);
    };
    if let Kind::Rollback { .. } = current.kind {
        return RollbackPlan::Nothing(Why::RollbackInCharge(current.id.clone()));
    }
    match current.status {
        Status::RolledBack => return RollbackPlan::Nothing(Why::AlreadyRolledBack(current.id.clone())),
        Status::Deploying | Status::Failed => {}
        Status::Succeeded => match current.completed_at {
            Some(completed_at) if completed_at + watch_window < fired_at => {
                return RollbackPlan::NotifyOnly(Why::OutsideWatchWindow { completed_at });
            }
            _ => {}
        },
        other => return RollbackPlan::Nothing(Why::NotLive(other)),
    }
    // Last known good: the newest other deployment that SUCCEEDED (a rolled-back one is
    // ROLLED_BACK, so it never qualifies) — never blindly revision N-1.
    let known_good = history
        .iter()
        .filter(|d| d.id != current.id && d.status == Status::Succeeded)
        .find_map(|d| {
            Some(RollbackTarget {
                task_definition: d.task_definition.clone()?,
                definition: d.definition.clone(),
                from: d.id.clone(),
            })
        });
    // Else what the service ran before its first recorded deploy.
    let before_first = || {
        let first = history.iter().rev().find(|d| d.kind == Kind::Deploy)?;
        Some(RollbackTarget {
            task_definition: first.previous_task_definition.clone()?,
            definition: first.previous_definition.clone(),
            from: first.id.clone(),
        })
    };
    match known_good.or_else(before_first) {
        Some(target) if Some(&target.task_definition) != current.task_definition.as_ref() => RollbackPlan::Rollback {
            bad: current.id.clone(),
            target,
        },
        _ => RollbackPlan::NotifyOnly(Why::NoKnownGood),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::PushedImage;
    use crate::domain::names::{
        ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName,
    };
    use chrono::TimeZone;
    use serde_json::json;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
    }

    fn pipeline() -> Pipeline {
        Pipeline::parse(include_str!("../../../pipeline.toml")).unwrap()
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
                match read_alarm(&pipeline, &alarm(name, before, "ALARM", configuration.clone())).unwrap() {
                    AlarmReading::Fired {
                        alarm,
                        stage,
                        at: fired,
                    } => {
                        assert_eq!((alarm.as_str(), stage.name.as_str()), (*name, "dev"));
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
                read_alarm(&pipeline, &alarm("backend-dev-5xx", before, now, json!({}))).unwrap(),
                AlarmReading::Ignore(_)
            ));
        }
        assert_eq!(
            read_alarm(&pipeline, &alarm("billing", "OK", "ALARM", json!({}))).unwrap(),
            AlarmReading::Ignore("alarm `billing` guards no stage".into())
        );
        let mut wrong = alarm("backend-dev-5xx", "OK", "ALARM", json!({}));
        wrong.source = "aws.ecs".into();
        assert!(matches!(read_alarm(&pipeline, &wrong), Err(BadAlarm::WrongKind(_))));
    }

    fn dep(n: u8, kind: Kind, status: Status, completed: Option<u32>) -> Deployment {
        Deployment {
            id: DeploymentId::from_stored(format!("dep-{n}")),
            kind,
            status,
            stage: StageName::parse("dev").unwrap(),
            cluster: ClusterName::parse("social-analytics-dev").unwrap(),
            service: ServiceName::parse("backend-service").unwrap(),
            container: ContainerName::parse("api").unwrap(),
            image: PushedImage {
                repository: RepositoryName::parse("social-analytics/backend").unwrap(),
                tag: ImageTag::parse("latest").unwrap(),
                digest: ImageDigest::parse(format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
                uri: String::new(),
                pushed_at: at(0),
            },
            requested_at: at(0),
            updated_at: at(0),
            previous_task_definition: Some(format!("td:{}", n - 1)),
            task_definition: Some(format!("td:{n}")),
            ecs_deployment_id: None,
            superseded_by: None,
            definition: Some(format!("{{\"def\": {n}}}")),
            previous_definition: Some(format!("{{\"def\": {}}}", n - 1)),
            completed_at: completed.map(at),
            ecs_reason: None,
        }
    }

    const WINDOW: TimeDelta = TimeDelta::minutes(15);

    #[test]
    fn a_bad_deploy_inside_the_window_goes_back_to_the_last_known_good_not_n_minus_1() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let rolled_back = dep(2, Kind::Deploy, Status::RolledBack, Some(4));
        let superseded = dep(3, Kind::Deploy, Status::Superseded, None);
        let bad = dep(4, Kind::Deploy, Status::Succeeded, Some(10));
        let history = [bad.clone(), superseded, rolled_back, good];
        assert_eq!(
            plan_rollback(Some(&bad), &history, at(20), WINDOW),
            RollbackPlan::Rollback {
                bad: bad.id.clone(),
                target: RollbackTarget {
                    task_definition: "td:1".into(),
                    definition: Some("{\"def\": 1}".into()),
                    from: DeploymentId::from_stored("dep-1".into()),
                },
            }
        );
        let in_flight = dep(4, Kind::Deploy, Status::Deploying, None);
        assert!(matches!(
            plan_rollback(Some(&in_flight), &history, at(20), WINDOW),
            RollbackPlan::Rollback { .. }
        ));
        let failed = dep(4, Kind::Deploy, Status::Failed, Some(12));
        assert!(matches!(
            plan_rollback(Some(&failed), &history, at(59), WINDOW),
            RollbackPlan::Rollback { .. }
        ));
    }

    #[test]
    fn after_the_window_it_is_not_the_deploys_fault() {
        let bad = dep(2, Kind::Deploy, Status::Succeeded, Some(4));
        let history = [bad.clone(), dep(1, Kind::Deploy, Status::Succeeded, Some(1))];
        assert_eq!(
            plan_rollback(Some(&bad), &history, at(20), WINDOW),
            RollbackPlan::NotifyOnly(Why::OutsideWatchWindow { completed_at: at(4) })
        );
    }

    #[test]
    fn without_a_known_good_the_service_goes_back_to_what_it_ran_before_the_first_deploy() {
        let first = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let RollbackPlan::Rollback { target, .. } =
            plan_rollback(Some(&first), std::slice::from_ref(&first), at(5), WINDOW)
        else {
            panic!("should roll back")
        };
        assert_eq!(
            (target.task_definition.as_str(), target.definition.as_deref()),
            ("td:0", Some("{\"def\": 0}"))
        );
        let mut untracked = first.clone();
        untracked.previous_task_definition = None;
        assert_eq!(
            plan_rollback(Some(&untracked), std::slice::from_ref(&untracked), at(5), WINDOW),
            RollbackPlan::NotifyOnly(Why::NoKnownGood)
        );
    }

    #[test]
    fn never_a_rollback_of_a_rollback_nor_twice() {
        let rollback = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
            },
            Status::Deploying,
            None,
        );
        assert_eq!(
            plan_rollback(Some(&rollback), &[], at(5), WINDOW),
            RollbackPlan::Nothing(Why::RollbackInCharge(rollback.id.clone()))
        );
        let done = dep(2, Kind::Deploy, Status::RolledBack, Some(1));
        assert_eq!(
            plan_rollback(Some(&done), &[], at(5), WINDOW),
            RollbackPlan::Nothing(Why::AlreadyRolledBack(done.id.clone()))
        );
        assert_eq!(
            plan_rollback(None, &[], at(5), WINDOW),
            RollbackPlan::NotifyOnly(Why::NoDeployment)
        );
    }
}
