use lambda_runtime::{LambdaEvent, service_fn};
use shared::handlers::track_deployment::TrackDeployment;
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let handler = TrackDeployment {
        pipeline,
        restorer: shared::adapters::restorer(&aws)?,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
