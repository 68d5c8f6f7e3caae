//! Approval requests: one per release of an application to a stage a person must approve.
//!
//! Each named approver holds a ballot reached by their own link. The link carries a bearer
//! token (32 random bytes); only its SHA-256 is kept, so the table cannot hand out votes. A
//! ballot votes once. The request is decided when enough approvers approve (N of M, each a
//! different person by construction), or as soon as one rejects.

use super::deployment::{Deployment, DeploymentId, PushedImage, Status};
use super::names::{AlarmName, AppName, Approver, ClusterName, ImageDigest, ImageTag, ServiceName, StageName};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Who approves a stage's releases, how many of them must, and for how long they may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Each gets their own link (their SNS subscription filters on their address).
    pub approvers: Vec<Approver>,
    /// Approvals needed, from different approvers (2 = the two-person rule); one reject rejects.
    pub required: usize,
    /// How long a request stays open.
    pub expires_after: chrono::TimeDelta,
    /// The least time between the last needed approval and the deploy.
    pub wait: chrono::TimeDelta,
    /// The stage the same digest must have SUCCEEDED in first: the stage before, unless the
    /// file names another; none for a first stage.
    pub requires: Option<StageName>,
}

/// How the table keys a request: `APR#<id>` (the stream and the page's role match on it).
pub const APPROVAL_KEY_PREFIX: &str = "APR#";

/// Derived from the release (image push, stage, application), so a redelivered push finds the
/// request it already made.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApprovalId(String);

impl ApprovalId {
    pub fn for_release(image: &PushedImage, stage: &StageName, application: &AppName) -> Self {
        let key = format!(
            "approval|{}@{}|{}|{stage}|{application}",
            image.repository,
            image.digest,
            image.pushed_at.to_rfc3339()
        );
        Self::hashed(&key)
    }

    /// Derived from what the rollback asks (each service from what to which deployment, and
    /// why) and the `attempt` (0 first; the next once the one before was decided without a
    /// rollback), so the same command again finds the request still open.
    pub fn for_rollback(stage: &StageName, application: &AppName, order: &RollbackOrder, attempt: u32) -> Self {
        let targets: Vec<String> = order
            .targets
            .iter()
            .map(|t| format!("{}:{}>{}", t.service, t.from, t.target))
            .collect();
        let key = format!(
            "rollback|{stage}|{application}|{}|{}|{attempt}",
            targets.join(","),
            order.reason
        );
        Self::hashed(&key)
    }

    fn hashed(key: &str) -> Self {
        let hex: String = Sha256::digest(key.as_bytes())
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        Self(format!("apr-{hex}"))
    }

    /// An id as links and operators spell it: `apr-` and 24 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("apr-")?;
        (hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The secret in an approver's link: whoever holds it votes as that approver. Never stored,
/// never logged (its `Debug` hides it; log `hash().prefix()`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApprovalToken(String);

impl ApprovalToken {
    pub const BYTES: usize = 32;

    pub fn from_random(bytes: [u8; Self::BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token as a link carries it: 43 URL-safe base64 characters for 32 bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        (bytes.len() == Self::BYTES).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex(&Sha256::digest(self.0.as_bytes())))
    }

    /// What a vote of `verdict` cast with this link carries: only the link's holder can make
    /// it, and neither the link nor the other verdict's proof can be had from it.
    pub fn proof(&self, verdict: Verdict) -> VoteProof {
        let verdict = match verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        };
        VoteProof(hex(&Sha256::digest(format!("vote|{verdict}|{}", self.0).as_bytes())))
    }
}

/// A vote's proof that the link's holder cast it (`ApprovalToken::proof`); its SHA-256 is the
/// commitment kept with the link when it was issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VoteProof(String);

impl VoteProof {
    pub fn commitment(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

/// A link as deploy-on-push issued it, kept where the approval page cannot write: whose it is,
/// and the commitments a vote cast with it opens, one per verdict. A vote counts for promote
/// only if its proof opens its approver's commitment for its verdict, so the page's role,
/// which can write ballots but holds no token, cannot make one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub approver: Approver,
    pub approve: String,
    pub reject: String,
}

/// A vote an operator cast with AWS credentials for a named approver (`pipectl approve --as`),
/// kept where the approval page cannot write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorVote {
    pub approver: Approver,
    pub verdict: Verdict,
    pub operator: String,
    pub at: DateTime<Utc>,
}

impl fmt::Debug for ApprovalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApprovalToken({}…)", self.hash().prefix())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the table keeps of a token: its SHA-256, hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// Enough to tell tokens apart in logs, too little to matter.
    pub fn prefix(&self) -> &str {
        &self.0[..self.0.len().min(8)]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalStatus {
    /// The release did not pass the stage it requires: no links went out.
    Blocked,
    AwaitingApproval,
    Approved,
    Rejected,
    Expired,
    Superseded,
    Cancelled,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 7] = [
        ApprovalStatus::Blocked,
        ApprovalStatus::AwaitingApproval,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Superseded,
        ApprovalStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Blocked => "BLOCKED",
            ApprovalStatus::AwaitingApproval => "AWAITING_APPROVAL",
            ApprovalStatus::Approved => "APPROVED",
            ApprovalStatus::Rejected => "REJECTED",
            ApprovalStatus::Expired => "EXPIRED",
            ApprovalStatus::Superseded => "SUPERSEDED",
            ApprovalStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "approve" => Some(Verdict::Approve),
            "reject" => Some(Verdict::Reject),
            _ => None,
        }
    }

    pub fn past_tense(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }
}

/// Who cast a vote, as far as the request showed: kept with the vote for the audit trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    pub source_ip: String,
    pub user_agent: String,
    pub comment: String,
    /// Cast with `pipectl approve|reject --as <approver>` by someone with AWS credentials:
    /// their caller ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
}

/// The longest comment kept with a vote.
pub const MAX_COMMENT_CHARS: usize = 1000;
const MAX_USER_AGENT_CHARS: usize = 300;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub verdict: Verdict,
    pub at: DateTime<Utc>,
    /// Cast with a link: the proof of it. An operator's vote has none (`operator_votes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<VoteProof>,
    #[serde(flatten)]
    pub voter: Voter,
}

impl Voter {
    /// The voter as kept (with a vote or a cancellation): the comment and user agent, which
    /// the caller chose, cut to their limits.
    fn kept(self) -> Self {
        Voter {
            comment: self.comment.chars().take(MAX_COMMENT_CHARS).collect(),
            user_agent: self.user_agent.chars().take(MAX_USER_AGENT_CHARS).collect(),
            ..self
        }
    }
}

impl Vote {
    fn new(verdict: Verdict, voter: Voter, at: DateTime<Utc>, proof: Option<VoteProof>) -> Self {
        Vote {
            verdict,
            at,
            proof,
            voter: voter.kept(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub approver: Approver,
    /// Every link issued to this approver (a resend after a failed publish issues another);
    /// any of them casts this one ballot.
    pub token_hashes: Vec<TokenHash>,
    /// When the link went out; `None` until it did.
    pub sent_at: Option<DateTime<Utc>>,
    pub vote: Option<Vote>,
}

/// A service the release puts the image on, with its deployment record and what it runs now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseService {
    pub service: ServiceName,
    pub deployment: DeploymentId,
    /// The task definition the stage runs now.
    pub running_now: Option<String>,
}

/// Why the release may ask for approval: the same digest SUCCEEDED in the required stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub stage: StageName,
    pub deployments: Vec<VerifiedDeploy>,
    /// The required stage's alarms for the application, none in ALARM when the request was made.
    pub alarms_checked: Vec<AlarmName>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedDeploy {
    pub service: ServiceName,
    pub deployment: DeploymentId,
    pub completed_at: Option<DateTime<Utc>>,
}

/// An approved release called off before its deploy started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub by: Approver,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub voter: Voter,
}

/// A request an operator called off from pipectl: kept where the page's role cannot write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCancel {
    /// The operator's IAM identity (STS's caller ARN).
    pub by: String,
    /// AWS's time when they did.
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// An operator's rollback a stage wants approved (`rollback_approval = true`): what `pipectl
/// rollback` asked, kept where the page's role cannot write. Approved, promote rolls each
/// service back to its target, as `pipectl rollback` does on a stage without it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackOrder {
    /// The version as the operator named it: a tag, a digest or a deployment id.
    pub to: String,
    pub reason: String,
    /// The operator's IAM identity (STS's caller ARN).
    pub by: String,
    /// AWS's time when they asked.
    pub at: DateTime<Utc>,
    pub targets: Vec<RollbackService>,
}

/// One service of a rollback request: what it ran when the operator asked (the rollback
/// applies only while it still does), and the deployment whose revision it goes back to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackService {
    pub service: ServiceName,
    pub from: DeploymentId,
    pub target: DeploymentId,
    pub task_definition: String,
    /// The image that ran under the target (`repository@digest`).
    pub image: String,
}

/// Where a service whose current deployment is `current` stands for a rollback to `image`,
/// asked (when approvers must approve it) from deployment `from` by request `request`.
#[derive(Debug, PartialEq, Eq)]
pub enum RollbackStanding {
    /// It still runs what the rollback was asked from (or nothing was asked): roll it back.
    Applies,
    /// Back on the version already, by this rollback done before or otherwise: why.
    Done(String),
    /// It moved on since the rollback was asked: where to.
    MovedOn(String),
}

pub fn rollback_standing(
    current: &Deployment,
    image: &str,
    asked: Option<(&DeploymentId, &ApprovalId)>,
) -> RollbackStanding {
    if current.image_running().as_deref() == Some(image) {
        return RollbackStanding::Done(format!(
            "{} runs that version already ({})",
            current.service, current.id
        ));
    }
    match asked {
        Some((from, request)) if is_rollback_by(current, from, request) => RollbackStanding::Done(format!(
            "{} was rolled back from {from} already ({})",
            current.service, current.id
        )),
        Some((from, _)) if current.id != *from => RollbackStanding::MovedOn(format!(
            "{} moved on to {} since the rollback was asked from {from}",
            current.service, current.id
        )),
        _ => RollbackStanding::Applies,
    }
}

/// Whether an approved rollback (of request `request`) still applies to `target`'s service,
/// whose current deployment is `current`: it runs the deployment it ran when the rollback was
/// asked, or is back on the version already (by this request's rollback, done before, or by
/// another). `Err` says where it moved on.
pub fn rollback_applies(
    target: &RollbackService,
    request: &ApprovalId,
    current: Option<&Deployment>,
) -> Result<(), String> {
    let Some(current) = current else {
        return Err(format!("{} has no deployment recorded", target.service));
    };
    match rollback_standing(current, &target.image, Some((&target.from, request))) {
        RollbackStanding::MovedOn(why) => Err(why),
        RollbackStanding::Applies | RollbackStanding::Done(_) => Ok(()),
    }
}

/// Whether `deployment` is the rollback of `from` that request `request` approved (its cause
/// names the request): another trigger's rollback of `from` (an alarm's) shares its id.
pub fn is_rollback_by(deployment: &Deployment, from: &DeploymentId, request: &ApprovalId) -> bool {
    deployment.id == DeploymentId::for_rollback(from)
        && matches!(&deployment.kind, super::deployment::Kind::Rollback { cause, .. } if cause.contains(request.as_str()))
}

/// The newer release that replaced a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Successor {
    pub id: ApprovalId,
    pub tag: ImageTag,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: ApprovalId,
    pub stage: StageName,
    pub cluster: ClusterName,
    pub application: AppName,
    pub image: PushedImage,
    pub services: Vec<ReleaseService>,
    pub status: ApprovalStatus,
    /// Why the release was BLOCKED.
    pub blocked: Option<String>,
    pub evidence: Option<Evidence>,
    pub ballots: Vec<Ballot>,
    /// Every link issued, with its vote commitments: written by deploy-on-push only.
    pub links: Vec<Link>,
    /// Votes operators cast (pipectl): written with AWS credentials, never by the page.
    pub operator_votes: Vec<OperatorVote>,
    pub approvals_required: usize,
    /// The least time between the deciding approval and the deploy.
    pub wait: TimeDelta,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When it was approved, rejected, expired, superseded or cancelled.
    pub decided_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<Successor>,
    /// Who cancelled the approved release during the wait, and when (by a link).
    pub cancelled: Option<Cancellation>,
    /// An operator who called the request off (`pipectl approvals cancel`).
    pub operator_cancel: Option<OperatorCancel>,
    /// When promote last found the approved release held by its stage's deploy window or a
    /// freeze (refreshed every few minutes while it is; written by promote only): the hold's
    /// end, as far as the snapshot timeout and the stuck alarm are concerned.
    pub held_seen_at: Option<DateTime<Utc>>,
    /// A later deadline an operator gave it (`pipectl approvals extend`): written with AWS
    /// credentials, never by the page; at most `MAX_APPROVAL_EXPIRES_HOURS` after the request.
    pub extended_until: Option<DateTime<Utc>>,
    /// An operator's rollback, not a release: approved, it rolls the services back to
    /// `image`'s version; no staging evidence, wait, deploy window or snapshot applies.
    pub rollback: Option<RollbackOrder>,
    /// What happened after the approval: snapshots, the deploy (see `promotion`).
    pub promotion: Option<super::promotion::Promotion>,
    /// When a request that will not deploy (rejected, cancelled, expired, or its promotion
    /// failed) had its services' records closed and the team told: until then it is in flight.
    pub closed_at: Option<DateTime<Utc>>,
    /// Bumped by every write: each write is conditional on the version it read.
    pub version: u64,
}

/// Why a vote was not counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no ballot holds this link")]
    UnknownLink,
    #[error("not an approver of this request")]
    NotAnApprover,
    #[error("{0} already cast a vote on this request")]
    OperatorVoted(String),
    #[error(
        "{0} names no IAM user or role behind it (a federated user's name is its own choice): vote as the IAM user or role itself"
    )]
    NoIamIdentity(String),
    #[error("the request lists no service yet")]
    NoServices,
    #[error("the deploy has started (or the wait is over): too late to cancel")]
    TooLateToCancel,
    #[error("this link already {} at {}", .0.verdict.past_tense(), .0.at.to_rfc3339())]
    AlreadyVoted(Box<Vote>),
    #[error("the request is {0}")]
    Closed(ApprovalStatus),
    #[error("the request expired")]
    Expired,
}

impl ApprovalRequest {
    /// A new request for `services`, AWAITING_APPROVAL (with the evidence from the stage the
    /// policy requires, if it requires one), or BLOCKED with why when the release did not pass
    /// that stage. Ballots hold no link yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ApprovalId,
        stage: (&StageName, &ClusterName),
        policy: &ApprovalPolicy,
        application: &AppName,
        image: &PushedImage,
        services: Vec<ReleaseService>,
        verified: Result<Option<Evidence>, String>,
        now: DateTime<Utc>,
    ) -> Self {
        let (status, evidence, blocked) = match verified {
            Ok(evidence) => (ApprovalStatus::AwaitingApproval, evidence, None),
            Err(why) => (ApprovalStatus::Blocked, None, Some(why)),
        };
        ApprovalRequest {
            id,
            stage: stage.0.clone(),
            cluster: stage.1.clone(),
            application: application.clone(),
            image: image.clone(),
            services,
            status,
            blocked,
            evidence,
            ballots: policy
                .approvers
                .iter()
                .map(|approver| Ballot {
                    approver: approver.clone(),
                    token_hashes: Vec::new(),
                    sent_at: None,
                    vote: None,
                })
                .collect(),
            links: Vec::new(),
            operator_votes: Vec::new(),
            approvals_required: policy.required,
            wait: policy.wait,
            requested_at: now,
            expires_at: now + policy.expires_after,
            extended_until: None,
            operator_cancel: None,
            held_seen_at: None,
            decided_at: if status == ApprovalStatus::Blocked {
                Some(now)
            } else {
                None
            },
            superseded_by: None,
            cancelled: None,
            rollback: None,
            promotion: None,
            closed_at: None,
            version: 0,
        }
    }

    /// A request to approve `order`, an operator's rollback of `application` in `stage` to
    /// `version` (the image that ran under the targets), awaiting approval: its services are
    /// the order's, with what they run now. `attempt` counts the requests for the same order
    /// decided before without a rollback.
    pub fn for_rollback(
        stage: (&StageName, &ClusterName),
        policy: &ApprovalPolicy,
        application: &AppName,
        version: &PushedImage,
        (order, attempt): (RollbackOrder, u32),
        running_now: &[Option<String>],
    ) -> Self {
        let id = ApprovalId::for_rollback(stage.0, application, &order, attempt);
        let services = order
            .targets
            .iter()
            .zip(running_now)
            .map(|(target, running)| ReleaseService {
                service: target.service.clone(),
                deployment: target.from.clone(),
                running_now: running.clone(),
            })
            .collect();
        let at = order.at;
        ApprovalRequest {
            rollback: Some(order),
            wait: TimeDelta::zero(),
            ..Self::new(id, stage, policy, application, version, services, Ok(None), at)
        }
    }

    /// Whether the request may still lead to its deploy (or rollback) at `now`: awaiting a
    /// vote, or approved with its promotion neither failed nor done.
    pub fn still_open_at(&self, now: DateTime<Utc>) -> bool {
        match self.status_at(now) {
            ApprovalStatus::AwaitingApproval => true,
            ApprovalStatus::Approved => self
                .promotion
                .as_ref()
                .is_none_or(|p| p.failed.is_none() && p.deployed_at.is_none()),
            _ => false,
        }
    }

    /// The votes of `verdict` that count: from approvers `listed` (the file in force), each
    /// proven by its link or kept as an operator's; what the page's role wrote alone is not
    /// among them.
    pub fn proven_votes<'a>(
        &'a self,
        verdict: Verdict,
        listed: &'a [Approver],
    ) -> impl Iterator<Item = (&'a Approver, &'a Vote)> {
        self.votes().filter(move |(approver, vote)| {
            vote.verdict == verdict
                && listed
                    .iter()
                    .any(|l| l.as_str().eq_ignore_ascii_case(approver.as_str()))
                && self.vote_is_proven(approver, vote)
        })
    }

    /// What the request asks, as subjects and pages name it: "v1.2.0 of backend to prod", or
    /// "rollback of backend in prod to v1.1.0".
    pub fn title(&self) -> String {
        match &self.rollback {
            Some(_) => format!(
                "rollback of {} in {} to {}",
                self.application, self.stage, self.image.tag
            ),
            None => format!("{} of {} to {}", self.image.tag, self.application, self.stage),
        }
    }

    pub fn ballot(&self, hash: &TokenHash) -> Option<&Ballot> {
        self.ballots.iter().find(|ballot| ballot.token_hashes.contains(hash))
    }

    /// Every vote cast so far, by approver.
    pub fn votes(&self) -> impl Iterator<Item = (&Approver, &Vote)> {
        self.ballots
            .iter()
            .filter_map(|ballot| Some((&ballot.approver, ballot.vote.as_ref()?)))
    }

    pub fn approvals(&self) -> usize {
        self.votes()
            .filter(|(_, vote)| vote.verdict == Verdict::Approve)
            .count()
    }

    /// The status as of `now`: a request still open past its expiry is EXPIRED, whether or
    /// not the sweeper has written that yet.
    pub fn status_at(&self, now: DateTime<Utc>) -> ApprovalStatus {
        if self.status == ApprovalStatus::AwaitingApproval && now >= self.expires_at {
            ApprovalStatus::Expired
        } else {
            self.status
        }
    }

    /// Whether the holder of a link may still call the approved release off: during the wait,
    /// before the deploy starts.
    pub fn cancellable_at(&self, now: DateTime<Utc>) -> bool {
        self.deploy_not_before().is_some_and(|at| now < at)
            && self
                .promotion
                .as_ref()
                .is_none_or(|p| p.deploy_started_at.is_none() && p.failed.is_none())
    }

    /// Calls the approved release off, by the holder of ballot `hash`, during the wait.
    pub fn cancel(&self, hash: &TokenHash, voter: Voter, now: DateTime<Utc>) -> Result<ApprovalRequest, Refusal> {
        let ballot = self.ballot(hash).ok_or(Refusal::UnknownLink)?;
        if self.status != ApprovalStatus::Approved {
            return Err(Refusal::Closed(self.status));
        }
        if !self.cancellable_at(now) {
            return Err(Refusal::TooLateToCancel);
        }
        Ok(ApprovalRequest {
            status: ApprovalStatus::Cancelled,
            cancelled: Some(Cancellation {
                by: ballot.approver.clone(),
                at: now,
                voter: voter.kept(),
            }),
            ..self.clone()
        })
    }

    /// Who called the request off, and when: an operator (kept where the page cannot write),
    /// else the approver whose link did.
    pub fn cancelled_by(&self) -> Option<(String, DateTime<Utc>)> {
        match (&self.operator_cancel, &self.cancelled) {
            (Some(operator), _) => Some((format!("{} (\"{}\")", operator.by, operator.reason), operator.at)),
            (None, Some(link)) => Some((link.by.to_string(), link.at)),
            (None, None) => None,
        }
    }

    /// Calls the request off from pipectl: by `operator` (their IAM identity) with `reason`, while
    /// it awaits a vote, or approved and its deploy not begun (its wait or a hold included).
    pub fn cancel_by_operator(
        &self,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        let begun = self
            .promotion
            .as_ref()
            .is_some_and(|p| p.deploy_started_at.is_some() || p.failed.is_some());
        // Begun, whatever status the page may have written since.
        if self.promotion.as_ref().is_some_and(|p| p.deploy_started_at.is_some()) {
            return Err(Refusal::TooLateToCancel);
        }
        match self.status_at(now) {
            ApprovalStatus::AwaitingApproval => {}
            ApprovalStatus::Approved if !begun => {}
            ApprovalStatus::Approved => return Err(Refusal::TooLateToCancel),
            ApprovalStatus::Expired => return Err(Refusal::Expired),
            status => return Err(Refusal::Closed(status)),
        }
        Ok(ApprovalRequest {
            status: ApprovalStatus::Cancelled,
            decided_at: self.decided_at.or(Some(now)),
            operator_cancel: Some(OperatorCancel {
                by: operator.to_owned(),
                at: now,
                reason: reason.chars().take(MAX_COMMENT_CHARS).collect(),
            }),
            ..self.clone()
        })
    }

    /// The request awaiting a vote with its deadline `hours` after `deadline` (the one the file
    /// in force gives it, `governed_by`), never more than `MAX_APPROVAL_EXPIRES_HOURS` after
    /// it was requested.
    pub fn extend(&self, deadline: DateTime<Utc>, hours: i64, now: DateTime<Utc>) -> Result<ApprovalRequest, String> {
        match self.status {
            ApprovalStatus::AwaitingApproval if now < deadline => {}
            ApprovalStatus::AwaitingApproval => return Err("it expired".into()),
            status => return Err(format!("it is {status}: only a request awaiting a vote is extended")),
        }
        let cap = self.requested_at + TimeDelta::hours(super::pipeline::MAX_APPROVAL_EXPIRES_HOURS);
        let until = deadline + TimeDelta::hours(hours);
        if hours < 1 || until > cap {
            return Err(format!(
                "a request is decided within {} hours of being requested: it may be extended until {} UTC at most",
                super::pipeline::MAX_APPROVAL_EXPIRES_HOURS,
                super::notice::utc(cap)
            ));
        }
        Ok(ApprovalRequest {
            expires_at: until,
            extended_until: Some(until),
            ..self.clone()
        })
    }

    /// Whether the promotion's sweeper still has something to do with the request: it awaits
    /// a decision (and may expire), or it was approved and is not deployed or given up yet.
    pub fn in_flight(&self) -> bool {
        match self.status {
            ApprovalStatus::AwaitingApproval => true,
            ApprovalStatus::Approved => match &self.promotion {
                None => true,
                Some(p) if p.failed.is_some() => self.closed_at.is_none(),
                Some(p) => p.deployed_at.is_none(),
            },
            ApprovalStatus::Rejected | ApprovalStatus::Cancelled | ApprovalStatus::Expired => self.closed_at.is_none(),
            ApprovalStatus::Blocked | ApprovalStatus::Superseded => false,
        }
    }

    /// The request as the pipeline file in force governs it, for a reader that trusts nothing
    /// of it a vote could write: the approvals needed, the wait and the deadline come from
    /// `policy`, and APPROVED stands only if that many approvers `policy` lists approved, at
    /// the time of the vote that made it so. Otherwise it is still awaiting approval.
    pub fn governed_by(&self, policy: &ApprovalPolicy) -> ApprovalRequest {
        let mut governed = self.clone();
        governed.approvals_required = policy.required;
        // An operator's rollback waits for nothing but its approval.
        governed.wait = if self.rollback.is_some() {
            TimeDelta::zero()
        } else {
            policy.wait
        };
        governed.expires_at = (self.requested_at + policy.expires_after).max(self.extended_until.unwrap_or_default());
        // What only deploy-on-push writes settles it: a BLOCKED or superseded release, or one
        // without the staging evidence its policy requires, is never approved by a status. A
        // rollback (written with AWS credentials) goes to a version that ran in the stage.
        let requires_evidence = self.rollback.is_none()
            && policy
                .requires
                .as_ref()
                .is_some_and(|stage| self.evidence.as_ref().is_none_or(|e| &e.stage != stage));
        let refused = if self.blocked.is_some() {
            Some("the release was BLOCKED, so no approval counts")
        } else if self.superseded_by.is_some() {
            Some("a newer release superseded it, so no approval counts")
        } else if requires_evidence {
            Some("it holds no evidence from the stage the pipeline file requires")
        } else {
            None
        };
        // Once promote started the deploy (`promotion` is promote's alone), a status the page
        // wrote since cannot stop it midway.
        if self.promotion.as_ref().is_some_and(|p| p.deploy_started_at.is_some()) {
            governed.status = ApprovalStatus::Approved;
        } else if self.status != ApprovalStatus::Approved {
            return governed;
        }
        if let Some(why) = refused {
            // Given up (not deployed) unless its deploy is under way already.
            let started = self.decided_at.unwrap_or(self.requested_at);
            let promotion = governed
                .promotion
                .get_or_insert_with(|| super::promotion::Promotion::started(started));
            if promotion.deploy_started_at.is_none() && promotion.failed.is_none() {
                promotion.failed = Some(why.to_owned());
            }
            return governed;
        }
        match &self.promotion {
            // Once promote acted on the approval (only it writes `promotion`) the approval
            // stands: a file changed since must not turn a deploy under way into an expiry. The
            // wait then runs from the promotion's start at the earliest (a vote's time is the
            // page's to write).
            Some(promotion) => {
                governed.decided_at = Some(
                    self.decided_at
                        .map_or(promotion.started_at, |at| at.max(promotion.started_at)),
                );
            }
            None => {
                // One vote per approver, however many ballots name them.
                let mut approved_at: Vec<DateTime<Utc>> = self
                    .votes()
                    .filter(|(approver, vote)| {
                        vote.verdict == Verdict::Approve
                            && policy
                                .approvers
                                .iter()
                                .any(|listed| listed.as_str().eq_ignore_ascii_case(approver.as_str()))
                            && self.vote_is_proven(approver, vote)
                    })
                    .map(|(approver, vote)| (approver.as_str().to_ascii_lowercase(), vote.at))
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_values()
                    .collect();
                approved_at.sort();
                match approved_at.get(policy.required.max(1) - 1) {
                    Some(deciding) => governed.decided_at = Some(*deciding),
                    None => {
                        governed.status = ApprovalStatus::AwaitingApproval;
                        governed.decided_at = None;
                    }
                }
            }
        }
        governed
    }

    /// The request as promote reads it under `pipeline` (the file in force): governed by its
    /// stage's policy (what a vote can write is trusted no further than the file allows), or
    /// as stored when the stage takes no approvals now.
    pub fn governed_in(&self, pipeline: &super::pipeline::Pipeline) -> ApprovalRequest {
        match pipeline.stage(&self.stage).and_then(|s| s.approval.as_ref()) {
            Some(policy) => self.governed_by(policy),
            None => self.clone(),
        }
    }

    /// Whether `approver`'s `vote` was cast by its link's holder (its proof opens the
    /// approver's commitment for its verdict) or by an operator (`operator_votes`): what the
    /// page's role can write alone proves neither.
    fn vote_is_proven(&self, approver: &Approver, vote: &Vote) -> bool {
        let same = |other: &Approver| other.as_str().eq_ignore_ascii_case(approver.as_str());
        let by_link = vote.proof.as_ref().is_some_and(|proof| {
            let commitment = proof.commitment();
            self.links.iter().any(|link| {
                same(&link.approver)
                    && match vote.verdict {
                        Verdict::Approve => link.approve == commitment,
                        Verdict::Reject => link.reject == commitment,
                    }
            })
        });
        // An operator's kept vote counts if it is the first of its principal (cast_for refuses a
        // second; a kept list is trusted no further than that).
        let by_operator = self.operator_votes.iter().enumerate().any(|(n, o)| {
            same(&o.approver)
                && o.verdict == vote.verdict
                && operator_principal(&o.operator).is_some_and(|principal| {
                    !self.operator_votes[..n]
                        .iter()
                        .any(|earlier| operator_principal(&earlier.operator).as_ref() == Some(&principal))
                })
        });
        by_link || by_operator
    }

    /// The earliest the deploy may start: `wait` after the approval that decided it.
    pub fn deploy_not_before(&self) -> Option<DateTime<Utc>> {
        (self.status == ApprovalStatus::Approved).then_some(self.decided_at? + self.wait)
    }

    /// Counts the vote of the ballot `hash` opens: the request as it should be written, or
    /// why nothing changes. One reject rejects; the `approvals_required`-th approve approves.
    pub fn cast(
        &self,
        token: &ApprovalToken,
        verdict: Verdict,
        voter: Voter,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        let hash = token.hash();
        let index = self
            .ballots
            .iter()
            .position(|ballot| ballot.token_hashes.contains(&hash))
            .ok_or(Refusal::UnknownLink)?;
        if let Some(vote) = &self.ballots[index].vote {
            return Err(Refusal::AlreadyVoted(Box::new(vote.clone())));
        }
        self.open_at(now)?;
        let mut next = self.clone();
        next.ballots[index].vote = Some(Vote::new(verdict, voter, now, Some(token.proof(verdict))));
        Ok(next.counted(verdict, now))
    }

    /// Counts a vote an operator with AWS credentials casts for `approver` (`pipectl approve
    /// --as`), on that approver's one ballot: a link and pipectl cannot both count, so N-of-M
    /// stays N different approvers. `voter.operator` says who cast it.
    pub fn cast_for(
        &self,
        approver: &Approver,
        verdict: Verdict,
        voter: Voter,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        let index = self
            .ballots
            .iter()
            .position(|ballot| ballot.approver.as_str().eq_ignore_ascii_case(approver.as_str()))
            .ok_or(Refusal::NotAnApprover)?;
        if let Some(vote) = &self.ballots[index].vote {
            return Err(Refusal::AlreadyVoted(Box::new(vote.clone())));
        }
        // One principal, one vote: a role's session name is the caller's to choose, and a
        // federated user's name too (so it may not vote).
        let principal = match voter.operator.as_deref() {
            Some(arn) => Some(operator_principal(arn).ok_or_else(|| Refusal::NoIamIdentity(arn.to_owned()))?),
            None => None,
        };
        // Read from `operator_votes`, which the page cannot write (a ballot's `operator` it can).
        if let Some(principal) = principal
            && self
                .operator_votes
                .iter()
                .any(|o| operator_principal(&o.operator).as_ref() == Some(&principal))
        {
            return Err(Refusal::OperatorVoted(principal));
        }
        self.open_at(now)?;
        let mut next = self.clone();
        next.operator_votes.push(OperatorVote {
            approver: next.ballots[index].approver.clone(),
            verdict,
            operator: voter.operator.clone().unwrap_or_default(),
            at: now,
        });
        next.ballots[index].vote = Some(Vote::new(verdict, voter, now, None));
        Ok(next.counted(verdict, now))
    }

    fn open_at(&self, now: DateTime<Utc>) -> Result<(), Refusal> {
        // Its services are listed once deploy-on-push handled them all; no link exists before.
        if self.services.is_empty() && self.status == ApprovalStatus::AwaitingApproval {
            return Err(Refusal::NoServices);
        }
        match self.status_at(now) {
            ApprovalStatus::AwaitingApproval => Ok(()),
            ApprovalStatus::Expired => Err(Refusal::Expired),
            closed => Err(Refusal::Closed(closed)),
        }
    }

    /// After a vote: one reject rejects; enough approvals approve.
    fn counted(mut self, verdict: Verdict, now: DateTime<Utc>) -> Self {
        let decided = match verdict {
            Verdict::Reject => Some(ApprovalStatus::Rejected),
            Verdict::Approve if self.approvals() >= self.approvals_required => Some(ApprovalStatus::Approved),
            Verdict::Approve => None,
        };
        if let Some(status) = decided {
            self.status = status;
            self.decided_at = Some(now);
        }
        self
    }

    /// A newer release for the same stage and application replaces this open request.
    pub fn supersede(&self, by: Successor, now: DateTime<Utc>) -> Option<ApprovalRequest> {
        (self.status == ApprovalStatus::AwaitingApproval).then(|| ApprovalRequest {
            status: ApprovalStatus::Superseded,
            superseded_by: Some(by),
            decided_at: Some(now),
            ..self.clone()
        })
    }

    /// Approvers whose link has not gone out yet.
    pub fn unsent(&self) -> Vec<Approver> {
        if self.status != ApprovalStatus::AwaitingApproval {
            return Vec::new();
        }
        self.ballots
            .iter()
            .filter(|ballot| ballot.sent_at.is_none() && ballot.vote.is_none())
            .map(|ballot| ballot.approver.clone())
            .collect()
    }

    /// Takes back the links of every approver who has not voted, so that new ones go out
    /// (`unsent`): an old link no longer opens their ballot, and a vote cast with one is not
    /// proven (its commitment is gone from `links`, which the page cannot write). Returns who
    /// lost theirs.
    pub fn revoke_unvoted_links(&mut self) -> Vec<Approver> {
        let revoked: Vec<Approver> = self
            .ballots
            .iter()
            .filter(|ballot| ballot.vote.is_none())
            .map(|ballot| ballot.approver.clone())
            .collect();
        for ballot in self.ballots.iter_mut().filter(|ballot| ballot.vote.is_none()) {
            ballot.token_hashes.clear();
            ballot.sent_at = None;
        }
        self.links.retain(|link| !revoked.contains(&link.approver));
        revoked
    }

    /// Adds a link for `approver` (kept as its hash).
    pub fn issue_link(&mut self, approver: &Approver, token: &ApprovalToken) {
        if let Some(ballot) = self.ballots.iter_mut().find(|b| &b.approver == approver) {
            ballot.token_hashes.push(token.hash());
            self.links.push(Link {
                approver: approver.clone(),
                approve: token.proof(Verdict::Approve).commitment(),
                reject: token.proof(Verdict::Reject).commitment(),
            });
        }
    }

    pub fn mark_sent(&mut self, approver: &Approver, at: DateTime<Utc>) {
        if let Some(ballot) = self.ballots.iter_mut().find(|b| &b.approver == approver) {
            ballot.sent_at.get_or_insert(at);
        }
    }
}

/// An ARN's partition, service, region, account and resource
/// (`arn:<partition>:<service>:<region>:<account>:<resource>`).
pub fn arn_parts(arn: &str) -> Option<[&str; 5]> {
    let mut parts = arn.splitn(6, ':');
    if parts.next() != Some("arn") {
        return None;
    }
    let mut next = || parts.next();
    Some([next()?, next()?, next()?, next()?, next()?])
}

/// The IAM identity behind an operator's caller ARN, one name however the caller got there:
/// an assumed role (SAML, OIDC, IAM Identity Center or AssumeRole; its session name is the
/// caller's to choose) is the role (`arn:aws:sts::1:assumed-role/ops/jane` →
/// `arn:aws:iam::1:role/ops`); a user or the root as it is. A federated user
/// (`sts::…:federated-user/<name>`, from GetFederationToken) names no IAM identity (the name
/// is the caller's choice, so one user could be many), nor does anything else: `None`.
pub fn operator_principal(arn: &str) -> Option<String> {
    let [partition, service, _, account, resource] = arn_parts(arn)?;
    match (service, resource.split_once('/')) {
        ("sts", Some(("assumed-role", role_and_session))) => {
            let (role, _session) = role_and_session.split_once('/')?;
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        ("iam", Some(("user", _))) => Some(arn.to_owned()),
        ("iam", None) if resource == "root" => Some(arn.to_owned()),
        _ => None,
    }
}

/// How long a page's form stays good: long enough to read the release, short enough that an
/// old page is reopened (and shows the current state) before deciding.
pub const NONCE_LIFETIME: TimeDelta = TimeDelta::hours(1);

/// The form nonce a page is issued with: when it was issued, and a MAC over it, the request
/// and that time, keyed by the link's token. Checking it needs no stored state (a GET stays
/// one read); a POST without it, or with another link's or request's, decides nothing; the
/// ballot's single use makes it single use too.
pub fn issue_nonce(token: &ApprovalToken, request: &ApprovalId, at: DateTime<Utc>) -> String {
    let issued = at.timestamp();
    let mac = nonce_mac(token, request, issued).finalize().into_bytes();
    format!("{issued}.{}", URL_SAFE_NO_PAD.encode(mac))
}

pub fn nonce_is_valid(token: &ApprovalToken, request: &ApprovalId, nonce: &str, now: DateTime<Utc>) -> bool {
    let Some((issued, mac)) = nonce.split_once('.') else {
        return false;
    };
    let (Ok(issued), Ok(mac)) = (issued.parse::<i64>(), URL_SAFE_NO_PAD.decode(mac)) else {
        return false;
    };
    let Some(issued_at) = DateTime::from_timestamp(issued, 0) else {
        return false;
    };
    // A minute of slack for clocks of different Lambda hosts.
    if issued_at > now + TimeDelta::minutes(1) || now - issued_at > NONCE_LIFETIME {
        return false;
    }
    nonce_mac(token, request, issued).verify_slice(&mac).is_ok()
}

/// The MAC a nonce carries, keyed by the link's token, over the request and the issue time.
fn nonce_mac(token: &ApprovalToken, request: &ApprovalId, issued: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_str().as_bytes()).expect("HMAC takes any key");
    mac.update(nonce_message(request, issued).as_bytes());
    mac
}

fn nonce_message(request: &ApprovalId, issued: i64) -> String {
    format!("approval-form|{request}|{issued}")
}

/// What the required stage shows for one of the application's services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageCheck {
    pub service: ServiceName,
    /// The service's newest deploy of the digest in the required stage, if any.
    pub newest_with_digest: Option<(DeploymentId, Status, Option<DateTime<Utc>>)>,
    pub quarantined: bool,
}

/// Whether the digest passed the required stage: every service deployed it there, the newest
/// such deploy SUCCEEDED (not rolled back since), it is not quarantined there, and none of the
/// stage's alarms for the application is in ALARM now. `Err` says why not, for the record and
/// the notice.
pub fn verify_release(
    required: &StageName,
    digest: &ImageDigest,
    checks: &[StageCheck],
    alarms_checked: &[AlarmName],
    in_alarm: &[AlarmName],
) -> Result<Evidence, String> {
    let mut deployments = Vec::new();
    for check in checks {
        let service = &check.service;
        if check.quarantined {
            return Err(format!(
                "{digest} is quarantined on {service} in {required} (it was rolled back there)"
            ));
        }
        match &check.newest_with_digest {
            None => return Err(format!("{service} has not deployed {digest} in {required}")),
            Some((id, Status::Succeeded, completed_at)) => deployments.push(VerifiedDeploy {
                service: service.clone(),
                deployment: id.clone(),
                completed_at: *completed_at,
            }),
            Some((id, status, _)) => {
                return Err(format!(
                    "{service}'s newest deploy of {digest} in {required} ({id}) is {status}, not SUCCEEDED"
                ));
            }
        }
    }
    if let Some(alarm) = in_alarm.first() {
        return Err(format!("{required} alarm {alarm} is in ALARM now"));
    }
    Ok(Evidence {
        stage: required.clone(),
        deployments,
        alarms_checked: alarms_checked.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{at, digest, fixture_pipeline};

    fn image() -> PushedImage {
        crate::domain::fixtures::deployment(7, super::super::deployment::Kind::Deploy, Status::Requested, None).image
    }

    fn request(required: usize) -> ApprovalRequest {
        let mut request = crate::domain::fixtures::approval_request(required);
        let approvers: Vec<Approver> = request.ballots.iter().map(|b| b.approver.clone()).collect();
        for (n, approver) in approvers.iter().enumerate() {
            request.issue_link(approver, &token(n as u8));
        }
        request
    }

    fn token(n: u8) -> ApprovalToken {
        ApprovalToken::from_random([n; 32])
    }

    fn voter() -> Voter {
        Voter {
            source_ip: "203.0.113.9".into(),
            user_agent: "Mozilla/5.0".into(),
            comment: "ship it".into(),
            operator: None,
        }
    }

    #[test]
    fn the_pipeline_in_force_governs_a_request_not_what_is_stored_in_it() {
        let mut policy = fixture_pipeline().stages()[2].approval.clone().unwrap();
        policy.required = 2;
        let two = request(2)
            .cast(&token(0), Verdict::Approve, voter(), at(1))
            .unwrap()
            .cast(&token(1), Verdict::Approve, voter(), at(3))
            .unwrap();
        assert_eq!(two.status, ApprovalStatus::Approved);
        let governed = two.governed_by(&policy);
        assert_eq!(governed.decided_at, Some(at(3)), "the deciding vote's time");
        assert_eq!(
            (governed.wait, governed.expires_at),
            (policy.wait, two.requested_at + policy.expires_after)
        );

        // Stored fields a forged write changed count for nothing.
        let mut forged = request(2);
        forged.status = ApprovalStatus::Approved;
        forged.decided_at = Some(at(0) - TimeDelta::days(1));
        forged.approvals_required = 0;
        forged.wait = TimeDelta::zero();
        let governed = forged.governed_by(&policy);
        assert_eq!(
            (governed.status, governed.decided_at),
            (ApprovalStatus::AwaitingApproval, None)
        );
        assert_eq!((governed.approvals_required, governed.wait), (2, policy.wait));

        // A forged APPROVED on a BLOCKED or superseded release, or one without staging evidence.
        let given_up = |r: &ApprovalRequest| r.governed_by(&policy).promotion.and_then(|p| p.failed);
        let mut blocked = two.clone();
        blocked.blocked = Some("staging never ran it".into());
        assert!(given_up(&blocked).is_some_and(|why| why.contains("BLOCKED")));
        let mut no_evidence = two.clone();
        no_evidence.evidence = None;
        assert_eq!(given_up(&no_evidence).is_some(), policy.requires.is_some());
        assert_eq!(given_up(&two), None);
        // Once promote began, a stricter file no longer takes the approval back.
        let mut begun = two.clone();
        begun.promotion = Some(crate::domain::promotion::Promotion::started(at(4)));
        let mut stricter = policy.clone();
        stricter.required = 3;
        assert_eq!(begun.governed_by(&stricter).status, ApprovalStatus::Approved);
        assert_eq!(two.governed_by(&stricter).status, ApprovalStatus::AwaitingApproval);
        // One approver named on two ballots counts once.
        let mut twice = request(2).cast(&token(0), Verdict::Approve, voter(), at(1)).unwrap();
        twice.ballots[1].approver = twice.ballots[0].approver.clone();
        twice.ballots[1].vote = twice.ballots[0].vote.clone();
        twice.status = ApprovalStatus::Approved;
        assert_eq!(twice.governed_by(&policy).status, ApprovalStatus::AwaitingApproval);

        // A link issued again (a retry after a lost publish) proves its vote as the first would.
        let mut resent = request(2);
        let approver = resent.ballots[0].approver.clone();
        resent.issue_link(&approver, &token(7));
        let via_second = resent
            .cast(&token(7), Verdict::Approve, voter(), at(1))
            .unwrap()
            .cast(&token(1), Verdict::Approve, voter(), at(2))
            .unwrap();
        assert_eq!(via_second.governed_by(&policy).status, ApprovalStatus::Approved);

        // A vote counts only with its link's proof, or as an operator's kept vote.
        let mut unproven = two.clone();
        for ballot in &mut unproven.ballots {
            if let Some(vote) = &mut ballot.vote {
                vote.proof = None;
            }
        }
        assert_eq!(unproven.governed_by(&policy).status, ApprovalStatus::AwaitingApproval);
        let mut swapped = two.clone();
        let first = swapped.ballots[0].vote.clone();
        swapped.ballots[0].vote = swapped.ballots[1].vote.clone();
        swapped.ballots[1].vote = first;
        assert_eq!(
            swapped.governed_by(&policy).status,
            ApprovalStatus::AwaitingApproval,
            "a proof opens its own approver's link only"
        );
        let mut one_needed = policy.clone();
        one_needed.required = 1;
        let approver = request(1).ballots[0].approver.clone();
        let operator = Voter {
            operator: Some("arn:aws:iam::123456789012:user/ops".into()),
            ..voter()
        };
        let by_operator = request(1)
            .cast_for(&approver, Verdict::Approve, operator, at(1))
            .unwrap();
        assert_eq!(by_operator.governed_by(&one_needed).status, ApprovalStatus::Approved);
        let mut forged_operator = by_operator.clone();
        forged_operator.operator_votes.clear();
        assert_eq!(
            forged_operator.governed_by(&one_needed).status,
            ApprovalStatus::AwaitingApproval
        );

        // One approval of two, or an approver the file no longer lists, does not approve.
        let mut one = request(1).cast(&token(0), Verdict::Approve, voter(), at(1)).unwrap();
        assert_eq!(one.governed_by(&policy).status, ApprovalStatus::AwaitingApproval);
        one.ballots[1].approver = Approver::parse("mallory@example.com").unwrap();
        one.ballots[1].vote = one.ballots[0].vote.clone();
        assert_eq!(one.governed_by(&policy).status, ApprovalStatus::AwaitingApproval);
    }

    #[test]
    fn tokens_are_43_url_safe_characters_and_only_their_hash_is_kept() {
        let token = ApprovalToken::from_random([0xfb; 32]);
        assert_eq!(token.as_str().len(), 43);
        assert!(
            token
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        );
        assert_eq!(ApprovalToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(token.hash().0.len(), 64);
        assert!(!format!("{token:?}").contains(token.as_str()));
        for bad in [
            "",
            "short",
            &"A".repeat(44),
            &format!("{}=", token.as_str()),
            &"+".repeat(43),
        ] {
            assert!(ApprovalToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ids_derive_from_the_release_and_parse_strictly() {
        let pipeline = fixture_pipeline();
        let id = request(1).id;
        assert_eq!(ApprovalId::parse(id.as_str()), Some(id.clone()));
        let staging = &pipeline.stages()[1];
        assert_ne!(
            ApprovalId::for_release(&image(), &staging.name, &pipeline.applications()[0].name),
            id
        );
        for bad in [
            "apr-",
            "apr-XYZ",
            "dep-0123456789abcdef01234567",
            "apr-0123456789abcdef0123456g",
        ] {
            assert!(ApprovalId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn an_operator_cancels_until_the_deploy_begins_and_extends_within_the_cap() {
        const OPERATOR: &str = "arn:aws:iam::111122223333:role/oncall";
        let open = request(1);
        let cancelled = open.cancel_by_operator(OPERATOR, "wrong build", at(2)).unwrap();
        assert_eq!(cancelled.status, ApprovalStatus::Cancelled);
        let by = cancelled.operator_cancel.as_ref().unwrap();
        assert_eq!(
            (by.by.as_str(), by.at, by.reason.as_str()),
            (OPERATOR, at(2), "wrong build")
        );
        assert_eq!(cancelled.cancelled, None, "the page's attribute stays the page's");
        assert_eq!(
            cancelled.cancelled_by(),
            Some((format!("{OPERATOR} (\"wrong build\")"), at(2)))
        );

        // Approved and held past its wait: still called off, until the deploy starts.
        let approved = open.cast(&token(0), Verdict::Approve, voter(), at(3)).unwrap();
        assert!(approved.cancel_by_operator(OPERATOR, "freeze", at(40)).is_ok());
        let mut deploying = approved.clone();
        let mut promotion = super::super::promotion::Promotion::started(at(9));
        promotion.deploy_started_at = Some(at(9));
        deploying.promotion = Some(promotion);
        assert_eq!(
            deploying.cancel_by_operator(OPERATOR, "late", at(10)),
            Err(Refusal::TooLateToCancel)
        );
        assert_eq!(
            cancelled.cancel_by_operator(OPERATOR, "again", at(3)),
            Err(Refusal::Closed(ApprovalStatus::Cancelled))
        );
        assert_eq!(
            open.cancel_by_operator(OPERATOR, "late", open.expires_at),
            Err(Refusal::Expired)
        );

        let policy = fixture_pipeline().stages()[2].approval.clone().unwrap();
        let extended = open.extend(open.expires_at, 48, at(5)).unwrap();
        assert_eq!(extended.expires_at, open.expires_at + TimeDelta::hours(48));
        assert_eq!(
            extended.governed_by(&policy).expires_at,
            extended.expires_at,
            "the file in force keeps an operator's extension"
        );
        let cap = open.requested_at + TimeDelta::hours(168);
        let deadline = extended.governed_by(&policy).expires_at;
        assert!(extended.extend(deadline, 96, at(6)).unwrap().expires_at == cap);
        assert!(extended.extend(deadline, 97, at(6)).unwrap_err().contains("168 hours"));
        assert!(
            approved.extend(deadline, 1, at(6)).is_err(),
            "only a request awaiting a vote"
        );
        assert_eq!(open.extend(at(5), 1, at(5)).unwrap_err(), "it expired");
    }

    #[test]
    fn resent_links_replace_the_unvoted_ones_and_an_old_link_no_longer_counts() {
        let policy = fixture_pipeline().stages()[2].approval.clone().unwrap();
        let mut two = request(2).cast(&token(0), Verdict::Approve, voter(), at(1)).unwrap();
        let revoked = two.revoke_unvoted_links();
        assert_eq!(revoked, [two.ballots[1].approver.clone()], "who voted keeps their link");
        assert!(two.ballots[1].token_hashes.is_empty() && two.ballots[1].sent_at.is_none());
        assert_eq!(two.links.len(), 1);
        assert_eq!(two.unsent(), revoked, "new links go out to them");
        assert_eq!(
            two.cast(&token(1), Verdict::Approve, voter(), at(2)).unwrap_err(),
            Refusal::UnknownLink
        );
        // The page's role may write ballots: an old hash put back opens the ballot, but the vote
        // it casts proves nothing.
        let mut forged = two.clone();
        forged.ballots[1].token_hashes.push(token(1).hash());
        let forged = forged.cast(&token(1), Verdict::Approve, voter(), at(2)).unwrap();
        assert_eq!(
            forged
                .governed_by(&ApprovalPolicy {
                    required: 2,
                    ..policy.clone()
                })
                .status,
            ApprovalStatus::AwaitingApproval
        );
        let approver = two.ballots[1].approver.clone();
        two.issue_link(&approver, &token(9));
        let approved = two.cast(&token(9), Verdict::Approve, voter(), at(3)).unwrap();
        assert_eq!(
            approved.governed_by(&ApprovalPolicy { required: 2, ..policy }).status,
            ApprovalStatus::Approved
        );
    }

    #[test]
    fn one_approval_approves_by_default() {
        let approved = request(1).cast(&token(0), Verdict::Approve, voter(), at(3)).unwrap();
        assert_eq!(approved.status, ApprovalStatus::Approved);
        assert_eq!(approved.decided_at, Some(at(3)));
        assert_eq!(approved.deploy_not_before(), Some(at(8)));
        let vote = approved.ballots[0].vote.as_ref().unwrap();
        assert_eq!(
            (vote.verdict, vote.voter.comment.as_str()),
            (Verdict::Approve, "ship it")
        );
    }

    #[test]
    fn two_person_rule_needs_two_different_approvers_and_one_reject_rejects() {
        let open = request(2);
        let one = open.cast(&token(0), Verdict::Approve, voter(), at(1)).unwrap();
        assert_eq!(one.status, ApprovalStatus::AwaitingApproval);
        // The same approver again (a double click, a second link of theirs) counts nothing.
        assert!(matches!(
            one.cast(&token(0), Verdict::Approve, voter(), at(2)),
            Err(Refusal::AlreadyVoted(_))
        ));
        let two = one.cast(&token(1), Verdict::Approve, voter(), at(2)).unwrap();
        assert_eq!((two.status, two.decided_at), (ApprovalStatus::Approved, Some(at(2))));

        let rejected = one.cast(&token(1), Verdict::Reject, voter(), at(2)).unwrap();
        assert_eq!(rejected.status, ApprovalStatus::Rejected);
        assert!(matches!(
            rejected.cast(&token(0), Verdict::Reject, voter(), at(3)),
            Err(Refusal::AlreadyVoted(_))
        ));
    }

    #[test]
    fn unknown_expired_closed_and_superseded_requests_take_no_vote() {
        let open = request(1);
        assert_eq!(
            open.cast(&token(9), Verdict::Approve, voter(), at(1)),
            Err(Refusal::UnknownLink)
        );
        let late = open.expires_at;
        assert_eq!(open.status_at(late), ApprovalStatus::Expired);
        assert_eq!(
            open.cast(&token(0), Verdict::Approve, voter(), late),
            Err(Refusal::Expired)
        );

        let successor = Successor {
            id: ApprovalId::parse("apr-000000000000000000000000").unwrap(),
            tag: ImageTag::parse("v2").unwrap(),
        };
        let superseded = open.supersede(successor.clone(), at(2)).unwrap();
        assert_eq!(
            superseded.cast(&token(1), Verdict::Approve, voter(), at(3)),
            Err(Refusal::Closed(ApprovalStatus::Superseded))
        );
        assert!(
            superseded.supersede(successor, at(3)).is_none(),
            "supersedes only open requests"
        );
        assert!(superseded.unsent().is_empty());
    }

    #[test]
    fn an_operator_votes_on_the_approvers_one_ballot() {
        let open = request(2);
        let alice = open.ballots[0].approver.clone();
        let bob = open.ballots[1].approver.clone();
        let by_link = open.cast(&token(0), Verdict::Approve, voter(), at(1)).unwrap();
        let operator = Voter {
            operator: Some("arn:aws:sts::123456789012:assumed-role/ops/alice".into()),
            ..Voter::default()
        };
        // Alice cannot count twice, by link and by pipectl.
        assert!(matches!(
            by_link.cast_for(&alice, Verdict::Approve, operator.clone(), at(2)),
            Err(Refusal::AlreadyVoted(_))
        ));
        let both = by_link
            .cast_for(&bob, Verdict::Approve, operator.clone(), at(2))
            .unwrap();
        assert_eq!((both.status, both.approvals()), (ApprovalStatus::Approved, 2));
        assert_eq!(both.ballots[1].vote.as_ref().unwrap().voter.operator, operator.operator);
        // The same principal (another session of the role) cannot vote on a second ballot.
        let mut third = by_link.clone();
        third.approvals_required = 3;
        let carol = Approver::parse("carol@example.com").unwrap();
        third.ballots.push(Ballot {
            approver: carol.clone(),
            token_hashes: Vec::new(),
            sent_at: None,
            vote: None,
        });
        let once = third.cast_for(&bob, Verdict::Approve, operator.clone(), at(2)).unwrap();
        let other_session = Voter {
            operator: Some("arn:aws:sts::123456789012:assumed-role/ops/bob".into()),
            ..Voter::default()
        };
        assert_eq!(
            once.cast_for(&carol, Verdict::Approve, other_session, at(3)),
            Err(Refusal::OperatorVoted("arn:aws:iam::123456789012:role/ops".into()))
        );
        let federated = Voter {
            operator: Some("arn:aws:sts::123456789012:federated-user/bob-again".into()),
            ..Voter::default()
        };
        assert!(matches!(
            once.cast_for(&carol, Verdict::Approve, federated, at(3)),
            Err(Refusal::NoIamIdentity(_))
        ));
        let stranger = Approver::parse("mallory@example.com").unwrap();
        assert_eq!(
            open.cast_for(&stranger, Verdict::Approve, operator, at(2)),
            Err(Refusal::NotAnApprover)
        );
    }

    #[test]
    fn an_operator_is_the_iam_identity_behind_the_caller() {
        for (caller, principal) in [
            (
                "arn:aws:sts::123456789012:assumed-role/ops/jane",
                Some("arn:aws:iam::123456789012:role/ops"),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com",
                Some("arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123"),
            ),
            (
                "arn:aws-us-gov:sts::123456789012:assumed-role/ops/x",
                Some("arn:aws-us-gov:iam::123456789012:role/ops"),
            ),
            (
                "arn:aws:iam::123456789012:user/ci/release",
                Some("arn:aws:iam::123456789012:user/ci/release"),
            ),
            ("arn:aws:iam::123456789012:root", Some("arn:aws:iam::123456789012:root")),
            ("arn:aws:sts::123456789012:federated-user/bob", None),
            ("arn:aws:sts::123456789012:assumed-role/ops", None),
            ("not an arn", None),
        ] {
            assert_eq!(operator_principal(caller).as_deref(), principal, "{caller}");
        }
    }

    #[test]
    fn long_comments_and_user_agents_are_cut() {
        let long = Voter {
            comment: "x".repeat(5000),
            user_agent: "y".repeat(5000),
            ..voter()
        };
        let approved = request(1)
            .cast(&token(0), Verdict::Approve, long.clone(), at(1))
            .unwrap();
        let vote = approved.ballots[0].vote.as_ref().unwrap();
        assert_eq!(vote.voter.comment.len(), MAX_COMMENT_CHARS);
        assert_eq!(vote.voter.user_agent.len(), MAX_USER_AGENT_CHARS);
        let cancelled = approved.cancel(&token(0).hash(), long, at(2)).unwrap();
        let by = &cancelled.cancelled.as_ref().unwrap().voter;
        assert_eq!(
            by.user_agent.len(),
            MAX_USER_AGENT_CHARS,
            "a cancellation keeps as much"
        );
    }

    #[test]
    fn every_issued_link_opens_the_same_single_ballot() {
        let mut open = request(2);
        let approver = open.ballots[0].approver.clone();
        open.issue_link(&approver, &token(7));
        assert_eq!(open.ballot(&token(7).hash()).unwrap().approver, approver);
        let voted = open.cast(&token(7), Verdict::Approve, voter(), at(1)).unwrap();
        assert!(matches!(
            voted.cast(&token(0), Verdict::Approve, voter(), at(1)),
            Err(Refusal::AlreadyVoted(_))
        ));
        assert_eq!(open.unsent().len(), 2);
        open.mark_sent(&approver, at(1));
        assert_eq!(open.unsent().len(), 1);
    }

    #[test]
    fn nonces_are_bound_to_the_link_the_request_and_an_hour() {
        let id = request(1).id;
        let nonce = issue_nonce(&token(0), &id, at(0));
        assert!(nonce_is_valid(&token(0), &id, &nonce, at(30)));
        assert!(!nonce_is_valid(&token(1), &id, &nonce, at(30)), "another link's page");
        let other = ApprovalId::parse("apr-000000000000000000000000").unwrap();
        assert!(
            !nonce_is_valid(&token(0), &other, &nonce, at(30)),
            "another request's page"
        );
        assert!(!nonce_is_valid(
            &token(0),
            &id,
            &nonce,
            at(0) + NONCE_LIFETIME + TimeDelta::seconds(1)
        ));
        assert!(!nonce_is_valid(&token(0), &id, "", at(1)));
        let (issued, mac) = nonce.split_once('.').unwrap();
        let moved = format!("{}.{mac}", issued.parse::<i64>().unwrap() + 60);
        assert!(!nonce_is_valid(&token(0), &id, &moved, at(30)), "a changed issue time");
    }

    #[test]
    fn a_release_passes_only_if_every_service_succeeded_with_the_digest_and_no_alarm_fires() {
        let staging = StageName::parse("staging").unwrap();
        let service = |name: &str| ServiceName::parse(name).unwrap();
        let ok = |name: &str| StageCheck {
            service: service(name),
            newest_with_digest: Some((
                DeploymentId::from_stored(format!("dep-{name}")),
                Status::Succeeded,
                Some(at(5)),
            )),
            quarantined: false,
        };
        let alarms = [AlarmName::parse("backend-staging-5xx").unwrap()];
        let evidence = verify_release(&staging, &digest(1), &[ok("api"), ok("worker")], &alarms, &[]).unwrap();
        assert_eq!(evidence.deployments.len(), 2);
        assert_eq!(evidence.alarms_checked, alarms);

        let missing = StageCheck {
            newest_with_digest: None,
            ..ok("worker")
        };
        let why = verify_release(&staging, &digest(1), &[ok("api"), missing], &alarms, &[]).unwrap_err();
        assert!(why.starts_with("worker has not deployed sha256:0101"), "{why}");

        let rolled_back = StageCheck {
            newest_with_digest: Some((DeploymentId::from_stored("dep-9".into()), Status::RolledBack, None)),
            ..ok("api")
        };
        let why = verify_release(&staging, &digest(1), &[rolled_back], &alarms, &[]).unwrap_err();
        assert!(why.ends_with("(dep-9) is ROLLED_BACK, not SUCCEEDED"), "{why}");

        let quarantined = StageCheck {
            quarantined: true,
            ..ok("api")
        };
        assert!(
            verify_release(&staging, &digest(1), &[quarantined], &alarms, &[])
                .unwrap_err()
                .contains("quarantined")
        );

        let why = verify_release(&staging, &digest(1), &[ok("api")], &alarms, &alarms).unwrap_err();
        assert_eq!(why, "staging alarm backend-staging-5xx is in ALARM now");
    }

    #[test]
    fn a_blocked_request_sends_no_links() {
        let pipeline = fixture_pipeline();
        let prod = &pipeline.stages()[2];
        let app = &pipeline.applications()[0];
        let blocked = ApprovalRequest::new(
            ApprovalId::for_release(&image(), &prod.name, &app.name),
            (&prod.name, &prod.cluster),
            prod.approval.as_ref().unwrap(),
            &app.name,
            &image(),
            Vec::new(),
            Err("not in staging".into()),
            at(0),
        );
        assert_eq!(blocked.status, ApprovalStatus::Blocked);
        assert_eq!(blocked.blocked.as_deref(), Some("not in staging"));
        assert!(blocked.unsent().is_empty());
    }
}

#[cfg(test)]
mod rollback_tests {
    use super::*;
    use crate::domain::deployment::Kind;
    use crate::domain::fixtures::{at, deployment, rollback_request};

    fn target() -> RollbackService {
        rollback_request(1).rollback.unwrap().targets.remove(0)
    }

    #[test]
    fn a_rollback_applies_from_where_it_was_asked_or_its_own_rollback_or_the_version_itself() {
        let request = rollback_request(1);
        let target = target();
        let asked_from = deployment(7, Kind::Deploy, Status::Succeeded, Some(8));
        assert_eq!(rollback_applies(&target, &request.id, Some(&asked_from)), Ok(()));
        let mut on_version = deployment(9, Kind::Deploy, Status::Succeeded, Some(10));
        on_version.image = deployment(5, Kind::Deploy, Status::Succeeded, None).image;
        assert_eq!(
            rollback_applies(&target, &request.id, Some(&on_version)),
            Ok(()),
            "back on it already"
        );
        let mut ours = deployment(7, Kind::Deploy, Status::Deploying, None);
        ours.id = DeploymentId::for_rollback(&target.from);
        ours.kind = Kind::Rollback {
            of: target.from.clone(),
            cause: format!("operator … (asked at …; approved by … in {})", request.id),
        };
        ours.definition = None;
        assert_eq!(
            rollback_applies(&target, &request.id, Some(&ours)),
            Ok(()),
            "done before"
        );
        // An alarm's rollback of the same deployment shares the id, not the cause.
        let mut alarms = ours.clone();
        alarms.kind = Kind::Rollback {
            of: target.from.clone(),
            cause: "alarm backend-prod-5xx went into ALARM".into(),
        };
        let why = rollback_applies(&target, &request.id, Some(&alarms)).unwrap_err();
        assert!(why.contains("moved on to rbk-"), "{why}");
        let newer = deployment(8, Kind::Deploy, Status::Deploying, None);
        let why = rollback_applies(&target, &request.id, Some(&newer)).unwrap_err();
        assert_eq!(
            why,
            "backend-service moved on to dep-8 since the rollback was asked from dep-7"
        );
        assert!(rollback_applies(&target, &request.id, None).is_err());
    }

    #[test]
    fn once_its_deploy_began_no_status_the_page_writes_stops_a_request() {
        let policy = crate::domain::fixtures::fixture_pipeline().stages()[2]
            .approval
            .clone()
            .unwrap();
        let mut request = rollback_request(1);
        let token = ApprovalToken::from_random([4; 32]);
        let approver = request.ballots[0].approver.clone();
        request.issue_link(&approver, &token);
        let mut approved = request.cast(&token, Verdict::Approve, Voter::default(), at(1)).unwrap();
        let mut promotion = super::super::promotion::Promotion::started(at(1));
        promotion.deploy_started_at = Some(at(1));
        approved.promotion = Some(promotion);
        assert!(approved.still_open_at(at(2)));
        for written in [
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
            ApprovalStatus::AwaitingApproval,
        ] {
            let flipped = ApprovalRequest {
                status: written,
                ..approved.clone()
            };
            assert_eq!(
                flipped.governed_by(&policy).status,
                ApprovalStatus::Approved,
                "{written}"
            );
            assert_eq!(
                flipped.cancel_by_operator("arn:aws:iam::123456789012:user/ops", "why", at(2)),
                Err(Refusal::TooLateToCancel)
            );
        }
        // Before it began, a rejection stands and the request is no longer open.
        let rejected = request.cast(&token, Verdict::Reject, Voter::default(), at(1)).unwrap();
        assert_eq!(rejected.governed_by(&policy).status, ApprovalStatus::Rejected);
        assert!(!rejected.still_open_at(at(2)));
        assert!(!request.still_open_at(request.expires_at), "expired");
    }
}
