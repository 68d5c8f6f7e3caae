//! The cost report against moto: the inventory read from ECS and RDS, Cost Explorer's month
//! to date fed through moto's results endpoint (moto does not answer GetCostForecast, so the
//! report says the forecast is unavailable), the report kept and compared with next time, and
//! the built binary on the sample tick.

use crate::support::*;
use chrono::{DateTime, Utc};
use shared::adapters::{
    billing::AwsBilling, dynamo::DynamoRecords, ecs::EcsAdapter, rds::RdsSnapshots, sns::SnsNotifier,
};
use shared::handlers::cost_report::CostReporter;
use shared::ports::CostReports;

pub type Reporter = CostReporter<DynamoRecords, EcsAdapter, RdsSnapshots, AwsBilling, SnsNotifier>;

pub fn reporter(env: &Env, config: &aws_config::SdkConfig) -> Reporter {
    CostReporter {
        pipeline: env.pipeline.clone(),
        region: "us-east-1".into(),
        records: DynamoRecords::new(config, &env.world.table),
        ecs: EcsAdapter::new(config),
        rds: RdsSnapshots::new(config),
        billing: AwsBilling::new(config),
        notifier: SnsNotifier::new(config, &env.world.topic_arn),
    }
}

fn tick(day: u32) -> DateTime<Utc> {
    format!("2026-11-{day:02}T08:00:00Z").parse().unwrap()
}

#[tokio::test]
async fn a_report_prices_what_runs_beside_cost_explorers_month_to_date_and_the_next_shows_the_change() {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    harness::seed::run_tasks(&env.config, &env.pipeline, 2, ("dev", "worker-service")).await;
    harness::seed::cost_and_usage(
        &env.moto.endpoint,
        "2026-11-01",
        "2026-11-23",
        &[
            ("Amazon Elastic Container Service", 30.25),
            ("Amazon Relational Database Service", 41.5),
        ],
    )
    .await;
    let reporter = reporter(&env, &env.config);
    let run = reporter.run(tick(23), tick(23)).await.unwrap();
    assert!(run.made);
    assert_eq!(run.cost_explorer_calls, 2);
    let sent = env.notices().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    // 5 services × 2 tasks × (0.5 vCPU, 1 GB, ARM64) = 5 × 28.835; the DB 54.86 (db.t3.medium,
    // 20 GB gp2); 1 ALB 16.425; 1 NAT gateway 32.85; 10 GB of logs 5.00.
    assert_eq!(sent[0].subject, "backend: est $253.31/mo, MTD $71.75, change n/a");
    let text = &sent[0].message;
    for expected in [
        "prod/ECS backend-service",
        "$28.84",
        "2 task(s) × 0.5 vCPU, 1 GB, arm64, Fargate",
        "prod/RDS social-analytics-db",
        "postgres db.t3.medium, 20 GB gp2",
        "Amazon Relational Database Service",
        "$41.50",
        "Forecast: unavailable (GetCostForecast:",
        "FLAG: dev/worker-service runs 0 task(s), not its desired 2.",
        "Cost Explorer calls made for this report: 2 ($0.01 each).",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    let kept = reporter.records.last_report().await.unwrap().unwrap();
    assert_eq!((kept.tick, &kept.notice.subject), (tick(23), &sent[0].subject));

    // Redelivered: nothing sent again (the handler's tests count Cost Explorer's calls).
    let again = reporter.run(tick(23), tick(23)).await.unwrap();
    assert!(!again.made);
    assert!(env.notices().await.is_empty());

    // A week on, prod's backend runs 4 tasks.
    env.ecs
        .update_service()
        .cluster("social-analytics-prod")
        .service("backend-service")
        .desired_count(4)
        .send()
        .await
        .unwrap();
    reporter.run(tick(30), tick(30)).await.unwrap();
    let next = env.notices().await;
    assert_eq!(next.len(), 1);
    assert!(next[0].subject.ends_with("change +28.84"), "{}", next[0].subject);
    assert!(
        next[0]
            .message
            .lines()
            .any(|l| l.starts_with("prod/ECS backend-service") && l.contains("$57.67") && l.contains("+28.84")),
        "{}",
        next[0].message
    );
}

#[tokio::test]
async fn the_cost_report_binary_runs_the_sample_tick_and_refuses_other_events() {
    let env = Env::new().await;
    harness::seed::create_database(&env.config, "social-analytics-db", None).await;
    let mut function = harness::function::Function::spawn(
        &harness::built_binary("cost-report", "debug"),
        &env.moto.endpoint,
        &env.function_vars(),
    )
    .await;
    // (A run across midnight into the 1st could see either day.)
    let started = chrono::Utc::now();
    let run = function
        .invoke(harness::event_file("cost-report", "scheduled.json"))
        .await
        .response();
    assert_eq!(run["made"], true, "{run}");
    // The binary reads the wall clock: on the month's first day there is no month to date to
    // ask for, only the forecast (every date's calls are pinned in the handler's tests).
    let first_of_month = chrono::Datelike::day(&chrono::Utc::now()) == 1;
    if first_of_month == (chrono::Datelike::day(&started) == 1) {
        assert_eq!(run["cost_explorer_calls"], if first_of_month { 1 } else { 2 }, "{run}");
    }
    let subject = run["subject"].as_str().unwrap();
    assert!(subject.starts_with("backend: est $"), "{subject}");
    assert_eq!(env.notices().await[0].subject, subject);
    let refused = function
        .invoke(br#"{"detail-type": "ECR Image Action", "source": "aws.ecr", "time": "2026-11-23T08:00:00Z"}"#.to_vec())
        .await;
    assert_eq!(refused.error().0, "BadEvent");
    // moto has no Price List: the opt-in refresh fails, named, and the report is unchanged.
    let refresh = function.invoke(br#"{"action": "refresh-prices"}"#.to_vec()).await;
    assert_eq!(refresh.error().0, "PriceListUnavailable");
}
