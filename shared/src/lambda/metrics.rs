//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout, which CloudWatch
//! Logs turns into metrics with no PutMetricData call (and no client at init).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The namespace the template's alarms on these metrics read.
pub const NAMESPACE: &str = "EcsDeployHandlers";

/// The EMF line for `metrics` (name, count) at `at`, with the dimension `FunctionName`.
pub fn emf_line(function: &str, metrics: &[(&str, u64)], at: DateTime<Utc>) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("FunctionName".into(), Value::from(function));
    for (name, count) in metrics {
        line.insert((*name).into(), Value::from(*count));
    }
    Value::Object(line).to_string()
}

/// Writes the metrics for this function (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets).
pub fn publish(metrics: &[(&str, u64)], at: DateTime<Utc>) {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    println!("{}", emf_line(&function, metrics, at));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_names_each_metric_and_carries_its_value() {
        let at = "2026-12-01T00:00:00Z".parse().unwrap();
        let line: Value = serde_json::from_str(&emf_line(
            "stack-promote",
            &[("PromotionsStuck", 2), ("PromotionStepsFailed", 0)],
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
}
