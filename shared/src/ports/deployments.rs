//! Deployment records: one per deploy or rollback, every change a conditional write from the
//! status it expects, so duplicates and races lose cleanly.
//!
//! A conditional write whose condition fails because our own earlier attempt already made
//! it (the SDK retried after a lost answer) counts as written: implementations read the
//! record back and compare.

use super::StoreError;
use crate::domain::deployment::{Deployment, DeploymentId, Status};
use crate::domain::names::{ClusterName, ServiceName};
use std::future::Future;

/// One page of a service's history, newest first. History rows leave out the stored task
/// definitions (the index does not copy them); `get_deployment` has them.
#[derive(Debug)]
pub struct HistoryPage {
    pub deployments: Vec<Deployment>,
    /// Pass back to get the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Every deployment HELD now (by its stage's deploy window or a freeze), read in full.
pub async fn held_records<D: Deployments>(records: &D) -> Result<Vec<Deployment>, StoreError> {
    let mut held = Vec::new();
    for id in records.held_deployments().await? {
        if let Some(record) = records.get_deployment(&id).await?
            && record.status == Status::Held
        {
            held.push(record);
        }
    }
    Ok(held)
}

pub trait Deployments: Send + Sync {
    /// Creates the record unless one with its id exists beyond REQUESTED (a REQUESTED one is
    /// the leftover of an attempt that died mid-way and is taken over). `false` = duplicate.
    fn create_deployment(&self, deployment: &Deployment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes the record if it is still in `from`; `false` if it moved on meanwhile.
    fn save_transition(
        &self,
        deployment: &Deployment,
        from: Status,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Saves, on a record still in the status it was claimed in (REQUESTED for a push or a
    /// rollback, APPROVED for a promotion: `deployment.status`), the revision registered for it
    /// (ARN and both definitions), before the service is touched; `false` if it moved on.
    fn record_registration(&self, deployment: &Deployment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a REQUESTED record whose deploy did not happen.
    fn delete_requested(&self, id: &DeploymentId) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_deployment(&self, id: &DeploymentId) -> impl Future<Output = Result<Option<Deployment>, StoreError>> + Send;

    /// The deployment ECS knows as `ecs_deployment_id` (`ecs-svc/…`), if we recorded it.
    fn by_ecs_deployment(
        &self,
        ecs_deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Deployment>, StoreError>> + Send;

    /// Every deployment HELD by its stage's deploy window or a freeze.
    fn held_deployments(&self) -> impl Future<Output = Result<Vec<DeploymentId>, StoreError>> + Send;

    /// A page of the service's deployments, newest first. A row that cannot be read is left
    /// out and logged, so one bad row does not hide the rest.
    fn history(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        limit: i32,
        after: Option<&str>,
    ) -> impl Future<Output = Result<HistoryPage, StoreError>> + Send;
}
