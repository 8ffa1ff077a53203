//! `/api/v1/api-keys`: key management for admin keys.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::Principal,
    domain::ids::KeyId,
    error::AppResult,
    http::extract::ApiJson,
    services,
    state::AppState,
    views::api_keys::{ApiKey, CreateApiKeyInput, CreatedApiKey},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// The organization's API keys (admin scope).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    responses((status = 200, body = Vec<ApiKey>), (status = 403, body = ErrorBody)))]
async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<ApiKey>>> {
    let keys = services::api_keys::list(&state.db, &principal).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Issues a key (admin scope). The plaintext key and secret appear only in this response.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyInput,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateApiKeyInput>,
) -> AppResult<(StatusCode, Json<CreatedApiKey>)> {
    let created = services::api_keys::create(&state.db, &principal, input.into_new_key()?).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Revokes a key (admin scope); it stops authenticating at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = String, Path, description = "`key_…`")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> AppResult<Json<ApiKey>> {
    Ok(Json(
        services::api_keys::revoke(&state.db, &principal, &KeyId::parse(&key_id)?)
            .await?
            .into(),
    ))
}
