use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{
    billing::AwsBilling, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::handlers::cost_report::CostReporter;
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let handler = CostReporter {
        region: aws.region().map_or("us-east-1", |r| r.as_ref()).to_owned(),
        records: DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?),
        ecs: EcsAdapter::new(&aws),
        rds: RdsSnapshots::new(&aws),
        billing: AwsBilling::new(&aws),
        notifier: SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?),
        pipeline,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
