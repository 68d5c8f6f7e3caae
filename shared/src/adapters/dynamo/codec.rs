//! The stored shape of each item, read and written by `serde_dynamo`. Names are parsed on
//! the way in, so a record read back cannot hold a value its type forbids.

use super::keys::{Item, approval_pk, deployment_pk, service_pk};
use crate::domain::approval::{
    ApprovalId, ApprovalRequest, ApprovalStatus, Ballot, Evidence, Link, OperatorVote, ReleaseService, Successor,
};
use crate::domain::deployment::{Deployment, DeploymentId, DeploymentRef, Emergency, Kind, PushedImage, Status};
use crate::domain::names::AppName;
use crate::domain::names::{ClusterName, ContainerName, ImageDigest, ImageTag, RepositoryName, ServiceName, StageName};
use crate::domain::notice::Notice;
use crate::ports::StoreError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// What the `by-service` index copies of a deployment: everything but the two stored task
/// definitions, which can be large and are read from the record itself when needed. The
/// template's `NonKeyAttributes` must list exactly these (a test checks it).
pub const HISTORY_ATTRIBUTES: [&str; 22] = [
    "id",
    "kind",
    "rollback_of",
    "rollback_cause",
    "status",
    "stage",
    "cluster",
    "service",
    "container",
    "repository",
    "tag",
    "digest",
    "image",
    "pushed_at",
    "requested_at",
    "updated_at",
    "previous_task_definition",
    "task_definition",
    "ecs_deployment_id",
    "superseded_by",
    "completed_at",
    "ecs_reason",
];

/// Times are stored as RFC 3339 with milliseconds and `Z`, the form `svc_sk` sorts by.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(from)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(at: &Option<DateTime<Utc>>, to: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, to),
                None => to.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Option<DateTime<Utc>>, D::Error> {
            super::deserialize(from).map(Some)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DeploymentItem {
    pk: String,
    sk: String,
    svc_pk: String,
    /// `<requested_at, millisecond RFC 3339>#<id>`: history sorts by it.
    svc_sk: String,
    id: String,
    /// `deploy` or `rollback`.
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollback_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollback_cause: Option<String>,
    status: Status,
    stage: StageName,
    cluster: ClusterName,
    service: ServiceName,
    container: ContainerName,
    repository: RepositoryName,
    tag: ImageTag,
    digest: ImageDigest,
    image: String,
    #[serde(with = "millis")]
    pushed_at: DateTime<Utc>,
    #[serde(with = "millis")]
    requested_at: DateTime<Utc>,
    #[serde(with = "millis")]
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ecs_deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    superseded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "millis::option")]
    completed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ecs_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pipeline_version: Option<String>,
    /// Who ordered a break-glass deploy, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emergency_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emergency_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_definition: Option<String>,
    /// `HELD` while the record is: its key in the sweeper's index (sparse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_flight: Option<String>,
}

pub fn deployment_item(d: &Deployment) -> Item {
    let (kind, rollback_of, rollback_cause) = match &d.kind {
        Kind::Deploy => ("deploy", None, None),
        Kind::Rollback { of, cause } => ("rollback", Some(of.to_string()), Some(cause.clone())),
    };
    let item = DeploymentItem {
        pk: deployment_pk(&d.id),
        sk: "DEP".into(),
        svc_pk: service_pk(&d.cluster, &d.service),
        svc_sk: format!(
            "{}#{}",
            d.requested_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            d.id
        ),
        id: d.id.to_string(),
        kind: kind.into(),
        rollback_of,
        rollback_cause,
        status: d.status,
        stage: d.stage.clone(),
        cluster: d.cluster.clone(),
        service: d.service.clone(),
        container: d.container.clone(),
        repository: d.image.repository.clone(),
        tag: d.image.tag.clone(),
        digest: d.image.digest.clone(),
        image: d.image.uri.clone(),
        pushed_at: d.image.pushed_at,
        requested_at: d.requested_at,
        updated_at: d.updated_at,
        previous_task_definition: d.previous_task_definition.clone(),
        task_definition: d.task_definition.clone(),
        ecs_deployment_id: d.ecs_deployment_id.clone(),
        superseded_by: d.superseded_by.as_ref().map(ToString::to_string),
        completed_at: d.completed_at,
        ecs_reason: d.ecs_reason.clone(),
        pipeline_version: d.pipeline_version.clone(),
        emergency_by: d.emergency.as_ref().map(|e| e.by.clone()),
        emergency_reason: d.emergency.as_ref().map(|e| e.reason.clone()),
        definition: d.definition.clone(),
        previous_definition: d.previous_definition.clone(),
        in_flight: (d.status == Status::Held).then(|| super::keys::HELD.to_owned()),
    };
    serde_dynamo::to_item(item).expect("a deployment always serializes")
}

pub fn deployment_from(item: &Item) -> Result<Deployment, StoreError> {
    let stored: DeploymentItem = serde_dynamo::from_item(item.clone())
        .map_err(|e| StoreError::permanent(format!("stored deployment is unreadable: {e}")))?;
    // A row is a deployment only where deployments live: an index takes any item carrying its
    // keys, and a role that may write elsewhere (the approval page's) must not make one.
    let id = DeploymentId::from_stored(stored.id.clone());
    if stored.pk != deployment_pk(&id) || stored.sk != "DEP" {
        return Err(StoreError::permanent(format!(
            "an item at {}/{} claims to be deployment {}: not read as one",
            stored.pk, stored.sk, stored.id
        )));
    }
    let kind = match (stored.kind.as_str(), stored.rollback_of) {
        ("deploy", _) => Kind::Deploy,
        ("rollback", Some(of)) => Kind::Rollback {
            of: DeploymentId::from_stored(of),
            cause: stored.rollback_cause.unwrap_or_default(),
        },
        (other, _) => {
            return Err(StoreError::permanent(format!(
                "stored deployment {}: kind `{other}` is unknown or lacks rollback_of",
                stored.id
            )));
        }
    };
    Ok(Deployment {
        id,
        kind,
        status: stored.status,
        stage: stored.stage,
        cluster: stored.cluster,
        service: stored.service,
        container: stored.container,
        image: PushedImage {
            repository: stored.repository,
            tag: stored.tag,
            digest: stored.digest,
            uri: stored.image,
            pushed_at: stored.pushed_at,
        },
        requested_at: stored.requested_at,
        updated_at: stored.updated_at,
        previous_task_definition: stored.previous_task_definition,
        task_definition: stored.task_definition,
        ecs_deployment_id: stored.ecs_deployment_id,
        superseded_by: stored.superseded_by.map(DeploymentId::from_stored),
        completed_at: stored.completed_at,
        ecs_reason: stored.ecs_reason,
        pipeline_version: stored.pipeline_version,
        emergency: stored.emergency_by.map(|by| Emergency {
            by,
            reason: stored.emergency_reason.unwrap_or_default(),
        }),
        definition: stored.definition,
        previous_definition: stored.previous_definition,
    })
}

/// A pointer of the service state, as a map inside the STATE item.
#[derive(Serialize, Deserialize)]
pub struct RefItem {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<ImageDigest>,
    #[serde(with = "millis")]
    pushed_at: DateTime<Utc>,
}

impl From<&DeploymentRef> for RefItem {
    fn from(r: &DeploymentRef) -> Self {
        RefItem {
            id: r.id.to_string(),
            digest: r.digest.clone(),
            pushed_at: r.pushed_at,
        }
    }
}

impl From<RefItem> for DeploymentRef {
    fn from(r: RefItem) -> Self {
        DeploymentRef {
            id: DeploymentId::from_stored(r.id),
            digest: r.digest,
            pushed_at: r.pushed_at,
        }
    }
}

/// The STATE item's pointers; its lock and quarantine are read and written by expressions.
#[derive(Deserialize)]
pub struct StateItem {
    #[serde(default)]
    pub latest: Option<RefItem>,
    #[serde(default)]
    pub awaiting_approval: Option<RefItem>,
}

/// A notice kept in the outbox until it is published.
#[derive(Serialize, Deserialize)]
pub struct NoticeItem {
    pub pk: String,
    pub sk: String,
    pub subject: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    pub sent: bool,
    /// Seconds since the epoch: DynamoDB's TTL removes the item after it.
    pub expires_at: i64,
}

impl NoticeItem {
    pub fn notice(&self) -> Notice {
        Notice {
            subject: self.subject.clone(),
            message: self.message.clone(),
            thread: self.thread.clone(),
            next_steps: self.next_steps.clone(),
        }
    }
}

/// A value as the request's item stores it (a successor, a time), for expressions.
pub fn stored_value<T: Serialize>(value: &T) -> aws_sdk_dynamodb::types::AttributeValue {
    serde_dynamo::to_attribute_value(value).expect("a stored value always serializes")
}

/// What the approval page writes of a request (with its keys, `pk` and `sk`), and all its
/// role may write: the template's `dynamodb:Attributes` condition lists exactly these and the
/// keys (a test checks). Never an index key, the promotion, the policy or the release.
pub const DECISION_ATTRIBUTES: [&str; 5] = ["ballots", "status", "decided_at", "cancelled", "version"];

/// An approval request as stored. Times keep full precision (chrono's RFC 3339), so a
/// request reads back equal to what was written.
#[derive(Serialize, Deserialize)]
struct ApprovalItem {
    pk: String,
    sk: String,
    /// `approval`: what the stream filter and people reading the table see.
    record: String,
    /// Set while the request is in flight: the key of the sparse index the sweeper reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_flight: Option<String>,
    id: ApprovalId,
    stage: StageName,
    cluster: ClusterName,
    application: AppName,
    repository: RepositoryName,
    tag: ImageTag,
    digest: ImageDigest,
    image: String,
    pushed_at: DateTime<Utc>,
    services: Vec<ReleaseService>,
    status: ApprovalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<Evidence>,
    ballots: Vec<Ballot>,
    /// Issued links and their vote commitments; the page's role cannot write these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    operator_votes: Vec<OperatorVote>,
    approvals_required: usize,
    wait_seconds: i64,
    requested_at: DateTime<Utc>,
    /// Not `expires_at`, the table's TTL attribute: DynamoDB must never delete a request.
    #[serde(rename = "decide_by", alias = "expires_at")]
    expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    superseded_by: Option<Successor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cancelled: Option<crate::domain::approval::Cancellation>,
    /// An operator who called it off; the page's role cannot write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator_cancel: Option<crate::domain::approval::OperatorCancel>,
    /// An operator's later deadline; the page's role cannot write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extended_until: Option<DateTime<Utc>>,
    /// When promote last found it held; the page's role cannot write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held_seen_at: Option<DateTime<Utc>>,
    /// An operator's rollback the request asks to approve; the page's role cannot write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollback: Option<crate::domain::approval::RollbackOrder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promotion: Option<crate::domain::promotion::Promotion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed_at: Option<DateTime<Utc>>,
    version: u64,
}

pub fn approval_item(r: &ApprovalRequest) -> Item {
    let item = ApprovalItem {
        pk: approval_pk(&r.id),
        sk: "APR".into(),
        record: "approval".into(),
        in_flight: r.in_flight().then(|| super::keys::IN_FLIGHT.to_owned()),
        id: r.id.clone(),
        stage: r.stage.clone(),
        cluster: r.cluster.clone(),
        application: r.application.clone(),
        repository: r.image.repository.clone(),
        tag: r.image.tag.clone(),
        digest: r.image.digest.clone(),
        image: r.image.uri.clone(),
        pushed_at: r.image.pushed_at,
        services: r.services.clone(),
        status: r.status,
        blocked: r.blocked.clone(),
        evidence: r.evidence.clone(),
        ballots: r.ballots.clone(),
        links: r.links.clone(),
        operator_votes: r.operator_votes.clone(),
        approvals_required: r.approvals_required,
        wait_seconds: r.wait.num_seconds(),
        requested_at: r.requested_at,
        expires_at: r.expires_at,
        decided_at: r.decided_at,
        superseded_by: r.superseded_by.clone(),
        cancelled: r.cancelled.clone(),
        operator_cancel: r.operator_cancel.clone(),
        extended_until: r.extended_until,
        held_seen_at: r.held_seen_at,
        rollback: r.rollback.clone(),
        promotion: r.promotion.clone(),
        closed_at: r.closed_at,
        version: r.version,
    };
    serde_dynamo::to_item(item).expect("an approval request always serializes")
}

pub fn approval_from(item: &Item) -> Result<ApprovalRequest, StoreError> {
    let stored: ApprovalItem = serde_dynamo::from_item(item.clone())
        .map_err(|e| StoreError::permanent(format!("stored approval request is unreadable: {e}")))?;
    if stored.pk != approval_pk(&stored.id) || stored.sk != "APR" || stored.record != "approval" {
        return Err(StoreError::permanent(format!(
            "an item at {}/{} claims to be approval request {}: not read as one",
            stored.pk, stored.sk, stored.id
        )));
    }
    Ok(ApprovalRequest {
        id: stored.id,
        stage: stored.stage,
        cluster: stored.cluster,
        application: stored.application,
        image: PushedImage {
            repository: stored.repository,
            tag: stored.tag,
            digest: stored.digest,
            uri: stored.image,
            pushed_at: stored.pushed_at,
        },
        services: stored.services,
        status: stored.status,
        blocked: stored.blocked,
        evidence: stored.evidence,
        ballots: stored.ballots,
        links: stored.links,
        operator_votes: stored.operator_votes,
        approvals_required: stored.approvals_required,
        wait: chrono::TimeDelta::seconds(stored.wait_seconds),
        requested_at: stored.requested_at,
        expires_at: stored.expires_at,
        decided_at: stored.decided_at,
        superseded_by: stored.superseded_by,
        cancelled: stored.cancelled,
        operator_cancel: stored.operator_cancel,
        extended_until: stored.extended_until,
        held_seen_at: stored.held_seen_at,
        rollback: stored.rollback,
        promotion: stored.promotion,
        closed_at: stored.closed_at,
        version: stored.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::deployment;

    #[test]
    fn a_deployment_round_trips_through_its_item() {
        let mut rollback = deployment(
            3,
            Kind::Rollback {
                of: DeploymentId::from_stored("dep-2".into()),
                cause: "alarm".into(),
            },
            Status::Deploying,
            Some(4),
        );
        rollback.ecs_deployment_id = Some("ecs-svc/1".into());
        for d in [deployment(1, Kind::Deploy, Status::Requested, None), rollback] {
            assert_eq!(deployment_from(&deployment_item(&d)).unwrap(), d);
        }
    }

    #[test]
    fn an_approval_request_round_trips_through_its_item() {
        use crate::domain::approval::{ApprovalToken, Verdict, Voter};
        use crate::domain::fixtures::at;
        let mut request = crate::domain::fixtures::approval_request(2);
        request.requested_at = at(0) + chrono::TimeDelta::nanoseconds(123_456_789);
        let token = ApprovalToken::from_random([3; 32]);
        let approver = request.ballots[0].approver.clone();
        request.issue_link(&approver, &token);
        request.mark_sent(&approver, at(1));
        request.status = ApprovalStatus::AwaitingApproval;
        request.approvals_required = 2;
        let operator = Voter {
            operator: Some("arn:aws:iam::123456789012:user/ops".into()),
            ..Voter::default()
        };
        let second = request.ballots[1].approver.clone();
        let voted = request
            .cast(&token, Verdict::Approve, Voter::default(), at(2))
            .unwrap()
            .cast_for(&second, Verdict::Reject, operator, at(3))
            .unwrap();
        let rollback = crate::domain::fixtures::rollback_request(1);
        for r in [request, voted, rollback] {
            let item = approval_item(&r);
            assert_eq!(item["pk"].as_s().unwrap(), &format!("APR#{}", r.id));
            assert_eq!(approval_from(&item).unwrap(), r);
        }
    }

    #[test]
    fn a_row_is_read_as_what_its_key_says_or_not_at_all() {
        let d = deployment(1, Kind::Deploy, Status::Succeeded, Some(2));
        for (pk, sk) in [("APR#apr-0123", "DEP"), ("DEP#dep-2", "DEP"), ("DEP#dep-1", "APR")] {
            let mut item = deployment_item(&d);
            item.insert("pk".into(), s_value(pk));
            item.insert("sk".into(), s_value(sk));
            assert!(deployment_from(&item).is_err(), "{pk}/{sk}");
        }
        let request = crate::domain::fixtures::approval_request(1);
        for (pk, sk) in [("APR#apr-other", "APR"), (approval_pk(&request.id).as_str(), "DEP")] {
            let mut item = approval_item(&request);
            item.insert("pk".into(), s_value(pk));
            item.insert("sk".into(), s_value(sk));
            assert!(approval_from(&item).is_err(), "{pk}/{sk}");
        }
    }

    fn s_value(text: &str) -> aws_sdk_dynamodb::types::AttributeValue {
        aws_sdk_dynamodb::types::AttributeValue::S(text.into())
    }

    #[test]
    fn absent_values_are_left_out_not_stored_as_null() {
        let mut d = deployment(1, Kind::Deploy, Status::Requested, None);
        d.ecs_deployment_id = None;
        let item = deployment_item(&d);
        // `ecs_deployment_id` keys an index: a NULL there would be refused by DynamoDB.
        assert!(!item.contains_key("ecs_deployment_id"));
        assert!(!item.contains_key("completed_at"));
        assert_eq!(item["status"].as_s().unwrap(), "REQUESTED");
        assert!(
            item["svc_sk"]
                .as_s()
                .unwrap()
                .starts_with("2026-11-22T10:00:00.000Z#dep-1")
        );
    }

    #[test]
    fn history_rows_hold_everything_but_the_stored_definitions() {
        let item = deployment_item(&deployment(1, Kind::Deploy, Status::Succeeded, Some(2)));
        let mut stored: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| !["pk", "sk", "svc_pk", "svc_sk"].contains(k))
            .collect();
        stored.sort();
        let mut projected: Vec<&str> = HISTORY_ATTRIBUTES
            .iter()
            .copied()
            .chain(["definition", "previous_definition"])
            .filter(|a| item.contains_key(*a))
            .collect();
        projected.sort();
        assert_eq!(stored, projected);
        let row: Item = item
            .into_iter()
            .filter(|(k, _)| k != "definition" && k != "previous_definition")
            .collect();
        assert_eq!(deployment_from(&row).unwrap().definition, None);
    }
}
