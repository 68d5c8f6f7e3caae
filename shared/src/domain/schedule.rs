//! When a stage takes deploys: its weekly deploy window (in its own time zone, from the IANA
//! database) and its freezes. Pure: whether a deploy is held at an instant, and until when.
//! Rollbacks never ask: only deploys are held.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::fmt;

/// The days, hours and time zone a stage takes deploys in. `from` later than `to` is a window
/// over midnight: it opens on a listed day and closes the next morning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployWindow {
    days: Vec<Weekday>,
    from: NaiveTime,
    to: NaiveTime,
    timezone: Tz,
}

/// A span (UTC) in which nothing deploys to the stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freeze {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub reason: String,
}

/// A stage's window and freezes; the default holds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploySchedule {
    pub window: Option<DeployWindow>,
    pub freezes: Vec<Freeze>,
}

/// Why a deploy waits, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub until: DateTime<Utc>,
    pub why: String,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "held until {} UTC: {}", super::notice::utc(self.until), self.why)
    }
}

const DAY_NAMES: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// How far ahead a schedule is searched for an opening: past that, it is reported as the hold.
const HORIZON: TimeDelta = TimeDelta::days(3660);

impl DeployWindow {
    /// `days` as `mon`…`sun`, `from` and `to` as `HH:MM`, `timezone` an IANA name. Errors name
    /// the key at fault (`days`, `from`, `to`, `timezone`) and say why.
    pub fn parse(days: &[String], from: &str, to: &str, timezone: &str) -> Result<Self, (&'static str, String)> {
        if days.is_empty() {
            return Err((
                "days",
                "names no day: at least one of mon, tue, wed, thu, fri, sat, sun".into(),
            ));
        }
        let mut parsed = Vec::new();
        for day in days {
            let Some((_, weekday)) = DAY_NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(day)) else {
                return Err((
                    "days",
                    format!("`{day}` is not one of mon, tue, wed, thu, fri, sat, sun"),
                ));
            };
            if parsed.contains(weekday) {
                return Err(("days", format!("`{day}` is named twice")));
            }
            parsed.push(*weekday);
        }
        let time = |key: &'static str, text: &str| {
            NaiveTime::parse_from_str(text, "%H:%M")
                .ok()
                .filter(|_| text.len() == 5)
                .ok_or((key, format!("`{text}` is not a time of day as HH:MM (00:00 to 23:59)")))
        };
        let (from, to) = (time("from", from)?, time("to", to)?);
        if from == to {
            return Err(("to", "equals `from`: the window would be empty".into()));
        }
        let timezone = timezone.parse::<Tz>().map_err(|_| {
            (
                "timezone",
                format!("`{timezone}` is not a time zone of the IANA database (e.g. Europe/Berlin, UTC)"),
            )
        })?;
        Ok(DeployWindow {
            days: parsed,
            from,
            to,
            timezone,
        })
    }

    /// Whether deploys may start at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.timezone);
        let (day, time) = (local.weekday(), local.time());
        if self.from < self.to {
            self.days.contains(&day) && self.from <= time && time < self.to
        } else {
            (self.days.contains(&day) && time >= self.from) || (self.days.contains(&day.pred()) && time < self.to)
        }
    }

    /// The first instant at or after `at` the window is open.
    fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_open(at) {
            return at;
        }
        let today = at.with_timezone(&self.timezone).date_naive();
        (0..=8)
            .filter_map(|n| today.checked_add_days(Days::new(n)))
            .filter(|date| self.days.contains(&date.weekday()))
            .map(|date| self.opening_on(date))
            .find(|opening| *opening > at && self.is_open(*opening))
            .unwrap_or(at + HORIZON)
    }

    /// When the window opens on `date`, local time: a `from` that a daylight-saving change skips
    /// opens when the clocks have jumped; one that occurs twice opens at the first.
    fn opening_on(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut local = date.and_time(self.from);
        loop {
            match self.timezone.from_local_datetime(&local) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => return at.with_timezone(&Utc),
                LocalResult::None => local += TimeDelta::minutes(1),
            }
        }
    }
}

impl fmt::Display for DeployWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = DAY_NAMES
            .iter()
            .filter(|(_, day)| self.days.contains(day))
            .map(|(name, _)| *name)
            .collect();
        write!(
            f,
            "{} {}–{} {}",
            days.join(","),
            self.from.format("%H:%M"),
            self.to.format("%H:%M"),
            self.timezone.name()
        )
    }
}

impl DeploySchedule {
    /// Whether a deploy starting at `now` waits, and until when: the first instant that is in
    /// the window and in no freeze.
    pub fn held(&self, now: DateTime<Utc>) -> Option<Held> {
        let until = self.next_free(now);
        if until == now {
            return None;
        }
        let why = match self.freeze_at(now) {
            Some(freeze) => format!("freeze until {} UTC ({})", super::notice::utc(freeze.to), freeze.reason),
            None => match &self.window {
                Some(window) => format!("outside the deploy window ({window})"),
                None => "held".to_owned(),
            },
        };
        Some(Held { until, why })
    }

    /// The first instant at or after `at` a deploy may start.
    pub fn next_free(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let mut candidate = at;
        while candidate < at + HORIZON {
            if let Some(window) = &self.window {
                candidate = window.next_open(candidate);
            }
            match self.freeze_at(candidate) {
                Some(freeze) => candidate = freeze.to,
                None => return candidate,
            }
        }
        candidate
    }

    fn freeze_at(&self, at: DateTime<Utc>) -> Option<&Freeze> {
        self.freezes
            .iter()
            .filter(|f| f.from <= at && at < f.to)
            .max_by_key(|f| f.to)
    }

    /// The schedule as notices and `pipectl status` show it.
    pub fn describe(&self) -> Option<String> {
        let window = self.window.as_ref().map(|w| format!("window {w}"));
        let freezes = self.freezes.iter().map(|f| {
            format!(
                "freeze {} – {} UTC ({})",
                super::notice::utc(f.from),
                super::notice::utc(f.to),
                f.reason
            )
        });
        let parts: Vec<String> = window.into_iter().chain(freezes).collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn window(days: &[&str], from: &str, to: &str, tz: &str) -> DeployWindow {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        DeployWindow::parse(&days, from, to, tz).unwrap()
    }

    fn berlin_office_hours() -> DeploySchedule {
        DeploySchedule {
            window: Some(window(&["mon", "tue", "wed", "thu"], "09:00", "16:00", "Europe/Berlin")),
            freezes: Vec::new(),
        }
    }

    #[test]
    fn a_window_opens_on_its_days_in_its_own_time_zone() {
        let schedule = berlin_office_hours();
        // Monday 2026-12-07 10:00 Berlin (CET, UTC+1) is 09:00 UTC.
        assert_eq!(schedule.held(utc("2026-12-07T09:00:00Z")), None);
        assert_eq!(schedule.held(utc("2026-12-07T08:00:00Z")), None, "09:00 Berlin: open");
        let early = schedule.held(utc("2026-12-07T07:59:00Z")).unwrap();
        assert_eq!(early.until, utc("2026-12-07T08:00:00Z"));
        assert!(
            early.why.contains("mon,tue,wed,thu 09:00–16:00 Europe/Berlin"),
            "{}",
            early.why
        );
        // 16:00 Berlin closes it: Thursday's close waits for Monday.
        let thursday_evening = schedule.held(utc("2026-12-10T15:00:00Z")).unwrap();
        assert_eq!(thursday_evening.until, utc("2026-12-14T08:00:00Z"));
        assert_eq!(
            schedule.held(utc("2026-12-12T12:00:00Z")).unwrap().until,
            utc("2026-12-14T08:00:00Z"),
            "Saturday"
        );
    }

    #[test]
    fn daylight_saving_moves_the_window_in_utc_not_in_local_time() {
        let schedule = berlin_office_hours();
        // Berlin springs forward on Sunday 2026-03-29: Monday 09:00 is 08:00 UTC the week
        // before, 07:00 UTC after.
        assert_eq!(
            schedule.held(utc("2026-03-20T15:30:00Z")).unwrap().until,
            utc("2026-03-23T08:00:00Z")
        );
        assert_eq!(
            schedule.held(utc("2026-03-27T15:30:00Z")).unwrap().until,
            utc("2026-03-30T07:00:00Z")
        );
        assert_eq!(schedule.held(utc("2026-03-30T07:30:00Z")), None);
        // And falls back on Sunday 2026-10-25: 16:00 Berlin is 14:00 UTC before, 15:00 after.
        assert!(schedule.held(utc("2026-10-22T14:30:00Z")).is_some(), "Thursday, CEST");
        assert_eq!(schedule.held(utc("2026-10-26T14:30:00Z")), None, "Monday, CET");
    }

    #[test]
    fn a_window_opening_in_the_skipped_hour_opens_when_the_clocks_jump() {
        let night = DeploySchedule {
            window: Some(window(&["sun"], "02:30", "05:00", "Europe/Berlin")),
            freezes: Vec::new(),
        };
        // 02:30 does not exist on 2026-03-29: at 02:00 CET the clocks go to 03:00 CEST (01:00 UTC).
        assert_eq!(
            night.held(utc("2026-03-28T12:00:00Z")).unwrap().until,
            utc("2026-03-29T01:00:00Z")
        );
        // 02:30 happens twice on 2026-10-25: the window opens at the first (00:30 UTC).
        assert_eq!(
            night.held(utc("2026-10-24T12:00:00Z")).unwrap().until,
            utc("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn a_window_over_midnight_closes_the_next_morning() {
        let nights = DeploySchedule {
            window: Some(window(&["fri"], "22:00", "04:00", "America/New_York")),
            freezes: Vec::new(),
        };
        // Friday 2026-12-11 22:00 New York (EST, UTC-5) is Saturday 03:00 UTC.
        assert_eq!(
            nights.held(utc("2026-12-11T20:00:00Z")).unwrap().until,
            utc("2026-12-12T03:00:00Z")
        );
        assert_eq!(nights.held(utc("2026-12-12T08:59:00Z")), None, "Saturday 03:59 there");
        assert_eq!(
            nights.held(utc("2026-12-12T09:00:00Z")).unwrap().until,
            utc("2026-12-19T03:00:00Z"),
            "Saturday 04:00 there: next Friday night"
        );
    }

    #[test]
    fn a_freeze_holds_past_the_window_and_says_why() {
        let schedule = DeploySchedule {
            freezes: vec![Freeze {
                from: utc("2026-12-20T00:00:00Z"),
                to: utc("2027-01-04T00:00:00Z"),
                reason: "year-end freeze".into(),
            }],
            ..berlin_office_hours()
        };
        let held = schedule.held(utc("2026-12-21T09:00:00Z")).unwrap();
        // The freeze ends on Monday 2027-01-04 at 00:00 UTC; the window opens at 09:00 Berlin.
        assert_eq!(held.until, utc("2027-01-04T08:00:00Z"));
        assert!(held.why.contains("year-end freeze"), "{}", held.why);
        let freeze_only = DeploySchedule {
            window: None,
            ..schedule.clone()
        };
        assert_eq!(
            freeze_only.held(utc("2026-12-31T23:59:59Z")).unwrap().until,
            utc("2027-01-04T00:00:00Z"),
            "across the new year"
        );
        assert_eq!(freeze_only.held(utc("2027-01-04T00:00:00Z")), None, "the end is free");
        assert_eq!(DeploySchedule::default().held(utc("2026-12-25T00:00:00Z")), None);
    }

    #[test]
    fn bad_windows_say_which_key_and_why() {
        let days = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let error = |d: &[&str], from, to, tz| DeployWindow::parse(&days(d), from, to, tz).unwrap_err();
        assert_eq!(error(&[], "09:00", "16:00", "UTC").0, "days");
        assert_eq!(error(&["mon", "funday"], "09:00", "16:00", "UTC").0, "days");
        assert_eq!(error(&["mon", "mon"], "09:00", "16:00", "UTC").0, "days");
        assert_eq!(error(&["mon"], "9am", "16:00", "UTC").0, "from");
        assert_eq!(error(&["mon"], "09:00", "24:00", "UTC").0, "to");
        assert_eq!(error(&["mon"], "09:00", "09:00", "UTC").0, "to");
        assert_eq!(error(&["mon"], "09:00", "16:00", "Mars/Olympus").0, "timezone");
        assert!(DeployWindow::parse(&days(&["Sat"]), "09:00", "16:00", "Asia/Kolkata").is_ok());
    }
}
