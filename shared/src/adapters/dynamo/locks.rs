use super::codec::{RefItem, StateItem};
use super::keys::{s, state_key};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::deployment::{ServiceState, ServiceStateField};
use crate::domain::names::{ClusterName, ImageDigest, ServiceName};
use crate::ports::{ServiceLocks, StateMove, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

fn millis(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp_millis().to_string())
}

fn field_attribute(field: ServiceStateField) -> &'static str {
    match field {
        ServiceStateField::Latest => "latest",
        ServiceStateField::AwaitingApproval => "awaiting_approval",
    }
}

/// The service state a STATE item holds.
fn state_from(
    cluster: &ClusterName,
    service: &ServiceName,
    item: std::collections::HashMap<String, AttributeValue>,
) -> Result<ServiceState, StoreError> {
    let unreadable = |e: String| StoreError::permanent(format!("stored state of {cluster}/{service}: {e}"));
    let quarantined = match item.get("quarantined").and_then(|v| v.as_ss().ok()) {
        Some(digests) => digests
            .iter()
            .map(|d| ImageDigest::parse(d.clone()).map_err(|e| unreadable(e.to_string())))
            .collect::<Result<_, _>>()?,
        None => vec![],
    };
    let pointers: StateItem = serde_dynamo::from_item(item).map_err(|e| unreadable(e.to_string()))?;
    Ok(ServiceState {
        latest: pointers.latest.map(Into::into),
        awaiting_approval: pointers.awaiting_approval.map(Into::into),
        quarantined,
    })
}

impl DynamoRecords {
    /// The service's STATE item as it stands (empty if it has none), read consistently.
    async fn state_item(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        Ok(out.item.unwrap_or_default())
    }

    /// The service's state as it stands, without taking its lock (for operators to read).
    pub async fn service_state(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> Result<ServiceState, StoreError> {
        state_from(cluster, service, self.state_item(cluster, service).await?)
    }
}

impl ServiceLocks for DynamoRecords {
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
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match result {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(store_error("UpdateItem")(err)),
        };
        state_from(cluster, service, item).map(Some)
    }

    async fn release_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        moved: Option<&StateMove>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .condition_expression("lock_owner = :owner")
            .expression_attribute_values(":owner", s(owner));
        request = match moved {
            Some(moved) => request
                .update_expression(format!(
                    "SET {} = :pointer REMOVE lock_owner, lock_until",
                    field_attribute(moved.field)
                ))
                .expression_attribute_values(
                    ":pointer",
                    serde_dynamo::to_attribute_value(RefItem::from(&moved.to)).expect("a pointer always serializes"),
                ),
            None => request.update_expression("REMOVE lock_owner, lock_until"),
        };
        if conditional("UpdateItem", request.send().await)? {
            return Ok(true);
        }
        // The SDK may have retried a release whose first attempt committed: then the lock is
        // no longer ours but the pointer is where this release put it.
        let item = self.state_item(cluster, service).await?;
        let still_ours = item
            .get("lock_owner")
            .and_then(|o| o.as_s().ok())
            .is_some_and(|o| o == owner);
        let moved_there = match moved {
            None => true,
            Some(moved) => item
                .get(field_attribute(moved.field))
                .and_then(|pointer| pointer.as_m().ok())
                .and_then(|pointer| pointer.get("id"))
                .and_then(|id| id.as_s().ok())
                .is_some_and(|id| id == moved.to.id.as_str()),
        };
        Ok(!still_ours && moved_there)
    }
}
