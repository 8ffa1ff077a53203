//! Who is calling: the authenticator chain (API keys and their secrets, widget tokens, the
//! customer's own identity provider, and whatever a deployment adds), scopes, and the
//! organization boundary.
//!
//! Every request that reaches a service carries a [`Principal`]; services turn it into a
//! [`Tenant`] handle by a scope check, and only the handle names the organization (see
//! [`crate::domain::access`]).

pub mod api_key;
mod builtin;
pub mod chain;
mod external_jwt;
mod jwks;
pub mod jwt;
pub mod widget_token;

pub use crate::domain::access::{Principal, Scope, Scopes, Tenant, VisitorGrant, Work};
pub(crate) use builtin::grant_of;
pub use builtin::{
    API_KEY_HEADER, API_SECRET_HEADER, ApiKeyAuthenticator, WidgetTokenAuthenticator,
};
pub use chain::{AuthChain, Authenticator, Credentials};
pub use external_jwt::ExternalJwtAuthenticator;
pub use jwks::KeySet;
