use super::codec::{approval_from, approval_item};
use super::keys::{approval_key, open_request_key, s};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::approval::{ApprovalId, ApprovalRequest};
use crate::domain::names::{AppName, StageName};
use crate::ports::{Approvals, OpenRequest, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

impl DynamoRecords {
    /// A conditional write that failed its condition is still ours if the item reads back
    /// exactly as written (the SDK retried a write whose answer was lost).
    async fn approval_written_before(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        Ok(self.get_approval(&request.id).await?.as_ref() == Some(request))
    }
}

impl Approvals for DynamoRecords {
    async fn create_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(approval_item(request)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Ok(conditional("PutItem", result)? || self.approval_written_before(request).await?)
    }

    async fn get_approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(approval_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        output.item.as_ref().map(approval_from).transpose()
    }

    async fn save_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let read_at = request.version.saturating_sub(1);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(approval_item(request)))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_at.to_string()))
            .send()
            .await;
        Ok(conditional("PutItem", result)? || self.approval_written_before(request).await?)
    }

    async fn open_request(&self, stage: &StageName, application: &AppName) -> Result<Option<OpenRequest>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(open_request_key(stage, application)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let id = ApprovalId::parse(&text("id"));
        let pushed_at = DateTime::parse_from_rfc3339(&text("pushed_at")).map(|at| at.with_timezone(&Utc));
        match (id, pushed_at) {
            (Some(id), Ok(pushed_at)) => Ok(Some(OpenRequest { id, pushed_at })),
            _ => Err(StoreError::permanent(format!(
                "the open request of {stage}/{application} is unreadable"
            ))),
        }
    }

    async fn point_open_request(
        &self,
        stage: &StageName,
        application: &AppName,
        id: &ApprovalId,
        pushed_at: DateTime<Utc>,
        expected: Option<&ApprovalId>,
    ) -> Result<bool, StoreError> {
        let mut item = open_request_key(stage, application);
        item.insert("id".into(), s(id.as_str()));
        item.insert("pushed_at".into(), s(pushed_at.to_rfc3339()));
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => request
                .condition_expression("id = :expected")
                .expression_attribute_values(":expected", s(expected.as_str())),
        };
        let result = request.send().await;
        if conditional("PutItem", result)? {
            return Ok(true);
        }
        // Ours already (an SDK retry after a lost answer), or moved by someone else.
        Ok(self
            .open_request(stage, application)
            .await?
            .is_some_and(|open| &open.id == id))
    }
}
