//! rollback-on-alarm: an alarm guarding a stage went into ALARM; each service of the stage
//! whose current deployment is to blame goes back to its last known good.

use crate::domain::pipeline::Pipeline;
use crate::domain::rollback::{AlarmEvent, AlarmReading, Trigger, read_alarm};
use crate::ports::{Ecs, Notifier, Records};
use crate::rollbacks::{RollbackOutcome, Rollbacks};
use crate::service_lock::{ServiceFailures, deadline_of};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct RollbackOnAlarm<R, E, N> {
    pub pipeline: Pipeline,
    pub rollbacks: Rollbacks<R, E, N>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Response {
    Ignored {
        reason: String,
    },
    Handled {
        alarm: String,
        stage: String,
        services: Vec<ServiceResult>,
    },
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ServiceResult {
    pub service: String,
    #[serde(flatten)]
    pub result: RollbackOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Services(ServiceFailures),
}

impl From<AlarmError> for Diagnostic {
    fn from(err: AlarmError) -> Self {
        let error_type = match &err {
            AlarmError::BadEvent(_) => "BadEvent",
            AlarmError::Services(failures) => failures.error_type("RollbackFailed"),
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

impl<R: Records, E: Ecs, N: Notifier> RollbackOnAlarm<R, E, N> {
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<Response, AlarmError> {
        let deadline = deadline_of(&event.context);
        let parsed: AlarmEvent = serde_path_to_error::deserialize(event.payload)
            .map_err(|e| AlarmError::BadEvent(format!("{}: {}", e.path(), e.inner())))?;
        self.handle_event(&parsed, deadline).await
    }

    pub async fn handle_event(&self, event: &AlarmEvent, deadline: DateTime<Utc>) -> Result<Response, AlarmError> {
        let (alarm, stage, at) = match read_alarm(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(AlarmError::BadEvent(err.to_string()));
            }
            Ok(AlarmReading::Ignore(reason)) => {
                tracing::info!(%reason, "ignored alarm");
                return Ok(Response::Ignored { reason });
            }
            Ok(AlarmReading::Fired { alarm, stage, at }) => (alarm, stage, at),
        };
        let trigger = Trigger::Alarm {
            alarm: alarm.clone(),
            at,
        };
        // Each service has its own lock: respond for all of them together.
        let services: Vec<_> = self.pipeline.services().collect();
        let attempts = join_all(
            services
                .iter()
                .map(|service| self.rollbacks.respond(stage, service, &trigger, deadline)),
        )
        .await;
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for (service, attempt) in services.iter().zip(attempts) {
            match attempt {
                Ok(result) => results.push(ServiceResult {
                    service: service.name.to_string(),
                    result,
                }),
                Err(err) => {
                    tracing::error!(stage = %stage.name, service = %service.name, error = %err, "rollback failed");
                    failures.push((stage.name.to_string(), service.name.to_string(), err));
                }
            }
        }
        if !failures.is_empty() {
            return Err(AlarmError::Services(ServiceFailures(failures)));
        }
        Ok(Response::Handled {
            alarm: alarm.to_string(),
            stage: stage.name.to_string(),
            services: results,
        })
    }
}
