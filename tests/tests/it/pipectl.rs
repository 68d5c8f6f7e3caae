//! The operator CLI, as built, against moto.

use crate::support::*;
use harness::built_binary;
use std::process::{Command, Output};

/// pipectl as an operator runs it, against moto.
fn command(env: &Env, args: &[&str]) -> Command {
    let mut command = harness::seed::pipectl(&env.moto.endpoint);
    command
        .args(args)
        .env("TABLE_NAME", &env.world.table)
        .env("PIPELINE_TABLE", &env.pipeline_table);
    command
}

fn pipectl(env: &Env, args: &[&str]) -> Output {
    command(env, args).output().expect("pipectl runs")
}

/// A deployed stack `name` of the env, for the pipeline file `pipeline`.
async fn stack(env: &Env, name: &str, pipeline: &std::path::Path) {
    harness::seed::deployed_stack(
        &env.config,
        &env.moto.endpoint,
        name,
        &env.world,
        &env.pipeline_table,
        pipeline,
    )
    .await;
}

/// The tests' pipeline file, written where pipectl can read it.
fn fixture_file(name: &str, text: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("pipectl-{name}-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn history_lists_a_services_deployments_newest_first_page_by_page() {
    let env = Env::new().await;
    let handler = env.handler();
    for (n, tag, second) in [(1u8, "build-1", 0u32), (2, "build-2", 10), (3, "build-3", 20)] {
        handler.handle_event(&push(tag, n, second), deadline()).await.unwrap();
    }
    let first = stdout(&pipectl(&env, &["history", "dev", "backend-service", "--limit", "2"]));
    let rows: Vec<&str> = first.lines().skip(1).filter(|l| l.starts_with("dep-")).collect();
    assert_eq!(rows.len(), 2, "{first}");
    assert!(rows[0].contains("build-3") && rows[0].contains("DEPLOYING"), "{first}");
    assert!(rows[1].contains("build-2") && rows[1].contains("SUPERSEDED"), "{first}");

    let more = first
        .lines()
        .find(|l| l.starts_with("more: "))
        .expect("a cursor to the next page");
    let cursor = more.split("--after '").nth(1).unwrap().trim_end_matches('\'');
    let second = stdout(&pipectl(
        &env,
        &["history", "dev", "backend-service", "--limit", "2", "--after", cursor],
    ));
    let rows: Vec<&str> = second.lines().filter(|l| l.starts_with("dep-")).collect();
    assert_eq!(rows.len(), 1, "{second}");
    assert!(rows[0].contains("build-1"), "{second}");
}

#[tokio::test]
async fn errors_are_clear_and_fail_the_command() {
    let env = Env::new().await;
    let unknown = pipectl(&env, &["history", "qa", "backend-service"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "pipectl: no stage `qa` in the pipeline file\n"
    );
    assert_eq!(pipectl(&env, &["history", "dev"]).status.code(), Some(2), "usage");

    let bad = std::env::temp_dir().join(format!("pipectl-bad-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "[[application]]\nname = \"Backend\"\nrepository = \"x/y\"\nservices = []\n\n[[stage]]\nname = \"dev\"\ncluster = \"c\"\ntags = \"*\"\n",
    )
    .unwrap();
    let invalid = pipectl(&env, &["validate", bad.to_str().unwrap()]);
    assert_eq!(invalid.status.code(), Some(1));
    let message = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        message.contains("application[0].name: invalid application name `Backend`"),
        "{message}"
    );
    // The template takes every parameter the tests' pipeline implies.
    let fixture = std::env::temp_dir().join(format!("pipectl-fixture-{}.toml", std::process::id()));
    std::fs::write(&fixture, harness::fixture("three-stages.toml")).unwrap();
    let template = harness::repo_root().join("template.yaml");
    let (fixture, template) = (fixture.to_str().unwrap(), template.to_str().unwrap());
    let checked = pipectl(&env, &["validate", fixture, "--template", template]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    assert!(stdout(&checked).contains("stages: dev → staging → prod"));
}

#[test]
fn the_templates_history_index_copies_exactly_what_history_reads() {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let listed = template
        .lines()
        .find_map(|line| line.trim().strip_prefix("NonKeyAttributes: ["))
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("by-service lists its NonKeyAttributes on one line");
    let listed: Vec<&str> = listed.split(',').map(str::trim).collect();
    assert_eq!(listed, shared::adapters::dynamo::HISTORY_ATTRIBUTES);
}

#[tokio::test]
async fn lifting_a_quarantine_lets_the_digest_deploy_again() {
    let env = Env::new().await;
    env.handler()
        .handle_event(&push("latest", 1, 0), deadline())
        .await
        .unwrap();
    // ECS fails the deploy: it is rolled back and its digest quarantined.
    let tracker = env.tracker();
    for (service, _) in SERVICES {
        let record = env.records_for(DEV, service).await.pop().unwrap();
        let mut failed: serde_json::Value =
            serde_json::from_slice(&harness::event_file("track-deployment", "failed.json")).unwrap();
        failed["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/{DEV}/{service}").into();
        failed["detail"]["deploymentId"] = record["ecs_deployment_id"].clone().into();
        tracker
            .handle_event(&serde_json::from_value(failed).unwrap(), deadline())
            .await
            .unwrap();
    }
    assert_eq!(env.quarantined(DEV, "backend-service").await, vec![digest(1)]);
    let skipped = env
        .handler()
        .handle_event(&push("latest", 1, 30), deadline())
        .await
        .unwrap();
    assert!(serde_json::to_string(&skipped).unwrap().contains("quarantined"));

    let lifted = stdout(&pipectl(
        &env,
        &["lift-quarantine", "dev", "backend-service", &digest(1)],
    ));
    assert!(lifted.starts_with(&format!("lifted: {}", digest(1))), "{lifted}");
    assert!(env.quarantined(DEV, "backend-service").await.is_empty());
    assert_eq!(env.quarantined(DEV, "worker-service").await, vec![digest(1)]);
    let again = pipectl(&env, &["lift-quarantine", "dev", "backend-service", &digest(1)]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        format!("pipectl: {} is not quarantined on dev/backend-service\n", digest(1))
    );

    let redeployed = env
        .handler()
        .handle_event(&push("latest", 1, 40), deadline())
        .await
        .unwrap();
    let text = serde_json::to_string(&redeployed).unwrap();
    assert!(
        text.contains("\"service\":\"backend-service\",\"result\":\"deploying\""),
        "{text}"
    );
}

/// The functions pipectl invokes, built, behind Lambda's Invoke API.
async fn functions(env: &Env) -> harness::lambda_invoke::LambdaInvoke {
    let mut functions = std::collections::HashMap::new();
    for name in ["deploy-on-push", "track-deployment", "rollback-on-alarm", "promote"] {
        let binary = built_binary(name, "debug");
        let function = harness::function::Function::spawn(&binary, &env.moto.endpoint, &env.function_vars()).await;
        functions.insert(name.to_owned(), function);
    }
    harness::lambda_invoke::LambdaInvoke::start(functions).await
}

/// A deployed stack `sandbox` of the tests' pipeline, with its functions behind Lambda's
/// Invoke API (what `--stack sandbox` commands that invoke a function need).
async fn sandbox_stack(env: &Env) -> harness::lambda_invoke::LambdaInvoke {
    let lambda = functions(env).await;
    stack(
        env,
        "sandbox",
        &fixture_file("sandbox", &harness::fixture("three-stages.toml")),
    )
    .await;
    lambda
}

/// pipectl, run without blocking the test's runtime, which serves the functions it invokes.
async fn pipectl_with_lambda(env: &Env, lambda: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::from(command(env, args));
    command.env("AWS_ENDPOINT_URL_LAMBDA", lambda);
    command.output().await.expect("pipectl runs")
}

#[tokio::test]
async fn redrive_sends_every_shape_the_queue_holds_back_through_their_functions() {
    let env = Env::new().await;
    let lambda = sandbox_stack(&env).await;
    let sqs = aws_sdk_sqs::Client::new(&env.config);
    let queue_url = sqs
        .create_queue()
        .queue_name("failed-events")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    // A rule's dead letter: the raw push. Lambda's on-failure record: an ECS event.
    let push = String::from_utf8(harness::event_file("deploy-on-push", "push-latest.json")).unwrap();
    let in_progress: serde_json::Value =
        serde_json::from_slice(&harness::event_file("track-deployment", "in-progress.json")).unwrap();
    let on_failure = serde_json::json!({
        "version": "1.0",
        "requestContext": {
            "requestId": "c8b1b7e0-0000-4000-8000-000000000001",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:sandbox-track-deployment:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": in_progress,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "RecordsUnavailable", "errorMessage": "records: throttled"}
    });
    // A stream mapping's on-failure record (no records, only where they were) and a rule's
    // dead-lettered RDS snapshot event: both back to promote, as sweeps.
    let stream_failure = String::from_utf8(harness::event_file("promote", "stream-batch-failed.json")).unwrap();
    let snapshot_event = String::from_utf8(harness::event_file("promote", "snapshot-created.json")).unwrap();
    for body in [
        push,
        on_failure.to_string(),
        stream_failure,
        snapshot_event,
        "garbled".to_owned(),
    ] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let output = pipectl_with_lambda(
        &env,
        &lambda.endpoint,
        &["redrive", "--queue-url", &queue_url, "--stack", "sandbox"],
    )
    .await;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one event could not be redriven: {printed}"
    );
    assert!(printed.contains("4 redriven, 1 kept in the queue"), "{printed}");
    assert!(printed.contains("kept ") && printed.contains("not JSON"), "{printed}");

    let invoked = lambda.invoked();
    let mut functions: Vec<&str> = invoked.iter().map(|i| i.function.as_str()).collect();
    functions.sort();
    assert_eq!(
        functions,
        [
            "arn:aws:lambda:us-east-1:123456789012:function:sandbox-promote",
            "arn:aws:lambda:us-east-1:123456789012:function:sandbox-track-deployment",
            "sandbox-deploy-on-push",
            "sandbox-promote"
        ]
    );
    assert!(invoked.iter().all(|i| i.invocation_type == "Event"));
    // The redriven push really deployed, through the deploy-on-push binary.
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["status"], "DEPLOYING");
    }
    // Only the garbled message is left (invisible for its timeout, then back).
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let count = |name| attributes[&name].parse::<u32>().unwrap();
    assert_eq!(
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        1
    );
}

#[tokio::test]
async fn redeploy_pushes_a_failed_digest_again_and_refuses_anything_else() {
    let env = Env::new().await;
    let lambda = sandbox_stack(&env).await;
    env.handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let refused = pipectl_with_lambda(
        &env,
        &lambda.endpoint,
        &["redeploy", "dev", "backend-service", "--stack", "sandbox"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is DEPLOYING: only a FAILED one is deployed again"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // ECS failed it and nothing could be rolled back: the record says FAILED.
    let failed = env.records_for(DEV, "backend-service").await.remove(0);
    env.ddb
        .update_item()
        .table_name(&env.world.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("DEP#{}", failed["id"])),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("DEP".into()))
        .update_expression("SET #status = :failed")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":failed", aws_sdk_dynamodb::types::AttributeValue::S("FAILED".into()))
        .send()
        .await
        .unwrap();
    let output = pipectl_with_lambda(
        &env,
        &lambda.endpoint,
        &["redeploy", "dev", "backend-service", "--stack", "sandbox"],
    )
    .await;
    assert!(
        stdout(&output).starts_with("pushed again: latest (sha256:4f2a9c1e"),
        "{output:?}"
    );
    let records = env.records_for(DEV, "backend-service").await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        (records[0]["status"].as_str(), records[1]["status"].as_str()),
        ("FAILED", "DEPLOYING")
    );
    assert_eq!(records[1]["digest"], failed["digest"]);
    assert_eq!(records[1]["task_definition"], env.running(DEV, "backend-service").await);
    // The worker's deploy of that digest did not fail: it is left alone.
    assert_eq!(env.records_for(DEV, "worker-service").await.len(), 1);
}

#[tokio::test]
async fn approvals_lists_open_requests_and_an_operator_votes_for_an_approver() {
    let env = Env::new().await;
    env.passes_staging(&digest(0x60), 0).await;
    env.handler()
        .handle_event(&push("v6.0.0", 0x60, 5), deadline())
        .await
        .unwrap();

    let listed = stdout(&pipectl(&env, &["approvals"]));
    let id = listed.split_whitespace().next().unwrap().to_owned();
    assert!(
        id.starts_with("apr-") && listed.contains("v6.0.0 of backend to prod"),
        "{listed}"
    );
    assert!(
        listed.contains("release-manager@example.com: has not voted (link sent)"),
        "{listed}"
    );
    assert!(
        listed.contains("Awaiting approval: 0 of 1 needed approvals so far."),
        "{listed}"
    );

    // The operator works in a role session (as with IAM Identity Center or SAML): the vote is
    // the role's, and its time is AWS's.
    let session = aws_sdk_sts::Client::new(&env.config)
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/release-operators")
        .role_session_name("jane")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let approve = |approver: &str| {
        command(
            &env,
            &[
                "approve",
                &id,
                "--as",
                approver,
                "--comment",
                "links bounced; approved by phone",
            ],
        )
        .env("AWS_ACCESS_KEY_ID", session.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", session.secret_access_key())
        .env("AWS_SESSION_TOKEN", session.session_token())
        .output()
        .expect("pipectl runs")
    };
    let stranger = approve("mallory@example.com");
    assert!(String::from_utf8_lossy(&stranger.stderr).contains("is not an approver of prod"));
    let approved = stdout(&approve("release-manager@example.com"));
    assert!(
        approved.contains("approved for release-manager@example.com by arn:aws:"),
        "{approved}"
    );
    let records = shared::adapters::dynamo::DynamoRecords::new(&env.config, &env.world.table);
    let request =
        shared::ports::Approvals::get_approval(&records, &shared::domain::approval::ApprovalId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(request.status, shared::domain::approval::ApprovalStatus::Approved);
    let vote = request.ballots[0].vote.clone().unwrap();
    let operator = vote.voter.operator.unwrap_or_default();
    assert!(
        operator.starts_with("arn:aws:sts::123456789012:assumed-role/release-operators/"),
        "recorded with the operator: {operator}"
    );
    assert_eq!(
        shared::domain::approval::operator_principal(&operator).as_deref(),
        Some("arn:aws:iam::123456789012:role/release-operators")
    );
    // AWS's time (an HTTP date, whole seconds), not the laptop's.
    assert_eq!(vote.at.timestamp_subsec_nanos(), 0, "{}", vote.at);
    assert!((chrono::Utc::now() - vote.at).num_seconds().abs() < 60);
    assert_eq!(vote.voter.comment, "links bounced; approved by phone");

    let again = pipectl(&env, &["reject", &id, "--as", "oncall-lead@example.com"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing changed"));
    // Approved and not deployed yet (its wait, snapshots or window ahead): still listed.
    let listed = stdout(&pipectl(&env, &["approvals"]));
    assert!(listed.contains("Approved by release-manager@example.com"), "{listed}");
    let unknown = pipectl(
        &env,
        &[
            "approve",
            "apr-000000000000000000000000",
            "--as",
            "oncall-lead@example.com",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr).trim(),
        "pipectl: no approval request apr-000000000000000000000000"
    );
}

#[tokio::test]
async fn approvers_sync_subscribes_each_approver_with_a_filter_on_their_own_address() {
    let env = Env::new().await;
    let sns = aws_sdk_sns::Client::new(&env.config);
    let topic = sns
        .create_topic()
        .name("approvals-sync")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    for (who, policy) in [
        (
            "former-approver@example.com",
            r#"{"approver":["former-approver@example.com"]}"#,
        ),
        (
            "oncall-lead@example.com",
            r#"{"approver":["someone-else@example.com"]}"#,
        ),
    ] {
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("email")
            .endpoint(who)
            .attributes("FilterPolicy", policy)
            .return_subscription_arn(true)
            .send()
            .await
            .unwrap();
    }
    let subscriptions = async || {
        let listed = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .send()
            .await
            .unwrap();
        let mut found = Vec::new();
        for s in listed.subscriptions() {
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(s.subscription_arn().unwrap())
                .send()
                .await
                .unwrap();
            let policy = attributes
                .attributes()
                .unwrap()
                .get("FilterPolicy")
                .cloned()
                .unwrap_or_default();
            let policy: serde_json::Value = serde_json::from_str(&policy).unwrap_or_default();
            found.push((s.endpoint().unwrap().to_owned(), policy));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };

    let dry = stdout(&pipectl(
        &env,
        &["approvers", "sync", "--topic-arn", &topic, "--dry-run"],
    ));
    assert!(dry.contains("release-manager@example.com: would subscribe"), "{dry}");
    assert_eq!(subscriptions().await.len(), 2, "a dry run changes nothing");

    let synced = stdout(&pipectl(&env, &["approvers", "sync", "--topic-arn", &topic]));
    assert!(
        synced.contains("former-approver@example.com: no longer an approver: did unsubscribe"),
        "{synced}"
    );
    let own = |who: &str| serde_json::json!({ "approver": [who] });
    assert_eq!(
        subscriptions().await,
        [
            ("oncall-lead@example.com".to_owned(), own("oncall-lead@example.com")),
            (
                "release-manager@example.com".to_owned(),
                own("release-manager@example.com")
            ),
        ]
    );
    let again = stdout(&pipectl(&env, &["approvers", "sync", "--topic-arn", &topic]));
    assert_eq!(again.matches("filter policy in place").count(), 2, "{again}");

    // A queue subscribed without an approver's filter would read everyone's links.
    let sqs = aws_sdk_sqs::Client::new(&env.config);
    sqs.create_queue().queue_name("eavesdropper").send().await.unwrap();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(format!(
            "arn:aws:sqs:{}:{}:eavesdropper",
            harness::REGION,
            harness::ACCOUNT
        ))
        .send()
        .await
        .unwrap();
    let flagged = pipectl(&env, &["approvers", "sync", "--topic-arn", &topic]);
    assert!(!flagged.status.success());
    let said = String::from_utf8_lossy(&flagged.stdout);
    assert!(
        said.contains("receives links without filtering on one approver"),
        "{said}"
    );
}

#[tokio::test]
async fn snapshot_now_takes_a_kept_snapshot_and_snapshots_lists_ours_with_the_quota() {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let taken = stdout(
        &command(&env, &["snapshot", "now", "social-analytics-db"])
            .env("TOPIC_ARN", &env.world.topic_arn)
            .output()
            .unwrap(),
    );
    assert!(
        taken.starts_with("sched-social-analytics-db-") && taken.contains("kept 30 days"),
        "{taken}"
    );
    let listed = stdout(&pipectl(&env, &["snapshots"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with("sched-social-analytics-db-"))
        .unwrap();
    assert!(row.contains("scheduled") && row.contains("(home)"), "{listed}");
    assert!(
        listed.contains("manual snapshots in the home region (ours and others'): 1 of the quota of 100 (1%)"),
        "{listed}"
    );
    let refused = pipectl(&env, &["snapshot", "now", "some-other-db"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("some-other-db has no [[snapshots.db]] entry"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The stack's cost-report function, built, behind Lambda's Invoke API.
async fn cost_report_function(env: &Env) -> harness::lambda_invoke::LambdaInvoke {
    let function = harness::function::Function::spawn(
        &built_binary("cost-report", "debug"),
        &env.moto.endpoint,
        &env.function_vars(),
    )
    .await;
    harness::lambda_invoke::LambdaInvoke::start([("cost-report".to_owned(), function)].into()).await
}

#[tokio::test]
async fn report_now_has_the_function_send_and_keep_a_report_and_cost_prints_the_last_one() {
    let env = Env::new().await;
    stack(
        &env,
        "prod",
        &fixture_file("prod", &harness::fixture("three-stages.toml")),
    )
    .await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let none = stdout(&pipectl(&env, &["cost"]));
    assert!(none.starts_with("no cost report kept yet"), "{none}");
    let lambda = cost_report_function(&env).await;
    let made = stdout(&pipectl_with_lambda(&env, &lambda.endpoint, &["report", "now", "--stack", "prod"]).await);
    assert!(made.starts_with("backend: est $"), "{made}");
    let invoked = lambda.invoked();
    assert_eq!(
        (invoked[0].function.as_str(), invoked[0].invocation_type.as_str()),
        ("prod-cost-report", "RequestResponse")
    );
    let sent = env.notices().await;
    assert_eq!(sent.len(), 1);
    assert!(made.starts_with(&sent[0].subject), "{made}");
    let last = stdout(&pipectl(&env, &["cost"]));
    assert!(last.starts_with(&sent[0].subject), "{last}");
    assert!(last.contains(&sent[0].message), "{last}");
    assert!(
        last.contains("prod/RDS social-analytics-db") && last.contains("Forecast: unavailable"),
        "{last}"
    );
}

#[tokio::test]
async fn prices_refresh_asks_the_stacks_cost_report_function_and_names_its_error() {
    let env = Env::new().await;
    stack(
        &env,
        "prod",
        &fixture_file("prod", &harness::fixture("three-stages.toml")),
    )
    .await;
    let lambda = cost_report_function(&env).await;
    // moto has no Price List: the function's refresh fails, and pipectl says so.
    let output = pipectl_with_lambda(&env, &lambda.endpoint, &["prices", "refresh", "--stack", "prod"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prod-cost-report: PriceListUnavailable: price list: GetProducts"),
        "{stderr}"
    );
    let invoked = lambda.invoked();
    assert_eq!(invoked.len(), 1);
    assert_eq!(
        (invoked[0].function.as_str(), invoked[0].invocation_type.as_str()),
        ("prod-cost-report", "RequestResponse")
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `pipeline push` checks a file against the account and the stack before it keeps it: a file
/// naming what the account lacks, or what the stack's parameters do not allow, changes
/// nothing; a good one becomes the next version in force, and any version can be put back.
#[tokio::test]
async fn a_pushed_pipeline_is_checked_kept_and_put_in_force_and_a_bad_change_undone() {
    let env = Env::new().await;
    let fixture = harness::fixture("three-stages.toml");
    stack(&env, "team", &fixture_file("team", &fixture)).await;
    let push = |text: String| {
        let file = fixture_file("push", &text);
        pipectl(&env, &["pipeline", "push", file.to_str().unwrap(), "--stack", "team"])
    };

    // What the account lacks: a service, a container, an alarm, a DB.
    let wrong = fixture
        .replace("\"worker-service\"", "\"billing-service\"")
        .replace("container = \"api\"", "container = \"app\"")
        .replace("\"backend-dev-health\"", "\"backend-dev-latency\"");
    let refused = push(wrong);
    assert_eq!(refused.status.code(), Some(1));
    let why = stderr(&refused);
    for problem in [
        "stage dev: no active service billing-service in cluster social-analytics-dev",
        "stage dev: service backend-service's task definition",
        "has no container app",
        "no CloudWatch alarm backend-dev-latency",
        "stage prod: no RDS DB instance social-analytics-db",
        "nothing changed, the pipeline in force stays",
    ] {
        assert!(why.contains(problem), "`{problem}` in:\n{why}");
    }
    let history = stdout(&pipectl(&env, &["pipeline", "history", "--stack", "team"]));
    assert_eq!(history.lines().count(), 1, "{history}");
    assert!(
        history.starts_with("v1 ") && history.contains("(in force)"),
        "{history}"
    );

    // What the account has but the stack was not deployed for: an alarm outside GuardedAlarmNames.
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    aws_sdk_cloudwatch::Client::new(&env.config)
        .put_metric_alarm()
        .alarm_name("backend-dev-latency")
        .namespace("AWS/ApplicationELB")
        .metric_name("TargetResponseTime")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let uncovered = push(fixture.replace("\"backend-dev-health\"", "\"backend-dev-latency\""));
    assert_eq!(uncovered.status.code(), Some(1));
    assert!(
        stderr(&uncovered)
            .contains("stack team: GuardedAlarmNames lacks backend-dev-latency: deploy the stack with this file"),
        "{}",
        stderr(&uncovered)
    );

    // A change the account and the stack allow: v2, in force, kept beside v1.
    // A subscription to the approvals topic that filters on no one approver is told of.
    let leaking = format!("arn:aws:sqs:{}:{}:everyones-links", harness::REGION, harness::ACCOUNT);
    aws_sdk_sns::Client::new(&env.config)
        .subscribe()
        .topic_arn(&env.world.approval_topic_arn)
        .protocol("sqs")
        .endpoint(&leaking)
        .send()
        .await
        .unwrap();
    let longer_wait = fixture.replace("wait_minutes = 5", "wait_minutes = 10");
    let output = push(longer_wait.clone());
    let warned = stderr(&output);
    assert!(
        warned.contains(&format!("warning: sqs {leaking} receives every approver's links")),
        "{warned}"
    );
    assert!(
        !warned.contains("approver-0"),
        "the approvers' own filtered queues are fine: {warned}"
    );
    let pushed = stdout(&output);
    assert!(pushed.starts_with("v2 in force (was v1)"), "{pushed}");
    let shown = stdout(&pipectl(&env, &["pipeline", "show", "--stack", "team"]));
    assert!(
        shown.contains("# v2 sha256:") && shown.contains(" by arn:aws:sts::123456789012:"),
        "{shown}"
    );
    assert!(shown.ends_with(&longer_wait), "{shown}");
    let history = stdout(&pipectl(&env, &["pipeline", "history", "--stack", "team"]));
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[0].starts_with("v2 ") && lines[0].ends_with("(in force)"),
        "{history}"
    );
    assert!(
        lines[1].starts_with("v1 ") && !lines[1].contains("in force"),
        "{history}"
    );
    let diff = stdout(&pipectl(&env, &["pipeline", "diff", "v1", "v2", "--stack", "team"]));
    let changed: Vec<&str> = diff.lines().filter(|l| l.starts_with(['-', '+'])).collect();
    assert_eq!(
        changed,
        [
            "--- v1",
            "+++ v2",
            "-wait_minutes = 5              # between the approval and the deploy; the page offers Cancel",
            "+wait_minutes = 10              # between the approval and the deploy; the page offers Cancel"
        ]
    );
    assert!(stdout(&push(longer_wait)).contains("is already in force as v2"));

    // Undone in one command.
    let back = stdout(&pipectl(&env, &["pipeline", "activate", "v1", "--stack", "team"]));
    assert!(back.starts_with("v1 in force (was v2)"), "{back}");
    assert!(stdout(&pipectl(&env, &["pipeline", "show", "--stack", "team"])).ends_with(&fixture));
    let missing = pipectl(&env, &["pipeline", "activate", "v9", "--stack", "team"]);
    assert!(stderr(&missing).contains("no version v9"), "{}", stderr(&missing));
}

/// With `--stack`, a command finds the tables and topics in the stack's outputs: no
/// environment variable needed.
#[tokio::test]
async fn the_stack_names_what_each_command_acts_on() {
    let env = Env::new().await;
    stack(
        &env,
        "team",
        &fixture_file("team", &harness::fixture("three-stages.toml")),
    )
    .await;
    env.handler()
        .handle_event(&push("build-1", 1, 0), deadline())
        .await
        .unwrap();
    let by_stack = |args: &[&str]| {
        let mut command = command(&env, args);
        command.env_remove("TABLE_NAME").env_remove("PIPELINE_TABLE");
        command.output().expect("pipectl runs")
    };
    let history = stdout(&by_stack(&["history", "dev", "backend-service", "--stack", "team"]));
    assert!(history.contains("build-1"), "{history}");
    let synced = stdout(&by_stack(&["approvers", "sync", "--dry-run", "--stack", "team"]));
    assert!(synced.contains("release-manager@example.com"), "{synced}");
    let without = by_stack(&["history", "dev", "backend-service"]);
    assert_eq!(without.status.code(), Some(1));
    assert!(
        stderr(&without).contains("name the stack with --stack"),
        "{}",
        stderr(&without)
    );
}

/// A DB in its own subnet group, security group and parameter group, and a snapshot of it.
async fn database_with_settings(env: &Env, db: &str, snapshot: &str) {
    let rds = aws_sdk_rds::Client::new(&env.config);
    let subnets = harness::seed::default_subnets(&env.moto.endpoint).await;
    assert_eq!(subnets.len(), 2, "moto's default VPC has subnets");
    rds.create_db_subnet_group()
        .db_subnet_group_name("orders-subnets")
        .db_subnet_group_description("orders")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .expect("subnet group");
    rds.create_db_parameter_group()
        .db_parameter_group_name("orders-params")
        .db_parameter_group_family("postgres16")
        .description("orders")
        .send()
        .await
        .expect("parameter group");
    rds.create_db_instance()
        .db_instance_identifier(db)
        .db_instance_class("db.r6g.large")
        .engine("postgres")
        .master_username("app")
        .master_user_password("emulator-only-1")
        .allocated_storage(20)
        .db_subnet_group_name("orders-subnets")
        .vpc_security_group_ids("sg-0orders")
        .db_parameter_group_name("orders-params")
        .send()
        .await
        .expect("the DB");
    rds.create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(snapshot)
        .send()
        .await
        .expect("its snapshot");
}

#[tokio::test]
async fn snapshot_restore_makes_a_new_db_like_the_source_once_and_never_reuses_an_identifier() {
    let env = Env::new().await;
    database_with_settings(&env, "orders-db", "predeploy-orders-db-1").await;
    let rds = aws_sdk_rds::Client::new(&env.config);
    let restore_telling = |new_id: &str, topic: &str| {
        command(
            &env,
            &[
                "snapshot",
                "restore",
                "predeploy-orders-db-1",
                "--as",
                new_id,
                "--reason",
                "bad migration lost rows (#412)",
            ],
        )
        .env("TOPIC_ARN", topic)
        .output()
        .unwrap()
    };
    let restore = |new_id: &str| restore_telling(new_id, &env.world.topic_arn);

    // The team could not be told (a topic that does not exist): the restore stands, the
    // command fails, and its rerun tells them.
    let untold = restore_telling("orders-db-restored", &format!("{}-gone", env.world.topic_arn));
    assert_eq!(untold.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&untold.stderr).contains("run the same command again to tell them"),
        "{}",
        String::from_utf8_lossy(&untold.stderr)
    );
    let restored = stdout(&restore("orders-db-restored"));
    assert!(
        restored.contains("restoring predeploy-orders-db-1 as new DB instance orders-db-restored"),
        "{restored}"
    );
    assert!(
        restored.contains("describe-db-instances --db-instance-identifier orders-db-restored"),
        "{restored}"
    );
    let new = rds
        .describe_db_instances()
        .db_instance_identifier("orders-db-restored")
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone();
    assert_eq!(new.db_instance_class(), Some("db.r6g.large"));
    assert_eq!(
        new.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some("orders-subnets")
    );
    let groups: Vec<_> = new
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0orders"]);
    assert_eq!(
        new.db_parameter_groups()[0].db_parameter_group_name(),
        Some("orders-params")
    );
    let tags: std::collections::HashMap<_, _> = new
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["restored-from"], "predeploy-orders-db-1");
    assert_eq!(tags["restore-reason"], "bad migration lost rows --412-");
    assert!(tags["restored-by"].starts_with("arn:aws:"), "{tags:?}");
    assert_eq!(tags["restore-notified"], "true");
    let source = rds
        .describe_db_instances()
        .db_instance_identifier("orders-db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        source.db_instances()[0].db_instance_status(),
        Some("available"),
        "the source is untouched"
    );

    let notices = env.notices().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]
            .subject
            .starts_with("Restoring predeploy-orders-db-1 as new DB instance orders-db-restored")
    );
    assert!(notices[0].message.contains("Why: bad migration lost rows (#412)"));

    // A retry of the same restore changes nothing and tells no one again.
    let again = stdout(&restore("orders-db-restored"));
    assert!(again.contains("already restored from predeploy-orders-db-1"), "{again}");
    assert!(env.notices().await.is_empty());
    // An identifier in use is refused: the running DB is never a restore's target.
    let taken = restore("orders-db");
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("orders-db already exists and was not restored from"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let missing = command(
        &env,
        &["snapshot", "restore", "no-such-snap", "--as", "x-db", "--reason", "r"],
    )
    .env("TOPIC_ARN", &env.world.topic_arn)
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no DB or cluster snapshot no-such-snap"));
    let instances = rds.describe_db_instances().send().await.unwrap();
    assert_eq!(instances.db_instances().len(), 2, "only the one restore made a DB");
}

#[tokio::test]
async fn snapshot_restore_of_an_aurora_cluster_snapshot_makes_a_new_cluster_with_a_writer() {
    let env = Env::new().await;
    let rds = aws_sdk_rds::Client::new(&env.config);
    rds.create_db_cluster()
        .db_cluster_identifier("ledger")
        .engine("aurora-postgresql")
        .master_username("app")
        .master_user_password("emulator-only-1")
        .vpc_security_group_ids("sg-0ledger")
        .send()
        .await
        .expect("cluster");
    harness::seed::create_database(&env.config, "ledger-1", Some("ledger")).await;
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("ledger")
        .db_cluster_snapshot_identifier("sched-ledger-1")
        .send()
        .await
        .expect("cluster snapshot");

    let restored = stdout(
        &command(
            &env,
            &[
                "snapshot",
                "restore",
                "sched-ledger-1",
                "--as",
                "ledger-copy",
                "--reason",
                "audit",
            ],
        )
        .env("TOPIC_ARN", &env.world.topic_arn)
        .output()
        .unwrap(),
    );
    assert!(restored.contains("as new Aurora cluster ledger-copy"), "{restored}");
    let cluster = rds
        .describe_db_clusters()
        .db_cluster_identifier("ledger-copy")
        .send()
        .await
        .unwrap()
        .db_clusters()[0]
        .clone();
    let groups: Vec<_> = cluster
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0ledger"]);
    let writer = rds
        .describe_db_instances()
        .db_instance_identifier("ledger-copy-writer")
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone();
    assert_eq!(writer.db_cluster_identifier(), Some("ledger-copy"));
    assert_eq!(writer.db_instance_class(), Some("db.t3.medium"));
    assert_eq!(env.notices().await.len(), 1);

    // A run that stopped between the cluster and its writer: the retry adds the writer.
    rds.delete_db_instance()
        .db_instance_identifier("ledger-copy-writer")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    let again = stdout(
        &command(
            &env,
            &[
                "snapshot",
                "restore",
                "sched-ledger-1",
                "--as",
                "ledger-copy",
                "--reason",
                "audit",
            ],
        )
        .env("TOPIC_ARN", &env.world.topic_arn)
        .output()
        .unwrap(),
    );
    assert!(again.contains("already restored from sched-ledger-1"), "{again}");
    let writers = rds
        .describe_db_instances()
        .db_instance_identifier("ledger-copy-writer")
        .send()
        .await
        .unwrap();
    assert_eq!(writers.db_instances()[0].db_cluster_identifier(), Some("ledger-copy"));
    assert!(env.notices().await.is_empty(), "a retry tells no one again");
}

#[tokio::test]
async fn metrics_rates_each_application_from_its_records_in_production_and_per_stage() {
    use shared::domain::deployment::{DeploymentId, Kind, Status};
    use shared::domain::names::{ClusterName, ImageDigest, ServiceName, StageName};
    use shared::ports::Deployments;
    let env = Env::new().await;
    let records = shared::adapters::dynamo::DynamoRecords::new(&env.config, env.world.table.clone());
    let now = chrono::Utc::now();
    let hours = chrono::TimeDelta::hours;
    // Four prod releases in the last eight days, both services each, SUCCEEDED three hours
    // after the push; the last one rolled back by an alarm and restored in 20 minutes.
    for n in 1..=4u8 {
        for service in ["backend-service", "worker-service"] {
            let mut d = shared::domain::fixtures::deployment(n, Kind::Deploy, Status::Succeeded, None);
            d.id = DeploymentId::from_stored(format!("dep-{n}-{service}"));
            d.stage = StageName::parse("prod").unwrap();
            d.cluster = ClusterName::parse("social-analytics-prod").unwrap();
            d.service = ServiceName::parse(service).unwrap();
            d.image.digest = ImageDigest::parse(digest(n)).unwrap();
            d.image.pushed_at = now - hours(48 * n as i64);
            d.requested_at = d.image.pushed_at + hours(1);
            d.completed_at = Some(d.image.pushed_at + hours(3));
            if n == 1 {
                d.status = Status::RolledBack;
            }
            assert!(records.create_deployment(&d).await.unwrap());
            if n == 1 && service == "backend-service" {
                let mut rollback = d.clone();
                rollback.id = DeploymentId::for_rollback(&d.id);
                rollback.kind = Kind::Rollback {
                    of: d.id.clone(),
                    cause: "alarm backend-prod-5xx".into(),
                };
                rollback.status = Status::Succeeded;
                rollback.requested_at = d.image.pushed_at + hours(4);
                rollback.completed_at = Some(rollback.requested_at + chrono::TimeDelta::minutes(20));
                assert!(records.create_deployment(&rollback).await.unwrap());
            }
        }
    }
    let out = stdout(&pipectl(&env, &["metrics", "--days", "30", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let backend = &report["applications"][0];
    assert_eq!(backend["application"], "backend");
    assert_eq!(backend["production"], "prod");
    let prod = backend["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "prod")
        .unwrap();
    assert_eq!(prod["releases"], 4, "{prod}");
    assert_eq!(prod["failed_releases"], 1);
    assert_eq!(
        prod["deployment_frequency"]["band"], "medium",
        "4 in 30 days: weekly to monthly"
    );
    assert_eq!(prod["lead_time_hours"]["value"], 3.0);
    assert_eq!(prod["lead_time_hours"]["band"], "elite");
    assert_eq!(prod["change_failure_rate"]["value"], 25.0);
    assert_eq!(prod["change_failure_rate"]["band"], "low");
    assert!((prod["time_to_restore_hours"]["value"].as_f64().unwrap() - 20.0 / 60.0).abs() < 0.01);
    assert_eq!(prod["time_to_restore_hours"]["band"], "elite");
    let dev = backend["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "dev")
        .unwrap();
    assert_eq!(dev["releases"], 0);

    let table = stdout(&pipectl(&env, &["metrics"]));
    assert!(table.contains("backend (production: prod)"), "{table}");
    assert!(table.contains("25.00 (low)"), "{table}");
}

/// Pushes `tag` (digest `byte`) to dev at `second` and has ECS complete both services' deploys.
async fn deployed_to_dev(env: &Env, tag: &str, byte: u8, second: u32) {
    env.handler()
        .handle_event(&push(tag, byte, second), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let latest = env.records_for(DEV, service).await.pop().unwrap();
        assert_eq!(latest["digest"], digest(byte));
        let completed = ecs_ended_in(DEV, "completed.json", service, &latest["ecs_deployment_id"], 1);
        env.tracker().handle_event(&completed, deadline()).await.unwrap();
    }
}

#[tokio::test]
async fn rollback_to_a_version_that_ran_restores_it_on_every_service_once_and_refuses_others() {
    let env = Env::new().await;
    deployed_to_dev(&env, "v1.75.0", 1, 0).await;
    let v175: Vec<String> = {
        let mut running = Vec::new();
        for (service, _) in SERVICES {
            running.push(env.running(DEV, service).await);
        }
        running
    };
    deployed_to_dev(&env, "v1.76.0", 2, 10).await;
    deployed_to_dev(&env, "v1.77.0", 3, 20).await;
    let topic = env.world.topic_arn.clone();
    let run = |args: &[&str]| {
        let mut command = command(&env, args);
        command.env("TOPIC_ARN", &topic);
        command.output().expect("pipectl runs")
    };

    let never = run(&["rollback", "dev", "backend", "--to", "v9.9.9", "--reason", "test"]);
    assert_eq!(never.status.code(), Some(1));
    let refusal = String::from_utf8_lossy(&never.stderr);
    assert!(refusal.contains("v9.9.9 never ran on dev/backend-service"), "{refusal}");
    for ran in ["v1.77.0", "v1.76.0", "v1.75.0"] {
        assert!(refusal.contains(ran), "lists {ran}: {refusal}");
    }
    let no_reason = run(&["rollback", "dev", "backend", "--to", "v1.75.0", "--reason", " "]);
    assert_eq!(no_reason.status.code(), Some(1));

    let done = stdout(&run(&[
        "rollback",
        "dev",
        "backend",
        "--to",
        "v1.75.0",
        "--reason",
        "checkout errors since v1.76",
    ]));
    assert_eq!(done.matches("rolled back (rbk-").count(), 2, "{done}");
    for ((service, _), before) in SERVICES.iter().zip(&v175) {
        assert_eq!(
            &env.running(DEV, service).await,
            before,
            "{service} runs v1.75.0's revision again"
        );
        let records = env.records_for(DEV, service).await;
        let rollback = records
            .iter()
            .find(|r| r["kind"] == "rollback")
            .expect("a rollback record");
        assert!(
            rollback["rollback_cause"].starts_with("operator arn:aws:"),
            "{rollback:?}"
        );
        assert!(rollback["rollback_cause"].ends_with("rolled back to v1.75.0: checkout errors since v1.76"));
        let v177 = records
            .iter()
            .find(|r| r["tag"] == "v1.77.0" && r["kind"] == "deploy")
            .unwrap();
        assert_eq!(v177["status"], "ROLLED_BACK");
        assert_eq!(env.quarantined(DEV, service).await, [digest(3)]);
    }
    let told: Vec<_> = env
        .notices()
        .await
        .into_iter()
        .filter(|n| n.subject.starts_with("Rolled back"))
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");

    let again = stdout(&run(&[
        "rollback",
        "dev",
        "backend",
        "--to",
        "v1.75.0",
        "--reason",
        "checkout errors since v1.76",
    ]));
    assert_eq!(again.matches("runs that version already").count(), 2, "{again}");
    assert_eq!(
        env.records_for(DEV, "backend-service")
            .await
            .iter()
            .filter(|r| r["kind"] == "rollback")
            .count(),
        1
    );
}

#[tokio::test]
async fn status_shows_every_service_what_runs_what_waits_and_each_stages_window_and_alarms() {
    let env = Env::new().await;
    deployed_to_dev(&env, "v1.75.0", 1, 0).await;
    // Digest 2 passes staging (dev still deploying it), then its release asks prod for approval.
    env.passes_staging(&digest(2), 10).await;
    env.handler()
        .handle_event(&push("v1.76.0", 2, 20), deadline())
        .await
        .unwrap();

    let out = stdout(&pipectl(&env, &["status", "--json"]));
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stages = status["stages"].as_array().unwrap();
    assert_eq!(
        stages.iter().map(|s| s["stage"].as_str().unwrap()).collect::<Vec<_>>(),
        ["dev", "staging", "prod"]
    );
    let dev = &stages[0];
    assert_eq!(dev["deploys"]["open"], true);
    assert_eq!(dev["alarms_watched"], 3);
    assert_eq!(dev["alarms_in_alarm"], serde_json::json!([]));
    let backend = dev["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "backend-service")
        .unwrap();
    assert_eq!(backend["tag"], "main-0", "{backend}");
    assert_eq!(backend["digest"], digest(2));
    assert_eq!(backend["last"]["status"], "DEPLOYING");
    assert_eq!(backend["in_flight"][0]["tag"], "main-0");
    assert_eq!(
        backend["task_definition"],
        env.running(DEV, "backend-service").await.rsplit('/').next().unwrap()
    );
    // The v* push waits for prod's approval: the request and its voters are listed there.
    let prod = &stages[2];
    let request = &prod["approvals"][0];
    assert_eq!(request["tag"], "v1.76.0", "{prod}");
    assert!(
        request["state"].as_str().unwrap().starts_with("Awaiting approval"),
        "{request}"
    );
    assert_eq!(request["votes"].as_array().unwrap().len(), 2);
    let prod_backend = prod["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "backend-service")
        .unwrap();
    assert_eq!(prod_backend["in_flight"][0]["status"], "AWAITING_APPROVAL");

    let screen = stdout(&pipectl(&env, &["status", "--stage", "dev"]));
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[0].starts_with("STAGE") && lines[0].contains("IN FLIGHT"),
        "{screen}"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("dev ")).count(), 2, "{screen}");
    assert!(screen.contains("dev: deploys open; alarms quiet (3)"), "{screen}");
    assert!(!screen.contains('\x1b'), "no colours off a terminal");
    let unknown = pipectl(&env, &["status", "--stage", "qa"]);
    assert_eq!(unknown.status.code(), Some(1));
}

#[tokio::test]
async fn approvals_lists_open_requests_and_an_operator_extends_and_cancels_one() {
    let env = Env::new().await;
    env.passes_staging(&digest(2), 10).await;
    env.handler()
        .handle_event(&push("v1.76.0", 2, 20), deadline())
        .await
        .unwrap();
    let listed = stdout(&pipectl(&env, &["approvals"]));
    let id = listed
        .split_whitespace()
        .find(|word| word.starts_with("apr-"))
        .unwrap_or_else(|| panic!("{listed}"))
        .to_owned();
    assert!(listed.contains("v1.76.0 of backend to prod"), "{listed}");
    let topic = env.world.topic_arn.clone();
    let run = |args: &[&str]| {
        let mut command = command(&env, args);
        command.env("TOPIC_ARN", &topic);
        command.output().expect("pipectl runs")
    };

    let extended = stdout(&run(&["approvals", "extend", &id, "--hours", "24"]));
    assert!(extended.contains("gave it until"), "{extended}");
    let too_long = run(&["approvals", "extend", &id, "--hours", "168"]);
    assert_eq!(too_long.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("within 168 hours"));
    let told: Vec<String> = env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        told.iter().any(|s| s == "v1.76.0 of backend to prod: extended"),
        "{told:?}"
    );

    let cancelled = stdout(&run(&["approvals", "cancel", &id, "--reason", "wrong build"]));
    assert!(cancelled.contains("cancelled by arn:aws:"), "{cancelled}");
    let again = run(&["approvals", "cancel", &id, "--reason", "wrong build"]);
    assert_eq!(again.status.code(), Some(1), "a cancelled request is closed");

    env.promoter_with(&env.config)
        .sweep(chrono::Utc::now(), deadline())
        .await
        .unwrap();
    for (service, _) in SERVICES {
        let prod = env.records_for("social-analytics-prod", service).await;
        assert_eq!(prod.last().unwrap()["status"], "CANCELLED", "{service}");
    }
    let told: Vec<String> = env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(told.iter().any(|s| s.ends_with(": cancelled")), "{told:?}");
    assert!(stdout(&pipectl(&env, &["approvals"])).contains("no approval request is open"));
}

#[tokio::test]
async fn deploy_hands_an_image_in_ecr_to_one_stages_normal_path() {
    let env = Env::new().await;
    let lambda = sandbox_stack(&env).await;
    let digest = harness::seed::push_image(&env.config, "social-analytics/backend", "v3.0.0").await;

    // A release tag matches dev and prod: deployed to dev alone, as dev deploys a push.
    let output = pipectl_with_lambda(
        &env,
        &lambda.endpoint,
        &["deploy", "dev", "backend", &digest, "--stack", "sandbox"],
    )
    .await;
    assert!(
        stdout(&output).starts_with(&format!("backend v3.0.0 ({digest}) pushed for dev")),
        "{output:?}"
    );
    for (service, _) in SERVICES {
        let records = env.records_for(DEV, service).await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(
            (records[0]["status"].as_str(), records[0]["digest"].as_str()),
            ("DEPLOYING", digest.as_str())
        );
        assert_eq!(records[0]["task_definition"], env.running(DEV, service).await);
        assert!(!records[0].contains_key("emergency_by"));
    }
    assert!(env.records_for(PROD, "backend-service").await.is_empty());

    // Staging deploys main-* builds: its rule refuses the tag, and nothing is invoked.
    let refused = pipectl_with_lambda(
        &env,
        &lambda.endpoint,
        &["deploy", "staging", "backend", "v3.0.0", "--stack", "sandbox"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("stage staging deploys tags matching `main-*`, not v3.0.0"),
        "{refused:?}"
    );
    assert!(env.records_for(STAGING, "backend-service").await.is_empty());
    assert_eq!(lambda.invoked().len(), 1);
}
