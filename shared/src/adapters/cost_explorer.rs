//! Cost Explorer over the SDK: one request per figure, never retried or paginated ($0.01 a
//! request); a failure comes back as the reason the report prints.

use super::describe_sdk_error;
use crate::domain::cost::CostTag;
use crate::ports::{CostExplorer, CostExplorerError};
use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, GroupDefinition, GroupDefinitionType, Metric, TagValues,
};
use chrono::NaiveDate;

const UNBLENDED: &str = "UnblendedCost";

pub struct CostExplorerAdapter {
    client: aws_sdk_costexplorer::Client,
}

impl CostExplorerAdapter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let once = aws_sdk_costexplorer::config::Builder::from(config)
            .retry_config(aws_sdk_costexplorer::config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_costexplorer::Client::from_conf(once),
        }
    }
}

fn period(from: NaiveDate, to: NaiveDate) -> Result<DateInterval, CostExplorerError> {
    DateInterval::builder()
        .start(from.format("%Y-%m-%d").to_string())
        .end(to.format("%Y-%m-%d").to_string())
        .build()
        .map_err(|err| CostExplorerError(format!("time period: {err}")))
}

fn tag_filter(tag: Option<&CostTag>) -> Option<Expression> {
    tag.map(|tag| {
        Expression::builder()
            .tags(TagValues::builder().key(&tag.key).values(&tag.value).build())
            .build()
    })
}

fn amount(text: Option<&str>, what: &str) -> Result<f64, CostExplorerError> {
    text.and_then(|a| a.parse().ok())
        .ok_or_else(|| CostExplorerError(format!("{what}: no amount in the answer")))
}

impl CostExplorer for CostExplorerAdapter {
    async fn cost_by_service(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tag: Option<&CostTag>,
    ) -> Result<Vec<(String, f64)>, CostExplorerError> {
        let out = self
            .client
            .get_cost_and_usage()
            .time_period(period(from, to)?)
            .granularity(Granularity::Monthly)
            .metrics(UNBLENDED)
            .group_by(
                GroupDefinition::builder()
                    .r#type(GroupDefinitionType::Dimension)
                    .key("SERVICE")
                    .build(),
            )
            .set_filter(tag_filter(tag))
            .send()
            .await
            .map_err(|err| CostExplorerError(describe_sdk_error("GetCostAndUsage", &err)))?;
        let mut by_service: Vec<(String, f64)> = Vec::new();
        for result in out.results_by_time() {
            for group in result.groups() {
                let service = group.keys().first().cloned().unwrap_or_else(|| "(no service)".into());
                let cost = amount(
                    group.metrics().and_then(|m| m.get(UNBLENDED)).and_then(|m| m.amount()),
                    "GetCostAndUsage",
                )?;
                match by_service.iter_mut().find(|(s, _)| *s == service) {
                    Some((_, sum)) => *sum += cost,
                    None => by_service.push((service, cost)),
                }
            }
        }
        Ok(by_service)
    }

    async fn forecast(&self, from: NaiveDate, to: NaiveDate, tag: Option<&CostTag>) -> Result<f64, CostExplorerError> {
        let out = self
            .client
            .get_cost_forecast()
            .time_period(period(from, to)?)
            .granularity(Granularity::Monthly)
            .metric(Metric::UnblendedCost)
            .set_filter(tag_filter(tag))
            .send()
            .await
            .map_err(|err| CostExplorerError(describe_sdk_error("GetCostForecast", &err)))?;
        amount(out.total().and_then(|t| t.amount()), "GetCostForecast")
    }
}
