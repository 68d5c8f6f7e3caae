//! The RDS adapter of the pre-deployment snapshot, against moto: made once, tagged, adopted
//! on a retry; a cluster member's snapshot is a cluster snapshot; a DB that cannot be
//! snapshotted is a failed snapshot, not an error loop.

use crate::support::*;
use shared::adapters::rds::RdsSnapshots;
use shared::domain::approval::ApprovalId;
use shared::domain::names::DbInstanceId;
use shared::domain::promotion::{SnapshotId, SnapshotState};
use shared::ports::Snapshots;

async fn instance(env: &Env, name: &str, cluster: Option<&str>) {
    harness::seed::create_database(&env.config, name, cluster).await;
}

fn id_for(db: &str) -> (DbInstanceId, SnapshotId) {
    let request = ApprovalId::parse("apr-0123456789abcdef01234567").unwrap();
    let db = DbInstanceId::parse(db).unwrap();
    let id = SnapshotId::before_deploy(&request, &db);
    (db, id)
}

#[tokio::test]
async fn a_snapshot_is_made_once_tagged_and_adopted_by_a_retry() {
    let env = Env::new().await;
    let rds = aws_sdk_rds::Client::new(&env.config);
    instance(&env, "social-analytics-db", None).await;
    let snapshots = RdsSnapshots::new(&env.config);
    let (db, id) = id_for("social-analytics-db");
    let tags = [
        ("created-by", "ecs-deploy"),
        ("ecs-deploy:approval", "apr-0123456789abcdef01234567"),
    ];
    let first = snapshots.take_snapshot(&db, &id, &tags).await.unwrap();
    assert!(
        matches!(first, SnapshotState::Creating | SnapshotState::Available),
        "{first:?}"
    );
    let again = snapshots.take_snapshot(&db, &id, &tags).await.unwrap();
    assert!(
        matches!(again, SnapshotState::Creating | SnapshotState::Available),
        "{again:?}"
    );
    let listed = rds
        .describe_db_snapshots()
        .db_instance_identifier("social-analytics-db")
        .send()
        .await
        .unwrap();
    let made: Vec<_> = listed
        .db_snapshots()
        .iter()
        .filter(|s| s.snapshot_type() == Some("manual"))
        .collect();
    assert_eq!(made.len(), 1, "one snapshot, however often it is asked for");
    let arn = made[0].db_snapshot_arn().unwrap();
    let tagged = rds.list_tags_for_resource().resource_name(arn).send().await.unwrap();
    let keys: Vec<_> = tagged.tag_list().iter().filter_map(|t| t.key()).collect();
    assert!(
        keys.contains(&"created-by") && keys.contains(&"ecs-deploy:approval"),
        "{keys:?}"
    );
    assert_eq!(
        snapshots.snapshot_state(&id).await.unwrap(),
        Some(SnapshotState::Available)
    );
    let (_, unknown) = id_for("nothing-here");
    assert_eq!(snapshots.snapshot_state(&unknown).await.unwrap(), None);
}

#[tokio::test]
async fn a_cluster_member_gets_a_cluster_snapshot() {
    let env = Env::new().await;
    let rds = aws_sdk_rds::Client::new(&env.config);
    rds.create_db_cluster()
        .db_cluster_identifier("analytics-aurora")
        .engine("aurora-postgresql")
        .master_username("app")
        .master_user_password("not-a-secret-1")
        .send()
        .await
        .unwrap();
    instance(&env, "analytics-aurora-1", Some("analytics-aurora")).await;
    let snapshots = RdsSnapshots::new(&env.config);
    let (db, id) = id_for("analytics-aurora-1");
    snapshots.take_snapshot(&db, &id, &[]).await.unwrap();
    let clusters = rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.db_cluster_snapshots().len(), 1);
    assert!(snapshots.snapshot_state(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_db_that_cannot_be_snapshotted_is_a_failed_snapshot() {
    let env = Env::new().await;
    let rds = aws_sdk_rds::Client::new(&env.config);
    instance(&env, "stopped-db", None).await;
    rds.stop_db_instance()
        .db_instance_identifier("stopped-db")
        .send()
        .await
        .unwrap();
    let snapshots = RdsSnapshots::new(&env.config);
    let (db, id) = id_for("stopped-db");
    assert!(matches!(
        snapshots.take_snapshot(&db, &id, &[]).await.unwrap(),
        SnapshotState::Failed { why } if why.contains("is stopped, not available")
    ));
    let (missing, id) = id_for("no-such-db");
    assert!(matches!(
        snapshots.take_snapshot(&missing, &id, &[]).await.unwrap(),
        SnapshotState::Failed { why } if why.contains("does not exist")
    ));
}
