//! `pipectl validate --template`: the template takes every parameter the pipeline file
//! implies, and samconfig.toml (beside it), where it sets one, sets a value covering the file.

use crate::pipeline::template_parameters;
use shared::domain::pipeline::Pipeline;
use std::collections::BTreeSet;
use std::path::Path;

pub fn check(pipeline: &Pipeline, template: &Path) -> Result<(), String> {
    let shown = template.display();
    let text = std::fs::read_to_string(template).map_err(|e| format!("{shown}: {e}"))?;
    let parsed: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let declared: BTreeSet<&str> = parsed
        .get("Parameters")
        .and_then(|p| p.as_mapping())
        .map(|parameters| parameters.keys().filter_map(|k| k.as_str()).collect())
        .unwrap_or_default();
    let implied = template_parameters(pipeline)?;
    for name in implied.iter().map(|(name, _)| *name).chain(["PassableRoleArns"]) {
        if !declared.contains(name) {
            return Err(format!(
                "{shown}: no {name} parameter, which deploys take from the pipeline file"
            ));
        }
    }
    let samconfig = template.with_file_name("samconfig.toml");
    let Ok(config) = std::fs::read_to_string(&samconfig) else {
        return Ok(());
    };
    let config: toml::Table = toml::from_str(&config).map_err(|e| format!("{}: {e}", samconfig.display()))?;
    for (environment, settings) in &config {
        let Some(overrides) = settings
            .get("deploy")
            .and_then(|deploy| deploy.get("parameters"))
            .and_then(|parameters| parameters.get("parameter_overrides"))
        else {
            continue;
        };
        let overrides = match overrides {
            toml::Value::String(line) => split_overrides(line),
            toml::Value::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str())
                .flat_map(split_overrides)
                .collect(),
            _ => {
                return Err(format!(
                    "{}: [{environment}.deploy.parameters] parameter_overrides is neither a string nor a list",
                    samconfig.display()
                ));
            }
        };
        for (name, value) in overrides {
            let Some((_, wanted)) = implied.iter().find(|(implied, _)| *implied == name) else {
                continue;
            };
            let set: BTreeSet<&str> = value.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
            let missing: Vec<&str> = wanted
                .split(',')
                .filter(|v| !v.is_empty() && !set.contains(v))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "{}: [{environment}] sets {name}={value}, which lacks the pipeline file's {} (scripts/deploy.sh derives it: drop the override)",
                    samconfig.display(),
                    missing.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// `A=1 B="x y"` as SAM reads `parameter_overrides`.
fn split_overrides(line: &str) -> Vec<(String, String)> {
    let (mut pairs, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars().chain([' ']) {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if let Some((name, value)) = word.split_once('=') {
                    pairs.push((name.to_owned(), value.to_owned()));
                }
                word.clear();
            }
            c => word.push(c),
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics the stack's dashboard plots, as (namespace, name): from metric arrays and
    /// from SEARCH expressions.
    fn plotted(body: &str) -> Vec<(String, String)> {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut plotted = Vec::new();
        for widget in body["widgets"].as_array().unwrap() {
            for line in widget["properties"]["metrics"].as_array().unwrap() {
                let line = line.as_array().unwrap();
                match line[0].get("expression").and_then(|e| e.as_str()) {
                    Some(search) => {
                        let namespace = search.split('{').nth(1).unwrap().split(',').next().unwrap();
                        let name = search.split("MetricName=\"").nth(1).unwrap().split('"').next().unwrap();
                        plotted.push((namespace.to_owned(), name.to_owned()));
                    }
                    None => plotted.push((
                        line[0].as_str().unwrap().to_owned(),
                        line[1].as_str().unwrap().to_owned(),
                    )),
                }
            }
        }
        plotted
    }

    #[test]
    fn the_dashboard_plots_only_metrics_the_functions_emit() {
        use shared::domain::metrics::{APPROVALS_WAITING, DEPLOYMENT_METRICS};
        use shared::handlers::promote::{STEPS_FAILED, STUCK};
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let template: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let body = &template["Resources"]["DeploymentsDashboard"]["Properties"]["DashboardBody"];
        let serde_yaml::Value::Tagged(sub) = body else {
            panic!("the body is a !Sub: {body:?}")
        };
        // What CloudFormation substitutes, given values of the same shape.
        let body = sub
            .value
            .as_str()
            .unwrap()
            .replace("${AWS::Region}", "eu-west-1")
            .replace("${PromoteFunction}", "stack-promote-AbC123")
            .replace("${FailedEventsQueue.QueueName}", "stack-FailedEventsQueue-XyZ");
        assert!(!body.contains("${"), "every substitution is known: {body}");
        let plotted = plotted(&body);
        let emitted: Vec<&str> = DEPLOYMENT_METRICS
            .iter()
            .copied()
            .chain([APPROVALS_WAITING, STEPS_FAILED, STUCK])
            .collect();
        for (namespace, name) in &plotted {
            match namespace.as_str() {
                shared::lambda::metrics::NAMESPACE => {
                    assert!(
                        emitted.contains(&name.as_str()),
                        "{name} is plotted but no function emits it"
                    )
                }
                "AWS/SQS" => assert_eq!(name, "ApproximateNumberOfMessagesVisible"),
                other => panic!("unexpected namespace {other}"),
            }
        }
        for name in DEPLOYMENT_METRICS.iter().chain([&APPROVALS_WAITING]) {
            assert!(
                plotted.iter().any(|(_, n)| n == name),
                "{name} is emitted but not plotted"
            );
        }
    }

    const FILE: &str = r#"
[[application]]
name = "api"
repository = "team/api"
services = [{ name = "api", container = "api" }]

[[stage]]
name = "qa"
cluster = "qa"
tags = "*"
alarms.api = ["api-qa", "api-qa-latency"]
"#;

    fn dir(template: &str, samconfig: Option<&str>) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pipectl-template-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("template.yaml"), template).unwrap();
        if let Some(samconfig) = samconfig {
            std::fs::write(dir.join("samconfig.toml"), samconfig).unwrap();
        }
        dir.join("template.yaml")
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::SeqCst)
    }

    const TEMPLATE: &str = "Parameters:\n  RepositoryNames: {Type: CommaDelimitedList}\n  ClusterNames: {Type: CommaDelimitedList}\n  GuardedAlarmNames: {Type: CommaDelimitedList, Default: \"\"}\n  SnapshotDbNames: {Type: CommaDelimitedList, Default: \"\"}\n  SnapshotCopyRegion: {Type: String, Default: \"\"}\n  PassableRoleArns: {Type: CommaDelimitedList}\nResources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: !Ref AWS::StackName\n";

    #[test]
    fn a_template_without_a_parameter_the_file_implies_is_refused() {
        let pipeline = Pipeline::parse(FILE).unwrap();
        assert!(check(&pipeline, &dir(TEMPLATE, None)).is_ok());
        let err = check(
            &pipeline,
            &dir(&TEMPLATE.replace("  ClusterNames", "  ClusterNamePrefix"), None),
        )
        .unwrap_err();
        assert!(err.contains("no ClusterNames parameter"), "{err}");
    }

    #[test]
    fn a_samconfig_override_must_cover_the_file() {
        let pipeline = Pipeline::parse(FILE).unwrap();
        let covering = "version = 0.1\n[default.deploy.parameters]\nparameter_overrides = \"GuardedAlarmNames=api-qa,api-qa-latency,other LogRetentionDays=7\"\n";
        assert!(check(&pipeline, &dir(TEMPLATE, Some(covering))).is_ok());
        let short = "version = 0.1\n[prod.deploy.parameters]\nparameter_overrides = [\"ClusterNames=\\\"other\\\"\"]\n";
        let err = check(&pipeline, &dir(TEMPLATE, Some(short))).unwrap_err();
        assert!(
            err.contains("[prod] sets ClusterNames=other, which lacks the pipeline file's qa"),
            "{err}"
        );
    }
}
