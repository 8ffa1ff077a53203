//! One module per capability. Services own validation, transactions, and the scope check
//! that turns the caller's [`Principal`](crate::auth::Principal) into the
//! [`Tenant`](crate::auth::Tenant) handle every read and write goes through (operator
//! commands take an explicit organization id).

pub mod analytics;
pub mod api_keys;
pub mod assistants;
pub mod completions;
pub mod conversations;
pub mod feedback;
pub mod handoff;
pub mod idempotency;
pub mod knowledge;
pub mod knowledge_gaps;
pub mod oauth_apps;
pub mod organizations;
pub mod outcomes;
pub mod rate_limits;
pub mod replies;
pub mod retrieval;
pub mod sandbox;
pub mod sessions;
pub mod webhooks;
