//! One module per capability. Services own validation, authorization by scope and
//! transactions; they are reached only with a [`Principal`](crate::auth::Principal) (or, for
//! operator commands, an explicit organization id).

pub mod api_keys;
pub mod assistants;
pub mod conversations;
pub mod feedback;
pub mod knowledge;
pub mod organizations;
pub mod replies;
pub mod retrieval;
pub mod sessions;
