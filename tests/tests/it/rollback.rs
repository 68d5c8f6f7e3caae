//! Rollbacks against moto: an alarm (or a FAILED deployment) sends a service back to its last
//! known good, once, and what happened is in ECS, the records and the notices.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::fault_proxy::{FaultKind, FaultProxy};
use harness::moto::sdk_config_for;
use harness::{alarm_timestamp, event_file, event_time, story_time};
use shared::events::AlarmEvent;
use shared::handlers::restore::RestoreOutcome as RollbackOutcome;
use shared::handlers::rollback_on_alarm::AlarmResponse as Response;

/// The sample alarm event `file`, its state changed `minute` minutes into the story.
pub(crate) fn alarm(file: &str, minute: i64) -> AlarmEvent {
    let mut event: serde_json::Value = serde_json::from_slice(&event_file("rollback-on-alarm", file)).unwrap();
    event["detail"]["state"]["timestamp"] = alarm_timestamp(story_time(minute)).into();
    serde_json::from_value(event).unwrap()
}

/// The ECS deployment-state event for a record's ECS deployment, ended `minute` minutes into
/// the story.
fn ecs_ended(file: &str, service: &str, ecs_deployment_id: &str, minute: i64) -> shared::events::EcsDeploymentEvent {
    ecs_ended_in(DEV, file, service, ecs_deployment_id, minute)
}

/// Pushes `digest_byte` at `second`, and ECS completes it on every service `minute` minutes
/// into the story.
/// Returns each service's new task definition.
pub(crate) async fn deploy_and_complete(env: &Env, digest_byte: u8, second: u32, minute: i64) -> Vec<String> {
    env.handler()
        .handle_event(&push("latest", digest_byte, second), deadline())
        .await
        .unwrap();
    let tracker = env.tracker();
    let mut revisions = Vec::new();
    for (service, _) in SERVICES {
        let latest = env.records_for(DEV, service).await.pop().unwrap();
        assert_eq!(latest["digest"], digest(digest_byte));
        let completed = ecs_ended("completed.json", service, &latest["ecs_deployment_id"], minute);
        tracker.handle_event(&completed, deadline()).await.unwrap();
        revisions.push(env.running(DEV, service).await);
    }
    revisions
}

fn rolled_back(response: &Response) -> usize {
    let Response::Handled { services, .. } = response else {
        return 0;
    };
    services
        .iter()
        .filter(|s| matches!(s.result, RollbackOutcome::RolledBack { .. }))
        .count()
}

/// Every service of the response was only notified, for a reason mentioning `why`.
fn assert_only_notified(response: &Response, why: &str) {
    let Response::Handled { services, .. } = response else {
        panic!("{response:?}")
    };
    assert!(
        services
            .iter()
            .all(|s| matches!(&s.result, RollbackOutcome::Notified { reason } if reason.contains(why))),
        "{response:?}"
    );
}

/// Nothing changed in dev: the records are `before`, each service still runs its revision in
/// `running`, and nothing is quarantined.
async fn assert_dev_unchanged(env: &Env, before: &[std::collections::HashMap<String, String>], running: &[String]) {
    assert_eq!(env.records().await, before);
    for ((service, _), running) in SERVICES.iter().zip(running) {
        assert_eq!(&env.running(DEV, service).await, running);
        assert!(env.quarantined(DEV, service).await.is_empty());
    }
}

#[tokio::test]
async fn a_bad_deploy_inside_the_window_goes_back_to_the_last_known_good_and_stays_out() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    let bad = deploy_and_complete(&env, 2, 10, 12).await;
    assert_ne!(good, bad);

    let response = env
        .alarm_handler()
        .handle_event(
            &alarm("metric-alarm.json", 20),
            delivered(&alarm("metric-alarm.json", 20)),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");

    let mut notices = env.notices().await;
    notices.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert_eq!(notices.len(), 2, "{notices:?}");
    for (((service, _), good), (bad, notice)) in SERVICES.iter().zip(&good).zip(bad.iter().zip(&notices)) {
        // ECS runs the known-good revision again, not a new one.
        assert_eq!(&env.running(DEV, service).await, good);
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 3, "{records:?}");
        let (first, second, rollback) = (&records[0], &records[1], &records[2]);
        assert_eq!(first["status"], "SUCCEEDED");
        assert_eq!(second["status"], "ROLLED_BACK");
        assert_eq!(
            (rollback["kind"].as_str(), rollback["status"].as_str()),
            ("rollback", "DEPLOYING")
        );
        assert_eq!(rollback["rollback_of"], second["id"]);
        assert_eq!(
            (&rollback["previous_task_definition"], &rollback["task_definition"]),
            (bad, good)
        );
        assert!(rollback["rollback_cause"].starts_with("alarm backend-dev-5xx went into ALARM"));
        assert_eq!(env.quarantined(DEV, service).await, vec![digest(2)]);

        let short = |arn: &str| arn.rsplit('/').next().unwrap().to_owned();
        assert_eq!(
            notice.subject,
            format!("Rolled back dev/{service}: {} -> {}", short(bad), short(good))
        );
        assert!(notice.subject.len() < 100);
        assert!(
            notice
                .message
                .contains(&format!("pipectl lift-quarantine dev {service} {}", digest(2)))
        );
        // A queue gets the chat channel's body: Chatbot's custom notification, threaded by
        // the release (the bad digest), with the lift command as a next step.
        let chat = notice.chat.as_ref().expect("a team notice is published for chat too");
        assert_eq!((&chat["version"], &chat["source"]), (&"1.0".into(), &"custom".into()));
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(chat["content"]["title"], notice.subject.as_str());
        let thread = chat["metadata"]["threadId"].as_str().unwrap();
        assert!(thread.ends_with(&digest(2)["sha256:".len()..][..16]), "{thread}");
        assert_eq!(
            chat["content"]["nextSteps"][1],
            format!("pipectl lift-quarantine dev {service} {}", digest(2))
        );
    }

    // The rollback completes like any deployment, and becomes the last known good.
    let tracker = env.tracker();
    for (service, _) in SERVICES {
        let rollback = env.records_for(DEV, service).await.pop().unwrap();
        let completed = ecs_ended("completed.json", service, &rollback["ecs_deployment_id"], 24);
        tracker.handle_event(&completed, deadline()).await.unwrap();
        let rollback = env.records_for(DEV, service).await.pop().unwrap();
        assert_eq!(rollback["status"], "SUCCEEDED");
        let known_good = env.known_good(DEV, service).await.expect("a known good");
        assert_eq!(known_good.id.as_str(), rollback["id"]);
        assert_eq!(known_good.image_running().unwrap(), format!("{REGISTRY}@{}", digest(1)));
    }

    // The bad digest pushed again is skipped; a fix forward deploys.
    let again = env
        .handler()
        .handle_event(&push("latest", 2, 40), deadline())
        .await
        .unwrap();
    let text = serde_json::to_string(&again).unwrap();
    assert!(text.contains("quarantined"), "{text}");
    assert_eq!(env.running(DEV, "backend-service").await, good[0]);
    let fix = env
        .handler()
        .handle_event(&push("latest", 3, 50), deadline())
        .await
        .unwrap();
    let text = serde_json::to_string(&fix).unwrap();
    assert!(text.contains("\"result\":\"deploying\""), "{text}");
    let (fixed, _) = env.task_definition(&env.running(DEV, "backend-service").await).await;
    assert!(fixed.container_definitions()[0].image().unwrap().ends_with(&digest(3)));
}

#[tokio::test]
async fn duplicates_concurrent_alarms_and_alarm_flapping_roll_back_exactly_once() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;

    // Three deliveries of the same event and the stage's other two alarms, all at once; then
    // the first alarm again after it went back to OK.
    let together = [
        alarm("metric-alarm.json", 20),
        alarm("metric-alarm.json", 20),
        alarm("metric-alarm.json", 20),
        alarm("metric-math-alarm.json", 20),
        alarm("composite-alarm.json", 21),
    ];
    let concurrent = futures_util::future::join_all(together.iter().map(|event| {
        let handler = env.alarm_handler();
        async move { handler.handle_event(event, delivered(event), deadline()).await.unwrap() }
    }))
    .await;
    assert_eq!(concurrent.iter().map(rolled_back).sum::<usize>(), 2, "{concurrent:?}");
    let again = env
        .alarm_handler()
        .handle_event(
            &alarm("metric-alarm.json", 26),
            delivered(&alarm("metric-alarm.json", 26)),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(rolled_back(&again), 0, "{again:?}");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(env.records_for(DEV, service).await.len(), 3);
        assert_eq!(&env.running(DEV, service).await, good);
    }
    assert_eq!(env.notices().await.len(), 2, "one notice per rolled-back service");
}

#[tokio::test]
async fn after_the_window_an_alarm_only_notifies_once() {
    let env = Env::new().await;
    deploy_and_complete(&env, 1, 0, 5).await;
    let bad = deploy_and_complete(&env, 2, 10, 12).await;
    let before = env.records().await;

    let late = alarm("metric-alarm.json", 40);
    for _ in 0..2 {
        let response = env
            .alarm_handler()
            .handle_event(&late, delivered(&late), deadline())
            .await
            .unwrap();
        assert_only_notified(&response, "before the watch window");
    }
    assert_dev_unchanged(&env, &before, &bad).await;
    let notices = env.notices().await;
    assert_eq!(
        notices.len(),
        2,
        "one per service, none for the redelivery: {notices:?}"
    );
    assert!(notices.iter().all(|n| n.subject.starts_with("No rollback of dev/")));
}

#[tokio::test]
async fn an_alarm_that_fired_before_the_deployment_started_only_notifies() {
    let env = Env::new().await;
    deploy_and_complete(&env, 1, 0, 5).await;
    // Delivered late (say, retried): it fired before this test's deploy was even requested.
    let stale = alarm("metric-alarm.json", -5);
    let bad = deploy_and_complete(&env, 2, 10, 12).await;
    let before = env.records().await;

    let response = env
        .alarm_handler()
        .handle_event(&stale, delivered(&stale), deadline())
        .await
        .unwrap();
    assert_only_notified(&response, "fired before the current deployment started");
    assert_dev_unchanged(&env, &before, &bad).await;
    assert_eq!(env.notices().await.len(), 2);
}

#[tokio::test]
async fn ecs_completing_the_bad_deployment_during_its_rollback_still_leaves_it_rolled_back() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    env.handler()
        .handle_event(&push("latest", 2, 10), deadline())
        .await
        .unwrap();
    let bad: Vec<_> = futures_util::future::join_all(SERVICES.iter().map(|(s, _)| env.records_for(DEV, s))).await;

    // The rollback has read the bad deployment DEPLOYING and is pointing the services back
    // when ECS reports that deployment COMPLETED (track-deployment takes no lock).
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    proxy.hold("UpdateService");
    let handler = env.alarm_handler_with(&sdk_config_for(&proxy.endpoint).await);
    let fired = alarm("metric-alarm.json", 20);
    let rolling_back = tokio::spawn(async move { handler.handle_event(&fired, delivered(&fired), deadline()).await });
    proxy.wait_held(SERVICES.len()).await;
    for ((service, _), records) in SERVICES.iter().zip(&bad) {
        let bad = records.last().unwrap();
        let completed = ecs_ended("completed.json", service, &bad["ecs_deployment_id"], 14);
        let response = env.tracker().handle_event(&completed, deadline()).await.unwrap();
        assert!(
            serde_json::to_string(&response).unwrap().contains("SUCCEEDED"),
            "{response:?}"
        );
    }
    proxy.release();
    let response = rolling_back.await.unwrap().unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");

    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(&env.running(DEV, service).await, good);
        let records = env.records_for(DEV, service).await;
        assert_eq!(records[1]["status"], "ROLLED_BACK", "{records:?}");
        assert_eq!(records[2]["rollback_of"], records[1]["id"]);
    }
}

#[tokio::test]
async fn a_rollback_that_died_after_ecs_moved_the_service_is_resumed_by_the_retry() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let revisions = env.revision_count().await;

    // ECS takes both UpdateService calls; then every record write fails, as if the function
    // died right after ECS acted.
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    proxy.hold("UpdateService");
    let handler = env.alarm_handler_with(&sdk_config_for(&proxy.endpoint).await);
    let fired = alarm("metric-alarm.json", 20);
    let first = {
        let fired = &fired;
        let handler = &handler;
        let attempt = async move { handler.handle_event(fired, delivered(fired), deadline()).await };
        let breaking = async {
            proxy.wait_held(SERVICES.len()).await;
            proxy.fail("DynamoDB_20120810.PutItem", FaultKind::ServerError, 0);
            proxy.release();
        };
        tokio::join!(attempt, breaking).0
    };
    let err = first.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "RecordsUnavailable");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(&env.running(DEV, service).await, good, "ECS moved");
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(
            (records[1]["status"].as_str(), records[2]["status"].as_str()),
            ("SUCCEEDED", "REQUESTED"),
            "the rollback record stays for the retry; nothing claims it finished"
        );
        assert!(
            !env.state_item(DEV, service).await.contains_key("lock_owner"),
            "lock released"
        );
    }
    assert!(env.notices().await.is_empty());

    proxy.heal();
    let response = handler
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(&env.running(DEV, service).await, good);
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 3, "the retry took over the REQUESTED rollback");
        assert_eq!(
            (records[1]["status"].as_str(), records[2]["status"].as_str()),
            ("ROLLED_BACK", "DEPLOYING")
        );
        assert_eq!(
            records[2]["ecs_deployment_id"],
            env.primary_deployment_id(DEV, service).await,
            "the deployment ECS started for the first attempt, adopted"
        );
        assert_eq!(env.quarantined(DEV, service).await, vec![digest(2)]);
    }
    assert_eq!(env.revision_count().await, revisions, "no revision registered");
    assert_eq!(env.notices().await.len(), 2);
}

#[tokio::test]
async fn a_failed_rollback_is_reported_once_and_never_rolled_back_and_a_late_failure_changes_nothing() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let response = env
        .alarm_handler()
        .handle_event(
            &alarm("metric-alarm.json", 20),
            delivered(&alarm("metric-alarm.json", 20)),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");
    assert_eq!(env.notices().await.len(), 2);

    let tracker = env.tracker();
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        let records = env.records_for(DEV, service).await;
        let (bad, rollback) = (&records[1], &records[2]);
        // ECS reporting the rolled-back deployment FAILED after all: it is no longer current.
        let late = ecs_ended("failed.json", service, &bad["ecs_deployment_id"], 21);
        let response = tracker.handle_event(&late, deadline()).await.unwrap();
        let text = serde_json::to_string(&response).unwrap();
        assert!(text.contains("no longer the service's current deployment"), "{text}");

        // The rollback itself fails: people are told, once; nothing is rolled back again.
        let failed = ecs_ended("failed.json", service, &rollback["ecs_deployment_id"], 22);
        for _ in 0..2 {
            let response = tracker.handle_event(&failed, deadline()).await.unwrap();
            let text = serde_json::to_string(&response).unwrap();
            assert!(text.contains("itself failed"), "{text}");
        }
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(
            (records[1]["status"].as_str(), records[2]["status"].as_str()),
            ("ROLLED_BACK", "FAILED")
        );
        assert_eq!(&env.running(DEV, service).await, good);
    }
    let notices = env.notices().await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices.iter().all(|n| n.subject.starts_with("No rollback of dev/")),
        "{notices:?}"
    );
}

#[tokio::test]
async fn a_deregistered_known_good_is_registered_again_from_its_stored_definition() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    for revision in &good {
        env.ecs
            .deregister_task_definition()
            .task_definition(revision)
            .send()
            .await
            .unwrap();
    }

    let response = env
        .alarm_handler()
        .handle_event(
            &alarm("metric-alarm.json", 20),
            delivered(&alarm("metric-alarm.json", 20)),
            deadline(),
        )
        .await
        .unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        let running = env.running(DEV, service).await;
        assert_ne!(&running, good, "an INACTIVE revision is not deployed");
        let ((restored, restored_tags), (original, original_tags)) =
            (env.task_definition(&running).await, env.task_definition(good).await);
        assert_eq!(restored.status().unwrap().as_str(), "ACTIVE");
        assert_eq!(restored.family(), original.family());
        assert_eq!(restored.container_definitions(), original.container_definitions());
        assert_eq!(restored.cpu(), original.cpu());
        let rollback = env.records_for(DEV, service).await.pop().unwrap();
        // Tagged with the rollback that registered it, not with the deploy it copies.
        let mut expected = without_deployment_tag(original_tags);
        expected.push(deployment_tag(&rollback["id"]));
        assert_eq!(restored_tags, expected);
        assert_eq!(rollback["task_definition"], running);
    }
}

#[tokio::test]
async fn without_any_known_good_target_nothing_changes_and_people_are_told() {
    let env = Env::new().await;
    env.handler()
        .handle_event(&push("latest", 1, 0), deadline())
        .await
        .unwrap();
    // The revision the service ran before is gone, and its definition was never stored.
    for (service, _) in SERVICES {
        let record = env.records_for(DEV, service).await.pop().unwrap();
        env.ddb
            .update_item()
            .table_name(&env.world.table)
            .key("pk", AttributeValue::S(format!("DEP#{}", record["id"])))
            .key("sk", AttributeValue::S("DEP".into()))
            .update_expression("REMOVE previous_definition")
            .send()
            .await
            .unwrap();
        env.ecs
            .deregister_task_definition()
            .task_definition(env.initial(DEV, service))
            .send()
            .await
            .unwrap();
    }
    let before = env.records().await;
    let running: Vec<_> = futures_util::future::join_all(SERVICES.iter().map(|(s, _)| env.running(DEV, s))).await;

    let response = env
        .alarm_handler()
        .handle_event(
            &alarm("metric-alarm.json", 3),
            delivered(&alarm("metric-alarm.json", 3)),
            deadline(),
        )
        .await
        .unwrap();
    assert_only_notified(&response, "never stored");
    assert_dev_unchanged(&env, &before, &running).await;
    assert_eq!(env.notices().await.len(), 2);
}

#[tokio::test]
async fn other_transitions_and_unguarded_alarms_change_nothing() {
    let env = Env::new().await;
    deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let before = env.records().await;
    for file in ["ok.json", "alarm-to-alarm.json", "unguarded.json"] {
        let response = env
            .alarm_handler()
            .handle_event(&alarm(file, 20), delivered(&alarm(file, 20)), deadline())
            .await
            .unwrap();
        assert!(matches!(response, Response::Ignored { .. }), "{file}: {response:?}");
    }
    assert_eq!(env.records().await, before);
    assert!(env.notices().await.is_empty());
}

#[tokio::test]
async fn rollback_on_alarm_binary_handles_every_sample_event() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let binary = harness::built_binary("rollback-on-alarm", "debug");
    let mut function = harness::function::Function::spawn(&binary, &env.moto.endpoint, &env.function_vars()).await;
    let file = |name| event_file("rollback-on-alarm", name);
    // The firing samples, as they would arrive in this story: 20 minutes in.
    let fired = |name| serde_json::to_vec(&alarm(name, 20)).unwrap();
    let results = |response: &serde_json::Value| -> Vec<String> {
        let services = response["services"].as_array().cloned().unwrap_or_default();
        services
            .iter()
            .map(|s| s["result"].as_str().unwrap().to_owned())
            .collect()
    };

    let response = function.invoke(fired("metric-alarm.json")).await.response();
    assert_eq!(results(&response), ["rolled_back", "rolled_back"], "{response}");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(&env.running(DEV, service).await, good);
    }
    for name in ["metric-math-alarm.json", "composite-alarm.json"] {
        let response = function.invoke(fired(name)).await.response();
        assert_eq!(results(&response), ["nothing", "nothing"], "{name}: {response}");
    }
    // Staging never deployed anything: its daily alarm is reported, nothing to undo.
    let response = function.invoke(fired("daily-alarm.json")).await.response();
    assert_eq!(response["stage"], "staging");
    assert_eq!(results(&response), ["notified", "notified"], "{response}");
    for name in ["ok.json", "alarm-to-alarm.json", "unguarded.json"] {
        let response = function.invoke(file(name)).await.response();
        assert_eq!(response["outcome"], "ignored", "{name}: {response}");
    }
    // The sample as it is in events/ fired on 2026-11-22: a delivery that late starts nothing
    // (it would only finish what an earlier delivery of it started).
    let before_late = env.records().await;
    let late = function.invoke(file("metric-alarm.json")).await.response();
    assert_eq!(results(&late), ["nothing", "nothing"], "{late}");
    assert_eq!(env.records().await, before_late);
    let (error_type, message) = function.invoke(file("malformed.json")).await.error();
    assert_eq!(error_type, "BadEvent");
    assert!(message.contains("missing field `alarmName`"), "{message}");
    assert!(function.is_running());

    let subjects: Vec<String> = env.notices().await.into_iter().map(|n| n.subject).collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert_eq!(subjects.iter().filter(|s| s.starts_with("Rolled back dev/")).count(), 2);
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.starts_with("No rollback of staging/"))
            .count(),
        2
    );
    let logs = function.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("\"level\":\"INFO\"") && l.contains("rollback decided")),
        "{logs:?}"
    );
}

/// Two applications in one stage, each with its own alarm: the frontend's alarm rolls back
/// the frontend and never touches the backend.
#[tokio::test]
async fn an_alarm_rolls_back_only_the_application_it_guards() {
    let shipped = harness::fixture("three-stages.toml");
    let two_apps = shipped
        .replacen(
            "[[stage]]",
            "[[application]]\nname = \"frontend\"\nrepository = \"social-analytics/frontend\"\nservices = [{ name = \"web-service\", container = \"web\" }]\n\n[[stage]]",
            1,
        )
        .replacen(
            "alarms.backend = [\"backend-dev-5xx\"",
            "alarms.frontend = [\"frontend-dev-5xx\"]\nalarms.backend = [\"backend-dev-5xx\"",
            1,
        );
    let env = Env::with_pipeline(&two_apps).await;
    let frontend_push = |digest_byte: u8, second: u32| {
        let mut event = push("latest", digest_byte, second);
        event.detail.repository_name = "social-analytics/frontend".into();
        event
    };
    // Each application: a good deploy, then a bad one, both completed.
    for (second, minute) in [(0, 5), (10, 12)] {
        let byte = second as u8 + 1;
        for event in [push("latest", byte, second), frontend_push(byte + 100, second)] {
            env.handler().handle_event(&event, deadline()).await.unwrap();
        }
        for service in ["backend-service", "worker-service", "web-service"] {
            let latest = env.records_for(DEV, service).await.pop().unwrap();
            let completed = ecs_ended("completed.json", service, &latest["ecs_deployment_id"], minute);
            env.tracker().handle_event(&completed, deadline()).await.unwrap();
        }
    }
    let backend_before: Vec<_> = [
        env.running(DEV, "backend-service").await,
        env.running(DEV, "worker-service").await,
    ]
    .into();
    let web_good = env.records_for(DEV, "web-service").await[0]["task_definition"].clone();

    let mut fired = alarm("metric-alarm.json", 20);
    fired.detail.alarm_name = "frontend-dev-5xx".into();
    let response = env
        .alarm_handler()
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap();
    let Response::Handled {
        application, services, ..
    } = &response
    else {
        panic!("{response:?}")
    };
    assert_eq!(application, "frontend");
    assert_eq!(
        services.iter().map(|s| s.service.as_str()).collect::<Vec<_>>(),
        ["web-service"]
    );
    assert_eq!(rolled_back(&response), 1);
    assert_eq!(env.running(DEV, "web-service").await, web_good);
    assert_eq!(
        vec![
            env.running(DEV, "backend-service").await,
            env.running(DEV, "worker-service").await
        ],
        backend_before,
        "the backend is untouched"
    );
    for service in ["backend-service", "worker-service"] {
        let records = env.records_for(DEV, service).await;
        assert!(
            records
                .iter()
                .all(|r| r["kind"] == "deploy" && r["status"] == "SUCCEEDED"),
            "{records:?}"
        );
        assert!(env.quarantined(DEV, service).await.is_empty());
    }
    let notices = env.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].subject.starts_with("Rolled back dev/web-service"));
}

/// One history row nobody can read (a hand edit, a record from a future version) is skipped
/// and logged: the service still rolls back to the known good behind it.
#[tokio::test]
async fn an_unreadable_history_row_does_not_disable_rollback() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    for (service, _) in SERVICES {
        let svc_sk = format!("{}#dep-garbled-{service}", event_time(story_time(8)));
        env.ddb
            .put_item()
            .table_name(&env.world.table)
            .item("pk", AttributeValue::S(format!("DEP#dep-garbled-{service}")))
            .item("sk", AttributeValue::S("DEP".into()))
            .item("svc_pk", AttributeValue::S(format!("SVC#{DEV}#{service}")))
            .item("svc_sk", AttributeValue::S(svc_sk))
            .item("status", AttributeValue::S("HALF_DONE".into()))
            .send()
            .await
            .unwrap();
    }
    let fired = alarm("metric-alarm.json", 20);
    let response = env
        .alarm_handler()
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap();
    assert_eq!(rolled_back(&response), 2, "{response:?}");
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(&env.running(DEV, service).await, good);
    }
}
