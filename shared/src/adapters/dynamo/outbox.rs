use super::codec::NoticeItem;
use super::keys::{Item, notice_key};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::notice::Notice;
use crate::ports::{Outbox, OutboxEntry, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

impl Outbox for DynamoRecords {
    async fn enqueue(&self, key: &str, notice: &Notice, expires: DateTime<Utc>) -> Result<bool, StoreError> {
        let keys = notice_key(key);
        let pk = |name: &str| keys[name].as_s().expect("keys are strings").clone();
        let item: Item = serde_dynamo::to_item(NoticeItem {
            pk: pk("pk"),
            sk: pk("sk"),
            subject: notice.subject.clone(),
            message: notice.message.clone(),
            thread: notice.thread.clone(),
            next_steps: notice.next_steps.clone(),
            sent: false,
            expires_at: expires.timestamp(),
        })
        .expect("a notice always serializes");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(notice_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let stored: NoticeItem = serde_dynamo::from_item(item)
            .map_err(|e| StoreError::permanent(format!("stored notice {key} is unreadable: {e}")))?;
        Ok(Some(OutboxEntry {
            notice: stored.notice(),
            sent: stored.sent,
        }))
    }

    async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(notice_key(key)))
            .update_expression("SET sent = :sent")
            .expression_attribute_values(":sent", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(store_error("UpdateItem"))?;
        Ok(())
    }
}
