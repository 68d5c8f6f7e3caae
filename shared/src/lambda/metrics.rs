//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout, which CloudWatch
//! Logs turns into metrics with no PutMetricData call (and no client at init).

use crate::domain::metrics::{Measured, Unit};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The namespace the template's alarms and dashboard read.
pub const NAMESPACE: &str = "EcsDeployHandlers";

/// The EMF line for `metrics` at `at`, each under the dimension sets `dimension_sets` (each a
/// list of names from `dimensions`, whose values the line carries).
pub fn emf_line(
    dimensions: &[(&str, &str)],
    dimension_sets: &[&[&str]],
    metrics: &[Measured],
    at: DateTime<Utc>,
) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": metrics.iter().map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        line.insert((*name).into(), Value::from(*value));
    }
    for metric in metrics {
        let value = match metric.unit {
            Unit::Count => Value::from(metric.value as u64),
            Unit::Seconds => Value::from(metric.value),
        };
        line.insert(metric.name.into(), value);
    }
    Value::Object(line).to_string()
}

/// Writes counts for this function (dimension `FunctionName`: `AWS_LAMBDA_FUNCTION_NAME`, which
/// Lambda sets).
pub fn publish(metrics: &[(&'static str, u64)], at: DateTime<Utc>) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let measured: Vec<Measured> = metrics
        .iter()
        .map(|(name, count)| Measured::count(name, *count))
        .collect();
    println!(
        "{}",
        emf_line(&[("FunctionName", &function)], &[&["FunctionName"]], &measured, at)
    );
}

/// Writes a deployment's metrics by stage and application, and by stage alone: from a function
/// only (`AWS_LAMBDA_FUNCTION_NAME` set), whose log CloudWatch reads; an operator's terminal
/// (pipectl) has no such log.
pub fn publish_deployment(stage: &str, application: &str, metrics: &[Measured], at: DateTime<Utc>) {
    if metrics.is_empty() || std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return;
    }
    println!(
        "{}",
        emf_line(
            &[("Stage", stage), ("Application", application)],
            &[&["Stage", "Application"], &["Stage"]],
            metrics,
            at
        )
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_each_metric_and_carries_its_value() {
        let at = "2026-12-01T00:00:00Z".parse().unwrap();
        let line: Value = serde_json::from_str(&emf_line(
            &[("FunctionName", "stack-promote")],
            &[&["FunctionName"]],
            &[
                Measured::count("PromotionsStuck", 2),
                Measured::count("PromotionStepsFailed", 0),
            ],
            at,
        ))
        .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(
            directive["Metrics"][0],
            json!({"Name": "PromotionsStuck", "Unit": "Count"})
        );
        assert_eq!(line["_aws"]["Timestamp"], 1_796_083_200_000_i64);
        assert_eq!(
            (line["PromotionsStuck"].as_u64(), line["PromotionStepsFailed"].as_u64()),
            (Some(2), Some(0))
        );
        assert_eq!(line["FunctionName"], "stack-promote");
    }

    #[test]
    fn a_deployment_line_is_by_stage_and_application_and_by_stage() {
        let at = "2026-12-01T00:00:00Z".parse().unwrap();
        let line: Value = serde_json::from_str(&emf_line(
            &[("Stage", "prod"), ("Application", "backend")],
            &[&["Stage", "Application"], &["Stage"]],
            &[Measured::seconds("LeadTime", 5400.5)],
            at,
        ))
        .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Stage", "Application"], ["Stage"]]));
        assert_eq!(directive["Metrics"][0], json!({"Name": "LeadTime", "Unit": "Seconds"}));
        assert_eq!(
            (line["Stage"].as_str(), line["Application"].as_str()),
            (Some("prod"), Some("backend"))
        );
        assert_eq!(line["LeadTime"].as_f64(), Some(5400.5));
    }
}
