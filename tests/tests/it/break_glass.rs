//! Break-glass deploys end to end: pipectl signs the order with the operator's credentials, the
//! built break-glass binary answers behind a function URL with IAM auth (the harness asks
//! moto's STS who signed), and the deploy lands in ECS, the records, RDS and both topics.

use crate::support::*;
use harness::fault_proxy::FaultProxy;
use harness::function::Function;
use harness::function_url::FunctionUrl;
use harness::seed::{assumed_role, create_database, manual_snapshots, push_image, subscribe_queue, take_notices};
use std::process::Output;

const ONCALL: &str = "arn:aws:iam::123456789012:role/oncall";
const HOTFIX: &str = "v2.0.1-hotfix";

pub struct BreakGlass {
    env: Env,
    pub proxy: Option<FaultProxy>,
    url: FunctionUrl,
    operations_queue: String,
    digest: String,
}

impl BreakGlass {
    async fn start() -> Self {
        Self::start_through_proxy(false).await
    }

    /// With `proxied`, the function reaches moto through a proxy that sees its calls.
    pub async fn start_through_proxy(proxied: bool) -> Self {
        let env = Env::new().await;
        let proxy = match proxied {
            true => Some(FaultProxy::start(&env.moto.endpoint).await),
            false => None,
        };
        create_database(&env.config, "social-analytics-db", None).await;
        let digest = push_image(&env.config, "social-analytics/backend", HOTFIX).await;
        let operations_topic = aws_sdk_sns::Client::new(&env.config)
            .create_topic()
            .name("operations")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let operations_queue = subscribe_queue(&env.config, &operations_topic, "operations", None).await;
        let mut vars = env.function_vars();
        vars.push(("OPERATIONS_TOPIC_ARN", &operations_topic));
        vars.push(("EMERGENCY_PRINCIPALS", ONCALL));
        let endpoint = proxy
            .as_ref()
            .map_or(env.moto.endpoint.as_str(), |proxy| proxy.endpoint.as_str());
        let function = Function::spawn(&harness::built_binary("break-glass", "debug"), endpoint, &vars).await;
        let url = FunctionUrl::start_with_iam(function, &env.moto.endpoint).await;
        BreakGlass {
            env,
            proxy,
            url,
            operations_queue,
            digest,
        }
    }

    /// pipectl run by the holder of `role`'s session `session`.
    async fn pipectl_as(&self, role: &str, session: &str, args: &[&str]) -> Output {
        let (key, secret, token) = assumed_role(&self.env.config, role, session).await;
        let mut command = harness::seed::pipectl(&self.env.moto.endpoint);
        command
            .args(args)
            .env("TABLE_NAME", &self.env.world.table)
            .env("PIPELINE_TABLE", &self.env.pipeline_table)
            .env("BREAK_GLASS_URL", &self.url.url)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token);
        tokio::process::Command::from(command)
            .output()
            .await
            .expect("pipectl runs")
    }

    pub async fn order(&self, role: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "deploy",
            "prod",
            "backend",
            HOTFIX,
            "--emergency",
            "--reason",
            "INC-7: checkout answers 500",
        ];
        args.extend_from_slice(extra);
        self.pipectl_as(role, "jane", &args).await
    }

    async fn operations_notices(&self) -> Vec<harness::seed::Notice> {
        take_notices(&self.env.config, &self.operations_queue).await
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn an_emergency_principal_deploys_a_hotfix_to_prod_now_snapshot_first_told_loudly_once() {
    let glass = BreakGlass::start().await;
    let env = &glass.env;
    let before: Vec<String> = futures_util::future::join_all(SERVICES.iter().map(|(s, _)| env.running(PROD, s))).await;

    let output = glass.order("oncall", &[]).await;
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains(&format!(
            "EMERGENCY deploy of {REGISTRY}@{} to prod by {ONCALL}",
            glass.digest
        )),
        "{said}"
    );

    // Each prod service runs the hotfix now, pinned by digest, under a record saying who and why.
    for ((service, _), before) in SERVICES.iter().zip(&before) {
        let records = env.records_for(PROD, service).await;
        assert_eq!(records.len(), 1, "{records:?}");
        let record = &records[0];
        assert_eq!(record["status"], "DEPLOYING");
        assert_eq!(record["digest"], glass.digest);
        assert_eq!(record["tag"], HOTFIX);
        assert_eq!(record["emergency_by"], ONCALL);
        assert_eq!(record["emergency_reason"], "INC-7: checkout answers 500");
        assert_eq!(&record["previous_task_definition"], before);
        let running = env.running(PROD, service).await;
        assert_eq!(record["task_definition"], running);
        assert_ne!(&running, before);
    }
    // The pre-deploy snapshot was asked for, tagged as ours for retention.
    let snapshots = manual_snapshots(&env.config, None).await;
    let (id, tags) = snapshots
        .iter()
        .find(|(id, _)| id.starts_with("emg-social-analytics-db-"))
        .unwrap_or_else(|| panic!("no emergency snapshot in {snapshots:?}"));
    assert!(
        tags.contains(&("ecs-deploy:kind".into(), "pre-deploy".into())),
        "{tags:?}"
    );
    assert!(said.contains(id.as_str()), "{said}");
    // The team and operations each hear of it, once.
    for notices in [env.notices().await, glass.operations_notices().await] {
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(
            notices[0].subject,
            format!("EMERGENCY deploy of backend {HOTFIX} to prod")
        );
        assert!(
            notices[0].message.contains(&format!("BREAK-GLASS: {ONCALL} deployed")),
            "{}",
            notices[0].message
        );
        assert!(notices[0].message.contains("Why: INC-7: checkout answers 500"));
    }

    // The history says which deploy broke the glass, who did and why.
    let history = glass
        .pipectl_as("oncall", "jane", &["history", "prod", "backend-service"])
        .await;
    let history = text(&history);
    assert!(
        history.lines().nth(1).is_some_and(|row| row.contains("EMERGENCY")),
        "{history}"
    );
    assert!(
        history.contains(&format!("break-glass by {ONCALL}: INC-7: checkout answers 500")),
        "{history}"
    );

    // The same command again (a timeout, a nervous operator): the same order, nothing twice.
    let revisions = env.running(PROD, "backend-service").await;
    let again = glass.order("oncall", &[]).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("ordered before: nothing done again"),
        "{}",
        text(&again)
    );
    assert_eq!(env.records_for(PROD, "backend-service").await.len(), 1);
    assert_eq!(env.running(PROD, "backend-service").await, revisions);
    assert!(env.notices().await.is_empty());
    assert!(glass.operations_notices().await.is_empty());
}

#[tokio::test]
async fn anyone_else_is_refused_and_nothing_changes() {
    let glass = BreakGlass::start().await;
    let env = &glass.env;
    let before = env.running(PROD, "backend-service").await;

    // Signed, by a role IAM lets through but the stack does not name.
    let refused = glass.order("developer", &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains(
            "arn:aws:sts::123456789012:assumed-role/developer/jane is not among the stack's EmergencyPrincipals"
        ),
        "{}",
        text(&refused)
    );
    // Unsigned: Lambda's own refusal, before the function.
    let unsigned = harness::function_url::request("POST", &glass.url.url, "curl/8", None).await;
    assert_eq!(
        (unsigned.status, unsigned.body.as_str()),
        (403, r#"{"Message":"Forbidden"}"#)
    );
    // An emergency principal, for an image ECR does not have: refused before any order.
    let missing = glass
        .pipectl_as(
            "oncall",
            "jane",
            &["deploy", "prod", "backend", "v9.9.9", "--emergency", "--reason", "x"],
        )
        .await;
    assert!(
        text(&missing).contains("v9.9.9 is not in ECR repository social-analytics/backend"),
        "{}",
        text(&missing)
    );

    assert!(env.records_for(PROD, "backend-service").await.is_empty());
    assert_eq!(env.running(PROD, "backend-service").await, before);
    assert!(manual_snapshots(&env.config, None).await.is_empty());
    assert!(env.notices().await.is_empty());
    assert!(glass.operations_notices().await.is_empty());
}

/// What a direct invocation can put in the event (anyone allowed `lambda:InvokeFunction` may
/// write any `requestContext`): the on-call role's identity, claimed.
fn direct_invocation(order: serde_json::Value) -> String {
    serde_json::json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "authorizer": {"iam": {"userArn": "arn:aws:sts::123456789012:assumed-role/oncall/jane"}},
            "http": {"method": "POST", "path": "/"},
        },
        "body": order.to_string(),
        "isBase64Encoded": false,
    })
    .to_string()
}

#[tokio::test]
async fn an_identity_claimed_in_the_event_counts_for_nothing_only_stss_answer_does() {
    let glass = BreakGlass::start().await;
    let env = &glass.env;
    let mut vars = env.function_vars();
    vars.push(("OPERATIONS_TOPIC_ARN", env.world.topic_arn.as_str()));
    vars.push(("EMERGENCY_PRINCIPALS", ONCALL));
    let mut function = Function::spawn(
        &harness::built_binary("break-glass", "debug"),
        &env.moto.endpoint,
        &vars,
    )
    .await;
    let order = |proof: serde_json::Value| {
        serde_json::json!({
            "stage": "prod", "application": "backend", "tag": HOTFIX, "digest": glass.digest,
            "reason": "not really on call", "snapshot": false, "proof": proof,
        })
    };
    // The event says on call; the proof was signed by a developer's session: STS names them.
    let (key, _, token) = assumed_role(&env.config, "developer", "mallory").await;
    let forged = function
        .invoke(direct_invocation(order(harness::seed::unverified_proof(&key, &token))))
        .await
        .response();
    assert_eq!(forged["statusCode"], 403, "{forged}");
    assert!(
        forged["body"]
            .as_str()
            .unwrap()
            .contains("assumed-role/developer/mallory is not among"),
        "{forged}"
    );
    // No proof at all: not an order.
    let mut bare = order(serde_json::Value::Null);
    bare.as_object_mut().unwrap().remove("proof");
    let unproven = function.invoke(direct_invocation(bare)).await.response();
    assert_eq!(unproven["statusCode"], 400, "{unproven}");
    assert!(env.records_for(PROD, "backend-service").await.is_empty());
    assert!(env.notices().await.is_empty());
}

#[tokio::test]
async fn with_no_snapshot_nothing_is_asked_of_rds_and_a_db_that_cannot_be_snapshot_stops_the_order() {
    let glass = BreakGlass::start().await;
    let env = &glass.env;
    // The DB is stopped: RDS cannot snapshot it, and nothing is deployed.
    aws_sdk_rds::Client::new(&env.config)
        .stop_db_instance()
        .db_instance_identifier("social-analytics-db")
        .send()
        .await
        .unwrap();
    let stopped = glass.order("oncall", &[]).await;
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("the pre-deploy snapshot of social-analytics-db cannot be taken now"),
        "{}",
        text(&stopped)
    );
    assert!(env.records_for(PROD, "backend-service").await.is_empty());

    let output = glass.order("oncall", &["--no-snapshot"]).await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("pre-deploy snapshots: none"),
        "{}",
        text(&output)
    );
    assert!(manual_snapshots(&env.config, None).await.is_empty());
    assert_eq!(env.records_for(PROD, "worker-service").await[0]["status"], "DEPLOYING");
}
