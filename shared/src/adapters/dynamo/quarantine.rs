use super::keys::{s, state_key};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::names::{ClusterName, ImageDigest, ServiceName};
use crate::ports::{Quarantine, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;

impl Quarantine for DynamoRecords {
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

    async fn quarantined(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Vec<ImageDigest>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(state_key(cluster, service)))
            .projection_expression("quarantined")
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let digests = output
            .item
            .and_then(|mut item| item.remove("quarantined"))
            .and_then(|set| set.as_ss().ok().cloned())
            .unwrap_or_default();
        // A digest that does not parse was never quarantined by us: leave it out, say so.
        Ok(digests
            .into_iter()
            .filter_map(|digest| {
                ImageDigest::parse(digest)
                    .inspect_err(|err| tracing::warn!(error = %err, "unreadable quarantined digest"))
                    .ok()
            })
            .collect())
    }
}
