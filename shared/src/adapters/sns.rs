use super::describe_sdk_error;
use crate::domain::notice::Notice;
use crate::ports::{Notifier, NotifyError};

pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sns::Client::new(config),
            topic_arn: topic_arn.into(),
        }
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&notice.subject)
            .message(&notice.message)
            // Not idempotent: an SDK retry after a lost answer sends the notice again. A
            // failure goes back to Lambda, whose retry publishes from the outbox.
            .customize()
            .config_override(
                aws_sdk_sns::config::Builder::default()
                    .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|err| NotifyError(describe_sdk_error("Publish", &err)))?;
        Ok(())
    }
}
