//! Whether an alarm rolls a service back, and to what. Pure: the handler brings the alarm, the
//! service's current deployment and its history.
//!
//! The alarm's `configuration` is never read: metric alarms of any period, metric-math and
//! composite alarms differ only there, and a typed reading of it rejects real events.

use super::deployment::{Deployment, DeploymentId, Kind, Status};
use super::names::AlarmName;
use super::pipeline::{Pipeline, Stage};
use super::taskdef::revision_name;
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

/// What may roll a service back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A guarding alarm moved into ALARM at `at` (its state timestamp).
    Alarm { alarm: AlarmName, at: DateTime<Utc> },
    /// ECS reported this deployment FAILED (e.g. its circuit breaker tripped).
    Failed {
        deployment: DeploymentId,
        at: DateTime<Utc>,
        reason: Option<String>,
    },
}

impl Trigger {
    /// The business key of this very event, whichever delivery brings it: alarm + state
    /// timestamp, or the failed deployment.
    pub fn key(&self) -> String {
        match self {
            Trigger::Alarm { alarm, at } => format!("alarm|{alarm}|{}", at.timestamp_millis()),
            Trigger::Failed { deployment, .. } => format!("failed|{deployment}"),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Alarm { alarm, at } => write!(f, "alarm {alarm} went into ALARM at {at}"),
            Trigger::Failed { deployment, reason, .. } => {
                write!(f, "ECS reported deployment {deployment} FAILED")?;
                match reason {
                    Some(reason) => write!(f, ": {reason}"),
                    None => Ok(()),
                }
            }
        }
    }
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
    /// The alarm fired before the current deployment started: something else is wrong.
    AlarmBeforeDeployment {
        requested_at: DateTime<Utc>,
    },
    /// The deploy completed longer than the watch window before the alarm: not its fault.
    OutsideWatchWindow {
        completed_at: DateTime<Utc>,
    },
    /// The current deployment has been in flight for longer than any rollout takes: its
    /// record lost track of it.
    InFlightTooLong {
        since: DateTime<Utc>,
    },
    NoKnownGood,
    /// The current deployment is itself a rollback: never roll back a rollback.
    RollbackInCharge(DeploymentId),
    AlreadyRolledBack(DeploymentId),
    NotLive(Status),
    /// A FAILED event for a deployment the service has moved on from.
    NotCurrent(DeploymentId),
    /// The rollback itself failed: people must step in.
    RollbackFailed(DeploymentId),
    /// The bad deployment runs the target revision already.
    AlreadyOnTarget,
    /// The target revision is no longer in ECS, and its definition was never stored.
    TargetGone(String),
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
            Why::AlarmBeforeDeployment { requested_at } => write!(
                f,
                "the alarm fired before the current deployment started at {requested_at}"
            ),
            Why::InFlightTooLong { since } => write!(
                f,
                "the current deployment has been in flight since {since}, longer than any rollout takes; ECS never reported its end"
            ),
            Why::NoKnownGood => f.write_str("no known-good revision to roll back to"),
            Why::RollbackInCharge(id) => write!(f, "the current deployment {id} is a rollback"),
            Why::AlreadyRolledBack(id) => write!(f, "{id} is already rolled back"),
            Why::NotLive(status) => write!(f, "the current deployment is {status}"),
            Why::NotCurrent(id) => write!(f, "{id} is no longer the service's current deployment"),
            Why::RollbackFailed(id) => write!(f, "the rollback {id} itself failed; nothing more is automatic"),
            Why::AlreadyOnTarget => f.write_str("the service already runs its last known good revision"),
            Why::TargetGone(td) => write!(
                f,
                "the last known good revision {td} is gone from ECS and its definition was never stored"
            ),
        }
    }
}

/// How long a deployment may stay in flight and still be blamed for an alarm: ECS rollouts
/// (with their circuit breaker) end well within it, so a record still DEPLOYING later has
/// lost its ECS event and says nothing about what runs now.
pub const ROLLOUT_ALLOWANCE: TimeDelta = TimeDelta::hours(1);

/// Whether the alarm is the current deployment's fault: it fired after the deployment started
/// and while it was in flight or inside the watch window after it completed. ECS's own report
/// that the deployment FAILED always is.
fn blame(current: &Deployment, trigger: &Trigger, watch_window: TimeDelta) -> Result<(), Why> {
    let Trigger::Alarm { at: fired_at, .. } = trigger else {
        return Ok(());
    };
    let fired_at = *fired_at;
    match current.status {
        Status::Succeeded | Status::Deploying if fired_at < current.requested_at => Err(Why::AlarmBeforeDeployment {
            requested_at: current.requested_at,
        }),
        Status::Succeeded => match current.completed_at {
            Some(completed_at) if completed_at + watch_window < fired_at => {
                Err(Why::OutsideWatchWindow { completed_at })
            }
            _ => Ok(()),
        },
        Status::Deploying if current.requested_at + ROLLOUT_ALLOWANCE + watch_window < fired_at => {
            Err(Why::InFlightTooLong {
                since: current.requested_at,
            })
        }
        _ => Ok(()),
    }
}

/// The last known good in `history` (newest first): the newest deployment other than
/// `current` that SUCCEEDED and was not rolled back — never blindly revision N-1. A deployment
/// some rollback undid never counts, even if ECS reported it COMPLETED after the rollback began.
pub fn known_good(history: &[Deployment], current: &DeploymentId) -> Option<RollbackTarget> {
    let undone: Vec<&DeploymentId> = history
        .iter()
        .filter_map(|d| match &d.kind {
            Kind::Rollback { of, .. } => Some(of),
            Kind::Deploy => None,
        })
        .collect();
    history
        .iter()
        .filter(|d| d.id != *current && d.status == Status::Succeeded && !undone.contains(&&d.id))
        .find_map(|d| {
            Some(RollbackTarget {
                task_definition: d.task_definition.clone()?,
                definition: d.definition.clone(),
                from: d.id.clone(),
            })
        })
}

/// `current` is the deployment the service state points at; `history` is the service's
/// deployments, newest first.
pub fn plan_rollback(
    trigger: &Trigger,
    current: Option<&Deployment>,
    history: &[Deployment],
    watch_window: TimeDelta,
) -> RollbackPlan {
    let Some(current) = current else {
        return RollbackPlan::NotifyOnly(Why::NoDeployment);
    };
    if let Trigger::Failed { deployment, .. } = trigger
        && *deployment != current.id
    {
        return RollbackPlan::Nothing(Why::NotCurrent(deployment.clone()));
    }
    if let Kind::Rollback { .. } = current.kind {
        return match (current.status, blame(current, trigger, watch_window)) {
            (Status::Failed, _) => RollbackPlan::NotifyOnly(Why::RollbackFailed(current.id.clone())),
            // Long settled: a new alarm is news, but not the rollback's doing.
            (_, Err(why @ (Why::OutsideWatchWindow { .. } | Why::InFlightTooLong { .. }))) => {
                RollbackPlan::NotifyOnly(why)
            }
            _ => RollbackPlan::Nothing(Why::RollbackInCharge(current.id.clone())),
        };
    }
    match current.status {
        Status::RolledBack => return RollbackPlan::Nothing(Why::AlreadyRolledBack(current.id.clone())),
        Status::Deploying | Status::Failed | Status::Succeeded => {
            if let Err(why) = blame(current, trigger, watch_window) {
                return RollbackPlan::NotifyOnly(why);
            }
        }
        other => return RollbackPlan::Nothing(Why::NotLive(other)),
    }
    let known_good = known_good(history, &current.id);
    // Else what the service ran before its first deploy that reached ECS (a deploy that never
    // did, e.g. one rejected at approval, knows no previous revision).
    let before_first = || {
        history
            .iter()
            .rev()
            .filter(|d| d.kind == Kind::Deploy)
            .find_map(|first| {
                Some(RollbackTarget {
                    task_definition: first.previous_task_definition.clone()?,
                    definition: first.previous_definition.clone(),
                    from: first.id.clone(),
                })
            })
    };
    match known_good.or_else(before_first) {
        Some(target) if Some(&target.task_definition) == current.task_definition.as_ref() => {
            RollbackPlan::Nothing(Why::AlreadyOnTarget)
        }
        Some(target) => RollbackPlan::Rollback {
            bad: current.id.clone(),
            target,
        },
        None => RollbackPlan::NotifyOnly(Why::NoKnownGood),
    }
}

/// An SNS message. SNS wants the subject ASCII, one line, under 100 characters.
#[derive(Debug, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub message: String,
}

fn subject(text: String) -> String {
    let ascii: String = text
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect();
    ascii.chars().take(99).collect()
}

/// What a rollback record tells the team: stage, service, from → to, why, and what is blocked.
pub fn rollback_notice(rollback: &Deployment) -> Notice {
    let (from, to) = (
        rollback.previous_task_definition.as_deref().unwrap_or("?"),
        rollback.task_definition.as_deref().unwrap_or("?"),
    );
    let (of, cause) = match &rollback.kind {
        Kind::Rollback { of, cause } => (of.as_str(), cause.as_str()),
        Kind::Deploy => ("?", "?"),
    };
    let (stage, service) = (&rollback.stage, &rollback.service);
    Notice {
        subject: subject(format!(
            "Rolled back {stage}/{service}: {} -> {}",
            revision_name(from),
            revision_name(to)
        )),
        message: format!(
            "{service} in stage {stage} (cluster {cluster}) was rolled back.\n\n\
             Why: {cause}\n\
             Rolled back: deployment {of}, image {image}\n\
             From: {from}\n\
             To (last known good): {to}\n\
             Rollback deployment: {id}\n\n\
             The digest {digest} is quarantined on this service: auto-deploys skip it. Push a fix \
             (a new digest deploys as usual), or lift it with\n  \
             pipectl lift-quarantine {stage} {service} {digest}\n",
            cluster = rollback.cluster,
            image = rollback.image.uri,
            id = rollback.id,
            digest = rollback.image.digest,
        ),
    }
}

/// An alarm or failure that changed nothing, and why.
pub fn no_rollback_notice(stage: &Stage, service: &str, trigger: &Trigger, why: &Why) -> Notice {
    Notice {
        subject: subject(format!("No rollback of {}/{service}: {why}", stage.name)),
        message: format!(
            "{service} in stage {stage} (cluster {cluster}) was not rolled back.\n\n\
             Event: {trigger}\n\
             Why not: {why}\n",
            stage = stage.name,
            cluster = stage.cluster,
        ),
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

    fn fired(minute: u32) -> Trigger {
        Trigger::Alarm {
            alarm: AlarmName::parse("backend-dev-5xx").unwrap(),
            at: at(minute),
        }
    }

    #[test]
    fn a_bad_deploy_inside_the_window_goes_back_to_the_last_known_good_not_n_minus_1() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let rolled_back = dep(2, Kind::Deploy, Status::RolledBack, Some(4));
        let superseded = dep(3, Kind::Deploy, Status::Superseded, None);
        let bad = dep(4, Kind::Deploy, Status::Succeeded, Some(10));
        let history = [bad.clone(), superseded, rolled_back, good];
        assert_eq!(
            plan_rollback(&fired(20), Some(&bad), &history, WINDOW),
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
            plan_rollback(&fired(20), Some(&in_flight), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
        let failed = dep(4, Kind::Deploy, Status::Failed, Some(12));
        assert!(matches!(
            plan_rollback(&fired(59), Some(&failed), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
    }

    #[test]
    fn after_the_window_it_is_not_the_deploys_fault() {
        let bad = dep(2, Kind::Deploy, Status::Succeeded, Some(4));
        let history = [bad.clone(), dep(1, Kind::Deploy, Status::Succeeded, Some(1))];
        assert_eq!(
            plan_rollback(&fired(20), Some(&bad), &history, WINDOW),
            RollbackPlan::NotifyOnly(Why::OutsideWatchWindow { completed_at: at(4) })
        );
    }

    #[test]
    fn without_a_known_good_the_service_goes_back_to_what_it_ran_before_the_first_deploy() {
        let first = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let RollbackPlan::Rollback { target, .. } =
            plan_rollback(&fired(5), Some(&first), std::slice::from_ref(&first), WINDOW)
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
            plan_rollback(&fired(5), Some(&untracked), std::slice::from_ref(&untracked), WINDOW),
            RollbackPlan::NotifyOnly(Why::NoKnownGood)
        );
    }

    #[test]
    fn never_a_rollback_of_a_rollback_nor_twice() {
        let rollback = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm".into(),
            },
            Status::Deploying,
            None,
        );
        assert_eq!(
            plan_rollback(&fired(5), Some(&rollback), &[], WINDOW),
            RollbackPlan::Nothing(Why::RollbackInCharge(rollback.id.clone()))
        );
        let done = dep(2, Kind::Deploy, Status::RolledBack, Some(1));
        assert_eq!(
            plan_rollback(&fired(5), Some(&done), &[], WINDOW),
            RollbackPlan::Nothing(Why::AlreadyRolledBack(done.id.clone()))
        );
        assert_eq!(
            plan_rollback(&fired(5), None, &[], WINDOW),
            RollbackPlan::NotifyOnly(Why::NoDeployment)
        );
        let mut failed_rollback = rollback.clone();
        failed_rollback.status = Status::Failed;
        assert_eq!(
            plan_rollback(&fired(5), Some(&failed_rollback), &[], WINDOW),
            RollbackPlan::NotifyOnly(Why::RollbackFailed(rollback.id.clone()))
        );
    }

    #[test]
    fn a_failure_rolls_back_only_the_current_deployment() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let failed = dep(2, Kind::Deploy, Status::Failed, Some(9));
        let history = [failed.clone(), good];
        let failure = |id: &DeploymentId| Trigger::Failed {
            deployment: id.clone(),
            at: at(9),
            reason: Some("circuit breaker".into()),
        };
        assert!(matches!(
            plan_rollback(&failure(&failed.id), Some(&failed), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
        let older = DeploymentId::from_stored("dep-0".into());
        assert_eq!(
            plan_rollback(&failure(&older), Some(&failed), &history, WINDOW),
            RollbackPlan::Nothing(Why::NotCurrent(older))
        );
    }

    #[test]
    fn a_deploy_of_the_known_good_revision_is_not_rolled_back_onto_itself() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let mut same = dep(2, Kind::Deploy, Status::Deploying, None);
        same.task_definition = good.task_definition.clone();
        assert_eq!(
            plan_rollback(&fired(5), Some(&same), &[same.clone(), good], WINDOW),
            RollbackPlan::Nothing(Why::AlreadyOnTarget)
        );
    }

    #[test]
    fn an_alarm_from_before_the_deployment_started_is_not_its_fault() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let mut bad = dep(2, Kind::Deploy, Status::Deploying, None);
        bad.requested_at = at(10);
        let history = [bad.clone(), good];
        assert_eq!(
            plan_rollback(&fired(9), Some(&bad), &history, WINDOW),
            RollbackPlan::NotifyOnly(Why::AlarmBeforeDeployment { requested_at: at(10) })
        );
        bad.status = Status::Succeeded;
        bad.completed_at = Some(at(12));
        assert_eq!(
            plan_rollback(&fired(9), Some(&bad), &history, WINDOW),
            RollbackPlan::NotifyOnly(Why::AlarmBeforeDeployment { requested_at: at(10) })
        );
        assert!(matches!(
            plan_rollback(&fired(10), Some(&bad), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
        // A deployment ECS reported FAILED goes back whenever the alarm fired.
        bad.status = Status::Failed;
        assert!(matches!(
            plan_rollback(&fired(9), Some(&bad), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
    }

    #[test]
    fn a_deployment_in_flight_for_longer_than_any_rollout_is_not_blamed() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let stuck = dep(2, Kind::Deploy, Status::Deploying, None);
        let history = [stuck.clone(), good];
        let alarm_after = |minutes| Trigger::Alarm {
            alarm: AlarmName::parse("backend-dev-5xx").unwrap(),
            at: stuck.requested_at + TimeDelta::minutes(minutes),
        };
        let limit = (ROLLOUT_ALLOWANCE + WINDOW).num_minutes();
        assert!(matches!(
            plan_rollback(&alarm_after(limit), Some(&stuck), &history, WINDOW),
            RollbackPlan::Rollback { .. }
        ));
        assert_eq!(
            plan_rollback(&alarm_after(limit + 1), Some(&stuck), &history, WINDOW),
            RollbackPlan::NotifyOnly(Why::InFlightTooLong { since: at(0) })
        );
    }

    #[test]
    fn a_settled_rollback_is_not_in_charge_of_later_alarms() {
        let mut rollback = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm".into(),
            },
            Status::Succeeded,
            Some(4),
        );
        assert_eq!(
            plan_rollback(&fired(10), Some(&rollback), &[], WINDOW),
            RollbackPlan::Nothing(Why::RollbackInCharge(rollback.id.clone()))
        );
        assert_eq!(
            plan_rollback(&fired(30), Some(&rollback), &[], WINDOW),
            RollbackPlan::NotifyOnly(Why::OutsideWatchWindow { completed_at: at(4) })
        );
        rollback.status = Status::Deploying;
        rollback.completed_at = None;
        assert_eq!(
            plan_rollback(&fired(30), Some(&rollback), &[], WINDOW),
            RollbackPlan::Nothing(Why::RollbackInCharge(rollback.id.clone()))
        );
    }

    #[test]
    fn a_deployment_a_rollback_undid_is_never_known_good_even_if_it_completed() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        // ECS's COMPLETED raced the rollback and won the record.
        let undone = dep(2, Kind::Deploy, Status::Succeeded, Some(4));
        let rollback = dep(
            3,
            Kind::Rollback {
                of: undone.id.clone(),
                cause: "alarm".into(),
            },
            Status::Superseded,
            None,
        );
        let current = dep(4, Kind::Deploy, Status::Deploying, None);
        let RollbackPlan::Rollback { target, .. } = plan_rollback(
            &fired(20),
            Some(&current),
            &[current.clone(), rollback, undone, good],
            WINDOW,
        ) else {
            panic!("should roll back")
        };
        assert_eq!(
            (target.task_definition.as_str(), target.from.as_str()),
            ("td:1", "dep-1")
        );
    }

    #[test]
    fn before_the_first_deploy_means_the_first_that_reached_ecs() {
        let mut rejected = dep(1, Kind::Deploy, Status::Rejected, None);
        (rejected.previous_task_definition, rejected.task_definition) = (None, None);
        let first = dep(2, Kind::Deploy, Status::Succeeded, Some(3));
        let RollbackPlan::Rollback { target, .. } =
            plan_rollback(&fired(5), Some(&first), &[first.clone(), rejected], WINDOW)
        else {
            panic!("should roll back")
        };
        assert_eq!(
            (target.task_definition.as_str(), target.from.as_str()),
            ("td:1", "dep-2")
        );
    }

    #[test]
    fn notices_name_stage_service_and_revisions_in_an_ascii_subject_under_100_chars() {
        let mut rollback = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm backend-dev-5xx went into ALARM".into(),
            },
            Status::Deploying,
            None,
        );
        rollback.previous_task_definition =
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-service:7".into());
        rollback.task_definition = Some("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-service:5".into());
        let notice = rollback_notice(&rollback);
        assert_eq!(
            notice.subject,
            "Rolled back dev/backend-service: backend-service:7 -> backend-service:5"
        );
        assert!(notice.message.contains("Why: alarm backend-dev-5xx went into ALARM"));
        assert!(
            notice
                .message
                .contains("pipectl lift-quarantine dev backend-service sha256:0303")
        );

        let pipeline = pipeline();
        let why = Why::OutsideWatchWindow { completed_at: at(1) };
        let long = no_rollback_notice(&pipeline.stages()[0], &"ü".repeat(120), &fired(20), &why);
        assert!(long.subject.len() < 100 && long.subject.is_ascii(), "{}", long.subject);
        assert!(long.message.contains("Why not: the current deployment completed at"));
    }
}
