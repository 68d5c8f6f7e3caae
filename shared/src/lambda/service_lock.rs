//! One handler at a time per service: every change to a service (a deploy, a rollback) runs
//! under its lock, so two events cannot interleave their ECS calls, and what it decided is
//! recorded in the same write that releases the lock.

use super::errors::ServiceError;
use crate::domain::deployment::ServiceState;
use crate::domain::names::{ClusterName, ServiceName};
use crate::ports::{ServiceLocks, StateMove, StoreError};
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

fn lock_owner() -> String {
    format!("{:016x}", RandomState::new().hash_one(Utc::now().timestamp_nanos_opt()))
}

/// The least time left to start an irreversible step (UpdateService) and still record it
/// before the invocation ends; with less, the step waits for the retry.
pub const TIME_TO_RECORD: TimeDelta = TimeDelta::seconds(5);

/// Work done under the lock: its outcome, and the state pointer to move on release.
#[derive(Debug)]
pub struct LockedWork<T> {
    pub outcome: T,
    pub moves: Option<StateMove>,
}

impl<T> LockedWork<T> {
    /// An outcome that moves no pointer.
    pub fn only(outcome: T) -> Self {
        LockedWork { outcome, moves: None }
    }
}

/// Whether `deadline` leaves time to start an irreversible step at `now` and record it.
pub fn time_to_record(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ServiceError> {
    if deadline - now < TIME_TO_RECORD {
        return Err(ServiceError::OutOfTime);
    }
    Ok(())
}

/// Runs `work` with the service's state while holding its lock, then releases the lock and
/// moves the pointer `work` returned in the same write.
pub async fn with_service_lock<L, T, F, Fut>(
    locks: &L,
    cluster: &ClusterName,
    service: &ServiceName,
    deadline: DateTime<Utc>,
    work: F,
) -> Result<T, ServiceError>
where
    L: ServiceLocks,
    T: std::fmt::Debug,
    F: FnOnce(ServiceState) -> Fut,
    Fut: Future<Output = Result<LockedWork<T>, ServiceError>>,
{
    let owner = lock_owner();
    let give_up = (Utc::now() + LOCK_WAIT).min(deadline - TIME_TO_ACT);
    let mut pause = Duration::from_millis(50);
    let state = loop {
        let now = Utc::now();
        if let Some(state) = locks
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
    let moved = outcome.as_ref().ok().and_then(|work| work.moves.as_ref());
    let released = locks.release_service(cluster, service, &owner, moved).await;
    match (&outcome, released) {
        (_, Ok(true)) => {}
        // The lease ran out and another handler may have moved on: the pointer this work
        // meant to move was not moved, and the retry (a duplicate by then) repairs it.
        (Ok(work), Ok(false)) if work.moves.is_some() => {
            tracing::error!(%cluster, %service, result = ?work.outcome, "service lock expired before its release");
            return Err(StoreError::retryable(format!(
                "the lock on {cluster}/{service} expired before its release; the retry records the outcome"
            ))
            .into());
        }
        (_, Ok(false)) => tracing::warn!(%cluster, %service, "service lock expired before release"),
        (Err(original), Err(release)) => {
            // Both failed: return the first error, and log both so neither is lost.
            tracing::error!(%cluster, %service, error = %release, "releasing the service lock failed");
            tracing::error!(%cluster, %service, error = %original, "work under the lock failed");
        }
        (Ok(work), Err(release)) => {
            tracing::error!(%cluster, %service, result = ?work.outcome, "work done, but releasing the lock failed");
            return Err(release.into());
        }
    }
    outcome.map(|work| work.outcome)
}

/// The deadline Lambda gives (milliseconds since the epoch); without one (a hand-made
/// context) the template's 30 s.
pub fn deadline_of(context: &lambda_runtime::Context) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(context.deadline as i64)
        .filter(|deadline| *deadline > Utc::now())
        .unwrap_or_else(|| Utc::now() + TimeDelta::seconds(30))
}
