//! The pipeline file: what is deployed where. Parsed strictly into types that cannot hold
//! invalid values; every error names the field it is about (`stage[2].tags: …`).

pub use super::approval::ApprovalPolicy;
use super::cost::{CostTag, PriceOverrides};
use super::names::{
    AlarmName, AppName, Approver, ClusterName, ContainerName, DbInstanceId, ImageTag, InvalidName, Region,
    RepositoryName, ServiceName, StageName,
};
use super::retention::{Quota, Retention};
use super::schedule::{DeploySchedule, DeployWindow, Freeze};
use super::tag_rule::TagRule;
use serde::Deserialize;
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline file: {0}")]
    Syntax(String),
    #[error("pipeline file: {field}: {message}")]
    Field { field: String, message: String },
}

/// A pipeline file's SHA-256, hex: what names its versions and tells a changed file.
pub fn text_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    applications: Vec<Application>,
    stages: Vec<Stage>,
    snapshots: SnapshotSettings,
    cost: CostSettings,
    /// Which pipeline this is, as records name it (`version`).
    version: String,
}

/// The cost report (`[cost]`): what the estimate adds to what runs, the prices it changes, and
/// how Cost Explorer is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct CostSettings {
    /// Whether each report asks Cost Explorer (two calls, $0.01 each).
    pub cost_explorer: bool,
    /// The cost-allocation tag Cost Explorer's figures are filtered by.
    pub tag: Option<CostTag>,
    /// Share of the estimate the forecast may differ by before the report flags it.
    pub divergence: f64,
    /// Items billed by the hour that the inventory does not see (`alb`, `nat_gateway`), by count.
    pub fixed: Vec<(String, u32)>,
    /// CloudWatch Logs ingested per month.
    pub log_ingestion_gb: f64,
    /// Prices that replace (or add to) the shipped table's.
    pub prices: PriceOverrides,
}

pub const DEFAULT_DIVERGENCE_PERCENT: i64 = 25;

/// The scheduled snapshots (`[snapshots]`): which DBs, how long their snapshots are kept, where
/// they are copied, and the region's manual-snapshot quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSettings {
    pub dbs: Vec<SnapshotPolicy>,
    pub quota: Quota,
}

/// One DB snapshotted on the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub db: DbInstanceId,
    /// The stage the DB serves: its default retention, and what notices name.
    pub stage: StageName,
    pub retention: Retention,
    /// A copy of each new snapshot in another region (disaster recovery), kept as long.
    pub copy_to: Option<CopyTarget>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyTarget {
    pub region: Region,
    /// The destination region's KMS key, required to copy an encrypted DB's snapshot.
    pub kms_key_id: Option<String>,
}

/// Days a snapshot is kept where the file names none: the seeds' 7 days, 30 in a stage that
/// needs approval (production).
pub const DEFAULT_KEEP_DAYS: i64 = 7;
pub const PRODUCTION_KEEP_DAYS: i64 = 30;
/// The newest snapshots of a DB never pruned, whatever their age.
pub const DEFAULT_KEEP_LAST: i64 = 3;
/// RDS's default manual-snapshot quota per region, and where we warn.
pub const DEFAULT_SNAPSHOT_QUOTA: i64 = 100;
pub const DEFAULT_QUOTA_WARN_PERCENT: i64 = 80;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub name: AppName,
    pub repository: RepositoryName,
    pub services: Vec<ServiceSpec>,
}

/// An ECS service that runs the application's image, and the container in it that does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: ServiceName,
    pub container: ContainerName,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub name: StageName,
    pub cluster: ClusterName,
    pub tags: TagRule,
    /// Set on a stage a person must approve deploys to (`approval = true`).
    pub approval: Option<ApprovalPolicy>,
    pub snapshot_before_deploy: Vec<DbInstanceId>,
    /// CloudWatch alarms whose move into ALARM means the latest deploy of one application in
    /// this stage is bad.
    pub alarms: Vec<AlarmGuard>,
    /// How long after a deploy completes an alarm is still blamed on it.
    pub watch_window: chrono::TimeDelta,
    /// Whether a deploy that SUCCEEDED here is announced (a FAILED one always is). Defaults
    /// to the last stage in promotion order: production.
    pub notify_success: bool,
    /// When deploys may start here (`deploy_window`, `freeze`); rollbacks never wait.
    pub schedule: DeploySchedule,
    /// Whether an operator's rollback here needs the stage's approval too
    /// (`rollback_approval = true`, only on a stage with `approval = true`).
    pub rollback_approval: bool,
}

pub const DEFAULT_APPROVAL_EXPIRES_HOURS: i64 = 24;
/// CodePipeline's limit for a manual approval: 7 days.
pub const MAX_APPROVAL_EXPIRES_HOURS: i64 = 168;
pub const DEFAULT_WAIT_MINUTES: i64 = 5;

/// An alarm and the application it guards: it rolls back only that application's services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmGuard {
    pub alarm: AlarmName,
    pub application: AppName,
}

/// The watch window when a stage names none: ARCHITECTURE's default.
pub const DEFAULT_WATCH_WINDOW_MINUTES: i64 = 15;

impl Pipeline {
    pub fn parse(text: &str) -> Result<Self, PipelineError> {
        let raw: RawPipeline = toml::from_str(text).map_err(|e| PipelineError::Syntax(e.to_string()))?;
        let mut pipeline = raw.validate()?;
        pipeline.version = format!("sha256:{}", &text_hash(text)[..12]);
        Ok(pipeline)
    }

    /// The pipeline a decision was made under, as its records name it: `v3` for a version
    /// pushed to the stack, `sha256:` and the first 12 hex digits of a file's hash otherwise.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// This pipeline, named as the stack's version it was read from.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The stage named `name`, if the file has one.
    pub fn stage(&self, name: &StageName) -> Option<&Stage> {
        self.stages.iter().find(|stage| &stage.name == name)
    }

    pub fn application_for(&self, repository: &RepositoryName) -> Option<&Application> {
        self.applications.iter().find(|app| &app.repository == repository)
    }

    /// Stages whose tag rule matches, in pipeline order.
    pub fn stages_for_tag(&self, tag: &ImageTag) -> Vec<&Stage> {
        self.stages.iter().filter(|stage| stage.tags.matches(tag)).collect()
    }

    /// True if a stage's cluster runs this service for one of the applications.
    pub fn runs(&self, cluster: &ClusterName, service: &ServiceName) -> bool {
        self.locate(cluster, service).is_some()
    }

    /// The stage whose cluster this is, and the service as the pipeline file declares it.
    pub fn locate(&self, cluster: &ClusterName, service: &ServiceName) -> Option<(&Stage, &ServiceSpec)> {
        let stage = self.stages.iter().find(|stage| &stage.cluster == cluster)?;
        let spec = self.services().find(|s| &s.name == service)?;
        Some((stage, spec))
    }

    /// Every service the pipeline deploys (each runs in every stage's cluster).
    pub fn services(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.applications.iter().flat_map(|app| &app.services)
    }

    /// The stage and application the alarm named `alarm` guards, if any.
    pub fn guarded_by(&self, alarm: &str) -> Option<(&Stage, &Application)> {
        self.stages.iter().find_map(|stage| {
            let guard = stage.alarms.iter().find(|guard| guard.alarm.as_str() == alarm)?;
            let application = self.applications.iter().find(|app| app.name == guard.application)?;
            Some((stage, application))
        })
    }

    /// Every alarm the pipeline file names, in file order: what the alarm rule must match.
    pub fn alarm_names(&self) -> impl Iterator<Item = &AlarmName> {
        self.stages
            .iter()
            .flat_map(|stage| stage.alarms.iter().map(|guard| &guard.alarm))
    }

    /// Every approver of every stage that takes approvals (one listed by two stages twice).
    pub fn approvers(&self) -> impl Iterator<Item = &Approver> {
        self.stages
            .iter()
            .filter_map(|stage| stage.approval.as_ref())
            .flat_map(|policy| &policy.approvers)
    }

    pub fn applications(&self) -> &[Application] {
        &self.applications
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn snapshots(&self) -> &SnapshotSettings {
        &self.snapshots
    }

    pub fn cost(&self) -> &CostSettings {
        &self.cost
    }

    /// Every DB the file names, once, with the stage it serves: the snapshot policies' first,
    /// then the stages' pre-deployment snapshots.
    pub fn databases(&self) -> Vec<(&StageName, &DbInstanceId)> {
        let mut dbs: Vec<(&StageName, &DbInstanceId)> = self.snapshots.dbs.iter().map(|p| (&p.stage, &p.db)).collect();
        for stage in &self.stages {
            for db in &stage.snapshot_before_deploy {
                if !dbs.iter().any(|(_, known)| *known == db) {
                    dbs.push((&stage.name, db));
                }
            }
        }
        dbs
    }

    /// How long `db`'s snapshots are kept: its `[snapshots]` entry, else the default of the
    /// stage that snapshots it before deploys (its pre-deployment snapshots follow the same
    /// retention). `None` for a DB this file does not name: its snapshots are not ours to prune.
    pub fn retention_of(&self, db: &DbInstanceId) -> Option<Retention> {
        if let Some(policy) = self.snapshots.dbs.iter().find(|p| p.db == *db) {
            return Some(policy.retention);
        }
        let stage = self.stages.iter().find(|s| s.snapshot_before_deploy.contains(db))?;
        Some(default_retention(stage.approval.is_some()))
    }

    /// Whether the pipeline file still lists `approver` (any case) for `stage`: a vote counts
    /// only then, so removing someone from the file takes their open links away.
    pub fn lists_approver(&self, stage: &StageName, approver: &Approver) -> bool {
        self.stages
            .iter()
            .find(|s| s.name == *stage)
            .and_then(|s| s.approval.as_ref())
            .is_some_and(|policy| {
                policy
                    .approvers
                    .iter()
                    .any(|listed| listed.as_str().eq_ignore_ascii_case(approver.as_str()))
            })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    application: Vec<RawApplication>,
    stage: Vec<RawStage>,
    #[serde(default)]
    snapshots: RawSnapshots,
    #[serde(default)]
    cost: RawCost,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCost {
    #[serde(default)]
    cost_explorer: Option<bool>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    divergence_percent: Option<i64>,
    #[serde(default)]
    fixed: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    log_ingestion_gb: Option<f64>,
    #[serde(default)]
    prices: PriceOverrides,
}

impl RawCost {
    fn validate(self) -> Result<CostSettings, PipelineError> {
        let divergence = in_range(
            "cost.divergence_percent",
            self.divergence_percent.unwrap_or(DEFAULT_DIVERGENCE_PERCENT),
            1..=1000,
            "percent",
        )?;
        let tag = match self.tag {
            None => None,
            Some(tag) => Some(CostTag::parse(&tag).map_err(|message| PipelineError::Field {
                field: "cost.tag".into(),
                message,
            })?),
        };
        let mut fixed = Vec::new();
        for (name, count) in self.fixed {
            let at = format!("cost.fixed.{name}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(PipelineError::Field {
                    field: at,
                    message:
                        "an item's name is lower-case letters, digits and `_` (a key of the price table's `fixed_hour`)"
                            .into(),
                });
            }
            fixed.push((name, in_range(&at, count, 0..=1000, "items")? as u32));
        }
        let log_ingestion_gb = self.log_ingestion_gb.unwrap_or(0.0);
        if !(0.0..=1_000_000.0).contains(&log_ingestion_gb) {
            return Err(PipelineError::Field {
                field: "cost.log_ingestion_gb".into(),
                message: format!("{log_ingestion_gb} is not between 0 and 1000000 GB a month"),
            });
        }
        self.prices.check().map_err(|(field, message)| PipelineError::Field {
            field: format!("cost.prices.{field}"),
            message,
        })?;
        Ok(CostSettings {
            cost_explorer: self.cost_explorer.unwrap_or(true),
            tag,
            divergence: divergence as f64 / 100.0,
            fixed,
            log_ingestion_gb,
            prices: self.prices,
        })
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshots {
    #[serde(default)]
    quota: Option<i64>,
    #[serde(default)]
    warn_at_percent: Option<i64>,
    #[serde(default)]
    db: Vec<RawSnapshotDb>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshotDb {
    name: String,
    stage: String,
    #[serde(default)]
    keep_days: Option<i64>,
    #[serde(default)]
    keep_last: Option<i64>,
    #[serde(default)]
    copy_to_region: Option<String>,
    #[serde(default)]
    copy_kms_key_id: Option<String>,
}

fn default_retention(production: bool) -> Retention {
    let days = if production {
        PRODUCTION_KEEP_DAYS
    } else {
        DEFAULT_KEEP_DAYS
    };
    Retention {
        keep_for: chrono::TimeDelta::days(days),
        keep_last: DEFAULT_KEEP_LAST as usize,
    }
}

impl RawSnapshots {
    fn validate(self, stages: &[Stage]) -> Result<SnapshotSettings, PipelineError> {
        let quota = in_range(
            "snapshots.quota",
            self.quota.unwrap_or(DEFAULT_SNAPSHOT_QUOTA),
            1..=100_000,
            "snapshots",
        )?;
        let warn_percent = in_range(
            "snapshots.warn_at_percent",
            self.warn_at_percent.unwrap_or(DEFAULT_QUOTA_WARN_PERCENT),
            1..=100,
            "percent",
        )?;
        let mut dbs = Vec::new();
        let mut seen = HashSet::new();
        for (i, raw) in self.db.into_iter().enumerate() {
            let at = |f: &str| format!("snapshots.db[{i}].{f}");
            let db = field(at("name"), DbInstanceId::parse(raw.name))?;
            if !seen.insert(db.as_str().to_ascii_lowercase()) {
                return Err(duplicate(at("name"), "snapshot policy for DB", db.as_str()));
            }
            let stage_name = field(at("stage"), StageName::parse(raw.stage))?;
            let Some(stage) = stages.iter().find(|s| s.name == stage_name) else {
                return Err(PipelineError::Field {
                    field: at("stage"),
                    message: format!("no stage is named `{stage_name}`"),
                });
            };
            let default = default_retention(stage.approval.is_some());
            let keep_days = match raw.keep_days {
                Some(days) => in_range(&at("keep_days"), days, 1..=3650, "days")?,
                None => default.keep_for.num_days(),
            };
            let keep_last = in_range(
                &at("keep_last"),
                raw.keep_last.unwrap_or(DEFAULT_KEEP_LAST),
                0..=100,
                "snapshots",
            )?;
            let copy_to = match (raw.copy_to_region, raw.copy_kms_key_id) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(PipelineError::Field {
                        field: at("copy_kms_key_id"),
                        message: "names a key for a copy, but copy_to_region names no region".into(),
                    });
                }
                (Some(region), key) => Some(CopyTarget {
                    region: field(at("copy_to_region"), Region::parse(region))?,
                    kms_key_id: match key {
                        Some(key) if key.trim().is_empty() || key.len() > 2048 => {
                            return Err(PipelineError::Field {
                                field: at("copy_kms_key_id"),
                                message: "must be a KMS key id, alias or ARN".into(),
                            });
                        }
                        key => key,
                    },
                }),
            };
            dbs.push(SnapshotPolicy {
                db,
                stage: stage_name,
                retention: Retention {
                    keep_for: chrono::TimeDelta::days(keep_days),
                    keep_last: keep_last as usize,
                },
                copy_to,
            });
        }
        Ok(SnapshotSettings {
            dbs,
            quota: Quota {
                limit: quota as usize,
                warn_percent: warn_percent as usize,
            },
        })
    }
}

fn in_range(field: &str, value: i64, range: std::ops::RangeInclusive<i64>, unit: &str) -> Result<i64, PipelineError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(out_of_range(field.to_owned(), value, range, unit))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplication {
    name: String,
    repository: String,
    services: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    container: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    cluster: String,
    tags: String,
    #[serde(default)]
    approval: bool,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    approvals_required: Option<i64>,
    #[serde(default)]
    approval_expires_hours: Option<i64>,
    #[serde(default)]
    wait_minutes: Option<i64>,
    #[serde(default)]
    requires: Option<String>,
    #[serde(default)]
    snapshot_before_deploy: Vec<String>,
    /// Application name → the alarms guarding it in this stage.
    #[serde(default)]
    alarms: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    watch_window_minutes: Option<i64>,
    #[serde(default)]
    notify_success: Option<bool>,
    #[serde(default)]
    deploy_window: Option<RawWindow>,
    #[serde(default)]
    freeze: Vec<RawFreeze>,
    #[serde(default)]
    rollback_approval: bool,
}

/// `deploy_window = { days = ["mon", …], from = "09:00", to = "16:00", timezone = "Europe/Berlin" }`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Vec<String>,
    from: String,
    to: String,
    #[serde(default)]
    timezone: Option<String>,
}

/// `freeze = [{ from = "2026-12-20T00:00:00Z", to = "2027-01-04T00:00:00Z", reason = "…" }]`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeze {
    from: RawInstant,
    to: RawInstant,
    #[serde(default)]
    reason: Option<String>,
}

/// An instant written as an RFC 3339 string or as a TOML offset date-time (unquoted).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawInstant {
    Text(String),
    Toml(toml::value::Datetime),
}

impl RawInstant {
    fn parse(&self, field: String) -> Result<chrono::DateTime<chrono::Utc>, PipelineError> {
        let text = match self {
            RawInstant::Text(text) => text.clone(),
            RawInstant::Toml(datetime) => datetime.to_string(),
        };
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|at| at.to_utc())
            .map_err(|_| PipelineError::Field {
                field,
                message: format!("`{text}` is not a date and time with its offset, e.g. 2026-12-20T00:00:00Z"),
            })
    }
}

/// The stage's deploy window and freezes.
fn schedule(i: usize, window: Option<RawWindow>, freezes: Vec<RawFreeze>) -> Result<DeploySchedule, PipelineError> {
    let window = match window {
        None => None,
        Some(raw) => Some(
            DeployWindow::parse(&raw.days, &raw.from, &raw.to, raw.timezone.as_deref().unwrap_or("UTC")).map_err(
                |(key, message)| PipelineError::Field {
                    field: format!("stage[{i}].deploy_window.{key}"),
                    message,
                },
            )?,
        ),
    };
    let mut parsed = Vec::new();
    for (j, raw) in freezes.into_iter().enumerate() {
        let at = |f: &str| format!("stage[{i}].freeze[{j}].{f}");
        let from = raw.from.parse(at("from"))?;
        let to = raw.to.parse(at("to"))?;
        if to <= from {
            return Err(PipelineError::Field {
                field: at("to"),
                message: "must be later than `from`".into(),
            });
        }
        let reason = raw.reason.unwrap_or_default().trim().to_owned();
        if reason.len() > 200 || reason.contains('\n') {
            return Err(PipelineError::Field {
                field: at("reason"),
                message: "one line of at most 200 characters".into(),
            });
        }
        parsed.push(Freeze {
            from,
            to,
            reason: if reason.is_empty() { "freeze".into() } else { reason },
        });
    }
    Ok(DeploySchedule {
        window,
        freezes: parsed,
    })
}

fn out_of_range(field: String, value: i64, range: std::ops::RangeInclusive<i64>, unit: &str) -> PipelineError {
    PipelineError::Field {
        field,
        message: format!("{value} is not between {} and {} {unit}", range.start(), range.end()),
    }
}

/// The stage's approval settings: only with `approval = true`, which needs at least one
/// approver. `requires` must name an earlier stage (the digest must have got there first).
fn approval_policy(
    i: usize,
    raw: &RawStage,
    earlier_stages: &[Stage],
) -> Result<Option<ApprovalPolicy>, PipelineError> {
    let at = |f: &str| format!("stage[{i}].{f}");
    if !raw.approval {
        let stray = [
            ("approvers", !raw.approvers.is_empty()),
            ("approvals_required", raw.approvals_required.is_some()),
            ("approval_expires_hours", raw.approval_expires_hours.is_some()),
            ("wait_minutes", raw.wait_minutes.is_some()),
            ("requires", raw.requires.is_some()),
            ("rollback_approval", raw.rollback_approval),
        ];
        if let Some((name, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(PipelineError::Field {
                field: at(name),
                message: "only a stage with `approval = true` takes approval settings".into(),
            });
        }
        return Ok(None);
    }
    if raw.approvers.is_empty() {
        return Err(PipelineError::Field {
            field: at("approvers"),
            message: "a stage with `approval = true` needs at least one approver".into(),
        });
    }
    let mut approvers = Vec::new();
    let mut seen = HashSet::new();
    for (j, address) in raw.approvers.iter().enumerate() {
        let path = format!("stage[{i}].approvers[{j}]");
        let approver = field(path.clone(), Approver::parse(address.clone()))?;
        if !seen.insert(approver.as_str().to_ascii_lowercase()) {
            return Err(duplicate(path, "approver", approver.as_str()));
        }
        approvers.push(approver);
    }
    let required = raw.approvals_required.unwrap_or(1);
    if !(1..=approvers.len() as i64).contains(&required) {
        return Err(PipelineError::Field {
            field: at("approvals_required"),
            message: format!(
                "{required} is not between 1 and the {} approvers named",
                approvers.len()
            ),
        });
    }
    let hours = raw.approval_expires_hours.unwrap_or(DEFAULT_APPROVAL_EXPIRES_HOURS);
    if !(1..=MAX_APPROVAL_EXPIRES_HOURS).contains(&hours) {
        return Err(out_of_range(
            at("approval_expires_hours"),
            hours,
            1..=MAX_APPROVAL_EXPIRES_HOURS,
            "hours",
        ));
    }
    let wait = raw.wait_minutes.unwrap_or(DEFAULT_WAIT_MINUTES);
    if !(0..=1440).contains(&wait) {
        return Err(out_of_range(at("wait_minutes"), wait, 0..=1440, "minutes"));
    }
    let requires = match &raw.requires {
        None => earlier_stages.last().map(|stage| stage.name.clone()),
        Some(name) => {
            let stage = field(at("requires"), StageName::parse(name.clone()))?;
            if !earlier_stages.iter().any(|earlier| earlier.name == stage) {
                return Err(PipelineError::Field {
                    field: at("requires"),
                    message: format!("`{name}` is not a stage before this one"),
                });
            }
            Some(stage)
        }
    };
    Ok(Some(ApprovalPolicy {
        approvers,
        required: required as usize,
        expires_after: chrono::TimeDelta::hours(hours),
        wait: chrono::TimeDelta::minutes(wait),
        requires,
    }))
}

fn field<T>(path: String, parsed: Result<T, InvalidName>) -> Result<T, PipelineError> {
    parsed.map_err(|e| PipelineError::Field {
        field: path,
        message: e.to_string(),
    })
}

fn duplicate(path: String, what: &str, value: &str) -> PipelineError {
    PipelineError::Field {
        field: path,
        message: format!("duplicate {what} `{value}`"),
    }
}

impl RawPipeline {
    fn validate(self) -> Result<Pipeline, PipelineError> {
        if self.application.is_empty() {
            return Err(PipelineError::Field {
                field: "application".into(),
                message: "at least one application is required".into(),
            });
        }
        if self.stage.is_empty() {
            return Err(PipelineError::Field {
                field: "stage".into(),
                message: "at least one stage is required".into(),
            });
        }

        let mut applications = Vec::new();
        let mut app_names = HashSet::new();
        let mut repositories = HashSet::new();
        let mut all_services = HashSet::new();
        for (i, raw) in self.application.into_iter().enumerate() {
            let at = |f: &str| format!("application[{i}].{f}");
            let name = field(at("name"), AppName::parse(raw.name))?;
            if !app_names.insert(name.clone()) {
                return Err(duplicate(at("name"), "application", name.as_str()));
            }
            let repository = field(at("repository"), RepositoryName::parse(raw.repository))?;
            if !repositories.insert(repository.clone()) {
                return Err(duplicate(at("repository"), "repository", repository.as_str()));
            }
            if raw.services.is_empty() {
                return Err(PipelineError::Field {
                    field: at("services"),
                    message: "at least one service is required".into(),
                });
            }
            let mut services = Vec::new();
            for (j, svc) in raw.services.into_iter().enumerate() {
                let at = |f: &str| format!("application[{i}].services[{j}].{f}");
                let name = field(at("name"), ServiceName::parse(svc.name))?;
                // One service can run one application's image, or deploys would fight.
                if !all_services.insert(name.clone()) {
                    return Err(duplicate(at("name"), "service", name.as_str()));
                }
                let container = field(at("container"), ContainerName::parse(svc.container))?;
                services.push(ServiceSpec { name, container });
            }
            applications.push(Application {
                name,
                repository,
                services,
            });
        }

        let last_stage = self.stage.len() - 1;
        let mut stages = Vec::new();
        let mut stage_names = HashSet::new();
        let mut clusters = HashSet::new();
        let mut alarms_seen = HashSet::new();
        for (i, raw) in self.stage.into_iter().enumerate() {
            let at = |f: &str| format!("stage[{i}].{f}");
            let approval = approval_policy(i, &raw, &stages)?;
            let name = field(at("name"), StageName::parse(raw.name))?;
            if !stage_names.insert(name.clone()) {
                return Err(duplicate(at("name"), "stage", name.as_str()));
            }
            let cluster = field(at("cluster"), ClusterName::parse(raw.cluster))?;
            if !clusters.insert(cluster.clone()) {
                return Err(duplicate(at("cluster"), "cluster", cluster.as_str()));
            }
            let tags = field(at("tags"), TagRule::parse(&raw.tags))?;
            let snapshot_before_deploy = raw
                .snapshot_before_deploy
                .into_iter()
                .enumerate()
                .map(|(j, db)| {
                    field(
                        format!("stage[{i}].snapshot_before_deploy[{j}]"),
                        DbInstanceId::parse(db),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut alarms = Vec::new();
            for (app, names) in raw.alarms {
                let application = field(at(&format!("alarms.{app}")), AppName::parse(app.clone()))?;
                if !app_names.contains(&application) {
                    return Err(PipelineError::Field {
                        field: at(&format!("alarms.{app}")),
                        message: format!("no application is named `{app}`"),
                    });
                }
                for (j, alarm) in names.into_iter().enumerate() {
                    let path = at(&format!("alarms.{app}[{j}]"));
                    let alarm = field(path.clone(), AlarmName::parse(alarm))?;
                    // One alarm, one guard: otherwise a single alarm would roll back two stages.
                    if !alarms_seen.insert(alarm.clone()) {
                        return Err(duplicate(path, "alarm", alarm.as_str()));
                    }
                    alarms.push(AlarmGuard {
                        alarm,
                        application: application.clone(),
                    });
                }
            }
            let minutes = raw.watch_window_minutes.unwrap_or(DEFAULT_WATCH_WINDOW_MINUTES);
            if !(1..=1440).contains(&minutes) {
                return Err(PipelineError::Field {
                    field: at("watch_window_minutes"),
                    message: format!("{minutes} is not between 1 and 1440 minutes"),
                });
            }
            let rollback_approval = raw.rollback_approval;
            stages.push(Stage {
                name,
                cluster,
                tags,
                approval,
                snapshot_before_deploy,
                alarms,
                watch_window: chrono::TimeDelta::minutes(minutes),
                notify_success: raw.notify_success.unwrap_or(i == last_stage),
                schedule: schedule(i, raw.deploy_window, raw.freeze)?,
                rollback_approval,
            });
        }
        let snapshots = self.snapshots.validate(&stages)?;
        let cost = self.cost.validate()?;
        Ok(Pipeline {
            applications,
            stages,
            snapshots,
            cost,
            version: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/three-stages.toml");

    fn error_of(text: &str) -> String {
        Pipeline::parse(text).unwrap_err().to_string()
    }

    const MINIMAL: &str = r#"
        [[application]]
        name = "backend"
        repository = "social-analytics/backend"
        services = [{ name = "backend-service", container = "api" }]

        [[stage]]
        name = "dev"
        cluster = "social-analytics-dev"
        tags = "*"
    "#;

    #[test]
    fn the_fixture_pipeline_file_parses() {
        let pipeline = Pipeline::parse(FIXTURE).unwrap();
        let repo = RepositoryName::parse("social-analytics/backend").unwrap();
        let app = pipeline.application_for(&repo).unwrap();
        let services: Vec<_> = app
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.container.as_str()))
            .collect();
        assert_eq!(services, [("backend-service", "api"), ("worker-service", "worker")]);

        let stages: Vec<_> = pipeline
            .stages()
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.cluster.as_str(),
                    s.tags.to_string(),
                    s.approval.is_some(),
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                ("dev", "social-analytics-dev", "*".to_string(), false),
                ("staging", "social-analytics-staging", "main-*".to_string(), false),
                ("prod", "social-analytics-prod", "v*".to_string(), true),
            ]
        );
        let prod = &pipeline.stages()[2];
        let policy = prod.approval.as_ref().unwrap();
        assert_eq!(policy.required, 1);
        assert_eq!(policy.expires_after, chrono::TimeDelta::hours(24));
        assert_eq!(policy.wait, chrono::TimeDelta::minutes(5));
        assert_eq!(policy.requires.as_ref().map(|s| s.as_str()), Some("staging"));
        assert!(!policy.approvers.is_empty());
        assert_eq!(
            prod.snapshot_before_deploy,
            [DbInstanceId::parse("social-analytics-db").unwrap()]
        );
    }

    #[test]
    fn stages_for_tag_follow_the_rules_in_order() {
        let pipeline = Pipeline::parse(FIXTURE).unwrap();
        let names = |tag: &str| {
            let tag = ImageTag::parse(tag).unwrap();
            pipeline
                .stages_for_tag(&tag)
                .iter()
                .map(|s| s.name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("latest"), ["dev"]);
        assert_eq!(names("main-4f2a9c1"), ["dev", "staging"]);
        assert_eq!(names("v1.4.0"), ["dev", "prod"]);
    }

    #[test]
    fn minimal_file_parses_with_defaults() {
        let pipeline = Pipeline::parse(MINIMAL).unwrap();
        assert!(pipeline.stages()[0].approval.is_none());
        assert!(pipeline.stages()[0].snapshot_before_deploy.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("tags = \"*\"", "tags = \"*\"\napprovals = true");
        let err = error_of(&text);
        assert!(err.contains("unknown field `approvals`"), "{err}");
    }

    const TWO_STAGES: &str = r#"
        [[application]]
        name = "backend"
        repository = "social-analytics/backend"
        services = [{ name = "backend-service", container = "api" }]

        [[stage]]
        name = "dev"
        cluster = "c-dev"
        tags = "*"

        [[stage]]
        name = "staging"
        cluster = "c-staging"
        tags = "main-*"

        [[stage]]
        name = "prod"
        cluster = "c-prod"
        tags = "v*"
        approval = true
        approvers = ["alice@example.com", "bob@example.com"]
    "#;

    #[test]
    fn approval_settings_default_and_require_the_stage_before() {
        let pipeline = Pipeline::parse(TWO_STAGES).unwrap();
        let policy = pipeline.stages()[2].approval.clone().unwrap();
        assert_eq!(policy.required, 1);
        assert_eq!(policy.requires.unwrap().as_str(), "staging");
        let named = Pipeline::parse(&TWO_STAGES.replace(
            "approval = true",
            "approval = true\nrequires = \"dev\"\napprovals_required = 2\nwait_minutes = 0",
        ))
        .unwrap();
        let policy = named.stages()[2].approval.clone().unwrap();
        assert_eq!((policy.required, policy.wait), (2, chrono::TimeDelta::zero()));
        assert_eq!(policy.requires.unwrap().as_str(), "dev");
    }

    #[test]
    fn approval_settings_are_checked_and_named() {
        let with = |extra: &str| error_of(&TWO_STAGES.replace("approval = true", &format!("approval = true\n{extra}")));
        assert_eq!(
            with("approvals_required = 3"),
            "pipeline file: stage[2].approvals_required: 3 is not between 1 and the 2 approvers named"
        );
        assert_eq!(
            with("approval_expires_hours = 169"),
            "pipeline file: stage[2].approval_expires_hours: 169 is not between 1 and 168 hours"
        );
        assert_eq!(
            with("requires = \"prod\""),
            "pipeline file: stage[2].requires: `prod` is not a stage before this one"
        );
        assert_eq!(
            error_of(&TWO_STAGES.replace("\"bob@example.com\"", "\"Alice@example.com\"")),
            "pipeline file: stage[2].approvers[1]: duplicate approver `Alice@example.com`"
        );
        assert!(
            error_of(&TWO_STAGES.replace("bob@example.com", "bob"))
                .starts_with("pipeline file: stage[2].approvers[1]: invalid approver")
        );
        assert_eq!(
            error_of(&TWO_STAGES.replace("approvers = [\"alice@example.com\", \"bob@example.com\"]", "")),
            "pipeline file: stage[2].approvers: a stage with `approval = true` needs at least one approver"
        );
        assert_eq!(
            error_of(&TWO_STAGES.replace("approval = true", "")),
            "pipeline file: stage[2].approvers: only a stage with `approval = true` takes approval settings"
        );
    }

    #[test]
    fn deploy_windows_and_freezes_parse_per_stage_and_name_their_errors() {
        let with = |lines: &str| format!("{MINIMAL}\n{lines}");
        let pipeline = Pipeline::parse(&with(
            r#"deploy_window = { days = ["mon", "tue", "wed", "thu"], from = "09:00", to = "16:00", timezone = "Europe/Berlin" }
            freeze = [
              { from = "2026-12-20T00:00:00Z", to = "2027-01-04T00:00:00Z", reason = "year-end freeze" },
              { from = 2027-03-01T00:00:00+01:00, to = 2027-03-02T00:00:00+01:00 },
            ]"#,
        ))
        .unwrap();
        let schedule = &pipeline.stages()[0].schedule;
        assert!(schedule.window.is_some());
        assert_eq!(schedule.freezes.len(), 2);
        assert_eq!(schedule.freezes[1].from.to_rfc3339(), "2027-02-28T23:00:00+00:00");
        assert_eq!(schedule.freezes[1].reason, "freeze");
        assert!(schedule.held("2026-12-24T10:00:00Z".parse().unwrap()).is_some());
        assert_eq!(
            Pipeline::parse(MINIMAL).unwrap().stages()[0].schedule,
            DeploySchedule::default()
        );

        assert_eq!(
            error_of(&with(
                r#"deploy_window = { days = ["mon"], from = "09:00", to = "16:00", timezone = "Berlin" }"#
            )),
            "pipeline file: stage[0].deploy_window.timezone: `Berlin` is not a time zone of the IANA database (e.g. Europe/Berlin, UTC)"
        );
        assert_eq!(
            error_of(&with(
                r#"freeze = [{ from = "2027-01-04T00:00:00Z", to = "2026-12-20T00:00:00Z" }]"#
            )),
            "pipeline file: stage[0].freeze[0].to: must be later than `from`"
        );
        assert!(
            error_of(&with(
                r#"freeze = [{ from = "2026-12-20", to = "2027-01-04T00:00:00Z" }]"#
            ))
            .starts_with("pipeline file: stage[0].freeze[0].from: `2026-12-20` is not a date and time")
        );
        assert!(
            error_of(&with(
                r#"deploy_window = { days = ["mon"], from = "09:00", to = "16:00", tz = "UTC" }"#
            ))
            .contains("unknown field `tz`")
        );
        assert_eq!(
            error_of(&with("rollback_approval = true")),
            "pipeline file: stage[0].rollback_approval: only a stage with `approval = true` takes approval settings"
        );
    }

    #[test]
    fn snapshot_policies_default_by_stage_and_name_their_errors() {
        let with = |section: &str| format!("{TWO_STAGES}\n{section}");
        let pipeline = Pipeline::parse(&with(
            r#"
            [snapshots]
            quota = 150
            [[snapshots.db]]
            name = "orders-dev"
            stage = "dev"
            [[snapshots.db]]
            name = "orders-prod"
            stage = "prod"
            keep_last = 5
            copy_to_region = "us-west-2"
            copy_kms_key_id = "alias/dr"
            "#,
        ))
        .unwrap();
        let settings = pipeline.snapshots();
        assert_eq!(
            (settings.quota.limit, settings.quota.warn_percent),
            (150, DEFAULT_QUOTA_WARN_PERCENT as usize)
        );
        let days = |db: &str| {
            pipeline
                .retention_of(&DbInstanceId::parse(db).unwrap())
                .map(|r| r.keep_for.num_days())
        };
        assert_eq!(days("orders-dev"), Some(7), "7 days where nobody approves");
        assert_eq!(days("orders-prod"), Some(30), "30 in a stage that needs approval");
        assert_eq!(days("anything-else"), None, "not this file's to prune");
        let prod = &settings.dbs[1];
        assert_eq!(prod.retention.keep_last, 5);
        let copy = prod.copy_to.as_ref().unwrap();
        assert_eq!(
            (copy.region.as_str(), copy.kms_key_id.as_deref()),
            ("us-west-2", Some("alias/dr"))
        );
        assert!(
            Pipeline::parse(TWO_STAGES).unwrap().snapshots().dbs.is_empty(),
            "optional"
        );

        for (section, error) in [
            (
                "[[snapshots.db]]\nname = \"db\"\nstage = \"qa\"",
                "pipeline file: snapshots.db[0].stage: no stage is named `qa`",
            ),
            (
                "[[snapshots.db]]\nname = \"db\"\nstage = \"dev\"\nkeep_days = 0",
                "pipeline file: snapshots.db[0].keep_days: 0 is not between 1 and 3650 days",
            ),
            (
                "[[snapshots.db]]\nname = \"db\"\nstage = \"dev\"\ncopy_kms_key_id = \"alias/dr\"",
                "pipeline file: snapshots.db[0].copy_kms_key_id: names a key for a copy, but copy_to_region names no region",
            ),
            (
                "[[snapshots.db]]\nname = \"db\"\nstage = \"dev\"\n[[snapshots.db]]\nname = \"DB\"\nstage = \"dev\"",
                "pipeline file: snapshots.db[1].name: duplicate snapshot policy for DB `DB`",
            ),
            (
                "[snapshots]\nwarn_at_percent = 101",
                "pipeline file: snapshots.warn_at_percent: 101 is not between 1 and 100 percent",
            ),
        ] {
            assert_eq!(error_of(&with(section)), error, "{section}");
        }
    }

    #[test]
    fn cost_settings_default_and_name_their_errors() {
        let with = |section: &str| format!("{TWO_STAGES}\n{section}");
        let defaults = Pipeline::parse(TWO_STAGES).unwrap();
        let cost = defaults.cost();
        assert!(cost.cost_explorer && cost.tag.is_none() && cost.fixed.is_empty());
        assert_eq!(cost.divergence, 0.25);
        let set = Pipeline::parse(&with(
            "[cost]\ntag = \"app=backend\"\nfixed = { alb = 1 }\nlog_ingestion_gb = 5\n[cost.prices]\nfixed_hour.alb = 0.03",
        ))
        .unwrap();
        assert_eq!(set.cost().tag.as_ref().unwrap().to_string(), "app=backend");
        assert_eq!(set.cost().fixed, vec![("alb".to_owned(), 1)]);
        assert_eq!(set.cost().prices.fixed_hour["alb"], 0.03);
        for (section, error) in [
            (
                "[cost]\ntag = \"backend\"",
                "pipeline file: cost.tag: `backend` is not `key=value`",
            ),
            (
                "[cost]\nfixed = { ALB = 1 }",
                "pipeline file: cost.fixed.ALB: an item's name is lower-case letters, digits and `_` (a key of the price table's `fixed_hour`)",
            ),
            (
                "[cost]\nfixed = { alb = -1 }",
                "pipeline file: cost.fixed.alb: -1 is not between 0 and 1000 items",
            ),
            (
                "[cost]\ndivergence_percent = 0",
                "pipeline file: cost.divergence_percent: 0 is not between 1 and 1000 percent",
            ),
            (
                "[cost.prices]\nrds_storage_gb_month.gp3 = -0.1",
                "pipeline file: cost.prices.rds_storage_gb_month.\"gp3\": -0.1 is not a price in dollars (0 or more)",
            ),
        ] {
            assert_eq!(error_of(&with(section)), error, "{section}");
        }
    }

    #[test]
    fn every_database_is_listed_once_with_its_stage() {
        let pipeline = Pipeline::parse(FIXTURE).unwrap();
        let dbs: Vec<String> = pipeline
            .databases()
            .iter()
            .map(|(stage, db)| format!("{stage}/{db}"))
            .collect();
        assert_eq!(dbs, ["prod/social-analytics-db"]);
    }

    #[test]
    fn bad_glob_names_the_field() {
        let err = error_of(&MINIMAL.replace("tags = \"*\"", "tags = \"v[0-9]*\""));
        assert!(
            err.starts_with("pipeline file: stage[0].tags: invalid tag rule `v[0-9]*`"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_stage_names_the_field() {
        let text = format!("{MINIMAL}\n[[stage]]\nname = \"dev\"\ncluster = \"other\"\ntags = \"*\"\n");
        assert_eq!(error_of(&text), "pipeline file: stage[1].name: duplicate stage `dev`");
    }

    #[test]
    fn missing_container_is_named() {
        let err = error_of(&MINIMAL.replace(", container = \"api\"", ""));
        assert!(err.contains("missing field `container`"), "{err}");
    }

    #[test]
    fn bad_names_name_the_field() {
        let err = error_of(&MINIMAL.replace("social-analytics/backend", "Social/Backend"));
        assert!(
            err.starts_with("pipeline file: application[0].repository: invalid repository name"),
            "{err}"
        );
        let err = error_of(&MINIMAL.replace("container = \"api\"", "container = \"api server\""));
        assert!(
            err.starts_with("pipeline file: application[0].services[0].container:"),
            "{err}"
        );
    }

    #[test]
    fn a_service_belongs_to_one_application() {
        let text = format!(
            "{MINIMAL}\n[[application]]\nname = \"other\"\nrepository = \"x/other\"\nservices = [{{ name = \"backend-service\", container = \"c\" }}]\n"
        );
        assert_eq!(
            error_of(&text),
            "pipeline file: application[1].services[0].name: duplicate service `backend-service`"
        );
    }

    #[test]
    fn two_stages_cannot_share_a_cluster() {
        let text = format!("{MINIMAL}\n[[stage]]\nname = \"qa\"\ncluster = \"social-analytics-dev\"\ntags = \"*\"\n");
        assert_eq!(
            error_of(&text),
            "pipeline file: stage[1].cluster: duplicate cluster `social-analytics-dev`"
        );
    }

    #[test]
    fn bad_snapshot_instance_is_named() {
        let text = MINIMAL.replace("tags = \"*\"", "tags = \"*\"\nsnapshot_before_deploy = [\"db--1\"]");
        assert!(error_of(&text).starts_with("pipeline file: stage[0].snapshot_before_deploy[0]:"));
    }

    #[test]
    fn alarms_guard_an_application_in_one_stage_with_a_watch_window() {
        let pipeline = Pipeline::parse(FIXTURE).unwrap();
        let (dev, app) = pipeline.guarded_by("backend-dev-error-rate").unwrap();
        assert_eq!((dev.name.as_str(), app.name.as_str()), ("dev", "backend"));
        assert_eq!(dev.alarms.len(), 3);
        assert_eq!(
            dev.watch_window,
            chrono::TimeDelta::minutes(DEFAULT_WATCH_WINDOW_MINUTES)
        );
        let (prod, _) = pipeline.guarded_by("backend-prod-health").unwrap();
        assert_eq!(
            (prod.name.as_str(), prod.watch_window),
            ("prod", chrono::TimeDelta::minutes(30))
        );
        assert!(pipeline.guarded_by("unrelated").is_none());
        assert_eq!(pipeline.alarm_names().count(), 8);
    }

    #[test]
    fn two_applications_in_one_stage_each_have_their_own_alarms() {
        let text = MINIMAL.replace(
            "[[stage]]",
            "[[application]]\nname = \"frontend\"\nrepository = \"social-analytics/frontend\"\nservices = [{ name = \"web\", container = \"web\" }]\n\n[[stage]]",
        ) + "alarms.frontend = [\"web-5xx\"]\nalarms.backend = [\"api-5xx\"]\n";
        let pipeline = Pipeline::parse(&text).unwrap();
        assert_eq!(pipeline.guarded_by("web-5xx").unwrap().1.name.as_str(), "frontend");
        assert_eq!(pipeline.guarded_by("api-5xx").unwrap().1.name.as_str(), "backend");
    }

    #[test]
    fn an_alarm_cannot_guard_twice_nor_an_unknown_application() {
        let text = format!(
            "{}\n[[stage]]\nname = \"qa\"\ncluster = \"qa\"\ntags = \"*\"\nalarms.backend = [\"shared-5xx\"]\n",
            MINIMAL.replace("tags = \"*\"", "tags = \"*\"\nalarms.backend = [\"shared-5xx\"]")
        );
        assert_eq!(
            error_of(&text),
            "pipeline file: stage[1].alarms.backend[0]: duplicate alarm `shared-5xx`"
        );
        let unknown = MINIMAL.replace("tags = \"*\"", "tags = \"*\"\nalarms.frontend = [\"web-5xx\"]");
        assert_eq!(
            error_of(&unknown),
            "pipeline file: stage[0].alarms.frontend: no application is named `frontend`"
        );
    }

    #[test]
    fn success_is_announced_for_production_unless_a_stage_says_otherwise() {
        let pipeline = Pipeline::parse(FIXTURE).unwrap();
        let announced: Vec<_> = pipeline.stages().iter().map(|s| s.notify_success).collect();
        assert_eq!(announced, [false, false, true]);
        let quiet = FIXTURE.replace(
            "watch_window_minutes = 30",
            "watch_window_minutes = 30\nnotify_success = false",
        );
        assert!(
            Pipeline::parse(&quiet)
                .unwrap()
                .stages()
                .iter()
                .all(|s| !s.notify_success)
        );
    }

    #[test]
    fn a_watch_window_out_of_range_names_the_field() {
        let text = MINIMAL.replace("tags = \"*\"", "tags = \"*\"\nwatch_window_minutes = 0");
        assert_eq!(
            error_of(&text),
            "pipeline file: stage[0].watch_window_minutes: 0 is not between 1 and 1440 minutes"
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(error_of("[[stage]\n").starts_with("pipeline file: "));
    }
}
