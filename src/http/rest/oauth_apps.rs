//! `/api/v1/oauth-apps`: OAuth apps for the chat widget (admin scope).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::Principal,
    domain::ids::AppId,
    error::AppResult,
    http::extract::ApiJson,
    services,
    state::AppState,
    views::oauth_apps::{CreateOAuthAppInput, CreatedOAuthApp, OAuthApp},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, revoke_app))
}

/// The organization's OAuth apps (admin scope).
#[utoipa::path(get, path = "/api/v1/oauth-apps", tag = "oauth-apps",
    responses((status = 200, body = Vec<OAuthApp>), (status = 403, body = ErrorBody)))]
async fn list_apps(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Vec<OAuthApp>>> {
    let apps = services::oauth_apps::list(&state.db, &principal).await?;
    Ok(Json(apps.into_iter().map(Into::into).collect()))
}

/// Creates an app (admin scope). The client secret appears only in this response.
#[utoipa::path(post, path = "/api/v1/oauth-apps", tag = "oauth-apps", request_body = CreateOAuthAppInput,
    responses((status = 201, body = CreatedOAuthApp), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_app(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateOAuthAppInput>,
) -> AppResult<(StatusCode, Json<CreatedOAuthApp>)> {
    let created = services::oauth_apps::create(&state, &principal, input.into()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One app (admin scope).
#[utoipa::path(get, path = "/api/v1/oauth-apps/{app_id}", tag = "oauth-apps",
    params(("app_id" = String, Path, description = "`app_…`")),
    responses((status = 200, body = OAuthApp), (status = 404, body = ErrorBody)))]
async fn get_app(
    State(state): State<AppState>,
    principal: Principal,
    Path(app_id): Path<String>,
) -> AppResult<Json<OAuthApp>> {
    Ok(Json(
        services::oauth_apps::get(&state.db, &principal, &AppId::parse(&app_id)?)
            .await?
            .into(),
    ))
}

/// Revokes an app (admin scope): no more tokens, and its tokens stop working at once.
#[utoipa::path(delete, path = "/api/v1/oauth-apps/{app_id}", tag = "oauth-apps",
    params(("app_id" = String, Path, description = "`app_…`")),
    responses((status = 200, body = OAuthApp), (status = 404, body = ErrorBody)))]
async fn revoke_app(
    State(state): State<AppState>,
    principal: Principal,
    Path(app_id): Path<String>,
) -> AppResult<Json<OAuthApp>> {
    Ok(Json(
        services::oauth_apps::revoke(&state, &principal, &AppId::parse(&app_id)?)
            .await?
            .into(),
    ))
}
