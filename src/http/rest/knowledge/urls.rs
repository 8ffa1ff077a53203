//! `/api/v1/knowledge/urls`: web pages, fetched and refreshed.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use entity::knowledge_source::Kind;

use super::{SourceParams, list_of};
use crate::{
    auth::Principal,
    domain::ids::SourceId,
    error::AppResult,
    http::{
        extract::{ApiJson, ApiQuery},
        rest::{ErrorBody, List},
    },
    services::knowledge::{self},
    state::AppState,
    views::{
        common::DeletePayload,
        knowledge::{KnowledgeSource, KnowledgeUrlInput, UrlRefresh},
    },
};

/// URL sources.
#[utoipa::path(get, path = "/api/v1/knowledge/urls", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
pub(super) async fn list_urls(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::Url)).await
}

/// Adds a URL, fetched in the background and refreshed on its interval.
#[utoipa::path(post, path = "/api/v1/knowledge/urls", tag = "knowledge", request_body = KnowledgeUrlInput,
    responses((status = 201, body = KnowledgeSource), (status = 422, body = ErrorBody)))]
pub(super) async fn add_url(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<KnowledgeUrlInput>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            knowledge::add_url(&state, &principal, input.into())
                .await?
                .into(),
        ),
    ))
}

/// One URL source.
#[utoipa::path(get, path = "/api/v1/knowledge/urls/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
pub(super) async fn get_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &SourceId::parse(&id)?, Kind::Url)
            .await?
            .into(),
    ))
}

/// Deletes a URL source and its chunks.
#[utoipa::path(delete, path = "/api/v1/knowledge/urls/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &SourceId::parse(&id)?, Some(Kind::Url)).await?;
    Ok(Json(DeletePayload::of(id)))
}

/// Fetches a URL again now; unchanged content is not re-embedded.
#[utoipa::path(post, path = "/api/v1/knowledge/urls/{id}/refresh", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
pub(super) async fn refresh_url(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::refresh_url(&state, &principal, &SourceId::parse(&id)?)
            .await?
            .into(),
    ))
}

/// The latest fetches of a URL source, newest first.
#[utoipa::path(get, path = "/api/v1/knowledge/urls/{id}/refreshes", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = Vec<UrlRefresh>), (status = 404, body = ErrorBody)))]
pub(super) async fn url_refreshes(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Vec<UrlRefresh>>> {
    let log = knowledge::refreshes(&state, &principal, &SourceId::parse(&id)?, 100).await?;
    Ok(Json(log.into_iter().map(Into::into).collect()))
}
