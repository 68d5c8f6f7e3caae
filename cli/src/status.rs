//! `pipectl status [--stage S] [--json]`: every stage × application × service on one screen:
//! what runs (tag, digest, task definition, since when), the last deploy and how it stands,
//! what is in flight (held pushes, releases awaiting approval), quarantined digests; per stage
//! whether deploys may start now (its window and freezes) and whether its alarms are quiet;
//! the open approval requests with who has voted.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::adapters::cloudwatch::CloudWatchAlarms;
use shared::adapters::dynamo::DynamoRecords;
use shared::adapters::ecs::EcsAdapter;
use shared::domain::approval::{ApprovalId, ApprovalStatus};
use shared::domain::approval_page::{held, state_line, vote_line};
use shared::domain::deployment::{Deployment, Kind, Status};
use shared::domain::notice::utc;
use shared::domain::pipeline::{Pipeline, Stage};
use shared::ports::{AlarmStates, Deployments, Ecs};
use std::io::IsTerminal;

#[derive(Serialize)]
struct StageStatus {
    stage: String,
    cluster: String,
    /// Whether a deploy may start now, and if not until when and why.
    deploys: Window,
    /// The stage's alarms in ALARM (empty: quiet), of `alarms_watched`.
    alarms_in_alarm: Vec<String>,
    alarms_watched: usize,
    services: Vec<ServiceStatus>,
    approvals: Vec<OpenRequest>,
}

#[derive(Serialize)]
struct Window {
    open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<String>,
}

#[derive(Serialize)]
struct ServiceStatus {
    application: String,
    service: String,
    /// The task definition ECS runs (its primary deployment's).
    task_definition: String,
    tag: Option<String>,
    digest: Option<String>,
    since: Option<DateTime<Utc>>,
    last: Option<Last>,
    in_flight: Vec<InFlight>,
    quarantined: Vec<String>,
}

#[derive(Serialize)]
struct Last {
    id: String,
    kind: String,
    status: String,
}

#[derive(Serialize)]
struct InFlight {
    id: String,
    tag: String,
    status: String,
}

#[derive(Serialize)]
struct OpenRequest {
    id: String,
    application: String,
    tag: String,
    /// An operator's rollback to `tag` (`rollback_approval`), not a release.
    rollback: bool,
    state: String,
    votes: Vec<String>,
}

pub async fn show(
    aws: &aws_config::SdkConfig,
    records: &DynamoRecords,
    pipeline: &Pipeline,
    only: Option<&str>,
    json: bool,
) -> Result<(), String> {
    let now = Utc::now();
    let ecs = EcsAdapter::new(aws);
    let alarms = CloudWatchAlarms::new(aws);
    let stages: Vec<&Stage> = pipeline
        .stages()
        .iter()
        .filter(|s| only.is_none_or(|only| s.name.as_str() == only))
        .collect();
    if stages.is_empty() {
        return Err(format!("no stage `{}` in the pipeline file", only.unwrap_or_default()));
    }
    let held_pushes = shared::ports::held_records(records).await.map_err(|e| e.to_string())?;
    let open = records
        .approvals_in(&[ApprovalStatus::AwaitingApproval, ApprovalStatus::Approved])
        .await
        .map_err(|e| e.to_string())?;
    let mut report = Vec::new();
    for stage in stages {
        let watched: Vec<_> = stage.alarms.iter().map(|g| g.alarm.clone()).collect();
        let in_alarm = match watched.is_empty() {
            true => Vec::new(),
            false => alarms.in_alarm(&watched).await.map_err(|e| e.to_string())?,
        };
        let mut services = Vec::new();
        for app in pipeline.applications() {
            for spec in &app.services {
                let state = records
                    .service_state(&stage.cluster, &spec.name)
                    .await
                    .map_err(|e| e.to_string())?;
                let running = ecs
                    .running_service(&stage.cluster, &spec.name)
                    .await
                    .map_err(|e| format!("{}/{}: {e}", stage.cluster, spec.name))?;
                let latest = match &state.latest {
                    Some(latest) => records.get_deployment(&latest.id).await.map_err(|e| e.to_string())?,
                    None => None,
                };
                let mut in_flight: Vec<InFlight> = held_pushes
                    .iter()
                    .filter(|d| d.cluster == stage.cluster && d.service == spec.name)
                    .map(in_flight_of)
                    .collect();
                if let Some(waiting) = &state.awaiting_approval
                    && let Some(record) = records.get_deployment(&waiting.id).await.map_err(|e| e.to_string())?
                    && matches!(record.status, Status::AwaitingApproval | Status::Approved)
                {
                    // Its request says how it stands (the record moves only when it deploys):
                    // approved, and held or not, as promote reads it.
                    let request = ApprovalId::for_release(&record.image, &stage.name, &app.name);
                    let mut shown = in_flight_of(&record);
                    if let Some(request) = open.iter().find(|r| r.id == request) {
                        let request = request.governed_in(pipeline);
                        shown.status = match held(&request, &stage.schedule, now) {
                            Some(_) => format!("{} (held)", request.status),
                            None => request.status.to_string(),
                        };
                    }
                    in_flight.push(shown);
                }
                if let Some(latest) = latest.as_ref().filter(|d| d.status == Status::Deploying) {
                    in_flight.push(in_flight_of(latest));
                }
                services.push(ServiceStatus {
                    application: app.name.to_string(),
                    service: spec.name.to_string(),
                    task_definition: short_revision(&running.task_definition),
                    tag: latest.as_ref().map(|d| d.image.tag.to_string()),
                    digest: latest.as_ref().and_then(running_digest),
                    since: latest.as_ref().map(|d| d.completed_at.unwrap_or(d.requested_at)),
                    last: latest.as_ref().map(|d| Last {
                        id: d.id.to_string(),
                        kind: match &d.kind {
                            Kind::Deploy => "deploy".to_owned(),
                            Kind::Rollback { of, .. } => format!("rollback of {of}"),
                        },
                        status: d.status.to_string(),
                    }),
                    in_flight,
                    quarantined: state.quarantined.iter().map(ToString::to_string).collect(),
                });
            }
        }
        let held_now = stage.schedule.held(now);
        report.push(StageStatus {
            stage: stage.name.to_string(),
            cluster: stage.cluster.to_string(),
            deploys: Window {
                open: held_now.is_none(),
                until: held_now.as_ref().map(|h| h.until),
                why: held_now.map(|h| h.why),
                schedule: stage.schedule.describe(),
            },
            alarms_in_alarm: in_alarm.iter().map(ToString::to_string).collect(),
            alarms_watched: watched.len(),
            services,
            approvals: open
                .iter()
                .filter(|r| r.stage == stage.name && r.in_flight())
                // As promote reads it: a status the page wrote counts only as far as the file allows.
                .map(|r| r.governed_in(pipeline))
                .map(|r| OpenRequest {
                    id: r.id.to_string(),
                    application: r.application.to_string(),
                    tag: r.image.tag.to_string(),
                    rollback: r.rollback.is_some(),
                    state: match held(&r, &stage.schedule, now) {
                        Some(held) => format!(
                            "{} Held until {} UTC: {}.",
                            state_line(&r, now),
                            utc(held.until),
                            held.why
                        ),
                        None => state_line(&r, now),
                    },
                    votes: r
                        .ballots
                        .iter()
                        .map(|b| match &b.vote {
                            Some(vote) => format!("{}: {}", b.approver, vote_line(vote)),
                            None => format!("{}: has not voted", b.approver),
                        })
                        .collect(),
                })
                .collect(),
        });
    }
    if json {
        let out = serde_json::json!({ "at": now.to_rfc3339(), "stages": report });
        println!("{}", serde_json::to_string_pretty(&out).expect("status serializes"));
        return Ok(());
    }
    print!("{}", render(&report, std::io::stdout().is_terminal()));
    Ok(())
}

fn in_flight_of(record: &Deployment) -> InFlight {
    InFlight {
        id: record.id.to_string(),
        tag: record.image.tag.to_string(),
        status: record.status.to_string(),
    }
}

/// The digest the deployment puts on the service: the pushed one, or for a rollback the one
/// its restored definition names.
fn running_digest(record: &Deployment) -> Option<String> {
    let image = record.image_running()?;
    image.split_once('@').map(|(_, digest)| digest.to_owned())
}

/// `family:revision` of a task definition ARN.
fn short_revision(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_owned()
}

/// `sha256:0123456789ab…`: enough of a digest to tell it apart on screen.
fn short_digest(digest: &str) -> String {
    match digest.get(..19) {
        Some(short) if digest.len() > 19 => format!("{short}…"),
        _ => digest.to_owned(),
    }
}

/// The status screen: one aligned table of services, then each stage's window, alarms and open
/// requests; colours only on a terminal.
fn render(report: &[StageStatus], colour: bool) -> String {
    let paint = |text: &str, code: &str| match colour {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_owned(),
    };
    let status_colour = |status: &str| match status {
        "SUCCEEDED" => "32",
        "FAILED" | "ROLLED_BACK" => "31",
        _ => "33",
    };
    let header = [
        "STAGE",
        "APPLICATION",
        "SERVICE",
        "RUNNING",
        "TAG",
        "DIGEST",
        "SINCE (UTC)",
        "LAST",
        "STATUS",
        "IN FLIGHT",
        "QUARANTINED",
    ];
    let mut rows: Vec<[String; 11]> = Vec::new();
    for stage in report {
        for s in &stage.services {
            rows.push([
                stage.stage.clone(),
                s.application.clone(),
                s.service.clone(),
                s.task_definition.clone(),
                s.tag.clone().unwrap_or_else(|| "-".into()),
                s.digest.as_deref().map(short_digest).unwrap_or_else(|| "-".into()),
                s.since.map(utc).unwrap_or_else(|| "-".into()),
                s.last.as_ref().map(|l| l.id.clone()).unwrap_or_else(|| "-".into()),
                s.last.as_ref().map(|l| l.status.clone()).unwrap_or_else(|| "-".into()),
                match s.in_flight.is_empty() {
                    true => "-".into(),
                    false => s
                        .in_flight
                        .iter()
                        .map(|f| format!("{} {}", f.tag, f.status))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                match s.quarantined.is_empty() {
                    true => "-".into(),
                    false => s
                        .quarantined
                        .iter()
                        .map(|d| short_digest(d))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let shown = match i {
                8 if cell != "-" => paint(cell, status_colour(cell)),
                _ => cell.clone(),
            };
            out.push_str(&shown);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(str::to_owned));
    for row in &rows {
        out.push_str(&line(row));
    }
    for stage in report {
        out.push('\n');
        let deploys = match (&stage.deploys.until, &stage.deploys.why) {
            (Some(until), Some(why)) => paint(&format!("held until {} UTC ({why})", utc(*until)), "33"),
            _ => paint("open", "32"),
        };
        let alarms = match (stage.alarms_watched, stage.alarms_in_alarm.is_empty()) {
            (0, _) => "none watched".to_owned(),
            (n, true) => paint(&format!("quiet ({n})"), "32"),
            (_, false) => paint(&format!("IN ALARM: {}", stage.alarms_in_alarm.join(", ")), "31"),
        };
        out.push_str(&format!("{}: deploys {deploys}; alarms {alarms}\n", stage.stage));
        if let Some(schedule) = &stage.deploys.schedule {
            out.push_str(&format!("  {schedule}\n"));
        }
        for request in &stage.approvals {
            let what = match request.rollback {
                true => format!("ROLLBACK of {} to {}", request.application, request.tag),
                false => format!("{} of {}", request.tag, request.application),
            };
            out.push_str(&format!("  approval {} {what}: {}\n", request.id, request.state));
            for vote in &request.votes {
                out.push_str(&format!("    {vote}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(open: bool, in_alarm: &[&str]) -> StageStatus {
        StageStatus {
            stage: "prod".into(),
            cluster: "shop-prod".into(),
            deploys: Window {
                open,
                until: (!open).then(|| "2027-01-04T08:00:00Z".parse().unwrap()),
                why: (!open).then(|| "freeze until 2027-01-04 00:00:00 UTC (year-end)".into()),
                schedule: None,
            },
            alarms_in_alarm: in_alarm.iter().map(|a| a.to_string()).collect(),
            alarms_watched: 2,
            services: vec![ServiceStatus {
                application: "shop".into(),
                service: "checkout-service".into(),
                task_definition: "checkout-prod:12".into(),
                tag: Some("v1.75.0".into()),
                digest: Some(format!("sha256:{}", "ab".repeat(32))),
                since: Some("2026-12-01T10:00:00Z".parse().unwrap()),
                last: Some(Last {
                    id: "dep-1".into(),
                    kind: "deploy".into(),
                    status: "SUCCEEDED".into(),
                }),
                in_flight: vec![],
                quarantined: vec![],
            }],
            approvals: vec![],
        }
    }

    #[test]
    fn the_screen_is_aligned_plain_off_a_terminal_and_coloured_on_one() {
        let plain = render(&[stage(false, &["checkout-prod-5xx"])], false);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(
            lines[0].find("RUNNING"),
            lines[1].find("checkout-prod:12"),
            "columns line up:\n{plain}"
        );
        assert!(lines[1].contains("sha256:abababababab…"), "{plain}");
        assert!(!plain.contains('\x1b'), "no colour off a terminal");
        assert!(plain.contains(
            "prod: deploys held until 2027-01-04 08:00:00 UTC (freeze until 2027-01-04 00:00:00 UTC (year-end)); alarms IN ALARM: checkout-prod-5xx"
        ));
        let coloured = render(&[stage(true, &[])], true);
        assert!(coloured.contains("\x1b[32mSUCCEEDED\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[32mquiet (2)\x1b[0m"));
    }
}
