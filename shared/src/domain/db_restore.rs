//! Restoring a snapshot to a new DB (`pipectl snapshot restore`): what the new DB is tagged
//! with, whether an existing identifier may be taken as this very restore, and what the team
//! is told. Pure: the CLI brings what RDS said.

use super::notice::{Notice, subject};
use chrono::{DateTime, Utc};

/// The tag naming the snapshot a DB was restored from: how a retry recognises its own restore.
pub const RESTORED_FROM: &str = "restored-from";
/// Set once the team was told: a retry tells them if an earlier run could not.
pub const NOTIFIED: &str = "restore-notified";

/// What a snapshot restores to: an instance, or an Aurora cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Instance,
    Cluster,
}

impl DbKind {
    pub fn noun(self) -> &'static str {
        match self {
            DbKind::Instance => "DB instance",
            DbKind::Cluster => "Aurora cluster",
        }
    }
}

/// Who restored what, when (AWS's clock) and why: the new DB's tags and the notice say it.
#[derive(Clone, Debug)]
pub struct Restore {
    pub snapshot: String,
    pub kind: DbKind,
    pub new_id: String,
    /// The DB the snapshot was taken of, as the snapshot names it.
    pub source: String,
    /// The same, when it still exists: the new DB copies its settings.
    pub live_source: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// What an identifier that already exists means for a restore of `snapshot` to it.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// An earlier run of this restore made it; `notified`: and told the team.
    ThisRestore { notified: bool },
    /// Someone else's DB: never touched.
    Taken,
}

/// An existing DB with `tags` is this restore's only if it says it was restored from `snapshot`.
pub fn existing(snapshot: &str, tags: &[(String, String)]) -> Existing {
    let tagged = |key: &str, value: &str| tags.iter().any(|(k, v)| k == key && v == value);
    match tagged(RESTORED_FROM, &tag_value(snapshot)) {
        true => Existing::ThisRestore {
            notified: tagged(NOTIFIED, "true"),
        },
        false => Existing::Taken,
    }
}

/// RDS statuses from which a restored DB never becomes available: a retry must not call
/// such a restore done.
pub fn restore_failed(status: &str) -> bool {
    matches!(
        status,
        "failed"
            | "incompatible-restore"
            | "incompatible-parameters"
            | "incompatible-network"
            | "inaccessible-encryption-credentials"
            | "deleting"
    )
}

impl Restore {
    /// The new DB's tags. RDS allows letters, digits, spaces and `_.:/=+-@` in a value of at
    /// most 256 characters: anything else in the reason becomes `-` (the notice keeps it whole).
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        vec![
            (RESTORED_FROM, tag_value(&self.snapshot)),
            ("restored-by", tag_value(&self.by)),
            (
                "restored-at",
                self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("restore-reason", tag_value(&self.reason)),
        ]
    }

    pub fn notice(&self) -> Notice {
        let (source, shape) = match &self.live_source {
            Some(source) => (
                format!("Source: {source}, untouched: it keeps running and serving.\n"),
                "has the source's class, subnet group, security groups and parameter group",
            ),
            None => (
                format!("Source: {}, which no longer exists.\n", self.source),
                "has the snapshot's class and the account's defaults for the rest (not publicly accessible)",
            ),
        };
        Notice::new(
            subject(format!(
                "Restoring {} as new {} {}",
                self.snapshot,
                self.kind.noun(),
                self.new_id
            )),
            format!(
                "{by} is restoring snapshot {snapshot} as a new {noun}, {new}.\n\n\
                 Why: {reason}\n\
                 When: {at} (AWS's clock)\n\
                 {source}\n\
                 {new} {shape}. When it is available, point the application at its endpoint (its task definition's \
                 database host or secret), then deploy that change as usual.\n",
                by = self.by,
                snapshot = self.snapshot,
                noun = self.kind.noun(),
                new = self.new_id,
                reason = self.reason,
                at = super::notice::utc(self.at),
            ),
        )
        .with_next_steps(vec![self.endpoint_command()])
    }

    /// The command that prints the new DB's endpoint once RDS has made it.
    pub fn endpoint_command(&self) -> String {
        match self.kind {
            DbKind::Instance => format!(
                "aws rds describe-db-instances --db-instance-identifier {} --query 'DBInstances[0].[DBInstanceStatus,Endpoint.Address]'",
                self.new_id
            ),
            DbKind::Cluster => format!(
                "aws rds describe-db-clusters --db-cluster-identifier {} --query 'DBClusters[0].[Status,Endpoint]'",
                self.new_id
            ),
        }
    }
}

/// `text` as RDS accepts a tag value: ASCII letters, digits and ` _.:/=+-@` (others become
/// `-`), at most 256 characters, and never starting `aws:` or `rds:` (automated snapshots are
/// named `rds:…`): that colon becomes `-`.
fn tag_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c) => c,
            _ => '-',
        })
        .take(256)
        .collect();
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("aws:") || lower.starts_with("rds:") {
        value.replace_range(3..4, "-");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore() -> Restore {
        Restore {
            snapshot: "predeploy-orders-db-20261202-1000".into(),
            kind: DbKind::Instance,
            new_id: "orders-db-restored".into(),
            source: "orders-db".into(),
            live_source: Some("orders-db".into()),
            by: "arn:aws:sts::111122223333:assumed-role/oncall/alex".into(),
            at: DateTime::parse_from_rfc3339("2026-12-02T10:15:00Z").unwrap().to_utc(),
            reason: "bad migration (#412); \"orders\" table lost rows".into(),
        }
    }

    #[test]
    fn the_new_db_is_tagged_with_who_when_why_and_from_what_in_values_rds_accepts() {
        let tags = restore().tags();
        let value = |key: &str| tags.iter().find(|(k, _)| *k == key).unwrap().1.clone();
        assert_eq!(value(RESTORED_FROM), "predeploy-orders-db-20261202-1000");
        assert_eq!(
            value("restored-by"),
            "arn:aws:sts::111122223333:assumed-role/oncall/alex"
        );
        assert_eq!(value("restored-at"), "2026-12-02T10:15:00Z");
        assert_eq!(
            value("restore-reason"),
            "bad migration --412-- -orders- table lost rows"
        );
        let long = Restore {
            reason: "x".repeat(300),
            ..restore()
        };
        assert_eq!(long.tags()[3].1.len(), 256);
        let automated = Restore {
            snapshot: "rds:orders-db-2026-12-01-03-10".into(),
            reason: "aws: prefix, ünïcode".into(),
            ..restore()
        };
        assert_eq!(automated.tags()[0].1, "rds-orders-db-2026-12-01-03-10");
        assert_eq!(automated.tags()[3].1, "aws- prefix- -n-code");
    }

    #[test]
    fn only_a_db_restored_from_the_same_snapshot_counts_as_this_restore() {
        let tagged = |v: &str| vec![(RESTORED_FROM.to_owned(), v.to_owned())];
        assert_eq!(
            existing("snap-1", &tagged("snap-1")),
            Existing::ThisRestore { notified: false }
        );
        assert_eq!(existing("snap-1", &tagged("snap-2")), Existing::Taken);
        assert_eq!(existing("snap-1", &[]), Existing::Taken);
        // Compared as stored: an automated snapshot's `rds:` is kept as `rds-`.
        let mut told = tagged("rds-orders-1");
        told.push((NOTIFIED.to_owned(), "true".to_owned()));
        assert_eq!(
            existing("rds:orders-1", &told),
            Existing::ThisRestore { notified: true }
        );
        assert!(restore_failed("incompatible-restore") && !restore_failed("creating"));
    }

    #[test]
    fn the_notice_says_who_why_that_the_source_is_untouched_and_how_to_reach_the_new_db() {
        let notice = restore().notice();
        assert!(
            notice.subject.is_ascii() && notice.subject.len() < 100,
            "{}",
            notice.subject
        );
        assert!(
            notice
                .message
                .contains("Why: bad migration (#412); \"orders\" table lost rows")
        );
        assert!(notice.message.contains("orders-db, untouched"));
        let gone = Restore {
            live_source: None,
            ..restore()
        }
        .notice();
        assert!(
            gone.message.contains("orders-db, which no longer exists"),
            "{}",
            gone.message
        );
        assert!(!gone.message.contains("untouched"));
        assert!(notice.next_steps[0].contains("--db-instance-identifier orders-db-restored"));
    }
}
