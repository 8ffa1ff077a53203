//! Liveness and readiness, answered without authentication.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE},
    response::IntoResponse,
};
use serde_json::{Value, json};

use crate::state::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can serve: its database answers. Also says which models are in use and, when
/// a local model is missing, how to fetch it.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let models = &state.models;
    let models = json!({
        "embedder": models.embedder.id(),
        "dimension": models.embedder.dimension(),
        "chat": models.chat.id(),
        "summarizer": models.summarizer.id(),
        "notes": models.notes,
    });
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": "ok", "models": models })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "database": "unreachable", "models": models }),
                ),
            )
        }
    }
}

/// Prometheus metrics in the text exposition format. The gauges of the ingestion queue and
/// the database pool are read now.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = &state.metrics;
    match crate::repo::jobs::queued(&state.db).await {
        Ok(queued) => {
            metrics
                .ingest_queued
                .set(i64::try_from(queued).unwrap_or(i64::MAX));
        }
        Err(e) => tracing::warn!(error = %e, "could not count the queued ingestion jobs"),
    }
    let (size, idle) = crate::db::pool_use(&state.db);
    metrics.db_pool_connections.set(i64::from(size));
    metrics
        .db_pool_idle
        .set(i64::try_from(idle).unwrap_or(i64::MAX));
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
