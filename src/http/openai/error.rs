//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with the
//! status OpenAI would answer (its SDKs pick their exception by the status).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{domain::reply_failure::ReplyFailure, error::AppError};

/// An [`AppError`] answered the OpenAI way.
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        refusal(self.0)
    }
}

/// `error` answered in OpenAI's shape.
pub fn refusal(error: AppError) -> Response {
    error.log();
    // OpenAI answers 400 to a request it cannot take, where the REST layer tells malformed
    // (400) from invalid (422).
    let status = match error.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        status => status,
    };
    let param = match &error {
        AppError::BadInput { field, .. } => field.clone(),
        AppError::Taken { field, .. } => Some((*field).to_owned()),
        AppError::NotFound("model") => Some("model".to_owned()),
        _ => None,
    };
    let code = match &error {
        AppError::NotFound("model") => "model_not_found".to_owned(),
        AppError::Unauthenticated(_) => "invalid_api_key".to_owned(),
        AppError::RateLimited { .. } => "rate_limit_exceeded".to_owned(),
        other => other.code().to_ascii_lowercase(),
    };
    let message = match &error {
        AppError::NotFound("model") => {
            "The model does not exist: name one of your assistants by its id (asst_…) or its name (GET /v1/models lists them)".to_owned()
        }
        other => other.message(),
    };
    let mut response = (
        status,
        Json(body(&message, kind(status), param.as_deref(), &code)),
    )
        .into_response();
    if let AppError::RateLimited { retry_after } = error {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}

/// The `error` object of a reply that failed (in a stream, as a `data:` line of its own).
pub fn failed(failure: &ReplyFailure) -> Value {
    body(
        &failure.message,
        "server_error",
        None,
        &failure.code.as_str().to_ascii_lowercase(),
    )
}

/// The status of a reply that failed.
pub fn failed_status(failure: &ReplyFailure) -> StatusCode {
    use crate::domain::reply_failure::ReplyFailureCode as Code;
    match failure.code {
        Code::ModelBusy => StatusCode::TOO_MANY_REQUESTS,
        Code::ModelRejected => StatusCode::BAD_REQUEST,
        Code::ModelUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Interrupted | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn body(message: &str, kind: &str, param: Option<&str>, code: &str) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

/// OpenAI's error types by status.
fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    }
}
