use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{
    cost_explorer::CostExplorerAdapter, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::domain::cost::prices_for;
use shared::handlers::cost_report::CostReporter;
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let region = aws.region().map_or("us-east-1", |r| r.as_ref());
    let handler = CostReporter {
        prices: prices_for(region, &pipeline.cost().prices),
        records: DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?),
        ecs: EcsAdapter::new(&aws),
        rds: RdsSnapshots::new(&aws),
        cost_explorer: CostExplorerAdapter::new(&aws),
        notifier: SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?),
        pipeline,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
