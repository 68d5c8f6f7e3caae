//! `pipectl pipeline`: the stack's pipeline versions. A file is parsed, then checked against
//! the account and the stack (preflight), and only then kept and put in force; every
//! version stays, so a bad change is undone by activating the one before.

use crate::stack::Stack;
use shared::adapters::dynamo::{DynamoPipelines, PipelineVersion};
use shared::adapters::{AnsweredAt, describe_sdk_error};
use shared::domain::names::Approver;
use shared::domain::pipeline::{Pipeline, text_hash};
use std::collections::BTreeSet;

/// Template parameters the file implies, in the template's names; each a comma-separated list.
pub fn template_parameters(pipeline: &Pipeline) -> Result<Vec<(&'static str, String)>, String> {
    fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
        let mut seen = BTreeSet::new();
        names.filter(|name| seen.insert(*name)).collect::<Vec<_>>().join(",")
    }
    let copy_regions: BTreeSet<&str> = pipeline
        .snapshots()
        .dbs
        .iter()
        .filter_map(|policy| policy.copy_to.as_ref().map(|copy| copy.region.as_str()))
        .collect();
    if copy_regions.len() > 1 {
        return Err(format!(
            "the stack copies snapshots to one region, but the file names {}",
            copy_regions.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(vec![
        (
            "RepositoryNames",
            listed(pipeline.applications().iter().map(|app| app.repository.as_str())),
        ),
        (
            "ClusterNames",
            listed(pipeline.stages().iter().map(|stage| stage.cluster.as_str())),
        ),
        ("GuardedAlarmNames", listed(pipeline.alarm_names().map(|a| a.as_str()))),
        (
            "SnapshotDbNames",
            listed(pipeline.snapshots().dbs.iter().map(|policy| policy.db.as_str())),
        ),
        ("SnapshotCopyRegion", listed(copy_regions.into_iter())),
    ])
}

/// What the account and the stack say about a file: problems stop it, warnings do not.
#[derive(Debug, Default)]
pub struct Preflight {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    /// The task and execution roles the services' task definitions pass.
    pub passed_roles: BTreeSet<String>,
}

pub async fn preflight(
    aws: &aws_config::SdkConfig,
    pipeline: &Pipeline,
    stack: Option<&Stack>,
) -> Result<Preflight, String> {
    let mut found = Preflight::default();
    check_services(aws, pipeline, &mut found).await?;
    check_alarms(aws, pipeline, &mut found).await?;
    check_databases(aws, pipeline, &mut found).await?;
    if let Some(stack) = stack {
        check_approvers(aws, pipeline, stack, &mut found).await?;
        let mut implied = template_parameters(pipeline)?;
        implied.push((
            "PassableRoleArns",
            found.passed_roles.iter().cloned().collect::<Vec<_>>().join(","),
        ));
        found.problems.extend(uncovered(&implied, stack));
    }
    Ok(found)
}

/// Each value the file implies that the stack's parameter does not allow: the functions
/// could not reach it (IAM) or would never hear of it (event rules) until the stack is
/// deployed again with the file.
fn uncovered(implied: &[(&str, String)], stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for (parameter, wanted) in implied {
        let Some(deployed) = stack.parameter(parameter) else {
            problems.push(format!(
                "stack {}: no {parameter} parameter (deployed from an older template): deploy with scripts/deploy.sh",
                stack.name
            ));
            continue;
        };
        let deployed: BTreeSet<&str> = deployed.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
        let missing: Vec<&str> = wanted
            .split(',')
            .filter(|v| !v.is_empty() && !deployed.contains(v))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "stack {}: {parameter} lacks {}: deploy the stack with this file (scripts/deploy.sh --stack {} --pipeline FILE)",
                stack.name,
                missing.join(", "),
                stack.name
            ));
        }
    }
    problems
}

async fn check_services(aws: &aws_config::SdkConfig, pipeline: &Pipeline, found: &mut Preflight) -> Result<(), String> {
    let ecs = aws_sdk_ecs::Client::new(aws);
    let services: Vec<_> = pipeline.services().collect();
    for stage in pipeline.stages() {
        for batch in services.chunks(10) {
            let described = ecs
                .describe_services()
                .cluster(stage.cluster.as_str())
                .set_services(Some(batch.iter().map(|s| s.name.to_string()).collect()))
                .send()
                .await;
            let described = match described {
                Ok(described) => described,
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_cluster_not_found_exception()) =>
                {
                    found
                        .problems
                        .push(format!("stage {}: no ECS cluster {}", stage.name, stage.cluster));
                    break;
                }
                Err(err) => return Err(describe_sdk_error("DescribeServices", &err)),
            };
            for spec in batch {
                let service = described
                    .services()
                    .iter()
                    .find(|s| s.service_name() == Some(spec.name.as_str()) && s.status() == Some("ACTIVE"));
                let Some(task_definition) = service.and_then(|s| s.task_definition()) else {
                    found.problems.push(format!(
                        "stage {}: no active service {} in cluster {}",
                        stage.name, spec.name, stage.cluster
                    ));
                    continue;
                };
                let definition = ecs
                    .describe_task_definition()
                    .task_definition(task_definition)
                    .send()
                    .await
                    .map_err(|e| describe_sdk_error("DescribeTaskDefinition", &e))?;
                let Some(definition) = definition.task_definition() else {
                    continue;
                };
                if !definition
                    .container_definitions()
                    .iter()
                    .any(|c| c.name() == Some(spec.container.as_str()))
                {
                    found.problems.push(format!(
                        "stage {}: service {}'s task definition {task_definition} has no container {}",
                        stage.name, spec.name, spec.container
                    ));
                }
                for role in [definition.task_role_arn(), definition.execution_role_arn()]
                    .into_iter()
                    .flatten()
                {
                    found.passed_roles.insert(role.to_owned());
                }
            }
        }
    }
    Ok(())
}

async fn check_alarms(aws: &aws_config::SdkConfig, pipeline: &Pipeline, found: &mut Preflight) -> Result<(), String> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(aws);
    let wanted: Vec<&str> = pipeline.alarm_names().map(|a| a.as_str()).collect();
    for batch in wanted.chunks(100) {
        let described = cloudwatch
            .describe_alarms()
            .max_records(100)
            .set_alarm_names(Some(batch.iter().map(|a| a.to_string()).collect()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| describe_sdk_error("DescribeAlarms", &e))?;
        let existing: BTreeSet<&str> = described
            .metric_alarms()
            .iter()
            .filter_map(|a| a.alarm_name())
            .chain(described.composite_alarms().iter().filter_map(|a| a.alarm_name()))
            .collect();
        for alarm in batch.iter().filter(|a| !existing.contains(*a)) {
            found.problems.push(format!("no CloudWatch alarm {alarm}"));
        }
    }
    Ok(())
}

/// Each DB must be an instance: the functions snapshot DB instances only.
async fn check_databases(
    aws: &aws_config::SdkConfig,
    pipeline: &Pipeline,
    found: &mut Preflight,
) -> Result<(), String> {
    let rds = aws_sdk_rds::Client::new(aws);
    for (stage, db) in pipeline.databases() {
        match rds
            .describe_db_instances()
            .db_instance_identifier(db.as_str())
            .send()
            .await
        {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_instance_not_found_fault()) =>
            {
                found.problems.push(format!("stage {stage}: no RDS DB instance {db}"));
            }
            Err(err) => return Err(describe_sdk_error("DescribeDBInstances", &err)),
        }
    }
    Ok(())
}

/// An approver without a confirmed subscription gets no links, and a subscription that does
/// not filter on one approver receives everyone's: both said, not refused (the topic is
/// `approvers sync`'s to fix, from the file in force).
async fn check_approvers(
    aws: &aws_config::SdkConfig,
    pipeline: &Pipeline,
    stack: &Stack,
    found: &mut Preflight,
) -> Result<(), String> {
    let wanted: BTreeSet<&Approver> = pipeline.approvers().collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let topic = stack.output("ApprovalsTopicArn")?;
    let sns = aws_sdk_sns::Client::new(aws);
    let mut confirmed = BTreeSet::new();
    for subscription in crate::approvals::subscriptions(&sns, topic).await? {
        let (Some(_), Some(endpoint)) = (
            subscription.subscription_arn().filter(|arn| arn.starts_with("arn:")),
            subscription.endpoint(),
        ) else {
            continue;
        };
        match crate::approvals::filtered_on(&sns, &subscription, &wanted).await? {
            Some(approver) if subscription.protocol() == Some("email") && approver.as_str() == endpoint => {
                confirmed.insert(approver.as_str());
            }
            Some(_) => {}
            None => found.warnings.push(format!(
                "{} {endpoint} receives every approver's links (its subscription filters on no one approver): unsubscribe it, or run `pipectl approvers sync --stack {}`",
                subscription.protocol().unwrap_or("?"),
                stack.name
            )),
        }
    }
    for approver in wanted.into_iter().filter(|a| !confirmed.contains(a.as_str())) {
        found.warnings.push(format!(
            "approver {approver} has no confirmed subscription and gets no links: run `pipectl approvers sync --stack {}` once this file is in force, and have them confirm",
            stack.name
        ));
    }
    Ok(())
}

/// Who is calling and when AWS says it is: what a version records of its push.
pub(crate) async fn caller(aws: &aws_config::SdkConfig) -> Result<(String, chrono::DateTime<chrono::Utc>), String> {
    let answered = AnsweredAt::default();
    let identity = aws_sdk_sts::Client::new(aws)
        .get_caller_identity()
        .customize()
        .interceptor(answered.clone())
        .send()
        .await
        .map_err(|e| describe_sdk_error("GetCallerIdentity", &e))?;
    Ok((
        identity.arn().ok_or("STS named no caller ARN")?.to_owned(),
        answered.at()?,
    ))
}

fn report(found: &Preflight) -> Result<(), String> {
    for warning in &found.warnings {
        eprintln!("warning: {warning}");
    }
    if found.problems.is_empty() {
        return Ok(());
    }
    for problem in &found.problems {
        eprintln!("problem: {problem}");
    }
    Err(format!(
        "{} problem(s): nothing changed, the pipeline in force stays",
        found.problems.len()
    ))
}

pub async fn push(aws: &aws_config::SdkConfig, stack: &str, path: &std::path::Path) -> Result<(), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let pipeline = Pipeline::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
    let stack = Stack::describe(aws, stack).await?;
    report(&preflight(aws, &pipeline, Some(&stack)).await?)?;
    let store = DynamoPipelines::new(aws, stack.output("PipelineTableName")?);
    let hash = text_hash(&text);
    let in_force = store.activation().await.map_err(|e| e.to_string())?;
    if let Some(active) = in_force.as_ref().filter(|a| a.version.pipeline.hash == hash) {
        println!("{shown} is already in force as v{}", active.version.pipeline.version);
        return Ok(());
    }
    let (by, at) = caller(aws).await?;
    let kept = store.versions().await.map_err(|e| e.to_string())?;
    let version = match kept.into_iter().find(|v| v.pipeline.hash == hash) {
        Some(same) => same,
        None => store
            .add_version(&text, &hash, &by, at)
            .await
            .map_err(|e| e.to_string())?,
    };
    let was = in_force.map(|a| a.version.pipeline.version);
    put_in_force(&store, &version, was, &by, at).await
}

pub async fn activate(aws: &aws_config::SdkConfig, stack: &str, version: &str) -> Result<(), String> {
    let stack = Stack::describe(aws, stack).await?;
    let store = DynamoPipelines::new(aws, stack.output("PipelineTableName")?);
    let version = stored(&store, version).await?;
    let pipeline =
        Pipeline::parse(&version.pipeline.text).map_err(|e| format!("v{}: {e}", version.pipeline.version))?;
    report(&preflight(aws, &pipeline, Some(&stack)).await?)?;
    let was = store
        .activation()
        .await
        .map_err(|e| e.to_string())?
        .map(|a| a.version.pipeline.version);
    if was == Some(version.pipeline.version) {
        println!("v{} is already in force", version.pipeline.version);
        return Ok(());
    }
    let (by, at) = caller(aws).await?;
    put_in_force(&store, &version, was, &by, at).await
}

async fn put_in_force(
    store: &DynamoPipelines,
    version: &PipelineVersion,
    was: Option<u32>,
    by: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    if !store.activate(version, was, by, at).await.map_err(|e| e.to_string())? {
        return Err(format!(
            "another push or activation came first, so v{0} is kept but not in force: see `pipectl pipeline show`, then `pipectl pipeline activate v{0}` if it should be",
            version.pipeline.version
        ));
    }
    let was = was.map_or_else(|| "none before".to_owned(), |v| format!("was v{v}"));
    println!(
        "v{} in force ({was}); running functions serve it within their PIPELINE_TTL_SECONDS (30 s by default)",
        version.pipeline.version
    );
    Ok(())
}

/// `v3` or `3`.
async fn stored(store: &DynamoPipelines, version: &str) -> Result<PipelineVersion, String> {
    let number: u32 = version
        .strip_prefix('v')
        .unwrap_or(version)
        .parse()
        .map_err(|_| format!("`{version}` is not a version (v1, v2, …)"))?;
    store
        .version(number)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no version v{number}: `pipectl pipeline history` lists them"))
}

pub async fn show(aws: &aws_config::SdkConfig, stack: &str, version: Option<&str>) -> Result<(), String> {
    let stack = Stack::describe(aws, stack).await?;
    let store = DynamoPipelines::new(aws, stack.output("PipelineTableName")?);
    let shown = match version {
        Some(version) => stored(&store, version).await?,
        None => {
            let active = store
                .activation()
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no pipeline in force: `pipectl pipeline push FILE --stack STACK`")?;
            println!("# in force since {} (activated by {})", stamp(active.at), active.by);
            active.version
        }
    };
    println!(
        "# v{} sha256:{} pushed {} by {}",
        shown.pipeline.version,
        shown.pipeline.hash,
        stamp(shown.at),
        shown.by
    );
    print!("{}", shown.pipeline.text);
    Ok(())
}

pub async fn history(aws: &aws_config::SdkConfig, stack: &str) -> Result<(), String> {
    let stack = Stack::describe(aws, stack).await?;
    let store = DynamoPipelines::new(aws, stack.output("PipelineTableName")?);
    let in_force = store.activation().await.map_err(|e| e.to_string())?;
    let in_force = in_force.map(|a| a.version.pipeline.version);
    for version in store.versions().await.map_err(|e| e.to_string())? {
        let mark = if Some(version.pipeline.version) == in_force {
            "  (in force)"
        } else {
            ""
        };
        println!(
            "v{:<4} sha256:{} {} {}{mark}",
            version.pipeline.version,
            &version.pipeline.hash[..12],
            stamp(version.at),
            version.by
        );
    }
    Ok(())
}

pub async fn diff(aws: &aws_config::SdkConfig, stack: &str, from: &str, to: &str) -> Result<(), String> {
    let stack = Stack::describe(aws, stack).await?;
    let store = DynamoPipelines::new(aws, stack.output("PipelineTableName")?);
    let (from, to) = (stored(&store, from).await?, stored(&store, to).await?);
    println!("--- v{}\n+++ v{}", from.pipeline.version, to.pipeline.version);
    for line in with_context(&line_diff(&from.pipeline.text, &to.pipeline.text), 3) {
        println!("{line}");
    }
    Ok(())
}

fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Every line of both, `-` only in `from`, `+` only in `to`, ` ` in both (a longest common
/// subsequence of lines: pipeline files are short).
fn line_diff(from: &str, to: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (from.lines().collect(), to.lines().collect());
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || common[i][j + 1] > common[i + 1][j]) {
            out.push(format!("+{}", b[j]));
            j += 1;
        } else {
            out.push(format!("-{}", a[i]));
            i += 1;
        }
    }
    out
}

/// The changed lines with `context` unchanged lines around each, `…` where lines are left out.
fn with_context(diff: &[String], context: usize) -> Vec<&str> {
    let changed: Vec<usize> = (0..diff.len()).filter(|&i| !diff[i].starts_with(' ')).collect();
    let near = |i: usize| changed.iter().any(|&c| c.abs_diff(i) <= context);
    let mut out = Vec::new();
    for (i, line) in diff.iter().enumerate() {
        if near(i) {
            out.push(line.as_str());
        } else if out.last() != Some(&"…") && i > 0 && near(i - 1) || (out.is_empty() && i == 0) {
            out.push("…");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_three_lines_around_each_change() {
        let from: String = (1..=20).map(|n| format!("{n}\n")).collect();
        let to = from.replace("\n10\n", "\nten\n");
        let diff = line_diff(&from, &to);
        assert_eq!(
            with_context(&diff, 3),
            ["…", " 7", " 8", " 9", "-10", "+ten", " 11", " 12", " 13", "…"]
        );
    }

    #[test]
    fn a_diff_keeps_common_lines_and_marks_the_changed_ones() {
        let diff = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(diff, [" a", "-b", "+B", " c", "+d"]);
    }

    #[test]
    fn parameters_list_each_name_once_in_file_order_and_refuse_two_copy_regions() {
        let text = r#"
[[application]]
name = "api"
repository = "team/api"
services = [{ name = "api", container = "api" }]

[[stage]]
name = "qa"
cluster = "shared"
tags = "*"
alarms.api = ["api-qa"]

[[stage]]
name = "live"
cluster = "live"
tags = "v*"

[[snapshots.db]]
name = "db-1"
stage = "live"
copy_to_region = "eu-west-1"
"#;
        let parameters = template_parameters(&Pipeline::parse(text).unwrap()).unwrap();
        assert_eq!(
            parameters,
            [
                ("RepositoryNames", "team/api".to_owned()),
                ("ClusterNames", "shared,live".to_owned()),
                ("GuardedAlarmNames", "api-qa".to_owned()),
                ("SnapshotDbNames", "db-1".to_owned()),
                ("SnapshotCopyRegion", "eu-west-1".to_owned()),
            ]
        );
        let two =
            format!("{text}\n[[snapshots.db]]\nname = \"db-2\"\nstage = \"live\"\ncopy_to_region = \"eu-central-1\"\n");
        let err = template_parameters(&Pipeline::parse(&two).unwrap()).unwrap_err();
        assert!(err.contains("eu-central-1, eu-west-1"), "{err}");
    }
}
