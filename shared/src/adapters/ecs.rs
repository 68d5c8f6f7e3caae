//! ECS over the SDK. Task definitions travel as ECS's own JSON (captured from responses,
//! sent as request bodies): what is registered is exactly what was described, field for field,
//! and the SDK's types (which have no serde) never reach the domain.

use super::describe_sdk_error;
use crate::domain::deployment::DeploymentId;
use crate::domain::names::{ClusterName, ContainerName, ServiceName};
use crate::domain::taskdef::{PinError, pinned_registration_body, registered_by, registration_body_for};
use crate::ports::{Ecs, EcsError, Registered, Running};
use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::TaskDefinitionField;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};

/// Keeps the raw JSON body of the response to the call it is attached to: ECS's own shape of
/// a task definition, which can be stored and registered again (the SDK's types have no serde).
#[derive(Clone, Debug, Default)]
struct RawResponse(Arc<Mutex<Option<Vec<u8>>>>);

impl Intercept for RawResponse {
    fn name(&self) -> &'static str {
        "RawResponse"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The orchestrator has read the whole body into memory by now.
        let body = context.response().body().bytes().map(<[u8]>::to_vec);
        *self.0.lock().expect("not poisoned") = body;
        Ok(())
    }
}

impl RawResponse {
    fn json(&self, operation: &str) -> Result<serde_json::Value, EcsError> {
        let body = self.0.lock().expect("not poisoned").take();
        body.and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| EcsError::Transient(format!("{operation}: response body was not JSON")))
    }
}

/// Sends this JSON as the request body instead of what the SDK serialized. Set before signing,
/// so the signature covers it.
#[derive(Debug)]
struct ReplaceBody(Vec<u8>);

impl Intercept for ReplaceBody {
    fn name(&self) -> &'static str {
        "ReplaceBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        request.headers_mut().insert("content-length", self.0.len().to_string());
        *request.body_mut() = SdkBody::from(self.0.clone());
        Ok(())
    }
}

#[derive(Clone)]
pub struct EcsAdapter {
    client: aws_sdk_ecs::Client,
}

impl EcsAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(config),
        }
    }

    /// The newest revision of `described`'s family (ARN and ECS's JSON), if `deployment`
    /// registered it: an earlier attempt's registration whose answer was lost.
    async fn registered_before(
        &self,
        described: &serde_json::Value,
        deployment: &DeploymentId,
    ) -> Result<Option<(String, serde_json::Value)>, EcsError> {
        let Some(family) = described["taskDefinition"]["family"].as_str() else {
            return Ok(None);
        };
        let newest = match self.describe(family).await {
            Ok(newest) => newest,
            // No ACTIVE revision of the family left: nothing registered to adopt.
            Err(EcsError::Rejected(_)) => return Ok(None),
            Err(err) => return Err(err),
        };
        match newest["taskDefinition"]["taskDefinitionArn"].as_str() {
            Some(arn) if registered_by(&newest, deployment.as_str()) => {
                tracing::info!(%deployment, %arn, "adopted the revision an earlier attempt registered");
                Ok(Some((arn.to_owned(), newest)))
            }
            _ => Ok(None),
        }
    }

    /// The service as DescribeServices describes it, if it exists and is ACTIVE.
    async fn describe_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> Result<Option<aws_sdk_ecs::types::Service>, EcsError> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster.as_str())
            .services(service.as_str())
            .send()
            .await
            .map_err(classify("DescribeServices"))
            .map_err(|err| match err {
                EcsError::NotFound(message) => EcsError::NotFound(format!("cluster `{cluster}`: {message}")),
                other => other,
            })?;
        Ok(out
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.service_name() == Some(service.as_str()) && s.status() == Some("ACTIVE")))
    }

    /// DescribeTaskDefinition's response with tags, as ECS's JSON: the revision `task_definition`
    /// (an ARN, `family:revision`, or a family for its newest ACTIVE revision).
    async fn describe(&self, task_definition: &str) -> Result<serde_json::Value, EcsError> {
        let described = RawResponse::default();
        self.client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .customize()
            .interceptor(described.clone())
            .send()
            .await
            .map_err(classify("DescribeTaskDefinition"))?;
        described.json("DescribeTaskDefinition")
    }

    /// Registers RegisterTaskDefinition's JSON `body` as it is (the SDK cannot build a request
    /// from JSON); `response` keeps ECS's answer. Returns the new revision's ARN.
    async fn register_body(&self, body: serde_json::Value, response: RawResponse) -> Result<String, EcsError> {
        let family = body["family"].as_str().unwrap_or_default().to_owned();
        let registered = self
            .client
            .register_task_definition()
            .family(family)
            .customize()
            .config_override(not_retried())
            .interceptor(ReplaceBody(body.to_string().into_bytes()))
            .interceptor(response)
            .send()
            .await
            .map_err(classify("RegisterTaskDefinition"))?;
        registered
            .task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| EcsError::Transient("RegisterTaskDefinition returned no ARN".into()))
    }
}

/// RegisterTaskDefinition and UpdateService are not idempotent: an SDK retry after a lost
/// answer registers a second revision or starts a second deployment. They are tried once;
/// the handlers check what ECS did before they try again.
fn not_retried() -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::config::Builder::default().retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
}

/// ECS's error codes, sorted by what a caller can do about them.
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, R>) -> EcsError {
    move |err| {
        let message = describe_sdk_error(operation, &err);
        error_class(err.code(), err.message(), message)
    }
}

fn error_class(code: Option<&str>, text: Option<&str>, message: String) -> EcsError {
    match code {
        Some("ClusterNotFoundException" | "ServiceNotFoundException" | "ServiceNotActiveException") => {
            EcsError::NotFound(message)
        }
        // ECS answers a burst of RegisterTaskDefinition calls on one family with a
        // ClientException "Too many concurrent attempts to create a new revision": a retry
        // goes through.
        Some("ClientException") if text.is_some_and(|t| t.contains("Too many concurrent attempts")) => {
            EcsError::Transient(message)
        }
        Some(
            "ClientException"
            | "InvalidParameterException"
            | "AccessDeniedException"
            | "PlatformUnknownException"
            | "PlatformTaskDefinitionIncompatibilityException"
            | "UnsupportedFeatureException",
        ) => EcsError::Rejected(message),
        _ => EcsError::Transient(message),
    }
}

/// What DescribeTaskDefinition answers for a revision ECS no longer has (deleted, or never
/// registered): a ClientException with this message. Any other ClientException is an error.
fn revision_gone(code: Option<&str>, text: Option<&str>) -> bool {
    code == Some("ClientException") && text.is_some_and(|t| t.contains("Unable to describe task definition"))
}

impl Ecs for EcsAdapter {
    async fn running_service(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Running, EcsError> {
        let found = self.describe_service(cluster, service).await?;
        let Some((found, task_definition)) = found.as_ref().and_then(|s| Some((s, s.task_definition()?))) else {
            return Err(EcsError::NotFound(format!(
                "service `{service}` not found in cluster `{cluster}`"
            )));
        };
        let primary = found.deployments().iter().find(|d| d.status() == Some("PRIMARY"));
        Ok(Running {
            task_definition: task_definition.to_owned(),
            primary_deployment_id: primary.and_then(|d| d.id()).map(str::to_owned),
        })
    }

    async fn register_pinned(
        &self,
        task_definition: &str,
        container: &ContainerName,
        image: &str,
        deployment: &DeploymentId,
        resuming: bool,
    ) -> Result<Registered, EcsError> {
        let previous = self.describe(task_definition).await?;
        if resuming && let Some(newest) = self.registered_before(&previous, deployment).await? {
            return Ok(Registered {
                arn: newest.0,
                definition: newest.1.to_string(),
                previous_definition: previous.to_string(),
            });
        }
        let body = pinned_registration_body(
            task_definition,
            &previous.to_string(),
            container,
            image,
            deployment.as_str(),
        )
        .map_err(|err| match err {
            PinError::ContainerMissing(missing) => EcsError::ContainerMissing(missing),
            PinError::Unusable(unusable) => EcsError::Rejected(format!("{task_definition}: {unusable}")),
        })?;
        let tags = body["tags"].clone();
        let registered = RawResponse::default();
        let arn = self.register_body(body, registered.clone()).await?;
        // The new revision in DescribeTaskDefinition's shape: as registered, with its tags.
        let definition = serde_json::json!({
            "taskDefinition": registered.json("RegisterTaskDefinition")?["taskDefinition"],
            "tags": tags,
        });
        Ok(Registered {
            arn,
            definition: definition.to_string(),
            previous_definition: previous.to_string(),
        })
    }

    async fn register_stored(
        &self,
        definition: &str,
        deployment: &DeploymentId,
        resuming: bool,
    ) -> Result<String, EcsError> {
        let stored: serde_json::Value =
            serde_json::from_str(definition).map_err(|e| EcsError::Rejected(format!("stored definition: {e}")))?;
        if resuming && let Some((arn, _)) = self.registered_before(&stored, deployment).await? {
            return Ok(arn);
        }
        let body =
            registration_body_for(definition, deployment.as_str()).map_err(|e| EcsError::Rejected(e.to_string()))?;
        self.register_body(body, RawResponse::default()).await
    }

    async fn is_active(&self, task_definition: &str) -> Result<bool, EcsError> {
        let result = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .task_definition()
                .and_then(|td| td.status())
                .is_some_and(|status| status.as_str() == "ACTIVE")),
            Err(err) if revision_gone(err.code(), err.message()) => Ok(false),
            Err(err) => Err(classify("DescribeTaskDefinition")(err)),
        }
    }

    async fn update_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        task_definition: &str,
    ) -> Result<String, EcsError> {
        let out = self
            .client
            .update_service()
            .cluster(cluster.as_str())
            .service(service.as_str())
            .task_definition(task_definition)
            // Always start a deployment with a fresh id, also when the ARN is unchanged.
            .force_new_deployment(true)
            .customize()
            .config_override(not_retried())
            .send()
            .await
            .map_err(classify("UpdateService"))?;
        out.service()
            .and_then(|s| s.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
            .and_then(|d| d.id())
            .map(str::to_owned)
            .ok_or_else(|| EcsError::Transient(format!("UpdateService on `{service}` returned no PRIMARY deployment")))
    }

    async fn deployment_revision(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        ecs_deployment_id: &str,
    ) -> Result<Option<String>, EcsError> {
        let found = self.describe_service(cluster, service).await?;
        Ok(found
            .iter()
            .flat_map(|s| s.deployments())
            .find(|d| d.id() == Some(ecs_deployment_id))
            .and_then(|d| d.task_definition())
            .map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_error_codes_are_sorted_by_what_a_retry_can_do() {
        let class = |code: &str, text: &str| error_class(Some(code), Some(text), String::new()).error_type();
        assert_eq!(class("ServiceNotFoundException", ""), "ServiceNotFound");
        assert_eq!(class("ClusterNotFoundException", ""), "ServiceNotFound");
        assert_eq!(class("ServiceNotActiveException", ""), "ServiceNotFound");
        assert_eq!(
            class(
                "ClientException",
                "Too many concurrent attempts to create a new revision of the specified family."
            ),
            "EcsUnavailable"
        );
        assert_eq!(
            class("ClientException", "Container.image should not be null"),
            "EcsRejected"
        );
        assert_eq!(class("InvalidParameterException", ""), "EcsRejected");
        assert_eq!(class("AccessDeniedException", ""), "EcsRejected");
        assert_eq!(class("ThrottlingException", "Rate exceeded"), "EcsUnavailable");
        assert_eq!(class("ServerException", ""), "EcsUnavailable");
        assert_eq!(error_class(None, None, String::new()).error_type(), "EcsUnavailable");
    }

    #[test]
    fn only_ecs_unable_to_describe_means_the_revision_is_gone() {
        assert!(revision_gone(
            Some("ClientException"),
            Some("Unable to describe task definition.")
        ));
        assert!(!revision_gone(Some("ClientException"), Some("User is not authorized")));
        assert!(!revision_gone(
            Some("ServerException"),
            Some("Unable to describe task definition.")
        ));
    }
}

/// A task's `cpu` (units, or `1 vCPU`) in vCPU, or its `memory` (MiB, or `2 GB`) in GB.
fn task_size(value: Option<&str>, unit_per_one: f64, suffix: &str) -> f64 {
    let Some(value) = value.map(str::trim) else {
        return 0.0;
    };
    match value.strip_suffix(suffix) {
        Some(whole) => whole.trim().parse().unwrap_or(0.0),
        None => value.parse::<f64>().map_or(0.0, |units| units / unit_per_one),
    }
}

impl crate::ports::ServiceInventory for EcsAdapter {
    async fn service_shape(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> Result<Option<crate::domain::cost::ServiceShape>, EcsError> {
        use aws_sdk_ecs::types::{CpuArchitecture, LaunchType};
        let found = match self.describe_service(cluster, service).await {
            Ok(Some(found)) => found,
            Ok(None) | Err(EcsError::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err),
        };
        let Some(task_definition) = found.task_definition() else {
            return Ok(None);
        };
        let described = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(classify("DescribeTaskDefinition"))?;
        let Some(definition) = described.task_definition() else {
            return Ok(None);
        };
        // A capacity provider strategy wins over the launch type; its weights say the share
        // of tasks each provider runs (a `base` is left out of the estimate).
        let strategy = found.capacity_provider_strategy();
        let (fargate, spot_share) = if strategy.is_empty() {
            let fargate = match found.launch_type() {
                Some(launch) => *launch == LaunchType::Fargate,
                None => definition
                    .requires_compatibilities()
                    .iter()
                    .any(|c| c.as_str() == "FARGATE"),
            };
            (fargate, 0.0)
        } else {
            let weight = |name: &str| -> f64 {
                strategy
                    .iter()
                    .filter(|s| s.capacity_provider() == name)
                    .map(|s| f64::from(s.weight()))
                    .sum()
            };
            let total: f64 = strategy.iter().map(|s| f64::from(s.weight())).sum();
            let all_fargate = strategy
                .iter()
                .all(|s| matches!(s.capacity_provider(), "FARGATE" | "FARGATE_SPOT"));
            let spot = if total > 0.0 {
                weight("FARGATE_SPOT") / total
            } else {
                0.0
            };
            (all_fargate, spot)
        };
        Ok(Some(crate::domain::cost::ServiceShape {
            running: u32::try_from(found.running_count()).unwrap_or(0),
            desired: u32::try_from(found.desired_count()).unwrap_or(0),
            vcpu: task_size(definition.cpu(), 1024.0, "vCPU"),
            memory_gb: task_size(definition.memory(), 1024.0, "GB"),
            arm64: definition
                .runtime_platform()
                .and_then(|p| p.cpu_architecture())
                .is_some_and(|a| *a == CpuArchitecture::Arm64),
            fargate,
            spot_share,
        }))
    }
}

#[cfg(test)]
mod inventory_tests {
    use super::task_size;

    #[test]
    fn task_sizes_read_in_units_or_words() {
        assert_eq!(task_size(Some("512"), 1024.0, "vCPU"), 0.5);
        assert_eq!(task_size(Some("1 vCPU"), 1024.0, "vCPU"), 1.0);
        assert_eq!(task_size(Some("2048"), 1024.0, "GB"), 2.0);
        assert_eq!(task_size(Some("4 GB"), 1024.0, "GB"), 4.0);
        assert_eq!(task_size(None, 1024.0, "GB"), 0.0);
    }
}
