//! The organization's rate limit: read it (read scope), override or reset it (admin scope).

use async_graphql::{Context, Object, Result};

use super::context::parts;
use crate::{
    services,
    views::rate_limits::{RateLimit, SetRateLimitInput},
};

#[derive(Default)]
pub struct RateLimitQuery;

#[Object]
impl RateLimitQuery {
    /// The organization's request budget in force.
    async fn rate_limit(&self, ctx: &Context<'_>) -> Result<RateLimit> {
        let (state, principal) = parts(ctx)?;
        Ok(services::rate_limits::current(state, principal)
            .await?
            .into())
    }
}

#[derive(Default)]
pub struct RateLimitMutation;

#[Object]
impl RateLimitMutation {
    /// Overrides the organization's request budget (admin scope), up to the operator's
    /// ceiling per hour (`BAD_USER_INPUT` on `limit` above it). Takes effect at once on this
    /// server, within seconds on the others.
    async fn set_rate_limit(
        &self,
        ctx: &Context<'_>,
        input: SetRateLimitInput,
    ) -> Result<RateLimit> {
        let (state, principal) = parts(ctx)?;
        Ok(
            services::rate_limits::set(state, principal, Some(input.into()))
                .await?
                .into(),
        )
    }

    /// Returns the organization to the server's default budget (admin scope).
    async fn reset_rate_limit(&self, ctx: &Context<'_>) -> Result<RateLimit> {
        let (state, principal) = parts(ctx)?;
        Ok(services::rate_limits::set(state, principal, None)
            .await?
            .into())
    }
}
