//! The organization's request budget.

use async_graphql::{InputObject, SimpleObject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{limiter::Policy, services::rate_limits::RateLimitInput};

/// Requests the organization may make per window; every authenticated REST call, GraphQL
/// HTTP request and subscription start counts.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub limit: u32,
    /// Length of the window, in seconds.
    pub window_seconds: u32,
    /// Whether this is the server's default (no override set).
    pub is_default: bool,
}

impl From<(Policy, bool)> for RateLimit {
    fn from((policy, is_default): (Policy, bool)) -> Self {
        Self {
            limit: policy.limit,
            window_seconds: policy.window_seconds,
            is_default,
        }
    }
}

/// A new budget for the organization.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
pub struct SetRateLimitInput {
    /// Requests per window, 1–100,000,000.
    pub limit: i64,
    /// Window length in seconds, 1–86,400 (default 3,600: an hour).
    pub window_seconds: Option<i64>,
}

impl From<SetRateLimitInput> for RateLimitInput {
    fn from(input: SetRateLimitInput) -> Self {
        Self {
            limit: input.limit,
            window_seconds: input.window_seconds,
        }
    }
}
