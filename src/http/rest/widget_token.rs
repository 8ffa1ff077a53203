//! Minting widget tokens with client credentials: `POST /api/v1/widget/token` (JSON, the
//! API's error envelope) and `POST /oauth/token` (OAuth 2.0 client credentials: form fields
//! or HTTP Basic, RFC 6749 errors). Each mint counts against the organization's rate limit.

use std::time::Instant;

use axum::{
    Form, Json,
    extract::{State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ErrorBody;
use crate::{
    auth::{Principal, grant_of},
    error::AppError,
    http::{extract::ApiJson, governance},
    services::{self, oauth_apps::MintedToken},
    state::AppState,
    views::oauth_apps::{TokenRequestBody, TokenResponse},
};

/// The token routes: authenticated by client credentials, not by an API key.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(widget_token))
        .routes(routes!(oauth_token))
}

/// Mints a widget token for an OAuth app (called by the customer's server).
#[utoipa::path(post, path = "/api/v1/widget/token", tag = "widget", request_body = TokenRequestBody,
    security(()),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn widget_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TokenRequestBody>,
) -> Response {
    let started = (Instant::now(), Utc::now());
    match mint(&state, body, basic_credentials(&headers)).await {
        Ok(minted) => admitted(&state, minted, "/api/v1/widget/token", started).await,
        Err(e) => e.into_response(),
    }
}

/// OAuth 2.0 token endpoint: `grant_type=client_credentials` with the client id and secret
/// as form fields or HTTP Basic.
#[utoipa::path(post, path = "/oauth/token", tag = "widget",
    request_body(content = TokenRequestBody, content_type = "application/x-www-form-urlencoded"),
    security(()),
    responses((status = 200, body = TokenResponse),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` or `unsupported_grant_type`"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`")))]
async fn oauth_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenRequestBody>, FormRejection>,
) -> Response {
    let started = (Instant::now(), Utc::now());
    let Ok(Form(body)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/x-www-form-urlencoded fields",
        );
    };
    match body.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials is supported",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            );
        }
    }
    match mint(&state, body, basic_credentials(&headers)).await {
        Ok(minted) => admitted(&state, minted, "/oauth/token", started).await,
        Err(AppError::Unauthenticated(message)) => {
            let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &message);
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"companin\""),
            );
            response
        }
        Err(e @ (AppError::BadInput { .. } | AppError::Malformed(_))) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.message())
        }
        Err(e) => e.into_response(),
    }
}

async fn mint(
    state: &AppState,
    body: TokenRequestBody,
    basic: Option<(String, String)>,
) -> Result<MintedToken, AppError> {
    services::oauth_apps::mint(
        &state.db,
        &state.signing_keys,
        state.settings.auth.widget_token_ttl_seconds,
        body.into_request(basic),
    )
    .await
}

/// Counts the mint against the organization's budget and logs it; the token when admitted.
async fn admitted(
    state: &AppState,
    minted: MintedToken,
    route: &str,
    started: (Instant, chrono::DateTime<Utc>),
) -> Response {
    let (org, grant) = match grant_of(minted.claims.clone(), Vec::new()) {
        Ok(parts) => parts,
        Err(e) => return e.into_response(),
    };
    let app_caller = Principal::visitor(org, grant);
    governance::admit_outside_middleware(state, &app_caller, route, started, || {
        (
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(TokenResponse::from(minted)),
        )
            .into_response()
    })
    .await
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthErrorBody {
        error: error.to_owned(),
        error_description: description.to_owned(),
    };
    (status, Json(body)).into_response()
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client` or `unsupported_grant_type`.
    pub error: String,
    /// What went wrong, for a person.
    pub error_description: String,
}

/// `Authorization: Basic base64(client_id:client_secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}
