//! `/api/v1/knowledge/qas`: curated Q&A pairs.

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
        knowledge::{KnowledgeQaInput, KnowledgeSource},
    },
};

/// Q&A pairs.
#[utoipa::path(get, path = "/api/v1/knowledge/qas", tag = "knowledge", params(SourceParams),
    responses((status = 200, body = List<KnowledgeSource>)))]
pub(super) async fn list_qas(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> AppResult<Json<List<KnowledgeSource>>> {
    list_of(&state, &principal, params, Some(Kind::Qa)).await
}

/// Stores a Q&A pair.
#[utoipa::path(post, path = "/api/v1/knowledge/qas", tag = "knowledge", request_body = KnowledgeQaInput,
    responses((status = 201, body = KnowledgeSource), (status = 422, body = ErrorBody)))]
pub(super) async fn create_qa(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<KnowledgeQaInput>,
) -> AppResult<(StatusCode, Json<KnowledgeSource>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            knowledge::create_qa(&state, &principal, input.into())
                .await?
                .into(),
        ),
    ))
}

/// One Q&A pair.
#[utoipa::path(get, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
pub(super) async fn get_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::get_kind(&state, &principal, &SourceId::parse(&id)?, Kind::Qa)
            .await?
            .into(),
    ))
}

/// Replaces a Q&A pair and re-indexes it.
#[utoipa::path(patch, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)), request_body = KnowledgeQaInput,
    responses((status = 200, body = KnowledgeSource), (status = 404, body = ErrorBody)))]
pub(super) async fn update_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<KnowledgeQaInput>,
) -> AppResult<Json<KnowledgeSource>> {
    Ok(Json(
        knowledge::update_qa(&state, &principal, &SourceId::parse(&id)?, input.into())
            .await?
            .into(),
    ))
}

/// Deletes a Q&A pair.
#[utoipa::path(delete, path = "/api/v1/knowledge/qas/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_qa(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    knowledge::delete(&state, &principal, &SourceId::parse(&id)?, Some(Kind::Qa)).await?;
    Ok(Json(DeletePayload::of(id)))
}
