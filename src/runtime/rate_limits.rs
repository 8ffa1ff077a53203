//! Admission of each request against its organization's budget: the policy in force (its
//! override, else the default), counted by the limiter, with the rate-limit webhook events.
//!
//! Overrides are read from the database at most every few seconds per organization, so a
//! change made on another replica (or by the CLI) takes effect within [`POLICY_TTL`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use entity::organization;
use sea_orm::DatabaseConnection;

use super::{
    outbox::{self, Event, Outbox},
    signals::WebhookSignal,
};
use crate::{
    domain::{
        access::{Tenant, Work},
        ids::OrgId,
    },
    error::AppResult,
    limiter::{self, Decision, Limiter, Policy},
    metrics::Metrics,
    repo,
};

/// The event a hit may raise (each is sent once per window): `rate_limit.approaching` once
/// the count reaches `share` of the limit, `rate_limit.exceeded` when the hit is refused.
fn alert_for(decision: &Decision, share: f64) -> Option<Event> {
    if !decision.allowed {
        return Some(Event::rate_limit_exceeded(decision));
    }
    let limit = u64::from(decision.policy.limit);
    if !(share > 0.0 && share < 1.0) || limit == 0 || decision.count == 0 {
        return None;
    }
    let threshold = ((limit as f64) * share).ceil().max(1.0) as u64;
    (decision.count >= threshold).then(|| Event::rate_limit_approaching(decision, share))
}

/// How long an organization's policy is cached.
pub const POLICY_TTL: Duration = Duration::from_secs(5);
/// The window when an organization sets a limit without one.
pub const DEFAULT_WINDOW_SECONDS: u32 = 3600;

/// Admission of requests against each organization's budget.
pub struct RateLimits {
    db: DatabaseConnection,
    limiter: Arc<dyn Limiter>,
    default: Policy,
    metrics: Arc<Metrics>,
    cache: Mutex<HashMap<OrgId, (Instant, Policy)>>,
    enabled: bool,
    alerts: Option<Alerts>,
    /// The window each alert was last sent in, per organization.
    alerted: Mutex<HashMap<(OrgId, &'static str), u64>>,
}

/// Sending `rate_limit.approaching` and `rate_limit.exceeded` webhook events.
#[derive(Clone)]
pub struct Alerts {
    /// Share of the budget (0–1) at which `rate_limit.approaching` is sent.
    pub share: f64,
    /// Where events are written.
    pub outbox: Outbox,
    /// Wakes the dispatchers.
    pub signal: WebhookSignal,
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
            alerts: None,
            alerted: Mutex::new(HashMap::new()),
        }
    }

    /// Also sends the rate-limit webhook events.
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = Some(alerts);
        self
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
        self.count(org, 1, false).await.map(Some)
    }

    /// Counts `cost` more requests of `org` at once (the fields of a request that each start
    /// work); `None` when rate limiting is switched off. When the rest of the window cannot
    /// pay for all of them, the decision refuses and nothing is counted.
    pub async fn charge(&self, org: &OrgId, cost: u64) -> AppResult<Option<Decision>> {
        if !self.enabled {
            return Ok(None);
        }
        self.count(org, cost, true).await.map(Some)
    }

    async fn count(&self, org: &OrgId, cost: u64, all_or_nothing: bool) -> AppResult<Decision> {
        let policy = self.policy(org).await?;
        match limiter::hit(self.limiter.as_ref(), org, policy, cost, all_or_nothing).await {
            Ok(decision) => {
                if !decision.allowed {
                    self.metrics.rate_limited.inc();
                }
                self.alert(org, &decision).await;
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
                    count: 0,
                    reset_at: 0,
                    reset_after: u64::from(policy.window_seconds),
                })
            }
        }
    }

    /// Writes the webhook event this hit raises, if any, once per window: the mark is set in
    /// the limiter's store (shared by every replica with Redis) and cleared again when the
    /// event could not be written, and remembered here so that the rest of the window costs
    /// no further round trip.
    async fn alert(&self, org: &OrgId, decision: &Decision) {
        let Some(alerts) = &self.alerts else {
            return;
        };
        let Some(event) = alert_for(decision, alerts.share) else {
            return;
        };
        let what = event.kind.as_str();
        let window_start = decision.window_start();
        let key = (org.clone(), what);
        if self
            .alerted
            .lock()
            .is_ok_and(|sent| sent.get(&key) == Some(&window_start))
        {
            return;
        }
        match self
            .limiter
            .first_in_window(org, what, decision.policy, window_start)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.remember_alert(key, window_start);
                return;
            }
            Err(e) => {
                tracing::warn!(org = %org, error = format!("{e:#}"), "could not mark a rate-limit alert; a later request will try again");
                return;
            }
        }
        let tenant = Tenant::for_work(org.clone(), Work::Governance);
        match outbox::emit_now(&self.db, alerts.outbox, &tenant, event).await {
            Ok(written) => {
                self.remember_alert(key, window_start);
                if written.is_some() {
                    alerts.signal.notify();
                }
            }
            Err(e) => {
                tracing::warn!(org = %org, error = %e, "could not write a rate-limit webhook event; a later request will try again");
                if let Err(e) = self
                    .limiter
                    .unmark(org, what, decision.policy, window_start)
                    .await
                {
                    tracing::warn!(org = %org, error = format!("{e:#}"), "could not clear a rate-limit alert mark");
                }
            }
        }
    }

    fn remember_alert(&self, key: (OrgId, &'static str), window_start: u64) {
        if let Ok(mut sent) = self.alerted.lock() {
            sent.insert(key, window_start);
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

    /// Drops the cached policy of `org`.
    pub fn forget(&self, org: &OrgId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(org);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbox::EventType;

    fn hit(count: u64) -> Decision {
        let policy = Policy {
            limit: 10,
            window_seconds: 60,
        };
        Decision {
            allowed: count <= 10,
            policy,
            remaining: 10_u64.saturating_sub(count) as u32,
            count,
            reset_at: 120,
            reset_after: 20,
        }
    }

    #[test]
    fn hits_from_the_share_raise_approaching_and_refusals_raise_exceeded() {
        let kinds: Vec<_> = (1..=12)
            .map(|n| alert_for(&hit(n), 0.8).map(|e| e.kind))
            .collect();
        let approaching = Some(EventType::RateLimitApproaching);
        let exceeded = Some(EventType::RateLimitExceeded);
        assert_eq!(
            kinds,
            vec![
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                approaching,
                approaching,
                approaching,
                exceeded,
                exceeded
            ]
        );
        assert!(
            (1..=10).all(|n| alert_for(&hit(n), 1.0).is_none()),
            "a share of 1 sends no approaching event"
        );
    }
}
