//! break-glass: an operator's emergency deploy, behind a function URL with IAM auth. Who
//! orders it is what STS says of the order's signed proof (`domain::emergency`), never the
//! event's `requestContext`, which a direct invocation could forge; only the stack's
//! `EmergencyPrincipals` are obeyed. The order skips the staging check, the approval, the
//! timer and the deploy window, but not the records: each service is deployed under its lock
//! as a push is (pinned by digest, recorded with who and why), the stage's pre-deploy
//! snapshots are asked for first unless the order says not to, and the team and operations
//! topics are told.
//!
//! The order's key (its hash) names every record and snapshot it makes, so a retried order
//! resumes or reports the first one instead of deploying twice.

use super::{deliver_notice, deploy_pinned, keep_notice};
use crate::domain::deployment::{Deployment, DeploymentId, Emergency, ServiceState, ServiceStateField, Status};
use crate::domain::emergency::{EmergencyOrder, EmergencyPlan, EmergencyPrincipals, OrderRefused, emergency_notice};
use crate::domain::metrics::{DEPLOYMENTS_EMERGENCY, Measured};
use crate::domain::names::ServiceName;
use crate::domain::names::{AccountId, Region};
use crate::domain::pipeline::{Pipeline, ServiceSpec};
use crate::domain::promotion::{SnapshotId, SnapshotState};
use crate::domain::retention::{CREATED_BY, KIND_TAG, POLICY_TAG, SnapshotKind};
use crate::lambda::errors::ServiceError;
use crate::lambda::service_lock::{LockedWork, deadline_of, with_service_lock};
use crate::ports::{Callers, Deployments, Ecs, Notifier, Outbox, ServiceLocks, Snapshots, StateMove};
use base64::Engine;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};

pub struct BreakGlass<S, E, R, N, C> {
    pub pipeline: Pipeline,
    pub records: S,
    pub ecs: E,
    pub rds: R,
    /// Who signed an order's proof (STS).
    pub callers: C,
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

impl<S, E, R, N, C> BreakGlass<S, E, R, N, C>
where
    S: ServiceLocks + Deployments + Outbox,
    E: Ecs,
    R: Snapshots,
    N: Notifier,
    C: Callers,
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
        if request.pointer("/requestContext/http/method").and_then(Value::as_str) != Some("POST") {
            return Answer::refused(405, "POST an order");
        }
        let order = match body_of(request).and_then(|body| EmergencyOrder::parse(&body)) {
            Ok(order) => order,
            Err(refused) => return Answer::refused(400, refused),
        };
        let signer = match self.callers.signer(&order.proof, &order.hash()).await {
            Ok(Some(signer)) => signer,
            Ok(None) => {
                tracing::warn!("break-glass refused: STS did not accept the order's proof");
                return Answer::refused(
                    403,
                    "STS did not accept the order's proof of who signed it (signed for another order, host or region, or expired): no break-glass deploy",
                );
            }
            Err(err) => {
                return Answer::refused(
                    503,
                    format!("{err}: who ordered this cannot be checked now; order again"),
                );
            }
        };
        let Some(by) = self.principals.allowing(&signer) else {
            tracing::warn!(caller = %signer, "break-glass refused: not an emergency principal");
            return Answer::refused(
                403,
                format!("{signer} is not among the stack's EmergencyPrincipals: no break-glass deploy"),
            );
        };
        let plan = match order.plan(&self.pipeline, account, region, Utc::now()) {
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
                Answer::refused(status, format!("{err} (ordering again resumes this order)"))
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
                // tasks start. A snapshot RDS does not start stops the order, nothing deployed.
                let why = match self.rds.take_snapshot(db, &id, &tags).await? {
                    SnapshotState::Creating | SnapshotState::Available => None,
                    SnapshotState::NotStarted { why } => Some(format!("{why}; try again shortly")),
                    SnapshotState::Failed { why } => Some(why),
                };
                if let Some(why) = why {
                    return Ok(Answer::refused(
                        409,
                        format!(
                            "the pre-deploy snapshot of {db} cannot be taken now ({why}): nothing was deployed; order again with --no-snapshot to deploy without it"
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
        // Every service is tried, whatever happened to the one before: a hotfix that reached
        // some services is told, with what failed, rather than not at all.
        let (mut deployed, mut failed) = (Vec::new(), Vec::new());
        for service in &plan.application.services {
            match self.deploy_service(plan, service, &emergency, deadline).await {
                Ok(done) => {
                    if done.started_now {
                        crate::lambda::metrics::publish_deployment(
                            plan.stage.name.as_str(),
                            plan.application.name.as_str(),
                            &[Measured::count(DEPLOYMENTS_EMERGENCY, 1)],
                            Utc::now(),
                        );
                    }
                    deployed.push(done);
                }
                Err(err) => {
                    tracing::error!(service = %service.name, error = %err, "break-glass deploy of a service failed");
                    failed.push((service.name.clone(), err));
                }
            }
        }
        // A notice that cannot go out is an error the same order fixes; the deployments stand.
        let unannounced = match deployed.is_empty() {
            true => None,
            false => self.announce(plan, by, &deployed, &failed, &snapshots).await.err(),
        };
        let mut body = json!({
            "stage": plan.stage.name.as_str(),
            "application": plan.application.name.as_str(),
            "image": plan.image.uri,
            "by": by,
            "deployments": deployed,
            "failed": failed.iter().map(|(service, err)| json!({"service": service.as_str(), "error": err.to_string()})).collect::<Vec<_>>(),
            "snapshots": snapshots,
        });
        let status = match failed.iter().map(|(_, err)| err.is_permanent()).reduce(|a, b| a && b) {
            None if unannounced.is_none() => 200,
            Some(true) if unannounced.is_none() => 422,
            _ => 503,
        };
        if let Some(err) = unannounced {
            tracing::error!(error = %err, "break-glass deployed, but not announced");
            body["error"] =
                format!("deployed, but the team could not be told ({err}): order again to tell them").into();
        }
        Ok(Answer { status, body })
    }

    /// Tells the team and operations, each once per outcome (a retry that deploys what failed
    /// before is told again, with what it did).
    async fn announce(
        &self,
        plan: &EmergencyPlan<'_>,
        by: &str,
        deployed: &[ServiceDeployed],
        failed: &[(ServiceName, ServiceError)],
        snapshots: &[String],
    ) -> Result<(), ServiceError> {
        let services: Vec<String> = deployed.iter().map(|d| d.service.clone()).collect();
        let failures: Vec<String> = failed
            .iter()
            .map(|(service, err)| format!("{service}: {err}"))
            .collect();
        let notice = emergency_notice(plan, by, Utc::now(), &services, &failures, snapshots);
        let outcome = format!("{}|{}", plan.key, services.join(","));
        for (topic, notifier) in [("team", &self.team), ("operations", &self.operations)] {
            let key = keep_notice(&self.records, format!("emergency|{outcome}|{topic}"), &notice).await?;
            deliver_notice(&self.records, notifier, &key).await?;
        }
        Ok(())
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
                Some(earlier) => return Ok(self.done_before(&state, earlier)),
                None => None,
            };
            let running = self.ecs.running_service(cluster, &service.name).await?;
            let (record, resumed) = match resuming {
                Some(record) => (record, true),
                None => {
                    let record = Deployment {
                        previous_task_definition: Some(running.task_definition.clone()),
                        emergency: Some(emergency.clone()),
                        ..Deployment::requested(
                            id.clone(),
                            plan.stage,
                            service,
                            &plan.image,
                            Utc::now(),
                            self.pipeline.version(),
                        )
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

    /// An earlier attempt at this order deployed the service. If that attempt's pointer move
    /// was lost (its lock expired before the release), this one makes it, while the record is
    /// still the newest thing on the service.
    fn done_before(&self, state: &ServiceState, earlier: Deployment) -> LockedWork<ServiceDeployed> {
        let pointed = state.latest.as_ref().is_some_and(|latest| latest.id == earlier.id);
        let moves =
            (earlier.status == Status::Deploying && !pointed && !state.latest_is_ahead_of(&earlier)).then(|| {
                StateMove {
                    field: ServiceStateField::Latest,
                    to: earlier.reference(),
                }
            });
        LockedWork {
            outcome: deployed(&earlier, false),
            moves,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::emergency::CallerProof;
    use crate::domain::fixtures::fixture_pipeline;
    use crate::domain::names::{ClusterName, ServiceName};
    use crate::fakes::{FakeEcs, FakeNotifier, FakeSnapshots, MemoryRecords};
    use crate::ports::ProofError;

    const ONCALL: &str = "arn:aws:iam::123456789012:role/oncall";
    /// How STS names a session of the on-call role.
    const ONCALL_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/oncall/jane";
    const PROD: &str = "social-analytics-prod";

    /// The callers these tests sign as, by access key.
    const SIGNERS: [(&str, &str); 2] = [
        (
            "ASIAONCALLEXAMPLE001",
            "arn:aws:sts::123456789012:assumed-role/oncall/jane",
        ),
        (
            "ASIADEVELOPEREXAMPLE",
            "arn:aws:sts::123456789012:assumed-role/developer/jane",
        ),
    ];

    fn signer_key(arn: &str) -> &'static str {
        SIGNERS.iter().find(|(_, a)| *a == arn).map(|(k, _)| *k).unwrap()
    }

    /// STS, as far as these tests go: the proof's access key names the signer.
    struct SignerInProof;

    impl Callers for SignerInProof {
        async fn signer(&self, proof: &CallerProof, _order_hash: &str) -> Result<Option<String>, ProofError> {
            let key = proof.credential.split('/').next().unwrap_or_default();
            Ok(SIGNERS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, arn)| (*arn).to_owned()))
        }
    }

    type Glass = BreakGlass<MemoryRecords, FakeEcs, FakeSnapshots, FakeNotifier, SignerInProof>;

    fn service(name: &str) -> (ClusterName, ServiceName) {
        (ClusterName::parse(PROD).unwrap(), ServiceName::parse(name).unwrap())
    }

    fn glass() -> Glass {
        let (cluster, api) = service("backend-service");
        let (_, worker) = service("worker-service");
        BreakGlass {
            pipeline: fixture_pipeline(),
            records: MemoryRecords::default(),
            ecs: FakeEcs::with_services(&[(&cluster, &api, "td:1"), (&cluster, &worker, "td:1")]),
            rds: FakeSnapshots::default(),
            callers: SignerInProof,
            team: FakeNotifier::default(),
            operations: FakeNotifier::default(),
            principals: EmergencyPrincipals::parse(ONCALL).unwrap(),
        }
    }

    fn order(signer: &str) -> Value {
        let body = json!({
            "stage": "prod", "application": "backend", "tag": "v2.0.1-hotfix",
            "digest": format!("sha256:{}", "ab".repeat(32)), "reason": "INC-9", "snapshot": true,
            "proof": {
                "credential": format!("{}/20261122/eu-west-1/sts/aws4_request", signer_key(signer)),
                "signature": "ab".repeat(32), "amz_date": "20261122T100000Z",
            },
        });
        json!({"requestContext": {"http": {"method": "POST"}}, "body": body.to_string()})
    }

    async fn answer(glass: &Glass, signer: &str) -> Answer {
        let (account, region) = registry_of("arn:aws:lambda:eu-west-1:123456789012:function:x").unwrap();
        glass
            .answer(
                &order(signer),
                account,
                region,
                Utc::now() + chrono::TimeDelta::seconds(30),
            )
            .await
    }

    #[tokio::test]
    async fn only_an_emergency_principal_as_sts_names_it_is_obeyed() {
        let glass = glass();
        let refused = answer(&glass, "arn:aws:sts::123456789012:assumed-role/developer/jane").await;
        assert_eq!(refused.status, 403, "{:?}", refused.body);
        assert!(glass.records.deployments().is_empty());
        assert!(glass.rds.taken().is_empty());
        assert!(glass.team.published().is_empty());

        let done = answer(&glass, ONCALL_SESSION).await;
        assert_eq!(done.status, 200, "{:?}", done.body);
        let records = glass.records.deployments();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|d| {
            d.status == Status::Deploying
                && d.emergency
                    .as_ref()
                    .is_some_and(|e| e.by == ONCALL && e.reason == "INC-9")
        }));
        assert_eq!(glass.rds.taken().len(), 1);
        assert_eq!(
            (glass.team.published().len(), glass.operations.published().len()),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn a_db_busy_with_a_backup_stops_the_order_before_anything_is_deployed() {
        let glass = glass();
        glass.rds.busy(Some("backing-up"));
        let refused = answer(&glass, ONCALL_SESSION).await;
        assert_eq!(refused.status, 409, "{:?}", refused.body);
        assert!(refused.body["error"].as_str().unwrap().contains("backing-up"));
        assert!(glass.records.deployments().is_empty());
        let (cluster, api) = service("backend-service");
        assert_eq!(glass.ecs.running(&cluster, &api), "td:1");
    }

    #[tokio::test]
    async fn a_service_that_fails_does_not_silence_the_one_deployed_and_a_retry_tells_nothing_twice() {
        let glass = glass();
        let (cluster, worker) = service("worker-service");
        glass.ecs.delete_service(&cluster, &worker);
        let partial = answer(&glass, ONCALL_SESSION).await;
        assert_eq!(partial.status, 422, "{:?}", partial.body);
        assert_eq!(partial.body["deployments"].as_array().unwrap().len(), 1);
        assert_eq!(partial.body["failed"][0]["service"], "worker-service");
        for notices in [glass.team.published(), glass.operations.published()] {
            assert_eq!(notices.len(), 1);
            assert!(notices[0].message.contains("NOT deployed"), "{}", notices[0].message);
        }
        // The same order again: the deployed service is reported, nothing is sent again.
        let again = answer(&glass, ONCALL_SESSION).await;
        assert_eq!(again.status, 422);
        assert_eq!(again.body["deployments"][0]["started_now"], false);
        assert_eq!(glass.records.deployments().len(), 1);
        assert_eq!(glass.team.published().len(), 1);
    }
}
