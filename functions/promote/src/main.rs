use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier};
use shared::handlers::promote::Promote;
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let aws = runtime::aws_config().await?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let (ecs, rds) = (EcsAdapter::new(&aws), RdsSnapshots::new(&aws));
    let notifier = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    let handlers = &pipeline_in_force::served(&aws, |pipeline| Promote {
        pipeline,
        records: records.clone(),
        ecs: ecs.clone(),
        rds: rds.clone(),
        notifier: notifier.clone(),
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
