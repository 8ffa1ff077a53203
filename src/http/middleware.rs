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
