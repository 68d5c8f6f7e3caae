//! `pipectl cost`, `pipectl report now` and `pipectl prices refresh`: the last cost report as
//! kept in the table, and the stack's cost-report function asked for a report or a price
//! refresh (its role, its one-at-a-time concurrency, its region's prices).

use chrono::{SecondsFormat, SubsecRound, Utc};
use shared::adapters::dynamo::DynamoRecords;
use shared::ports::{CostReports, KeptReport};

/// Invokes the stack's cost-report function with `event` and waits for its answer; its
/// error, named.
async fn invoke(
    aws: &aws_config::SdkConfig,
    stack: &str,
    event: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let stack = crate::stack::Stack::describe(aws, stack).await?;
    let function = stack.output(&crate::stack::function_output("cost-report"))?.to_owned();
    crate::invoke_for_answer(&aws_sdk_lambda::Client::new(aws), &function, event).await
}

/// Has the stack's cost-report function refresh its price table from the AWS Price List (its
/// role holds `pricing:GetProducts`; the reports that follow use the table).
pub async fn refresh_prices(aws: &aws_config::SdkConfig, stack: &str) -> Result<(), String> {
    let payload = invoke(aws, stack, &serde_json::json!({"action": "refresh-prices"})).await?;
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

/// Has the stack's cost-report function make a report now, as its schedule would (two Cost
/// Explorer requests unless the pipeline file turns it off): sent to the topic and kept as
/// the last one; prints its subject.
pub async fn now(aws: &aws_config::SdkConfig, stack: &str) -> Result<(), String> {
    let tick = serde_json::json!({
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": Utc::now().trunc_subsecs(0).to_rfc3339_opts(SecondsFormat::Secs, true),
        "detail": {},
    });
    let answer = invoke(aws, stack, &tick).await?;
    match answer["subject"].as_str() {
        Some(subject) => {
            println!("{subject}\n(sent and kept; `pipectl cost` prints it whole)");
            Ok(())
        }
        None => Err("a later report was kept meanwhile; `pipectl cost` prints it".into()),
    }
}
