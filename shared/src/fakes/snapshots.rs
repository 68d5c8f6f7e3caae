//! RDS snapshots in memory.

use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// RDS snapshots by region (`None`: the function's own) and id: taking one records it
/// `Creating` (or adopts the one there); `finish` makes the home region's available; `insert`
/// adds one made before or by another tool. While `busy` names a DB state, nothing is taken.
/// Clones share it.
#[derive(Clone, Default)]
pub struct FakeSnapshots {
    snapshots: Arc<Mutex<BTreeMap<RegionAndId, FakeSnapshot>>>,
    busy: Arc<Mutex<Option<String>>>,
}

/// A snapshot's region (`None`: the function's own) and id.
type RegionAndId = (Option<String>, String);

#[derive(Clone)]
struct FakeSnapshot {
    listed: crate::ports::ListedSnapshot,
    state: crate::domain::promotion::SnapshotState,
}

fn listed_status(state: &crate::domain::promotion::SnapshotState) -> &'static str {
    use crate::domain::promotion::SnapshotState;
    match state {
        SnapshotState::Available => "available",
        SnapshotState::Creating | SnapshotState::NotStarted { .. } => "creating",
        SnapshotState::Failed { .. } => "failed",
    }
}

impl FakeSnapshots {
    /// The DBs are in `state` (`backing-up`, say) until `None`.
    pub fn busy(&self, state: Option<&str>) {
        *self.busy.lock().unwrap() = state.map(str::to_owned);
    }

    /// The ids of the home region's snapshots.
    pub fn taken(&self) -> Vec<String> {
        self.in_region(None).into_iter().map(|s| s.id).collect()
    }

    /// The snapshots in `region` (`None`: home), as listed.
    pub fn in_region(&self, region: Option<&str>) -> Vec<crate::ports::ListedSnapshot> {
        self.snapshots
            .lock()
            .unwrap()
            .iter()
            .filter(|((r, _), _)| r.as_deref() == region)
            .map(|(_, s)| crate::ports::ListedSnapshot {
                status: listed_status(&s.state).to_owned(),
                ..s.listed.clone()
            })
            .collect()
    }

    pub fn finish(&self, state: crate::domain::promotion::SnapshotState) {
        for ((region, _), snapshot) in self.snapshots.lock().unwrap().iter_mut() {
            if region.is_none() {
                snapshot.state = state.clone();
            }
        }
    }

    /// A snapshot made before (by us, with our tags) or by another tool, in `region`.
    pub fn insert(&self, region: Option<&str>, listed: crate::ports::ListedSnapshot) {
        let state = match listed.status.as_str() {
            "available" => crate::domain::promotion::SnapshotState::Available,
            _ => crate::domain::promotion::SnapshotState::Creating,
        };
        self.snapshots.lock().unwrap().insert(
            (region.map(str::to_owned), listed.id.clone()),
            FakeSnapshot { listed, state },
        );
    }

    fn make(
        &self,
        region: Option<&str>,
        id: &str,
        source: &str,
        tags: &[(&str, &str)],
    ) -> crate::domain::promotion::SnapshotState {
        let mut snapshots = self.snapshots.lock().unwrap();
        let made = snapshots
            .entry((region.map(str::to_owned), id.to_owned()))
            .or_insert_with(|| FakeSnapshot {
                listed: crate::ports::ListedSnapshot {
                    id: id.to_owned(),
                    source: source.to_owned(),
                    cluster: false,
                    arn: format!(
                        "arn:aws:rds:{}:123456789012:snapshot:{id}",
                        region.unwrap_or("us-east-1")
                    ),
                    created_at: Some(Utc::now()),
                    status: String::new(),
                    encrypted: false,
                    tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                },
                state: crate::domain::promotion::SnapshotState::Creating,
            });
        made.state.clone()
    }
}

impl crate::ports::Snapshots for FakeSnapshots {
    async fn take_snapshot(
        &self,
        db: &crate::domain::names::DbInstanceId,
        id: &crate::domain::promotion::SnapshotId,
        tags: &[(&str, &str)],
    ) -> Result<crate::domain::promotion::SnapshotState, crate::ports::SnapshotError> {
        if let Some(state) = self.busy.lock().unwrap().clone() {
            return Ok(crate::domain::promotion::SnapshotState::NotStarted {
                why: format!("DB instance {db} is {state}"),
            });
        }
        Ok(self.make(None, id.as_str(), db.as_str(), tags))
    }

    async fn snapshot_state(
        &self,
        id: &crate::domain::promotion::SnapshotId,
    ) -> Result<Option<crate::domain::promotion::SnapshotState>, crate::ports::SnapshotError> {
        Ok(self
            .snapshots
            .lock()
            .unwrap()
            .get(&(None, id.to_string()))
            .map(|s| s.state.clone()))
    }
}

impl crate::ports::SnapshotAdmin for FakeSnapshots {
    async fn manual_snapshots(
        &self,
        region: Option<&crate::domain::names::Region>,
    ) -> Result<Vec<crate::ports::ListedSnapshot>, crate::ports::SnapshotError> {
        Ok(self.in_region(region.map(|r| r.as_str())))
    }

    async fn delete_snapshot(
        &self,
        snapshot: &crate::ports::ListedSnapshot,
        region: Option<&crate::domain::names::Region>,
    ) -> Result<(), crate::ports::SnapshotError> {
        self.snapshots
            .lock()
            .unwrap()
            .remove(&(region.map(|r| r.to_string()), snapshot.id.clone()));
        Ok(())
    }

    async fn copy_snapshot(
        &self,
        source: &crate::ports::ListedSnapshot,
        to: &crate::domain::pipeline::CopyTarget,
        tags: &[(&str, &str)],
    ) -> Result<crate::domain::promotion::SnapshotState, crate::ports::SnapshotError> {
        Ok(self.make(Some(to.region.as_str()), &source.id, &source.source, tags))
    }
}
