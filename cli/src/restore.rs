//! `pipectl snapshot restore SNAPSHOT --as NEW_DB_ID --reason TEXT`: a snapshot (an instance's
//! or an Aurora cluster's) restored to a new DB with its source's class, subnet group, security
//! groups and parameter group. The running DB is never touched; an identifier in use is never
//! reused, except by a retry of this same restore (the new DB's `restored-from` tag says so).

use aws_sdk_rds::Client;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::Tag;
use shared::adapters::describe_sdk_error;
use shared::domain::db_restore::{Existing, Restore, SnapshotKind, existing};
use shared::domain::names::DbInstanceId;
use shared::ports::Notifier;

/// What the named snapshot is, as RDS describes it.
struct Snapshot {
    kind: SnapshotKind,
    source: String,
    engine: Option<String>,
    status: String,
}

pub struct Request<'a> {
    pub snapshot: &'a str,
    pub new_id: &'a str,
    pub reason: &'a str,
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub async fn restore(
    aws: &aws_config::SdkConfig,
    notifier: &impl Notifier,
    request: Request<'_>,
) -> Result<(), String> {
    if request.reason.trim().is_empty() {
        return Err("--reason must say why the snapshot is restored".into());
    }
    // RDS holds clusters to the same identifier rules as instances.
    let new_id = DbInstanceId::parse(request.new_id).map_err(|e| e.to_string())?;
    let rds = Client::new(aws);
    let snapshot = describe_snapshot(&rds, request.snapshot).await?;
    let restore = Restore {
        snapshot: request.snapshot.to_owned(),
        kind: snapshot.kind,
        new_id: new_id.to_string(),
        source: None,
        by: request.by,
        at: request.at,
        reason: request.reason.to_owned(),
    };
    if let Some(tags) = existing_db_tags(&rds, new_id.as_str()).await? {
        return match existing(request.snapshot, &tags) {
            Existing::ThisRestore => {
                if snapshot.kind == SnapshotKind::Cluster {
                    // An earlier run may have stopped between the cluster and its writer.
                    restore_cluster(&rds, &snapshot, restore.clone(), Restored::Already).await?;
                }
                println!("{new_id} is already restored from {}: nothing to do", request.snapshot);
                println!("endpoint: {}", restore.endpoint_command());
                Ok(())
            }
            Existing::Taken => Err(format!(
                "{new_id} already exists and was not restored from {}: choose a new identifier (a restore never reuses one)",
                request.snapshot
            )),
        };
    }
    if snapshot.status != "available" {
        return Err(format!(
            "{} is {}: only an available snapshot can be restored",
            request.snapshot, snapshot.status
        ));
    }
    let restore = match snapshot.kind {
        SnapshotKind::Instance => restore_instance(&rds, &snapshot, restore).await?,
        SnapshotKind::Cluster => restore_cluster(&rds, &snapshot, restore, Restored::NotYet).await?,
    };
    println!(
        "restoring {} as new {} {new_id}; {} untouched",
        restore.snapshot,
        restore.kind.noun(),
        restore.source.as_deref().unwrap_or("its source (gone) is")
    );
    println!(
        "when it is available, point the application at its endpoint:\n  {}",
        restore.endpoint_command()
    );
    notifier
        .publish(&restore.notice())
        .await
        .map_err(|e| format!("{e} (the restore started; the team was not told)"))
}

async fn describe_snapshot(rds: &Client, id: &str) -> Result<Snapshot, String> {
    match rds.describe_db_snapshots().db_snapshot_identifier(id).send().await {
        Ok(out) => {
            if let Some(s) = out.db_snapshots().first() {
                return Ok(Snapshot {
                    kind: SnapshotKind::Instance,
                    source: s.db_instance_identifier().unwrap_or_default().to_owned(),
                    engine: s.engine().map(str::to_owned),
                    status: s.status().unwrap_or("unknown").to_owned(),
                });
            }
        }
        Err(e) if e.code() == Some("DBSnapshotNotFound") => {}
        Err(e) => return Err(describe_sdk_error("DescribeDBSnapshots", &e)),
    }
    match rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
    {
        Ok(out) => out
            .db_cluster_snapshots()
            .first()
            .map(|s| Snapshot {
                kind: SnapshotKind::Cluster,
                source: s.db_cluster_identifier().unwrap_or_default().to_owned(),
                engine: s.engine().map(str::to_owned),
                status: s.status().unwrap_or("unknown").to_owned(),
            })
            .ok_or_else(|| not_found(id)),
        Err(e) if e.code() == Some("DBClusterSnapshotNotFoundFault") => Err(not_found(id)),
        Err(e) => Err(describe_sdk_error("DescribeDBClusterSnapshots", &e)),
    }
}

fn not_found(id: &str) -> String {
    format!("no DB or cluster snapshot {id} in this region (`pipectl snapshots` lists ours)")
}

/// The tags of the instance or cluster named `id`, if one exists.
async fn existing_db_tags(rds: &Client, id: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let pairs = |tags: &[Tag]| {
        tags.iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(out) => {
            if let Some(db) = out.db_instances().first() {
                return Ok(Some(pairs(db.tag_list())));
            }
        }
        Err(e) if e.code() == Some("DBInstanceNotFound") => {}
        Err(e) => return Err(describe_sdk_error("DescribeDBInstances", &e)),
    }
    match rds.describe_db_clusters().db_cluster_identifier(id).send().await {
        Ok(out) => Ok(out.db_clusters().first().map(|c| pairs(c.tag_list()))),
        Err(e) if e.code() == Some("DBClusterNotFoundFault") => Ok(None),
        Err(e) => Err(describe_sdk_error("DescribeDBClusters", &e)),
    }
}

fn sdk_tags(restore: &Restore) -> Vec<Tag> {
    restore
        .tags()
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

async fn restore_instance(rds: &Client, snapshot: &Snapshot, mut restore: Restore) -> Result<Restore, String> {
    let source = match rds
        .describe_db_instances()
        .db_instance_identifier(&snapshot.source)
        .send()
        .await
    {
        Ok(out) => out.db_instances().first().cloned(),
        Err(e) if e.code() == Some("DBInstanceNotFound") => None,
        Err(e) => return Err(describe_sdk_error("DescribeDBInstances", &e)),
    };
    let mut call = rds
        .restore_db_instance_from_db_snapshot()
        .db_snapshot_identifier(&restore.snapshot)
        .db_instance_identifier(&restore.new_id)
        .set_tags(Some(sdk_tags(&restore)));
    if let Some(source) = &source {
        restore.source = Some(snapshot.source.clone());
        call = call
            .set_db_instance_class(source.db_instance_class().map(str::to_owned))
            .set_db_subnet_group_name(
                source
                    .db_subnet_group()
                    .and_then(|g| g.db_subnet_group_name())
                    .map(str::to_owned),
            )
            .set_vpc_security_group_ids(Some(
                source
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect(),
            ))
            .set_db_parameter_group_name(
                source
                    .db_parameter_groups()
                    .first()
                    .and_then(|g| g.db_parameter_group_name())
                    .map(str::to_owned),
            )
            .set_multi_az(source.multi_az());
    } else {
        eprintln!(
            "warning: {} no longer exists: the new DB gets the snapshot's class and the account's defaults",
            snapshot.source
        );
    }
    call.send()
        .await
        .map_err(|e| describe_sdk_error("RestoreDBInstanceFromDBSnapshot", &e))?;
    Ok(restore)
}

/// Whether the cluster itself is restored already (by an earlier run of the same restore).
#[derive(PartialEq)]
enum Restored {
    NotYet,
    Already,
}

/// An Aurora cluster, then a writer instance in it (a cluster without one serves nothing),
/// of the source writer's class. A writer that exists already is kept.
async fn restore_cluster(
    rds: &Client,
    snapshot: &Snapshot,
    mut restore: Restore,
    restored: Restored,
) -> Result<Restore, String> {
    let writer = DbInstanceId::parse(format!("{}-writer", restore.new_id)).map_err(|e| {
        format!("{e}: the new cluster's writer is named <NEW_DB_ID>-writer; choose a shorter NEW_DB_ID")
    })?;
    let source = match rds
        .describe_db_clusters()
        .db_cluster_identifier(&snapshot.source)
        .send()
        .await
    {
        Ok(out) => out.db_clusters().first().cloned(),
        Err(e) if e.code() == Some("DBClusterNotFoundFault") => None,
        Err(e) => return Err(describe_sdk_error("DescribeDBClusters", &e)),
    };
    let engine = snapshot
        .engine
        .clone()
        .ok_or_else(|| format!("RDS names no engine for {}", restore.snapshot))?;
    let mut call = rds
        .restore_db_cluster_from_snapshot()
        .snapshot_identifier(&restore.snapshot)
        .db_cluster_identifier(&restore.new_id)
        .engine(&engine)
        .set_tags(Some(sdk_tags(&restore)));
    let mut writer_class = None;
    if let Some(source) = &source {
        restore.source = Some(snapshot.source.clone());
        call = call
            .set_db_subnet_group_name(source.db_subnet_group().map(str::to_owned))
            .set_vpc_security_group_ids(Some(
                source
                    .vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                    .collect(),
            ))
            .set_db_cluster_parameter_group_name(source.db_cluster_parameter_group().map(str::to_owned));
        if let Some(writer) = source
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))
            .and_then(|m| m.db_instance_identifier())
        {
            writer_class = rds
                .describe_db_instances()
                .db_instance_identifier(writer)
                .send()
                .await
                .map_err(|e| describe_sdk_error("DescribeDBInstances", &e))?
                .db_instances()
                .first()
                .and_then(|i| i.db_instance_class().map(str::to_owned));
        }
    }
    if restored == Restored::NotYet {
        if let Some(tags) = existing_db_tags(rds, writer.as_str()).await?
            && existing(&restore.snapshot, &tags) == Existing::Taken
        {
            return Err(format!(
                "{writer} (the new cluster's writer) already exists: choose another NEW_DB_ID"
            ));
        }
        call.send()
            .await
            .map_err(|e| describe_sdk_error("RestoreDBClusterFromSnapshot", &e))?;
    }
    let class = writer_class.ok_or_else(|| {
        format!(
            "{} restored with no instance: the source's writer class is unknown; add one with \
             aws rds create-db-instance --db-cluster-identifier {} --engine {engine} --db-instance-class CLASS",
            restore.new_id, restore.new_id
        )
    })?;
    let created = rds
        .create_db_instance()
        .db_instance_identifier(writer.as_str())
        .db_cluster_identifier(&restore.new_id)
        .engine(&engine)
        .db_instance_class(class)
        .set_tags(Some(sdk_tags(&restore)))
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e) if e.code() == Some("DBInstanceAlreadyExists") => {}
        Err(e) => return Err(describe_sdk_error("CreateDBInstance", &e)),
    }
    Ok(restore)
}
