//! A price table from the AWS Price List (GetProducts): which products to ask for, and how
//! their on-demand prices fill the table's rows. Pure: the cost report function asks, and
//! only when told to (an opt-in, never on the report path).

use super::cost::{FargatePrice, PriceTable};
use serde_json::Value;

/// One GetProducts question: a service code and the attributes (TERM_MATCH) it filters on,
/// besides `regionCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductQuery {
    pub service: &'static str,
    pub filters: Vec<(&'static str, &'static str)>,
}

/// The Price List's engine names, and the RDS engine each is (DescribeDBInstances' `engine`).
const ENGINES: [(&str, &str); 3] = [("PostgreSQL", "postgres"), ("MySQL", "mysql"), ("MariaDB", "mariadb")];

/// RDS storage by the Price List's `volumeType`, and the RDS storage type each is.
const VOLUMES: [(&str, &str); 5] = [
    ("General Purpose", "gp2"),
    ("General Purpose-GP3", "gp3"),
    ("Provisioned IOPS", "io1"),
    ("Provisioned IOPS-IO2", "io2"),
    ("Magnetic", "standard"),
];

/// In the region itself (not a Local Zone or an Outpost of it).
const IN_REGION: (&str, &str) = ("locationType", "AWS Region");

/// What to ask the Price List for: Fargate, RDS instances per engine, RDS storage, the load
/// balancer, the NAT gateway, log ingestion.
pub fn queries() -> Vec<ProductQuery> {
    let mut queries = vec![ProductQuery {
        service: "AmazonECS",
        filters: vec![("productFamily", "Compute"), IN_REGION],
    }];
    for (engine, _) in ENGINES {
        queries.push(ProductQuery {
            service: "AmazonRDS",
            filters: vec![
                ("productFamily", "Database Instance"),
                ("databaseEngine", engine),
                ("deploymentOption", "Single-AZ"),
                ("licenseModel", "No license required"),
                IN_REGION,
            ],
        });
    }
    queries.extend([
        ProductQuery {
            service: "AmazonRDS",
            filters: vec![
                ("productFamily", "Database Storage"),
                ("deploymentOption", "Single-AZ"),
                IN_REGION,
            ],
        },
        ProductQuery {
            service: "AWSELB",
            filters: vec![("productFamily", "Load Balancer-Application"), IN_REGION],
        },
        ProductQuery {
            service: "AmazonEC2",
            filters: vec![("productFamily", "NAT Gateway"), IN_REGION],
        },
        ProductQuery {
            service: "AmazonCloudWatch",
            filters: vec![("productFamily", "Data Payload"), IN_REGION],
        },
    ]);
    queries
}

/// A product's on-demand price in USD: its first tier (`beginRange` 0), whatever the offer
/// and rate codes are.
pub fn on_demand_usd(product: &Value) -> Option<f64> {
    let terms = product["terms"]["OnDemand"].as_object()?;
    terms
        .values()
        .filter_map(|term| term["priceDimensions"].as_object())
        .flat_map(|dimensions| dimensions.values())
        .find(|d| d["beginRange"].as_str().is_none_or(|b| b == "0"))
        .and_then(|d| d["pricePerUnit"]["USD"].as_str()?.parse().ok())
}

/// Whether `usage` is `name`, with or without a region prefix (`USE1-`, `EU-`, none in
/// some of us-east-1's).
fn usage_is(usage: &str, name: &str) -> bool {
    usage == name
        || usage.strip_suffix(name).is_some_and(|prefix| {
            prefix.ends_with('-')
                && prefix[..prefix.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// The row a product fills, and its price: `("fargate", "arm64/spot.vcpu")`-like keys.
fn row_of(product: &Value) -> Option<(String, f64)> {
    let attributes = &product["product"]["attributes"];
    let text = |name: &str| attributes[name].as_str().unwrap_or_default();
    let family = product["product"]["productFamily"].as_str().unwrap_or_default();
    let usage = text("usagetype");
    let price = on_demand_usd(product)?;
    let service = product["serviceCode"].as_str().unwrap_or(text("servicecode"));
    let row = match (service, family) {
        ("AmazonECS", _) => {
            let fargate = [
                ("SpotUsage-Fargate-ARM-vCPU-Hours:perCPU", "arm64/spot vcpu"),
                ("SpotUsage-Fargate-ARM-GB-Hours", "arm64/spot gb"),
                ("SpotUsage-Fargate-vCPU-Hours:perCPU", "x86_64/spot vcpu"),
                ("SpotUsage-Fargate-GB-Hours", "x86_64/spot gb"),
                ("Fargate-ARM-vCPU-Hours:perCPU", "arm64 vcpu"),
                ("Fargate-ARM-GB-Hours", "arm64 gb"),
                ("Fargate-vCPU-Hours:perCPU", "x86_64 vcpu"),
                ("Fargate-GB-Hours", "x86_64 gb"),
            ];
            let (_, row) = fargate.iter().find(|(name, _)| usage_is(usage, name))?;
            format!("fargate {row}")
        }
        ("AmazonRDS", "Database Instance") if usage.contains("InstanceUsage:") => {
            let (_, engine) = ENGINES.iter().find(|(name, _)| *name == text("databaseEngine"))?;
            format!("rds_instance_hour {engine}/{}", text("instanceType"))
        }
        ("AmazonRDS", "Database Storage") if !usage.contains("Multi-AZ") => {
            let (_, storage) = VOLUMES.iter().find(|(name, _)| *name == text("volumeType"))?;
            format!("rds_storage_gb_month {storage}")
        }
        ("AWSELB", _) if usage_is(usage, "LoadBalancerUsage") => "fixed_hour alb".to_owned(),
        ("AmazonEC2", _) if usage_is(usage, "NatGateway-Hours") => "fixed_hour nat_gateway".to_owned(),
        ("AmazonCloudWatch", _) if usage_is(usage, "DataProcessing-Bytes") => "log_ingestion_gb".to_owned(),
        _ => return None,
    };
    Some((row, price))
}

/// What a refresh found: the table, and the rows it kept from `base` because the Price List
/// had none.
#[derive(Clone, Debug, PartialEq)]
pub struct Refreshed {
    pub table: PriceTable,
    pub found: usize,
    pub kept_from_base: Vec<String>,
}

/// A table for `region` from the Price List's `products` (GetProducts' JSON documents), over
/// `base` (the shipped table, or an empty one): a row the Price List has replaces the base's,
/// a row it lacks stays as it was. `None` when no product fills any row.
pub fn refreshed_table(region: &str, as_of: &str, base: PriceTable, products: &[String]) -> Option<Refreshed> {
    let mut table = base;
    let mut found = std::collections::BTreeSet::new();
    let mut fargate_parts: std::collections::BTreeMap<String, (Option<f64>, Option<f64>)> = Default::default();
    for product in products {
        let Ok(product) = serde_json::from_str::<Value>(product) else {
            continue;
        };
        if product["product"]["attributes"]["regionCode"]
            .as_str()
            .is_some_and(|r| r != region)
        {
            continue;
        }
        let Some((row, price)) = row_of(&product) else {
            continue;
        };
        // The first product for a row wins: the Price List may list a row twice.
        if !found.insert(row.clone()) {
            continue;
        }
        let mut words = row.splitn(2, ' ');
        match (words.next(), words.next()) {
            (Some("fargate"), Some(rest)) => {
                let (key, unit) = rest.split_once(' ').expect("fargate rows name a unit");
                let part = fargate_parts.entry(key.to_owned()).or_default();
                if unit == "vcpu" {
                    part.0 = Some(price);
                } else {
                    part.1 = Some(price);
                }
            }
            (Some("rds_instance_hour"), Some(key)) => {
                table.rds_instance_hour.insert(key.to_owned(), price);
            }
            (Some("rds_storage_gb_month"), Some(key)) => {
                table.rds_storage_gb_month.insert(key.to_owned(), price);
            }
            (Some("fixed_hour"), Some(key)) => {
                table.fixed_hour.insert(key.to_owned(), price);
            }
            (Some("log_ingestion_gb"), None) => table.log_ingestion_gb = Some(price),
            _ => {}
        }
    }
    // A Fargate row is one architecture and provider's vCPU and GB prices, both found.
    let mut fargate_rows = 0;
    for (key, parts) in fargate_parts {
        if let (Some(vcpu_hour), Some(gb_hour)) = parts {
            table.fargate.insert(key, FargatePrice { vcpu_hour, gb_hour });
            fargate_rows += 1;
        }
    }
    let rows = |prefix: &str| found.iter().filter(|r| r.starts_with(prefix)).count();
    let found_rows = fargate_rows + found.len() - rows("fargate ");
    if found_rows == 0 {
        return None;
    }
    let mut kept_from_base: Vec<String> = Vec::new();
    for key in table.fargate.keys() {
        if !found.contains(&format!("fargate {key} vcpu")) || !found.contains(&format!("fargate {key} gb")) {
            kept_from_base.push(format!("fargate.{key}"));
        }
    }
    for (section, keys) in [
        ("rds_instance_hour", table.rds_instance_hour.keys().collect::<Vec<_>>()),
        ("rds_storage_gb_month", table.rds_storage_gb_month.keys().collect()),
        ("fixed_hour", table.fixed_hour.keys().collect()),
    ] {
        for key in keys {
            if !found.contains(&format!("{section} {key}")) {
                kept_from_base.push(format!("{section}.{key}"));
            }
        }
    }
    if table.log_ingestion_gb.is_some() && !found.contains("log_ingestion_gb") {
        kept_from_base.push("log_ingestion_gb".into());
    }
    table.region = region.to_owned();
    table.as_of = as_of.to_owned();
    table.source = if kept_from_base.is_empty() {
        "the AWS Price List (GetProducts), on-demand".to_owned()
    } else {
        format!(
            "the AWS Price List (GetProducts), on-demand; {} row(s) it lacks as before",
            kept_from_base.len()
        )
    };
    Some(Refreshed {
        table,
        found: found_rows,
        kept_from_base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::cost::shipped_prices;
    use crate::domain::fixtures::price_list_product as product;

    fn fargate(usage: &str, price: &str) -> String {
        product("AmazonECS", "Compute", &[("usagetype", usage)], price)
    }

    fn answers() -> Vec<String> {
        vec![
            fargate("USE1-Fargate-vCPU-Hours:perCPU", "0.0404800000"),
            fargate("USE1-Fargate-GB-Hours", "0.0044450000"),
            fargate("USE1-Fargate-ARM-vCPU-Hours:perCPU", "0.0323800000"),
            fargate("USE1-Fargate-ARM-GB-Hours", "0.0035600000"),
            fargate("USE1-Fargate-Windows-vCPU-Hours:perCPU", "0.0465400000"),
            product(
                "AmazonECS",
                "Compute Metering",
                &[("usagetype", "USE1-ECS-EC2-vCPU-Hours")],
                "0",
            ),
            product(
                "AmazonRDS",
                "Database Instance",
                &[
                    ("usagetype", "InstanceUsage:db.t3.medium"),
                    ("databaseEngine", "PostgreSQL"),
                    ("instanceType", "db.t3.medium"),
                ],
                "0.0730000000",
            ),
            product(
                "AmazonRDS",
                "Database Instance",
                &[
                    ("usagetype", "InstanceUsage:db.r7g.large"),
                    ("databaseEngine", "PostgreSQL"),
                    ("instanceType", "db.r7g.large"),
                ],
                "0.2420000000",
            ),
            product(
                "AmazonRDS",
                "Database Storage",
                &[("usagetype", "RDS:GP3-Storage"), ("volumeType", "General Purpose-GP3")],
                "0.1150000000",
            ),
            product(
                "AmazonRDS",
                "Database Storage",
                &[
                    ("usagetype", "RDS:Multi-AZ-GP3-Storage"),
                    ("volumeType", "General Purpose-GP3"),
                ],
                "0.2300000000",
            ),
            product(
                "AWSELB",
                "Load Balancer-Application",
                &[("usagetype", "LoadBalancerUsage")],
                "0.0225000000",
            ),
            product(
                "AmazonEC2",
                "NAT Gateway",
                &[("usagetype", "NatGateway-Hours")],
                "0.0450000000",
            ),
            product(
                "AmazonCloudWatch",
                "Data Payload",
                &[("usagetype", "USE1-DataProcessing-Bytes")],
                "0.5000000000",
            ),
            product(
                "AmazonEC2",
                "NAT Gateway",
                &[("usagetype", "NatGateway-Hours"), ("regionCode", "eu-west-1")],
                "0.048",
            ),
        ]
    }

    #[test]
    fn the_price_lists_products_fill_their_rows_and_the_rest_stays_as_shipped() {
        let shipped = shipped_prices("us-east-1").unwrap();
        let refreshed = refreshed_table("us-east-1", "2026-11-23", shipped, &answers()).unwrap();
        let table = &refreshed.table;
        assert_eq!(table.fargate["x86_64"].vcpu_hour, 0.04048);
        assert_eq!(table.fargate["arm64"].gb_hour, 0.00356);
        assert_eq!(table.rds_instance_hour["postgres/db.t3.medium"], 0.073);
        assert_eq!(table.rds_instance_hour["postgres/db.r7g.large"], 0.242);
        assert_eq!(
            table.rds_storage_gb_month["gp3"], 0.115,
            "the Single-AZ price, not Multi-AZ's"
        );
        assert_eq!(table.fixed_hour["nat_gateway"], 0.045, "us-east-1's, not eu-west-1's");
        assert_eq!(table.fixed_hour["alb"], 0.0225);
        assert_eq!(table.log_ingestion_gb, Some(0.5));
        // 2 Fargate rows, 2 classes, gp3, ALB, NAT, logs.
        assert_eq!(refreshed.found, 8);
        assert!(refreshed.kept_from_base.contains(&"fargate.x86_64/spot".to_owned()));
        assert!(
            refreshed
                .kept_from_base
                .contains(&"rds_instance_hour.postgres/db.t3.micro".to_owned())
        );
        assert!(!refreshed.kept_from_base.contains(&"fixed_hour.alb".to_owned()));
        assert_eq!(table.fargate["x86_64/spot"].vcpu_hour, 0.012144, "kept as shipped");
        assert_eq!(table.as_of, "2026-11-23");
        assert!(
            table.source.starts_with("the AWS Price List (GetProducts)"),
            "{}",
            table.source
        );
    }

    #[test]
    fn a_region_without_a_shipped_table_gets_only_what_the_price_list_has() {
        let refreshed = refreshed_table("us-east-1", "2026-11-23", PriceTable::empty("us-east-1"), &answers()).unwrap();
        assert!(refreshed.kept_from_base.is_empty());
        assert_eq!(refreshed.table.source, "the AWS Price List (GetProducts), on-demand");
        assert!(!refreshed.table.fargate.contains_key("x86_64/spot"));
        assert!(refreshed_table("us-east-1", "2026-11-23", PriceTable::empty("us-east-1"), &[]).is_none());
        assert!(
            refreshed_table(
                "us-east-1",
                "2026-11-23",
                PriceTable::empty("us-east-1"),
                &["{not json".into()]
            )
            .is_none()
        );
    }

    #[test]
    fn a_tiered_price_is_read_at_its_first_tier_and_prefixes_are_optional() {
        let mut tiered: Value = serde_json::from_str(&answers()[12]).unwrap();
        tiered["terms"]["OnDemand"]["SKU1.JRTCKXETXF"]["priceDimensions"] = serde_json::json!({
            "a": {"beginRange": "10240", "pricePerUnit": {"USD": "0.25"}},
            "b": {"beginRange": "0", "pricePerUnit": {"USD": "0.50"}}
        });
        assert_eq!(on_demand_usd(&tiered), Some(0.5));
        assert!(usage_is("USE1-Fargate-GB-Hours", "Fargate-GB-Hours"));
        assert!(usage_is("EU-LoadBalancerUsage", "LoadBalancerUsage"));
        assert!(usage_is("NatGateway-Hours", "NatGateway-Hours"));
        assert!(!usage_is("USE1-Fargate-ARM-GB-Hours", "Fargate-GB-Hours"));
        assert!(!usage_is("USE1-SpotUsage-Fargate-GB-Hours", "Fargate-GB-Hours"));
    }
}
