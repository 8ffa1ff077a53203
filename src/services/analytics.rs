//! Analytics over the organization's own traffic and conversations (read scope).
//!
//! Reads over the request log first write what this server has queued, so a caller always
//! sees its own earlier requests.

use chrono::{DateTime, Duration, TimeZone, Utc};
use entity::request_log;
use sea_orm::DatabaseConnection;

use crate::runtime::request_log::RequestLog;
use crate::{
    auth::{Principal, Scope},
    domain::pagination::{Page, PageRequest},
    error::{AppError, AppResult},
    repo::{
        self,
        analytics::{ConversationFilter, LogFilter},
    },
};

/// Most requests whose latencies an `endpoints` report reads (the newest ones).
const LATENCY_ROWS: u64 = 200_000;
/// Longest range a time series covers, in hours (92 days).
const MAX_RANGE_HOURS: i64 = 92 * 24;

/// Time buckets of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One bucket per hour.
    Hour,
    /// One bucket per UTC day.
    Day,
}

/// Requests in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Requests made (refused ones included).
    pub requests: i64,
    /// Requests answered with status 400 or more (refused ones included).
    pub errors: i64,
    /// Requests refused by the rate limiter.
    pub rate_limited: i64,
}

/// Traffic of one route or operation.
#[derive(Debug, Clone, PartialEq)]
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
    /// `errors / requests`.
    pub error_rate: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
}

/// Refused requests over time and by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitReport {
    /// Refused requests in the range.
    pub total: i64,
    /// Refusals per bucket (buckets with none left out).
    pub series: Vec<(DateTime<Utc>, i64)>,
    /// Refusals per API key (`None` for widget tokens), most first.
    pub by_key: Vec<(Option<String>, i64)>,
}

/// Conversations in a range.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationReport {
    /// Conversations started.
    pub conversations: u64,
    /// Messages in them (visitor and assistant).
    pub messages: i64,
    /// `messages / conversations`.
    pub messages_per_conversation: f64,
    /// Mean time from first to last message, in seconds, over conversations with messages.
    pub average_duration_seconds: f64,
    /// Mean feedback rating (1–5), absent without feedback.
    pub average_rating: Option<f64>,
    /// Count of each rating 1 to 5.
    pub ratings: [i64; 5],
    /// Completed assistant answers.
    pub answers: i64,
    /// Of them, answers that cite at least one source.
    pub cited_answers: i64,
    /// `cited_answers / answers`.
    pub cited_share: f64,
}

/// A page of the request log.
pub async fn logs(
    db: &DatabaseConnection,
    log: &RequestLog,
    principal: &Principal,
    filter: &LogFilter,
    page: &PageRequest,
) -> AppResult<Page<request_log::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    log.flush().await;
    Ok(repo::analytics::logs(db, &tenant, filter, page).await?)
}

/// Requests per hour or day over the range (default: the last 7 days), empty buckets
/// included.
pub async fn usage(
    db: &DatabaseConnection,
    log: &RequestLog,
    principal: &Principal,
    filter: &LogFilter,
    granularity: Granularity,
) -> AppResult<Vec<UsageBucket>> {
    let tenant = principal.scope(Scope::Read)?;
    let (since, until) = series_range(filter)?;
    let filter = LogFilter {
        since: Some(since),
        until: Some(until),
        ..filter.clone()
    };
    log.flush().await;
    let rows = repo::analytics::hourly(db, &tenant, &filter).await?;
    Ok(fold_usage(&rows, since, until, granularity))
}

/// Requests, errors and latency percentiles per route or operation, busiest first.
pub async fn endpoints(
    db: &DatabaseConnection,
    log: &RequestLog,
    principal: &Principal,
    filter: &LogFilter,
) -> AppResult<Vec<EndpointStats>> {
    let tenant = principal.scope(Scope::Read)?;
    log.flush().await;
    let rows = repo::analytics::latencies(db, &tenant, filter, LATENCY_ROWS).await?;
    Ok(endpoint_stats(rows))
}

/// Refused requests over time and by key.
pub async fn rate_limits(
    db: &DatabaseConnection,
    log: &RequestLog,
    principal: &Principal,
    filter: &LogFilter,
    granularity: Granularity,
) -> AppResult<RateLimitReport> {
    let usage = usage(db, log, principal, filter, granularity).await?;
    let tenant = principal.scope(Scope::Read)?;
    let (since, until) = series_range(filter)?;
    let ranged = LogFilter {
        since: Some(since),
        until: Some(until),
        ..filter.clone()
    };
    let mut by_key = repo::analytics::refusals_by_key(db, &tenant, &ranged).await?;
    by_key.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(RateLimitReport {
        total: usage.iter().map(|b| b.rate_limited).sum(),
        series: usage
            .into_iter()
            .filter(|b| b.rate_limited > 0)
            .map(|b| (b.start, b.rate_limited))
            .collect(),
        by_key,
    })
}

/// Conversations started in the range (all time by default), optionally with one assistant.
pub async fn conversations(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: &ConversationFilter,
) -> AppResult<ConversationReport> {
    let tenant = principal.scope(Scope::Read)?;
    check_order(filter.since, filter.until)?;
    let conversations = repo::analytics::conversation_count(db, &tenant, filter).await?;
    let spans = repo::analytics::conversation_spans(db, &tenant, filter).await?;
    let ratings = repo::analytics::ratings(db, &tenant, filter).await?;
    let (answers, cited_answers) = repo::analytics::answers(db, &tenant, filter).await?;
    let messages: i64 = spans.iter().map(|s| s.1).sum();
    let durations: Vec<f64> = spans
        .iter()
        .map(|(_, _, first, last)| (*last - *first).num_milliseconds() as f64 / 1000.0)
        .collect();
    let mut counts = [0i64; 5];
    for (rating, count) in ratings {
        if let Some(slot) = usize::try_from(rating - 1)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *slot += count;
        }
    }
    let rated: i64 = counts.iter().sum();
    let rating_sum: i64 = counts.iter().zip(1..).map(|(c, r)| c * r).sum();
    Ok(ConversationReport {
        conversations,
        messages,
        messages_per_conversation: ratio(messages, conversations as i64),
        average_duration_seconds: mean(&durations),
        average_rating: (rated > 0).then(|| rating_sum as f64 / rated as f64),
        ratings: counts,
        answers,
        cited_answers,
        cited_share: ratio(cited_answers, answers),
    })
}

fn check_order(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> AppResult<()> {
    match (since, until) {
        (Some(s), Some(u)) if s >= u => Err(AppError::bad_input("until", "must be after `since`")),
        _ => Ok(()),
    }
}

/// The range of a series: the filter's, defaulting to the 7 days up to now.
fn series_range(filter: &LogFilter) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    check_order(filter.since, filter.until)?;
    let until = filter.until.unwrap_or_else(Utc::now);
    let since = filter.since.unwrap_or(until - Duration::days(7));
    if (until - since).num_hours() > MAX_RANGE_HOURS {
        return Err(AppError::bad_input(
            "since",
            format!("a series covers at most {} days", MAX_RANGE_HOURS / 24),
        ));
    }
    Ok((since, until))
}

fn hour_start(hour: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(hour * 3600, 0)
        .single()
        .unwrap_or_default()
}

/// Buckets from `since` to `until` (empty ones included) from per-hour rows.
fn fold_usage(
    rows: &[(i64, i64, i64, i64)],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    granularity: Granularity,
) -> Vec<UsageBucket> {
    let step = match granularity {
        Granularity::Hour => 1,
        Granularity::Day => 24,
    };
    let bucket_of = |hour: i64| hour - hour.rem_euclid(step);
    let first = bucket_of(since.timestamp().div_euclid(3600));
    let last = bucket_of((until.timestamp() - 1).div_euclid(3600));
    let mut buckets: Vec<UsageBucket> = (first..=last)
        .step_by(step as usize)
        .map(|hour| UsageBucket {
            start: hour_start(hour),
            requests: 0,
            errors: 0,
            rate_limited: 0,
        })
        .collect();
    for &(hour, requests, errors, refused) in rows {
        let index = (bucket_of(hour) - first) / step;
        if let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
            bucket.requests += requests;
            bucket.errors += errors;
            bucket.rate_limited += refused;
        }
    }
    buckets
}

/// Transport, endpoint and operation type.
type EndpointKey = (String, String, Option<String>);

fn endpoint_stats(rows: Vec<(String, String, Option<String>, i32, f64)>) -> Vec<EndpointStats> {
    use std::collections::HashMap;
    let mut groups: HashMap<EndpointKey, (i64, Vec<f64>)> = HashMap::new();
    for (transport, endpoint, kind, status, latency) in rows {
        let group = groups.entry((transport, endpoint, kind)).or_default();
        group.0 += i64::from(status >= 400);
        group.1.push(latency);
    }
    let mut stats: Vec<EndpointStats> = groups
        .into_iter()
        .map(
            |((transport, endpoint, operation_type), (errors, mut latencies))| {
                latencies.sort_by(f64::total_cmp);
                let requests = latencies.len() as i64;
                EndpointStats {
                    transport,
                    endpoint,
                    operation_type,
                    requests,
                    errors,
                    error_rate: ratio(errors, requests),
                    p50_ms: percentile(&latencies, 0.50),
                    p95_ms: percentile(&latencies, 0.95),
                    p99_ms: percentile(&latencies, 0.99),
                }
            },
        )
        .collect();
    stats.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
    });
    stats
}

/// The nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `part / whole`, 0 when `whole` is.
pub(crate) fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_observed_values() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn hours_fold_into_days_with_empty_days_kept() {
        let day0 = Utc
            .with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
            .single()
            .expect("date");
        let h = day0.timestamp() / 3600;
        let rows = [(h + 1, 3, 1, 0), (h + 23, 2, 0, 2), (h + 48, 5, 5, 5)];
        let days = fold_usage(&rows, day0, day0 + Duration::days(3), Granularity::Day);
        let counts: Vec<_> = days
            .iter()
            .map(|d| (d.requests, d.errors, d.rate_limited))
            .collect();
        assert_eq!(counts, vec![(5, 1, 2), (0, 0, 0), (5, 5, 5)]);
        assert_eq!(days[1].start, day0 + Duration::days(1));
    }
}
