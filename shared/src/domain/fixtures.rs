//! Values the unit tests build their cases from: one clock, the shipped pipeline, and a
//! deployment record numbered `n` (revision `td:n`, replacing `td:n-1`).

use super::deployment::{Deployment, DeploymentId, Kind, PushedImage, Status};
use super::names::{ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName};
use super::pipeline::Pipeline;
use chrono::{DateTime, TimeZone, Utc};

/// 10:`minute` on the day the tests play.
pub fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
}

pub fn shipped_pipeline() -> Pipeline {
    Pipeline::parse(include_str!("../../../pipeline.toml")).unwrap()
}

pub fn digest(n: u8) -> ImageDigest {
    ImageDigest::parse(format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
}

/// Deployment `dep-n` of dev's backend-service, requested at 10:00.
pub fn deployment(n: u8, kind: Kind, status: Status, completed: Option<u32>) -> Deployment {
    Deployment {
        id: DeploymentId::from_stored(format!("dep-{n}")),
        kind,
        status,
        stage: StageName::parse("dev").unwrap(),
        cluster: ClusterName::parse("social-analytics-dev").unwrap(),
        service: ServiceName::parse("backend-service").unwrap(),
        container: ContainerName::parse("api").unwrap(),
        image: PushedImage {
            repository: RepositoryName::parse("social-analytics/backend").unwrap(),
            tag: ImageTag::parse("latest").unwrap(),
            digest: digest(n),
            uri: format!(
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/social-analytics/backend@{}",
                digest(n)
            ),
            pushed_at: at(0),
        },
        requested_at: at(0),
        updated_at: at(0),
        previous_task_definition: Some(format!("td:{}", n.saturating_sub(1))),
        task_definition: Some(format!("td:{n}")),
        ecs_deployment_id: None,
        superseded_by: None,
        definition: Some(format!("{{\"def\": {n}}}")),
        previous_definition: Some(format!("{{\"def\": {}}}", n.saturating_sub(1))),
        completed_at: completed.map(at),
        ecs_reason: None,
    }
}
