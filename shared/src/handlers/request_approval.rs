//! The approval request a push makes for a stage a person must approve (deploy-on-push's
//! other half): check that the digest passed the stage it requires and record the verdict in
//! the request before any service is touched; after the services, list them in it, replace
//! the older open request, and send each approver their own link.
//!
//! Every step is keyed on the request's id (derived from the push), so a redelivery finishes
//! what an earlier attempt began: a verdict stands, links not yet sent go out, links sent are
//! not sent again.

use super::deploy_on_push::DeployOnPush;
use super::staging::stage_checks;
use super::{deliver_notice, keep_notice};
use crate::domain::approval::{
    ApprovalId, ApprovalRequest, ApprovalStatus, ApprovalToken, Evidence, ReleaseService, Successor, verify_release,
};
use crate::domain::deployment::{DeploymentId, PushedImage, Status};
use crate::domain::names::{AlarmName, Approver};
use crate::domain::notice::{approval_request_notice, release_blocked_notice, superseded_request_notice};
use crate::domain::pipeline::ApprovalPolicy;
use crate::domain::pipeline::{Application, Stage};
use crate::lambda::errors::ServiceError;
use crate::ports::{
    AlarmStates, Approvals, ApproverMail, Change, Deployments, Ecs, Notifier, Outbox, Quarantine, ServiceLocks,
    StoreError, update_approval,
};
use chrono::Utc;
use serde::Serialize;

/// How many times the same rollback (services, targets, reason) may be asked for.
const MAX_ROLLBACK_ATTEMPTS: u32 = 50;

/// What deploy-on-push needs besides records and ECS to ask for approvals.
#[derive(Clone)]
pub struct ApprovalDesk<C, M, N> {
    pub alarms: C,
    /// The approvals topic: one message per approver, filtered to their subscription.
    pub mail: M,
    /// The team's topic, for what people should know (a blocked release, a superseded request).
    pub notifier: N,
    /// The approval page's base URL (the approval function's URL); links are `<url>/a/<id>/<token>`.
    pub page_url: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ApprovalResult {
    pub stage: String,
    pub approval_id: String,
    pub status: ApprovalStatus,
    /// Links sent by this invocation.
    pub links_sent: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// What the request of a stage says before its services are touched.
pub(crate) enum Gate {
    /// The release did not pass the required stage (now or on an earlier delivery).
    Blocked(ApprovalResult),
    /// Go on: the request is made, awaiting approval.
    Open,
}

impl<S, E, C, M, N> DeployOnPush<S, E, C, M, N>
where
    S: ServiceLocks + Deployments + Approvals + Quarantine + Outbox,
    E: Ecs,
    C: AlarmStates,
    M: ApproverMail,
    N: Notifier,
{
    /// Before the services of approval stage `stage`: the request an earlier delivery made
    /// stands as it is; otherwise the required stage is checked now and the verdict recorded
    /// in a new request (no services, no links yet). A BLOCKED release gets a notice and
    /// nothing else.
    pub(crate) async fn gate(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
        policy: &ApprovalPolicy,
    ) -> Result<Gate, ServiceError> {
        let id = ApprovalId::for_release(image, &stage.name, &app.name);
        let request = match self.records.get_approval(&id).await? {
            Some(existing) => existing,
            None => {
                let verified = self.verify(image, app, policy).await?;
                let request = ApprovalRequest::new(
                    id.clone(),
                    (&stage.name, &stage.cluster),
                    policy,
                    &app.name,
                    image,
                    Vec::new(),
                    verified,
                    Utc::now(),
                );
                if self.records.create_approval(&request).await? {
                    if let Some(why) = &request.blocked {
                        tracing::warn!(approval = %id, %why, "release blocked");
                    }
                    request
                } else {
                    // A concurrent delivery made it first: stand by what it found.
                    self.records
                        .get_approval(&id)
                        .await?
                        .ok_or_else(|| StoreError::retryable(format!("{id} vanished after it was made")))?
                }
            }
        };
        if request.status != ApprovalStatus::Blocked {
            return Ok(Gate::Open);
        }
        let required = policy.requires.as_ref().map(|s| s.as_str());
        let notice = release_blocked_notice(&request, required);
        let key = keep_notice(&self.records, format!("blocked|{}", request.id), &notice).await?;
        deliver_notice(&self.records, &self.approvals.notifier, &key).await?;
        Ok(Gate::Blocked(ApprovalResult {
            stage: stage.name.to_string(),
            approval_id: request.id.to_string(),
            status: ApprovalStatus::Blocked,
            links_sent: 0,
            blocked: request.blocked.clone(),
        }))
    }

    /// Whether the digest passed the stage the policy requires: the evidence, none when no
    /// stage is required, or why not.
    async fn verify(
        &self,
        image: &PushedImage,
        app: &Application,
        policy: &ApprovalPolicy,
    ) -> Result<Result<Option<Evidence>, String>, ServiceError> {
        let required = policy
            .requires
            .as_ref()
            .and_then(|name| self.pipeline.stages().iter().find(|s| &s.name == name));
        let Some(required) = required else {
            return Ok(Ok(None));
        };
        let checks = stage_checks(&self.records, required, app, &image.digest).await?;
        let alarms: Vec<AlarmName> = required
            .alarms
            .iter()
            .filter(|guard| guard.application == app.name)
            .map(|guard| guard.alarm.clone())
            .collect();
        let in_alarm = self.approvals.alarms.in_alarm(&alarms).await?;
        Ok(verify_release(&required.name, &image.digest, &checks, &alarms, &in_alarm).map(Some))
    }

    /// After every service of `stage` was handled: the request lists those awaiting approval
    /// (a release that changed no service leaves no request), replaces the stage's older open
    /// request (or is replaced, if a newer one is open), and its links not sent yet go out.
    pub(crate) async fn open_request(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
    ) -> Result<Option<ApprovalResult>, ServiceError> {
        let id = ApprovalId::for_release(image, &stage.name, &app.name);
        let mut request = self
            .records
            .get_approval(&id)
            .await?
            .ok_or_else(|| StoreError::retryable(format!("{id} vanished after it was made")))?;
        if request.status == ApprovalStatus::AwaitingApproval && request.services.is_empty() {
            let services = self.awaiting_services(image, app, stage).await?;
            if services.is_empty() {
                // Every service skipped the push (quarantined, already there, a newer one ahead).
                self.records.discard_approval(&request).await?;
                return Ok(None);
            }
            request.services = services;
            request.version += 1;
            if !self.records.save_approval(&request).await? {
                return Err(StoreError::retryable(format!("{id} changed while its services were listed")).into());
            }
        }
        let mut links_sent = 0;
        match (&request.status, &request.superseded_by) {
            (ApprovalStatus::AwaitingApproval, _) => match self.newer_request_open(&request).await? {
                Some(newer) => request = self.supersede_request(&request.id, &newer).await?.unwrap_or(request),
                None => links_sent = self.send_links(request.clone()).await?,
            },
            // Superseded by an earlier delivery, which may have died before telling the team.
            (ApprovalStatus::Superseded, Some(newer)) => {
                let newer = newer.clone();
                self.supersede_request(&request.id, &newer).await?;
            }
            _ => {}
        }
        Ok(Some(ApprovalResult {
            stage: stage.name.to_string(),
            approval_id: request.id.to_string(),
            status: request.status,
            links_sent,
            blocked: request.blocked.clone(),
        }))
    }

    /// The stage's services whose record of this push awaits approval, with what they run now.
    async fn awaiting_services(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
    ) -> Result<Vec<ReleaseService>, StoreError> {
        let mut services = Vec::new();
        for service in &app.services {
            let id = DeploymentId::for_push(image, &stage.name, &stage.cluster, &service.name);
            if let Some(record) = self.records.get_deployment(&id).await?
                && record.status == Status::AwaitingApproval
            {
                services.push(ReleaseService {
                    service: service.name.clone(),
                    deployment: id,
                    running_now: record.previous_task_definition,
                });
            }
        }
        Ok(services)
    }

    /// Points the stage at `request`, superseding the older open request first (a crash in
    /// between leaves nothing open twice; the retry moves the pointer). Returns the newer
    /// request when one is already open: then `request` is the one replaced.
    async fn newer_request_open(&self, request: &ApprovalRequest) -> Result<Option<Successor>, ServiceError> {
        let this = Successor {
            id: request.id.clone(),
            tag: request.image.tag.clone(),
        };
        for _ in 0..3 {
            let open = self.records.open_request(&request.stage, &request.application).await?;
            match &open {
                Some(current) if current.id == request.id => return Ok(None),
                // At a tie (pushes carry whole seconds) the one already open stays, as in decide().
                Some(current) if current.pushed_at >= request.image.pushed_at => {
                    // A pointer to a request since removed (it listed no service) names nothing.
                    if let Some(newer) = self.records.get_approval(&current.id).await? {
                        tracing::info!(approval = %request.id, newer = %current.id, "a newer request is open");
                        return Ok(Some(Successor {
                            id: newer.id,
                            tag: newer.image.tag,
                        }));
                    }
                }
                Some(current) => {
                    self.supersede_request(&current.id, &this).await?;
                }
                None => {}
            }
            let expected = open.as_ref().map(|o| &o.id);
            if self
                .records
                .point_open_request(
                    &request.stage,
                    &request.application,
                    &request.id,
                    request.image.pushed_at,
                    expected,
                )
                .await?
            {
                return Ok(None);
            }
        }
        Err(StoreError::retryable(format!("the open request of {} kept changing", request.stage)).into())
    }

    /// Marks the request `older` SUPERSEDED by `newer` and tells the team (also when an
    /// earlier attempt superseded it but died before the notice). Returns it as written.
    async fn supersede_request(
        &self,
        older: &ApprovalId,
        newer: &Successor,
    ) -> Result<Option<ApprovalRequest>, ServiceError> {
        let superseded = update_approval(&self.records, older, "it was superseded", |old| {
            match old.supersede(newer.clone(), Utc::now()) {
                Some(superseded) => {
                    *old = superseded;
                    Change::Write(true)
                }
                None => Change::Leave(old.superseded_by.as_ref().is_some_and(|by| by.id == newer.id)),
            }
        })
        .await?;
        // Not there, or decided, expired or replaced by another: it keeps its outcome.
        let Some((superseded, true)) = superseded else {
            return Ok(None);
        };
        tracing::info!(superseded = %older, by = %newer.id, "approval request superseded");
        let notice = superseded_request_notice(&superseded, newer);
        let key = keep_notice(&self.records, format!("superseded|{older}"), &notice).await?;
        deliver_notice(&self.records, &self.approvals.notifier, &key).await?;
        Ok(Some(superseded))
    }

    /// New links for every approver of request `id`, awaiting a vote, who has not voted; their
    /// old links stop counting (`pipectl approvals resend`). The revocation and the new tokens
    /// are one conditional write. Returns who got a new link (none: the request does not
    /// await a vote, or changed meanwhile).
    pub async fn resend_links(&self, id: &ApprovalId) -> Result<Vec<Approver>, ServiceError> {
        let Some(mut request) = self.records.get_approval(id).await? else {
            return Ok(Vec::new());
        };
        if request.status_at(Utc::now()) != ApprovalStatus::AwaitingApproval || request.services.is_empty() {
            return Ok(Vec::new());
        }
        let revoked = request.revoke_unvoted_links();
        self.send_links(request).await?;
        Ok(revoked)
    }

    /// Asks the stage's approvers to approve an operator's rollback (`pipectl rollback` where
    /// `rollback_approval = true`). `attempt(n)` is the request for the order's `n`th attempt:
    /// the first one still open is kept (the same command again finds it), one decided without
    /// a rollback (rejected, cancelled, expired, failed) makes way for the next. Links not sent
    /// yet go out while it awaits a vote. Returns the request as kept and the links sent now.
    pub async fn request_rollback(
        &self,
        attempt: impl Fn(u32) -> ApprovalRequest,
    ) -> Result<(ApprovalRequest, usize), ServiceError> {
        let now = Utc::now();
        for n in 0..MAX_ROLLBACK_ATTEMPTS {
            let request = attempt(n);
            let kept = match self.records.get_approval(&request.id).await? {
                Some(earlier) => earlier,
                None if self.records.create_approval(&request).await? => request,
                None => self
                    .records
                    .get_approval(&request.id)
                    .await?
                    .ok_or_else(|| StoreError::retryable(format!("{} vanished after it was made", request.id)))?,
            };
            if kept.rollback.is_none() {
                return Err(
                    StoreError::permanent(format!("{} is a release's request, not a rollback's", kept.id)).into(),
                );
            }
            // As promote reads it, trusting no status the page wrote.
            let governed = kept.governed_in(&self.pipeline);
            if !governed.still_open_at(now) {
                continue;
            }
            if governed.status_at(now) != ApprovalStatus::AwaitingApproval {
                return Ok((governed, 0));
            }
            let sent = self.send_links(kept.clone()).await?;
            let kept = self.records.get_approval(&kept.id).await?.unwrap_or(kept);
            return Ok((kept.governed_in(&self.pipeline), sent));
        }
        Err(StoreError::permanent(format!(
            "{MAX_ROLLBACK_ATTEMPTS} requests for this rollback were decided already: give another reason"
        ))
        .into())
    }

    /// Sends a link to every approver who has none yet and has not voted: new tokens are saved
    /// (as hashes) before any goes out, and each ballot is marked sent after its message is. A
    /// message whose answer was lost goes out again with a new link on the retry; both links
    /// open the same single ballot.
    async fn send_links(&self, mut request: ApprovalRequest) -> Result<usize, ServiceError> {
        let unsent = request.unsent();
        if unsent.is_empty() {
            return Ok(0);
        }
        let mut links = Vec::new();
        for approver in unsent {
            let token =
                new_token().map_err(|err| StoreError::retryable(format!("no randomness for a token: {err}")))?;
            request.issue_link(&approver, &token);
            links.push((approver, token));
        }
        request.version += 1;
        if !self.records.save_approval(&request).await? {
            return Err(StoreError::retryable(format!("{} changed while its links were made", request.id)).into());
        }
        let base = self.approvals.page_url.trim_end_matches('/');
        let mut sent = Vec::new();
        let mut failed = None;
        for (approver, token) in &links {
            let link = format!("{base}/a/{}/{}", request.id, token.as_str());
            let notice = approval_request_notice(&request, approver, &link);
            match self.approvals.mail.send_to(approver, &notice).await {
                Ok(()) => {
                    tracing::info!(approval = %request.id, %approver, token = token.hash().prefix(), "approval link sent");
                    sent.push((approver.clone(), Utc::now()));
                }
                Err(err) => {
                    tracing::error!(approval = %request.id, %approver, error = %err, "approval link not sent");
                    failed = Some(err);
                    break;
                }
            }
        }
        self.mark_sent(&request.id, &sent).await?;
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(sent.len()),
        }
    }

    /// Records which links went out, on the request as it is now (an approver may have voted
    /// meanwhile): unmarked, they would go out again on a retry.
    async fn mark_sent(
        &self,
        id: &ApprovalId,
        sent: &[(crate::domain::names::Approver, chrono::DateTime<Utc>)],
    ) -> Result<(), ServiceError> {
        if sent.is_empty() {
            return Ok(());
        }
        update_approval(&self.records, id, "its links were marked sent", |request| {
            for (approver, at) in sent {
                request.mark_sent(approver, *at);
            }
            Change::Write(())
        })
        .await?;
        Ok(())
    }
}

fn new_token() -> Result<ApprovalToken, getrandom::Error> {
    let mut bytes = [0u8; ApprovalToken::BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(ApprovalToken::from_random(bytes))
}
