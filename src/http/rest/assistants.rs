//! `/api/v1/assistants`: assistants and their versions.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ErrorBody, List, ListParams};
use crate::{
    auth::Principal,
    domain::ids::{AssistantId, SourceId},
    error::AppResult,
    http::extract::{ApiJson, ApiQuery},
    services,
    state::AppState,
    views::{
        assistants::{Assistant, AssistantVersion, CreateAssistantInput, UpdateAssistantInput},
        common::DeletePayload,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_assistants, create_assistant))
        .routes(routes!(get_assistant, update_assistant, delete_assistant))
        .routes(routes!(list_versions))
        .routes(routes!(promote_version))
        .routes(routes!(set_active))
        .routes(routes!(knowledge_rules))
        .routes(routes!(link_source))
        .routes(routes!(exclude_source))
        .routes(routes!(unlink_source))
}

/// The organization's assistants, oldest first.
#[utoipa::path(get, path = "/api/v1/assistants", tag = "assistants", params(ListParams),
    responses((status = 200, body = List<Assistant>), (status = 401, body = ErrorBody)))]
async fn list_assistants(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<Json<List<Assistant>>> {
    let page = services::assistants::list(&state.db, &principal, &params.page()?).await?;
    Ok(Json(List::from_page(
        page,
        |(a, _)| a.id.clone(),
        Assistant::from,
    )))
}

/// Creates an assistant; its version 1 is live.
#[utoipa::path(post, path = "/api/v1/assistants", tag = "assistants", request_body = CreateAssistantInput,
    responses((status = 201, body = Assistant), (status = 422, body = ErrorBody)))]
async fn create_assistant(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateAssistantInput>,
) -> AppResult<(StatusCode, Json<Assistant>)> {
    let (patch, active) = input.into_patch();
    let row = services::assistants::create(&state.db, &principal, patch, active).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// One assistant with its live settings.
#[utoipa::path(get, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`")),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn get_assistant(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
) -> AppResult<Json<Assistant>> {
    Ok(Json(
        services::assistants::get(&state.db, &principal, &AssistantId::parse(&assistant_id)?)
            .await?
            .into(),
    ))
}

/// Writes a new immutable version from the given changes; it goes live unless
/// `"promote": false` (a draft).
#[utoipa::path(patch, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`")), request_body = UpdateAssistantInput,
    responses((status = 200, body = AssistantVersion), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_assistant(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
    ApiJson(input): ApiJson<UpdateAssistantInput>,
) -> AppResult<Json<AssistantVersion>> {
    let promote = input.promote.unwrap_or(true);
    let (patch, base) = input.into_patch();
    let written = services::assistants::update(
        &state,
        &principal,
        &AssistantId::parse(&assistant_id)?,
        patch,
        promote,
        base,
    )
    .await?;
    Ok(Json(written.into()))
}

/// Deletes an assistant; past conversations keep resolving it.
#[utoipa::path(delete, path = "/api/v1/assistants/{assistant_id}", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`")),
    responses((status = 200, body = DeletePayload), (status = 404, body = ErrorBody)))]
async fn delete_assistant(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
) -> AppResult<Json<DeletePayload>> {
    services::assistants::delete(&state.db, &principal, &AssistantId::parse(&assistant_id)?)
        .await?;
    Ok(Json(DeletePayload::of(assistant_id)))
}

/// Every version of an assistant, oldest first.
#[utoipa::path(get, path = "/api/v1/assistants/{assistant_id}/versions", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`"), ListParams),
    responses((status = 200, body = List<AssistantVersion>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<Json<List<AssistantVersion>>> {
    let page = services::assistants::versions(
        &state.db,
        &principal,
        &AssistantId::parse(&assistant_id)?,
        &params.page()?,
    )
    .await?;
    Ok(Json(List::from_page(
        page,
        |r| r.version.id.clone(),
        AssistantVersion::from,
    )))
}

/// Makes a version live: a newer draft, or an older version (rollback).
#[utoipa::path(post, path = "/api/v1/assistants/{assistant_id}/versions/{version}/promote", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`"), ("version" = i32, Path, description = "Version number")),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn promote_version(
    State(state): State<AppState>,
    principal: Principal,
    Path((assistant_id, version)): Path<(String, String)>,
) -> AppResult<Json<Assistant>> {
    let number = version
        .parse()
        .map_err(|_| crate::error::AppError::NotFound("assistant version"))?;
    Ok(Json(
        services::assistants::promote(
            &state,
            &principal,
            &AssistantId::parse(&assistant_id)?,
            number,
        )
        .await?
        .into(),
    ))
}

/// Body of `PUT …/active`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ActiveBody {
    /// `false` pauses the assistant, `true` resumes it.
    active: bool,
}

/// Pauses or resumes an assistant without writing a version.
#[utoipa::path(put, path = "/api/v1/assistants/{assistant_id}/active", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`")), request_body = ActiveBody,
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn set_active(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
    ApiJson(body): ApiJson<ActiveBody>,
) -> AppResult<Json<Assistant>> {
    Ok(Json(
        services::assistants::set_active(
            &state.db,
            &principal,
            &AssistantId::parse(&assistant_id)?,
            body.active,
        )
        .await?
        .into(),
    ))
}

/// The sources an assistant is linked to and excluded from.
#[derive(serde::Serialize, ToSchema)]
struct KnowledgeRules {
    /// When any is linked, only linked sources are used.
    linked: Vec<String>,
    /// Never used.
    excluded: Vec<String>,
}

/// Which sources the assistant may use.
#[utoipa::path(get, path = "/api/v1/assistants/{assistant_id}/knowledge", tag = "assistants",
    params(("assistant_id" = String, Path, description = "`asst_…`")),
    responses((status = 200, body = KnowledgeRules), (status = 404, body = ErrorBody)))]
async fn knowledge_rules(
    State(state): State<AppState>,
    principal: Principal,
    Path(assistant_id): Path<String>,
) -> AppResult<Json<KnowledgeRules>> {
    let (linked, excluded) =
        services::retrieval::rules(&state, &principal, &AssistantId::parse(&assistant_id)?).await?;
    Ok(Json(KnowledgeRules { linked, excluded }))
}

/// Links a source: once any source is linked, only linked sources are used.
#[utoipa::path(post, path = "/api/v1/assistants/{assistant_id}/knowledge/{source_id}/link", tag = "assistants",
    params(("assistant_id" = String, Path), ("source_id" = String, Path)),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn link_source(
    State(state): State<AppState>,
    principal: Principal,
    Path((assistant_id, source_id)): Path<(String, String)>,
) -> AppResult<Json<Assistant>> {
    Ok(Json(
        services::retrieval::set_rule(
            &state,
            &principal,
            &AssistantId::parse(&assistant_id)?,
            &SourceId::parse(&source_id)?,
            Some(true),
        )
        .await?
        .into(),
    ))
}

/// Excludes a source: it is never used for this assistant.
#[utoipa::path(post, path = "/api/v1/assistants/{assistant_id}/knowledge/{source_id}/exclude", tag = "assistants",
    params(("assistant_id" = String, Path), ("source_id" = String, Path)),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn exclude_source(
    State(state): State<AppState>,
    principal: Principal,
    Path((assistant_id, source_id)): Path<(String, String)>,
) -> AppResult<Json<Assistant>> {
    Ok(Json(
        services::retrieval::set_rule(
            &state,
            &principal,
            &AssistantId::parse(&assistant_id)?,
            &SourceId::parse(&source_id)?,
            Some(false),
        )
        .await?
        .into(),
    ))
}

/// Removes a source's link or exclusion.
#[utoipa::path(delete, path = "/api/v1/assistants/{assistant_id}/knowledge/{source_id}", tag = "assistants",
    params(("assistant_id" = String, Path), ("source_id" = String, Path)),
    responses((status = 200, body = Assistant), (status = 404, body = ErrorBody)))]
async fn unlink_source(
    State(state): State<AppState>,
    principal: Principal,
    Path((assistant_id, source_id)): Path<(String, String)>,
) -> AppResult<Json<Assistant>> {
    Ok(Json(
        services::retrieval::set_rule(
            &state,
            &principal,
            &AssistantId::parse(&assistant_id)?,
            &SourceId::parse(&source_id)?,
            None,
        )
        .await?
        .into(),
    ))
}
