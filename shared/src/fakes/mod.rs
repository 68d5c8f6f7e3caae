//! The ports in memory, for fast unit tests of handler logic (the moto tests stay the
//! integration layer). They keep the contracts the adapters keep: conditional writes lose
//! cleanly, history is newest first, a lock is held until released or expired.

use crate::domain::approval::{ApprovalId, ApprovalRequest, ApprovalStatus, Successor};
use crate::domain::deployment::{Deployment, DeploymentId, ServiceState, ServiceStateField, Status};
use crate::domain::names::{
    AlarmName, AppName, Approver, ClusterName, ContainerName, ImageDigest, ServiceName, StageName,
};
use crate::domain::notice::Notice;
use crate::ports::{
    AlarmStateError, AlarmStates, Approvals, ApproverMail, Deployments, Ecs, EcsError, HistoryPage, Notifier,
    NotifyError, OpenRequest, Outbox, OutboxEntry, Quarantine, Registered, Running, ServiceLocks, StateMove,
    StoreError,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

mod cost;
pub use cost::{FakeBilling, FakeInventory};

type ServiceKey = (String, String);

fn service_key(cluster: &ClusterName, service: &ServiceName) -> ServiceKey {
    (cluster.to_string(), service.to_string())
}

#[derive(Default)]
struct Tables {
    deployments: BTreeMap<String, Deployment>,
    states: HashMap<ServiceKey, ServiceState>,
    locks: HashMap<ServiceKey, (String, DateTime<Utc>)>,
    outbox: BTreeMap<String, OutboxEntry>,
    approvals: BTreeMap<String, ApprovalRequest>,
    open_requests: HashMap<(String, String), OpenRequest>,
    cost_report: Option<crate::ports::KeptReport>,
    price_table: Option<crate::domain::cost::PriceTable>,
}

/// The records table in memory. Clones share it, as handlers share one table.
#[derive(Clone, Default)]
pub struct MemoryRecords {
    tables: Arc<Mutex<Tables>>,
    failing_releases: Arc<Mutex<bool>>,
    failing_outbox: Arc<Mutex<bool>>,
    /// A cost report another delivery keeps just before this one's write.
    racing_report: Arc<Mutex<Option<crate::ports::KeptReport>>>,
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

/// ECS for a few services: revisions `td:N`, deployments `ecs-svc/N`, and a switch that
/// makes UpdateService fail before or after it applies. Clones share it.
#[derive(Clone, Default)]
pub struct FakeEcs {
    state: Arc<Mutex<EcsState>>,
}

#[derive(Default)]
struct EcsState {
    /// Service → (task definition, its deployments as (id, revision), newest last).
    services: HashMap<ServiceKey, (String, Vec<(String, String)>)>,
    revisions: Vec<String>,
    deployments: usize,
    update_fails: Option<UpdateFailure>,
    /// An update was applied and its answer lost: the check after it fails too.
    answer_lost: bool,
}

/// How a failing UpdateService fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFailure {
    /// Refused: the service is not moved.
    Refused,
    /// Applied by ECS, but the answer is lost (and so is the DescribeServices check after it).
    AnswerLost,
}

impl FakeEcs {
    /// ECS running each (cluster, service) on its task definition.
    pub fn with_services(services: &[(&ClusterName, &ServiceName, &str)]) -> Self {
        let ecs = FakeEcs::default();
        for (cluster, service, task_definition) in services {
            ecs.state.lock().unwrap().services.insert(
                service_key(cluster, service),
                (
                    task_definition.to_string(),
                    vec![(format!("ecs-svc/{service}-0"), task_definition.to_string())],
                ),
            );
        }
        ecs
    }

    /// The service is deleted: ECS no longer knows it.
    pub fn delete_service(&self, cluster: &ClusterName, service: &ServiceName) {
        self.state
            .lock()
            .unwrap()
            .services
            .remove(&service_key(cluster, service));
    }

    pub fn fail_updates(&self, failure: Option<UpdateFailure>) {
        let mut state = self.state.lock().unwrap();
        state.update_fails = failure;
        state.answer_lost = false;
    }

    pub fn running(&self, cluster: &ClusterName, service: &ServiceName) -> String {
        self.state.lock().unwrap().services[&service_key(cluster, service)]
            .0
            .clone()
    }

    /// The id of the last deployment UpdateService started on the service.
    pub fn last_deployment(&self, cluster: &ClusterName, service: &ServiceName) -> String {
        let state = self.state.lock().unwrap();
        let (_, deployments) = &state.services[&service_key(cluster, service)];
        deployments.last().expect("a service has a deployment").0.clone()
    }

    pub fn revisions(&self) -> Vec<String> {
        self.state.lock().unwrap().revisions.clone()
    }
}

impl Ecs for FakeEcs {
    async fn running_service(&self, cluster: &ClusterName, service: &ServiceName) -> Result<Running, EcsError> {
        let state = self.state.lock().unwrap();
        if state.update_fails == Some(UpdateFailure::AnswerLost) && state.answer_lost {
            return Err(EcsError::Transient("DescribeServices: connection reset".into()));
        }
        let (task_definition, deployments) = state
            .services
            .get(&service_key(cluster, service))
            .ok_or_else(|| EcsError::NotFound(format!("service `{service}` not found in cluster `{cluster}`")))?;
        Ok(Running {
            task_definition: task_definition.clone(),
            primary_deployment_id: deployments.last().map(|(id, _)| id.clone()),
        })
    }

    async fn register_pinned(
        &self,
        task_definition: &str,
        _: &ContainerName,
        image: &str,
        _: &DeploymentId,
        _: bool,
    ) -> Result<Registered, EcsError> {
        let mut state = self.state.lock().unwrap();
        let arn = format!("td:{}", 100 + state.revisions.len());
        state.revisions.push(arn.clone());
        Ok(Registered {
            arn: arn.clone(),
            definition: format!("{{\"of\": \"{arn}\", \"image\": \"{image}\"}}"),
            previous_definition: format!("{{\"of\": \"{task_definition}\"}}"),
        })
    }

    async fn register_stored(&self, _definition: &str, _: &DeploymentId, _: bool) -> Result<String, EcsError> {
        let mut state = self.state.lock().unwrap();
        let arn = format!("td:{}", 100 + state.revisions.len());
        state.revisions.push(arn.clone());
        Ok(arn)
    }

    async fn is_active(&self, _task_definition: &str) -> Result<bool, EcsError> {
        Ok(true)
    }

    async fn deployment_revision(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        ecs_deployment_id: &str,
    ) -> Result<Option<String>, EcsError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .services
            .get(&service_key(cluster, service))
            .and_then(|(_, deployments)| {
                deployments
                    .iter()
                    .find(|(id, _)| id == ecs_deployment_id)
                    .map(|(_, revision)| revision.clone())
            }))
    }

    async fn update_service(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
        task_definition: &str,
    ) -> Result<String, EcsError> {
        let mut state = self.state.lock().unwrap();
        if state.update_fails == Some(UpdateFailure::Refused) {
            return Err(EcsError::Transient("UpdateService: ThrottlingException".into()));
        }
        state.deployments += 1;
        let id = format!("ecs-svc/{}", state.deployments);
        let entry = state
            .services
            .get_mut(&service_key(cluster, service))
            .ok_or_else(|| EcsError::NotFound(format!("service `{service}` not found")))?;
        entry.0 = task_definition.to_owned();
        entry.1.push((id.clone(), task_definition.to_owned()));
        if state.update_fails == Some(UpdateFailure::AnswerLost) {
            state.answer_lost = true;
            return Err(EcsError::Transient("UpdateService: operation timeout".into()));
        }
        Ok(id)
    }
}

/// Keeps what was published; can be told to fail. Clones share it.
#[derive(Clone, Default)]
pub struct FakeNotifier {
    published: Arc<Mutex<Vec<Notice>>>,
    failing: Arc<Mutex<bool>>,
}

impl FakeNotifier {
    pub fn published(&self) -> Vec<Notice> {
        self.published.lock().unwrap().clone()
    }

    pub fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

impl Notifier for FakeNotifier {
    async fn publish(&self, notice: &Notice) -> Result<(), NotifyError> {
        if *self.failing.lock().unwrap() {
            return Err(NotifyError("Publish: InternalError".into()));
        }
        self.published.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

/// Alarms in ALARM are those set so; the rest are OK. Clones share it.
#[derive(Clone, Default)]
pub struct FakeAlarms {
    firing: Arc<Mutex<Vec<AlarmName>>>,
}

impl FakeAlarms {
    pub fn set_firing(&self, alarms: &[&str]) {
        *self.firing.lock().unwrap() = alarms.iter().map(|a| AlarmName::parse(*a).unwrap()).collect();
    }
}

impl AlarmStates for FakeAlarms {
    async fn in_alarm(&self, alarms: &[AlarmName]) -> Result<Vec<AlarmName>, AlarmStateError> {
        let firing = self.firing.lock().unwrap();
        Ok(alarms.iter().filter(|a| firing.contains(a)).cloned().collect())
    }
}

/// Keeps each approver's messages; can be told to fail. Clones share it.
#[derive(Clone, Default)]
pub struct FakeApproverMail {
    sent: Arc<Mutex<Vec<(Approver, Notice)>>>,
    failing: Arc<Mutex<bool>>,
}

impl FakeApproverMail {
    pub fn sent(&self) -> Vec<(Approver, Notice)> {
        self.sent.lock().unwrap().clone()
    }

    pub fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

impl ApproverMail for FakeApproverMail {
    async fn send_to(&self, approver: &Approver, notice: &Notice) -> Result<(), NotifyError> {
        if *self.failing.lock().unwrap() {
            return Err(NotifyError("Publish: InternalError".into()));
        }
        self.sent.lock().unwrap().push((approver.clone(), notice.clone()));
        Ok(())
    }
}

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
