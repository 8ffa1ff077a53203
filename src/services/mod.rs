//! One module per capability. Services own validation, authorization by scope and
//! transactions; they are reached only with a [`Principal`](crate::auth::Principal) (or, for
//! operator commands, an explicit organization id).

pub mod analytics;
pub mod api_keys;
pub mod assistants;
pub mod conversations;
pub mod feedback;
pub mod knowledge;
pub mod oauth_apps;
pub mod organizations;
pub mod rate_limits;
pub mod replies;
pub mod retrieval;
pub mod sandbox;
pub mod sessions;
pub mod webhooks;
