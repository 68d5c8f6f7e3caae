//! Handler logic over the in-memory ports: locks, time limits, lost answers, the outbox,
//! alarm scope and history paging, fast and without moto. The moto tests (tests/) are the
//! integration layer for the same handlers.

use super::deploy_on_push::{DeployOnPush, PushResponse, TargetOutcome};
use super::request_approval::ApprovalDesk;
use super::restore::{RestoreOutcome, Restorer};
use super::rollback_on_alarm::{AlarmResponse, RollbackOnAlarm};
use super::track_deployment::{TrackDeployment, TrackResponse};
use crate::domain::deployment::{Deployment, DeploymentId, Kind, ServiceState, Status};
use crate::domain::fixtures::{deployment, fixture_pipeline};
use crate::domain::names::{ClusterName, ServiceName};
use crate::domain::pipeline::Pipeline;
use crate::events::{AlarmEvent, EcrEvent, EcsDeploymentEvent};
use crate::fakes::{FakeAlarms, FakeApproverMail, FakeEcs, FakeNotifier, MemoryRecords, UpdateFailure};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lambda_runtime::Diagnostic;
use serde_json::json;

const DIGEST: &str = "sha256:4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19";

fn dev() -> ClusterName {
    ClusterName::parse("social-analytics-dev").unwrap()
}

fn svc(name: &str) -> ServiceName {
    ServiceName::parse(name).unwrap()
}

/// Dev's two services running `td:1` and `td:2`.
struct World {
    records: MemoryRecords,
    ecs: FakeEcs,
    notifier: FakeNotifier,
    alarms: FakeAlarms,
    mail: FakeApproverMail,
}

type Deployer = DeployOnPush<MemoryRecords, FakeEcs, FakeAlarms, FakeApproverMail, FakeNotifier>;

impl World {
    fn new() -> Self {
        let (dev, backend, worker) = (dev(), svc("backend-service"), svc("worker-service"));
        World {
            records: MemoryRecords::default(),
            ecs: FakeEcs::with_services(&[(&dev, &backend, "td:1"), (&dev, &worker, "td:2")]),
            notifier: FakeNotifier::default(),
            alarms: FakeAlarms::default(),
            mail: FakeApproverMail::default(),
        }
    }

    fn deployer(&self) -> Deployer {
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

    fn restorer(&self) -> Restorer<MemoryRecords, FakeEcs, FakeNotifier> {
        Restorer {
            records: self.records.clone(),
            ecs: self.ecs.clone(),
            notifier: self.notifier.clone(),
        }
    }

    fn tracker(&self) -> TrackDeployment<MemoryRecords, FakeEcs, FakeNotifier> {
        TrackDeployment {
            pipeline: fixture_pipeline(),
            restorer: self.restorer(),
        }
    }

    fn alarms(&self, pipeline: Pipeline) -> RollbackOnAlarm<MemoryRecords, FakeEcs, FakeNotifier> {
        RollbackOnAlarm {
            pipeline,
            restorer: self.restorer(),
        }
    }

    fn deployments_of(&self, service: &str) -> Vec<Deployment> {
        let mut of: Vec<_> = self
            .records
            .deployments()
            .into_iter()
            .filter(|d| d.service.as_str() == service)
            .collect();
        of.sort_by_key(|d| d.requested_at);
        of
    }
}

fn push(second: u32) -> EcrEvent {
    serde_json::from_value(json!({
        "version": "0", "id": "1", "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": format!("2026-11-22T10:00:{second:02}Z"), "region": "us-east-1",
        "resources": [],
        "detail": {"result": "SUCCESS", "repository-name": "social-analytics/backend",
                   "image-digest": DIGEST, "action-type": "PUSH", "image-tag": "latest"}
    }))
    .unwrap()
}

fn ecs_ended(name: &str, service: &str, ecs_deployment_id: &str) -> EcsDeploymentEvent {
    ecs_ended_in("social-analytics-dev", name, service, ecs_deployment_id)
}

fn ecs_ended_in(cluster: &str, name: &str, service: &str, ecs_deployment_id: &str) -> EcsDeploymentEvent {
    serde_json::from_value(json!({
        "version": "0", "id": "2", "detail-type": "ECS Deployment State Change", "source": "aws.ecs",
        "account": "123456789012", "time": stamp(Utc::now()), "region": "us-east-1",
        "resources": [format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}")],
        "detail": {"eventType": "INFO", "eventName": name, "deploymentId": ecs_deployment_id,
                   "updatedAt": stamp(Utc::now()), "reason": "circuit breaker"}
    }))
    .unwrap()
}

fn alarm(name: &str, at: DateTime<Utc>) -> AlarmEvent {
    serde_json::from_value(json!({
        "version": "0", "id": "3", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
        "account": "123456789012", "time": stamp(at), "region": "us-east-1", "resources": [],
        "detail": {"alarmName": name,
                   "state": {"value": "ALARM", "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()},
                   "previousState": {"value": "OK"}}
    }))
    .unwrap()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn deadline() -> DateTime<Utc> {
    Utc::now() + TimeDelta::seconds(30)
}

fn error_type(err: impl Into<Diagnostic>) -> String {
    err.into().error_type
}

fn deploying(response: &PushResponse) -> usize {
    let PushResponse::Handled { targets, .. } = response else {
        panic!("{response:?}")
    };
    targets
        .iter()
        .filter(|t| matches!(t.result, TargetOutcome::Deploying { .. }))
        .count()
}

#[tokio::test]
async fn a_service_another_handler_holds_hands_the_event_back_unchanged() {
    let world = World::new();
    world
        .records
        .hold_lock(&dev(), &svc("backend-service"), Utc::now() + TimeDelta::minutes(1));
    // A deadline 16 s away leaves one second to wait for the lock.
    let err = world
        .deployer()
        .handle_event(&push(0), Utc::now() + TimeDelta::seconds(16))
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "ServiceBusy");
    assert!(world.deployments_of("backend-service").is_empty());
    assert_eq!(world.ecs.running(&dev(), &svc("backend-service")), "td:1");
    // The other service was not blocked by it.
    assert_eq!(world.deployments_of("worker-service").len(), 1);
}

#[tokio::test]
async fn a_lock_whose_lease_ran_out_is_taken_over() {
    let world = World::new();
    world
        .records
        .hold_lock(&dev(), &svc("backend-service"), Utc::now() - TimeDelta::seconds(1));
    let response = world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    assert_eq!(deploying(&response), 2);
    assert_eq!(world.records.lock(&dev(), &svc("backend-service")), None, "released");
}

#[tokio::test]
async fn a_failed_lock_release_fails_the_event_but_what_was_done_stays_done() {
    let world = World::new();
    world.records.fail_releases(true);
    let first_deadline = deadline();
    let err = world
        .deployer()
        .handle_event(&push(0), first_deadline)
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "RecordsUnavailable");
    for service in ["backend-service", "worker-service"] {
        let [record] = world.deployments_of(service).try_into().unwrap();
        assert_eq!(record.status, Status::Deploying, "the deploy is recorded");
        // The lock stays until its lease runs out; then the retry takes it and repairs the
        // pointer the failed release did not move.
        let (_, until) = world.records.lock(&dev(), &svc(service)).unwrap();
        assert!(
            until <= first_deadline + TimeDelta::seconds(5),
            "a lease, not a lock held for good"
        );
        world
            .records
            .hold_lock(&dev(), &svc(service), Utc::now() - TimeDelta::seconds(1));
    }
    world.records.fail_releases(false);
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    for service in ["backend-service", "worker-service"] {
        let latest = world.records.state(&dev(), &svc(service)).latest.unwrap();
        assert_eq!(latest.id, world.deployments_of(service)[0].id);
    }
}

#[tokio::test]
async fn too_little_time_left_stops_before_update_service_and_the_retry_resumes() {
    let world = World::new();
    let err = world
        .deployer()
        .handle_event(&push(0), Utc::now() + TimeDelta::seconds(4))
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "OutOfTime");
    for service in ["backend-service", "worker-service"] {
        let [record] = world.deployments_of(service).try_into().unwrap();
        assert_eq!(record.status, Status::Requested);
        assert!(record.task_definition.is_some(), "registered and saved before stopping");
    }
    assert_eq!(
        world.ecs.running(&dev(), &svc("backend-service")),
        "td:1",
        "ECS untouched"
    );
    let revisions = world.ecs.revisions().len();

    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    assert_eq!(
        world.ecs.revisions().len(),
        revisions,
        "the retry used the saved revision"
    );
    let [record] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(record.status, Status::Deploying);
    assert_eq!(
        Some(world.ecs.running(&dev(), &svc("backend-service"))),
        record.task_definition
    );
}

#[tokio::test]
async fn an_update_applied_with_its_answer_and_check_lost_keeps_the_record_for_the_retry() {
    let world = World::new();
    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    world.deployer().handle_event(&push(0), deadline()).await.unwrap_err();
    let [record] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(record.status, Status::Requested, "kept: ECS may have moved");
    assert_eq!(
        Some(world.ecs.running(&dev(), &svc("backend-service"))),
        record.task_definition,
        "ECS did move"
    );

    world.ecs.fail_updates(None);
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    let [record] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(record.status, Status::Deploying);
    assert_eq!(
        record.ecs_deployment_id.as_deref(),
        Some("ecs-svc/1"),
        "adopted, not redeployed"
    );
    assert_eq!(world.ecs.revisions().len(), 2, "one revision per service");
}

#[tokio::test]
async fn an_ecs_ending_that_arrives_before_the_deploys_retry_still_lands_on_its_record() {
    let world = World::new();
    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    world.deployer().handle_event(&push(0), deadline()).await.unwrap_err();
    world.ecs.fail_updates(None);
    let requested = world.deployments_of("backend-service").remove(0);
    assert_eq!(requested.ecs_deployment_id, None);

    // ECS finishes the deployment the lost UpdateService started, before Lambda retries.
    let response = world
        .tracker()
        .handle_event(
            &ecs_ended("SERVICE_DEPLOYMENT_COMPLETED", "backend-service", "ecs-svc/1"),
            deadline(),
        )
        .await
        .unwrap();
    assert!(
        matches!(&response, TrackResponse::Recorded { deployment_id, status, .. }
            if *deployment_id == requested.id.to_string() && status == "SUCCEEDED"),
        "{response:?}"
    );
    let record = world.deployments_of("backend-service").remove(0);
    assert_eq!(record.ecs_deployment_id.as_deref(), Some("ecs-svc/1"));

    // The deploy's retry finds it done and points the service state at it.
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    let latest = world.records.state(&dev(), &svc("backend-service")).latest.unwrap();
    assert_eq!(latest.id, requested.id);
    assert_eq!(world.deployments_of("backend-service")[0].status, Status::Succeeded);
}

#[tokio::test]
async fn an_ending_for_a_deployment_ecs_no_longer_lists_waits_for_the_deploys_retry() {
    let world = World::new();
    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    world.deployer().handle_event(&push(0), deadline()).await.unwrap_err();
    world.ecs.fail_updates(None);
    let err = world
        .tracker()
        .handle_event(
            &ecs_ended("SERVICE_DEPLOYMENT_FAILED", "backend-service", "ecs-svc/77"),
            deadline(),
        )
        .await
        .unwrap_err();
    assert_eq!(error_type(err), "RecordPending");
    assert_eq!(world.deployments_of("backend-service")[0].status, Status::Requested);
}

#[tokio::test]
async fn a_failed_publish_never_holds_up_the_records_and_the_retry_sends_the_notice() {
    let world = World::new();
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    let bad = world.deployments_of("backend-service").remove(0);
    world.notifier.fail(true);
    let failed = ecs_ended(
        "SERVICE_DEPLOYMENT_FAILED",
        "backend-service",
        bad.ecs_deployment_id.as_deref().unwrap(),
    );
    let err = world.tracker().handle_event(&failed, deadline()).await.unwrap_err();
    assert_eq!(error_type(err), "NotifyFailed");
    let [deploy, rollback] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(deploy.status, Status::RolledBack);
    assert_eq!(rollback.status, Status::Deploying);
    assert_eq!(world.ecs.running(&dev(), &svc("backend-service")), "td:1");
    let state = world.records.state(&dev(), &svc("backend-service"));
    assert_eq!(state.latest.unwrap().id, rollback.id, "the pointer moved");
    assert_eq!(state.quarantined.len(), 1);
    let outbox = world.records.outbox();
    assert_eq!(outbox.len(), 2, "the failure and the rollback, kept: {outbox:?}");
    assert!(outbox.iter().all(|(_, e)| !e.sent));

    world.notifier.fail(false);
    world.tracker().handle_event(&failed, deadline()).await.unwrap();
    let mut subjects: Vec<String> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Deploy FAILED dev/backend-service: latest (td:100)",
            "Rolled back dev/backend-service: td:100 -> td:1"
        ]
    );
    assert!(world.records.outbox().iter().all(|(_, e)| e.sent));
    world.tracker().handle_event(&failed, deadline()).await.unwrap();
    assert_eq!(world.notifier.published().len(), 2, "each sent once");
}

#[tokio::test]
async fn a_digest_whose_deploy_failed_with_nothing_to_go_back_to_deploys_again_on_a_new_push() {
    let world = World::new();
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    // ECS failed it, and there was nothing to roll back to: a service this pipeline never
    // saw running before.
    for mut record in world.records.deployments() {
        record.status = Status::Failed;
        record.previous_task_definition = None;
        world.records.insert(record);
    }
    let again = world.deployer().handle_event(&push(30), deadline()).await.unwrap();
    assert_eq!(deploying(&again), 2, "{again:?}");
    let [failed, retried] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!((failed.status, retried.status), (Status::Failed, Status::Deploying));
    assert_eq!(retried.image.digest, failed.image.digest);
    // The very same push redelivered is still a duplicate.
    let duplicate = world.deployer().handle_event(&push(30), deadline()).await.unwrap();
    assert_eq!(deploying(&duplicate), 0);
}

/// A deploy of `service` that completed at `completed_at` and now runs `td:n`.
fn completed(n: u8, service: &str, requested_at: DateTime<Utc>) -> Deployment {
    let mut d = deployment(n, Kind::Deploy, Status::Succeeded, None);
    d.service = svc(service);
    d.id = DeploymentId::from_stored(format!("dep-{service}-{n}"));
    d.requested_at = requested_at;
    d.completed_at = Some(requested_at + TimeDelta::minutes(1));
    d
}

fn current(world: &World, d: &Deployment) {
    world.records.set_state(
        &d.cluster,
        &d.service,
        ServiceState {
            latest: Some(d.reference()),
            ..ServiceState::default()
        },
    );
}

#[tokio::test]
async fn an_alarm_rolls_back_only_the_application_it_guards() {
    let two_apps = Pipeline::parse(
        r#"
        [[application]]
        name = "backend"
        repository = "social-analytics/backend"
        services = [{ name = "backend-service", container = "api" }]

        [[application]]
        name = "frontend"
        repository = "social-analytics/frontend"
        services = [{ name = "web-service", container = "web" }]

        [[stage]]
        name = "dev"
        cluster = "social-analytics-dev"
        tags = "*"
        alarms.backend = ["backend-dev-5xx"]
        alarms.frontend = ["frontend-dev-5xx"]
        "#,
    )
    .unwrap();
    let (dev, backend, web) = (dev(), svc("backend-service"), svc("web-service"));
    let world = World {
        ecs: FakeEcs::with_services(&[(&dev, &backend, "td:2"), (&dev, &web, "td:2")]),
        ..World::new()
    };
    let earlier = Utc::now() - TimeDelta::minutes(10);
    for service in ["backend-service", "web-service"] {
        world.records.insert(completed(1, service, earlier));
        let bad = completed(2, service, earlier + TimeDelta::minutes(5));
        world.records.insert(bad.clone());
        current(&world, &bad);
    }

    let fired = Utc::now() - TimeDelta::seconds(5);
    let response = world
        .alarms(two_apps)
        .handle_event(&alarm("frontend-dev-5xx", fired), Utc::now(), deadline())
        .await
        .unwrap();
    let AlarmResponse::Handled {
        application, services, ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(application, "frontend");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].service, "web-service");
    assert!(matches!(&services[0].result, RestoreOutcome::RolledBack { to, .. } if to == "td:1"));
    assert_eq!(world.ecs.running(&dev, &web), "td:1");
    assert_eq!(
        world.ecs.running(&dev, &backend),
        "td:2",
        "the backend is not the frontend's alarm's"
    );
    assert_eq!(world.deployments_of("backend-service").len(), 2, "no rollback record");
}

fn assert_backend_rolled_back_to_td1(response: &AlarmResponse) {
    let AlarmResponse::Handled { services, .. } = response else {
        panic!("{response:?}")
    };
    let backend = services.iter().find(|s| s.service == "backend-service").unwrap();
    assert!(
        matches!(&backend.result, RestoreOutcome::RolledBack { to, .. } if to == "td:1"),
        "{response:?}"
    );
}

#[tokio::test]
async fn the_last_known_good_is_found_on_a_later_history_page() {
    let world = World::new();
    let start = Utc::now() - TimeDelta::hours(2);
    world.records.insert(completed(1, "backend-service", start));
    // 30 deploys since, none of which counts: each was superseded before ECS ran it.
    for n in 2..32u8 {
        let mut superseded = completed(n, "backend-service", start + TimeDelta::minutes(i64::from(n)));
        superseded.status = Status::Superseded;
        superseded.completed_at = None;
        world.records.insert(superseded);
    }
    let bad = completed(40, "backend-service", Utc::now() - TimeDelta::minutes(3));
    world.records.insert(bad.clone());
    current(&world, &bad);

    let response = world
        .alarms(fixture_pipeline())
        .handle_event(&alarm("backend-dev-5xx", Utc::now()), Utc::now(), deadline())
        .await
        .unwrap();
    assert_backend_rolled_back_to_td1(&response);
}

#[tokio::test]
async fn a_success_is_announced_where_the_stage_asks_and_a_failure_everywhere() {
    let world = World::new();
    for (n, stage, cluster) in [(1, "dev", "social-analytics-dev"), (2, "prod", "social-analytics-prod")] {
        let mut d = deployment(n, Kind::Deploy, Status::Deploying, None);
        d.stage = crate::domain::names::StageName::parse(stage).unwrap();
        d.cluster = ClusterName::parse(cluster).unwrap();
        d.requested_at = Utc::now();
        d.ecs_deployment_id = Some(format!("ecs-svc/{stage}"));
        world.records.insert(d);
        let completed = ecs_ended_in(
            cluster,
            "SERVICE_DEPLOYMENT_COMPLETED",
            "backend-service",
            &format!("ecs-svc/{stage}"),
        );
        world.tracker().handle_event(&completed, deadline()).await.unwrap();
    }
    let subjects: Vec<String> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(
        subjects,
        ["Deployed prod/backend-service: latest (td:2)"],
        "dev's success is not announced"
    );
    // A redelivered COMPLETED announces nothing twice.
    let again = ecs_ended_in(
        "social-analytics-prod",
        "SERVICE_DEPLOYMENT_COMPLETED",
        "backend-service",
        "ecs-svc/prod",
    );
    world.tracker().handle_event(&again, deadline()).await.unwrap();
    assert_eq!(world.notifier.published().len(), 1);
}

#[tokio::test]
async fn a_failed_ending_that_arrives_before_the_deploys_retry_still_rolls_back() {
    let world = World::new();
    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    world.deployer().handle_event(&push(0), deadline()).await.unwrap_err();
    world.ecs.fail_updates(None);
    let requested = world.deployments_of("backend-service").remove(0);

    let failed = ecs_ended("SERVICE_DEPLOYMENT_FAILED", "backend-service", "ecs-svc/1");
    let response = world.tracker().handle_event(&failed, deadline()).await.unwrap();
    assert!(
        matches!(&response, TrackResponse::Recorded { rollback: Some(RestoreOutcome::RolledBack { rolled_back, to, .. }), .. }
            if *rolled_back == requested.id.to_string() && to == "td:1"),
        "{response:?}"
    );
    assert_eq!(world.ecs.running(&dev(), &svc("backend-service")), "td:1");
    let [deploy, rollback] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(
        (deploy.status, rollback.status),
        (Status::RolledBack, Status::Deploying)
    );

    // The deploy's retry then finds it handled and leaves the service on the rollback.
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    assert_eq!(world.ecs.running(&dev(), &svc("backend-service")), "td:1");
    let latest = world.records.state(&dev(), &svc("backend-service")).latest.unwrap();
    assert_eq!(latest.id, rollback.id);
}

#[tokio::test]
async fn a_success_notice_that_could_not_be_kept_is_kept_and_sent_by_the_redelivery() {
    let world = World::new();
    let mut d = deployment(2, Kind::Deploy, Status::Deploying, None);
    d.stage = crate::domain::names::StageName::parse("prod").unwrap();
    d.cluster = ClusterName::parse("social-analytics-prod").unwrap();
    d.ecs_deployment_id = Some("ecs-svc/prod".into());
    world.records.insert(d);
    let completed = ecs_ended_in(
        "social-analytics-prod",
        "SERVICE_DEPLOYMENT_COMPLETED",
        "backend-service",
        "ecs-svc/prod",
    );
    world.records.fail_outbox(true);
    let err = world.tracker().handle_event(&completed, deadline()).await.unwrap_err();
    assert_eq!(error_type(err), "RecordsUnavailable");
    assert_eq!(
        world.records.deployments()[0].status,
        Status::Succeeded,
        "recorded first"
    );

    world.records.fail_outbox(false);
    world.tracker().handle_event(&completed, deadline()).await.unwrap();
    let subjects: Vec<String> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(subjects, ["Deployed prod/backend-service: latest (td:2)"]);
}

#[tokio::test]
async fn a_late_alarm_starts_nothing_but_finishes_a_rollback_an_earlier_delivery_began() {
    let (dev, backend, worker) = (dev(), svc("backend-service"), svc("worker-service"));
    let world = World {
        ecs: FakeEcs::with_services(&[(&dev, &backend, "td:2"), (&dev, &worker, "td:2")]),
        ..World::new()
    };
    let earlier = Utc::now() - TimeDelta::minutes(40);
    world.records.insert(completed(1, "backend-service", earlier));
    let bad = completed(2, "backend-service", earlier + TimeDelta::minutes(5));
    world.records.insert(bad.clone());
    current(&world, &bad);
    let fired = Utc::now() - TimeDelta::minutes(20);
    let late = alarm("backend-dev-5xx", fired);

    // Nothing was started for it: too late to start now.
    let response = world
        .alarms(fixture_pipeline())
        .handle_event(&late, Utc::now(), deadline())
        .await
        .unwrap();
    let AlarmResponse::Handled { services, .. } = &response else {
        panic!("{response:?}")
    };
    assert!(
        services.iter().all(
            |s| matches!(&s.result, RestoreOutcome::Nothing { reason } if reason.contains("too late to start"))
                || s.service == "worker-service"
        ),
        "{response:?}"
    );
    assert_eq!(world.deployments_of("backend-service").len(), 2);

    // Its first delivery, in time, died after ECS moved the service (the answer was lost).
    world.ecs.fail_updates(Some(UpdateFailure::AnswerLost));
    world
        .alarms(fixture_pipeline())
        .handle_event(&late, fired + TimeDelta::seconds(5), deadline())
        .await
        .unwrap_err();
    world.ecs.fail_updates(None);
    let rollback = world.deployments_of("backend-service").pop().unwrap();
    assert_eq!(
        (rollback.kind.clone(), rollback.status),
        (rollback.kind.clone(), Status::Requested)
    );
    // The redrive, late, finishes it.
    let response = world
        .alarms(fixture_pipeline())
        .handle_event(&late, Utc::now(), deadline())
        .await
        .unwrap();
    assert_backend_rolled_back_to_td1(&response);
    let [_, bad, rollback] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!((bad.status, rollback.status), (Status::RolledBack, Status::Deploying));
    let told: Vec<String> = world.notifier.published().into_iter().map(|n| n.subject).collect();
    assert_eq!(
        told.iter()
            .filter(|s| s.starts_with("Rolled back dev/backend-service"))
            .count(),
        1,
        "its notice sent: {told:?}"
    );
}

#[tokio::test]
async fn an_attempt_overtaken_by_a_newer_push_before_its_retry_is_marked_superseded() {
    let world = World::new();
    world
        .deployer()
        .handle_event(&push(0), Utc::now() + TimeDelta::seconds(4))
        .await
        .unwrap_err();
    let leftover = world.deployments_of("backend-service").remove(0);
    assert_eq!(leftover.status, Status::Requested);
    let mut newer = push(30);
    newer.detail.image_digest = Some(format!("sha256:{}", "ab".repeat(32)));
    world.deployer().handle_event(&newer, deadline()).await.unwrap();
    // The first push's retry: skipped, and its record no longer waits for anything.
    world.deployer().handle_event(&push(0), deadline()).await.unwrap();
    let [first, second] = world.deployments_of("backend-service").try_into().unwrap();
    assert_eq!(first.id, leftover.id);
    assert_eq!(first.status, Status::Superseded);
    assert_eq!(first.superseded_by, Some(second.id.clone()));
    assert_eq!(second.status, Status::Deploying);
}

/// The fixture pipeline with dev frozen from `from` to `to`.
fn dev_frozen(from: DateTime<Utc>, to: DateTime<Utc>) -> Pipeline {
    let text = include_str!("../../../tests/fixtures/three-stages.toml").replacen(
        "tags = \"*\"\n",
        &format!(
            "tags = \"*\"\nfreeze = [{{ from = \"{}\", to = \"{}\", reason = \"game day\" }}]\n",
            stamp(from),
            stamp(to)
        ),
        1,
    );
    Pipeline::parse(&text).unwrap()
}

fn push_of(second: u32, digest: &str) -> EcrEvent {
    let mut event = push(second);
    event.detail.image_digest = Some(digest.into());
    event
}

#[tokio::test]
async fn a_frozen_automatic_stage_holds_its_pushes_and_the_newest_deploys_when_the_freeze_ends() {
    let world = World::new();
    let now = Utc::now();
    let pipeline = dev_frozen(now - TimeDelta::hours(1), now + TimeDelta::hours(1));
    let deployer = DeployOnPush {
        pipeline: pipeline.clone(),
        ..world.deployer()
    };
    let older = format!("sha256:{}", "1".repeat(64));
    let newer = format!("sha256:{}", "2".repeat(64));
    for event in [push_of(0, &older), push_of(5, &newer), push_of(5, &newer)] {
        let response = deployer.handle_event(&event, deadline()).await.unwrap();
        let PushResponse::Handled { targets, .. } = response else {
            panic!("{response:?}")
        };
        assert!(
            targets.iter().all(
                |t| matches!(&t.result, TargetOutcome::Held { why, .. } if why.contains("game day"))
                    || matches!(&t.result, TargetOutcome::Skipped { .. })
            ),
            "{targets:?}"
        );
    }
    let backend = world.deployments_of("backend-service");
    assert_eq!(backend.len(), 2, "a redelivery makes no second record");
    assert!(backend.iter().all(|d| d.status == Status::Held));
    assert_eq!(
        world.ecs.running(&dev(), &svc("backend-service")),
        "td:1",
        "nothing deployed"
    );
    assert_eq!(world.ecs.revisions().len(), 0, "nothing registered");

    let rds = crate::fakes::FakeSnapshots::default();
    let promote = super::promote::Promote {
        pipeline,
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds,
        notifier: world.notifier.clone(),
    };
    let frozen = promote.sweep(now + TimeDelta::minutes(30), deadline()).await.unwrap();
    assert_eq!(frozen.len(), 4);
    assert!(
        frozen
            .iter()
            .all(|(_, advanced)| matches!(advanced, super::promote::Advanced::Waiting { .. }))
    );
    assert_eq!(world.ecs.running(&dev(), &svc("backend-service")), "td:1");

    let thawed = now + TimeDelta::hours(2);
    promote.sweep(thawed, deadline()).await.unwrap();
    for service in ["backend-service", "worker-service"] {
        let records = world.deployments_of(service);
        let by_digest = |digest: &str| records.iter().find(|d| d.image.digest.as_str() == digest).unwrap();
        assert_eq!(
            by_digest(&newer).status,
            Status::Deploying,
            "{service}: the newest push deploys"
        );
        assert_eq!(by_digest(&older).status, Status::Superseded, "{service}");
        assert_eq!(by_digest(&older).superseded_by.as_ref(), Some(&by_digest(&newer).id));
        let running = world.ecs.running(&dev(), &svc(service));
        assert_eq!(Some(&running), by_digest(&newer).task_definition.as_ref());
        assert_eq!(
            world.records.state(&dev(), &svc(service)).latest.map(|l| l.id),
            Some(by_digest(&newer).id.clone())
        );
    }
    assert_eq!(world.ecs.revisions().len(), 2, "one revision per service");
    assert!(
        promote.sweep(thawed, deadline()).await.unwrap().is_empty(),
        "released once"
    );
}

#[tokio::test]
async fn a_held_push_redelivered_leaves_the_deploy_in_flight_and_one_older_than_a_rollback_never_deploys() {
    let world = World::new();
    let now = Utc::now();
    // A deploy in flight before the freeze.
    let running = format!("sha256:{}", "3".repeat(64));
    let deployed = world
        .deployer()
        .handle_event(&push_of(0, &running), deadline())
        .await
        .unwrap();
    assert_eq!(deploying(&deployed), 2);
    let pipeline = dev_frozen(now - TimeDelta::hours(1), now + TimeDelta::hours(1));
    let deployer = DeployOnPush {
        pipeline: pipeline.clone(),
        ..world.deployer()
    };
    let held = format!("sha256:{}", "4".repeat(64));
    for _ in 0..2 {
        deployer.handle_event(&push_of(5, &held), deadline()).await.unwrap();
    }
    let in_flight = |records: &[Deployment]| {
        records
            .iter()
            .find(|d| d.image.digest.as_str() == running)
            .map(|d| d.status)
    };
    assert_eq!(
        in_flight(&world.deployments_of("backend-service")),
        Some(Status::Deploying),
        "a redelivered held push supersedes nothing"
    );

    // The running deploy is rolled back (an alarm) while the push is held: the push came
    // before the rollback, so it never deploys when the freeze ends.
    let bad = world.deployments_of("backend-service")[0].clone();
    let alarm_at = bad.requested_at + TimeDelta::seconds(30);
    world
        .alarms(pipeline.clone())
        .handle_event(&alarm("backend-dev-5xx", alarm_at), alarm_at, deadline())
        .await
        .unwrap();
    let promote = super::promote::Promote {
        pipeline,
        records: world.records.clone(),
        ecs: world.ecs.clone(),
        rds: crate::fakes::FakeSnapshots::default(),
        notifier: world.notifier.clone(),
    };
    promote.sweep(now + TimeDelta::hours(2), deadline()).await.unwrap();
    let backend = world.deployments_of("backend-service");
    let held_record = backend.iter().find(|d| d.image.digest.as_str() == held).unwrap();
    assert_eq!(held_record.status, Status::Superseded, "{backend:?}");
    assert!(
        held_record
            .superseded_by
            .as_ref()
            .is_some_and(|by| by.as_str().starts_with("rbk-"))
    );
}
