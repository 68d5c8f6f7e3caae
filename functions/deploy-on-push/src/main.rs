use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{dynamo::DynamoRecords, ecs::EcsAdapter};
use shared::handlers::deploy_on_push::DeployOnPush;
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let handler = DeployOnPush {
        pipeline,
        records: DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?),
        ecs: EcsAdapter::new(&aws),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
