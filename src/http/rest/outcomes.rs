//! `/analytics/outcomes` (also under `/api/v1/analytics/outcomes`): whether the assistant
//! resolves conversations, per day or version, as JSON, CSV or JSON lines.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ErrorBody,
    analytics::{Format, answer},
};
use crate::{
    auth::Principal,
    error::AppResult,
    http::extract::ApiQuery,
    services::outcomes::{self, OutcomeQuery},
    state::AppState,
    views::outcomes::{OutcomeAnalytics, OutcomeGroupBy, OutcomeRow},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(outcome_report))
        .route("/api/v1/analytics/outcomes", get(outcome_report))
}

/// Range, assistant, cut and format of an outcome report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OutcomeParams {
    /// Conversations started at or after (RFC 3339; default: 30 days before `to`).
    from: Option<DateTime<Utc>>,
    /// Conversations started before (default: now); at most 366 days after `from`.
    to: Option<DateTime<Utc>>,
    /// Only this assistant's conversations.
    assistant_id: Option<String>,
    /// `day` (default) or `version`.
    #[param(inline)]
    group_by: Option<OutcomeGroupBy>,
    /// `json` (default), `csv` or `jsonl`.
    #[param(inline)]
    format: Option<Format>,
}

/// Containment, handoffs by trigger, unanswered and cited replies, CSAT, average rating and
/// first-token latency per day or version. CSV and JSON lines hold the rows, then `total`.
#[utoipa::path(get, path = "/analytics/outcomes", tag = "analytics", params(OutcomeParams),
    responses((status = 200, description = "As `format` asks: JSON, CSV or JSON lines",
        content((OutcomeAnalytics = "application/json"), (String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn outcome_report(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<OutcomeParams>,
) -> AppResult<Response> {
    let group_by = params.group_by.unwrap_or_default();
    let query = OutcomeQuery {
        from: params.from,
        to: params.to,
        assistant_id: params.assistant_id,
    };
    let report = outcomes::report(&state.db, &principal, query, group_by.into()).await?;
    let report = OutcomeAnalytics::of(report, group_by);
    match params.format.unwrap_or_default() {
        Format::Json => Ok(Json(report).into_response()),
        format => {
            let rows: Vec<FlatOutcome> = report
                .rows
                .into_iter()
                .chain(std::iter::once(report.total))
                .map(FlatOutcome::from)
                .collect();
            answer(&rows, format, "outcomes")
        }
    }
}

/// One outcome row, flat, for CSV.
#[derive(Serialize)]
struct FlatOutcome {
    key: String,
    conversations: i64,
    contained: i64,
    containment_rate: f64,
    handoffs: i64,
    handoff_rate: f64,
    handoffs_visitor: i64,
    handoffs_operator: i64,
    handoffs_rating: i64,
    handoffs_unanswered: i64,
    handoffs_keyword: i64,
    answers: i64,
    unanswered: i64,
    unanswered_rate: f64,
    citation_rate: f64,
    ratings: i64,
    csat: Option<f64>,
    average_rating: Option<f64>,
    first_token_p50_ms: Option<f64>,
    first_token_p95_ms: Option<f64>,
}

impl From<OutcomeRow> for FlatOutcome {
    fn from(r: OutcomeRow) -> Self {
        use crate::views::handoff::HandoffTrigger as T;
        let by = |trigger: T| {
            r.handoffs_by_trigger
                .iter()
                .find(|c| c.trigger == trigger)
                .map_or(0, |c| c.count)
        };
        Self {
            handoffs_visitor: by(T::Visitor),
            handoffs_operator: by(T::Operator),
            handoffs_rating: by(T::Rating),
            handoffs_unanswered: by(T::Unanswered),
            handoffs_keyword: by(T::Keyword),
            key: r.key,
            conversations: r.conversations,
            contained: r.contained,
            containment_rate: r.containment_rate,
            handoffs: r.handoffs,
            handoff_rate: r.handoff_rate,
            answers: r.answers,
            unanswered: r.unanswered,
            unanswered_rate: r.unanswered_rate,
            citation_rate: r.citation_rate,
            ratings: r.ratings,
            csat: r.csat,
            average_rating: r.average_rating,
            first_token_p50_ms: r.first_token_p50_ms,
            first_token_p95_ms: r.first_token_p95_ms,
        }
    }
}
