use crate::domain::names::{ClusterName, ContainerName, ServiceName};
use crate::domain::taskdef::{is_reserved_tag_key, pin_container_image, registration_body};
use crate::ports::{Ecs, EcsError, Registered, Running};
use crate::runtime::describe_sdk_error;
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

pub struct EcsAdapter {
    client: aws_sdk_ecs::Client,
}

impl EcsAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_ecs::Client::new(config),
        }
    }
}

fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, R>) -> EcsError {
    move |err| {
        let message = describe_sdk_error(operation, &err);
        match err.code() {
            Some("ClusterNotFoundException" | "ServiceNotFoundException" | "ServiceNotActiveException") => {
                EcsError::NotFound(message)
            }
            Some("ClientException" | "InvalidParameterException" | "AccessDeniedException") => {
                EcsError::Rejected(message)
            }
            _ => EcsError::Transient(message),
        }
    }
}

impl Ecs for EcsAdapter {
    async fn running_service(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Running, EcsError> {
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
        let found = out
            .services()
            .iter()
            .find(|s| s.service_name() == Some(service.as_str()) && s.status() == Some("ACTIVE"));
        let Some((found, task_definition)) = found.and_then(|s| Some((s, s.task_definition()?))) else {
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
    ) -> Result<Registered, EcsError> {
        let (described, registered_raw) = (RawResponse::default(), RawResponse::default());
        let mut out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .customize()
            .interceptor(described.clone())
            .send()
            .await
            .map_err(classify("DescribeTaskDefinition"))?;
        let def = out.task_definition.take().ok_or_else(|| {
            EcsError::Transient(format!(
                "DescribeTaskDefinition {task_definition} returned no definition"
            ))
        })?;
        let containers = pin_container_image(task_definition, def.container_definitions(), container, image)?;
        let tags: Vec<_> = out
            .tags
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.key().is_some_and(is_reserved_tag_key))
            .collect();
        let tags = Some(tags).filter(|tags| !tags.is_empty());
        // Everything RegisterTaskDefinition accepts, copied as it was.
        let registered = self
            .client
            .register_task_definition()
            .set_family(def.family)
            .set_task_role_arn(def.task_role_arn)
            .set_execution_role_arn(def.execution_role_arn)
            .set_network_mode(def.network_mode)
            .set_container_definitions(Some(containers))
            .set_volumes(def.volumes)
            .set_placement_constraints(def.placement_constraints)
            .set_requires_compatibilities(def.requires_compatibilities)
            .set_cpu(def.cpu)
            .set_memory(def.memory)
            .set_tags(tags)
            .set_pid_mode(def.pid_mode)
            .set_ipc_mode(def.ipc_mode)
            .set_proxy_configuration(def.proxy_configuration)
            .set_ephemeral_storage(def.ephemeral_storage)
            .set_runtime_platform(def.runtime_platform)
            .set_enable_fault_injection(def.enable_fault_injection)
            .customize()
            .interceptor(registered_raw.clone())
            .send()
            .await
            .map_err(classify("RegisterTaskDefinition"))?;
        let arn = registered
            .task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| EcsError::Transient("RegisterTaskDefinition returned no ARN".into()))?;
        let previous = described.json("DescribeTaskDefinition")?;
        // The new revision in DescribeTaskDefinition's shape: as registered, with the tags copied.
        let definition = serde_json::json!({
            "taskDefinition": registered_raw.json("RegisterTaskDefinition")?["taskDefinition"],
            "tags": previous["tags"],
        });
        Ok(Registered {
            arn,
            definition: definition.to_string(),
            previous_definition: previous.to_string(),
        })
    }

    async fn register_stored(&self, definition: &str) -> Result<String, EcsError> {
        let body = registration_body(definition).map_err(|e| EcsError::Rejected(e.to_string()))?;
        let family = body["family"].as_str().unwrap_or_default().to_owned();
        // The SDK cannot build a request from JSON, and ECS's JSON is what was stored: send it.
        let registered = self
            .client
            .register_task_definition()
            .family(family)
            .customize()
            .interceptor(ReplaceBody(body.to_string().into_bytes()))
            .send()
            .await
            .map_err(classify("RegisterTaskDefinition"))?;
        registered
            .task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| EcsError::Transient("RegisterTaskDefinition returned no ARN".into()))
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
            // ECS's answer for a revision it no longer has: "Unable to describe task definition."
            Err(err) if err.code() == Some("ClientException") => Ok(false),
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
            .send()
            .await
            .map_err(classify("UpdateService"))?;
        out.service()
            .and_then(|s| s.deployments().iter().find(|d| d.status() == Some("PRIMARY")))
            .and_then(|d| d.id())
            .map(str::to_owned)
            .ok_or_else(|| EcsError::Transient(format!("UpdateService on `{service}` returned no PRIMARY deployment")))
    }
}
