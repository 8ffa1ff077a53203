//! `POST /graphql`: CSRF guard, authentication, body limit, batching switch, then the schema.

use async_graphql::{
    BatchRequest, BatchResponse, ErrorExtensionValues, Response as GqlResponse, Value,
    http::MultipartOptions,
};
use axum::{
    Extension, Json,
    body::{Body, to_bytes},
    extract::State,
    http::{HeaderMap, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{auth::authenticate, error::AppError, graphql::CompaninSchema, state::AppState};

/// Headers a browser cannot send cross-origin without a CORS preflight.
const PREFLIGHTED_HEADERS: [&str; 5] = [
    "x-api-key",
    "authorization",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
];

/// Executes a GraphQL request (or a batch, when enabled).
pub async fn execute(
    State(state): State<AppState>,
    Extension(schema): Extension<CompaninSchema>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !preflighted(&headers) {
        return refuse(AppError::Malformed(
            "this request could be a cross-site request forgery: send `Content-Type: application/json` or a custom header such as `X-API-Key`".into(),
        ));
    }
    let principal = match authenticate(&state.db, &headers).await {
        Ok(principal) => principal,
        Err(e) => return refuse(e),
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let multipart = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    });
    let settings = &state.settings;
    let limit = if multipart {
        settings.max_upload_bytes + settings.max_request_bytes
    } else {
        settings.max_request_bytes
    };
    let bytes = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(AppError::PayloadTooLarge(format!(
                "the request body exceeds {limit} bytes"
            )));
        }
    };
    let uploads = MultipartOptions::default()
        .max_file_size(settings.max_upload_bytes)
        .max_num_files(1);
    let batch = match async_graphql::http::receive_batch_body(content_type, bytes.as_ref(), uploads)
        .await
    {
        Ok(batch) => batch,
        Err(e) => return refuse(AppError::Malformed(format!("invalid GraphQL request: {e}"))),
    };
    if let BatchRequest::Batch(list) = &batch {
        if !settings.graphql_batching {
            return refuse(AppError::Malformed(
                "batched requests are disabled: send one operation per request".into(),
            ));
        }
        if list.is_empty() {
            return refuse(AppError::Malformed("the batch holds no operation".into()));
        }
    }
    let response = match schema.execute_batch(batch.data(principal)).await {
        BatchResponse::Single(r) => BatchResponse::Single(with_codes(r)),
        BatchResponse::Batch(list) => {
            BatchResponse::Batch(list.into_iter().map(with_codes).collect())
        }
    };
    Json(response).into_response()
}

/// Whether the request could not have been sent by a browser without a CORS preflight.
fn preflighted(headers: &HeaderMap) -> bool {
    if PREFLIGHTED_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return true;
    }
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match essence.as_deref() {
        None | Some("") => false,
        Some(ct) => !matches!(
            ct,
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ),
    }
}

/// Every error gets a code: the request-level ones (parse, validation, depth, complexity)
/// `GRAPHQL_VALIDATION_FAILED`, field-level ones from argument coercion `BAD_USER_INPUT`.
pub(super) fn with_codes(mut response: GqlResponse) -> GqlResponse {
    let request_level = response.data == Value::Null;
    for error in &mut response.errors {
        let extensions = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code").is_none() {
            let code = if request_level {
                "GRAPHQL_VALIDATION_FAILED"
            } else {
                "BAD_USER_INPUT"
            };
            extensions.set("code", code);
        }
    }
    response
}

/// A GraphQL-shaped refusal with the error's HTTP status.
fn refuse(error: AppError) -> Response {
    error.log();
    let body = json!({
        "errors": [{ "message": error.message(), "extensions": { "code": error.code() } }]
    });
    (error.status(), Json(body)).into_response()
}
