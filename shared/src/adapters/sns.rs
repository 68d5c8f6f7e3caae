use super::describe_sdk_error;
use crate::domain::names::Approver;
use crate::domain::notice::{Notice, sns_message};
use crate::ports::{ApproverMail, Notifier, NotifyError};
use aws_sdk_sns::types::MessageAttributeValue;

/// The message attribute approvers' subscriptions filter on (`pipectl approvers sync` sets
/// each one's filter policy to their own address).
pub const APPROVER_ATTRIBUTE: &str = "approver";

/// The filter policy of an approver's subscription: only messages naming them.
pub fn approver_filter_policy(approver: &Approver) -> String {
    serde_json::json!({ APPROVER_ATTRIBUTE: [approver.as_str()] }).to_string()
}

#[derive(Clone)]
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

    /// The same client, publishing to another topic: one client built at init serves both.
    pub fn for_topic(&self, topic_arn: impl Into<String>) -> Self {
        Self {
            client: self.client.clone(),
            topic_arn: topic_arn.into(),
        }
    }

    /// Publishes `notice`: to one approver (their link, plain text: a chat channel must never
    /// receive a bearer link), or to the team in the e-mail and chat bodies (`sns_message`).
    async fn send(&self, notice: &Notice, approver: Option<&Approver>) -> Result<(), NotifyError> {
        let attribute = approver.map(|approver| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(approver.as_str())
                .build()
                .expect("data type is set")
        });
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&notice.subject)
            .message(match approver {
                Some(_) => notice.message.clone(),
                None => sns_message(notice),
            })
            .set_message_structure(approver.is_none().then(|| "json".to_owned()))
            .set_message_attributes(attribute.map(|a| [(APPROVER_ATTRIBUTE.to_owned(), a)].into()))
            // Not idempotent: an SDK retry after a lost answer sends the message again. A
            // failure goes back to Lambda, whose retry sends what is still unsent.
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

impl Notifier for SnsNotifier {
    async fn publish(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.send(notice, None).await
    }
}

/// The approvals topic: every message names its approver, whose subscription alone lets it through.
impl ApproverMail for SnsNotifier {
    async fn send_to(&self, approver: &Approver, notice: &Notice) -> Result<(), NotifyError> {
        self.send(notice, Some(approver)).await
    }
}
