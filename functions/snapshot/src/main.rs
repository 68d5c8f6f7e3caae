use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{dynamo::DynamoRecords, rds::RdsSnapshots, sns::SnsNotifier};
use shared::handlers::scheduled_snapshots::{ScheduledSnapshots, copy_regions};
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let aws = runtime::aws_config().await?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let notifier = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    // The copy regions' clients follow the pipeline: built again only when it changes.
    let handlers = &pipeline_in_force::served(&aws, |pipeline| ScheduledSnapshots {
        records: records.clone(),
        rds: RdsSnapshots::with_regions(&aws, copy_regions(&pipeline)),
        notifier: notifier.clone(),
        pipeline,
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
