//! Validated newtypes and pure rules: parse, don't validate.

pub mod access;
pub mod assistant;
pub mod handoff;
pub mod ids;
pub mod knowledge_gap;
pub mod pagination;
pub mod reply_failure;
pub mod request_log;
pub mod source_failure;
pub mod template;
