//! The OpenAI-compatible API under `/v1`: `POST /v1/chat/completions` and `GET /v1/models`,
//! so OpenAI's SDKs, LangChain, the Vercel AI SDK and Open WebUI talk to an assistant with no
//! adapter. The model is an assistant (its id or its name); the credentials, rate limit and
//! request log are the REST layer's (`Authorization: Bearer cmp_live_…` or a widget token);
//! answers and errors are in OpenAI's shapes.

mod chat;
mod error;
mod models;
mod wire;

use axum::{
    Router,
    routing::{get, post},
};

pub use error::refusal;

use crate::state::AppState;

/// The path prefix of these routes.
pub const PREFIX: &str = "/v1/";

/// The routes, to be governed like the REST layer's.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{model}", get(models::retrieve))
}
