//! Scheduled RDS snapshots and the retention of every snapshot we make: the id a schedule tick
//! derives (a redelivered tick derives it again, so it adopts the snapshot instead of making a
//! second), which of our snapshots have expired, and what the manual-snapshot quota allows.
//! Pure: the snapshot function lists, decides here, then acts.

use super::names::DbInstanceId;
use super::promotion::{MAX_SNAPSHOT_ID, SnapshotId, readable};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// The tag every snapshot we make carries (`created-by`); only those are ever pruned.
pub const CREATED_BY: (&str, &str) = ("created-by", "ecs-deploy");
/// The tag naming why a snapshot was made (`scheduled` or `pre-deploy`).
pub const KIND_TAG: &str = "ecs-deploy:kind";
/// The tag naming the DB whose policy keeps a snapshot.
pub const POLICY_TAG: &str = "ecs-deploy:policy";
/// The tag saying when a snapshot expires under its policy at creation (RFC 3339 date).
pub const EXPIRES_TAG: &str = "ecs-deploy:expires";
/// The tag naming the approval request a pre-deployment snapshot was taken for.
pub const APPROVAL_TAG: &str = "ecs-deploy:approval";

/// Why we made a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// Taken on the schedule.
    Scheduled,
    /// Taken by the promotion before a deploy it approved.
    PreDeploy,
}

impl SnapshotKind {
    pub fn tag(self) -> &'static str {
        match self {
            SnapshotKind::Scheduled => "scheduled",
            SnapshotKind::PreDeploy => "pre-deploy",
        }
    }

    pub fn from_tag(value: &str) -> Option<Self> {
        match value {
            "scheduled" => Some(SnapshotKind::Scheduled),
            "pre-deploy" => Some(SnapshotKind::PreDeploy),
            _ => None,
        }
    }
}

/// How long a DB's snapshots are kept: expired after `keep_days`, but never the newest
/// `keep_last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub keep_for: TimeDelta,
    pub keep_last: usize,
}

impl SnapshotId {
    /// The snapshot the schedule's tick at `tick` takes of `db`:
    /// `sched-<db>-<yyyymmdd>-<hhmm>`, the same for every delivery of the tick. A DB name cut
    /// to fit 63 characters gets 6 hex of its full name, so two DBs never share an id.
    pub fn scheduled(db: &DbInstanceId, tick: DateTime<Utc>) -> Self {
        let time = tick.format("%Y%m%d-%H%M").to_string();
        let full = readable(db.as_str(), usize::MAX);
        let room = MAX_SNAPSHOT_ID - "sched-".len() - 1 - time.len();
        let name = if full.len() <= room {
            full
        } else {
            let hash = Sha256::digest(db.as_str().to_ascii_lowercase().as_bytes());
            let hex: String = hash.iter().take(3).map(|b| format!("{b:02x}")).collect();
            format!("{}-{hex}", readable(db.as_str(), room - 1 - hex.len()))
        };
        SnapshotId::parse(&format!("sched-{name}-{time}")).expect("built from valid parts")
    }
}

/// A snapshot we made, as RDS lists it with its tags: only one tagged `created-by=ecs-deploy`
/// becomes one, so nothing else can be pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurSnapshot {
    pub id: SnapshotId,
    pub db: DbInstanceId,
    pub kind: SnapshotKind,
    /// When it was taken: for a copy, when its source was (RDS's original creation time).
    pub created_at: DateTime<Utc>,
    pub progress: Progress,
    /// The day its `ecs-deploy:expires` tag names: never pruned before it.
    pub expires: Option<chrono::NaiveDate>,
}

/// Where a snapshot stands, as far as retention cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Available,
    /// Being made, copied, or otherwise busy: never pruned, never one of the newest kept.
    InProgress,
    /// RDS reports it failed: useless, pruned at once.
    Failed,
}

impl Progress {
    pub fn of(status: &str) -> Self {
        match status {
            "available" => Progress::Available,
            "failed" | "incompatible-restore" | "incompatible-parameters" => Progress::Failed,
            _ => Progress::InProgress,
        }
    }
}

impl OurSnapshot {
    /// From a manual snapshot's id, DB, tags, creation time and status; `None` unless our
    /// tags are on it.
    pub fn from_listing(
        id: &str,
        db: &DbInstanceId,
        tags: &[(String, String)],
        created_at: DateTime<Utc>,
        status: &str,
    ) -> Option<Self> {
        let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if tag(CREATED_BY.0) != Some(CREATED_BY.1) {
            return None;
        }
        Some(OurSnapshot {
            id: SnapshotId::parse(id)?,
            db: db.clone(),
            kind: SnapshotKind::from_tag(tag(KIND_TAG)?)?,
            created_at,
            progress: Progress::of(status),
            expires: tag(EXPIRES_TAG).and_then(|day| day.parse().ok()),
        })
    }
}

/// Our snapshots to delete at `now`, oldest first: failed ones, and those past their DB's
/// retention. A DB `retention_of` does not know (not in this pipeline file) keeps all its
/// snapshots. Per DB, never one of the newest `keep_last` available ones, never one still in
/// progress, never one before the day its expiry tag names, never one `in_use` (a
/// pre-deployment snapshot whose deploy is in flight or inside its watch window, a source
/// still being copied).
pub fn expired<'a>(
    snapshots: &'a [OurSnapshot],
    retention_of: impl Fn(&DbInstanceId) -> Option<Retention>,
    in_use: &HashSet<SnapshotId>,
    now: DateTime<Utc>,
) -> Vec<&'a OurSnapshot> {
    let mut by_db: BTreeMap<&DbInstanceId, Vec<&OurSnapshot>> = BTreeMap::new();
    for snapshot in snapshots {
        by_db.entry(&snapshot.db).or_default().push(snapshot);
    }
    let mut expired = Vec::new();
    for (db, mut kept) in by_db {
        let Some(retention) = retention_of(db) else {
            continue;
        };
        kept.retain(|s| !in_use.contains(&s.id));
        expired.extend(kept.iter().filter(|s| s.progress == Progress::Failed).copied());
        kept.retain(|s| s.progress == Progress::Available);
        kept.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.as_str().cmp(b.id.as_str()))
        });
        expired.extend(kept.into_iter().skip(retention.keep_last).filter(|s| {
            now - s.created_at >= retention.keep_for && s.expires.is_none_or(|day| now.date_naive() > day)
        }));
    }
    expired.sort_by_key(|s| s.created_at);
    expired
}

/// The region's manual-snapshot quota (RDS's default is 100, ours and others' together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: usize,
    /// Warn once this share of the quota is used.
    pub warn_percent: usize,
}

/// What the quota lets a tick do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaPlan {
    /// The DBs snapshotted now.
    pub take: Vec<DbInstanceId>,
    /// The DBs left without a snapshot: the quota is full even after pruning.
    pub left_out: Vec<DbInstanceId>,
    /// Manual snapshots in the region once the tick is done.
    pub used_after: usize,
    /// Whether to warn: at or past `warn_percent` once the tick is done.
    pub warn: bool,
}

/// With `used` manual snapshots in the region after pruning, the DBs `due` a snapshot get one
/// while the quota has room, in order from the `turn`-th (the tick's day: a full quota leaves
/// out a different DB each day, not always the last ones); the rest are left out (and told).
pub fn quota_plan(due: &[DbInstanceId], used: usize, quota: Quota, turn: usize) -> QuotaPlan {
    let room = quota.limit.saturating_sub(used);
    let mut order = due.to_vec();
    if room < order.len() {
        let first = turn % order.len();
        order.rotate_left(first);
    }
    let take: Vec<DbInstanceId> = order.iter().take(room).cloned().collect();
    let left_out = order.iter().skip(room).cloned().collect();
    let used_after = used + take.len();
    QuotaPlan {
        warn: used_after * 100 >= quota.limit * quota.warn_percent,
        take,
        left_out,
        used_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::at;

    fn db(name: &str) -> DbInstanceId {
        DbInstanceId::parse(name).unwrap()
    }

    fn ours(id: &str, db_name: &str, kind: SnapshotKind, days_old: i64) -> OurSnapshot {
        OurSnapshot {
            id: SnapshotId::parse(id).unwrap(),
            db: db(db_name),
            kind,
            created_at: at(0) - TimeDelta::days(days_old),
            progress: Progress::Available,
            expires: None,
        }
    }

    #[test]
    fn a_tick_derives_one_valid_id_per_db_and_minute() {
        let tick = "2026-11-23T03:00:41Z".parse().unwrap();
        let id = SnapshotId::scheduled(&db("social-analytics-db"), tick);
        assert_eq!(id.as_str(), "sched-social-analytics-db-20261123-0300");
        assert_eq!(
            SnapshotId::scheduled(&db("social-analytics-db"), "2026-11-23T03:00:00Z".parse().unwrap()),
            id,
            "a redelivered tick derives the same id"
        );
        assert_ne!(
            SnapshotId::scheduled(&db("social-analytics-db"), "2026-11-24T03:00:00Z".parse().unwrap()),
            id
        );
    }

    /// Every valid DB identifier, odd ones included (long, hyphen-heavy, digits, mixed case,
    /// sharing a long prefix), gives a valid cluster-snapshot id, distinct per DB.
    #[test]
    fn scheduled_ids_stay_valid_and_distinct_for_odd_db_names() {
        let tick = "2026-11-23T03:00:00Z".parse().unwrap();
        let mut names: Vec<String> = vec!["a".into(), "A".into(), "a1".into(), "a-1".into(), "Db-X".into()];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
        for _ in 0..5000 {
            // xorshift: the same odd names on every run.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 63) as usize;
            let mut name = String::from("d");
            let mut bits = seed;
            for _ in 1..len {
                bits = bits.rotate_left(6) ^ seed;
                name.push(alphabet[(bits % alphabet.len() as u64) as usize] as char);
            }
            names.push(name);
        }
        for cut in 30..64 {
            names.push(format!("{}{}", "p".repeat(cut), "x"));
            names.push(format!("{}{}", "p".repeat(cut), "y"));
        }
        let mut seen = std::collections::HashMap::new();
        for name in names {
            let Ok(db) = DbInstanceId::parse(name.clone()) else {
                continue;
            };
            let id = SnapshotId::scheduled(&db, tick);
            assert!(SnapshotId::parse(id.as_str()).is_some(), "{name} → {id}");
            assert!(id.as_str().len() <= MAX_SNAPSHOT_ID, "{name} → {id}");
            let key = db.as_str().to_ascii_lowercase();
            if let Some(other) = seen.insert(id.clone(), key.clone()) {
                assert_eq!(other, key, "{id} shared by two DBs");
            }
        }
    }

    #[test]
    fn only_snapshots_carrying_our_tags_are_ours() {
        let tags = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let created = at(0);
        let ours = OurSnapshot::from_listing(
            "sched-db-20261123-0300",
            &db("db"),
            &tags(&[("created-by", "ecs-deploy"), ("ecs-deploy:kind", "scheduled")]),
            created,
            "available",
        );
        assert_eq!(ours.map(|s| s.kind), Some(SnapshotKind::Scheduled));
        for foreign in [
            tags(&[("created-by", "backup-tool"), ("ecs-deploy:kind", "scheduled")]),
            tags(&[("ecs-deploy:kind", "scheduled")]),
            tags(&[("created-by", "ecs-deploy")]),
        ] {
            assert_eq!(
                OurSnapshot::from_listing("sched-db-20261123-0300", &db("db"), &foreign, created, "available"),
                None,
                "{foreign:?}"
            );
        }
    }

    #[test]
    fn retention_keeps_the_newest_those_in_use_and_those_being_made() {
        let week = Retention {
            keep_for: TimeDelta::days(7),
            keep_last: 2,
        };
        let snapshots = vec![
            ours("sched-a-1", "a", SnapshotKind::Scheduled, 1),
            ours("sched-a-2", "a", SnapshotKind::Scheduled, 8),
            ours("sched-a-3", "a", SnapshotKind::Scheduled, 9),
            ours("pre-a-4", "a", SnapshotKind::PreDeploy, 10),
            ours("sched-a-5", "a", SnapshotKind::Scheduled, 11),
            OurSnapshot {
                progress: Progress::InProgress,
                ..ours("sched-a-6", "a", SnapshotKind::Scheduled, 12)
            },
            OurSnapshot {
                progress: Progress::Failed,
                ..ours("sched-a-7", "a", SnapshotKind::Scheduled, 0)
            },
            OurSnapshot {
                expires: Some(at(0).date_naive() + TimeDelta::days(1)),
                ..ours("sched-a-8", "a", SnapshotKind::Scheduled, 13)
            },
            ours("sched-z-1", "z", SnapshotKind::Scheduled, 400),
            ours("sched-b-1", "b", SnapshotKind::Scheduled, 30),
        ];
        let in_use = HashSet::from([SnapshotId::parse("pre-a-4").unwrap()]);
        let known = |db: &DbInstanceId| (db.as_str() != "z").then_some(week);
        let gone: Vec<&str> = expired(&snapshots, known, &in_use, at(0))
            .into_iter()
            .map(|s| s.id.as_str())
            .collect();
        // a: the newest two available (1, 8 days) stay; 9 and 11 days go, and the failed one;
        // the pre-deploy one in use, the one still being made and the one whose expiry tag is
        // tomorrow stay. b: its only snapshot is its newest. z: not this file's DB.
        assert_eq!(gone, ["sched-a-5", "sched-a-3", "sched-a-7"]);

        let month = Retention {
            keep_for: TimeDelta::days(30),
            keep_last: 0,
        };
        let gone: Vec<&str> = expired(&snapshots, |_| Some(month), &HashSet::new(), at(0))
            .into_iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(gone, ["sched-z-1", "sched-b-1", "sched-a-7"], "z is known here");
    }

    #[test]
    fn the_quota_takes_what_fits_and_warns_from_its_threshold() {
        let quota = Quota {
            limit: 100,
            warn_percent: 80,
        };
        let due = [db("a"), db("b"), db("c")];
        let roomy = quota_plan(&due, 10, quota, 0);
        assert_eq!((roomy.take.len(), roomy.left_out.len(), roomy.warn), (3, 0, false));
        let warned = quota_plan(&due, 77, quota, 0);
        assert_eq!((warned.used_after, warned.warn), (80, true));
        let full = quota_plan(&due, 99, quota, 0);
        assert_eq!(full.take, [db("a")]);
        assert_eq!(full.left_out, [db("b"), db("c")]);
        let over = quota_plan(&due, 120, quota, 0);
        assert!(over.take.is_empty() && over.left_out.len() == 3 && over.warn);
        let next_day = quota_plan(&due, 99, quota, 1);
        assert_eq!(next_day.take, [db("b")]);
        assert_eq!(next_day.left_out, [db("c"), db("a")]);
        assert_eq!(quota_plan(&due, 99, quota, 5).take, [db("c")]);
    }
}
