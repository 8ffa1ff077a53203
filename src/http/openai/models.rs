//! `GET /v1/models`: the assistants a caller may name as a model.

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};

use super::error::ApiError;
use crate::{auth::Principal, repo::assistants::AssistantRow, services, state::AppState};

/// The organization's assistants (a widget token's own) as OpenAI `model` objects.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let models = services::completions::models(&state, &principal).await?;
    Ok(Json(json!({
        "object": "list",
        "data": models.iter().map(model).collect::<Vec<_>>(),
    })))
}

/// One assistant, by id or name.
pub async fn retrieve(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = services::completions::model(&state, &principal, &name).await?;
    Ok(Json(model(&row)))
}

/// An assistant as a `model`: its id, and its name under `companin`.
fn model((assistant, live): &AssistantRow) -> Value {
    json!({
        "id": assistant.id,
        "object": "model",
        "created": assistant.created_at.timestamp(),
        "owned_by": assistant.org_id,
        "companin": { "name": live.name, "version": live.version, "active": assistant.active },
    })
}
