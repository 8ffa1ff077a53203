//! `analytics`: the organization's traffic and conversations (read scope).

use async_graphql::{Context, ID, Object, Result, connection::Connection};
use chrono::{DateTime, Utc};

use super::context::{connection, page, parts};
use crate::{
    services::{
        analytics as reports,
        outcomes::{self, OutcomeQuery},
    },
    views::analytics::{
        AnalyticsFilter, ConversationAnalytics, EndpointStats, LogEntry, RateLimitReport,
        TimeBucket, UsageBucket,
    },
    views::outcomes::{OutcomeAnalytics, OutcomeGroupBy},
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

    /// Whether the assistant resolves conversations, per UTC day (default) or per assistant
    /// version: conversations, containment (ended without a handoff and without a rating of
    /// 1–2), handoffs by trigger, unanswered replies (citing no passage),
    /// citations, CSAT (ratings 4–5), average rating, first-token latency p50/p95. The range
    /// is `from` (default: 30 days before `to`) to `to` (default: now), at most 366 days.
    async fn outcomes(
        &self,
        ctx: &Context<'_>,
        assistant_id: Option<ID>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default)] group_by: OutcomeGroupBy,
    ) -> Result<OutcomeAnalytics> {
        let (state, principal) = parts(ctx)?;
        let query = OutcomeQuery {
            from,
            to,
            assistant_id: assistant_id.map(|id| id.0),
        };
        let report = outcomes::report(&state.db, principal, query, group_by.into()).await?;
        Ok(OutcomeAnalytics::of(report, group_by))
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
