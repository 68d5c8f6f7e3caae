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
