//! Extractors whose rejections speak the API's error envelope.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts, OptionalFromRequest, Query, Request,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{
        StatusCode,
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        request::Parts,
    },
};
use serde::de::DeserializeOwned;

use crate::{auth::Principal, error::AppError, state::AppState};

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    /// The caller the governance middleware authenticated and admitted.
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, AppError> {
        super::governance::principal_of(parts)
    }
}

/// A JSON body; malformed JSON answers 400, well-formed but invalid input 422, too large 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match <Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// An optional JSON body: a request without a body (and without a content type) gives
/// `None`; anything else must be valid JSON.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, AppError> {
        let declared = req.headers().contains_key(CONTENT_TYPE);
        let empty = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|len| len.trim() == "0");
        if !declared && empty {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::PayloadTooLarge("the request body is too large".into());
    }
    match rejection {
        JsonRejection::JsonDataError(e) => AppError::bad_request(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => AppError::Malformed(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ),
        other => AppError::Malformed(other.body_text()),
    }
}

/// A query string; a malformed one answers 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|e: QueryRejection| AppError::Malformed(e.body_text()))
    }
}
