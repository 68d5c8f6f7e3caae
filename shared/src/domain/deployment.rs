//! Deployment records, their lifecycle, and the per-service decision a push leads to.

use super::names::{ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt;

/// `REQUESTED → (AWAITING_APPROVAL → APPROVED | REJECTED | EXPIRED | SUPERSEDED) →
/// (SNAPSHOTTING →) DEPLOYING → SUCCEEDED | FAILED | ROLLED_BACK`; a deploy still in flight
/// can also be SUPERSEDED by a newer image, or ROLLED_BACK before it completes. A push to an
/// automatic stage whose deploy window is closed (or frozen) is HELD until it opens, then
/// DEPLOYING, or SUPERSEDED by a newer push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Requested,
    Held,
    AwaitingApproval,
    Approved,
    Rejected,
    Expired,
    Cancelled,
    Superseded,
    Snapshotting,
    Deploying,
    Succeeded,
    Failed,
    RolledBack,
}

impl Status {
    pub const ALL: [Status; 13] = [
        Status::Requested,
        Status::Held,
        Status::AwaitingApproval,
        Status::Approved,
        Status::Rejected,
        Status::Expired,
        Status::Cancelled,
        Status::Superseded,
        Status::Snapshotting,
        Status::Deploying,
        Status::Succeeded,
        Status::Failed,
        Status::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "REQUESTED",
            Status::Held => "HELD",
            Status::AwaitingApproval => "AWAITING_APPROVAL",
            Status::Approved => "APPROVED",
            Status::Rejected => "REJECTED",
            Status::Expired => "EXPIRED",
            Status::Cancelled => "CANCELLED",
            Status::Superseded => "SUPERSEDED",
            Status::Snapshotting => "SNAPSHOTTING",
            Status::Deploying => "DEPLOYING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::RolledBack => "ROLLED_BACK",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Requested, AwaitingApproval | Deploying)
                // Released when the window opens, overtaken by a newer push, refused by ECS,
                // or its stage left the pipeline file.
                | (Held, Deploying | Superseded | Failed | Cancelled)
                // An attempt that died midway, overtaken by a newer push before its retry.
                | (Requested, Superseded)
                | (AwaitingApproval, Approved | Rejected | Expired | Superseded)
                // Cancelled during the wait, or the promotion gave up (no backup, no deploy).
                | (AwaitingApproval, Cancelled | Failed)
                | (Approved, Cancelled | Failed)
                // An approved release a newer one overtook before its deploy started.
                | (Approved, Superseded)
                | (Approved, Snapshotting | Deploying)
                | (Snapshotting, Deploying)
                | (Deploying, Succeeded | Failed | Superseded | RolledBack)
                // A deploy a newer push superseded still ran: how it ended is still news.
                | (Superseded, Succeeded | Failed)
                | (Succeeded | Failed, RolledBack)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("deployment {id} cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub id: DeploymentId,
    pub from: Status,
    pub to: Status,
}

/// Derived from the business key (image, push time, stage, service), so a redelivered event
/// maps onto the record it already created and a conditional create catches the duplicate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(String);

impl DeploymentId {
    pub fn for_push(image: &PushedImage, stage: &StageName, cluster: &ClusterName, service: &ServiceName) -> Self {
        let key = format!(
            "push|{}@{}|{}|{stage}|{cluster}|{service}",
            image.repository,
            image.digest,
            image.pushed_at.to_rfc3339()
        );
        let hash = Sha256::digest(key.as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Self(format!("dep-{hex}"))
    }

    /// The one rollback a bad deployment can ever get: a second alarm, a duplicate event or a
    /// FAILED after an alarm all map onto the same record.
    pub fn for_rollback(bad: &DeploymentId) -> Self {
        let hash = Sha256::digest(format!("rollback|{bad}").as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Self(format!("rbk-{hex}"))
    }

    /// A break-glass deploy of one service, from the operator's request key: a retried
    /// request maps onto the record it created.
    pub fn for_emergency(key: &str, stage: &StageName, cluster: &ClusterName, service: &ServiceName) -> Self {
        let hash = Sha256::digest(format!("emergency|{key}|{stage}|{cluster}|{service}").as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Self(format!("emg-{hex}"))
    }

    /// Whether this is a break-glass deploy's id (made by `for_emergency`): what an index that
    /// does not copy the `emergency` attributes still tells.
    pub fn is_emergency(&self) -> bool {
        self.0.starts_with("emg-")
    }

    /// For ids read back from the table, which only ever holds ids made by `for_push`,
    /// `for_emergency` and `for_rollback`.
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The image an ECR push made available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedImage {
    pub repository: RepositoryName,
    pub tag: ImageTag,
    pub digest: ImageDigest,
    /// `<registry>/<repository>@<digest>`, what the task definition will run.
    pub uri: String,
    pub pushed_at: DateTime<Utc>,
}

/// A deploy of a pushed image, or a rollback undoing one (a new record, as CodeDeploy does).
/// A rollback record's `image` is the bad deployment's: the push it answers, which keeps the
/// service's push order; the revision it restores is its `task_definition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Deploy,
    Rollback {
        of: DeploymentId,
        /// What set it off: an alarm, or ECS reporting the deployment FAILED.
        cause: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub id: DeploymentId,
    pub kind: Kind,
    pub status: Status,
    pub stage: StageName,
    pub cluster: ClusterName,
    pub service: ServiceName,
    pub container: ContainerName,
    pub image: PushedImage,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the service ran when this deployment was requested.
    pub previous_task_definition: Option<String>,
    /// The revision registered for this deployment.
    pub task_definition: Option<String>,
    /// `ecs-svc/…`, the id ECS deployment state-change events carry.
    pub ecs_deployment_id: Option<String>,
    pub superseded_by: Option<DeploymentId>,
    /// The registered revision and the one it replaced, in ECS's own JSON (see
    /// `ports::Registered`): what a rollback needs to register either again.
    pub definition: Option<String>,
    pub previous_definition: Option<String>,
    /// When ECS reported the deployment COMPLETED or FAILED.
    pub completed_at: Option<DateTime<Utc>>,
    /// ECS's reason for that ending (e.g. the circuit breaker's).
    pub ecs_reason: Option<String>,
    /// The pipeline it was requested under (`Pipeline::version`); records from before
    /// versions were kept have none.
    pub pipeline_version: Option<String>,
    /// Set on a break-glass deploy: who ordered it and why (it skipped the stage's checks).
    pub emergency: Option<Emergency>,
}

/// An operator's break-glass deploy: the IAM principal that ordered it and the reason given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emergency {
    pub by: String,
    pub reason: String,
}

impl Deployment {
    /// A deploy of `image` to `service` of `stage`, REQUESTED `at` under the pipeline
    /// `pipeline_version`: nothing registered yet.
    pub fn requested(
        id: DeploymentId,
        stage: &super::pipeline::Stage,
        service: &super::pipeline::ServiceSpec,
        image: &PushedImage,
        at: DateTime<Utc>,
        pipeline_version: &str,
    ) -> Self {
        Deployment {
            id,
            kind: Kind::Deploy,
            status: Status::Requested,
            stage: stage.name.clone(),
            cluster: stage.cluster.clone(),
            service: service.name.clone(),
            container: service.container.clone(),
            image: image.clone(),
            requested_at: at,
            updated_at: at,
            previous_task_definition: None,
            task_definition: None,
            ecs_deployment_id: None,
            superseded_by: None,
            definition: None,
            previous_definition: None,
            completed_at: None,
            ecs_reason: None,
            pipeline_version: Some(pipeline_version.to_owned()),
            emergency: None,
        }
    }

    pub fn transition(&self, to: Status, at: DateTime<Utc>) -> Result<Deployment, IllegalTransition> {
        if !self.status.can_become(to) {
            return Err(IllegalTransition {
                id: self.id.clone(),
                from: self.status,
                to,
            });
        }
        Ok(Deployment {
            status: to,
            updated_at: at,
            ..self.clone()
        })
    }

    /// The image this deployment puts on the service: the pushed one, or for a rollback the
    /// one in the definition it restores.
    pub fn image_running(&self) -> Option<String> {
        match self.kind {
            Kind::Deploy => Some(self.image.uri.clone()),
            Kind::Rollback { .. } => super::taskdef::container_image(self.definition.as_deref()?, &self.container),
        }
    }

    pub fn reference(&self) -> DeploymentRef {
        DeploymentRef {
            id: self.id.clone(),
            digest: match self.kind {
                Kind::Deploy => Some(self.image.digest.clone()),
                Kind::Rollback { .. } => None,
            },
            pushed_at: self.image.pushed_at,
        }
    }
}

/// Enough of a deployment to decide about the next push without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentRef {
    pub id: DeploymentId,
    /// The pushed digest it puts on the service; none for a rollback, which takes one off.
    pub digest: Option<ImageDigest>,
    /// When the push it answers was made: pushes older than this one are late.
    pub pushed_at: DateTime<Utc>,
}

/// The pointers of the service state a finished piece of work can move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceStateField {
    /// The newest deployment started on the service (a rollback counts).
    Latest,
    /// The newest request waiting for an approver.
    AwaitingApproval,
}

/// One item per service: what it last deployed, what awaits approval, what must not return.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceState {
    /// The newest deployment started on the service (a rollback counts).
    pub latest: Option<DeploymentRef>,
    /// The newest request waiting for an approver.
    pub awaiting_approval: Option<DeploymentRef>,
    /// Digests rolled back on this service: never deployed here again until an operator
    /// lifts them.
    pub quarantined: Vec<ImageDigest>,
}

impl ServiceState {
    /// Whether the service's latest deployment is another one, of an image pushed no earlier
    /// than `record`'s: then `record` must not go over it. At a tie (pushes carry whole
    /// seconds) the one already ahead stays, as in `decide`.
    pub fn latest_is_ahead_of(&self, record: &Deployment) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|latest| latest.id != record.id && latest.pushed_at >= record.image.pushed_at)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Automatic,
    Approval,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Skip(SkipReason),
    /// Go ahead; the pointer, if any, is the older request this one replaces.
    Proceed {
        supersedes: Option<DeploymentRef>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The service already got (or is getting) this digest.
    AlreadyDeployed(DeploymentId),
    /// This digest already waits for approval.
    AlreadyAwaitingApproval(DeploymentId),
    /// A newer push reached the service first; deploying this one would go backwards.
    NewerImageAhead(DeploymentId),
    /// This very event was already handled.
    Duplicate(DeploymentId),
    /// This digest was rolled back here.
    Quarantined,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::AlreadyDeployed(id) => write!(f, "this digest is already deployed by {id}"),
            SkipReason::AlreadyAwaitingApproval(id) => write!(f, "this digest already awaits approval as {id}"),
            SkipReason::NewerImageAhead(id) => write!(f, "a newer image is already ahead ({id})"),
            SkipReason::Duplicate(id) => write!(f, "duplicate delivery of {id}"),
            SkipReason::Quarantined => f.write_str(
                "this digest was rolled back on this service and is quarantined (`pipectl lift-quarantine` lifts it)",
            ),
        }
    }
}

/// What the records the service state points at say about a pushed digest, when it is the
/// digest they hold (read only then).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointedRecords {
    /// The latest deployment put this digest on the service and ended FAILED (not rolled back:
    /// there was nothing to go back to): the digest may be tried again.
    pub latest_failed: bool,
    /// The request for this digest that awaited approval was closed (rejected, expired,
    /// cancelled, its promotion failed): the digest may ask again, under a new tag.
    pub request_closed: bool,
}

/// What a push should do to one service, from the service's state and what the records it
/// points at say (`pointed`).
pub fn decide(mode: Mode, image: &PushedImage, state: &ServiceState, pointed: PointedRecords) -> Decision {
    if state.quarantined.contains(&image.digest) {
        return Decision::Skip(SkipReason::Quarantined);
    }
    if let Some(latest) = &state.latest
        && latest.digest.as_ref() == Some(&image.digest)
        && !pointed.latest_failed
    {
        return Decision::Skip(SkipReason::AlreadyDeployed(latest.id.clone()));
    }
    let slot = match mode {
        Mode::Automatic => &state.latest,
        Mode::Approval if pointed.request_closed => &None,
        Mode::Approval => &state.awaiting_approval,
    };
    if mode == Mode::Approval
        && let Some(waiting) = slot
        && waiting.digest.as_ref() == Some(&image.digest)
    {
        return Decision::Skip(SkipReason::AlreadyAwaitingApproval(waiting.id.clone()));
    }
    // Pushes only carry their time to the second: at a tie, which came first is unknown, so
    // the one already ahead stays. An approval request never goes below what is deployed.
    let ahead = [&state.latest, slot]
        .into_iter()
        .flatten()
        .filter(|p| p.pushed_at >= image.pushed_at)
        .max_by_key(|p| p.pushed_at);
    match ahead {
        Some(ahead) => Decision::Skip(SkipReason::NewerImageAhead(ahead.id.clone())),
        None => Decision::Proceed {
            supersedes: slot.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn digest(n: u8) -> ImageDigest {
        ImageDigest::parse(format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    fn image(n: u8, second: u32) -> PushedImage {
        PushedImage {
            repository: RepositoryName::parse("social-analytics/backend").unwrap(),
            tag: ImageTag::parse("latest").unwrap(),
            digest: digest(n),
            uri: String::new(),
            pushed_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, second).unwrap(),
        }
    }

    fn pointer(n: u8, second: u32) -> DeploymentRef {
        let img = image(n, second);
        DeploymentRef {
            id: DeploymentId(format!("dep-{n}")),
            digest: Some(img.digest),
            pushed_at: img.pushed_at,
        }
    }

    #[test]
    fn first_push_proceeds() {
        assert_eq!(
            decide(
                Mode::Automatic,
                &image(1, 0),
                &ServiceState::default(),
                PointedRecords::default()
            ),
            Decision::Proceed { supersedes: None }
        );
    }

    #[test]
    fn newer_push_supersedes_the_latest() {
        let state = ServiceState {
            latest: Some(pointer(1, 0)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        assert_eq!(
            decide(Mode::Automatic, &image(2, 5), &state, PointedRecords::default()),
            Decision::Proceed {
                supersedes: Some(pointer(1, 0))
            }
        );
    }

    #[test]
    fn same_digest_is_not_deployed_twice() {
        let state = ServiceState {
            latest: Some(pointer(1, 0)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        let retagged = image(1, 30);
        assert_eq!(
            decide(Mode::Automatic, &retagged, &state, PointedRecords::default()),
            Decision::Skip(SkipReason::AlreadyDeployed(DeploymentId("dep-1".into())))
        );
        assert!(matches!(
            decide(Mode::Approval, &retagged, &state, PointedRecords::default()),
            Decision::Skip(_)
        ));
    }

    #[test]
    fn late_delivery_of_an_older_push_does_not_go_backwards() {
        let state = ServiceState {
            latest: Some(pointer(2, 5)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        assert_eq!(
            decide(Mode::Automatic, &image(1, 0), &state, PointedRecords::default()),
            Decision::Skip(SkipReason::NewerImageAhead(DeploymentId("dep-2".into())))
        );
    }

    #[test]
    fn a_same_second_push_does_not_replace_the_one_ahead() {
        let state = ServiceState {
            latest: Some(pointer(1, 5)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        assert!(matches!(
            decide(Mode::Automatic, &image(2, 5), &state, PointedRecords::default()),
            Decision::Skip(SkipReason::NewerImageAhead(_))
        ));
    }

    #[test]
    fn an_approval_request_never_goes_below_what_is_deployed() {
        let state = ServiceState {
            latest: Some(pointer(2, 30)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        assert!(matches!(
            decide(Mode::Approval, &image(1, 10), &state, PointedRecords::default()),
            Decision::Skip(SkipReason::NewerImageAhead(_))
        ));
    }

    #[test]
    fn approvals_supersede_only_older_requests() {
        let state = ServiceState {
            latest: Some(pointer(1, 0)),
            awaiting_approval: Some(pointer(2, 5)),
            quarantined: vec![],
        };
        assert_eq!(
            decide(Mode::Approval, &image(3, 9), &state, PointedRecords::default()),
            Decision::Proceed {
                supersedes: Some(pointer(2, 5))
            }
        );
        assert!(matches!(
            decide(Mode::Approval, &image(2, 5), &state, PointedRecords::default()),
            Decision::Skip(SkipReason::AlreadyAwaitingApproval(_))
        ));
        let closed = PointedRecords {
            request_closed: true,
            ..Default::default()
        };
        assert_eq!(
            decide(Mode::Approval, &image(2, 50), &state, closed),
            Decision::Proceed { supersedes: None },
            "a rejected digest asks again under a new tag, leaving the closed request alone"
        );
    }

    #[test]
    fn a_quarantined_digest_is_skipped_and_a_fix_forward_proceeds() {
        let state = ServiceState {
            latest: Some(pointer(2, 5)),
            awaiting_approval: None,
            quarantined: vec![digest(2)],
        };
        for mode in [Mode::Automatic, Mode::Approval] {
            assert_eq!(
                decide(mode, &image(2, 40), &state, PointedRecords::default()),
                Decision::Skip(SkipReason::Quarantined)
            );
        }
        assert_eq!(
            decide(Mode::Automatic, &image(3, 40), &state, PointedRecords::default()),
            Decision::Proceed {
                supersedes: Some(pointer(2, 5))
            }
        );
        // Lifted, after a rollback took it off the service: it deploys again.
        let rollback = DeploymentRef {
            digest: None,
            ..pointer(9, 5)
        };
        let lifted = ServiceState {
            latest: Some(rollback.clone()),
            awaiting_approval: None,
            quarantined: vec![],
        };
        assert_eq!(
            decide(Mode::Automatic, &image(2, 40), &lifted, PointedRecords::default()),
            Decision::Proceed {
                supersedes: Some(rollback)
            }
        );
    }

    #[test]
    fn a_digest_whose_deploy_failed_without_a_rollback_can_be_tried_again() {
        let state = ServiceState {
            latest: Some(pointer(1, 0)),
            awaiting_approval: None,
            quarantined: vec![],
        };
        let pushed_again = image(1, 30);
        assert_eq!(
            decide(
                Mode::Automatic,
                &pushed_again,
                &state,
                PointedRecords {
                    latest_failed: true,
                    ..Default::default()
                }
            ),
            Decision::Proceed {
                supersedes: Some(pointer(1, 0))
            }
        );
        assert!(matches!(
            decide(Mode::Automatic, &pushed_again, &state, PointedRecords::default()),
            Decision::Skip(SkipReason::AlreadyDeployed(_))
        ));
    }

    #[test]
    fn rollback_ids_come_from_the_bad_deployment() {
        let bad = DeploymentId("dep-1".into());
        assert_eq!(DeploymentId::for_rollback(&bad), DeploymentId::for_rollback(&bad));
        assert_ne!(
            DeploymentId::for_rollback(&bad),
            DeploymentId::for_rollback(&DeploymentId("dep-2".into()))
        );
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        use Status::*;
        assert!(Requested.can_become(Deploying));
        assert!(Requested.can_become(AwaitingApproval));
        assert!(AwaitingApproval.can_become(Superseded));
        assert!(Deploying.can_become(Superseded));
        assert!(Deploying.can_become(Succeeded));
        assert!(Succeeded.can_become(RolledBack));
        assert!(
            Deploying.can_become(RolledBack),
            "a bad deploy still in flight is rolled back too"
        );
        assert!(!Succeeded.can_become(Deploying));
        assert!(!Superseded.can_become(Deploying));
        assert!(
            Superseded.can_become(Succeeded),
            "a superseded deploy ECS completed is still known good"
        );
        assert!(!Requested.can_become(Succeeded));
        assert!(!RolledBack.can_become(Succeeded));
    }

    #[test]
    fn status_names_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("DONE"), None);
    }

    #[test]
    fn deployment_ids_come_from_the_business_key() {
        let stage = StageName::parse("dev").unwrap();
        let cluster = ClusterName::parse("c").unwrap();
        let svc = ServiceName::parse("s").unwrap();
        let other = ServiceName::parse("t").unwrap();
        let a = DeploymentId::for_push(&image(1, 0), &stage, &cluster, &svc);
        assert_eq!(a, DeploymentId::for_push(&image(1, 0), &stage, &cluster, &svc));
        assert_ne!(a, DeploymentId::for_push(&image(1, 1), &stage, &cluster, &svc));
        assert_ne!(a, DeploymentId::for_push(&image(1, 0), &stage, &cluster, &other));
        assert!(a.as_str().starts_with("dep-") && a.as_str().len() == 28);
    }
}
