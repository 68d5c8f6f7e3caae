//! After an approval: the pre-deployment snapshots, the wait timer, then the deploy. Pure:
//! what a request needs next, from its state, its snapshots' states and the time. The
//! promotion function acts on it (stream, RDS snapshot event, one-minute sweeper) and writes
//! back what changed, conditional on the version it read.

use super::approval::{ApprovalId, ApprovalRequest, ApprovalStatus};
use super::names::DbInstanceId;
use super::schedule::{DeploySchedule, Held};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// How long after they were asked for (or until the deploy is due, if later) the snapshots may
/// take before the deploy is given up (FAILED, with a notice), RDS refusing to be asked
/// included; and how long after the approval RDS may not be reachable at all.
pub const SNAPSHOT_TIMEOUT: TimeDelta = TimeDelta::minutes(60);

/// An RDS snapshot identifier that is valid for instance and cluster snapshots alike: a letter
/// first, then letters, digits and single hyphens, no trailing hyphen, at most 63 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(String);

/// The longest cluster snapshot identifier RDS accepts (instance ones may be 255).
pub const MAX_SNAPSHOT_ID: usize = 63;

impl SnapshotId {
    /// The snapshot taken of `db` before the deploy `request` approved: the same id for every
    /// delivery, so a redelivery finds (and adopts) the snapshot instead of making another.
    /// `pre-<db, shortened>-<24 hex of the request and db>`.
    pub fn before_deploy(request: &ApprovalId, db: &DbInstanceId) -> Self {
        let hash = Sha256::digest(format!("predeploy|{request}|{db}").as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let room = MAX_SNAPSHOT_ID - "pre-".len() - 1 - hex.len();
        Self(format!("pre-{}-{hex}", readable(db.as_str(), room)))
    }

    /// The snapshot of `db` a break-glass deploy takes first, from its order's key: a retried
    /// order adopts it. `emg-<db, shortened>-<24 hex of the key and db>`.
    pub fn before_emergency(key: &str, db: &DbInstanceId) -> Self {
        let hash = Sha256::digest(format!("emergency|{key}|{db}").as_bytes());
        let hex: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let room = MAX_SNAPSHOT_ID - "emg-".len() - 1 - hex.len();
        Self(format!("emg-{}-{hex}", readable(db.as_str(), room)))
    }

    /// An id as RDS reports it back (events, DescribeDBSnapshots), if it follows the rules.
    pub fn parse(text: &str) -> Option<Self> {
        is_valid_snapshot_id(text).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `text` cut to `room` characters of lowercase letters, digits and single hyphens, with no
/// hyphen at either end.
pub(crate) fn readable(text: &str, room: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.len() == room {
            break;
        }
        out.push(c);
    }
    out.trim_end_matches('-').to_owned()
}

fn is_valid_snapshot_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_SNAPSHOT_ID
        && bytes[0].is_ascii_alphabetic()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && !text.contains("--")
        && !text.ends_with('-')
}

/// Where a pre-deployment snapshot stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SnapshotState {
    /// Not started: its DB is busy with something that passes (a backup window, a
    /// modification, a reboot). It is asked for again until the snapshot timeout.
    NotStarted {
        why: String,
    },
    /// CreateDB(Cluster)Snapshot was answered (or found the snapshot made by an earlier try).
    Creating,
    Available,
    /// The snapshot failed, or its DB could not be snapshotted (not `available`, gone).
    Failed {
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSnapshot {
    pub db: DbInstanceId,
    pub id: SnapshotId,
    #[serde(flatten)]
    pub state: SnapshotState,
}

/// What the promotion of an approved request has done so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// When the promotion first acted on the approval.
    pub started_at: DateTime<Utc>,
    pub snapshots: Vec<PlannedSnapshot>,
    /// When the deploy of the request's services began; until `deployed_at` is set, a retry
    /// deploys again (each service's deploy is idempotent).
    pub deploy_started_at: Option<DateTime<Utc>>,
    /// When every service's deploy was started and recorded.
    #[serde(default)]
    pub deployed_at: Option<DateTime<Utc>>,
    /// Why the promotion gave up (the request's services were not deployed).
    pub failed: Option<String>,
}

impl Promotion {
    /// A promotion that acted first at `at`.
    pub fn started(at: DateTime<Utc>) -> Self {
        Promotion {
            started_at: at,
            snapshots: Vec::new(),
            deploy_started_at: None,
            deployed_at: None,
            failed: None,
        }
    }
}

/// What an approval request needs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing now; look again at `at` (the sweeper's due time).
    WaitUntil { at: DateTime<Utc> },
    /// The stage's deploy window is closed, or a freeze holds: tell the team until when, and
    /// look again then. An approval held before its promotion began takes its snapshots when
    /// the hold ends, so that they are taken right before the deploy.
    Hold(Held),
    /// The approval's first step: record the promotion begun, tell the team, and make these
    /// snapshots (none when the stage takes none; each adopts one an earlier try made).
    Begin(Vec<PlannedSnapshot>),
    /// Make these snapshots again: their DB was busy.
    TakeSnapshots(Vec<PlannedSnapshot>),
    /// Ask RDS how these snapshots stand: their events may never come.
    CheckSnapshots(Vec<SnapshotId>),
    /// The snapshot timeout ran out: ask RDS once more, and give up with `why` if any of these
    /// is still not available (one may have become available while no one looked).
    LastLook { snapshots: Vec<SnapshotId>, why: String },
    /// Every snapshot is available and the wait is over: deploy the request's services.
    Deploy,
    /// Give up: no deploy without its backup. The reason goes to the record and the notice.
    Fail { why: String },
    /// Nobody decided in time.
    Expire,
    /// The request will not deploy (rejected, cancelled, expired; or approved with its
    /// promotion `failed`): its services' records follow it and the team is told, until that
    /// is recorded (`closed_at`).
    Close {
        status: ApprovalStatus,
        failed: Option<String>,
    },
    /// Nothing left to do: deployed, closed, blocked or superseded.
    Done,
}

/// What the request needs next at `now`, `dbs` being the stage's `snapshot_before_deploy` and
/// `schedule` its deploy window and freezes. An operator's rollback takes no snapshot and is
/// never held: approved, it goes.
pub fn next_step(
    request: &ApprovalRequest,
    dbs: &[DbInstanceId],
    schedule: &DeploySchedule,
    now: DateTime<Utc>,
) -> Step {
    if request.closed_at.is_some() {
        return Step::Done;
    }
    let always_open = DeploySchedule::default();
    let (dbs, schedule) = match request.rollback {
        Some(_) => (&[][..], &always_open),
        None => (dbs, schedule),
    };
    match request.status {
        ApprovalStatus::AwaitingApproval if request.status_at(now) == ApprovalStatus::Expired => Step::Expire,
        ApprovalStatus::AwaitingApproval => Step::WaitUntil { at: request.expires_at },
        ApprovalStatus::Approved => approved_step(request, dbs, schedule, now),
        status @ (ApprovalStatus::Rejected | ApprovalStatus::Cancelled | ApprovalStatus::Expired) => {
            Step::Close { status, failed: None }
        }
        _ => Step::Done,
    }
}

fn approved_step(
    request: &ApprovalRequest,
    dbs: &[DbInstanceId],
    schedule: &DeploySchedule,
    now: DateTime<Utc>,
) -> Step {
    // Held, the promotion begins when the hold ends: its timeout counts from the last time
    // promote saw the hold (the file in force may have lifted it since).
    let approved_at = request.decided_at.unwrap_or(request.requested_at);
    let begins_at = approved_at.max(request.held_seen_at.unwrap_or(approved_at));
    let snapshots_late = now >= (begins_at + SNAPSHOT_TIMEOUT).max(request.deploy_not_before().unwrap_or(approved_at));
    let Some(promotion) = &request.promotion else {
        // Held when the deploy is due: the snapshots wait too, to be taken right before it.
        let due = request.deploy_not_before().unwrap_or(now).max(now);
        if let Some(held) = schedule.held(due) {
            return Step::Hold(held);
        }
        if !dbs.is_empty() && snapshots_late {
            return Step::Fail {
                why: format!(
                    "no snapshot within {} minutes of the approval: RDS could not be asked",
                    SNAPSHOT_TIMEOUT.num_minutes()
                ),
            };
        }
        // The snapshots start at once, so they are ready by the end of the wait.
        return Step::Begin(
            dbs.iter()
                .map(|db| PlannedSnapshot {
                    db: db.clone(),
                    id: SnapshotId::before_deploy(&request.id, db),
                    state: SnapshotState::Creating,
                })
                .collect(),
        );
    };
    if let Some(why) = &promotion.failed {
        return Step::Close {
            status: ApprovalStatus::Approved,
            failed: Some(why.clone()),
        };
    }
    if promotion.deployed_at.is_some() {
        return Step::Done;
    }
    if promotion.deploy_started_at.is_some() {
        return Step::Deploy;
    }
    if let Some(failed) = promotion.snapshots.iter().find_map(|s| match &s.state {
        SnapshotState::Failed { why } => Some(format!("snapshot {} of {}: {why}", s.id, s.db)),
        _ => None,
    }) {
        return Step::Fail { why: failed };
    }
    let unfinished: Vec<&PlannedSnapshot> = promotion
        .snapshots
        .iter()
        .filter(|s| matches!(s.state, SnapshotState::Creating | SnapshotState::NotStarted { .. }))
        .collect();
    if unfinished.is_empty() {
        return deploy_when_waited(request, schedule, now);
    }
    // RDS's own time: from when the snapshots were asked for, not from the approval (a
    // promotion held up meanwhile must not count against them).
    let snapshots_late = now
        >= (promotion.started_at + SNAPSHOT_TIMEOUT).max(request.deploy_not_before().unwrap_or(promotion.started_at));
    if snapshots_late {
        let late: Vec<String> = unfinished
            .iter()
            .map(|s| match &s.state {
                SnapshotState::NotStarted { why } => format!("{} (not started: {why})", s.id),
                _ => s.id.to_string(),
            })
            .collect();
        let why = format!(
            "no snapshot within {} minutes of asking RDS: {}",
            SNAPSHOT_TIMEOUT.num_minutes(),
            late.join(", ")
        );
        // A DB that kept putting its snapshot off has none to look at; and an RDS that could
        // not be asked for twice the timeout gets no more looks.
        let no_more_looks = now >= promotion.started_at + SNAPSHOT_TIMEOUT * 2
            && now >= request.deploy_not_before().unwrap_or(now) + SNAPSHOT_TIMEOUT;
        if no_more_looks
            || unfinished
                .iter()
                .any(|s| matches!(s.state, SnapshotState::NotStarted { .. }))
        {
            return Step::Fail { why };
        }
        return Step::LastLook {
            snapshots: unfinished.iter().map(|s| s.id.clone()).collect(),
            why,
        };
    }
    let not_started: Vec<PlannedSnapshot> = unfinished
        .iter()
        .filter(|s| matches!(s.state, SnapshotState::NotStarted { .. }))
        .map(|s| (*s).clone())
        .collect();
    if !not_started.is_empty() {
        return Step::TakeSnapshots(not_started);
    }
    Step::CheckSnapshots(unfinished.iter().map(|s| s.id.clone()).collect())
}

fn deploy_when_waited(request: &ApprovalRequest, schedule: &DeploySchedule, now: DateTime<Utc>) -> Step {
    match request.deploy_not_before() {
        Some(at) if now < at => Step::WaitUntil { at },
        _ => match schedule.held(now) {
            Some(held) => Step::Hold(held),
            None => Step::Deploy,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::approval::{ApprovalToken, Verdict, Voter};

    use crate::domain::fixtures::at;

    fn db(name: &str) -> DbInstanceId {
        DbInstanceId::parse(name).unwrap()
    }

    fn approved_at(minute: u32) -> ApprovalRequest {
        let mut request = crate::domain::fixtures::approval_request(1);
        let token = ApprovalToken::from_random([1; 32]);
        let approver = request.ballots[0].approver.clone();
        request.issue_link(&approver, &token);
        request
            .cast(&token, Verdict::Approve, Voter::default(), at(minute))
            .unwrap()
    }

    fn promoted(request: &ApprovalRequest, started: u32, states: &[SnapshotState]) -> ApprovalRequest {
        let snapshots = states
            .iter()
            .enumerate()
            .map(|(n, state)| {
                let db = db(&format!("db{n}"));
                PlannedSnapshot {
                    id: SnapshotId::before_deploy(&request.id, &db),
                    db,
                    state: state.clone(),
                }
            })
            .collect();
        ApprovalRequest {
            promotion: Some(Promotion {
                started_at: at(started),
                snapshots,
                deploy_started_at: None,
                deployed_at: None,
                failed: None,
            }),
            ..request.clone()
        }
    }

    #[test]
    fn snapshot_ids_are_valid_rds_identifiers_derived_from_the_request_and_db() {
        let request = approved_at(1).id;
        let id = SnapshotId::before_deploy(&request, &db("social-analytics-db"));
        assert!(id.as_str().starts_with("pre-social-analytics-db-"), "{id}");
        assert_eq!(
            id,
            SnapshotId::before_deploy(&request, &db("social-analytics-db")),
            "stable"
        );
        assert_ne!(id, SnapshotId::before_deploy(&request, &db("other-db")));
        assert_eq!(SnapshotId::parse(id.as_str()), Some(id));
        for bad in ["", "1db", "db--x", "db-", "db_x", &"a".repeat(64)] {
            assert!(SnapshotId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn snapshot_ids_stay_valid_for_odd_db_names() {
        // Every valid DB identifier, long ones included, and odd shapes around the cut.
        let request = approved_at(1).id;
        let mut names: Vec<String> = vec!["a".into(), "a-b".into(), "A1".into()];
        for len in [30, 33, 34, 35, 36, 63] {
            names.push(format!("d{}", "b".repeat(len - 1)));
            names.push(format!("d{}", "-x".repeat((len - 1) / 2)));
        }
        for cut in 30..40 {
            names.push(format!("{}-{}", "a".repeat(cut), "b".repeat(10)));
        }
        for name in names {
            let Ok(db) = DbInstanceId::parse(name.clone()) else {
                continue;
            };
            let id = SnapshotId::before_deploy(&request, &db);
            assert!(is_valid_snapshot_id(id.as_str()), "{name} → {id}");
        }
    }

    #[test]
    fn an_approval_takes_its_snapshots_at_once_then_waits_for_them() {
        let request = approved_at(1);
        let dbs = [db("social-analytics-db")];
        let Step::Begin(planned) = next_step(&request, &dbs, &DeploySchedule::default(), at(1)) else {
            panic!("snapshots first")
        };
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].state, SnapshotState::Creating);
        assert!(
            matches!(next_step(&request, &dbs, &DeploySchedule::default(), at(1) + SNAPSHOT_TIMEOUT), Step::Fail { why } if why.ends_with("RDS could not be asked")),
            "the timeout runs from the approval, even when RDS never answered"
        );

        let creating = promoted(&request, 1, &[SnapshotState::Creating]);
        assert!(
            matches!(next_step(&creating, &dbs, &DeploySchedule::default(), at(2)), Step::CheckSnapshots(ids) if ids.len() == 1)
        );
        let late = at(1) + SNAPSHOT_TIMEOUT;
        assert!(
            matches!(next_step(&creating, &dbs, &DeploySchedule::default(), late), Step::LastLook { why, .. } if why.starts_with("no snapshot within 60 minutes"))
        );
        assert!(
            matches!(
                next_step(
                    &creating,
                    &dbs,
                    &DeploySchedule::default(),
                    at(1) + SNAPSHOT_TIMEOUT * 2
                ),
                Step::Fail { .. }
            ),
            "an RDS that cannot be asked gets no more looks after twice the timeout"
        );

        let long_wait = ApprovalRequest {
            wait: TimeDelta::minutes(120),
            ..creating.clone()
        };
        assert!(
            matches!(
                next_step(&long_wait, &dbs, &DeploySchedule::default(), late),
                Step::CheckSnapshots(_)
            ),
            "a slow snapshot is no failure while the deploy is not due yet"
        );
        assert!(matches!(
            next_step(
                &long_wait,
                &dbs,
                &DeploySchedule::default(),
                at(1) + TimeDelta::minutes(120)
            ),
            Step::LastLook { .. }
        ));

        let busy = SnapshotState::NotStarted {
            why: "DB instance db0 is backing-up".into(),
        };
        let deferred = promoted(&request, 1, &[busy.clone(), SnapshotState::Creating]);
        assert!(
            matches!(next_step(&deferred, &dbs, &DeploySchedule::default(), at(2)), Step::TakeSnapshots(again) if again.len() == 1 && again[0].state == busy),
            "a snapshot its busy DB put off is asked for again before the others are checked"
        );
        assert!(
            matches!(next_step(&deferred, &dbs, &DeploySchedule::default(), late), Step::Fail { why } if why.contains("(not started: DB instance db0 is backing-up)")),
            "but not past the timeout"
        );

        let failed = promoted(
            &request,
            1,
            &[SnapshotState::Failed {
                why: "DB is stopped".into(),
            }],
        );
        assert!(
            matches!(next_step(&failed, &dbs, &DeploySchedule::default(), at(2)), Step::Fail { why } if why.ends_with("DB is stopped"))
        );
    }

    #[test]
    fn the_deploy_waits_for_the_timer_and_every_snapshot() {
        let request = approved_at(1);
        let dbs = [db("a"), db("b")];
        let one_left = promoted(&request, 1, &[SnapshotState::Available, SnapshotState::Creating]);
        assert!(matches!(
            next_step(&one_left, &dbs, &DeploySchedule::default(), at(9)),
            Step::CheckSnapshots(_)
        ));
        let ready = promoted(&request, 1, &[SnapshotState::Available, SnapshotState::Available]);
        // Approved at 10:01 with a 5-minute wait: not before 10:06.
        assert_eq!(
            next_step(&ready, &dbs, &DeploySchedule::default(), at(3)),
            Step::WaitUntil { at: at(6) }
        );
        assert_eq!(next_step(&ready, &dbs, &DeploySchedule::default(), at(6)), Step::Deploy);

        let approved = approved_at(1);
        assert_eq!(
            next_step(&approved, &[], &DeploySchedule::default(), at(2)),
            Step::Begin(Vec::new()),
            "begun (and told) without snapshots too"
        );
        let without_dbs = promoted(&approved, 2, &[]);
        assert_eq!(
            next_step(&without_dbs, &[], &DeploySchedule::default(), at(2)),
            Step::WaitUntil { at: at(6) }
        );
        assert_eq!(
            next_step(&without_dbs, &[], &DeploySchedule::default(), at(7)),
            Step::Deploy
        );

        let mut deploying = ready.clone();
        deploying.promotion.as_mut().unwrap().deploy_started_at = Some(at(6));
        assert_eq!(
            next_step(&deploying, &dbs, &DeploySchedule::default(), at(7)),
            Step::Deploy,
            "a deploy cut short resumes"
        );
        deploying.promotion.as_mut().unwrap().deployed_at = Some(at(6));
        assert_eq!(
            next_step(&deploying, &dbs, &DeploySchedule::default(), at(7)),
            Step::Done
        );
    }

    #[test]
    fn a_freeze_holds_an_approved_release_whose_snapshots_wait_for_its_end() {
        use crate::domain::schedule::Freeze;
        let freeze = DeploySchedule {
            window: None,
            freezes: vec![Freeze {
                from: at(0),
                to: at(30),
                reason: "game day".into(),
            }],
        };
        let dbs = [db("orders")];
        let request = approved_at(1);
        let Step::Hold(held) = next_step(&request, &dbs, &freeze, at(2)) else {
            panic!("held")
        };
        assert_eq!(held.until, at(30));
        assert!(held.why.contains("game day"), "{}", held.why);
        assert!(
            matches!(next_step(&request, &dbs, &freeze, at(30)), Step::Begin(planned) if planned.len() == 1),
            "the snapshots are taken when the freeze ends, not at the approval"
        );
        // Promote marks the hold each time it sees it (the last at 10:29): the timeout of a
        // promotion that cannot begin runs from then, even once the freeze is lifted early.
        let seen = ApprovalRequest {
            held_seen_at: Some(at(29)),
            ..request.clone()
        };
        let lifted = DeploySchedule::default();
        assert!(matches!(
            next_step(&seen, &dbs, &lifted, at(28) + SNAPSHOT_TIMEOUT),
            Step::Begin(_)
        ));
        assert!(
            matches!(
                next_step(&seen, &dbs, &lifted, at(29) + SNAPSHOT_TIMEOUT),
                Step::Fail { .. }
            ),
            "and their timeout runs from then"
        );

        // Approved just before a window closes: held before anything is snapshotted, since the
        // deploy is due (after its wait) when the window is shut.
        let closes = DeploySchedule {
            window: None,
            freezes: vec![Freeze {
                from: at(4),
                to: at(50),
                reason: "evening".into(),
            }],
        };
        assert!(
            matches!(next_step(&request, &dbs, &closes, at(2)), Step::Hold(held) if held.until == at(50)),
            "due at 10:06, inside the freeze: no snapshot now"
        );

        // Begun and backed up before a freeze began: the deploy waits for its end.
        let ready = promoted(&request, 1, &[SnapshotState::Available]);
        let later = DeploySchedule {
            window: None,
            freezes: vec![Freeze {
                from: at(5),
                to: at(40),
                reason: "incident".into(),
            }],
        };
        assert!(matches!(next_step(&ready, &dbs, &later, at(7)), Step::Hold(held) if held.until == at(40)));
        assert_eq!(next_step(&ready, &dbs, &later, at(40)), Step::Deploy);
        // A deploy already begun is never held.
        let mut deploying = ready.clone();
        deploying.promotion.as_mut().unwrap().deploy_started_at = Some(at(6));
        assert_eq!(next_step(&deploying, &dbs, &later, at(7)), Step::Deploy);
    }

    #[test]
    fn an_approved_rollback_goes_at_once_through_any_freeze_without_snapshots_or_wait() {
        use crate::domain::schedule::Freeze;
        let freeze = DeploySchedule {
            window: None,
            freezes: vec![Freeze {
                from: at(0),
                to: at(50),
                reason: "year-end".into(),
            }],
        };
        let dbs = [db("orders")];
        let mut request = crate::domain::fixtures::rollback_request(1);
        let token = ApprovalToken::from_random([1; 32]);
        let approver = request.ballots[0].approver.clone();
        request.issue_link(&approver, &token);
        let policy = crate::domain::fixtures::fixture_pipeline().stages()[2]
            .approval
            .clone()
            .unwrap();
        assert!(policy.wait > TimeDelta::zero() && policy.requires.is_some());
        let approved = request
            .cast(&token, Verdict::Approve, Voter::default(), at(2))
            .unwrap()
            .governed_by(&policy);
        assert_eq!(approved.status, ApprovalStatus::Approved, "no staging evidence needed");
        assert_eq!(approved.deploy_not_before(), Some(at(2)), "no wait");
        assert_eq!(next_step(&approved, &dbs, &freeze, at(2)), Step::Begin(Vec::new()));
        let begun = promoted(&approved, 2, &[]);
        assert_eq!(next_step(&begun, &dbs, &freeze, at(2)), Step::Deploy);
        // Undecided, it waits and expires like any request.
        assert_eq!(
            next_step(&request, &dbs, &freeze, at(3)),
            Step::WaitUntil { at: request.expires_at }
        );
    }

    #[test]
    fn an_undecided_request_expires_and_closed_ones_need_nothing() {
        let mut open = approved_at(1);
        open.status = ApprovalStatus::AwaitingApproval;
        open.decided_at = None;
        assert_eq!(
            next_step(&open, &[], &DeploySchedule::default(), at(2)),
            Step::WaitUntil { at: open.expires_at }
        );
        assert_eq!(
            next_step(&open, &[], &DeploySchedule::default(), open.expires_at),
            Step::Expire
        );
        for status in [
            ApprovalStatus::Rejected,
            ApprovalStatus::Cancelled,
            ApprovalStatus::Expired,
        ] {
            let closed = ApprovalRequest { status, ..open.clone() };
            assert_eq!(
                next_step(&closed, &[], &DeploySchedule::default(), at(2)),
                Step::Close { status, failed: None }
            );
            let done = ApprovalRequest {
                closed_at: Some(at(3)),
                ..closed
            };
            assert_eq!(
                next_step(&done, &[], &DeploySchedule::default(), at(4)),
                Step::Done,
                "closed once"
            );
        }
        let superseded = ApprovalRequest {
            status: ApprovalStatus::Superseded,
            ..open.clone()
        };
        assert_eq!(
            next_step(&superseded, &[], &DeploySchedule::default(), at(2)),
            Step::Done,
            "deploy-on-push told the team"
        );
    }
}
