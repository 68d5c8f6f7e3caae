//! The deploy-on-push handler against moto: ECS state and records are what is asserted.

use crate::support::*;
use lambda_runtime::{Context, LambdaEvent};
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::deployment::DeploymentId;
use shared::domain::names::{ClusterName, ServiceName};
use shared::domain::taskdef::DEPLOYMENT_TAG;
use shared::handlers::deploy_on_push::{PushError, PushResponse as Response, TargetOutcome};
use shared::ports::{Deployments, Ecs};
use std::sync::Arc;

fn outcomes(response: &Response) -> Vec<(String, String, &TargetOutcome)> {
    match response {
        Response::Handled { targets, .. } => targets
            .iter()
            .map(|t| (t.stage.clone(), t.service.clone(), &t.result))
            .collect(),
        Response::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[tokio::test]
async fn push_deploys_each_service_of_matching_stages_pinned_by_digest_changing_nothing_else() {
    let env = Env::new().await;
    let response = env
        .handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let digest = "sha256:4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19";
    let pinned = format!("{REGISTRY}@{digest}");

    let results = outcomes(&response);
    assert_eq!(results.len(), 2, "`latest` matches dev only: {results:?}");
    for (service, container) in SERVICES {
        let initial = env.initial(DEV, service);
        let running = env.running(DEV, service).await;
        assert_ne!(running, initial, "{service} runs a new revision");

        let (before, before_tags) = env.task_definition(&initial).await;
        let (after, after_tags) = env.task_definition(&running).await;
        assert_eq!(after.family(), before.family());
        assert_eq!(after.revision(), before.revision() + 1);
        let app = after
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))
            .unwrap();
        assert_eq!(
            app.image(),
            Some(pinned.as_str()),
            "{service}'s {container} is pinned by digest"
        );

        // Everything else is as it was: the other container, and every field of this one.
        let mut expected_containers = before.container_definitions().to_vec();
        expected_containers
            .iter_mut()
            .find(|c| c.name() == Some(container))
            .unwrap()
            .image = Some(pinned.clone());
        assert_eq!(after.container_definitions(), expected_containers.as_slice());
        assert_eq!(after.task_role_arn(), before.task_role_arn());
        assert_eq!(after.execution_role_arn(), before.execution_role_arn());
        assert_eq!(after.network_mode(), before.network_mode());
        assert_eq!(after.cpu(), before.cpu());
        assert_eq!(after.memory(), before.memory());
        assert_eq!(after.volumes(), before.volumes());
        assert_eq!(after.requires_compatibilities(), before.requires_compatibilities());
        assert_eq!(after.ephemeral_storage(), before.ephemeral_storage());
        assert_eq!(after.runtime_platform(), before.runtime_platform());
        // Every tag is copied but AWS's own (`aws:`), which RegisterTaskDefinition refuses.
        let own: Vec<_> = before_tags
            .iter()
            .filter(|t| !t.key().unwrap().starts_with("aws:"))
            .cloned()
            .collect();
        assert!(own.len() >= 2 && own.len() < before_tags.len(), "{before_tags:?}");
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1);
        let record = &records[0];
        // …and the revision names the deployment that registered it.
        let (copied, ours) = after_tags.split_at(own.len());
        assert_eq!(copied, own);
        assert_eq!(
            ours.iter()
                .map(|t| (t.key().unwrap(), t.value().unwrap()))
                .collect::<Vec<_>>(),
            [(DEPLOYMENT_TAG, record["id"].as_str())]
        );
        assert_eq!(record["status"], "DEPLOYING");
        assert_eq!(record["stage"], "dev");
        assert_eq!(record["container"], container);
        assert_eq!(record["tag"], "latest");
        assert_eq!(record["digest"], digest);
        assert_eq!(record["image"], pinned);
        assert_eq!(record["pushed_at"], "2026-11-22T10:00:00.000Z");
        assert_eq!(record["previous_task_definition"], initial);
        assert_eq!(record["task_definition"], running);
        assert!(record["ecs_deployment_id"].starts_with("ecs-svc/"));
        assert_eq!(
            record["ecs_deployment_id"],
            env.primary_deployment_id(DEV, service).await
        );
        assert_eq!(record["svc_pk"], format!("SVC#{DEV}#{service}"));

        // Both revisions are stored in ECS's own JSON, enough to register them again.
        let stored: serde_json::Value = serde_json::from_str(&record["definition"]).unwrap();
        assert_eq!(stored["taskDefinition"]["taskDefinitionArn"], running.as_str());
        let stored_containers = stored["taskDefinition"]["containerDefinitions"].as_array().unwrap();
        assert_eq!(stored_containers.len(), after.container_definitions().len());
        let stored_app = stored_containers.iter().find(|c| c["name"] == container).unwrap();
        assert_eq!(stored_app["image"], pinned.as_str());
        assert_eq!(
            stored["taskDefinition"]["executionRoleArn"],
            after.execution_role_arn().unwrap()
        );
        let stored_tags: Vec<(&str, &str)> = stored["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
            .collect();
        let registered_tags: Vec<(&str, &str)> = after_tags
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            stored_tags, registered_tags,
            "stored with the tags it was registered with"
        );
        let previous: serde_json::Value = serde_json::from_str(&record["previous_definition"]).unwrap();
        assert_eq!(previous["taskDefinition"]["taskDefinitionArn"], initial.as_str());
        assert_eq!(
            previous["tags"].as_array().unwrap().len(),
            before_tags.len(),
            "the previous revision stored as ECS described it"
        );
    }
    for cluster in [STAGING, PROD] {
        for (service, _) in SERVICES {
            assert_eq!(env.running(cluster, service).await, env.initial(cluster, service));
        }
    }
}

#[tokio::test]
async fn a_release_tag_deploys_dev_and_waits_for_approval_in_prod() {
    let env = Env::new().await;
    let release = event("push-release.json");
    env.passes_staging(release.detail.image_digest.as_deref().unwrap(), 0)
        .await;
    let response = env
        .handler()
        .handle_event(&event("push-release.json"), deadline())
        .await
        .unwrap();
    let results = outcomes(&response);
    let stages: Vec<_> = results.iter().map(|(stage, _, _)| stage.as_str()).collect();
    assert_eq!(stages, ["dev", "dev", "prod", "prod"]);

    for (service, _) in SERVICES {
        assert_ne!(env.running(DEV, service).await, env.initial(DEV, service));
        assert_eq!(
            env.running(PROD, service).await,
            env.initial(PROD, service),
            "prod waits for approval"
        );
        let records = env.records_for(PROD, service).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["status"], "AWAITING_APPROVAL");
        assert_eq!(records[0]["tag"], "v1.4.0");
        assert!(!records[0].contains_key("task_definition"));
    }
}

#[tokio::test]
async fn pushes_that_are_not_for_us_are_ignored_and_change_nothing() {
    let env = Env::new().await;
    let revisions = env.revision_count().await;
    let mut unknown_repository = event("push-latest.json");
    unknown_repository.detail.repository_name = "someone-else/frontend".into();
    let only_feature_tags = shared::domain::pipeline::Pipeline::parse(
        &harness::fixture("three-stages.toml").replace("tags = \"*\"", "tags = \"feature-*\""),
    )
    .unwrap();

    let handler = env.handler();
    let cases = [
        (
            handler.handle_event(&event("delete.json"), deadline()).await,
            "action-type `DELETE` is not a push",
        ),
        (
            handler.handle_event(&event("push-failed.json"), deadline()).await,
            "the push failed",
        ),
        (
            handler.handle_event(&event("push-untagged.json"), deadline()).await,
            "untagged push (manifest child or attestation)",
        ),
        (
            handler.handle_event(&unknown_repository, deadline()).await,
            "repository `someone-else/frontend` is not in the pipeline file",
        ),
        (
            env.handler_with(only_feature_tags, &env.config)
                .handle_event(&event("push-latest.json"), deadline())
                .await,
            "no stage's tag rule matches `latest`",
        ),
    ];
    for (response, reason) in cases {
        assert_eq!(response.unwrap(), Response::Ignored { reason: reason.into() });
    }
    assert_eq!(env.revision_count().await, revisions);
    assert!(env.records().await.is_empty());
}

#[tokio::test]
async fn the_same_event_twice_deploys_once() {
    let env = Env::new().await;
    let handler = env.handler();
    let revisions = env.revision_count().await;
    handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let again = handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    for (_, _, outcome) in outcomes(&again) {
        assert!(matches!(outcome, TargetOutcome::Skipped { .. }), "{outcome:?}");
    }
    assert_eq!(
        env.revision_count().await,
        revisions + 2,
        "one new revision per dev service"
    );
    assert_eq!(env.records().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_deliveries_deploy_once() {
    let env = Env::new().await;
    let handler = Arc::new(env.handler());
    let revisions = env.revision_count().await;
    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let handler = handler.clone();
        deliveries.spawn(async move { handler.handle_event(&event("push-latest.json"), deadline()).await });
    }
    let mut deployed = 0;
    while let Some(result) = deliveries.join_next().await {
        let response = result.unwrap().expect("every delivery succeeds");
        deployed += outcomes(&response)
            .iter()
            .filter(|(_, _, o)| matches!(o, TargetOutcome::Deploying { .. }))
            .count();
    }
    assert_eq!(deployed, 2, "one deploy per dev service across all deliveries");
    assert_eq!(env.revision_count().await, revisions + 2);
    let records = env.records().await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["status"] == "DEPLOYING"));
    for (service, _) in SERVICES {
        assert!(
            !env.state_item(DEV, service).await.contains_key("lock_owner"),
            "lock released"
        );
    }
}

#[tokio::test]
async fn a_newer_image_supersedes_the_one_in_flight_and_a_late_older_one_is_skipped() {
    let env = Env::new().await;
    let handler = env.handler();
    handler
        .handle_event(&push("latest", 0xa1, 0), deadline())
        .await
        .unwrap();
    handler
        .handle_event(&push("latest", 0xb2, 30), deadline())
        .await
        .unwrap();

    for (service, container) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 2);
        let (older, newer) = (&records[0], &records[1]);
        assert_eq!(
            (older["digest"].as_str(), older["status"].as_str()),
            (digest(0xa1).as_str(), "SUPERSEDED")
        );
        assert_eq!(older["superseded_by"], newer["id"]);
        assert_eq!(
            (newer["digest"].as_str(), newer["status"].as_str()),
            (digest(0xb2).as_str(), "DEPLOYING")
        );
        assert_eq!(newer["previous_task_definition"], older["task_definition"]);
        let (running, _) = env.task_definition(&env.running(DEV, service).await).await;
        let image = running
            .container_definitions()
            .iter()
            .find(|c| c.name() == Some(container))
            .unwrap()
            .image();
        assert_eq!(image, Some(format!("{REGISTRY}@{}", digest(0xb2)).as_str()));
    }

    // The older push delivered again, late: the service must not go backwards.
    let revisions = env.revision_count().await;
    let late = handler
        .handle_event(&push("latest", 0xa1, 0), deadline())
        .await
        .unwrap();
    for (_, _, outcome) in outcomes(&late) {
        assert!(
            matches!(outcome, TargetOutcome::Skipped { reason } if reason.starts_with("a newer image")),
            "{outcome:?}"
        );
    }
    assert_eq!(env.revision_count().await, revisions);
}

#[tokio::test]
async fn a_newer_release_supersedes_the_older_approval_request() {
    let env = Env::new().await;
    env.passes_staging(&digest(0x14), 0).await;
    env.passes_staging(&digest(0x15), 10).await;
    let handler = env.handler();
    handler
        .handle_event(&push("v1.4.0", 0x14, 0), deadline())
        .await
        .unwrap();
    handler
        .handle_event(&push("v1.5.0", 0x15, 20), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let records = env.records_for(PROD, service).await;
        let statuses: Vec<_> = records
            .iter()
            .map(|r| (r["tag"].as_str(), r["status"].as_str()))
            .collect();
        assert_eq!(statuses, [("v1.4.0", "SUPERSEDED"), ("v1.5.0", "AWAITING_APPROVAL")]);
        assert_eq!(records[0]["superseded_by"], records[1]["id"]);
        assert_eq!(env.running(PROD, service).await, env.initial(PROD, service));
    }
}

#[tokio::test]
async fn an_unknown_service_or_cluster_is_a_clear_error_and_leaves_no_record() {
    let env = Env::new().await;
    let text = harness::fixture("three-stages.toml");
    let ghost_service = text.replace(
        "{ name = \"worker-service\", container = \"worker\" },",
        "{ name = \"worker-service\", container = \"worker\" },\n  { name = \"ghost-service\", container = \"ghost\" },",
    );
    let ghost_cluster = text.replace(
        "cluster = \"social-analytics-staging\"",
        "cluster = \"no-such-cluster\"",
    );

    let handler = env.handler_with(
        shared::domain::pipeline::Pipeline::parse(&ghost_service).unwrap(),
        &env.config,
    );
    let err = handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap_err();
    assert!(matches!(&err, PushError::Targets(f) if f.0.len() == 1), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("dev/ghost-service: service `ghost-service` not found in cluster `social-analytics-dev`"),
        "{message}"
    );
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "ServiceNotFound");
    // The real services of the stage were still deployed; the ghost left nothing behind.
    assert!(env.records_for(DEV, "ghost-service").await.is_empty());
    assert_eq!(env.records().await.len(), 2);
    assert!(!env.state_item(DEV, "ghost-service").await.contains_key("lock_owner"));

    let handler = env.handler_with(
        shared::domain::pipeline::Pipeline::parse(&ghost_cluster).unwrap(),
        &env.config,
    );
    let err = handler
        .handle_event(&event("push-main.json"), deadline())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("staging/backend-service") && message.contains("no-such-cluster"),
        "{message}"
    );
    assert!(env.records().await.iter().all(|r| r["cluster"] != "no-such-cluster"));
}

#[tokio::test]
async fn malformed_events_are_typed_errors_that_write_nothing() {
    let env = Env::new().await;
    let handler = env.handler();
    let revisions = env.revision_count().await;
    let lambda_event = |payload: serde_json::Value| LambdaEvent::new(payload, Context::default());

    let malformed: serde_json::Value =
        serde_json::from_slice(&harness::event_file("deploy-on-push", "malformed.json")).unwrap();
    let err = handler.handle(lambda_event(malformed)).await.unwrap_err();
    assert_eq!(err.to_string(), "bad event: detail: missing field `repository-name`");

    let err = handler
        .handle(lambda_event(serde_json::json!({"hello": "world"})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("bad event: .: missing field `detail-type`"),
        "{err}"
    );

    let mut bad_digest = serde_json::to_value(event("push-latest.json")).unwrap();
    bad_digest["detail"]["image-digest"] = "sha256:short".into();
    let err = handler.handle(lambda_event(bad_digest)).await.unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "BadEvent");

    assert_eq!(env.revision_count().await, revisions);
    assert!(env.records().await.is_empty());
}

#[tokio::test]
async fn history_is_newest_first_and_paginated() {
    let env = Env::new().await;
    let handler = env.handler();
    for (n, second) in [(1u8, 0u32), (2, 10), (3, 20)] {
        handler
            .handle_event(&push("latest", n, second), deadline())
            .await
            .unwrap();
    }
    let records = DynamoRecords::new(&env.config, &env.world.table);
    let (cluster, service) = (
        ClusterName::parse(DEV).unwrap(),
        ServiceName::parse("backend-service").unwrap(),
    );
    let first = records.history(&cluster, &service, 2, None).await.unwrap();
    let digests: Vec<_> = first.deployments.iter().map(|d| d.image.digest.to_string()).collect();
    assert_eq!(digests, [digest(3), digest(2)]);
    let second = records
        .history(&cluster, &service, 2, first.next.as_deref())
        .await
        .unwrap();
    let digests: Vec<_> = second.deployments.iter().map(|d| d.image.digest.to_string()).collect();
    assert_eq!(digests, [digest(1)]);
    // DynamoDB may hand back a cursor on a page that happens to end the history; past it
    // there is nothing.
    if let Some(cursor) = second.next.as_deref() {
        let third = records.history(&cluster, &service, 2, Some(cursor)).await.unwrap();
        assert!(third.deployments.is_empty() && third.next.is_none(), "{third:?}");
    }
}

#[tokio::test]
async fn one_digest_pushed_with_several_tags_in_the_same_second_deploys_once() {
    let env = Env::new().await;
    let handler = env.handler();
    // `docker push` of one image under two tags: two events, same digest, same second.
    let tagged = |tag: &str| {
        let mut event = push(tag, 7, 30);
        event.detail.image_tag = Some(tag.into());
        event
    };
    let (first, second) = (tagged("latest"), tagged("main-7a7a7a7"));
    handler.handle_event(&first, deadline()).await.unwrap();
    let response = handler.handle_event(&second, deadline()).await.unwrap();
    let Response::Handled { targets, .. } = &response else {
        panic!("{response:?}")
    };
    for target in targets {
        let expected = if target.stage == "dev" { "skipped" } else { "deploying" };
        let text = serde_json::to_value(target).unwrap();
        assert_eq!(text["result"], expected, "{response:?}");
    }
    for (service, _) in SERVICES {
        assert_eq!(env.records_for(DEV, service).await.len(), 1, "dev got the digest once");
        assert_eq!(env.records_for(STAGING, service).await.len(), 1);
    }
}

#[tokio::test]
async fn of_two_digests_pushed_in_the_same_second_the_first_handled_stays() {
    let env = Env::new().await;
    let handler = env.handler();
    handler.handle_event(&push("latest", 1, 30), deadline()).await.unwrap();
    let response = handler.handle_event(&push("latest", 2, 30), deadline()).await.unwrap();
    // Which was pushed first is unknown at a tie: the one already ahead stays, and the other
    // is skipped rather than deployed over it.
    let Response::Handled { targets, .. } = &response else {
        panic!("{response:?}")
    };
    assert!(
        targets
            .iter()
            .all(|t| matches!(&t.result, TargetOutcome::Skipped { reason } if reason.contains("a newer image is already ahead"))),
        "{response:?}"
    );
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["digest"], digest(1));
        assert_eq!(records[0]["task_definition"], env.running(DEV, service).await);
    }
}

#[tokio::test]
async fn a_deregistered_revision_can_be_registered_again_from_its_record() {
    let env = Env::new().await;
    env.handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let (service, container) = SERVICES[0];
    let record = env.records_for(DEV, service).await.remove(0);
    let lost = env.running(DEV, service).await;
    let (original, original_tags) = env.task_definition(&lost).await;
    env.ecs
        .deregister_task_definition()
        .task_definition(&lost)
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.task_definition(&lost).await.0.status().map(|s| s.as_str()),
        Some("INACTIVE")
    );

    let ecs = shared::adapters::ecs::EcsAdapter::new(&env.config);
    let again = ecs
        .register_stored(
            &record["definition"],
            &DeploymentId::from_stored("rbk-test".into()),
            false,
        )
        .await
        .unwrap();
    assert_ne!(again, lost);
    let (restored, restored_tags) = env.task_definition(&again).await;
    assert_eq!(restored.status().map(|s| s.as_str()), Some("ACTIVE"));
    assert_eq!(restored.family(), original.family());
    assert_eq!(restored.revision(), original.revision() + 1);
    assert_eq!(restored.container_definitions(), original.container_definitions());
    let app = restored
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))
        .unwrap();
    assert_eq!(app.image(), Some(record["image"].as_str()));
    assert_eq!(restored.task_role_arn(), original.task_role_arn());
    assert_eq!(restored.execution_role_arn(), original.execution_role_arn());
    assert_eq!(restored.network_mode(), original.network_mode());
    assert_eq!((restored.cpu(), restored.memory()), (original.cpu(), original.memory()));
    assert_eq!(restored.volumes(), original.volumes());
    assert_eq!(restored.ephemeral_storage(), original.ephemeral_storage());
    assert_eq!(restored.runtime_platform(), original.runtime_platform());
    let mut expected = without_deployment_tag(original_tags);
    expected.push(deployment_tag("rbk-test"));
    assert_eq!(
        restored_tags, expected,
        "AWS's own tags dropped again, and the deploy's: the copy is the registering rollback's"
    );

    let unusable = ecs
        .register_stored("{}", &DeploymentId::from_stored("rbk-test".into()), false)
        .await
        .unwrap_err();
    assert!(matches!(unusable, shared::ports::EcsError::Rejected(_)), "{unusable:?}");
}

#[tokio::test]
async fn a_push_outside_the_window_is_held_in_the_table_and_the_sweep_deploys_it_when_the_freeze_ends() {
    let now = chrono::Utc::now();
    let stamp = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = harness::fixture("three-stages.toml").replacen(
        "tags = \"*\"\n",
        &format!(
            "tags = \"*\"\nfreeze = [{{ from = \"{}\", to = \"{}\", reason = \"game day\" }}]\n",
            stamp(now - chrono::TimeDelta::hours(1)),
            stamp(now + chrono::TimeDelta::hours(1))
        ),
        1,
    );
    let env = Env::with_pipeline(&text).await;
    env.handler()
        .handle_event(&push("build-7", 7, 0), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0]["status"], "HELD");
        assert_eq!(env.running(DEV, service).await, env.initial(DEV, service), "untouched");
    }
    // Held records carry the sparse index's HELD key: the sweep finds them there.
    let promote = env.promoter_with(&env.config);
    let frozen = promote.sweep(now, deadline()).await.unwrap();
    assert_eq!(
        frozen
            .iter()
            .filter(|(_, advanced)| matches!(advanced, shared::handlers::promote::Advanced::Waiting { .. }))
            .count(),
        2,
        "{frozen:?}"
    );
    promote
        .sweep(now + chrono::TimeDelta::hours(2), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records[0]["status"], "DEPLOYING", "{records:?}");
        assert_eq!(env.running(DEV, service).await, records[0]["task_definition"]);
    }
    assert!(
        promote
            .sweep(now + chrono::TimeDelta::hours(2), deadline())
            .await
            .unwrap()
            .is_empty(),
        "out of the index once released"
    );
}
