use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier, sts::StsCallers};
use shared::domain::emergency::EmergencyPrincipals;
use shared::handlers::break_glass::BreakGlass;
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_logging();
    let aws = runtime::aws_config().await?;
    let principals = EmergencyPrincipals::parse(&runtime::env("EMERGENCY_PRINCIPALS")?)?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let (ecs, rds, callers) = (EcsAdapter::new(&aws), RdsSnapshots::new(&aws), StsCallers::new(&aws));
    let team = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    let operations = SnsNotifier::new(&aws, runtime::env("OPERATIONS_TOPIC_ARN")?);
    let handlers = &pipeline_in_force::served(&aws, |pipeline| BreakGlass {
        pipeline,
        records: records.clone(),
        ecs: ecs.clone(),
        rds: rds.clone(),
        callers: callers.clone(),
        team: team.clone(),
        operations: operations.clone(),
        principals: principals.clone(),
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
