//! `pipectl cost` and `pipectl report now`: the last cost report as kept in the table, and
//! one made now by the cost report function's own code.

use chrono::{SubsecRound, Utc};
use shared::adapters::{
    billing::AwsBilling, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::domain::pipeline::Pipeline;
use shared::handlers::cost_report::CostReporter;
use shared::lambda::runtime;
use shared::ports::{CostReports, KeptReport};

/// Has the stack's cost-report function refresh its price table from the AWS Price List (its
/// role holds `pricing:GetProducts`; the reports that follow use the table).
pub async fn refresh_prices(aws: &aws_config::SdkConfig, stack: &str) -> Result<(), String> {
    let function = format!("{stack}-cost-report");
    let out = aws_sdk_lambda::Client::new(aws)
        .invoke()
        .function_name(&function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"action":"refresh-prices"}"#))
        .send()
        .await
        .map_err(|e| shared::adapters::describe_sdk_error("Invoke", &e))?;
    let payload: serde_json::Value = out
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or_default();
    if out.function_error().is_some() {
        return Err(format!(
            "{function}: {}: {}",
            payload["errorType"].as_str().unwrap_or("error"),
            payload["errorMessage"].as_str().unwrap_or("no message")
        ));
    }
    let kept: Vec<&str> = payload["kept_as_before"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .collect();
    println!(
        "prices for {} as of {}: {} row(s) from the Price List{}",
        payload["region"].as_str().unwrap_or("?"),
        payload["as_of"].as_str().unwrap_or("?"),
        payload["found"],
        if kept.is_empty() {
            String::new()
        } else {
            format!("; kept as before (not in the Price List): {}", kept.join(", "))
        }
    );
    Ok(())
}

fn print(report: &KeptReport) {
    println!(
        "{}\n(made for {})\n\n{}",
        report.notice.subject, report.tick, report.notice.message
    );
}

/// The last report, as the topic's subscribers got it.
pub async fn last(records: &DynamoRecords) -> Result<(), String> {
    match records.last_report().await.map_err(|e| e.to_string())? {
        Some(report) => print(&report),
        None => println!("no cost report kept yet: the first goes out on the schedule, or run `pipectl report now`"),
    }
    Ok(())
}

/// A report now, sent to the topic and kept as the last one, as the schedule's would be (two
/// Cost Explorer requests unless the pipeline file turns it off). Needs TABLE_NAME and
/// TOPIC_ARN, as the function does.
pub async fn now(aws: &aws_config::SdkConfig, pipeline: Pipeline) -> Result<(), String> {
    let env = |name| runtime::env(name).map_err(|e| e.to_string());
    let reporter = CostReporter {
        region: aws.region().map_or("us-east-1", |r| r.as_ref()).to_owned(),
        records: DynamoRecords::new(aws, env("TABLE_NAME")?),
        ecs: EcsAdapter::new(aws),
        rds: RdsSnapshots::new(aws),
        billing: AwsBilling::new(aws),
        notifier: SnsNotifier::new(aws, env("TOPIC_ARN")?),
        pipeline,
    };
    let run = reporter
        .run(Utc::now().trunc_subsecs(0))
        .await
        .map_err(|e| format!("{}: {e}", e.error_type()))?;
    match reporter.records.last_report().await.map_err(|e| e.to_string())? {
        Some(report) if run.subject.is_some() => {
            print(&report);
            Ok(())
        }
        _ => Err("a later report was kept meanwhile; `pipectl cost` prints it".into()),
    }
}
