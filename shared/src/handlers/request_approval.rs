//! The approval request a push makes for a stage a person must approve (deploy-on-push's
//! other half): check that the digest passed the stage it requires, open one request for the
//! application's services, replace the older open one, and send each approver their own link.
//!
//! Every step is keyed on the request's id (derived from the push), so a redelivery finishes
//! what an earlier attempt began: a BLOCKED request stays blocked, links not yet sent go out,
//! links sent are not sent again.

use super::deploy_on_push::DeployOnPush;
use super::{deliver_notice, keep_notice};
use crate::domain::approval::{
    ApprovalId, ApprovalRequest, ApprovalStatus, ApprovalToken, Evidence, ReleaseService, StageCheck, Successor,
    verify_release,
};
use crate::domain::deployment::{DeploymentId, Kind, PushedImage, Status};
use crate::domain::names::{AlarmName, ImageDigest};
use crate::domain::notice::{approval_request_notice, release_blocked_notice, superseded_request_notice};
use crate::domain::pipeline::{Application, Stage};
use crate::lambda::errors::ServiceError;
use crate::ports::{
    AlarmStates, Approvals, ApproverMail, Deployments, Ecs, Notifier, Outbox, Quarantine, ServiceLocks, StoreError,
};
use chrono::Utc;
use serde::Serialize;

/// What deploy-on-push needs besides records and ECS to ask for approvals.
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
    /// Go on; the evidence is for a request not made yet (`None`: it exists).
    Open(Option<Result<Evidence, String>>),
}

/// How many history pages of a service in the required stage are searched for the digest.
const HISTORY_PAGES: usize = 4;
const HISTORY_PAGE_SIZE: i32 = 50;

impl<S, E, C, M, N> DeployOnPush<S, E, C, M, N>
where
    S: ServiceLocks + Deployments + Approvals + Quarantine + Outbox,
    E: Ecs,
    C: AlarmStates,
    M: ApproverMail,
    N: Notifier,
{
    /// Before the services of approval stage `stage`: a request made by an earlier delivery
    /// stands as it is; otherwise the required stage is checked now, and a release that did
    /// not pass it gets a BLOCKED request and a notice, and nothing else.
    pub(crate) async fn gate(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
    ) -> Result<Gate, ServiceError> {
        let id = ApprovalId::for_release(image, &stage.name, &app.name);
        let blocked = match self.records.get_approval(&id).await? {
            Some(existing) if existing.status == ApprovalStatus::Blocked => existing,
            Some(_) => return Ok(Gate::Open(None)),
            None => match self.verify(image, app, stage).await? {
                Ok(evidence) => return Ok(Gate::Open(Some(Ok(evidence)))),
                Err(why) => {
                    let policy = stage.approval.as_ref().expect("only approval stages are gated");
                    let request = ApprovalRequest::new(
                        id.clone(),
                        (&stage.name, &stage.cluster),
                        policy,
                        &app.name,
                        image,
                        Vec::new(),
                        Err(why),
                        Utc::now(),
                    );
                    if self.records.create_approval(&request).await? {
                        tracing::warn!(approval = %id, why = request.blocked.as_deref().unwrap_or(""), "release blocked");
                        request
                    } else {
                        // A concurrent delivery made the request first: stand by what it found.
                        match self.records.get_approval(&id).await? {
                            Some(existing) if existing.status == ApprovalStatus::Blocked => existing,
                            _ => return Ok(Gate::Open(None)),
                        }
                    }
                }
            },
        };
        let required = stage
            .approval
            .as_ref()
            .and_then(|p| p.requires.as_ref())
            .map(|s| s.as_str());
        let notice = release_blocked_notice(&blocked, required);
        let key = keep_notice(&self.records, format!("blocked|{}", blocked.id), &notice).await?;
        deliver_notice(&self.records, &self.approvals.notifier, &key).await?;
        Ok(Gate::Blocked(ApprovalResult {
            stage: stage.name.to_string(),
            approval_id: blocked.id.to_string(),
            status: ApprovalStatus::Blocked,
            links_sent: 0,
            blocked: blocked.blocked.clone(),
        }))
    }

    /// Whether the digest passed the stage the policy requires (no required stage: nothing to pass).
    async fn verify(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
    ) -> Result<Result<Evidence, String>, ServiceError> {
        let required = stage
            .approval
            .as_ref()
            .and_then(|policy| policy.requires.as_ref())
            .and_then(|name| self.pipeline.stages().iter().find(|s| &s.name == name));
        let Some(required) = required else {
            return Ok(Ok(Evidence {
                stage: stage.name.clone(),
                deployments: Vec::new(),
                alarms_checked: Vec::new(),
            }));
        };
        let mut checks = Vec::new();
        for service in &app.services {
            let quarantined = self
                .records
                .quarantined(&required.cluster, &service.name)
                .await?
                .contains(&image.digest);
            checks.push(StageCheck {
                service: service.name.clone(),
                newest_with_digest: self.newest_deploy_of(required, &service.name, &image.digest).await?,
                quarantined,
            });
        }
        let alarms: Vec<AlarmName> = required
            .alarms
            .iter()
            .filter(|guard| guard.application == app.name)
            .map(|guard| guard.alarm.clone())
            .collect();
        let in_alarm = self.approvals.alarms.in_alarm(&alarms).await?;
        Ok(verify_release(
            &required.name,
            &image.digest,
            &checks,
            &alarms,
            &in_alarm,
        ))
    }

    async fn newest_deploy_of(
        &self,
        stage: &Stage,
        service: &crate::domain::names::ServiceName,
        digest: &ImageDigest,
    ) -> Result<Option<(DeploymentId, Status, Option<chrono::DateTime<Utc>>)>, StoreError> {
        let mut after = None;
        for _ in 0..HISTORY_PAGES {
            let page = self
                .records
                .history(&stage.cluster, service, HISTORY_PAGE_SIZE, after.as_deref())
                .await?;
            let found = page
                .deployments
                .iter()
                .find(|d| d.kind == Kind::Deploy && &d.image.digest == digest);
            if let Some(d) = found {
                return Ok(Some((d.id.clone(), d.status, d.completed_at)));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// After the services of `stage`: the request for those awaiting approval (made now if
    /// `verified` says so), the older open request superseded, and the links not sent yet.
    pub(crate) async fn open_request(
        &self,
        image: &PushedImage,
        app: &Application,
        stage: &Stage,
        verified: Option<Result<Evidence, String>>,
    ) -> Result<Option<ApprovalResult>, ServiceError> {
        let id = ApprovalId::for_release(image, &stage.name, &app.name);
        let request = match (self.records.get_approval(&id).await?, verified) {
            (Some(existing), _) => existing,
            (None, verified) => {
                let services = self.awaiting_services(image, app, stage).await?;
                if services.is_empty() {
                    // Every service skipped the push (quarantined, already there, a newer one ahead).
                    return Ok(None);
                }
                let policy = stage.approval.as_ref().expect("only approval stages open requests");
                let verified = match verified {
                    Some(verified) => verified,
                    None => self.verify(image, app, stage).await?,
                };
                let request = ApprovalRequest::new(
                    id.clone(),
                    (&stage.name, &stage.cluster),
                    policy,
                    &app.name,
                    image,
                    services,
                    verified,
                    Utc::now(),
                );
                self.records.create_approval(&request).await?;
                self.records
                    .get_approval(&id)
                    .await?
                    .ok_or_else(|| StoreError::retryable(format!("{id} vanished after it was made")))?
            }
        };
        if request.status == ApprovalStatus::AwaitingApproval {
            self.supersede_older(&request).await?;
        }
        let links_sent = self.send_links(request.clone()).await?;
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

    /// Marks the stage's older open request SUPERSEDED by this one (and says so), then points
    /// the stage at this one. Superseding first: a crash in between leaves nothing open twice.
    async fn supersede_older(&self, request: &ApprovalRequest) -> Result<(), ServiceError> {
        for _ in 0..3 {
            let open = self.records.open_request(&request.stage, &request.application).await?;
            match &open {
                Some(current) if current.id == request.id => return Ok(()),
                Some(current) if current.pushed_at > request.image.pushed_at => {
                    tracing::info!(approval = %request.id, newer = %current.id, "a newer request is open");
                    return Ok(());
                }
                Some(current) => self.supersede_request(&current.id, request).await?,
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
                return Ok(());
            }
        }
        Err(StoreError::retryable(format!("the open request of {} kept changing", request.stage)).into())
    }

    async fn supersede_request(&self, older: &ApprovalId, newer: &ApprovalRequest) -> Result<(), ServiceError> {
        let successor = Successor {
            id: newer.id.clone(),
            tag: newer.image.tag.clone(),
        };
        for _ in 0..3 {
            let Some(old) = self.records.get_approval(older).await? else {
                return Ok(());
            };
            let Some(mut superseded) = old.supersede(successor.clone(), Utc::now()) else {
                return Ok(());
            };
            superseded.version += 1;
            if self.records.save_approval(&superseded).await? {
                tracing::info!(superseded = %older, by = %newer.id, "older approval request superseded");
                let notice = superseded_request_notice(&superseded, newer);
                let key = keep_notice(&self.records, format!("superseded|{older}"), &notice).await?;
                deliver_notice(&self.records, &self.approvals.notifier, &key).await?;
                return Ok(());
            }
        }
        Err(StoreError::retryable(format!("{older} kept changing while it was superseded")).into())
    }

    /// Sends a link to every approver who has none yet: new tokens are saved (as hashes)
    /// before any goes out, and each ballot is marked sent after its message is. A message
    /// whose answer was lost goes out again with a new link on the retry; both links open the
    /// same single ballot.
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
        let mut sent = 0;
        let mut failed = None;
        for (approver, token) in &links {
            let link = format!("{base}/a/{}/{}", request.id, token.as_str());
            match self
                .approvals
                .mail
                .send_to(approver, &approval_request_notice(&request, approver, &link))
                .await
            {
                Ok(()) => {
                    tracing::info!(approval = %request.id, %approver, token = token.hash().prefix(), "approval link sent");
                    request.mark_sent(approver, Utc::now());
                    sent += 1;
                }
                Err(err) => {
                    tracing::error!(approval = %request.id, %approver, error = %err, "approval link not sent");
                    failed = Some(err);
                    break;
                }
            }
        }
        if sent > 0 {
            request.version += 1;
            if !self.records.save_approval(&request).await? {
                tracing::warn!(approval = %request.id, "request changed before its links were marked sent");
            }
        }
        match failed {
            Some(err) => Err(err.into()),
            None => Ok(sent),
        }
    }
}

fn new_token() -> Result<ApprovalToken, getrandom::Error> {
    let mut bytes = [0u8; ApprovalToken::BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(ApprovalToken::from_random(bytes))
}
