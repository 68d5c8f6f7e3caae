//! Pure decisions from data: no I/O, no clock, no AWS calls.

pub mod deployment;
pub mod ecs_event;
pub mod names;
pub mod pipeline;
pub mod push;
pub mod rollback;
pub mod tag_rule;
pub mod taskdef;

use aws_lambda_events::eventbridge::EventBridgeEvent;

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
