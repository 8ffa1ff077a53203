//! Analytics reports: the request log, usage over time, the endpoint mix, rate-limit
//! refusals and conversation figures.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::request_log;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::{AppError, AppResult},
    repo::analytics::{ConversationFilter, LogFilter},
    services::analytics::{self as reports, Granularity},
};

/// One logged request.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct LogEntry {
    /// The entry's id (time-ordered).
    #[schema(value_type = String)]
    pub id: ID,
    /// When the request arrived.
    pub created_at: DateTime<Utc>,
    /// The API key (`key_…`), for key-authenticated requests.
    pub key_id: Option<String>,
    /// The OAuth app (`app_…`), for widget-token requests.
    pub app_id: Option<String>,
    /// `rest`, `graphql`, `ws` or `openai`.
    pub transport: String,
    /// HTTP method (`WS` for operations started over websocket).
    pub method: String,
    /// REST route template or GraphQL operation name.
    pub endpoint: String,
    /// `query`, `mutation` or `subscription` for GraphQL.
    pub operation_type: Option<String>,
    /// HTTP status answered.
    pub status: i32,
    /// Time to answer, in milliseconds (to the first byte for streams).
    pub latency_ms: f64,
    /// Whether the rate limiter refused it.
    pub rate_limited: bool,
    /// Its `X-Request-Id`.
    pub request_id: Option<String>,
}

impl From<request_log::Model> for LogEntry {
    fn from(m: request_log::Model) -> Self {
        Self {
            id: ID(m.id),
            created_at: m.created_at,
            key_id: m.key_id,
            app_id: m.app_id,
            transport: m.transport,
            method: m.method,
            endpoint: m.endpoint,
            operation_type: m.operation_type,
            status: m.status,
            latency_ms: m.latency_ms,
            rate_limited: m.rate_limited,
            request_id: m.request_id,
        }
    }
}

/// Requests in one hour or day.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct UsageBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    /// Requests made, refused ones included.
    pub requests: i64,
    /// Requests answered with status 400 or more, refused ones included.
    pub errors: i64,
    /// Requests refused by the rate limiter.
    pub rate_limited: i64,
}

impl From<reports::UsageBucket> for UsageBucket {
    fn from(b: reports::UsageBucket) -> Self {
        Self {
            start: b.start,
            requests: b.requests,
            errors: b.errors,
            rate_limited: b.rate_limited,
        }
    }
}

/// Traffic of one REST route or GraphQL operation.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct EndpointStats {
    /// `rest`, `graphql`, `ws` or `openai`.
    pub transport: String,
    /// Route template or operation name.
    pub endpoint: String,
    /// GraphQL operation type.
    pub operation_type: Option<String>,
    /// Requests.
    pub requests: i64,
    /// Requests answered with status 400 or more.
    pub errors: i64,
    /// Share of requests that failed, 0–1.
    pub error_rate: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

impl From<reports::EndpointStats> for EndpointStats {
    fn from(s: reports::EndpointStats) -> Self {
        Self {
            transport: s.transport,
            endpoint: s.endpoint,
            operation_type: s.operation_type,
            requests: s.requests,
            errors: s.errors,
            error_rate: s.error_rate,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
        }
    }
}

/// Refusals in one time bucket.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct RefusalBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    /// Requests refused in it.
    pub count: i64,
}

/// Refusals of one API key.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct KeyRefusals {
    /// The key (`key_…`); null for widget tokens.
    pub key_id: Option<String>,
    /// Requests refused.
    pub count: i64,
}

/// Requests refused by the rate limiter.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct RateLimitReport {
    /// Refusals in the range.
    pub total: i64,
    /// Refusals over time (buckets without any left out).
    pub series: Vec<RefusalBucket>,
    /// Refusals per key, most first.
    pub by_key: Vec<KeyRefusals>,
}

impl From<reports::RateLimitReport> for RateLimitReport {
    fn from(r: reports::RateLimitReport) -> Self {
        Self {
            total: r.total,
            series: r
                .series
                .into_iter()
                .map(|(start, count)| RefusalBucket { start, count })
                .collect(),
            by_key: r
                .by_key
                .into_iter()
                .map(|(key_id, count)| KeyRefusals { key_id, count })
                .collect(),
        }
    }
}

/// How often a rating was given.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct RatingCount {
    /// 1–5.
    pub rating: i32,
    /// Feedback with this rating.
    pub count: i64,
}

/// Conversation figures.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ConversationAnalytics {
    /// Conversations started.
    pub conversations: u64,
    /// Messages in them (visitor and assistant).
    pub messages: i64,
    /// Mean messages per conversation.
    pub messages_per_conversation: f64,
    /// Mean time from first to last message, seconds.
    pub average_duration_seconds: f64,
    /// Mean rating 1–5; null without feedback.
    pub average_rating: Option<f64>,
    /// Count of each rating, 1 to 5.
    pub ratings: Vec<RatingCount>,
    /// Completed assistant answers.
    pub answers: i64,
    /// Answers citing at least one source.
    pub cited_answers: i64,
    /// Share of answers with citations, 0–1.
    pub cited_share: f64,
}

impl From<reports::ConversationReport> for ConversationAnalytics {
    fn from(r: reports::ConversationReport) -> Self {
        Self {
            conversations: r.conversations,
            messages: r.messages,
            messages_per_conversation: r.messages_per_conversation,
            average_duration_seconds: r.average_duration_seconds,
            average_rating: r.average_rating,
            ratings: r
                .ratings
                .iter()
                .zip(1..)
                .map(|(&count, rating)| RatingCount { rating, count })
                .collect(),
            answers: r.answers,
            cited_answers: r.cited_answers,
            cited_share: r.cited_share,
        }
    }
}

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeBucket {
    /// One bucket per hour.
    #[default]
    Hour,
    /// One bucket per UTC day.
    Day,
}

impl From<TimeBucket> for Granularity {
    fn from(b: TimeBucket) -> Self {
        match b {
            TimeBucket::Hour => Granularity::Hour,
            TimeBucket::Day => Granularity::Day,
        }
    }
}

/// Which traffic or conversations a report covers. Every field is optional.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsFilter {
    /// From this time (inclusive). Series default to the last 7 days.
    pub since: Option<DateTime<Utc>>,
    /// Until this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Only this API key's requests (`key_…`).
    pub key_id: Option<String>,
    /// Only conversations with this assistant (`asst_…`; conversation figures).
    pub assistant_id: Option<String>,
    /// Only this REST route template or GraphQL operation name.
    pub endpoint: Option<String>,
    /// Only this HTTP status.
    pub status: Option<i32>,
    /// Only `rest`, `graphql`, `ws` or `openai`.
    pub transport: Option<String>,
    /// Only refused (true) or admitted (false) requests.
    pub rate_limited: Option<bool>,
}

impl AnalyticsFilter {
    /// The request-log filter.
    pub fn logs(&self) -> AppResult<LogFilter> {
        if let Some(t) = &self.transport
            && !matches!(t.as_str(), "rest" | "graphql" | "ws" | "openai")
        {
            return Err(AppError::bad_input(
                "transport",
                "must be rest, graphql, ws or openai",
            ));
        }
        Ok(LogFilter {
            since: self.since,
            until: self.until,
            key_id: self.key_id.clone(),
            endpoint: self.endpoint.clone(),
            status: self.status,
            transport: self.transport.clone(),
            rate_limited: self.rate_limited,
            through_id: None,
        })
    }

    /// The conversation filter.
    pub fn conversations(&self) -> ConversationFilter {
        ConversationFilter {
            since: self.since,
            until: self.until,
            assistant_id: self.assistant_id.clone(),
        }
    }
}
