//! One module per function, each written against the ports it needs: `main.rs` builds the
//! adapters and hands them in; unit tests hand in the fakes.

pub mod approval_page;
pub mod deploy_on_push;
pub mod request_approval;
pub mod restore;
pub mod rollback_on_alarm;
pub mod track_deployment;

use crate::domain::deployment::{Deployment, Status};
use crate::domain::names::{ClusterName, ServiceName};
use crate::domain::notice::Notice;
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::time_to_record;
use crate::ports::{Deployments, Ecs, Notifier, Outbox, Running, StoreError};
use chrono::{DateTime, Utc};

/// Points the service at `task_definition` and returns the ECS deployment id. A service already
/// on it is adopted, not deployed again; a failed update is looked at before it counts as one
/// (its answer may have been lost after ECS applied it). UpdateService is irreversible: it is
/// not started without the time to record it.
pub(crate) async fn point_service_at<E: Ecs>(
    ecs: &E,
    cluster: &ClusterName,
    service: &ServiceName,
    running: &Running,
    task_definition: &str,
    deadline: DateTime<Utc>,
) -> Result<String, ServiceError> {
    if running.task_definition == task_definition
        && let Some(id) = &running.primary_deployment_id
    {
        return Ok(id.clone());
    }
    time_to_record(deadline, Utc::now())?;
    match ecs.update_service(cluster, service, task_definition).await {
        Ok(id) => Ok(id),
        Err(err) => match ecs.running_service(cluster, service).await {
            Ok(Running {
                task_definition: now,
                primary_deployment_id: Some(id),
            }) if now == task_definition => Ok(id),
            _ => Err(err.into()),
        },
    }
}

/// Records a REQUESTED deployment DEPLOYING with the ECS deployment started for it. If the
/// conditional write loses, the record moved on meanwhile: read back, it is kept when it names
/// the same ECS deployment (track-deployment recorded ECS's ending on it first); anything else
/// is an error, for the retry to look again.
pub(crate) async fn record_deploying<D: Deployments>(
    records: &D,
    requested: Deployment,
    ecs_deployment_id: String,
    at: DateTime<Utc>,
) -> Result<Deployment, ServiceError> {
    let deploying = Deployment {
        ecs_deployment_id: Some(ecs_deployment_id),
        ..requested
            .transition(Status::Deploying, at)
            .map_err(|e| StoreError::retryable(e.to_string()))?
    };
    if records.save_transition(&deploying, Status::Requested).await? {
        return Ok(deploying);
    }
    match records.get_deployment(&deploying.id).await? {
        Some(now) if now.ecs_deployment_id == deploying.ecs_deployment_id => Ok(now),
        _ => Err(StoreError::retryable(format!("{} changed while it was deployed", deploying.id)).into()),
    }
}

/// How long a notice is kept in the outbox, so a redelivered event does not send it again.
const NOTICE_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(14);

/// Keeps `notice` in the outbox under `key` (once: a kept one stays as it is), with the
/// records, before anything is published. Returns the key to deliver.
pub(crate) async fn keep_notice<O: Outbox>(outbox: &O, key: String, notice: &Notice) -> Result<String, StoreError> {
    outbox.enqueue(&key, notice, Utc::now() + NOTICE_KEPT).await?;
    Ok(key)
}

/// Publishes the outbox entry `key` unless it went out before, then marks it sent. Marked
/// after publishing: a crash in between sends it twice rather than never.
pub(crate) async fn deliver_notice<O: Outbox, N: Notifier>(
    outbox: &O,
    notifier: &N,
    key: &str,
) -> Result<(), ServiceError> {
    let Some(entry) = outbox.entry(key).await? else {
        return Ok(());
    };
    if entry.sent {
        return Ok(());
    }
    notifier.publish(&entry.notice).await?;
    outbox.mark_sent(key).await?;
    tracing::info!(subject = %entry.notice.subject, "notice sent");
    Ok(())
}

#[cfg(test)]
mod request_approval_tests;
#[cfg(test)]
mod tests;
