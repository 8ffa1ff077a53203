//! The one error type of the application and its mapping to both transports.
//!
//! [`AppError`] deliberately does not implement `Display`: async-graphql converts any
//! `Display` type into an error *without* a code, so leaving it out makes the compiler route
//! every resolver error through [`From<AppError> for async_graphql::Error`], which always sets
//! `extensions.code`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, SqlErr};
use serde_json::{Value, json};

/// What can go wrong while serving a request.
#[derive(Debug)]
pub enum AppError {
    /// Missing or bad credentials (401).
    Unauthenticated(String),
    /// Valid credentials without the needed scope (403).
    Forbidden(String),
    /// The record does not exist, or belongs to another organization (404). Names the kind.
    NotFound(&'static str),
    /// Invalid input (422), naming the offending field when there is one.
    BadInput {
        /// The field at fault, in snake_case (`task_templates[0].template`).
        field: Option<String>,
        /// What is wrong, for a person.
        message: String,
    },
    /// The request could not be read (400): malformed JSON, a bad query string.
    Malformed(String),
    /// The request conflicts with the current state (409).
    Conflict(String),
    /// A unique value is taken (409), naming the field at fault (see [`on_constraint`]).
    Taken {
        /// The field at fault, in snake_case.
        field: &'static str,
        /// What happened and what to do, for a person.
        message: &'static str,
    },
    /// The assistant is paused (409).
    AssistantInactive,
    /// The session has expired or was ended (410); it stays readable.
    SessionExpired,
    /// The conversation was closed (409); it stays readable.
    ConversationClosed,
    /// The request body is over the configured limit (413).
    PayloadTooLarge(String),
    /// The organization's request budget is spent (429); nothing was executed.
    RateLimited {
        /// Seconds until the window resets.
        retry_after: u64,
    },
    /// Anything else (500). Logged with its cause chain, answered without detail.
    Internal(anyhow::Error),
}

/// Result type of services and handlers.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A validation error on `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A validation error not tied to one field.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadInput {
            field: None,
            message: message.into(),
        }
    }

    /// The contract's error code (`extensions.code` and `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } | Self::Malformed(_) => "BAD_USER_INPUT",
            Self::Conflict(_) | Self::Taken { .. } => "CONFLICT",
            Self::AssistantInactive => "ASSISTANT_INACTIVE",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::ConversationClosed => "CONVERSATION_CLOSED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_)
            | Self::Taken { .. }
            | Self::AssistantInactive
            | Self::ConversationClosed => StatusCode::CONFLICT,
            Self::SessionExpired => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message shown to the client; never internal detail.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::Conflict(m)
            | Self::Malformed(m)
            | Self::PayloadTooLarge(m) => m.clone(),
            Self::NotFound(kind) => format!("{kind} not found"),
            Self::Taken { message, .. } => (*message).to_owned(),
            Self::BadInput { message, .. } => message.clone(),
            Self::AssistantInactive => "the assistant is inactive".into(),
            Self::SessionExpired => {
                "the session has expired or was ended: open a new session".into()
            }
            Self::ConversationClosed => {
                "the conversation is closed: send to its session to open a new one".into()
            }
            Self::RateLimited { retry_after } => {
                format!("the organization's rate limit is reached: retry in {retry_after} s")
            }
            Self::Internal(_) => "internal server error".into(),
        }
    }

    /// Extra machine-readable detail (the field at fault).
    fn details(&self) -> Value {
        match self {
            Self::BadInput {
                field: Some(field), ..
            } => json!({ "field": field }),
            Self::Taken { field, .. } => json!({ "field": field }),
            Self::RateLimited { retry_after } => json!({ "retry_after": retry_after }),
            _ => json!({}),
        }
    }

    /// Logs internal errors with their cause chain; client errors are not logged here.
    pub(crate) fn log(&self) {
        if let Self::Internal(e) = self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
    }
}

/// A unique constraint a client can run into: its name (as PostgreSQL reports it), its
/// columns (as SQLite reports them), the field at fault and what to do.
struct UniqueConstraint {
    name: &'static str,
    columns: &'static str,
    field: &'static str,
    message: &'static str,
}

/// The named unique constraints of the schema (`migration/`).
const UNIQUE_CONSTRAINTS: &[UniqueConstraint] = &[
    UniqueConstraint {
        name: "idx-assistant_version-assistant_id-version",
        columns: "assistant_version.assistant_id, assistant_version.version",
        field: "base_version",
        message: "another version of this assistant was saved at the same time: read the \
                  latest version and try again",
    },
    UniqueConstraint {
        name: "oauth_app_client_id_key",
        columns: "oauth_app.client_id",
        field: "client_id",
        message: "an OAuth app with this client id already exists",
    },
    UniqueConstraint {
        name: "api_key_key_hash_key",
        columns: "api_key.key_hash",
        field: "key",
        message: "an API key with this value already exists",
    },
];

/// The client error for a unique-constraint violation reported as `db_message`: `CONFLICT`
/// naming the field for a known constraint, a generic `CONFLICT` otherwise (realworld's
/// `on_constraint`).
fn on_constraint(db_message: &str) -> AppError {
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|c| {
            db_message.contains(&format!("\"{}\"", c.name))
                || db_message.trim_end().ends_with(c.columns)
        })
        .map_or_else(
            || AppError::Conflict("a record with the same unique value already exists".into()),
            |c| AppError::Taken {
                field: c.field,
                message: c.message,
            },
        )
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(message)) => on_constraint(&message),
            _ => Self::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let body = json!({
            "error": { "code": self.code(), "message": self.message(), "details": self.details() }
        });
        (self.status(), Json(body)).into_response()
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.log();
        let mut error = async_graphql::Error::new(err.message());
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", err.code());
        if let AppError::BadInput {
            field: Some(field), ..
        } = &err
        {
            extensions.set("field", snake_to_camel_path(field));
        }
        if let AppError::Taken { field, .. } = &err {
            extensions.set("field", snake_to_camel_path(field));
        }
        if let AppError::RateLimited { retry_after } = &err {
            extensions.set("retryAfter", *retry_after);
        }
        error
    }
}

/// `task_templates[0].max_tokens` → `taskTemplates[0].maxTokens`: GraphQL names the fields
/// the way its schema does.
fn snake_to_camel_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_unique_constraint_names_its_field_on_either_database() {
        for reported in [
            "duplicate key value violates unique constraint \"idx-assistant_version-assistant_id-version\"",
            "UNIQUE constraint failed: assistant_version.assistant_id, assistant_version.version",
        ] {
            let error = on_constraint(reported);
            assert_eq!(error.code(), "CONFLICT");
            assert_eq!(
                error.details(),
                json!({ "field": "base_version" }),
                "{reported}"
            );
        }
        let unnamed = on_constraint("UNIQUE constraint failed: some_table.some_column");
        assert_eq!((unnamed.code(), unnamed.details()), ("CONFLICT", json!({})));
        assert_eq!(
            on_constraint(
                "duplicate key value violates unique constraint \"oauth_app_client_id_key\""
            )
            .details(),
            json!({ "field": "client_id" })
        );
    }

    #[test]
    fn graphql_errors_name_fields_in_camel_case() {
        assert_eq!(
            snake_to_camel_path("task_templates[0].max_tokens"),
            "taskTemplates[0].maxTokens"
        );
    }

    #[test]
    fn internal_errors_never_reveal_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("password=hunter2 at db:5432"));
        assert_eq!(err.message(), "internal server error");
        let gql: async_graphql::Error = err.into();
        assert_eq!(gql.message, "internal server error");
    }
}
