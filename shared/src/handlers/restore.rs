//! Restoring one service to its last known good: what rollback-on-alarm does for each
//! service of the application an alarm guards, and track-deployment for a deployment ECS
//! reports FAILED.
//!
//! Under the service's lock: read the current deployment and enough history, ask
//! `plan_rollback`, then create the rollback record (its id comes from the bad deployment, so
//! every duplicate and every second alarm lands on it), point the service at the target,
//! mark the bad deployment ROLLED_BACK, quarantine its digest, keep the notice in the outbox,
//! and move the service's pointer to the rollback in the write that releases the lock. The
//! notice is published after the lock is released: a failed publish fails the invocation
//! (so Lambda retries it) but never holds up the records. Each step is safe to repeat, and a
//! retry after any of them finishes the rest.

use super::{point_service_at, record_deploying};
use crate::domain::approval::{ApprovalId, RollbackStanding, rollback_standing};
use crate::domain::deployment::{Deployment, DeploymentId, Kind, ServiceState, ServiceStateField, Status};
use crate::domain::names::{ClusterName, ServiceName};
use crate::domain::notice::{Notice, no_rollback_notice, rollback_notice};
use crate::domain::pipeline::{Pipeline, ServiceSpec, Stage};
use crate::domain::rollback_plan::{NoRollback, RollbackPlan, RollbackTarget, Trigger, known_good, plan_rollback};
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, with_service_lock};
use crate::ports::{Deployments, Ecs, EcsError, Notifier, Outbox, Quarantine, ServiceLocks, StateMove, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// History is read a page at a time until a known-good deployment shows up.
const HISTORY_PAGE: i32 = 25;

#[derive(Clone)]
pub struct Restorer<S, E, N> {
    pub records: S,
    pub ecs: E,
    pub notifier: N,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RestoreOutcome {
    RolledBack {
        rollback_id: String,
        rolled_back: String,
        from: String,
        to: String,
        ecs_deployment_id: String,
    },
    /// Nothing changed; people were told why.
    Notified { reason: String },
    /// Not rolled back: the service moved on from the deployment the rollback was asked from.
    MovedOn { reason: String },
    /// Nothing to do or to say (a duplicate, or a rollback already in charge).
    Nothing { reason: String },
}

/// What the work under the lock decided, and the outbox key of the notice to deliver once the
/// lock is released, if any.
#[derive(Debug)]
struct Decided {
    outcome: RestoreOutcome,
    notice: Option<String>,
}

impl Decided {
    fn silent(outcome: RestoreOutcome) -> Self {
        Decided { outcome, notice: None }
    }
}

impl<S, E, N> Restorer<S, E, N>
where
    S: ServiceLocks + Deployments + Quarantine + Outbox,
    E: Ecs,
    N: Notifier,
{
    /// Restores `service` if `trigger` blames its current deployment. Without `may_start` (an
    /// event delivered too late to act on) only what an earlier delivery started is finished:
    /// a rollback under way, a notice kept but not sent.
    pub async fn restore(
        &self,
        pipeline: &Pipeline,
        stage: &Stage,
        service: &ServiceSpec,
        trigger: &Trigger,
        may_start: bool,
        deadline: DateTime<Utc>,
    ) -> Result<RestoreOutcome, ServiceError> {
        let Decided { outcome, notice } = with_service_lock(
            &self.records,
            &stage.cluster,
            &service.name,
            deadline,
            |state| async move {
                let current = self.current(&state).await?;
                let history = self.history_until_known_good(stage, service, current.as_ref()).await?;
                match plan_rollback(trigger, current.as_ref(), &history, stage.watch_window) {
                    RollbackPlan::Rollback { target, .. } => {
                        let bad = current.expect("only the current deployment is rolled back");
                        let started = DeploymentId::for_rollback(&bad.id);
                        if !may_start && self.records.get_deployment(&started).await?.is_none() {
                            let reason = format!("{trigger}: too late to start a rollback of {}", bad.id);
                            return Ok(LockedWork::only(Decided::silent(RestoreOutcome::Nothing { reason })));
                        }
                        self.roll_back(pipeline, stage, service, trigger, bad, target, deadline)
                            .await
                    }
                    // Too late to tell anything new; a notice an earlier delivery kept still goes.
                    RollbackPlan::NotifyOnly(why) if !may_start => Ok(LockedWork::only(Decided {
                        outcome: RestoreOutcome::Nothing {
                            reason: why.to_string(),
                        },
                        notice: Some(notify_only_key(trigger, stage, service)),
                    })),
                    RollbackPlan::NotifyOnly(why) => self.notify_only(stage, service, trigger, why).await,
                    RollbackPlan::Nothing(why) => self.nothing_to_do(pipeline, why, current).await,
                }
            },
        )
        .await?;
        tracing::info!(stage = %stage.name, service = %service.name, %trigger, ?outcome, "rollback decided");
        if let Some(key) = notice {
            self.deliver(&key).await?;
        }
        Ok(outcome)
    }

    /// Rolls `service` back to `target`, a version that ran there, at an operator's request
    /// (`trigger` says who, when and why): from whatever it runs now, through the same lock,
    /// record, quarantine and notice as an automatic rollback. A service that already runs
    /// `image` (the version's) is left alone, so a retry changes nothing. With `asked`, only
    /// while the service's current deployment is still the one the request was asked from
    /// (what approvers saw), or that request's rollback of it.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore_to(
        &self,
        pipeline: &Pipeline,
        stage: &Stage,
        service: &ServiceSpec,
        trigger: &Trigger,
        (target, image): (RollbackTarget, &str),
        asked: Option<(&DeploymentId, &ApprovalId)>,
        deadline: DateTime<Utc>,
    ) -> Result<RestoreOutcome, ServiceError> {
        let Decided { outcome, notice } = with_service_lock(
            &self.records,
            &stage.cluster,
            &service.name,
            deadline,
            |state| async move {
                let current = self.current(&state).await?;
                let Some(current) = current else {
                    let reason = NoRollback::NoDeployment.to_string();
                    return Ok(LockedWork::only(Decided::silent(RestoreOutcome::Nothing { reason })));
                };
                match rollback_standing(&current, image, asked) {
                    RollbackStanding::Done(reason) => {
                        // Done before (a retry): its notice goes if it has not.
                        let notice = matches!(current.kind, Kind::Rollback { .. }).then(|| current.id.to_string());
                        return Ok(LockedWork::only(Decided {
                            outcome: RestoreOutcome::Nothing { reason },
                            notice,
                        }));
                    }
                    RollbackStanding::MovedOn(why) => {
                        let reason = format!("{why}: not rolled back");
                        return Ok(LockedWork::only(Decided::silent(RestoreOutcome::MovedOn { reason })));
                    }
                    RollbackStanding::Applies => {}
                }
                self.roll_back(pipeline, stage, service, trigger, current, target, deadline)
                    .await
            },
        )
        .await?;
        tracing::info!(stage = %stage.name, service = %service.name, %trigger, ?outcome, "operator rollback");
        if let Some(key) = notice {
            self.deliver(&key).await?;
        }
        Ok(outcome)
    }

    /// The service's current deployment, read under its lock (a look, nothing written).
    pub async fn current_deployment(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        deadline: DateTime<Utc>,
    ) -> Result<Option<Deployment>, ServiceError> {
        with_service_lock(&self.records, cluster, service, deadline, |state| async move {
            Ok(LockedWork::only(self.current(&state).await?))
        })
        .await
    }

    /// The deployment the service state names as the service's latest.
    async fn current(&self, state: &ServiceState) -> Result<Option<Deployment>, StoreError> {
        match &state.latest {
            Some(latest) => self.records.get_deployment(&latest.id).await,
            None => Ok(None),
        }
    }

    /// Nothing to decide; but an earlier attempt at this rollback may have died between its
    /// steps (marking, quarantine, the notice): finish them, all idempotent. The pointer moves
    /// only while the rolled-back deployment is still the service's current one.
    async fn nothing_to_do(
        &self,
        pipeline: &Pipeline,
        why: NoRollback,
        current: Option<Deployment>,
    ) -> Result<LockedWork<Decided>, ServiceError> {
        let outcome = RestoreOutcome::Nothing {
            reason: why.to_string(),
        };
        let bad = match (&why, &current) {
            (NoRollback::AlreadyRolledBack(id) | NoRollback::NotCurrent(id), _) => id.clone(),
            (
                NoRollback::RollbackInCharge(_),
                Some(Deployment {
                    kind: Kind::Rollback { of, .. },
                    ..
                }),
            ) => of.clone(),
            _ => return Ok(LockedWork::only(Decided::silent(outcome))),
        };
        let rollback = self.records.get_deployment(&DeploymentId::for_rollback(&bad)).await?;
        let (Some(rollback), Some(bad)) = (
            rollback.filter(|r| r.status != Status::Requested),
            self.records.get_deployment(&bad).await?,
        ) else {
            return Ok(LockedWork::only(Decided::silent(outcome)));
        };
        let moves = self.complete_rollback(pipeline, &bad, &rollback).await?;
        let still_current = matches!(why, NoRollback::AlreadyRolledBack(_));
        Ok(LockedWork {
            outcome: Decided {
                outcome,
                notice: Some(rollback.id.to_string()),
            },
            moves: still_current.then_some(moves),
        })
    }

    /// The service's history, newest first, as far back as the newest known good (or all of it).
    async fn history_until_known_good(
        &self,
        stage: &Stage,
        service: &ServiceSpec,
        current: Option<&Deployment>,
    ) -> Result<Vec<Deployment>, StoreError> {
        let Some(current) = current else {
            return Ok(Vec::new());
        };
        let mut history = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .records
                .history(&stage.cluster, &service.name, HISTORY_PAGE, after.as_deref())
                .await?;
            history.extend(page.deployments);
            // A rollback is newer than what it undid, so it is read first.
            let found = known_good(&history, &current.id).is_some();
            match page.next {
                Some(next) if !found => after = Some(next),
                _ => return Ok(history),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn roll_back(
        &self,
        pipeline: &Pipeline,
        stage: &Stage,
        service: &ServiceSpec,
        trigger: &Trigger,
        bad: Deployment,
        target: RollbackTarget,
        deadline: DateTime<Utc>,
    ) -> Result<LockedWork<Decided>, ServiceError> {
        let id = DeploymentId::for_rollback(&bad.id);
        let rollback = match self.records.get_deployment(&id).await? {
            // Started by an earlier delivery that died before it finished.
            Some(rollback) if rollback.status != Status::Requested => rollback,
            earlier => {
                let resuming = earlier.is_some();
                let mut record = match earlier {
                    Some(requested) => requested,
                    None => {
                        let target = self.with_stored_definition(target.clone()).await?;
                        let record = rollback_record(&bad, id, trigger, &target, pipeline.version());
                        if !self.records.create_deployment(&record).await? {
                            return Err(
                                StoreError::retryable(format!("rollback {} was created meanwhile", record.id)).into(),
                            );
                        }
                        record
                    }
                };
                let task_definition = match self.target_revision(&mut record, &target, resuming).await {
                    Ok(Some(arn)) => arn,
                    Ok(None) => {
                        self.records.delete_requested(&record.id).await?;
                        let why = NoRollback::TargetGone(target.task_definition);
                        return self.notify_only(stage, service, trigger, why).await;
                    }
                    // A transient failure may hide a registration that went through: the
                    // REQUESTED record stays, and the retry adopts it by its tag.
                    Err(err @ ServiceError::Ecs(EcsError::Transient(_))) => return Err(err),
                    Err(err) => {
                        // ECS refused: it was not asked to move the service, and no record
                        // may say otherwise.
                        if let Err(store) = self.records.delete_requested(&record.id).await {
                            tracing::error!(rollback = %record.id, error = %store, "REQUESTED rollback left; a retry resumes it");
                        }
                        return Err(err);
                    }
                };
                // From here ECS may have moved the service even if the call failed: the
                // REQUESTED record stays for a retry to resume and adopt what ECS did.
                self.point_back(record, &task_definition, deadline).await?
            }
        };
        let moves = self.complete_rollback(pipeline, &bad, &rollback).await?;
        Ok(LockedWork {
            outcome: Decided {
                outcome: RestoreOutcome::RolledBack {
                    rollback_id: rollback.id.to_string(),
                    rolled_back: bad.id.to_string(),
                    from: rollback.previous_task_definition.clone().unwrap_or_default(),
                    to: rollback.task_definition.clone().unwrap_or_default(),
                    ecs_deployment_id: rollback.ecs_deployment_id.clone().unwrap_or_default(),
                },
                notice: Some(rollback.id.to_string()),
            },
            moves: Some(moves),
        })
    }

    /// History rows carry no stored definitions: the target's comes from its full record.
    async fn with_stored_definition(&self, mut target: RollbackTarget) -> Result<RollbackTarget, StoreError> {
        if target.definition.is_some() {
            return Ok(target);
        }
        if let Some(from) = self.records.get_deployment(&target.from).await? {
            target.definition = if from.task_definition.as_ref() == Some(&target.task_definition) {
                from.definition
            } else {
                from.previous_definition
            };
        }
        Ok(target)
    }

    /// The revision to point the service at: the one an earlier attempt registered, the target
    /// if ECS still has it, or the target registered again from its stored definition (tagged
    /// with the rollback's id, so a resumed attempt adopts a registration whose answer was
    /// lost). `None` when it is gone and was never stored: there is nothing to roll back to.
    async fn target_revision(
        &self,
        record: &mut Deployment,
        target: &RollbackTarget,
        resuming: bool,
    ) -> Result<Option<String>, ServiceError> {
        if let Some(registered) = &record.task_definition {
            return Ok(Some(registered.clone()));
        }
        let arn = if self.ecs.is_active(&target.task_definition).await? {
            target.task_definition.clone()
        } else if let Some(definition) = &record.definition {
            let arn = self.ecs.register_stored(definition, &record.id, resuming).await?;
            tracing::info!(gone = %target.task_definition, registered = %arn, "re-registered the last known good");
            arn
        } else {
            return Ok(None);
        };
        record.task_definition = Some(arn.clone());
        if !self.records.record_registration(record).await? {
            return Err(StoreError::retryable(format!("{} is no longer REQUESTED", record.id)).into());
        }
        Ok(Some(arn))
    }

    /// Points the service at `task_definition` (adopting a deployment ECS already runs there)
    /// and records the rollback DEPLOYING.
    async fn point_back(
        &self,
        record: Deployment,
        task_definition: &str,
        deadline: DateTime<Utc>,
    ) -> Result<Deployment, ServiceError> {
        let running = self.ecs.running_service(&record.cluster, &record.service).await?;
        let ecs_deployment_id = point_service_at(
            &self.ecs,
            &record.cluster,
            &record.service,
            &running,
            task_definition,
            deadline,
        )
        .await?;
        record_deploying(&self.records, record, ecs_deployment_id, Utc::now()).await
    }

    /// What follows a rollback that ECS accepted; each step is idempotent. Returns the pointer
    /// move that makes the rollback the service's current deployment.
    async fn complete_rollback(
        &self,
        pipeline: &Pipeline,
        bad: &Deployment,
        rollback: &Deployment,
    ) -> Result<StateMove, ServiceError> {
        self.mark_rolled_back(pipeline, bad.clone()).await?;
        self.records
            .quarantine(&bad.cluster, &bad.service, &bad.image.digest)
            .await?;
        self.keep_notice(rollback.id.as_str(), &rollback_notice(rollback))
            .await?;
        Ok(StateMove {
            field: ServiceStateField::Latest,
            to: rollback.reference(),
        })
    }

    /// ECS's COMPLETED or FAILED for the bad deployment may land between our read and this
    /// write (track-deployment records it without the lock): then mark what it recorded.
    async fn mark_rolled_back(&self, pipeline: &Pipeline, mut bad: Deployment) -> Result<(), ServiceError> {
        for _ in 0..3 {
            let Ok(rolled_back) = bad.transition(Status::RolledBack, Utc::now()) else {
                return Ok(());
            };
            if self.records.save_transition(&rolled_back, bad.status).await? {
                super::emit_deployment_metrics(pipeline, &rolled_back, &crate::domain::metrics::rolled_back());
                return Ok(());
            }
            match self.records.get_deployment(&bad.id).await? {
                Some(fresh) => bad = fresh,
                None => return Ok(()),
            }
        }
        Err(StoreError::retryable(format!("{} kept changing while it was marked ROLLED_BACK", bad.id)).into())
    }

    async fn notify_only(
        &self,
        stage: &Stage,
        service: &ServiceSpec,
        trigger: &Trigger,
        why: NoRollback,
    ) -> Result<LockedWork<Decided>, ServiceError> {
        let notice = no_rollback_notice((&stage.name, &stage.cluster), service.name.as_str(), trigger, &why);
        let key = self
            .keep_notice(&notify_only_key(trigger, stage, service), &notice)
            .await?;
        Ok(LockedWork::only(Decided {
            outcome: RestoreOutcome::Notified {
                reason: why.to_string(),
            },
            notice: Some(key),
        }))
    }

    /// Keeps the notice in the outbox (once per key); returns the key to deliver.
    async fn keep_notice(&self, key: &str, notice: &Notice) -> Result<String, StoreError> {
        super::keep_notice(&self.records, key.to_owned(), notice).await
    }

    /// Publishes the outbox entry unless it went out before. Marked after publishing: a crash
    /// in between sends it twice rather than never.
    async fn deliver(&self, key: &str) -> Result<(), ServiceError> {
        super::deliver_notice(&self.records, &self.notifier, key).await
    }
}

/// The outbox key of a notice that `trigger` changed nothing on `service`: one per event and
/// service, whichever delivery brings it.
fn notify_only_key(trigger: &Trigger, stage: &Stage, service: &ServiceSpec) -> String {
    format!("{}|{}|{}", trigger.key(), stage.cluster, service.name)
}

/// A REQUESTED rollback of `bad`. It carries `bad`'s image (the push it answers, which keeps
/// the service's push order and names the digest to quarantine) and the target's definition.
fn rollback_record(
    bad: &Deployment,
    id: DeploymentId,
    trigger: &Trigger,
    target: &RollbackTarget,
    pipeline_version: &str,
) -> Deployment {
    // An operator's request is dated by AWS's clock when they asked, not their machine's.
    let now = match trigger {
        Trigger::Operator { at, .. } => *at,
        _ => Utc::now(),
    };
    Deployment {
        id,
        kind: Kind::Rollback {
            of: bad.id.clone(),
            cause: trigger.to_string(),
        },
        status: Status::Requested,
        stage: bad.stage.clone(),
        cluster: bad.cluster.clone(),
        service: bad.service.clone(),
        container: bad.container.clone(),
        image: bad.image.clone(),
        requested_at: now,
        updated_at: now,
        previous_task_definition: bad.task_definition.clone(),
        task_definition: None,
        ecs_deployment_id: None,
        superseded_by: None,
        definition: target.definition.clone(),
        previous_definition: bad.definition.clone(),
        completed_at: None,
        ecs_reason: None,
        pipeline_version: Some(pipeline_version.to_owned()),
        emergency: None,
    }
}
