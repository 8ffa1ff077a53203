//! Who is calling: the authenticator chain (API keys and their secrets, widget tokens, the
//! customer's own identity provider, and whatever a deployment adds), scopes, and the
//! organization boundary.
//!
//! Every request that reaches a service carries a [`Principal`], which is the only way to
//! name an organization on a request path: services and repositories take it (or its
//! [`OrgId`](crate::domain::ids::OrgId)), so a query without the organization filter cannot
//! be written by accident.

pub mod api_key;
mod builtin;
pub mod chain;
mod external_jwt;
mod jwks;
pub mod jwt;
mod principal;
pub mod widget_token;

pub(crate) use builtin::grant_of;
pub use builtin::{
    API_KEY_HEADER, API_SECRET_HEADER, ApiKeyAuthenticator, WidgetTokenAuthenticator,
};
pub use chain::{AuthChain, Authenticator, Credentials};
pub use external_jwt::ExternalJwtAuthenticator;
pub use jwks::KeySet;
pub use principal::{Principal, Scope, Scopes, VisitorGrant};
