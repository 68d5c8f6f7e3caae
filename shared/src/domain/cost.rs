//! The monthly cost estimate from what runs now: ECS services (running tasks × their task's
//! vCPU and memory, by CPU architecture and capacity provider), RDS instances (class, Multi-AZ
//! doubling it, allocated storage by type) and fixed items the pipeline file names, priced from
//! a shipped table per region. Pure: the cost report function gathers the inventory.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hours AWS bills in an average month.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The prices the estimate uses in one region: where they come from and when they were read.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
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
    pub log_ingestion_gb: Option<f64>,
    /// How many of these prices the pipeline file set.
    #[serde(skip)]
    pub overridden: usize,
}

/// Fargate's price per vCPU-hour and GB-hour for one architecture and capacity provider (the
/// table's keys: `x86_64`, `arm64`, `x86_64/spot`, `arm64/spot`).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FargatePrice {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
}

pub const FARGATE_KEYS: [&str; 4] = ["x86_64", "arm64", "x86_64/spot", "arm64/spot"];

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

impl PriceTable {
    /// A table with no prices, for a region none is shipped for.
    pub fn empty(region: &str) -> Self {
        PriceTable {
            region: region.to_owned(),
            source: format!("no prices shipped for {region}"),
            as_of: "-".into(),
            fargate: BTreeMap::new(),
            rds_instance_hour: BTreeMap::new(),
            rds_storage_gb_month: BTreeMap::new(),
            fixed_hour: BTreeMap::new(),
            log_ingestion_gb: None,
            overridden: 0,
        }
    }
}

/// The prices for `region`: the table refreshed from the Price List when one is kept for it
/// (and is not older than the shipped one), else the shipped one (an empty one where none is shipped), with the pipeline file's
/// `overrides` over it.
pub fn prices_for(region: &str, refreshed: Option<PriceTable>, overrides: &PriceOverrides) -> PriceTable {
    let shipped = shipped_prices(region);
    // A refresh older than the shipped table (a release brought newer prices) gives way to it.
    let mut table = refreshed
        .filter(|t| t.region == region && shipped.as_ref().is_none_or(|s| t.as_of >= s.as_of))
        .or(shipped)
        .unwrap_or_else(|| PriceTable::empty(region));
    table.fargate.extend(overrides.fargate.clone());
    table.rds_instance_hour.extend(overrides.rds_instance_hour.clone());
    table
        .rds_storage_gb_month
        .extend(overrides.rds_storage_gb_month.clone());
    table.fixed_hour.extend(overrides.fixed_hour.clone());
    if overrides.log_ingestion_gb.is_some() {
        table.log_ingestion_gb = overrides.log_ingestion_gb;
    }
    table.overridden = overrides.count();
    table
}

impl PriceTable {
    /// Where the prices come from, for the report's heading.
    pub fn describe(&self) -> String {
        let mut text = format!("{} as of {}: {}", self.region, self.as_of, self.source);
        if self.overridden > 0 {
            text.push_str(&format!("; {} from the pipeline file", self.overridden));
        }
        text
    }
}

/// Prices the pipeline file's `[cost.prices]` sets, in the shipped table's shape.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceOverrides {
    #[serde(default)]
    pub fargate: BTreeMap<String, FargatePrice>,
    #[serde(default)]
    pub rds_instance_hour: BTreeMap<String, f64>,
    #[serde(default)]
    pub rds_storage_gb_month: BTreeMap<String, f64>,
    #[serde(default)]
    pub fixed_hour: BTreeMap<String, f64>,
    #[serde(default)]
    pub log_ingestion_gb: Option<f64>,
}

impl PriceOverrides {
    fn count(&self) -> usize {
        self.fargate.len()
            + self.rds_instance_hour.len()
            + self.rds_storage_gb_month.len()
            + self.fixed_hour.len()
            + usize::from(self.log_ingestion_gb.is_some())
    }

    /// Every price a finite amount of dollars, not negative, and every Fargate key one the
    /// estimate looks up: the failing field (below `prices.`) and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |price: f64| !(price.is_finite() && price >= 0.0);
        let why = |price: f64| format!("{price} is not a price in dollars (0 or more)");
        for (key, price) in &self.fargate {
            if !FARGATE_KEYS.contains(&key.as_str()) {
                return Err((
                    format!("fargate.\"{key}\""),
                    format!("not one of {}", FARGATE_KEYS.join(", ")),
                ));
            }
            for (unit, value) in [("vcpu_hour", price.vcpu_hour), ("gb_hour", price.gb_hour)] {
                if bad(value) {
                    return Err((format!("fargate.\"{key}\".{unit}"), why(value)));
                }
            }
        }
        for (section, prices) in [
            ("rds_instance_hour", &self.rds_instance_hour),
            ("rds_storage_gb_month", &self.rds_storage_gb_month),
            ("fixed_hour", &self.fixed_hour),
        ] {
            if let Some((key, price)) = prices.iter().find(|(_, price)| bad(**price)) {
                return Err((format!("{section}.\"{key}\""), why(*price)));
            }
        }
        match self.log_ingestion_gb {
            Some(price) if bad(price) => Err(("log_ingestion_gb".into(), why(price))),
            _ => Ok(()),
        }
    }
}

/// A cost-allocation tag (`key=value`): Cost Explorer's figures are those of resources
/// carrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostTag {
    pub key: String,
    pub value: String,
}

impl CostTag {
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(format!("`{text}` is not `key=value`"));
        };
        if key.trim().is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(format!(
                "`{text}`: a tag key is 1 to 128 characters, its value at most 256"
            ));
        }
        Ok(CostTag {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for CostTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// An ECS service's tasks as they run now.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceShape {
    pub running: u32,
    pub desired: u32,
    /// The task's vCPU (`cpu` units / 1024) and memory in GB.
    pub vcpu: f64,
    pub memory_gb: f64,
    pub arm64: bool,
    /// Whether its tasks run on Fargate (the EC2 launch type bills the instances instead).
    pub fargate: bool,
    /// The share of its tasks on FARGATE_SPOT, by its capacity provider strategy's weights.
    pub spot_share: f64,
}

/// An ECS service of the pipeline file, and how it runs (`None`: ECS has no such service).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningService {
    pub stage: String,
    pub service: String,
    pub shape: Option<ServiceShape>,
}

/// An RDS instance as it runs now.
#[derive(Clone, Debug, PartialEq)]
pub struct DbShape {
    pub engine: String,
    pub class: String,
    pub multi_az: bool,
    pub storage_gb: u32,
    pub storage_type: String,
}

/// A DB the pipeline file names, and how it runs (`None`: RDS has no such instance).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningDb {
    pub stage: String,
    pub db: String,
    pub shape: Option<DbShape>,
}

/// One priced line of the estimate (monthly), or why it could not be priced.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub stage: String,
    pub item: String,
    pub monthly: Option<f64>,
    pub note: String,
}

/// What the estimate adds to the inventory: hourly items by count, and log ingestion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FixedItems {
    pub counts: Vec<(String, u32)>,
    pub log_ingestion_gb: f64,
}

fn fargate_line(prices: &PriceTable, shape: &ServiceShape) -> (Option<f64>, String) {
    let arch = if shape.arm64 { "arm64" } else { "x86_64" };
    let mut note = format!(
        "{} task(s) × {} vCPU, {} GB, {arch}",
        shape.running, shape.vcpu, shape.memory_gb
    );
    if !shape.fargate {
        note.push_str(", EC2 launch type: its instances are billed, not its tasks");
        return (None, note);
    }
    let task_hour = |key: &str| {
        prices
            .fargate
            .get(key)
            .map(|p| shape.vcpu * p.vcpu_hour + shape.memory_gb * p.gb_hour)
    };
    let spot = shape.spot_share.clamp(0.0, 1.0);
    let on_demand = if spot < 1.0 { task_hour(arch) } else { Some(0.0) };
    let on_spot = if spot > 0.0 {
        task_hour(&format!("{arch}/spot"))
    } else {
        Some(0.0)
    };
    note.push_str(&match spot {
        0.0 => ", Fargate".to_owned(),
        1.0 => ", Fargate Spot".to_owned(),
        _ => format!(", Fargate, {:.0}% Spot", spot * 100.0),
    });
    let monthly = on_demand
        .zip(on_spot)
        .map(|(od, sp)| f64::from(shape.running) * ((1.0 - spot) * od + spot * sp) * HOURS_PER_MONTH);
    (monthly, note)
}

/// The monthly estimate of `services`, `dbs` and the `fixed` items at `prices`. What the
/// table cannot price, or the account does not have, is a line without an amount.
pub fn estimate(prices: &PriceTable, services: &[RunningService], dbs: &[RunningDb], fixed: &FixedItems) -> Vec<Line> {
    let mut lines = Vec::new();
    for s in services {
        let (monthly, note) = match &s.shape {
            Some(shape) => fargate_line(prices, shape),
            None => (None, "not found in ECS".to_owned()),
        };
        lines.push(Line {
            stage: s.stage.clone(),
            item: format!("ECS {}", s.service),
            monthly,
            note,
        });
    }
    for db in dbs {
        let (monthly, note) = match &db.shape {
            Some(shape) => {
                let copies = if shape.multi_az { 2.0 } else { 1.0 };
                let instance = prices
                    .rds_instance_hour
                    .get(&format!("{}/{}", shape.engine, shape.class));
                let storage = prices.rds_storage_gb_month.get(&shape.storage_type);
                let monthly = instance
                    .zip(storage)
                    .map(|(hour, gb_month)| copies * (hour * HOURS_PER_MONTH + f64::from(shape.storage_gb) * gb_month));
                let note = format!(
                    "{} {}{}, {} GB {}",
                    shape.engine,
                    shape.class,
                    if shape.multi_az { " Multi-AZ" } else { "" },
                    shape.storage_gb,
                    shape.storage_type
                );
                (monthly, note)
            }
            None => (None, "not found in RDS".to_owned()),
        };
        lines.push(Line {
            stage: db.stage.clone(),
            item: format!("RDS {}", db.db),
            monthly,
            note,
        });
    }
    for (name, count) in &fixed.counts {
        lines.push(Line {
            stage: String::new(),
            item: name.clone(),
            monthly: prices
                .fixed_hour
                .get(name)
                .map(|hour| f64::from(*count) * hour * HOURS_PER_MONTH),
            note: format!("{count} × {name}, from the pipeline file"),
        });
    }
    if fixed.log_ingestion_gb > 0.0 {
        lines.push(Line {
            stage: String::new(),
            item: "log ingestion".into(),
            monthly: prices.log_ingestion_gb.map(|gb| gb * fixed.log_ingestion_gb),
            note: format!("{} GB a month into CloudWatch Logs", fixed.log_ingestion_gb),
        });
    }
    lines
}

/// Services whose running count is not their desired count: `(stage/service, running, desired)`.
pub fn not_at_desired(services: &[RunningService]) -> Vec<(String, u32, u32)> {
    services
        .iter()
        .filter_map(|s| {
            let shape = s.shape.as_ref()?;
            (shape.running != shape.desired)
                .then(|| (format!("{}/{}", s.stage, s.service), shape.running, shape.desired))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fargate(running: u32, vcpu: f64, memory_gb: f64) -> ServiceShape {
        ServiceShape {
            running,
            desired: running,
            vcpu,
            memory_gb,
            arm64: false,
            fargate: true,
            spot_share: 0.0,
        }
    }

    fn service(shape: ServiceShape) -> RunningService {
        RunningService {
            stage: "prod".into(),
            service: "backend-service".into(),
            shape: Some(shape),
        }
    }

    /// The seeds' own setup (003): two always-on Fargate tasks (0.5 vCPU, 2 GB, x86_64), and
    /// RDS PostgreSQL db.t3.medium, Multi-AZ, 100 GB gp3, in us-east-1.
    #[test]
    fn the_seeds_setup_costs_what_the_shipped_table_says_and_about_what_the_seeds_say() {
        let prices = shipped_prices("us-east-1").unwrap();
        let services = [service(fargate(2, 0.5, 2.0))];
        let dbs = [RunningDb {
            stage: "prod".into(),
            db: "social-analytics-db".into(),
            shape: Some(DbShape {
                engine: "postgres".into(),
                class: "db.t3.medium".into(),
                multi_az: true,
                storage_gb: 100,
                storage_type: "gp3".into(),
            }),
        }];
        let lines = estimate(&prices, &services, &dbs, &FixedItems::default());
        let fargate = lines[0].monthly.unwrap();
        let rds = lines[1].monthly.unwrap();
        // By hand: 2 × (0.5 × 0.04048 + 2 × 0.004445) × 730 = 42.53
        assert!((fargate - 42.5298).abs() < 0.01, "{fargate}");
        // By hand: 2 × (0.072 × 730 + 100 × 0.115) = 128.12
        assert!((rds - 128.12).abs() < 0.01, "{rds}");
        // The seeds' rough totals: ~$45 Fargate, ~$140 RDS.
        assert!((fargate - 45.0).abs() / 45.0 < 0.1, "{fargate}");
        assert!((rds - 140.0).abs() / 140.0 < 0.1, "{rds}");
        assert_eq!(lines[1].note, "postgres db.t3.medium Multi-AZ, 100 GB gp3");
    }

    #[test]
    fn arm64_and_spot_are_priced_by_their_own_rows_and_a_mixed_strategy_by_its_weights() {
        let prices = shipped_prices("us-east-1").unwrap();
        let mut arm = fargate(1, 1.0, 2.0);
        arm.arm64 = true;
        let on_demand = estimate(&prices, &[service(arm.clone())], &[], &FixedItems::default())[0].clone();
        // By hand: (1 × 0.03238 + 2 × 0.00356) × 730 = 28.835
        assert!((on_demand.monthly.unwrap() - 28.835).abs() < 0.001, "{on_demand:?}");
        arm.spot_share = 1.0;
        let spot = estimate(&prices, &[service(arm.clone())], &[], &FixedItems::default())[0].clone();
        // By hand: (1 × 0.009714 + 2 × 0.001068) × 730 = 8.65
        assert!((spot.monthly.unwrap() - 8.6505).abs() < 0.001, "{spot:?}");
        assert!(spot.note.ends_with("arm64, Fargate Spot"), "{}", spot.note);
        arm.spot_share = 0.5;
        let half = estimate(&prices, &[service(arm)], &[], &FixedItems::default())[0].clone();
        assert!((half.monthly.unwrap() - (28.835 + 8.6505) / 2.0).abs() < 0.001);
        assert!(half.note.ends_with("Fargate, 50% Spot"), "{}", half.note);
    }

    #[test]
    fn what_the_table_cannot_price_or_the_account_lacks_is_said_not_guessed() {
        let prices = shipped_prices("us-east-1").unwrap();
        let db = RunningDb {
            stage: "prod".into(),
            db: "odd".into(),
            shape: Some(DbShape {
                engine: "postgres".into(),
                class: "db.x99.huge".into(),
                multi_az: false,
                storage_gb: 20,
                storage_type: "gp3".into(),
            }),
        };
        let gone = RunningDb {
            shape: None,
            ..db.clone()
        };
        let mut on_ec2 = fargate(2, 1.0, 2.0);
        on_ec2.fargate = false;
        let fixed = FixedItems {
            counts: vec![("alb".into(), 1), ("vpn".into(), 1)],
            log_ingestion_gb: 10.0,
        };
        let lines = estimate(&prices, &[service(on_ec2)], &[db, gone], &fixed);
        assert_eq!(lines[0].monthly, None);
        assert!(lines[0].note.contains("EC2 launch type"), "{}", lines[0].note);
        assert_eq!(lines[1].monthly, None);
        assert_eq!((lines[2].monthly, lines[2].note.as_str()), (None, "not found in RDS"));
        assert!((lines[3].monthly.unwrap() - 0.0225 * 730.0).abs() < 1e-9);
        assert_eq!(lines[4].monthly, None);
        assert_eq!(lines[5].monthly, Some(5.0));
        assert!(shipped_prices("xx-nowhere-1").is_none());
        for region in ["us-east-2", "us-west-2"] {
            assert_eq!(shipped_prices(region).unwrap().region, region);
        }
    }

    #[test]
    fn the_pipeline_files_prices_replace_the_shipped_ones_and_say_so() {
        let overrides: PriceOverrides =
            toml::from_str("rds_instance_hour.\"postgres/db.t3.medium\" = 0.1\nfixed_hour.vpn = 0.05").unwrap();
        let table = prices_for("us-east-1", None, &overrides);
        assert_eq!(table.rds_instance_hour["postgres/db.t3.medium"], 0.1);
        assert_eq!(table.rds_instance_hour["postgres/db.t3.small"], 0.036);
        assert_eq!(table.fixed_hour["vpn"], 0.05);
        assert!(
            table.describe().ends_with("; 2 from the pipeline file"),
            "{}",
            table.describe()
        );
        let elsewhere = prices_for("eu-west-3", None, &overrides);
        assert!(
            elsewhere
                .describe()
                .starts_with("eu-west-3 as of -: no prices shipped for eu-west-3")
        );
        assert!(elsewhere.fargate.is_empty());
    }

    #[test]
    fn a_bad_price_or_unknown_fargate_row_names_its_key() {
        let parse = |text: &str| toml::from_str::<PriceOverrides>(text).unwrap().check().unwrap_err();
        assert_eq!(
            parse("fargate.graviton = { vcpu_hour = 1.0, gb_hour = 1.0 }").0,
            "fargate.\"graviton\""
        );
        assert_eq!(parse("fixed_hour.alb = -1.0").0, "fixed_hour.\"alb\"");
        assert_eq!(parse("log_ingestion_gb = nan").0, "log_ingestion_gb");
    }

    #[test]
    fn a_cost_tag_is_key_equals_value() {
        assert_eq!(
            CostTag::parse("app=social-analytics").unwrap(),
            CostTag {
                key: "app".into(),
                value: "social-analytics".into()
            }
        );
        assert!(CostTag::parse("app").is_err());
        assert!(CostTag::parse("=x").is_err());
    }

    #[test]
    fn services_short_of_their_desired_count_are_named() {
        let mut short = fargate(1, 0.5, 1.0);
        short.desired = 2;
        let services = [
            service(fargate(2, 0.5, 1.0)),
            service(short),
            RunningService {
                stage: "dev".into(),
                service: "gone".into(),
                shape: None,
            },
        ];
        assert_eq!(
            not_at_desired(&services),
            vec![("prod/backend-service".to_owned(), 1, 2)]
        );
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
    /// Only the rest of the month's, when the month to date is unavailable.
    RestOfMonth(f64),
    Unavailable(String),
}

/// A report: the estimate's lines, Cost Explorer's figures, and the last report's lines (by
/// stage and item) to show the change.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub application: String,
    /// The schedule's tick the report is for.
    pub made_for: chrono::DateTime<chrono::Utc>,
    /// What Cost Explorer's month to date covers: from the first of the month up to (not
    /// including) the day the report was made.
    pub period: (chrono::NaiveDate, chrono::NaiveDate),
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
    format!("${:.2}", not_negative_zero(amount))
}

/// An amount that rounds to zero is zero: an empty sum is -0.0 in Rust, and a month that has
/// just begun must not read `$-0.00`.
fn not_negative_zero(amount: f64) -> f64 {
    if amount.abs() < 0.005 { 0.0 } else { amount }
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
    let priced = report.lines.iter().any(|l| l.monthly.is_some());
    let figures = format!(
        ": est {}/mo, MTD {}, change {}",
        if priced { dollars(total) } else { "n/a".to_owned() },
        month_to_date.map_or("n/a".to_owned(), dollars),
        previous_total.map_or("n/a".to_owned(), |p| format!("{:+.2}", not_negative_zero(total - p))),
    );
    // The figures always fit: a long application name is what gets cut.
    let room = 99usize.saturating_sub(figures.len());
    let application: String = report.application.chars().take(room).collect();
    let subject = format!("{application}{figures}");
    let mut body = format!(
        "Cost report for the schedule's tick of {}.\n\nMonthly estimate from what runs now.\nPrices: {}.\n",
        report.made_for.format("%Y-%m-%d %H:%M UTC"),
        report.prices_source
    );
    if !priced {
        body.push_str(
            "No line could be priced: ship a table for this region in shared/prices.toml, run `pipectl prices refresh`, or set [cost.prices] in the pipeline file.\n",
        );
    }
    body.push('\n');
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
            "Left out of the total, unpriced or not found (see their lines): {}.\n",
            unpriced.join(", ")
        ));
    }
    body.push_str(&format!(
        "\nActual cost from {} up to {} (Cost Explorer):\n",
        report.period.0, report.period.1
    ));
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
        Forecast::RestOfMonth(rest) => body.push_str(&format!(
            "Forecast for the rest of the month: {} (the month to date is unavailable)\n",
            dollars(*rest)
        )),
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
    super::notice::Notice::new(super::notice::subject(subject), body)
}

#[cfg(test)]
mod report_tests {
    use super::*;

    fn report() -> Report {
        Report {
            application: "backend".into(),
            made_for: "2026-11-23T08:00:00Z".parse().unwrap(),
            period: (
                chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            ),
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
            text.contains("Left out of the total, unpriced or not found (see their lines): nat_gateway."),
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
    fn a_long_application_name_is_cut_before_the_figures_and_nothing_priced_says_so() {
        let mut long = report();
        long.application = "a-very-long-application-name+".repeat(5);
        let notice = report_notice(&long);
        assert!(notice.subject.len() <= 99, "{}", notice.subject);
        assert!(
            notice
                .subject
                .ends_with(": est $170.65/mo, MTD $100.50, change +140.65"),
            "{}",
            notice.subject
        );
        let mut unpriced = report();
        for line in &mut unpriced.lines {
            line.monthly = None;
        }
        let notice = report_notice(&unpriced);
        assert!(notice.subject.starts_with("backend: est n/a/mo"), "{}", notice.subject);
        assert!(notice.message.contains("No line could be priced"), "{}", notice.message);
        assert!(
            notice
                .message
                .contains("Cost report for the schedule's tick of 2026-11-23 08:00 UTC.")
        );
        assert!(
            notice
                .message
                .contains("Actual cost from 2026-11-01 up to 2026-11-23 (Cost Explorer):")
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
