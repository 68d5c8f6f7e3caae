//! What every function shares around its handler: start-up (logs, pipeline file, AWS
//! config), the per-service lock, and how errors reach Lambda.

pub mod errors;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
pub mod pipeline_in_force;
pub mod runtime;
pub mod service_lock;
