//! rollback-on-alarm: an alarm guarding an application in a stage went into ALARM; each of
//! that application's services whose current deployment is to blame goes back to its last
//! known good. Other applications in the stage are not touched.

use super::restore::{RestoreOutcome, Restorer};
use crate::domain::alarm::{AlarmMeaning, read_alarm};
use crate::domain::pipeline::Pipeline;
use crate::domain::rollback_plan::Trigger;
use crate::events::AlarmEvent;
use crate::lambda::errors::ServiceFailures;
use crate::lambda::service_lock::deadline_of;
use crate::ports::{Deployments, Ecs, Notifier, Outbox, Quarantine, ServiceLocks};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

pub struct RollbackOnAlarm<S, E, N> {
    pub pipeline: Pipeline,
    pub restorer: Restorer<S, E, N>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AlarmResponse {
    Ignored {
        reason: String,
    },
    Handled {
        alarm: String,
        stage: String,
        application: String,
        services: Vec<ServiceResult>,
    },
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ServiceResult {
    pub service: String,
    #[serde(flatten)]
    pub result: RestoreOutcome,
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

impl<S, E, N> RollbackOnAlarm<S, E, N>
where
    S: ServiceLocks + Deployments + Quarantine + Outbox,
    E: Ecs,
    N: Notifier,
{
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<AlarmResponse, AlarmError> {
        let deadline = deadline_of(&event.context);
        let parsed: AlarmEvent = crate::events::parse(event.payload).map_err(AlarmError::BadEvent)?;
        self.handle_event(&parsed, Utc::now(), deadline).await
    }

    /// `now` is when the event is handled: an alarm that fired too long before starts nothing
    /// new, and only finishes what an earlier delivery of it started.
    pub async fn handle_event(
        &self,
        event: &AlarmEvent,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<AlarmResponse, AlarmError> {
        let (alarm, stage, application, at, late) = match read_alarm(&self.pipeline, event, now) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(AlarmError::BadEvent(err.to_string()));
            }
            Ok(AlarmMeaning::Ignore(reason)) => {
                tracing::info!(%reason, "ignored alarm");
                return Ok(AlarmResponse::Ignored { reason });
            }
            Ok(AlarmMeaning::Fired {
                alarm,
                stage,
                application,
                at,
                late,
            }) => (alarm, stage, application, at, late),
        };
        if late {
            tracing::warn!(%alarm, %at, "late alarm: only work an earlier delivery started is finished");
        }
        let trigger = Trigger::Alarm {
            alarm: alarm.clone(),
            at,
        };
        // Each service has its own lock: restore them together.
        let attempts = join_all(application.services.iter().map(|service| {
            self.restorer
                .restore(&self.pipeline, stage, service, &trigger, !late, deadline)
        }))
        .await;
        let mut results = Vec::new();
        let mut failures = Vec::new();
        for (service, attempt) in application.services.iter().zip(attempts) {
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
        Ok(AlarmResponse::Handled {
            alarm: alarm.to_string(),
            stage: stage.name.to_string(),
            application: application.name.to_string(),
            services: results,
        })
    }
}
