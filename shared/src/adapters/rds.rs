use super::describe_sdk_error;
use crate::domain::names::{DbInstanceId, Region};
use crate::domain::pipeline::CopyTarget;
use crate::domain::promotion::{SnapshotId, SnapshotState};
use crate::ports::{ListedSnapshot, SnapshotAdmin, SnapshotError, Snapshots};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::Tag;
use std::collections::BTreeMap;

#[derive(Clone)]
pub struct RdsSnapshots {
    client: aws_sdk_rds::Client,
    /// One client per region snapshots are copied to, built at init.
    regional: BTreeMap<Region, aws_sdk_rds::Client>,
}

impl RdsSnapshots {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::with_regions(config, [])
    }

    /// With clients for the `regions` snapshots are copied to as well.
    pub fn with_regions<'a>(config: &aws_config::SdkConfig, regions: impl IntoIterator<Item = &'a Region>) -> Self {
        let regional = regions
            .into_iter()
            .map(|region| {
                let regional = aws_sdk_rds::config::Builder::from(config)
                    .region(aws_config::Region::new(region.as_str().to_owned()))
                    .build();
                (region.clone(), aws_sdk_rds::Client::from_conf(regional))
            })
            .collect();
        Self {
            client: aws_sdk_rds::Client::new(config),
            regional,
        }
    }

    fn client_in(&self, region: Option<&Region>) -> Result<&aws_sdk_rds::Client, SnapshotError> {
        match region {
            None => Ok(&self.client),
            Some(region) => self.regional.get(region).ok_or_else(|| {
                SnapshotError::Refused(format!("no RDS client for region {region} (not in the pipeline file)"))
            }),
        }
    }
}

fn listed_time(time: Option<&aws_sdk_rds::primitives::DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    let time = time?;
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn listed_tags(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value().unwrap_or_default().to_owned())))
        .collect()
}

fn sdk_tags(tags: &[(&str, &str)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

/// RDS's refusals (access, quota, a missing DB, an invalid request) are not worth a retry;
/// the rest (throttling, 5xx, network, codes not named here) are.
fn rds_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> SnapshotError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| {
        let message = describe_sdk_error(operation, &err);
        match err.code() {
            Some(
                "SnapshotQuotaExceeded"
                | "DBInstanceNotFound"
                | "DBClusterNotFoundFault"
                | "InvalidDBInstanceState"
                | "InvalidDBClusterStateFault"
                | "KMSKeyNotAccessibleFault"
                | "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "InvalidClientTokenId"
                | "InvalidParameterValue"
                | "InvalidParameterCombination",
            ) => SnapshotError::Refused(message),
            _ => SnapshotError::Transient(message),
        }
    }
}

/// DB states that pass on their own (a backup window, a modification, a reboot): a snapshot
/// waits for them. Any other state but `available` (stopped, failed, storage-full, ...) fails it.
const PASSING_DB_STATES: &[&str] = &[
    "backing-up",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "storage-config-upgrade",
    "storage-optimization",
    "upgrading",
];

/// Whether a DB in `status` can be snapshotted now, later, or not at all.
fn snapshot_of_db(db: &DbInstanceId, status: &str) -> Option<SnapshotState> {
    match status {
        "available" => None,
        busy if PASSING_DB_STATES.contains(&busy) => Some(SnapshotState::NotStarted {
            why: format!("DB instance {db} is {busy}"),
        }),
        other => Some(SnapshotState::Failed {
            why: format!("DB instance {db} is {other}, not available"),
        }),
    }
}

/// RDS's snapshot status, as the promotion reads it.
fn state_of(status: Option<&str>) -> SnapshotState {
    match status {
        Some("available") => SnapshotState::Available,
        Some("creating") | Some("copying") | Some("pending") | None => SnapshotState::Creating,
        Some(other) => SnapshotState::Failed {
            why: format!("RDS reports it {other}"),
        },
    }
}

/// A snapshot refused because its DB became busy between the look and the request.
fn busy<E: ProvideErrorMetadata>(db: &DbInstanceId, err: E) -> SnapshotState {
    SnapshotState::NotStarted {
        why: format!("DB instance {db} is busy: {}", err.message().unwrap_or("invalid state")),
    }
}

impl Snapshots for RdsSnapshots {
    async fn take_snapshot(
        &self,
        db: &DbInstanceId,
        id: &SnapshotId,
        tags: &[(&str, &str)],
    ) -> Result<SnapshotState, SnapshotError> {
        if let Some(existing) = self.snapshot_state(id).await? {
            return Ok(existing);
        }
        let described = self
            .client
            .describe_db_instances()
            .db_instance_identifier(db.as_str())
            .send()
            .await;
        let instance = match described {
            Ok(out) => out.db_instances.unwrap_or_default().into_iter().next(),
            Err(err) if err.code() == Some("DBInstanceNotFound") => None,
            Err(err) => return Err(rds_error("DescribeDBInstances")(err)),
        };
        let Some(instance) = instance else {
            return Ok(SnapshotState::Failed {
                why: format!("DB instance {db} does not exist"),
            });
        };
        if let Some(not_now) = snapshot_of_db(db, instance.db_instance_status().unwrap_or("unknown")) {
            return Ok(not_now);
        }
        let tags = sdk_tags(tags);
        let status = match instance.db_cluster_identifier() {
            Some(cluster) => {
                let made = self
                    .client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(cluster)
                    .db_cluster_snapshot_identifier(id.as_str())
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match made {
                    Ok(out) => out.db_cluster_snapshot.and_then(|s| s.status),
                    Err(err) if err.code() == Some("DBClusterSnapshotAlreadyExistsFault") => None,
                    Err(err) if err.code() == Some("InvalidDBClusterStateFault") => return Ok(busy(db, err)),
                    Err(err) => return Err(rds_error("CreateDBClusterSnapshot")(err)),
                }
            }
            None => {
                let made = self
                    .client
                    .create_db_snapshot()
                    .db_instance_identifier(db.as_str())
                    .db_snapshot_identifier(id.as_str())
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match made {
                    Ok(out) => out.db_snapshot.and_then(|s| s.status),
                    // Made by a concurrent or earlier try whose answer was lost: adopt it.
                    Err(err) if err.code() == Some("DBSnapshotAlreadyExists") => None,
                    // Became busy since it was described (a backup window opening).
                    Err(err) if err.code() == Some("InvalidDBInstanceState") => return Ok(busy(db, err)),
                    Err(err) => return Err(rds_error("CreateDBSnapshot")(err)),
                }
            }
        };
        Ok(state_of(status.as_deref()))
    }

    async fn snapshot_state(&self, id: &SnapshotId) -> Result<Option<SnapshotState>, SnapshotError> {
        let instance = self
            .client
            .describe_db_snapshots()
            .db_snapshot_identifier(id.as_str())
            .send()
            .await;
        match instance {
            Ok(out) => {
                if let Some(snapshot) = out.db_snapshots.unwrap_or_default().into_iter().next() {
                    return Ok(Some(state_of(snapshot.status())));
                }
            }
            Err(err) if err.code() == Some("DBSnapshotNotFound") => {}
            Err(err) => return Err(rds_error("DescribeDBSnapshots")(err)),
        }
        let cluster = self
            .client
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id.as_str())
            .send()
            .await;
        match cluster {
            Ok(out) => Ok(out
                .db_cluster_snapshots
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(|snapshot| state_of(snapshot.status()))),
            Err(err) if err.code() == Some("DBClusterSnapshotNotFoundFault") => Ok(None),
            Err(err) => Err(rds_error("DescribeDBClusterSnapshots")(err)),
        }
    }
}

impl SnapshotAdmin for RdsSnapshots {
    async fn manual_snapshots(&self, region: Option<&Region>) -> Result<Vec<ListedSnapshot>, SnapshotError> {
        let client = self.client_in(region)?;
        let mut listed = Vec::new();
        let mut marker = None;
        loop {
            let page = client
                .describe_db_snapshots()
                .snapshot_type("manual")
                .set_marker(marker)
                .send()
                .await
                .map_err(rds_error("DescribeDBSnapshots"))?;
            for snapshot in page.db_snapshots() {
                listed.push(ListedSnapshot {
                    id: snapshot.db_snapshot_identifier().unwrap_or_default().to_owned(),
                    source: snapshot.db_instance_identifier().unwrap_or_default().to_owned(),
                    cluster: false,
                    arn: snapshot.db_snapshot_arn().unwrap_or_default().to_owned(),
                    // A copy's own creation time is when it was copied: retention counts from
                    // its source's.
                    created_at: listed_time(
                        snapshot
                            .original_snapshot_create_time()
                            .or(snapshot.snapshot_create_time()),
                    ),
                    status: snapshot.status().unwrap_or_default().to_owned(),
                    encrypted: snapshot.encrypted().unwrap_or(false),
                    tags: listed_tags(snapshot.tag_list()),
                });
            }
            marker = page.marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        let mut marker = None;
        loop {
            let page = client
                .describe_db_cluster_snapshots()
                .snapshot_type("manual")
                .set_marker(marker)
                .send()
                .await
                .map_err(rds_error("DescribeDBClusterSnapshots"))?;
            for snapshot in page.db_cluster_snapshots() {
                listed.push(ListedSnapshot {
                    id: snapshot.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
                    source: snapshot.db_cluster_identifier().unwrap_or_default().to_owned(),
                    cluster: true,
                    arn: snapshot.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
                    created_at: listed_time(snapshot.snapshot_create_time()),
                    status: snapshot.status().unwrap_or_default().to_owned(),
                    encrypted: snapshot.storage_encrypted().unwrap_or(false),
                    tags: listed_tags(snapshot.tag_list()),
                });
            }
            marker = page.marker().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        Ok(listed)
    }

    async fn delete_snapshot(&self, snapshot: &ListedSnapshot, region: Option<&Region>) -> Result<(), SnapshotError> {
        let client = self.client_in(region)?;
        if snapshot.cluster {
            match client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&snapshot.id)
                .send()
                .await
            {
                Err(err) if err.code() != Some("DBClusterSnapshotNotFoundFault") => {
                    Err(rds_error("DeleteDBClusterSnapshot")(err))
                }
                _ => Ok(()),
            }
        } else {
            match client
                .delete_db_snapshot()
                .db_snapshot_identifier(&snapshot.id)
                .send()
                .await
            {
                Err(err) if err.code() != Some("DBSnapshotNotFound") => Err(rds_error("DeleteDBSnapshot")(err)),
                _ => Ok(()),
            }
        }
    }

    async fn copy_snapshot(
        &self,
        source: &ListedSnapshot,
        to: &CopyTarget,
        tags: &[(&str, &str)],
    ) -> Result<SnapshotState, SnapshotError> {
        let client = self.client_in(Some(&to.region))?;
        let status = if source.cluster {
            let made = client
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(&source.arn)
                .target_db_cluster_snapshot_identifier(&source.id)
                .set_kms_key_id(to.kms_key_id.clone())
                .set_tags(Some(sdk_tags(tags)))
                .send()
                .await;
            match made {
                Ok(out) => out.db_cluster_snapshot.and_then(|s| s.status),
                Err(err) if err.code() == Some("DBClusterSnapshotAlreadyExistsFault") => None,
                Err(err) => return Err(rds_error("CopyDBClusterSnapshot")(err)),
            }
        } else {
            let made = client
                .copy_db_snapshot()
                .source_db_snapshot_identifier(&source.arn)
                .target_db_snapshot_identifier(&source.id)
                .set_kms_key_id(to.kms_key_id.clone())
                .set_tags(Some(sdk_tags(tags)))
                .send()
                .await;
            match made {
                Ok(out) => out.db_snapshot.and_then(|s| s.status),
                // Made by an earlier run whose answer was lost: adopt it.
                Err(err) if err.code() == Some("DBSnapshotAlreadyExists") => None,
                Err(err) => return Err(rds_error("CopyDBSnapshot")(err)),
            }
        };
        Ok(state_of(status.as_deref()))
    }
}

impl crate::ports::DbInventory for RdsSnapshots {
    async fn db_shape(&self, db: &DbInstanceId) -> Result<Option<crate::domain::cost::DbShape>, SnapshotError> {
        let out = match self
            .client
            .describe_db_instances()
            .db_instance_identifier(db.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.code() == Some("DBInstanceNotFound") => return Ok(None),
            Err(err) => return Err(rds_error("DescribeDBInstances")(err)),
        };
        Ok(out.db_instances().first().map(|instance| crate::domain::cost::DbShape {
            engine: instance.engine().unwrap_or_default().to_owned(),
            class: instance.db_instance_class().unwrap_or_default().to_owned(),
            multi_az: instance.multi_az().unwrap_or(false),
            storage_gb: instance
                .allocated_storage()
                .and_then(|gb| u32::try_from(gb).ok())
                .unwrap_or(0),
            storage_type: instance.storage_type().unwrap_or("gp2").to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::create_db_snapshot::CreateDBSnapshotError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn refused_with(code: &str) -> SnapshotError {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        rds_error("CreateDBSnapshot")(SdkError::service_error(
            CreateDBSnapshotError::generic(meta),
            HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::empty()),
        ))
    }

    #[test]
    fn refusals_fail_the_snapshot_and_the_rest_are_retried() {
        for code in [
            "SnapshotQuotaExceeded",
            "AccessDenied",
            "DBInstanceNotFound",
            "InvalidParameterValue",
        ] {
            assert!(matches!(refused_with(code), SnapshotError::Refused(_)), "{code}");
        }
        for code in [
            "Throttling",
            "InternalFailure",
            "ServiceUnavailable",
            "RequestExpired",
            "SomethingNew",
        ] {
            assert!(matches!(refused_with(code), SnapshotError::Transient(_)), "{code}");
        }
    }

    #[test]
    fn a_busy_db_puts_its_snapshot_off_and_a_stopped_one_fails_it() {
        let db = DbInstanceId::parse("orders-db").unwrap();
        assert_eq!(snapshot_of_db(&db, "available"), None);
        for busy in ["backing-up", "modifying", "rebooting"] {
            assert!(
                matches!(snapshot_of_db(&db, busy), Some(SnapshotState::NotStarted { why }) if why.ends_with(busy)),
                "{busy}"
            );
        }
        for down in ["stopped", "failed", "storage-full", "deleting"] {
            assert!(
                matches!(snapshot_of_db(&db, down), Some(SnapshotState::Failed { why }) if why.contains(down)),
                "{down}"
            );
        }
    }
}
