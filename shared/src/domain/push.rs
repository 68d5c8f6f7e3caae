//! An ECR "Image Action" event, read into what a push means for the pipeline: ignore it (and
//! why), or deploy one image to a list of (stage, service) targets.

use super::deployment::{Mode, PushedImage};
use super::names::{AccountId, ImageDigest, ImageRef, ImageTag, InvalidName, Region, RepositoryName};
use super::pipeline::{Application, Pipeline, ServiceSpec, Stage};
use crate::events::{EcrEvent, WrongKind, expect_kind};
use std::fmt;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadEvent {
    #[error(transparent)]
    WrongKind(#[from] WrongKind),
    #[error("event field `{field}` is missing")]
    Missing { field: &'static str },
    #[error("event field `{field}`: {error}")]
    Invalid { field: &'static str, error: InvalidName },
}

#[derive(Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    NotAPush(String),
    PushFailed,
    Untagged,
    UnknownRepository(RepositoryName),
    NoStageMatches(ImageTag),
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::NotAPush(action) => write!(f, "action-type `{action}` is not a push"),
            IgnoreReason::PushFailed => f.write_str("the push failed"),
            IgnoreReason::Untagged => f.write_str("untagged push (manifest child or attestation)"),
            IgnoreReason::UnknownRepository(repo) => {
                write!(f, "repository `{repo}` is not in the pipeline file")
            }
            IgnoreReason::NoStageMatches(tag) => write!(f, "no stage's tag rule matches `{tag}`"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub stage: &'a Stage,
    pub service: &'a ServiceSpec,
    pub mode: Mode,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PushPlan<'a> {
    Ignore(IgnoreReason),
    Deploy {
        image: PushedImage,
        /// The application whose repository the push is to.
        application: &'a Application,
        targets: Vec<Target<'a>>,
    },
}

fn parsed<T>(field: &'static str, value: Result<T, InvalidName>) -> Result<T, BadEvent> {
    value.map_err(|error| BadEvent::Invalid { field, error })
}

fn required<'v>(field: &'static str, value: &'v Option<String>) -> Result<&'v str, BadEvent> {
    value.as_deref().ok_or(BadEvent::Missing { field })
}

pub fn plan_push<'a>(pipeline: &'a Pipeline, event: &EcrEvent) -> Result<PushPlan<'a>, BadEvent> {
    expect_kind(event, "aws.ecr", "ECR Image Action")?;
    let detail = &event.detail;
    if detail.action_type != "PUSH" {
        return Ok(PushPlan::Ignore(IgnoreReason::NotAPush(detail.action_type.clone())));
    }
    if detail.result != "SUCCESS" {
        return Ok(PushPlan::Ignore(IgnoreReason::PushFailed));
    }
    let Some(tag) = detail.image_tag.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(PushPlan::Ignore(IgnoreReason::Untagged));
    };
    let tag = parsed("detail.image-tag", ImageTag::parse(tag))?;
    let repository = parsed(
        "detail.repository-name",
        RepositoryName::parse(detail.repository_name.clone()),
    )?;
    let Some(app) = pipeline.application_for(&repository) else {
        return Ok(PushPlan::Ignore(IgnoreReason::UnknownRepository(repository)));
    };
    let mut stages = pipeline.stages_for_tag(&tag);
    if let Some(only) = &detail.operator_stage {
        stages.retain(|stage| stage.name.as_str() == only);
    }
    if stages.is_empty() {
        return Ok(PushPlan::Ignore(IgnoreReason::NoStageMatches(tag)));
    }

    let digest = parsed(
        "detail.image-digest",
        ImageDigest::parse(required("detail.image-digest", &detail.image_digest)?),
    )?;
    let account = parsed("account", AccountId::parse(required("account", &event.account)?))?;
    let region = parsed("region", Region::parse(required("region", &event.region)?))?;
    let pushed_at = event.time.ok_or(BadEvent::Missing { field: "time" })?;
    let uri = ImageRef {
        account,
        region,
        repository: repository.clone(),
        digest: digest.clone(),
    }
    .to_string();
    let image = PushedImage {
        repository,
        tag,
        digest,
        uri,
        pushed_at,
    };

    let targets = stages
        .into_iter()
        .flat_map(|stage| {
            let mode = if stage.approval.is_some() {
                Mode::Approval
            } else {
                Mode::Automatic
            };
            app.services.iter().map(move |service| Target { stage, service, mode })
        })
        .collect();
    Ok(PushPlan::Deploy {
        image,
        application: app,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::domain::fixtures::fixture_pipeline as pipeline;

    fn digest() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    fn event(detail: serde_json::Value) -> EcrEvent {
        serde_json::from_value(json!({
            "version": "0",
            "id": "7f6c8b0e-1111-2222-3333-444455556666",
            "detail-type": "ECR Image Action",
            "source": "aws.ecr",
            "account": "123456789012",
            "time": "2026-11-22T10:00:00Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": detail
        }))
        .unwrap()
    }

    fn push(tag: &str) -> EcrEvent {
        event(json!({
            "result": "SUCCESS",
            "repository-name": "social-analytics/backend",
            "image-digest": digest(),
            "action-type": "PUSH",
            "image-tag": tag
        }))
    }

    fn targets(plan: &PushPlan) -> Vec<(String, String, Mode)> {
        match plan {
            PushPlan::Deploy { targets, .. } => targets
                .iter()
                .map(|t| (t.stage.name.to_string(), t.service.name.to_string(), t.mode))
                .collect(),
            PushPlan::Ignore(reason) => panic!("ignored: {reason}"),
        }
    }

    #[test]
    fn an_operators_push_goes_to_the_one_stage_it_names_if_its_rule_matches() {
        let pipeline = pipeline();
        let mut event = push("v1.4.0");
        event.detail.operator_stage = Some("prod".into());
        assert_eq!(
            targets(&plan_push(&pipeline, &event).unwrap()),
            [
                ("prod".into(), "backend-service".into(), Mode::Approval),
                ("prod".into(), "worker-service".into(), Mode::Approval),
            ]
        );
        event.detail.operator_stage = Some("staging".into());
        assert_eq!(
            plan_push(&pipeline, &event).unwrap(),
            PushPlan::Ignore(IgnoreReason::NoStageMatches(ImageTag::parse("v1.4.0").unwrap()))
        );
    }

    #[test]
    fn a_release_tag_goes_to_dev_automatically_and_to_prod_for_approval() {
        let pipeline = pipeline();
        let plan = plan_push(&pipeline, &push("v1.4.0")).unwrap();
        assert_eq!(
            targets(&plan),
            [
                ("dev".into(), "backend-service".into(), Mode::Automatic),
                ("dev".into(), "worker-service".into(), Mode::Automatic),
                ("prod".into(), "backend-service".into(), Mode::Approval),
                ("prod".into(), "worker-service".into(), Mode::Approval),
            ]
        );
        let PushPlan::Deploy { image, .. } = plan else {
            unreachable!()
        };
        assert_eq!(
            image.uri,
            format!(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/social-analytics/backend@{}",
                digest()
            )
        );
    }

    #[test]
    fn ignores_what_is_not_a_successful_tagged_push_of_a_known_repository() {
        let pipeline = pipeline();
        let mut delete = push("latest");
        delete.detail.action_type = "DELETE".into();
        let mut failed = push("latest");
        failed.detail.result = "FAILURE".into();
        let mut untagged = push("latest");
        untagged.detail.image_tag = None;
        let mut other_repo = push("latest");
        other_repo.detail.repository_name = "someone/else".into();
        let pipeline_without_catch_all = Pipeline::parse(
            &include_str!("../../../tests/fixtures/three-stages.toml").replace("tags = \"*\"", "tags = \"feature-*\""),
        )
        .unwrap();

        assert_eq!(
            plan_push(&pipeline, &delete).unwrap(),
            PushPlan::Ignore(IgnoreReason::NotAPush("DELETE".into()))
        );
        assert_eq!(
            plan_push(&pipeline, &failed).unwrap(),
            PushPlan::Ignore(IgnoreReason::PushFailed)
        );
        assert_eq!(
            plan_push(&pipeline, &untagged).unwrap(),
            PushPlan::Ignore(IgnoreReason::Untagged)
        );
        assert!(matches!(
            plan_push(&pipeline, &other_repo).unwrap(),
            PushPlan::Ignore(IgnoreReason::UnknownRepository(_))
        ));
        assert!(matches!(
            plan_push(&pipeline_without_catch_all, &push("latest")).unwrap(),
            PushPlan::Ignore(IgnoreReason::NoStageMatches(_))
        ));
    }

    #[test]
    fn bad_fields_of_a_relevant_push_are_typed_errors() {
        let pipeline = pipeline();
        let mut bad_digest = push("latest");
        bad_digest.detail.image_digest = Some("sha256:nope".into());
        let mut no_digest = push("latest");
        no_digest.detail.image_digest = None;
        let mut no_time = push("latest");
        no_time.time = None;
        let mut wrong_kind = push("latest");
        wrong_kind.source = "aws.ecs".into();

        assert!(matches!(
            plan_push(&pipeline, &bad_digest),
            Err(BadEvent::Invalid {
                field: "detail.image-digest",
                ..
            })
        ));
        assert_eq!(
            plan_push(&pipeline, &no_digest),
            Err(BadEvent::Missing {
                field: "detail.image-digest"
            })
        );
        assert_eq!(plan_push(&pipeline, &no_time), Err(BadEvent::Missing { field: "time" }));
        assert!(matches!(plan_push(&pipeline, &wrong_kind), Err(BadEvent::WrongKind(_))));
    }
}
