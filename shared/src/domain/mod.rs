//! Pure decisions from data: no I/O, no clock, no AWS calls.

pub mod deployment;
pub mod ecs_event;
pub mod names;
pub mod pipeline;
pub mod push;
pub mod rollback;
pub mod tag_rule;
pub mod taskdef;
