//! deploy-on-push: an ECR push in, new task-definition revisions and deployment records out.
//!
//! Per (stage, service) target: take the service's lock (one deploy per service at a time,
//! so two pushes cannot interleave their ECS calls), decide from the service state, create the
//! record (its id is the business key, so a duplicate delivery loses here), act on ECS, then
//! record the outcome and release the lock in one write.
//!
//! A stage a person approves gets, instead of a deploy, one record per service awaiting
//! approval and one approval request for them all (`request_approval`).

use super::deploy_pinned;
use super::request_approval::{ApprovalDesk, ApprovalResult, Gate};
use crate::domain::approval::{ApprovalId, Successor};
use crate::domain::deployment::{
    Decision, Deployment, DeploymentId, DeploymentRef, Mode, PointedRecords, PushedImage, ServiceState,
    ServiceStateField, SkipReason, Status, decide,
};
use crate::domain::pipeline::{ApprovalPolicy, Pipeline, Stage};
use crate::domain::push::{BadEvent, PushPlan, Target, plan_push};
use crate::events::EcrEvent;
use crate::lambda::errors::{ServiceError, ServiceFailures};
use crate::lambda::service_lock::{LockedWork, deadline_of, with_service_lock};
use crate::ports::{
    AlarmStates, Approvals, ApproverMail, Deployments, Ecs, Notifier, Outbox, Quarantine, ServiceLocks, StateMove,
    StoreError,
};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct DeployOnPush<S, E, C, M, N> {
    pub pipeline: Pipeline,
    pub records: S,
    pub ecs: E,
    pub approvals: ApprovalDesk<C, M, N>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PushResponse {
    Ignored {
        reason: String,
    },
    Handled {
        image: String,
        targets: Vec<TargetResult>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        approvals: Vec<ApprovalResult>,
    },
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TargetResult {
    pub stage: String,
    pub service: String,
    #[serde(flatten)]
    pub result: TargetOutcome,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum TargetOutcome {
    Deploying {
        deployment_id: String,
        previous_task_definition: String,
        task_definition: String,
        ecs_deployment_id: String,
    },
    AwaitingApproval {
        deployment_id: String,
    },
    /// The stage's deploy window is closed or a freeze holds: the promotion's sweep deploys it
    /// when it opens, unless a newer push took its place.
    Held {
        deployment_id: String,
        until: String,
        why: String,
    },
    Skipped {
        reason: String,
    },
}

/// How a failed approval request is named among the failures (in place of a service).
const APPROVAL_REQUEST: &str = "approval request";

/// The stages among `targets` a person approves, each once with its policy, in pipeline order.
fn approval_stages<'a>(targets: &[Target<'a>]) -> Vec<(&'a Stage, &'a ApprovalPolicy)> {
    let mut stages: Vec<(&Stage, &ApprovalPolicy)> = Vec::new();
    for target in targets {
        if let Some(policy) = &target.stage.approval
            && !stages.iter().any(|(s, _)| s.name == target.stage.name)
        {
            stages.push((target.stage, policy));
        }
    }
    stages
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Targets(ServiceFailures),
}

impl From<PushError> for Diagnostic {
    fn from(err: PushError) -> Self {
        let error_type = match &err {
            PushError::BadEvent(_) => "BadEvent",
            PushError::Targets(failures) => failures.error_type("DeployFailed"),
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

impl From<BadEvent> for PushError {
    fn from(err: BadEvent) -> Self {
        PushError::BadEvent(err.to_string())
    }
}

impl<S, E, C, M, N> DeployOnPush<S, E, C, M, N>
where
    S: ServiceLocks + Deployments + Approvals + Quarantine + Outbox,
    E: Ecs,
    C: AlarmStates,
    M: ApproverMail,
    N: Notifier,
{
    /// The Lambda entry point: the payload is read here so a malformed event becomes a
    /// `BadEvent` naming the field, not a panic.
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<PushResponse, PushError> {
        let deadline = deadline_of(&event.context);
        let parsed: EcrEvent = crate::events::parse(event.payload).map_err(PushError::BadEvent)?;
        self.handle_event(&parsed, deadline).await
    }

    pub async fn handle_event(&self, event: &EcrEvent, deadline: DateTime<Utc>) -> Result<PushResponse, PushError> {
        let (image, app, targets) = match plan_push(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(err.into());
            }
            Ok(PushPlan::Ignore(reason)) => {
                tracing::info!(%reason, "ignored push");
                return Ok(PushResponse::Ignored {
                    reason: reason.to_string(),
                });
            }
            Ok(PushPlan::Deploy {
                image,
                application,
                targets,
            }) => (image, application, targets),
        };

        let mut results = Vec::new();
        let mut failures = Vec::new();
        let mut approvals = Vec::new();

        // A stage a person approves: a release that did not pass the stage it requires gets a
        // BLOCKED request, and its services are left alone.
        let mut gated = Vec::new();
        for (stage, policy) in approval_stages(&targets) {
            match self.gate(&image, app, stage, policy).await {
                Ok(Gate::Blocked(result)) => approvals.push(result),
                Ok(Gate::Open) => gated.push(stage),
                Err(err) => failures.push((stage.name.to_string(), APPROVAL_REQUEST.to_owned(), err)),
            }
        }
        let targets: Vec<&Target> = targets
            .iter()
            .filter(|t| t.mode == Mode::Automatic || gated.iter().any(|stage| stage.name == t.stage.name))
            .collect();

        // Targets are distinct (stage, service) pairs, each under its own lock: run them together.
        let attempts = join_all(
            targets
                .iter()
                .map(|target| self.deploy_target(&image, target, deadline)),
        )
        .await;
        for (target, attempt) in targets.iter().zip(attempts) {
            let (stage, service) = (target.stage.name.to_string(), target.service.name.to_string());
            match attempt {
                Ok(result) => {
                    tracing::info!(%stage, %service, image = %image.uri, ?result, "target handled");
                    results.push(TargetResult { stage, service, result });
                }
                Err(err) => {
                    tracing::error!(%stage, %service, image = %image.uri, error = %err, "target failed");
                    failures.push((stage, service, err));
                }
            }
        }

        // The request covers every service of the stage: it waits for a retry if one failed.
        for stage in gated {
            if failures.iter().any(|(failed, _, _)| failed == stage.name.as_str()) {
                continue;
            }
            match self.open_request(&image, app, stage).await {
                Ok(Some(result)) => {
                    tracing::info!(stage = %stage.name, approval = %result.approval_id, status = %result.status, links_sent = result.links_sent, "approval request");
                    approvals.push(result);
                }
                Ok(None) => {}
                Err(err) => failures.push((stage.name.to_string(), APPROVAL_REQUEST.to_owned(), err)),
            }
        }
        if !failures.is_empty() {
            return Err(PushError::Targets(ServiceFailures(failures)));
        }
        Ok(PushResponse::Handled {
            image: image.uri,
            targets: results,
            approvals,
        })
    }

    async fn deploy_target(
        &self,
        image: &PushedImage,
        target: &Target<'_>,
        deadline: DateTime<Utc>,
    ) -> Result<TargetOutcome, ServiceError> {
        let (cluster, service) = (&target.stage.cluster, &target.service.name);
        with_service_lock(&self.records, cluster, service, deadline, |state| async move {
            let pointed = self.pointed_records(&image.digest, &state).await?;
            match decide(target.mode, image, &state, pointed) {
                Decision::Skip(reason) => {
                    if let SkipReason::NewerImageAhead(ahead) = &reason {
                        self.supersede_leftover(image, target, ahead).await?;
                    }
                    Ok(LockedWork::only(TargetOutcome::Skipped {
                        reason: reason.to_string(),
                    }))
                }
                Decision::Proceed { supersedes } => self.start(image, target, supersedes, deadline).await,
            }
        })
        .await
    }

    /// What the records the state points at say of `digest`, read only when they hold it.
    async fn pointed_records(
        &self,
        digest: &crate::domain::names::ImageDigest,
        state: &ServiceState,
    ) -> Result<PointedRecords, StoreError> {
        let holding = |pointer: &Option<DeploymentRef>| {
            pointer
                .as_ref()
                .filter(|p| p.digest.as_ref() == Some(digest))
                .map(|p| p.id.clone())
        };
        let mut pointed = PointedRecords::default();
        if let Some(id) = holding(&state.latest) {
            let record = self.records.get_deployment(&id).await?;
            pointed.latest_failed = record.is_some_and(|d| d.status == Status::Failed);
        }
        if let Some(id) = holding(&state.awaiting_approval) {
            let record = self.records.get_deployment(&id).await?;
            pointed.request_closed =
                record.is_none_or(|d| !matches!(d.status, Status::AwaitingApproval | Status::Approved));
        }
        Ok(pointed)
    }

    /// Creates the record and, for an automatic stage, deploys; for an approval stage the
    /// record waits for an approver.
    async fn start(
        &self,
        image: &PushedImage,
        target: &Target<'_>,
        supersedes: Option<DeploymentRef>,
        deadline: DateTime<Utc>,
    ) -> Result<LockedWork<TargetOutcome>, ServiceError> {
        let (stage, cluster, service) = (&target.stage.name, &target.stage.cluster, &target.service.name);
        let now = Utc::now();
        let mut record = Deployment::requested(
            DeploymentId::for_push(image, stage, cluster, service),
            target.stage,
            target.service,
            image,
            now,
            self.pipeline.version(),
        );

        let (field, outcome) = match target.mode {
            Mode::Approval => {
                // What the stage runs now, for the approvers to see (and an unknown service
                // fails here, before any record).
                let running = self.ecs.running_service(cluster, service).await?;
                record.previous_task_definition = Some(running.task_definition);
                record.status = Status::AwaitingApproval;
                if !self.records.create_deployment(&record).await? {
                    return self.duplicate(&record.id, supersedes, target.mode).await;
                }
                (
                    ServiceStateField::AwaitingApproval,
                    TargetOutcome::AwaitingApproval {
                        deployment_id: record.id.to_string(),
                    },
                )
            }
            Mode::Automatic => {
                // Read-only first: an unknown service fails here and leaves no record behind.
                let running = self.ecs.running_service(cluster, service).await?;
                let resuming = match self.records.get_deployment(&record.id).await? {
                    // An earlier attempt died midway: resume it, keeping what it registered and
                    // what the service ran before it (a deploy begun is never held).
                    Some(earlier) if earlier.status == Status::Requested => {
                        record = earlier;
                        true
                    }
                    // Held before: the deploy in flight is not this push's to supersede.
                    Some(earlier) if earlier.status == Status::Held => {
                        return self.duplicate(&record.id, None, target.mode).await;
                    }
                    Some(_) => return self.duplicate(&record.id, supersedes, target.mode).await,
                    None if let Some(held) = target.stage.schedule.held(now) => {
                        return self.hold(record, running.task_definition, held).await;
                    }
                    None => {
                        record.previous_task_definition = Some(running.task_definition.clone());
                        if !self.records.create_deployment(&record).await? {
                            return self.duplicate(&record.id, supersedes, target.mode).await;
                        }
                        false
                    }
                };
                record = deploy_pinned(&self.records, &self.ecs, record, &running, resuming, deadline).await?;
                (
                    ServiceStateField::Latest,
                    TargetOutcome::Deploying {
                        deployment_id: record.id.to_string(),
                        previous_task_definition: record.previous_task_definition.clone().unwrap_or_default(),
                        task_definition: record.task_definition.clone().unwrap_or_default(),
                        ecs_deployment_id: record.ecs_deployment_id.clone().unwrap_or_default(),
                    },
                )
            }
        };

        if let Some(older) = supersedes {
            self.supersede(&older.id, &record.id, target.mode).await?;
        }
        Ok(LockedWork {
            outcome,
            moves: Some(StateMove {
                field,
                to: record.reference(),
            }),
        })
    }

    /// Records the push HELD (the service is not touched, its state not moved): the sweep
    /// deploys the newest held push when the window opens.
    async fn hold(
        &self,
        mut record: Deployment,
        running: String,
        held: crate::domain::schedule::Held,
    ) -> Result<LockedWork<TargetOutcome>, ServiceError> {
        record.status = Status::Held;
        record.previous_task_definition = Some(running);
        if !self.records.create_deployment(&record).await? {
            return self.duplicate(&record.id, None, Mode::Automatic).await;
        }
        tracing::info!(deployment = %record.id, until = %held.until, why = %held.why, "push held");
        Ok(LockedWork::only(TargetOutcome::Held {
            deployment_id: record.id.to_string(),
            until: held.until.to_rfc3339(),
            why: held.why,
        }))
    }

    /// The record exists beyond REQUESTED: this delivery was handled before. Finish what the
    /// earlier attempt may not have: point the service state at it (decide() found the state's
    /// pointer older), and supersede the older request.
    async fn duplicate(
        &self,
        id: &DeploymentId,
        supersedes: Option<DeploymentRef>,
        mode: Mode,
    ) -> Result<LockedWork<TargetOutcome>, ServiceError> {
        let existing = self.records.get_deployment(id).await?;
        let repair = existing.and_then(|d| match d.status {
            Status::AwaitingApproval => Some(StateMove {
                field: ServiceStateField::AwaitingApproval,
                to: d.reference(),
            }),
            Status::Deploying | Status::Succeeded | Status::Failed | Status::RolledBack => Some(StateMove {
                field: ServiceStateField::Latest,
                to: d.reference(),
            }),
            _ => None,
        });
        if let Some(older) = supersedes.filter(|older| &older.id != id) {
            self.supersede(&older.id, id, mode).await?;
        }
        Ok(LockedWork {
            outcome: TargetOutcome::Skipped {
                reason: SkipReason::Duplicate(id.clone()).to_string(),
            },
            moves: repair,
        })
    }

    /// An earlier attempt at this push may have died after registering (its record still
    /// REQUESTED) and a newer push got ahead before the retry: that attempt will never go on,
    /// and its record says so.
    async fn supersede_leftover(
        &self,
        image: &PushedImage,
        target: &Target<'_>,
        ahead: &DeploymentId,
    ) -> Result<(), StoreError> {
        let id = DeploymentId::for_push(image, &target.stage.name, &target.stage.cluster, &target.service.name);
        match self.records.get_deployment(&id).await? {
            Some(leftover) if leftover.status == Status::Requested => self.supersede(&id, ahead, target.mode).await,
            _ => Ok(()),
        }
    }

    /// The approval request of `older`'s release, if it has one, and what `newer`'s release
    /// is as its successor.
    async fn release_request(
        &self,
        older: &Deployment,
        newer: &DeploymentId,
    ) -> Result<Option<(ApprovalId, Successor)>, StoreError> {
        let Some(app) = self.pipeline.application_for(&older.image.repository) else {
            return Ok(None);
        };
        let request = ApprovalId::for_release(&older.image, &older.stage, &app.name);
        if self.records.get_approval(&request).await?.is_none() {
            return Ok(None);
        }
        let Some(newer) = self.records.get_deployment(newer).await? else {
            return Ok(None);
        };
        let successor = Successor {
            id: ApprovalId::for_release(&newer.image, &newer.stage, &app.name),
            tag: newer.image.tag.clone(),
        };
        Ok(Some((request, successor)))
    }

    async fn supersede(&self, older: &DeploymentId, newer: &DeploymentId, newer_mode: Mode) -> Result<(), StoreError> {
        let Some(old) = self.records.get_deployment(older).await? else {
            return Ok(());
        };
        // Only what is still in flight; a deploy that already finished keeps its outcome.
        let Ok(mut superseded) = old.transition(Status::Superseded, Utc::now()) else {
            return Ok(());
        };
        // An approval only replaces a request still awaiting one: a promoted release's record
        // (APPROVED, DEPLOYING) is its deploy, not a request.
        if newer_mode == Mode::Approval && old.status != Status::AwaitingApproval {
            return Ok(());
        }
        superseded.superseded_by = Some(newer.clone());
        // A record awaiting approval goes with its release's request, in one transaction while
        // that request still awaits approval: a release approved meanwhile goes ahead (its
        // promotion deploys it), and the newer one waits for its own approval.
        if old.status == Status::AwaitingApproval
            && let Some((request, successor)) = self.release_request(&old, newer).await?
        {
            if self
                .records
                .supersede_awaiting(&superseded, &request, &successor, Utc::now())
                .await?
            {
                tracing::info!(superseded = %older, request = %request, by = %newer, "older release superseded");
            } else {
                tracing::info!(deployment = %older, request = %request, "its release was decided meanwhile: not superseded");
            }
            return Ok(());
        }
        if self.records.save_transition(&superseded, old.status).await? {
            tracing::info!(superseded = %older, by = %newer, "older deployment superseded");
        }
        Ok(())
    }
}
