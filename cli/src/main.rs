//! pipectl: operator commands over the shared crate. `pipectl --help` lists them.
//!
//! Every command uses the SDK's usual configuration (profiles, SSO, environment,
//! AWS_ENDPOINT_URL). `--stack` names the stack whose outputs say which table, topic, queue
//! and functions to act on; without it, TABLE_NAME, PIPELINE_TABLE (or a PIPELINE_FILE) and
//! TOPIC_ARN say so.

mod approvals;
mod cost;
mod db_restore;
mod deploy;
mod metrics;
mod pipeline;
mod redrive;
mod rollback;
mod snapshots;
mod stack;
mod status;
mod template;

use clap::{Parser, Subcommand};
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::approval::Verdict;
use shared::domain::names::{ImageDigest, ServiceName};
use shared::domain::pipeline::{Pipeline, Stage};
use shared::lambda::runtime;
use shared::ports::{Deployments, Quarantine};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pipectl", about = "Operate the ECS deployment pipeline")]
struct Cli {
    /// The stack to act on: its outputs name the tables, topics, queue and functions (each
    /// also settable by its environment variable, e.g. TABLE_NAME, PIPELINE_TABLE).
    #[arg(long, global = true)]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a pipeline file; with --template, that the template takes every parameter the
    /// file implies and that samconfig.toml's overrides of them (if any) cover the file.
    Validate {
        #[arg(default_value = "pipeline.toml")]
        file: PathBuf,
        /// The SAM template (its samconfig.toml beside it is read too, if there is one).
        #[arg(long)]
        template: Option<PathBuf>,
    },
    /// The stack's pipeline versions: push a file, show, list, compare, put one back.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// A service's deployments, newest first.
    History {
        stage: String,
        service: String,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=100))]
        limit: i32,
        /// The cursor the previous page printed.
        #[arg(long)]
        after: Option<String>,
    },
    /// Let a rolled-back digest deploy to a service again.
    LiftQuarantine {
        stage: String,
        service: String,
        digest: String,
    },
    /// Send the failed-events queue's events back through the functions that failed them.
    Redrive {
        /// The failed-events queue (default: the stack's `FailedEventsQueueUrl` output).
        #[arg(long)]
        queue_url: Option<String>,
        /// Redrive at most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Approval requests still open (awaiting a vote, or approved and waiting for their timer,
    /// snapshots or deploy window), with who has voted; or cancel or extend one.
    Approvals {
        #[command(subcommand)]
        command: Option<ApprovalsCommand>,
    },
    /// Approve a request for an approver who cannot use their link, as an operator with AWS
    /// credentials: the vote goes on that approver's one ballot, recorded with your caller ARN.
    Approve {
        id: String,
        /// The approver (as the pipeline file lists them) whose ballot this is.
        #[arg(long = "as", value_name = "APPROVER")]
        approver: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a request for an approver, as an operator with AWS credentials (as `approve`).
    Reject {
        id: String,
        #[arg(long = "as", value_name = "APPROVER")]
        approver: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// The approvers' e-mail subscriptions to the approvals topic.
    Approvers {
        #[command(subcommand)]
        command: ApproversCommand,
    },
    /// Our RDS snapshots (age, expiry under the current policy, status) in the home region
    /// and the copy region, and how much of the manual-snapshot quota is used.
    Snapshots,
    /// A snapshot outside the schedule.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// The last cost report, as it was sent.
    Cost,
    /// A cost report outside the schedule.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The cost report's prices.
    Prices {
        #[command(subcommand)]
        command: PricesCommand,
    },
    /// Every stage × application × service on one screen: what runs, the last deploy, what is
    /// in flight, quarantined digests; each stage's deploy window and alarms; open approvals.
    Status {
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Roll every service of APPLICATION in STAGE back to a version that ran there (a tag, a
    /// digest or a deployment id; `history` lists them): recorded as a rollback with your IAM
    /// identity and the reason, the rolled-back digest quarantined, the team told. No staging
    /// check, approval or wait; where the stage sets `rollback_approval`, its approvers are
    /// asked first, and promote rolls back once they approve.
    Rollback {
        stage: String,
        application: String,
        #[arg(long, value_name = "TAG|DIGEST|DEPLOYMENT_ID")]
        to: String,
        /// Why: recorded on the rollback and sent to the team.
        #[arg(long)]
        reason: String,
    },
    /// The four DORA measures per application (its last stage is production) and per stage,
    /// from the deployment records, with the 2023 State of DevOps report's bands.
    Metrics {
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=365))]
        days: i64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Deploy an image already in ECR (a tag, or a digest) to STAGE through the stage's normal
    /// path, as if it were pushed for that stage alone: its tag rule, staging check, approval,
    /// timer and deploy window apply. With --emergency, a break-glass deploy instead.
    Deploy {
        stage: String,
        application: String,
        #[arg(value_name = "TAG|DIGEST")]
        image: String,
        /// Deploy now, skipping the staging check, the approval, the timer and the deploy
        /// window (only the stack's EmergencyPrincipals may); needs --reason.
        #[arg(long, requires = "reason")]
        emergency: bool,
        /// Why (recorded on the deployments and announced to the team and operations).
        #[arg(long, requires = "emergency")]
        reason: Option<String>,
        /// With --emergency: deploy without the stage's pre-deploy snapshots.
        #[arg(long, requires = "emergency")]
        no_snapshot: bool,
    },
    /// Deploy again a digest whose deploy FAILED and could not be rolled back, as a new push
    /// of it would (through the stack's deploy-on-push function).
    Redeploy { stage: String, service: String },
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Check FILE against the account and the stack, keep it as the next version and put it
    /// in force. A file that fails a check changes nothing.
    Push { file: PathBuf },
    /// The version in force (or VERSION), with who pushed it and when.
    Show { version: Option<String> },
    /// Every version, newest first.
    History,
    /// What changed from one version to another.
    Diff { from: String, to: String },
    /// Put a kept version back in force (checked against the account again).
    Activate { version: String },
    /// The template parameters FILE implies, as `Name=value` lines for `sam deploy
    /// --parameter-overrides`; PassableRoleArns is read from the services' task definitions.
    Parameters {
        #[arg(default_value = "pipeline.toml")]
        file: PathBuf,
        /// Without AWS: leave out what only the account can tell (PassableRoleArns).
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Call request ID off (awaiting a vote, or approved and not deploying yet): recorded with
    /// your IAM identity and the reason; its records close and the team is told.
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// New links for every approver of request ID (awaiting a vote) who has not voted; their
    /// old links stop counting.
    Resend { id: String },
    /// Give request ID, awaiting a vote, N more hours (within 168 hours of the request).
    Extend {
        id: String,
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=168))]
        hours: i64,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// A snapshot of DB now (its [[snapshots.db]] entry must exist), tagged and kept as the
    /// scheduled ones.
    Now { db: String },
    /// Restore SNAPSHOT (an instance's or an Aurora cluster's) to a new DB, NEW_DB_ID, with
    /// its source's class, subnet group, security groups and parameter group. The running DB
    /// is never touched; the team is told who restored what and why.
    Restore {
        snapshot: String,
        #[arg(long = "as", value_name = "NEW_DB_ID")]
        new_id: String,
        /// Why: recorded on the new DB's tags and in the notice.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Have the stack's cost-report function make the report now, send it to the topic and
    /// keep it as the last one (two Cost Explorer requests, $0.01 each, unless the pipeline
    /// file turns it off).
    Now,
}

#[derive(Subcommand)]
enum PricesCommand {
    /// Have the stack's cost-report function refresh its price table from the AWS Price List
    /// (GetProducts, every page; the reports that follow use it, under the pipeline file's
    /// [cost.prices]).
    Refresh,
}

#[derive(Subcommand)]
enum ApproversCommand {
    /// Subscribe each approver the pipeline file names, with a filter policy on their own
    /// address; fix policies that differ; unsubscribe addresses no longer listed.
    Sync {
        /// The approvals topic (default: the stack's `ApprovalsTopicArn` output).
        #[arg(long)]
        topic_arn: Option<String>,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The stack `--stack` names, set once from the command line.
static STACK: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

fn main() -> ExitCode {
    let cli = Cli::parse();
    STACK.set(cli.stack).expect("set once");
    let result = match cli.command {
        Command::Validate { file, template } => validate(&file, template.as_deref()),
        Command::Pipeline { command } => pipeline_command(command),
        Command::History {
            stage,
            service,
            limit,
            after,
        } => history(&stage, &service, limit, after),
        Command::LiftQuarantine { stage, service, digest } => lift_quarantine(&stage, &service, &digest),
        Command::Redrive { queue_url, limit } => setting(queue_url, "FailedEventsQueueUrl").and_then(|queue_url| {
            let stack = stack_name()?;
            with_aws(|aws| redrive(aws, queue_url, stack, limit))
        }),
        Command::Redeploy { stage, service } => redeploy(&stage, &service),
        Command::Deploy {
            stage,
            application,
            image,
            emergency,
            reason,
            no_snapshot,
        } => match reason.filter(|_| emergency) {
            Some(reason) => deploy_emergency(&stage, &application, &image, &reason, !no_snapshot),
            None => deploy_normally(&stage, &application, &image),
        },
        Command::Snapshots => {
            load_pipeline().and_then(|pipeline| with_aws(|aws| async move { snapshots::list(&aws, &pipeline).await }))
        }
        Command::Snapshot {
            command: SnapshotCommand::Now { db },
        } => load_pipeline()
            .and_then(|pipeline| with_aws(|aws| async move { snapshots::now(&aws, pipeline, &db).await })),
        Command::Snapshot {
            command:
                SnapshotCommand::Restore {
                    snapshot,
                    new_id,
                    reason,
                },
        } => setting(None, "NotificationsTopicArn").and_then(|topic| {
            with_aws(|aws| async move {
                let (by, at) = pipeline::caller(&aws).await?;
                let notifier = shared::adapters::sns::SnsNotifier::new(&aws, topic);
                let request = db_restore::Request {
                    snapshot: &snapshot,
                    new_id: &new_id,
                    reason: &reason,
                    by,
                    at,
                };
                db_restore::restore(&aws, &notifier, request).await
            })
        }),
        Command::Status { stage, json } => load_pipeline().and_then(|pipeline| {
            let table = setting(None, "DeploymentsTableName")?;
            with_aws(|aws| async move {
                let records = DynamoRecords::new(&aws, table);
                status::show(&aws, &records, &pipeline, stage.as_deref(), json).await
            })
        }),
        Command::Rollback {
            stage,
            application,
            to,
            reason,
        } => rollback(&stage, &application, &to, &reason),
        Command::Metrics { days, json } => load_pipeline().and_then(|pipeline| {
            with_table(|records| async move { metrics::report(&records, &pipeline, days, json).await })
        }),
        Command::Cost => with_table(|records| async move { cost::last(&records).await }),
        Command::Report {
            command: ReportCommand::Now,
        } => stack_name().and_then(|stack| with_aws(|aws| async move { cost::now(&aws, stack).await })),
        Command::Prices {
            command: PricesCommand::Refresh,
        } => stack_name().and_then(|stack| with_aws(|aws| async move { cost::refresh_prices(&aws, stack).await })),
        Command::Approvals { command } => approvals_command(command),
        Command::Approve { id, approver, comment } => operator_vote(&id, Verdict::Approve, &approver, comment),
        Command::Reject { id, approver, comment } => operator_vote(&id, Verdict::Reject, &approver, comment),
        Command::Approvers {
            command: ApproversCommand::Sync { topic_arn, dry_run },
        } => setting(topic_arn, "ApprovalsTopicArn").and_then(|topic_arn| {
            let pipeline = load_pipeline()?;
            with_aws(|aws| async move {
                approvals::sync(&aws_sdk_sns::Client::new(&aws), &pipeline, &topic_arn, dry_run).await
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pipectl: {message}");
            ExitCode::FAILURE
        }
    }
}

fn validate(path: &std::path::Path, template: Option<&std::path::Path>) -> Result<(), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let pipeline = Pipeline::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
    if let Some(template) = template {
        template::check(&pipeline, template)?;
    }
    let stages: Vec<&str> = pipeline.stages().iter().map(|s| s.name.as_str()).collect();
    println!(
        "{shown}: ok ({} application(s), stages: {})",
        pipeline.applications().len(),
        stages.join(" → ")
    );
    Ok(())
}

fn history(stage: &str, service: &str, limit: i32, after: Option<String>) -> Result<(), String> {
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
            shared::domain::deployment::Kind::Deploy if d.id.is_emergency() => "EMERGENCY".to_owned(),
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
    // The index copies no break-glass details: who ordered each one and why, from its record.
    let emergencies: Vec<_> = page.deployments.iter().filter(|d| d.id.is_emergency()).collect();
    if !emergencies.is_empty() {
        let records = with_records(|records| async move {
            let mut found = Vec::new();
            for d in emergencies {
                found.extend(records.get_deployment(&d.id).await?);
            }
            Ok(found)
        })?;
        for record in records {
            if let Some(emergency) = record.emergency {
                println!("{}: break-glass by {}: {}", record.id, emergency.by, emergency.reason);
            }
        }
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

fn rollback(stage: &str, application: &str, to: &str, reason: &str) -> Result<(), String> {
    let pipeline = load_pipeline()?;
    let stage = find_stage(&pipeline, stage)?;
    let application = pipeline
        .applications()
        .iter()
        .find(|a| a.name.as_str() == application)
        .ok_or_else(|| format!("no application `{application}` in the pipeline file"))?;
    let (table, topic) = (
        setting(None, "DeploymentsTableName")?,
        setting(None, "NotificationsTopicArn")?,
    );
    // A stage that wants operator rollbacks approved asks through the approvals topic and page.
    let desk = match stage.rollback_approval {
        true => Some(approvals::Desk {
            approvals_topic: setting(None, "ApprovalsTopicArn")?,
            notifications_topic: topic.clone(),
            page_url: setting(None, "ApprovalPageUrl")?,
        }),
        false => None,
    };
    let request = rollback::Request {
        pipeline: &pipeline,
        stage,
        application,
        to,
        reason,
    };
    with_aws(|aws| async move { rollback::rollback(&aws, table, topic, request, desk).await })
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

/// Invokes `function` with `event` and waits for its answer; its error, named.
async fn invoke_for_answer(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let out = lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::RequestResponse)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| shared::adapters::describe_sdk_error("Invoke", &e))?;
    let payload: serde_json::Value = out
        .payload()
        .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
        .unwrap_or_default();
    if out.function_error().is_some() {
        return Err(format!(
            "{function}: {}: {}",
            payload["errorType"].as_str().unwrap_or("error"),
            payload["errorMessage"].as_str().unwrap_or("no message")
        ));
    }
    Ok(payload)
}

/// Invokes `function` asynchronously with `event`, as EventBridge would: its retries and
/// failed-events queue apply again.
async fn invoke(lambda: &aws_sdk_lambda::Client, function: &str, event: &serde_json::Value) -> Result<(), String> {
    lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| shared::adapters::describe_sdk_error("Invoke", &e))?;
    Ok(())
}

async fn redrive(aws: aws_config::SdkConfig, queue_url: String, stack: &str, limit: usize) -> Result<(), String> {
    let (sqs, lambda) = (aws_sdk_sqs::Client::new(&aws), aws_sdk_lambda::Client::new(&aws));
    let stack = stack::Stack::describe(&aws, stack).await?;
    let function_named = |function: &str| stack.output(&stack::function_output(function)).map(str::to_owned);
    let (mut redriven, mut kept) = (0, 0);
    while redriven + kept < limit {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            // Long enough to invoke and delete; a message left behind returns after it.
            .visibility_timeout(60)
            .send()
            .await
            .map_err(|e| shared::adapters::describe_sdk_error("ReceiveMessage", &e))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages.into_iter().take(limit - redriven - kept) {
            let id = message.message_id().unwrap_or("?").to_owned();
            let outcome = match redrive::route(message.body().unwrap_or_default(), &function_named) {
                Ok(route) => invoke(&lambda, &route.function, &route.event)
                    .await
                    .map(|()| route.function),
                Err(why) => Err(why),
            };
            match outcome {
                Ok(function) => {
                    sqs.delete_message()
                        .queue_url(&queue_url)
                        .receipt_handle(message.receipt_handle().unwrap_or_default())
                        .send()
                        .await
                        .map_err(|e| shared::adapters::describe_sdk_error("DeleteMessage", &e))?;
                    println!("redriven {id} → {function}");
                    redriven += 1;
                }
                Err(why) => {
                    println!("kept {id}: {why}");
                    kept += 1;
                }
            }
        }
    }
    println!("{redriven} redriven, {kept} kept in the queue");
    if kept > 0 {
        return Err(format!("{kept} event(s) could not be redriven and stay in the queue"));
    }
    Ok(())
}

fn redeploy(stage: &str, service: &str) -> Result<(), String> {
    let stack = stack_name()?;
    let (pipeline, service) = (load_pipeline()?, parse_service(service)?);
    let stage = find_stage(&pipeline, stage)?;
    let (cluster, name) = (stage.cluster.clone(), service.clone());
    let table = setting(None, "DeploymentsTableName")?;
    with_aws(|aws| async move {
        let stack = stack::Stack::describe(&aws, stack).await?;
        let function = stack.output(&stack::function_output("deploy-on-push"))?.to_owned();
        let records = DynamoRecords::new(&aws, table);
        let page = records
            .history(&cluster, &name, 20, None)
            .await
            .map_err(|e| e.to_string())?;
        let latest = page
            .deployments
            .into_iter()
            .find(|d| d.kind == shared::domain::deployment::Kind::Deploy)
            .ok_or_else(|| format!("no deploy of {cluster}/{name} is recorded"))?;
        if latest.status != shared::domain::deployment::Status::Failed {
            return Err(format!(
                "the latest deploy of {cluster}/{name}, {}, is {}: only a FAILED one is deployed again",
                latest.id, latest.status
            ));
        }
        let event = shared::events::push_of(&latest.image, chrono::Utc::now())
            .ok_or_else(|| format!("{}: its image {} is not an ECR image", latest.id, latest.image.uri))?;
        invoke(&aws_sdk_lambda::Client::new(&aws), &function, &event).await?;
        println!(
            "pushed again: {} ({}) through {function}",
            latest.image.tag, latest.image.digest
        );
        Ok(())
    })
}

/// `pipectl deploy` without --emergency: the push deploy-on-push is handed, for one stage.
fn deploy_normally(stage: &str, application: &str, wanted: &str) -> Result<(), String> {
    let stack = stack_name()?;
    let pipeline = load_pipeline()?;
    let (stage, application) = (find_stage(&pipeline, stage)?, find_application(&pipeline, application)?);
    with_aws(|aws| async move {
        let function = stack::Stack::describe(&aws, stack)
            .await?
            .output(&stack::function_output("deploy-on-push"))?
            .to_owned();
        let image = deploy::find_image(&aws, application, wanted).await?;
        let region = aws.region().ok_or("no AWS region (set AWS_REGION)")?.to_string();
        let event = deploy::operator_push(stage, application, &image, &region)?;
        let answer = invoke_for_answer(&aws_sdk_lambda::Client::new(&aws), &function, &event).await?;
        println!(
            "{} {} ({}) pushed for {} through {function}:",
            application.name, image.tag, image.digest, stage.name
        );
        println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
        Ok(())
    })
}

/// `pipectl deploy --emergency`: the order, signed, to the stack's break-glass function URL.
fn deploy_emergency(stage: &str, application: &str, wanted: &str, reason: &str, snapshot: bool) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err("--reason must say why (it is recorded and announced)".into());
    }
    let pipeline = load_pipeline()?;
    let (stage, application) = (find_stage(&pipeline, stage)?, find_application(&pipeline, application)?);
    let url = setting(None, "BreakGlassUrl")?;
    with_aws(|aws| async move {
        let image = deploy::find_image(&aws, application, wanted).await?;
        let order = deploy::Order {
            stage,
            application,
            image: &image,
            reason,
            snapshot,
        };
        let region = deploy::url_region(&aws, &url)?;
        let body = order.body(&aws, &region).await?;
        let (status, answer) = deploy::send_signed(&aws, &url, &region, &body).await?;
        for line in deploy::report(status, &answer)? {
            println!("{line}");
        }
        Ok(())
    })
}

fn find_application<'a>(
    pipeline: &'a Pipeline,
    name: &str,
) -> Result<&'a shared::domain::pipeline::Application, String> {
    pipeline
        .applications()
        .iter()
        .find(|a| a.name.as_str() == name)
        .ok_or_else(|| format!("no application `{name}` in the pipeline file"))
}

fn approvals_command(command: Option<ApprovalsCommand>) -> Result<(), String> {
    let table = setting(None, "DeploymentsTableName")?;
    match command {
        None => {
            let pipeline = load_pipeline()?;
            with_aws(|aws| async move { approvals::list(&DynamoRecords::new(&aws, table), &pipeline).await })
        }
        Some(ApprovalsCommand::Cancel { id, reason }) => with_aws(|aws| async move {
            let (arn, at) = pipeline::caller(&aws).await?;
            let operator = approvals::Operator { arn, at };
            approvals::cancel(&DynamoRecords::new(&aws, table), &id, &reason, operator).await
        }),
        Some(ApprovalsCommand::Resend { id }) => {
            let pipeline = load_pipeline()?;
            let desk = approvals::Desk {
                approvals_topic: setting(None, "ApprovalsTopicArn")?,
                notifications_topic: setting(None, "NotificationsTopicArn")?,
                page_url: setting(None, "ApprovalPageUrl")?,
            };
            with_aws(|aws| async move {
                let (arn, at) = pipeline::caller(&aws).await?;
                let operator = approvals::Operator { arn, at };
                approvals::resend(&aws, pipeline, table, desk, &id, operator).await
            })
        }
        Some(ApprovalsCommand::Extend { id, hours }) => {
            let pipeline = load_pipeline()?;
            let topic = setting(None, "NotificationsTopicArn")?;
            with_aws(|aws| async move {
                let (arn, at) = pipeline::caller(&aws).await?;
                let notifier = shared::adapters::sns::SnsNotifier::new(&aws, topic);
                let operator = approvals::Operator { arn, at };
                approvals::extend(
                    &DynamoRecords::new(&aws, table),
                    &pipeline,
                    &notifier,
                    &id,
                    hours,
                    operator,
                )
                .await
            })
        }
    }
}

/// A vote recorded with the caller's identity, as STS tells it.
fn operator_vote(id: &str, verdict: Verdict, approver: &str, comment: Option<String>) -> Result<(), String> {
    let pipeline = load_pipeline()?;
    let table = setting(None, "DeploymentsTableName")?;
    with_aws(|aws| async move {
        // The vote's time is AWS's (STS's answer), never this machine's clock: a skewed clock
        // must not shorten the wait or the Cancel window.
        let answered = shared::adapters::AnsweredAt::default();
        let caller = aws_sdk_sts::Client::new(&aws)
            .get_caller_identity()
            .customize()
            .interceptor(answered.clone())
            .send()
            .await
            .map_err(|e| shared::adapters::describe_sdk_error("GetCallerIdentity", &e))?;
        let operator = caller.arn().ok_or("STS named no caller ARN")?.to_owned();
        let cast = approvals::OperatorVote {
            id,
            verdict,
            approver,
            operator,
            comment,
            at: answered.at()?,
        };
        approvals::vote(&DynamoRecords::new(&aws, table), &pipeline, cast).await
    })
}

/// Runs `work` on the stack `--stack` names.
fn with_stack<F, Fut>(work: F) -> Result<(), String>
where
    F: FnOnce(aws_config::SdkConfig, &'static str) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let stack = stack_name()?;
    with_aws(|aws| work(aws, stack))
}

/// The stack `--stack` named; an error for a command that needs one.
fn stack_name() -> Result<&'static str, String> {
    STACK
        .get()
        .and_then(Option::as_deref)
        .ok_or_else(|| "this command needs the stack: --stack STACK".to_owned())
}

/// `given` on the command line, else the stack's `output` when `--stack` names one (so a
/// variable left set from another stack never mixes in), else the environment variable that
/// stands for it, as the functions name it (`DeploymentsTableName`: TABLE_NAME,
/// `PipelineTableName`: PIPELINE_TABLE, `NotificationsTopicArn`: TOPIC_ARN,
/// `ApprovalsTopicArn`: APPROVAL_TOPIC_ARN, `ApprovalPageUrl`: APPROVAL_PAGE_URL).
fn setting(given: Option<String>, output: &str) -> Result<String, String> {
    if let Some(given) = given {
        return Ok(given);
    }
    if let Ok(stack) = stack_name() {
        return with_aws(
            |aws| async move { Ok(stack::Stack::describe(&aws, stack).await?.output(output)?.to_owned()) },
        );
    }
    let variable = match output {
        "DeploymentsTableName" => Some("TABLE_NAME"),
        "PipelineTableName" => Some("PIPELINE_TABLE"),
        "NotificationsTopicArn" => Some("TOPIC_ARN"),
        "ApprovalsTopicArn" => Some("APPROVAL_TOPIC_ARN"),
        "ApprovalPageUrl" => Some("APPROVAL_PAGE_URL"),
        "BreakGlassUrl" => Some("BREAK_GLASS_URL"),
        _ => None,
    };
    match variable {
        Some(variable) => {
            std::env::var(variable).map_err(|_| format!("set {variable}, or name the stack with --stack"))
        }
        None => Err(format!("name the stack with --stack (its {output} output)")),
    }
}

/// Runs `work` with the table TABLE_NAME names; its errors are already operator-readable.
fn with_table<F, Fut>(work: F) -> Result<(), String>
where
    F: FnOnce(DynamoRecords) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let table = setting(None, "DeploymentsTableName")?;
    with_aws(|aws| async move { work(DynamoRecords::new(&aws, table)).await })
}

/// The stack's pipeline in force when `--stack` names one; else the file PIPELINE_FILE
/// names, or the one in force in the table PIPELINE_TABLE names.
fn load_pipeline() -> Result<Pipeline, String> {
    if stack_name().is_err()
        && let Some(pipeline) = runtime::pipeline_file().map_err(|e| e.to_string())?
    {
        return Ok(pipeline);
    }
    let table =
        setting(None, "PipelineTableName").map_err(|e| format!("{e} (or set PIPELINE_FILE to a pipeline file)"))?;
    with_aws(|aws| async move {
        use shared::ports::PipelineStore;
        let stored = shared::adapters::dynamo::DynamoPipelines::new(&aws, &table)
            .in_force()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{table} holds no pipeline in force"))?;
        Ok(Pipeline::parse(&stored.text)
            .map_err(|e| e.to_string())?
            .with_version(stored.label()))
    })
}

fn pipeline_command(command: PipelineCommand) -> Result<(), String> {
    match command {
        PipelineCommand::Push { file } => {
            with_stack(|aws, stack| async move { pipeline::push(&aws, stack, &file).await })
        }
        PipelineCommand::Show { version } => {
            with_stack(|aws, stack| async move { pipeline::show(&aws, stack, version.as_deref()).await })
        }
        PipelineCommand::History => with_stack(|aws, stack| async move { pipeline::history(&aws, stack).await }),
        PipelineCommand::Diff { from, to } => {
            with_stack(|aws, stack| async move { pipeline::diff(&aws, stack, &from, &to).await })
        }
        PipelineCommand::Activate { version } => {
            with_stack(|aws, stack| async move { pipeline::activate(&aws, stack, &version).await })
        }
        PipelineCommand::Parameters { file, offline } => {
            let shown = file.display();
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{shown}: {e}"))?;
            let parsed = Pipeline::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
            for (name, value) in pipeline::template_parameters(&parsed)? {
                println!("{name}={value}");
            }
            if offline {
                eprintln!("offline: PassableRoleArns is read from the account (the services' task definitions)");
                return Ok(());
            }
            let found = with_aws(|aws| async move { pipeline::preflight(&aws, &parsed, None).await })?;
            for problem in &found.problems {
                eprintln!("problem: {problem}");
            }
            println!(
                "PassableRoleArns={}",
                found.passed_roles.into_iter().collect::<Vec<_>>().join(",")
            );
            Ok(())
        }
    }
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

/// Runs `work` with the AWS configuration of an operator's terminal: profiles, SSO and the
/// rest of the SDK's default chain.
fn with_aws<T, F, Fut>(work: F) -> Result<T, String>
where
    F: FnOnce(aws_config::SdkConfig) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    tokio.block_on(async {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        work(aws).await
    })
}

/// Runs `work` against the table TABLE_NAME names.
fn with_records<T, F, Fut>(work: F) -> Result<T, String>
where
    F: FnOnce(DynamoRecords) -> Fut,
    Fut: std::future::Future<Output = Result<T, shared::ports::StoreError>>,
{
    let table = setting(None, "DeploymentsTableName")?;
    with_aws(|aws| async move { work(DynamoRecords::new(&aws, table)).await.map_err(|e| e.to_string()) })
}
