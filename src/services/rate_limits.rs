//! Rate limits: the policy in force for an organization (its override, else the default),
//! admission of each request against it, and the admin operations that change it.
//!
//! Overrides are read from the database at most every few seconds per organization, so a
//! change made on another replica (or by the CLI) takes effect within [`POLICY_TTL`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use entity::organization;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{
    auth::{Principal, Scope},
    domain::ids::OrgId,
    error::{AppError, AppResult},
    limiter::{self, Decision, Limiter, Policy},
    metrics::Metrics,
    repo,
};

/// How long an organization's policy is cached.
pub const POLICY_TTL: Duration = Duration::from_secs(5);
/// The window when an organization sets a limit without one.
const DEFAULT_WINDOW_SECONDS: u32 = 3600;
/// Longest window an organization may choose: a day.
const MAX_WINDOW_SECONDS: u32 = 86_400;
/// Largest limit an organization may choose.
const MAX_LIMIT: u32 = 100_000_000;

/// Admission of requests against each organization's budget.
pub struct RateLimits {
    db: DatabaseConnection,
    limiter: Arc<dyn Limiter>,
    default: Policy,
    metrics: Arc<Metrics>,
    cache: Mutex<HashMap<OrgId, (Instant, Policy)>>,
    enabled: bool,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("limiter", &self.limiter.kind())
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Admission with `limiter`, `default_per_hour` for organizations without an override;
    /// everything is admitted uncounted unless `enabled`.
    pub fn new(
        db: DatabaseConnection,
        limiter: Arc<dyn Limiter>,
        default_per_hour: u32,
        metrics: Arc<Metrics>,
        enabled: bool,
    ) -> Self {
        Self {
            enabled,
            db,
            limiter,
            default: Policy {
                limit: default_per_hour,
                window_seconds: DEFAULT_WINDOW_SECONDS,
            },
            metrics,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Where counts live: `memory` or `redis`.
    pub fn kind(&self) -> &'static str {
        self.limiter.kind()
    }

    /// Counts one request of `org`; `None` when rate limiting is switched off. A limiter
    /// failure admits the request (and is logged and counted): an outage of Redis must not
    /// take the API down.
    pub async fn admit(&self, org: &OrgId) -> AppResult<Option<Decision>> {
        if !self.enabled {
            return Ok(None);
        }
        self.count(org).await.map(Some)
    }

    async fn count(&self, org: &OrgId) -> AppResult<Decision> {
        let policy = self.policy(org).await?;
        match limiter::hit(self.limiter.as_ref(), org, policy).await {
            Ok(decision) => {
                if !decision.allowed {
                    self.metrics.rate_limited.inc();
                }
                Ok(decision)
            }
            Err(e) => {
                self.metrics.limiter_errors.inc();
                tracing::warn!(
                    error = format!("{e:#}"),
                    "rate limit check failed; request admitted"
                );
                Ok(Decision {
                    allowed: true,
                    policy,
                    remaining: policy.limit,
                    reset_at: 0,
                    reset_after: u64::from(policy.window_seconds),
                })
            }
        }
    }

    /// The policy in force for `org`.
    pub async fn policy(&self, org: &OrgId) -> AppResult<Policy> {
        if let Some(policy) = self.cached(org) {
            return Ok(policy);
        }
        let found = repo::organizations::find(&self.db, org).await?;
        let policy = found.map_or(self.default, |o| self.policy_of(&o));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(org.clone(), (Instant::now(), policy));
        }
        Ok(policy)
    }

    fn cached(&self, org: &OrgId) -> Option<Policy> {
        let cache = self.cache.lock().ok()?;
        let (at, policy) = cache.get(org)?;
        (at.elapsed() < POLICY_TTL).then_some(*policy)
    }

    /// The policy of a stored organization.
    pub fn policy_of(&self, org: &organization::Model) -> Policy {
        match org.rate_limit {
            Some(limit) => Policy {
                limit: u32::try_from(limit).unwrap_or(0),
                window_seconds: org
                    .rate_limit_window_seconds
                    .and_then(|w| u32::try_from(w).ok())
                    .unwrap_or(DEFAULT_WINDOW_SECONDS),
            },
            None => self.default,
        }
    }

    /// The caller's policy and whether it is the default (`read` scope).
    pub async fn current(&self, principal: &Principal) -> AppResult<(Policy, bool)> {
        let org = principal.require(Scope::Read)?;
        let found = repo::organizations::find(&self.db, org)
            .await?
            .ok_or(AppError::NotFound("organization"))?;
        Ok((self.policy_of(&found), found.rate_limit.is_none()))
    }

    /// Overrides (or, with `None`, resets to the default) the caller's limit (`admin` scope).
    pub async fn set(
        &self,
        principal: &Principal,
        change: Option<RateLimitInput>,
    ) -> AppResult<(Policy, bool)> {
        let org = principal.require(Scope::Admin)?.clone();
        let stored = set_for(&self.db, &org, change).await?;
        self.forget(&org);
        Ok((self.policy_of(&stored), stored.rate_limit.is_none()))
    }

    /// Drops the cached policy of `org`.
    pub fn forget(&self, org: &OrgId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(org);
        }
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

/// Sets `org`'s override (operator command and admin API).
pub async fn set_for(
    db: &impl ConnectionTrait,
    org: &OrgId,
    change: Option<RateLimitInput>,
) -> AppResult<organization::Model> {
    let change = change.map(RateLimitInput::validate).transpose()?;
    repo::organizations::set_rate_limit(db, org, change)
        .await?
        .ok_or(AppError::NotFound("organization"))
}
