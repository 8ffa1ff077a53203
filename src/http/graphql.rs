//! `POST /graphql` (behind the governance middleware, which also applies the CSRF guard
//! first): body limit, batching switch, then the schema.

use async_graphql::{
    BatchRequest, BatchResponse, ErrorExtensionValues, Response as GqlResponse, Value,
    http::MultipartOptions,
};
use axum::{
    Extension, Json,
    body::{Body, to_bytes},
    extract::State,
    http::{
        HeaderMap, StatusCode,
        header::{ACCEPT, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::governance::OperationInfo;
use crate::{
    auth::Principal,
    error::AppError,
    graphql::{CompaninSchema, cost::cost},
    state::AppState,
};

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
    principal: Principal,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type.is_none() {
        return refuse(AppError::Malformed(
            "the request has no Content-Type: send application/json (multipart/form-data for uploads)"
                .into(),
        ));
    }
    let multipart = content_type.is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    });
    let settings = &state.settings;
    let limit = if multipart {
        settings.http.max_upload_bytes + settings.http.max_request_bytes
    } else {
        settings.http.max_request_bytes
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
        .max_file_size(settings.http.max_upload_bytes)
        .max_num_files(1);
    let batch = match async_graphql::http::receive_batch_body(content_type, bytes.as_ref(), uploads)
        .await
    {
        Ok(batch) => batch,
        Err(e) => return refuse(AppError::Malformed(format!("invalid GraphQL request: {e}"))),
    };
    if let BatchRequest::Batch(list) = &batch {
        if !settings.http.graphql_batching {
            return refuse(AppError::Malformed(
                "batched requests are disabled: send one operation per request".into(),
            ));
        }
        if list.is_empty() {
            return refuse(AppError::Malformed("the batch holds no operation".into()));
        }
    }
    let operation = describe_batch(&batch);
    if let Err(refused) = charge_work(&state, &principal, &batch).await {
        let mut response = refuse(refused);
        response.extensions_mut().insert(operation);
        return response;
    }
    let loader = crate::graphql::loaders::for_request(&state, &principal);
    let batch = batch.data(principal).data(loader);
    let response = match schema.execute_batch(batch).await {
        BatchResponse::Single(r) => BatchResponse::Single(with_codes(r)),
        BatchResponse::Batch(list) => {
            BatchResponse::Batch(list.into_iter().map(with_codes).collect())
        }
    };
    let mut response = if accepts_graphql_response(&headers) {
        graphql_response(response)
    } else {
        Json(response).into_response()
    };
    response.extensions_mut().insert(operation);
    response
}

/// The GraphQL over HTTP media type.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Whether the client accepts the GraphQL over HTTP media type.
fn accepts_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|accept| accept.split(','))
        .any(|range| {
            range
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(GRAPHQL_RESPONSE))
        })
}

/// A response in the GraphQL over HTTP media type: a request that failed before it ran
/// (it did not parse or validate, or its variables did not fit) answers 400 without a `data`
/// entry; anything that ran answers 200.
fn graphql_response(response: BatchResponse) -> Response {
    let failed_before = match &response {
        BatchResponse::Single(single) => {
            single.data == Value::Null
                && !single.errors.is_empty()
                && single.errors.iter().all(|e| e.path.is_empty())
        }
        BatchResponse::Batch(_) => false,
    };
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    let status = if failed_before {
        if let Some(fields) = body.as_object_mut() {
            fields.remove("data");
        }
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, [(CONTENT_TYPE, GRAPHQL_RESPONSE)], Json(body)).into_response()
}

/// Charges what the request costs beyond the one request the middleware counted: each
/// operation of a batch, and each root field that starts work, is a request of its own.
/// Refused as a whole, before anything runs, when the window cannot pay for all of it.
async fn charge_work(
    state: &AppState,
    principal: &Principal,
    batch: &BatchRequest,
) -> Result<(), AppError> {
    let cost: u64 = match batch {
        BatchRequest::Single(request) => cost(request),
        BatchRequest::Batch(list) => list.iter().map(cost).sum(),
    };
    charge_beyond_one(state, principal, cost).await
}

/// Charges `cost - 1` more requests to the caller's organization (the first was counted on
/// the way in); `RATE_LIMITED` when the window cannot pay for them.
async fn charge_beyond_one(
    state: &AppState,
    principal: &Principal,
    cost: u64,
) -> Result<(), AppError> {
    if cost <= 1 {
        return Ok(());
    }
    match state
        .rate_limits
        .charge(principal.billed_org(), cost - 1)
        .await?
    {
        Some(decision) if !decision.allowed => Err(AppError::RateLimited {
            retry_after: decision.reset_after,
        }),
        _ => Ok(()),
    }
}

/// The operation a request runs (the first one's type for a batch), for the request log.
fn describe_batch(batch: &BatchRequest) -> OperationInfo {
    match batch {
        BatchRequest::Single(request) => describe(request),
        BatchRequest::Batch(list) => {
            let described: Vec<_> = list.iter().map(describe).collect();
            OperationInfo {
                name: described
                    .iter()
                    .map(|op| op.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                kind: described.first().and_then(|op| op.kind),
            }
        }
    }
}

/// The name and type of the operation `request` selects.
pub(super) fn describe(request: &async_graphql::Request) -> OperationInfo {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let document = async_graphql::parser::parse_query(&request.query).ok();
    let selected = document.as_ref().and_then(|doc| match &doc.operations {
        DocumentOperations::Single(op) => Some((None, op.node.ty)),
        DocumentOperations::Multiple(ops) => match &request.operation_name {
            Some(name) => ops
                .get_key_value(name.as_str())
                .map(|(name, op)| (Some(name.to_string()), op.node.ty)),
            None => ops
                .iter()
                .next()
                .map(|(name, op)| (Some(name.to_string()), op.node.ty)),
        },
    });
    let kind = selected.as_ref().map(|(_, ty)| match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    });
    let name = match selected
        .and_then(|(name, _)| name)
        .or_else(|| request.operation_name.clone())
    {
        None => "anonymous".to_owned(),
        Some(name) if loggable(&name) => name,
        // The caller's text goes to the request log, metrics and exports: only a name.
        Some(_) => "invalid".to_owned(),
    };
    OperationInfo { name, kind }
}

/// Longest operation name recorded.
const MAX_OPERATION_NAME: usize = 100;

/// Whether `name` is a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) short enough to record.
fn loggable(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_OPERATION_NAME
        && chars
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether the request could not have been sent by a browser without a CORS preflight.
pub(super) fn preflighted(headers: &HeaderMap) -> bool {
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
pub(super) fn refuse(error: AppError) -> Response {
    error.log();
    let body = json!({
        "errors": [{ "message": error.message(), "extensions": { "code": error.code() } }]
    });
    (error.status(), Json(body)).into_response()
}
