//! AWS SDK implementations of the ports: thin, no decisions.

pub mod dynamo;
pub mod ecs;
pub mod sns;
