//! What the handlers need from ECS.

use crate::domain::deployment::DeploymentId;
use crate::domain::names::{ClusterName, ContainerName, ServiceName};
use crate::domain::taskdef::ContainerMissing;
use std::future::Future;

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

impl EcsError {
    pub fn error_type(&self) -> &'static str {
        match self {
            EcsError::NotFound(_) => "ServiceNotFound",
            EcsError::ContainerMissing(_) => "ContainerMissing",
            EcsError::Rejected(_) => "EcsRejected",
            EcsError::Transient(_) => "EcsUnavailable",
        }
    }
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

    /// Registers a new revision of `task_definition` identical but for `container`'s image,
    /// tagged with `deployment`. With `resuming` (an earlier attempt may have registered it
    /// and lost the answer), the family's newest revision is adopted if `deployment` made it.
    fn register_pinned(
        &self,
        task_definition: &str,
        container: &ContainerName,
        image: &str,
        deployment: &DeploymentId,
        resuming: bool,
    ) -> impl Future<Output = Result<Registered, EcsError>> + Send;

    /// Registers a stored definition (`Registered::definition`'s JSON) as a new revision,
    /// tagged with `deployment`: how a rollback gets back a revision ECS deregistered or
    /// deleted. With `resuming`, the family's newest revision is adopted if `deployment` made
    /// it. Returns its ARN.
    fn register_stored(
        &self,
        definition: &str,
        deployment: &DeploymentId,
        resuming: bool,
    ) -> impl Future<Output = Result<String, EcsError>> + Send;

    /// Whether ECS can still run this revision (not deregistered, not deleted).
    fn is_active(&self, task_definition: &str) -> impl Future<Output = Result<bool, EcsError>> + Send;

    /// The revision the service's deployment `ecs_deployment_id` runs, while ECS still lists
    /// that deployment on the service.
    fn deployment_revision(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        ecs_deployment_id: &str,
    ) -> impl Future<Output = Result<Option<String>, EcsError>> + Send;

    /// Points the service at `task_definition`; returns the new ECS deployment id (`ecs-svc/…`).
    fn update_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        task_definition: &str,
    ) -> impl Future<Output = Result<String, EcsError>> + Send;
}
