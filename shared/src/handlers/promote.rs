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
            Advanced::Expired => (
                "expired",
                "approval expired".to_owned(),
                format!(
                    "Nobody decided by {} UTC; nothing was deployed.",
                    utc(request.expires_at)
                ),
            ),
            Advanced::Failed { why } => (
                "failed",
                "not deployed".to_owned(),
                format!("The pre-deployment backup did not complete, and prod never deploys without it: {why}."),
            ),
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
                self.deploy_service(request, service, deadline).await?;
                deployed.push(service.service.to_string());
            }
            self.mark_deployed(&request.id).await?;
            return Ok(Advanced::Deployed { services: deployed });
        }
        Ok(done)
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
    ) -> Result<(), ServiceError> {
        with_service_lock(
            &self.records,
            &request.cluster,
            &service.service,
            deadline,
            |_state| async move {
                let Some(record) = self.records.get_deployment(&service.deployment).await? else {
                    return Ok(LockedWork::only(()));
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
                            outcome: (),
                            moves: Some(StateMove {
                                field: ServiceStateField::Latest,
                                to: record.reference(),
                            }),
                        });
                    }
                    _ => return Ok(LockedWork::only(())),
                };
                let deployed = deploy_pinned(&self.records, &self.ecs, claimed, &running, resuming, deadline).await?;
                Ok(LockedWork {
                    outcome: (),
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
