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
#[cfg(feature = "sts")]
pub mod sts;

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

/// The time AWS answered a call at (its response's `Date` header), for what must not take the
/// caller's clock: attach it to one call with `.customize().interceptor(..)`, then read `at`.
#[derive(Clone, Debug, Default)]
pub struct AnsweredAt(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for AnsweredAt {
    fn name(&self) -> &'static str {
        "AnsweredAt"
    }

    fn read_after_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let date = context.response().headers().get("date").map(str::to_owned);
        *self.0.lock().expect("not poisoned") = date;
        Ok(())
    }
}

impl AnsweredAt {
    /// When AWS answered (to the second, as HTTP dates go), or why that is not known.
    pub fn at(&self) -> Result<chrono::DateTime<chrono::Utc>, String> {
        let date = self.0.lock().expect("not poisoned").clone();
        let date = date.ok_or("AWS's answer carried no Date header")?;
        chrono::DateTime::parse_from_rfc2822(&date)
            .map(|at| at.with_timezone(&chrono::Utc))
            .map_err(|e| format!("AWS's answer has an unreadable Date header `{date}`: {e}"))
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

#[cfg(test)]
mod tests {
    #[test]
    fn aws_answers_carry_their_time_as_an_http_date() {
        let answered = super::AnsweredAt::default();
        assert!(answered.at().unwrap_err().contains("no Date header"));
        *answered.0.lock().unwrap() = Some("Wed, 02 Dec 2026 03:50:07 GMT".into());
        assert_eq!(answered.at().unwrap().to_rfc3339(), "2026-12-02T03:50:07+00:00");
        *answered.0.lock().unwrap() = Some("yesterday".into());
        assert!(answered.at().unwrap_err().contains("unreadable"));
    }
}
