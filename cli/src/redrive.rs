//! `pipectl redrive`: the failed-events queue holds three shapes, and each goes back to the
//! function that failed it.
//! - An EventBridge rule's dead letter (the event could not be delivered): the raw event;
//!   its function comes from its source and detail-type (an RDS snapshot event: promote).
//! - Lambda's on-failure record of an asynchronous invocation (the function failed it after its
//!   retries): the event is `requestPayload`, the function `requestContext.functionArn`.
//! - A stream mapping's on-failure record (`DDBStreamBatchInfo`): it holds no records, only
//!   where they were in the stream. The table's stream is keys only and promote's sweep takes
//!   every request in flight as far as it goes, so the batch is redriven as a sweep of the
//!   function that failed it.

use serde_json::Value;
use shared::events::handled_by;

/// One queued event and where it goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Redrive {
    pub function: String,
    pub event: Value,
}

/// `function_named` names the stack's function (`deploy-on-push`, …) an event goes to.
pub fn route(body: &str, function_named: &dyn Fn(&str) -> Result<String, String>) -> Result<Redrive, String> {
    let message: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(batch) = message.get("DDBStreamBatchInfo") {
        let function = failed_function(&message, "a stream batch's on-failure record")?;
        return Ok(Redrive {
            function,
            event: serde_json::json!({
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "resources": [],
                "detail": {"redriven": "a failed stream batch", "batch": batch},
            }),
        });
    }
    if let Some(event) = message.get("requestPayload") {
        let function = failed_function(&message, "an on-failure record")?;
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
        function: function_named(function)?,
        event: message,
    })
}

/// The function an on-failure record (`what`) names, unqualified.
fn failed_function(message: &Value, what: &str) -> Result<String, String> {
    message["requestContext"]["functionArn"]
        .as_str()
        .map(unqualified)
        .ok_or_else(|| format!("{what} without requestContext.functionArn"))
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
            route(PUSH, &|f| Ok(format!("pipeline-{f}"))).unwrap(),
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
        let routed = route(&record.to_string(), &|_| Err("not asked".into())).unwrap();
        assert_eq!(
            routed.function,
            "arn:aws:lambda:us-east-1:123456789012:function:pipeline-track-deployment"
        );
        assert_eq!(routed.event, record["requestPayload"]);
    }

    /// The shape Lambda sends a DynamoDB stream mapping's failed batch in: no records, only
    /// where they were; it goes back to promote as a sweep, which promote takes.
    #[test]
    fn a_failed_stream_batch_is_redriven_as_a_sweep_of_its_function() {
        let record = include_str!("../../events/promote/stream-batch-failed.json");
        let routed = route(record, &|_| Err("not asked".into())).unwrap();
        assert_eq!(
            routed.function,
            "arn:aws:lambda:us-east-1:123456789012:function:sandbox-promote"
        );
        assert!(matches!(
            shared::handlers::promote::trigger_of(&routed.event),
            Ok(shared::handlers::promote::Trigger::Sweep)
        ));
    }

    #[test]
    fn a_dead_lettered_rds_snapshot_event_goes_to_promote() {
        for detail_type in ["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"] {
            let event = json!({"source": "aws.rds", "detail-type": detail_type, "detail": {}});
            let routed = route(&event.to_string(), &|f| Ok(format!("pipeline-{f}"))).unwrap();
            assert_eq!((routed.function.as_str(), &routed.event), ("pipeline-promote", &event));
        }
    }

    #[test]
    fn what_no_function_handles_stays_in_the_queue() {
        assert!(
            route("nope", &|_| Err("not asked".into()))
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(
            route(r#"{"source": "aws.s3"}"#, &|_| Err("not asked".into()))
                .unwrap_err()
                .contains("no function handles")
        );
    }
}
