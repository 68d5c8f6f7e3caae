//! The library every deployment handler shares: pure domain decisions (`domain`), the narrow
//! interfaces they need (`ports`), their AWS implementations (`adapters`), and the handlers.

pub mod adapters;
pub mod deploy_on_push;
pub mod domain;
pub mod ports;
pub mod rollback_on_alarm;
pub mod rollbacks;
pub mod runtime;
pub mod service_lock;
pub mod track_deployment;
