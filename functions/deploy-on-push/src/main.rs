use lambda_runtime::{LambdaEvent, service_fn};
use shared::adapters::{cloudwatch::CloudWatchAlarms, dynamo::DynamoRecords, ecs::EcsAdapter, sns::SnsNotifier};
use shared::handlers::deploy_on_push::DeployOnPush;
use shared::handlers::request_approval::ApprovalDesk;
use shared::lambda::runtime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // Its Publish requests carry approval links.
    runtime::init_logging_without_payloads();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let notices = SnsNotifier::new(&aws, runtime::env("TOPIC_ARN")?);
    let handler = DeployOnPush {
        pipeline,
        records,
        ecs: EcsAdapter::new(&aws),
        approvals: ApprovalDesk {
            alarms: CloudWatchAlarms::new(&aws),
            mail: notices.for_topic(runtime::env("APPROVAL_TOPIC_ARN")?),
            notifier: notices,
            page_url: runtime::env("APPROVAL_PAGE_URL")?,
        },
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        handler.handle(event)
    }))
    .await
}
