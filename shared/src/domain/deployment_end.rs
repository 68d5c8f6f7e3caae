//! An ECS "Deployment State Change" event, read into how a deployment ended, and what that
//! ending means for the record we made when we started it.

use super::deployment::{Deployment, Status};
use super::names::{ClusterName, InvalidName, ServiceName};
use super::pipeline::Pipeline;
use crate::events::{EcsDeploymentEvent, WrongKind, expect_kind};
use chrono::{DateTime, Utc};
use std::fmt;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadStateChange {
    #[error(transparent)]
    WrongKind(#[from] WrongKind),
    #[error("event field `resources` holds no ECS service ARN")]
    NoServiceArn,
    #[error("event field `resources`: `{0}` is not an ECS service ARN")]
    NotAServiceArn(String),
    #[error("event field `resources`: {0}")]
    Invalid(InvalidName),
    #[error("event has no time: neither `detail.updatedAt` nor `time` is readable")]
    NoTime,
}

/// How an ECS deployment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Completed,
    Failed,
}

/// A deployment ending that concerns a service of the pipeline.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended {
    pub cluster: ClusterName,
    pub service: ServiceName,
    pub ecs_deployment_id: String,
    pub ending: Ending,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EcsEventMeaning {
    Ignore(String),
    Ended(Ended),
}

/// `arn:aws:ecs:<region>:<account>:service/<cluster>/<service>`.
fn service_of(arn: &str) -> Result<(ClusterName, ServiceName), BadStateChange> {
    let not_a_service = || BadStateChange::NotAServiceArn(arn.to_owned());
    let resource = arn
        .splitn(6, ':')
        .nth(5)
        .filter(|_| arn.starts_with("arn:"))
        .ok_or_else(not_a_service)?;
    let mut parts = resource.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(cluster), Some(service), None) => Ok((
            ClusterName::parse(cluster).map_err(BadStateChange::Invalid)?,
            ServiceName::parse(service).map_err(BadStateChange::Invalid)?,
        )),
        _ => Err(not_a_service()),
    }
}

pub fn read_ending(pipeline: &Pipeline, event: &EcsDeploymentEvent) -> Result<EcsEventMeaning, BadStateChange> {
    expect_kind(event, "aws.ecs", "ECS Deployment State Change")?;
    let ending = match event.detail.event_name.as_str() {
        "SERVICE_DEPLOYMENT_COMPLETED" => Ending::Completed,
        "SERVICE_DEPLOYMENT_FAILED" => Ending::Failed,
        other => {
            return Ok(EcsEventMeaning::Ignore(format!(
                "`{other}` is not the end of a deployment"
            )));
        }
    };
    let arn = event
        .resources
        .as_deref()
        .and_then(|r| r.first())
        .ok_or(BadStateChange::NoServiceArn)?;
    let (cluster, service) = service_of(arn)?;
    if !pipeline.runs(&cluster, &service) {
        return Ok(EcsEventMeaning::Ignore(format!(
            "service `{cluster}/{service}` is not in the pipeline file"
        )));
    }
    let at = event.detail.updated_at.or(event.time).ok_or(BadStateChange::NoTime)?;
    Ok(EcsEventMeaning::Ended(Ended {
        cluster,
        service,
        ecs_deployment_id: event.detail.deployment_id.clone(),
        ending,
        at,
        reason: event.detail.reason.clone(),
    }))
}

#[derive(Debug, PartialEq, Eq)]
pub enum EndingUpdate {
    /// Write this record (from the status the record had: DEPLOYING, or SUPERSEDED for a
    /// deploy a newer push replaced after ECS had started it).
    Record(Box<Deployment>),
    Ignore(NotRecorded),
}

#[derive(Debug, PartialEq, Eq)]
pub enum NotRecorded {
    /// Started outside this pipeline (console, CloudFormation) or before it was installed.
    NotOurs,
    /// The record already says how it ended: a redelivery.
    AlreadyRecorded(Status),
    /// It ended already another way (rolled back).
    NoLongerInFlight(Status),
}

impl fmt::Display for NotRecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRecorded::NotOurs => f.write_str("a deployment this pipeline did not start"),
            NotRecorded::AlreadyRecorded(status) => write!(f, "already recorded as {status}"),
            NotRecorded::NoLongerInFlight(status) => write!(f, "the deployment is {status}, no longer in flight"),
        }
    }
}

/// What an ending means for the record ECS's deployment id points to, if any.
pub fn update_for_ending(ended: &Ended, record: Option<&Deployment>) -> EndingUpdate {
    let Some(record) = record.filter(|r| r.cluster == ended.cluster && r.service == ended.service) else {
        return EndingUpdate::Ignore(NotRecorded::NotOurs);
    };
    let to = match ended.ending {
        Ending::Completed => Status::Succeeded,
        Ending::Failed => Status::Failed,
    };
    if record.status == to {
        return EndingUpdate::Ignore(NotRecorded::AlreadyRecorded(to));
    }
    match record.transition(to, ended.at) {
        Ok(mut next) => {
            next.completed_at = Some(ended.at);
            next.ecs_reason = ended.reason.clone();
            EndingUpdate::Record(Box::new(next))
        }
        Err(_) => EndingUpdate::Ignore(NotRecorded::NoLongerInFlight(record.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::{DeploymentId, Kind};
    use chrono::TimeZone;
    use serde_json::json;

    fn pipeline() -> Pipeline {
        Pipeline::parse(include_str!("../../../tests/fixtures/three-stages.toml")).unwrap()
    }

    fn event(name: &str, service_arn: &str) -> EcsDeploymentEvent {
        serde_json::from_value(json!({
            "version": "0",
            "id": "ddca6449-b258-46c0-8653-e0e3a6d8e7c1",
            "detail-type": "ECS Deployment State Change",
            "source": "aws.ecs",
            "account": "123456789012",
            "time": "2026-11-22T10:07:00Z",
            "region": "us-east-1",
            "resources": [service_arn],
            "detail": {
                "eventType": "INFO",
                "eventName": name,
                "deploymentId": "ecs-svc/1234567890",
                "updatedAt": "2026-11-22T10:06:59Z",
                "reason": "ECS deployment ecs-svc/1234567890 completed."
            }
        }))
        .unwrap()
    }

    const DEV_BACKEND: &str = "arn:aws:ecs:us-east-1:123456789012:service/social-analytics-dev/backend-service";

    /// dev's backend-service deployment `dep-1`, which ECS knows as `ecs-svc/1234567890`.
    fn record(status: Status) -> Deployment {
        let mut record = crate::domain::fixtures::deployment(1, Kind::Deploy, status, None);
        (record.previous_task_definition, record.task_definition) = (None, None);
        (record.definition, record.previous_definition) = (None, None);
        record.ecs_deployment_id = Some("ecs-svc/1234567890".into());
        record
    }

    fn ended(ending: Ending) -> Ended {
        match read_ending(&pipeline(), &event("SERVICE_DEPLOYMENT_COMPLETED", DEV_BACKEND)).unwrap() {
            EcsEventMeaning::Ended(ended) => Ended { ending, ..ended },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completed_and_failed_are_endings_of_a_pipeline_service() {
        let EcsEventMeaning::Ended(ended) =
            read_ending(&pipeline(), &event("SERVICE_DEPLOYMENT_FAILED", DEV_BACKEND)).unwrap()
        else {
            panic!("should be an ending")
        };
        assert_eq!(ended.ending, Ending::Failed);
        assert_eq!(
            (ended.cluster.as_str(), ended.service.as_str()),
            ("social-analytics-dev", "backend-service")
        );
        assert_eq!(ended.ecs_deployment_id, "ecs-svc/1234567890");
        assert_eq!(ended.at, Utc.with_ymd_and_hms(2026, 11, 22, 10, 6, 59).unwrap());
    }

    #[test]
    fn in_progress_and_foreign_services_are_ignored() {
        let pipeline = pipeline();
        assert!(matches!(
            read_ending(&pipeline, &event("SERVICE_DEPLOYMENT_IN_PROGRESS", DEV_BACKEND)).unwrap(),
            EcsEventMeaning::Ignore(_)
        ));
        let other = "arn:aws:ecs:us-east-1:123456789012:service/another-cluster/backend-service";
        assert_eq!(
            read_ending(&pipeline, &event("SERVICE_DEPLOYMENT_COMPLETED", other)).unwrap(),
            EcsEventMeaning::Ignore("service `another-cluster/backend-service` is not in the pipeline file".into())
        );
    }

    #[test]
    fn bad_resources_are_typed_errors() {
        let pipeline = pipeline();
        let mut none = event("SERVICE_DEPLOYMENT_COMPLETED", DEV_BACKEND);
        none.resources = Some(vec![]);
        assert_eq!(read_ending(&pipeline, &none), Err(BadStateChange::NoServiceArn));
        for arn in [
            "arn:aws:ecs:us-east-1:123456789012:cluster/social-analytics-dev",
            "not-an-arn",
        ] {
            assert!(matches!(
                read_ending(&pipeline, &event("SERVICE_DEPLOYMENT_COMPLETED", arn)),
                Err(BadStateChange::NotAServiceArn(_))
            ));
        }
    }

    #[test]
    fn an_ending_moves_a_deploying_record_once() {
        let EndingUpdate::Record(done) = update_for_ending(&ended(Ending::Completed), Some(&record(Status::Deploying)))
        else {
            panic!("should record")
        };
        assert_eq!(done.status, Status::Succeeded);
        assert_eq!(
            done.completed_at,
            Some(Utc.with_ymd_and_hms(2026, 11, 22, 10, 6, 59).unwrap())
        );
        assert_eq!(
            update_for_ending(&ended(Ending::Completed), Some(&record(Status::Succeeded))),
            EndingUpdate::Ignore(NotRecorded::AlreadyRecorded(Status::Succeeded))
        );
        let EndingUpdate::Record(failed) = update_for_ending(&ended(Ending::Failed), Some(&record(Status::Deploying)))
        else {
            panic!("should record")
        };
        assert_eq!(failed.status, Status::Failed);
    }

    #[test]
    fn endings_of_deployments_not_ours_or_no_longer_in_flight_are_ignored() {
        assert_eq!(
            update_for_ending(&ended(Ending::Completed), None),
            EndingUpdate::Ignore(NotRecorded::NotOurs)
        );
        let mut elsewhere = record(Status::Deploying);
        elsewhere.service = ServiceName::parse("worker-service").unwrap();
        assert_eq!(
            update_for_ending(&ended(Ending::Completed), Some(&elsewhere)),
            EndingUpdate::Ignore(NotRecorded::NotOurs)
        );
        assert_eq!(
            update_for_ending(&ended(Ending::Completed), Some(&record(Status::RolledBack))),
            EndingUpdate::Ignore(NotRecorded::NoLongerInFlight(Status::RolledBack))
        );
    }

    #[test]
    fn a_superseded_deployment_that_ecs_completed_still_becomes_known_good() {
        let mut superseded = record(Status::Superseded);
        superseded.superseded_by = Some(DeploymentId::from_stored("dep-2".into()));
        let EndingUpdate::Record(next) = update_for_ending(&ended(Ending::Completed), Some(&superseded)) else {
            panic!("a superseded deploy that ran is recorded")
        };
        assert_eq!(next.status, Status::Succeeded);
        assert_eq!(next.superseded_by, superseded.superseded_by);
        assert!(next.completed_at.is_some());
    }
}
