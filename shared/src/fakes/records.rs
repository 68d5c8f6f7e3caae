//! The records table in memory: every records port (locks, deployments, quarantine, approvals,
//! outbox) over one set of tables.

use super::{ServiceKey, service_key};
use crate::domain::approval::{ApprovalId, ApprovalRequest, ApprovalStatus, Successor};
use crate::domain::deployment::{Deployment, DeploymentId, ServiceState, ServiceStateField, Status};
use crate::domain::names::{AppName, ClusterName, ImageDigest, ServiceName, StageName};
use crate::domain::notice::Notice;
use crate::ports::{
    Approvals, Deployments, HistoryPage, OpenRequest, Outbox, OutboxEntry, Quarantine, ServiceLocks, StateMove,
    StoreError,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(super) struct Tables {
    deployments: BTreeMap<String, Deployment>,
    states: HashMap<ServiceKey, ServiceState>,
    locks: HashMap<ServiceKey, (String, DateTime<Utc>)>,
    outbox: BTreeMap<String, OutboxEntry>,
    approvals: BTreeMap<String, ApprovalRequest>,
    open_requests: HashMap<(String, String), OpenRequest>,
    pub(super) cost_report: Option<crate::ports::KeptReport>,
    pub(super) price_table: Option<crate::domain::cost::PriceTable>,
}

/// The records table in memory. Clones share it, as handlers share one table.
#[derive(Clone, Default)]
pub struct MemoryRecords {
    pub(super) tables: Arc<Mutex<Tables>>,
    failing_releases: Arc<Mutex<bool>>,
    failing_outbox: Arc<Mutex<bool>>,
    /// A cost report another delivery keeps just before this one's write.
    pub(super) racing_report: Arc<Mutex<Option<crate::ports::KeptReport>>>,
}

impl MemoryRecords {
    /// Makes every lock release fail (as a throttled UpdateItem would), or succeed again.
    pub fn fail_releases(&self, failing: bool) {
        *self.failing_releases.lock().unwrap() = failing;
    }

    /// Makes keeping a notice in the outbox fail (as a throttled PutItem would), or succeed.
    pub fn fail_outbox(&self, failing: bool) {
        *self.failing_outbox.lock().unwrap() = failing;
    }

    /// The lock on a service, as (owner, until), if one is held.
    pub fn lock(&self, cluster: &ClusterName, service: &ServiceName) -> Option<(String, DateTime<Utc>)> {
        self.tables
            .lock()
            .unwrap()
            .locks
            .get(&service_key(cluster, service))
            .cloned()
    }

    /// Holds a service's lock for another handler until `until`.
    pub fn hold_lock(&self, cluster: &ClusterName, service: &ServiceName, until: DateTime<Utc>) {
        self.tables
            .lock()
            .unwrap()
            .locks
            .insert(service_key(cluster, service), ("another-handler".into(), until));
    }

    pub fn deployments(&self) -> Vec<Deployment> {
        self.tables.lock().unwrap().deployments.values().cloned().collect()
    }

    pub fn state(&self, cluster: &ClusterName, service: &ServiceName) -> ServiceState {
        let tables = self.tables.lock().unwrap();
        tables
            .states
            .get(&service_key(cluster, service))
            .cloned()
            .unwrap_or_default()
    }

    pub fn outbox(&self) -> Vec<(String, OutboxEntry)> {
        let tables = self.tables.lock().unwrap();
        tables.outbox.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Puts a record as it is, bypassing every condition: a test's starting point.
    pub fn insert(&self, deployment: Deployment) {
        self.tables
            .lock()
            .unwrap()
            .deployments
            .insert(deployment.id.to_string(), deployment);
    }

    pub fn approvals(&self) -> Vec<ApprovalRequest> {
        self.tables.lock().unwrap().approvals.values().cloned().collect()
    }

    pub fn set_state(&self, cluster: &ClusterName, service: &ServiceName, state: ServiceState) {
        self.tables
            .lock()
            .unwrap()
            .states
            .insert(service_key(cluster, service), state);
    }
}

impl ServiceLocks for MemoryRecords {
    async fn lock_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<ServiceState>, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let key = service_key(cluster, service);
        match tables.locks.get(&key) {
            Some((holder, held_until)) if holder != owner && *held_until >= now => Ok(None),
            _ => {
                tables.locks.insert(key.clone(), (owner.to_owned(), until));
                Ok(Some(tables.states.get(&key).cloned().unwrap_or_default()))
            }
        }
    }

    async fn release_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        owner: &str,
        moved: Option<&StateMove>,
    ) -> Result<bool, StoreError> {
        if *self.failing_releases.lock().unwrap() {
            return Err(StoreError::retryable("UpdateItem: ThrottlingException"));
        }
        let mut tables = self.tables.lock().unwrap();
        let key = service_key(cluster, service);
        if tables.locks.get(&key).is_none_or(|(holder, _)| holder != owner) {
            return Ok(false);
        }
        tables.locks.remove(&key);
        if let Some(moved) = moved {
            let state = tables.states.entry(key).or_default();
            match moved.field {
                ServiceStateField::Latest => state.latest = Some(moved.to.clone()),
                ServiceStateField::AwaitingApproval => state.awaiting_approval = Some(moved.to.clone()),
            }
        }
        Ok(true)
    }
}

impl Deployments for MemoryRecords {
    async fn create_deployment(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let id = deployment.id.to_string();
        if tables
            .deployments
            .get(&id)
            .is_some_and(|d| d.status != Status::Requested)
        {
            return Ok(false);
        }
        tables.deployments.insert(id, deployment.clone());
        Ok(true)
    }

    async fn save_transition(&self, deployment: &Deployment, from: Status) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        match tables.deployments.get_mut(deployment.id.as_str()) {
            Some(stored) if stored.status == from => {
                *stored = deployment.clone();
                Ok(true)
            }
            Some(stored) => Ok(stored == deployment),
            None => Ok(false),
        }
    }

    async fn record_registration(&self, deployment: &Deployment) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        match tables.deployments.get_mut(deployment.id.as_str()) {
            Some(stored) if stored.status == deployment.status => {
                stored.task_definition = deployment.task_definition.clone();
                stored.definition = deployment.definition.clone();
                stored.previous_definition = deployment.previous_definition.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_requested(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().unwrap();
        if tables
            .deployments
            .get(id.as_str())
            .is_some_and(|d| d.status == Status::Requested)
        {
            tables.deployments.remove(id.as_str());
        }
        Ok(())
    }

    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>, StoreError> {
        Ok(self.tables.lock().unwrap().deployments.get(id.as_str()).cloned())
    }

    async fn held_deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables
            .deployments
            .values()
            .filter(|d| d.status == Status::Held)
            .map(|d| d.id.clone())
            .collect())
    }

    async fn by_ecs_deployment(&self, ecs_deployment_id: &str) -> Result<Option<Deployment>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables
            .deployments
            .values()
            .find(|d| d.ecs_deployment_id.as_deref() == Some(ecs_deployment_id))
            .cloned())
    }

    /// Pages are cut by position; the cursor is the index of the next row. Rows come without
    /// their stored definitions, as the table's index gives them.
    async fn history(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        limit: i32,
        after: Option<&str>,
    ) -> Result<HistoryPage, StoreError> {
        let tables = self.tables.lock().unwrap();
        let mut rows: Vec<Deployment> = tables
            .deployments
            .values()
            .filter(|d| &d.cluster == cluster && &d.service == service)
            .cloned()
            .map(|d| Deployment {
                definition: None,
                previous_definition: None,
                ..d
            })
            .collect();
        rows.sort_by(|a, b| (b.requested_at, b.id.as_str()).cmp(&(a.requested_at, a.id.as_str())));
        let start: usize = after.map_or(0, |cursor| cursor.parse().expect("a cursor this fake made"));
        let end = (start + limit as usize).min(rows.len());
        Ok(HistoryPage {
            deployments: rows[start..end].to_vec(),
            next: (end < rows.len()).then(|| end.to_string()),
        })
    }
}

impl Quarantine for MemoryRecords {
    async fn quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let state = tables.states.entry(service_key(cluster, service)).or_default();
        if !state.quarantined.contains(digest) {
            state.quarantined.push(digest.clone());
        }
        Ok(())
    }

    async fn lift_quarantine(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        digest: &ImageDigest,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let state = tables.states.entry(service_key(cluster, service)).or_default();
        let before = state.quarantined.len();
        state.quarantined.retain(|d| d != digest);
        Ok(state.quarantined.len() < before)
    }

    async fn quarantined(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Vec<ImageDigest>, StoreError> {
        Ok(self.state(cluster, service).quarantined)
    }
}

impl Approvals for MemoryRecords {
    async fn create_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        if tables.approvals.contains_key(request.id.as_str()) {
            return Ok(false);
        }
        tables.approvals.insert(request.id.to_string(), request.clone());
        Ok(true)
    }

    async fn get_approval(&self, id: &ApprovalId) -> Result<Option<ApprovalRequest>, StoreError> {
        Ok(self.tables.lock().unwrap().approvals.get(id.as_str()).cloned())
    }

    async fn save_approval(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        match tables.approvals.get(request.id.as_str()) {
            Some(stored) if stored.version + 1 == request.version => {
                tables.approvals.insert(request.id.to_string(), request.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn save_decision(&self, request: &ApprovalRequest) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        match tables.approvals.get_mut(request.id.as_str()) {
            Some(stored) if stored.version + 1 == request.version => {
                // As the adapter's UpdateItem: the decision's attributes, nothing else.
                stored.ballots = request.ballots.clone();
                stored.status = request.status;
                stored.decided_at = request.decided_at;
                stored.cancelled = request.cancelled.clone();
                stored.version = request.version;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn supersede_awaiting(
        &self,
        record: &Deployment,
        request: &ApprovalId,
        by: &Successor,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let request_awaits = tables.approvals.get(request.as_str()).is_some_and(|r| {
            r.status == ApprovalStatus::AwaitingApproval
                || (r.status == ApprovalStatus::Superseded && r.superseded_by.as_ref().is_some_and(|s| s.id == by.id))
        });
        let record_awaits = tables
            .deployments
            .get(record.id.as_str())
            .is_some_and(|d| d.status == Status::AwaitingApproval);
        if !(request_awaits && record_awaits) {
            return Ok(false);
        }
        tables.deployments.insert(record.id.to_string(), record.clone());
        let stored = tables.approvals.get_mut(request.as_str()).expect("checked above");
        stored.status = ApprovalStatus::Superseded;
        stored.superseded_by = Some(by.clone());
        stored.decided_at.get_or_insert(now);
        stored.version += 1;
        Ok(true)
    }

    async fn in_flight_approvals(&self) -> Result<Vec<ApprovalId>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables
            .approvals
            .values()
            .filter(|r| r.in_flight())
            .map(|r| r.id.clone())
            .collect())
    }

    async fn discard_approval(&self, request: &ApprovalRequest) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().unwrap();
        if tables
            .approvals
            .get(request.id.as_str())
            .is_some_and(|stored| stored.version == request.version && stored.services.is_empty())
        {
            tables.approvals.remove(request.id.as_str());
        }
        Ok(())
    }

    async fn open_request(&self, stage: &StageName, application: &AppName) -> Result<Option<OpenRequest>, StoreError> {
        let tables = self.tables.lock().unwrap();
        Ok(tables
            .open_requests
            .get(&(stage.to_string(), application.to_string()))
            .cloned())
    }

    async fn point_open_request(
        &self,
        stage: &StageName,
        application: &AppName,
        id: &ApprovalId,
        pushed_at: DateTime<Utc>,
        expected: Option<&ApprovalId>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        let key = (stage.to_string(), application.to_string());
        if tables.open_requests.get(&key).map(|open| &open.id) != expected {
            return Ok(false);
        }
        let open = OpenRequest {
            id: id.clone(),
            pushed_at,
        };
        tables.open_requests.insert(key, open);
        Ok(true)
    }
}

impl Outbox for MemoryRecords {
    async fn enqueue(&self, key: &str, notice: &Notice, _expires: DateTime<Utc>) -> Result<bool, StoreError> {
        if *self.failing_outbox.lock().unwrap() {
            return Err(StoreError::retryable("PutItem: ProvisionedThroughputExceededException"));
        }
        let mut tables = self.tables.lock().unwrap();
        if tables.outbox.contains_key(key) {
            return Ok(false);
        }
        let entry = OutboxEntry {
            notice: notice.clone(),
            sent: false,
        };
        tables.outbox.insert(key.to_owned(), entry);
        Ok(true)
    }

    async fn entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.tables.lock().unwrap().outbox.get(key).cloned())
    }

    async fn mark_sent(&self, key: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.tables.lock().unwrap().outbox.get_mut(key) {
            entry.sent = true;
        }
        Ok(())
    }
}
