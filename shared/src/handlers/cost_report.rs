//! cost-report: on its schedule, the monthly estimate from what the pipeline's services and
//! DBs run now (priced from the shipped table, or the last Price List refresh, under the
//! pipeline file's overrides), next to Cost
//! Explorer's month to date and forecast (one call each), sent over SNS and kept as the last
//! report. A redelivered tick sends the report it made, and asks Cost Explorer nothing.
//!
//! Told to (`{"action": "refresh-prices"}`, `pipectl prices refresh`), it reads the AWS Price
//! List instead and keeps the table it makes for the reports that follow: an opt-in, never on
//! the report path.

use super::scheduled_snapshots::tick_of;
use super::{deliver_notice, keep_notice};
use crate::domain::cost::{
    Actuals, FixedItems, Forecast, PriceTable, Report, RunningDb, RunningService, estimate, not_at_desired, prices_for,
    report_notice, shipped_prices,
};
use crate::domain::pipeline::Pipeline;
use crate::domain::price_list::{queries, refreshed_table};
use crate::lambda::errors::ServiceError;
use crate::ports::{
    CostExplorer, CostReports, DbInventory, KeptReport, Notifier, Outbox, PriceList, ServiceInventory, StoreError,
};
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

pub struct CostReporter<S, E, D, B, N> {
    pub pipeline: Pipeline,
    /// The function's region: whose prices the estimate uses.
    pub region: String,
    pub records: S,
    pub ecs: E,
    pub rds: D,
    pub billing: B,
    pub notifier: N,
}

/// What one tick did.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReportRun {
    /// The report's subject; none when a later tick's report was kept first.
    pub subject: Option<String>,
    /// Whether this delivery made the report that was kept (else another delivery did).
    pub made: bool,
    pub cost_explorer_calls: u32,
}

/// A Price List refresh: the table kept, how many of its rows the Price List filled, and the
/// rows it kept as before (the Price List had none).
#[derive(Debug, Serialize, PartialEq)]
pub struct PricesRefreshed {
    pub region: String,
    pub as_of: String,
    pub found: usize,
    pub kept_as_before: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CostRun {
    Report(ReportRun),
    Prices(PricesRefreshed),
}

impl<S, E, D, B, N> CostReporter<S, E, D, B, N>
where
    S: CostReports + Outbox,
    E: ServiceInventory,
    D: DbInventory,
    B: CostExplorer + PriceList,
    N: Notifier,
{
    /// The Lambda entry point: an EventBridge schedule's event, whose `time` is the tick; or
    /// an operator's `{"action": "refresh-prices"}`.
    pub async fn handle(&self, event: lambda_runtime::LambdaEvent<serde_json::Value>) -> Result<CostRun, ReportError> {
        if event.payload.get("action").and_then(|a| a.as_str()) == Some("refresh-prices") {
            let refreshed = self.refresh_prices(Utc::now().date_naive()).await?;
            tracing::info!(found = refreshed.found, kept_as_before = ?refreshed.kept_as_before, "prices refreshed");
            return Ok(CostRun::Prices(refreshed));
        }
        let tick = tick_of(&event.payload).map_err(ReportError::BadEvent)?;
        let run = self.run(tick, Utc::now()).await.map_err(ReportError::Service)?;
        tracing::info!(subject = ?run.subject, made = run.made, cost_explorer_calls = run.cost_explorer_calls, "cost report");
        Ok(CostRun::Report(run))
    }

    /// A price table for this region from the Price List (every page of each query), over the
    /// shipped one, kept for the reports that follow. Nothing is kept when a call fails or the
    /// Price List has nothing the table prices.
    pub async fn refresh_prices(&self, today: NaiveDate) -> Result<PricesRefreshed, ReportError> {
        let mut products = Vec::new();
        for query in queries() {
            let found = self
                .billing
                .products(query.service, &query.filters, &self.region)
                .await
                .map_err(|err| ReportError::PriceList(err.0))?;
            products.extend(found);
        }
        let base = shipped_prices(&self.region).unwrap_or_else(|| PriceTable::empty(&self.region));
        let as_of = today.format("%Y-%m-%d").to_string();
        let refreshed = refreshed_table(&self.region, &as_of, base, &products).ok_or_else(|| {
            ReportError::PriceList(format!(
                "the Price List has none of the prices the estimate uses for {}",
                self.region
            ))
        })?;
        self.records
            .keep_prices(&refreshed.table)
            .await
            .map_err(|err: StoreError| ReportError::Service(err.into()))?;
        Ok(PricesRefreshed {
            region: self.region.clone(),
            as_of,
            found: refreshed.found,
            kept_as_before: refreshed.kept_from_base,
        })
    }

    /// The report for `tick`, made at `now` (what runs now, Cost Explorer's figures up to
    /// today): made, kept, then sent. Kept before it is sent, so a retry sends the same report
    /// and asks Cost Explorer nothing, and the next one compares with it. Cost Explorer is
    /// asked again only by a retry of a delivery that failed before the report was kept.
    pub async fn run(&self, tick: DateTime<Utc>, now: DateTime<Utc>) -> Result<ReportRun, ServiceError> {
        let key = format!("cost-report|{}", tick.to_rfc3339());
        let mut run = ReportRun {
            subject: None,
            made: false,
            cost_explorer_calls: 0,
        };
        let subject = match self.records.entry(&key).await? {
            Some(entry) => entry.notice.subject,
            None => {
                let last = self.records.last_report().await?;
                let kept = match last {
                    Some(last) if last.tick == tick => last,
                    Some(last) if last.tick > tick => {
                        tracing::info!(kept = %last.tick, "a later tick's report is kept: this one is not made");
                        return Ok(run);
                    }
                    previous => {
                        let report = self.report(tick, now, previous.map(|p| p.lines)).await?;
                        run.made = true;
                        run.cost_explorer_calls = report.cost_explorer_calls;
                        let made = KeptReport {
                            tick,
                            notice: report_notice(&report),
                            lines: report.kept_lines(),
                        };
                        if self.records.keep_report(&made).await? {
                            made
                        } else {
                            // Another delivery kept one first: send that one, if it is this tick's.
                            run.made = false;
                            match self.records.last_report().await? {
                                Some(last) if last.tick == tick => last,
                                _ => return Ok(run),
                            }
                        }
                    }
                };
                keep_notice(&self.records, key.clone(), &kept.notice).await?;
                kept.notice.subject
            }
        };
        run.subject = Some(subject);
        deliver_notice(&self.records, &self.notifier, &key).await?;
        Ok(run)
    }

    /// The report for `tick` from what runs at `now` and what Cost Explorer says up to then,
    /// compared with `previous` (the last report's lines).
    pub async fn report(
        &self,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
        previous: Option<BTreeMap<String, f64>>,
    ) -> Result<Report, ServiceError> {
        let mut services = Vec::new();
        for stage in self.pipeline.stages() {
            for service in self.pipeline.services() {
                services.push(RunningService {
                    stage: stage.name.to_string(),
                    service: service.name.to_string(),
                    shape: self.ecs.service_shape(&stage.cluster, &service.name).await?,
                });
            }
        }
        let mut dbs = Vec::new();
        for (stage, db) in self.pipeline.databases() {
            dbs.push(RunningDb {
                stage: stage.to_string(),
                db: db.to_string(),
                shape: self.rds.db_shape(db).await?,
            });
        }
        let settings = self.pipeline.cost();
        let fixed = FixedItems {
            counts: settings.fixed.clone(),
            log_ingestion_gb: settings.log_ingestion_gb,
        };
        let refreshed = match self.records.kept_prices().await {
            Ok(refreshed) => refreshed,
            // A kept table this release cannot read must not stop the reports: the shipped one serves.
            Err(err) if !err.retryable => {
                tracing::warn!(error = %err, "the refreshed price table is unreadable; using the shipped one");
                None
            }
            Err(err) => return Err(err.into()),
        };
        let prices = prices_for(&self.region, refreshed, &settings.prices);
        let today = now.date_naive();
        let month_start = today.with_day(1).expect("every month has a first day");
        let (actuals, forecast, calls) = self.cost_explorer_figures(month_start, today).await;
        Ok(Report {
            application: self
                .pipeline
                .applications()
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            made_for: tick,
            period: (month_start, today),
            prices_source: prices.describe(),
            lines: estimate(&prices, &services, &dbs, &fixed),
            actuals,
            forecast,
            previous,
            not_at_desired: not_at_desired(&services),
            cost_explorer_calls: calls,
            divergence: settings.divergence,
        })
    }

    /// The month to date by AWS service (costliest first) and the month's forecast: one call
    /// each, none when the pipeline file turns Cost Explorer off. A failed call leaves its
    /// figure unavailable, with the reason.
    async fn cost_explorer_figures(&self, month_start: NaiveDate, today: NaiveDate) -> (Actuals, Forecast, u32) {
        let settings = self.pipeline.cost();
        if !settings.cost_explorer {
            let off = "Cost Explorer is off in the pipeline file (cost.cost_explorer)".to_owned();
            return (Actuals::Unavailable(off.clone()), Forecast::Unavailable(off), 0);
        }
        let next_month = month_start + Months::new(1);
        let tag = settings.tag.as_ref();
        let mut calls = 0;
        // Cost Explorer's end is exclusive: on the first of the month there is nothing to ask.
        let actuals = if today == month_start {
            Actuals::ByService(Vec::new())
        } else {
            calls += 1;
            match self.billing.cost_by_service(month_start, today, tag).await {
                Ok(mut costs) => {
                    costs.retain(|(_, cost)| cost.abs() >= 0.005);
                    costs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    Actuals::ByService(costs)
                }
                Err(err) => Actuals::Unavailable(err.0),
            }
        };
        calls += 1;
        let forecast = match self.billing.forecast(today, next_month, tag).await {
            Ok(rest_of_month) => match &actuals {
                Actuals::ByService(costs) => Forecast::Total(costs.iter().map(|(_, c)| c).sum::<f64>() + rest_of_month),
                Actuals::Unavailable(_) => Forecast::RestOfMonth(rest_of_month),
            },
            Err(err) => Forecast::Unavailable(err.0),
        };
        (actuals, forecast, calls)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("bad event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    Service(ServiceError),
    /// The Price List refresh failed (a call, or nothing found): nothing was kept.
    #[error("price list: {0}")]
    PriceList(String),
}

impl From<ReportError> for lambda_runtime::Diagnostic {
    fn from(err: ReportError) -> Self {
        let error_type = match &err {
            ReportError::BadEvent(_) => "BadEvent",
            ReportError::PriceList(_) => "PriceListUnavailable",
            ReportError::Service(err) => err.error_type(),
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cost::{DbShape, ServiceShape};
    use crate::fakes::{FakeBilling, FakeInventory, FakeNotifier, MemoryRecords};

    const PIPELINE: &str = r#"
        [[application]]
        name = "backend"
        repository = "social-analytics/backend"
        services = [{ name = "backend-service", container = "api" }]

        [[stage]]
        name = "dev"
        cluster = "c-dev"
        tags = "*"

        [[stage]]
        name = "prod"
        cluster = "c-prod"
        tags = "v*"
        snapshot_before_deploy = ["orders-prod"]

        [cost]
        tag = "app=backend"
        fixed = { alb = 2 }
    "#;

    type Reporter = CostReporter<MemoryRecords, FakeInventory, FakeInventory, FakeBilling, FakeNotifier>;

    fn reporter(pipeline: &str) -> Reporter {
        let pipeline = Pipeline::parse(pipeline).unwrap();
        let inventory = FakeInventory::default();
        let shape = ServiceShape {
            running: 2,
            desired: 2,
            vcpu: 0.5,
            memory_gb: 2.0,
            arm64: false,
            fargate: true,
            spot_share: 0.0,
        };
        inventory.set_service("c-prod", "backend-service", shape.clone());
        inventory.set_service(
            "c-dev",
            "backend-service",
            ServiceShape {
                running: 0,
                desired: 1,
                ..shape
            },
        );
        inventory.set_db(
            "orders-prod",
            DbShape {
                engine: "postgres".into(),
                class: "db.t3.medium".into(),
                multi_az: true,
                storage_gb: 100,
                storage_type: "gp3".into(),
            },
        );
        let billing = FakeBilling::default();
        billing.answer_costs(Some(vec![
            ("Amazon Elastic Container Service", 20.0),
            ("Amazon Relational Database Service", 60.0),
            ("Tax", 0.001),
        ]));
        billing.answer_forecast(Some(100.0));
        CostReporter {
            region: "us-east-1".into(),
            pipeline,
            records: MemoryRecords::default(),
            ecs: inventory.clone(),
            rds: inventory,
            billing,
            notifier: FakeNotifier::default(),
        }
    }

    fn tick(day: u32) -> DateTime<Utc> {
        format!("2026-11-{day:02}T08:00:00Z").parse().unwrap()
    }

    #[tokio::test]
    async fn a_report_prices_what_runs_asks_cost_explorer_twice_and_is_kept_and_sent() {
        let r = reporter(PIPELINE);
        let run = r.run(tick(23), tick(23)).await.unwrap();
        assert!(run.made);
        assert_eq!(run.cost_explorer_calls, 2);
        assert_eq!(
            r.billing.calls(),
            vec![
                "GetCostAndUsage 2026-11-01..2026-11-23 app=backend",
                "GetCostForecast 2026-11-23..2026-12-01 app=backend",
            ]
        );
        let sent = r.notifier.published();
        assert_eq!(sent.len(), 1);
        // prod 42.53 + dev 0 tasks + RDS 128.12 + 2 ALBs 32.85 = 203.50
        assert_eq!(sent[0].subject, "backend: est $203.50/mo, MTD $80.00, change n/a");
        let text = &sent[0].message;
        for expected in [
            "prod/ECS backend-service",
            "dev/ECS backend-service",
            "prod/RDS orders-prod",
            "alb",
            "Amazon Relational Database Service",
            "Forecast for the month: $180.00",
            "FLAG: dev/backend-service runs 0 task(s), not its desired 1.",
            "Cost Explorer calls made for this report: 2",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        assert!(!text.contains("Tax"), "a cost under a cent is left out:\n{text}");
        let kept = r.records.last_report().await.unwrap().unwrap();
        assert_eq!((kept.tick, &kept.notice), (tick(23), &sent[0]));
        assert!((kept.lines["prod|RDS orders-prod"] - 128.12).abs() < 0.01);
    }

    #[tokio::test]
    async fn a_redelivered_tick_sends_nothing_twice_and_asks_cost_explorer_nothing() {
        let r = reporter(PIPELINE);
        r.run(tick(23), tick(23)).await.unwrap();
        let again = r.run(tick(23), tick(23)).await.unwrap();
        assert!(!again.made);
        assert_eq!(r.billing.calls().len(), 2);
        assert_eq!(r.notifier.published().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_is_retried_with_the_kept_report() {
        let r = reporter(PIPELINE);
        r.notifier.fail(true);
        let err = r.run(tick(23), tick(23)).await.unwrap_err();
        assert_eq!(err.error_type(), "NotifyFailed");
        r.notifier.fail(false);
        r.billing.answer_forecast(Some(1.0));
        let retry = r.run(tick(23), tick(23)).await.unwrap();
        assert!(!retry.made);
        assert_eq!(r.billing.calls().len(), 2);
        let sent = r.notifier.published();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].message.contains("Forecast for the month: $180.00"));
    }

    #[tokio::test]
    async fn the_next_report_shows_the_change_per_line_and_in_total() {
        let r = reporter(PIPELINE);
        r.run(tick(16), tick(16)).await.unwrap();
        r.ecs.set_service(
            "c-dev",
            "backend-service",
            ServiceShape {
                running: 1,
                desired: 1,
                vcpu: 0.5,
                memory_gb: 2.0,
                arm64: false,
                fargate: true,
                spot_share: 0.0,
            },
        );
        r.run(tick(23), tick(23)).await.unwrap();
        let sent = r.notifier.published();
        assert_eq!(sent.len(), 2);
        assert!(sent[1].subject.ends_with("change +21.26"), "{}", sent[1].subject);
        assert!(sent[1].message.contains("+21.26"), "{}", sent[1].message);
        assert!(!sent[1].message.contains("FLAG: dev/backend-service"));
    }

    #[tokio::test]
    async fn cost_explorer_failures_leave_a_labelled_report() {
        let r = reporter(PIPELINE);
        r.billing.answer_costs(None);
        r.run(tick(23), tick(23)).await.unwrap();
        let text = &r.notifier.published()[0].message;
        assert!(
            text.contains("unavailable (GetCostAndUsage: AccessDeniedException"),
            "{text}"
        );
        assert!(text.contains("Forecast for the rest of the month: $100.00"), "{text}");

        let r = reporter(PIPELINE);
        r.billing.answer_costs(None);
        r.billing.answer_forecast(None);
        r.run(tick(23), tick(23)).await.unwrap();
        let sent = &r.notifier.published()[0];
        assert!(sent.subject.contains("MTD n/a"), "{}", sent.subject);
        assert!(
            sent.message
                .contains("Forecast: unavailable (GetCostForecast: DataUnavailableException")
        );
    }

    #[tokio::test]
    async fn cost_explorer_off_makes_no_call_and_the_first_of_the_month_only_the_forecast() {
        let r = reporter(&format!("{PIPELINE}\ncost_explorer = false\n"));
        let run = r.run(tick(23), tick(23)).await.unwrap();
        assert_eq!((run.cost_explorer_calls, r.billing.calls().len()), (0, 0));
        assert!(r.notifier.published()[0].message.contains("Cost Explorer is off"));

        let r = reporter(PIPELINE);
        let first: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        assert_eq!(r.run(first, first).await.unwrap().cost_explorer_calls, 1);
        assert_eq!(
            r.billing.calls(),
            vec!["GetCostForecast 2026-12-01..2027-01-01 app=backend"]
        );
        assert!(
            r.notifier.published()[0]
                .message
                .contains("Forecast for the month: $100.00")
        );
    }

    /// The month's edges: its first day (nothing to ask for the month to date, and it reads
    /// $0.00, never $-0.00), the last days of February in common and leap years, a 31st, and
    /// the turn of the year.
    #[tokio::test]
    async fn every_day_of_the_calendar_asks_cost_explorer_for_its_own_month() {
        for (day, calls, subject_mtd) in [
            (
                "2026-12-01",
                vec!["GetCostForecast 2026-12-01..2027-01-01 app=backend"],
                "MTD $0.00",
            ),
            (
                "2026-02-28",
                vec![
                    "GetCostAndUsage 2026-02-01..2026-02-28 app=backend",
                    "GetCostForecast 2026-02-28..2026-03-01 app=backend",
                ],
                "MTD $80.00",
            ),
            (
                "2028-02-29",
                vec![
                    "GetCostAndUsage 2028-02-01..2028-02-29 app=backend",
                    "GetCostForecast 2028-02-29..2028-03-01 app=backend",
                ],
                "MTD $80.00",
            ),
            (
                "2027-03-31",
                vec![
                    "GetCostAndUsage 2027-03-01..2027-03-31 app=backend",
                    "GetCostForecast 2027-03-31..2027-04-01 app=backend",
                ],
                "MTD $80.00",
            ),
            (
                "2026-12-31",
                vec![
                    "GetCostAndUsage 2026-12-01..2026-12-31 app=backend",
                    "GetCostForecast 2026-12-31..2027-01-01 app=backend",
                ],
                "MTD $80.00",
            ),
            (
                "2027-01-01",
                vec!["GetCostForecast 2027-01-01..2027-02-01 app=backend"],
                "MTD $0.00",
            ),
        ] {
            let r = reporter(PIPELINE);
            let at: DateTime<Utc> = format!("{day}T08:00:00Z").parse().unwrap();
            let run = r.run(at, at).await.unwrap();
            assert_eq!(r.billing.calls(), calls, "{day}");
            assert_eq!(run.cost_explorer_calls as usize, calls.len(), "{day}");
            let subject = &r.notifier.published()[0].subject;
            assert!(subject.contains(subject_mtd), "{day}: {subject}");
            assert!(!subject.contains("-0.00"), "{day}: {subject}");
        }
        // The tick of 31 December delivered late, on 1 January: the new year's month.
        let r = reporter(PIPELINE);
        let eve: DateTime<Utc> = "2026-12-31T23:59:00Z".parse().unwrap();
        let new_year: DateTime<Utc> = "2027-01-01T00:01:00Z".parse().unwrap();
        r.run(eve, new_year).await.unwrap();
        assert_eq!(
            r.billing.calls(),
            vec!["GetCostForecast 2027-01-01..2027-02-01 app=backend"]
        );
    }

    #[tokio::test]
    async fn a_throttled_inventory_fails_the_tick_before_any_cost_or_record() {
        let r = reporter(PIPELINE);
        r.ecs.throttle(true);
        let err = r.run(tick(23), tick(23)).await.unwrap_err();
        assert_eq!(err.error_type(), "EcsUnavailable");
        assert!(r.billing.calls().is_empty());
        assert!(r.records.last_report().await.unwrap().is_none());
        assert!(r.notifier.published().is_empty());
    }

    #[tokio::test]
    async fn a_tick_delivered_late_reports_what_runs_and_costs_up_to_the_day_it_runs() {
        let r = reporter(PIPELINE);
        r.run(tick(23), tick(25)).await.unwrap();
        assert_eq!(
            r.billing.calls(),
            vec![
                "GetCostAndUsage 2026-11-01..2026-11-25 app=backend",
                "GetCostForecast 2026-11-25..2026-12-01 app=backend",
            ]
        );
        let text = &r.notifier.published()[0].message;
        assert!(
            text.contains("tick of 2026-11-23 08:00 UTC") && text.contains("up to 2026-11-25"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_delivery_that_loses_the_race_to_keep_its_report_sends_the_kept_one() {
        let r = reporter(PIPELINE);
        let theirs = KeptReport {
            tick: tick(23),
            notice: crate::domain::notice::Notice::new("kept by the other delivery".into(), "theirs".into()),
            lines: BTreeMap::new(),
        };
        r.records.race_report(theirs.clone());
        let run = r.run(tick(23), tick(23)).await.unwrap();
        assert!(!run.made);
        assert_eq!(run.subject.as_deref(), Some("kept by the other delivery"));
        assert_eq!(r.notifier.published(), vec![theirs.notice]);
    }

    #[tokio::test]
    async fn an_older_tick_delivered_late_makes_no_report() {
        let r = reporter(PIPELINE);
        r.run(tick(23), tick(23)).await.unwrap();
        let late = r.run(tick(16), tick(16)).await.unwrap();
        assert_eq!((late.made, late.subject), (false, None));
        assert_eq!(r.notifier.published().len(), 1);
        assert_eq!(r.records.last_report().await.unwrap().unwrap().tick, tick(23));
    }

    #[tokio::test]
    async fn a_service_or_db_the_account_lacks_is_a_line_without_an_amount() {
        let r = reporter(&PIPELINE.replace("orders-prod", "orders-gone"));
        r.run(tick(23), tick(23)).await.unwrap();
        let text = &r.notifier.published()[0].message;
        assert!(text.contains("not found in RDS"), "{text}");
        assert!(text.contains("Left out of the total, unpriced or not found (see their lines): RDS orders-gone."));
    }

    fn event(payload: serde_json::Value) -> lambda_runtime::LambdaEvent<serde_json::Value> {
        lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn a_price_refresh_keeps_the_price_lists_table_and_the_next_report_uses_it() {
        use crate::domain::fixtures::price_list_product;
        let r = reporter(PIPELINE);
        r.billing.answer_products(Some((
            "AmazonRDS",
            vec![price_list_product(
                "AmazonRDS",
                "Database Instance",
                &[
                    ("usagetype", "InstanceUsage:db.t3.medium"),
                    ("databaseEngine", "PostgreSQL"),
                    ("instanceType", "db.t3.medium"),
                ],
                "0.1",
            )],
        )));
        let refreshed = r
            .handle(event(serde_json::json!({"action": "refresh-prices"})))
            .await
            .unwrap();
        let CostRun::Prices(refreshed) = refreshed else {
            panic!("{refreshed:?}")
        };
        assert_eq!((refreshed.region.as_str(), refreshed.found), ("us-east-1", 1));
        assert!(refreshed.kept_as_before.contains(&"fargate.x86_64".to_owned()));
        let calls = r.billing.calls();
        assert_eq!(calls.len(), queries().len(), "{calls:?}");
        assert!(
            calls
                .iter()
                .all(|c| c.starts_with("GetProducts ") && c.ends_with(" us-east-1"))
        );
        assert!(r.notifier.published().is_empty(), "a refresh sends no report");

        r.run(tick(23), tick(23)).await.unwrap();
        let text = &r.notifier.published()[0].message;
        assert!(
            text.contains("Prices: us-east-1 as of ") && text.contains("the AWS Price List (GetProducts)"),
            "{text}"
        );
        // 2 × (0.1 × 730 + 100 × 0.115) = 169.00
        assert!(text.contains("$169.00"), "{text}");
    }

    #[tokio::test]
    async fn a_failed_or_empty_price_refresh_keeps_nothing() {
        let r = reporter(PIPELINE);
        r.billing.answer_products(None);
        let failed = r.refresh_prices(tick(23).date_naive()).await.unwrap_err();
        assert!(failed.to_string().contains("ThrottlingException"), "{failed}");
        assert_eq!(
            lambda_runtime::Diagnostic::from(failed).error_type,
            "PriceListUnavailable"
        );
        r.billing.answer_products(Some(("AmazonECS", Vec::new())));
        let empty = r.refresh_prices(tick(23).date_naive()).await.unwrap_err();
        assert!(empty.to_string().contains("none of the prices"), "{empty}");
        assert!(r.records.kept_prices().await.unwrap().is_none());
    }
}
