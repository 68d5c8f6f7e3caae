//! `pipectl snapshots` and `pipectl snapshot now DB`: our RDS snapshots as the snapshot
//! function sees them, and one taken outside the schedule.

use chrono::Utc;
use shared::adapters::dynamo::DynamoRecords;
use shared::adapters::rds::RdsSnapshots;
use shared::adapters::sns::SnsNotifier;
use shared::domain::names::DbInstanceId;
use shared::domain::pipeline::Pipeline;
use shared::domain::promotion::SnapshotState;
use shared::handlers::scheduled_snapshots::{ScheduledSnapshots, ours};
use shared::lambda::runtime;
use shared::ports::SnapshotAdmin;

fn copy_regions(pipeline: &Pipeline) -> Vec<&shared::domain::names::Region> {
    let mut regions: Vec<_> = pipeline
        .snapshots()
        .dbs
        .iter()
        .filter_map(|p| p.copy_to.as_ref().map(|c| &c.region))
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// Ours in the home region and each copy region: age, expiry under the current policy,
/// status; then the home region's quota use.
pub async fn list(aws: &aws_config::SdkConfig, pipeline: &Pipeline) -> Result<(), String> {
    let regions = copy_regions(pipeline);
    let rds = RdsSnapshots::with_regions(aws, regions.iter().copied());
    let now = Utc::now();
    println!(
        "{:<48} {:<12} {:<10} {:>8} {:<12} {:<10} region",
        "id", "db", "kind", "age (d)", "expires", "status"
    );
    let mut home_count = 0;
    for region in std::iter::once(None).chain(regions.iter().map(|r| Some(*r))) {
        let listed = rds.manual_snapshots(region).await.map_err(|e| e.to_string())?;
        if region.is_none() {
            home_count = listed.len();
        }
        let mut ours: Vec<_> = listed.iter().filter_map(ours).collect();
        ours.sort_by_key(|s| s.created_at);
        for snapshot in ours {
            let retention = pipeline.retention_of(&snapshot.db);
            println!(
                "{:<48} {:<12} {:<10} {:>8} {:<12} {:<10} {}",
                snapshot.id,
                snapshot.db,
                snapshot.kind.tag(),
                (now - snapshot.created_at).num_days(),
                (snapshot.created_at + retention.keep_for).format("%Y-%m-%d"),
                if snapshot.available { "available" } else { "in progress" },
                region.map_or("(home)".to_owned(), |r| r.to_string()),
            );
        }
    }
    let quota = pipeline.snapshots().quota;
    println!(
        "\nmanual snapshots in the home region (ours and others'): {home_count} of the quota of {} ({}%)",
        quota.limit,
        home_count * 100 / quota.limit.max(1)
    );
    Ok(())
}

/// A snapshot of `db` now (its `[snapshots]` entry must exist), tagged and kept as the
/// scheduled ones: the id derives from this minute.
pub async fn now(aws: &aws_config::SdkConfig, pipeline: Pipeline, db: &str) -> Result<(), String> {
    let db = DbInstanceId::parse(db).map_err(|e| e.to_string())?;
    let policy = pipeline
        .snapshots()
        .dbs
        .iter()
        .find(|p| p.db == db)
        .cloned()
        .ok_or_else(|| format!("{db} has no [[snapshots.db]] entry in the pipeline file"))?;
    let table = runtime::env("TABLE_NAME").map_err(|e| e.to_string())?;
    let topic = runtime::env("TOPIC_ARN").map_err(|e| e.to_string())?;
    let function = ScheduledSnapshots {
        pipeline,
        records: DynamoRecords::new(aws, table),
        rds: RdsSnapshots::new(aws),
        notifier: SnsNotifier::new(aws, topic),
    };
    let now = Utc::now();
    let id = shared::domain::promotion::SnapshotId::scheduled(&db, now);
    match function
        .snapshot_now(&policy, now, now)
        .await
        .map_err(|e| e.to_string())?
    {
        SnapshotState::Creating | SnapshotState::Available => {
            println!(
                "{id}: snapshot of {db} started (kept {} days)",
                policy.retention.keep_for.num_days()
            );
            Ok(())
        }
        SnapshotState::NotStarted { why } | SnapshotState::Failed { why } => Err(format!("{db}: no snapshot: {why}")),
    }
}
