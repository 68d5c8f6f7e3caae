//! Pure decisions from data: no I/O, no clock (the time is passed in), no AWS SDK.

pub mod alarm;
pub mod approval;
pub mod approval_page;
pub mod cost;
pub mod db_restore;
pub mod deployment;
pub mod deployment_end;
pub mod emergency;
pub mod metrics;
pub mod names;
pub mod notice;
pub mod pipeline;
pub mod price_list;
pub mod promotion;
pub mod push;
pub mod retention;
pub mod rollback_plan;
pub mod schedule;
pub mod tag_rule;
pub mod taskdef;

#[cfg(any(test, feature = "fakes"))]
pub mod fixtures;
