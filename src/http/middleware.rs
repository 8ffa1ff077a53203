//! Pieces of the middleware stack: panics as clean 500s, request ids, trailing slashes.

use std::any::Any;

use crate::error::AppError;
use axum::{
    extract::Request,
    http::{HeaderName, Uri},
    response::{IntoResponse, Response},
};

/// Header carrying each request's id, set when absent and echoed in the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-sent request id kept.
const MAX_REQUEST_ID: usize = 64;

/// Drops a caller's `X-Request-Id` unless it is at most 64 letters, digits and `-_.:`, so
/// that a new one is made: the id goes to logs, the request log and exports.
pub fn bound_request_id(mut request: Request) -> Request {
    let safe = request.headers().get(&REQUEST_ID).is_none_or(|id| {
        let id = id.as_bytes();
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if !safe {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// A panicking handler answers a plain 500 in the error envelope.
pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Drops one trailing slash (`/api/v1/assistants/` → `/api/v1/assistants`) so both spellings
/// of the REST paths reach the same route. The docs page keeps its own slash.
pub fn normalize_path(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.starts_with("/api/v1/docs") {
        let trimmed = &path[..path.len() - 1];
        let new = match request.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = new.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}
