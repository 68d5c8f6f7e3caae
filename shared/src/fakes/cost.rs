//! The cost report's ports in memory: the inventory, Cost Explorer and the Price List, the kept
//! report and price table.

use super::MemoryRecords;
use crate::domain::cost::{CostTag, DbShape, PriceTable, ServiceShape};
use crate::domain::names::{ClusterName, DbInstanceId, ServiceName};
use crate::ports::{
    CostExplorer, CostExplorerError, CostReports, DbInventory, EcsError, KeptReport, PriceList, PriceListError,
    ServiceInventory, SnapshotError, StoreError,
};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

impl MemoryRecords {
    /// Has another delivery keep `report` just before the next `keep_report`: a lost race.
    pub fn race_report(&self, report: KeptReport) {
        *self.racing_report.lock().unwrap() = Some(report);
    }
}

impl CostReports for MemoryRecords {
    async fn last_report(&self) -> Result<Option<KeptReport>, StoreError> {
        Ok(self.tables.lock().unwrap().cost_report.clone())
    }

    async fn keep_report(&self, report: &KeptReport) -> Result<bool, StoreError> {
        let mut tables = self.tables.lock().unwrap();
        if let Some(racing) = self.racing_report.lock().unwrap().take() {
            tables.cost_report = Some(racing);
        }
        if tables.cost_report.as_ref().is_some_and(|kept| kept.tick >= report.tick) {
            return Ok(false);
        }
        tables.cost_report = Some(report.clone());
        Ok(true)
    }

    async fn kept_prices(&self) -> Result<Option<PriceTable>, StoreError> {
        Ok(self.tables.lock().unwrap().price_table.clone())
    }

    async fn keep_prices(&self, table: &PriceTable) -> Result<(), StoreError> {
        self.tables.lock().unwrap().price_table = Some(table.clone());
        Ok(())
    }
}

/// ECS services and RDS instances as set; any other is not found. Clones share it.
#[derive(Clone, Default)]
pub struct FakeInventory {
    services: Arc<Mutex<HashMap<(String, String), ServiceShape>>>,
    dbs: Arc<Mutex<HashMap<String, DbShape>>>,
    throttled: Arc<Mutex<bool>>,
}

impl FakeInventory {
    pub fn set_service(&self, cluster: &str, service: &str, shape: ServiceShape) {
        self.services
            .lock()
            .unwrap()
            .insert((cluster.to_owned(), service.to_owned()), shape);
    }

    pub fn set_db(&self, db: &str, shape: DbShape) {
        self.dbs.lock().unwrap().insert(db.to_owned(), shape);
    }

    /// Makes every describe call fail as throttled, or succeed again.
    pub fn throttle(&self, throttled: bool) {
        *self.throttled.lock().unwrap() = throttled;
    }
}

impl ServiceInventory for FakeInventory {
    async fn service_shape(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> Result<Option<ServiceShape>, EcsError> {
        if *self.throttled.lock().unwrap() {
            return Err(EcsError::Transient("DescribeServices: ThrottlingException".into()));
        }
        Ok(self
            .services
            .lock()
            .unwrap()
            .get(&(cluster.to_string(), service.to_string()))
            .cloned())
    }
}

impl DbInventory for FakeInventory {
    async fn db_shape(&self, db: &DbInstanceId) -> Result<Option<DbShape>, SnapshotError> {
        if *self.throttled.lock().unwrap() {
            return Err(SnapshotError::Transient("DescribeDBInstances: Throttling".into()));
        }
        Ok(self.dbs.lock().unwrap().get(db.as_str()).cloned())
    }
}

/// Cost Explorer and the Price List answering what they are told, and counting the calls.
/// Clones share it.
#[derive(Clone, Default)]
pub struct FakeBilling {
    answers: Arc<Mutex<CostAnswers>>,
}

#[derive(Default)]
struct CostAnswers {
    by_service: Option<Vec<(String, f64)>>,
    forecast: Option<f64>,
    /// The Price List's products by service code; `None` makes its calls fail.
    products: Option<HashMap<String, Vec<String>>>,
    calls: Vec<String>,
}

impl FakeBilling {
    /// The month to date by service; `None` makes the call fail.
    pub fn answer_costs(&self, costs: Option<Vec<(&str, f64)>>) {
        self.answers.lock().unwrap().by_service =
            costs.map(|costs| costs.into_iter().map(|(s, c)| (s.to_owned(), c)).collect());
    }

    /// The rest of the month's forecast; `None` makes the call fail.
    pub fn answer_forecast(&self, forecast: Option<f64>) {
        self.answers.lock().unwrap().forecast = forecast;
    }

    /// The Price List's products of `service`; `None` makes every GetProducts fail.
    pub fn answer_products(&self, products: Option<(&str, Vec<String>)>) {
        let mut answers = self.answers.lock().unwrap();
        match products {
            Some((service, list)) => {
                answers
                    .products
                    .get_or_insert_with(HashMap::new)
                    .insert(service.to_owned(), list);
            }
            None => answers.products = None,
        }
    }

    /// The calls made: `<operation> <from>..<to> <tag>`, `GetProducts <service> <region>`.
    pub fn calls(&self) -> Vec<String> {
        self.answers.lock().unwrap().calls.clone()
    }
}

fn call(operation: &str, from: NaiveDate, to: NaiveDate, tag: Option<&CostTag>) -> String {
    format!(
        "{operation} {from}..{to} {}",
        tag.map_or("-".to_owned(), |t| t.to_string())
    )
}

impl CostExplorer for FakeBilling {
    async fn cost_by_service(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tag: Option<&CostTag>,
    ) -> Result<Vec<(String, f64)>, CostExplorerError> {
        let mut answers = self.answers.lock().unwrap();
        answers.calls.push(call("GetCostAndUsage", from, to, tag));
        answers
            .by_service
            .clone()
            .ok_or_else(|| CostExplorerError("GetCostAndUsage: AccessDeniedException: not enabled".into()))
    }

    async fn forecast(&self, from: NaiveDate, to: NaiveDate, tag: Option<&CostTag>) -> Result<f64, CostExplorerError> {
        let mut answers = self.answers.lock().unwrap();
        answers.calls.push(call("GetCostForecast", from, to, tag));
        answers
            .forecast
            .ok_or_else(|| CostExplorerError("GetCostForecast: DataUnavailableException: not enough data".into()))
    }
}

impl PriceList for FakeBilling {
    async fn products(
        &self,
        service: &str,
        _filters: &[(&str, &str)],
        region: &str,
    ) -> Result<Vec<String>, PriceListError> {
        let mut answers = self.answers.lock().unwrap();
        answers.calls.push(format!("GetProducts {service} {region}"));
        let products = answers
            .products
            .as_ref()
            .ok_or_else(|| PriceListError("GetProducts: ThrottlingException: Rate exceeded".into()))?;
        Ok(products.get(service).cloned().unwrap_or_default())
    }
}
