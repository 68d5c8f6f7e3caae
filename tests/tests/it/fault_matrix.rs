//! Every AWS call of deploy-on-push's automatic deploy, the conditional writes, history reads,
//! alarm reads and publishes of its approval request (a release that passed staging), every
//! call of promote's snapshot and deploy of an approved release, every call of the cost
//! report (the inventory, Cost Explorer, the kept report and its notice), and every call of
//! track-deployment's FAILED → rollback and of rollback-on-alarm's rollback, failing in both
//! ways a call fails: refused before it reaches the service (5xx), and applied by the service
//! with the answer lost on the way back (not for reads, where that is the same as refused);
//! from its n-th call on for the whole first delivery, or once. Then the fault
//! heals and Lambda's retry delivers the event again. After the retry: one revision per
//! deploy, no record that lies about ECS, nothing dropped (every notice sent).
//!
//! promote's deploy is the automatic deploy's (`deploy_pinned`): of its ECS calls the matrix
//! takes UpdateService only, where the promotion's claim and resume meet ECS.
//!
//! Not in the matrix (covered by the handler unit tests over the fakes instead): the supersede
//! of an older deploy or request, the adoption of a deploy whose
//! ECS deployment id was never saved, and the re-registration of a deregistered target.

use crate::rollback::{alarm, deploy_and_complete};
use crate::support::*;
use harness::fault_proxy::{FaultKind, FaultProxy};
use harness::moto::sdk_config_for;
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::approval::{ApprovalStatus, Verdict, Voter};
use shared::ports::Approvals;
use std::collections::BTreeMap;

/// How a call fails: refused, or applied with the answer lost, from its n-th call on for the
/// whole delivery (`persistent`), or only once (the SDK's own retry then goes through).
#[derive(Clone, Copy, Debug)]
struct Mode {
    kind: FaultKind,
    persistent: bool,
}

const MODES: [Mode; 3] = [
    Mode {
        kind: FaultKind::ServerError,
        persistent: true,
    },
    Mode {
        kind: FaultKind::AnswerLost,
        persistent: true,
    },
    Mode {
        kind: FaultKind::AnswerLost,
        persistent: false,
    },
];

/// A read changes nothing, so a lost answer to it is a failed read: only writes (and calls
/// that act, like UpdateService or Publish) are tried with their answer lost.
fn modes_for(operation: &str) -> Vec<Mode> {
    let reads = ["GetItem", "Query", "Describe", "List"];
    if reads.iter().any(|read| operation.starts_with(read)) {
        MODES
            .into_iter()
            .filter(|mode| mode.kind == FaultKind::ServerError)
            .collect()
    } else {
        MODES.to_vec()
    }
}

impl Mode {
    fn inject(self, proxy: &FaultProxy, operation: &str, pass_first: usize) {
        if self.persistent {
            proxy.fail(operation, self.kind, pass_first);
        } else {
            proxy.fail_once(operation, self.kind, pass_first);
        }
    }

    /// A single lost answer from DynamoDB is absorbed by the SDK's retry: the conditional
    /// write finds its own earlier commit and counts it as written, and the delivery goes on.
    fn absorbed(self, operation: &str) -> bool {
        !self.persistent && operation.starts_with("DynamoDB")
    }
}

/// Runs `case` for every call site of `operation` in one clean delivery made by `deliver`
/// (counted through the proxy) in an emulator seeded for `pipeline`, in every mode.
async fn for_every_call_of<D, DF, C, CF>(operation: &str, pipeline: &str, deliver: D, case: C)
where
    D: FnOnce(Env, FaultProxy) -> DF,
    DF: std::future::Future<Output = FaultProxy>,
    C: Fn(String, Mode, usize) -> CF,
    CF: std::future::Future<Output = ()>,
{
    let env = Env::with_pipeline(pipeline).await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let proxy = deliver(env, proxy).await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for call in proxy.calls() {
        *counts.entry(call).or_default() += 1;
    }
    let (target, calls) = counts
        .iter()
        .find(|(target, _)| target.ends_with(operation))
        .unwrap_or_else(|| panic!("one delivery never calls {operation}: {counts:?}"));
    for mode in modes_for(operation) {
        for pass_first in 0..*calls {
            case(target.clone(), mode, pass_first).await;
        }
    }
}

/// After an attempt whose deadline was `first_deadline`, a lock may be left held only as a
/// lease that runs out 5 s after it; Lambda's retry comes after that.
async fn retry_after_leases(env: &Env, first_deadline: chrono::DateTime<chrono::Utc>) {
    let lease_ends = (first_deadline + chrono::TimeDelta::seconds(5)).timestamp_millis();
    for (pk, until) in env.held_locks().await {
        assert!(until <= lease_ends, "{pk}: a lock held beyond its lease");
    }
    env.let_leases_run_out().await;
}

async fn deploy_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::new().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    let revisions = env.revision_count().await;
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let first_deadline = deadline();
    let first = handler.handle_event(&event("push-latest.json"), first_deadline).await;
    assert!(first.is_ok() || !mode.absorbed(operation), "{case}: {first:?}");
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap_or_else(|err| panic!("{case}: the retry failed: {err}"));

    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1, "{case}: {records:?}");
        let record = &records[0];
        assert_eq!(record["status"], "DEPLOYING", "{case}");
        assert_eq!(record["task_definition"], env.running(DEV, service).await, "{case}");
        assert_eq!(
            record["ecs_deployment_id"],
            env.primary_deployment_id(DEV, service).await,
            "{case}"
        );
        assert_eq!(record["previous_task_definition"], env.initial(DEV, service), "{case}");
        let state = env.state_item(DEV, service).await;
        assert_eq!(
            state["latest"].as_m().unwrap()["id"].as_s().unwrap(),
            &record["id"],
            "{case}"
        );
    }
    assert!(env.held_locks().await.is_empty(), "{case}");
    // A revision whose registration answer was lost is found by its deployment tag.
    assert_eq!(
        env.revision_count().await,
        revisions + SERVICES.len(),
        "{case}: one revision per deploy"
    );
}

async fn deploy_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
        handler
            .handle_event(&event("push-latest.json"), deadline())
            .await
            .unwrap();
        proxy
    };
    for_every_call_of(
        operation,
        &harness::fixture("three-stages.toml"),
        deliver,
        |target, mode, n| async move { deploy_case(&target, mode, n).await },
    )
    .await;
}

/// The release a matrix case pushes: its digest passed staging first.
fn release() -> shared::events::EcrEvent {
    push("v8.0.0", 0x80, 5)
}

/// A release that passed staging, asking prod's approvers: after the retry, one request
/// listing both prod services, each approver's link delivered (twice at most: a publish whose
/// answer was lost is sent again, with another link to the same ballot), every link theirs.
async fn approval_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::new().await;
    env.passes_staging(&digest(0x80), 0).await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let first_deadline = deadline();
    let first = handler.handle_event(&release(), first_deadline).await;
    assert!(first.is_ok() || !mode.absorbed(operation), "{case}: {first:?}");
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    handler
        .handle_event(&release(), deadline())
        .await
        .unwrap_or_else(|err| panic!("{case}: the retry failed: {err}"));

    let records = shared::adapters::dynamo::DynamoRecords::new(&env.config, &env.world.table);
    let requests = records
        .approvals_in(&shared::domain::approval::ApprovalStatus::ALL)
        .await
        .unwrap();
    assert_eq!(requests.len(), 1, "{case}: {requests:?}");
    let request = &requests[0];
    assert_eq!(
        (request.status, request.services.len()),
        (shared::domain::approval::ApprovalStatus::AwaitingApproval, 2),
        "{case}"
    );
    for (service, _) in SERVICES {
        let prod = env.records_for(PROD, service).await;
        assert_eq!(prod.len(), 1, "{case}: {prod:?}");
        assert_eq!(prod[0]["status"], "AWAITING_APPROVAL", "{case}");
        assert_eq!(env.running(PROD, service).await, env.initial(PROD, service), "{case}");
    }
    for (approver, queue) in &env.world.approver_queues {
        let messages = harness::seed::take_notices(&env.config, queue).await;
        assert!((1..=2).contains(&messages.len()), "{case}: {approver}: {messages:?}");
        for message in messages {
            let link = message.message.lines().find(|l| l.starts_with(NO_PAGE)).unwrap();
            let token = shared::domain::approval::ApprovalToken::parse(link.rsplit('/').next().unwrap()).unwrap();
            let ballot = request.ballot(&token.hash());
            assert_eq!(ballot.map(|b| b.approver.as_str()), Some(approver.as_str()), "{case}");
        }
    }
    assert!(request.ballots.iter().all(|b| b.sent_at.is_some()), "{case}");
    assert!(env.held_locks().await.is_empty(), "{case}");
}

async fn approval_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        env.passes_staging(&digest(0x80), 0).await;
        let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
        handler.handle_event(&release(), deadline()).await.unwrap();
        proxy
    };
    for_every_call_of(
        operation,
        &harness::fixture("three-stages.toml"),
        deliver,
        |target, mode, n| async move { approval_case(&target, mode, n).await },
    )
    .await;
}

/// A dev deploy of push-latest that ECS reports FAILED for backend-service: the rollback path.
async fn failed_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::new().await;
    env.handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let service = "backend-service";
    let deployed = env.records_for(DEV, service).await.remove(0);
    let failed = ecs_failed(service, &deployed["ecs_deployment_id"]);
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let tracker = env.tracker_with(&sdk_config_for(&proxy.endpoint).await);
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let first_deadline = deadline();
    let first = tracker.handle_event(&failed, first_deadline).await;
    assert!(first.is_ok() || !mode.absorbed(operation), "{case}: {first:?}");
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    tracker
        .handle_event(&failed, deadline())
        .await
        .unwrap_or_else(|err| panic!("{case}: the retry failed: {err}"));

    let records = env.records_for(DEV, service).await;
    assert_eq!(records.len(), 2, "{case}: {records:?}");
    let (deploy, rollback) = (&records[0], &records[1]);
    assert_eq!(deploy["status"], "ROLLED_BACK", "{case}");
    assert_eq!(rollback["kind"], "rollback", "{case}");
    assert_eq!(rollback["status"], "DEPLOYING", "{case}");
    assert_eq!(rollback["task_definition"], env.running(DEV, service).await, "{case}");
    assert_eq!(env.running(DEV, service).await, env.initial(DEV, service), "{case}");
    assert_eq!(
        env.quarantined(DEV, service).await,
        vec![deploy["digest"].clone()],
        "{case}"
    );
    assert!(env.held_locks().await.is_empty(), "{case}");
    // Nothing dropped: both notices (the failure, the rollback) went out; each twice at most,
    // when a Publish whose answer was lost, or whose sending could not be recorded, was
    // retried (at least once, never lost).
    let notices = env.notices().await;
    for told in [
        format!("Deploy FAILED dev/{service}"),
        format!("Rolled back dev/{service}"),
    ] {
        let copies = notices.iter().filter(|n| n.subject.starts_with(&told)).count();
        assert!((1..=2).contains(&copies), "{case}: {told}: {notices:?}");
    }
    assert!(env.outbox().await.iter().all(|(_, sent)| *sent), "{case}");
}

fn ecs_failed(service: &str, ecs_deployment_id: &str) -> shared::events::EcsDeploymentEvent {
    let mut event: serde_json::Value =
        serde_json::from_slice(&harness::event_file("track-deployment", "failed.json")).unwrap();
    event["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/{DEV}/{service}").into();
    event["detail"]["deploymentId"] = ecs_deployment_id.into();
    serde_json::from_value(event).unwrap()
}

async fn failed_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        env.handler()
            .handle_event(&event("push-latest.json"), deadline())
            .await
            .unwrap();
        let deployed = env.records_for(DEV, "backend-service").await.remove(0);
        let failed = ecs_failed("backend-service", &deployed["ecs_deployment_id"]);
        let tracker = env.tracker_with(&sdk_config_for(&proxy.endpoint).await);
        tracker.handle_event(&failed, deadline()).await.unwrap();
        proxy
    };
    for_every_call_of(
        operation,
        &harness::fixture("three-stages.toml"),
        deliver,
        |target, mode, n| async move { failed_case(&target, mode, n).await },
    )
    .await;
}

/// Dev's backend: a good deploy, then a bad one, both completed; then the 5xx alarm fires
/// inside the watch window: both services go back to the good revision.
async fn alarm_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let fired = alarm("metric-alarm.json", 20);
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.alarm_handler_with(&sdk_config_for(&proxy.endpoint).await);
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let first_deadline = deadline();
    let first = handler.handle_event(&fired, delivered(&fired), first_deadline).await;
    assert!(first.is_ok() || !mode.absorbed(operation), "{case}: {first:?}");
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    handler
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap_or_else(|err| panic!("{case}: the retry failed: {err}"));

    let notices = env.notices().await;
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 3, "{case}: {records:?}");
        let (bad, rollback) = (&records[1], &records[2]);
        assert_eq!(bad["status"], "ROLLED_BACK", "{case}");
        assert_eq!(
            (rollback["kind"].as_str(), rollback["status"].as_str()),
            ("rollback", "DEPLOYING"),
            "{case}"
        );
        assert_eq!(&rollback["task_definition"], good, "{case}");
        assert_eq!(&env.running(DEV, service).await, good, "{case}");
        assert_eq!(env.quarantined(DEV, service).await, vec![digest(2)], "{case}");
        let told = format!("Rolled back dev/{service}");
        let copies = notices.iter().filter(|n| n.subject.starts_with(&told)).count();
        assert!((1..=2).contains(&copies), "{case}: {told}: {notices:?}");
    }
    assert!(env.held_locks().await.is_empty(), "{case}");
    assert!(env.outbox().await.iter().all(|(_, sent)| *sent), "{case}");
}

async fn alarm_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        deploy_and_complete(&env, 1, 0, 5).await;
        deploy_and_complete(&env, 2, 10, 12).await;
        let fired = alarm("metric-alarm.json", 20);
        let handler = env.alarm_handler_with(&sdk_config_for(&proxy.endpoint).await);
        handler
            .handle_event(&fired, delivered(&fired), deadline())
            .await
            .unwrap();
        proxy
    };
    for_every_call_of(
        operation,
        &harness::fixture("three-stages.toml"),
        deliver,
        |target, mode, n| async move { alarm_case(&target, mode, n).await },
    )
    .await;
}

/// The tests' pipeline without prod's wait: one sweep takes the snapshot, finds it available
/// (moto makes it so at once) and deploys.
fn no_wait_pipeline() -> String {
    harness::fixture("three-stages.toml").replace("wait_minutes = 5", "wait_minutes = 0")
}

/// The matrix's release, which passed staging, approved by an operator for prod's first approver.
async fn approved_release(env: &Env) {
    env.passes_staging(&digest(0x80), 0).await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    env.handler().handle_event(&release(), deadline()).await.unwrap();
    let records = DynamoRecords::new(&env.config, &env.world.table);
    let request = records
        .approvals_in(&[ApprovalStatus::AwaitingApproval])
        .await
        .unwrap()
        .remove(0);
    let operator = Voter {
        operator: Some("arn:aws:iam::123456789012:user/release".into()),
        ..Voter::default()
    };
    let approver = request.ballots[0].approver.clone();
    let mut approved = request
        .cast_for(&approver, Verdict::Approve, operator, chrono::Utc::now())
        .unwrap();
    approved.version += 1;
    assert!(records.save_approval(&approved).await.unwrap());
}

/// An approved release promoted by a sweep: after the next sweep, one pre-deployment snapshot,
/// both prod services deploying one new revision each, the promotion recorded as deployed, and
/// both notices (backing up, deploying) sent.
async fn promote_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::with_pipeline(&no_wait_pipeline()).await;
    approved_release(&env).await;
    let revisions = env.revision_count().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let promote = env.promoter_with(&sdk_config_for(&proxy.endpoint).await);
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let first_deadline = deadline();
    // A failed step leaves the request in flight (only an unreadable index fails the sweep).
    let _ = promote.sweep(chrono::Utc::now(), first_deadline).await;
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    promote
        .sweep(chrono::Utc::now(), deadline())
        .await
        .unwrap_or_else(|err| panic!("{case}: the next sweep failed: {err}"));

    let records = DynamoRecords::new(&env.config, &env.world.table);
    let requests = records.approvals_in(&ApprovalStatus::ALL).await.unwrap();
    assert_eq!(requests.len(), 1, "{case}: {requests:?}");
    let promotion = requests[0].promotion.as_ref().expect("promoted");
    assert!(
        promotion.deployed_at.is_some() && promotion.failed.is_none(),
        "{case}: {promotion:?}"
    );
    let snapshots = aws_sdk_rds::Client::new(&env.config)
        .describe_db_snapshots()
        .db_instance_identifier("social-analytics-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert_eq!(snapshots.db_snapshots().len(), 1, "{case}: one pre-deployment snapshot");
    for (service, _) in SERVICES {
        let prod = env.records_for(PROD, service).await;
        assert_eq!(prod.len(), 1, "{case}: {prod:?}");
        assert_eq!(prod[0]["status"], "DEPLOYING", "{case}");
        assert_eq!(prod[0]["task_definition"], env.running(PROD, service).await, "{case}");
        assert_eq!(
            prod[0]["ecs_deployment_id"],
            env.primary_deployment_id(PROD, service).await,
            "{case}"
        );
    }
    assert_eq!(
        env.revision_count().await,
        revisions + SERVICES.len(),
        "{case}: one revision per service"
    );
    assert!(env.held_locks().await.is_empty(), "{case}");
    let notices = env.notices().await;
    for told in ["approved, backing up", "backed up", "deploying"] {
        let copies = notices.iter().filter(|n| n.subject.ends_with(told)).count();
        assert!((1..=2).contains(&copies), "{case}: {told}: {notices:?}");
    }
    assert!(env.outbox().await.iter().all(|(_, sent)| *sent), "{case}");
}

async fn promote_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        approved_release(&env).await;
        let promote = env.promoter_with(&sdk_config_for(&proxy.endpoint).await);
        let swept = promote.sweep(chrono::Utc::now(), deadline()).await.unwrap();
        assert!(
            matches!(&swept[0].1, shared::handlers::promote::Advanced::Deployed { .. }),
            "{swept:?}"
        );
        proxy
    };
    for_every_call_of(operation, &no_wait_pipeline(), deliver, |target, mode, n| async move {
        promote_case(&target, mode, n).await
    })
    .await;
}

/// The cost report for one tick: after the retry, the report kept once for its tick, sent (a
/// lost Publish answer may send it twice), every notice marked sent. A failed Cost Explorer
/// call is not retried: the report says the figure is unavailable.
async fn cost_case(operation: &str, mode: Mode, pass_first: usize) {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let reporter = crate::cost_report::reporter(&env, &sdk_config_for(&proxy.endpoint).await);
    let tick = "2026-11-23T08:00:00Z".parse().unwrap();
    mode.inject(&proxy, operation, pass_first);
    let case = format!("{operation} {mode:?} from call {pass_first}");
    let _ = reporter.run(tick, tick).await;
    proxy.heal();
    reporter
        .run(tick, tick)
        .await
        .unwrap_or_else(|err| panic!("{case}: the retry failed: {err}"));

    let kept = shared::ports::CostReports::last_report(&reporter.records)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{case}: no report kept"));
    assert_eq!(kept.tick, tick, "{case}");
    let notices = env.notices().await;
    let sent: Vec<_> = notices.iter().filter(|n| n.subject == kept.notice.subject).collect();
    assert!((1..=2).contains(&sent.len()), "{case}: {notices:?}");
    assert_eq!(sent[0].message, kept.notice.message, "{case}");
    if operation.ends_with("GetCostAndUsage") {
        assert!(kept.notice.message.contains("unavailable (GetCostAndUsage"), "{case}");
    }
    assert!(env.outbox().await.iter().all(|(_, sent)| *sent), "{case}");
    // Cost Explorer is asked again only by the retry of a delivery that kept no report.
    for paid in ["GetCostAndUsage", "GetCostForecast"] {
        let asked = proxy.calls().iter().filter(|c| c.ends_with(paid)).count();
        assert!((1..=2).contains(&asked), "{case}: {paid} asked {asked} times");
    }
}

async fn cost_matrix(operation: &str) {
    let deliver = |env: Env, proxy: FaultProxy| async move {
        harness::seed::create_database(&env.config, "social-analytics-db", None).await;
        let reporter = crate::cost_report::reporter(&env, &sdk_config_for(&proxy.endpoint).await);
        let tick = "2026-11-23T08:00:00Z".parse().unwrap();
        assert!(reporter.run(tick, tick).await.unwrap().made);
        proxy
    };
    for_every_call_of(
        operation,
        &harness::fixture("three-stages.toml"),
        deliver,
        |target, mode, n| async move { cost_case(&target, mode, n).await },
    )
    .await;
}

macro_rules! matrix {
    ($($name:ident: $run:ident($operation:literal);)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $run($operation).await;
            }
        )*
    };
}

matrix! {
    deploy_survives_faults_in_update_item: deploy_matrix("UpdateItem");
    deploy_survives_faults_in_get_item: deploy_matrix("GetItem");
    deploy_survives_faults_in_put_item: deploy_matrix("PutItem");
    deploy_survives_faults_in_describe_services: deploy_matrix("DescribeServices");
    deploy_survives_faults_in_describe_task_definition: deploy_matrix("DescribeTaskDefinition");
    deploy_survives_faults_in_register_task_definition: deploy_matrix("RegisterTaskDefinition");
    deploy_survives_faults_in_update_service: deploy_matrix("UpdateService");
    approval_survives_faults_in_put_item: approval_matrix("PutItem");
    approval_survives_faults_in_query: approval_matrix("Query");
    approval_survives_faults_in_describe_alarms: approval_matrix("DescribeAlarms");
    approval_survives_faults_in_publish: approval_matrix("Publish");
    promote_survives_faults_in_query: promote_matrix("Query");
    promote_survives_faults_in_get_item: promote_matrix("GetItem");
    promote_survives_faults_in_put_item: promote_matrix("PutItem");
    promote_survives_faults_in_update_item: promote_matrix("UpdateItem");
    promote_survives_faults_in_describe_db_instances: promote_matrix("DescribeDBInstances");
    promote_survives_faults_in_create_db_snapshot: promote_matrix("CreateDBSnapshot");
    promote_survives_faults_in_describe_db_snapshots: promote_matrix("DescribeDBSnapshots");
    promote_survives_faults_in_update_service: promote_matrix("UpdateService");
    promote_survives_faults_in_publish: promote_matrix("Publish");
    cost_report_survives_faults_in_get_item: cost_matrix("GetItem");
    cost_report_survives_faults_in_put_item: cost_matrix("PutItem");
    cost_report_survives_faults_in_update_item: cost_matrix("UpdateItem");
    cost_report_survives_faults_in_describe_services: cost_matrix("DescribeServices");
    cost_report_survives_faults_in_describe_task_definition: cost_matrix("DescribeTaskDefinition");
    cost_report_survives_faults_in_describe_db_instances: cost_matrix("DescribeDBInstances");
    cost_report_survives_faults_in_get_cost_and_usage: cost_matrix("GetCostAndUsage");
    cost_report_survives_faults_in_publish: cost_matrix("Publish");
    failed_rollback_survives_faults_in_query: failed_matrix("Query");
    failed_rollback_survives_faults_in_get_item: failed_matrix("GetItem");
    failed_rollback_survives_faults_in_put_item: failed_matrix("PutItem");
    failed_rollback_survives_faults_in_update_item: failed_matrix("UpdateItem");
    failed_rollback_survives_faults_in_describe_services: failed_matrix("DescribeServices");
    failed_rollback_survives_faults_in_describe_task_definition: failed_matrix("DescribeTaskDefinition");
    failed_rollback_survives_faults_in_update_service: failed_matrix("UpdateService");
    failed_rollback_survives_faults_in_publish: failed_matrix("Publish");
    alarm_rollback_survives_faults_in_query: alarm_matrix("Query");
    alarm_rollback_survives_faults_in_get_item: alarm_matrix("GetItem");
    alarm_rollback_survives_faults_in_put_item: alarm_matrix("PutItem");
    alarm_rollback_survives_faults_in_update_item: alarm_matrix("UpdateItem");
    alarm_rollback_survives_faults_in_describe_services: alarm_matrix("DescribeServices");
    alarm_rollback_survives_faults_in_describe_task_definition: alarm_matrix("DescribeTaskDefinition");
    alarm_rollback_survives_faults_in_update_service: alarm_matrix("UpdateService");
    alarm_rollback_survives_faults_in_publish: alarm_matrix("Publish");
}

/// The case the review found: UpdateService applied with its answer lost, and the check
/// after it failing too. The record stays REQUESTED and the retry adopts what ECS did.
#[tokio::test]
async fn update_applied_answer_lost_and_check_failed_keeps_the_record_for_the_retry() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    let revisions = env.revision_count().await;
    proxy.fail("UpdateService", FaultKind::AnswerLost, 0);
    // DescribeServices: the first call of each target reads the service; the checks fail.
    proxy.fail("DescribeServices", FaultKind::ServerError, 2);
    let first_deadline = deadline();
    handler
        .handle_event(&event("push-latest.json"), first_deadline)
        .await
        .unwrap_err();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1, "kept, not deleted: ECS did move");
        assert_eq!(records[0]["status"], "REQUESTED");
        assert_eq!(records[0]["task_definition"], env.running(DEV, service).await);
    }
    proxy.heal();
    retry_after_leases(&env, first_deadline).await;
    handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records[0]["status"], "DEPLOYING");
        assert_eq!(
            records[0]["ecs_deployment_id"],
            env.primary_deployment_id(DEV, service).await
        );
    }
    assert_eq!(env.revision_count().await, revisions + 2, "one revision per deploy");
}
