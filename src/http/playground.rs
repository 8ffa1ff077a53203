//! `/playground` (GraphiQL, the chat page, the analytics page) and `/widget.js`, from assets
//! embedded in the binary (no network needed).

use axum::{
    Router,
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rust_embed::Embed;

use crate::state::AppState;

#[derive(Embed)]
#[folder = "playground"]
#[exclude = "*.sh"]
#[exclude = "*.md"]
struct Assets;

/// The playground's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/playground", get(|| async { asset("index.html") }))
        .route("/widget.js", get(|| async { asset("widget.js") }))
        .route(
            "/playground/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
}

fn asset(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
                (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
            ],
            file.data,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
