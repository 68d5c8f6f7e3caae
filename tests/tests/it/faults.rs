//! AWS failing underneath the handler: the error propagates (so Lambda retries), and no
//! record claims a deploy that did not happen.

use crate::support::*;
use harness::fault_proxy::{FaultKind, FaultProxy};
use harness::moto::sdk_config_for;
use shared::handlers::deploy_on_push::TargetOutcome;

#[tokio::test]
async fn throttled_ecs_update_propagates_and_a_retry_deploys() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    proxy.fail("UpdateService", FaultKind::Throttling, 0);

    let err = handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "EcsUnavailable");
    for (service, _) in SERVICES {
        assert_eq!(env.running(DEV, service).await, env.initial(DEV, service));
        assert!(
            !env.state_item(DEV, service).await.contains_key("lock_owner"),
            "lock released"
        );
    }
    // The revision is registered and kept on a REQUESTED record (never DEPLOYING): the retry
    // deploys that same revision instead of registering another.
    let mut registered = Vec::new();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["status"], "REQUESTED", "no record claims the deploy");
        assert!(!records[0].contains_key("ecs_deployment_id"));
        registered.push(records[0]["task_definition"].clone());
    }

    proxy.heal();
    let response = handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let shared::handlers::deploy_on_push::PushResponse::Handled { targets, .. } = response else {
        panic!()
    };
    assert!(
        targets
            .iter()
            .all(|t| matches!(t.result, TargetOutcome::Deploying { .. }))
    );
    for ((service, _), registered) in SERVICES.iter().zip(registered) {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["status"], "DEPLOYING");
        assert_eq!(records[0]["task_definition"], registered, "one revision per deploy");
        assert_eq!(env.running(DEV, service).await, registered);
    }
}

#[tokio::test]
async fn dynamodb_5xx_midway_leaves_no_false_record_and_a_retry_completes() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    // The first PutItem (one service's REQUESTED record) passes; every later one fails: that
    // service's DEPLOYING update and the other service's REQUESTED record.
    proxy.fail("DynamoDB_20120810.PutItem", FaultKind::ServerError, 1);
    let revisions = env.revision_count().await;

    let err = handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap_err();
    assert_eq!(lambda_runtime::Diagnostic::from(err).error_type, "RecordsUnavailable");
    let mut requested = Vec::new();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        let updated = env.running(DEV, service).await != env.initial(DEV, service);
        match records.as_slice() {
            [] => assert!(!updated, "{service}: no record, so ECS must be untouched"),
            [record] => {
                assert_eq!(
                    record["status"], "REQUESTED",
                    "updated but not confirmed: never DEPLOYING"
                );
                assert!(updated, "{service}: its record was created, then ECS acted");
                requested.push(service);
            }
            more => panic!("{service}: {more:?}"),
        }
    }
    assert_eq!(requested.len(), 1, "exactly one service got past its REQUESTED record");

    proxy.heal();
    handler
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1, "the retry took over the REQUESTED record");
        assert_eq!(records[0]["status"], "DEPLOYING");
        assert_eq!(records[0]["task_definition"], env.running(DEV, service).await);
        assert_eq!(
            records[0]["previous_task_definition"],
            env.initial(DEV, service),
            "the retry kept what the service ran before the first attempt"
        );
    }
    // The retry adopted the revision the first attempt registered and ECS already ran.
    assert_eq!(
        env.revision_count().await,
        revisions + 2,
        "one revision per service, not one per attempt"
    );
}
