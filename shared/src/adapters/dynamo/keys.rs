//! Where each item lives:
//! - deployment:  pk `DEP#<id>`, sk `DEP`; GSI `by-service` (svc_pk `SVC#<cluster>#<service>`,
//!   svc_sk `<requested_at>#<id>`) for history; GSI `by-ecs-deployment` (ecs_deployment_id).
//! - service state: pk `SVC#<cluster>#<service>`, sk `STATE` (lock, latest, awaiting_approval,
//!   quarantined).
//! - outbox notice: pk `NOTE#<key>`, sk `NOTE`, expiring (TTL `expires_at`).
//! - approval request: pk `APR#<id>`, sk `APR` (the approval function's role reaches only
//!   these: `dynamodb:LeadingKeys` `APR#apr-*`; the stream filter matches the prefix too).
//! - a stage and application's newest open request: pk `APR#open#<stage>#<application>`, sk `OPEN`.
//! - the last cost report: pk `COST#last`, sk `COST`; the Price List's table: `COST#prices`.

use crate::domain::approval::ApprovalId;
use crate::domain::deployment::DeploymentId;
use crate::domain::names::{AppName, ClusterName, ServiceName, StageName};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub const BY_SERVICE_INDEX: &str = "by-service";
pub const BY_ECS_DEPLOYMENT_INDEX: &str = "by-ecs-deployment";
/// Sparse: only approval requests in flight carry `in_flight` (always `IN_FLIGHT`); the
/// promotion's sweeper reads them all each minute (every page, in one partition).
pub const IN_FLIGHT_INDEX: &str = "approvals-in-flight";
pub const IN_FLIGHT: &str = "IN_FLIGHT";
/// The same index's other partition: deployment records HELD by their stage's deploy window or
/// a freeze, which the sweeper releases when it opens.
pub const HELD: &str = "HELD";

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

pub fn cost_report_key() -> Item {
    key("COST#last".to_owned(), "COST")
}

pub fn price_table_key() -> Item {
    key("COST#prices".to_owned(), "COST")
}

pub fn deployment_pk(id: &DeploymentId) -> String {
    format!("DEP#{id}")
}

pub fn deployment_key(id: &DeploymentId) -> Item {
    key(deployment_pk(id), "DEP")
}

pub fn service_pk(cluster: &ClusterName, service: &ServiceName) -> String {
    format!("SVC#{cluster}#{service}")
}

pub fn state_key(cluster: &ClusterName, service: &ServiceName) -> Item {
    key(service_pk(cluster, service), "STATE")
}

pub fn notice_key(notice: &str) -> Item {
    key(format!("NOTE#{notice}"), "NOTE")
}

pub const APPROVAL_PREFIX: &str = "APR#";

pub fn approval_pk(id: &ApprovalId) -> String {
    format!("{APPROVAL_PREFIX}{id}")
}

pub fn approval_key(id: &ApprovalId) -> Item {
    key(approval_pk(id), "APR")
}

/// The stage and application's newest open request: `APR#open#<stage>#<application>` (`#`
/// cannot occur in either name, and ids begin `apr-`).
pub fn open_request_key(stage: &StageName, application: &AppName) -> Item {
    key(format!("{APPROVAL_PREFIX}open#{stage}#{application}"), "OPEN")
}
