//! The local sandbox: moto as AWS, the pipeline's clusters, services, table and topic created
//! there, and a story played through the real function binaries under a Lambda Runtime API:
//! the sample ECR pushes, ECS completing them, a bad build, its alarm and the rollback, the bad
//! digest refused, a fix forward; a release blocked because its digest skipped staging, and
//! one that passed staging asking each approver by mail, approved through the real approval
//! page over HTTP, backed up and deployed by promote; a release rejected on the page, and one
//! nobody answers, expired; two nights of scheduled snapshots, and a tick forty days on that
//! prunes them; Monday's cost report. Prints what each step changed, then the records and the
//! notices sent.
//! `--keep` leaves moto and the approval page running to explore.

use aws_sdk_dynamodb::types::AttributeValue;
use harness::function::Function;
use harness::function_url::{FunctionUrl, request};
use harness::moto::Moto;
use harness::seed::{seed, take_notices};
use harness::{ACCOUNT, REGION, alarm_timestamp, built_binary, event_file, event_time, repo_root, story_time};
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::approval::ApprovalStatus;
use shared::domain::pipeline::Pipeline;
use shared::ports::Approvals;

const STORY: [(&str, &str); 4] = [
    ("push-latest.json", "a `latest` build: dev deploys automatically"),
    (
        "push-main.json",
        "a `main-*` build: dev and staging deploy automatically",
    ),
    (
        "push-release.json",
        "a `v*` release of a digest that never passed staging: dev deploys, prod is BLOCKED",
    ),
    (
        "push-release.json",
        "the release delivered again: nothing happens twice",
    ),
];

#[tokio::main]
async fn main() {
    let keep = std::env::args().any(|a| a == "--keep");
    // The tests' pipeline (its story's names), but no wait between an approval and its deploy: the story need not
    // sit through five minutes.
    let pipeline_text = std::fs::read_to_string(repo_root().join("tests/fixtures/three-stages.toml"))
        .expect("tests/fixtures/three-stages.toml")
        .replace("wait_minutes = 5", "wait_minutes = 0")
        .replace("quota = 100 ", "quota = 4 ")
        .replace("keep_last = 7 ", "keep_last = 1 ");
    let pipeline_file = std::env::temp_dir().join(format!("sandbox-pipeline-{}.toml", std::process::id()));
    std::fs::write(&pipeline_file, &pipeline_text).expect("the sandbox's pipeline file");
    let pipeline_path = pipeline_file.to_str().expect("a UTF-8 temp path").to_owned();
    let pipeline = Pipeline::parse(&pipeline_text).unwrap_or_else(|e| panic!("{e}"));

    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let world = seed(&config, &pipeline).await;
    println!("moto server (emulated AWS): {}", moto.endpoint);
    println!("seeded: table `{}`, topic {}", world.table, world.topic_arn);
    harness::seed::create_database(&config, "social-analytics-db", None).await;
    println!("  RDS instance social-analytics-db (PostgreSQL), snapshotted before each prod deploy");
    println!(
        "  (the sandbox's pipeline file sets wait_minutes = 0: the deploy follows the approval at once; and a snapshot quota of 4, to be near it)"
    );
    for ((cluster, service), arn) in &world.initial {
        println!("  {cluster}/{service} runs {}", short(arn));
    }
    // The stack as the deploy command leaves it: its pipeline table, then the file pushed.
    harness::seed::create_pipeline_table(&config, harness::seed::PIPELINE_TABLE).await;
    harness::seed::deployed_stack(
        &config,
        &moto.endpoint,
        "sandbox",
        &world,
        harness::seed::PIPELINE_TABLE,
        &pipeline_file,
    )
    .await;
    println!("  stack `sandbox` (its outputs and the parameters `pipectl pipeline parameters` derives)");
    pipectl_says(
        &moto.endpoint,
        &["pipeline", "push", &pipeline_path, "--stack", "sandbox"],
    );

    let ecs = aws_sdk_ecs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let page = FunctionUrl::start(
        Function::spawn(
            &built_binary("approval-page", "debug"),
            &moto.endpoint,
            &[
                ("TABLE_NAME", world.table.as_str()),
                ("PIPELINE_TABLE", harness::seed::PIPELINE_TABLE),
            ],
        )
        .await,
    )
    .await;
    println!("approval page (a local function URL): {}", page.url);
    let vars = [
        ("TABLE_NAME", world.table.as_str()),
        ("TOPIC_ARN", world.topic_arn.as_str()),
        ("APPROVAL_TOPIC_ARN", world.approval_topic_arn.as_str()),
        ("APPROVAL_PAGE_URL", page.url.as_str()),
        ("PIPELINE_TABLE", harness::seed::PIPELINE_TABLE),
        // Seconds between looks at the pipeline in force (30 by default), so the change the
        // story pushes shows at once.
        ("PIPELINE_TTL_SECONDS", "1"),
    ];
    let mut function = Function::spawn(&built_binary("deploy-on-push", "debug"), &moto.endpoint, &vars).await;
    let mut tracker = Function::spawn(&built_binary("track-deployment", "debug"), &moto.endpoint, &vars).await;
    let mut on_alarm = Function::spawn(&built_binary("rollback-on-alarm", "debug"), &moto.endpoint, &vars).await;
    let mut promote = Function::spawn(&built_binary("promote", "debug"), &moto.endpoint, &vars).await;

    let samples = STORY.map(|(file, story)| {
        let mut event: serde_json::Value = serde_json::from_slice(&event_file("deploy-on-push", file)).unwrap();
        on_story_clock(&mut event);
        (file.to_owned(), story, event)
    });
    for (file, story, event) in &samples {
        push(&mut function, &ecs, &pipeline, &world.initial, file, story, event).await;
    }
    complete_in_flight(&mut tracker, &ddb, &world.table, 12).await;

    // A bad build reaches dev and completes; minutes later its 5xx alarm fires.
    let bad = with_image(&samples[0].2, "sha256:0bad", 30);
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(bad build)",
        "a bad `latest` build: dev deploys it",
        &bad,
    )
    .await;
    complete_in_flight(&mut tracker, &ddb, &world.table, 34).await;

    let mut alarm: serde_json::Value =
        serde_json::from_slice(&event_file("rollback-on-alarm", "metric-alarm.json")).unwrap();
    alarm["detail"]["state"]["timestamp"] = alarm_timestamp(story_time(40)).into();
    println!(
        "\n━━ alarm {} goes OK → ALARM at {}, inside dev's 15-minute watch window (rollback-on-alarm)",
        alarm["detail"]["alarmName"].as_str().unwrap_or("?"),
        clock(40),
    );
    let response = on_alarm.invoke(serde_json::to_vec(&alarm).unwrap()).await.response();
    for service in response["services"].as_array().into_iter().flatten() {
        let name = service["service"].as_str().unwrap_or("?");
        match service["result"].as_str() {
            Some("rolled_back") => println!(
                "   dev      {name:<16} rolled back {} → {} (record {}, of {})",
                short(service["from"].as_str().unwrap_or("?")),
                short(service["to"].as_str().unwrap_or("?")),
                service["rollback_id"].as_str().unwrap_or("?"),
                service["rolled_back"].as_str().unwrap_or("?"),
            ),
            other => println!(
                "   dev      {name:<16} {}: {}",
                other.unwrap_or("?"),
                service["reason"].as_str().unwrap_or("")
            ),
        }
    }
    println!("   delivered again:");
    let again = on_alarm.invoke(serde_json::to_vec(&alarm).unwrap()).await.response();
    for service in again["services"].as_array().into_iter().flatten() {
        println!(
            "   dev      {:<16} {}: {}",
            service["service"].as_str().unwrap_or("?"),
            service["result"].as_str().unwrap_or("?"),
            service["reason"].as_str().unwrap_or("")
        );
    }
    complete_in_flight(&mut tracker, &ddb, &world.table, 43).await;

    let again = with_image(&samples[0].2, "sha256:0bad", 45);
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(bad build)",
        "the bad digest pushed again: quarantined",
        &again,
    )
    .await;
    let fix = with_image(&samples[0].2, "sha256:0f1c", 50);
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(fix)",
        "a fix forward (a new digest) deploys",
        &fix,
    )
    .await;

    // The main build passed staging: the same digest tagged as a release asks for approval.
    let mut release = with_image(&samples[2].2, "", 55);
    release["detail"]["image-digest"] = samples[1].2["detail"]["image-digest"].clone();
    release["detail"]["image-tag"] = "v1.4.1".into();
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(release)",
        "the `main-*` build's digest, which SUCCEEDED in staging, tagged `v1.4.1`: prod asks for approval",
        &release,
    )
    .await;
    let approved = decide_by_mail(&config, &world, &page, "release-manager", "approve", "staging is green").await;
    if let Some(id) = approved {
        promote_after(&mut promote, &config, &ecs, &pipeline, &world.initial, &id).await;
        complete_in_flight(&mut tracker, &ddb, &world.table, 57).await;
    }

    // Another main build passes staging; its release is rejected.
    let next_main = with_image(&samples[1].2, "sha256:5e1e", 58);
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(main build)",
        "another `main-*` build: dev and staging deploy",
        &next_main,
    )
    .await;
    complete_in_flight(&mut tracker, &ddb, &world.table, 59).await;
    let mut rejected = next_main.clone();
    rejected["detail"]["image-tag"] = "v1.5.0".into();
    rejected["time"] = event_time(story_time(60)).into();
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(release)",
        "that digest tagged `v1.5.0`: prod asks for approval",
        &rejected,
    )
    .await;
    if let Some(id) = decide_by_mail(
        &config,
        &world,
        &page,
        "oncall-lead",
        "reject",
        "not before the weekend",
    )
    .await
    {
        println!("\n━━ the stream delivers the decision to promote");
        let response = promote.invoke(stream_record(&id)).await.response();
        println!("   promote: {response}");
    }

    // The same digest tagged again: nobody answers, and the request expires.
    let mut unanswered = next_main.clone();
    unanswered["detail"]["image-tag"] = "v1.5.1".into();
    unanswered["time"] = event_time(story_time(62)).into();
    push(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        "(release)",
        "that digest tagged `v1.5.1`: prod asks again, and nobody answers",
        &unanswered,
    )
    .await;
    expire_unanswered(&mut promote, &config, &world).await;
    let mut snapshot = Function::spawn(&built_binary("snapshot", "debug"), &moto.endpoint, &vars).await;
    scheduled_snapshots(&mut snapshot, &config).await;
    forty_days_later(&config, &pipeline, &world).await;
    let mut cost = Function::spawn(&built_binary("cost-report", "debug"), &moto.endpoint, &vars).await;
    cost_report(&mut cost, &config, &pipeline, &moto.endpoint).await;
    pipeline_change(
        &mut function,
        &ecs,
        &pipeline,
        &world.initial,
        &moto.endpoint,
        &pipeline_text,
        &samples[0].2,
    )
    .await;
    let on = OnCall {
        config: &config,
        ecs: &ecs,
        ddb: &ddb,
        pipeline: &pipeline,
        world: &world,
        page: &page,
        endpoint: &moto.endpoint,
        text: &pipeline_text,
        main_build: &samples[1].2,
    };
    on_call(&mut tracker, &mut promote, &mut function, &on).await;
    break_glass(&config, &world, &moto.endpoint, &vars).await;
    approved_rollback(&mut promote, &on).await;
    let _ = std::fs::remove_file(&pipeline_file);

    print_records(&ddb, &world.table).await;
    println!("\n━━ notices published to the SNS topic (read back through a subscribed SQS queue)");
    for notice in take_notices(&config, &world.notices_queue_url).await {
        println!("   subject: {}", notice.subject);
        for line in notice.message.lines() {
            println!("   │ {line}");
        }
    }

    if keep {
        println!(
            "\nmoto keeps running at {0}; try:\n  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --region us-east-1 --endpoint-url {0} ecs list-task-definitions\nThe approval page keeps running too: open the oncall-lead link above in your browser.\nCtrl-C to stop.",
            moto.endpoint
        );
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// pipectl run against the emulator, its output indented under the story.
fn pipectl_says(endpoint: &str, args: &[&str]) {
    let mut command = harness::seed::pipectl(endpoint);
    command.args(args);
    pipectl_run_says(command, args);
}

/// `command` (pipectl with `args`, set up as the chapter needs) run, its output indented.
fn pipectl_run_says(mut command: std::process::Command, args: &[&str]) {
    let output = command.output().expect("pipectl runs");
    println!("   $ pipectl {}", args.join(" "));
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
    {
        println!("   │ {line}");
    }
}

/// The pipeline changed while the functions run: no rebuild, no redeploy. v2 lets only
/// `feature-*` tags into dev, so a `latest` build deploys nowhere; v1 put back, it deploys.
async fn pipeline_change(
    function: &mut Function,
    ecs: &aws_sdk_ecs::Client,
    pipeline: &Pipeline,
    initial: &std::collections::BTreeMap<(String, String), String>,
    endpoint: &str,
    text: &str,
    latest: &serde_json::Value,
) {
    println!("\n━━ a pipeline change while the functions run: dev takes only `feature-*` tags (pipectl pipeline push)");
    let narrowed = std::env::temp_dir().join(format!("sandbox-pipeline-v2-{}.toml", std::process::id()));
    std::fs::write(&narrowed, text.replacen("tags = \"*\"", "tags = \"feature-*\"", 1)).expect("v2");
    pipectl_says(
        endpoint,
        &["pipeline", "push", narrowed.to_str().unwrap(), "--stack", "sandbox"],
    );
    pipectl_says(endpoint, &["pipeline", "diff", "v1", "v2", "--stack", "sandbox"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let build = with_image(latest, "sha256:0fea", 200);
    push(
        function,
        ecs,
        pipeline,
        initial,
        "(latest build)",
        "a `latest` build under v2: dev no longer takes it",
        &build,
    )
    .await;
    println!("\n━━ the change undone in one command (pipectl pipeline activate v1)");
    pipectl_says(endpoint, &["pipeline", "activate", "v1", "--stack", "sandbox"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let build = with_image(latest, "sha256:0feb", 202);
    push(
        function,
        ecs,
        pipeline,
        initial,
        "(latest build)",
        "another `latest` build under v1: dev deploys it",
        &build,
    )
    .await;
    let _ = std::fs::remove_file(&narrowed);
}

/// What the on-call chapter of the story works with.
struct OnCall<'a> {
    config: &'a aws_config::SdkConfig,
    ecs: &'a aws_sdk_ecs::Client,
    ddb: &'a aws_sdk_dynamodb::Client,
    pipeline: &'a Pipeline,
    world: &'a harness::seed::World,
    page: &'a FunctionUrl,
    endpoint: &'a str,
    text: &'a str,
    /// A `main-*` build event, to push new digests of.
    main_build: &'a serde_json::Value,
}

/// On call's levers: dev rolled back to a named version; a freeze on prod that holds an
/// approved release until it ends (lifted here by putting v1 back); the status screen.
async fn on_call(tracker: &mut Function, promote: &mut Function, function: &mut Function, on: &OnCall<'_>) {
    println!("\n━━ on call rolls dev's backend back to the release v1.4.1, by name (pipectl rollback)");
    let rollback = [
        "rollback",
        "dev",
        "backend",
        "--to",
        "v1.4.1",
        "--reason",
        "checkout errors since the 5e1e build",
        "--stack",
        "sandbox",
    ];
    pipectl_says(on.endpoint, &rollback);
    complete_in_flight(tracker, on.ddb, &on.world.table, 210).await;
    println!("   run again, it changes nothing:");
    pipectl_says(on.endpoint, &rollback);

    println!("\n━━ a freeze on prod until tomorrow (pipectl pipeline push): an approved release waits for its end");
    let until = chrono::Utc::now() + chrono::TimeDelta::days(1);
    let frozen = std::env::temp_dir().join(format!("sandbox-pipeline-freeze-{}.toml", std::process::id()));
    std::fs::write(
        &frozen,
        on.text.replacen(
            "watch_window_minutes = 30",
            &format!(
                "watch_window_minutes = 30\nfreeze = [{{ from = \"{}\", to = \"{}\", reason = \"year-end freeze\" }}]",
                (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339(),
                until.to_rfc3339()
            ),
            1,
        ),
    )
    .expect("the frozen file");
    pipectl_says(
        on.endpoint,
        &["pipeline", "push", frozen.to_str().unwrap(), "--stack", "sandbox"],
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let build = with_image(on.main_build, "sha256:1600", 214);
    push(
        function,
        on.ecs,
        on.pipeline,
        &on.world.initial,
        "(main build)",
        "a new `main-*` build: dev and staging deploy it",
        &build,
    )
    .await;
    complete_in_flight(tracker, on.ddb, &on.world.table, 215).await;
    let mut release = build.clone();
    release["detail"]["image-tag"] = "v1.6.0".into();
    release["time"] = event_time(story_time(216)).into();
    push(
        function,
        on.ecs,
        on.pipeline,
        &on.world.initial,
        "(release)",
        "that digest, SUCCEEDED in staging, tagged `v1.6.0` during the freeze: prod asks for approval (a request may be approved in a freeze)",
        &release,
    )
    .await;
    if let Some(id) = decide_by_mail(
        on.config,
        on.world,
        on.page,
        "release-manager",
        "approve",
        "ready when the freeze ends",
    )
    .await
    {
        println!("\n━━ the stream delivers the approval to promote: held, the team told until when");
        let response = promote.invoke(stream_record(&id)).await.response();
        println!("   promote: {response}");
    }
    println!("\n━━ the status screen (pipectl status --stage prod)");
    pipectl_says(on.endpoint, &["status", "--stage", "prod", "--stack", "sandbox"]);
    println!("\n━━ the freeze lifted early (pipectl pipeline activate v1): the next sweep starts the promotion");
    pipectl_says(on.endpoint, &["pipeline", "activate", "v1", "--stack", "sandbox"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = promote.invoke(event_file("promote", "scheduled.json")).await.response();
    println!("   promote: {response}");
    let _ = std::fs::remove_file(&frozen);
}

/// Prod breaks at night and the fix cannot wait for staging, an approval or a window: the
/// on-call engineer, whose role the stack names in EmergencyPrincipals, orders a break-glass
/// deploy. A developer's role is refused. The team and operations topics both hear of it.
async fn break_glass(
    config: &aws_config::SdkConfig,
    world: &harness::seed::World,
    endpoint: &str,
    vars: &[(&str, &str)],
) {
    const ONCALL: &str = "arn:aws:iam::123456789012:role/oncall";
    println!(
        "\n━━ break-glass: a hotfix `v1.6.1-hotfix` in ECR, prod down; the stack's EmergencyPrincipals = {ONCALL}"
    );
    harness::seed::push_image(config, "social-analytics/backend", "v1.6.1-hotfix").await;
    let operations = aws_sdk_sns::Client::new(config)
        .create_topic()
        .name("operations")
        .send()
        .await
        .expect("the operations topic")
        .topic_arn
        .expect("its ARN");
    let operations_queue = harness::seed::subscribe_queue(config, &operations, "operations", None).await;
    let mut glass_vars = vars.to_vec();
    glass_vars.push(("OPERATIONS_TOPIC_ARN", operations.as_str()));
    glass_vars.push(("EMERGENCY_PRINCIPALS", ONCALL));
    let url = FunctionUrl::start_with_iam(
        Function::spawn(&built_binary("break-glass", "debug"), endpoint, &glass_vars).await,
        endpoint,
    )
    .await;
    println!("   break-glass function URL (AWS_IAM auth): {}", url.url);
    let order = [
        "deploy",
        "prod",
        "backend",
        "v1.6.1-hotfix",
        "--emergency",
        "--reason",
        "INC-311: checkout answers 500 since 02:10",
    ];
    for (role, who) in [("developer", "a developer's role"), ("oncall", "the on-call role")] {
        println!("   as {who} (arn:aws:sts::123456789012:assumed-role/{role}/jane):");
        let (key, secret, token) = harness::seed::assumed_role(config, role, "jane").await;
        let mut command = harness::seed::pipectl(endpoint);
        command
            .args(order)
            .env("TABLE_NAME", &world.table)
            .env("PIPELINE_TABLE", harness::seed::PIPELINE_TABLE)
            .env("BREAK_GLASS_URL", &url.url)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .expect("pipectl runs");
        println!("   $ pipectl {}", order.join(" "));
        for line in String::from_utf8_lossy(&output.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&output.stderr).lines())
        {
            println!("   │ {line}");
        }
    }
    for notice in take_notices(config, &operations_queue).await {
        println!("   to the operations topic: {}", notice.subject);
    }
}

/// Prod's operator rollbacks now need approval (`rollback_approval = true`): on call asks to
/// take prod back from the hotfix to v1.4.1; an approver approves from their mail; the stream
/// hands the approval to promote, which rolls both services back at once.
async fn approved_rollback(promote: &mut Function, on: &OnCall<'_>) {
    println!(
        "\n━━ prod's operator rollbacks need approval from now on (rollback_approval = true, pipectl pipeline push)"
    );
    let asks = std::env::temp_dir().join(format!("sandbox-pipeline-rollbacks-{}.toml", std::process::id()));
    std::fs::write(
        &asks,
        on.text.replacen(
            "watch_window_minutes = 30",
            "watch_window_minutes = 30\nrollback_approval = true",
            1,
        ),
    )
    .expect("the file asking for rollback approvals");
    pipectl_says(
        on.endpoint,
        &["pipeline", "push", asks.to_str().unwrap(), "--stack", "sandbox"],
    );
    let _ = std::fs::remove_file(&asks);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    println!(
        "\n━━ on call asks to take prod back from the hotfix to v1.4.1 (pipectl rollback): the approvers are asked"
    );
    let rollback = [
        "rollback",
        "prod",
        "backend",
        "--to",
        "v1.4.1",
        "--reason",
        "the hotfix breaks sessions",
    ];
    // The sandbox's stack has no page URL output (the page starts after it): named here.
    let mut command = harness::seed::pipectl(on.endpoint);
    command
        .args(rollback)
        .env("TABLE_NAME", &on.world.table)
        .env("PIPELINE_TABLE", harness::seed::PIPELINE_TABLE)
        .env("TOPIC_ARN", &on.world.topic_arn)
        .env("APPROVAL_TOPIC_ARN", &on.world.approval_topic_arn)
        .env("APPROVAL_PAGE_URL", &on.page.url);
    pipectl_run_says(command, &rollback);
    let Some(id) = decide_by_mail(
        on.config,
        on.world,
        on.page,
        "oncall-lead",
        "approve",
        "sessions drop since the hotfix",
    )
    .await
    else {
        return;
    };
    println!("\n━━ the stream delivers the approval to promote: no wait, no snapshot, both services go back");
    let before = running_all(on.ecs, &on.world.initial).await;
    let response = promote.invoke(stream_record(&id)).await.response();
    println!("   promote: {response}");
    let after = running_all(on.ecs, &on.world.initial).await;
    for ((cluster, service), arn) in &after {
        let was = &before[&(cluster.clone(), service.clone())];
        if cluster.ends_with("-prod") && was != arn {
            println!(
                "   prod     {service:<16} task definition {} → {}",
                short(was),
                short(arn)
            );
        }
    }
}

/// A day passes with the approvers' mails unanswered. The sandbox cannot wait that long, so it
/// moves each open request's expiry to now (the one thing it writes itself); the next minute's
/// sweep expires the request, closes its records and tells the team.
async fn expire_unanswered(promote: &mut Function, config: &aws_config::SdkConfig, world: &harness::seed::World) {
    for (approver, queue) in &world.approver_queues {
        for notice in take_notices(config, queue).await {
            println!("   mail to {approver}: {}", notice.subject);
        }
    }
    let records = DynamoRecords::new(config, &world.table);
    let open = records
        .approvals_in(&[ApprovalStatus::AwaitingApproval])
        .await
        .expect("read the open requests");
    for mut request in open {
        request.expires_at = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
        request.version += 1;
        assert!(records.save_approval(&request).await.expect("move the expiry"));
    }
    println!("\n━━ a day later, unanswered (the sandbox moves the expiry to now): the schedule's sweep expires it");
    let response = promote.invoke(event_file("promote", "scheduled.json")).await.response();
    println!("   promote: {response}");
}

/// Two nights of the snapshot schedule: another tool's snapshot is there first; each tick
/// snapshots the DB (the second also copies the first night's to us-west-2); the region nears
/// the sandbox's quota of 4, so the team is warned. Pruning needs snapshots older than their
/// retention, which moto cannot make: the tests show it by running the function later.
async fn scheduled_snapshots(snapshot: &mut Function, config: &aws_config::SdkConfig) {
    harness::seed::snapshot_by_another_tool(config, "social-analytics-db", "nightly-tool-20261122").await;
    println!("\n━━ the snapshot schedule: another tool's snapshot nightly-tool-20261122 is there already");
    for night in ["2026-11-23T03:00:00Z", "2026-11-24T03:00:00Z"] {
        let mut tick: serde_json::Value =
            serde_json::from_slice(&event_file("snapshot", "scheduled.json")).expect("the sample tick");
        tick["time"] = night.into();
        let run = snapshot.invoke(tick.to_string().into_bytes()).await.response();
        println!("   tick {night}: {run}");
    }
    for region in [None, Some("us-west-2")] {
        println!("   manual snapshots in {}:", region.unwrap_or("us-east-1"));
        for (id, tags) in harness::seed::manual_snapshots(config, region).await {
            let by = tags
                .iter()
                .find(|(k, _)| k == "created-by")
                .map_or("?", |(_, v)| v.as_str());
            println!("     {id} (created by {by})");
        }
    }
}

/// Forty days on, prod's 30 days are over for the first nights' snapshots: the next tick prunes
/// ours here and in us-west-2 (all but the newest, the sandbox's `keep_last = 1`) and leaves
/// the other tool's. moto cannot age a snapshot, so this one tick runs the snapshot function's
/// own code in-process, against the same emulator, with its clock forty days on.
async fn forty_days_later(config: &aws_config::SdkConfig, pipeline: &Pipeline, world: &harness::seed::World) {
    let function = harness::seed::snapshot_handler(config, world, pipeline.clone());
    let tick = "2027-01-02T03:00:00Z".parse().expect("a tick");
    let run = function
        .run(tick, chrono::Utc::now() + chrono::TimeDelta::days(40))
        .await
        .expect("the snapshot tick forty days on");
    println!(
        "\n━━ forty days later (the snapshot function's code with its clock moved on: moto cannot age a snapshot)"
    );
    println!("   pruned: {}", run.pruned.join(", "));
    println!("   taken: {}", run.taken.join(", "));
    for region in [None, Some("us-west-2")] {
        let left: Vec<String> = harness::seed::manual_snapshots(config, region)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        println!("   left in {}: {}", region.unwrap_or("us-east-1"), left.join(", "));
    }
}

/// Monday's cost report: the estimate from what the sandbox runs now, beside Cost Explorer's
/// month to date (moto tracks no cost: the sandbox queues the figures it answers) and the
/// forecast (moto has none: the report says so). Every service runs its 2 tasks but dev's
/// worker-service, still starting: the report flags it. The report is among the notices below.
async fn cost_report(cost: &mut Function, config: &aws_config::SdkConfig, pipeline: &Pipeline, endpoint: &str) {
    harness::seed::run_tasks(config, pipeline, 2, ("dev", "worker-service")).await;
    // The function reports up to the day it runs: the figures are queued for this month so far
    // (on its first day there is no month to date, and the report says $0.00).
    let today = chrono::Utc::now().date_naive();
    let month_start = chrono::Datelike::with_day(&today, 1).expect("every month has a first day");
    harness::seed::cost_and_usage(
        endpoint,
        &month_start.to_string(),
        &today.to_string(),
        &[
            ("Amazon Relational Database Service", 88.12),
            ("Amazon Elastic Container Service", 61.4),
            ("Amazon Virtual Private Cloud", 24.3),
            ("AmazonCloudWatch", 3.85),
        ],
    )
    .await;
    println!("\n━━ Monday 08:00, the cost report (its text is among the notices below)");
    let run = cost
        .invoke(event_file("cost-report", "scheduled.json"))
        .await
        .response();
    println!("   cost-report: {run}");
}

/// What the table's stream hands promote when an approval request changes (the sample,
/// naming request `id`).
fn stream_record(id: &str) -> Vec<u8> {
    String::from_utf8(event_file("promote", "stream-decided.json"))
        .expect("UTF-8 sample")
        .replace("apr-5c1d2e3f4a5b6c7d8e9f0a1b", id)
        .into_bytes()
}

/// After an approval: promote hears of it from the stream and takes the snapshot; the
/// snapshot's event (RDS's, or the next minute's sweep) finds it available; with no wait,
/// prod deploys.
async fn promote_after(
    promote: &mut Function,
    config: &aws_config::SdkConfig,
    ecs: &aws_sdk_ecs::Client,
    pipeline: &Pipeline,
    initial: &std::collections::BTreeMap<(String, String), String>,
    id: &str,
) {
    println!("\n━━ the stream delivers the approval to promote: the pre-deployment snapshot");
    let response = promote.invoke(stream_record(id)).await.response();
    println!("   promote: {response}");
    let snapshots = aws_sdk_rds::Client::new(config)
        .describe_db_snapshots()
        .db_instance_identifier("social-analytics-db")
        .snapshot_type("manual")
        .send()
        .await
        .expect("describe snapshots");
    for snapshot in snapshots.db_snapshots() {
        println!(
            "   RDS snapshot {} of {} ({})",
            snapshot.db_snapshot_identifier().unwrap_or("?"),
            snapshot.db_instance_identifier().unwrap_or("?"),
            snapshot.status().unwrap_or("?")
        );
    }
    println!(
        "\n━━ RDS reports the snapshot created: promote sweeps, finds it available, the wait is over, prod deploys"
    );
    let before = running_all(ecs, initial).await;
    let response = promote
        .invoke(event_file("promote", "snapshot-created.json"))
        .await
        .response();
    println!("   promote: {response}");
    let after = running_all(ecs, initial).await;
    let prod = pipeline
        .stages()
        .iter()
        .find(|s| s.approval.is_some())
        .map(|s| s.cluster.to_string());
    for ((cluster, service), arn) in &after {
        if Some(cluster) == prod.as_ref() && before.get(&(cluster.clone(), service.clone())) != Some(arn) {
            println!(
                "   prod     {service:<16} task definition {} → {}",
                short(&before[&(cluster.clone(), service.clone())]),
                short(arn)
            );
        }
    }
}

/// Prints each approver's message (read back from a queue subscribed with their filter
/// policy), then opens `who`'s link and decides `verdict` over HTTP, as a browser would.
/// Returns the request's id.
async fn decide_by_mail(
    config: &aws_config::SdkConfig,
    world: &harness::seed::World,
    page: &FunctionUrl,
    who: &str,
    verdict: &str,
    comment: &str,
) -> Option<String> {
    let mut links = Vec::new();
    for (approver, queue) in &world.approver_queues {
        for notice in take_notices(config, queue).await {
            println!("\n   mail to {approver}\n   subject: {}", notice.subject);
            for line in notice.message.lines() {
                println!("   │ {line}");
            }
            if let Some(link) = notice.message.lines().find(|l| l.starts_with(&page.url)) {
                links.push((approver.clone(), link.to_owned()));
            }
        }
    }
    let Some((approver, link)) = links.iter().find(|(a, _)| a.starts_with(who)) else {
        println!("   no approval link arrived");
        return None;
    };
    println!(
        "\n━━ {approver} opens their link (GET: shows the release, decides nothing), then chooses {verdict} (POST)"
    );
    let shown = request("GET", link, "Mozilla/5.0 (sandbox)", None).await;
    println!(
        "   GET  → {} ({} bytes of HTML, no script)",
        shown.status,
        shown.body.len()
    );
    let nonce = shown
        .body
        .split("name=\"nonce\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let form = [("verdict", verdict), ("nonce", nonce.as_str()), ("comment", comment)];
    let decided = request("POST", link, "Mozilla/5.0 (sandbox)", Some(&form)).await;
    let state = decided
        .body
        .split("id=\"state\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("?");
    println!("   POST → {}: {state}", decided.status);
    let replay = request("POST", link, "Mozilla/5.0 (sandbox)", Some(&form)).await;
    println!(
        "   the same POST again → {} (already decided; nothing changes)",
        replay.status
    );
    link.trim_start_matches(&page.url).split('/').nth(1).map(str::to_owned)
}

/// The story plays now: the handlers compare event times with the times they record, so a
/// sample's time moves to the same minutes after the story's start as after 10:00 in the file.
fn on_story_clock(event: &mut serde_json::Value) {
    let time: chrono::DateTime<chrono::Utc> = event["time"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("sample time");
    let since_ten = time.signed_duration_since(time.date_naive().and_hms_opt(10, 0, 0).unwrap().and_utc());
    event["time"] = event_time(story_time(since_ten.num_minutes())).into();
}

/// `minutes` into the story as a wall-clock label.
fn clock(minutes: i64) -> String {
    story_time(minutes).format("%H:%M").to_string()
}

/// A copy of a push event with another digest (`prefix` padded to 64 hex digits), `minutes`
/// into the story.
fn with_image(event: &serde_json::Value, prefix: &str, minutes: i64) -> serde_json::Value {
    let mut event = event.clone();
    event["detail"]["image-digest"] = format!("{prefix:0<71}").into();
    event["time"] = event_time(story_time(minutes)).into();
    event
}

async fn push(
    function: &mut Function,
    ecs: &aws_sdk_ecs::Client,
    pipeline: &Pipeline,
    initial: &std::collections::BTreeMap<(String, String), String>,
    file: &str,
    story: &str,
    event: &serde_json::Value,
) {
    {
        let detail = &event["detail"];
        println!(
            "\n━━ {story}\n   event {file}: {} {}:{} ({})",
            detail["action-type"].as_str().unwrap_or("?"),
            detail["repository-name"].as_str().unwrap_or("?"),
            detail["image-tag"].as_str().unwrap_or("<untagged>"),
            &detail["image-digest"].as_str().unwrap_or("?")[..19],
        );
        let before = running_all(ecs, initial).await;
        let response = match function.invoke(serde_json::to_vec(event).unwrap()).await {
            harness::runtime_api::Outcome::Response(value) => value,
            harness::runtime_api::Outcome::Error { error_type, message } => {
                println!("   error {error_type}: {message}");
                return;
            }
        };
        for target in response["targets"].as_array().into_iter().flatten() {
            let (stage, service, result) = (
                target["stage"].as_str().unwrap_or("?"),
                target["service"].as_str().unwrap_or("?"),
                target["result"].as_str().unwrap_or("?"),
            );
            let cluster = pipeline
                .stages()
                .iter()
                .find(|s| s.name.as_str() == stage)
                .map(|s| s.cluster.to_string());
            let cluster = cluster.unwrap_or_default();
            print!("   {stage:<8} {service:<16} {result}");
            match result {
                "deploying" => {
                    let old = &before[&(cluster.clone(), service.to_owned())];
                    let new = target["task_definition"].as_str().unwrap_or_default();
                    println!(
                        "\n            task definition {} → {}\n            image {} → {}\n            record {} ECS deployment {}",
                        short(old),
                        short(new),
                        image_of(ecs, old).await,
                        image_of(ecs, new).await,
                        target["deployment_id"].as_str().unwrap_or_default(),
                        target["ecs_deployment_id"].as_str().unwrap_or_default(),
                    );
                }
                "awaiting_approval" => {
                    println!(
                        " (record {}; service unchanged)",
                        target["deployment_id"].as_str().unwrap_or_default()
                    )
                }
                _ => println!(": {}", target["reason"].as_str().unwrap_or_default()),
            }
        }
        for approval in response["approvals"].as_array().into_iter().flatten() {
            println!(
                "   {:<8} approval request {}: {}{}",
                approval["stage"].as_str().unwrap_or("?"),
                approval["approval_id"].as_str().unwrap_or("?"),
                approval["status"].as_str().unwrap_or("?"),
                match approval["blocked"].as_str() {
                    Some(why) => format!(" ({why}; no links went out, the team is told)"),
                    None => format!(", {} approval link(s) sent", approval["links_sent"]),
                }
            );
        }
        if let Some(reason) = response["reason"].as_str() {
            println!("   ignored: {reason}");
        }
    }
}

/// ECS completes every deployment in flight at `hh:mm`, as track-deployment hears it.
async fn complete_in_flight(tracker: &mut Function, ddb: &aws_sdk_dynamodb::Client, table: &str, minutes: i64) {
    println!(
        "\n━━ ECS reports the deployments in flight completed at {} (track-deployment)",
        clock(minutes)
    );
    let items = scan(ddb, table).await;
    for item in items.iter().filter(|i| attr(i, "status") == "DEPLOYING") {
        let mut event: serde_json::Value =
            serde_json::from_slice(&event_file("track-deployment", "completed.json")).unwrap();
        let (cluster, service) = (attr(item, "cluster"), attr(item, "service"));
        event["resources"][0] = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}").into();
        event["detail"]["deploymentId"] = attr(item, "ecs_deployment_id").into();
        event["detail"]["updatedAt"] = event_time(story_time(minutes)).into();
        let response = tracker.invoke(serde_json::to_vec(&event).unwrap()).await.response();
        println!(
            "   {:<8} {:<16} {} {} → {}{}",
            attr(item, "stage"),
            service,
            attr(item, "id"),
            attr(item, "ecs_deployment_id"),
            response["status"]
                .as_str()
                .or(response["reason"].as_str())
                .unwrap_or("?"),
            if response["status"] == "SUCCEEDED" {
                ", known good from now on"
            } else {
                ""
            },
        );
    }
}

/// Every record, oldest first: the story's timeline.
async fn print_records(ddb: &aws_sdk_dynamodb::Client, table: &str) {
    println!("\n━━ deployment records in `{table}`, oldest first");
    println!(
        "   {:<28} {:<8} {:<16} {:<14} {:<18} {:<24} task definition",
        "id", "stage", "service", "tag", "status", "kind"
    );
    let items = scan(ddb, table).await;
    let mut records: Vec<_> = items.iter().filter(|i| attr(i, "sk") == "DEP").collect();
    records.sort_by_key(|i| attr(i, "requested_at"));
    for item in records {
        let kind = match attr(item, "kind").as_str() {
            "rollback" => format!("rollback of {}", &attr(item, "rollback_of")[..10]),
            _ if item.contains_key("emergency_by") => "EMERGENCY (break-glass)".to_owned(),
            other => other.to_owned(),
        };
        println!(
            "   {:<28} {:<8} {:<16} {:<14} {:<18} {:<24} {}",
            attr(item, "id"),
            attr(item, "stage"),
            attr(item, "service"),
            attr(item, "tag"),
            attr(item, "status"),
            kind,
            short(&attr(item, "task_definition"))
        );
    }
}

async fn running_all(
    ecs: &aws_sdk_ecs::Client,
    services: &std::collections::BTreeMap<(String, String), String>,
) -> std::collections::HashMap<(String, String), String> {
    let mut running = std::collections::HashMap::new();
    for (cluster, service) in services.keys() {
        let out = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .expect("describe");
        let arn = out.services()[0].task_definition().unwrap_or_default().to_owned();
        running.insert((cluster.clone(), service.clone()), arn);
    }
    running
}

/// The image of the container that is not the log router.
async fn image_of(ecs: &aws_sdk_ecs::Client, arn: &str) -> String {
    let out = ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .expect("describe task definition");
    let containers = out
        .task_definition()
        .map(|td| td.container_definitions())
        .unwrap_or_default();
    let app = containers.iter().find(|c| c.name() != Some("log-router"));
    short(app.and_then(|c| c.image()).unwrap_or("?"))
}

/// `…/family:3` and `repo@sha256:4f2a9c1e8b7d` instead of full ARNs and digests.
fn short(text: &str) -> String {
    let text = text.rsplit('/').next().unwrap_or(text);
    match text.split_once("@sha256:") {
        Some((repo, digest)) => format!("{repo}@sha256:{}…", &digest[..12.min(digest.len())]),
        None => text.to_owned(),
    }
}

/// A string attribute of a scanned item, `-` when absent.
fn attr(item: &std::collections::HashMap<String, AttributeValue>, key: &str) -> String {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_else(|| "-".into())
}

async fn scan(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    ddb.scan()
        .table_name(table)
        .send()
        .await
        .expect("scan the table")
        .items
        .unwrap_or_default()
}
