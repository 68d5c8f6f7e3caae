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
}
