//! The internet-facing page's credentials, tried from the attacker's side: every write goes
//! through the IAM edge with the page role's conditions from template.yaml. What it refuses is
//! refused; what it lets through (and every row the role's old PutItem let through, written
//! here without the edge) never becomes a rollback target, a staging verdict or a promotion
//! step.

use crate::approval::Loop;
use crate::rollback::{alarm, deploy_and_complete};
use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use harness::iam_edge::{IamEdge, dynamodb_statements};
use shared::domain::approval::{ApprovalStatus, ApprovalToken, Verdict, Vote, VoteProof, Voter};
use shared::ports::Approvals;
use std::collections::HashMap;

/// A DynamoDB client holding the approval page's permissions, and the edge that enforces them.
async fn page_credentials(env: &Env) -> (IamEdge, aws_sdk_dynamodb::Client) {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let edge = IamEdge::start(&env.moto.endpoint, dynamodb_statements(&template, "ApprovalPageRole")).await;
    let client = aws_sdk_dynamodb::Client::new(&harness::moto::sdk_config_for(&edge.endpoint).await);
    (edge, client)
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn is_access_denied<E: std::fmt::Debug>(result: Result<impl std::fmt::Debug, E>) -> bool {
    format!("{result:?}").contains("AccessDenied")
}

/// A deployment of `cluster`/`service` as deploy-on-push stores one, copied from `model`, but
/// under `pk` (outside `DEP#`), newer, SUCCEEDED, naming `task_definition`.
fn forged_deployment(
    model: &HashMap<String, AttributeValue>,
    pk: &str,
    minute: i64,
    task_definition: &str,
) -> HashMap<String, AttributeValue> {
    let mut item = model.clone();
    let id = pk.trim_start_matches("APR#").to_owned();
    let at = harness::event_time(harness::story_time(minute));
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s("DEP"));
    item.insert("id".into(), s(&id));
    item.insert("svc_sk".into(), s(format!("{at}#{id}")));
    item.insert("requested_at".into(), s(&at));
    item.insert("completed_at".into(), s(&at));
    item.insert("status".into(), s("SUCCEEDED"));
    item.insert("task_definition".into(), s(task_definition));
    item.insert("ecs_deployment_id".into(), s(format!("ecs-svc/{id}")));
    item
}

async fn item(env: &Env, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    env.ddb
        .get_item()
        .table_name(&env.world.table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .send()
        .await
        .unwrap()
        .item
        .expect("the item")
}

#[tokio::test]
async fn no_item_the_page_role_can_write_becomes_a_rollback_target() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    let (_edge, page) = page_credentials(&env).await;
    for (service, _) in SERVICES {
        let bad = env.records_for(DEV, service).await.pop().unwrap();
        let model = item(&env, &format!("DEP#{}", bad["id"]), "DEP").await;
        let pk = format!("APR#apr-forged-{service}");
        let forged = forged_deployment(&model, &pk, 15, &env.initial(DEV, service));

        // The role writes no whole item, and no attribute an index or a reader keys on.
        let put = page
            .put_item()
            .table_name(&env.world.table)
            .set_item(Some(forged.clone()));
        assert!(is_access_denied(put.send().await), "PutItem is refused");
        for attribute in [
            "svc_pk",
            "svc_sk",
            "ecs_deployment_id",
            "in_flight",
            "task_definition",
            "promotion",
        ] {
            let update = page
                .update_item()
                .table_name(&env.world.table)
                .key("pk", s(&pk))
                .key("sk", s("DEP"))
                .update_expression("SET #a = :v")
                .expression_attribute_names("#a", attribute)
                .expression_attribute_values(":v", forged.get(attribute).cloned().unwrap_or(s("x")));
            assert!(is_access_denied(update.send().await), "{attribute} is refused");
        }
        let at_deployment = page
            .update_item()
            .table_name(&env.world.table)
            .key("pk", s(format!("DEP#{}", bad["id"])))
            .key("sk", s("DEP"))
            .update_expression("SET #status = :s")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s("SUCCEEDED"));
        assert!(is_access_denied(at_deployment.send().await), "no key outside APR#apr-");
        // What it may write: decision attributes at any APR#apr- key, any sort key.
        page.update_item()
            .table_name(&env.world.table)
            .key("pk", s(&pk))
            .key("sk", s("DEP"))
            .update_expression("SET #status = :s, #version = :v")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":s", s("SUCCEEDED"))
            .expression_attribute_values(":v", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("the role may write a decision's attributes");
        // And the whole forged row, as the role's old PutItem allowed: in the by-service index now.
        env.ddb
            .put_item()
            .table_name(&env.world.table)
            .set_item(Some(forged_deployment(
                &model,
                &format!("{pk}-put"),
                16,
                &env.initial(DEV, service),
            )))
            .send()
            .await
            .unwrap();
    }

    let fired = alarm("metric-alarm.json", 20);
    env.alarm_handler()
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap();
    for ((service, _), good) in SERVICES.iter().zip(&good) {
        assert_eq!(
            &env.running(DEV, service).await,
            good,
            "{service} went back to its last known good, not to a forged row's task definition"
        );
    }
}

#[tokio::test]
async fn no_item_the_page_role_can_write_passes_a_release_through_staging() {
    let run = Loop::start().await;
    // A digest staging never ran, with a SUCCEEDED staging row for every service outside DEP#.
    run.env.passes_staging(&digest(0x40), 0).await;
    for (service, _) in SERVICES {
        let real = run.env.records_for(STAGING, service).await.pop().unwrap();
        let mut forged = forged_deployment(
            &item(&run.env, &format!("DEP#{}", real["id"]), "DEP").await,
            &format!("APR#apr-forged-staging-{service}"),
            30,
            &real["task_definition"],
        );
        forged.insert("digest".into(), s(digest(0x41)));
        run.env
            .ddb
            .put_item()
            .table_name(&run.env.world.table)
            .set_item(Some(forged))
            .send()
            .await
            .unwrap();
    }
    let handler = run
        .env
        .handler_linking_to(run.env.pipeline.clone(), &run.env.config, &run.page.url);
    handler
        .handle_event(&push("v4.1.0", 0x41, 50), deadline())
        .await
        .unwrap();
    assert!(run.links().await.is_empty(), "no link for a release staging never ran");
    let records = shared::adapters::dynamo::DynamoRecords::new(&run.env.config, &run.env.world.table);
    let blocked = records.approvals_in(&[ApprovalStatus::Blocked]).await.unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
}

#[tokio::test]
async fn the_page_role_cannot_approve_without_the_approvers_or_change_the_promotion() {
    let run = Loop::start().await;
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    run.release("v4.2.0", 0x42, 0).await;
    let link = run.links().await.remove(0).2;
    let request = run.request(&link).await;
    let (edge, page) = page_credentials(&run.env).await;
    let pk = format!("APR#{}", request.id);

    // Nothing of the release, the policy or the promotion is the page's to write.
    for attribute in [
        "approvals_required",
        "wait_seconds",
        "decide_by",
        "cluster",
        "digest",
        "services",
        "promotion",
        "evidence",
        // Marking a release as an operator's rollback would skip its staging evidence and wait.
        "rollback",
    ] {
        let update = page
            .update_item()
            .table_name(&run.env.world.table)
            .key("pk", s(&pk))
            .key("sk", s("APR"))
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", s("0"));
        assert!(is_access_denied(update.send().await), "{attribute} is refused");
    }
    // The status it may write: APPROVED ten minutes ago (past the wait, within the snapshot
    // timeout), with no approver's vote; a sweep follows.
    let ten_minutes_ago = (chrono::Utc::now() - chrono::TimeDelta::minutes(10)).to_rfc3339();
    page.update_item()
        .table_name(&run.env.world.table)
        .key("pk", s(&pk))
        .key("sk", s("APR"))
        .update_expression("SET #status = :approved, #decided_at = :earlier, #version = :next")
        .condition_expression("#version = :read")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#decided_at", "decided_at")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(":approved", s("APPROVED"))
        .expression_attribute_values(":earlier", s(ten_minutes_ago))
        .expression_attribute_values(":next", AttributeValue::N((request.version + 1).to_string()))
        .expression_attribute_values(":read", AttributeValue::N(request.version.to_string()))
        .send()
        .await
        .expect("the role may write a status");
    let promote = run.env.promoter_with(&run.env.config);
    let now = chrono::Utc::now();
    promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap();

    // And the ballots, through the page's own writer: every listed approver's ballot voting
    // approve ten minutes ago, with a made-up proof or an operator's name; then with proofs
    // from a token of the attacker's own, added to each ballot.
    let page_config = harness::moto::sdk_config_for(&edge.endpoint).await;
    let as_page = shared::adapters::dynamo::DynamoRecords::new(&page_config, &run.env.world.table);
    let own = ApprovalToken::from_random([0x66; 32]);
    let made_up: VoteProof = serde_json::from_value(serde_json::json!("ab".repeat(32))).unwrap();
    let forgeries: [[(Option<VoteProof>, Option<String>); 2]; 2] = [
        [
            (Some(made_up), None),
            (None, Some("arn:aws:iam::123456789012:user/ops".to_owned())),
        ],
        [
            (Some(own.proof(Verdict::Approve)), None),
            (Some(own.proof(Verdict::Approve)), None),
        ],
    ];
    for forgery in forgeries {
        let mut forged = run.request(&link).await;
        for (ballot, (proof, operator)) in forged.ballots.iter_mut().zip(forgery) {
            ballot.token_hashes.push(own.hash());
            ballot.vote = Some(Vote {
                verdict: Verdict::Approve,
                at: now - chrono::TimeDelta::minutes(10),
                proof,
                voter: Voter {
                    operator,
                    ..Voter::default()
                },
            });
        }
        forged.status = ApprovalStatus::Approved;
        forged.decided_at = Some(now - chrono::TimeDelta::minutes(10));
        forged.version += 1;
        assert!(
            as_page.save_decision(&forged).await.unwrap(),
            "the role may write ballots"
        );
        promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap();
    }

    for later in [0, 10, 90] {
        let at = now + chrono::TimeDelta::minutes(later);
        promote.sweep(at, at + chrono::TimeDelta::seconds(30)).await.unwrap();
    }
    for (service, _) in SERVICES {
        assert_eq!(
            run.env.running(PROD, service).await,
            run.env.initial(PROD, service),
            "{service}: nothing deployed without the approvers"
        );
        let records = run.env.records_for(PROD, service).await;
        assert_eq!(records.last().unwrap()["status"], "AWAITING_APPROVAL");
    }
    let rds = aws_sdk_rds::Client::new(&run.env.config);
    let snapshots = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .unwrap();
    assert!(snapshots.db_snapshots().is_empty(), "no pre-deployment snapshot either");
}
