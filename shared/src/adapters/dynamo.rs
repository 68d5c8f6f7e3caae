//! The one table. Keys (see README, "Records"):
//! - deployment:    pk `DEP#<id>`, sk `DEP`; GSI `by-service` (svc_pk `SVC#<cluster>#<service>`,
//!   svc_sk `<requested_at>#<id>`) for history; GSI `by-ecs-deployment` (ecs_deployment_id).
//! - service state: pk `SVC#<cluster>#<service>`, sk `STATE` (lock, latest, awaiting_approval,
//!   last_known_good, quarantined).
//! - notice sent:   pk `NOTE#<key>`, sk `NOTE`, expiring (TTL `expires_at`).

use crate::domain::deployment::{Deployment, DeploymentId, Kind, Pointer, PushedImage, ServiceState, Status};
use crate::domain::names::{ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName};
use crate::ports::{Page, Records, Slot, StoreError};
use crate::runtime::describe_sdk_error;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::RequestId;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

pub const BY_SERVICE_INDEX: &str = "by-service";
pub const BY_ECS_DEPLOYMENT_INDEX: &str = "by-ecs-deployment";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoRecords {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoRecords {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }
}

fn deployment_key(id: &DeploymentId) -> Item {
    HashMap::from([("pk".to_owned(), s(format!("DEP#{id}"))), ("sk".to_owned(), s("DEP"))])
}

fn notice_key(key: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("NOTE#{key}"))),
        ("sk".to_owned(), s("NOTE")),
    ])
}

fn service_pk(cluster: &ClusterName, service: &ServiceName) -> String {
    format!("SVC#{cluster}#{service}")
}

fn state_key(cluster: &ClusterName, service: &ServiceName) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(service_pk(cluster, service))),
        ("sk".to_owned(), s("STATE")),
    ])
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn time(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn millis(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp_millis().to_string())
}

fn store_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| StoreError(describe_sdk_error(operation, &err))
}

/// True when the error is a failed condition: the write lost a race, which is an answer.
fn condition_failed<E: RequestId + aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// A conditional write's answer: `true` written, `false` its condition did not hold (the write
/// lost a race, or found its work done), an error otherwise.
fn conditional<O, E, R>(operation: &'static str, result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: RequestId + aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if condition_failed(&err) => Ok(false),
        Err(err) => Err(store_error(operation)(err)),
    }
}

fn deployment_item(d: &Deployment) -> Item {
    let mut item = deployment_key(&d.id);
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put("svc_pk", s(service_pk(&d.cluster, &d.service)));
    put(
        "svc_sk",
        s(format!(
            "{}#{}",
            d.requested_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            d.id
        )),
    );
    put("id", s(d.id.as_str()));
    match &d.kind {
        Kind::Deploy => put("kind", s("deploy")),
        Kind::Rollback { of, cause } => {
            put("kind", s("rollback"));
            put("rollback_of", s(of.as_str()));
            put("rollback_cause", s(cause));
        }
    }
    put("status", s(d.status.as_str()));
    put("stage", s(d.stage.as_str()));
    put("cluster", s(d.cluster.as_str()));
    put("service", s(d.service.as_str()));
    put("container", s(d.container.as_str()));
    put("repository", s(d.image.repository.as_str()));
    put("tag", s(d.image.tag.as_str()));
    put("digest", s(d.image.digest.as_str()));
    put("image", s(&d.image.uri));
    put("pushed_at", time(d.image.pushed_at));
    put("requested_at", time(d.requested_at));
    put("updated_at", time(d.updated_at));
    if let Some(at) = d.completed_at {
        put("completed_at", time(at));
    }
    let optional = [
        ("previous_task_definition", d.previous_task_definition.as_deref()),
        ("task_definition", d.task_definition.as_deref()),
        ("ecs_deployment_id", d.ecs_deployment_id.as_deref()),
        ("superseded_by", d.superseded_by.as_ref().map(|id| id.as_str())),
        ("ecs_reason", d.ecs_reason.as_deref()),
        ("definition", d.definition.as_deref()),
        ("previous_definition", d.previous_definition.as_deref()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            put(k, s(v));
        }
    }
    item
}

/// Reads the attributes back; a stored item that fails this was not written by us.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn opt(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(|v| v.as_s().ok()).cloned()
    }

    fn req(&self, key: &str) -> Result<String, StoreError> {
        self.opt(key)
            .ok_or_else(|| StoreError(format!("stored item lacks `{key}`")))
    }

    fn parsed<T, E: std::fmt::Display>(
        &self,
        key: &str,
        parse: impl FnOnce(String) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(self.req(key)?).map_err(|e| StoreError(format!("stored `{key}`: {e}")))
    }

    fn time(&self, key: &str) -> Result<DateTime<Utc>, StoreError> {
        self.parsed(key, |v| DateTime::parse_from_rfc3339(&v).map(|t| t.with_timezone(&Utc)))
    }
}

fn deployment_from(item: &Item) -> Result<Deployment, StoreError> {
    let r = Reader(item);
    Ok(Deployment {
        id: DeploymentId::from_stored(r.req("id")?),
        kind: match (r.req("kind")?.as_str(), r.opt("rollback_of")) {
            ("deploy", _) => Kind::Deploy,
            ("rollback", Some(of)) => Kind::Rollback {
                of: DeploymentId::from_stored(of),
                cause: r.opt("rollback_cause").unwrap_or_default(),
            },
            (other, _) => {
                return Err(StoreError(format!(
                    "stored `kind` {other} is unknown or lacks rollback_of"
                )));
            }
        },
        status: r.parsed("status", |v| Status::parse(&v).ok_or(format!("unknown status {v}")))?,
        stage: r.parsed("stage", StageName::parse)?,
        cluster: r.parsed("cluster", ClusterName::parse)?,
        service: r.parsed("service", ServiceName::parse)?,
        container: r.parsed("container", ContainerName::parse)?,
        image: PushedImage {
            repository: r.parsed("repository", RepositoryName::parse)?,
            tag: r.parsed("tag", ImageTag::parse)?,
            digest: r.parsed("digest", ImageDigest::parse)?,
            uri: r.req("image")?,
            pushed_at: r.time("pushed_at")?,
        },
        requested_at: r.time("requested_at")?,
        updated_at: r.time("updated_at")?,
        previous_task_definition: r.opt("previous_task_definition"),
        task_definition: r.opt("task_definition"),
        ecs_deployment_id: r.opt("ecs_deployment_id"),
        superseded_by: r.opt("superseded_by").map(DeploymentId::from_stored),
        completed_at: r.opt("completed_at").map(|_| r.time("completed_at")).transpose()?,
        ecs_reason: r.opt("ecs_reason"),
        definition: r.opt("definition"),
        previous_definition: r.opt("previous_definition"),
    })
}

fn pointer_value(p: &Pointer) -> AttributeValue {
    let mut pointer = HashMap::from([
        ("id".to_owned(), s(p.id.as_str())),
        ("pushed_at".to_owned(), time(p.pushed_at)),
    ]);
    if let Some(digest) = &p.digest {
        pointer.insert("digest".to_owned(), s(digest.as_str()));
    }
    AttributeValue::M(pointer)
}

fn pointer_from(item: &Item, key: &str) -> Result<Option<Pointer>, StoreError> {
    let Some(map) = item.get(key).and_then(|v| v.as_m().ok()) else {
        return Ok(None);
    };
    let r = Reader(map);
    Ok(Some(Pointer {
        id: DeploymentId::from_stored(r.req("id")?),
        digest: r
            .opt("digest")
            .map(|_| r.parsed("digest", ImageDigest::parse))
            .transpose()?,
        pushed_at: r.time("pushed_at")?,
    }))
}

fn slot_attribute(slot: Slot) -> &'static str {
    match slot {
        Slot::Latest => "latest",
        Slot::AwaitingApproval => "awaiting_approval",
    }
}

impl Records for DynamoRecords {
    async fn lock_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ServiceState>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .update_expression("SET lock_owner = :owner, lock_until = :until")
            // Ours already: an SDK retry of this very write whose first answer was lost.
            .condition_expression("attribute_not_exists(lock_until) OR lock_until < :now OR lock_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", millis(until))
            .expression_attribute_values(":now", millis(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let quarantined = match item.get("quarantined").and_then(|v| v.as_ss().ok()) {
                    Some(digests) => digests
                        .iter()
                        .map(|d| {
                            ImageDigest::parse(d.clone()).map_err(|e| StoreError(format!("stored `quarantined`: {e}")))
                        })
                        .collect::<Result<_, _>>()?,
                    None => vec![],
                };
                Ok(Some(ServiceState {
                    latest: pointer_from(&item, "latest")?,
                    awaiting_approval: pointer_from(&item, "awaiting_approval")?,
                    quarantined,
                }))
            }
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(store_error("UpdateItem")(err)),
        }
    }

    async fn release_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        moved: Option<(Slot, &Pointer)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .condition_expression("lock_owner = :owner")
            .expression_attribute_values(":owner", s(owner));
        request = match moved {
            Some((slot, pointer)) => request
                .update_expression(format!(
                    "SET {} = :pointer REMOVE lock_owner, lock_until",
                    slot_attribute(slot)
                ))
                .expression_attribute_values(":pointer", pointer_value(pointer)),
            None => request.update_expression("REMOVE lock_owner, lock_until"),
        };
        conditional("UpdateItem", request.send().await)
    }

    async fn create_deployment(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(deployment_item(deployment)))
            .condition_expression("attribute_not_exists(pk) OR #status = :requested")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":requested", s(Status::Requested.as_str()))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn save_transition(&self, deployment: &Deployment, from: Status) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(deployment_item(deployment)))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", s(from.as_str()))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn record_registration(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let text = |value: &Option<String>| s(value.clone().unwrap_or_default());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(&deployment.id)))
            .update_expression("SET task_definition = :td, #definition = :def, previous_definition = :prev")
            .condition_expression("#status = :requested")
            .expression_attribute_names("#status", "status")
            // `definition` is a DynamoDB reserved word.
            .expression_attribute_names("#definition", "definition")
            .expression_attribute_values(":requested", s(Status::Requested.as_str()))
            .expression_attribute_values(":td", text(&deployment.task_definition))
            .expression_attribute_values(":def", text(&deployment.definition))
            .expression_attribute_values(":prev", text(&deployment.previous_definition))
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn delete_requested(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .condition_expression("#status = :requested")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":requested", s(Status::Requested.as_str()))
            .send()
            .await;
        // Already gone, or no longer REQUESTED: either way nothing to undo.
        conditional("DeleteItem", result).map(|_| ())
    }

    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        out.item.as_ref().map(deployment_from).transpose()
    }

    async fn by_ecs_deployment(&self, ecs_deployment_id: &str) -> Result<Option<Deployment>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_ECS_DEPLOYMENT_INDEX)
            .key_condition_expression("ecs_deployment_id = :id")
            .expression_attribute_values(":id", s(ecs_deployment_id))
            .limit(1)
            .send()
            .await
            .map_err(store_error("Query"))?;
        out.items().first().map(deployment_from).transpose()
    }

    async fn record_last_known_good(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let Some(completed_at) = deployment.completed_at else {
            return Err(StoreError(format!("{} has no completion time", deployment.id)));
        };
        let mut good = HashMap::from([
            ("id".to_owned(), s(deployment.id.as_str())),
            ("completed_at".to_owned(), time(completed_at)),
        ]);
        if let Some(task_definition) = &deployment.task_definition {
            good.insert("task_definition".to_owned(), s(task_definition));
        }
        if let Some(image) = deployment.image_running() {
            good.insert("image".to_owned(), s(image));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(&deployment.cluster, &deployment.service)))
            .update_expression("SET last_known_good = :good")
            .condition_expression("attribute_not_exists(last_known_good) OR last_known_good.completed_at <= :at")
            .expression_attribute_values(":good", AttributeValue::M(good))
            .expression_attribute_values(":at", time(completed_at))
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn history(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        limit: i32,
        after: Option<&str>,
    ) -> Result<Page, StoreError> {
        let svc_pk = service_pk(cluster, service);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_SERVICE_INDEX)
            .key_condition_expression("svc_pk = :svc")
            .expression_attribute_values(":svc", s(&svc_pk))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(cursor) = after {
            // The cursor is the last item's svc_sk, `<requested_at>#<id>`: enough to rebuild its key.
            let id = cursor.rsplit('#').next().unwrap_or_default();
            let mut start = deployment_key(&DeploymentId::from_stored(id.to_owned()));
            start.insert("svc_pk".into(), s(&svc_pk));
            start.insert("svc_sk".into(), s(cursor));
            query = query.set_exclusive_start_key(Some(start));
        }
        let out = query.send().await.map_err(store_error("Query"))?;
        let deployments = out.items().iter().map(deployment_from).collect::<Result<Vec<_>, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|key| key.get("svc_sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(Page { deployments, next })
    }

    async fn quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .update_expression("ADD quarantined :digest")
            .expression_attribute_values(":digest", AttributeValue::Ss(vec![digest.to_string()]))
            .send()
            .await
            .map_err(store_error("UpdateItem"))?;
        Ok(())
    }

    async fn lift_quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .update_expression("DELETE quarantined :digests")
            .condition_expression("contains(quarantined, :digest)")
            .expression_attribute_values(":digests", AttributeValue::Ss(vec![digest.to_string()]))
            .expression_attribute_values(":digest", s(digest.as_str()))
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn notified(&self, key: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(notice_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        Ok(out.item.is_some())
    }

    async fn mark_notified(&self, key: &str, expires: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = notice_key(key);
        item.insert("expires_at".into(), AttributeValue::N(expires.timestamp().to_string()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error("PutItem"))?;
        Ok(())
    }
}
