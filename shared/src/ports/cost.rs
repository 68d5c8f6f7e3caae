//! What the cost report needs: how the pipeline's services and DBs run (ECS, RDS), what Cost
//! Explorer says, and the last report (kept in the table, for the change and `pipectl cost`).

use super::{EcsError, SnapshotError, StoreError};
use crate::domain::cost::{CostTag, DbShape, PriceTable, ServiceShape};
use crate::domain::names::{ClusterName, DbInstanceId, ServiceName};
use crate::domain::notice::Notice;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::future::Future;

/// How an ECS service runs: its counts, and its task definition's size and platform.
pub trait ServiceInventory: Send + Sync {
    /// `None` when the cluster has no such (active) service.
    fn service_shape(
        &self,
        cluster: &ClusterName,
        service: &ServiceName,
    ) -> impl Future<Output = Result<Option<ServiceShape>, EcsError>> + Send;
}

/// How an RDS instance runs: engine, class, Multi-AZ, storage.
pub trait DbInventory: Send + Sync {
    /// `None` when RDS has no such instance.
    fn db_shape(&self, db: &DbInstanceId) -> impl Future<Output = Result<Option<DbShape>, SnapshotError>> + Send;
}

/// A Cost Explorer call that failed; the report goes out without its figure, labelled.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CostExplorerError(pub String);

/// Cost Explorer, one call per figure ($0.01 each), never paginated.
pub trait CostExplorer: Send + Sync {
    /// The unblended cost from `from` up to (not including) `to`, by AWS service.
    fn cost_by_service(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tag: Option<&CostTag>,
    ) -> impl Future<Output = Result<Vec<(String, f64)>, CostExplorerError>> + Send;

    /// The forecast unblended cost from `from` up to (not including) `to`.
    fn forecast(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tag: Option<&CostTag>,
    ) -> impl Future<Output = Result<f64, CostExplorerError>> + Send;
}

/// A Price List call that failed; the refresh keeps nothing.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PriceListError(pub String);

/// The AWS Price List (GetProducts): read only when an operator asks for a refresh.
pub trait PriceList: Send + Sync {
    /// Every product of `service` in `region` whose attributes match `filters`, as the Price
    /// List's JSON documents, every page.
    fn products(
        &self,
        service: &str,
        filters: &[(&str, &str)],
        region: &str,
    ) -> impl Future<Output = Result<Vec<String>, PriceListError>> + Send;
}

/// A report as kept: the tick it was made for, what was sent, and its lines' estimates (by
/// `stage|item`) for the next report's change.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptReport {
    pub tick: DateTime<Utc>,
    pub notice: Notice,
    pub lines: BTreeMap<String, f64>,
}

pub trait CostReports: Send + Sync {
    fn last_report(&self) -> impl Future<Output = Result<Option<KeptReport>, StoreError>> + Send;

    /// Keeps `report` as the last one, unless one for its tick or a later one is kept already
    /// (`false`: a concurrent or earlier delivery made it).
    fn keep_report(&self, report: &KeptReport) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The table the last Price List refresh made, if one was.
    fn kept_prices(&self) -> impl Future<Output = Result<Option<PriceTable>, StoreError>> + Send;

    fn keep_prices(&self, table: &PriceTable) -> impl Future<Output = Result<(), StoreError>> + Send;
}
