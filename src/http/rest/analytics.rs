//! `/analytics/…` (also under `/api/v1/analytics/…`): reports as JSON, or exported as CSV
//! (`?format=csv`) or JSON lines (`?format=jsonl`). A log export holds every matching entry.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State,
    http::header::{CONTENT_DISPOSITION, CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List};
use crate::{
    auth::Principal,
    domain::pagination::PageRequest,
    error::{AppError, AppResult},
    http::extract::ApiQuery,
    services::analytics as reports,
    state::AppState,
    views::analytics::{
        AnalyticsFilter, ConversationAnalytics, EndpointStats, LogEntry, RateLimitReport,
        RefusalBucket, TimeBucket, UsageBucket,
    },
};

/// Entries read per page of a log export.
const EXPORT_PAGE: u64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logs))
        .routes(routes!(usage))
        .routes(routes!(endpoints))
        .routes(routes!(rate_limits))
        .routes(routes!(conversations))
        .route("/api/v1/analytics/logs", get(logs))
        .route("/api/v1/analytics/usage", get(usage))
        .route("/api/v1/analytics/endpoints", get(endpoints))
        .route("/api/v1/analytics/rate-limits", get(rate_limits))
        .route("/api/v1/analytics/conversations", get(conversations))
}

/// How a report is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum Format {
    /// JSON (paginated for logs).
    #[default]
    Json,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Filters, bucket size, page and format of a report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportParams {
    /// From this time (inclusive, RFC 3339). Series default to the last 7 days.
    since: Option<DateTime<Utc>>,
    /// Until this time (exclusive).
    until: Option<DateTime<Utc>>,
    /// Only this API key's requests.
    key_id: Option<String>,
    /// Only conversations with this assistant.
    assistant_id: Option<String>,
    /// Only this route template or GraphQL operation name.
    endpoint: Option<String>,
    /// Only this HTTP status.
    status: Option<i32>,
    /// Only `rest`, `graphql`, `ws` or `openai`.
    transport: Option<String>,
    /// Only refused (true) or admitted (false) requests.
    rate_limited: Option<bool>,
    /// `hour` (default) or `day`.
    #[param(inline)]
    granularity: Option<TimeBucket>,
    /// `json` (default), `csv` or `jsonl`.
    #[param(inline)]
    format: Option<Format>,
    /// Page size of a JSON log page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl ReportParams {
    fn filter(&self) -> AnalyticsFilter {
        AnalyticsFilter {
            since: self.since,
            until: self.until,
            key_id: self.key_id.clone(),
            assistant_id: self.assistant_id.clone(),
            endpoint: self.endpoint.clone(),
            status: self.status,
            transport: self.transport.clone(),
            rate_limited: self.rate_limited,
        }
    }
}

/// Logged requests, oldest first: a page as JSON, or every match as CSV / JSON lines.
#[utoipa::path(get, path = "/analytics/logs", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((List<LogEntry> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody)))]
async fn logs(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> AppResult<Response> {
    let mut filter = params.filter().logs()?;
    let format = params.format.unwrap_or_default();
    if format == Format::Json {
        let page = PageRequest::rest(params.limit, params.cursor)?;
        let logs = reports::logs(&state.db, &state.request_log, &principal, &filter, &page).await?;
        let list = List::from_page(logs, |e| e.id.clone(), LogEntry::from);
        return Ok(Json(list).into_response());
    }
    // A snapshot: the entries logged before the export began (not the export itself).
    let newest = PageRequest {
        after: None,
        before: None,
        limit: 1,
        from_end: true,
    };
    filter.through_id = reports::logs(&state.db, &state.request_log, &principal, &filter, &newest)
        .await?
        .items
        .pop()
        .map(|e| e.id);
    if filter.through_id.is_none() {
        return Ok(export(
            format,
            "logs",
            Body::from(
                encode::<LogEntry>(&[], format, true).map_err(|e| AppError::Internal(e.into()))?,
            ),
        ));
    }
    let stream = async_stream::stream! {
        let mut after = None;
        let mut first = true;
        loop {
            let page = PageRequest { after: after.take(), before: None, limit: EXPORT_PAGE, from_end: false };
            let logs = match reports::logs(&state.db, &state.request_log, &principal, &filter, &page).await {
                Ok(logs) => logs,
                Err(e) => {
                    e.log();
                    yield Err(std::io::Error::other("the export stopped: the log could not be read"));
                    break;
                }
            };
            after = logs.items.last().map(|e| e.id.clone());
            let more = logs.has_next;
            let rows: Vec<LogEntry> = logs.items.into_iter().map(LogEntry::from).collect();
            yield encode(&rows, format, first).map(Bytes::from);
            first = false;
            if !more {
                break;
            }
        }
    };
    Ok(export(format, "logs", Body::from_stream(stream)))
}

/// Requests per hour or day, empty buckets included.
#[utoipa::path(get, path = "/analytics/usage", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((Vec<UsageBucket> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody)))]
async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> AppResult<Response> {
    let filter = params.filter().logs()?;
    let granularity = params.granularity.unwrap_or_default().into();
    let buckets = reports::usage(
        &state.db,
        &state.request_log,
        &principal,
        &filter,
        granularity,
    )
    .await?;
    let rows: Vec<UsageBucket> = buckets.into_iter().map(Into::into).collect();
    answer(&rows, params.format.unwrap_or_default(), "usage")
}

/// Requests, error rate and latency percentiles per route or operation, busiest first.
#[utoipa::path(get, path = "/analytics/endpoints", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((Vec<EndpointStats> = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody)))]
async fn endpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> AppResult<Response> {
    let filter = params.filter().logs()?;
    let stats = reports::endpoints(&state.db, &state.request_log, &principal, &filter).await?;
    let rows: Vec<EndpointStats> = stats.into_iter().map(Into::into).collect();
    answer(&rows, params.format.unwrap_or_default(), "endpoints")
}

/// Requests refused by the rate limiter, over time and by key. CSV and JSON lines export the
/// series.
#[utoipa::path(get, path = "/analytics/rate-limits", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((RateLimitReport = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody)))]
async fn rate_limits(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> AppResult<Response> {
    let filter = params.filter().logs()?;
    let granularity = params.granularity.unwrap_or_default().into();
    let report: RateLimitReport = reports::rate_limits(
        &state.db,
        &state.request_log,
        &principal,
        &filter,
        granularity,
    )
    .await?
    .into();
    match params.format.unwrap_or_default() {
        Format::Json => Ok(Json(report).into_response()),
        format => answer::<RefusalBucket>(&report.series, format, "rate-limits"),
    }
}

/// Conversation figures: count, messages per conversation, duration, ratings, citations.
#[utoipa::path(get, path = "/analytics/conversations", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((ConversationAnalytics = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody)))]
async fn conversations(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> AppResult<Response> {
    let filter = params.filter().conversations();
    let report: ConversationAnalytics = reports::conversations(&state.db, &principal, &filter)
        .await?
        .into();
    match params.format.unwrap_or_default() {
        Format::Json => Ok(Json(report).into_response()),
        format => answer(&[FlatConversations::from(report)], format, "conversations"),
    }
}

/// The conversation figures as one flat row, for CSV.
#[derive(Serialize)]
struct FlatConversations {
    conversations: u64,
    messages: i64,
    messages_per_conversation: f64,
    average_duration_seconds: f64,
    average_rating: Option<f64>,
    rating_1: i64,
    rating_2: i64,
    rating_3: i64,
    rating_4: i64,
    rating_5: i64,
    answers: i64,
    cited_answers: i64,
    cited_share: f64,
}

impl From<ConversationAnalytics> for FlatConversations {
    fn from(r: ConversationAnalytics) -> Self {
        let count = |rating: i32| {
            r.ratings
                .iter()
                .find(|c| c.rating == rating)
                .map_or(0, |c| c.count)
        };
        Self {
            rating_1: count(1),
            rating_2: count(2),
            rating_3: count(3),
            rating_4: count(4),
            rating_5: count(5),
            conversations: r.conversations,
            messages: r.messages,
            messages_per_conversation: r.messages_per_conversation,
            average_duration_seconds: r.average_duration_seconds,
            average_rating: r.average_rating,
            answers: r.answers,
            cited_answers: r.cited_answers,
            cited_share: r.cited_share,
        }
    }
}

/// Rows as JSON, CSV or JSON lines.
pub(super) fn answer<T: Serialize>(rows: &[T], format: Format, name: &str) -> AppResult<Response> {
    if format == Format::Json {
        return Ok(Json(rows).into_response());
    }
    let body = encode(rows, format, true).map_err(|e| AppError::Internal(e.into()))?;
    Ok(export(format, name, Body::from(body)))
}

/// Rows in `format` (CSV with a header row when `header`).
fn encode<T: Serialize>(rows: &[T], format: Format, header: bool) -> std::io::Result<Vec<u8>> {
    match format {
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(header)
                .from_writer(Vec::new());
            for row in rows {
                writer.serialize(row).map_err(std::io::Error::other)?;
            }
            let plain = writer
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            neutralized(&plain)
        }
        Format::Jsonl | Format::Json => {
            let mut out = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut out, row)?;
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

/// The CSV with every cell a spreadsheet would run as a formula (one that begins with `=`,
/// `+`, `-`, `@`, a tab or a carriage return: OWASP's CSV injection) prefixed with `'`, so
/// that a visitor's words or an operation name open as text.
fn neutralized(csv: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv);
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for record in reader.byte_records() {
        let record = record.map_err(std::io::Error::other)?;
        let cells = record.iter().map(|cell| {
            if matches!(
                cell.first(),
                Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
            ) {
                [b"'".as_slice(), cell].concat()
            } else {
                cell.to_vec()
            }
        });
        writer.write_record(cells).map_err(std::io::Error::other)?;
    }
    writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// A download of `body`.
fn export(format: Format, name: &str, body: Body) -> Response {
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        _ => ("application/x-ndjson", "jsonl"),
    };
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{extension}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_open_as_text() {
        #[derive(Serialize)]
        struct Row {
            name: &'static str,
            count: i64,
        }
        let rows = [
            Row {
                name: "=HYPERLINK(\"http://evil\")",
                count: 1,
            },
            Row {
                name: "@SUM(A1)",
                count: -2,
            },
            Row {
                name: "plain, with a comma",
                count: 3,
            },
        ];
        let csv = encode(&rows, Format::Csv, true).expect("csv");
        assert_eq!(
            String::from_utf8(csv).expect("utf-8"),
            "name,count\n\"'=HYPERLINK(\"\"http://evil\"\")\",1\n'@SUM(A1),'-2\n\"plain, with a comma\",3\n"
        );
    }
}
