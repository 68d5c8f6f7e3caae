//! promote: what follows an approval. For one request at a time it does the next step
//! `domain::promotion` names: take the pre-deployment snapshots, check on them, give up, expire,
//! or deploy the request's services through the same pinned deploy as automatic stages, one
//! service under its lock. Every write to the request is conditional on the version read; a
//! lost race reads again.

use super::restore::{RestoreOutcome, Restorer};
use super::{deliver_notice, deploy_pinned, keep_notice};
use crate::domain::approval::{
    ApprovalId, ApprovalRequest, ApprovalStatus, ReleaseService, RollbackOrder, Verdict, rollback_applies,
};
use crate::domain::deployment::{
    Decision, Deployment, DeploymentId, Kind, Mode, PointedRecords, ServiceStateField, Status, decide,
};
use crate::domain::names::{Approver, ServiceName};
use crate::domain::notice::{promotion_notice, utc};
use crate::domain::pipeline::Pipeline;
use crate::domain::pipeline::{ServiceSpec, Stage};
use crate::domain::promotion::{PlannedSnapshot, Promotion, SnapshotId, SnapshotState, Step, next_step};
use crate::domain::retention::{APPROVAL_TAG, CREATED_BY, KIND_TAG, POLICY_TAG, SnapshotKind};
use crate::domain::rollback_plan::{RollbackTarget, Trigger as RollbackTrigger};
use crate::domain::schedule::{DeploySchedule, Held};
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, with_service_lock};
use crate::ports::{
    Approvals, Change, Deployments, Ecs, Notifier, NotifyError, Outbox, Quarantine, ServiceLocks, SnapshotError,
    Snapshots, StateMove, StoreError, update_approval,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub struct Promote<S, E, R, N> {
    pub pipeline: Pipeline,
    pub records: S,
    pub ecs: E,
    pub rds: R,
    pub notifier: N,
}

/// Whether `record` is what the request says it is: a deploy of the release's digest to the
/// request's stage, cluster and service.
fn is_release_record(request: &ApprovalRequest, service: &ReleaseService, record: &Deployment) -> bool {
    record.kind == Kind::Deploy
        && record.stage == request.stage
        && record.cluster == request.cluster
        && record.service == service.service
        && record.image.digest == request.image.digest
}

/// What one look at a request did.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "did", rename_all = "snake_case")]
pub enum Advanced {
    Nothing {
        reason: String,
    },
    Waiting {
        until: String,
    },
    Snapshotting {
        snapshots: usize,
    },
    Closed {
        status: ApprovalStatus,
    },
    Failed {
        why: String,
    },
    Deployed {
        services: Vec<String>,
    },
    /// A sweep's step that failed (logged; the next sweep tries again).
    Unfinished {
        error: String,
    },
}

/// The sweep's metrics (namespace `EcsDeployHandlers`, dimension `FunctionName`): requests
/// whose step failed, and those of them whose deploy is overdue by more than `STUCK_AFTER`.
pub const STEPS_FAILED: &str = "PromotionStepsFailed";
pub const STUCK: &str = "PromotionsStuck";
const STUCK_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// How often a held request's `held_seen_at` is written while the hold lasts.
const HOLD_MARKED_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How many rounds one call takes at most: each written step is followed by the next at once
/// (begin, check the snapshots, start the deploy, deploy), and a step that lost a race to
/// another write is taken again on what it wrote.
const ROUNDS: usize = 10;

impl<S, E, R, N> Promote<S, E, R, N>
where
    S: ServiceLocks + Deployments + Approvals + Quarantine + Outbox + Clone,
    E: Ecs + Clone,
    R: Snapshots,
    N: Notifier + Clone,
{
    /// The Lambda entry point: a stream batch advances each changed request (failed ones are
    /// handed back as batch item failures); a schedule tick or an RDS snapshot event sweeps.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, PromoteError> {
        let deadline = crate::lambda::service_lock::deadline_of(&event.context);
        let now = Utc::now();
        match trigger_of(&event.payload).map_err(PromoteError::BadEvent)? {
            Trigger::Changed(changed) => {
                let mut response = BatchResponse::default();
                for (sequence, id) in changed {
                    match self.advance(&id, now, deadline).await {
                        Ok(advanced) => tracing::info!(approval = %id, ?advanced, "promotion step"),
                        Err(err) => {
                            tracing::error!(approval = %id, error = %err, "promotion step failed");
                            response.batch_item_failures.push(ItemFailure {
                                item_identifier: sequence,
                            });
                        }
                    }
                }
                Ok(serde_json::to_value(response).expect("a batch response serializes"))
            }
            Trigger::Sweep => {
                let swept = self.sweep(now, deadline).await.map_err(PromoteError::Sweep)?;
                let swept: Vec<_> = swept
                    .into_iter()
                    .map(|(id, advanced)| serde_json::json!({"approval_id": id, "advanced": advanced}))
                    .collect();
                Ok(serde_json::json!({ "swept": swept }))
            }
        }
    }

    /// The one-minute sweep: every request in flight taken as far as it can go at `now` (its
    /// timers, its snapshots, whose RDS events are best effort, its expiry, its closing). A
    /// request whose step fails is reported as unfinished and tried again by the next sweep;
    /// only a sweep that cannot read the requests in flight fails.
    pub async fn sweep(
        &self,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Vec<(String, Advanced)>, ServiceError> {
        let mut done = Vec::new();
        let (mut failed, mut stuck) = (0, 0);
        let in_flight = self.records.in_flight_approvals().await?;
        let waiting = in_flight.len() as u64;
        for id in in_flight {
            let advanced = match self.advance(&id, now, deadline).await {
                Ok(advanced) => advanced,
                Err(err) => {
                    tracing::error!(approval = %id, error = %err, error_type = err.error_type(), "promotion step failed");
                    failed += 1;
                    if self.is_stuck(&id, now).await {
                        stuck += 1;
                    }
                    Advanced::Unfinished { error: err.to_string() }
                }
            };
            done.push((id.to_string(), advanced));
        }
        for (id, advanced) in self.release_held(now, deadline).await? {
            match &advanced {
                Advanced::Unfinished { error } => {
                    tracing::error!(deployment = %id, %error, "held deploy not released; the next sweep tries again");
                    failed += 1;
                }
                Advanced::Failed { why } => {
                    tracing::error!(deployment = %id, %why, "held deploy refused by ECS: FAILED");
                    failed += 1;
                }
                _ => {}
            }
            done.push((id.to_string(), advanced));
        }
        // Every sweep reports, zeros included: the template alarms on these.
        crate::lambda::metrics::publish(
            &[
                (STEPS_FAILED, failed),
                (STUCK, stuck),
                (crate::domain::metrics::APPROVALS_WAITING, waiting),
            ],
            now,
        );
        Ok(done)
    }

    /// Pushes to automatic stages HELD by a deploy window or a freeze: where it is open at `now`,
    /// each service deploys its newest held push (decided as a push is, on the service's state
    /// then), and the older ones are superseded. A stage gone from the file cancels them.
    pub async fn release_held(
        &self,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Vec<(DeploymentId, Advanced)>, ServiceError> {
        let mut held = crate::ports::held_records(&self.records).await?;
        // Newest first: it deploys, and every older push of the service then finds it ahead.
        held.sort_by_key(|record| std::cmp::Reverse(record.image.pushed_at));
        let mut done = Vec::new();
        for record in held {
            let stage = self
                .pipeline
                .stages()
                .iter()
                .find(|s| s.name == record.stage && s.cluster == record.cluster && s.approval.is_none());
            let advanced = match stage.map(|s| s.schedule.held(now)) {
                None => {
                    let cancelled = record
                        .transition(Status::Cancelled, now)
                        .expect("a HELD record can be cancelled");
                    self.records.save_transition(&cancelled, Status::Held).await?;
                    Advanced::Nothing {
                        reason: format!(
                            "cancelled: stage {} no longer takes automatic deploys to {} in the pipeline file",
                            record.stage, record.cluster
                        ),
                    }
                }
                // One registered already (an earlier release died midway, ECS may be rolling it
                // out) is resumed whatever the window: a deploy begun is never held.
                Some(Some(held)) if record.task_definition.is_none() => Advanced::Waiting {
                    until: held.until.to_rfc3339(),
                },
                Some(_) => match self.release(&record.id, now, deadline).await {
                    Ok(advanced) => advanced,
                    Err(err) => Advanced::Unfinished { error: err.to_string() },
                },
            };
            done.push((record.id, advanced));
        }
        Ok(done)
    }

    /// Deploys held record `id` under its service's lock, or supersedes it if the service's
    /// state says the push is no longer to deploy (a newer image ahead, quarantined, deployed).
    async fn release(
        &self,
        id: &DeploymentId,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Advanced, ServiceError> {
        let Some(record) = self.records.get_deployment(id).await? else {
            return Ok(Advanced::Nothing {
                reason: format!("no deployment {id}"),
            });
        };
        let (cluster, service) = (&record.cluster, &record.service);
        with_service_lock(&self.records, cluster, service, deadline, |state| async move {
            let Some(mut record) = self
                .records
                .get_deployment(id)
                .await?
                .filter(|r| r.status == Status::Held)
            else {
                return Ok(LockedWork::only(Advanced::Nothing {
                    reason: format!("{id} is no longer held"),
                }));
            };
            // Pushed before the service's latest rollback: only a push after it deploys (the
            // rollback froze the service for what came before).
            if let Some(latest) = state.latest.as_ref().filter(|latest| latest.digest.is_none())
                && let Some(rollback) = self.records.get_deployment(&latest.id).await?
                && rollback.requested_at > record.requested_at
            {
                let mut superseded = record
                    .transition(Status::Superseded, now)
                    .expect("a HELD record can be superseded");
                superseded.superseded_by = Some(rollback.id.clone());
                self.records.save_transition(&superseded, Status::Held).await?;
                return Ok(LockedWork::only(Advanced::Nothing {
                    reason: format!("pushed before the rollback {}: not deployed", rollback.id),
                }));
            }
            let latest_failed = match &state.latest {
                Some(latest) if latest.digest.as_ref() == Some(&record.image.digest) => self
                    .records
                    .get_deployment(&latest.id)
                    .await?
                    .is_some_and(|d| d.status == Status::Failed),
                _ => false,
            };
            let pointed = PointedRecords {
                latest_failed,
                request_closed: false,
            };
            let supersedes = match decide(Mode::Automatic, &record.image, &state, pointed) {
                Decision::Skip(reason) => {
                    let mut superseded = record
                        .transition(Status::Superseded, now)
                        .expect("a HELD record can be superseded");
                    superseded.superseded_by = state.latest.as_ref().map(|latest| latest.id.clone());
                    self.records.save_transition(&superseded, Status::Held).await?;
                    return Ok(LockedWork::only(Advanced::Nothing {
                        reason: reason.to_string(),
                    }));
                }
                Decision::Proceed { supersedes } => supersedes,
            };
            let running = self.ecs.running_service(cluster, service).await?;
            if record.task_definition.is_none() {
                record.previous_task_definition = Some(running.task_definition.clone());
            }
            let resuming = record.task_definition.is_some();
            let deployed =
                match deploy_pinned(&self.records, &self.ecs, record.clone(), &running, resuming, deadline).await {
                    Ok(deployed) => deployed,
                    // ECS refused (the registration or the update): no later sweep would do
                    // better. The record says FAILED and the team is told.
                    Err(err @ ServiceError::Ecs(_)) if err.is_permanent() => {
                        let mut failed = record
                            .transition(Status::Failed, Utc::now())
                            .expect("a HELD record can fail");
                        failed.ecs_reason = Some(err.to_string());
                        // Told first: until the notice is out the record stays HELD, and the
                        // next sweep tries again (the outbox sends it once).
                        let key = keep_notice(
                            &self.records,
                            format!("held-failed|{}", failed.id),
                            &crate::domain::notice::deployment_ended_notice(&failed),
                        )
                        .await?;
                        deliver_notice(&self.records, &self.notifier, &key).await?;
                        self.records.save_transition(&failed, Status::Held).await?;
                        return Ok(LockedWork::only(Advanced::Failed { why: err.to_string() }));
                    }
                    Err(err) => return Err(err),
                };
            // The deploy it overtakes, if still in flight, says so (as a newer push's would).
            if let Some(older) = supersedes
                && let Some(old) = self.records.get_deployment(&older.id).await?
                && let Ok(mut superseded) = old.transition(Status::Superseded, Utc::now())
            {
                superseded.superseded_by = Some(deployed.id.clone());
                self.records.save_transition(&superseded, old.status).await?;
            }
            Ok(LockedWork {
                outcome: Advanced::Deployed {
                    services: vec![service.to_string()],
                },
                moves: Some(StateMove {
                    field: ServiceStateField::Latest,
                    to: deployed.reference(),
                }),
            })
        })
        .await
    }

    /// Whether request `id` (whose step just failed) is an approved release whose deploy was due
    /// more than `STUCK_AFTER` ago; unreadable counts as stuck.
    async fn is_stuck(&self, id: &ApprovalId, now: DateTime<Utc>) -> bool {
        match self.records.get_approval(id).await {
            // A hold (its last mark) pushes the due time on.
            Ok(Some(request)) => request
                .deploy_not_before()
                .is_some_and(|due| now - due.max(request.held_seen_at.unwrap_or(due)) > STUCK_AFTER),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Takes request `id` as far as it can go at `now`: each round reads it, does the step
    /// `next_step` names, and writes what changed (conditional on the version read) before the
    /// next round, until a step leaves nothing to write (a wait, a deploy, a close).
    pub async fn advance(
        &self,
        id: &ApprovalId,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Advanced, ServiceError> {
        // A notice that cannot go out now waits in the outbox and never holds up a step: it is
        // tried again by the next call, and must be out before the request leaves the sweep.
        let mut notices_held = false;
        for _ in 0..ROUNDS {
            let request = match self.records.get_approval(id).await {
                Ok(Some(request)) => request,
                Ok(None) => {
                    return Ok(Advanced::Nothing {
                        reason: format!("no approval request {id}"),
                    });
                }
                // Not a request (a row under APR#apr- the page's role made up): never retried.
                Err(err) if !err.retryable => {
                    tracing::error!(approval = %id, error = %err, "not an approval request: skipped");
                    return Ok(Advanced::Nothing {
                        reason: format!("{id} is not a readable approval request"),
                    });
                }
                Err(err) => return Err(err.into()),
            };
            if !notices_held && let Err(err) = self.deliver_earlier_notices(&request).await {
                tracing::warn!(approval = %id, error = %err, "a promotion notice waits in the outbox");
                notices_held = true;
            }
            let stage = self.pipeline.stage(&request.stage);
            let policy = stage.and_then(|s| s.approval.as_ref());
            // What a vote can write is not trusted further than the file in force allows.
            let request = match policy {
                Some(policy) => request.governed_by(policy),
                None => request,
            };
            let dbs = stage.map(|s| s.snapshot_before_deploy.as_slice()).unwrap_or_default();
            let no_schedule = DeploySchedule::default();
            let schedule = stage.map_or(&no_schedule, |s| &s.schedule);
            let step = match next_step(&request, dbs, schedule, now) {
                // Its stage left the pipeline file (or takes no approval now): it expires or
                // closes as usual, never deploys.
                Step::Begin(_)
                | Step::TakeSnapshots(_)
                | Step::CheckSnapshots(_)
                | Step::LastLook { .. }
                | Step::Hold(_)
                | Step::Deploy
                    if policy.is_none() && !deploy_begun(&request) =>
                {
                    Step::Fail {
                        why: format!(
                            "stage {} is no longer in the pipeline file, or no longer takes approvals",
                            request.stage
                        ),
                    }
                }
                step => step,
            };
            let mut next = request.clone();
            let begins = matches!(step, Step::Begin(_));
            match step {
                Step::Done => {
                    return Ok(Advanced::Nothing {
                        reason: format!("the request is {}", request.status),
                    });
                }
                Step::WaitUntil { at } => return Ok(Advanced::Waiting { until: at.to_rfc3339() }),
                Step::Hold(held) => {
                    // Marked every few minutes while it lasts: a hold lifted early ends there
                    // (a lost race leaves it for the next sweep).
                    if request.held_seen_at.is_none_or(|seen| now - seen >= HOLD_MARKED_EVERY) {
                        let mut marked = request.clone();
                        marked.held_seen_at = Some(now);
                        marked.version += 1;
                        self.records.save_approval(&marked).await?;
                    }
                    // One notice per hold: the sweep finds the same end every minute.
                    let detail = held_detail(&request, &held, self.listed(&request));
                    let step = format!("held-{}", held.until.timestamp());
                    self.tell(&request, &step, "held", &detail, notices_held).await?;
                    return Ok(Advanced::Waiting {
                        until: held.until.to_rfc3339(),
                    });
                }
                Step::Close { status, failed } => {
                    return self.close(&request, status, failed.as_deref(), notices_held).await;
                }
                // Begun before (a retry): deploy again without writing, every service idempotent.
                Step::Deploy if deploy_begun(&request) => {
                    return self.deploy(&request, deadline, notices_held).await;
                }
                Step::Deploy => {
                    let promotion = next.promotion.get_or_insert_with(|| Promotion::started(now));
                    match self.reason_not_to_deploy(&request, deadline).await? {
                        Some(why) => promotion.failed = Some(why),
                        None => promotion.deploy_started_at = Some(now),
                    }
                }
                Step::Expire => {
                    next.status = ApprovalStatus::Expired;
                    next.decided_at = Some(now);
                }
                Step::Fail { why } => {
                    next.promotion.get_or_insert_with(|| Promotion::started(now)).failed = Some(why);
                }
                Step::Begin(planned) => {
                    let mut promotion = Promotion::started(now);
                    promotion.snapshots = self.take_snapshots(id, planned).await?;
                    let failed = promotion
                        .snapshots
                        .iter()
                        .any(|s| matches!(s.state, SnapshotState::Failed { .. }));
                    next.promotion = Some(promotion);
                    // Kept before the write, delivered after it (at the top of the next round).
                    // A failed snapshot is told by the failure's notice instead.
                    if !failed {
                        let (headline, detail) = begun_notice(&next, self.listed(&next));
                        keep_notice(
                            &self.records,
                            notice_key(id, BEGUN),
                            &promotion_notice(&next, headline, &detail),
                        )
                        .await?;
                    }
                }
                Step::TakeSnapshots(planned) => {
                    let taken = self.take_snapshots(id, planned).await?;
                    let promotion = next.promotion.as_mut().expect("snapshots are retaken once begun");
                    for snapshot in taken {
                        if let Some(kept) = promotion.snapshots.iter_mut().find(|s| s.id == snapshot.id) {
                            *kept = snapshot;
                        }
                    }
                }
                Step::CheckSnapshots(ids) => {
                    let promotion = next.promotion.as_mut().expect("snapshots are checked once begun");
                    self.check_snapshots(promotion, &ids).await?;
                }
                Step::LastLook { snapshots, why } => {
                    let promotion = next.promotion.as_mut().expect("snapshots are checked once begun");
                    self.check_snapshots(promotion, &snapshots).await?;
                    let unfinished = promotion
                        .snapshots
                        .iter()
                        .any(|s| matches!(s.state, SnapshotState::Creating | SnapshotState::NotStarted { .. }));
                    if unfinished {
                        promotion.failed = Some(why);
                    }
                }
            }
            // Whichever step found the snapshots all available (a retried Begin adopts ready
            // ones) keeps the notice before its write; the next round delivers it.
            if next.promotion.as_ref().is_some_and(backed_up) && !request.promotion.as_ref().is_some_and(backed_up) {
                let detail = backed_up_detail(&next, now);
                keep_notice(
                    &self.records,
                    notice_key(id, BACKED_UP),
                    &promotion_notice(&next, "backed up", &detail),
                )
                .await?;
            }
            if next == request {
                // Snapshots still being made, or put off by a busy DB again: nothing to write.
                return Ok(Advanced::Snapshotting {
                    snapshots: request.promotion.map_or(0, |p| p.snapshots.len()),
                });
            }
            next.version += 1;
            // Written (the next round takes the step that follows), or another write came
            // first (the next round takes the step again on what it wrote).
            if self.records.save_approval(&next).await? && begins {
                let approved_at = next.decided_at.unwrap_or(next.requested_at);
                let wait = crate::domain::metrics::approval_wait(next.requested_at, approved_at);
                crate::lambda::metrics::publish_deployment(next.stage.as_str(), next.application.as_str(), &wait, now);
            }
        }
        Err(StoreError::retryable(format!(
            "{id} was still changing after {ROUNDS} rounds of its promotion"
        ))
        .into())
    }

    /// Asks RDS how snapshots `ids` of the promotion stand.
    async fn check_snapshots(&self, promotion: &mut Promotion, ids: &[SnapshotId]) -> Result<(), ServiceError> {
        for snapshot in promotion.snapshots.iter_mut().filter(|s| ids.contains(&s.id)) {
            snapshot.state = match snapshot_outcome(self.rds.snapshot_state(&snapshot.id).await)? {
                Some(state) => state,
                None => SnapshotState::Failed {
                    why: "RDS knows no such snapshot".into(),
                },
            };
        }
        Ok(())
    }

    /// Delivers the notices earlier rounds or calls kept ("approved", "backed up") that are
    /// not out yet.
    async fn deliver_earlier_notices(&self, request: &ApprovalRequest) -> Result<(), ServiceError> {
        if let Some(promotion) = &request.promotion {
            deliver_notice(&self.records, &self.notifier, &notice_key(&request.id, BEGUN)).await?;
            if backed_up(promotion) {
                deliver_notice(&self.records, &self.notifier, &notice_key(&request.id, BACKED_UP)).await?;
            }
        }
        Ok(())
    }

    /// Asks RDS for each planned snapshot (adopting one an earlier try made); a refusal is a
    /// failed snapshot.
    async fn take_snapshots(
        &self,
        id: &ApprovalId,
        mut planned: Vec<PlannedSnapshot>,
    ) -> Result<Vec<PlannedSnapshot>, ServiceError> {
        for snapshot in &mut planned {
            // Tagged as the scheduled ones are, so the snapshot function's retention keeps
            // them by their DB's policy (and never while their deploy still needs them).
            let tags = [
                CREATED_BY,
                (KIND_TAG, SnapshotKind::PreDeploy.tag()),
                (POLICY_TAG, snapshot.db.as_str()),
                (APPROVAL_TAG, id.as_str()),
            ];
            snapshot.state = snapshot_outcome(self.rds.take_snapshot(&snapshot.db, &snapshot.id, &tags).await)?;
        }
        Ok(planned)
    }

    /// Why an approved release must not start deploying now, if it must not: a release deploys
    /// whole or not at all (every service's record still awaits it), and only while the stage
    /// it had to pass still vouches for its digest (not rolled back or quarantined there since).
    async fn reason_not_to_deploy(
        &self,
        request: &ApprovalRequest,
        deadline: DateTime<Utc>,
    ) -> Result<Option<String>, ServiceError> {
        if let Some(order) = &request.rollback {
            return self.rollback_moved_on(request, order, deadline).await;
        }
        for service in &request.services {
            match self.records.get_deployment(&service.deployment).await? {
                Some(record) if !is_release_record(request, service, &record) => {
                    tracing::error!(approval = %request.id, record = %record.id, "a record the request lists is not this release's");
                    return Ok(Some(format!(
                        "{}'s record {} is not a deploy of this release's digest to {}; nothing was deployed",
                        service.service, record.id, request.stage
                    )));
                }
                Some(record) if matches!(record.status, Status::AwaitingApproval | Status::Approved) => {}
                Some(record) => {
                    return Ok(Some(format!(
                        "{}'s record {} is {}, so the release could not deploy whole; nothing was deployed",
                        service.service, record.id, record.status
                    )));
                }
                None => {
                    return Ok(Some(format!(
                        "{}'s record {} is gone; nothing was deployed",
                        service.service, service.deployment
                    )));
                }
            }
        }
        // The staging deploys the request was granted on, each still SUCCEEDED (not rolled
        // back since) with the digest not quarantined there.
        let Some(evidence) = &request.evidence else {
            return Ok(None);
        };
        for verified in &evidence.deployments {
            let why = match self.records.get_deployment(&verified.deployment).await? {
                Some(deploy)
                    if deploy.stage != evidence.stage
                        || deploy.service != verified.service
                        || deploy.image.digest != request.image.digest =>
                {
                    format!("{} is not its deploy of this digest to {}", deploy.id, verified.service)
                }
                Some(deploy) if deploy.status != Status::Succeeded => {
                    format!(
                        "its deploy {} of {} is {} now",
                        deploy.id, deploy.service, deploy.status
                    )
                }
                Some(deploy)
                    if self
                        .records
                        .quarantined(&deploy.cluster, &deploy.service)
                        .await?
                        .contains(&request.image.digest) =>
                {
                    format!("the digest is quarantined on {} there", deploy.service)
                }
                Some(_) => continue,
                None => format!("its deploy {} of {} is gone", verified.deployment, verified.service),
            };
            return Ok(Some(format!(
                "{} no longer vouches for this digest: {why}; nothing was deployed",
                evidence.stage
            )));
        }
        Ok(None)
    }

    /// Deploys each service of the request (idempotent per service), then records the deploy
    /// finished and tells the team. A service the account refuses (a permanent error) ends the
    /// promotion as failed; a transient error goes back for a retry.
    async fn deploy(
        &self,
        request: &ApprovalRequest,
        deadline: DateTime<Utc>,
        notices_held: bool,
    ) -> Result<Advanced, ServiceError> {
        if let Some(order) = &request.rollback {
            return self.roll_back(request, order, deadline, notices_held).await;
        }
        let mut deployed = Vec::new();
        for service in &request.services {
            match self.deploy_service(request, service, deadline).await {
                Ok(true) => deployed.push(service.service.to_string()),
                Ok(false) => {
                    tracing::warn!(approval = %request.id, service = %service.service, "its record is no longer this release's to deploy")
                }
                // ECS refused before anything moved (a missing service, an invalid definition,
                // an UpdateService refused): no retry will do better.
                Err(err @ ServiceError::Ecs(_)) if err.is_permanent() => {
                    let mut why = format!("{}: {err}", service.service);
                    if !deployed.is_empty() {
                        why.push_str(&format!("; already deploying: {}", deployed.join(", ")));
                    }
                    return self.give_up(&request.id, &why, notices_held).await;
                }
                Err(err) => return Err(err),
            }
        }
        if deployed.is_empty() {
            return self
                .give_up(
                    &request.id,
                    "no service of this release was left to deploy (a newer release took its place)",
                    notices_held,
                )
                .await;
        }
        // Told before the deploy is marked finished: until then the request stays in flight,
        // so a notice a failure held back goes out with the sweep's retry.
        let detail = format!("Approved and backed up; deploying to {}.", deployed.join(", "));
        self.tell(request, "deployed", "deploying", &detail, notices_held)
            .await?;
        self.mark_deployed(&request.id).await?;
        Ok(Advanced::Deployed { services: deployed })
    }

    /// Why an approved rollback must not start, if it must not: it applies whole, so every
    /// service must still run the deployment it ran when the rollback was asked (or be back on
    /// the version already). Checked again under each service's lock, right before it moves.
    async fn rollback_moved_on(
        &self,
        request: &ApprovalRequest,
        order: &RollbackOrder,
        deadline: DateTime<Utc>,
    ) -> Result<Option<String>, ServiceError> {
        let restorer = self.restorer();
        let mut moved = Vec::new();
        for target in &order.targets {
            if self.service_spec(request, &target.service).is_none() {
                moved.push(format!("{}: no longer in the pipeline file", target.service));
                continue;
            }
            let current = restorer
                .current_deployment(&request.cluster, &target.service, deadline)
                .await?;
            if let Err(why) = rollback_applies(target, &request.id, current.as_ref()) {
                moved.push(why);
            }
        }
        Ok((!moved.is_empty()).then(|| format!("{}; nothing was rolled back", moved.join("; "))))
    }

    /// The request's service `name` as the file in force names it in its stage, if it does.
    fn service_spec(&self, request: &ApprovalRequest, name: &ServiceName) -> Option<(&Stage, &ServiceSpec)> {
        let stage = self.pipeline.stage(&request.stage)?;
        let application = self
            .pipeline
            .applications()
            .iter()
            .find(|a| a.name == request.application)?;
        Some((stage, application.services.iter().find(|s| &s.name == name)?))
    }

    fn restorer(&self) -> Restorer<S, E, N> {
        Restorer {
            records: self.records.clone(),
            ecs: self.ecs.clone(),
            notifier: self.notifier.clone(),
        }
    }

    /// The approvers the file in force lists for the request's stage: only their proven votes
    /// are named in notices and records.
    fn listed(&self, request: &ApprovalRequest) -> &[Approver] {
        self.pipeline
            .stage(&request.stage)
            .and_then(|s| s.approval.as_ref())
            .map_or(&[], |policy| policy.approvers.as_slice())
    }

    /// An approved operator's rollback: each service back to its target through the same
    /// lock, record, quarantine and notice as `pipectl rollback` (idempotent per service), but
    /// only while it still runs what it ran when the rollback was asked. A service that moved
    /// on, or that ECS refuses, gives the promotion up, saying which ones went back.
    async fn roll_back(
        &self,
        request: &ApprovalRequest,
        order: &RollbackOrder,
        deadline: DateTime<Utc>,
        notices_held: bool,
    ) -> Result<Advanced, ServiceError> {
        let restorer = self.restorer();
        let listed = self.listed(request);
        // Dated when the rollback began (the same for every retry), not when it was asked.
        let began = request
            .promotion
            .as_ref()
            .and_then(|p| p.deploy_started_at)
            .unwrap_or_else(Utc::now);
        let trigger = RollbackTrigger::Operator {
            by: order.by.clone(),
            to: order.to.clone(),
            reason: format!(
                "{} (asked at {} UTC; approved by {} in {})",
                order.reason,
                utc(order.at),
                voters(request, Verdict::Approve, listed),
                request.id
            ),
            at: began,
        };
        let (mut back, mut not_back) = (Vec::new(), Vec::new());
        for target in &order.targets {
            let Some((stage, spec)) = self.service_spec(request, &target.service) else {
                not_back.push(format!("{}: no longer in the pipeline file", target.service));
                continue;
            };
            let to = RollbackTarget {
                task_definition: target.task_definition.clone(),
                definition: None,
                from: target.target.clone(),
            };
            let outcome = restorer
                .restore_to(
                    &self.pipeline,
                    stage,
                    spec,
                    &trigger,
                    (to, &target.image),
                    Some((&target.from, &request.id)),
                    deadline,
                )
                .await;
            match outcome {
                Ok(RestoreOutcome::RolledBack { .. } | RestoreOutcome::Nothing { .. }) => {
                    back.push(target.service.to_string())
                }
                Ok(RestoreOutcome::MovedOn { reason } | RestoreOutcome::Notified { reason }) => {
                    not_back.push(format!("{}: {reason}", target.service))
                }
                Err(err @ ServiceError::Ecs(_)) if err.is_permanent() => {
                    not_back.push(format!("{}: {err}", target.service))
                }
                Err(err) => return Err(err),
            }
        }
        if !not_back.is_empty() {
            let mut why = format!("not rolled back: {}", not_back.join("; "));
            if !back.is_empty() {
                why.push_str(&format!("; rolled back already: {}", back.join(", ")));
            }
            return self.give_up(&request.id, &why, notices_held).await;
        }
        let detail = format!(
            "Approved by {}; {} rolled back to {} ({}).",
            voters(request, Verdict::Approve, listed),
            back.join(", "),
            request.image.tag,
            request.image.digest
        );
        self.tell(request, "deployed", "rolled back", &detail, notices_held)
            .await?;
        self.mark_deployed(&request.id).await?;
        Ok(Advanced::Deployed { services: back })
    }

    /// Records the promotion failed (`why`) and closes the request.
    async fn give_up(&self, id: &ApprovalId, why: &str, notices_held: bool) -> Result<Advanced, ServiceError> {
        let updated = update_approval(&self.records, id, "its promotion was given up", |request| {
            let promotion = request.promotion.get_or_insert_with(|| Promotion::started(Utc::now()));
            if promotion.deployed_at.is_some() {
                return Change::Leave(false);
            }
            if promotion.failed.is_some() {
                return Change::Leave(true);
            }
            promotion.failed = Some(why.to_owned());
            if promotion.deploy_started_at.is_some() {
                // Given up as approved: a status written after the deploy began is undone.
                request.status = ApprovalStatus::Approved;
            }
            Change::Write(true)
        })
        .await?;
        match updated {
            Some((request, true)) => {
                self.close(&request, ApprovalStatus::Approved, Some(why), notices_held)
                    .await
            }
            Some((_, false)) => Ok(Advanced::Nothing {
                reason: "deployed already".into(),
            }),
            None => Ok(Advanced::Nothing {
                reason: format!("no approval request {id}"),
            }),
        }
    }

    /// Keeps and delivers one notice per request and `step`: the last of a request, told
    /// before it leaves the sweep, after every notice kept before it, so none is left behind
    /// in the outbox. When SNS already failed this call (`notices_held`), it is only kept: the
    /// next call sends them all, and no notice goes out more often for the retry.
    async fn tell(
        &self,
        request: &ApprovalRequest,
        step: &str,
        headline: &str,
        detail: &str,
        notices_held: bool,
    ) -> Result<(), ServiceError> {
        let notice = promotion_notice(request, headline, detail);
        let kept = keep_notice(&self.records, notice_key(&request.id, step), &notice).await?;
        if notices_held {
            return Err(NotifyError(format!(
                "{} waits in the outbox: SNS failed earlier in this call",
                notice.subject
            ))
            .into());
        }
        self.deliver_earlier_notices(request).await?;
        deliver_notice(&self.records, &self.notifier, &kept).await
    }

    /// A request that will not deploy: each service's record follows it (REJECTED, CANCELLED,
    /// EXPIRED, or FAILED when the promotion gave up with `failed`), the team is told once,
    /// and the request is marked closed (until then a retry or the sweep closes it again).
    async fn close(
        &self,
        request: &ApprovalRequest,
        status: ApprovalStatus,
        failed: Option<&str>,
        notices_held: bool,
    ) -> Result<Advanced, ServiceError> {
        let to = match (status, failed) {
            (_, Some(_)) => Status::Failed,
            (ApprovalStatus::Rejected, _) => Status::Rejected,
            (ApprovalStatus::Cancelled, _) => Status::Cancelled,
            _ => Status::Expired,
        };
        for id in self.release_records(request) {
            let Some(record) = self.records.get_deployment(&id).await? else {
                continue;
            };
            if !matches!(record.status, Status::AwaitingApproval | Status::Approved) {
                continue;
            }
            if let Ok(closed) = record.transition(to, Utc::now())
                && !self.records.save_transition(&closed, record.status).await?
            {
                return Err(StoreError::retryable(format!("{} changed while it was closed", record.id)).into());
            }
        }
        let (key, headline, detail) = match (to, failed) {
            (_, Some(why)) => (
                "failed",
                "not deployed",
                format!("The promotion gave up, and nothing more is deployed: {why}."),
            ),
            (Status::Rejected, _) => (
                "rejected",
                "rejected",
                format!(
                    "Rejected by {}; nothing was deployed.",
                    voters(request, Verdict::Reject, self.listed(request))
                ),
            ),
            (Status::Cancelled, _) => (
                "cancelled",
                "cancelled",
                match request.cancelled_by() {
                    Some((by, _)) => format!("Cancelled by {by} before the deploy started; nothing was deployed."),
                    None => "Cancelled during the wait; nothing was deployed.".to_owned(),
                },
            ),
            _ if request.services.is_empty() => (
                "expired",
                "approval expired",
                format!(
                    "Its links never went out (its release failed midway: see the failed-events queue) and it expired at {} UTC; nothing was deployed. Push the tag again once the cause is fixed.",
                    utc(request.expires_at)
                ),
            ),
            _ => (
                "expired",
                "approval expired",
                format!(
                    "Nobody decided by {} UTC; nothing was deployed.",
                    utc(request.expires_at)
                ),
            ),
        };
        self.tell(request, key, headline, &detail, notices_held).await?;
        self.mark_closed(&request.id).await?;
        Ok(match failed {
            Some(why) => Advanced::Failed { why: why.to_owned() },
            None => Advanced::Closed { status },
        })
    }

    /// The records of the request's release: those it lists, and those deploy-on-push may have
    /// made for the application's other services before a failure left the list unwritten (so
    /// none is left awaiting an approval that can never come, holding its digest's place).
    fn release_records(&self, request: &ApprovalRequest) -> Vec<DeploymentId> {
        // A rollback's services name what they ran when it was asked: never closed by it.
        if request.rollback.is_some() {
            return Vec::new();
        }
        let mut ids: Vec<DeploymentId> = request.services.iter().map(|s| s.deployment.clone()).collect();
        let app = self
            .pipeline
            .applications()
            .iter()
            .find(|a| a.name == request.application);
        for service in app.map(|a| a.services.as_slice()).unwrap_or_default() {
            let id = DeploymentId::for_push(&request.image, &request.stage, &request.cluster, &service.name);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    async fn mark_closed(&self, id: &ApprovalId) -> Result<(), ServiceError> {
        update_approval(&self.records, id, "it was closed", |request| {
            if request.closed_at.is_some() {
                return Change::Leave(());
            }
            request.closed_at = Some(Utc::now());
            Change::Write(())
        })
        .await?;
        Ok(())
    }

    /// Every service's deploy started and was recorded: the promotion is over.
    async fn mark_deployed(&self, id: &ApprovalId) -> Result<(), ServiceError> {
        update_approval(&self.records, id, "its deploy was recorded", |request| {
            match request.promotion.as_mut() {
                Some(promotion) if promotion.deployed_at.is_none() => {
                    promotion.deployed_at = Some(Utc::now());
                    // Deployed as approved: a status written after the deploy began is undone.
                    request.status = ApprovalStatus::Approved;
                    Change::Write(())
                }
                _ => Change::Leave(()),
            }
        })
        .await?;
        Ok(())
    }

    async fn deploy_service(
        &self,
        request: &ApprovalRequest,
        service: &ReleaseService,
        deadline: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        with_service_lock(
            &self.records,
            &request.cluster,
            &service.service,
            deadline,
            |state| async move {
                let Some(record) = self.records.get_deployment(&service.deployment).await? else {
                    return Ok(LockedWork::only(false));
                };
                // Checked again under the lock, right before UpdateService.
                if !is_release_record(request, service, &record) {
                    tracing::error!(approval = %request.id, record = %record.id, "not deployed: the record is not this release's");
                    return Ok(LockedWork::only(false));
                }
                // A newer release already deployed here (its own approval came first): this
                // older one must not go over it.
                if state.latest_is_ahead_of(&record)
                    && matches!(record.status, Status::AwaitingApproval | Status::Approved)
                    && let Ok(superseded) = record.transition(Status::Superseded, Utc::now())
                {
                    self.records.save_transition(&superseded, record.status).await?;
                    return Ok(LockedWork::only(false));
                }
                let running = self.ecs.running_service(&request.cluster, &service.service).await?;
                let (claimed, resuming) = match record.status {
                    Status::AwaitingApproval => {
                        let mut approved = record
                            .transition(Status::Approved, Utc::now())
                            .map_err(|e| StoreError::retryable(e.to_string()))?;
                        approved.previous_task_definition = Some(running.task_definition.clone());
                        if !self
                            .records
                            .save_transition(&approved, Status::AwaitingApproval)
                            .await?
                        {
                            return Err(
                                StoreError::retryable(format!("{} changed while it was claimed", record.id)).into(),
                            );
                        }
                        (approved, false)
                    }
                    Status::Approved => (record, true),
                    // Deployed by an earlier try: point the state at it if nothing newer is there
                    // (a retry after the deploy was recorded must not move it back).
                    Status::Deploying | Status::Succeeded => {
                        let moves = (!state.latest_is_ahead_of(&record)).then(|| StateMove {
                            field: ServiceStateField::Latest,
                            to: record.reference(),
                        });
                        return Ok(LockedWork { outcome: true, moves });
                    }
                    // This promotion's deploy, which ECS since ended: deployed.
                    Status::Failed | Status::RolledBack if record.ecs_deployment_id.is_some() => {
                        return Ok(LockedWork::only(true));
                    }
                    _ => return Ok(LockedWork::only(false)),
                };
                let deployed = deploy_pinned(&self.records, &self.ecs, claimed, &running, resuming, deadline).await?;
                Ok(LockedWork {
                    outcome: true,
                    moves: Some(StateMove {
                        field: ServiceStateField::Latest,
                        to: deployed.reference(),
                    }),
                })
            },
        )
        .await
    }
}

/// The outbox key of the notice of request `id`'s promotion `step`: one notice per step.
fn notice_key(id: &ApprovalId, step: &str) -> String {
    format!("promotion|{id}|{step}")
}

/// The promotion's steps told to the team beyond the closing ones.
const BEGUN: &str = "approved";
const BACKED_UP: &str = "backed-up";

/// The deploy of the request's services began (a retry resumes it).
fn deploy_begun(request: &ApprovalRequest) -> bool {
    request
        .promotion
        .as_ref()
        .is_some_and(|p| p.deploy_started_at.is_some())
}

/// Every snapshot of a promotion that takes some is available.
fn backed_up(promotion: &Promotion) -> bool {
    !promotion.snapshots.is_empty() && promotion.snapshots.iter().all(|s| s.state == SnapshotState::Available)
}

/// Who voted `verdict`, with their comments: the proven votes of the approvers `listed`.
fn voters(request: &ApprovalRequest, verdict: Verdict, listed: &[Approver]) -> String {
    let named: Vec<String> = request
        .proven_votes(verdict, listed)
        .map(|(who, vote)| match vote.voter.comment.as_str() {
            "" => who.to_string(),
            comment => format!("{who} ({comment:?})"),
        })
        .collect();
    match named.is_empty() {
        true => "no proven vote".to_owned(),
        false => named.join(", "),
    }
}

/// The ids of the request's pre-deployment snapshots, as the notices name them.
fn snapshot_ids(request: &ApprovalRequest) -> Vec<&str> {
    request
        .promotion
        .iter()
        .flat_map(|p| &p.snapshots)
        .map(|s| s.id.as_str())
        .collect()
}

/// The notice of an approval the promotion has begun: who approved, the snapshots asked for,
/// when the deploy starts and until when the page offers Cancel.
fn begun_notice(request: &ApprovalRequest, listed: &[Approver]) -> (&'static str, String) {
    let at = request.deploy_not_before().map(utc).unwrap_or_default();
    let snapshots = snapshot_ids(request);
    let approved = format!("Approved by {}.", voters(request, Verdict::Approve, listed));
    if request.rollback.is_some() {
        return ("approved", format!("{approved} The services go back now."));
    }
    if snapshots.is_empty() {
        return (
            "approved",
            format!("{approved} The deploy starts at {at} UTC; until then any approver's page offers Cancel."),
        );
    }
    (
        "approved, backing up",
        format!(
            "{approved} Backing up first: {}. The deploy starts once the snapshots are available, at {at} UTC at the earliest; until {at} UTC any approver's page offers Cancel.",
            snapshots.join(", ")
        ),
    )
}

/// The notice of an approved release the stage's deploy window or a freeze holds.
fn held_detail(request: &ApprovalRequest, held: &Held, listed: &[Approver]) -> String {
    let next = match &request.promotion {
        None => "Its pre-deployment snapshots and the deploy follow then",
        Some(_) => "The deploy follows then",
    };
    format!(
        "Approved by {}. Held until {} UTC: {}. {next}; a rollback is never held.",
        voters(request, Verdict::Approve, listed),
        utc(held.until),
        held.why
    )
}

/// The notice of the snapshots ready at `now`: when the deploy follows.
fn backed_up_detail(request: &ApprovalRequest, now: DateTime<Utc>) -> String {
    let snapshots = snapshot_ids(request);
    let when = match request.deploy_not_before() {
        Some(at) if at > now => format!("The deploy starts when the wait ends, at {} UTC.", utc(at)),
        _ => "The deploy starts now.".to_owned(),
    };
    format!("Pre-deployment snapshot(s) available: {}. {when}", snapshots.join(", "))
}

/// RDS's answer for a snapshot: a refusal (access, quota, an invalid state) is a failed
/// snapshot, so the promotion gives up with the reason; anything else is worth a retry.
fn snapshot_outcome<T: FromRefusal>(result: Result<T, SnapshotError>) -> Result<T, ServiceError> {
    match result {
        Ok(state) => Ok(state),
        Err(SnapshotError::Refused(why)) => Ok(T::refused(why)),
        Err(err) => Err(err.into()),
    }
}

/// What a refused snapshot call means for its caller.
trait FromRefusal {
    fn refused(why: String) -> Self;
}

impl FromRefusal for SnapshotState {
    fn refused(why: String) -> Self {
        SnapshotState::Failed { why }
    }
}

impl FromRefusal for Option<SnapshotState> {
    fn refused(why: String) -> Self {
        Some(SnapshotState::Failed { why })
    }
}

/// What invokes the promotion: the table's stream (a batch of approval-request changes), or
/// a trigger to sweep (the one-minute schedule, an RDS snapshot event).
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Stream records: (sequence number, request id).
    Changed(Vec<(String, ApprovalId)>),
    Sweep,
}

/// Reads an invocation's payload. Stream records of other items (the filter should pass none)
/// are left out; anything that is neither a stream batch nor an EventBridge event is refused.
pub fn trigger_of(payload: &serde_json::Value) -> Result<Trigger, String> {
    if let Some(records) = payload.get("Records").and_then(|r| r.as_array()) {
        let mut changed = Vec::new();
        for record in records {
            let sequence = record["dynamodb"]["SequenceNumber"]
                .as_str()
                .ok_or("a stream record has no SequenceNumber")?;
            let pk = record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or_default();
            if let Some(id) = pk
                .strip_prefix(crate::domain::approval::APPROVAL_KEY_PREFIX)
                .and_then(ApprovalId::parse)
            {
                changed.push((sequence.to_owned(), id));
            }
        }
        return Ok(Trigger::Changed(changed));
    }
    match payload.get("source").and_then(|s| s.as_str()) {
        Some("aws.events" | "aws.scheduler" | "aws.rds") => Ok(Trigger::Sweep),
        Some(other) => Err(format!("events from `{other}` are not the promotion's")),
        None => Err("neither a stream batch nor an EventBridge event".into()),
    }
}

/// The answer to a stream batch: the records to deliver again (Lambda's partial batch
/// response), so one failed request does not replay the others.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Sweep(ServiceError),
}

impl From<PromoteError> for lambda_runtime::Diagnostic {
    fn from(err: PromoteError) -> Self {
        let error_type = match &err {
            PromoteError::BadEvent(_) => "BadEvent",
            PromoteError::Sweep(err) => err.error_type(),
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_batches_and_sweep_triggers_are_told_apart() {
        let batch = serde_json::json!({"Records": [
            {"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "100", "Keys": {"pk": {"S": "APR#apr-0123456789abcdef01234567"}, "sk": {"S": "APR"}}}},
            {"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "101", "Keys": {"pk": {"S": "DEP#dep-1"}, "sk": {"S": "DEP"}}}}
        ]});
        assert_eq!(
            trigger_of(&batch),
            Ok(Trigger::Changed(vec![(
                "100".into(),
                ApprovalId::parse("apr-0123456789abcdef01234567").unwrap()
            )]))
        );
        for source in ["aws.events", "aws.scheduler", "aws.rds"] {
            assert_eq!(
                trigger_of(&serde_json::json!({"source": source, "detail": {}})),
                Ok(Trigger::Sweep)
            );
        }
        assert!(trigger_of(&serde_json::json!({"source": "aws.ecr"})).is_err());
        assert!(trigger_of(&serde_json::json!({"Records": [{"dynamodb": {}}]})).is_err());
    }
}
