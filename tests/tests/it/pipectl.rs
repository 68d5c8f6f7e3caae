//! The operator CLI, as built, against moto.

use crate::support::*;
use harness::built_binary;
use std::process::{Command, Output};

fn pipectl(env: &Env, args: &[&str]) -> Output {
    Command::new(built_binary("pipectl", "debug"))
        .args(args)
        .env_clear()
        .env("TABLE_NAME", &env.world.table)
        .env("AWS_REGION", harness::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &env.moto.endpoint)
        .output()
        .expect("pipectl runs")
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
    let shipped = harness::repo_root().join("pipeline.toml");
    assert!(stdout(&pipectl(&env, &["validate", shipped.to_str().unwrap()])).contains("stages: dev → staging → prod"));

    // The template's alarm rule must deliver exactly the pipeline file's alarms.
    let template = harness::repo_root().join("template.yaml");
    let (shipped, template) = (shipped.to_str().unwrap(), template.to_str().unwrap());
    let checked = pipectl(&env, &["validate", shipped, "--template", template]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let drifted = std::env::temp_dir().join(format!("pipectl-drift-{}.toml", std::process::id()));
    std::fs::write(
        &drifted,
        std::fs::read_to_string(shipped)
            .unwrap()
            .replace("\"backend-dev-health\"", "\"backend-dev-latency\""),
    )
    .unwrap();
    let drift = pipectl(&env, &["validate", drifted.to_str().unwrap(), "--template", template]);
    assert_eq!(drift.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&drift.stderr)
            .contains("GuardedAlarmNames is backend-dev-5xx,backend-dev-error-rate,backend-dev-health,"),
        "{}",
        String::from_utf8_lossy(&drift.stderr)
    );
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
