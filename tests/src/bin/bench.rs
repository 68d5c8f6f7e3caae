//! The benchmark: for each function (deploy-on-push, track-deployment, rollback-on-alarm,
//! approval-page, promote, snapshot, cost-report, break-glass) and a hello-world lambda_runtime binary built with the
//! same release profile, in one run, each over fresh processes under a Lambda Runtime API:
//! init (process start → first `GET …/invocation/next`), first-event latency (process start →
//! response to an event that really acts against moto: a push that deploys, a completion, an
//! alarm that rolls back, an approver opening their link, a sweep over an open request, a
//! snapshot tick, a cost report, a break-glass order), peak RSS, zipped bootstrap size, and AWS calls per push,
//! per page GET and POST, per snapshot tick and per cost report. moto serves HTTPS with a throwaway CA, as AWS would, so the first call's TLS
//! handshake counts.

use chrono::{TimeDelta, Utc};
use harness::fault_proxy::FaultProxy;
use harness::function::Function;
use harness::moto::Moto;
use harness::runtime_api::Outcome;
use harness::seed::seed;
use harness::{alarm_timestamp, built_binary, event_file, event_time, story_time};
use shared::domain::pipeline::Pipeline;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Sample {
    init: Duration,
    first_event: Duration,
    rss_kib: u64,
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .map(|n| n.parse().expect("--runs takes a number"))
        .unwrap_or(11);
    let scratch = std::env::temp_dir().join(format!("ecs-deploy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let (ca, leaf_cert, leaf_key) = throwaway_tls(&scratch);
    // Before any thread exists: the SDK (rustls-native-certs) trusts what SSL_CERT_FILE names.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca) };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(runs, &scratch, &ca, &leaf_cert, &leaf_key));
    let _ = std::fs::remove_dir_all(&scratch);
}

async fn bench(runs: usize, scratch: &Path, ca: &Path, cert: &Path, key: &Path) {
    let text = harness::fixture("three-stages.toml");
    let pipeline = Pipeline::parse(&text).unwrap();
    let moto = Moto::start_with(&["-c", cert.to_str().unwrap(), "-k", key.to_str().unwrap()]);
    let world = seed(&moto.sdk_config().await, &pipeline).await;
    // As deployed: each function reads the stack's pipeline in force during its init.
    let pipeline_table = harness::seed::store_pipeline(&moto.sdk_config().await, &text).await;
    let hello = built_binary("hello-world", "release");
    let deploy = built_binary("deploy-on-push", "release");
    let track = built_binary("track-deployment", "release");
    let on_alarm = built_binary("rollback-on-alarm", "release");
    let page = built_binary("approval-page", "release");
    let promote = built_binary("promote", "release");
    let snapshot = built_binary("snapshot", "release");
    let cost = built_binary("cost-report", "release");
    let glass = built_binary("break-glass", "release");
    harness::seed::create_database(&moto.sdk_config().await, "social-analytics-db", None).await;
    let page_path = approval_link(&moto.sdk_config().await, &world.table, &pipeline).await;
    let (oncall_key, _, oncall_token) = harness::seed::assumed_role(&moto.sdk_config().await, "oncall", "bench").await;
    let proof = harness::seed::unverified_proof(&oncall_key, &oncall_token);
    let ca = ca.to_str().unwrap();
    let env = [
        ("TABLE_NAME", world.table.as_str()),
        ("PIPELINE_TABLE", pipeline_table.as_str()),
        ("TOPIC_ARN", world.topic_arn.as_str()),
        ("APPROVAL_TOPIC_ARN", world.approval_topic_arn.as_str()),
        ("APPROVAL_PAGE_URL", "https://approvals.invalid/"),
        ("OPERATIONS_TOPIC_ARN", world.topic_arn.as_str()),
        ("EMERGENCY_PRINCIPALS", "arn:aws:iam::123456789012:role/oncall"),
        ("SSL_CERT_FILE", ca),
    ];

    let (mut hello_samples, mut deploy_samples, mut track_samples, mut alarm_samples, mut page_samples) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut promote_samples, mut snapshot_samples, mut cost_samples, mut glass_samples) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let echo = event_file("deploy-on-push", "push-latest.json");
        hello_samples.push(sample(&hello, &moto.endpoint, &env, echo).await.0);

        let (deployed, response) = sample(&deploy, &moto.endpoint, &env, fresh_push(run)).await;
        let response = response.response();
        let targets: Vec<_> = response["targets"].as_array().into_iter().flatten().collect();
        assert!(
            targets.len() == 2 && targets.iter().all(|t| t["result"] == "deploying"),
            "every run must really deploy: {response}"
        );
        deploy_samples.push(deployed);

        let ecs_deployment_id = targets[0]["ecs_deployment_id"].as_str().unwrap();
        let service = targets[0]["service"].as_str().unwrap();
        let (tracked, response) = sample(&track, &moto.endpoint, &env, completion(service, ecs_deployment_id)).await;
        let response = response.response();
        assert_eq!(
            response["status"], "SUCCEEDED",
            "every run must really record: {response}"
        );
        track_samples.push(tracked);

        let (rolled_back, response) = sample(&on_alarm, &moto.endpoint, &env, alarm()).await;
        let response = response.response();
        let services: Vec<_> = response["services"].as_array().into_iter().flatten().collect();
        assert!(
            services.len() == 2 && services.iter().all(|s| s["result"] == "rolled_back"),
            "every run must really roll back: {response}"
        );
        alarm_samples.push(rolled_back);

        let (shown, response) = sample(&page, &moto.endpoint, &env, page_get(&page_path.0)).await;
        let response = response.response();
        assert_eq!(
            response["statusCode"], 200,
            "every run must really show the page: {response}"
        );
        page_samples.push(shown);

        let tick = event_file("promote", "scheduled.json");
        let (swept, response) = sample(&promote, &moto.endpoint, &env, tick).await;
        let response = response.response();
        assert_eq!(
            response["swept"][0]["advanced"]["did"], "waiting",
            "every run must really sweep the open request: {response}"
        );
        promote_samples.push(swept);

        // A tick of its own each run, so each really snapshots (and copies the one before).
        let mut tick: serde_json::Value = serde_json::from_slice(&event_file("snapshot", "scheduled.json")).unwrap();
        tick["time"] = format!("2026-11-23T03:{run:02}:00Z").into();
        let (snapped, response) = sample(&snapshot, &moto.endpoint, &env, tick.to_string().into_bytes()).await;
        let response = response.response();
        assert_eq!(
            response["taken"].as_array().map(Vec::len),
            Some(1),
            "every run must really snapshot: {response}"
        );
        snapshot_samples.push(snapped);

        // A later tick each run, so each really makes a report.
        let mut tick: serde_json::Value = serde_json::from_slice(&event_file("cost-report", "scheduled.json")).unwrap();
        tick["time"] = format!("2026-11-23T08:{run:02}:00Z").into();
        let (reported, response) = sample(&cost, &moto.endpoint, &env, tick.to_string().into_bytes()).await;
        let response = response.response();
        assert_eq!(
            response["made"], true,
            "every run must really make a report: {response}"
        );
        cost_samples.push(reported);

        // An order of its own each run (its reason makes its key), so each really deploys.
        let (ordered, response) = sample(&glass, &moto.endpoint, &env, emergency_order(run, &proof)).await;
        let response = response.response();
        let answer: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap_or_default()).unwrap();
        assert!(
            response["statusCode"] == 200 && answer["deployments"].as_array().is_some_and(|d| d.len() == 2),
            "every run must really deploy: {response}"
        );
        glass_samples.push(ordered);
        eprint!("\rrun {}/{runs}", run + 1);
    }
    eprintln!();
    let calls = calls_for(&pipeline, &deploy, event_file("deploy-on-push", "push-latest.json")).await;
    let snapshot_calls = calls_for(&pipeline, &snapshot, event_file("snapshot", "scheduled.json")).await;
    let cost_calls = calls_for(&pipeline, &cost, event_file("cost-report", "scheduled.json")).await;
    let page_calls = calls_per_page(&pipeline, &page).await;

    println!(
        "{runs} fresh processes each, release profile, {} ({} cores), moto over HTTPS on loopback\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "| function | init (median, min–max) | first event (median, min–max) | peak RSS (median) | bootstrap.zip |"
    );
    println!("|---|---|---|---|---|");
    let (hello_init, _, _) = row("hello-world (baseline)", &hello_samples, zipped_size(&hello, scratch));
    let functions = [
        (
            "deploy-on-push",
            row("deploy-on-push", &deploy_samples, zipped_size(&deploy, scratch)),
        ),
        (
            "track-deployment",
            row("track-deployment", &track_samples, zipped_size(&track, scratch)),
        ),
        (
            "rollback-on-alarm",
            row("rollback-on-alarm", &alarm_samples, zipped_size(&on_alarm, scratch)),
        ),
        (
            "approval-page",
            row(
                "approval-page (GET of a link)",
                &page_samples,
                zipped_size(&page, scratch),
            ),
        ),
        (
            "promote",
            row(
                "promote (a sweep: one request awaiting approval)",
                &promote_samples,
                zipped_size(&promote, scratch),
            ),
        ),
        (
            "snapshot",
            row(
                "snapshot (a tick: one snapshot, one copy)",
                &snapshot_samples,
                zipped_size(&snapshot, scratch),
            ),
        ),
        (
            "cost-report",
            row(
                "cost-report (a report: 6 services, 1 DB, 2 Cost Explorer calls)",
                &cost_samples,
                zipped_size(&cost, scratch),
            ),
        ),
        (
            "break-glass",
            row(
                "break-glass (an order: one snapshot, 2 services deployed)",
                &glass_samples,
                zipped_size(&glass, scratch),
            ),
        ),
    ];
    println!("\nAWS calls for the sample push (2 services deployed): {calls}");
    println!("AWS calls for a snapshot tick (one DB, the first: nothing to copy yet): {snapshot_calls}");
    println!("AWS calls for a cost report (6 services, 1 DB): {cost_calls}");
    println!("AWS calls of the approval page: {page_calls}");
    let check = |ok: bool| if ok { "met" } else { "NOT met" };
    for (name, (init, rss, zip)) in functions {
        let ratio = init.as_secs_f64() / hello_init.as_secs_f64();
        println!(
            "{name}: init ≤ 1.5× hello-world: {ratio:.2}× ({}); RSS ≤ 32 MB: {:.1} MB ({}); zip ≤ 6 MB: {:.2} MB ({})",
            check(ratio <= 1.5),
            rss as f64 / 1024.0,
            check(rss <= 32 * 1024),
            zip as f64 / 1_048_576.0,
            check(zip <= 6 * 1_048_576),
        );
    }
}

/// An open prod approval request in `table` and one approver's link to it: (path, token).
async fn approval_link(config: &aws_config::SdkConfig, table: &str, pipeline: &Pipeline) -> (String, String) {
    use shared::domain::approval::{ApprovalId, ApprovalRequest, ApprovalToken};
    use shared::ports::Approvals;
    let push: shared::events::EcrEvent =
        serde_json::from_slice(&event_file("deploy-on-push", "push-release.json")).unwrap();
    let image = shared::domain::push::plan_push(pipeline, &push)
        .ok()
        .and_then(|plan| match plan {
            shared::domain::push::PushPlan::Deploy { image, .. } => Some(image),
            shared::domain::push::PushPlan::Ignore(_) => None,
        })
        .expect("the sample release is for the pipeline");
    let prod = pipeline
        .stages()
        .iter()
        .find(|s| s.approval.is_some())
        .expect("an approval stage");
    let app = &pipeline.applications()[0];
    let mut request = ApprovalRequest::new(
        ApprovalId::for_release(&image, &prod.name, &app.name),
        (&prod.name, &prod.cluster),
        prod.approval.as_ref().unwrap(),
        &app.name,
        &image,
        vec![shared::domain::approval::ReleaseService {
            service: app.services[0].name.clone(),
            deployment: shared::domain::deployment::DeploymentId::from_stored("dep-bench".into()),
            running_now: None,
        }],
        Ok(None),
        Utc::now(),
    );
    let token = ApprovalToken::from_random([7; 32]);
    let approver = request.ballots[0].approver.clone();
    request.issue_link(&approver, &token);
    let records = shared::adapters::dynamo::DynamoRecords::new(config, table);
    records.create_approval(&request).await.expect("the request is stored");
    (
        format!("/a/{}/{}", request.id, token.as_str()),
        token.as_str().to_owned(),
    )
}

/// The sample function URL GET (or POST, with `form`) of `path`.
fn page_event(name: &str, path: &str, form: Option<String>) -> Vec<u8> {
    use base64::Engine;
    let mut event: serde_json::Value = serde_json::from_slice(&event_file("approval-page", name)).unwrap();
    event["rawPath"] = path.into();
    event["requestContext"]["http"]["path"] = path.into();
    if let Some(form) = form {
        event["body"] = base64::engine::general_purpose::STANDARD.encode(form).into();
    }
    serde_json::to_vec(&event).unwrap()
}

/// A break-glass order from the on-call role (`proof`), as its function URL hands it over.
fn emergency_order(run: usize, proof: &serde_json::Value) -> Vec<u8> {
    let order = serde_json::json!({
        "stage": "prod",
        "application": "backend",
        "tag": "v1.4.2-hotfix",
        "digest": format!("sha256:{:064x}", 0xbe7c_0000 + run),
        "reason": format!("benchmark run {run}"),
        "snapshot": true,
        "proof": proof,
    });
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "breakglassurlid",
            "authorizer": {"iam": {
                "accessKey": "ASIAEXAMPLE", "accountId": "123456789012", "callerId": "AROAEXAMPLE:jane",
                "userArn": "arn:aws:sts::123456789012:assumed-role/oncall/jane", "userId": "AROAEXAMPLE:jane"
            }},
            "domainName": "breakglassurlid.lambda-url.us-east-1.on.aws",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "pipectl"},
            "requestId": format!("bench-{run}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:02:00:00 +0000",
            "timeEpoch": 1_795_399_200_000_i64
        },
        "body": order.to_string(),
        "isBase64Encoded": false
    })
    .to_string()
    .into_bytes()
}

fn page_get(path: &str) -> Vec<u8> {
    page_event("get.json", path, None)
}

/// Counts the calls of a page GET and of the approving POST from that page (plain HTTP moto).
async fn calls_per_page(pipeline: &Pipeline, page: &Path) -> String {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let world = seed(&config, pipeline).await;
    let pipeline_table = harness::seed::store_pipeline(&config, &harness::fixture("three-stages.toml")).await;
    let (path, _) = approval_link(&config, &world.table, pipeline).await;
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let mut function = Function::spawn(
        page,
        &proxy.endpoint,
        &[
            ("TABLE_NAME", world.table.as_str()),
            ("PIPELINE_TABLE", pipeline_table.as_str()),
        ],
    )
    .await;
    let shown = function.invoke(page_get(&path)).await.response();
    let get_calls = proxy.calls().len();
    let nonce = shown["body"]
        .as_str()
        .and_then(|html| html.split("name=\"nonce\" value=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a form")
        .to_owned();
    let decided = function
        .invoke(page_event(
            "post.json",
            &path,
            Some(format!("verdict=approve&nonce={nonce}")),
        ))
        .await
        .response();
    assert_eq!(decided["statusCode"], 200, "the POST must really decide: {decided}");
    let calls = proxy.calls();
    let post: Vec<&str> = calls[get_calls..]
        .iter()
        .map(|c| c.rsplit('.').next().unwrap_or(c))
        .collect();
    format!("GET {get_calls} (GetItem), POST {} ({})", post.len(), post.join(", "))
}

/// ECS reporting `ecs_deployment_id` of the dev service completed 10 s from now.
fn completion(service: &str, ecs_deployment_id: &str) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&event_file("track-deployment", "completed.json")).unwrap();
    event["resources"][0] = format!("arn:aws:ecs:us-east-1:123456789012:service/social-analytics-dev/{service}").into();
    event["detail"]["deploymentId"] = ecs_deployment_id.into();
    event["detail"]["updatedAt"] = event_time(Utc::now() + TimeDelta::seconds(10)).into();
    serde_json::to_vec(&event).unwrap()
}

/// dev's 5xx alarm firing 30 s from now, after the run's push and inside the watch window:
/// both services roll back.
fn alarm() -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&event_file("rollback-on-alarm", "metric-alarm.json")).unwrap();
    event["detail"]["state"]["timestamp"] = alarm_timestamp(Utc::now() + TimeDelta::seconds(30)).into();
    serde_json::to_vec(&event).unwrap()
}

/// A push no earlier run has deployed, a minute newer than the last (pushes carry whole
/// seconds, and a tie keeps the one ahead), so every run really deploys.
fn fresh_push(run: usize) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&event_file("deploy-on-push", "push-latest.json")).unwrap();
    event["detail"]["image-digest"] = format!("sha256:{:064x}", run + 1).into();
    event["time"] = event_time(story_time(run as i64)).into();
    serde_json::to_vec(&event).unwrap()
}

/// One fresh process, one event; the measurements and what the function answered.
async fn sample(binary: &Path, endpoint: &str, env: &[(&str, &str)], payload: Vec<u8>) -> (Sample, Outcome) {
    let mut function = Function::spawn(binary, endpoint, env).await;
    let outcome = function.invoke(payload).await;
    let first_event = function.started.elapsed();
    let init = function.api.first_poll().expect("the function polled") - function.started;
    let rss_kib = function.peak_rss_kib().expect("peak RSS from /proc");
    (
        Sample {
            init,
            first_event,
            rss_kib,
        },
        outcome,
    )
}

fn median<T: Ord + Copy>(mut values: Vec<T>) -> (T, T, T) {
    values.sort();
    (values[values.len() / 2], values[0], values[values.len() - 1])
}

/// Prints one table row; returns (median init, median RSS KiB, zip bytes).
fn row(name: &str, samples: &[Sample], zip_bytes: u64) -> (Duration, u64, u64) {
    let init = median(samples.iter().map(|s| s.init).collect());
    let first = median(samples.iter().map(|s| s.first_event).collect());
    let (rss, _, _) = median(samples.iter().map(|s| s.rss_kib).collect());
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {name} | {} ({}–{}) | {} ({}–{}) | {:.1} MB | {:.2} MB |",
        ms(init.0),
        ms(init.1),
        ms(init.2),
        ms(first.0),
        ms(first.1),
        ms(first.2),
        rss as f64 / 1024.0,
        zip_bytes as f64 / 1_048_576.0
    );
    (init.0, rss, zip_bytes)
}

/// Counts the calls one push makes, through the counting proxy (plain HTTP moto).
/// The AWS calls `binary` makes for `event` in a fresh emulator (seeded, with the RDS
/// instance), counted through the proxy: `total (Operation n, ...)`.
async fn calls_for(pipeline: &Pipeline, binary: &Path, event: Vec<u8>) -> String {
    let moto = Moto::start();
    let world = seed(&moto.sdk_config().await, pipeline).await;
    let pipeline_table =
        harness::seed::store_pipeline(&moto.sdk_config().await, &harness::fixture("three-stages.toml")).await;
    harness::seed::create_database(&moto.sdk_config().await, "social-analytics-db", None).await;
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let env = [
        ("TABLE_NAME", world.table.as_str()),
        ("PIPELINE_TABLE", pipeline_table.as_str()),
        ("TOPIC_ARN", world.topic_arn.as_str()),
        ("APPROVAL_TOPIC_ARN", world.approval_topic_arn.as_str()),
        ("APPROVAL_PAGE_URL", "https://approvals.invalid/"),
    ];
    let mut function = Function::spawn(binary, &proxy.endpoint, &env).await;
    function.invoke(event).await.response();
    let calls = proxy.calls();
    let mut counts = std::collections::BTreeMap::new();
    for call in &calls {
        let operation = call.rsplit('.').next().unwrap_or(call);
        *counts.entry(operation.to_owned()).or_insert(0) += 1;
    }
    let detail: Vec<String> = counts.iter().map(|(op, n)| format!("{op} {n}")).collect();
    format!("{} ({})", calls.len(), detail.join(", "))
}

fn zipped_size(binary: &Path, scratch: &Path) -> u64 {
    let dir = scratch.join(binary.file_name().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(binary, dir.join("bootstrap")).unwrap();
    let zip = dir.join("bootstrap.zip");
    run(Command::new("zip")
        .current_dir(&dir)
        .args(["-q", "-9", "bootstrap.zip", "bootstrap"]));
    std::fs::metadata(zip).unwrap().len()
}

/// A CA and a leaf for 127.0.0.1 signed by it: rustls refuses a self-signed CA used directly
/// as the server certificate.
fn throwaway_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let [ca, ca_key, leaf, leaf_key, csr, ext] =
        ["ca.crt", "ca.key", "leaf.crt", "leaf.key", "leaf.csr", "leaf.ext"].map(|f| dir.join(f));
    let p = |path: &PathBuf| path.to_str().unwrap().to_owned();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=bench throwaway CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &p(&leaf_key),
        "-out",
        &p(&csr),
    ]));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&leaf),
    ]));
    (ca, leaf, leaf_key)
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
