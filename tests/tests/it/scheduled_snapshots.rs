//! The scheduled snapshots against moto's RDS (two regions): a tick's snapshot made once and
//! tagged, copied to the recovery region, and ours pruned in both regions once expired, while
//! another tool's snapshot is never touched. The built binary runs the sample schedule event.

use crate::support::*;
use chrono::{DateTime, TimeDelta, Utc};
use shared::adapters::{dynamo::DynamoRecords, rds::RdsSnapshots, sns::SnsNotifier};
use shared::handlers::scheduled_snapshots::ScheduledSnapshots;

const DB: &str = "social-analytics-db";

/// The tests' pipeline file, with no snapshot kept for its newness: retention alone decides.
pub fn pipeline_text() -> String {
    harness::fixture("three-stages.toml").replace("keep_last = 7", "keep_last = 0")
}

fn function(env: &Env) -> ScheduledSnapshots<DynamoRecords, RdsSnapshots, SnsNotifier> {
    harness::seed::snapshot_handler(&env.config, &env.world, env.pipeline.clone())
}

fn tick(day: u32) -> DateTime<Utc> {
    format!("2026-11-{day:02}T03:00:00Z").parse().unwrap()
}

#[tokio::test]
async fn ticks_snapshot_tag_copy_and_prune_only_ours_in_both_regions() {
    let env = Env::with_pipeline(&pipeline_text()).await;
    harness::seed::create_database(&env.config, DB, None).await;
    harness::seed::snapshot_by_another_tool(&env.config, DB, "nightly-tool-1").await;
    let function = function(&env);

    let first = function.run(tick(21), Utc::now()).await.unwrap();
    assert_eq!(first.taken, ["sched-social-analytics-db-20261121-0300"]);
    assert_eq!((first.quota_used, first.quota_limit), (2, 100));
    let again = function.run(tick(21), Utc::now()).await.unwrap();
    assert_eq!(again.taken, first.taken, "a redelivered tick adopts its snapshot");
    let home = harness::seed::manual_snapshots(&env.config, None).await;
    assert_eq!(home.len(), 2, "{home:?}");
    let (_, tags) = home.iter().find(|(id, _)| id.starts_with("sched-")).unwrap();
    for (key, value) in [
        ("created-by", "ecs-deploy"),
        ("ecs-deploy:kind", "scheduled"),
        ("ecs-deploy:policy", DB),
    ] {
        assert!(tags.contains(&(key.to_owned(), value.to_owned())), "{key}: {tags:?}");
    }
    // The first tick's snapshot (moto makes it available at once) goes to the recovery region.
    assert_eq!(again.copied, ["sched-social-analytics-db-20261121-0300 to us-west-2"]);
    let west = harness::seed::manual_snapshots(&env.config, Some("us-west-2")).await;
    assert_eq!(west.len(), 1, "{west:?}");
    assert!(west[0].1.contains(&("created-by".to_owned(), "ecs-deploy".to_owned())));

    // Forty days on, prod's 30 days are over: ours go in both regions, the tool's stays.
    let later = function.run(tick(22), Utc::now() + TimeDelta::days(40)).await.unwrap();
    assert_eq!(
        later.pruned,
        [
            "sched-social-analytics-db-20261121-0300",
            "sched-social-analytics-db-20261121-0300 in us-west-2"
        ]
    );
    let home: Vec<String> = harness::seed::manual_snapshots(&env.config, None)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(home, ["nightly-tool-1", "sched-social-analytics-db-20261122-0300"]);
    assert!(
        harness::seed::manual_snapshots(&env.config, Some("us-west-2"))
            .await
            .is_empty(),
        "nothing copied back"
    );
}

#[tokio::test]
async fn the_snapshot_binary_runs_the_sample_tick_and_refuses_other_events() {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, DB, None).await;
    let mut snapshot = harness::function::Function::spawn(
        &harness::built_binary("snapshot", "debug"),
        &env.moto.endpoint,
        &env.function_vars(),
    )
    .await;
    let run = snapshot
        .invoke(harness::event_file("snapshot", "scheduled.json"))
        .await
        .response();
    assert_eq!(
        run["taken"],
        serde_json::json!(["sched-social-analytics-db-20261123-0300"]),
        "{run}"
    );
    let refused = snapshot
        .invoke(br#"{"detail-type": "ECR Image Action", "source": "aws.ecr", "time": "2026-11-23T03:00:00Z"}"#.to_vec())
        .await;
    assert_eq!(refused.error().0, "BadEvent");
}
