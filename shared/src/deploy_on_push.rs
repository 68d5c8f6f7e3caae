//! deploy-on-push: an ECR push in, new task-definition revisions and deployment records out.
//!
//! Per (stage, service) target: take the service's lock (one deploy per service at a time,
//! so two pushes cannot interleave their ECS calls), decide from the service state, create the
//! record (its id is the business key, so a duplicate delivery loses here), act on ECS, then
//! record the outcome and release the lock in one write.

use crate::domain::deployment::{
    Decision, Deployment, DeploymentId, Kind, Mode, Pointer, PushedImage, SkipReason, Status, decide,
};
use crate::domain::names::{ClusterName, ServiceName};
use crate::domain::pipeline::Pipeline;
use crate::domain::push::{BadEvent, EcrEvent, Plan, Target, plan};
use crate::ports::{Ecs, EcsError, Records, Running, Slot, StoreError};
use crate::service_lock::{Locked, ServiceError, ServiceFailures, deadline_of, with_service_lock};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct DeployOnPush<R, E> {
    pub pipeline: Pipeline,
    pub records: R,
    pub ecs: E,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Ignored { reason: String },
    Handled { image: String, targets: Vec<TargetResult> },
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
    Skipped {
        reason: String,
    },
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

/// Points the service at `task_definition` and returns the ECS deployment id. A service already
/// on it is adopted, not deployed again; a failed update is looked at before it counts as one
/// (its answer may have been lost after ECS applied it).
pub(crate) async fn point_service_at<E: Ecs>(
    ecs: &E,
    cluster: &ClusterName,
    service: &ServiceName,
    running: &Running,
    task_definition: &str,
) -> Result<String, EcsError> {
    if running.task_definition == task_definition
        && let Some(id) = &running.primary_deployment_id
    {
        return Ok(id.clone());
    }
    match ecs.update_service(cluster, service, task_definition).await {
        Ok(id) => Ok(id),
        Err(err) => match ecs.running_service(cluster, service).await {
            Ok(Running {
                task_definition: now,
                primary_deployment_id: Some(id),
            }) if now == task_definition => Ok(id),
            _ => Err(err),
        },
    }
}

impl<R: Records, E: Ecs> DeployOnPush<R, E> {
    /// The Lambda entry point: the payload is read here so a malformed event becomes a
    /// `BadEvent` naming the field, not a panic.
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<Response, PushError> {
        let deadline = deadline_of(&event.context);
        let parsed: EcrEvent = serde_path_to_error::deserialize(event.payload)
            .map_err(|e| PushError::BadEvent(format!("{}: {}", e.path(), e.inner())))?;
        self.handle_event(&parsed, deadline).await
    }

    pub async fn handle_event(&self, event: &EcrEvent, deadline: DateTime<Utc>) -> Result<Response, PushError> {
        let (image, targets) = match plan(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(err.into());
            }
            Ok(Plan::Ignore(reason)) => {
                tracing::info!(%reason, "ignored push");
                return Ok(Response::Ignored {
                    reason: reason.to_string(),
                });
            }
            Ok(Plan::Deploy { image, targets }) => (image, targets),
        };

        // Targets are distinct (stage, service) pairs, each under its own lock: run them together.
        let attempts = join_all(
            targets
                .iter()
                .map(|target| self.deploy_target(&image, target, deadline)),
        )
        .await;
        let mut results = Vec::new();
        let mut failures = Vec::new();
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
        if !failures.is_empty() {
            return Err(PushError::Targets(ServiceFailures(failures)));
        }
        Ok(Response::Handled {
            image: image.uri,
            targets: results,
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
            match decide(target.mode, image, &state) {
                Decision::Skip(reason) => Ok((
                    TargetOutcome::Skipped {
                        reason: reason.to_string(),
                    },
                    None,
                )),
                Decision::Proceed { supersedes } => self.proceed(image, target, supersedes).await,
            }
        })
        .await
    }

    async fn proceed(
        &self,
        image: &PushedImage,
        target: &Target<'_>,
        supersedes: Option<Pointer>,
    ) -> Result<Locked<TargetOutcome>, ServiceError> {
        let (stage, cluster, service) = (&target.stage.name, &target.stage.cluster, &target.service.name);
        let now = Utc::now();
        let mut record = Deployment {
            id: DeploymentId::for_push(image, stage, cluster, service),
            kind: Kind::Deploy,
            status: Status::Requested,
            stage: stage.clone(),
            cluster: cluster.clone(),
            service: service.clone(),
            container: target.service.container.clone(),
            image: image.clone(),
            requested_at: now,
            updated_at: now,
            previous_task_definition: None,
            task_definition: None,
            ecs_deployment_id: None,
            superseded_by: None,
            definition: None,
            previous_definition: None,
            completed_at: None,
            ecs_reason: None,
        };

        let (slot, outcome) = match target.mode {
            Mode::Approval => {
                record.status = Status::AwaitingApproval;
                if !self.records.create_deployment(&record).await? {
                    return self.duplicate(&record.id, supersedes).await;
                }
                (
                    Slot::AwaitingApproval,
                    TargetOutcome::AwaitingApproval {
                        deployment_id: record.id.to_string(),
                    },
                )
            }
            Mode::Automatic => {
                // Read-only first: an unknown service fails here and leaves no record behind.
                let running = self.ecs.running_service(cluster, service).await?;
                match self.records.get_deployment(&record.id).await? {
                    // An earlier attempt died midway: resume it, keeping what it registered and
                    // what the service ran before it.
                    Some(earlier) if earlier.status == Status::Requested => record = earlier,
                    Some(_) => return self.duplicate(&record.id, supersedes).await,
                    None => {
                        record.previous_task_definition = Some(running.task_definition.clone());
                        if !self.records.create_deployment(&record).await? {
                            return self.duplicate(&record.id, supersedes).await;
                        }
                    }
                }
                let ecs_deployment_id = match self.act(&mut record, &running).await {
                    Ok(id) => id,
                    Err(err) => {
                        // The service was not updated: no record may say otherwise.
                        if let Err(store) = self.records.delete_requested(&record.id).await {
                            tracing::error!(deployment = %record.id, error = %store, "REQUESTED record left; a retry resumes it");
                        }
                        return Err(err);
                    }
                };
                let deploying = Deployment {
                    ecs_deployment_id: Some(ecs_deployment_id.clone()),
                    ..record
                        .transition(Status::Deploying, Utc::now())
                        .expect("REQUESTED can become DEPLOYING")
                };
                if !self.records.save_transition(&deploying, Status::Requested).await? {
                    // Only possible if our lock's lease ran out and another attempt took over.
                    tracing::warn!(deployment = %deploying.id, "record left REQUESTED by another attempt");
                }
                record = deploying;
                (
                    Slot::Latest,
                    TargetOutcome::Deploying {
                        deployment_id: record.id.to_string(),
                        previous_task_definition: record.previous_task_definition.clone().unwrap_or_default(),
                        task_definition: record.task_definition.clone().unwrap_or_default(),
                        ecs_deployment_id,
                    },
                )
            }
        };

        if let Some(older) = supersedes {
            self.supersede(&older.id, &record.id).await?;
        }
        Ok((outcome, Some((slot, record.pointer()))))
    }

    /// Registers the pinned revision (once: it is saved on the record before the service is
    /// touched) and points the service at it; returns the ECS deployment id. A service already
    /// on that revision is adopted, not deployed again.
    async fn act(&self, record: &mut Deployment, running: &Running) -> Result<String, ServiceError> {
        let registered = match &record.task_definition {
            Some(arn) => arn.clone(),
            None => {
                let previous = record
                    .previous_task_definition
                    .as_deref()
                    .unwrap_or(&running.task_definition);
                let registered = self
                    .ecs
                    .register_pinned(previous, &record.container, &record.image.uri)
                    .await?;
                record.task_definition = Some(registered.arn.clone());
                record.definition = Some(registered.definition);
                record.previous_definition = Some(registered.previous_definition);
                if !self.records.record_registration(record).await? {
                    tracing::warn!(deployment = %record.id, "record left REQUESTED by another attempt");
                }
                registered.arn
            }
        };
        Ok(point_service_at(&self.ecs, &record.cluster, &record.service, running, &registered).await?)
    }

    /// The record exists beyond REQUESTED: this delivery was handled before. Finish what the
    /// earlier attempt may not have: point the service state at it (decide() found the state's
    /// pointer older), and supersede the older request.
    async fn duplicate(
        &self,
        id: &DeploymentId,
        supersedes: Option<Pointer>,
    ) -> Result<Locked<TargetOutcome>, ServiceError> {
        let existing = self.records.get_deployment(id).await?;
        let repair = existing.and_then(|d| match d.status {
            Status::AwaitingApproval => Some((Slot::AwaitingApproval, d.pointer())),
            Status::Deploying | Status::Succeeded | Status::Failed | Status::RolledBack => {
                Some((Slot::Latest, d.pointer()))
            }
            _ => None,
        });
        if let Some(older) = supersedes.filter(|older| &older.id != id) {
            self.supersede(&older.id, id).await?;
        }
        Ok((
            TargetOutcome::Skipped {
                reason: SkipReason::Duplicate(id.clone()).to_string(),
            },
            repair,
        ))
    }

    async fn supersede(&self, older: &DeploymentId, newer: &DeploymentId) -> Result<(), StoreError> {
        let Some(old) = self.records.get_deployment(older).await? else {
            return Ok(());
        };
        // Only what is still in flight; a deploy that already finished keeps its outcome.
        let Ok(mut superseded) = old.transition(Status::Superseded, Utc::now()) else {
            return Ok(());
        };
        superseded.superseded_by = Some(newer.clone());
        if self.records.save_transition(&superseded, old.status).await? {
            tracing::info!(superseded = %older, by = %newer, "older deployment superseded");
        }
        Ok(())
    }
}
