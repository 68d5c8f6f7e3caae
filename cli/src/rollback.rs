//! `pipectl rollback STAGE APPLICATION --to TAG|DIGEST|DEPLOYMENT_ID --reason TEXT`: every
//! service of the application in the stage goes back to the task definition it ran under that
//! earlier version, as a rollback record (cause: the operator and the reason), through the same
//! lock, quarantine and notice as an automatic one. No staging check, approval or wait: the
//! version already ran there. A stage with `rollback_approval = true` asks its approvers
//! first: the request goes out marked as a rollback, and promote rolls back once approved.

use crate::approvals::Desk;
use shared::adapters::dynamo::DynamoRecords;
use shared::adapters::ecs::EcsAdapter;
use shared::adapters::sns::SnsNotifier;
use shared::domain::approval::{
    ApprovalRequest, ApprovalStatus, RollbackOrder, RollbackService, RollbackStanding, rollback_standing,
};
use shared::domain::approval_page::state_line;
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
    // Where the request goes when the stage wants operator rollbacks approved.
    desk: Option<Desk>,
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
    let records = DynamoRecords::new(aws, table);
    // Every service's target first: nothing moves unless the version ran on all of them.
    let mut targets: Vec<(&ServiceSpec, RollbackTarget, Deployment)> = Vec::new();
    for service in &application.services {
        let history = history_since(&records, stage, service, None).await?;
        match version_target(&history, to) {
            Ok((target, deploy)) => targets.push((service, target, deploy.clone())),
            Err(ran) => return Err(never_ran(stage, service, to, &ran)),
        }
    }
    let (by, at) = crate::pipeline::caller(aws).await?;
    let reason = reason.trim().to_owned();
    if let Some(desk) = desk {
        let order = RollbackOrder {
            to: to.to_owned(),
            reason,
            by,
            at,
            targets: Vec::new(),
        };
        return ask_approval(aws, pipeline, records, desk, (stage, application), order, &targets).await;
    }
    let trigger = Trigger::Operator {
        by,
        to: to.to_owned(),
        reason,
        at,
    };
    let restorer = Restorer {
        records,
        ecs: EcsAdapter::new(aws),
        notifier: SnsNotifier::new(aws, topic),
    };
    for (service, target, deploy) in targets {
        let deadline = chrono::Utc::now() + chrono::TimeDelta::seconds(60);
        let outcome = restorer
            .restore_to(
                pipeline,
                stage,
                service,
                &trigger,
                (target, &deploy.image.uri),
                None,
                deadline,
            )
            .await
            .map_err(|e| format!("{}: {e}", service.name))?;
        match outcome {
            RestoreOutcome::RolledBack {
                rollback_id, from, to, ..
            } => println!(
                "{}/{}: rolled back ({rollback_id}): {from} → {to}",
                stage.name, service.name
            ),
            RestoreOutcome::Notified { reason }
            | RestoreOutcome::Nothing { reason }
            | RestoreOutcome::MovedOn { reason } => {
                println!("{}/{}: {reason}", stage.name, service.name)
            }
        }
    }
    Ok(())
}

/// The stage's approvers are asked to approve the rollback (`rollback_approval = true`): one
/// request for the services not on the version yet, each from what it runs now, through the
/// same links and page as a release. Promote rolls them back once it is approved.
async fn ask_approval(
    aws: &aws_config::SdkConfig,
    pipeline: &Pipeline,
    records: DynamoRecords,
    desk: Desk,
    (stage, application): (&Stage, &Application),
    mut order: RollbackOrder,
    targets: &[(&ServiceSpec, RollbackTarget, Deployment)],
) -> Result<(), String> {
    let policy = stage
        .approval
        .as_ref()
        .ok_or_else(|| format!("stage {} takes no approvals", stage.name))?;
    let mut running_now = Vec::new();
    for (service, target, deploy) in targets {
        let state = records
            .service_state(&stage.cluster, &service.name)
            .await
            .map_err(|e| e.to_string())?;
        let current = match &state.latest {
            Some(latest) => records.get_deployment(&latest.id).await.map_err(|e| e.to_string())?,
            None => None,
        };
        let Some(current) = current else {
            return Err(format!(
                "{}/{}: no deployment is recorded as running",
                stage.name, service.name
            ));
        };
        if let RollbackStanding::Done(reason) = rollback_standing(&current, &deploy.image.uri, None) {
            println!("{}/{}: {reason}", stage.name, service.name);
            continue;
        }
        running_now.push(current.task_definition.clone());
        order.targets.push(RollbackService {
            service: service.name.clone(),
            from: current.id,
            target: target.from.clone(),
            task_definition: target.task_definition.clone(),
            image: deploy.image.uri.clone(),
        });
    }
    let Some((_, _, version)) = targets.first().filter(|_| !order.targets.is_empty()) else {
        return Ok(());
    };
    let attempt = |n| {
        ApprovalRequest::for_rollback(
            (&stage.name, &stage.cluster),
            policy,
            &application.name,
            &version.image,
            (order.clone(), n),
            &running_now,
        )
    };
    let desk_of_push = shared::handlers::deploy_on_push::DeployOnPush {
        pipeline: pipeline.clone(),
        records,
        ecs: EcsAdapter::new(aws),
        approvals: shared::handlers::request_approval::ApprovalDesk {
            alarms: shared::adapters::cloudwatch::CloudWatchAlarms::new(aws),
            mail: SnsNotifier::new(aws, desk.approvals_topic),
            notifier: SnsNotifier::new(aws, desk.notifications_topic),
            page_url: desk.page_url,
        },
    };
    let (kept, sent) = desk_of_push
        .request_rollback(attempt)
        .await
        .map_err(|e| format!("the approval request was not sent: {e}; run the command again"))?;
    let now = chrono::Utc::now();
    match kept.status_at(now) {
        ApprovalStatus::AwaitingApproval => {
            println!(
                "{}: the {} waits for approval ({}); links sent now to {sent} approver(s)",
                kept.id,
                kept.title(),
                state_line(&kept, now)
            );
            println!("promote rolls the services back once it is approved; `pipectl approvals` follows it");
        }
        _ => println!("{}: the {}: {}", kept.id, kept.title(), state_line(&kept, now)),
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
