//! snapshot: on its schedule, a snapshot of every DB the pipeline file's `[snapshots]` names,
//! under an id the tick derives (a redelivered tick adopts it); our expired snapshots pruned,
//! here and in the disaster-recovery region; the region's manual-snapshot quota kept; each new
//! snapshot copied to its DB's `copy_to_region`. What went wrong is told once per tick.

use super::{deliver_notice, keep_notice};
use crate::domain::names::DbInstanceId;
use crate::domain::names::Region;
use crate::domain::notice::snapshot_tick_notice;
use crate::domain::pipeline::{CopyTarget, Pipeline, SnapshotPolicy};
use crate::domain::promotion::{SnapshotId, SnapshotState};
use crate::domain::retention::{
    APPROVAL_TAG, CREATED_BY, EXPIRES_TAG, KIND_TAG, OurSnapshot, POLICY_TAG, Progress, SnapshotKind, expired,
    quota_plan,
};
use crate::lambda::errors::ServiceError;
use crate::ports::{Approvals, ListedSnapshot, Notifier, Outbox, SnapshotAdmin, SnapshotError, Snapshots};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use std::collections::HashSet;

/// AWS lets five snapshot copies run at once into one destination region.
pub const COPIES_IN_FLIGHT: usize = 5;

pub struct ScheduledSnapshots<S, R, N> {
    pub pipeline: Pipeline,
    pub records: S,
    pub rds: R,
    pub notifier: N,
}

/// What one tick did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SnapshotRun {
    /// Snapshots this tick made, or found made by an earlier delivery of it.
    pub taken: Vec<String>,
    /// DBs with no snapshot this tick, and why.
    pub skipped: Vec<String>,
    /// Our expired snapshots deleted (`<id>`, or `<id> in <region>`).
    pub pruned: Vec<String>,
    /// Copies started (`<id> to <region>`).
    pub copied: Vec<String>,
    /// Manual snapshots in the region after the tick, and the quota.
    pub quota_used: usize,
    pub quota_limit: usize,
}

impl<S, R, N> ScheduledSnapshots<S, R, N>
where
    S: Approvals + Outbox,
    R: SnapshotAdmin,
    N: Notifier,
{
    /// The Lambda entry point: an EventBridge schedule's event, whose `time` is the tick.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<SnapshotRun, SnapshotRunError> {
        let tick = tick_of(&event.payload).map_err(SnapshotRunError::BadEvent)?;
        let run = self.run(tick, Utc::now()).await.map_err(SnapshotRunError::Service)?;
        tracing::info!(taken = run.taken.len(), pruned = run.pruned.len(), copied = run.copied.len(), skipped = ?run.skipped, quota_used = run.quota_used, "snapshot run");
        Ok(run)
    }

    /// The tick at `tick` (the schedule's event time), run at `now`. RDS errors worth a retry
    /// fail the tick once the rest is done; the retry derives the same ids and repeats nothing.
    pub async fn run(&self, tick: DateTime<Utc>, now: DateTime<Utc>) -> Result<SnapshotRun, ServiceError> {
        let settings = self.pipeline.snapshots();
        let mut run = SnapshotRun {
            quota_limit: settings.quota.limit,
            ..SnapshotRun::default()
        };
        let mut retry = None;
        let mut problems = Vec::new();

        let mut listed = self.rds.manual_snapshots(None).await?;
        // The recovery regions' snapshots first: a source whose copy is still running there
        // must not be pruned here.
        let mut elsewhere = Vec::new();
        for region in copy_regions(&self.pipeline) {
            match self.rds.manual_snapshots(Some(region)).await {
                Ok(there) => elsewhere.push((region, there)),
                Err(err) => {
                    retry.get_or_insert(err);
                }
            }
        }
        let being_copied: HashSet<SnapshotId> = elsewhere
            .iter()
            .flat_map(|(_, there)| there)
            .filter_map(|s| ours(s, now))
            .filter(|s| s.progress == Progress::InProgress)
            .map(|s| s.id)
            .collect();
        let pruned = self
            .prune(&listed, None, &being_copied, now, &mut run, &mut retry)
            .await?;
        listed.retain(|s| !pruned.contains(&s.id));
        let present: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        let mut due = Vec::new();
        for policy in &settings.dbs {
            let id = SnapshotId::scheduled(&policy.db, tick);
            if present.contains(id.as_str()) {
                run.taken.push(id.to_string());
            } else {
                due.push(policy.db.clone());
            }
        }
        // RDS counts manual instance snapshots against this quota (cluster snapshots have their own).
        let used = listed.iter().filter(|s| !s.cluster).count();
        let turn = usize::try_from(tick.date_naive().num_days_from_ce()).unwrap_or(0);
        let plan = quota_plan(&due, used, settings.quota, turn);
        for db in &plan.left_out {
            run.skipped.push(format!("{db}: the manual-snapshot quota is full"));
        }
        if !plan.left_out.is_empty() {
            problems.push(format!(
                "The region holds {} manual snapshots of its quota of {}, even after pruning ours: no snapshot of {}. Delete snapshots no longer needed (other tools' count too), or ask AWS for a higher quota and raise `snapshots.quota`.",
                used,
                settings.quota.limit,
                plan.left_out.iter().map(|db| db.as_str()).collect::<Vec<_>>().join(", ")
            ));
        } else if plan.warn {
            problems.push(format!(
                "The region holds {} manual snapshots, of a quota of {} ({}% or more): prune or raise the quota before it is full.",
                plan.used_after, settings.quota.limit, settings.quota.warn_percent
            ));
        }
        // Aurora cluster snapshots have a quota of their own (RDS's default is 100 too): warned
        // alike; one RDS refuses at that limit is told as any refused snapshot is.
        let cluster_used = listed.iter().filter(|s| s.cluster).count();
        if cluster_used * 100 >= settings.quota.limit * settings.quota.warn_percent {
            problems.push(format!(
                "The region holds {cluster_used} manual cluster snapshots, of their own quota (taken as {}, {}% or more): prune or raise the quota before it is full.",
                settings.quota.limit, settings.quota.warn_percent
            ));
        }
        let mut made = 0;
        for db in &plan.take {
            let policy = settings
                .dbs
                .iter()
                .find(|p| p.db == *db)
                .expect("planned from the policies");
            let id = SnapshotId::scheduled(db, tick);
            match take_scheduled(&self.rds, policy, tick, now).await {
                Ok(SnapshotState::Creating | SnapshotState::Available) => {
                    made += 1;
                    run.taken.push(id.to_string());
                }
                Ok(SnapshotState::NotStarted { why } | SnapshotState::Failed { why })
                | Err(SnapshotError::Refused(why)) => {
                    run.skipped.push(format!("{db}: {why}"));
                    problems.push(format!("No snapshot of {db} this time: {why}."));
                }
                Err(err @ SnapshotError::Transient(_)) => {
                    run.skipped.push(format!("{db}: {err}"));
                    retry.get_or_insert(err);
                }
            }
        }
        run.quota_used = used + made;

        for (region, there) in &elsewhere {
            self.prune_and_copy(region, there, &listed, now, &mut run, &mut problems, &mut retry)
                .await?;
        }

        if !problems.is_empty() {
            let notice = snapshot_tick_notice(tick, &problems);
            let key = keep_notice(&self.records, format!("snapshots|{}", tick.to_rfc3339()), &notice).await?;
            deliver_notice(&self.records, &self.notifier, &key).await?;
        }
        match retry {
            Some(err) => Err(err.into()),
            None => Ok(run),
        }
    }

    /// Deletes our expired snapshots among `listed` (in `region`, or the home region); returns
    /// the ids of those gone.
    async fn prune(
        &self,
        listed: &[ListedSnapshot],
        region: Option<&Region>,
        being_copied: &HashSet<SnapshotId>,
        now: DateTime<Utc>,
        run: &mut SnapshotRun,
        retry: &mut Option<SnapshotError>,
    ) -> Result<HashSet<String>, ServiceError> {
        let ours: Vec<(OurSnapshot, &ListedSnapshot)> =
            listed.iter().filter_map(|l| Some((ours(l, now)?, l))).collect();
        let mut in_use = self.in_use(&ours, now).await?;
        in_use.extend(being_copied.iter().cloned());
        let snapshots: Vec<OurSnapshot> = ours.iter().map(|(o, _)| o.clone()).collect();
        let mut pruned = HashSet::new();
        for gone in expired(&snapshots, |db| self.pipeline.retention_of(db), &in_use, now) {
            let listed = ours.iter().find(|(o, _)| o.id == gone.id).expect("from the list").1;
            match self.rds.delete_snapshot(listed, region).await {
                Ok(()) => {
                    pruned.insert(gone.id.to_string());
                    run.pruned.push(match region {
                        Some(region) => format!("{} in {region}", gone.id),
                        None => gone.id.to_string(),
                    });
                }
                Err(err) => {
                    tracing::error!(snapshot = %gone.id, error = %err, "expired snapshot not deleted");
                    retry.get_or_insert(err);
                }
            }
        }
        Ok(pruned)
    }

    /// Pre-deployment snapshots still guarding a deploy: its request in flight, or deployed
    /// and inside its stage's watch window. A request no longer on record guards nothing.
    async fn in_use(
        &self,
        ours: &[(OurSnapshot, &ListedSnapshot)],
        now: DateTime<Utc>,
    ) -> Result<HashSet<SnapshotId>, ServiceError> {
        let mut in_use = HashSet::new();
        for (snapshot, listed) in ours.iter().filter(|(o, _)| o.kind == SnapshotKind::PreDeploy) {
            let Some(id) = listed
                .tag(APPROVAL_TAG)
                .and_then(crate::domain::approval::ApprovalId::parse)
            else {
                continue;
            };
            let Some(request) = self.records.get_approval(&id).await? else {
                continue;
            };
            let watch = self
                .pipeline
                .stage(&request.stage)
                .map(|s| s.watch_window)
                .unwrap_or_default();
            let deployed_at = request.promotion.as_ref().and_then(|p| p.deployed_at);
            if request.in_flight() || deployed_at.is_some_and(|at| now < at + watch) {
                in_use.insert(snapshot.id.clone());
            }
        }
        Ok(in_use)
    }

    /// In recovery region `region` (holding `there`): ours pruned by the same retention, then
    /// each available snapshot of ours at home (`listed`) whose DB copies there and that is
    /// missing there copied, newest first, at most five copies in flight. A copy RDS refuses
    /// (an encrypted snapshot without `copy_kms_key_id`, the region's quota) is told, not retried.
    #[allow(clippy::too_many_arguments)]
    async fn prune_and_copy(
        &self,
        region: &Region,
        there: &[ListedSnapshot],
        listed: &[ListedSnapshot],
        now: DateTime<Utc>,
        run: &mut SnapshotRun,
        problems: &mut Vec<String>,
        retry: &mut Option<SnapshotError>,
    ) -> Result<(), ServiceError> {
        let pruned = self
            .prune(there, Some(region), &HashSet::new(), now, run, retry)
            .await?;
        let there: Vec<&ListedSnapshot> = there.iter().filter(|s| !pruned.contains(&s.id)).collect();
        let present: HashSet<&str> = there.iter().map(|s| s.id.as_str()).collect();
        let in_flight = there
            .iter()
            .filter(|s| ours(s, now).is_some_and(|o| o.progress == Progress::InProgress))
            .count();
        let mut missing: Vec<(&ListedSnapshot, OurSnapshot, &CopyTarget)> = listed
            .iter()
            .filter(|l| l.status == "available" && !present.contains(l.id.as_str()))
            .filter_map(|l| {
                let ours = ours(l, now)?;
                let policy = self.pipeline.snapshots().dbs.iter().find(|p| p.db == ours.db)?;
                let to = policy.copy_to.as_ref().filter(|to| to.region == *region)?;
                Some((l, ours, to))
            })
            .collect();
        missing.sort_by_key(|(_, ours, _)| std::cmp::Reverse(ours.created_at));
        for (source, _, to) in missing.into_iter().take(COPIES_IN_FLIGHT.saturating_sub(in_flight)) {
            if source.encrypted && to.kms_key_id.is_none() {
                problems.push(format!(
                    "{} is encrypted: set copy_kms_key_id (a key in {region}) to copy it there.",
                    source.id
                ));
                continue;
            }
            // RDS refuses a key for an unencrypted source, and tags under `aws:`.
            let to = CopyTarget {
                region: to.region.clone(),
                kms_key_id: to.kms_key_id.clone().filter(|_| source.encrypted),
            };
            let tags: Vec<(&str, &str)> = source
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("aws:"))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match self.rds.copy_snapshot(source, &to, &tags).await {
                Ok(_) => run.copied.push(format!("{} to {region}", source.id)),
                Err(SnapshotError::Refused(why)) => {
                    problems.push(format!("{} was not copied to {region}: {why}.", source.id));
                }
                Err(err) => {
                    tracing::error!(snapshot = %source.id, %region, error = %err, "snapshot not copied");
                    retry.get_or_insert(err);
                }
            }
        }
        Ok(())
    }
}

/// The regions the pipeline file copies snapshots to, each once.
pub fn copy_regions(pipeline: &Pipeline) -> Vec<&Region> {
    let mut regions: Vec<&Region> = pipeline
        .snapshots()
        .dbs
        .iter()
        .filter_map(|p| p.copy_to.as_ref().map(|c| &c.region))
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

/// Takes (or adopts) the snapshot of `policy`'s DB for the tick at `tick`, tagged as ours: the
/// run's step for each DB, and `pipectl snapshot now`.
pub async fn take_scheduled<R: Snapshots>(
    rds: &R,
    policy: &SnapshotPolicy,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<SnapshotState, SnapshotError> {
    let id = SnapshotId::scheduled(&policy.db, tick);
    let expires = (now + policy.retention.keep_for).format("%Y-%m-%d").to_string();
    let tags = [
        CREATED_BY,
        (KIND_TAG, SnapshotKind::Scheduled.tag()),
        (POLICY_TAG, policy.db.as_str()),
        (EXPIRES_TAG, expires.as_str()),
    ];
    rds.take_snapshot(&policy.db, &id, &tags).await
}

/// The tick a schedule's event stands for: its `time`. Anything but a scheduled event from
/// EventBridge is refused.
pub fn tick_of(payload: &serde_json::Value) -> Result<DateTime<Utc>, String> {
    if payload.get("detail-type").and_then(|t| t.as_str()) != Some("Scheduled Event") {
        return Err("not an EventBridge Scheduled Event".into());
    }
    payload
        .get("time")
        .and_then(|t| t.as_str())
        .ok_or("a scheduled event without `time`")?
        .parse()
        .map_err(|err| format!("time: {err}"))
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotRunError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Service(ServiceError),
}

impl From<SnapshotRunError> for lambda_runtime::Diagnostic {
    fn from(err: SnapshotRunError) -> Self {
        let error_type = match &err {
            SnapshotRunError::BadEvent(_) => "BadEvent",
            SnapshotRunError::Service(err) => err.error_type(),
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// A listed snapshot as ours, if it carries our tags; its DB is the one its policy tag names
/// (an Aurora member's snapshot is listed under its cluster), else the one it was taken of.
/// One listed without a creation time yet (a copy just started) counts as made `now`.
pub fn ours(listed: &ListedSnapshot, now: DateTime<Utc>) -> Option<OurSnapshot> {
    let db = DbInstanceId::parse(listed.tag(POLICY_TAG).unwrap_or(&listed.source)).ok()?;
    OurSnapshot::from_listing(
        &listed.id,
        &db,
        &listed.tags,
        listed.created_at.unwrap_or(now),
        &listed.status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::retention::SnapshotKind;
    use crate::fakes::{FakeNotifier, FakeSnapshots, MemoryRecords};
    use chrono::TimeDelta;

    const PIPELINE: &str = r#"
        [[application]]
        name = "backend"
        repository = "social-analytics/backend"
        services = [{ name = "backend-service", container = "api" }]

        [[stage]]
        name = "dev"
        cluster = "c-dev"
        tags = "*"

        [[stage]]
        name = "prod"
        cluster = "c-prod"
        tags = "v*"
        approval = true
        approvers = ["alice@example.com"]
        snapshot_before_deploy = ["orders-prod"]

        [snapshots]
        quota = 10

        [[snapshots.db]]
        name = "orders-dev"
        stage = "dev"

        [[snapshots.db]]
        name = "orders-prod"
        stage = "prod"
        copy_to_region = "us-west-2"
    "#;

    struct World {
        rds: FakeSnapshots,
        notifier: FakeNotifier,
        records: MemoryRecords,
    }

    impl World {
        fn new() -> Self {
            World {
                rds: FakeSnapshots::default(),
                notifier: FakeNotifier::default(),
                records: MemoryRecords::default(),
            }
        }

        fn function(&self, pipeline: &str) -> ScheduledSnapshots<MemoryRecords, FakeSnapshots, FakeNotifier> {
            ScheduledSnapshots {
                pipeline: Pipeline::parse(pipeline).unwrap(),
                records: self.records.clone(),
                rds: self.rds.clone(),
                notifier: self.notifier.clone(),
            }
        }

        /// A snapshot made `days` ago, ours (`kind`) or another tool's (`None`).
        fn made(&self, region: Option<&str>, id: &str, db: &str, kind: Option<SnapshotKind>, days: i64) {
            let mut tags = vec![];
            if let Some(kind) = kind {
                tags.push(("created-by".to_owned(), "ecs-deploy".to_owned()));
                tags.push((KIND_TAG.to_owned(), kind.tag().to_owned()));
            } else {
                tags.push(("created-by".to_owned(), "nightly-backup-tool".to_owned()));
            }
            self.rds.insert(
                region,
                ListedSnapshot {
                    id: id.into(),
                    source: db.into(),
                    cluster: false,
                    arn: format!(
                        "arn:aws:rds:{}:123456789012:snapshot:{id}",
                        region.unwrap_or("us-east-1")
                    ),
                    created_at: Some(Utc::now() - TimeDelta::days(days)),
                    status: "available".into(),
                    encrypted: false,
                    tags,
                },
            );
        }

        fn tag(&self, region: Option<&str>, id: &str, key: &str, value: &str) {
            let mut snapshot = self.rds.in_region(region).into_iter().find(|s| s.id == id).unwrap();
            snapshot.tags.push((key.into(), value.into()));
            self.rds.insert(region, snapshot);
        }

        fn ids(&self, region: Option<&str>) -> Vec<String> {
            let mut ids: Vec<String> = self.rds.in_region(region).into_iter().map(|s| s.id).collect();
            ids.sort();
            ids
        }
    }

    fn tick() -> DateTime<Utc> {
        "2026-11-23T03:00:00Z".parse().unwrap()
    }

    #[test]
    fn only_a_scheduled_event_is_a_tick() {
        let scheduled = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-23T03:00:00Z", "detail": {}});
        assert_eq!(tick_of(&scheduled), Ok(tick()));
        assert!(
            tick_of(&serde_json::json!({"detail-type": "ECR Image Action", "time": "2026-11-23T03:00:00Z"})).is_err()
        );
        assert!(tick_of(&serde_json::json!({"detail-type": "Scheduled Event", "time": "yesterday"})).is_err());
    }

    #[tokio::test]
    async fn a_tick_snapshots_each_db_once_tagged_and_a_redelivery_adopts_them() {
        let world = World::new();
        let function = world.function(PIPELINE);
        let now = Utc::now();
        let run = function.run(tick(), now).await.unwrap();
        assert_eq!(
            run.taken,
            ["sched-orders-dev-20261123-0300", "sched-orders-prod-20261123-0300"]
        );
        let made = world.rds.in_region(None);
        let prod = made.iter().find(|s| s.id.contains("orders-prod")).unwrap();
        assert_eq!(prod.tag("created-by"), Some("ecs-deploy"));
        assert_eq!(prod.tag(KIND_TAG), Some("scheduled"));
        assert_eq!(prod.tag(POLICY_TAG), Some("orders-prod"));
        let expires: chrono::NaiveDate = prod.tag(EXPIRES_TAG).unwrap().parse().unwrap();
        assert_eq!((expires - now.date_naive()).num_days(), 30, "prod keeps 30 days");

        let again = function.run(tick(), Utc::now()).await.unwrap();
        assert_eq!(again.taken, run.taken, "adopted");
        assert_eq!(world.rds.in_region(None).len(), 2, "never two of one tick");
        assert!(world.notifier.published().is_empty());
    }

    #[tokio::test]
    async fn only_our_expired_snapshots_go_never_the_newest_nor_one_guarding_a_deploy() {
        let world = World::new();
        for (id, days) in [
            ("sched-orders-dev-a", 20),
            ("sched-orders-dev-b", 10),
            ("sched-orders-dev-c", 9),
            ("sched-orders-dev-d", 8),
        ] {
            world.made(None, id, "orders-dev", Some(SnapshotKind::Scheduled), days);
        }
        world.made(None, "nightly-orders-dev", "orders-dev", None, 400);
        let mut request = crate::domain::fixtures::approval_request(1);
        request.stage = crate::domain::names::StageName::parse("prod").unwrap();
        assert!(world.records.create_approval(&request).await.unwrap());
        world.made(
            None,
            "pre-orders-prod-x",
            "orders-prod",
            Some(SnapshotKind::PreDeploy),
            90,
        );
        world.tag(None, "pre-orders-prod-x", APPROVAL_TAG, request.id.as_str());
        // Three newer ones, so only its use keeps it.
        for n in 1..=3 {
            world.made(
                None,
                &format!("sched-orders-prod-{n}"),
                "orders-prod",
                Some(SnapshotKind::Scheduled),
                n,
            );
        }

        let run = world.function(PIPELINE).run(tick(), Utc::now()).await.unwrap();
        // dev keeps 7 days, but never its newest 3 (10, 9 and 8 days old here).
        assert_eq!(run.pruned, ["sched-orders-dev-a"]);
        let ids = world.ids(None);
        assert!(
            ids.contains(&"nightly-orders-dev".to_owned()),
            "another tool's, whatever its age"
        );
        assert!(
            ids.contains(&"pre-orders-prod-x".to_owned()),
            "its release is still in flight"
        );
        assert!(!ids.contains(&"sched-orders-dev-a".to_owned()));
    }

    #[tokio::test]
    async fn a_full_quota_prunes_first_takes_what_fits_and_says_what_it_left_out() {
        let world = World::new();
        for n in 0..8 {
            world.made(None, &format!("nightly-{n}"), "orders-dev", None, 1);
        }
        world.made(
            None,
            "sched-orders-dev-old",
            "orders-dev",
            Some(SnapshotKind::Scheduled),
            60,
        );
        world.made(
            None,
            "sched-orders-dev-x",
            "orders-dev",
            Some(SnapshotKind::Scheduled),
            3,
        );
        world.made(
            None,
            "sched-orders-dev-y",
            "orders-dev",
            Some(SnapshotKind::Scheduled),
            2,
        );
        world.made(
            None,
            "sched-orders-dev-z",
            "orders-dev",
            Some(SnapshotKind::Scheduled),
            1,
        );
        // 12 of 10: pruning the 60-day one leaves 11, still full.
        let run = world.function(PIPELINE).run(tick(), Utc::now()).await.unwrap();
        assert_eq!(run.pruned, ["sched-orders-dev-old"]);
        assert!(run.taken.is_empty());
        assert_eq!(run.skipped.len(), 2, "{:?}", run.skipped);
        let told = world.notifier.published();
        assert_eq!(told.len(), 1);
        assert!(
            told[0]
                .subject
                .starts_with("Scheduled RDS snapshots of 2026-11-23 03:00:00 UTC")
        );
        assert!(told[0].message.contains("quota of 10"), "{}", told[0].message);

        // With room for one, one DB gets it and the other is told left out; the next day,
        // the other gets it.
        let roomy = PIPELINE.replace("quota = 10", "quota = 11");
        let mut taken = Vec::new();
        for (day, left_out) in [
            (tick(), "orders-dev"),
            (tick() + chrono::TimeDelta::days(1), "orders-prod"),
        ] {
            let world = World::new();
            for n in 0..10 {
                world.made(None, &format!("nightly-{n}"), "orders-dev", None, 1);
            }
            let run = world.function(&roomy).run(day, Utc::now()).await.unwrap();
            assert_eq!(run.taken.len(), 1, "{run:?}");
            assert_eq!((run.quota_used, run.quota_limit), (11, 11));
            assert!(
                world.notifier.published()[0]
                    .message
                    .contains(&format!("no snapshot of {left_out}"))
            );
            taken.push(run.taken[0].clone());
        }
        assert_eq!(
            taken,
            ["sched-orders-prod-20261123-0300", "sched-orders-dev-20261124-0300"]
        );
    }

    #[tokio::test]
    async fn cluster_snapshots_near_their_own_quota_are_warned_of() {
        let world = World::new();
        for n in 0..8 {
            world.rds.insert(
                None,
                ListedSnapshot {
                    id: format!("aurora-nightly-{n}"),
                    source: "orders-cluster".into(),
                    cluster: true,
                    arn: format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:aurora-nightly-{n}"),
                    created_at: Some(Utc::now()),
                    status: "available".into(),
                    encrypted: false,
                    tags: vec![],
                },
            );
        }
        // 8 of 10 is 80%: warned, though the instance quota has room.
        let run = world.function(PIPELINE).run(tick(), Utc::now()).await.unwrap();
        assert_eq!(run.taken.len(), 2, "{run:?}");
        let told = world.notifier.published();
        assert_eq!(told.len(), 1);
        assert!(
            told[0].message.contains("8 manual cluster snapshots"),
            "{}",
            told[0].message
        );
    }

    #[tokio::test]
    async fn a_db_that_cannot_be_snapshotted_is_skipped_and_told_once_per_tick() {
        let world = World::new();
        world.rds.busy(Some("stopped"));
        let function = world.function(PIPELINE);
        let run = function.run(tick(), Utc::now()).await.unwrap();
        assert!(run.taken.is_empty());
        assert_eq!(run.skipped.len(), 2);
        function.run(tick(), Utc::now()).await.unwrap();
        let told = world.notifier.published();
        assert_eq!(told.len(), 1, "a redelivered tick tells nothing twice");
        assert!(
            told[0].message.contains("DB instance orders-dev is stopped"),
            "{}",
            told[0].message
        );
    }

    #[tokio::test]
    async fn available_snapshots_are_copied_to_the_dr_region_once_and_pruned_there_too() {
        let world = World::new();
        world.made(
            None,
            "sched-orders-prod-a",
            "orders-prod",
            Some(SnapshotKind::Scheduled),
            1,
        );
        world.made(
            None,
            "sched-orders-dev-a",
            "orders-dev",
            Some(SnapshotKind::Scheduled),
            1,
        );
        world.made(
            Some("us-west-2"),
            "sched-orders-prod-old",
            "orders-prod",
            Some(SnapshotKind::Scheduled),
            45,
        );
        for n in 0..3 {
            world.made(
                Some("us-west-2"),
                &format!("sched-orders-prod-new{n}"),
                "orders-prod",
                Some(SnapshotKind::Scheduled),
                1,
            );
        }
        let function = world.function(PIPELINE);
        let run = function.run(tick(), Utc::now()).await.unwrap();
        assert_eq!(run.copied, ["sched-orders-prod-a to us-west-2"]);
        assert_eq!(run.pruned, ["sched-orders-prod-old in us-west-2"]);
        let there = world.ids(Some("us-west-2"));
        assert!(there.contains(&"sched-orders-prod-a".to_owned()));
        assert!(
            !there.iter().any(|id| id.contains("orders-dev")),
            "dev has no copy_to_region"
        );
        let copy = world
            .rds
            .in_region(Some("us-west-2"))
            .into_iter()
            .find(|s| s.id == "sched-orders-prod-a")
            .unwrap();
        assert_eq!(copy.tag("created-by"), Some("ecs-deploy"), "a copy carries our tags");

        let again = function.run(tick(), Utc::now()).await.unwrap();
        assert!(again.copied.is_empty(), "one copy each");

        // An encrypted snapshot needs a key in the recovery region: told, not retried.
        let mut encrypted = world
            .rds
            .in_region(None)
            .into_iter()
            .find(|s| s.id == "sched-orders-prod-a")
            .unwrap();
        encrypted.id = "sched-orders-prod-b".into();
        encrypted.encrypted = true;
        world.rds.insert(None, encrypted);
        let run = function.run(tick(), Utc::now()).await.unwrap();
        assert!(run.copied.is_empty(), "{run:?}");
        let told = world.notifier.published();
        assert!(
            told.iter().any(|n| n
                .message
                .contains("sched-orders-prod-b is encrypted: set copy_kms_key_id")),
            "{told:?}"
        );
    }
}
