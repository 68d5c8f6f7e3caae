//! track-deployment: ECS says a deployment COMPLETED or FAILED; the record we made when we
//! started it says so too. A completion becomes the service's last known good; a failure of
//! the service's current deployment rolls it back (see `rollbacks`).

use crate::domain::deployment::Status;
use crate::domain::ecs_event::{EcsDeploymentEvent, Ended, Ending, IgnoreWhy, Reading, Verdict, judge, read};
use crate::domain::pipeline::Pipeline;
use crate::domain::rollback::Trigger;
use crate::ports::{Ecs, Notifier, Records, StoreError};
use crate::rollbacks::{RollbackOutcome, Rollbacks};
use crate::service_lock::{ServiceError, deadline_of};
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct TrackDeployment<R, E, N> {
    pub pipeline: Pipeline,
    pub rollbacks: Rollbacks<R, E, N>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Ignored {
        reason: String,
    },
    Recorded {
        deployment_id: String,
        status: String,
        last_known_good: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        rollback: Option<RollbackOutcome>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rolling back: {0}")]
    Rollback(#[from] ServiceError),
}

impl From<TrackError> for Diagnostic {
    fn from(err: TrackError) -> Self {
        let error_type = match &err {
            TrackError::BadEvent(_) => "BadEvent",
            TrackError::Store(_) => "RecordsUnavailable",
            TrackError::Rollback(err) => err.error_type(),
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

impl<R: Records, E: Ecs, N: Notifier> TrackDeployment<R, E, N> {
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<Response, TrackError> {
        let deadline = deadline_of(&event.context);
        let parsed: EcsDeploymentEvent = serde_path_to_error::deserialize(event.payload)
            .map_err(|e| TrackError::BadEvent(format!("{}: {}", e.path(), e.inner())))?;
        self.handle_event(&parsed, deadline).await
    }

    pub async fn handle_event(
        &self,
        event: &EcsDeploymentEvent,
        deadline: DateTime<Utc>,
    ) -> Result<Response, TrackError> {
        let records = &self.rollbacks.records;
        let ended = match read(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(TrackError::BadEvent(err.to_string()));
            }
            Ok(Reading::Ignore(reason)) => return Ok(ignored(reason)),
            Ok(Reading::Ended(ended)) => ended,
        };
        let record = records.by_ecs_deployment(&ended.ecs_deployment_id).await?;
        let next = match judge(&ended, record.as_ref()) {
            // A redelivered FAILED goes through the rollback again, which finishes what the
            // first delivery may have left undone when it died, and does nothing otherwise.
            Verdict::Ignore(
                IgnoreWhy::AlreadyRecorded(Status::Failed) | IgnoreWhy::NoLongerInFlight(Status::RolledBack),
            ) if ended.ending == Ending::Failed => {
                let failed = record.expect("judged a record");
                let rollback = self.roll_back(&ended, &failed.id, deadline).await?;
                return Ok(Response::Recorded {
                    deployment_id: failed.id.to_string(),
                    status: failed.status.to_string(),
                    last_known_good: false,
                    rollback,
                });
            }
            Verdict::Ignore(why) => return Ok(ignored(format!("{}: {why}", ended.ecs_deployment_id))),
            Verdict::Record(next) => next,
        };
        // `judge` only moves records that are DEPLOYING; a concurrent duplicate loses here.
        if !records.save_transition(&next, Status::Deploying).await? {
            return Ok(ignored(format!("{}: recorded meanwhile by another delivery", next.id)));
        }
        let last_known_good = next.status == Status::Succeeded && records.record_last_known_good(&next).await?;
        tracing::info!(deployment = %next.id, status = %next.status, last_known_good, "deployment ended");
        let rollback = match ended.ending {
            Ending::Failed => self.roll_back(&ended, &next.id, deadline).await?,
            Ending::Completed => None,
        };
        Ok(Response::Recorded {
            deployment_id: next.id.to_string(),
            status: next.status.to_string(),
            last_known_good,
            rollback,
        })
    }

    async fn roll_back(
        &self,
        ended: &Ended,
        failed: &crate::domain::deployment::DeploymentId,
        deadline: DateTime<Utc>,
    ) -> Result<Option<RollbackOutcome>, TrackError> {
        let Some((stage, service)) = self.pipeline.locate(&ended.cluster, &ended.service) else {
            return Ok(None);
        };
        let trigger = Trigger::Failed {
            deployment: failed.clone(),
            at: ended.at,
            reason: ended.reason.clone(),
        };
        Ok(Some(self.rollbacks.respond(stage, service, &trigger, deadline).await?))
    }
}

fn ignored(reason: String) -> Response {
    tracing::info!(%reason, "ignored deployment event");
    Response::Ignored { reason }
}
