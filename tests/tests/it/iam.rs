//! Each function's template role allows every AWS call the function makes. moto's own IAM
//! enforcement checks actions, not resources, and only once every client of a test carries
//! keys of moto's IAM users; so the calls are observed instead, through the proxy, while each
//! handler runs its paths against moto, and checked against the role's actions as
//! template.yaml writes them (a role may use `*` at the end of an action).

use crate::rollback::{alarm, deploy_and_complete};
use crate::support::*;
use harness::fault_proxy::FaultProxy;
use harness::moto::sdk_config_for;
use std::collections::BTreeSet;

/// The actions of the IAM role `role` (a resource of template.yaml), from its `Action:` lines.
fn role_actions(role: &str) -> Vec<String> {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let start = format!("  {role}:");
    let mut lines = template.lines().skip_while(|line| *line != start);
    assert!(lines.next().is_some(), "no resource {role} in template.yaml");
    lines
        // The next resource starts at the same indentation.
        .take_while(|line| !(line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':')))
        .filter_map(|line| line.trim().strip_prefix("Action: "))
        .flat_map(|actions| {
            actions
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|a| a.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The IAM actions a call needs: its own, but a transaction's, which IAM checks per item (the
/// supersede writes a record and updates a request).
fn iam_actions(call: &str) -> Vec<String> {
    match call {
        // Break-glass's caller proof: signed with the operator's credentials, not the role's,
        // and IAM never denies GetCallerIdentity anyway.
        "GetCallerIdentity" => vec![],
        "DynamoDB_20120810.TransactWriteItems" => vec!["dynamodb:PutItem".into(), "dynamodb:UpdateItem".into()],
        _ => vec![iam_action(call)],
    }
}

/// `dynamodb:PutItem` for `DynamoDB_20120810.PutItem`, `ecs:UpdateService` for
/// `AmazonEC2ContainerServiceV20141113.UpdateService`, `sns:Publish` for `Publish`.
fn iam_action(call: &str) -> String {
    match call.split_once('.') {
        Some((service, operation)) if service.starts_with("DynamoDB") => format!("dynamodb:{operation}"),
        Some((service, operation)) if service.starts_with("AmazonEC2ContainerService") => format!("ecs:{operation}"),
        Some((service, operation)) if service.starts_with("GraniteServiceVersion") => format!("cloudwatch:{operation}"),
        Some((service, operation)) if service.starts_with("AWSInsightsIndexService") => format!("ce:{operation}"),
        Some((service, operation)) if service.starts_with("AWSPriceListService") => format!("pricing:{operation}"),
        None if call == "Publish" => "sns:Publish".into(),
        None if call == "DescribeAlarms" => "cloudwatch:DescribeAlarms".into(),
        None if call.contains("DB") => format!("rds:{call}"),
        _ => panic!("no IAM action known for the call {call}"),
    }
}

fn assert_allowed(role: &str, proxy: &FaultProxy) {
    let granted = role_actions(role);
    let called: BTreeSet<String> = proxy.calls().iter().flat_map(|c| iam_actions(c)).collect();
    assert!(!called.is_empty());
    for action in &called {
        let allowed = granted.iter().any(|grant| match grant.strip_suffix('*') {
            Some(prefix) => action.starts_with(prefix),
            None => grant == action,
        });
        assert!(
            allowed,
            "{role} does not allow {action}, which the function calls; it allows {granted:?}"
        );
    }
}

#[tokio::test]
async fn deploy_on_push_calls_only_what_its_role_allows() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.handler_with(fixture_pipeline(), &sdk_config_for(&proxy.endpoint).await);
    // Automatic and approval stages (the release passed staging, so it asks for approval), a
    // duplicate, and a newer push superseding the first.
    let release = event("push-release.json");
    env.passes_staging(release.detail.image_digest.as_deref().unwrap(), 0)
        .await;
    env.passes_staging(&digest(0x77), 10).await;
    for file in [
        "push-latest.json",
        "push-release.json",
        "push-latest.json",
        "push-main.json",
    ] {
        let mut pushed = event(file);
        // Whole seconds, as EventBridge writes an event's time.
        pushed.time = Some(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0));
        handler.handle_event(&pushed, deadline()).await.unwrap();
    }
    // A newer release of another digest, past staging too: it supersedes the first one's
    // records and request in one transaction.
    let mut newer = event("push-release.json");
    newer.detail.image_digest = Some(digest(0x77));
    newer.detail.image_tag = Some("v9.9.9".into());
    newer.time = Some(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0) + chrono::TimeDelta::seconds(5));
    handler.handle_event(&newer, deadline()).await.unwrap();
    let calls = proxy.calls();
    assert!(calls.iter().any(|c| c == "DescribeAlarms"), "the staging check ran");
    assert!(calls.iter().any(|c| c == "Publish"), "approval links went out");
    assert!(
        calls.iter().any(|c| c.ends_with("TransactWriteItems")),
        "the older release was superseded: {calls:?}"
    );
    assert_allowed("DeployOnPushRole", &proxy);
}

#[tokio::test]
async fn break_glass_calls_only_what_its_role_allows() {
    let glass = crate::break_glass::BreakGlass::start_through_proxy(true).await;
    // Snapshot first, deploy both services, tell both topics.
    assert!(glass.order("oncall", &[]).await.status.success());
    let proxy = glass.proxy.as_ref().unwrap();
    assert!(
        proxy.calls().iter().any(|c| c == "CreateDBSnapshot"),
        "{:?}",
        proxy.calls()
    );
    assert!(proxy.calls().iter().any(|c| c.ends_with("UpdateService")));
    assert_allowed("BreakGlassRole", proxy);
}

#[tokio::test]
async fn track_deployment_calls_only_what_its_role_allows() {
    let env = Env::new().await;
    env.handler()
        .handle_event(&event("push-latest.json"), deadline())
        .await
        .unwrap();
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let tracker = env.tracker_with(&sdk_config_for(&proxy.endpoint).await);
    // One service completes, the other fails and is rolled back; an unknown id is looked up.
    for ((service, _), file) in SERVICES.iter().zip(["completed.json", "failed.json"]) {
        let record = env.records_for(DEV, service).await.remove(0);
        let mut ended: serde_json::Value =
            serde_json::from_slice(&harness::event_file("track-deployment", file)).unwrap();
        ended["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/{DEV}/{service}").into();
        ended["detail"]["deploymentId"] = record["ecs_deployment_id"].clone().into();
        tracker
            .handle_event(&serde_json::from_value(ended).unwrap(), deadline())
            .await
            .unwrap();
    }
    assert!(proxy.calls().iter().any(|c| c == "Publish"), "the FAILED path ran");
    assert_allowed("TrackDeploymentRole", &proxy);
}

#[tokio::test]
async fn rollback_on_alarm_calls_only_what_its_role_allows() {
    let env = Env::new().await;
    let good = deploy_and_complete(&env, 1, 0, 5).await;
    deploy_and_complete(&env, 2, 10, 12).await;
    // One known good deregistered: its rollback registers it again from its stored definition.
    env.ecs
        .deregister_task_definition()
        .task_definition(&good[0])
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let handler = env.alarm_handler_with(&sdk_config_for(&proxy.endpoint).await);
    let fired = alarm("metric-alarm.json", 20);
    handler
        .handle_event(&fired, delivered(&fired), deadline())
        .await
        .unwrap();
    assert!(
        proxy.calls().iter().any(|c| c.ends_with("RegisterTaskDefinition")),
        "the re-registration path ran"
    );
    assert_allowed("RollbackOnAlarmRole", &proxy);
}

#[tokio::test]
async fn approval_page_calls_only_what_its_role_allows() {
    // The page reaches moto through the IAM edge, which enforces its role's conditions
    // (LeadingKeys, Attributes, ReturnValues) as IAM does: a call they refuse fails the page.
    let (mut proxy, mut edge) = (None, None);
    let run = crate::approval::Loop::start_through(async |moto: &str| {
        let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
        let statements = harness::iam_edge::dynamodb_statements(&template, "ApprovalPageRole");
        let enforced = harness::iam_edge::IamEdge::start(moto, statements).await;
        let started = FaultProxy::start(&enforced.endpoint).await;
        let endpoint = started.endpoint.clone();
        (proxy, edge) = (Some(started), Some(enforced));
        endpoint
    })
    .await;
    let (proxy, _edge) = (proxy.unwrap(), edge.unwrap());
    run.release("v5.0.0", 0x50, 0).await;
    let link = run.links().await.remove(0).2;
    let page = harness::function_url::request("GET", &link, "Mozilla/5.0", None).await;
    let nonce = crate::approval::nonce_in(&page);
    let form = [("verdict", "approve"), ("nonce", nonce.as_str())];
    let decided = harness::function_url::request("POST", &link, "Mozilla/5.0", Some(&form)).await;
    assert_eq!(decided.status, 200);
    assert_eq!(
        proxy.calls(),
        [
            "DynamoDB_20120810.GetItem",
            "DynamoDB_20120810.GetItem",
            "DynamoDB_20120810.GetItem",
            "DynamoDB_20120810.UpdateItem"
        ],
        "the pipeline in force at start, one read per page, one conditional write of the decision's attributes"
    );
    assert_allowed("ApprovalPageRole", &proxy);
}

#[tokio::test]
async fn promote_calls_only_what_its_role_allows() {
    let run = crate::approval::Loop::start().await;
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    run.release("v9.2.0", 0x92, 0).await;
    let links = run.links().await;
    let link = &links[0].2;
    let page = harness::function_url::request("GET", link, "Mozilla/5.0", None).await;
    let form = [("verdict", "approve"), ("nonce", &crate::approval::nonce_in(&page))];
    harness::function_url::request("POST", link, "Mozilla/5.0", Some(&form)).await;
    // A second release, left to expire.
    run.release("v9.3.0", 0x93, 30).await;

    let proxy = FaultProxy::start(&run.env.moto.endpoint).await;
    let config = sdk_config_for(&proxy.endpoint).await;
    let promote = run.env.promoter_with(&config);
    // Snapshot, check, the deploy after the wait, and the other request's expiry.
    let now = chrono::Utc::now();
    promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap();
    promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap();
    let later = now + chrono::TimeDelta::days(2);
    promote
        .sweep(later, later + chrono::TimeDelta::seconds(30))
        .await
        .unwrap();
    let calls = proxy.calls();
    for expected in ["CreateDBSnapshot", "RegisterTaskDefinition", "UpdateService", "Publish"] {
        assert!(
            calls.iter().any(|c| c.ends_with(expected)),
            "{expected} not called: {calls:?}"
        );
    }
    assert_allowed("PromoteRole", &proxy);
}

#[tokio::test]
async fn snapshot_calls_only_what_its_role_allows() {
    let env = Env::with_pipeline(&crate::scheduled_snapshots::pipeline_text()).await;
    let pipeline = env.pipeline.clone();
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let config = sdk_config_for(&proxy.endpoint).await;
    let function = harness::seed::snapshot_handler(&config, &env.world, pipeline);
    // Snapshot, copy, then prune in both regions.
    let tick = |day: u32| format!("2026-11-{day:02}T03:00:00Z").parse().unwrap();
    function.run(tick(21), chrono::Utc::now()).await.unwrap();
    function.run(tick(22), chrono::Utc::now()).await.unwrap();
    function
        .run(tick(23), chrono::Utc::now() + chrono::TimeDelta::days(40))
        .await
        .unwrap();
    let calls = proxy.calls();
    for expected in [
        "CreateDBSnapshot",
        "CopyDBSnapshot",
        "DeleteDBSnapshot",
        "DescribeDBSnapshots",
    ] {
        assert!(
            calls.iter().any(|c| c.ends_with(expected)),
            "{expected} not called: {calls:?}"
        );
    }
    assert_allowed("SnapshotRole", &proxy);
}

#[tokio::test]
async fn cost_report_calls_only_what_its_role_allows() {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let proxy = FaultProxy::start(&env.moto.endpoint).await;
    let reporter = crate::cost_report::reporter(&env, &sdk_config_for(&proxy.endpoint).await);
    let tick = "2026-11-23T08:00:00Z".parse().unwrap();
    reporter.run(tick, tick).await.unwrap();
    // moto has no Price List: the refresh fails, but its call is seen.
    let refresh = reporter.refresh_prices(chrono::Utc::now().date_naive()).await;
    assert!(refresh.is_err(), "{refresh:?}");
    let calls = proxy.calls();
    for expected in [
        "GetProducts",
        "GetCostAndUsage",
        "GetCostForecast",
        "DescribeServices",
        "DescribeTaskDefinition",
        "DescribeDBInstances",
        "PutItem",
        "Publish",
    ] {
        assert!(
            calls.iter().any(|c| c.ends_with(expected)),
            "{expected} not called: {calls:?}"
        );
    }
    assert_allowed("CostReportRole", &proxy);

    // Every item it wrote has a key its role's dynamodb:LeadingKeys condition allows.
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let allowed: Vec<String> = template
        .lines()
        .skip_while(|line| *line != "  CostReportRole:")
        .find_map(|line| line.trim().strip_prefix("dynamodb:LeadingKeys: "))
        .expect("the role's LeadingKeys")
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|key| key.trim().trim_matches('"').to_owned())
        .collect();
    let items = env.ddb.scan().table_name(&env.world.table).send().await.unwrap();
    assert!(items.count() >= 2, "the report and its notice");
    for item in items.items() {
        let pk = item["pk"].as_s().unwrap();
        let matches = allowed.iter().any(|key| match key.strip_suffix('*') {
            Some(prefix) => pk.starts_with(prefix),
            None => pk == key,
        });
        assert!(matches, "{pk} is not among the role's LeadingKeys {allowed:?}");
    }
}

/// Cost Explorer ($0.01 a request) and the Price List are the cost report's alone.
#[test]
fn only_the_cost_report_role_reaches_cost_explorer_or_the_price_list() {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let roles: Vec<&str> = template
        .lines()
        .filter_map(|line| line.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|name| name.ends_with("Role") && !name.starts_with(' '))
        .collect();
    assert!(roles.len() >= 7, "{roles:?}");
    for role in roles {
        let reaches = role_actions(role)
            .iter()
            .any(|a| a.starts_with("ce:") || a.starts_with("pricing:"));
        assert_eq!(reaches, role == "CostReportRole", "{role}");
    }
}

/// The page role's `dynamodb:Attributes` condition is exactly what the page writes of a
/// request: the decision's attributes (`DECISION_ATTRIBUTES`) and the keys.
#[test]
fn the_page_role_writes_exactly_the_decision_attributes() {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let statements = harness::iam_edge::dynamodb_statements(&template, "ApprovalPageRole");
    let writes: Vec<_> = statements
        .iter()
        .filter(|s| s.actions.iter().any(|a| a != "dynamodb:GetItem"))
        .collect();
    assert_eq!(writes.len(), 1, "{statements:?}");
    assert_eq!(writes[0].actions, ["dynamodb:UpdateItem"]);
    let mut allowed: Vec<&str> = writes[0]
        .attributes
        .as_ref()
        .unwrap()
        .iter()
        .map(String::as_str)
        .collect();
    allowed.sort();
    let mut expected: Vec<&str> = shared::adapters::dynamo::DECISION_ATTRIBUTES
        .into_iter()
        .chain(["pk", "sk"])
        .collect();
    expected.sort();
    assert_eq!(allowed, expected);
}

/// Every function has an Errors and a Throttles alarm that tells the operations topic.
#[test]
fn every_function_has_errors_and_throttles_alarms() {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    // template.yaml's resources, each its lines up to the next one at the same indentation.
    let mut resources: Vec<(String, String)> = Vec::new();
    for line in template.lines() {
        let is_resource = line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if is_resource {
            resources.push((line.trim().trim_end_matches(':').to_owned(), String::new()));
        } else if let Some((_, body)) = resources.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let functions: Vec<&str> = resources
        .iter()
        .filter(|(_, body)| body.contains("Type: AWS::Serverless::Function\n"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(functions.len() >= 7, "{functions:?}");
    for function in functions {
        for metric in ["Errors", "Throttles"] {
            let found = resources.iter().any(|(_, body)| {
                body.contains("Type: AWS::CloudWatch::Alarm\n")
                    && body.contains("Namespace: AWS/Lambda\n")
                    && body.contains(&format!("MetricName: {metric}\n"))
                    && body.contains(&format!("Value: !Ref {function} }}"))
                    && body.contains("AlarmActions: [!Ref OperationsTopic]")
            });
            assert!(found, "{function} has no {metric} alarm");
        }
    }
}

/// The pipeline table is the deployer's to write: every function's role reads it (GetItem of
/// the `PIPELINE` partition) and nothing more, and no role's DynamoDB statement reaches every
/// table (which would take it in).
#[test]
fn every_role_reads_the_pipeline_table_and_none_writes_it() {
    let template = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    let roles = [
        "DeployOnPushRole",
        "ApprovalPageRole",
        "PromoteRole",
        "SnapshotRole",
        "CostReportRole",
        "TrackDeploymentRole",
        "RollbackOnAlarmRole",
    ];
    for role in roles {
        // The role's resource: from its name to the next resource (a line indented by two).
        let start = template
            .find(&format!("\n  {role}:\n"))
            .unwrap_or_else(|| panic!("no {role}"));
        let rest = &template[start + role.len() + 5..];
        let end = rest
            .match_indices("\n  ")
            .find(|(i, _)| rest[i + 3..].starts_with(|c: char| c.is_ascii_alphabetic()))
            .map_or(rest.len(), |(i, _)| i);
        let statements: Vec<&str> = rest[..end].split("- Sid: ").skip(1).collect();
        let on_pipeline: Vec<&&str> = statements.iter().filter(|s| s.contains("PipelineTable")).collect();
        assert_eq!(on_pipeline.len(), 1, "{role}: one statement on the pipeline table");
        let statement = on_pipeline[0];
        assert!(
            statement.contains("Action: dynamodb:GetItem\n")
                && statement.contains("dynamodb:LeadingKeys: [\"PIPELINE\"]"),
            "{role} may only GetItem the PIPELINE partition:\n{statement}"
        );
        for statement in statements.iter().filter(|s| s.contains("dynamodb:")) {
            assert!(
                !statement.contains("Resource: \"*\"") && !statement.contains("table/*"),
                "{role} reaches every table:\n{statement}"
            );
        }
    }
}
