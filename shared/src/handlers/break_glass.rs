//! break-glass: an operator's emergency deploy, behind a function URL with IAM auth. Lambda
//! puts the caller's IAM identity in the request; only the stack's `EmergencyPrincipals` are
//! obeyed. The order skips the staging check, the approval, the timer and the deploy window,
//! but not the records: each service is deployed under its lock as a push is (pinned by
//! digest, recorded with who and why), the stage's pre-deploy snapshots are asked for first
//! unless the order says not to, and the team and operations topics are told.
//!
//! The order's key (pipectl derives it from the order) names every record and snapshot it
//! makes, so a retried order resumes or reports the first one instead of deploying twice.

use super::{deliver_notice, deploy_pinned, keep_notice};
use crate::domain::deployment::{Deployment, DeploymentId, Emergency, Kind, ServiceState, ServiceStateField, Status};
use crate::domain::emergency::{EmergencyOrder, EmergencyPlan, EmergencyPrincipals, OrderRefused, emergency_notice};
use crate::domain::metrics::{DEPLOYMENTS_EMERGENCY, Measured};
use crate::domain::names::{AccountId, Region};
use crate::domain::pipeline::{Pipeline, ServiceSpec};
use crate::domain::promotion::{SnapshotId, SnapshotState};
use crate::domain::retention::{CREATED_BY, KIND_TAG, POLICY_TAG, SnapshotKind};
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, deadline_of, with_service_lock};
use crate::ports::{Deployments, Ecs, Notifier, Outbox, ServiceLocks, Snapshots, StateMove};
use base64::Engine;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};

pub struct BreakGlass<S, E, R, N> {
    pub pipeline: Pipeline,
    pub records: S,
    pub ecs: E,
    pub rds: R,
    /// The team's notifications topic.
    pub team: N,
    /// The operations topic, told of every break-glass deploy as well.
    pub operations: N,
    pub principals: EmergencyPrincipals,
}

/// The HTTP answer: a status and a JSON body (`error` on a refusal).
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    fn refused(status: u16, error: impl std::fmt::Display) -> Self {
        Answer {
            status,
            body: json!({ "error": error.to_string() }),
        }
    }

    /// The function URL's response object.
    pub fn response(&self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": { "content-type": "application/json", "cache-control": "no-store" },
            "body": self.body.to_string(),
        })
    }
}

/// One service's part of the order.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ServiceDeployed {
    pub service: String,
    pub deployment_id: String,
    pub status: String,
    pub task_definition: Option<String>,
    /// False when a retried order found the record its first attempt made.
    pub started_now: bool,
}

impl<S, E, R, N> BreakGlass<S, E, R, N>
where
    S: ServiceLocks + Deployments + Outbox,
    E: Ecs,
    R: Snapshots,
    N: Notifier,
{
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, std::convert::Infallible> {
        let deadline = deadline_of(&event.context);
        let answer = match registry_of(&event.context.invoked_function_arn) {
            Some((account, region)) => self.answer(&event.payload, account, region, deadline).await,
            None => Answer::refused(500, "the function's own ARN names no account and region"),
        };
        Ok(answer.response())
    }

    /// Carries out the order in `request` (a function URL's payload 2.0 event), deploying the
    /// image from the stack's registry (`account`, `region`).
    pub async fn answer(&self, request: &Value, account: AccountId, region: Region, deadline: DateTime<Utc>) -> Answer {
        let Some(caller) = request
            .pointer("/requestContext/authorizer/iam/userArn")
            .and_then(Value::as_str)
        else {
            return Answer::refused(403, "no IAM caller: the function URL must use AWS_IAM auth");
        };
        let Some(by) = self.principals.allowing(caller) else {
            tracing::warn!(%caller, "break-glass refused: not an emergency principal");
            return Answer::refused(
                403,
                format!("{caller} is not among the stack's EmergencyPrincipals: no break-glass deploy"),
            );
        };
        if request.pointer("/requestContext/http/method").and_then(Value::as_str) != Some("POST") {
            return Answer::refused(405, "POST an order");
        }
        let order = match body_of(request).and_then(|body| EmergencyOrder::parse(&body)) {
            Ok(order) => order,
            Err(refused) => return Answer::refused(400, refused),
        };
        let plan = match order.plan(&self.pipeline, account, region) {
            Ok(plan) => plan,
            Err(refused @ (OrderRefused::UnknownStage(_) | OrderRefused::UnknownApplication(_))) => {
                return Answer::refused(404, refused);
            }
            Err(refused) => return Answer::refused(400, refused),
        };
        tracing::warn!(%by, stage = %plan.stage.name, application = %plan.application.name, image = %plan.image.uri, reason = %plan.reason, "break-glass deploy ordered");
        match self.carry_out(&plan, &by, deadline).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::error!(error = %err, "break-glass deploy failed");
                let status = if err.is_permanent() { 422 } else { 503 };
                Answer::refused(status, format!("{err} (the same command resumes this order)"))
            }
        }
    }

    async fn carry_out(
        &self,
        plan: &EmergencyPlan<'_>,
        by: &str,
        deadline: DateTime<Utc>,
    ) -> Result<Answer, ServiceError> {
        let mut snapshots = Vec::new();
        if plan.snapshot {
            for db in &plan.stage.snapshot_before_deploy {
                let id = SnapshotId::before_emergency(&plan.key, db);
                let tags = [
                    CREATED_BY,
                    (KIND_TAG, SnapshotKind::PreDeploy.tag()),
                    (POLICY_TAG, db.as_str()),
                ];
                // Not waited for: RDS snapshots the DB as it was when asked, before the new
                // tasks start. One RDS cannot take stops the order, with nothing deployed.
                if let SnapshotState::Failed { why: reason } = self.rds.take_snapshot(db, &id, &tags).await? {
                    return Ok(Answer::refused(
                        409,
                        format!(
                            "the pre-deploy snapshot of {db} cannot be taken ({reason}): nothing was deployed; order again with --no-snapshot to deploy without it"
                        ),
                    ));
                }
                snapshots.push(id.to_string());
            }
        }
        let emergency = Emergency {
            by: by.to_owned(),
            reason: plan.reason.clone(),
        };
        let mut deployed = Vec::new();
        for service in &plan.application.services {
            deployed.push(self.deploy_service(plan, service, &emergency, deadline).await?);
        }
        let at = Utc::now();
        let started = deployed.iter().filter(|d| d.started_now).count() as u64;
        if started > 0 {
            crate::lambda::metrics::publish_deployment(
                plan.stage.name.as_str(),
                plan.application.name.as_str(),
                &[Measured::count(DEPLOYMENTS_EMERGENCY, started)],
                at,
            );
        }
        let services: Vec<String> = deployed.iter().map(|d| d.service.clone()).collect();
        let notice = emergency_notice(plan, by, at, &services, &snapshots);
        for (topic, notifier) in [("team", &self.team), ("operations", &self.operations)] {
            let key = keep_notice(&self.records, format!("emergency|{}|{topic}", plan.key), &notice).await?;
            deliver_notice(&self.records, notifier, &key).await?;
        }
        Ok(Answer {
            status: 200,
            body: json!({
                "stage": plan.stage.name.as_str(),
                "application": plan.application.name.as_str(),
                "image": plan.image.uri,
                "by": by,
                "deployments": deployed,
                "snapshots": snapshots,
            }),
        })
    }

    /// Deploys the image to one service under its lock, or reports what an earlier attempt
    /// at this order did there.
    async fn deploy_service(
        &self,
        plan: &EmergencyPlan<'_>,
        service: &ServiceSpec,
        emergency: &Emergency,
        deadline: DateTime<Utc>,
    ) -> Result<ServiceDeployed, ServiceError> {
        let (stage, cluster) = (&plan.stage.name, &plan.stage.cluster);
        let id = DeploymentId::for_emergency(&plan.key, stage, cluster, &service.name);
        with_service_lock(&self.records, cluster, &service.name, deadline, |state| async move {
            let resuming = match self.records.get_deployment(&id).await? {
                Some(earlier) if earlier.status == Status::Requested => Some(earlier),
                Some(earlier) => return Ok(LockedWork::only(deployed(&earlier, false))),
                None => None,
            };
            let running = self.ecs.running_service(cluster, &service.name).await?;
            let (record, resumed) = match resuming {
                Some(record) => (record, true),
                None => {
                    let now = Utc::now();
                    let record = Deployment {
                        id: id.clone(),
                        kind: Kind::Deploy,
                        status: Status::Requested,
                        stage: stage.clone(),
                        cluster: cluster.clone(),
                        service: service.name.clone(),
                        container: service.container.clone(),
                        image: plan.image.clone(),
                        requested_at: now,
                        updated_at: now,
                        previous_task_definition: Some(running.task_definition.clone()),
                        task_definition: None,
                        ecs_deployment_id: None,
                        superseded_by: None,
                        definition: None,
                        previous_definition: None,
                        completed_at: None,
                        ecs_reason: None,
                        pipeline_version: Some(self.pipeline.version().to_owned()),
                        emergency: Some(emergency.clone()),
                    };
                    if !self.records.create_deployment(&record).await? {
                        let earlier = self.records.get_deployment(&id).await?;
                        return Ok(LockedWork::only(earlier.map_or_else(
                            || deployed(&record, false),
                            |earlier| deployed(&earlier, false),
                        )));
                    }
                    (record, false)
                }
            };
            let record = deploy_pinned(&self.records, &self.ecs, record, &running, resumed, deadline).await?;
            self.supersede_in_flight(&state, &record.id).await?;
            tracing::warn!(deployment = %record.id, service = %service.name, task_definition = ?record.task_definition, "break-glass deploy started");
            Ok(LockedWork {
                outcome: deployed(&record, true),
                moves: Some(StateMove {
                    field: ServiceStateField::Latest,
                    to: record.reference(),
                }),
            })
        })
        .await
    }

    /// The deploy the service was rolling out is replaced by this one (ECS stops it): its
    /// record says so, as a newer push's would.
    async fn supersede_in_flight(&self, state: &ServiceState, by: &DeploymentId) -> Result<(), ServiceError> {
        let Some(latest) = state.latest.as_ref().filter(|latest| &latest.id != by) else {
            return Ok(());
        };
        let Some(older) = self.records.get_deployment(&latest.id).await? else {
            return Ok(());
        };
        if !matches!(older.status, Status::Requested | Status::Deploying) {
            return Ok(());
        }
        if let Ok(mut superseded) = older.transition(Status::Superseded, Utc::now()) {
            superseded.superseded_by = Some(by.clone());
            if self.records.save_transition(&superseded, older.status).await? {
                tracing::info!(superseded = %older.id, %by, "in-flight deployment replaced by a break-glass deploy");
            }
        }
        Ok(())
    }
}

fn deployed(record: &Deployment, started_now: bool) -> ServiceDeployed {
    ServiceDeployed {
        service: record.service.to_string(),
        deployment_id: record.id.to_string(),
        status: record.status.to_string(),
        task_definition: record.task_definition.clone(),
        started_now,
    }
}

/// The request's body, decoded when the function URL base64-encoded it.
fn body_of(request: &Value) -> Result<Vec<u8>, OrderRefused> {
    let body = request.get("body").and_then(Value::as_str).unwrap_or_default();
    if request.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        return base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| OrderRefused::Malformed(format!("body: {e}")));
    }
    Ok(body.as_bytes().to_vec())
}

/// The account and region of the function (`arn:aws:lambda:<region>:<account>:function:…`),
/// whose registry the image is pulled from.
pub fn registry_of(function_arn: &str) -> Option<(AccountId, Region)> {
    let parts: Vec<&str> = function_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", region, account, ..] => {
            Some((AccountId::parse(*account).ok()?, Region::parse(*region).ok()?))
        }
        _ => None,
    }
}
