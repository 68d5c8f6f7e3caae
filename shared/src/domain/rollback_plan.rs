//! Whether a trigger (an alarm, or ECS reporting a deployment FAILED) rolls a service back,
//! and to what. Pure: the handler brings the trigger, the service's current deployment and its
//! history.

use super::deployment::{Deployment, DeploymentId, Kind, Status};
use super::names::AlarmName;
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;

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
    /// An operator asked for version `to` (`pipectl rollback`): `by` is their IAM identity,
    /// `at` AWS's time when they asked.
    Operator {
        by: String,
        to: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl Trigger {
    /// The business key of this very event, whichever delivery brings it: alarm + state
    /// timestamp, or the failed deployment.
    pub fn key(&self) -> String {
        match self {
            Trigger::Alarm { alarm, at } => format!("alarm|{alarm}|{}", at.timestamp_millis()),
            Trigger::Failed { deployment, .. } => format!("failed|{deployment}"),
            Trigger::Operator { to, at, .. } => format!("operator|{to}|{}", at.timestamp_millis()),
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
            Trigger::Operator { by, to, reason, .. } => write!(f, "operator {by} rolled back to {to}: {reason}"),
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
    NotifyOnly(NoRollback),
    /// Nothing to do (a duplicate, or a rollback already in charge).
    Nothing(NoRollback),
}

#[derive(Debug, PartialEq, Eq)]
pub enum NoRollback {
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

impl fmt::Display for NoRollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoRollback::NoDeployment => f.write_str("no deployment of this service is recorded"),
            NoRollback::OutsideWatchWindow { completed_at } => {
                write!(
                    f,
                    "the current deployment completed at {completed_at}, before the watch window"
                )
            }
            NoRollback::AlarmBeforeDeployment { requested_at } => write!(
                f,
                "the alarm fired before the current deployment started at {requested_at}"
            ),
            NoRollback::InFlightTooLong { since } => write!(
                f,
                "the current deployment has been in flight since {since}, longer than any rollout takes; ECS never reported its end"
            ),
            NoRollback::NoKnownGood => f.write_str("no known-good revision to roll back to"),
            NoRollback::RollbackInCharge(id) => write!(f, "the current deployment {id} is a rollback"),
            NoRollback::AlreadyRolledBack(id) => write!(f, "{id} is already rolled back"),
            NoRollback::NotLive(status) => write!(f, "the current deployment is {status}"),
            NoRollback::NotCurrent(id) => write!(f, "{id} is no longer the service's current deployment"),
            NoRollback::RollbackFailed(id) => write!(f, "the rollback {id} itself failed; nothing more is automatic"),
            NoRollback::AlreadyOnTarget => f.write_str("the service already runs its last known good revision"),
            NoRollback::TargetGone(td) => write!(
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
fn blame(current: &Deployment, trigger: &Trigger, watch_window: TimeDelta) -> Result<(), NoRollback> {
    let Trigger::Alarm { at: fired_at, .. } = trigger else {
        return Ok(());
    };
    let fired_at = *fired_at;
    match current.status {
        Status::Succeeded | Status::Deploying if fired_at < current.requested_at => {
            Err(NoRollback::AlarmBeforeDeployment {
                requested_at: current.requested_at,
            })
        }
        Status::Succeeded => match current.completed_at {
            Some(completed_at) if completed_at + watch_window < fired_at => {
                Err(NoRollback::OutsideWatchWindow { completed_at })
            }
            _ => Ok(()),
        },
        Status::Deploying if current.requested_at + ROLLOUT_ALLOWANCE + watch_window < fired_at => {
            Err(NoRollback::InFlightTooLong {
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

/// Whether `deploy` ran on its service: ECS completed it (it may have been rolled back or
/// overtaken since).
fn ran(deploy: &Deployment) -> bool {
    deploy.kind == Kind::Deploy
        && deploy.completed_at.is_some()
        && deploy.task_definition.is_some()
        && deploy.status != Status::Failed
}

/// The version `wanted` (a tag, a digest, or a deploy's id) as it last ran on the service, from
/// its `history` (newest first): what an operator's rollback to it points the service at.
/// `Err` lists the deploys that did run, newest first, when none of them is `wanted`.
pub fn version_target<'h>(
    history: &'h [Deployment],
    wanted: &str,
) -> Result<(RollbackTarget, &'h Deployment), Vec<&'h Deployment>> {
    let ran: Vec<&Deployment> = history.iter().filter(|d| ran(d)).collect();
    let found = ran
        .iter()
        .find(|d| d.id.as_str() == wanted || d.image.tag.as_str() == wanted || d.image.digest.as_str() == wanted);
    match found {
        Some(deploy) => Ok((
            RollbackTarget {
                task_definition: deploy
                    .task_definition
                    .clone()
                    .expect("a deploy that ran names its revision"),
                definition: deploy.definition.clone(),
                from: deploy.id.clone(),
            },
            deploy,
        )),
        None => Err(ran),
    }
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
        return RollbackPlan::NotifyOnly(NoRollback::NoDeployment);
    };
    if let Trigger::Failed { deployment, .. } = trigger
        && *deployment != current.id
    {
        return RollbackPlan::Nothing(NoRollback::NotCurrent(deployment.clone()));
    }
    if let Kind::Rollback { .. } = current.kind {
        return match (current.status, blame(current, trigger, watch_window)) {
            (Status::Failed, _) => RollbackPlan::NotifyOnly(NoRollback::RollbackFailed(current.id.clone())),
            // Long settled: a new alarm is news, but not the rollback's doing.
            (_, Err(why @ (NoRollback::OutsideWatchWindow { .. } | NoRollback::InFlightTooLong { .. }))) => {
                RollbackPlan::NotifyOnly(why)
            }
            _ => RollbackPlan::Nothing(NoRollback::RollbackInCharge(current.id.clone())),
        };
    }
    match current.status {
        Status::RolledBack => return RollbackPlan::Nothing(NoRollback::AlreadyRolledBack(current.id.clone())),
        Status::Deploying | Status::Failed | Status::Succeeded => {
            if let Err(why) = blame(current, trigger, watch_window) {
                return RollbackPlan::NotifyOnly(why);
            }
        }
        other => return RollbackPlan::Nothing(NoRollback::NotLive(other)),
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
            RollbackPlan::Nothing(NoRollback::AlreadyOnTarget)
        }
        Some(target) => RollbackPlan::Rollback {
            bad: current.id.clone(),
            target,
        },
        None => RollbackPlan::NotifyOnly(NoRollback::NoKnownGood),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{at, deployment as dep};

    const WINDOW: TimeDelta = TimeDelta::minutes(15);

    fn fired(minute: u32) -> Trigger {
        Trigger::Alarm {
            alarm: AlarmName::parse("backend-dev-5xx").unwrap(),
            at: at(minute),
        }
    }

    #[test]
    fn an_operator_names_a_version_by_tag_digest_or_id_and_only_one_that_ran_there() {
        let mut old = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        old.image.tag = crate::domain::names::ImageTag::parse("v1.75.0").unwrap();
        let rolled_back = dep(2, Kind::Deploy, Status::RolledBack, Some(4));
        let never_ran = dep(3, Kind::Deploy, Status::Failed, None);
        let rejected = dep(4, Kind::Deploy, Status::Rejected, None);
        let current = dep(5, Kind::Deploy, Status::Succeeded, Some(10));
        let history = [
            current.clone(),
            rejected.clone(),
            never_ran.clone(),
            rolled_back.clone(),
            old.clone(),
        ];
        for wanted in ["v1.75.0", old.image.digest.as_str(), old.id.as_str()] {
            let (target, deploy) = version_target(&history, wanted).unwrap();
            assert_eq!(deploy.id, old.id, "{wanted}");
            assert_eq!(target.task_definition, "td:1");
            assert_eq!(target.from, old.id);
        }
        assert_eq!(
            version_target(&history, rolled_back.id.as_str()).unwrap().1.id,
            rolled_back.id,
            "a version that ran and was rolled back since may be asked for again"
        );
        for refused in [never_ran.id.as_str(), rejected.id.as_str(), "v9.9.9"] {
            let ran: Vec<&DeploymentId> = version_target(&history, refused)
                .unwrap_err()
                .iter()
                .map(|d| &d.id)
                .collect();
            assert_eq!(ran, [&current.id, &rolled_back.id, &old.id], "{refused}");
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
            RollbackPlan::NotifyOnly(NoRollback::OutsideWatchWindow { completed_at: at(4) })
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
            RollbackPlan::NotifyOnly(NoRollback::NoKnownGood)
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
            RollbackPlan::Nothing(NoRollback::RollbackInCharge(rollback.id.clone()))
        );
        let done = dep(2, Kind::Deploy, Status::RolledBack, Some(1));
        assert_eq!(
            plan_rollback(&fired(5), Some(&done), &[], WINDOW),
            RollbackPlan::Nothing(NoRollback::AlreadyRolledBack(done.id.clone()))
        );
        assert_eq!(
            plan_rollback(&fired(5), None, &[], WINDOW),
            RollbackPlan::NotifyOnly(NoRollback::NoDeployment)
        );
        let mut failed_rollback = rollback.clone();
        failed_rollback.status = Status::Failed;
        assert_eq!(
            plan_rollback(&fired(5), Some(&failed_rollback), &[], WINDOW),
            RollbackPlan::NotifyOnly(NoRollback::RollbackFailed(rollback.id.clone()))
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
            RollbackPlan::Nothing(NoRollback::NotCurrent(older))
        );
    }

    #[test]
    fn a_deploy_of_the_known_good_revision_is_not_rolled_back_onto_itself() {
        let good = dep(1, Kind::Deploy, Status::Succeeded, Some(2));
        let mut same = dep(2, Kind::Deploy, Status::Deploying, None);
        same.task_definition = good.task_definition.clone();
        assert_eq!(
            plan_rollback(&fired(5), Some(&same), &[same.clone(), good], WINDOW),
            RollbackPlan::Nothing(NoRollback::AlreadyOnTarget)
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
            RollbackPlan::NotifyOnly(NoRollback::AlarmBeforeDeployment { requested_at: at(10) })
        );
        bad.status = Status::Succeeded;
        bad.completed_at = Some(at(12));
        assert_eq!(
            plan_rollback(&fired(9), Some(&bad), &history, WINDOW),
            RollbackPlan::NotifyOnly(NoRollback::AlarmBeforeDeployment { requested_at: at(10) })
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
            RollbackPlan::NotifyOnly(NoRollback::InFlightTooLong { since: at(0) })
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
            RollbackPlan::Nothing(NoRollback::RollbackInCharge(rollback.id.clone()))
        );
        assert_eq!(
            plan_rollback(&fired(30), Some(&rollback), &[], WINDOW),
            RollbackPlan::NotifyOnly(NoRollback::OutsideWatchWindow { completed_at: at(4) })
        );
        rollback.status = Status::Deploying;
        rollback.completed_at = None;
        assert_eq!(
            plan_rollback(&fired(30), Some(&rollback), &[], WINDOW),
            RollbackPlan::Nothing(NoRollback::RollbackInCharge(rollback.id.clone()))
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
}
