//! Per-organization request budgets, counted in fixed windows: in this process by default,
//! in Redis when `REDIS_URL` is set so that every replica shares one count.
//!
//! Every hit increments the window's counter and is admitted while the count is within the
//! limit, so N concurrent hits against a limit of L admit exactly L, in memory and in Redis
//! (one atomic script per hit).

mod memory;
mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

pub use self::{memory::MemoryLimiter, redis::RedisLimiter};
use crate::domain::ids::OrgId;

/// A budget: `limit` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Requests admitted per window.
    pub limit: u32,
    /// Length of a window, in whole seconds (at least one).
    pub window_seconds: u32,
}

/// The outcome of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may run.
    pub allowed: bool,
    /// The policy it was counted against.
    pub policy: Policy,
    /// Requests left in the current window.
    pub remaining: u32,
    /// Requests counted in the current window, this one included.
    pub count: u64,
    /// Unix time (seconds) at which the current window ends.
    pub reset_at: u64,
    /// Seconds until the window ends (at least one).
    pub reset_after: u64,
}

/// Where the window counts live.
#[async_trait]
pub trait Limiter: Send + Sync {
    /// Counts `by` requests of `org` in the window `window_start` (Unix seconds) of `policy`
    /// and returns the window's count including them. With `all_or_nothing`, requests that
    /// would pass the limit are not counted; the count they would have made is returned.
    async fn increment(
        &self,
        org: &OrgId,
        policy: Policy,
        window_start: u64,
        by: u64,
        all_or_nothing: bool,
    ) -> anyhow::Result<u64>;

    /// Marks `what` (an alert) as done for `org` in the window `window_start` of `policy`;
    /// true only for the first caller, across every replica that shares the store.
    async fn first_in_window(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<bool>;

    /// Removes the mark of [`Limiter::first_in_window`] (the alert could not be sent), so a
    /// later request of the window tries again.
    async fn unmark(
        &self,
        org: &OrgId,
        what: &str,
        policy: Policy,
        window_start: u64,
    ) -> anyhow::Result<()>;

    /// `memory` or `redis`, for the start-up log.
    fn kind(&self) -> &'static str;
}

impl Decision {
    /// Unix time (seconds) at which the current window began.
    pub fn window_start(&self) -> u64 {
        self.reset_at
            .saturating_sub(u64::from(self.policy.window_seconds.max(1)))
    }
}

/// Counts `cost` requests of `org` against `policy` now: a refused single request counts,
/// a refused charge of several (`all_or_nothing`) does not.
pub async fn hit(
    limiter: &dyn Limiter,
    org: &OrgId,
    policy: Policy,
    cost: u64,
    all_or_nothing: bool,
) -> anyhow::Result<Decision> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let window = u64::from(policy.window_seconds.max(1));
    let window_start = now - now % window;
    let count = limiter
        .increment(org, policy, window_start, cost, all_or_nothing)
        .await?;
    Ok(decide(policy, count, now, window_start + window))
}

fn decide(policy: Policy, count: u64, now: u64, reset_at: u64) -> Decision {
    let limit = u64::from(policy.limit);
    Decision {
        allowed: count <= limit,
        policy,
        remaining: u32::try_from(limit.saturating_sub(count)).unwrap_or(u32::MAX),
        count,
        reset_at,
        reset_after: reset_at.saturating_sub(now).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_th_request_is_admitted_with_nothing_remaining_and_the_next_refused() {
        let policy = Policy {
            limit: 3,
            window_seconds: 60,
        };
        let at_limit = decide(policy, 3, 100, 120);
        assert!(at_limit.allowed);
        assert_eq!((at_limit.remaining, at_limit.reset_after), (0, 20));
        let over = decide(policy, 4, 100, 120);
        assert!(!over.allowed);
        assert_eq!(over.remaining, 0);
    }
}
