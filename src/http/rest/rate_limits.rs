//! `/api/v1/rate-limit`: the organization's request budget.

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::Principal,
    error::AppResult,
    http::extract::ApiJson,
    services,
    state::AppState,
    views::rate_limits::{RateLimit, SetRateLimitInput},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(current, set, reset))
}

/// The organization's request budget in force.
#[utoipa::path(get, path = "/api/v1/rate-limit", tag = "rate-limit",
    responses((status = 200, body = RateLimit), (status = 401, body = ErrorBody)))]
async fn current(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<RateLimit>> {
    Ok(Json(
        services::rate_limits::current(&state, &principal)
            .await?
            .into(),
    ))
}

/// Overrides the organization's request budget (admin scope).
#[utoipa::path(put, path = "/api/v1/rate-limit", tag = "rate-limit", request_body = SetRateLimitInput,
    responses((status = 200, body = RateLimit), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(input): ApiJson<SetRateLimitInput>,
) -> AppResult<Json<RateLimit>> {
    Ok(Json(
        services::rate_limits::set(&state, &principal, Some(input.into()))
            .await?
            .into(),
    ))
}

/// Returns the organization to the server's default budget (admin scope).
#[utoipa::path(delete, path = "/api/v1/rate-limit", tag = "rate-limit",
    responses((status = 200, body = RateLimit), (status = 403, body = ErrorBody)))]
async fn reset(State(state): State<AppState>, principal: Principal) -> AppResult<Json<RateLimit>> {
    Ok(Json(
        services::rate_limits::set(&state, &principal, None)
            .await?
            .into(),
    ))
}
