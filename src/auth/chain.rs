//! The authenticator chain: a request's principal is resolved by the first authenticator
//! that recognises its credentials.
//!
//! Each [`Authenticator`] looks at the request and answers one of three ways: not mine
//! (`Ok(None)`, the next one tries), authenticated (`Ok(Some(principal))`), or mine but
//! refused (`Err`, the chain stops: a bad API key is not retried as something else). The
//! built-in chain is API keys (with or without a secret), then widget tokens, then — when
//! configured — tokens of the customer's own identity provider. A deployment adds its own
//! (an IP allow-list, another issuer) with [`AuthChain::prepend`], [`AuthChain::push`],
//! [`AuthChain::replace`] or [`AuthChain::wrap`] when it builds the application
//! ([`crate::startup::Application::build_with`]); handlers never change.

use std::{net::IpAddr, sync::Arc};

use async_trait::async_trait;
use axum::http::{HeaderMap, header::AUTHORIZATION};
use serde::Deserialize;

use super::{Principal, widget_token::looks_like_jwt};
use crate::error::{AppError, AppResult};

/// What an authenticator may look at.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The request's headers (for a websocket: the upgrade's, overlaid with the fields of
    /// `connection_init`).
    pub headers: &'a HeaderMap,
    /// The client's address, when the server knows it.
    pub peer: Option<IpAddr>,
}

impl Credentials<'_> {
    /// The trimmed value of header `name`; a value that is not text is refused.
    pub fn header(&self, name: &str) -> AppResult<Option<String>> {
        self.headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| unauthenticated(&format!("malformed {name} header")))
            })
            .transpose()
    }

    /// The token of `Authorization: Bearer …`, when present.
    pub fn bearer(&self) -> AppResult<Option<String>> {
        Ok(self
            .header(AUTHORIZATION.as_str())?
            .and_then(|auth| auth.strip_prefix("Bearer ").map(|t| t.trim().to_owned())))
    }

    /// The unverified issuer (`iss`) of a bearer JWT, to tell whose token it is. Never trust
    /// it for anything else: the authenticator that claims the token verifies it.
    pub fn bearer_jwt_issuer(&self) -> AppResult<Option<String>> {
        #[derive(Deserialize)]
        struct Issuer {
            iss: Option<String>,
        }
        let Some(token) = self.bearer()? else {
            return Ok(None);
        };
        if !looks_like_jwt(&token) {
            return Ok(None);
        }
        Ok(
            jsonwebtoken::dangerous::insecure_decode_claims::<Issuer>(&token)
                .ok()
                .and_then(|claims| claims.iss),
        )
    }
}

/// One way of recognising a caller.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// A short name, for logs and [`AuthChain::replace`] (`api_key`, `widget_token`…).
    fn name(&self) -> &'static str;

    /// `Ok(None)` when the credentials are not this authenticator's; `Ok(Some(principal))`
    /// when they are and they hold; `Err` (usually `UNAUTHENTICATED` or `FORBIDDEN`) when
    /// they are and they do not.
    async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Option<Principal>>;
}

/// Authenticators, tried in order.
#[derive(Clone, Default)]
pub struct AuthChain {
    authenticators: Vec<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for AuthChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl AuthChain {
    /// Adds `authenticator` after the others.
    pub fn push(mut self, authenticator: impl Authenticator + 'static) -> Self {
        self.authenticators.push(Arc::new(authenticator));
        self
    }

    /// Adds `authenticator` before the others (it sees every request first).
    pub fn prepend(mut self, authenticator: impl Authenticator + 'static) -> Self {
        self.authenticators.insert(0, Arc::new(authenticator));
        self
    }

    /// Puts `authenticator` in the place of the one named `name` (or last, when none is).
    pub fn replace(mut self, name: &str, authenticator: impl Authenticator + 'static) -> Self {
        let authenticator: Arc<dyn Authenticator> = Arc::new(authenticator);
        match self.authenticators.iter().position(|a| a.name() == name) {
            Some(at) => self.authenticators[at] = authenticator,
            None => self.authenticators.push(authenticator),
        }
        self
    }

    /// Puts `wrap(existing)` in the place of the authenticator named `name`, to add a policy
    /// to a built-in one (an IP allow-list around `api_key`, say). Unchanged when no
    /// authenticator has that name.
    pub fn wrap<A: Authenticator + 'static>(
        mut self,
        name: &str,
        wrap: impl FnOnce(Arc<dyn Authenticator>) -> A,
    ) -> Self {
        if let Some(at) = self.authenticators.iter().position(|a| a.name() == name) {
            let existing = self.authenticators[at].clone();
            self.authenticators[at] = Arc::new(wrap(existing));
        }
        self
    }

    /// The authenticators' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.authenticators.iter().map(|a| a.name()).collect()
    }

    /// The caller, from the first authenticator that recognises the credentials.
    pub async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Principal> {
        for authenticator in &self.authenticators {
            if let Some(principal) = authenticator.authenticate(request).await? {
                return Ok(principal);
            }
        }
        Err(unclaimed(request)?)
    }
}

/// Why nobody recognised the credentials.
fn unclaimed(request: &Credentials<'_>) -> AppResult<AppError> {
    if let Some(issuer) = request.bearer_jwt_issuer()? {
        return Ok(unauthenticated(&format!(
            "tokens issued by `{issuer}` are not accepted here"
        )));
    }
    Ok(
        match (
            request.header(super::API_KEY_HEADER)?,
            request.header(AUTHORIZATION.as_str())?,
        ) {
            (None, None) => {
                unauthenticated("missing credentials: send your API key in the X-API-Key header")
            }
            _ => unauthenticated(
                "unsupported credentials: send `X-API-Key: cmp_…`, or a widget token as `Authorization: Bearer …`",
            ),
        },
    )
}

/// `UNAUTHENTICATED` with `message`.
pub fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}
