//! One module per function, each written against the ports it needs: `main.rs` builds the
//! adapters and hands them in; unit tests hand in the fakes.

pub mod approval_page;
pub mod break_glass;
pub mod cost_report;
pub mod deploy_on_push;
pub mod promote;
pub mod request_approval;
pub mod restore;
pub mod rollback_on_alarm;
pub mod scheduled_snapshots;
mod staging;
pub mod track_deployment;

use crate::domain::deployment::{Deployment, Status};
use crate::domain::names::{ClusterName, ServiceName};
use crate::domain::notice::Notice;
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::time_to_record;
use crate::ports::{Deployments, Ecs, EcsError, Notifier, Outbox, Running, StoreError};
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

/// Registers the pinned revision (once: it is saved on the claimed record before the
/// service is touched), points the service at it and records the deployment DEPLOYING.
///
/// From the registration on, the record stays as claimed (REQUESTED, APPROVED) on any failure, and the retry
/// resumes it with the same revision, adopting whatever ECS did with it (one revision per
/// deploy; ECS may have applied an UpdateService whose answer was lost).
pub(crate) async fn deploy_pinned<S: Deployments, E: Ecs>(
    records: &S,
    ecs: &E,
    mut record: Deployment,
    running: &Running,
    resuming: bool,
    deadline: DateTime<Utc>,
) -> Result<Deployment, ServiceError> {
    let registered = match &record.task_definition {
        Some(arn) => arn.clone(),
        None => register_pinned(records, ecs, &mut record, running, resuming).await?,
    };
    let ecs_deployment_id =
        point_service_at(ecs, &record.cluster, &record.service, running, &registered, deadline).await?;
    record_deploying(records, record, ecs_deployment_id, Utc::now()).await
}

/// Registers the revision pinned to the pushed image and saves it on the record. If ECS
/// refuses the request, nothing happened and the record goes. On any other failure the
/// record stays: the revision may exist (a lost answer), and the retry, resuming, finds
/// it by its deployment tag instead of registering another.
async fn register_pinned<S: Deployments, E: Ecs>(
    records: &S,
    ecs: &E,
    record: &mut Deployment,
    running: &Running,
    resuming: bool,
) -> Result<String, ServiceError> {
    let previous = record
        .previous_task_definition
        .as_deref()
        .unwrap_or(&running.task_definition);
    let registered = match ecs
        .register_pinned(previous, &record.container, &record.image.uri, &record.id, resuming)
        .await
    {
        Ok(registered) => registered,
        Err(err @ EcsError::Transient(_)) => return Err(err.into()),
        Err(err) => {
            if let Err(store) = records.delete_requested(&record.id).await {
                tracing::error!(deployment = %record.id, error = %store, "REQUESTED record left; a retry resumes it");
            }
            return Err(err.into());
        }
    };
    record.task_definition = Some(registered.arn.clone());
    record.definition = Some(registered.definition);
    record.previous_definition = Some(registered.previous_definition);
    if !records.record_registration(record).await? {
        return Err(StoreError::retryable(format!("{} is no longer {}", record.id, record.status)).into());
    }
    Ok(registered.arn)
}

/// Records a claimed deployment (REQUESTED, or APPROVED for a promotion) DEPLOYING with the ECS
/// deployment started for it. If the
/// conditional write loses, the record moved on meanwhile: read back, it is kept when it names
/// the same ECS deployment (track-deployment recorded ECS's ending on it first); anything else
/// is an error, for the retry to look again.
pub(crate) async fn record_deploying<D: Deployments>(
    records: &D,
    requested: Deployment,
    ecs_deployment_id: String,
    at: DateTime<Utc>,
) -> Result<Deployment, ServiceError> {
    let claimed = requested.status;
    let deploying = Deployment {
        ecs_deployment_id: Some(ecs_deployment_id),
        ..requested
            .transition(Status::Deploying, at)
            .map_err(|e| StoreError::retryable(e.to_string()))?
    };
    if records.save_transition(&deploying, claimed).await? {
        return Ok(deploying);
    }
    match records.get_deployment(&deploying.id).await? {
        Some(now) if now.ecs_deployment_id == deploying.ecs_deployment_id => Ok(now),
        _ => Err(StoreError::retryable(format!("{} changed while it was deployed", deploying.id)).into()),
    }
}

/// Writes `metrics` of `record`'s deployment by its stage and application (the repository's
/// name when the file in force no longer names it).
pub(crate) fn emit_deployment_metrics(
    pipeline: &crate::domain::pipeline::Pipeline,
    record: &Deployment,
    metrics: &[crate::domain::metrics::Measured],
) {
    let application = pipeline
        .application_for(&record.image.repository)
        .map_or(record.image.repository.as_str(), |app| app.name.as_str());
    crate::lambda::metrics::publish_deployment(record.stage.as_str(), application, metrics, Utc::now());
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
