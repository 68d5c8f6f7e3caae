//! The built bootstrap binaries, driven through a Lambda Runtime API with the events/ files.

use crate::support::*;
use harness::function::Function;
use harness::{built_binary, event_file};

async fn deploy_on_push(env: &Env, extra: &[(&str, &str)]) -> Function {
    let mut vars = env.function_vars();
    vars.extend_from_slice(extra);
    Function::spawn(&built_binary("deploy-on-push", "debug"), &env.moto.endpoint, &vars).await
}

#[tokio::test]
async fn deploy_on_push_binary_handles_every_sample_event() {
    let env = Env::new().await;
    let mut function = deploy_on_push(&env, &[]).await;
    let file = |name| event_file("deploy-on-push", name);

    let response = function.invoke(file("push-latest.json")).await.response();
    assert_eq!(response["outcome"], "handled");
    assert_eq!(response["targets"].as_array().unwrap().len(), 2);
    assert!(
        response["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["result"] == "deploying")
    );
    for (service, _) in SERVICES {
        assert_eq!(
            env.running(DEV, service).await,
            env.records_for(DEV, service).await[0]["task_definition"],
            "the record names what the service now runs"
        );
    }

    // The release's digest never went through staging: prod gets a BLOCKED request, no record.
    let response = function.invoke(file("push-release.json")).await.response();
    let stages: Vec<&str> = response["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["dev", "dev"]);
    assert_eq!(response["approvals"][0]["stage"], "prod");
    assert_eq!(response["approvals"][0]["status"], "BLOCKED");
    assert!(env.records_for(PROD, "backend-service").await.is_empty());
    let notices = env.notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].subject, "Release v1.4.0 of backend to prod blocked");

    let response = function.invoke(file("push-main.json")).await.response();
    let mut results: Vec<(String, String, String)> = response["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap().to_owned();
            (field("stage"), field("service"), field("result"))
        })
        .collect();
    results.sort();
    // main-* goes to dev and staging; dev already runs the newer push-latest image.
    let expected = [
        ("dev", "backend-service", "skipped"),
        ("dev", "worker-service", "skipped"),
        ("staging", "backend-service", "deploying"),
        ("staging", "worker-service", "deploying"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(results, expected, "{response}");

    for ignored in ["delete.json", "push-failed.json", "push-untagged.json"] {
        let response = function.invoke(file(ignored)).await.response();
        assert_eq!(response["outcome"], "ignored", "{ignored}");
    }
    let records_before_bad_input = env.records().await.len();

    let (error_type, message) = function.invoke(file("malformed.json")).await.error();
    assert_eq!(error_type, "BadEvent");
    assert!(message.contains("missing field `repository-name`"), "{message}");
    let (_, message) = function.invoke(file("not-json.txt")).await.error();
    assert!(message.contains("failed to deserialize"), "{message}");
    assert!(function.is_running(), "bad input never kills the runtime");
    assert_eq!(env.records().await.len(), records_before_bad_input);

    // Redelivered: answered, and nothing new happens.
    let response = function.invoke(file("push-latest.json")).await.response();
    assert!(
        response["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["result"] == "skipped")
    );
    assert_eq!(env.records().await.len(), records_before_bad_input);

    let logs = function.logs();
    assert!(!logs.is_empty());
    for line in &logs {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        // Lambda's JSON log shape: level, message and target, the handler's fields.
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&parsed["level"].as_str().unwrap_or_default()),
            "{line}"
        );
        assert!(parsed["fields"]["message"].is_string(), "{line}");
    }
    assert!(
        logs.iter()
            .any(|l| l.contains("\"target handled\"") && l.contains("\"stage\":\"staging\"")),
        "each target's outcome is logged with its stage: {logs:?}"
    );
}

#[tokio::test]
async fn deploy_on_push_binary_refuses_to_start_without_its_table_or_a_good_pipeline() {
    let env = Env::new().await;
    let binary = built_binary("deploy-on-push", "debug");
    let bad_pipeline = std::env::temp_dir().join(format!("bad-pipeline-{}.toml", std::process::id()));
    std::fs::write(
        &bad_pipeline,
        "[[stage]]\nname = \"dev\"\ncluster = \"c\"\ntags = \"v[\"\n",
    )
    .unwrap();

    // A stack whose pipeline table holds none in force yet (pushed by the deploy command).
    let mut empty_stack = env.function_vars();
    empty_stack.retain(|(name, _)| *name != "PIPELINE_TABLE");
    empty_stack.push(("PIPELINE_TABLE", "no-pipeline-yet"));
    harness::seed::create_pipeline_table(&env.config, "no-pipeline-yet").await;
    let mut bad_file = env.function_vars();
    bad_file.push(("PIPELINE_FILE", bad_pipeline.to_str().unwrap()));
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "environment variable TABLE_NAME is not set"),
        (&bad_file, "pipeline file:"),
        (
            &empty_stack,
            "the stack holds no pipeline yet: push one with `pipectl pipeline push",
        ),
    ];
    for (vars, expected) in cases {
        let mut function = Function::spawn(&binary, &env.moto.endpoint, vars).await;
        let exited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while function.is_running() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(exited.is_ok(), "the function should stop at init");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let logs = function.logs().join("\n");
        assert!(logs.contains(expected), "expected `{expected}` in:\n{logs}");
    }
}

/// A function URL event from events/approval-page, with its path replaced when `path` is given.
fn function_url_event(name: &str, path: Option<&str>) -> Vec<u8> {
    let mut event: serde_json::Value = serde_json::from_slice(&event_file("approval-page", name)).unwrap();
    if let Some(path) = path {
        event["rawPath"] = path.into();
        event["requestContext"]["http"]["path"] = path.into();
    }
    event.to_string().into_bytes()
}

#[tokio::test]
async fn approval_page_binary_answers_function_url_events() {
    let run = crate::approval::Loop::start().await;
    run.release("v4.0.0", 0x40, 0).await;
    let link = run.links().await.remove(0).2;
    let path = format!("/{}", link.trim_start_matches(&run.page.url));
    // At TRACE, as an operator chasing a problem might set it: the token still stays out of the logs.
    let mut vars = run.env.function_vars();
    vars.push(("AWS_LAMBDA_LOG_LEVEL", "TRACE"));
    let mut function = Function::spawn(&built_binary("approval-page", "debug"), &run.env.moto.endpoint, &vars).await;

    // The samples' link names no request: a 404 that says nothing, with every header.
    let unknown = function.invoke(function_url_event("get.json", None)).await.response();
    assert_eq!(unknown["statusCode"], 404);
    assert!(unknown["body"].as_str().unwrap().contains("This link is not valid."));
    for header in [
        "content-security-policy",
        "x-frame-options",
        "cache-control",
        "referrer-policy",
        "x-content-type-options",
    ] {
        assert!(unknown["headers"][header].is_string(), "{header} missing: {unknown}");
    }

    let page = function
        .invoke(function_url_event("get.json", Some(&path)))
        .await
        .response();
    assert_eq!(page["statusCode"], 200);
    assert!(page["body"].as_str().unwrap().contains(&digest(0x40)));
    let head = function
        .invoke(function_url_event("head.json", Some(&path)))
        .await
        .response();
    assert_eq!(head["statusCode"], 200);
    assert!(head["body"].as_str().unwrap_or_default().is_empty());

    // The sample POST (base64 form, as function URLs send it) carries no nonce of this page.
    let post = function
        .invoke(function_url_event("post.json", Some(&path)))
        .await
        .response();
    assert_eq!(post["statusCode"], 403);
    assert_eq!(run.request(&link).await.votes().count(), 0);
    assert!(function.is_running());
    let token = link.rsplit('/').next().unwrap();
    let logs = function.logs();
    assert!(
        logs.iter().any(|line| line.contains("TRACE") || line.contains("DEBUG")),
        "logs at TRACE: {logs:?}"
    );
    assert!(
        logs.iter().all(|line| !line.contains(token)),
        "a token reached the logs"
    );
}

#[tokio::test]
async fn deploy_on_push_binary_sends_approval_links_without_logging_them_even_at_trace() {
    let env = Env::new().await;
    let release = event("push-release.json");
    env.passes_staging(release.detail.image_digest.as_deref().unwrap(), 0)
        .await;
    let mut function = deploy_on_push(&env, &[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]).await;
    let response = function
        .invoke(event_file("deploy-on-push", "push-release.json"))
        .await
        .response();
    assert_eq!(response["approvals"][0]["status"], "AWAITING_APPROVAL", "{response}");
    assert_eq!(response["approvals"][0]["links_sent"], 2, "{response}");
    let logs = function.logs();
    assert!(
        logs.iter().any(|line| line.contains("TRACE")),
        "the function logs at TRACE"
    );
    for queue in env.world.approver_queues.values() {
        for message in harness::seed::take_notices(&env.config, queue).await {
            let link = message
                .message
                .lines()
                .find(|l| l.starts_with(NO_PAGE))
                .unwrap()
                .to_owned();
            let token = link.rsplit('/').next().unwrap();
            assert!(
                logs.iter().all(|line| !line.contains(token)),
                "a token reached the logs"
            );
        }
    }
}

/// The stack's pipeline, changed while the function runs: the next invocation after its TTL
/// serves the new version (no rebuild, no restart), and each record names the version it
/// was requested under.
#[tokio::test]
async fn a_running_function_serves_a_pipeline_pushed_after_it_started() {
    let env = Env::new().await;
    let mut function = deploy_on_push(&env, &[("PIPELINE_TTL_SECONDS", "1")]).await;
    let latest = event_file("deploy-on-push", "push-latest.json");
    let response = function.invoke(latest.clone()).await.response();
    assert_eq!(response["targets"].as_array().unwrap().len(), 2, "{response}");
    assert_eq!(
        env.records_for(DEV, "backend-service").await[0]["pipeline_version"],
        "v1"
    );

    // v2: dev takes only feature-* tags. Within the TTL the function still serves v1.
    let narrowed = harness::fixture("three-stages.toml").replacen("tags = \"*\"", "tags = \"feature-*\"", 1);
    assert_eq!(harness::seed::push_pipeline(&env.config, &narrowed).await, 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut newer: serde_json::Value = serde_json::from_slice(&latest).unwrap();
    newer["detail"]["image-digest"] = format!("sha256:{}", "ab".repeat(32)).into();
    newer["time"] = "2026-11-22T10:05:00Z".into();
    let response = function.invoke(newer.to_string().into_bytes()).await.response();
    assert_eq!(
        response["outcome"], "ignored",
        "v2 deploys `latest` nowhere: {response}"
    );
    assert_eq!(env.records_for(DEV, "backend-service").await.len(), 1);

    // Back to v1's text as v3: `latest` deploys again, recorded under v3.
    assert_eq!(
        harness::seed::push_pipeline(&env.config, &harness::fixture("three-stages.toml")).await,
        3
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = function.invoke(newer.to_string().into_bytes()).await.response();
    assert_eq!(response["targets"][0]["result"], "deploying", "{response}");
    let records = env.records_for(DEV, "backend-service").await;
    let versions: Vec<&str> = records.iter().map(|r| r["pipeline_version"].as_str()).collect();
    assert!(versions.contains(&"v3") && versions.contains(&"v1"), "{versions:?}");
    assert!(
        function
            .logs()
            .iter()
            .any(|l| l.contains("serving a new pipeline version")),
        "the switch is logged"
    );
}

/// The example pipeline.toml is a user's to replace: the one test that reads it checks that
/// it parses and that no function binary carries any of its names (the functions read the
/// stack's pipeline, never a built-in one).
#[test]
fn the_example_pipeline_parses_and_no_binary_carries_its_names() {
    let example = std::fs::read_to_string(harness::repo_root().join("pipeline.toml")).unwrap();
    let pipeline = shared::domain::pipeline::Pipeline::parse(&example).expect("the example parses");
    let mut names: Vec<String> = pipeline.stages().iter().map(|s| s.cluster.to_string()).collect();
    names.extend(pipeline.applications().iter().map(|a| a.repository.to_string()));
    names.extend(pipeline.alarm_names().map(|a| a.to_string()));
    names.extend(pipeline.approvers().map(|a| a.to_string()));
    for function in harness::seed::FUNCTIONS {
        let binary = std::fs::read(built_binary(function, "debug")).unwrap();
        let binary = String::from_utf8_lossy(&binary);
        for name in &names {
            assert!(
                !binary.contains(name.as_str()),
                "{function} carries `{name}` from the example pipeline"
            );
        }
    }
}

#[tokio::test]
async fn the_binaries_hold_a_push_to_a_frozen_stage_and_the_promote_sweep_waits_for_the_freeze_end() {
    let now = chrono::Utc::now();
    let until = (now + chrono::TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = harness::fixture("three-stages.toml").replacen(
        "tags = \"*\"\n",
        &format!(
            "tags = \"*\"\nfreeze = [{{ from = \"{}\", to = \"{until}\", reason = \"year-end freeze\" }}]\n",
            (now - chrono::TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        1,
    );
    let env = Env::with_pipeline(&text).await;
    let mut function = deploy_on_push(&env, &[]).await;
    let response = function
        .invoke(event_file("deploy-on-push", "push-latest.json"))
        .await
        .response();
    let targets = response["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{response}");
    for target in targets {
        assert_eq!(target["result"], "held", "{response}");
        assert!(target["why"].as_str().unwrap().contains("year-end freeze"));
        assert_eq!(
            chrono::DateTime::parse_from_rfc3339(target["until"].as_str().unwrap()).unwrap(),
            chrono::DateTime::parse_from_rfc3339(&until).unwrap()
        );
    }
    for (service, _) in SERVICES {
        assert_eq!(env.records_for(DEV, service).await[0]["status"], "HELD");
        assert_eq!(env.running(DEV, service).await, env.initial(DEV, service));
    }
    let mut promote = Function::spawn(
        &built_binary("promote", "debug"),
        &env.moto.endpoint,
        &env.function_vars(),
    )
    .await;
    let swept = promote.invoke(event_file("promote", "scheduled.json")).await.response();
    let waiting: Vec<_> = swept["swept"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["advanced"]["did"] == "waiting")
        .collect();
    assert_eq!(waiting.len(), 2, "{swept}");
    for (service, _) in SERVICES {
        assert_eq!(
            env.running(DEV, service).await,
            env.initial(DEV, service),
            "still frozen"
        );
    }
}
