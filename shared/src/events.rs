//! The events the functions receive, as AWS sends them: EventBridge envelopes with our own
//! detail types where `aws_lambda_events` has none. Only what the handlers read is typed;
//! fields whose shape varies between real events (an alarm's `configuration`) are never read.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `aws.ecr` / `ECR Image Action`. Only what tells a push from the rest is required; the rest
/// is checked once we know it is a push we act on.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    pub action_type: String,
    pub result: String,
    pub repository_name: String,
    #[serde(default)]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub image_tag: Option<String>,
    /// Only on an operator's push (`pipectl deploy STAGE`, invoking deploy-on-push itself):
    /// the one stage it is for. EventBridge's events never carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_stage: Option<String>,
}

pub type EcrEvent = EventBridgeEvent<EcrImageAction>;

/// `aws.ecs` / `ECS Deployment State Change`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStateChange {
    pub event_type: String,
    pub event_name: String,
    pub deployment_id: String,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: Option<String>,
}

pub type EcsDeploymentEvent = EventBridgeEvent<DeploymentStateChange>;

/// `aws.cloudwatch` / `CloudWatch Alarm State Change`, for metric, metric-math and composite
/// alarms alike: they differ only in `configuration`, which is left unread.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub state: AlarmState,
    pub previous_state: AlarmState,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct AlarmState {
    pub value: String,
    #[serde(default)]
    pub timestamp: Option<String>,
}

pub type AlarmEvent = EventBridgeEvent<AlarmStateChange>;

/// An event that is not the kind its EventBridge rule promises (a wiring mistake or a hand-made
/// invocation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a `{expected}` event, got source `{event_source}`, detail-type `{detail_type}`")]
pub struct WrongKind {
    pub expected: &'static str,
    pub event_source: String,
    pub detail_type: String,
}

/// Checks an event's source and detail-type before its detail is trusted.
pub fn expect_kind<T>(event: &EventBridgeEvent<T>, source: &str, detail_type: &'static str) -> Result<(), WrongKind>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if event.source == source && event.detail_type == detail_type {
        Ok(())
    } else {
        Err(WrongKind {
            expected: detail_type,
            event_source: event.source.clone(),
            detail_type: event.detail_type.clone(),
        })
    }
}

/// A Lambda payload read into an event type; a malformed one names the field that is wrong.
pub fn parse<T: serde::de::DeserializeOwned>(payload: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(payload).map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// The function that handles each kind of event (source, detail-type), by its name in the
/// template (`<stack>-<name>`): where a redriven event goes.
pub const HANDLED_BY: [(&str, &str, &str); 5] = [
    ("aws.ecr", "ECR Image Action", "deploy-on-push"),
    ("aws.ecs", "ECS Deployment State Change", "track-deployment"),
    ("aws.cloudwatch", "CloudWatch Alarm State Change", "rollback-on-alarm"),
    ("aws.rds", "RDS DB Snapshot Event", "promote"),
    ("aws.rds", "RDS DB Cluster Snapshot Event", "promote"),
];

/// The function for an event (any JSON with `source` and `detail-type`), if one handles it.
pub fn handled_by(event: &serde_json::Value) -> Option<&'static str> {
    HANDLED_BY
        .iter()
        .find(|(source, detail_type, _)| event["source"] == *source && event["detail-type"] == *detail_type)
        .map(|(_, _, function)| *function)
}

/// The ECR push event that would bring `image` anew, pushed at `at`: how an operator deploys
/// a digest again without pushing it. `None` if the image is not in an ECR registry.
pub fn push_of(image: &crate::domain::deployment::PushedImage, at: DateTime<Utc>) -> Option<serde_json::Value> {
    // <account>.dkr.ecr.<region>.amazonaws.com/<repository>@<digest>
    let registry = image.uri.split('/').next()?;
    let mut parts = registry.split('.');
    let (account, _, _, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some(serde_json::json!({
        "version": "0",
        "id": format!("pipectl-redeploy-{}", at.timestamp_millis()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account,
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [],
        "detail": {
            "result": "SUCCESS",
            "repository-name": image.repository.as_str(),
            "image-digest": image.digest.as_str(),
            "action-type": "PUSH",
            "image-tag": image.tag.as_str(),
        }
    }))
}
