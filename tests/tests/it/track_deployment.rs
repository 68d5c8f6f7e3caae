//! track-deployment against moto: endings of the deployments deploy-on-push started.

use crate::support::*;
use harness::event_file;
use harness::function::Function;
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::ecs_event::EcsDeploymentEvent;
use shared::track_deployment::{Response, TrackDeployment};

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

fn tracker(env: &Env) -> TrackDeployment<DynamoRecords> {
    TrackDeployment {
        pipeline: shipped_pipeline(),
        records: DynamoRecords::new(&env.config, &env.world.table),
    }
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
async fn completion_records_success_once_and_sets_the_last_known_good() {
    let env = Env::new().await;
    let tracker = tracker(&env);
    for (service, id) in deployed(&env).await {
        let completed = typed(ecs_event("completed.json", DEV, service, &id));
        let response = tracker.handle_event(&completed).await.unwrap();
        assert!(
            matches!(&response, Response::Recorded { status, last_known_good: true, .. } if status == "SUCCEEDED"),
            "{response:?}"
        );
        let record = &env.records_for(DEV, service).await[0];
        assert_eq!(record["status"], "SUCCEEDED");
        assert_eq!(record["completed_at"], "2026-11-22T10:06:58.417Z");

        let state = env.state_item(DEV, service).await;
        let good = state["last_known_good"].as_m().unwrap();
        assert_eq!(good["id"].as_s().unwrap(), &record["id"]);
        assert_eq!(
            good["task_definition"].as_s().unwrap(),
            &env.running(DEV, service).await
        );
        assert_eq!(good["image"].as_s().unwrap(), &record["image"]);

        let again = tracker.handle_event(&completed).await.unwrap();
        assert_eq!(
            again,
            Response::Ignored {
                reason: format!("{id}: already recorded as SUCCEEDED")
            }
        );
    }
}

#[tokio::test]
async fn failure_is_recorded_and_is_no_known_good() {
    let env = Env::new().await;
    let (service, id) = deployed(&env).await.remove(0);
    let response = tracker(&env)
        .handle_event(&typed(ecs_event("failed.json", DEV, service, &id)))
        .await
        .unwrap();
    assert!(matches!(&response, Response::Recorded { status, last_known_good: false, .. } if status == "FAILED"));
    let record = &env.records_for(DEV, service).await[0];
    assert_eq!(record["status"], "FAILED");
    assert_eq!(
        record["ecs_reason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert!(!env.state_item(DEV, service).await.contains_key("last_known_good"));
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
            tracker.handle_event(&typed(event)).await.unwrap(),
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
    let mut function = Function::spawn(&binary, &env.moto.endpoint, &[("TABLE_NAME", env.world.table.as_str())]).await;
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
