use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{dynamo::DynamoRecords, rds::RdsSnapshots, sns::SnsNotifier};
use shared::handlers::scheduled_snapshots::{ScheduledSnapshots, copy_regions};
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let rds = RdsSnapshots::with_regions(&aws, copy_regions(&pipeline));
    let handler = ScheduledSnapshots {
        records: DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?),
        rds,
        notifier: SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?),
        pipeline,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
