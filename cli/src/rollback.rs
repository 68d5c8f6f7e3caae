//! `pipectl rollback STAGE APPLICATION --to TAG|DIGEST|DEPLOYMENT_ID --reason TEXT`: every
//! service of the application in the stage goes back to the task definition it ran under that
//! earlier version, as a rollback record (cause: the operator and the reason), through the same
//! lock, quarantine and notice as an automatic one. No staging check, approval or wait: the
//! version already ran there.

use shared::adapters::dynamo::DynamoRecords;
use shared::adapters::ecs::EcsAdapter;
use shared::adapters::sns::SnsNotifier;
use shared::domain::deployment::Deployment;
use shared::domain::pipeline::{Application, Pipeline, ServiceSpec, Stage};
use shared::domain::rollback_plan::{RollbackTarget, Trigger, version_target};
use shared::handlers::restore::{RestoreOutcome, Restorer};
use shared::ports::Deployments;

pub struct Request<'a> {
    pub pipeline: &'a Pipeline,
    pub stage: &'a Stage,
    pub application: &'a Application,
    pub to: &'a str,
    pub reason: &'a str,
}

pub async fn rollback(
    aws: &aws_config::SdkConfig,
    table: String,
    topic: String,
    request: Request<'_>,
) -> Result<(), String> {
    let Request {
        pipeline,
        stage,
        application,
        to,
        reason,
    } = request;
    if reason.trim().is_empty() {
        return Err("--reason must say why (it is recorded and sent to the team)".into());
    }
    if stage.rollback_approval {
        return Err(format!(
            "stage {} asks for approval of operator rollbacks (rollback_approval = true), which pipectl cannot request yet: \
             push the version's tag again for the stage's approval, or set rollback_approval = false",
            stage.name
        ));
    }
    let records = DynamoRecords::new(aws, table);
    // Every service's target first: nothing moves unless the version ran on all of them.
    let mut targets: Vec<(&ServiceSpec, RollbackTarget, String)> = Vec::new();
    for service in &application.services {
        let history = history_since(&records, stage, service, None).await?;
        match version_target(&history, to) {
            Ok((target, deploy)) => targets.push((service, target, deploy.image.uri.clone())),
            Err(ran) => return Err(never_ran(stage, service, to, &ran)),
        }
    }
    let (by, at) = crate::pipeline::caller(aws).await?;
    let trigger = Trigger::Operator {
        by,
        to: to.to_owned(),
        reason: reason.trim().to_owned(),
        at,
    };
    let restorer = Restorer {
        records,
        ecs: EcsAdapter::new(aws),
        notifier: SnsNotifier::new(aws, topic),
    };
    for (service, target, image) in targets {
        let deadline = chrono::Utc::now() + chrono::TimeDelta::seconds(60);
        let outcome = restorer
            .restore_to(pipeline, stage, service, &trigger, target, &image, deadline)
            .await
            .map_err(|e| format!("{}: {e}", service.name))?;
        match outcome {
            RestoreOutcome::RolledBack {
                rollback_id, from, to, ..
            } => println!(
                "{}/{}: rolled back ({rollback_id}): {from} → {to}",
                stage.name, service.name
            ),
            RestoreOutcome::Notified { reason } | RestoreOutcome::Nothing { reason } => {
                println!("{}/{}: {reason}", stage.name, service.name)
            }
        }
    }
    Ok(())
}

/// The service's records in the stage's cluster, newest first: all of them, or those requested
/// at or after `since`, read a page at a time until older ones show up.
pub(crate) async fn history_since(
    records: &DynamoRecords,
    stage: &Stage,
    service: &ServiceSpec,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<Deployment>, String> {
    let mut history = Vec::new();
    let mut after = None;
    loop {
        let page = records
            .history(&stage.cluster, &service.name, 100, after.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        let reached_older = since.is_some_and(|since| page.deployments.iter().any(|d| d.requested_at < since));
        history.extend(
            page.deployments
                .into_iter()
                .filter(|d| since.is_none_or(|since| d.requested_at >= since)),
        );
        match page.next {
            Some(next) if !reached_older => after = Some(next),
            _ => return Ok(history),
        }
    }
}

/// The refusal of a version that never ran on `service`, with those that did.
fn never_ran(stage: &Stage, service: &ServiceSpec, wanted: &str, ran: &[&Deployment]) -> String {
    let mut message = format!(
        "{wanted} never ran on {}/{} (a tag, a digest or a deployment id that reached SUCCEEDED there)",
        stage.name, service.name
    );
    if ran.is_empty() {
        message.push_str("; no version ran there yet");
        return message;
    }
    message.push_str("; these did, newest first:");
    for deploy in ran.iter().take(20) {
        message.push_str(&format!(
            "\n  {:<16} {}  {}  {}",
            deploy.image.tag,
            deploy.image.digest,
            deploy.id,
            deploy
                .completed_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        ));
    }
    message
}
