//! `pipectl snapshots` and `pipectl snapshot now DB`: our RDS snapshots as the snapshot
//! function sees them, and one taken outside the schedule.

use chrono::Utc;
use shared::adapters::rds::RdsSnapshots;
use shared::domain::names::DbInstanceId;
use shared::domain::pipeline::Pipeline;
use shared::domain::promotion::SnapshotState;
use shared::handlers::scheduled_snapshots::{ours, take_scheduled};
use shared::ports::SnapshotAdmin;

/// Ours in the home region and each copy region: age, expiry under the current policy,
/// status; then the home region's quota use.
pub async fn list(aws: &aws_config::SdkConfig, pipeline: &Pipeline) -> Result<(), String> {
    let regions = shared::handlers::scheduled_snapshots::copy_regions(pipeline);
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
        let mut ours: Vec<_> = listed.iter().filter_map(|s| ours(s, now)).collect();
        ours.sort_by_key(|s| s.created_at);
        for snapshot in ours {
            let expires = match pipeline.retention_of(&snapshot.db) {
                Some(retention) => (snapshot.created_at + retention.keep_for)
                    .format("%Y-%m-%d")
                    .to_string(),
                None => "(not ours to prune)".to_owned(),
            };
            println!(
                "{:<48} {:<12} {:<10} {:>8} {:<12} {:<10} {}",
                snapshot.id,
                snapshot.db,
                snapshot.kind.tag(),
                (now - snapshot.created_at).num_days(),
                expires,
                format!("{:?}", snapshot.progress).to_lowercase(),
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
    let rds = RdsSnapshots::new(aws);
    let now = Utc::now();
    let id = shared::domain::promotion::SnapshotId::scheduled(&db, now);
    match take_scheduled(&rds, &policy, now, now)
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
