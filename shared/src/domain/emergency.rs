//! Break-glass deploys: an operator's order to deploy an image to a stage now, skipping the
//! staging check, the approval, the timer and the deploy window. Who may order one, what an
//! order must say, and what it means for the pipeline, decided from data.
//!
//! Who ordered it is never taken from the event: anyone allowed to invoke the function could
//! write any `requestContext` into a direct invocation. The order carries a proof instead: an
//! STS `GetCallerIdentity` request the operator signed, with a header that binds it to this
//! order's hash. The function sends it to STS itself; STS names the signer, or refuses a
//! signature that does not match (another order, another host, too old).

use super::approval::{arn_parts, operator_principal};
use super::deployment::PushedImage;
use super::names::{AccountId, AppName, ImageDigest, ImageRef, ImageTag, Region, StageName};
use super::notice::{Notice, release_thread, utc};
use super::pipeline::{Application, Pipeline, Stage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest reason kept: enough for a ticket and a sentence.
pub const MAX_REASON: usize = 500;

/// The IAM roles and users the stack allows to order a break-glass deploy
/// (`EmergencyPrincipals`). IAM may let more identities invoke the function (in the same
/// account, an identity policy alone can); only these are obeyed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EmergencyPrincipals(Vec<String>);

impl EmergencyPrincipals {
    /// A comma-separated list of role and user ARNs, as the template passes it; blanks are
    /// skipped (an empty list allows no one). A role is kept without its path, as a caller's
    /// assumed-role ARN names it. An entry that names no role or user is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut principals = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let not_one = || format!("`{entry}` is not an IAM role or user ARN");
            let Some([partition, "iam", "", account, resource]) = arn_parts(entry) else {
                return Err(not_one());
            };
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_one());
            }
            match resource.split_once('/') {
                Some(("role", path_and_name)) => {
                    let name = path_and_name
                        .rsplit('/')
                        .next()
                        .filter(|n| !n.is_empty())
                        .ok_or_else(not_one)?;
                    principals.push(format!("arn:{partition}:iam::{account}:role/{name}"));
                }
                Some(("user", name)) if !name.is_empty() => principals.push(entry.to_owned()),
                _ => return Err(not_one()),
            }
        }
        Ok(Self(principals))
    }

    /// The principal behind `caller` (a function URL's `userArn`) if it is one of these.
    pub fn allowing(&self, caller: &str) -> Option<String> {
        operator_principal(caller).filter(|principal| self.0.contains(principal))
    }
}

/// The signed header that binds a caller proof to one order: its value is the order's hash.
pub const ORDER_HEADER: &str = "x-ecs-deploy-order";
/// The body and content type of the proof's `GetCallerIdentity` request, as signed.
pub const PROOF_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
pub const PROOF_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The signature of an STS `GetCallerIdentity` POST the operator signed (SigV4, service `sts`,
/// the stack's region, host the regional STS endpoint) over exactly `PROOF_SIGNED_HEADERS`:
/// the function builds the `Authorization` header itself with that list, so a signature over
/// other headers (another tool's GetCallerIdentity login, say) proves nothing here.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CallerProof {
    /// `<access key>/<yyyymmdd>/<region>/sts/aws4_request`.
    pub credential: String,
    /// 64 hex digits.
    pub signature: String,
    /// `x-amz-date`, `<yyyymmdd>T<hhmmss>Z`.
    pub amz_date: String,
    /// `x-amz-security-token`, for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_token: Option<String>,
}

/// The headers a proof's signature covers (`SignedHeaders`), without and with a session token.
pub const PROOF_SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-ecs-deploy-order";
pub const PROOF_SIGNED_HEADERS_WITH_TOKEN: &str =
    "content-type;host;x-amz-date;x-amz-security-token;x-ecs-deploy-order";

impl CallerProof {
    /// The `Authorization` header of the proof's request, if its parts have the shapes SigV4
    /// gives them (nothing else reaches a header).
    pub fn authorization(&self) -> Option<String> {
        let scope: Vec<&str> = self.credential.split('/').collect();
        let credential_ok = matches!(scope.as_slice(), [key, date, region, "sts", "aws4_request"]
            if (16..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric())
                && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty() && region.len() <= 32 && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        let signature_ok = self.signature.len() == 64 && self.signature.bytes().all(|b| b.is_ascii_hexdigit());
        let date_ok = self.amz_date.len() == 16
            && self.amz_date.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'T',
                15 => b == b'Z',
                _ => b.is_ascii_digit(),
            });
        let token_ok = self.security_token.as_deref().is_none_or(|token| {
            !token.is_empty()
                && token.len() <= 4096
                && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        });
        if !(credential_ok && signature_ok && date_ok && token_ok) {
            return None;
        }
        let signed = match self.security_token {
            Some(_) => PROOF_SIGNED_HEADERS_WITH_TOKEN,
            None => PROOF_SIGNED_HEADERS,
        };
        Some(format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders={signed}, Signature={}",
            self.credential, self.signature
        ))
    }
}

/// What pipectl sends: the image as ECR knows it (pipectl resolved the tag or digest there),
/// where it goes, why, and the proof of who orders it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EmergencyOrder {
    pub stage: String,
    pub application: String,
    pub tag: String,
    pub digest: String,
    pub reason: String,
    /// Whether the stage's pre-deploy snapshots are taken first (`--no-snapshot` says no).
    pub snapshot: bool,
    pub proof: CallerProof,
}

/// The hash an order's proof is bound to, of what the order asks (not of the proof): the same
/// order, retried, has the same hash, and so the same key.
pub fn order_hash(stage: &str, application: &str, tag: &str, digest: &str, reason: &str, snapshot: bool) -> String {
    let text = format!("{stage}|{application}|{tag}|{digest}|{}|{snapshot}", reason.trim());
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderRefused {
    #[error("the order is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no stage `{0}` in the pipeline file in force")]
    UnknownStage(String),
    #[error("no application `{0}` in the pipeline file in force")]
    UnknownApplication(String),
}

/// An order checked against the pipeline: the stage, the application, the image to pin.
#[derive(Debug, PartialEq, Eq)]
pub struct EmergencyPlan<'a> {
    pub stage: &'a Stage,
    pub application: &'a Application,
    pub image: PushedImage,
    pub reason: String,
    pub snapshot: bool,
    /// Names every record and snapshot the order makes, so a retried order finds them.
    pub key: String,
}

impl EmergencyOrder {
    /// This order's hash (`order_hash`), which its proof must be bound to.
    pub fn hash(&self) -> String {
        order_hash(
            &self.stage,
            &self.application,
            &self.tag,
            &self.digest,
            &self.reason,
            self.snapshot,
        )
    }

    pub fn parse(body: &[u8]) -> Result<Self, OrderRefused> {
        serde_json::from_slice(body).map_err(|e| OrderRefused::Malformed(e.to_string()))
    }

    /// Checks the order against `pipeline`; the image is pinned in the stack's own registry
    /// (`account`, `region`), the application's repository there. It counts as pushed `now`
    /// (the order's time), so pushes from before it are late for the services it deploys.
    pub fn plan<'a>(
        &self,
        pipeline: &'a Pipeline,
        account: AccountId,
        region: Region,
        now: DateTime<Utc>,
    ) -> Result<EmergencyPlan<'a>, OrderRefused> {
        let invalid = |what: String| OrderRefused::Invalid(what);
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
            return Err(invalid(format!(
                "the reason must say why, in 1 to {MAX_REASON} characters on one line"
            )));
        }
        let stage_name = StageName::parse(self.stage.clone()).map_err(|e| invalid(format!("stage: {e}")))?;
        let stage = pipeline
            .stage(&stage_name)
            .ok_or_else(|| OrderRefused::UnknownStage(self.stage.clone()))?;
        let app_name = AppName::parse(self.application.clone()).map_err(|e| invalid(format!("application: {e}")))?;
        let application = pipeline
            .applications()
            .iter()
            .find(|app| app.name == app_name)
            .ok_or_else(|| OrderRefused::UnknownApplication(self.application.clone()))?;
        let tag = ImageTag::parse(self.tag.clone()).map_err(|e| invalid(format!("tag: {e}")))?;
        let digest = ImageDigest::parse(self.digest.clone()).map_err(|e| invalid(format!("digest: {e}")))?;
        let uri = ImageRef {
            account,
            region,
            repository: application.repository.clone(),
            digest: digest.clone(),
        }
        .to_string();
        Ok(EmergencyPlan {
            stage,
            application,
            image: PushedImage {
                repository: application.repository.clone(),
                tag,
                digest,
                uri,
                pushed_at: now,
            },
            reason: reason.to_owned(),
            snapshot: self.snapshot,
            key: self.hash()[..32].to_owned(),
        })
    }
}

/// The loud notice of a break-glass deploy, to the team and to operations alike.
pub fn emergency_notice(
    plan: &EmergencyPlan,
    by: &str,
    at: DateTime<Utc>,
    services: &[String],
    failed: &[String],
    snapshots: &[String],
) -> Notice {
    let (stage, app) = (&plan.stage.name, &plan.application.name);
    let snapshots = if snapshots.is_empty() {
        "none (--no-snapshot, or the stage names no DB)".to_owned()
    } else {
        snapshots.join(", ")
    };
    Notice {
        subject: super::notice::subject(format!("EMERGENCY deploy of {app} {} to {stage}", plan.image.tag)),
        message: format!(
            "BREAK-GLASS: {by} deployed {app} {tag} to stage {stage} at {at}, skipping the staging \
             check, the approval, the timer and the deploy window.\n\n\
             Why: {reason}\n\
             Image: {image}\n\
             Services: {services}\n\
             {failed}\
             Pre-deploy snapshots: {snapshots}\n\n\
             The deploy is tracked and rolled back on the stage's alarms as any other.\n",
            tag = plan.image.tag,
            at = utc(at),
            reason = plan.reason,
            image = plan.image.uri,
            services = services.join(", "),
            failed = if failed.is_empty() {
                String::new()
            } else {
                format!("NOT deployed (ordering again retries them): {}\n", failed.join("; "))
            },
        ),
        ..Notice::default()
    }
    .in_thread(release_thread(&plan.image))
    .with_next_steps(vec![
        format!("pipectl status --stage {stage}"),
        format!("pipectl rollback {stage} {app} --to <version> --reason <why>"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"
[[application]]
name = "shop"
repository = "acme/shop"
services = [{ name = "shop-web", container = "web" }]

[[stage]]
name = "prod"
cluster = "prod-cluster"
tags = "v*"
approval = true
approvers = ["ops@example.com"]
snapshot_before_deploy = ["shop-db"]
"#;

    fn order() -> EmergencyOrder {
        EmergencyOrder {
            stage: "prod".into(),
            application: "shop".into(),
            tag: "v2.0.1".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            reason: "  INC-42: checkout down  ".into(),
            snapshot: true,
            proof: proof(),
        }
    }

    fn proof() -> CallerProof {
        CallerProof {
            credential: "ASIAEXAMPLEEXAMPLE01/20310506/sa-east-1/sts/aws4_request".into(),
            signature: "ab".repeat(32),
            amz_date: "20310506T070809Z".into(),
            security_token: Some("IQoJb3JpZ2luX2VjE+/=".into()),
        }
    }

    #[test]
    fn a_proofs_authorization_covers_exactly_the_order_header_and_its_fixed_company() {
        assert_eq!(
            proof().authorization().unwrap(),
            format!(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE01/20310506/sa-east-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-ecs-deploy-order, Signature={}",
                "ab".repeat(32)
            )
        );
        let without_token = CallerProof {
            security_token: None,
            ..proof()
        };
        assert!(
            without_token
                .authorization()
                .unwrap()
                .contains("SignedHeaders=content-type;host;x-amz-date;x-ecs-deploy-order,")
        );
        // Nothing that is not the shape SigV4 gives reaches a header.
        for bad in [
            CallerProof {
                credential: "AKIA/20310506/sa-east-1/sts/aws4_request, SignedHeaders=host".into(),
                ..proof()
            },
            CallerProof {
                credential: "ASIAEXAMPLEEXAMPLE01/20310506/sa-east-1/iam/aws4_request".into(),
                ..proof()
            },
            CallerProof {
                signature: "zz".repeat(32),
                ..proof()
            },
            CallerProof {
                amz_date: "20310506T070809Z\r\nx: y".into(),
                ..proof()
            },
            CallerProof {
                security_token: Some("a\r\nb".into()),
                ..proof()
            },
        ] {
            assert_eq!(bad.authorization(), None, "{bad:?}");
        }
    }

    fn now() -> DateTime<Utc> {
        "2031-05-06T07:08:09Z".parse().unwrap()
    }

    fn pipeline() -> Pipeline {
        Pipeline::parse(PIPELINE).expect("pipeline")
    }

    fn registry() -> (AccountId, Region) {
        (
            AccountId::parse("210987654321").unwrap(),
            Region::parse("sa-east-1").unwrap(),
        )
    }

    #[test]
    fn an_order_is_pinned_in_the_stacks_registry_to_the_applications_repository() {
        let pipeline = pipeline();
        let (account, region) = registry();
        let plan = order().plan(&pipeline, account, region, now()).expect("plan");
        assert_eq!(plan.stage.name.as_str(), "prod");
        assert_eq!(
            plan.image.uri,
            format!(
                "210987654321.dkr.ecr.sa-east-1.amazonaws.com/acme/shop@sha256:{}",
                "a".repeat(64)
            )
        );
        assert_eq!(plan.reason, "INC-42: checkout down");
        assert_eq!(plan.image.pushed_at, now());
    }

    #[test]
    fn an_order_is_its_content_so_a_retry_is_the_same_order_and_another_reason_is_not() {
        let (retried, mut other) = (order(), order());
        assert_eq!(order().hash(), retried.hash());
        other.reason = "INC-43".into();
        assert_ne!(order().hash(), other.hash());
        let pipeline = pipeline();
        let key = |o: &EmergencyOrder| {
            let (account, region) = registry();
            o.plan(&pipeline, account, region, now()).unwrap().key
        };
        assert_eq!(key(&order()), key(&retried));
        assert_ne!(key(&order()), key(&other));
    }

    #[test]
    fn orders_that_cannot_be_carried_out_are_refused_by_name() {
        let pipeline = pipeline();
        let refused = |change: fn(&mut EmergencyOrder)| {
            let mut o = order();
            change(&mut o);
            let (account, region) = registry();
            o.plan(&pipeline, account, region, now()).unwrap_err()
        };
        assert_eq!(
            refused(|o| o.stage = "qa".into()),
            OrderRefused::UnknownStage("qa".into())
        );
        assert_eq!(
            refused(|o| o.application = "blog".into()),
            OrderRefused::UnknownApplication("blog".into())
        );
        assert!(matches!(refused(|o| o.reason = " ".into()), OrderRefused::Invalid(m) if m.contains("reason")));
        assert!(matches!(refused(|o| o.digest = "latest".into()), OrderRefused::Invalid(m) if m.contains("digest")));
        assert!(
            matches!(refused(|o| o.reason = "a\nFAKE LINE".into()), OrderRefused::Invalid(m) if m.contains("reason"))
        );
        assert!(matches!(
            EmergencyOrder::parse(br#"{"stage":"prod","extra":1}"#),
            Err(OrderRefused::Malformed(_))
        ));
    }

    #[test]
    fn only_the_named_roles_and_users_are_obeyed_whatever_session_they_use() {
        let principals =
            EmergencyPrincipals::parse("arn:aws:iam::210987654321:role/oncall, arn:aws:iam::210987654321:user/jane")
                .unwrap();
        assert_eq!(
            principals
                .allowing("arn:aws:sts::210987654321:assumed-role/oncall/jane-laptop")
                .as_deref(),
            Some("arn:aws:iam::210987654321:role/oncall")
        );
        assert!(principals.allowing("arn:aws:iam::210987654321:user/jane").is_some());
        assert_eq!(
            principals.allowing("arn:aws:sts::210987654321:assumed-role/dev/jane"),
            None
        );
        assert_eq!(principals.allowing("arn:aws:iam::999999999999:user/jane"), None);
        assert_eq!(
            principals.allowing("arn:aws:sts::210987654321:federated-user/oncall"),
            None
        );
        assert_eq!(
            EmergencyPrincipals::parse("")
                .unwrap()
                .allowing("arn:aws:iam::210987654321:user/jane"),
            None
        );
        assert!(EmergencyPrincipals::parse("arn:aws:sts::210987654321:assumed-role/oncall/s").is_err());
        let with_path = EmergencyPrincipals::parse("arn:aws:iam::210987654321:role/teams/oncall").unwrap();
        assert!(
            with_path
                .allowing("arn:aws:sts::210987654321:assumed-role/oncall/s")
                .is_some()
        );
    }
}
