//! API types shared by both transports: GraphQL objects and inputs (camelCase there) that
//! are also the REST JSON bodies (snake_case there). Entities are never exposed directly.

pub mod analytics;
pub mod api_keys;
pub mod assistants;
pub mod common;
pub mod conversations;
pub mod handoff;
pub mod knowledge;
pub mod knowledge_gaps;
pub mod oauth_apps;
pub mod organizations;
pub mod outcomes;
pub mod rate_limits;
pub mod sessions;
pub mod webhooks;
