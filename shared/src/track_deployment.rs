//! track-deployment: ECS says a deployment COMPLETED or FAILED; the record we made when we
//! started it says so too, and a completion becomes the service's last known good.

use crate::domain::deployment::Status;
use crate::domain::ecs_event::{EcsDeploymentEvent, Reading, Verdict, judge, read};
use crate::domain::pipeline::Pipeline;
use crate::ports::{Records, StoreError};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct TrackDeployment<R> {
    pub pipeline: Pipeline,
    pub records: R,
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
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TrackError> for Diagnostic {
    fn from(err: TrackError) -> Self {
        let error_type = match err {
            TrackError::BadEvent(_) => "BadEvent",
            TrackError::Store(_) => "RecordsUnavailable",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

impl<R: Records> TrackDeployment<R> {
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<Response, TrackError> {
        let parsed: EcsDeploymentEvent = serde_path_to_error::deserialize(event.payload)
            .map_err(|e| TrackError::BadEvent(format!("{}: {}", e.path(), e.inner())))?;
        self.handle_event(&parsed).await
    }

    pub async fn handle_event(&self, event: &EcsDeploymentEvent) -> Result<Response, TrackError> {
        let ended = match read(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(TrackError::BadEvent(err.to_string()));
            }
            Ok(Reading::Ignore(reason)) => return Ok(ignored(reason)),
            Ok(Reading::Ended(ended)) => ended,
        };
        let record = self.records.by_ecs_deployment(&ended.ecs_deployment_id).await?;
        let next = match judge(&ended, record.as_ref()) {
            Verdict::Ignore(why) => return Ok(ignored(format!("{}: {why}", ended.ecs_deployment_id))),
            Verdict::Record(next) => next,
        };
        // `judge` only moves records that are DEPLOYING; a concurrent duplicate loses here.
        if !self.records.save_transition(&next, Status::Deploying).await? {
            return Ok(ignored(format!("{}: recorded meanwhile by another delivery", next.id)));
        }
        let last_known_good = next.status == Status::Succeeded && self.records.record_last_known_good(&next).await?;
        tracing::info!(deployment = %next.id, status = %next.status, last_known_good, "deployment ended");
        Ok(Response::Recorded {
            deployment_id: next.id.to_string(),
            status: next.status.to_string(),
            last_known_good,
        })
    }
}

fn ignored(reason: String) -> Response {
    tracing::info!(%reason, "ignored deployment event");
    Response::Ignored { reason }
}
