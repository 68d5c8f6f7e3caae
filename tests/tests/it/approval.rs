//! The approval loop against moto: a release that passed staging asks for approval, each
//! approver's link arrives only in their own subscription (SQS queues subscribed to the
//! approvals topic with the filter policies `pipectl approvers sync` sets), and the built
//! approval-page binary, behind a local function URL, decides only on a POST from its page.

use crate::support::*;
use harness::function::Function;
use harness::function_url::{Answer, FunctionUrl, request};
use harness::seed::take_notices;
use shared::adapters::dynamo::DynamoRecords;
use shared::domain::approval::{ApprovalId, ApprovalRequest, ApprovalStatus};
use shared::ports::Approvals;

const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

pub(crate) struct Loop {
    pub env: Env,
    pub page: FunctionUrl,
}

impl Loop {
    /// moto seeded, and the approval page served from its built binary.
    pub async fn start() -> Self {
        Self::start_through(async |moto: &str| moto.to_owned()).await
    }

    /// As `start`, the page reaching AWS at the endpoint `route` makes of moto's.
    pub async fn start_through<R: AsyncFnOnce(&str) -> String>(route: R) -> Self {
        Self::start_with(Env::new().await, route).await
    }

    /// As `start`, over `env` (its pipeline).
    pub async fn start_with<R: AsyncFnOnce(&str) -> String>(env: Env, route: R) -> Self {
        let endpoint = route(&env.moto.endpoint).await;
        let function = Function::spawn(
            &harness::built_binary("approval-page", "debug"),
            &endpoint,
            &env.function_vars(),
        )
        .await;
        let page = FunctionUrl::start(function).await;
        Loop { env, page }
    }

    /// Pushes a release of `digest_byte` tagged `tag` at `second`, after it passed staging.
    pub async fn release(&self, tag: &str, digest_byte: u8, second: u32) {
        self.env.passes_staging(&digest(digest_byte), second).await;
        let handler = self
            .env
            .handler_linking_to(self.env.pipeline.clone(), &self.env.config, &self.page.url);
        handler
            .handle_event(&push(tag, digest_byte, second + 1), deadline())
            .await
            .unwrap();
    }

    /// Each approver's messages since the last call: (approver, subject, link).
    pub async fn links(&self) -> Vec<(String, String, String)> {
        let mut links = Vec::new();
        for (approver, queue) in &self.env.world.approver_queues {
            for notice in take_notices(&self.env.config, queue).await {
                // A link is a bearer capability: it never goes out in a chat channel's body.
                assert_eq!(notice.chat, None, "an approver's link is plain text only");
                let link = notice
                    .message
                    .lines()
                    .find(|line| line.starts_with(&self.page.url))
                    .expect("the message carries a link")
                    .to_owned();
                links.push((approver.clone(), notice.subject, link));
            }
        }
        links
    }

    pub async fn request(&self, link: &str) -> ApprovalRequest {
        let id = link.trim_start_matches(&self.page.url).split('/').nth(1).unwrap();
        DynamoRecords::new(&self.env.config, &self.env.world.table)
            .get_approval(&ApprovalId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }
}

/// The nonce in the page's form.
pub(crate) fn nonce_in(page: &Answer) -> String {
    page.body
        .split("name=\"nonce\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page has a form")
        .to_owned()
}

fn votes(request: &ApprovalRequest) -> usize {
    request.ballots.iter().filter(|b| b.vote.is_some()).count()
}

#[tokio::test]
async fn each_approver_gets_their_own_link_and_a_post_from_the_page_approves() {
    let run = Loop::start().await;
    run.release("v2.1.0", 0x21, 0).await;
    let links = run.links().await;
    let approvers: Vec<&str> = links.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        approvers,
        ["oncall-lead@example.com", "release-manager@example.com"],
        "one message each"
    );
    for (_, subject, _) in &links {
        assert_eq!(subject, "Approve v2.1.0 of backend to prod?");
    }
    let (approver, _, link) = &links[1];
    let open = run.request(link).await;
    assert_eq!(open.status, ApprovalStatus::AwaitingApproval);
    assert_eq!(
        open.ballot(
            &shared::domain::approval::ApprovalToken::parse(link.rsplit('/').next().unwrap())
                .unwrap()
                .hash()
        )
        .unwrap()
        .approver
        .as_str(),
        approver,
        "the link in an approver's message is their ballot"
    );

    let page = request_get(link).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&digest(0x21)), "the page shows the digest");
    assert!(page.body.contains("Verified in staging"));
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(page.headers[name], value, "{name}");
    }
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'none'")
            && csp.contains("form-action 'self'")
            && csp.contains("frame-ancestors 'none'")
    );

    let approve = [
        ("verdict", "approve"),
        ("nonce", &nonce_in(&page)),
        ("comment", "staging looks good"),
    ];
    let decided = request("POST", link, BROWSER, Some(&approve)).await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert!(decided.body.contains("Recorded: you approved this release."));
    let approved = run.request(link).await;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    let vote = approved.ballots.iter().find_map(|b| b.vote.clone()).unwrap();
    assert_eq!(
        (vote.voter.comment.as_str(), vote.voter.source_ip.as_str()),
        ("staging looks good", "127.0.0.1")
    );
    assert_eq!(vote.voter.user_agent, BROWSER);

    let again = request("POST", link, BROWSER, Some(&approve)).await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("Already decided"));
    assert_eq!(votes(&run.request(link).await), 1);

    // The page never logs the token.
    let token = link.rsplit('/').next().unwrap();
    assert!(run.page.logs().await.iter().all(|line| !line.contains(token)));
}

async fn request_get(link: &str) -> Answer {
    request("GET", link, BROWSER, None).await
}

#[tokio::test]
async fn scanners_previews_and_forged_posts_decide_nothing() {
    let run = Loop::start().await;
    run.release("v2.2.0", 0x22, 0).await;
    run.release("v2.3.0", 0x23, 10).await;
    let links = run.links().await;
    let older: Vec<&String> = links
        .iter()
        .filter(|(_, s, _)| s.contains("v2.2.0"))
        .map(|(_, _, l)| l)
        .collect();
    let newer: Vec<&String> = links
        .iter()
        .filter(|(_, s, _)| s.contains("v2.3.0"))
        .map(|(_, _, l)| l)
        .collect();
    let (link, other_approver) = (newer[0], newer[1]);

    for agent in [
        "Mozilla/5.0 (compatible; Microsoft Office SafeLinks; +https://aka.ms/safelinks)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
    ] {
        assert_eq!(request("GET", link, agent, None).await.status, 200);
        let head = request("HEAD", link, agent, None).await;
        assert_eq!((head.status, head.body.as_str()), (200, ""));
    }
    let no_nonce = request("POST", link, BROWSER, Some(&[("verdict", "approve")])).await;
    assert_eq!(no_nonce.status, 403);
    let other_page = nonce_in(&request_get(other_approver).await);
    let wrong_nonce = request(
        "POST",
        link,
        BROWSER,
        Some(&[("verdict", "approve"), ("nonce", &other_page)]),
    )
    .await;
    assert_eq!(wrong_nonce.status, 403);

    // One approver's token on another request: the token opens no ballot there.
    let token = link.rsplit('/').next().unwrap();
    let older_id = older[0].trim_start_matches(&run.page.url).split('/').nth(1).unwrap();
    let elsewhere = format!("{}a/{older_id}/{token}", run.page.url);
    assert_eq!(request_get(&elsewhere).await.status, 404);

    assert_eq!(votes(&run.request(link).await), 0);
    assert_eq!(run.request(link).await.status, ApprovalStatus::AwaitingApproval);

    // The older release was superseded: its links say by what, and decide nothing.
    let superseded = request_get(older[0]).await;
    assert!(
        superseded.body.contains("Superseded by release v2.3.0"),
        "{}",
        superseded.body
    );
    assert!(!superseded.body.contains("<form"));
    assert_eq!(run.request(older[0]).await.status, ApprovalStatus::Superseded);
}

#[tokio::test]
async fn the_same_digest_tagged_again_opens_no_second_request() {
    let run = Loop::start().await;
    run.release("v7.0.0", 0x70, 0).await;
    let handler = run
        .env
        .handler_linking_to(run.env.pipeline.clone(), &run.env.config, &run.page.url);
    // v7.0.1 on the same digest: both prod services already await it, so its request (made by
    // the staging check) lists no service and is removed.
    handler
        .handle_event(&push("v7.0.1", 0x70, 20), deadline())
        .await
        .unwrap();
    let links = run.links().await;
    assert_eq!(links.len(), 2, "only v7.0.0's two links");
    assert!(links.iter().all(|(_, subject, _)| subject.contains("v7.0.0")));
    let records = DynamoRecords::new(&run.env.config, &run.env.world.table);
    let open = records.approvals_in(&[ApprovalStatus::AwaitingApproval]).await.unwrap();
    let tags: Vec<&str> = open.iter().map(|r| r.image.tag.as_str()).collect();
    assert_eq!(tags, ["v7.0.0"]);
}

/// DescribeAlarms answers with every named alarm whatever its state (the emulator ignores a
/// `StateValue` filter given with names): only the state each one reports blocks a release.
#[tokio::test]
async fn only_a_staging_alarm_in_alarm_blocks_a_release_not_those_in_ok_or_insufficient_data() {
    let run = Loop::start().await;
    run.release("v3.0.0", 0x30, 0).await;
    assert_eq!(
        run.links().await.len(),
        2,
        "staging's alarms are OK or INSUFFICIENT_DATA"
    );

    let prod = run.env.pipeline.stages().iter().find(|s| s.approval.is_some()).unwrap();
    let required = prod.approval.as_ref().unwrap().requires.clone().unwrap();
    let staging = run.env.pipeline.stages().iter().find(|s| s.name == required).unwrap();
    let guard = &staging.alarms[0];
    harness::seed::set_alarm_state(
        &run.env.config,
        guard.alarm.as_str(),
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    )
    .await;
    run.release("v3.1.0", 0x31, 40).await;
    assert!(
        run.links().await.is_empty(),
        "a release with a firing staging alarm sends no link"
    );
    let records = DynamoRecords::new(&run.env.config, &run.env.world.table);
    let blocked = records.approvals_in(&[ApprovalStatus::Blocked]).await.unwrap();
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].image.tag.as_str(), "v3.1.0");
    assert!(
        blocked[0].blocked.as_deref().unwrap().contains(guard.alarm.as_str()),
        "{:?}",
        blocked[0].blocked
    );
}

/// The promotion against moto, driven by its sweep.
#[tokio::test]
async fn an_approved_release_is_snapshotted_then_deployed_to_prod_by_the_sweep() {
    use shared::handlers::promote::Advanced;
    let run = Loop::start().await;
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    run.release("v9.0.0", 0x90, 0).await;
    let link = run.links().await.remove(0).2;
    let page = request_get(&link).await;
    let approve = [("verdict", "approve"), ("nonce", &nonce_in(&page))];
    assert_eq!(request("POST", &link, BROWSER, Some(&approve)).await.status, 200);

    let promote = run.env.promoter_with(&run.env.config);
    let now = chrono::Utc::now();
    let deadline = now + chrono::TimeDelta::seconds(30);
    let swept = promote.sweep(now, deadline).await.unwrap();
    assert_eq!(swept.len(), 1);
    // moto makes the snapshot available at once: in the same sweep it is found available,
    // and the wait begins.
    assert!(matches!(swept[0].1, Advanced::Waiting { .. }), "{swept:?}");
    assert_eq!(prod_snapshots(&run).await, 1, "the pre-deployment snapshot");
    promote.sweep(now, deadline).await.unwrap();
    for (service, _) in SERVICES {
        assert_eq!(
            run.env.running(PROD, service).await,
            run.env.initial(PROD, service),
            "the wait is not over"
        );
    }
    let later = now + chrono::TimeDelta::minutes(6);
    let swept = promote
        .sweep(later, later + chrono::TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(
        matches!(&swept[0].1, Advanced::Deployed { services } if services.len() == 2),
        "{swept:?}"
    );
    for (service, _) in SERVICES {
        let records = run.env.records_for(PROD, service).await;
        assert_eq!(records[0]["status"], "DEPLOYING");
        assert_eq!(records[0]["task_definition"], run.env.running(PROD, service).await);
        assert_ne!(run.env.running(PROD, service).await, run.env.initial(PROD, service));
    }
    assert!(
        promote
            .sweep(later, later + chrono::TimeDelta::seconds(30))
            .await
            .unwrap()
            .is_empty(),
        "nothing left in flight"
    );
}

/// The built promote binary under the Runtime API, with the events/promote samples: the
/// stream delivering the approval, an RDS snapshot event, a schedule tick. The shipped pipeline
/// with no wait, so the deploy follows the snapshot at once.
#[tokio::test]
async fn the_promote_binary_backs_up_then_deploys_an_approved_release() {
    let text = harness::fixture("three-stages.toml").replace("wait_minutes = 5", "wait_minutes = 0");
    let pipeline_file = std::env::temp_dir().join(format!("pipeline-no-wait-{}.toml", std::process::id()));
    std::fs::write(&pipeline_file, &text).unwrap();
    let env = Env::with_pipeline(&text).await;
    let run = Loop::start_with(env, async |moto: &str| moto.to_owned()).await;
    let rds = aws_sdk_rds::Client::new(&run.env.config);
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    run.release("v9.1.0", 0x91, 0).await;
    let link = run.links().await.remove(0).2;
    let approve = [("verdict", "approve"), ("nonce", &nonce_in(&request_get(&link).await))];
    assert_eq!(request("POST", &link, BROWSER, Some(&approve)).await.status, 200);
    let id = link
        .trim_start_matches(&run.page.url)
        .split('/')
        .nth(1)
        .unwrap()
        .to_owned();

    let mut vars = run.env.function_vars();
    let pipeline_path = pipeline_file.to_str().unwrap().to_owned();
    vars.push(("PIPELINE_FILE", pipeline_path.as_str()));
    let mut promote = Function::spawn(
        &harness::built_binary("promote", "debug"),
        &run.env.moto.endpoint,
        &vars,
    )
    .await;
    let sample = |name: &str| {
        let text = String::from_utf8(harness::event_file("promote", name)).unwrap();
        text.replace("apr-5c1d2e3f4a5b6c7d8e9f0a1b", &id)
    };
    let decided = promote.invoke(sample("stream-decided.json")).await.response();
    assert_eq!(decided["batchItemFailures"], serde_json::json!([]), "{decided}");
    let made = rds
        .describe_db_snapshots()
        .db_instance_identifier("social-analytics-db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        made.db_snapshots()
            .iter()
            .filter(|s| s.snapshot_type() == Some("manual"))
            .count(),
        1
    );
    // The snapshot's event (or the next tick) finds it available and, with no wait, deploys.
    let swept = promote.invoke(sample("snapshot-created.json")).await.response();
    assert!(swept["swept"].is_array(), "{swept}");
    let ticked = promote.invoke(sample("scheduled.json")).await.response();
    assert!(ticked["swept"].is_array(), "{ticked}");
    // Each sweep reports its metrics in Embedded Metric Format, zeros included.
    let metrics: Vec<serde_json::Value> = promote
        .logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EcsDeployHandlers")
        .collect();
    assert!(!metrics.is_empty(), "no EMF line in {:?}", promote.logs());
    let (sweeps, deployments): (Vec<_>, Vec<_>) = metrics.iter().partition(|m| m.get("FunctionName").is_some());
    assert!(!sweeps.is_empty(), "{metrics:?}");
    assert!(
        sweeps
            .iter()
            .all(|m| m["PromotionStepsFailed"] == 0 && m["PromotionsStuck"] == 0)
    );
    // The approval's wait, by stage and application, once: when its promotion began.
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    assert_eq!(
        (&deployments[0]["Stage"], &deployments[0]["Application"]),
        (&"prod".into(), &"backend".into())
    );
    assert!(
        deployments[0]["ApprovalWait"].as_f64().is_some_and(|s| s >= 0.0),
        "{deployments:?}"
    );
    for (service, _) in SERVICES {
        let records = run.env.records_for(PROD, service).await;
        assert_eq!(records[0]["status"], "DEPLOYING", "{records:?}");
        assert_eq!(records[0]["task_definition"], run.env.running(PROD, service).await);
    }
    let subjects: Vec<String> = run.env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        subjects.contains(&"v9.1.0 of backend to prod: approved, backing up".to_owned()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"v9.1.0 of backend to prod: deploying".to_owned()),
        "{subjects:?}"
    );
    let bad = promote.invoke(br#"{"source": "aws.ecr", "detail": {}}"#.to_vec()).await;
    assert_eq!(bad.error().0, "BadEvent");
    let _ = std::fs::remove_file(pipeline_file);
}

/// A newer push supersedes an older release's records together with its request, in one
/// transaction conditional on that request still awaiting approval: an approval cast while the
/// newer push is midway stands, the older release keeps its records, and it deploys.
#[tokio::test]
async fn an_approval_cast_while_a_newer_push_supersedes_goes_ahead() {
    use shared::handlers::promote::Advanced;
    let run = Loop::start().await;
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    run.release("v6.0.0", 0x60, 0).await;
    let link = run.links().await.remove(0).2;
    run.env.passes_staging(&digest(0x61), 20).await;

    let proxy = harness::fault_proxy::FaultProxy::start(&run.env.moto.endpoint).await;
    proxy.hold("TransactWriteItems");
    let through = harness::moto::sdk_config_for(&proxy.endpoint).await;
    let handler = run
        .env
        .handler_linking_to(run.env.pipeline.clone(), &through, &run.page.url);
    let newer = tokio::spawn(async move { handler.handle_event(&push("v6.1.0", 0x61, 21), deadline()).await });
    proxy.wait_held(1).await;
    let page = request_get(&link).await;
    let approve = [("verdict", "approve"), ("nonce", &nonce_in(&page))];
    assert_eq!(request("POST", &link, BROWSER, Some(&approve)).await.status, 200);
    proxy.release();
    newer.await.unwrap().unwrap();

    assert_eq!(run.request(&link).await.status, ApprovalStatus::Approved);
    for (service, _) in SERVICES {
        let older = prod_record_of(&run, service, "v6.0.0").await;
        assert_eq!(
            older["status"], "AWAITING_APPROVAL",
            "{service}: the approved release keeps its record"
        );
    }
    let promote = run.env.promoter_with(&run.env.config);
    let now = chrono::Utc::now();
    promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap();
    let later = now + chrono::TimeDelta::minutes(6);
    let swept = promote
        .sweep(later, later + chrono::TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(
        swept
            .iter()
            .any(|(_, advanced)| matches!(advanced, Advanced::Deployed { services } if services.len() == 2)),
        "the approved older release deploys: {swept:?}"
    );
}

/// Without an approval in between, the newer push supersedes the older request with its records.
#[tokio::test]
async fn a_newer_push_supersedes_the_older_request_with_its_records() {
    let run = Loop::start().await;
    run.release("v6.2.0", 0x62, 0).await;
    let link = run.links().await.remove(0).2;
    run.release("v6.3.0", 0x63, 20).await;
    let older = run.request(&link).await;
    assert_eq!(older.status, ApprovalStatus::Superseded);
    assert_eq!(older.superseded_by.unwrap().tag.as_str(), "v6.3.0");
    for (service, _) in SERVICES {
        let record = prod_record_of(&run, service, "v6.2.0").await;
        assert_eq!(record["status"], "SUPERSEDED");
    }
    let page = request_get(&link).await;
    assert!(
        !page.body.contains("name=\"nonce\""),
        "a superseded request offers no vote"
    );
}

/// The prod record of `service` for the release tagged `tag`.
async fn prod_record_of(run: &Loop, service: &str, tag: &str) -> std::collections::HashMap<String, String> {
    run.env
        .records_for(PROD, service)
        .await
        .into_iter()
        .find(|r| r["tag"] == tag)
        .unwrap_or_else(|| panic!("no prod record of {service} for {tag}"))
}

#[tokio::test]
async fn pipectl_resends_links_to_those_who_have_not_voted_and_their_old_links_stop_working() {
    let run = Loop::start().await;
    run.release("v2.2.0", 0x22, 0).await;
    let first = run.links().await;
    let (voter, _, voted_link) = first[1].clone();
    let page = request_get(&voted_link).await;
    // A page opened before the resend: its form must decide nothing after it.
    let approve = [("verdict", "approve"), ("nonce", &nonce_in(&page)), ("comment", "")];
    let request_id = run.request(&voted_link).await.id.to_string();
    let old_link = first[0].2.clone();

    let resent = harness::seed::pipectl(&run.env.moto.endpoint)
        .args(["approvals", "resend", &request_id])
        .env("TABLE_NAME", &run.env.world.table)
        .env("PIPELINE_TABLE", &run.env.pipeline_table)
        .env("TOPIC_ARN", &run.env.world.topic_arn)
        .env("APPROVAL_TOPIC_ARN", &run.env.world.approval_topic_arn)
        .env("APPROVAL_PAGE_URL", &run.page.url)
        .output()
        .unwrap();
    assert!(resent.status.success(), "{}", String::from_utf8_lossy(&resent.stderr));
    let said = String::from_utf8_lossy(&resent.stdout);
    assert!(
        said.contains("sent new links to")
            && said.contains("oncall-lead@example.com")
            && said.contains("release-manager@example.com"),
        "{said}"
    );
    let second = run.links().await;
    assert_eq!(second.len(), 2, "one new link each: {second:?}");
    assert!(
        second
            .iter()
            .all(|(_, _, link)| !first.iter().any(|(_, _, old)| old == link))
    );
    assert_eq!(
        request_get(&old_link).await.status,
        404,
        "an old link no longer opens a ballot"
    );
    let told: Vec<String> = run.env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        told.iter().any(|s| s == "v2.2.0 of backend to prod: links sent again"),
        "{told:?}"
    );

    let stale = request("POST", &voted_link, BROWSER, Some(&approve)).await;
    assert_ne!(stale.status, 200, "{}", stale.body);
    let (_, _, new_link) = second.iter().find(|(who, _, _)| *who == voter).unwrap();
    let page = request_get(new_link).await;
    assert_eq!(page.status, 200);
    let approve = [("verdict", "approve"), ("nonce", &nonce_in(&page)), ("comment", "")];
    let decided = request("POST", new_link, BROWSER, Some(&approve)).await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(run.request(new_link).await.status, ApprovalStatus::Approved);
}

/// Approves `link`'s request from its page.
async fn approve_from_page(link: &str, verdict: &str) {
    let page = request_get(link).await;
    let vote = [("verdict", verdict), ("nonce", &nonce_in(&page)), ("comment", "")];
    let decided = request("POST", link, BROWSER, Some(&vote)).await;
    assert_eq!(decided.status, 200, "{}", decided.body);
}

/// A release of `tag` to prod, approved from its page, deployed by the sweep and completed by ECS.
async fn released_to_prod(run: &Loop, tag: &str, byte: u8, second: u32) {
    run.release(tag, byte, second).await;
    approve_from_page(&run.links().await.remove(0).2, "approve").await;
    let promote = run.env.promoter_with(&run.env.config);
    // Backed up now, deployed past the stage's five-minute wait.
    let now = chrono::Utc::now();
    for at in [now, now + chrono::TimeDelta::minutes(6)] {
        promote.sweep(at, at + chrono::TimeDelta::seconds(30)).await.unwrap();
    }
    let tracker = run.env.tracker();
    for (service, _) in SERVICES {
        let latest = run.env.records_for(PROD, service).await.pop().unwrap();
        assert_eq!((latest["tag"].as_str(), latest["status"].as_str()), (tag, "DEPLOYING"));
        let completed = ecs_ended_in(PROD, "completed.json", service, &latest["ecs_deployment_id"], 1);
        tracker.handle_event(&completed, deadline()).await.unwrap();
    }
}

/// `rollback_approval = true`: `pipectl rollback` asks prod's approvers with a request marked
/// as a rollback (the same links and page); a rejection changes nothing, an approval has the
/// sweep roll every service back at once (no wait, no snapshot), recorded with who asked and
/// who approved, the rolled-back digest quarantined.
#[tokio::test]
async fn a_stage_that_wants_operator_rollbacks_approved_asks_its_approvers_and_the_sweep_rolls_back() {
    let text = harness::fixture("three-stages.toml").replace(
        "watch_window_minutes = 30",
        "watch_window_minutes = 30\nrollback_approval = true",
    );
    let run = Loop::start_with(Env::with_pipeline(&text).await, async |moto: &str| moto.to_owned()).await;
    harness::seed::create_database(&run.env.config, "social-analytics-db", None).await;
    released_to_prod(&run, "v1.0.0", 0x31, 0).await;
    let v1: Vec<String> = {
        let mut running = Vec::new();
        for (service, _) in SERVICES {
            running.push(run.env.running(PROD, service).await);
        }
        running
    };
    released_to_prod(&run, "v2.0.0", 0x32, 10).await;
    let v2 = run.env.running(PROD, "backend-service").await;
    let snapshots_before = prod_snapshots(&run).await;
    run.env.notices().await;
    let pipectl = |reason: &str| {
        harness::seed::pipectl(&run.env.moto.endpoint)
            .args(["rollback", "prod", "backend", "--to", "v1.0.0", "--reason", reason])
            .env("TABLE_NAME", &run.env.world.table)
            .env("PIPELINE_TABLE", &run.env.pipeline_table)
            .env("TOPIC_ARN", &run.env.world.topic_arn)
            .env("APPROVAL_TOPIC_ARN", &run.env.world.approval_topic_arn)
            .env("APPROVAL_PAGE_URL", &run.page.url)
            .output()
            .unwrap()
    };
    let asked = |output: std::process::Output| {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let promote = run.env.promoter_with(&run.env.config);
    let sweep = async || {
        let now = chrono::Utc::now();
        promote.sweep(now, now + chrono::TimeDelta::seconds(30)).await.unwrap()
    };

    // Asked, then rejected: nothing moves.
    let said = asked(pipectl("error rate since v2"));
    assert!(
        said.contains("the rollback of backend in prod to v1.0.0 waits for approval")
            && said.contains("links sent now to 2 approver(s)"),
        "{said}"
    );
    let links = run.links().await;
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links
            .iter()
            .all(|(_, subject, _)| subject == "Approve the rollback of backend in prod to v1.0.0?"),
        "{links:?}"
    );
    let listed = harness::seed::pipectl(&run.env.moto.endpoint)
        .arg("approvals")
        .env("TABLE_NAME", &run.env.world.table)
        .env("PIPELINE_TABLE", &run.env.pipeline_table)
        .output()
        .unwrap();
    let listed = asked(listed);
    assert!(
        listed.contains("rollback of backend in prod to v1.0.0")
            && listed.contains("ROLLBACK asked by arn:aws:")
            && listed.contains(": error rate since v2"),
        "{listed}"
    );
    let again = asked(pipectl("error rate since v2"));
    assert!(
        again.contains("links sent now to 0 approver(s)"),
        "the same request: {again}"
    );
    assert!(run.links().await.is_empty());
    let page = request_get(&links[0].2).await;
    assert!(
        page.body.contains("Rollback of backend in prod to v1.0.0"),
        "{}",
        page.body
    );
    assert!(page.body.contains("error rate since v2"));
    assert!(page.body.contains("arn:aws:"), "who asked");
    approve_from_page(&links[0].2, "reject").await;
    sweep().await;
    assert_eq!(
        run.env.running(PROD, "backend-service").await,
        v2,
        "rejected: nothing moved"
    );
    let told: Vec<String> = run.env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        told.iter()
            .any(|s| s == "rollback of backend in prod to v1.0.0: rejected"),
        "{told:?}"
    );

    // Asked again, for the same reason: a new request (the rejected one stays rejected), and
    // approved, every service goes back now.
    let rejected_id = run.request(&links[0].2).await.id;
    asked(pipectl("error rate since v2"));
    let link = run.links().await.remove(0).2;
    assert_ne!(run.request(&link).await.id, rejected_id);
    approve_from_page(&link, "approve").await;
    let swept = sweep().await;
    assert!(
        swept
            .iter()
            .any(|(_, done)| matches!(done, shared::handlers::promote::Advanced::Deployed { services } if services.len() == 2)),
        "{swept:?}"
    );
    for ((service, _), before) in SERVICES.iter().zip(&v1) {
        assert_eq!(
            &run.env.running(PROD, service).await,
            before,
            "{service} runs v1.0.0 again"
        );
        let records = run.env.records_for(PROD, service).await;
        let rollback = records
            .iter()
            .find(|r| r["kind"] == "rollback")
            .expect("a rollback record");
        let cause = &rollback["rollback_cause"];
        assert!(cause.starts_with("operator arn:aws:"), "{cause}");
        assert!(
            cause.contains("rolled back to v1.0.0: error rate since v2 (asked at ") && cause.contains("; approved by "),
            "{cause}"
        );
        assert_eq!(run.env.quarantined(PROD, service).await, [digest(0x32)]);
    }
    assert_eq!(
        prod_snapshots(&run).await,
        snapshots_before,
        "no snapshot for a rollback"
    );
    let told: Vec<String> = run.env.notices().await.into_iter().map(|n| n.subject).collect();
    assert!(
        told.iter()
            .any(|s| s == "rollback of backend in prod to v1.0.0: rolled back"),
        "{told:?}"
    );
    assert_eq!(
        told.iter().filter(|s| s.starts_with("Rolled back prod/")).count(),
        2,
        "{told:?}"
    );
    // Done: the same command finds every service on the version.
    let done = asked(pipectl("error rate since v2"));
    assert_eq!(done.matches("runs that version already").count(), 2, "{done}");
    assert!(run.links().await.is_empty());
}

/// Manual snapshots of prod's database.
async fn prod_snapshots(run: &Loop) -> usize {
    aws_sdk_rds::Client::new(&run.env.config)
        .describe_db_snapshots()
        .db_instance_identifier("social-analytics-db")
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .len()
}
