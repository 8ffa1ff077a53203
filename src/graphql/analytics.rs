//! `analytics`: the organization's traffic and conversations (read scope).

use async_graphql::{Context, Object, Result, connection::Connection};

use super::context::{connection, page, parts};
use crate::{
    services::analytics as reports,
    views::analytics::{
        AnalyticsFilter, ConversationAnalytics, EndpointStats, LogEntry, RateLimitReport,
        TimeBucket, UsageBucket,
    },
};

#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Reports over the organization's requests and conversations.
    async fn analytics(&self) -> Analytics {
        Analytics
    }
}

/// Reports over the organization's requests and conversations (read scope).
pub struct Analytics;

#[Object]
impl Analytics {
    /// Logged requests, oldest first (`last: n` for the newest).
    #[graphql(complexity = "crate::graphql::context::page_cost(first, last, child_complexity)")]
    async fn logs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AnalyticsFilter>,
    ) -> Result<Connection<String, LogEntry>> {
        let (state, principal) = parts(ctx)?;
        let filter = filter.unwrap_or_default().logs()?;
        let page = page(first, after, last, before)?;
        let logs = reports::logs(&state.db, &state.request_log, principal, &filter, &page).await?;
        Ok(connection(logs, |e| e.id.clone(), LogEntry::from))
    }

    /// Requests per hour or day (default: hourly over the last 7 days).
    async fn usage(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] granularity: TimeBucket,
        filter: Option<AnalyticsFilter>,
    ) -> Result<Vec<UsageBucket>> {
        let (state, principal) = parts(ctx)?;
        let filter = filter.unwrap_or_default().logs()?;
        let usage = reports::usage(
            &state.db,
            &state.request_log,
            principal,
            &filter,
            granularity.into(),
        )
        .await?;
        Ok(usage.into_iter().map(Into::into).collect())
    }

    /// Requests, error rate and latency percentiles per REST route or GraphQL operation,
    /// busiest first.
    async fn endpoints(
        &self,
        ctx: &Context<'_>,
        filter: Option<AnalyticsFilter>,
    ) -> Result<Vec<EndpointStats>> {
        let (state, principal) = parts(ctx)?;
        let filter = filter.unwrap_or_default().logs()?;
        let stats = reports::endpoints(&state.db, &state.request_log, principal, &filter).await?;
        Ok(stats.into_iter().map(Into::into).collect())
    }

    /// Requests refused by the rate limiter, over time and by key.
    async fn rate_limits(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] granularity: TimeBucket,
        filter: Option<AnalyticsFilter>,
    ) -> Result<RateLimitReport> {
        let (state, principal) = parts(ctx)?;
        let filter = filter.unwrap_or_default().logs()?;
        let report = reports::rate_limits(
            &state.db,
            &state.request_log,
            principal,
            &filter,
            granularity.into(),
        )
        .await?;
        Ok(report.into())
    }

    /// Conversations started in the range: count, messages, duration, ratings, citations.
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<AnalyticsFilter>,
    ) -> Result<ConversationAnalytics> {
        let (state, principal) = parts(ctx)?;
        let filter = filter.unwrap_or_default().conversations();
        Ok(reports::conversations(&state.db, principal, &filter)
            .await?
            .into())
    }
}
