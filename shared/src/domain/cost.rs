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
