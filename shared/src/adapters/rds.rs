use super::describe_sdk_error;
use crate::domain::names::DbInstanceId;
use crate::domain::promotion::{SnapshotId, SnapshotState};
use crate::ports::{SnapshotError, Snapshots};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::Tag;

pub struct RdsSnapshots {
    client: aws_sdk_rds::Client,
}

impl RdsSnapshots {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_rds::Client::new(config),
        }
    }
}

/// Refused requests (access, quota, invalid state or parameter) are not worth a retry; the
/// rest (throttling, 5xx, network) are.
fn rds_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> SnapshotError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    move |err| {
        let message = describe_sdk_error(operation, &err);
        match err.code() {
            Some(code)
                if code.contains("Throttl")
                    || code.contains("InternalFailure")
                    || code.contains("ServiceUnavailable") =>
            {
                SnapshotError::Transient(message)
            }
            Some(_) => SnapshotError::Refused(message),
            None => SnapshotError::Transient(message),
        }
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
        let status = instance.db_instance_status().unwrap_or("unknown");
        if status != "available" {
            return Ok(SnapshotState::Failed {
                why: format!("DB instance {db} is {status}, not available"),
            });
        }
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
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
