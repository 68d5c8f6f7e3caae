//! AWS SDK implementations of the ports: thin, no decisions. Each sits behind the cargo
//! feature of its SDK, so a function links only the SDKs it calls.

#[cfg(feature = "billing")]
pub mod billing;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "ecs")]
pub mod ecs;
#[cfg(feature = "rds")]
pub mod rds;
#[cfg(feature = "sns")]
pub mod sns;

/// A failed AWS call in one line: `Operation: Code: message`, or the whole error chain when
/// the call never got an answer (timeout, connection refused).
pub fn describe_sdk_error<E, R>(operation: &str, err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{operation}: {}: {}",
            service.code().unwrap_or("UnknownError"),
            service.message().unwrap_or("no message")
        ),
        None => format!(
            "{operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(err)
        ),
    }
}

/// The adapters a rollback needs (records, ECS, notices), from `TABLE_NAME` and `TOPIC_ARN`.
#[cfg(all(feature = "dynamodb", feature = "ecs", feature = "sns"))]
pub fn restorer(
    aws: &aws_config::SdkConfig,
) -> Result<
    crate::handlers::restore::Restorer<dynamo::DynamoRecords, ecs::EcsAdapter, sns::SnsNotifier>,
    crate::lambda::runtime::InitError,
> {
    use crate::lambda::runtime::env;
    Ok(crate::handlers::restore::Restorer {
        records: dynamo::DynamoRecords::new(aws, env("TABLE_NAME")?),
        ecs: ecs::EcsAdapter::new(aws),
        notifier: sns::SnsNotifier::new(aws, env("TOPIC_ARN")?),
    })
}
