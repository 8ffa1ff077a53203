//! Visitor sessions and contexts.

use async_graphql::{ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{session_context, visitor_session};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    domain::ids::AssistantId,
    error::AppError,
    services::sessions::{CreateSession, is_open},
};

/// One visitor's presence on a channel.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct Session {
    /// `sess_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The assistant the session was opened for.
    #[schema(value_type = Option<String>)]
    pub assistant_id: Option<ID>,
    /// Generated for every session (`vis_…`): the anonymous visitor's id.
    pub visitor_id: String,
    /// The customer's own id of an authenticated visitor.
    pub external_user_id: Option<String>,
    /// `web`, `widget`, `api`, `email`…
    pub channel: String,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
    /// When it stops taking messages.
    pub expires_at: DateTime<Utc>,
    /// When it was ended, if it was.
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether it still takes messages (not ended, not expired).
    pub active: bool,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
}

impl From<visitor_session::Model> for Session {
    fn from(s: visitor_session::Model) -> Self {
        Self {
            active: is_open(&s),
            id: ID(s.id),
            assistant_id: s.assistant_id.map(ID),
            visitor_id: s.visitor_id,
            external_user_id: s.external_user_id,
            channel: s.channel,
            metadata: Json(s.metadata),
            expires_at: s.expires_at,
            ended_at: s.ended_at,
            created_at: s.created_at,
        }
    }
}

/// A session to open.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionInput {
    /// The assistant the visitor talks to (`asst_…`).
    #[schema(value_type = Option<String>)]
    pub assistant_id: Option<ID>,
    /// The customer's own id of an authenticated visitor; absent for an anonymous one.
    pub external_user_id: Option<String>,
    /// `web`, `widget`, `api` (default), `email`…
    pub channel: Option<String>,
    /// Free-form JSON object (CRM ids…), at most 16 KiB.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Json<Value>>,
    /// Lifetime in seconds, 60 to 2,592,000 (default from configuration, 24 h).
    pub ttl_seconds: Option<i64>,
}

impl TryFrom<CreateSessionInput> for CreateSession {
    type Error = AppError;

    /// Parses the assistant id: a malformed one answers `NOT_FOUND` like an unknown one.
    fn try_from(i: CreateSessionInput) -> Result<Self, AppError> {
        Ok(Self {
            assistant_id: i
                .assistant_id
                .map(|id| AssistantId::parse(&id))
                .transpose()?,
            external_user_id: i.external_user_id,
            channel: i.channel,
            metadata: i.metadata.map(|m| m.0),
            ttl_seconds: i.ttl_seconds,
        })
    }
}

/// Visitor traits attached to a session; the latest are given to the assistant.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Context {
    /// `ctx_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The session (`sess_…`).
    #[schema(value_type = String)]
    pub session_id: ID,
    /// A JSON object: name, plan, locale…
    #[schema(value_type = Object)]
    pub traits: Json<Value>,
    /// When it was attached.
    pub created_at: DateTime<Utc>,
}

impl From<session_context::Model> for Context {
    fn from(c: session_context::Model) -> Self {
        Self {
            id: ID(c.id),
            session_id: ID(c.session_id),
            traits: Json(c.traits),
            created_at: c.created_at,
        }
    }
}

/// Traits to attach.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachContextInput {
    /// The session (`sess_…`).
    #[schema(value_type = String)]
    pub session_id: ID,
    /// A JSON object, at most 16 KiB.
    #[schema(value_type = Object)]
    pub traits: Json<Value>,
}
