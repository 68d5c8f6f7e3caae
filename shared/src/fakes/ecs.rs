//! ECS in memory.

use super::{ServiceKey, service_key};
use crate::domain::deployment::DeploymentId;
use crate::domain::names::{ClusterName, ContainerName, ServiceName};
use crate::ports::{Ecs, EcsError, Registered, Running};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// ECS for a few services: revisions `td:N`, deployments `ecs-svc/N`, and a switch that
/// makes UpdateService fail before or after it applies. Clones share it.
#[derive(Clone, Default)]
pub struct FakeEcs {
    state: Arc<Mutex<EcsState>>,
}

#[derive(Default)]
struct EcsState {
    /// Service → (task definition, its deployments as (id, revision), newest last).
    services: HashMap<ServiceKey, (String, Vec<(String, String)>)>,
    revisions: Vec<String>,
    deployments: usize,
    update_fails: Option<UpdateFailure>,
    /// An update was applied and its answer lost: the check after it fails too.
    answer_lost: bool,
}

/// How a failing UpdateService fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFailure {
    /// Refused: the service is not moved.
    Refused,
    /// Applied by ECS, but the answer is lost (and so is the DescribeServices check after it).
    AnswerLost,
}

impl FakeEcs {
    /// ECS running each (cluster, service) on its task definition.
    pub fn with_services(services: &[(&ClusterName, &ServiceName, &str)]) -> Self {
        let ecs = FakeEcs::default();
        for (cluster, service, task_definition) in services {
            ecs.state.lock().unwrap().services.insert(
                service_key(cluster, service),
                (
                    task_definition.to_string(),
                    vec![(format!("ecs-svc/{service}-0"), task_definition.to_string())],
                ),
            );
        }
        ecs
    }

    /// The service is deleted: ECS no longer knows it.
    pub fn delete_service(&self, cluster: &ClusterName, service: &ServiceName) {
        self.state
            .lock()
            .unwrap()
            .services
            .remove(&service_key(cluster, service));
    }

    pub fn fail_updates(&self, failure: Option<UpdateFailure>) {
        let mut state = self.state.lock().unwrap();
        state.update_fails = failure;
        state.answer_lost = false;
    }

    pub fn running(&self, cluster: &ClusterName, service: &ServiceName) -> String {
        self.state.lock().unwrap().services[&service_key(cluster, service)]
            .0
            .clone()
    }

    /// The id of the last deployment UpdateService started on the service.
    pub fn last_deployment(&self, cluster: &ClusterName, service: &ServiceName) -> String {
        let state = self.state.lock().unwrap();
        let (_, deployments) = &state.services[&service_key(cluster, service)];
        deployments.last().expect("a service has a deployment").0.clone()
    }

    pub fn revisions(&self) -> Vec<String> {
        self.state.lock().unwrap().revisions.clone()
    }
}

impl Ecs for FakeEcs {
    async fn running_service(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Running, EcsError> {
        let state = self.state.lock().unwrap();
        if state.update_fails == Some(UpdateFailure::AnswerLost) && state.answer_lost {
            return Err(EcsError::Transient("DescribeServices: connection reset".into()));
        }
        let (task_definition, deployments) = state
            .services
            .get(&service_key(cluster, service))
            .ok_or_else(|| EcsError::NotFound(format!("service `{service}` not found in cluster `{cluster}`")))?;
        Ok(Running {
            task_definition: task_definition.clone(),
            primary_deployment_id: deployments.last().map(|(id, _)| id.clone()),
        })
    }

    async fn register_pinned(
        &self,
        task_definition: &str,
        _: &ContainerName,
        image: &str,
        _: &DeploymentId,
        _: bool,
    ) -> Result<Registered, EcsError> {
        let mut state = self.state.lock().unwrap();
        let arn = format!("td:{}", 100 + state.revisions.len());
        state.revisions.push(arn.clone());
        Ok(Registered {
            arn: arn.clone(),
            definition: format!("{{\"of\": \"{arn}\", \"image\": \"{image}\"}}"),
            previous_definition: format!("{{\"of\": \"{task_definition}\"}}"),
        })
    }

    async fn register_stored(&self, _definition: &str, _: &DeploymentId, _: bool) -> Result<String, EcsError> {
        let mut state = self.state.lock().unwrap();
        let arn = format!("td:{}", 100 + state.revisions.len());
        state.revisions.push(arn.clone());
        Ok(arn)
    }

    async fn is_active(&self, _task_definition: &str) -> Result<bool, EcsError> {
        Ok(true)
    }

    async fn deployment_revision(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        ecs_deployment_id: &str,
    ) -> Result<Option<String>, EcsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .services
            .get(&service_key(cluster, service))
            .and_then(|(_, deployments)| {
                deployments
                    .iter()
                    .find(|(id, _)| id == ecs_deployment_id)
                    .map(|(_, revision)| revision.clone())
            }))
    }

    async fn update_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        task_definition: &str,
    ) -> Result<String, EcsError> {
        let mut state = self.state.lock().unwrap();
        if state.update_fails == Some(UpdateFailure::Refused) {
            return Err(EcsError::Transient("UpdateService: ThrottlingException".into()));
        }
        state.deployments += 1;
        let id = format!("ecs-svc/{}", state.deployments);
        let entry = state
            .services
            .get_mut(&service_key(cluster, service))
            .ok_or_else(|| EcsError::NotFound(format!("service `{service}` not found")))?;
        entry.0 = task_definition.to_owned();
        entry.1.push((id.clone(), task_definition.to_owned()));
        if state.update_fails == Some(UpdateFailure::AnswerLost) {
            state.answer_lost = true;
            return Err(EcsError::Transient("UpdateService: operation timeout".into()));
        }
        Ok(id)
    }
}
