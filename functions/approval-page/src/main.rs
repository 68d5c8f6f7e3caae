use lambda_http::{Request, service_fn};
use shared::adapters::dynamo::DynamoRecords;
use shared::handlers::approval_page::ApprovalPage;
use shared::lambda::{http, pipeline_in_force, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_logging_without_payloads();
    let aws = runtime::aws_config().await?;
    let records = DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?);
    let pages = &pipeline_in_force::served(&aws, |pipeline| ApprovalPage {
        pipeline,
        records: records.clone(),
    })
    .await?;
    lambda_http::run(service_fn(|request: Request| async move {
        http::serve(&*pages.handler().await, request).await
    }))
    .await
}
