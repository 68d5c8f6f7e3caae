//! promote: what follows an approval (WIP: the core; its events, template and tests are the
//! next step). For one request at a time it does the next step `domain::promotion` names:
//! take the pre-deployment snapshots, check on them, give up, expire, or deploy the request's
//! services through the same pinned deploy as automatic stages, one service under its lock.
//! Every write to the request is conditional on the version read; a lost race reads again.

use super::{deliver_notice, deploy_pinned, keep_notice};
use crate::domain::approval::{ApprovalId, ApprovalRequest, ApprovalStatus, ReleaseService};
use crate::domain::deployment::{ServiceStateField, Status};
use crate::domain::notice::{promotion_notice, utc};
use crate::domain::pipeline::Pipeline;
use crate::domain::promotion::{Promotion, SnapshotState, Step, next_step};
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, with_service_lock};
use crate::ports::{Approvals, Deployments, Ecs, Notifier, Outbox, ServiceLocks, Snapshots, StateMove, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub struct Promote<S, E, R, N> {
    pub pipeline: Pipeline,
    pub records: S,
    pub ecs: E,
    pub rds: R,
    pub notifier: N,
}

/// What one look at a request did.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "did", rename_all = "snake_case")]
pub enum Advanced {
    Nothing { reason: String },
    Waiting { until: String },
    Snapshotting { snapshots: usize },
    Expired,
    Closed { status: ApprovalStatus },
    Failed { why: String },
    Deployed { services: Vec<String> },
}

/// How many times a step that lost a race to another write is taken again on the fresh request.
const ATTEMPTS: usize = 4;

impl<S, E, R, N> Promote<S, E, R, N>
where
    S: ServiceLocks + Deployments + Approvals + Outbox,
    E: Ecs,
    R: Snapshots,
    N: Notifier,
{
    /// The Lambda entry point: a stream batch advances each changed request (failed ones are
    /// handed back as batch item failures); a schedule tick or an RDS snapshot event sweeps.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<serde_json::Value, PromoteError> {
        let deadline = crate::lambda::service_lock::deadline_of(&event.context);
        let now = Utc::now();
        match trigger_of(&event.payload).map_err(PromoteError::BadEvent)? {
            Trigger::Changed(changed) => {
                let mut response = BatchResponse::default();
                for (sequence, id) in changed {
                    match self.advance(&id, now, deadline).await {
                        Ok(advanced) => tracing::info!(approval = %id, ?advanced, "promotion step"),
                        Err(err) => {
                            tracing::error!(approval = %id, error = %err, "promotion step failed");
                            response.batch_item_failures.push(ItemFailure {
                                item_identifier: sequence,
                            });
                        }
                    }
                }
                Ok(serde_json::to_value(response).expect("a batch response serializes"))
            }
            Trigger::Sweep => {
                let swept = self.sweep(now, deadline).await.map_err(PromoteError::Sweep)?;
                Ok(
                    serde_json::json!({ "swept": swept.into_iter().map(|(id, advanced)| serde_json::json!({"approval_id": id, "advanced": advanced})).collect::<Vec<_>>() }),
                )
            }
        }
    }

    /// The one-minute sweep: every request in flight taken as far as it can go at `now` (its
    /// timers, its snapshots, whose RDS events are best effort, its expiry). One request's
    /// failure does not hold up the others; it fails the sweep, so it is retried.
    pub async fn sweep(
        &self,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Vec<(String, Advanced)>, ServiceError> {
        let mut done = Vec::new();
        let mut failed = None;
        for id in self.records.in_flight_approvals().await? {
            match self.advance(&id, now, deadline).await {
                Ok(advanced) => done.push((id.to_string(), advanced)),
                Err(err) => {
                    tracing::error!(approval = %id, error = %err, "promotion step failed");
                    failed = Some(err);
                }
            }
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(done),
        }
    }

    /// Takes request `id` as far as it can go at `now`.
    pub async fn advance(
        &self,
        id: &ApprovalId,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Advanced, ServiceError> {
        for _ in 0..ATTEMPTS {
            let Some(request) = self.records.get_approval(id).await? else {
                return Ok(Advanced::Nothing {
                    reason: format!("no approval request {id}"),
                });
            };
            let Some(stage) = self.pipeline.stages().iter().find(|s| s.name == request.stage) else {
                return Ok(Advanced::Nothing {
                    reason: format!("stage {} is no longer in the pipeline file", request.stage),
                });
            };
            let step = next_step(&request, &stage.snapshot_before_deploy, now);
            let (next, done) = match step {
                Step::Done => {
                    return Ok(Advanced::Nothing {
                        reason: format!("the request is {}", request.status),
                    });
                }
                Step::WaitUntil { at } => return Ok(Advanced::Waiting { until: at.to_rfc3339() }),
                Step::Close(status) => {
                    self.close(&request, status, None).await?;
                    return Ok(Advanced::Closed { status });
                }
                Step::Expire => (
                    ApprovalRequest {
                        status: ApprovalStatus::Expired,
                        decided_at: Some(now),
                        ..request.clone()
                    },
                    Advanced::Expired,
                ),
                Step::TakeSnapshots(mut planned) => {
                    let tags = [
                        ("created-by", "ecs-deploy"),
                        ("ecs-deploy:kind", "pre-deploy"),
                        ("ecs-deploy:approval", id.as_str()),
                    ];
                    for snapshot in &mut planned {
                        snapshot.state = self
                            .rds
                            .take_snapshot(&snapshot.db, &snapshot.id, &tags)
                            .await
                            .map_err(|e| StoreError::retryable(e.to_string()))?;
                    }
                    let count = planned.len();
                    let next = ApprovalRequest {
                        promotion: Some(Promotion {
                            started_at: now,
                            snapshots: planned,
                            deploy_started_at: None,
                            deployed_at: None,
                            failed: None,
                        }),
                        ..request.clone()
                    };
                    (next, Advanced::Snapshotting { snapshots: count })
                }
                Step::CheckSnapshots(ids) => {
                    let mut next = request.clone();
                    let promotion = next.promotion.as_mut().expect("snapshots are checked only once taken");
                    for snapshot in promotion.snapshots.iter_mut().filter(|s| ids.contains(&s.id)) {
                        match self
                            .rds
                            .snapshot_state(&snapshot.id)
                            .await
                            .map_err(|e| StoreError::retryable(e.to_string()))?
                        {
                            Some(state) => snapshot.state = state,
                            None => {
                                snapshot.state = SnapshotState::Failed {
                                    why: "RDS knows no such snapshot".into(),
                                }
                            }
                        }
                    }
                    if next == request {
                        return Ok(Advanced::Snapshotting { snapshots: ids.len() });
                    }
                    (next, Advanced::Snapshotting { snapshots: ids.len() })
                }
                Step::Fail { why } => {
                    let mut next = request.clone();
                    if let Some(promotion) = next.promotion.as_mut() {
                        promotion.failed = Some(why.clone());
                    } else {
                        next.promotion = Some(Promotion {
                            started_at: now,
                            snapshots: Vec::new(),
                            deploy_started_at: None,
                            deployed_at: None,
                            failed: Some(why.clone()),
                        });
                    }
                    (next, Advanced::Failed { why })
                }
                Step::Deploy => {
                    let mut next = request.clone();
                    let promotion = next.promotion.get_or_insert(Promotion {
                        started_at: now,
                        snapshots: Vec::new(),
                        deploy_started_at: None,
                        deployed_at: None,
                        failed: None,
                    });
                    promotion.deploy_started_at.get_or_insert(now);
                    (next, Advanced::Deployed { services: Vec::new() })
                }
            };
            let mut next = next;
            next.version += 1;
            if !self.records.save_approval(&next).await? {
                continue;
            }
            return self.after(&next, done, deadline).await;
        }
        Err(StoreError::retryable(format!("{id} kept changing while it was promoted")).into())
    }

    /// What follows a step once it is written: the notice, and for a deploy, the deploy itself.
    async fn after(
        &self,
        request: &ApprovalRequest,
        done: Advanced,
        deadline: DateTime<Utc>,
    ) -> Result<Advanced, ServiceError> {
        let (key, headline, detail) = match &done {
            Advanced::Expired => {
                self.close(request, ApprovalStatus::Expired, None).await?;
                return Ok(done);
            }
            Advanced::Failed { why } => {
                self.close(request, ApprovalStatus::Approved, Some(why)).await?;
                return Ok(done);
            }
            Advanced::Snapshotting { snapshots } => (
                "snapshotting",
                "approved, backing up".to_owned(),
                format!(
                    "Approved; {snapshots} pre-deployment snapshot(s) started. The deploy starts once they are available, at {} UTC at the earliest.",
                    request.deploy_not_before().map(utc).unwrap_or_default()
                ),
            ),
            Advanced::Deployed { .. } => (
                "deploying",
                "deploying".to_owned(),
                "Approved and backed up; the deploy starts now.".to_owned(),
            ),
            _ => return Ok(done),
        };
        let notice = promotion_notice(request, &headline, &detail);
        let kept = keep_notice(&self.records, format!("promotion|{}|{key}", request.id), &notice).await?;
        deliver_notice(&self.records, &self.notifier, &kept).await?;
        if let Advanced::Deployed { .. } = done {
            let mut deployed = Vec::new();
            for service in &request.services {
                if self.deploy_service(request, service, deadline).await? {
                    deployed.push(service.service.to_string());
                } else {
                    tracing::warn!(approval = %request.id, service = %service.service, "its record is no longer this release's to deploy");
                }
            }
            self.mark_deployed(&request.id).await?;
            return Ok(Advanced::Deployed { services: deployed });
        }
        Ok(done)
    }

    /// A request that will not deploy: each service's record follows it (REJECTED, CANCELLED,
    /// EXPIRED, or FAILED when the promotion gave up with `failed`), and the team is told once.
    async fn close(
        &self,
        request: &ApprovalRequest,
        status: ApprovalStatus,
        failed: Option<&str>,
    ) -> Result<(), ServiceError> {
        let to = match (status, failed) {
            (_, Some(_)) => Status::Failed,
            (ApprovalStatus::Rejected, _) => Status::Rejected,
            (ApprovalStatus::Cancelled, _) => Status::Cancelled,
            _ => Status::Expired,
        };
        for service in &request.services {
            let Some(record) = self.records.get_deployment(&service.deployment).await? else {
                continue;
            };
            if !matches!(record.status, Status::AwaitingApproval | Status::Approved) {
                continue;
            }
            if let Ok(closed) = record.transition(to, Utc::now())
                && !self.records.save_transition(&closed, record.status).await?
            {
                return Err(StoreError::retryable(format!("{} changed while it was closed", record.id)).into());
            }
        }
        let decided_by = || {
            request
                .votes()
                .filter(|(_, vote)| Some(vote.at) == request.decided_at)
                .map(|(who, vote)| match vote.voter.comment.as_str() {
                    "" => who.to_string(),
                    comment => format!("{who} (\"{comment}\")"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (key, headline, detail) = match (to, failed) {
            (_, Some(why)) => (
                "failed",
                "not deployed",
                format!("The pre-deployment backup did not complete, and prod never deploys without it: {why}."),
            ),
            (Status::Rejected, _) => (
                "rejected",
                "rejected",
                format!("Rejected by {}; nothing was deployed.", decided_by()),
            ),
            (Status::Cancelled, _) => (
                "cancelled",
                "cancelled",
                match &request.cancelled {
                    Some(cancelled) => format!("Cancelled by {} during the wait; nothing was deployed.", cancelled.by),
                    None => "Cancelled during the wait; nothing was deployed.".to_owned(),
                },
            ),
            _ => (
                "expired",
                "approval expired",
                format!(
                    "Nobody decided by {} UTC; nothing was deployed.",
                    utc(request.expires_at)
                ),
            ),
        };
        let notice = promotion_notice(request, headline, &detail);
        let kept = keep_notice(&self.records, format!("promotion|{}|{key}", request.id), &notice).await?;
        deliver_notice(&self.records, &self.notifier, &kept).await?;
        Ok(())
    }

    /// Every service's deploy started and was recorded: the promotion is over.
    async fn mark_deployed(&self, id: &ApprovalId) -> Result<(), ServiceError> {
        for _ in 0..ATTEMPTS {
            let Some(mut request) = self.records.get_approval(id).await? else {
                return Ok(());
            };
            let Some(promotion) = request.promotion.as_mut() else {
                return Ok(());
            };
            promotion.deployed_at.get_or_insert(Utc::now());
            request.version += 1;
            if self.records.save_approval(&request).await? {
                return Ok(());
            }
        }
        Err(StoreError::retryable(format!("{id} kept changing while its deploy was recorded")).into())
    }

    /// One service of an approved request, under its lock: its record AWAITING_APPROVAL →
    /// APPROVED (claimed, with what the service runs now), then the pinned deploy. A record
    /// already beyond that was deployed by an earlier try; one superseded meanwhile is left.
    async fn deploy_service(
        &self,
        request: &ApprovalRequest,
        service: &ReleaseService,
        deadline: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        with_service_lock(
            &self.records,
            &request.cluster,
            &service.service,
            deadline,
            |_state| async move {
                let Some(record) = self.records.get_deployment(&service.deployment).await? else {
                    return Ok(LockedWork::only(false));
                };
                let running = self.ecs.running_service(&request.cluster, &service.service).await?;
                let (claimed, resuming) = match record.status {
                    Status::AwaitingApproval => {
                        let mut approved = record
                            .transition(Status::Approved, Utc::now())
                            .map_err(|e| StoreError::retryable(e.to_string()))?;
                        approved.previous_task_definition = Some(running.task_definition.clone());
                        if !self
                            .records
                            .save_transition(&approved, Status::AwaitingApproval)
                            .await?
                        {
                            return Err(
                                StoreError::retryable(format!("{} changed while it was claimed", record.id)).into(),
                            );
                        }
                        (approved, false)
                    }
                    Status::Approved => (record, true),
                    Status::Deploying | Status::Succeeded | Status::Failed | Status::RolledBack => {
                        return Ok(LockedWork {
                            outcome: true,
                            moves: Some(StateMove {
                                field: ServiceStateField::Latest,
                                to: record.reference(),
                            }),
                        });
                    }
                    _ => return Ok(LockedWork::only(false)),
                };
                let deployed = deploy_pinned(&self.records, &self.ecs, claimed, &running, resuming, deadline).await?;
                Ok(LockedWork {
                    outcome: true,
                    moves: Some(StateMove {
                        field: ServiceStateField::Latest,
                        to: deployed.reference(),
                    }),
                })
            },
        )
        .await
    }
}

/// What invokes the promotion: the table's stream (a batch of approval-request changes), or
/// a trigger to sweep (the one-minute schedule, an RDS snapshot event).
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Stream records: (sequence number, request id).
    Changed(Vec<(String, ApprovalId)>),
    Sweep,
}

/// Reads an invocation's payload. Stream records of other items (the filter should pass none)
/// are left out; anything that is neither a stream batch nor an EventBridge event is refused.
pub fn trigger_of(payload: &serde_json::Value) -> Result<Trigger, String> {
    if let Some(records) = payload.get("Records").and_then(|r| r.as_array()) {
        let mut changed = Vec::new();
        for record in records {
            let sequence = record["dynamodb"]["SequenceNumber"]
                .as_str()
                .ok_or("a stream record has no SequenceNumber")?;
            let pk = record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or_default();
            if let Some(id) = pk
                .strip_prefix(crate::domain::approval::APPROVAL_KEY_PREFIX)
                .and_then(ApprovalId::parse)
            {
                changed.push((sequence.to_owned(), id));
            }
        }
        return Ok(Trigger::Changed(changed));
    }
    match payload.get("source").and_then(|s| s.as_str()) {
        Some("aws.events" | "aws.scheduler" | "aws.rds") => Ok(Trigger::Sweep),
        Some(other) => Err(format!("events from `{other}` are not the promotion's")),
        None => Err("neither a stream batch nor an EventBridge event".into()),
    }
}

/// The answer to a stream batch: the records to deliver again (Lambda's partial batch
/// response), so one failed request does not replay the others.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Sweep(ServiceError),
}

impl From<PromoteError> for lambda_runtime::Diagnostic {
    fn from(err: PromoteError) -> Self {
        let error_type = match &err {
            PromoteError::BadEvent(_) => "BadEvent",
            PromoteError::Sweep(err) => err.error_type(),
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_batches_and_sweep_triggers_are_told_apart() {
        let batch = serde_json::json!({"Records": [
            {"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "100", "Keys": {"pk": {"S": "APR#apr-0123456789abcdef01234567"}, "sk": {"S": "APR"}}}},
            {"eventSource": "aws:dynamodb", "dynamodb": {"SequenceNumber": "101", "Keys": {"pk": {"S": "DEP#dep-1"}, "sk": {"S": "DEP"}}}}
        ]});
        assert_eq!(
            trigger_of(&batch),
            Ok(Trigger::Changed(vec![(
                "100".into(),
                ApprovalId::parse("apr-0123456789abcdef01234567").unwrap()
            )]))
        );
        for source in ["aws.events", "aws.scheduler", "aws.rds"] {
            assert_eq!(
                trigger_of(&serde_json::json!({"source": source, "detail": {}})),
                Ok(Trigger::Sweep)
            );
        }
        assert!(trigger_of(&serde_json::json!({"source": "aws.ecr"})).is_err());
        assert!(trigger_of(&serde_json::json!({"Records": [{"dynamodb": {}}]})).is_err());
    }
}
