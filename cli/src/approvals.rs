//! `pipectl approvals`, `approve`, `reject` and `approvers sync`: the approval loop from an
//! operator's terminal.

use shared::adapters::dynamo::DynamoRecords;
use shared::adapters::sns::approver_filter_policy;
use shared::domain::approval::{ApprovalId, ApprovalStatus, Refusal, Verdict, Voter};
use shared::domain::approval_page::{held, state_line, vote_line};
use shared::domain::names::Approver;
use shared::domain::notice::{promotion_notice, utc};
use shared::domain::pipeline::Pipeline;
use shared::ports::{Approvals, Change, Notifier, update_approval};
use std::collections::BTreeSet;

/// Requests still open (awaiting a vote, or approved and waiting for their timer, snapshots or
/// deploy window), with who voted what.
pub async fn list(records: &DynamoRecords, pipeline: &Pipeline) -> Result<(), String> {
    let open: Vec<_> = records
        .approvals_in(&[ApprovalStatus::AwaitingApproval, ApprovalStatus::Approved])
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.in_flight() && r.promotion.as_ref().is_none_or(|p| p.failed.is_none()))
        .collect();
    let now = chrono::Utc::now();
    if open.is_empty() {
        println!("no approval request is open");
    }
    for request in open {
        let request = request.governed_in(pipeline);
        if request.services.is_empty() {
            // Made by a push whose services are still being handled (or whose delivery gave up):
            // no link exists yet, and no vote is taken.
            println!(
                "{}  {}: listing its services, no links yet",
                request.id,
                request.title()
            );
            continue;
        }
        println!(
            "{}  {}  {}  requested {} UTC, expires {} UTC",
            request.id,
            request.title(),
            request.image.digest,
            utc(request.requested_at),
            utc(request.expires_at),
        );
        if let Some(order) = &request.rollback {
            println!("  ROLLBACK asked by {}: {}", order.by, order.reason);
        }
        println!("  {}", state_line(&request, now));
        let schedule = pipeline.stage(&request.stage).map(|s| &s.schedule);
        if let Some(held) = schedule.and_then(|schedule| held(&request, schedule, now)) {
            println!("  held until {} UTC: {}", utc(held.until), held.why);
        }
        for ballot in request.ballots.iter().filter(|b| b.vote.is_none()) {
            let sent = if ballot.sent_at.is_some() {
                "link sent"
            } else {
                "link not sent yet"
            };
            println!("  {}: has not voted ({sent})", ballot.approver);
        }
        for (who, vote) in request.votes() {
            println!("  {who}: {}", vote_line(vote));
        }
    }
    Ok(())
}

/// Who acts on a request from pipectl, and when, as STS says.
pub struct Operator {
    pub arn: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Calls request `id` off (awaiting a vote, or approved and not deploying yet), recorded with
/// the operator and `reason`; promote then closes its records and tells the team.
pub async fn cancel(records: &DynamoRecords, id: &str, reason: &str, operator: Operator) -> Result<(), String> {
    let id = approval_id(id)?;
    if reason.trim().is_empty() {
        return Err("--reason must say why (it is recorded and sent to the team)".into());
    }
    let cancelled = update_approval(records, &id, "it was cancelled", |request| {
        match request.cancel_by_operator(&operator.arn, reason.trim(), operator.at) {
            Ok(next) => {
                *request = next;
                Change::Write(Ok(()))
            }
            Err(refusal) => Change::Leave(Err(format!("{id}: nothing changed: {refusal}"))),
        }
    })
    .await
    .map_err(|e| format!("{e}; try again"))?;
    let Some((next, answer)) = cancelled else {
        return Err(format!("no approval request {id}"));
    };
    answer?;
    println!(
        "{id}: cancelled by {} ({}); promote closes its records and tells the team within a minute",
        operator.arn,
        state_line(&next, operator.at)
    );
    Ok(())
}

/// Gives request `id`, awaiting a vote, `hours` more (within 168 hours of the request), and
/// tells the team who did.
pub async fn extend(
    records: &DynamoRecords,
    pipeline: &Pipeline,
    notifier: &impl Notifier,
    id: &str,
    hours: i64,
    operator: Operator,
) -> Result<(), String> {
    let id = approval_id(id)?;
    let extended = update_approval(records, &id, "it was extended", |request| {
        // From the deadline the file in force gives it, which promote goes by.
        let deadline = request.governed_in(pipeline).expires_at;
        match request.extend(deadline, hours, operator.at) {
            Ok(next) => {
                *request = next;
                Change::Write(Ok(()))
            }
            Err(why) => Change::Leave(Err(format!("{id}: nothing changed: {why}"))),
        }
    })
    .await
    .map_err(|e| format!("{e}; try again"))?;
    let Some((next, answer)) = extended else {
        return Err(format!("no approval request {id}"));
    };
    answer?;
    let detail = format!(
        "{} gave it until {} UTC to be decided ({hours} more hours, at {} UTC by AWS's clock).",
        operator.arn,
        utc(next.expires_at),
        utc(operator.at)
    );
    notifier
        .publish(&promotion_notice(&next, "extended", &detail))
        .await
        .map_err(|e| {
            format!(
                "{id} extended until {} UTC, but the team was not told: {e}",
                utc(next.expires_at)
            )
        })?;
    println!("{id}: {detail}");
    Ok(())
}

/// Where new links go, and what they open.
pub struct Desk {
    pub approvals_topic: String,
    pub notifications_topic: String,
    pub page_url: String,
}

/// New links for every approver of request `id` who has not voted (through the same code that
/// sends a push's links: each to their own subscription); the old ones stop counting. The team
/// is told who asked.
pub async fn resend(
    aws: &aws_config::SdkConfig,
    pipeline: Pipeline,
    table: String,
    desk: Desk,
    id: &str,
    operator: Operator,
) -> Result<(), String> {
    use shared::adapters::sns::SnsNotifier;
    let id = approval_id(id)?;
    let records = DynamoRecords::new(aws, table);
    let request = records
        .get_approval(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no approval request {id}"))?;
    let status = request.status_at(operator.at);
    if status != ApprovalStatus::AwaitingApproval {
        return Err(format!(
            "{id} is {status}: only a request awaiting a vote gets new links"
        ));
    }
    let notifier = SnsNotifier::new(aws, desk.notifications_topic);
    let deployer = shared::handlers::deploy_on_push::DeployOnPush {
        pipeline,
        records,
        ecs: shared::adapters::ecs::EcsAdapter::new(aws),
        approvals: shared::handlers::request_approval::ApprovalDesk {
            alarms: shared::adapters::cloudwatch::CloudWatchAlarms::new(aws),
            mail: SnsNotifier::new(aws, desk.approvals_topic),
            notifier: notifier.clone(),
            page_url: desk.page_url,
        },
    };
    let sent = deployer.resend_links(&id).await.map_err(|e| format!("{id}: {e}"))?;
    if sent.is_empty() {
        return Err(format!(
            "{id}: every approver has voted, or it changed meanwhile: no link sent"
        ));
    }
    let names: Vec<String> = sent.iter().map(ToString::to_string).collect();
    let detail = format!(
        "{} sent new links to {} at {} UTC (AWS's clock); their earlier links no longer count.",
        operator.arn,
        names.join(", "),
        utc(operator.at)
    );
    notifier
        .publish(&promotion_notice(&request, "links sent again", &detail))
        .await
        .map_err(|e| format!("{id}: links sent, but the team was not told: {e}"))?;
    println!("{id}: {detail}");
    Ok(())
}

fn approval_id(id: &str) -> Result<ApprovalId, String> {
    ApprovalId::parse(id).ok_or_else(|| format!("`{id}` is not an approval id (apr-…)"))
}

/// What an operator's vote is cast with.
pub struct OperatorVote<'a> {
    pub id: &'a str,
    pub verdict: Verdict,
    /// The approver whose ballot it is: one vote per approver, by link or by pipectl.
    pub approver: &'a str,
    /// The caller ARN STS names: who cast it.
    pub operator: String,
    pub comment: Option<String>,
    /// When AWS answered the caller's identity: the vote's time.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Casts an operator's vote on an approver's ballot, once, with a conditional write. The
/// approver must still be listed for the stage in the pipeline file.
pub async fn vote(records: &DynamoRecords, pipeline: &Pipeline, cast: OperatorVote<'_>) -> Result<(), String> {
    let id = ApprovalId::parse(cast.id).ok_or_else(|| format!("`{}` is not an approval id (apr-…)", cast.id))?;
    let approver = Approver::parse(cast.approver).map_err(|e| e.to_string())?;
    let verdict = cast.verdict;
    let voter = Voter {
        source_ip: String::new(),
        user_agent: "pipectl".into(),
        comment: cast.comment.unwrap_or_default(),
        operator: Some(cast.operator.clone()),
    };
    let voted = update_approval(records, &id, "the vote was cast", |request| {
        if !pipeline.lists_approver(&request.stage, &approver) {
            return Change::Leave(Err(format!(
                "{approver} is not an approver of {} in the pipeline file",
                request.stage
            )));
        }
        match request.cast_for(&approver, verdict, voter.clone(), cast.at) {
            Ok(next) => {
                *request = next;
                Change::Write(Ok(()))
            }
            Err(Refusal::Expired) => Change::Leave(Err(format!("{id} expired at {} UTC", utc(request.expires_at)))),
            Err(refusal) => Change::Leave(Err(format!("{id}: nothing changed: {refusal}"))),
        }
    })
    .await
    .map_err(|e| format!("{e}; try again"))?;
    let Some((next, answer)) = voted else {
        return Err(format!("no approval request {id}"));
    };
    answer?;
    println!(
        "{id}: {} for {approver} by {}; {}",
        verdict.past_tense(),
        cast.operator,
        state_line(&next, cast.at)
    );
    Ok(())
}

/// An SNS call's failure in one line.
fn sdk<E, R>(operation: &'static str) -> impl FnOnce(aws_sdk_sns::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| shared::adapters::describe_sdk_error(operation, &err)
}

/// Makes the approvals topic's e-mail subscriptions match the pipeline file: each approver
/// subscribed with a filter policy on their own address (so only their links reach them), the
/// policy corrected where it differs, and addresses no longer listed unsubscribed.
/// Every subscription to the topic, every page.
pub async fn subscriptions(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
) -> Result<Vec<aws_sdk_sns::types::Subscription>, String> {
    let mut subscribed = Vec::new();
    let mut next = None;
    loop {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(next)
            .send()
            .await
            .map_err(sdk("ListSubscriptionsByTopic"))?;
        subscribed.extend(page.subscriptions().iter().cloned());
        match page.next_token {
            Some(token) => next = Some(token),
            None => return Ok(subscribed),
        }
    }
}

/// The one approver of `wanted` a confirmed subscription's filter policy admits, if it is
/// exactly that approver's (`None`: it filters on no one approver, and receives others' links).
pub async fn filtered_on<'a>(
    sns: &aws_sdk_sns::Client,
    subscription: &aws_sdk_sns::types::Subscription,
    wanted: &BTreeSet<&'a Approver>,
) -> Result<Option<&'a Approver>, String> {
    let Some(arn) = subscription.subscription_arn().filter(|arn| arn.starts_with("arn:")) else {
        return Ok(None);
    };
    let policy = sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(sdk("GetSubscriptionAttributes"))?
        .attributes()
        .and_then(|a| a.get("FilterPolicy"))
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    Ok(wanted
        .iter()
        .find(|approver| policy.is_some() && policy == serde_json::from_str(&approver_filter_policy(approver)).ok())
        .copied())
}

pub async fn sync(
    sns: &aws_sdk_sns::Client,
    pipeline: &Pipeline,
    topic_arn: &str,
    dry_run: bool,
) -> Result<(), String> {
    let wanted: BTreeSet<&Approver> = pipeline.approvers().collect();
    let subscribed = subscriptions(sns, topic_arn).await?;
    // Anything but an approver's own e-mail subscription must filter on one approver too, or
    // it receives other people's links.
    let (subscribed, others): (Vec<_>, Vec<_>) = subscribed.into_iter().partition(|s| s.protocol() == Some("email"));
    let mut leaking = 0;
    for other in &others {
        let (protocol, endpoint) = (other.protocol().unwrap_or("?"), other.endpoint().unwrap_or("?"));
        let only = filtered_on(sns, other, &wanted).await?;
        match only {
            Some(approver) => println!("{protocol} {endpoint}: receives {approver}'s links only"),
            None => {
                leaking += 1;
                println!(
                    "{protocol} {endpoint}: receives links without filtering on one approver: unsubscribe it or give it an approver's filter policy"
                );
            }
        }
    }
    let act = if dry_run { "would" } else { "did" };
    for approver in &wanted {
        let policy = approver_filter_policy(approver);
        match subscribed.iter().find(|s| s.endpoint() == Some(approver.as_str())) {
            None => {
                if !dry_run {
                    sns.subscribe()
                        .topic_arn(topic_arn)
                        .protocol("email")
                        .endpoint(approver.as_str())
                        .attributes("FilterPolicy", &policy)
                        .return_subscription_arn(true)
                        .send()
                        .await
                        .map_err(sdk("Subscribe"))?;
                }
                println!("{approver}: {act} subscribe (they confirm from the e-mail AWS sends)");
            }
            Some(subscription) => {
                let arn = subscription.subscription_arn().unwrap_or_default();
                if !arn.starts_with("arn:") {
                    println!("{approver}: subscribed, waiting for their confirmation");
                    continue;
                }
                let attributes = sns
                    .get_subscription_attributes()
                    .subscription_arn(arn)
                    .send()
                    .await
                    .map_err(sdk("GetSubscriptionAttributes"))?;
                let current = attributes.attributes().and_then(|a| a.get("FilterPolicy")).cloned();
                let same = current
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                    == serde_json::from_str::<serde_json::Value>(&policy).ok();
                if same {
                    println!("{approver}: subscribed, filter policy in place");
                    continue;
                }
                if !dry_run {
                    sns.set_subscription_attributes()
                        .subscription_arn(arn)
                        .attribute_name("FilterPolicy")
                        .attribute_value(&policy)
                        .send()
                        .await
                        .map_err(sdk("SetSubscriptionAttributes"))?;
                }
                println!("{approver}: {act} set the filter policy to their own address");
            }
        }
    }
    for stale in subscribed
        .iter()
        .filter(|s| !wanted.iter().any(|a| Some(a.as_str()) == s.endpoint()))
    {
        let (endpoint, arn) = (
            stale.endpoint().unwrap_or("?"),
            stale.subscription_arn().unwrap_or_default(),
        );
        if !arn.starts_with("arn:") {
            println!("{endpoint}: no longer an approver, but its subscription is unconfirmed (it expires by itself)");
            continue;
        }
        if !dry_run {
            sns.unsubscribe()
                .subscription_arn(arn)
                .send()
                .await
                .map_err(sdk("Unsubscribe"))?;
        }
        println!("{endpoint}: no longer an approver: {act} unsubscribe");
    }
    if leaking > 0 {
        return Err(format!(
            "{leaking} subscription(s) of the approvals topic receive approvers' links unfiltered"
        ));
    }
    Ok(())
}
