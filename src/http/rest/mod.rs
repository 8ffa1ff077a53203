//! The REST compatibility layer under `/api/v1`: the same services as GraphQL, JSON in and
//! out, documented by the OpenAPI document it is generated with.

mod analytics;
mod api_keys;
mod assistants;
mod conversations;
mod failures;
mod handoff;
mod knowledge;
mod knowledge_gaps;
mod oauth_apps;
mod outcomes;
mod rate_limits;
mod sessions;
pub(crate) mod sse;
mod viewer;
mod webhooks;
mod widget_token;

use serde::{Deserialize, Serialize};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;

pub use failures::declare as declare_failures;

use crate::{
    domain::pagination::{Page, PageRequest},
    error::AppError,
    state::AppState,
};

/// The routes that authenticate by other means than an API key or widget token (client
/// credentials), with their OpenAPI description.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(widget_token::router())
}

/// The REST routes with their OpenAPI description.
pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(assistants::router())
        .merge(knowledge::router(max_upload_bytes))
        .merge(sessions::router())
        .merge(conversations::router())
        .merge(handoff::router())
        .merge(knowledge_gaps::router())
        .merge(api_keys::router())
        .merge(rate_limits::router())
        .merge(analytics::router())
        .merge(outcomes::router())
        .merge(oauth_apps::router())
        .merge(webhooks::router())
        .merge(viewer::router())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Companin REST API",
        description = "REST compatibility layer of Companin. Authenticate with `X-API-Key` (and `X-API-Secret` for keys issued with a secret). Errors are `{ \"error\": { \"code\", \"message\", \"details\" } }`; lists are `{ \"data\": [...], \"next_cursor\": ... }`."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&ApiKeyAuth),
    security(("api_key" = []), ("api_key" = [], "api_secret" = []), ("bearer" = []))
)]
struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "api_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Secret",
                "The key's secret, for keys issued with one: sent with X-API-Key.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A widget token (from /api/v1/widget/token), a token of the configured identity provider, or an API key (cmp_…).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error envelope of every failed request.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `UNAUTHENTICATED`, `FORBIDDEN`, `NOT_FOUND`, `BAD_USER_INPUT`, `CONFLICT`,
    /// `ASSISTANT_INACTIVE`, `PAYLOAD_TOO_LARGE`, `RATE_LIMITED`, `INTERNAL_SERVER_ERROR`…
    pub code: String,
    /// For a person.
    pub message: String,
    /// Machine-readable detail, such as the `field` at fault.
    pub details: serde_json::Value,
}

/// A page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    /// The items, oldest first.
    pub data: Vec<T>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// A REST page from a service page, with each item's cursor.
    pub fn from_page<R>(
        page: Page<R>,
        cursor: impl Fn(&R) -> String,
        item: impl Fn(R) -> T,
    ) -> Self {
        let next_cursor = if page.has_next {
            page.items.last().map(&cursor)
        } else {
            None
        };
        Self {
            data: page.items.into_iter().map(item).collect(),
            next_cursor,
        }
    }
}

/// `?limit=&cursor=`
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    /// The page requested.
    pub fn page(self) -> Result<PageRequest, AppError> {
        PageRequest::rest(self.limit, self.cursor)
    }
}
