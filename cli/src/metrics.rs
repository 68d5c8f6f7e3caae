//! `pipectl metrics [--days N] [--json]`: the four DORA measures per application, from the
//! deployment records, for its last stage (production) and for every stage.

use chrono::{TimeDelta, Utc};
use serde::Serialize;
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::metrics::{Band, Dora, Rated, dora};
use shared::domain::pipeline::Pipeline;

#[derive(Serialize)]
struct ApplicationFigures {
    application: String,
    /// The last stage in promotion order, which DORA measures.
    production: String,
    stages: Vec<StageFigures>,
}

#[derive(Serialize)]
struct StageFigures {
    stage: String,
    #[serde(flatten)]
    figures: Dora,
}

pub async fn report(records: &DynamoRecords, pipeline: &Pipeline, days: i64, json: bool) -> Result<(), String> {
    let now = Utc::now();
    let mut applications = Vec::new();
    for app in pipeline.applications() {
        let mut stages = Vec::new();
        for stage in pipeline.stages() {
            let mut records_of_stage = Vec::new();
            for service in &app.services {
                records_of_stage.extend(
                    crate::rollback::history_since(records, stage, service, Some(now - TimeDelta::days(days)))
                        .await?
                        .into_iter()
                        .filter(|d| d.stage == stage.name),
                );
            }
            stages.push(StageFigures {
                stage: stage.name.to_string(),
                figures: dora(&records_of_stage, days, now),
            });
        }
        applications.push(ApplicationFigures {
            application: app.name.to_string(),
            production: pipeline.stages().last().map(|s| s.name.to_string()).unwrap_or_default(),
            stages,
        });
    }
    if json {
        let out = serde_json::json!({ "days": days, "at": now.to_rfc3339(), "applications": applications });
        println!("{}", serde_json::to_string_pretty(&out).expect("figures serialize"));
        return Ok(());
    }
    println!("DORA measures over the last {days} days (bands: 2023 State of DevOps report)");
    for app in &applications {
        println!();
        println!("{} (production: {})", app.application, app.production);
        println!(
            "  {:<12} {:>8} {:>24} {:>24} {:>24} {:>24}",
            "stage", "releases", "deploys/day", "lead time (h)", "change failure %", "time to restore (h)"
        );
        for stage in &app.stages {
            let f = &stage.figures;
            println!(
                "  {:<12} {:>8} {:>24} {:>24} {:>24} {:>24}",
                stage.stage,
                f.releases,
                cell(&f.deployment_frequency),
                cell(&f.lead_time_hours),
                cell(&f.change_failure_rate),
                cell(&f.time_to_restore_hours)
            );
        }
    }
    Ok(())
}

/// `2.50 (elite)`, or `-` where the period held nothing to measure.
fn cell(rated: &Rated<f64>) -> String {
    match (rated.value, rated.band) {
        (Some(value), Some(band)) => format!("{value:.2} ({})", band_name(band)),
        _ => "-".to_owned(),
    }
}

fn band_name(band: Band) -> &'static str {
    match band {
        Band::Elite => "elite",
        Band::High => "high",
        Band::Medium => "medium",
        Band::Low => "low",
    }
}
