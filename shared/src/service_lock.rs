//! One handler at a time per service: every change to a service (a deploy, a rollback) runs
//! under its lock, so two events cannot interleave their ECS calls, and what it decided is
//! recorded in the same write that releases the lock.

use crate::domain::deployment::{Pointer, ServiceState};
use crate::domain::names::{ClusterName, ServiceName};
use crate::ports::{EcsError, NotifyError, Records, Slot, StoreError};
use chrono::{DateTime, TimeDelta, Utc};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// How long to wait for another handler of the same service before handing the event back
/// to Lambda for a later retry.
pub const LOCK_WAIT: TimeDelta = TimeDelta::seconds(10);
/// The least time left, once the lock is held, to act and record (each AWS call is bounded at
/// 10 s); with less, the event goes back to Lambda for a retry.
pub const TIME_TO_ACT: TimeDelta = TimeDelta::seconds(15);
/// A lock outlives its holder's deadline by this much, so it is never taken while the holder
/// may still act.
const LOCK_MARGIN: TimeDelta = TimeDelta::seconds(5);

/// Why one service's work failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Ecs(#[from] EcsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("another handler held this service's lock for {}s; retry later", LOCK_WAIT.num_seconds())]
    Busy,
}

impl ServiceError {
    /// Short, stable names for the Lambda error type, which alarms and DLQ readers filter on.
    pub fn error_type(&self) -> &'static str {
        match self {
            ServiceError::Ecs(EcsError::NotFound(_)) => "ServiceNotFound",
            ServiceError::Ecs(EcsError::ContainerMissing(_)) => "ContainerMissing",
            ServiceError::Ecs(EcsError::Rejected(_)) => "EcsRejected",
            ServiceError::Ecs(EcsError::Transient(_)) => "EcsUnavailable",
            ServiceError::Store(_) => "RecordsUnavailable",
            ServiceError::Notify(_) => "NotifyFailed",
            ServiceError::Busy => "ServiceBusy",
        }
    }
}

/// Every service of an event was attempted; these failed (the others are done and stay done).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(stage, service, err)| format!("{stage}/{service}: {err}")).collect::<Vec<_>>().join("; "))]
pub struct ServiceFailures(pub Vec<(String, String, ServiceError)>);

impl ServiceFailures {
    /// The failures' common error type, or `fallback` when they differ.
    pub fn error_type(&self, fallback: &'static str) -> &'static str {
        let mut kinds = self.0.iter().map(|(_, _, err)| err.error_type());
        let first = kinds.next().unwrap_or(fallback);
        if kinds.all(|k| k == first) { first } else { fallback }
    }
}

fn lock_owner() -> String {
    format!("{:016x}", RandomState::new().hash_one(Utc::now().timestamp_nanos_opt()))
}

/// Work done under the lock: its outcome, and the state pointer to move on release.
pub type Locked<T> = (T, Option<(Slot, Pointer)>);

/// Runs `work` with the service's state while holding its lock, then releases the lock and
/// moves the pointer `work` returned in the same write.
pub async fn with_service_lock<R, T, F, Fut>(
    records: &R,
    cluster: &ClusterName,
    service: &ServiceName,
    deadline: DateTime<Utc>,
    work: F,
) -> Result<T, ServiceError>
where
    R: Records,
    T: std::fmt::Debug,
    F: FnOnce(ServiceState) -> Fut,
    Fut: Future<Output = Result<Locked<T>, ServiceError>>,
{
    let owner = lock_owner();
    let give_up = (Utc::now() + LOCK_WAIT).min(deadline - TIME_TO_ACT);
    let mut pause = Duration::from_millis(50);
    let state = loop {
        let now = Utc::now();
        if let Some(state) = records
            .lock_service(cluster, service, &owner, deadline + LOCK_MARGIN, now)
            .await?
        {
            break state;
        }
        if now >= give_up {
            return Err(ServiceError::Busy);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(800));
    };

    let outcome = work(state).await;
    let moved = match &outcome {
        Ok((_, Some((slot, pointer)))) => Some((*slot, pointer)),
        _ => None,
    };
    let released = records.release_service(cluster, service, &owner, moved).await;
    match (&outcome, released) {
        (_, Ok(true)) => {}
        (_, Ok(false)) => tracing::warn!(%cluster, %service, "service lock expired before release"),
        (Err(original), Err(release)) => {
            // Both failed: return the first error, and log both so neither is lost.
            tracing::error!(%cluster, %service, error = %release, "releasing the service lock failed");
            tracing::error!(%cluster, %service, error = %original, "work under the lock failed");
        }
        (Ok((result, _)), Err(release)) => {
            tracing::error!(%cluster, %service, ?result, "work done, but releasing the lock failed");
            return Err(release.into());
        }
    }
    outcome.map(|(outcome, _)| outcome)
}

/// The deadline Lambda gives (milliseconds since the epoch); without one (a hand-made
/// context) the template's 30 s.
pub fn deadline_of(context: &lambda_runtime::Context) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(context.deadline as i64)
        .filter(|deadline| *deadline > Utc::now())
        .unwrap_or_else(|| Utc::now() + TimeDelta::seconds(30))
}
