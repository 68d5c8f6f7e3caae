//! One integration-test binary: every test starts its own moto server on a free port.

mod approval;
mod binaries;
mod break_glass;
mod browser;
mod cost_report;
mod deploy_on_push;
mod fault_matrix;
mod faults;
mod forgery;
mod iam;
mod pipectl;
mod rollback;
mod scheduled_snapshots;
mod snapshots;
mod support;
mod track_deployment;
