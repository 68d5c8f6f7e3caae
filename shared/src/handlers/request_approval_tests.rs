//! deploy-on-push in a stage a person approves, over the in-memory ports: the staging check,
//! one request per release, one link per approver, resends and supersedes.

use super::deploy_on_push::{DeployOnPush, PushError, PushResponse};
use super::request_approval::ApprovalDesk;
use crate::domain::approval::{ApprovalId, ApprovalStatus, ApprovalToken};
use crate::domain::deployment::{Deployment, DeploymentId, Kind, Status};
use crate::domain::fixtures::{deployment, fixture_pipeline};
use crate::domain::names::{ClusterName, ImageDigest, ServiceName, StageName};
use crate::domain::pipeline::Pipeline;
use crate::events::EcrEvent;
use crate::fakes::{FakeAlarms, FakeApproverMail, FakeEcs, FakeNotifier, FakeSnapshots, MemoryRecords};
use crate::ports::{Approvals, Deployments, Quarantine};
use chrono::{TimeDelta, Utc};
use serde_json::json;

const SERVICES: [&str; 2] = ["backend-service", "worker-service"];

struct World {
    records: MemoryRecords,
    ecs: FakeEcs,
    notifier: FakeNotifier,
    alarms: FakeAlarms,
    mail: FakeApproverMail,
}

fn cluster(stage: &str) -> ClusterName {
    ClusterName::parse(format!("social-analytics-{stage}")).unwrap()
}

fn digest(byte: u8) -> ImageDigest {
    ImageDigest::parse(format!("sha256:{}", format!("{byte:02x}").repeat(32))).unwrap()
}

fn release(tag: &str, byte: u8, second: u32) -> EcrEvent {
    serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": format!("2026-11-22T10:00:{second:02}Z"), "region": "us-east-1",
        "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "social-analytics/backend",
                   "image-digest": digest(byte).to_string(), "action-type": "PUSH", "image-tag": tag}
    }))
    .unwrap()
}

impl World {
    fn new() -> Self {
        let names: Vec<(ClusterName, ServiceName)> = ["dev", "staging", "prod"]
            .iter()
            .flat_map(|stage| SERVICES.map(|s| (cluster(stage), ServiceName::parse(s).unwrap())))
            .collect();
        let services: Vec<(&ClusterName, &ServiceName, &str)> = names.iter().map(|(c, s)| (c, s, "td:1")).collect();
        World {
            records: MemoryRecords::default(),
            ecs: FakeEcs::with_services(&services),
            notifier: FakeNotifier::default(),
            alarms: FakeAlarms::default(),
            mail: FakeApproverMail::default(),
        }
    }

    fn deployer(&self) -> DeployOnPush<MemoryRecords, FakeEcs, FakeAlarms, FakeApproverMail, FakeNotifier> {
        DeployOnPush {
            pipeline: fixture_pipeline(),
            records: self.records.clone(),
            ecs: self.ecs.clone(),
            approvals: ApprovalDesk {
                alarms: self.alarms.clone(),
                mail: self.mail.clone(),
                notifier: self.notifier.clone(),
                page_url: "https://approve.example/".into(),
            },
        }
    }

    /// Staging's services deployed the digest and ECS reported it `status`.
    fn staging_ended(&self, byte: u8, status: Status) {
        for (n, service) in SERVICES.iter().enumerate() {
            let mut record: Deployment = deployment(byte, Kind::Deploy, status, Some(1));
            record.id = DeploymentId::from_stored(format!("dep-staging-{byte}-{n}"));
            record.stage = StageName::parse("staging").unwrap();
            record.cluster = cluster("staging");
            record.service = ServiceName::parse(*service).unwrap();
            record.image.digest = digest(byte);
            self.records.insert(record);
        }
    }

    async fn push(&self, event: &EcrEvent) -> Result<PushResponse, PushError> {
        self.deployer()
            .handle_event(event, Utc::now() + TimeDelta::seconds(30))
            .await
    }

    fn prod_records(&self) -> Vec<Deployment> {
        self.records
            .deployments()
            .into_iter()
            .filter(|d| d.cluster == cluster("prod"))
            .collect()
    }
}

/// The token in a link sent to an approver.
fn token_in(message: &str) -> ApprovalToken {
    let link = message
        .lines()
        .find(|l| l.starts_with("https://approve.example/a/"))
        .unwrap();
    ApprovalToken::parse(link.rsplit('/').next().unwrap()).unwrap()
}

#[tokio::test]
async fn a_release_not_verified_in_staging_is_blocked_and_sends_no_link() {
    let world = World::new();
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let requests = world.records.approvals();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, ApprovalStatus::Blocked);
    assert!(
        requests[0]
            .blocked
            .as_deref()
            .unwrap()
            .starts_with("backend-service has not deployed")
    );
    assert!(world.prod_records().is_empty(), "no prod record awaits anything");
    assert!(world.mail.sent().is_empty());
    let notices = world.notifier.published();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].subject, "Release v1.0.0 of backend to prod blocked");
    assert!(notices[0].message.contains("Deploy this digest to staging first"));

    // A redelivery stands by the block (and its notice is not sent again).
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    assert_eq!(world.records.approvals()[0].status, ApprovalStatus::Blocked);
    assert_eq!(world.notifier.published().len(), 1);
}

#[tokio::test]
async fn a_rolled_back_quarantined_or_alarming_staging_blocks_the_release() {
    let rolled_back = World::new();
    rolled_back.staging_ended(1, Status::RolledBack);
    rolled_back.push(&release("v1.0.0", 1, 0)).await.unwrap();
    assert!(
        rolled_back.records.approvals()[0]
            .blocked
            .as_deref()
            .unwrap()
            .contains("is ROLLED_BACK")
    );

    let quarantined = World::new();
    quarantined.staging_ended(1, Status::Succeeded);
    let worker = ServiceName::parse("worker-service").unwrap();
    quarantined
        .records
        .quarantine(&cluster("staging"), &worker, &digest(1))
        .await
        .unwrap();
    quarantined.push(&release("v1.0.0", 1, 0)).await.unwrap();
    assert!(
        quarantined.records.approvals()[0]
            .blocked
            .as_deref()
            .unwrap()
            .contains("quarantined on worker-service")
    );

    let alarming = World::new();
    alarming.staging_ended(1, Status::Succeeded);
    alarming.alarms.set_firing(&["backend-staging-health"]);
    alarming.push(&release("v1.0.0", 1, 0)).await.unwrap();
    assert_eq!(
        alarming.records.approvals()[0].blocked.as_deref(),
        Some("staging alarm backend-staging-health is in ALARM now")
    );
}

#[tokio::test]
async fn a_verified_release_sends_each_approver_their_own_link_once() {
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    let response = world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let PushResponse::Handled { approvals, .. } = response else {
        panic!("handled")
    };
    assert_eq!(approvals.len(), 1);
    assert_eq!(
        (approvals[0].status, approvals[0].links_sent),
        (ApprovalStatus::AwaitingApproval, 2)
    );

    let request = world.records.approvals().remove(0);
    assert_eq!(request.services.len(), 2);
    assert_eq!(request.services[0].running_now.as_deref(), Some("td:1"));
    assert_eq!(request.evidence.as_ref().unwrap().deployments.len(), 2);
    let sent = world.mail.sent();
    assert_eq!(sent.len(), 2);
    for ((approver, notice), ballot) in sent.iter().zip(&request.ballots) {
        assert_eq!(approver, &ballot.approver);
        assert_eq!(notice.subject, "Approve v1.0.0 of backend to prod?");
        assert!(notice.message.contains(&digest(1).to_string()));
        assert!(notice.message.contains("staging"));
        let token = token_in(&notice.message);
        assert_eq!(
            request.ballot(&token.hash()).unwrap().approver,
            *approver,
            "the link is theirs"
        );
        assert!(ballot.sent_at.is_some());
    }
    let statuses: Vec<_> = world.prod_records().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Status::AwaitingApproval, Status::AwaitingApproval]);

    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    assert_eq!(world.mail.sent().len(), 2, "a redelivery sends no link again");
    assert_eq!(world.records.approvals().len(), 1);
}

#[tokio::test]
async fn a_link_that_could_not_be_sent_goes_out_on_the_retry() {
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.mail.fail(true);
    let err = world.push(&release("v1.0.0", 1, 0)).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "NotifyFailed");
    assert!(world.records.approvals()[0].ballots.iter().all(|b| b.sent_at.is_none()));

    world.mail.fail(false);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let request = world.records.approvals().remove(0);
    assert_eq!(world.mail.sent().len(), 2);
    for (_, notice) in world.mail.sent() {
        assert!(request.ballot(&token_in(&notice.message).hash()).is_some());
    }
}

#[tokio::test]
async fn a_newer_release_supersedes_the_open_request_and_says_so() {
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.staging_ended(2, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    world.push(&release("v1.1.0", 2, 30)).await.unwrap();
    let requests = world.records.approvals();
    let old = requests.iter().find(|r| r.image.tag.as_str() == "v1.0.0").unwrap();
    let new = requests.iter().find(|r| r.image.tag.as_str() == "v1.1.0").unwrap();
    assert_eq!(old.status, ApprovalStatus::Superseded);
    assert_eq!(old.superseded_by.as_ref().unwrap().id, new.id);
    assert_eq!(new.status, ApprovalStatus::AwaitingApproval);
    let subjects: Vec<_> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(subjects, ["Approval of v1.0.0 to prod superseded by v1.1.0"]);

    // The older release arriving again (a redelivery) opens nothing and supersedes nothing.
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let again = world.records.approvals();
    assert_eq!(
        again
            .iter()
            .filter(|r| r.status == ApprovalStatus::AwaitingApproval)
            .count(),
        1
    );
}

#[tokio::test]
async fn the_staging_verdict_stands_for_the_retry_of_a_release_whose_service_was_busy() {
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    let worker = ServiceName::parse("worker-service").unwrap();
    world
        .records
        .hold_lock(&cluster("prod"), &worker, Utc::now() + TimeDelta::minutes(1));
    // A deadline 16 s away leaves one second to wait for the held lock.
    let err = world
        .deployer()
        .handle_event(&release("v1.0.0", 1, 0), Utc::now() + TimeDelta::seconds(16))
        .await
        .unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "ServiceBusy");
    assert!(world.mail.sent().is_empty(), "no link before every service is handled");
    assert_eq!(world.records.approvals()[0].status, ApprovalStatus::AwaitingApproval);

    // Before the retry a staging alarm fires: the verdict already made stands.
    world.alarms.set_firing(&["backend-staging-5xx"]);
    world
        .records
        .hold_lock(&cluster("prod"), &worker, Utc::now() - TimeDelta::seconds(1));
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let request = world.records.approvals().remove(0);
    assert_eq!(
        (request.status, request.services.len()),
        (ApprovalStatus::AwaitingApproval, 2)
    );
    assert_eq!(world.mail.sent().len(), 2);
}

#[tokio::test]
async fn a_release_older_than_the_open_request_is_superseded_by_it_and_sends_no_link() {
    use crate::domain::approval::{ApprovalId, ApprovalRequest};
    use crate::domain::names::ImageTag;
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    // v1.1.0, pushed later, already has the stage's open request (its delivery came first).
    let pipeline = fixture_pipeline();
    let (prod, app) = (&pipeline.stages()[2], &pipeline.applications()[0]);
    let mut image = deployment(9, Kind::Deploy, Status::Requested, None).image;
    image.tag = ImageTag::parse("v1.1.0").unwrap();
    image.pushed_at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:05:00Z")
        .unwrap()
        .to_utc();
    let newer = ApprovalRequest::new(
        ApprovalId::for_release(&image, &prod.name, &app.name),
        (&prod.name, &prod.cluster),
        prod.approval.as_ref().unwrap(),
        &app.name,
        &image,
        Vec::new(),
        Ok(None),
        image.pushed_at,
    );
    assert!(world.records.create_approval(&newer).await.unwrap());
    let pointed = world
        .records
        .point_open_request(&prod.name, &app.name, &newer.id, image.pushed_at, None)
        .await
        .unwrap();
    assert!(pointed);

    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let older = world
        .records
        .approvals()
        .into_iter()
        .find(|r| r.id != newer.id)
        .unwrap();
    assert_eq!(older.status, ApprovalStatus::Superseded);
    let by = older.superseded_by.unwrap();
    assert_eq!((by.id, by.tag.as_str()), (newer.id, "v1.1.0"));
    assert!(world.mail.sent().is_empty(), "no link for the older release");
    let subjects: Vec<_> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(subjects, ["Approval of v1.0.0 to prod superseded by v1.1.0"]);
}

#[tokio::test]
async fn a_release_that_changes_no_service_leaves_no_request() {
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    // The same digest tagged again: every prod service already awaits it.
    world.push(&release("v1.0.1", 1, 20)).await.unwrap();
    let requests = world.records.approvals();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].image.tag.as_str(), "v1.0.0");
    assert_eq!(world.mail.sent().len(), 2);
}

/// Release `v{byte}.0.0`, which staging ran, pushed and approved by its first link now.
async fn approved(world: &World, byte: u8, second: u32) -> ApprovalId {
    world.staging_ended(byte, Status::Succeeded);
    world
        .push(&release(&format!("v{byte}.0.0"), byte, second))
        .await
        .unwrap();
    let (_, notice) = world.mail.sent().pop().unwrap();
    let request = world
        .records
        .approvals()
        .into_iter()
        .find(|r| r.image.tag.as_str() == format!("v{byte}.0.0"))
        .unwrap();
    let mut approved = request
        .cast(
            &token_in(&notice.message),
            crate::domain::approval::Verdict::Approve,
            Default::default(),
            Utc::now(),
        )
        .unwrap();
    approved.version += 1;
    assert!(world.records.save_approval(&approved).await.unwrap());
    approved.id
}

type Promoter = super::promote::Promote<MemoryRecords, FakeEcs, FakeSnapshots, FakeNotifier>;

impl World {
    fn promoter(&self, pipeline: Pipeline, rds: &FakeSnapshots) -> Promoter {
        super::promote::Promote {
            pipeline,
            records: self.records.clone(),
            ecs: self.ecs.clone(),
            rds: rds.clone(),
            notifier: self.notifier.clone(),
        }
    }

    fn subjects(&self) -> Vec<String> {
        self.notifier.published().into_iter().map(|n| n.subject).collect()
    }

    fn prod_records_of(&self, tag: &str) -> Vec<Deployment> {
        self.prod_records()
            .into_iter()
            .filter(|d| d.image.tag.as_str() == tag)
            .collect()
    }
}

/// The promotion over the fakes: snapshot, wait, deploy.
#[tokio::test]
async fn an_approved_release_is_backed_up_waits_then_deploys_each_service_once() {
    use super::promote::{Advanced, Promote};
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let (approver, notice) = world.mail.sent().remove(0);
    let token = token_in(&notice.message);
    let request = world.records.approvals().remove(0);
    let now = Utc::now();
    let mut approved = request
        .cast(
            &token,
            crate::domain::approval::Verdict::Approve,
            Default::default(),
            now,
        )
        .unwrap();
    approved.version += 1;
    assert!(
        world.records.save_approval(&approved).await.unwrap(),
        "{approver} approved"
    );

    let rds = FakeSnapshots::default();
    let promote = Promote {
        pipeline: fixture_pipeline(),
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds: rds.clone(),
        notifier: world.notifier.clone(),
    };
    let deadline = now + TimeDelta::seconds(30);
    assert_eq!(
        promote.advance(&approved.id, now, deadline).await.unwrap(),
        Advanced::Snapshotting { snapshots: 1 }
    );
    assert_eq!(rds.taken().len(), 1);
    assert_eq!(
        promote.advance(&approved.id, now, deadline).await.unwrap(),
        Advanced::Snapshotting { snapshots: 1 }
    );
    rds.finish(SnapshotState::Available);
    promote.advance(&approved.id, now, deadline).await.unwrap();
    // The snapshot is ready; the 5-minute wait is not over.
    assert!(matches!(
        promote.advance(&approved.id, now, deadline).await.unwrap(),
        Advanced::Waiting { .. }
    ));
    let later = now + TimeDelta::minutes(6);
    let deployed = promote
        .advance(&approved.id, later, later + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        deployed,
        Advanced::Deployed {
            services: SERVICES.map(String::from).to_vec()
        }
    );
    for record in world.prod_records() {
        assert_eq!(record.status, Status::Deploying, "{record:?}");
    }
    let revisions = world.ecs.revisions().len();
    // A redelivery deploys nothing again.
    assert!(matches!(
        promote
            .advance(&approved.id, later, later + TimeDelta::seconds(30))
            .await
            .unwrap(),
        Advanced::Nothing { .. }
    ));
    assert_eq!(world.ecs.revisions().len(), revisions);
    let subjects: Vec<_> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(
        subjects,
        [
            "v1.0.0 of backend to prod: approved, backing up",
            "v1.0.0 of backend to prod: backed up",
            "v1.0.0 of backend to prod: deploying"
        ]
    );
    let published = world.notifier.published();
    assert!(
        published[0].message.contains("Approved by "),
        "{}",
        published[0].message
    );
}

/// A rejected release and an expired one close their records and tell the team, once.
#[tokio::test]
async fn rejected_and_expired_requests_close_their_records_and_say_so_once() {
    use super::promote::{Advanced, Promote};
    use crate::domain::approval::Verdict;
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let promote = Promote {
        pipeline: fixture_pipeline(),
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds: FakeSnapshots::default(),
        notifier: world.notifier.clone(),
    };
    let request = world.records.approvals().remove(0);
    let now = Utc::now();
    let deadline = now + TimeDelta::seconds(30);

    // Nobody decides: the sweep past the expiry closes it.
    let swept = promote.sweep(request.expires_at, deadline).await.unwrap();
    assert_eq!(
        swept[0].1,
        Advanced::Closed {
            status: ApprovalStatus::Expired
        }
    );
    assert!(world.prod_records().iter().all(|d| d.status == Status::Expired));
    // The stream then delivers the EXPIRED write: nothing more happens, nothing is said twice.
    assert!(matches!(
        promote
            .advance(&request.id, request.expires_at, deadline)
            .await
            .unwrap(),
        Advanced::Nothing { .. }
    ));
    assert!(world.records.approvals()[0].closed_at.is_some());
    let subjects: Vec<_> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(subjects, ["v1.0.0 of backend to prod: approval expired"]);

    // A second release, rejected.
    world.staging_ended(2, Status::Succeeded);
    world.push(&release("v1.1.0", 2, 30)).await.unwrap();
    let (_, notice) = world.mail.sent().into_iter().last().unwrap();
    let open = world
        .records
        .approvals()
        .into_iter()
        .find(|r| r.image.tag.as_str() == "v1.1.0")
        .unwrap();
    let mut rejected = open
        .cast(
            &token_in(&notice.message),
            Verdict::Reject,
            crate::domain::approval::Voter {
                comment: "not today".into(),
                ..Default::default()
            },
            now,
        )
        .unwrap();
    rejected.version += 1;
    assert!(world.records.save_approval(&rejected).await.unwrap());
    assert_eq!(
        promote.advance(&open.id, now, deadline).await.unwrap(),
        Advanced::Closed {
            status: ApprovalStatus::Rejected
        }
    );
    let v11: Vec<_> = world
        .prod_records()
        .into_iter()
        .filter(|d| d.image.tag.as_str() == "v1.1.0")
        .collect();
    assert!(v11.iter().all(|d| d.status == Status::Rejected), "{v11:?}");
    let last = world.notifier.published().pop().unwrap();
    assert_eq!(last.subject, "v1.1.0 of backend to prod: rejected");
    assert!(last.message.contains("(\"not today\")"), "{}", last.message);
}

/// A deploy cut short resumes without rewriting the request, and a newer release never
/// supersedes the promoted deploy.
#[tokio::test]
async fn a_promotion_deploy_cut_short_resumes_and_a_newer_release_leaves_it_alone() {
    use super::promote::{Advanced, Promote};
    use crate::domain::promotion::SnapshotState;
    use crate::fakes::UpdateFailure;
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let (_, notice) = world.mail.sent().remove(0);
    let request = world.records.approvals().remove(0);
    let now = Utc::now();
    let mut approved = request
        .cast(
            &token_in(&notice.message),
            crate::domain::approval::Verdict::Approve,
            Default::default(),
            now,
        )
        .unwrap();
    approved.version += 1;
    assert!(world.records.save_approval(&approved).await.unwrap());
    let rds = FakeSnapshots::default();
    let promote = Promote {
        pipeline: fixture_pipeline(),
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds: rds.clone(),
        notifier: world.notifier.clone(),
    };
    promote
        .advance(&approved.id, now, now + TimeDelta::seconds(30))
        .await
        .unwrap();
    rds.finish(SnapshotState::Available);
    promote
        .advance(&approved.id, now, now + TimeDelta::seconds(30))
        .await
        .unwrap();

    let later = now + TimeDelta::minutes(6);
    world.ecs.fail_updates(Some(UpdateFailure::Refused));
    assert!(
        promote
            .advance(&approved.id, later, later + TimeDelta::seconds(30))
            .await
            .is_err()
    );
    let started = world.records.approvals().remove(0).version;
    assert!(
        promote
            .advance(&approved.id, later, later + TimeDelta::seconds(30))
            .await
            .is_err()
    );
    assert_eq!(
        world.records.approvals()[0].version,
        started,
        "a resumed deploy writes nothing"
    );
    world.ecs.fail_updates(None);
    let deployed = promote
        .advance(&approved.id, later, later + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(matches!(deployed, Advanced::Deployed { services } if services.len() == 2));

    world.staging_ended(2, Status::Succeeded);
    world.push(&release("v1.1.0", 2, 30)).await.unwrap();
    let v1: Vec<_> = world
        .prod_records()
        .into_iter()
        .filter(|d| d.image.tag.as_str() == "v1.0.0")
        .collect();
    assert!(v1.iter().all(|d| d.status == Status::Deploying), "{v1:?}");
}

/// What gives a promotion up, and what does not.
#[tokio::test]
async fn a_refused_snapshot_or_a_deleted_service_gives_the_promotion_up_and_says_what_deployed() {
    use super::promote::{Advanced, Promote};
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = Promote {
        pipeline: fixture_pipeline(),
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds: rds.clone(),
        notifier: world.notifier.clone(),
    };
    let now = Utc::now();
    let soon = now + TimeDelta::seconds(30);

    // RDS refuses the snapshot (here: it fails): no deploy, records FAILED, told once.
    let first = approved(&world, 1, 0).await;
    promote.advance(&first, now, soon).await.unwrap();
    rds.finish(SnapshotState::Failed {
        why: "quota exceeded".into(),
    });
    assert!(
        matches!(promote.advance(&first, now, soon).await.unwrap(), Advanced::Failed { why } if why.contains("quota exceeded"))
    );
    let v1: Vec<_> = world
        .prod_records()
        .into_iter()
        .filter(|d| d.image.tag.as_str() == "v1.0.0")
        .collect();
    assert!(v1.iter().all(|d| d.status == Status::Failed), "{v1:?}");
    assert!(
        matches!(
            promote.advance(&first, now, soon).await.unwrap(),
            Advanced::Nothing { .. }
        ),
        "closed once"
    );
    let failed_notices = world
        .notifier
        .published()
        .into_iter()
        .filter(|n| n.subject.ends_with("not deployed"))
        .count();
    assert_eq!(failed_notices, 1);

    // The second service was deleted: the first deploys, then the promotion gives up, naming it.
    let second = approved(&world, 2, 30).await;
    promote.advance(&second, now, soon).await.unwrap();
    rds.finish(SnapshotState::Available);
    promote.advance(&second, now, soon).await.unwrap();
    world
        .ecs
        .delete_service(&cluster("prod"), &ServiceName::parse("worker-service").unwrap());
    let later = now + TimeDelta::minutes(6);
    let given_up = promote
        .advance(&second, later, later + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(
        matches!(&given_up, Advanced::Failed { why } if why.contains("worker-service") && why.contains("already deploying: backend-service")),
        "{given_up:?}"
    );
    let v2: Vec<_> = world
        .prod_records()
        .into_iter()
        .filter(|d| d.image.tag.as_str() == "v2.0.0")
        .collect();
    let statuses: Vec<_> = v2.iter().map(|d| (d.service.to_string(), d.status)).collect();
    assert!(
        statuses.contains(&("backend-service".into(), Status::Deploying)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("worker-service".into(), Status::Failed)),
        "{statuses:?}"
    );
}

/// A DB in its backup window puts the snapshot off (no write each minute); once it is free the
/// snapshot is taken, and the team was told of the approval once.
#[tokio::test]
async fn a_busy_db_puts_the_snapshot_off_until_it_is_free() {
    use super::promote::Advanced;
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let id = approved(&world, 1, 0).await;
    let now = Utc::now();
    let soon = now + TimeDelta::seconds(30);

    rds.busy(Some("backing-up"));
    promote.advance(&id, now, soon).await.unwrap();
    let put_off = world.records.approvals().remove(0);
    let snapshots = &put_off.promotion.as_ref().unwrap().snapshots;
    assert!(
        matches!(&snapshots[0].state, SnapshotState::NotStarted { why } if why.ends_with("is backing-up")),
        "{snapshots:?}"
    );
    assert!(rds.taken().is_empty());
    promote.advance(&id, now + TimeDelta::minutes(1), soon).await.unwrap();
    assert_eq!(
        world.records.approvals()[0].version,
        put_off.version,
        "still busy: nothing written"
    );

    rds.busy(None);
    assert_eq!(
        promote.advance(&id, now + TimeDelta::minutes(2), soon).await.unwrap(),
        Advanced::Snapshotting { snapshots: 1 }
    );
    assert_eq!(rds.taken().len(), 1);
    let promotion = world.records.approvals()[0].promotion.clone().unwrap();
    assert_eq!(promotion.snapshots[0].state, SnapshotState::Creating);
    assert_eq!(world.subjects(), ["v1.0.0 of backend to prod: approved, backing up"]);
}

/// A request whose stage left the pipeline file is never deployed: an approved one gives up.
#[tokio::test]
async fn an_approved_request_whose_stage_left_the_pipeline_gives_up() {
    use super::promote::Advanced;
    let world = World::new();
    let id = approved(&world, 1, 0).await;
    let renamed = Pipeline::parse(
        &include_str!("../../../tests/fixtures/three-stages.toml")
            .replace("name = \"prod\"", "name = \"production\"")
            .replace("stage = \"prod\"", "stage = \"production\""),
    )
    .unwrap();
    let promote = world.promoter(renamed, &FakeSnapshots::default());
    let now = Utc::now();
    let advanced = promote
        .sweep(now + TimeDelta::minutes(6), now + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(advanced[0].0, id.to_string());
    assert!(
        matches!(&advanced[0].1, Advanced::Failed { why } if why.starts_with("stage prod is no longer in the pipeline file")),
        "{advanced:?}"
    );
    assert!(
        world
            .prod_records_of("v1.0.0")
            .iter()
            .all(|d| d.status == Status::Failed)
    );
    assert_eq!(world.subjects(), ["v1.0.0 of backend to prod: not deployed"]);
    assert!(
        promote
            .sweep(now, now + TimeDelta::seconds(30))
            .await
            .unwrap()
            .is_empty(),
        "out of flight"
    );
}

/// The deploying notice goes out before the deploy is recorded: a publish that fails leaves the
/// request in flight, and the next sweep tells the team and records it, without deploying again.
#[tokio::test]
async fn the_deploying_notice_a_failed_publish_held_back_goes_out_with_the_next_sweep() {
    use super::promote::Advanced;
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let id = approved(&world, 1, 0).await;
    let now = Utc::now();
    promote.advance(&id, now, now + TimeDelta::seconds(30)).await.unwrap();
    rds.finish(SnapshotState::Available);
    assert!(matches!(
        promote.advance(&id, now, now + TimeDelta::seconds(30)).await.unwrap(),
        Advanced::Waiting { .. }
    ));
    let later = now + TimeDelta::minutes(6);
    let deadline = later + TimeDelta::seconds(30);

    world.notifier.fail(true);
    let swept = promote.sweep(later, deadline).await.unwrap();
    assert!(matches!(&swept[0].1, Advanced::Unfinished { .. }), "{swept:?}");
    assert!(world.prod_records().iter().all(|d| d.status == Status::Deploying));
    assert!(
        world.records.approvals()[0]
            .promotion
            .as_ref()
            .unwrap()
            .deployed_at
            .is_none()
    );
    let revisions = world.ecs.revisions().len();
    world.notifier.fail(false);
    let swept = promote.sweep(later, deadline).await.unwrap();
    assert!(
        matches!(&swept[0].1, Advanced::Deployed { services } if services.len() == 2),
        "{swept:?}"
    );
    assert_eq!(world.ecs.revisions().len(), revisions, "deployed once");
    assert!(
        promote.sweep(later, deadline).await.unwrap().is_empty(),
        "out of flight"
    );
    assert_eq!(
        world.subjects(),
        [
            "v1.0.0 of backend to prod: approved, backing up",
            "v1.0.0 of backend to prod: backed up",
            "v1.0.0 of backend to prod: deploying"
        ],
        "each once"
    );
}

/// An older approved release whose wait outlasts a newer one's deploy is superseded, never
/// deployed over it.
#[tokio::test]
async fn an_older_approved_release_overtaken_by_a_newer_deploy_is_superseded() {
    use super::promote::Advanced;
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let now = Utc::now();
    let soon = now + TimeDelta::seconds(30);
    let older = approved(&world, 1, 0).await;
    promote.advance(&older, now, soon).await.unwrap();
    // v2 is pushed while v1 waits: an approved release is not superseded by a push.
    let newer = approved(&world, 2, 30).await;
    promote.advance(&newer, now, soon).await.unwrap();
    rds.finish(SnapshotState::Available);

    let later = now + TimeDelta::minutes(6);
    let deadline = later + TimeDelta::seconds(30);
    assert!(
        matches!(promote.advance(&newer, later, deadline).await.unwrap(), Advanced::Deployed { services } if services.len() == 2)
    );
    let running = world
        .ecs
        .running(&cluster("prod"), &ServiceName::parse("backend-service").unwrap());
    let given_up = promote.advance(&older, later, deadline).await.unwrap();
    assert!(
        matches!(&given_up, Advanced::Failed { why } if why.contains("a newer release took its place")),
        "{given_up:?}"
    );
    assert!(
        world
            .prod_records_of("v1.0.0")
            .iter()
            .all(|d| d.status == Status::Superseded)
    );
    assert_eq!(
        world
            .ecs
            .running(&cluster("prod"), &ServiceName::parse("backend-service").unwrap()),
        running,
        "v2 still runs"
    );
}

/// A promotion whose UpdateService answer was lost leaves its records APPROVED: the ECS
/// ending adopts them as DEPLOYING, and the promotion's retry finds the deploy done.
#[tokio::test]
async fn an_ecs_ending_adopts_a_promoted_deploy_whose_answer_was_lost() {
    use super::promote::Advanced;
    use super::restore::Restorer;
    use super::track_deployment::{TrackDeployment, TrackResponse};
    use crate::domain::promotion::SnapshotState;
    use crate::fakes::UpdateFailure;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let id = approved(&world, 1, 0).await;
    let now = Utc::now();
    promote.advance(&id, now, now + TimeDelta::seconds(30)).await.unwrap();
    rds.finish(SnapshotState::Available);
    let later = now + TimeDelta::minutes(6);
    let deadline = later + TimeDelta::seconds(30);

    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    assert!(promote.advance(&id, later, deadline).await.is_err());
    world.ecs.fail_updates(None);
    let backend = ServiceName::parse("backend-service").unwrap();
    let claimed = world
        .prod_records_of("v1.0.0")
        .into_iter()
        .find(|d| d.service == backend)
        .unwrap();
    assert_eq!(claimed.status, Status::Approved);
    let ecs_deployment = world.ecs.last_deployment(&cluster("prod"), &backend);

    let tracker = TrackDeployment {
        pipeline: fixture_pipeline(),
        restorer: Restorer {
            records: world.records.clone(),
            ecs: world.ecs.clone(),
            notifier: world.notifier.clone(),
        },
    };
    let ended: crate::events::EcsDeploymentEvent = serde_json::from_value(json!({
        "version": "0", "id": "2", "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
        "account": "123456789012", "time": Utc::now().to_rfc3339(), "region": "us-east-1",
        "resources": ["arn:aws:ecs:us-east-1:123456789012:service/social-analytics-prod/backend-service"],
        "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": ecs_deployment,
                   "updatedAt": Utc::now().to_rfc3339(), "reason": "done"}
    }))
    .unwrap();
    let response = tracker
        .handle_event(&ended, Utc::now() + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(
        matches!(&response, TrackResponse::Recorded { deployment_id, status, .. } if *deployment_id == claimed.id.to_string() && status == "SUCCEEDED"),
        "{response:?}"
    );

    let retried = promote.advance(&id, later, deadline).await.unwrap();
    assert!(
        matches!(&retried, Advanced::Deployed { services } if services.len() == 2),
        "{retried:?}"
    );
    let revisions = world.ecs.revisions().len();
    assert!(matches!(
        promote.advance(&id, later, deadline).await.unwrap(),
        Advanced::Nothing { .. }
    ));
    assert_eq!(world.ecs.revisions().len(), revisions, "nothing deployed twice");
    let statuses: Vec<_> = world.prod_records_of("v1.0.0").into_iter().map(|d| d.status).collect();
    assert!(statuses.contains(&Status::Succeeded), "{statuses:?}");
}

/// A sweep goes on past a request whose step fails, reports it unfinished, and the next sweep
/// closes it: the records once, the notice once.
#[tokio::test]
async fn a_sweep_reports_a_failed_close_unfinished_and_the_next_sweep_finishes_it_once() {
    use super::promote::Advanced;
    let world = World::new();
    let promote = world.promoter(fixture_pipeline(), &FakeSnapshots::default());
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let request = world.records.approvals().remove(0);
    let deadline = Utc::now() + TimeDelta::seconds(30);

    world.notifier.fail(true);
    let swept = promote.sweep(request.expires_at, deadline).await.unwrap();
    assert!(
        matches!(&swept[0].1, Advanced::Unfinished { error } if error.contains("Publish")),
        "{swept:?}"
    );
    assert!(world.prod_records().iter().all(|d| d.status == Status::Expired));
    assert_eq!(world.records.approvals()[0].closed_at, None, "still in flight");

    world.notifier.fail(false);
    let swept = promote.sweep(request.expires_at, deadline).await.unwrap();
    assert_eq!(
        swept[0].1,
        Advanced::Closed {
            status: ApprovalStatus::Expired
        }
    );
    assert!(world.records.approvals()[0].closed_at.is_some());
    assert_eq!(world.subjects(), ["v1.0.0 of backend to prod: approval expired"]);
    assert!(promote.sweep(request.expires_at, deadline).await.unwrap().is_empty());
}

/// A rejected release's digest may ask again under a new tag: a new request, new links; the
/// rejected one stays rejected.
#[tokio::test]
async fn a_rejected_digest_asks_again_under_a_new_tag() {
    use crate::domain::approval::Verdict;
    let world = World::new();
    let promote = world.promoter(fixture_pipeline(), &FakeSnapshots::default());
    world.staging_ended(1, Status::Succeeded);
    world.push(&release("v1.0.0", 1, 0)).await.unwrap();
    let (_, notice) = world.mail.sent().pop().unwrap();
    let open = world.records.approvals().remove(0);
    let mut rejected = open
        .cast(
            &token_in(&notice.message),
            Verdict::Reject,
            Default::default(),
            Utc::now(),
        )
        .unwrap();
    rejected.version += 1;
    assert!(world.records.save_approval(&rejected).await.unwrap());
    let now = Utc::now();
    promote
        .advance(&open.id, now, now + TimeDelta::seconds(30))
        .await
        .unwrap();
    let mails = world.mail.sent().len();

    world.push(&release("v1.0.1", 1, 40)).await.unwrap();
    let again = world
        .records
        .approvals()
        .into_iter()
        .find(|r| r.image.tag.as_str() == "v1.0.1")
        .expect("a new request");
    assert_eq!(again.status, ApprovalStatus::AwaitingApproval);
    assert_eq!(again.services.len(), 2);
    assert_eq!(world.mail.sent().len(), mails + 2, "a link to each approver");
    assert!(
        world
            .prod_records_of("v1.0.0")
            .iter()
            .all(|d| d.status == Status::Rejected)
    );
    assert!(
        world
            .prod_records_of("v1.0.1")
            .iter()
            .all(|d| d.status == Status::AwaitingApproval)
    );
}

/// Before it deploys, an approved release is checked again: it deploys whole (a service whose
/// record a newer push superseded meanwhile stops it), and only while staging still vouches
/// for its digest (rolled back there since stops it). Nothing deploys; the team is told why.
#[tokio::test]
async fn an_approved_release_deploys_whole_and_only_while_staging_vouches_for_it() {
    use super::promote::Advanced;
    use crate::domain::promotion::SnapshotState;
    let rds = FakeSnapshots::default();
    let backend = ServiceName::parse("backend-service").unwrap();
    let later = Utc::now() + TimeDelta::minutes(6);
    let deadline = later + TimeDelta::seconds(30);

    let split = World::new();
    let promote = split.promoter(fixture_pipeline(), &rds);
    let id = approved(&split, 1, 0).await;
    promote.advance(&id, Utc::now(), deadline).await.unwrap();
    rds.finish(SnapshotState::Available);
    let record = split
        .prod_records_of("v1.0.0")
        .into_iter()
        .find(|d| d.service == backend)
        .unwrap();
    let superseded = record.transition(Status::Superseded, Utc::now()).unwrap();
    assert!(
        split
            .records
            .save_transition(&superseded, Status::AwaitingApproval)
            .await
            .unwrap()
    );
    let given_up = promote.advance(&id, later, deadline).await.unwrap();
    assert!(
        matches!(&given_up, Advanced::Failed { why } if why.contains("could not deploy whole")),
        "{given_up:?}"
    );
    assert_eq!(split.ecs.running(&cluster("prod"), &backend), "td:1");
    let statuses: Vec<_> = split.prod_records_of("v1.0.0").iter().map(|d| d.status).collect();
    assert!(
        statuses.contains(&Status::Superseded) && statuses.contains(&Status::Failed),
        "{statuses:?}"
    );

    let rolled_back = World::new();
    let rds = FakeSnapshots::default();
    let promote = rolled_back.promoter(fixture_pipeline(), &rds);
    let id = approved(&rolled_back, 1, 0).await;
    promote.advance(&id, Utc::now(), deadline).await.unwrap();
    rds.finish(SnapshotState::Available);
    rolled_back.staging_ended(1, Status::RolledBack);
    let given_up = promote.advance(&id, later, deadline).await.unwrap();
    assert!(
        matches!(&given_up, Advanced::Failed { why } if why.starts_with("staging no longer vouches for this digest") && why.contains("ROLLED_BACK")),
        "{given_up:?}"
    );
    assert_eq!(rolled_back.ecs.running(&cluster("prod"), &backend), "td:1");
    assert!(
        rolled_back
            .prod_records_of("v1.0.0")
            .iter()
            .all(|d| d.status == Status::Failed)
    );
    assert_eq!(
        rolled_back.subjects().last().map(String::as_str),
        Some("v1.0.0 of backend to prod: not deployed")
    );
}

/// A stage that takes no snapshot is told of the approval too: who approved, when it deploys.
#[tokio::test]
async fn an_approval_without_snapshots_is_told_with_its_deploy_time() {
    use super::promote::Advanced;
    let world = World::new();
    let without_snapshots = Pipeline::parse(
        &include_str!("../../../tests/fixtures/three-stages.toml")
            .replace("snapshot_before_deploy = [\"social-analytics-db\"]", ""),
    )
    .unwrap();
    let promote = world.promoter(without_snapshots, &FakeSnapshots::default());
    let id = approved(&world, 1, 0).await;
    let now = Utc::now();
    assert!(matches!(
        promote.advance(&id, now, now + TimeDelta::seconds(30)).await.unwrap(),
        Advanced::Waiting { .. }
    ));
    let told = world.notifier.published();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].subject, "v1.0.0 of backend to prod: approved");
    assert!(
        told[0].message.contains("Approved by release-manager@example.com")
            || told[0].message.contains("Approved by oncall-lead@example.com"),
        "{}",
        told[0].message
    );
    assert!(told[0].message.contains("The deploy starts at "), "{}", told[0].message);
}

/// A snapshot an earlier try made, available by the time the approval is begun again, is
/// adopted: the team is told it is backed up all the same.
#[tokio::test]
async fn a_begin_that_adopts_an_available_snapshot_tells_it_backed_up() {
    use crate::domain::names::DbInstanceId;
    use crate::domain::promotion::{SnapshotId, SnapshotState};
    use crate::ports::Snapshots;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let id = approved(&world, 1, 0).await;
    let db = DbInstanceId::parse("social-analytics-db").unwrap();
    rds.take_snapshot(&db, &SnapshotId::before_deploy(&id, &db), &[])
        .await
        .unwrap();
    rds.finish(SnapshotState::Available);
    let now = Utc::now();
    promote.advance(&id, now, now + TimeDelta::seconds(30)).await.unwrap();
    assert_eq!(
        world.subjects(),
        [
            "v1.0.0 of backend to prod: approved, backing up",
            "v1.0.0 of backend to prod: backed up"
        ]
    );
}

/// An SNS outage holds up no step of a promotion: the snapshot is taken and found ready and
/// the deploy goes out at its time, past the snapshot timeout counted from the approval; the
/// notices wait in the outbox, and the request leaves the sweep only once they are out.
#[tokio::test]
async fn an_sns_outage_holds_up_no_promotion_step_and_every_notice_goes_out_after() {
    use super::promote::Advanced;
    use crate::domain::promotion::SnapshotState;
    let world = World::new();
    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let id = approved(&world, 1, 0).await;
    world.notifier.fail(true);
    let now = Utc::now();
    let soon = |at: chrono::DateTime<Utc>| at + TimeDelta::seconds(30);
    promote.advance(&id, now, soon(now)).await.unwrap();
    assert_eq!(rds.taken().len(), 1, "the snapshot is asked for while SNS is down");
    rds.finish(SnapshotState::Available);
    let late = now + TimeDelta::minutes(70);
    let deploying = promote.advance(&id, late, soon(late)).await;
    assert!(deploying.is_err(), "the deploy's notice cannot go out: {deploying:?}");
    for record in world.prod_records_of("v1.0.0") {
        assert_eq!(record.status, Status::Deploying, "deployed while SNS was down");
    }
    assert!(world.subjects().is_empty());
    let request = world.records.approvals().remove(0);
    assert!(request.in_flight(), "kept in the sweep until its notices are out");

    world.notifier.fail(false);
    let swept = promote.sweep(late, soon(late)).await.unwrap();
    assert!(matches!(&swept[0].1, Advanced::Deployed { .. }), "{swept:?}");
    assert_eq!(
        world.subjects(),
        [
            "v1.0.0 of backend to prod: approved, backing up",
            "v1.0.0 of backend to prod: backed up",
            "v1.0.0 of backend to prod: deploying",
        ]
    );
    assert!(promote.sweep(late, soon(late)).await.unwrap().is_empty());
}

/// A release whose second service is missing from the account never lists its services (the
/// push fails, permanently): its request expires, and the record made for the first service
/// is closed with it, so the digest can ask again once the account is fixed.
#[tokio::test]
async fn a_release_that_failed_midway_leaves_no_record_awaiting_for_ever() {
    use super::promote::Advanced;
    let world = World::new();
    world.staging_ended(1, Status::Succeeded);
    world
        .ecs
        .delete_service(&cluster("prod"), &ServiceName::parse(SERVICES[1]).unwrap());
    assert!(world.push(&release("v1.0.0", 1, 0)).await.is_err());
    let request = world.records.approvals().remove(0);
    assert!(request.services.is_empty(), "{request:?}");
    let awaiting: Vec<Status> = world.prod_records().iter().map(|d| d.status).collect();
    assert_eq!(awaiting, [Status::AwaitingApproval]);

    let rds = FakeSnapshots::default();
    let promote = world.promoter(fixture_pipeline(), &rds);
    let after = request.expires_at + TimeDelta::minutes(1);
    let swept = promote.sweep(after, after + TimeDelta::seconds(30)).await.unwrap();
    assert!(
        matches!(
            &swept[0].1,
            Advanced::Closed {
                status: ApprovalStatus::Expired
            }
        ),
        "{swept:?}"
    );
    let closed: Vec<Status> = world.prod_records().iter().map(|d| d.status).collect();
    assert_eq!(closed, [Status::Expired]);
    assert!(
        world.notifier.published()[0]
            .message
            .contains("Its links never went out")
    );
}

/// A deploy record `dep-<n>` of prod's `service` (revision `td:<n>`), SUCCEEDED.
fn prod_deploy(n: u8, service: &str) -> Deployment {
    let mut record = deployment(n, Kind::Deploy, Status::Succeeded, Some(u32::from(n)));
    record.stage = StageName::parse("prod").unwrap();
    record.cluster = cluster("prod");
    record.service = ServiceName::parse(service).unwrap();
    record
}

/// Points prod's `service` at `record`.
fn runs(world: &World, service: &str, record: &Deployment) {
    world.records.set_state(
        &cluster("prod"),
        &ServiceName::parse(service).unwrap(),
        crate::domain::deployment::ServiceState {
            latest: Some(record.reference()),
            ..Default::default()
        },
    );
}

/// Prod's backend-service ran `dep-5` (td:5), now runs `dep-7`; worker-service ran `dep-15`,
/// now runs `dep-17`. The operator's rollback of both to the `dep-5` version (`rollback_request`
/// with worker-service's target added), with `verdict` from its first approver, and a forged
/// approve from someone the file does not list (what the page's role can write).
async fn prod_rollback_decided(world: &World, verdict: crate::domain::approval::Verdict) -> ApprovalId {
    use crate::domain::approval::{Ballot, RollbackService, Vote};
    for (n, service) in [
        (5, "backend-service"),
        (7, "backend-service"),
        (15, "worker-service"),
        (17, "worker-service"),
    ] {
        world.records.insert(prod_deploy(n, service));
    }
    runs(world, "backend-service", &prod_deploy(7, "backend-service"));
    runs(world, "worker-service", &prod_deploy(17, "worker-service"));
    let mut request = crate::domain::fixtures::rollback_request(1);
    let version = request.image.uri.clone();
    request.rollback.as_mut().unwrap().targets.push(RollbackService {
        service: ServiceName::parse("worker-service").unwrap(),
        from: DeploymentId::from_stored("dep-17".into()),
        target: DeploymentId::from_stored("dep-15".into()),
        task_definition: "td:15".into(),
        image: version,
    });
    request.services.push(crate::domain::approval::ReleaseService {
        service: ServiceName::parse("worker-service").unwrap(),
        deployment: DeploymentId::from_stored("dep-17".into()),
        running_now: Some("td:17".into()),
    });
    let token = ApprovalToken::from_random([9; 32]);
    let approver = request.ballots[0].approver.clone();
    request.issue_link(&approver, &token);
    let mut decided = request
        .cast(&token, verdict, Default::default(), crate::domain::fixtures::at(1))
        .unwrap();
    // A listed approver's vote the page wrote without a proof.
    decided.ballots[1].vote = Some(Vote {
        verdict: crate::domain::approval::Verdict::Approve,
        at: crate::domain::fixtures::at(1),
        proof: None,
        voter: Default::default(),
    });
    decided.ballots.push(Ballot {
        approver: crate::domain::names::Approver::parse("cto@example.com").unwrap(),
        token_hashes: Vec::new(),
        sent_at: None,
        vote: Some(Vote {
            verdict: crate::domain::approval::Verdict::Approve,
            at: crate::domain::fixtures::at(1),
            proof: None,
            voter: crate::domain::approval::Voter {
                comment: "forged".into(),
                ..Default::default()
            },
        }),
    });
    assert!(world.records.create_approval(&decided).await.unwrap());
    decided.id
}

/// An approved rollback request rolls every service back under its lock (record, quarantine,
/// notice), once, however often promote looks; a rejected one changes no record; one approved
/// after a service moved on rolls none back.
#[tokio::test]
async fn an_approved_operator_rollback_restores_every_service_once_and_a_rejected_one_nothing() {
    use super::promote::Advanced;
    use crate::domain::approval::Verdict;
    let (backend, worker) = (
        ServiceName::parse("backend-service").unwrap(),
        ServiceName::parse("worker-service").unwrap(),
    );
    let now = Utc::now();
    let deadline = now + TimeDelta::seconds(30);

    let world = World::new();
    let id = prod_rollback_decided(&world, Verdict::Approve).await;
    let promote = world.promoter(fixture_pipeline(), &FakeSnapshots::default());
    let rolled = promote.advance(&id, now, deadline).await.unwrap();
    assert_eq!(
        rolled,
        Advanced::Deployed {
            services: vec!["backend-service".into(), "worker-service".into()]
        },
        "no snapshot, no five-minute wait"
    );
    assert_eq!(world.ecs.running(&cluster("prod"), &backend), "td:5");
    assert_eq!(world.ecs.running(&cluster("prod"), &worker), "td:15");
    let rollback = world
        .records
        .get_deployment(&DeploymentId::for_rollback(&DeploymentId::from_stored("dep-7".into())))
        .await
        .unwrap()
        .expect("a rollback record of dep-7");
    let Kind::Rollback { cause, .. } = &rollback.kind else {
        panic!("{:?}", rollback.kind)
    };
    assert!(
        cause.contains("assumed-role/oncall/jane")
            && cause.contains("approved by release-manager@example.com in")
            && cause.contains(id.as_str()),
        "{cause}"
    );
    assert!(
        !cause.contains("cto@") && !cause.contains("forged") && !cause.contains("oncall-lead"),
        "only proven votes of listed approvers: {cause}"
    );
    assert!(
        rollback.requested_at > crate::domain::fixtures::at(0),
        "dated when it ran, not when asked"
    );
    assert_eq!(
        world.records.quarantined(&cluster("prod"), &backend).await.unwrap(),
        [digest(7)]
    );
    assert_eq!(
        world.records.quarantined(&cluster("prod"), &worker).await.unwrap(),
        [digest(17)]
    );
    let told = world.subjects();
    assert!(
        told.iter().any(|s| s.starts_with("Rolled back prod/backend-service")),
        "{told:?}"
    );
    assert!(
        told.iter()
            .any(|s| s == "rollback of backend in prod to latest: rolled back"),
        "{told:?}"
    );

    // Looked at again, and again as if the crash came before the request was marked done.
    assert!(matches!(
        promote.advance(&id, now, deadline).await.unwrap(),
        Advanced::Nothing { .. }
    ));
    let mut unmarked = world.records.get_approval(&id).await.unwrap().unwrap();
    unmarked.promotion.as_mut().unwrap().deployed_at = None;
    unmarked.version += 1;
    assert!(world.records.save_approval(&unmarked).await.unwrap());
    let retried = promote.advance(&id, now, deadline).await.unwrap();
    assert!(
        matches!(&retried, Advanced::Deployed { services } if services.len() == 2),
        "{retried:?}"
    );
    assert_eq!(
        world.ecs.revisions().len(),
        0,
        "nothing registered: the targets are active"
    );
    let rollbacks = world
        .records
        .deployments()
        .into_iter()
        .filter(|d| matches!(d.kind, Kind::Rollback { .. }))
        .count();
    assert_eq!(rollbacks, 2, "one per service");

    // Rejected: closed without touching a record, even one named like the version's push.
    let rejected = World::new();
    let id = prod_rollback_decided(&rejected, Verdict::Reject).await;
    let request = rejected.records.get_approval(&id).await.unwrap().unwrap();
    let mut lookalike = prod_deploy(5, "backend-service");
    lookalike.id = DeploymentId::for_push(&request.image, &request.stage, &request.cluster, &backend);
    lookalike.status = Status::AwaitingApproval;
    rejected.records.insert(lookalike.clone());
    let promote = rejected.promoter(fixture_pipeline(), &FakeSnapshots::default());
    assert_eq!(
        promote.advance(&id, now, deadline).await.unwrap(),
        Advanced::Closed {
            status: ApprovalStatus::Rejected
        }
    );
    assert_eq!(rejected.ecs.running(&cluster("prod"), &backend), "td:1");
    assert_eq!(
        rejected
            .records
            .get_deployment(&lookalike.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::AwaitingApproval
    );
    assert!(
        rejected
            .subjects()
            .iter()
            .any(|s| s == "rollback of backend in prod to latest: rejected")
    );

    // Approved after worker-service moved on (a deploy since): the approvers saw another
    // state, and the rollback applies whole or not at all.
    let moved = World::new();
    let id = prod_rollback_decided(&moved, Verdict::Approve).await;
    let mut newer = prod_deploy(18, "worker-service");
    newer.status = Status::Deploying;
    moved.records.insert(newer.clone());
    runs(&moved, "worker-service", &newer);
    let promote = moved.promoter(fixture_pipeline(), &FakeSnapshots::default());
    let refused = promote.advance(&id, now, deadline).await.unwrap();
    assert!(
        matches!(&refused, Advanced::Failed { why } if why.contains("worker-service moved on to dep-18") && why.contains("nothing was rolled back")),
        "{refused:?}"
    );
    assert_eq!(
        moved.ecs.running(&cluster("prod"), &backend),
        "td:1",
        "backend-service stays too"
    );
    assert_eq!(
        moved.records.get_deployment(&newer.id).await.unwrap().unwrap().status,
        Status::Deploying
    );
    assert!(moved.records.deployments().iter().all(|d| d.kind == Kind::Deploy));

    // Approved after an alarm rolled backend-service back from the same deployment (to its
    // last known good, not this version): not this request's rollback, so none is done.
    let alarmed = World::new();
    let id = prod_rollback_decided(&alarmed, Verdict::Approve).await;
    let mut by_alarm = prod_deploy(6, "backend-service");
    by_alarm.id = DeploymentId::for_rollback(&DeploymentId::from_stored("dep-7".into()));
    by_alarm.kind = Kind::Rollback {
        of: DeploymentId::from_stored("dep-7".into()),
        cause: "alarm backend-prod-5xx went into ALARM".into(),
    };
    alarmed.records.insert(by_alarm.clone());
    runs(&alarmed, "backend-service", &by_alarm);
    let promote = alarmed.promoter(fixture_pipeline(), &FakeSnapshots::default());
    let refused = promote.advance(&id, now, deadline).await.unwrap();
    assert!(
        matches!(&refused, Advanced::Failed { why } if why.contains(&format!("backend-service moved on to {}", by_alarm.id))),
        "{refused:?}"
    );
    assert_eq!(
        alarmed.ecs.running(&cluster("prod"), &worker),
        "td:1",
        "worker-service stays too"
    );
}
