//! pipectl: operator commands over the shared crate.
//!
//!   pipectl validate [FILE]                           check a pipeline file (default ./pipeline.toml)
//!   pipectl history STAGE SERVICE [--limit N] [--after CURSOR]
//!                                                     a service's deployments, newest first
//!   pipectl lift-quarantine STAGE SERVICE DIGEST      let a rolled-back digest deploy again
//!
//! `history` and `lift-quarantine` use the table named by TABLE_NAME with the SDK's usual
//! configuration (profiles, SSO, environment, AWS_ENDPOINT_URL) and the pipeline file the
//! functions use (PIPELINE_FILE or the shipped one).

use shared::adapters::dynamo::DynamoRecords;
use shared::domain::names::{ImageDigest, ServiceName};
use shared::domain::pipeline::{Pipeline, Stage};
use shared::ports::Records;
use shared::runtime;
use std::process::ExitCode;

const USAGE: &str = "usage: pipectl validate [FILE]
       pipectl history STAGE SERVICE [--limit N] [--after CURSOR]
       pipectl lift-quarantine STAGE SERVICE DIGEST";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["validate"] => validate("pipeline.toml"),
        ["validate", path] => validate(path),
        ["history", stage, service, options @ ..] => history(stage, service, options),
        ["lift-quarantine", stage, service, digest] => lift_quarantine(stage, service, digest),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) if message == USAGE => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
        Err(message) => {
            eprintln!("pipectl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let pipeline = Pipeline::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    let stages: Vec<&str> = pipeline.stages().iter().map(|s| s.name.as_str()).collect();
    println!(
        "{path}: ok ({} application(s), stages: {})",
        pipeline.applications().len(),
        stages.join(" → ")
    );
    Ok(())
}

fn history(stage: &str, service: &str, options: &[&str]) -> Result<(), String> {
    let (mut limit, mut after) = (20, None);
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match (*option, options.next()) {
            ("--limit", Some(n)) => {
                limit = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or("--limit takes 1 to 100")?
            }
            ("--after", Some(cursor)) => after = Some(cursor.to_string()),
            _ => return Err(USAGE.to_owned()),
        }
    }
    let (pipeline, service) = (load_pipeline()?, parse_service(service)?);
    let stage = find_stage(&pipeline, stage)?;
    let (cluster, name) = (&stage.cluster, &service);
    let page = with_records(|records| async move { records.history(cluster, name, limit, after.as_deref()).await })?;

    println!(
        "{:<28} {:<10} {:<18} {:<16} {:<24} task definition",
        "id", "kind", "status", "tag", "requested at"
    );
    for d in &page.deployments {
        let kind = match &d.kind {
            shared::domain::deployment::Kind::Deploy => "deploy".to_owned(),
            shared::domain::deployment::Kind::Rollback { of, .. } => format!("rollback of {of}"),
        };
        println!(
            "{:<28} {:<10} {:<18} {:<16} {:<24} {}",
            d.id,
            kind,
            d.status,
            d.image.tag,
            d.requested_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            d.task_definition.as_deref().unwrap_or("-")
        );
    }
    match page.next {
        Some(cursor) => println!(
            "more: pipectl history {} {service} --limit {limit} --after '{cursor}'",
            stage.name
        ),
        None if page.deployments.is_empty() => println!("no deployments recorded for {}/{service}", stage.cluster),
        None => {}
    }
    Ok(())
}

fn lift_quarantine(stage: &str, service: &str, digest: &str) -> Result<(), String> {
    let (pipeline, service) = (load_pipeline()?, parse_service(service)?);
    let stage = find_stage(&pipeline, stage)?;
    let digest = ImageDigest::parse(digest).map_err(|e| e.to_string())?;
    let (cluster, name, lifting) = (&stage.cluster, &service, &digest);
    let lifted = with_records(|records| async move { records.lift_quarantine(cluster, name, lifting).await })?;
    if !lifted {
        return Err(format!("{digest} is not quarantined on {}/{service}", stage.name));
    }
    println!(
        "lifted: {digest} deploys to {}/{service} again on its next push",
        stage.name
    );
    Ok(())
}

fn load_pipeline() -> Result<Pipeline, String> {
    runtime::load_pipeline().map_err(|e| e.to_string())
}

fn find_stage<'a>(pipeline: &'a Pipeline, name: &str) -> Result<&'a Stage, String> {
    pipeline
        .stages()
        .iter()
        .find(|s| s.name.as_str() == name)
        .ok_or_else(|| format!("no stage `{name}` in the pipeline file"))
}

fn parse_service(name: &str) -> Result<ServiceName, String> {
    ServiceName::parse(name).map_err(|e| e.to_string())
}

/// Runs `work` against the table TABLE_NAME names.
fn with_records<T, F, Fut>(work: F) -> Result<T, String>
where
    F: FnOnce(DynamoRecords) -> Fut,
    Fut: std::future::Future<Output = Result<T, shared::ports::StoreError>>,
{
    let table = runtime::env("TABLE_NAME").map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    tokio.block_on(async {
        // An operator's terminal: profiles, SSO and the rest of the SDK's default chain.
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        work(DynamoRecords::new(&aws, table)).await.map_err(|e| e.to_string())
    })
}
