//! Who is calling: API keys (and their secrets), scopes, and the organization boundary.
//!
//! Every request that reaches a service carries a [`Principal`], which is the only way to
//! name an organization on a request path: services and repositories take it (or its
//! [`OrgId`](crate::domain::ids::OrgId)), so a query without the organization filter cannot
//! be written by accident.

pub mod api_key;
mod authenticate;
pub mod jwt;
mod principal;
pub mod widget_token;

pub(crate) use authenticate::grant_of;
pub use authenticate::{API_KEY_HEADER, API_SECRET_HEADER, authenticate};
pub use principal::{Principal, Scope, Scopes, WidgetGrant};
