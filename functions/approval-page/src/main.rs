use lambda_http::{Request, service_fn};
use shared::adapters::dynamo::DynamoRecords;
use shared::handlers::approval_page::ApprovalPage;
use shared::lambda::{http, runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    runtime::init_logging_without_payloads();
    let pipeline = runtime::load_pipeline()?;
    let aws = runtime::aws_config().await?;
    let page = ApprovalPage {
        pipeline,
        records: DynamoRecords::new(&aws, runtime::env("TABLE_NAME")?),
    };
    lambda_http::run(service_fn(|request: Request| http::serve(&page, request))).await
}
