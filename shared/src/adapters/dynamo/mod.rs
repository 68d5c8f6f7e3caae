//! The one table, over the SDK: keys (`keys`), the stored shape of each item (`codec`), and
//! one module per port it implements. Schema: docs/src/records.md.

mod approvals;
mod codec;
mod cost;
mod deployments;
mod keys;
mod locks;
mod outbox;
mod pipelines;
mod quarantine;

pub use codec::{DECISION_ATTRIBUTES, HISTORY_ATTRIBUTES};
pub use keys::{APPROVAL_PREFIX, BY_ECS_DEPLOYMENT_INDEX, BY_SERVICE_INDEX, IN_FLIGHT_INDEX};
pub use pipelines::{Activation, DynamoPipelines, PipelineVersion};

use super::describe_sdk_error;
use crate::ports::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

#[derive(Clone)]
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

    /// The `pk` of every item in partition `partition` of the sparse in-flight index (approval
    /// requests in flight, HELD deployments), every page.
    async fn in_flight_keys(&self, partition: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(IN_FLIGHT_INDEX)
                .key_condition_expression("in_flight = :partition")
                .expression_attribute_values(":partition", keys::s(partition))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error("Query"))?;
            keys.extend(
                page.items()
                    .iter()
                    .filter_map(|item| item.get("pk")?.as_s().ok().cloned()),
            );
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(keys),
            }
        }
    }
}

/// Throttling, 5xx and network trouble are worth a retry; a request the table refuses
/// (validation, access, a missing table) is not.
fn store_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| {
        let message = describe_sdk_error(operation, &err);
        match err.code() {
            Some(
                "ValidationException"
                | "ResourceNotFoundException"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "ItemCollectionSizeLimitExceededException",
            ) => StoreError::permanent(message),
            _ => StoreError::retryable(message),
        }
    }
}

/// A conditional write's answer: `true` written, `false` its condition did not hold (the write
/// lost a race, or found its work done), an error otherwise.
fn conditional<O, E, R>(operation: &'static str, result: Result<O, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(err) => Err(store_error(operation)(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str) -> SdkError<PutItemError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        SdkError::service_error(
            PutItemError::generic(meta),
            HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn refused_requests_are_permanent_and_the_rest_retryable() {
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
        ] {
            assert!(!store_error("PutItem")(service_error(code)).retryable, "{code}");
        }
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
            "RequestLimitExceeded",
        ] {
            assert!(store_error("PutItem")(service_error(code)).retryable, "{code}");
        }
        assert!(!conditional::<(), _, _>("PutItem", Err(service_error("ConditionalCheckFailedException"))).unwrap());
    }
}
