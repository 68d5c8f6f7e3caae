//! track-deployment: ECS says a deployment COMPLETED or FAILED; the record we made when we
//! started it says so too. A completed deployment is known good from then on (the history is
//! the one source of truth for that); a failure of the service's current deployment rolls it
//! back (see `restore`).

use super::record_deploying;
use super::restore::{RestoreOutcome, Restorer};
use crate::domain::deployment::{Deployment, DeploymentId, Kind, ServiceStateField, Status};
use crate::domain::deployment_end::{
    EcsEventMeaning, Ended, Ending, EndingUpdate, NotRecorded, read_ending, update_for_ending,
};
use crate::domain::notice::deployment_ended_notice;
use crate::domain::pipeline::Pipeline;
use crate::domain::rollback_plan::{ROLLOUT_ALLOWANCE, Trigger};
use crate::events::EcsDeploymentEvent;
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, deadline_of, with_service_lock};
use crate::ports::{Deployments, Ecs, EcsError, Notifier, Outbox, Quarantine, ServiceLocks, StateMove, StoreError};
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;

/// How many of the service's newest records are searched for a deploy whose ECS deployment id
/// was never saved (its handler died right after UpdateService).
const UNSAVED_SEARCH: i32 = 10;

pub struct TrackDeployment<S, E, N> {
    pub pipeline: Pipeline,
    pub restorer: Restorer<S, E, N>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TrackResponse {
    Ignored {
        reason: String,
    },
    Recorded {
        deployment_id: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        rollback: Option<RestoreOutcome>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ecs(#[from] EcsError),
    /// The service has a deploy whose ECS deployment id is not saved yet, and ECS no longer
    /// says which revision this deployment ran: the retry of the deploy saves it.
    #[error("{0}: the deploy it belongs to has not recorded its ECS deployment id yet; retry later")]
    RecordPending(String),
    /// Rolling back, or sending a notice, failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<TrackError> for Diagnostic {
    fn from(err: TrackError) -> Self {
        let error_type = match &err {
            TrackError::BadEvent(_) => "BadEvent",
            TrackError::Store(err) => err.error_type(),
            TrackError::Ecs(err) => err.error_type(),
            TrackError::RecordPending(_) => "RecordPending",
            TrackError::Service(err) => err.error_type(),
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

impl<S, E, N> TrackDeployment<S, E, N>
where
    S: ServiceLocks + Deployments + Quarantine + Outbox,
    E: Ecs,
    N: Notifier,
{
    pub async fn handle(&self, event: LambdaEvent<serde_json::Value>) -> Result<TrackResponse, TrackError> {
        let deadline = deadline_of(&event.context);
        let parsed: EcsDeploymentEvent = crate::events::parse(event.payload).map_err(TrackError::BadEvent)?;
        self.handle_event(&parsed, deadline).await
    }

    pub async fn handle_event(
        &self,
        event: &EcsDeploymentEvent,
        deadline: DateTime<Utc>,
    ) -> Result<TrackResponse, TrackError> {
        let records = &self.restorer.records;
        let ended = match read_ending(&self.pipeline, event) {
            Err(err) => {
                tracing::warn!(error = %err, "rejected event");
                return Err(TrackError::BadEvent(err.to_string()));
            }
            Ok(EcsEventMeaning::Ignore(reason)) => return Ok(ignored(reason)),
            Ok(EcsEventMeaning::Ended(ended)) => ended,
        };
        let record = match records.by_ecs_deployment(&ended.ecs_deployment_id).await? {
            Some(record) => Some(record),
            None => self.unsaved_deploy(&ended, deadline).await?,
        };
        let next = match update_for_ending(&ended, record.as_ref()) {
            // A redelivered FAILED goes through the rollback again, which finishes what the
            // first delivery may have left undone when it died, and does nothing otherwise.
            EndingUpdate::Ignore(
                NotRecorded::AlreadyRecorded(Status::Failed) | NotRecorded::NoLongerInFlight(Status::RolledBack),
            ) if ended.ending == Ending::Failed => {
                let failed = record.expect("an update was found for a record");
                // Its notice, if the first delivery died before keeping it; a deployment
                // rolled back meanwhile has had its news told.
                if failed.status == Status::Failed {
                    self.keep_ending_notice(&failed).await?;
                }
                let rollback = self.roll_back(&ended, &failed.id, deadline).await?;
                self.deliver(Some(ending_notice_key(&failed.id))).await?;
                return Ok(TrackResponse::Recorded {
                    deployment_id: failed.id.to_string(),
                    status: failed.status.to_string(),
                    rollback,
                });
            }
            EndingUpdate::Ignore(why) => {
                // A redelivery may be all that is left to keep and send the ending's notice.
                if let (NotRecorded::AlreadyRecorded(_), Some(recorded)) = (&why, &record) {
                    let notice = self.keep_ending_notice(recorded).await?;
                    self.deliver(notice).await?;
                }
                return Ok(ignored(format!("{}: {why}", ended.ecs_deployment_id)));
            }
            EndingUpdate::Record(next) => next,
        };
        let from = record.expect("an update was found for a record").status;
        // Only a record still in flight moves; a concurrent duplicate loses here.
        if !records.save_transition(&next, from).await? {
            return Ok(ignored(format!("{}: recorded meanwhile by another delivery", next.id)));
        }
        tracing::info!(deployment = %next.id, status = %next.status, "deployment ended");
        super::emit_deployment_metrics(&self.pipeline, &next, &crate::domain::metrics::ending(&next));
        let notice = self.keep_ending_notice(&next).await?;
        let rollback = match ended.ending {
            Ending::Failed => self.roll_back(&ended, &next.id, deadline).await?,
            Ending::Completed => None,
        };
        self.deliver(notice).await?;
        Ok(TrackResponse::Recorded {
            deployment_id: next.id.to_string(),
            status: next.status.to_string(),
            rollback,
        })
    }

    /// A deploy of ours whose handler died right after UpdateService has a claimed record
    /// (REQUESTED, or APPROVED for a promotion)
    /// with its revision but no ECS deployment id yet. If ECS says this deployment runs that
    /// revision, it is recorded DEPLOYING with the id, under the service's lock, and made the
    /// service's latest deployment, as the deploy's own retry would have: the ending then lands
    /// on it, and a FAILED rolls it back like any current deployment.
    async fn unsaved_deploy(&self, ended: &Ended, deadline: DateTime<Utc>) -> Result<Option<Deployment>, TrackError> {
        let records = &self.restorer.records;
        let page = records
            .history(&ended.cluster, &ended.service, UNSAVED_SEARCH, None)
            .await?;
        // Only a deploy that could still be rolling out: older ones are not this ending's.
        let Some(requested) = page.deployments.into_iter().find(|d| {
            matches!(d.status, Status::Requested | Status::Approved)
                && d.task_definition.is_some()
                && ended.at - d.updated_at <= ROLLOUT_ALLOWANCE
        }) else {
            return Ok(None);
        };
        let ran = self
            .restorer
            .ecs
            .deployment_revision(&ended.cluster, &ended.service, &ended.ecs_deployment_id)
            .await?;
        match ran {
            Some(revision) if Some(&revision) == requested.task_definition.as_ref() => {}
            Some(_) => return Ok(None),
            None => return Err(TrackError::RecordPending(ended.ecs_deployment_id.clone())),
        }
        let adopted = with_service_lock(records, &ended.cluster, &ended.service, deadline, |state| async move {
            let Some(fresh) = records.get_deployment(&requested.id).await? else {
                return Ok(LockedWork::only(None));
            };
            // The deploy's retry recorded it meanwhile.
            if !matches!(fresh.status, Status::Requested | Status::Approved) {
                return Ok(LockedWork::only(Some(fresh)));
            }
            let deploying = record_deploying(records, fresh, ended.ecs_deployment_id.clone(), ended.at).await?;
            tracing::info!(deployment = %deploying.id, ecs_deployment = %ended.ecs_deployment_id, "saved the ECS deployment id a deploy did not");
            // decide() let this push through: it is the service's latest unless a newer one
            // got ahead since.
            let moves = (!state.latest_is_ahead_of(&deploying)).then(|| StateMove {
                field: ServiceStateField::Latest,
                to: deploying.reference(),
            });
            Ok(LockedWork {
                outcome: Some(deploying),
                moves,
            })
        })
        .await?;
        Ok(adopted)
    }

    /// Keeps the notice of how a deploy ended in the outbox if people hear of it: every FAILED
    /// one, and a SUCCEEDED one where its stage asks. (How a rollback ends is told by the
    /// rollback: a failed one cannot be rolled back, and says so.) Returns the key to deliver.
    async fn keep_ending_notice(&self, ended: &Deployment) -> Result<Option<String>, StoreError> {
        let announced = ended.status == Status::Failed
            || self
                .pipeline
                .stages()
                .iter()
                .any(|stage| stage.name == ended.stage && stage.notify_success);
        if ended.kind != Kind::Deploy || !announced {
            return Ok(None);
        }
        let key = ending_notice_key(&ended.id);
        let kept = super::keep_notice(&self.restorer.records, key, &deployment_ended_notice(ended)).await?;
        Ok(Some(kept))
    }

    async fn deliver(&self, key: Option<String>) -> Result<(), TrackError> {
        if let Some(key) = key {
            super::deliver_notice(&self.restorer.records, &self.restorer.notifier, &key).await?;
        }
        Ok(())
    }

    async fn roll_back(
        &self,
        ended: &Ended,
        failed: &DeploymentId,
        deadline: DateTime<Utc>,
    ) -> Result<Option<RestoreOutcome>, TrackError> {
        let Some((stage, service)) = self.pipeline.locate(&ended.cluster, &ended.service) else {
            return Ok(None);
        };
        let trigger = Trigger::Failed {
            deployment: failed.clone(),
            at: ended.at,
            reason: ended.reason.clone(),
        };
        Ok(Some(
            self.restorer
                .restore(&self.pipeline, stage, service, &trigger, true, deadline)
                .await?,
        ))
    }
}

fn ending_notice_key(id: &DeploymentId) -> String {
    format!("ended|{id}")
}

fn ignored(reason: String) -> TrackResponse {
    tracing::info!(%reason, "ignored deployment event");
    TrackResponse::Ignored { reason }
}
