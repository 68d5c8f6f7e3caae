//! The library every deployment handler shares:
//! - `events`: the events the functions receive, as AWS sends them;
//! - `domain`: pure decisions from data (no I/O, no clock, no SDK);
//! - `ports`: the narrow interfaces the handlers need, one per capability;
//! - `handlers`: one module per function, written against the ports;
//! - `adapters`: the ports over the AWS SDK, each behind its SDK's cargo feature;
//! - `fakes`: the ports in memory, for handler unit tests (feature `fakes`);
//! - `lambda`: start-up, the per-service lock, and how errors reach Lambda.

#[cfg(feature = "aws")]
pub mod adapters;
pub mod domain;
pub mod events;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod handlers;
pub mod lambda;
pub mod ports;
