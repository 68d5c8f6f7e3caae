//! `pipectl redrive`: the failed-events queue holds two shapes, and each goes back to the
//! function that failed it.
//! - An EventBridge rule's dead letter (the event could not be delivered): the raw event;
//!   its function comes from its source and detail-type.
//! - Lambda's on-failure record (the function failed it after its retries): the event is
//!   `requestPayload`, the function `requestContext.functionArn`.

use serde_json::Value;
use shared::events::handled_by;

/// One queued event and where it goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Redrive {
    pub function: String,
    pub event: Value,
}

pub fn route(body: &str, stack: &str) -> Result<Redrive, String> {
    let message: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(event) = message.get("requestPayload") {
        let function = message["requestContext"]["functionArn"]
            .as_str()
            .map(unqualified)
            .ok_or("an on-failure record without requestContext.functionArn")?;
        return Ok(Redrive {
            function,
            event: event.clone(),
        });
    }
    let function = handled_by(&message).ok_or_else(|| {
        format!(
            "no function handles source `{}`, detail-type `{}`",
            message["source"], message["detail-type"]
        )
    })?;
    Ok(Redrive {
        function: format!("{stack}-{function}"),
        event: message,
    })
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]` without the qualifier:
/// redriven events go to the current version.
fn unqualified(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PUSH: &str = r#"{"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}}"#;

    #[test]
    fn a_rules_dead_letter_goes_to_the_function_of_its_kind() {
        assert_eq!(
            route(PUSH, "pipeline").unwrap(),
            Redrive {
                function: "pipeline-deploy-on-push".into(),
                event: serde_json::from_str(PUSH).unwrap(),
            }
        );
    }

    #[test]
    fn a_lambda_on_failure_record_goes_back_to_the_function_that_failed_it() {
        let record = json!({
            "version": "1.0",
            "requestContext": {
                "requestId": "c8b1b7e0",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:pipeline-track-deployment:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"source": "aws.ecs", "detail-type": "ECS Deployment State Change"},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "RecordsUnavailable"}
        });
        let routed = route(&record.to_string(), "ignored").unwrap();
        assert_eq!(
            routed.function,
            "arn:aws:lambda:us-east-1:123456789012:function:pipeline-track-deployment"
        );
        assert_eq!(routed.event, record["requestPayload"]);
    }

    #[test]
    fn what_no_function_handles_stays_in_the_queue() {
        assert!(route("nope", "s").unwrap_err().starts_with("not JSON"));
        assert!(
            route(r#"{"source": "aws.s3"}"#, "s")
                .unwrap_err()
                .contains("no function handles")
        );
    }
}
