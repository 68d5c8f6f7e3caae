use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{cloudwatch::CloudWatchAlarms, dynamo::DynamoRecords, ecs::EcsAdapter, sns::SnsNotifier};
use shared::handlers::deploy_on_push::DeployOnPush;
use shared::handlers::request_approval::ApprovalDesk;
use shared::lambda::{pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Its Publish requests carry approval links.
    runtime::init_logging_without_payloads();
    let aws = runtime::aws_config().await?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let ecs = EcsAdapter::new(&aws);
    let notices = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    let approvals = ApprovalDesk {
        alarms: CloudWatchAlarms::new(&aws),
        mail: notices.for_topic(runtime::env("APPROVAL_TOPIC_ARN")?),
        notifier: notices,
        page_url: runtime::env("APPROVAL_PAGE_URL")?,
    };
    let handlers = &pipeline_in_force::served(&aws, |pipeline| DeployOnPush {
        pipeline,
        records: records.clone(),
        ecs: ecs.clone(),
        approvals: approvals.clone(),
    })
    .await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        handlers.handler().await.handle(event).await
    }))
    .await
}
