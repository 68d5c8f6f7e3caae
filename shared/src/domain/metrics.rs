//! Delivery metrics, from the records alone: what each deployment's end emits (CloudWatch, by
//! stage and application), and the four DORA measures over a period with the bands of the
//! 2023 Accelerate State of DevOps report's performance clusters.

use super::deployment::{Deployment, Kind, Status};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A deploy that reached SUCCEEDED (ECS completed it).
pub const DEPLOYMENTS_SUCCEEDED: &str = "DeploymentsSucceeded";
/// A deploy ECS reported FAILED.
pub const DEPLOYMENTS_FAILED: &str = "DeploymentsFailed";
/// A deploy rolled back by an alarm or its own failure (a function's doing; an operator's
/// `pipectl rollback` runs outside Lambda, and its rollback shows in `TimeToRestore`).
pub const DEPLOYMENTS_ROLLED_BACK: &str = "DeploymentsRolledBack";
/// A rollback ECS could not complete.
pub const ROLLBACKS_FAILED: &str = "RollbacksFailed";
/// Seconds from the push to SUCCEEDED in the stage.
pub const LEAD_TIME: &str = "LeadTime";
/// Seconds from the rollback's start (seconds after the alarm or failure it answers, or the
/// operator's request) to its SUCCEEDED.
pub const TIME_TO_RESTORE: &str = "TimeToRestore";
/// Seconds from an approval request to its approval.
pub const APPROVAL_WAIT: &str = "ApprovalWait";
/// Approval requests in flight (awaiting a vote, or approved and not yet deployed), each
/// minute, by the promotion's function.
pub const APPROVALS_WAITING: &str = "ApprovalsWaiting";

/// A break-glass deploy started (one per service), by the break-glass function.
pub const DEPLOYMENTS_EMERGENCY: &str = "DeploymentsEmergency";

/// Every metric the functions emit by stage and application: what the dashboard may plot.
pub const DEPLOYMENT_METRICS: [&str; 8] = [
    DEPLOYMENTS_SUCCEEDED,
    DEPLOYMENTS_EMERGENCY,
    DEPLOYMENTS_FAILED,
    DEPLOYMENTS_ROLLED_BACK,
    ROLLBACKS_FAILED,
    LEAD_TIME,
    TIME_TO_RESTORE,
    APPROVAL_WAIT,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
}

impl Measured {
    pub fn count(name: &'static str, count: u64) -> Self {
        Measured {
            name,
            value: count as f64,
            unit: Unit::Count,
        }
    }

    pub fn seconds(name: &'static str, seconds: f64) -> Self {
        Measured {
            name,
            value: seconds.max(0.0),
            unit: Unit::Seconds,
        }
    }

    fn between(name: &'static str, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self::seconds(name, (to - from).num_milliseconds() as f64 / 1000.0)
    }
}

/// What a deployment that just ended (SUCCEEDED or FAILED) emits.
pub fn ending(record: &Deployment) -> Vec<Measured> {
    let ended_at = record.completed_at.unwrap_or(record.updated_at);
    match (&record.kind, record.status) {
        (Kind::Deploy, Status::Succeeded) => vec![
            Measured::count(DEPLOYMENTS_SUCCEEDED, 1),
            Measured::between(LEAD_TIME, record.image.pushed_at, ended_at),
        ],
        (Kind::Deploy, Status::Failed) => vec![Measured::count(DEPLOYMENTS_FAILED, 1)],
        (Kind::Rollback { .. }, Status::Succeeded) => {
            vec![Measured::between(TIME_TO_RESTORE, record.requested_at, ended_at)]
        }
        (Kind::Rollback { .. }, Status::Failed) => vec![Measured::count(ROLLBACKS_FAILED, 1)],
        _ => Vec::new(),
    }
}

/// What a deploy marked ROLLED_BACK emits.
pub fn rolled_back() -> Vec<Measured> {
    vec![Measured::count(DEPLOYMENTS_ROLLED_BACK, 1)]
}

/// What an approval emits once its promotion begins.
pub fn approval_wait(requested_at: DateTime<Utc>, approved_at: DateTime<Utc>) -> Vec<Measured> {
    vec![Measured::between(APPROVAL_WAIT, requested_at, approved_at)]
}

/// A DORA rating band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    Elite,
    High,
    Medium,
    Low,
}

/// One measure's figure and band; `None` where the period holds nothing to measure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rated<T> {
    pub value: Option<T>,
    pub band: Option<Band>,
}

/// The four DORA measures of one application in one stage over `days`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dora {
    pub days: i64,
    /// Releases deployed (one per pushed image, whatever its services).
    pub releases: usize,
    /// Releases that failed or were rolled back.
    pub failed_releases: usize,
    /// Releases per day.
    pub deployment_frequency: Rated<f64>,
    /// Median hours from the push to SUCCEEDED.
    pub lead_time_hours: Rated<f64>,
    /// Share of releases that failed or were rolled back, in percent.
    pub change_failure_rate: Rated<f64>,
    /// Median hours from a rollback's start to its SUCCEEDED.
    pub time_to_restore_hours: Rated<f64>,
}

/// The DORA measures of `records` (one application's in one stage, any order) whose deploys
/// or rollbacks started in the `days` before `now`.
pub fn dora(records: &[Deployment], days: i64, now: DateTime<Utc>) -> Dora {
    let since = now - TimeDelta::days(days);
    // A release is one push: its services' records share the image's digest and push time.
    let mut releases: BTreeMap<ReleaseKey, Release> = BTreeMap::new();
    // A release's restore: from its first rollback's start to its last one's end.
    let mut restores: BTreeMap<ReleaseKey, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for record in records
        .iter()
        .filter(|r| r.requested_at >= since && r.requested_at <= now)
    {
        let key = (record.image.pushed_at, record.image.digest.as_str());
        match record.kind {
            Kind::Deploy => {
                let release = releases.entry(key).or_default();
                match record.status {
                    Status::Succeeded => {
                        release.completed(record.completed_at.unwrap_or(record.updated_at) - record.image.pushed_at)
                    }
                    Status::RolledBack if record.completed_at.is_some() => {
                        release.failed = true;
                        release.completed(record.completed_at.unwrap_or(record.updated_at) - record.image.pushed_at);
                    }
                    Status::Failed | Status::RolledBack => release.failed = true,
                    // Still in flight (or never deployed): not counted until it ends.
                    _ => {}
                }
            }
            Kind::Rollback { .. } if record.status == Status::Succeeded => {
                let ended = record.completed_at.unwrap_or(record.updated_at);
                let restore = restores.entry(key).or_insert((record.requested_at, ended));
                restore.0 = restore.0.min(record.requested_at);
                restore.1 = restore.1.max(ended);
            }
            Kind::Rollback { .. } => {}
        }
    }
    let ended: Vec<&Release> = releases
        .values()
        .filter(|r| r.failed || r.lead_time.is_some())
        .collect();
    let deployed = ended.iter().filter(|r| r.lead_time.is_some()).count();
    let failed = ended.iter().filter(|r| r.failed).count();
    let frequency = deployed as f64 / days.max(1) as f64;
    let lead_times: Vec<f64> = ended.iter().filter_map(|r| r.lead_time).map(hours).collect();
    let restore_times: Vec<f64> = restores.values().map(|(from, to)| hours(*to - *from)).collect();
    let failure_rate = (!ended.is_empty()).then(|| 100.0 * failed as f64 / ended.len() as f64);
    let lead_time = median(lead_times);
    let restore = median(restore_times);
    Dora {
        days,
        releases: ended.len(),
        failed_releases: failed,
        deployment_frequency: Rated {
            value: Some(frequency),
            band: Some(frequency_band(frequency)),
        },
        lead_time_hours: Rated {
            value: lead_time,
            band: lead_time.map(|h| hours_band(h, [24.0, 24.0 * 7.0, 24.0 * 30.0])),
        },
        change_failure_rate: Rated {
            value: failure_rate,
            band: failure_rate.map(failure_band),
        },
        time_to_restore_hours: Rated {
            value: restore,
            band: restore.map(|h| hours_band(h, [1.0, 24.0, 24.0 * 7.0])),
        },
    }
}

/// A release: its push time and digest.
type ReleaseKey<'a> = (DateTime<Utc>, &'a str);

#[derive(Default)]
struct Release {
    /// The longest of its services' push-to-SUCCEEDED times.
    lead_time: Option<TimeDelta>,
    failed: bool,
}

impl Release {
    fn completed(&mut self, took: TimeDelta) {
        self.lead_time = Some(self.lead_time.map_or(took, |known| known.max(took)));
    }
}

fn hours(delta: TimeDelta) -> f64 {
    delta.num_seconds().max(0) as f64 / 3600.0
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(match values.len() % 2 {
        1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    })
}

/// Elite: on demand (more than once a day); high: once a day to once a week; medium: once a
/// week to once a month; low: less often.
fn frequency_band(per_day: f64) -> Band {
    match per_day {
        f if f > 1.0 => Band::Elite,
        f if f >= 1.0 / 7.0 => Band::High,
        f if f >= 1.0 / 30.0 => Band::Medium,
        _ => Band::Low,
    }
}

/// Below the first limit elite, the second high, the third medium, else low.
fn hours_band(hours: f64, limits: [f64; 3]) -> Band {
    match hours {
        h if h < limits[0] => Band::Elite,
        h if h < limits[1] => Band::High,
        h if h < limits[2] => Band::Medium,
        _ => Band::Low,
    }
}

/// Elite: at most 5 %; high: 10 %; medium: 15 %; low: more.
fn failure_band(percent: f64) -> Band {
    match percent {
        p if p <= 5.0 => Band::Elite,
        p if p <= 10.0 => Band::High,
        p if p <= 15.0 => Band::Medium,
        _ => Band::Low,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployment::DeploymentId;
    use crate::domain::fixtures::deployment;
    use crate::domain::names::ImageDigest;

    fn at(day: i64, hour: i64) -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::days(day) + TimeDelta::hours(hour)
    }

    /// A deploy of image `n`, pushed on `day` at midnight, requested an hour later, ended
    /// `took` hours after the push in `status`.
    fn deploy(n: u8, service: &str, day: i64, took: i64, status: Status) -> Deployment {
        let mut d = deployment(n, Kind::Deploy, status, None);
        d.id = DeploymentId::from_stored(format!("dep-{n}-{service}"));
        d.service = crate::domain::names::ServiceName::parse(service).unwrap();
        d.image.digest = ImageDigest::parse(format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap();
        d.image.pushed_at = at(day, 0);
        d.requested_at = at(day, 1);
        d.completed_at = matches!(status, Status::Succeeded | Status::RolledBack).then(|| at(day, took));
        d
    }

    #[test]
    fn an_ending_emits_its_counts_and_times() {
        let ok = deploy(1, "api", 0, 3, Status::Succeeded);
        assert_eq!(
            ending(&ok),
            [
                Measured::count(DEPLOYMENTS_SUCCEEDED, 1),
                Measured::seconds(LEAD_TIME, 3.0 * 3600.0)
            ]
        );
        assert_eq!(
            ending(&deploy(1, "api", 0, 3, Status::Failed)),
            [Measured::count(DEPLOYMENTS_FAILED, 1)]
        );
        let mut rollback = deploy(1, "api", 0, 2, Status::Succeeded);
        rollback.kind = Kind::Rollback {
            of: ok.id.clone(),
            cause: "alarm".into(),
        };
        assert_eq!(ending(&rollback), [Measured::seconds(TIME_TO_RESTORE, 3600.0)]);
        assert!(ending(&deploy(1, "api", 0, 3, Status::Deploying)).is_empty());
    }

    #[test]
    fn dora_counts_releases_not_services_and_rates_them() {
        let mut records = Vec::new();
        // Ten releases over ten days, two services each, deployed two hours after the push.
        for n in 0..10u8 {
            for service in ["api", "worker"] {
                records.push(deploy(n + 1, service, n as i64, 2, Status::Succeeded));
            }
        }
        // One rolled back after it completed, restored in 30 minutes.
        records[0].status = Status::RolledBack;
        let mut rollback = deploy(1, "api", 0, 0, Status::Succeeded);
        rollback.kind = Kind::Rollback {
            of: records[0].id.clone(),
            cause: "alarm".into(),
        };
        rollback.id = DeploymentId::from_stored("rbk-1".into());
        rollback.requested_at = at(0, 3);
        rollback.completed_at = Some(at(0, 3) + TimeDelta::minutes(30));
        records.push(rollback);
        // And one still waiting: not counted.
        records.push(deploy(20, "api", 10, 0, Status::AwaitingApproval));

        let figures = dora(&records, 30, at(12, 0));
        assert_eq!((figures.releases, figures.failed_releases), (10, 1));
        assert_eq!(figures.deployment_frequency.value, Some(10.0 / 30.0));
        assert_eq!(figures.deployment_frequency.band, Some(Band::High));
        assert_eq!(figures.lead_time_hours.value, Some(2.0));
        assert_eq!(figures.lead_time_hours.band, Some(Band::Elite));
        assert_eq!(figures.change_failure_rate.value, Some(10.0));
        assert_eq!(figures.change_failure_rate.band, Some(Band::High));
        assert_eq!(figures.time_to_restore_hours.value, Some(0.5));
        assert_eq!(figures.time_to_restore_hours.band, Some(Band::Elite));

        let older = dora(&records, 3, at(12, 0));
        assert_eq!(older.releases, 1, "only what started in the period");
        let empty = dora(&[], 30, at(12, 0));
        assert_eq!(empty.deployment_frequency.band, Some(Band::Low));
        assert_eq!(
            (empty.lead_time_hours.value, empty.change_failure_rate.band),
            (None, None)
        );
    }

    #[test]
    fn the_bands_follow_the_2023_report() {
        assert_eq!(frequency_band(3.0), Band::Elite);
        assert_eq!(frequency_band(1.0), Band::High);
        assert_eq!(frequency_band(1.0 / 7.0), Band::High);
        assert_eq!(frequency_band(0.1), Band::Medium);
        assert_eq!(frequency_band(0.01), Band::Low);
        assert_eq!(hours_band(0.5, [1.0, 24.0, 168.0]), Band::Elite);
        assert_eq!(hours_band(200.0, [1.0, 24.0, 168.0]), Band::Low);
        assert_eq!(failure_band(5.0), Band::Elite);
        assert_eq!(failure_band(15.0), Band::Medium);
        assert_eq!(failure_band(40.0), Band::Low);
    }
}
