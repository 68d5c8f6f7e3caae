//! track-deployment against moto: endings of the deployments deploy-on-push started.

use crate::support::*;
use harness::event_file;
use harness::function::Function;
use shared::events::EcsDeploymentEvent;
use shared::handlers::restore::RestoreOutcome as RollbackOutcome;
use shared::handlers::track_deployment::TrackResponse as Response;

/// The sample event `file`, about `cluster/service` and ECS deployment `id`.
fn ecs_event(file: &str, cluster: &str, service: &str, id: &str) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_slice(&event_file("track-deployment", file)).unwrap();
    event["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}").into();
    event["detail"]["deploymentId"] = id.into();
    event
}

fn typed(value: serde_json::Value) -> EcsDeploymentEvent {
    serde_json::from_value(value).unwrap()
}

fn tracker(env: &Env) -> Tracker {
    env.tracker()
}

/// Deploys the sample push to dev; returns each service's ECS deployment id.
async fn deployed(env: &Env) -> Vec<(&'static str, String)> {
    env.handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (service, _) in SERVICES {
        ids.push((
            service,
            env.records_for(DEV, service).await[0]["ecs_deployment_id"].clone(),
        ));
    }
    ids
}

#[tokio::test]
async fn completion_records_success_once() {
    let env = Env::new().await;
    let tracker = tracker(&env);
    for (service, id) in deployed(&env).await {
        let completed = typed(ecs_event("completed.json", DEV, service, &id));
        let response = tracker.handle_event(&completed, deadline()).await.unwrap();
        assert!(
            matches!(&response, Response::Recorded { status, rollback: None, .. } if status == "SUCCEEDED"),
            "{response:?}"
        );
        let record = &env.records_for(DEV, service).await[0];
        assert_eq!(record["status"], "SUCCEEDED");
        assert_eq!(record["completed_at"], "2026-11-22T10:06:58.417Z");

        // The history is the one source of truth for the last known good: no copy of it.
        assert!(!env.state_item(DEV, service).await.contains_key("last_known_good"));

        let again = tracker.handle_event(&completed, deadline()).await.unwrap();
        assert_eq!(
            again,
            Response::Ignored {
                reason: format!("{id}: already recorded as SUCCEEDED")
            }
        );
    }
}

#[tokio::test]
async fn a_failure_is_recorded_and_rolled_back_to_what_ran_before_once() {
    let env = Env::new().await;
    let (service, id) = deployed(&env).await.remove(0);
    let deployed_id = env.records_for(DEV, service).await[0]["id"].clone();
    let failed = typed(ecs_event("failed.json", DEV, service, &id));
    let response = tracker(&env).handle_event(&failed, deadline()).await.unwrap();
    assert!(
        matches!(&response, Response::Recorded { status, rollback: Some(RollbackOutcome::RolledBack { to, rolled_back, .. }), .. }
            if status == "FAILED" && *to == env.initial(DEV, service) && *rolled_back == deployed_id),
        "{response:?}"
    );
    let records = env.records_for(DEV, service).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let (deploy, rollback) = (&records[0], &records[1]);
    assert_eq!(deploy["status"], "ROLLED_BACK");
    assert_eq!(
        deploy["ecs_reason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert_eq!(
        (rollback["kind"].as_str(), rollback["status"].as_str()),
        ("rollback", "DEPLOYING")
    );
    assert!(rollback["rollback_cause"].contains("FAILED: ECS deployment circuit breaker"));
    // No deploy ever succeeded here: back to what the service ran before the first one.
    assert_eq!(env.running(DEV, service).await, env.initial(DEV, service));
    assert!(!env.state_item(DEV, service).await.contains_key("last_known_good"));
    assert_eq!(env.quarantined(DEV, service).await, vec![records[0]["digest"].clone()]);
    let mut subjects: Vec<String> = env.notices().await.into_iter().map(|n| n.subject).collect();
    subjects.sort();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0].starts_with(&format!("Deploy FAILED dev/{service}: latest (")),
        "{subjects:?}"
    );
    assert!(
        subjects[1].starts_with(&format!("Rolled back dev/{service}: ")),
        "{subjects:?}"
    );

    // A redelivery changes nothing and says nothing.
    let again = tracker(&env).handle_event(&failed, deadline()).await.unwrap();
    assert!(
        matches!(
            &again,
            Response::Recorded {
                rollback: Some(RollbackOutcome::Nothing { .. }),
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(env.records_for(DEV, service).await.len(), 2);
    assert!(env.notices().await.is_empty());
}

#[tokio::test]
async fn progress_foreign_deployments_and_foreign_services_change_nothing() {
    let env = Env::new().await;
    let (service, id) = deployed(&env).await.remove(0);
    let tracker = tracker(&env);
    let before = env.records().await;
    let cases = [
        (
            ecs_event("in-progress.json", DEV, service, &id),
            "`SERVICE_DEPLOYMENT_IN_PROGRESS` is not the end of a deployment".to_owned(),
        ),
        (
            ecs_event("completed.json", DEV, service, "ecs-svc/1111"),
            "ecs-svc/1111: a deployment this pipeline did not start".to_owned(),
        ),
        (
            ecs_event("completed.json", "someone-elses-cluster", service, &id),
            format!("service `someone-elses-cluster/{service}` is not in the pipeline file"),
        ),
        (
            ecs_event("completed.json", DEV, "worker-service", &id),
            format!("{id}: a deployment this pipeline did not start"),
        ),
    ];
    for (event, reason) in cases {
        assert_eq!(
            tracker.handle_event(&typed(event), deadline()).await.unwrap(),
            Response::Ignored { reason }
        );
    }
    assert_eq!(env.records().await, before);
    assert!(!env.state_item(DEV, service).await.contains_key("last_known_good"));
}

#[tokio::test]
async fn track_deployment_binary_handles_every_sample_event() {
    let env = Env::new().await;
    let (service, id) = deployed(&env).await.remove(0);
    let binary = harness::built_binary("track-deployment", "debug");
    let mut function = Function::spawn(&binary, &env.moto.endpoint, &env.function_vars()).await;
    let bytes = |value: serde_json::Value| serde_json::to_vec(&value).unwrap();

    let response = function
        .invoke(bytes(ecs_event("in-progress.json", DEV, service, &id)))
        .await
        .response();
    assert_eq!(response["outcome"], "ignored");
    let response = function
        .invoke(event_file("track-deployment", "completed.json"))
        .await
        .response();
    assert_eq!(response["outcome"], "ignored", "the sample's deployment id is not ours");
    let response = function
        .invoke(bytes(ecs_event("completed.json", DEV, service, &id)))
        .await
        .response();
    assert_eq!(
        (response["outcome"].as_str(), response["status"].as_str()),
        (Some("recorded"), Some("SUCCEEDED"))
    );
    assert_eq!(env.records_for(DEV, service).await[0]["status"], "SUCCEEDED");

    let (error_type, message) = function
        .invoke(event_file("track-deployment", "malformed.json"))
        .await
        .error();
    assert_eq!(error_type, "BadEvent");
    assert!(message.contains("missing field `deploymentId`"), "{message}");
    assert!(function.is_running());
}
