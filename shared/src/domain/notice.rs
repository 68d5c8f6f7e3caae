//! What people are told, over SNS: plain text for e-mail, an ASCII one-line subject under
//! 100 characters, and the same notice in AWS Chatbot's custom-notification format for a chat
//! channel subscribed to the topic (`sns_message`).

use super::approval::{ApprovalRequest, Evidence, RollbackOrder, Successor};
use super::deployment::{Deployment, Kind, PushedImage, Status};
use super::names::{Approver, ClusterName, StageName};
use super::rollback_plan::{NoRollback, Trigger};
use super::taskdef::revision_name;

/// An SNS message. SNS wants the subject ASCII, one line, under 100 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub message: String,
    /// The chat thread it belongs to: one per release (`release_thread`), so that a release's
    /// deploys, approvals and rollbacks read as one conversation.
    pub thread: Option<String>,
    /// What the reader may do next (commands to run), listed apart in a chat channel.
    pub next_steps: Vec<String>,
}

impl Notice {
    pub fn new(subject: String, message: String) -> Self {
        Notice {
            subject,
            message,
            ..Notice::default()
        }
    }

    pub fn in_thread(self, thread: String) -> Self {
        Notice {
            thread: Some(thread),
            ..self
        }
    }

    pub fn with_next_steps(self, next_steps: Vec<String>) -> Self {
        Notice { next_steps, ..self }
    }
}

/// The thread of one release: an application's image digest, the same in every stage.
pub fn release_thread(image: &PushedImage) -> String {
    let hex = image.digest.as_str().trim_start_matches("sha256:");
    format!("{}@{}", image.repository, &hex[..hex.len().min(16)])
}

/// Chatbot shows at most this much of a description.
const CHAT_DESCRIPTION_LIMIT: usize = 8000;
/// SNS refuses a message over 256 KiB; this leaves room for the subject and attributes.
const SNS_MESSAGE_BUDGET: usize = 240 * 1024;

/// The message to publish with `MessageStructure=json`: SNS gives each protocol its own body.
/// E-mail gets the plain text as before; every other protocol (the HTTPS endpoint of AWS
/// Chatbot / Amazon Q Developer in chat applications, and queues) gets `default`, a custom
/// notification in Chatbot's format, so a chat channel shows a title, the text and the next
/// steps, threaded by release. The text goes in a code block: aligned columns stay aligned,
/// and nothing in it (an approver's comment, a name with `_`) becomes a link, a mention or
/// formatting. A text too long for SNS is cut in the e-mail, and says so.
pub fn sns_message(notice: &Notice) -> String {
    let mut metadata = serde_json::Map::new();
    if let Some(thread) = &notice.thread {
        metadata.insert("threadId".into(), thread.clone().into());
    }
    let fence = "```";
    let text: String = notice
        .message
        .replace(fence, "'''")
        .chars()
        .take(CHAT_DESCRIPTION_LIMIT - 2 * fence.len() - 2)
        .collect();
    let chat = serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": notice.subject,
            "description": format!("{fence}\n{text}\n{fence}"),
            "nextSteps": notice.next_steps,
        },
        "metadata": metadata,
    })
    .to_string();
    let mut email = notice.message.clone();
    loop {
        let message = serde_json::json!({ "default": chat, "email": email }).to_string();
        if message.len() <= SNS_MESSAGE_BUDGET {
            return message;
        }
        let mut keep = email.len() * 3 / 4;
        while !email.is_char_boundary(keep) {
            keep -= 1;
        }
        email.truncate(keep);
        email.push_str("\n[cut to fit SNS's message size]\n");
    }
}

pub(crate) fn subject(text: String) -> String {
    let ascii: String = text
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect();
    ascii.chars().take(99).collect()
}

/// A deployment ECS reported ended: every FAILED one, and a SUCCEEDED one where the stage
/// asks for it.
pub fn deployment_ended_notice(ended: &Deployment) -> Notice {
    let (stage, service) = (&ended.stage, &ended.service);
    let revision = ended.task_definition.as_deref().unwrap_or("?");
    let what = match ended.kind {
        Kind::Deploy => format!("{} ({})", ended.image.tag, revision_name(revision)),
        Kind::Rollback { .. } => format!("rollback to {}", revision_name(revision)),
    };
    let headline = match ended.status {
        Status::Failed => format!("Deploy FAILED {stage}/{service}: {what}"),
        _ => format!("Deployed {stage}/{service}: {what}"),
    };
    let completed = ended.completed_at.map(|at| at.to_rfc3339()).unwrap_or_default();
    Notice {
        subject: subject(headline),
        message: format!(
            "{service} in stage {stage} (cluster {cluster}): deployment {id} {status}.\n\n\
             Image: {image} (tag {tag})\n\
             Task definition: {revision}\n\
             Replaced: {previous}\n\
             ECS deployment: {ecs}\n\
             ECS says: {reason}\n\
             Requested at: {requested}\n\
             Ended at: {completed}\n",
            cluster = ended.cluster,
            id = ended.id,
            status = ended.status,
            image = ended.image.uri,
            tag = ended.image.tag,
            previous = ended.previous_task_definition.as_deref().unwrap_or("?"),
            ecs = ended.ecs_deployment_id.as_deref().unwrap_or("?"),
            reason = ended.ecs_reason.as_deref().unwrap_or("-"),
            requested = ended.requested_at.to_rfc3339(),
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&ended.image))
    .with_next_steps(match ended.status {
        Status::Failed => vec![format!("pipectl history {stage} {service}")],
        _ => Vec::new(),
    })
}

/// What a rollback record tells the team: stage, service, from → to, why, and what is blocked.
pub fn rollback_notice(rollback: &Deployment) -> Notice {
    let (from, to) = (
        rollback.previous_task_definition.as_deref().unwrap_or("?"),
        rollback.task_definition.as_deref().unwrap_or("?"),
    );
    let (of, cause) = match &rollback.kind {
        Kind::Rollback { of, cause } => (of.as_str(), cause.as_str()),
        Kind::Deploy => ("?", "?"),
    };
    let (stage, service) = (&rollback.stage, &rollback.service);
    Notice {
        subject: subject(format!(
            "Rolled back {stage}/{service}: {} -> {}",
            revision_name(from),
            revision_name(to)
        )),
        message: format!(
            "{service} in stage {stage} (cluster {cluster}) was rolled back.\n\n\
             Why: {cause}\n\
             Rolled back: deployment {of}, image {image}\n\
             From: {from}\n\
             To (last known good): {to}\n\
             Rollback deployment: {id}\n\n\
             The digest {digest} is quarantined on this service: auto-deploys skip it. Push a fix \
             (a new digest deploys as usual), or lift it with\n  \
             pipectl lift-quarantine {stage} {service} {digest}\n",
            cluster = rollback.cluster,
            image = rollback.image.uri,
            id = rollback.id,
            digest = rollback.image.digest,
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&rollback.image))
    .with_next_steps(vec![
        "Push a fix: a new digest deploys as usual".into(),
        format!("pipectl lift-quarantine {stage} {service} {}", rollback.image.digest),
    ])
}

/// An alarm or failure that changed nothing, and why.
pub fn no_rollback_notice(
    (stage, cluster): (&StageName, &ClusterName),
    service: &str,
    trigger: &Trigger,
    why: &NoRollback,
) -> Notice {
    Notice {
        subject: subject(format!("No rollback of {stage}/{service}: {why}")),
        message: format!(
            "{service} in stage {stage} (cluster {cluster}) was not rolled back.\n\n\
             Event: {trigger}\n\
             Why not: {why}\n",
        ),
        ..Notice::default()
    }
}

/// An approver's own message: what ships, why it may, their link, and until when.
pub fn approval_request_notice(request: &ApprovalRequest, approver: &Approver, link: &str) -> Notice {
    if let Some(order) = &request.rollback {
        return rollback_request_notice(request, order, approver, link);
    }
    let image = &request.image;
    let services: String = request
        .services
        .iter()
        .map(|s| {
            format!(
                "  - {} (runs now: {})\n",
                s.service,
                s.running_now.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    let needed = request.approvals_required;
    Notice {
        subject: subject(format!(
            "Approve {} of {} to {}?",
            image.tag, request.application, request.stage
        )),
        message: format!(
            "A release of {app} to {stage} waits for your approval, {approver}.\n\n\
             What ships\n\
             \x20 Application: {app}\n\
             \x20 Tag: {tag}\n\
             \x20 Digest: {digest}\n\
             \x20 Image: {uri}\n\
             \x20 Requested at: {requested} UTC\n\
             Services, and what {stage} runs now:\n{services}\n\
             {evidence}\n\
             Open your link to approve or reject. It is yours alone: whoever opens it votes as you.\n\
             {link}\n\n\
             The link expires at {expires} UTC. Approvals needed: {needed} (of {ballots} approvers). \
             The deploy starts no earlier than {wait} minutes after the last needed approval.\n",
            app = request.application,
            stage = request.stage,
            tag = image.tag,
            digest = image.digest,
            uri = image.uri,
            requested = utc(request.requested_at),
            evidence = evidence_text(request.evidence.as_ref()),
            expires = utc(request.expires_at),
            ballots = request.ballots.len(),
            wait = request.wait.num_minutes(),
        ),
        ..Notice::default()
    }
}

/// An approver's message for an operator's rollback: who asked, why, each service from and to.
fn rollback_request_notice(
    request: &ApprovalRequest,
    order: &RollbackOrder,
    approver: &Approver,
    link: &str,
) -> Notice {
    let services: String = order
        .targets
        .iter()
        .zip(&request.services)
        .map(|(target, service)| {
            format!(
                "  - {}: from {} back to {} (as under deployment {})\n",
                target.service,
                service.running_now.as_deref().unwrap_or("unknown"),
                target.task_definition,
                target.target
            )
        })
        .collect();
    Notice {
        subject: subject(format!("Approve the {}?", request.title())),
        message: format!(
            "An operator asks to roll {app} in {stage} back to {tag}, and waits for your approval, {approver}.\n\n\
             Asked by: {by} at {at} UTC\n\
             Reason: {reason}\n\
             Version: {tag} ({digest})\n\
             Services:\n{services}\n\
             No staging check and no wait: this version ran in {stage} before. Approved, the services go \
             back at once, even in a deploy freeze.\n\n\
             Open your link to approve or reject. It is yours alone: whoever opens it votes as you.\n\
             {link}\n\n\
             The link expires at {expires} UTC. Approvals needed: {needed} (of {ballots} approvers).\n",
            app = request.application,
            stage = request.stage,
            tag = request.image.tag,
            digest = request.image.digest,
            by = order.by,
            at = utc(order.at),
            reason = order.reason,
            expires = utc(request.expires_at),
            needed = request.approvals_required,
            ballots = request.ballots.len(),
        ),
        ..Notice::default()
    }
}

/// The staging evidence, as text: the same lines in the message and on the page.
pub fn evidence_lines(evidence: Option<&Evidence>) -> Vec<String> {
    let Some(evidence) = evidence else {
        return vec!["No earlier stage is required.".into()];
    };
    let mut lines: Vec<String> = evidence
        .deployments
        .iter()
        .map(|d| {
            format!(
                "{}: deployment {} SUCCEEDED at {} UTC",
                d.service,
                d.deployment,
                d.completed_at.map(utc).unwrap_or_else(|| "?".into())
            )
        })
        .collect();
    let alarms: Vec<&str> = evidence.alarms_checked.iter().map(|a| a.as_str()).collect();
    lines.push(if alarms.is_empty() {
        format!("No {} alarm guards this application.", evidence.stage)
    } else {
        format!("Not in ALARM when requested: {}", alarms.join(", "))
    });
    lines
}

fn evidence_text(evidence: Option<&Evidence>) -> String {
    let heading = match evidence {
        Some(e) => format!("Verified in {}\n", e.stage),
        None => String::new(),
    };
    let lines: String = evidence_lines(evidence).iter().map(|l| format!("  {l}\n")).collect();
    format!("{heading}{lines}")
}

/// A release that may not ask for approval: why, and what to do about it.
pub fn release_blocked_notice(request: &ApprovalRequest, required: Option<&str>) -> Notice {
    let image = &request.image;
    let what_to_do = match required {
        Some(stage) => format!(
            "Deploy this digest to {stage} first (push it with a tag {stage} deploys), let it succeed there \
             with its alarms quiet, then tag it with a new release tag (ECR sends no event for a tag \
             that already points at this digest)."
        ),
        None => "Fix the cause, then tag the digest with a new release tag.".into(),
    };
    Notice {
        subject: subject(format!(
            "Release {} of {} to {} blocked",
            image.tag, request.application, request.stage
        )),
        message: format!(
            "{tag} of {app} will not be offered for approval in {stage}; no approval links were sent.\n\n\
             Why: {why}\n\
             Digest: {digest}\n\
             Request: {id} (BLOCKED)\n\n\
             What to do: {what_to_do}\n",
            tag = image.tag,
            app = request.application,
            stage = request.stage,
            why = request.blocked.as_deref().unwrap_or("?"),
            digest = image.digest,
            id = request.id,
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&request.image))
}

/// An open request a newer release replaced: its links now say so.
pub fn superseded_request_notice(superseded: &ApprovalRequest, newer: &Successor) -> Notice {
    Notice {
        subject: subject(format!(
            "Approval of {} to {} superseded by {}",
            superseded.image.tag, superseded.stage, newer.tag
        )),
        message: format!(
            "The approval request for {old} of {app} to {stage} ({old_id}) is superseded by {new} ({new_id}); \
             its links no longer decide anything.\n\n\
             Superseded digest: {old_digest}\n",
            old = superseded.image.tag,
            app = superseded.application,
            stage = superseded.stage,
            old_id = superseded.id,
            new = newer.tag,
            new_id = newer.id,
            old_digest = superseded.image.digest,
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&superseded.image))
}

/// A step of the promotion that follows an approval, told to the team.
pub fn promotion_notice(request: &ApprovalRequest, headline: &str, detail: &str) -> Notice {
    let image = &request.image;
    Notice {
        subject: subject(format!("{}: {headline}", request.title())),
        message: format!(
            "{title} ({id}): {headline}.\n\n{detail}\n\n\
             Digest: {digest}\n\
             Services: {services}\n\
             Configuration backup: the task definitions each service runs now stay registered in ECS, \
             and the deployment records keep them in full (a rollback registers them again if need be).\n",
            title = request.title(),
            id = request.id,
            digest = image.digest,
            services = request
                .services
                .iter()
                .map(|s| s.service.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&request.image))
}

/// What the team hears of a tick that could not do everything.
pub fn snapshot_tick_notice(tick: chrono::DateTime<chrono::Utc>, problems: &[String]) -> Notice {
    Notice {
        subject: subject(format!(
            "Scheduled RDS snapshots of {} UTC: attention needed",
            utc(tick)
        )),
        message: format!(
            "The scheduled snapshot run of {} UTC needs attention:\n\n{}\n",
            utc(tick),
            problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n")
        ),
        ..Notice::default()
    }
}

/// A UTC time as people read it in a message or on the page.
pub fn utc(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::DeploymentId;
    use crate::domain::fixtures::{at, deployment as dep, fixture_pipeline as pipeline};
    use crate::domain::names::AlarmName;

    fn fired(minute: u32) -> Trigger {
        Trigger::Alarm {
            alarm: AlarmName::parse("backend-dev-5xx").unwrap(),
            at: at(minute),
        }
    }

    #[test]
    fn notices_name_stage_service_and_revisions_in_an_ascii_subject_under_100_chars() {
        let mut rollback = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm backend-dev-5xx went into ALARM".into(),
            },
            Status::Deploying,
            None,
        );
        rollback.previous_task_definition =
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-service:7".into());
        rollback.task_definition = Some("arn:aws:ecs:us-east-1:123456789012:task-definition/backend-service:5".into());
        let notice = rollback_notice(&rollback);
        assert_eq!(
            notice.subject,
            "Rolled back dev/backend-service: backend-service:7 -> backend-service:5"
        );
        assert!(notice.message.contains("Why: alarm backend-dev-5xx went into ALARM"));
        assert!(
            notice
                .message
                .contains("pipectl lift-quarantine dev backend-service sha256:0303")
        );

        let pipeline = pipeline();
        let why = NoRollback::OutsideWatchWindow { completed_at: at(1) };
        let long = no_rollback_notice(
            (&pipeline.stages()[0].name, &pipeline.stages()[0].cluster),
            &"ü".repeat(120),
            &fired(20),
            &why,
        );
        assert!(long.subject.len() < 100 && long.subject.is_ascii(), "{}", long.subject);
        assert!(long.message.contains("Why not: the current deployment completed at"));
    }

    #[test]
    fn an_ended_deployment_names_stage_service_tag_and_revision() {
        let mut failed = dep(2, Kind::Deploy, Status::Failed, Some(9));
        failed.ecs_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
        let notice = deployment_ended_notice(&failed);
        assert_eq!(notice.subject, "Deploy FAILED dev/backend-service: latest (td:2)");
        assert!(notice.message.contains("ECS says: ECS deployment circuit breaker"));
        let succeeded = dep(3, Kind::Deploy, Status::Succeeded, Some(9));
        assert_eq!(
            deployment_ended_notice(&succeeded).subject,
            "Deployed dev/backend-service: latest (td:3)"
        );
    }

    #[test]
    fn the_published_message_gives_email_its_text_and_chat_a_threaded_custom_notification() {
        let rolled = dep(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm".into(),
            },
            Status::Deploying,
            None,
        );
        let notice = rollback_notice(&rolled);
        let published: serde_json::Value = serde_json::from_str(&sns_message(&notice)).unwrap();
        assert_eq!(published["email"], notice.message.as_str());
        let chat: serde_json::Value = serde_json::from_str(published["default"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["content"]["title"], notice.subject.as_str());
        assert_eq!(
            chat["content"]["description"],
            format!("```\n{}\n```", notice.message).as_str()
        );
        assert_eq!(chat["content"]["nextSteps"].as_array().unwrap().len(), 2);
        assert_eq!(chat["metadata"]["threadId"], release_thread(&rolled.image).as_str());
        // Every notice of one release shares its thread, whatever the stage.
        let mut in_prod = rolled.clone();
        in_prod.stage = crate::domain::names::StageName::parse("prod").unwrap();
        assert_eq!(
            deployment_ended_notice(&in_prod).thread,
            Some(release_thread(&rolled.image))
        );

        let long = Notice::new("s".into(), format!("```<!channel>{}", "x".repeat(9000)));
        let published: serde_json::Value = serde_json::from_str(&sns_message(&long)).unwrap();
        let chat: serde_json::Value = serde_json::from_str(published["default"].as_str().unwrap()).unwrap();
        let description = chat["content"]["description"].as_str().unwrap();
        assert_eq!(description.len(), 8000);
        assert!(description.starts_with("```\n'''<!channel>") && description.ends_with("\n```"));
        assert_eq!(
            description.matches("```").count(),
            2,
            "the text cannot close the code block"
        );
        assert!(
            chat["metadata"].as_object().unwrap().is_empty(),
            "no thread, no threadId"
        );
        assert_eq!(published["email"].as_str().unwrap().len(), 9013);

        // Far over SNS's 256 KiB (newlines double when escaped): the e-mail is cut to fit.
        let huge = Notice::new("s".into(), "line\n".repeat(100_000));
        let message = sns_message(&huge);
        assert!(message.len() <= 240 * 1024, "{}", message.len());
        let published: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert!(
            published["email"]
                .as_str()
                .unwrap()
                .ends_with("[cut to fit SNS's message size]\n")
        );
    }
}
