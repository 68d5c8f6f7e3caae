//! Cost Explorer and the Price List over the SDK. Cost Explorer: one request per figure, never
//! retried or paginated ($0.01 a request); a failure comes back as the reason the report
//! prints. The Price List: every page, only when an operator asks for a refresh.

use super::describe_sdk_error;
use crate::domain::cost::CostTag;
use crate::ports::{CostExplorer, CostExplorerError, PriceList, PriceListError};
use aws_sdk_costexplorer::types::{
    DateInterval, Expression, Granularity, GroupDefinition, GroupDefinitionType, Metric, TagValues,
};
use chrono::NaiveDate;

const UNBLENDED: &str = "UnblendedCost";

#[derive(Clone)]
pub struct AwsBilling {
    client: aws_sdk_costexplorer::Client,
    price_list: aws_sdk_pricing::Client,
}

/// The Price List's endpoint region (it answers for every region from there).
const PRICE_LIST_REGION: &str = "us-east-1";

impl AwsBilling {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let once = aws_sdk_costexplorer::config::Builder::from(config)
            .retry_config(aws_sdk_costexplorer::config::retry::RetryConfig::disabled())
            .build();
        let price_list = aws_sdk_pricing::config::Builder::from(config)
            .region(aws_config::Region::new(PRICE_LIST_REGION))
            .build();
        Self {
            client: aws_sdk_costexplorer::Client::from_conf(once),
            price_list: aws_sdk_pricing::Client::from_conf(price_list),
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

impl CostExplorer for AwsBilling {
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
        // A second page would be a second paid request: a partial month to date is not shown.
        if out.next_page_token().is_some_and(|t| !t.is_empty()) {
            return Err(CostExplorerError(
                "GetCostAndUsage: the answer has more than one page (not read: each page is a paid request)".into(),
            ));
        }
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

impl PriceList for AwsBilling {
    async fn products(
        &self,
        service: &str,
        filters: &[(&str, &str)],
        region: &str,
    ) -> Result<Vec<String>, PriceListError> {
        use aws_sdk_pricing::types::{Filter, FilterType};
        let filter = |field: &str, value: &str| {
            Filter::builder()
                .r#type(FilterType::TermMatch)
                .field(field)
                .value(value)
                .build()
                .map_err(|err| PriceListError(format!("filter {field}: {err}")))
        };
        let mut request = self
            .price_list
            .get_products()
            .service_code(service)
            .format_version("aws_v1")
            .max_results(100)
            .filters(filter("regionCode", region)?);
        for (field, value) in filters {
            request = request.filters(filter(field, value)?);
        }
        let mut products = Vec::new();
        let mut pages = request.into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| PriceListError(describe_sdk_error("GetProducts", &err)))?;
            products.extend(page.price_list().iter().cloned());
        }
        Ok(products)
    }
}
