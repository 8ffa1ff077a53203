//! Validated newtypes and pure rules: parse, don't validate.

pub mod assistant;
pub mod ids;
pub mod pagination;
pub mod template;
