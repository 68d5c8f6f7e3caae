use super::codec::{DECISION_ATTRIBUTES, approval_from, approval_item, deployment_item, stored_value};
use super::keys::{APPROVAL_PREFIX, approval_key, open_request_key, s};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::approval::{ApprovalId, ApprovalRequest, ApprovalStatus, Successor};
use crate::domain::deployment::{Deployment, Status};
use crate::domain::names::{AppName, StageName};
use crate::ports::{Approvals, Deployments, OpenRequest, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

impl DynamoRecords {
    /// Every approval request in one of `statuses`, oldest first: a Scan, for operators
    /// (`pipectl approvals`), never on a function's path.
    pub async fn approvals_in(&self, statuses: &[ApprovalStatus]) -> Result<Vec<ApprovalRequest>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :prefix) AND sk = :sk")
                .expression_attribute_values(":prefix", s(format!("{APPROVAL_PREFIX}apr-")))
                .expression_attribute_values(":sk", s("APR"))
                .set_exclusive_start_key(start);
            scan = scan.consistent_read(true);
            let page = scan.send().await.map_err(store_error("Scan"))?;
            for item in page.items() {
                match approval_from(item) {
                    Ok(request) if statuses.contains(&request.status) => found.push(request),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "unreadable approval request skipped"),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        found.sort_by_key(|r| r.requested_at);
        Ok(found)
    }

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

    async fn save_decision(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let item = approval_item(request);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(approval_key(&request.id)))
            .condition_expression("#version = :read")
            .expression_attribute_values(
                ":read",
                AttributeValue::N(request.version.saturating_sub(1).to_string()),
            );
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        for name in DECISION_ATTRIBUTES {
            update = update.expression_attribute_names(format!("#{name}"), name);
            match item.get(name) {
                Some(value) => {
                    set.push(format!("#{name} = :{name}"));
                    update = update.expression_attribute_values(format!(":{name}"), value.clone());
                }
                None => remove.push(format!("#{name}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let result = update.update_expression(expression).send().await;
        Ok(conditional("UpdateItem", result)? || self.approval_written_before(request).await?)
    }

    async fn supersede_awaiting(
        &self,
        record: &Deployment,
        request: &ApprovalId,
        by: &Successor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        let record_write = Put::builder()
            .table_name(&self.table)
            .set_item(Some(deployment_item(record)))
            .condition_expression("#status = :awaiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s(Status::AwaitingApproval.as_str()))
            .build()
            .map_err(|e| StoreError::permanent(format!("TransactWriteItems: {e}")))?;
        let request_write = Update::builder()
            .table_name(&self.table)
            .set_key(Some(approval_key(request)))
            .update_expression(
                "SET #status = :superseded, superseded_by = :by, decided_at = if_not_exists(decided_at, :now), \
                 version = version + :one REMOVE in_flight",
            )
            .condition_expression("#status = :awaiting OR (#status = :superseded AND superseded_by.id = :by_id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s(ApprovalStatus::AwaitingApproval.as_str()))
            .expression_attribute_values(":superseded", s(ApprovalStatus::Superseded.as_str()))
            .expression_attribute_values(":by", stored_value(by))
            .expression_attribute_values(":by_id", s(by.id.as_str()))
            .expression_attribute_values(":now", stored_value(&now))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| StoreError::permanent(format!("TransactWriteItems: {e}")))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(record_write).build())
            .transact_items(TransactWriteItem::builder().update(request_write).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if transaction_condition_failed(&err) => {
                // Ours already (the SDK retried a transaction whose answer was lost), or lost.
                Ok(self.get_deployment(&record.id).await?.is_some_and(|stored| {
                    stored.superseded_by == record.superseded_by && stored.status == record.status
                }))
            }
            Err(err) => Err(super::store_error("TransactWriteItems")(err)),
        }
    }

    async fn in_flight_approvals(&self) -> Result<Vec<ApprovalId>, StoreError> {
        Ok(self
            .in_flight_keys(super::keys::IN_FLIGHT)
            .await?
            .iter()
            .filter_map(|pk| ApprovalId::parse(pk.strip_prefix(APPROVAL_PREFIX)?))
            .collect())
    }

    async fn discard_approval(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(approval_key(&request.id)))
            .condition_expression("version = :read AND size(services) = :none")
            .expression_attribute_values(":read", AttributeValue::N(request.version.to_string()))
            .expression_attribute_values(":none", AttributeValue::N("0".into()))
            .send()
            .await;
        // Gone already, or changed meanwhile (then it is no longer ours to remove).
        conditional("DeleteItem", result)?;
        Ok(())
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

/// A transaction refused because a condition did not hold (not a conflict or a fault).
fn transaction_condition_failed<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}
