//! `/api/v1/knowledge-gaps`: questions the assistant could not answer well, and answering
//! them.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List};
use crate::{
    auth::Principal,
    domain::{ids::GapId, pagination::PageRequest},
    error::AppResult,
    http::extract::{ApiJson, ApiQuery},
    services::{self, knowledge_gaps::ListGaps},
    state::AppState,
    views::knowledge_gaps::{KnowledgeGap, KnowledgeGapStatus},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_gaps))
        .routes(routes!(get_gap))
        .routes(routes!(resolve_gap))
        .routes(routes!(dismiss_gap))
}

/// `?limit=&cursor=&assistant_id=&status=`
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct GapParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Of this assistant.
    assistant_id: Option<String>,
    /// In this state (`OPEN` when absent; `ALL` for every state).
    status: Option<String>,
}

/// Knowledge gaps, oldest first: open ones unless `status` says otherwise.
#[utoipa::path(get, path = "/api/v1/knowledge-gaps", tag = "knowledge", params(GapParams),
    responses((status = 200, body = List<KnowledgeGap>), (status = 422, body = ErrorBody)))]
async fn list_gaps(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<GapParams>,
) -> AppResult<Json<List<KnowledgeGap>>> {
    let page = PageRequest::rest(params.limit, params.cursor)?;
    let status = match params.status.as_deref() {
        None => Some(KnowledgeGapStatus::Open),
        Some("ALL") => None,
        Some(raw) => Some(
            serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
                crate::error::AppError::bad_input(
                    "status",
                    "must be OPEN, RESOLVED, DISMISSED or ALL",
                )
            })?,
        ),
    };
    let filter = ListGaps {
        assistant_id: params.assistant_id,
        status: status.map(Into::into),
    };
    let rows = services::knowledge_gaps::list(&state, &principal, filter, &page).await?;
    Ok(Json(List::from_page(
        rows,
        |g| g.id.clone(),
        KnowledgeGap::from,
    )))
}

/// One knowledge gap.
#[utoipa::path(get, path = "/api/v1/knowledge-gaps/{gap_id}", tag = "knowledge",
    params(("gap_id" = String, Path, description = "`gap_…`")),
    responses((status = 200, body = KnowledgeGap), (status = 404, body = ErrorBody)))]
async fn get_gap(
    State(state): State<AppState>,
    principal: Principal,
    Path(gap_id): Path<String>,
) -> AppResult<Json<KnowledgeGap>> {
    let id = GapId::parse(&gap_id)?;
    Ok(Json(
        services::knowledge_gaps::get(&state, &principal, &id)
            .await?
            .into(),
    ))
}

/// The answer to a knowledge gap.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    /// 1–10,000 characters.
    answer: String,
}

/// Answers a gap with a Q&A pair of its representative question and `answer`, and resolves
/// it.
#[utoipa::path(post, path = "/api/v1/knowledge-gaps/{gap_id}/resolve", tag = "knowledge",
    params(("gap_id" = String, Path, description = "`gap_…`")), request_body = ResolveBody,
    responses((status = 200, body = KnowledgeGap), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "resolved already"), (status = 422, body = ErrorBody)))]
async fn resolve_gap(
    State(state): State<AppState>,
    principal: Principal,
    Path(gap_id): Path<String>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> AppResult<Json<KnowledgeGap>> {
    let id = GapId::parse(&gap_id)?;
    Ok(Json(
        services::knowledge_gaps::resolve(&state, &principal, &id, body.answer)
            .await?
            .into(),
    ))
}

/// Dismisses an open gap.
#[utoipa::path(post, path = "/api/v1/knowledge-gaps/{gap_id}/dismiss", tag = "knowledge",
    params(("gap_id" = String, Path, description = "`gap_…`")),
    responses((status = 200, body = KnowledgeGap), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "resolved")))]
async fn dismiss_gap(
    State(state): State<AppState>,
    principal: Principal,
    Path(gap_id): Path<String>,
) -> AppResult<Json<KnowledgeGap>> {
    let id = GapId::parse(&gap_id)?;
    Ok(Json(
        services::knowledge_gaps::dismiss(&state, &principal, &id)
            .await?
            .into(),
    ))
}
