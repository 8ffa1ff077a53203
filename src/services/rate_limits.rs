//! Rate limits: the admin operations that read and change an organization's budget. The
//! admission of each request lives in [`crate::runtime::rate_limits`].

use entity::organization;
use sea_orm::ConnectionTrait;

use crate::{
    auth::{Principal, Scope, Tenant},
    error::{AppError, AppResult},
    limiter::Policy,
    repo,
    runtime::rate_limits::DEFAULT_WINDOW_SECONDS,
    state::AppState,
};

/// Longest window an organization may choose: a day.
const MAX_WINDOW_SECONDS: u32 = 86_400;
/// Largest limit an organization may choose.
const MAX_LIMIT: u32 = 100_000_000;

/// The caller's policy and whether it is the default (`read` scope).
pub async fn current(state: &AppState, principal: &Principal) -> AppResult<(Policy, bool)> {
    let tenant = principal.scope(Scope::Read)?;
    let found = repo::organizations::find(&state.db, tenant.org())
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    Ok((
        state.rate_limits.policy_of(&found),
        found.rate_limit.is_none(),
    ))
}

/// Overrides (or, with `None`, resets to the default) the caller's limit (`admin` scope): at
/// most the operator's ceiling per hour, or the organization's current budget when the
/// operator set it higher.
pub async fn set(
    state: &AppState,
    principal: &Principal,
    change: Option<RateLimitInput>,
) -> AppResult<(Policy, bool)> {
    let tenant = principal.scope(Scope::Admin)?;
    if let Some(change) = change {
        let found = repo::organizations::find(&state.db, tenant.org())
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        let current = per_hour(state.rate_limits.policy_of(&found));
        let ceiling = u64::from(state.settings.rate_limits.ceiling_per_hour()).max(current);
        let (limit, window) = change.validate()?;
        let asked = per_hour(Policy {
            limit: limit.unsigned_abs(),
            window_seconds: window.unsigned_abs(),
        });
        if asked > ceiling {
            return Err(AppError::bad_input(
                "limit",
                format!(
                    "at most {ceiling} requests per hour may be set here (this limit allows \
                     {asked}); the operator sets higher limits"
                ),
            ));
        }
    }
    let stored = set_for(&state.db, &tenant, change).await?;
    state.rate_limits.forget(tenant.org());
    Ok((
        state.rate_limits.policy_of(&stored),
        stored.rate_limit.is_none(),
    ))
}

/// The most requests `policy` admits in one hour: all of a window that is an hour or longer
/// may be spent in one hour.
fn per_hour(policy: Policy) -> u64 {
    let limit = u64::from(policy.limit);
    let window = u64::from(policy.window_seconds.max(1));
    if window >= 3_600 {
        limit
    } else {
        limit * 3_600_u64.div_ceil(window)
    }
}

/// A requested override.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitInput {
    /// Requests per window, 1–100,000,000.
    pub limit: i64,
    /// Window length in seconds, 1–86,400 (default 3,600).
    pub window_seconds: Option<i64>,
}

impl RateLimitInput {
    fn validate(self) -> AppResult<(i32, i32)> {
        let limit = u32::try_from(self.limit)
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| AppError::bad_input("limit", format!("must be 1 to {MAX_LIMIT}")))?;
        let window = match self.window_seconds {
            None => DEFAULT_WINDOW_SECONDS,
            Some(w) => u32::try_from(w)
                .ok()
                .filter(|w| (1..=MAX_WINDOW_SECONDS).contains(w))
                .ok_or_else(|| {
                    AppError::bad_input(
                        "window_seconds",
                        format!("must be 1 to {MAX_WINDOW_SECONDS} seconds"),
                    )
                })?,
        };
        // Both fit: they are at most 100,000,000 and 86,400.
        Ok((limit as i32, window as i32))
    }
}

/// Sets the override of the handle's organization (operator command and admin API).
pub async fn set_for(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    change: Option<RateLimitInput>,
) -> AppResult<organization::Model> {
    let change = change.map(RateLimitInput::validate).transpose()?;
    repo::organizations::set_rate_limit(db, tenant.org(), change)
        .await?
        .ok_or(AppError::NotFound("organization"))
}
