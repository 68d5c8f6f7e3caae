//! The monthly cost estimate from what runs now: ECS services (running tasks × their task's
//! vCPU and memory, by CPU architecture and capacity provider), RDS instances (class, Multi-AZ
//! doubling it, allocated storage by type) and fixed items the pipeline file names, priced from
//! a shipped table per region. Pure: the cost report function gathers the inventory.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Hours AWS bills in an average month.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The prices the estimate uses in one region: where they come from and when they were read.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub region: String,
    pub source: String,
    pub as_of: String,
    pub fargate: BTreeMap<String, FargatePrice>,
    /// Per hour, Single-AZ, by `<engine>/<instance class>` (e.g. `postgres/db.t3.medium`).
    pub rds_instance_hour: BTreeMap<String, f64>,
    /// Per GB-month, Single-AZ, by storage type (`gp2`, `gp3`, `io1`, ...).
    pub rds_storage_gb_month: BTreeMap<String, f64>,
    /// Fixed items by name (`alb`, `nat_gateway`): per hour.
    pub fixed_hour: BTreeMap<String, f64>,
    /// Per GB of CloudWatch Logs ingested.
    pub log_ingestion_gb: f64,
}

/// Fargate's price per vCPU-hour and GB-hour for one architecture and capacity provider (the
/// table's keys: `x86_64`, `arm64`, `x86_64/spot`, `arm64/spot`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FargatePrice {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

/// The tables shipped with the functions, one per region.
pub const SHIPPED_PRICES: &str = include_str!("../../prices.toml");

#[derive(Deserialize)]
struct Shipped {
    table: Vec<PriceTable>,
}

/// The shipped table for `region`, if one is shipped.
pub fn shipped_prices(region: &str) -> Option<PriceTable> {
    let shipped: Shipped = toml::from_str(SHIPPED_PRICES).expect("the shipped price tables parse");
    shipped.table.into_iter().find(|t| t.region == region)
}

/// An ECS service as it runs now.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningService {
    pub stage: String,
    pub service: String,
    pub running: u32,
    pub desired: u32,
    /// The task's vCPU (`cpu` units / 1024) and memory in GB.
    pub vcpu: f64,
    pub memory_gb: f64,
    pub arm64: bool,
    pub spot: bool,
}

/// An RDS instance as it runs now.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningDb {
    pub stage: String,
    pub db: String,
    pub engine: String,
    pub class: String,
    pub multi_az: bool,
    pub storage_gb: u32,
    pub storage_type: String,
}

/// One priced line of the estimate (monthly), or why it could not be priced.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub stage: String,
    pub item: String,
    pub monthly: Option<f64>,
    pub note: String,
}

/// The monthly estimate of `services`, `dbs` and `fixed` items (name → count) at `prices`.
pub fn estimate(
    prices: &PriceTable,
    services: &[RunningService],
    dbs: &[RunningDb],
    fixed: &[(String, u32)],
) -> Vec<Line> {
    let mut lines = Vec::new();
    for s in services {
        let key = format!(
            "{}{}",
            if s.arm64 { "arm64" } else { "x86_64" },
            if s.spot { "/spot" } else { "" }
        );
        let monthly = prices
            .fargate
            .get(&key)
            .map(|p| f64::from(s.running) * (s.vcpu * p.vcpu_hour + s.memory_gb * p.gb_hour) * HOURS_PER_MONTH);
        lines.push(Line {
            stage: s.stage.clone(),
            item: format!("ECS {}", s.service),
            monthly,
            note: format!(
                "{} task(s) × {} vCPU, {} GB, Fargate{} {key}",
                s.running,
                s.vcpu,
                s.memory_gb,
                if s.spot { " Spot" } else { "" }
            ),
        });
    }
    for db in dbs {
        let copies = if db.multi_az { 2.0 } else { 1.0 };
        let instance = prices.rds_instance_hour.get(&format!("{}/{}", db.engine, db.class));
        let storage = prices.rds_storage_gb_month.get(&db.storage_type);
        let monthly = match (instance, storage) {
            (Some(hour), Some(gb_month)) => {
                Some(copies * (hour * HOURS_PER_MONTH + f64::from(db.storage_gb) * gb_month))
            }
            _ => None,
        };
        lines.push(Line {
            stage: db.stage.clone(),
            item: format!("RDS {}", db.db),
            monthly,
            note: format!(
                "{} {}{}, {} GB {}",
                db.engine,
                db.class,
                if db.multi_az { " Multi-AZ" } else { "" },
                db.storage_gb,
                db.storage_type
            ),
        });
    }
    for (name, count) in fixed {
        lines.push(Line {
            stage: String::new(),
            item: name.clone(),
            monthly: prices
                .fixed_hour
                .get(name)
                .map(|hour| f64::from(*count) * hour * HOURS_PER_MONTH),
            note: format!("{count} × {name}"),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' own setup (003): two always-on Fargate tasks (0.5 vCPU, 2 GB, x86_64), and
    /// RDS PostgreSQL db.t3.medium, Multi-AZ, 100 GB gp3, in us-east-1.
    #[test]
    fn the_seeds_setup_costs_what_the_shipped_table_says_and_about_what_the_seeds_say() {
        let prices = shipped_prices("us-east-1").unwrap();
        let services = [RunningService {
            stage: "prod".into(),
            service: "backend-service".into(),
            running: 2,
            desired: 2,
            vcpu: 0.5,
            memory_gb: 2.0,
            arm64: false,
            spot: false,
        }];
        let dbs = [RunningDb {
            stage: "prod".into(),
            db: "social-analytics-db".into(),
            engine: "postgres".into(),
            class: "db.t3.medium".into(),
            multi_az: true,
            storage_gb: 100,
            storage_type: "gp3".into(),
        }];
        let lines = estimate(&prices, &services, &dbs, &[]);
        let fargate = lines[0].monthly.unwrap();
        let rds = lines[1].monthly.unwrap();
        // By hand: 2 × (0.5 × 0.04048 + 2 × 0.004445) × 730 = 42.53
        assert!((fargate - 42.5298).abs() < 0.01, "{fargate}");
        // By hand: 2 × (0.072 × 730 + 100 × 0.115) = 128.12
        assert!((rds - 128.12).abs() < 0.01, "{rds}");
        // The seeds' rough totals: ~$45 Fargate, ~$140 RDS.
        assert!((fargate - 45.0).abs() / 45.0 < 0.1, "{fargate}");
        assert!((rds - 140.0).abs() / 140.0 < 0.1, "{rds}");
    }

    #[test]
    fn what_the_table_cannot_price_is_said_not_guessed() {
        let prices = shipped_prices("us-east-1").unwrap();
        let db = RunningDb {
            stage: "prod".into(),
            db: "odd".into(),
            engine: "postgres".into(),
            class: "db.x99.huge".into(),
            multi_az: false,
            storage_gb: 20,
            storage_type: "gp3".into(),
        };
        let lines = estimate(&prices, &[], &[db], &[("alb".into(), 1)]);
        assert_eq!(lines[0].monthly, None);
        assert!((lines[1].monthly.unwrap() - 0.0225 * 730.0).abs() < 1e-9);
        assert!(shipped_prices("xx-nowhere-1").is_none());
    }
}

/// What Cost Explorer said for the month so far: the cost per AWS service, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Actuals {
    ByService(Vec<(String, f64)>),
    Unavailable(String),
}

/// The month's forecast from Cost Explorer, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Forecast {
    Total(f64),
    Unavailable(String),
}

/// A report: the estimate's lines, Cost Explorer's figures, and the last report's lines (by
/// stage and item) to show the change.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub application: String,
    pub prices_source: String,
    pub lines: Vec<Line>,
    pub actuals: Actuals,
    pub forecast: Forecast,
    pub previous: Option<BTreeMap<String, f64>>,
    /// Services whose running count is not their desired count: `(stage/service, running, desired)`.
    pub not_at_desired: Vec<(String, u32, u32)>,
    /// How many Cost Explorer calls the report made ($0.01 each).
    pub cost_explorer_calls: u32,
    /// Share of the estimate the forecast may differ by before it is flagged.
    pub divergence: f64,
}

impl Report {
    pub fn estimate_total(&self) -> f64 {
        self.lines.iter().filter_map(|l| l.monthly).sum()
    }

    /// The key a line is compared under with the last report.
    pub fn key(line: &Line) -> String {
        format!("{}|{}", line.stage, line.item)
    }

    /// The estimate per line, as kept for the next report's comparison.
    pub fn kept_lines(&self) -> BTreeMap<String, f64> {
        self.lines
            .iter()
            .filter_map(|l| Some((Self::key(l), l.monthly?)))
            .collect()
    }
}

fn dollars(amount: f64) -> String {
    format!("${amount:.2}")
}

fn change(now: f64, before: Option<f64>) -> String {
    match before {
        Some(before) if (now - before).abs() >= 0.005 => format!("{:+.2}", now - before),
        Some(_) => "=".to_owned(),
        None => "new".to_owned(),
    }
}

/// The report as a plain-text notice with aligned columns; the subject says the application,
/// the monthly estimate, the month to date and the change, in one line under 100 characters.
pub fn report_notice(report: &Report) -> super::notice::Notice {
    let total = report.estimate_total();
    let previous_total = report.previous.as_ref().map(|p| p.values().sum::<f64>());
    let month_to_date = match &report.actuals {
        Actuals::ByService(costs) => Some(costs.iter().map(|(_, c)| c).sum::<f64>()),
        Actuals::Unavailable(_) => None,
    };
    let subject = format!(
        "{}: est {}/mo, MTD {}, change {}",
        report.application,
        dollars(total),
        month_to_date.map_or("n/a".to_owned(), dollars),
        previous_total.map_or("n/a".to_owned(), |p| format!("{:+.2}", total - p)),
    );
    let mut body = format!(
        "Monthly estimate from what runs now ({} prices):\n\n",
        report.prices_source
    );
    let item_width = report
        .lines
        .iter()
        .map(|l| l.stage.len() + 1 + l.item.len())
        .max()
        .unwrap_or(4)
        .max(4);
    body.push_str(&format!(
        "{:<item_width$}  {:>10}  {:>9}  {}\n",
        "item", "monthly", "change", "what"
    ));
    for line in &report.lines {
        let name = if line.stage.is_empty() {
            line.item.clone()
        } else {
            format!("{}/{}", line.stage, line.item)
        };
        let before = report
            .previous
            .as_ref()
            .and_then(|p| p.get(&Report::key(line)).copied());
        let (monthly, delta) = match line.monthly {
            Some(m) => (dollars(m), change(m, before)),
            None => ("?".to_owned(), "-".to_owned()),
        };
        body.push_str(&format!(
            "{name:<item_width$}  {monthly:>10}  {delta:>9}  {}\n",
            line.note
        ));
    }
    body.push_str(&format!(
        "{:<item_width$}  {:>10}  {:>9}\n",
        "total",
        dollars(total),
        previous_total.map_or("new".to_owned(), |p| change(total, Some(p)))
    ));
    let unpriced: Vec<&str> = report
        .lines
        .iter()
        .filter(|l| l.monthly.is_none())
        .map(|l| l.item.as_str())
        .collect();
    if !unpriced.is_empty() {
        body.push_str(&format!(
            "Not in the price table (left out of the total): {}.\n",
            unpriced.join(", ")
        ));
    }
    body.push_str("\nActual cost this month so far (Cost Explorer):\n");
    match &report.actuals {
        Actuals::ByService(costs) => {
            let width = costs.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
            for (service, cost) in costs {
                body.push_str(&format!("  {service:<width$}  {:>10}\n", dollars(*cost)));
            }
            body.push_str(&format!(
                "  {:<width$}  {:>10}\n",
                "total",
                dollars(month_to_date.unwrap_or(0.0))
            ));
        }
        Actuals::Unavailable(why) => body.push_str(&format!("  unavailable ({why}); the estimate stands alone\n")),
    }
    match &report.forecast {
        Forecast::Total(forecast) => {
            body.push_str(&format!("Forecast for the month: {}\n", dollars(*forecast)));
            if total > 0.0 && (forecast - total).abs() / total > report.divergence {
                body.push_str(&format!(
                    "FLAG: the forecast differs from the estimate by more than {:.0}%: something runs that the estimate does not see (or the other way round).\n",
                    report.divergence * 100.0
                ));
            }
        }
        Forecast::Unavailable(why) => body.push_str(&format!("Forecast: unavailable ({why})\n")),
    }
    for (service, running, desired) in &report.not_at_desired {
        body.push_str(&format!(
            "FLAG: {service} runs {running} task(s), not its desired {desired}.\n"
        ));
    }
    body.push_str(&format!(
        "\nCost Explorer calls made for this report: {} ($0.01 each).\n",
        report.cost_explorer_calls
    ));
    super::notice::Notice {
        subject: super::notice::subject(subject),
        message: body,
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;

    fn report() -> Report {
        Report {
            application: "backend".into(),
            prices_source: "us-east-1, 2025-01".into(),
            lines: vec![
                Line {
                    stage: "prod".into(),
                    item: "ECS backend-service".into(),
                    monthly: Some(42.53),
                    note: "2 task(s)".into(),
                },
                Line {
                    stage: "prod".into(),
                    item: "RDS social-analytics-db".into(),
                    monthly: Some(128.12),
                    note: "Multi-AZ".into(),
                },
                Line {
                    stage: String::new(),
                    item: "nat_gateway".into(),
                    monthly: None,
                    note: "1 × nat_gateway".into(),
                },
            ],
            actuals: Actuals::ByService(vec![("Amazon RDS".into(), 80.0), ("Amazon ECS".into(), 20.5)]),
            forecast: Forecast::Total(250.0),
            previous: Some(BTreeMap::from([("prod|ECS backend-service".to_owned(), 30.0)])),
            not_at_desired: vec![("prod/worker-service".into(), 1, 2)],
            cost_explorer_calls: 2,
            divergence: 0.25,
        }
    }

    #[test]
    fn the_report_reads_in_columns_with_its_changes_and_flags() {
        let notice = report_notice(&report());
        assert_eq!(notice.subject, "backend: est $170.65/mo, MTD $100.50, change +140.65");
        assert!(notice.subject.len() < 100);
        let text = &notice.message;
        assert!(
            text.contains("prod/ECS backend-service          $42.53     +12.53  2 task(s)"),
            "{text}"
        );
        assert!(
            text.contains("prod/RDS social-analytics-db     $128.12        new  Multi-AZ"),
            "{text}"
        );
        assert!(
            text.contains("Not in the price table (left out of the total): nat_gateway."),
            "{text}"
        );
        assert!(
            text.contains("FLAG: the forecast differs from the estimate by more than 25%"),
            "{text}"
        );
        assert!(
            text.contains("FLAG: prod/worker-service runs 1 task(s), not its desired 2."),
            "{text}"
        );
        assert!(
            text.contains("Cost Explorer calls made for this report: 2 ($0.01 each)."),
            "{text}"
        );
    }

    #[test]
    fn a_cost_explorer_failure_leaves_a_labelled_estimate() {
        let mut degraded = report();
        degraded.actuals = Actuals::Unavailable("GetCostAndUsage: AccessDenied".into());
        degraded.forecast = Forecast::Unavailable("GetCostForecast: DataUnavailableException".into());
        let notice = report_notice(&degraded);
        assert_eq!(notice.subject, "backend: est $170.65/mo, MTD n/a, change +140.65");
        assert!(
            notice
                .message
                .contains("unavailable (GetCostAndUsage: AccessDenied); the estimate stands alone")
        );
        assert!(
            notice
                .message
                .contains("Forecast: unavailable (GetCostForecast: DataUnavailableException)")
        );
        assert!(!notice.message.contains("FLAG: the forecast"));
    }
}
