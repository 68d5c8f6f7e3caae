use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{
    billing::AwsBilling, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::handlers::cost_report::CostReporter;
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let aws = runtime::aws_config().await?;
    let region = aws.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let (ecs, rds, billing) = (EcsAdapter::new(&aws), RdsSnapshots::new(&aws), AwsBilling::new(&aws));
    let notifier = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    let handlers = &pipeline_in_force::served(&aws, |pipeline| CostReporter {
        region: region.clone(),
        records: records.clone(),
        ecs: ecs.clone(),
        rds: rds.clone(),
        billing: billing.clone(),
        notifier: notifier.clone(),
        pipeline,
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
