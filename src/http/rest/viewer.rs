//! `GET /api/v1/viewer`

use axum::{Json, extract::State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::Principal, error::AppResult, services, state::AppState, views::organizations::Viewer,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(viewer))
}

/// The caller: organization, key and scopes.
#[utoipa::path(get, path = "/api/v1/viewer", tag = "viewer",
    responses((status = 200, body = Viewer), (status = 401, body = ErrorBody)))]
async fn viewer(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Viewer>> {
    Ok(Json(
        services::organizations::viewer(&state.db, &principal)
            .await?
            .into(),
    ))
}
