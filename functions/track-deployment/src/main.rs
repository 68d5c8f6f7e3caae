use lambda_runtime::{LambdaEvent, service_fn};
use shared::handlers::track_deployment::TrackDeployment;
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let aws = runtime::aws_config().await?;
    let restorer = shared::adapters::restorer(&aws)?;
    let handlers = &pipeline_in_force::served(&aws, |pipeline| TrackDeployment {
        pipeline,
        restorer: restorer.clone(),
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
