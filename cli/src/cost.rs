//! `pipectl cost` and `pipectl report now`: the last cost report as kept in the table, and
//! one made now by the cost report function's own code.

use chrono::{SubsecRound, Utc};
use shared::adapters::{
    cost_explorer::CostExplorerAdapter, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::domain::cost::prices_for;
use shared::domain::pipeline::Pipeline;
use shared::handlers::cost_report::CostReporter;
use shared::lambda::runtime;
use shared::ports::{CostReports, KeptReport};

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
    let region = aws.region().map_or("us-east-1", |r| r.as_ref());
    let env = |name| runtime::env(name).map_err(|e| e.to_string());
    let reporter = CostReporter {
        prices: prices_for(region, &pipeline.cost().prices),
        records: DynamoRecords::new(aws, env("TABLE_NAME")?),
        ecs: EcsAdapter::new(aws),
        rds: RdsSnapshots::new(aws),
        cost_explorer: CostExplorerAdapter::new(aws),
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
