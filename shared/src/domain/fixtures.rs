//! Values the unit tests build their cases from: one clock, the tests' pipeline, and a
//! deployment record numbered `n` (revision `td:n`, replacing `td:n-1`).

use super::approval::{ApprovalId, ApprovalRequest, Evidence, ReleaseService, RollbackOrder, RollbackService};
use super::deployment::{Deployment, DeploymentId, Kind, PushedImage, Status};
use super::names::{ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName};
use super::pipeline::Pipeline;
use chrono::{DateTime, TimeZone, Utc};

/// 10:`minute` on the day the tests play.
pub fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap()
}

pub fn fixture_pipeline() -> Pipeline {
    Pipeline::parse(include_str!("../../../tests/fixtures/three-stages.toml")).unwrap()
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
        pipeline_version: None,
        emergency: None,
    }
}

/// Prod's approval request for `deployment(7)`'s image, made at 10:00: backend-service (its
/// record `dep-7`, running `td:6`), verified in staging, `required` approvals needed, no link
/// issued yet.
pub fn approval_request(required: usize) -> ApprovalRequest {
    let pipeline = fixture_pipeline();
    let prod = &pipeline.stages()[2];
    let app = &pipeline.applications()[0];
    let image = deployment(7, Kind::Deploy, Status::Requested, None).image;
    let mut policy = prod.approval.clone().expect("prod is approved");
    policy.required = required;
    ApprovalRequest::new(
        ApprovalId::for_release(&image, &prod.name, &app.name),
        (&prod.name, &prod.cluster),
        &policy,
        &app.name,
        &image,
        vec![ReleaseService {
            service: app.services[0].name.clone(),
            deployment: DeploymentId::from_stored("dep-7".into()),
            running_now: Some("td:6".into()),
        }],
        Ok(Some(Evidence {
            stage: pipeline.stages()[1].name.clone(),
            deployments: Vec::new(),
            alarms_checked: Vec::new(),
        })),
        at(0),
    )
}

/// A request to approve an operator's rollback of prod's first service from `dep-7` to the
/// revision `dep-5` ran (its image `deployment(5)`'s), asked at minute 0.
pub fn rollback_request(required: usize) -> ApprovalRequest {
    let pipeline = fixture_pipeline();
    let prod = &pipeline.stages()[2];
    let app = &pipeline.applications()[0];
    let version = deployment(5, Kind::Deploy, Status::Succeeded, Some(6)).image;
    let mut policy = prod.approval.clone().expect("prod is approved");
    policy.required = required;
    let order = RollbackOrder {
        to: version.tag.to_string(),
        reason: "checkout errors since v7".into(),
        by: "arn:aws:sts::123456789012:assumed-role/oncall/jane".into(),
        at: at(0),
        targets: vec![RollbackService {
            service: app.services[0].name.clone(),
            from: DeploymentId::from_stored("dep-7".into()),
            target: DeploymentId::from_stored("dep-5".into()),
            task_definition: "td:5".into(),
            image: version.uri.clone(),
        }],
    };
    ApprovalRequest::for_rollback(
        (&prod.name, &prod.cluster),
        &policy,
        &app.name,
        &version,
        (order, 0),
        &[Some("td:7".into())],
    )
}

/// A GetProducts document as the Price List answers (the shape of a captured one).
pub fn price_list_product(service: &str, family: &str, attributes: &[(&str, &str)], price: &str) -> String {
    let mut attrs = serde_json::json!({"regionCode": "us-east-1", "servicecode": service});
    for (k, v) in attributes {
        attrs[*k] = (*v).into();
    }
    serde_json::json!({
        "product": {"productFamily": family, "attributes": attrs, "sku": "SKU1"},
        "serviceCode": service,
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {
            "priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "hours", "beginRange": "0", "endRange": "Inf",
                "pricePerUnit": {"USD": price}
            }},
            "offerTermCode": "JRTCKXETXF"
        }}},
        "version": "20261101000000"
    })
    .to_string()
}
