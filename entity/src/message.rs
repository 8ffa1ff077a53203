//! `message`: one turn of a conversation; assistant replies grow while they stream.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(12))")]
pub enum Role {
    /// The visitor.
    #[sea_orm(string_value = "USER")]
    User,
    /// The assistant.
    #[sea_orm(string_value = "ASSISTANT")]
    Assistant,
    /// A person of the organization, answering a conversation handed off to them.
    #[sea_orm(string_value = "AGENT")]
    Agent,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(12))")]
pub enum Status {
    /// A reply accepted but not started.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// A reply being generated; `content` holds what was written so far.
    #[sea_orm(string_value = "STREAMING")]
    Streaming,
    /// Done.
    #[sea_orm(string_value = "COMPLETE")]
    Complete,
    /// The reply could not be generated; `error` says why.
    #[sea_orm(string_value = "FAILED")]
    Failed,
    /// Stopped by `cancelReply`; `content` keeps what was written.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

/// One message (`msg_…`).
/// Serializable: replicas hand a finished reply to each other (the reply broker).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "message")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub conversation_id: String,
    pub role: Role,
    #[sea_orm(column_type = "Text")]
    pub content: String,
    pub status: Status,
    /// A reply's user message.
    pub reply_to: Option<String>,
    /// The assistant version that answered.
    pub assistant_version: Option<i32>,
    /// The chat model that answered (`local:…`, `openai:…`, `extractive`, `qa-match`).
    pub model: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    /// Milliseconds from the visitor's message to the reply's first text.
    pub first_token_ms: Option<i32>,
    /// Milliseconds from the visitor's message to the reply's end.
    pub latency_ms: Option<i32>,
    /// JSON array of `{source_id, title, chunk_text, score}`.
    pub citations: Json,
    /// How a completed reply's text relates to its passages (`QUOTED`, `SUPPORTED`,
    /// `TRIMMED`, `REPLACED`, `UNCHECKED`).
    pub grounding: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Why a failed reply failed, as a code (`MODEL_BUSY`, `MODEL_REJECTED`,
    /// `MODEL_UNAVAILABLE`, `INTERRUPTED`, `INTERNAL_SERVER_ERROR`).
    pub error_code: Option<String>,
    /// An `AGENT` message's author: their id in the organization's helpdesk…
    pub agent_id: Option<String>,
    /// …and their name, shown to the visitor.
    pub agent_name: Option<String>,
    pub created_at: DateTimeUtc,
    /// Last write; a streaming reply's generator writes at least every few seconds.
    pub updated_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
