//! The narrow interfaces the handlers need from the outside world. Adapters implement them
//! over the AWS SDK; the handlers never see an SDK client.

use crate::domain::deployment::{Deployment, DeploymentId, Pointer, ServiceState, Status};
use crate::domain::names::{ClusterName, ContainerName, ImageDigest, ServiceName};
use crate::domain::rollback::Notice;
use crate::domain::taskdef::ContainerMissing;
use chrono::{DateTime, Utc};
use std::future::Future;

/// A DynamoDB call failed (throttling, 5xx, network): worth a retry.
#[derive(Debug, thiserror::Error)]
#[error("records: {0}")]
pub struct StoreError(pub String);

/// Which pointer of the service state a finished deployment moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Latest,
    AwaitingApproval,
}

/// One page of a service's history, newest first.
#[derive(Debug)]
pub struct Page {
    pub deployments: Vec<Deployment>,
    /// Pass back to get the next page; `None` on the last one.
    pub next: Option<String>,
}

pub trait Records: Send + Sync {
    /// Takes the service's lock until `until` unless another owner holds an unexpired one;
    /// returns the service state on success, `None` while someone else holds it.
    fn lock_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<ServiceState>, StoreError>> + Send;

    /// Releases the lock and, in the same write, moves `slot` to `pointer`. `false` if the
    /// lock was no longer ours (its lease ran out).
    fn release_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        moved: Option<(Slot, &Pointer)>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Creates the record unless one with its id exists beyond REQUESTED (a REQUESTED one is
    /// the leftover of an attempt that died mid-way and is taken over). `false` = duplicate.
    fn create_deployment(&self, deployment: &Deployment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes the record if it is still in `from`; `false` if it moved on meanwhile.
    fn save_transition(
        &self,
        deployment: &Deployment,
        from: Status,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Saves, on a record still REQUESTED, the revision registered for it (ARN and both
    /// definitions), before the service is touched; `false` if it is no longer REQUESTED.
    fn record_registration(&self, deployment: &Deployment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a REQUESTED record whose deploy did not happen.
    fn delete_requested(&self, id: &DeploymentId) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_deployment(&self, id: &DeploymentId) -> impl Future<Output = Result<Option<Deployment>, StoreError>> + Send;

    /// The deployment ECS knows as `ecs_deployment_id` (`ecs-svc/…`), if we recorded it.
    fn by_ecs_deployment(
        &self,
        ecs_deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Deployment>, StoreError>> + Send;

    /// Points the service's `last_known_good` at this SUCCEEDED deployment unless a later
    /// completion already holds it; `false` then.
    fn record_last_known_good(&self, deployment: &Deployment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn history(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        limit: i32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// Adds the digest to the service's quarantine (idempotent).
    fn quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the digest out of the quarantine; `false` if it was not in it.
    fn lift_quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether the notice keyed `key` was sent.
    fn notified(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the notice keyed `key` sent; the marker expires at `expires`.
    fn mark_notified(&self, key: &str, expires: DateTime<Utc>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum EcsError {
    /// The cluster or service does not exist (or is not ACTIVE): the pipeline file and the
    /// account disagree.
    #[error("{0}")]
    NotFound(String),
    /// ECS refused the request as invalid; retrying will not help.
    #[error("ECS rejected the request: {0}")]
    Rejected(String),
    #[error(transparent)]
    ContainerMissing(#[from] ContainerMissing),
    /// Throttling, 5xx, network: worth a retry.
    #[error("ECS: {0}")]
    Transient(String),
}

/// A revision registered from another, both in ECS's own JSON (DescribeTaskDefinition's
/// response with tags: `{"taskDefinition": {…}, "tags": […]}`), so either can be registered
/// again if ECS ever loses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub arn: String,
    pub definition: String,
    pub previous_definition: String,
}

/// What a service runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub task_definition: String,
    /// The PRIMARY deployment's id, `ecs-svc/…`.
    pub primary_deployment_id: Option<String>,
}

pub trait Ecs: Send + Sync {
    fn running_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> impl Future<Output = Result<Running, EcsError>> + Send;

    /// Registers a new revision of `task_definition` identical but for `container`'s image.
    fn register_pinned(
        &self,
        task_definition: &str,
        container: &ContainerName,
        image: &str,
    ) -> impl Future<Output = Result<Registered, EcsError>> + Send;

    /// Registers a stored definition (`Registered::definition`'s JSON) as a new revision:
    /// how a rollback gets back a revision ECS deregistered or deleted. Returns its ARN.
    fn register_stored(&self, definition: &str) -> impl Future<Output = Result<String, EcsError>> + Send;

    /// Whether ECS can still run this revision (not deregistered, not deleted).
    fn is_active(&self, task_definition: &str) -> impl Future<Output = Result<bool, EcsError>> + Send;

    /// Points the service at `task_definition`; returns the new ECS deployment id (`ecs-svc/…`).
    fn update_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        task_definition: &str,
    ) -> impl Future<Output = Result<String, EcsError>> + Send;
}

/// Publishing failed (throttling, 5xx, network, or a wrong topic): worth a retry.
#[derive(Debug, thiserror::Error)]
#[error("notify: {0}")]
pub struct NotifyError(pub String);

pub trait Notifier: Send + Sync {
    fn publish(&self, notice: &Notice) -> impl Future<Output = Result<(), NotifyError>> + Send;
}
