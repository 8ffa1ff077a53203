//! The HTTP surface: GraphQL, the REST layer, docs, playground and probes, behind one
//! middleware stack.

mod cors;
mod extract;
mod governance;
mod graphql;
mod idempotency;
mod middleware;
mod openai;
mod playground;
mod probes;
pub mod rest;
mod trace;
mod ws;
mod ws_credential;

use axum::{
    Extension, Router,
    extract::DefaultBodyLimit,
    handler::Handler,
    middleware::from_fn_with_state,
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{
    ServiceBuilderExt,
    catch_panic::CatchPanicLayer,
    request_id::MakeRequestUuid,
    trace::{DefaultOnResponse, OnResponse, TraceLayer},
};
use tracing::Level;
use utoipa_swagger_ui::SwaggerUi;

use crate::{error::AppError, graphql::CompaninSchema, state::AppState};

pub use middleware::normalize_path;

/// The REST layer's OpenAPI document, as `/api/v1/openapi.json` serves it and
/// `companin openapi` prints it (committed as `openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    rest_layer(0).1
}

/// The REST layer's governed routes (uploads up to `max_upload_bytes`) and its OpenAPI
/// document, the public routes' included.
fn rest_layer(max_upload_bytes: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (rest, mut openapi) = rest::router(max_upload_bytes).split_for_parts();
    let (_, public_api) = rest::public_router().split_for_parts();
    openapi.merge(public_api);
    rest::declare_failures(&mut openapi);
    (rest, openapi)
}

/// Every route of the server.
pub fn router(state: AppState, schema: CompaninSchema) -> Router {
    let (rest, openapi) = rest_layer(state.settings.http.max_upload_bytes);
    let (public, _) = rest::public_router().split_for_parts();
    let governed = from_fn_with_state(state.clone(), governance::govern);
    let rest = rest.route_layer(governed.clone());
    let openai = openai::router().route_layer(governed.clone());
    let body_limit = state.settings.http.max_request_bytes;
    Router::new()
        .route(
            "/graphql",
            post(graphql::execute.layer(governed)).get(ws::upgrade),
        )
        .route("/graphql/ws", get(ws::upgrade))
        .merge(rest)
        .merge(openai)
        .merge(public)
        .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", openapi))
        .merge(playground::router())
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::metrics))
        .fallback(|| async { AppError::NotFound("route") })
        .layer(Extension(schema))
        .layer(cors::layer(&state))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .map_request(middleware::bound_request_id)
                .set_request_id(middleware::REQUEST_ID, MakeRequestUuid)
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(trace::request_span)
                        .on_response(|response: &_, latency, span: &_| {
                            trace::record_response(response, span);
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .on_response(response, latency, span);
                        }),
                )
                .propagate_request_id(middleware::REQUEST_ID)
                .layer(CatchPanicLayer::custom(middleware::panic_response)),
        )
        .with_state(state)
}
