//! A websocket's credential, checked again while the socket lives: before each `subscribe`
//! (at most every few seconds), periodically while operations run, and at a visitor token's
//! `exp` at the latest. A revoked or expired API key, a revoked OAuth app or an expired
//! widget token closes the socket with 4403 instead of working for the socket's life.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use axum::http::HeaderMap;

use super::governance::check_origin;
use crate::{
    auth::{Credentials, Principal},
    error::AppError,
    state::AppState,
};

/// A check younger than this is trusted without asking again.
const FRESH: Duration = Duration::from_secs(5);
/// How often an open socket's credential is checked while nothing asks.
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// The credential a socket was opened with, and what it last proved.
pub struct Standing {
    /// The headers the credential came in (the upgrade's, overlaid with the init payload).
    headers: HeaderMap,
    /// The upgrade request's own headers (`Origin`).
    upgrade_headers: HeaderMap,
    peer: Option<IpAddr>,
    principal: Principal,
    checked: Instant,
}

impl Standing {
    /// Authenticates `headers` (the init payload over the upgrade's headers).
    pub async fn establish(
        state: &AppState,
        headers: HeaderMap,
        upgrade_headers: HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Self, AppError> {
        let principal = authenticate(state, &headers, &upgrade_headers, peer).await?;
        Ok(Self {
            headers,
            upgrade_headers,
            peer,
            principal,
            checked: Instant::now(),
        })
    }

    /// The caller, checked again unless a check is younger than a few seconds; the refusal
    /// (4403 and why) once the credential no longer holds. A check that cannot be made (the
    /// database is away) keeps the socket open on what was last proved.
    pub async fn recheck(&mut self, state: &AppState, always: bool) -> Result<&Principal, String> {
        if !always && self.checked.elapsed() < FRESH {
            return Ok(&self.principal);
        }
        match authenticate(state, &self.headers, &self.upgrade_headers, self.peer).await {
            Ok(principal) => {
                self.principal = principal;
                self.checked = Instant::now();
                Ok(&self.principal)
            }
            Err(e @ AppError::Internal(_)) => {
                e.log();
                Ok(&self.principal)
            }
            Err(e) => Err(format!("Forbidden: {}", e.message())),
        }
    }

    /// When a visitor's token expires, as an instant of the runtime's clock.
    pub fn expires(&self) -> Option<tokio::time::Instant> {
        let grant = self.principal.visitor_grant()?;
        let left = grant.expires_at - chrono::Utc::now().timestamp();
        let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
        Some(tokio::time::Instant::now() + left)
    }
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    upgrade_headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<Principal, AppError> {
    let credentials = Credentials { headers, peer };
    let principal = state.auth.authenticate(&credentials).await?;
    check_origin(&principal, upgrade_headers)?;
    Ok(principal)
}
