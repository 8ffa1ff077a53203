//! CORS for the chat widget: a browser page may call the API cross-origin only from an
//! origin some OAuth app allows (each request is then checked against its own app's
//! origins by the governance middleware and the websocket handshake).

use std::time::Duration;

use axum::http::{HeaderName, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::AppState;

/// Headers a widget sends and reads.
pub fn layer(state: &AppState) -> CorsLayer {
    let origins = state.widget_origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin, _| {
            let origins = origins.clone();
            async move {
                match origin.to_str() {
                    Ok(origin) => origins.allows(origin).await,
                    Err(_) => false,
                }
            }
        }))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-companin-conversation-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("x-companin-conversation-id"),
        ])
        .max_age(Duration::from_secs(600))
}
