use super::keys::{Item, cost_report_key, price_table_key, s};
use super::{DynamoRecords, conditional, store_error};
use crate::domain::cost::PriceTable;
use crate::domain::notice::Notice;
use crate::ports::{CostReports, KeptReport, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::SecondsFormat;

/// The tick as stored: fixed-width UTC, so the condition can compare ticks as strings.
fn stored_tick(report: &KeptReport) -> String {
    report.tick.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl CostReports for DynamoRecords {
    async fn last_report(&self) -> Result<Option<KeptReport>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(cost_report_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let unreadable = |what: &str| StoreError::permanent(format!("the kept cost report is unreadable: {what}"));
        let text = |name: &str| -> Result<String, StoreError> {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| unreadable(name))
        };
        let tick = text("tick")?.parse().map_err(|_| unreadable("tick"))?;
        let mut lines = std::collections::BTreeMap::new();
        for (line, amount) in item
            .get("lines")
            .and_then(|v| v.as_m().ok())
            .ok_or_else(|| unreadable("lines"))?
        {
            let amount = amount
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| unreadable("lines"))?;
            lines.insert(line.clone(), amount);
        }
        Ok(Some(KeptReport {
            tick,
            notice: Notice::new(text("subject")?, text("message")?),
            lines,
        }))
    }

    async fn keep_report(&self, report: &KeptReport) -> Result<bool, StoreError> {
        let mut item: Item = cost_report_key();
        item.insert("tick".into(), s(stored_tick(report)));
        item.insert("subject".into(), s(&report.notice.subject));
        item.insert("message".into(), s(&report.notice.message));
        item.insert(
            "lines".into(),
            AttributeValue::M(
                report
                    .lines
                    .iter()
                    .map(|(line, amount)| (line.clone(), AttributeValue::N(format!("{amount:.4}"))))
                    .collect(),
            ),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR tick < :tick")
            .expression_attribute_values(":tick", s(stored_tick(report)))
            .send()
            .await;
        conditional("PutItem", result)
    }

    async fn kept_prices(&self) -> Result<Option<PriceTable>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(price_table_key()))
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let Some(table) = out.item.as_ref().and_then(|item| item.get("table")?.as_s().ok()) else {
            return Ok(None);
        };
        serde_json::from_str(table)
            .map(Some)
            .map_err(|e| StoreError::permanent(format!("the kept price table is unreadable: {e}")))
    }

    async fn keep_prices(&self, table: &PriceTable) -> Result<(), StoreError> {
        let mut item: Item = price_table_key();
        item.insert(
            "table".into(),
            s(serde_json::to_string(table).expect("a price table serializes")),
        );
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
