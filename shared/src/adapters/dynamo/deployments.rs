use super::codec::{deployment_from, deployment_item};
use super::keys::{BY_ECS_DEPLOYMENT_INDEX, BY_SERVICE_INDEX, HELD, deployment_key, s, service_pk};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::deployment::{Deployment, DeploymentId, Status};
use crate::domain::names::{ClusterName, ServiceName};
use crate::ports::{Deployments, HistoryPage, StoreError};

impl DynamoRecords {
    /// A conditional write of `deployment` that failed its condition may still be ours: the
    /// SDK retries a write whose answer was lost, and the retry finds the first attempt's
    /// result. If the record reads back exactly as written, it was written.
    async fn written_before(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        // Compared as stored (times to the millisecond).
        let as_stored = deployment_from(&deployment_item(deployment))?;
        Ok(self.get_deployment(&deployment.id).await? == Some(as_stored))
    }
}

impl Deployments for DynamoRecords {
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
        Ok(conditional("PutItem", result)? || self.written_before(deployment).await?)
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
        Ok(conditional("PutItem", result)? || self.written_before(deployment).await?)
    }

    async fn record_registration(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let text = |value: &Option<String>| s(value.clone().unwrap_or_default());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(deployment_key(&deployment.id)))
            .update_expression("SET task_definition = :td, #definition = :def, previous_definition = :prev")
            .condition_expression("#status = :claimed")
            .expression_attribute_names("#status", "status")
            // `definition` is a DynamoDB reserved word.
            .expression_attribute_names("#definition", "definition")
            .expression_attribute_values(":claimed", s(deployment.status.as_str()))
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

    async fn held_deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        // Only a deployment's own item names one; the record is read (and checked) by id.
        Ok(self
            .in_flight_keys(HELD)
            .await?
            .iter()
            .filter_map(|pk| Some(DeploymentId::from_stored(pk.strip_prefix("DEP#")?.to_owned())))
            .collect())
    }

    async fn by_ecs_deployment(&self, ecs_deployment_id: &str) -> Result<Option<Deployment>, StoreError> {
        // The index holds keys only; the record itself is read consistently.
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
        let Some(pk) = out
            .items()
            .first()
            .and_then(|item| item.get("pk"))
            .and_then(|pk| pk.as_s().ok())
        else {
            return Ok(None);
        };
        // Only a deployment's own item names it; anything else carrying the attribute is not one.
        let Some(id) = pk.strip_prefix("DEP#") else {
            tracing::error!(pk = %pk, ecs_deployment_id, "an item outside the deployments carries an ECS deployment id: skipped");
            return Ok(None);
        };
        self.get_deployment(&DeploymentId::from_stored(id.to_owned())).await
    }

    async fn history(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        limit: i32,
        after: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
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
        let deployments = out
            .items()
            .iter()
            .filter_map(|item| match deployment_from(item) {
                Ok(deployment) => Some(deployment),
                Err(err) => {
                    // Unreadable, or not a deployment where deployments live.
                    let key = item.get("svc_sk").and_then(|k| k.as_s().ok());
                    let pk = item.get("pk").and_then(|k| k.as_s().ok());
                    tracing::error!(%cluster, %service, row = ?key, pk = ?pk, error = %err, "history row skipped");
                    None
                }
            })
            .collect();
        let next = out
            .last_evaluated_key()
            .and_then(|key| key.get("svc_sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(HistoryPage { deployments, next })
    }
}
