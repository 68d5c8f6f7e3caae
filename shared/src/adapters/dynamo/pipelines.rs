//! The stack's pipeline table: pk `PIPELINE`, sk `v#000001`… (every version pushed, with who
//! pushed it and when) and sk `ACTIVE` (a copy of the version in force, so a function reads
//! it in one GetItem). The functions' roles may only GetItem it.

use super::keys::{Item, s};
use super::{conditional, store_error};
use crate::ports::{PipelineStore, StoreError, StoredPipeline};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;

const PARTITION: &str = "PIPELINE";
const ACTIVE: &str = "ACTIVE";

#[derive(Clone)]
pub struct DynamoPipelines {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A version as `pipectl pipeline history` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineVersion {
    pub pipeline: StoredPipeline,
    /// The IAM ARN of who pushed it, and when.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Who made the version in force so, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    pub version: PipelineVersion,
    pub by: String,
    pub at: DateTime<Utc>,
}

fn version_sk(version: u32) -> String {
    format!("v#{version:06}")
}

fn key(sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(PARTITION)), ("sk".to_owned(), s(sk))])
}

fn stamp(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl DynamoPipelines {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// Every version pushed, newest first.
    pub async fn versions(&self) -> Result<Vec<PipelineVersion>, StoreError> {
        let mut versions = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .newest_first()
                .set_exclusive_start_key(after)
                .send()
                .await
                .map_err(store_error("Query"))?;
            for item in page.items() {
                versions.push(read_version(item)?);
            }
            after = page.last_evaluated_key;
            if after.is_none() {
                return Ok(versions);
            }
        }
    }

    pub async fn version(&self, version: u32) -> Result<Option<PipelineVersion>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(version_sk(version))))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        out.item.as_ref().map(read_version).transpose()
    }

    pub async fn activation(&self) -> Result<Option<Activation>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(ACTIVE.to_owned())))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(Some(Activation {
            version: PipelineVersion {
                pipeline: read_pipeline(&item)?,
                by: text(&item, "pushed_by")?,
                at: time(&item, "pushed_at")?,
            },
            by: text(&item, "activated_by")?,
            at: time(&item, "activated_at")?,
        }))
    }

    /// Keeps `text` as the next version (one more than the newest); two pushes at once get
    /// two versions (a push that keeps losing that race gives up).
    pub async fn add_version(
        &self,
        text: &str,
        hash: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<PipelineVersion, StoreError> {
        for _ in 0..5 {
            let newest = self.newest_version().await?;
            let version = newest + 1;
            let mut item = key(version_sk(version));
            item.insert("version".into(), AttributeValue::N(version.to_string()));
            item.insert("text".into(), s(text));
            item.insert("hash".into(), s(hash));
            item.insert("pushed_by".into(), s(by));
            item.insert("pushed_at".into(), stamp(at));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            if conditional("PutItem", put)? {
                return Ok(PipelineVersion {
                    pipeline: StoredPipeline {
                        version,
                        text: text.to_owned(),
                        hash: hash.to_owned(),
                    },
                    by: by.to_owned(),
                    at,
                });
            }
        }
        Err(StoreError::retryable(
            "other pushes kept taking the next version number: try again",
        ))
    }

    /// The versions (not the copy in force), newest first, read consistently.
    fn newest_first(&self) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", s(PARTITION))
            .expression_attribute_values(":v", s("v#"))
            .scan_index_forward(false)
            .consistent_read(true)
    }

    async fn newest_version(&self) -> Result<u32, StoreError> {
        let out = self
            .newest_first()
            .limit(1)
            .send()
            .await
            .map_err(store_error("Query"))?;
        out.items().first().map_or(Ok(0), |item| number(item, "version"))
    }

    /// Puts `version` in force if the one in force is still `replacing` (`None`: none is):
    /// `false` when another activation came first.
    pub async fn activate(
        &self,
        version: &PipelineVersion,
        replacing: Option<u32>,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(ACTIVE.to_owned());
        item.insert(
            "version".into(),
            AttributeValue::N(version.pipeline.version.to_string()),
        );
        item.insert("text".into(), s(&version.pipeline.text));
        item.insert("hash".into(), s(&version.pipeline.hash));
        item.insert("pushed_by".into(), s(&version.by));
        item.insert("pushed_at".into(), stamp(version.at));
        item.insert("activated_by".into(), s(by));
        item.insert("activated_at".into(), stamp(at));
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let put = match replacing {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(was) => put
                .condition_expression("version = :was")
                .expression_attribute_values(":was", AttributeValue::N(was.to_string())),
        };
        conditional("PutItem", put.send().await)
    }
}

impl PipelineStore for DynamoPipelines {
    async fn in_force(&self) -> Result<Option<StoredPipeline>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(ACTIVE.to_owned())))
            .projection_expression("version, #text, #hash")
            .expression_attribute_names("#text", "text")
            .expression_attribute_names("#hash", "hash")
            .consistent_read(true)
            // A slow answer must not eat the invocation's time: the last version read serves on.
            .customize()
            .config_override(
                aws_sdk_dynamodb::config::Builder::default().timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .operation_timeout(std::time::Duration::from_secs(2))
                        .build(),
                ),
            )
            .send()
            .await
            .map_err(store_error("GetItem"))?;
        out.item.as_ref().map(read_pipeline).transpose()
    }
}

fn unreadable(what: &str) -> StoreError {
    StoreError::permanent(format!("the stored pipeline is unreadable: {what}"))
}

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| unreadable(name))
}

fn number(item: &Item, name: &str) -> Result<u32, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| unreadable(name))
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    text(item, name)?.parse().map_err(|_| unreadable(name))
}

fn read_pipeline(item: &Item) -> Result<StoredPipeline, StoreError> {
    Ok(StoredPipeline {
        version: number(item, "version")?,
        text: text(item, "text")?,
        hash: text(item, "hash")?,
    })
}

fn read_version(item: &Item) -> Result<PipelineVersion, StoreError> {
    Ok(PipelineVersion {
        pipeline: read_pipeline(item)?,
        by: text(item, "pushed_by")?,
        at: time(item, "pushed_at")?,
    })
}
