//! `pipectl snapshot restore SNAPSHOT --as NEW_DB_ID --reason TEXT`: a snapshot (an instance's
//! or an Aurora cluster's) restored to a new DB with its source's class, subnet group, security
//! groups, parameter group and public accessibility. The running DB is never touched; an
//! identifier in use is never reused, except by a retry of this same restore (the new DB's
//! `restored-from` tag says so), which finishes what an earlier run left: the cluster's writer,
//! the team's notice.

use aws_sdk_rds::Client;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::Tag;
use shared::adapters::describe_sdk_error;
use shared::domain::db_restore::{DbKind, Existing, NOTIFIED, Restore, existing, restore_failed};
use shared::domain::names::DbInstanceId;
use shared::ports::Notifier;

/// What the named snapshot is, as RDS describes it.
struct Snapshot {
    kind: DbKind,
    source: String,
    engine: Option<String>,
    engine_version: Option<String>,
    status: String,
}

/// A DB (instance or cluster) that holds an identifier already.
struct ExistingDb {
    arn: String,
    status: String,
    tags: Vec<(String, String)>,
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
    let mut restore = Restore {
        snapshot: request.snapshot.to_owned(),
        kind: snapshot.kind,
        new_id: new_id.to_string(),
        source: snapshot.source.clone(),
        live_source: None,
        by: request.by,
        at: request.at,
        reason: request.reason.to_owned(),
    };
    let (arn, writer) = match existing_db(&rds, new_id.as_str()).await? {
        Some(db) => {
            let Existing::ThisRestore { notified } = existing(request.snapshot, &db.tags) else {
                return Err(format!(
                    "{new_id} already exists and was not restored from {}: choose a new identifier (a restore never reuses one)",
                    request.snapshot
                ));
            };
            if restore_failed(&db.status) {
                return Err(format!(
                    "{new_id}, restored from {}, is {}: it will not become available; delete it or restore under a new identifier",
                    request.snapshot, db.status
                ));
            }
            let writer = match snapshot.kind {
                // An earlier run may have stopped between the cluster and its writer.
                DbKind::Cluster => Some(add_writer(&rds, &snapshot, &mut restore).await?),
                DbKind::Instance => {
                    restore.live_source = instance(&rds, &snapshot.source).await?.map(|_| snapshot.source.clone());
                    None
                }
            };
            if notified {
                println!(
                    "{new_id} is already restored from {} ({}): nothing to do",
                    request.snapshot, db.status
                );
                println!("endpoint: {}", restore.endpoint_command());
                return Ok(());
            }
            (db.arn, writer)
        }
        None => {
            if snapshot.status != "available" {
                return Err(format!(
                    "{} is {}: only an available snapshot can be restored",
                    request.snapshot, snapshot.status
                ));
            }
            match snapshot.kind {
                DbKind::Instance => (restore_instance(&rds, &snapshot, &mut restore).await?, None),
                DbKind::Cluster => {
                    let arn = restore_cluster(&rds, &snapshot, &mut restore).await?;
                    (arn, Some(add_writer(&rds, &snapshot, &mut restore).await?))
                }
            }
        }
    };
    println!(
        "restoring {} as new {} {new_id}; {}",
        restore.snapshot,
        restore.kind.noun(),
        match &restore.live_source {
            Some(source) => format!("{source} untouched"),
            None => format!("{} no longer exists", restore.source),
        }
    );
    if let Some(Writer::Pending(writer)) = &writer {
        println!(
            "the cluster is not available yet, so it has no writer: run this same command again once it is, to add {writer}"
        );
    }
    println!(
        "when it is available, point the application at its endpoint:\n  {}",
        restore.endpoint_command()
    );
    // Told, then tagged: a run that dies in between tells the team twice rather than never.
    notifier.publish(&restore.notice()).await.map_err(|e| {
        format!("{e}: the restore started but the team was not told; run the same command again to tell them")
    })?;
    rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(Tag::builder().key(NOTIFIED).value("true").build())
        .send()
        .await
        .map_err(|e| describe_sdk_error("AddTagsToResource", &e))?;
    Ok(())
}

/// The calls that create a DB are not idempotent: an SDK retry after a lost answer would meet
/// the DB it made as someone else's. A failure goes to the operator, whose rerun finds it.
fn once() -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::default().retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled())
}

async fn describe_snapshot(rds: &Client, id: &str) -> Result<Snapshot, String> {
    match rds.describe_db_snapshots().db_snapshot_identifier(id).send().await {
        Ok(out) => {
            if let Some(s) = out.db_snapshots().first() {
                return Ok(Snapshot {
                    kind: DbKind::Instance,
                    source: s.db_instance_identifier().unwrap_or_default().to_owned(),
                    engine: s.engine().map(str::to_owned),
                    engine_version: s.engine_version().map(str::to_owned),
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
                kind: DbKind::Cluster,
                source: s.db_cluster_identifier().unwrap_or_default().to_owned(),
                engine: s.engine().map(str::to_owned),
                engine_version: s.engine_version().map(str::to_owned),
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

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The instance or cluster named `id`, if one exists.
async fn existing_db(rds: &Client, id: &str) -> Result<Option<ExistingDb>, String> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(out) => {
            if let Some(db) = out.db_instances().first() {
                return Ok(Some(ExistingDb {
                    arn: db.db_instance_arn().unwrap_or_default().to_owned(),
                    status: db.db_instance_status().unwrap_or("unknown").to_owned(),
                    tags: pairs(db.tag_list()),
                }));
            }
        }
        Err(e) if e.code() == Some("DBInstanceNotFound") => {}
        Err(e) => return Err(describe_sdk_error("DescribeDBInstances", &e)),
    }
    match rds.describe_db_clusters().db_cluster_identifier(id).send().await {
        Ok(out) => Ok(out.db_clusters().first().map(|c| ExistingDb {
            arn: c.db_cluster_arn().unwrap_or_default().to_owned(),
            status: c.status().unwrap_or("unknown").to_owned(),
            tags: pairs(c.tag_list()),
        })),
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

async fn instance(rds: &Client, id: &str) -> Result<Option<aws_sdk_rds::types::DbInstance>, String> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if e.code() == Some("DBInstanceNotFound") => Ok(None),
        Err(e) => Err(describe_sdk_error("DescribeDBInstances", &e)),
    }
}

async fn cluster(rds: &Client, id: &str) -> Result<Option<aws_sdk_rds::types::DbCluster>, String> {
    match rds.describe_db_clusters().db_cluster_identifier(id).send().await {
        Ok(out) => Ok(out.db_clusters().first().cloned()),
        Err(e) if e.code() == Some("DBClusterNotFoundFault") => Ok(None),
        Err(e) => Err(describe_sdk_error("DescribeDBClusters", &e)),
    }
}

/// Restores the instance; returns its ARN.
async fn restore_instance(rds: &Client, snapshot: &Snapshot, restore: &mut Restore) -> Result<String, String> {
    let source = instance(rds, &snapshot.source).await?;
    let mut call = rds
        .restore_db_instance_from_db_snapshot()
        .db_snapshot_identifier(&restore.snapshot)
        .db_instance_identifier(&restore.new_id)
        .set_tags(Some(sdk_tags(restore)));
    match &source {
        Some(source) => {
            restore.live_source = Some(snapshot.source.clone());
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
                .set_multi_az(source.multi_az())
                .set_publicly_accessible(source.publicly_accessible());
        }
        None => {
            eprintln!(
                "warning: {} no longer exists: the new DB gets the snapshot's class and the account's defaults, not publicly accessible",
                snapshot.source
            );
            call = call.publicly_accessible(false);
        }
    }
    let out = call
        .customize()
        .config_override(once())
        .send()
        .await
        .map_err(|e| describe_sdk_error("RestoreDBInstanceFromDBSnapshot", &e))?;
    Ok(out
        .db_instance()
        .and_then(|db| db.db_instance_arn())
        .unwrap_or_default()
        .to_owned())
}

/// The cluster's writer: made now, or left for a rerun while the cluster is not available
/// (RDS adds instances only to an available cluster).
enum Writer {
    Added,
    Pending(DbInstanceId),
}

/// The cluster's writer is named after it.
fn writer_id(restore: &Restore) -> Result<DbInstanceId, String> {
    DbInstanceId::parse(format!("{}-writer", restore.new_id))
        .map_err(|e| format!("{e}: the new cluster's writer is named <NEW_DB_ID>-writer; choose a shorter NEW_DB_ID"))
}

/// The source cluster's writer instance, which the new writer copies.
async fn source_writer(
    rds: &Client,
    source: &aws_sdk_rds::types::DbCluster,
) -> Result<Option<aws_sdk_rds::types::DbInstance>, String> {
    let writer = source
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier());
    match writer {
        Some(writer) => instance(rds, writer).await,
        None => Ok(None),
    }
}

/// Restores the Aurora cluster; returns its ARN. Checked first: that its writer can be made
/// (the source's writer is known and the writer's identifier is free), so a restore never
/// leaves a cluster no rerun can complete.
async fn restore_cluster(rds: &Client, snapshot: &Snapshot, restore: &mut Restore) -> Result<String, String> {
    let writer = writer_id(restore)?;
    if instance(rds, writer.as_str()).await?.is_some() {
        return Err(format!(
            "{writer} (the new cluster's writer) already exists: choose another NEW_DB_ID"
        ));
    }
    let source = cluster(rds, &snapshot.source).await?.ok_or_else(|| {
        format!(
            "{} no longer exists, so its writer's class and network are unknown: restore it with the AWS CLI \
             (aws rds restore-db-cluster-from-snapshot) and say them",
            snapshot.source
        )
    })?;
    if source_writer(rds, &source).await?.is_none() {
        return Err(format!(
            "{} has no writer instance whose class the new writer could copy",
            snapshot.source
        ));
    }
    restore.live_source = Some(snapshot.source.clone());
    let engine = snapshot
        .engine
        .clone()
        .ok_or_else(|| format!("RDS names no engine for {}", restore.snapshot))?;
    let out = rds
        .restore_db_cluster_from_snapshot()
        .snapshot_identifier(&restore.snapshot)
        .db_cluster_identifier(&restore.new_id)
        .engine(engine)
        .set_engine_version(snapshot.engine_version.clone())
        .set_db_subnet_group_name(source.db_subnet_group().map(str::to_owned))
        .set_vpc_security_group_ids(Some(
            source
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
        ))
        .set_db_cluster_parameter_group_name(source.db_cluster_parameter_group().map(str::to_owned))
        .set_serverless_v2_scaling_configuration(source.serverless_v2_scaling_configuration().map(|s| {
            aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                .set_min_capacity(s.min_capacity())
                .set_max_capacity(s.max_capacity())
                .build()
        }))
        .set_tags(Some(sdk_tags(restore)))
        .customize()
        .config_override(once())
        .send()
        .await
        .map_err(|e| describe_sdk_error("RestoreDBClusterFromSnapshot", &e))?;
    Ok(out
        .db_cluster()
        .and_then(|c| c.db_cluster_arn())
        .unwrap_or_default()
        .to_owned())
}

/// Adds the restored cluster's writer, of the source writer's class and public accessibility,
/// unless it exists (in this cluster) already.
async fn add_writer(rds: &Client, snapshot: &Snapshot, restore: &mut Restore) -> Result<Writer, String> {
    let writer = writer_id(restore)?;
    if let Some(found) = instance(rds, writer.as_str()).await? {
        return match found.db_cluster_identifier() == Some(restore.new_id.as_str()) {
            true => Ok(Writer::Added),
            false => Err(format!(
                "{writer} exists outside {}: it is not this restore's writer",
                restore.new_id
            )),
        };
    }
    let source = cluster(rds, &snapshot.source).await?;
    let source_writer = match &source {
        Some(source) => source_writer(rds, source).await?,
        None => None,
    };
    let source_writer = source_writer.ok_or_else(|| {
        format!(
            "{} has no known writer to copy: add one to {} with aws rds create-db-instance",
            snapshot.source, restore.new_id
        )
    })?;
    restore.live_source = Some(snapshot.source.clone());
    let created = rds
        .create_db_instance()
        .db_instance_identifier(writer.as_str())
        .db_cluster_identifier(&restore.new_id)
        .set_engine(snapshot.engine.clone())
        .set_db_instance_class(source_writer.db_instance_class().map(str::to_owned))
        .set_publicly_accessible(source_writer.publicly_accessible())
        .set_tags(Some(sdk_tags(restore)))
        .customize()
        .config_override(once())
        .send()
        .await;
    match created {
        Ok(_) => Ok(Writer::Added),
        Err(e) if e.code() == Some("InvalidDBClusterStateFault") => Ok(Writer::Pending(writer)),
        Err(e) => Err(describe_sdk_error("CreateDBInstance", &e)),
    }
}
