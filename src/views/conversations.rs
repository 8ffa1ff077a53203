//! Conversations, messages, feedback and the events of a streaming reply.

use async_graphql::{Enum, ID, InputObject, Json, SimpleObject, Union};
use chrono::{DateTime, Utc};
use entity::{conversation, feedback, message};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{
    domain::ids::{AssistantId, ConversationId, MessageId, SessionId},
    error::AppError,
    services::{
        conversations::{CreateConversation, SendMessage},
        feedback::{ActorType, SubmitFeedback},
        replies::{self, ReplyEvent as DomainEvent, citations_of},
    },
};

/// A session's exchange with one assistant.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct Conversation {
    /// `conv_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The session (`sess_…`).
    #[schema(value_type = String)]
    pub session_id: ID,
    /// The assistant answering (`asst_…`).
    #[schema(value_type = String)]
    pub assistant_id: ID,
    /// The pinned version; the live version answers when null.
    pub assistant_version: Option<i32>,
    /// A title.
    pub title: Option<String>,
    /// The visitor's id in the customer's system, from the session.
    pub external_user_id: Option<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When its latest message was written.
    pub updated_at: DateTime<Utc>,
}

impl From<conversation::Model> for Conversation {
    fn from(c: conversation::Model) -> Self {
        Self {
            id: ID(c.id),
            session_id: ID(c.session_id),
            assistant_id: ID(c.assistant_id),
            assistant_version: c.assistant_version,
            title: c.title,
            external_user_id: c.external_user_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageRole {
    /// The visitor.
    User,
    /// The assistant.
    Assistant,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageStatus {
    /// A reply accepted, not started.
    Pending,
    /// A reply being generated; `content` holds what was written so far.
    Streaming,
    /// Done.
    Complete,
    /// The reply could not be generated; `error` says why.
    Failed,
    /// Stopped by `cancelReply`; `content` keeps what was written.
    Cancelled,
}

impl From<message::Status> for MessageStatus {
    fn from(s: message::Status) -> Self {
        match s {
            message::Status::Pending => Self::Pending,
            message::Status::Streaming => Self::Streaming,
            message::Status::Complete => Self::Complete,
            message::Status::Failed => Self::Failed,
            message::Status::Cancelled => Self::Cancelled,
        }
    }
}

/// A knowledge passage a reply drew on.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Citation {
    /// The knowledge source (`ks_…`).
    #[schema(value_type = String)]
    pub source_id: ID,
    /// The source's title.
    pub title: String,
    /// The passage.
    pub chunk_text: String,
    /// Retrieval score, 0–1.
    pub score: f64,
}

impl From<replies::Citation> for Citation {
    fn from(c: replies::Citation) -> Self {
        Self {
            source_id: ID(c.source_id),
            title: c.title,
            chunk_text: c.chunk_text,
            score: f64::from(c.score),
        }
    }
}

/// Token counts of a reply.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct TokenUsage {
    /// Tokens of the prompt.
    pub prompt_tokens: Option<i32>,
    /// Tokens generated.
    pub completion_tokens: Option<i32>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct Message {
    /// `msg_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The conversation (`conv_…`).
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// Who wrote it.
    pub role: MessageRole,
    /// The text (of a streaming reply: what was written so far).
    pub content: String,
    /// Where it is in its life.
    pub status: MessageStatus,
    /// A reply's visitor message.
    #[schema(value_type = Option<String>)]
    pub reply_to: Option<ID>,
    /// The assistant version that answered.
    pub assistant_version: Option<i32>,
    /// The chat model that answered (`local:SmolLM2-135M-Instruct`, `openai:…`,
    /// `extractive`, or `qa-match` for a Q&A answer given verbatim).
    pub model: Option<String>,
    /// Token counts.
    pub usage: TokenUsage,
    /// Milliseconds from the visitor's message to the reply's first text.
    pub first_token_ms: Option<i32>,
    /// Milliseconds from the visitor's message to the reply's end.
    pub latency_ms: Option<i32>,
    /// The knowledge passages the reply drew on.
    pub citations: Vec<Citation>,
    /// Why the reply failed.
    pub error: Option<String>,
    /// When it was written (a reply: when it started).
    pub created_at: DateTime<Utc>,
    /// When a reply ended.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<message::Model> for Message {
    fn from(m: message::Model) -> Self {
        Self {
            citations: citations_of(&m).into_iter().map(Into::into).collect(),
            id: ID(m.id),
            conversation_id: ID(m.conversation_id),
            role: match m.role {
                message::Role::User => MessageRole::User,
                message::Role::Assistant => MessageRole::Assistant,
            },
            content: m.content,
            status: m.status.into(),
            reply_to: m.reply_to.map(ID),
            assistant_version: m.assistant_version,
            model: m.model,
            usage: TokenUsage {
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
            },
            first_token_ms: m.first_token_ms,
            latency_ms: m.latency_ms,
            error: m.error,
            created_at: m.created_at,
            completed_at: m.completed_at,
        }
    }
}

/// A conversation to open.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationInput {
    /// The session (`sess_…`), which must be open.
    #[schema(value_type = String)]
    pub session_id: ID,
    /// The assistant (`asst_…`); default the session's.
    #[schema(value_type = Option<String>)]
    pub assistant_id: Option<ID>,
    /// Pin this version number; default: the live version answers each message.
    pub assistant_version: Option<i32>,
    /// A title, at most 200 characters.
    pub title: Option<String>,
}

impl TryFrom<CreateConversationInput> for CreateConversation {
    type Error = AppError;

    /// Parses the ids: a malformed one answers `NOT_FOUND` like an unknown one.
    fn try_from(i: CreateConversationInput) -> Result<Self, AppError> {
        Ok(Self {
            session_id: SessionId::parse(&i.session_id)?,
            assistant_id: i
                .assistant_id
                .map(|id| AssistantId::parse(&id))
                .transpose()?,
            assistant_version: i.assistant_version,
            title: i.title,
        })
    }
}

/// A visitor's message.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
pub struct SendMessageInput {
    /// The conversation (`conv_…`)…
    #[schema(value_type = Option<String>)]
    pub conversation_id: Option<ID>,
    /// …or the session (`sess_…`): its latest conversation with the assistant, or a new one.
    #[schema(value_type = Option<String>)]
    pub session_id: Option<ID>,
    /// The assistant (`asst_…`), for a session opened without one.
    #[schema(value_type = Option<String>)]
    pub assistant_id: Option<ID>,
    /// What the visitor says.
    pub message: String,
    /// Answer with this version number instead of the pinned or live one.
    pub assistant_version: Option<i32>,
    /// A task template of the answering version to wrap the message in.
    pub template: Option<String>,
    /// Values of the template's placeholders (a JSON object); `{{message}}` is the message
    /// and `{{traits.<name>}}` the visitor's traits.
    #[schema(value_type = Option<Object>)]
    pub variables: Option<Json<Value>>,
}

impl TryFrom<SendMessageInput> for SendMessage {
    type Error = AppError;

    /// Parses the ids: a malformed one answers `NOT_FOUND` like an unknown one.
    fn try_from(i: SendMessageInput) -> Result<Self, AppError> {
        Ok(Self {
            conversation_id: i
                .conversation_id
                .map(|id| ConversationId::parse(&id))
                .transpose()?,
            session_id: i.session_id.map(|id| SessionId::parse(&id)).transpose()?,
            assistant_id: i
                .assistant_id
                .map(|id| AssistantId::parse(&id))
                .transpose()?,
            message: i.message,
            assistant_version: i.assistant_version,
            template: i.template,
            variables: i.variables.map(|v| v.0),
        })
    }
}

/// The visitor's message and the assistant's reply.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct SendMessagePayload {
    /// The visitor's message, stored.
    pub user_message: Message,
    /// The reply: complete (or failed) when the send waited for it, else as it started.
    pub reply: Message,
}

/// Who gives feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FeedbackActorType {
    /// The visitor.
    Visitor,
    /// A person of the organization.
    Agent,
    /// An automated process.
    System,
}

impl From<FeedbackActorType> for ActorType {
    fn from(t: FeedbackActorType) -> Self {
        match t {
            FeedbackActorType::Visitor => Self::Visitor,
            FeedbackActorType::Agent => Self::Agent,
            FeedbackActorType::System => Self::System,
        }
    }
}

impl From<ActorType> for FeedbackActorType {
    fn from(t: ActorType) -> Self {
        match t {
            ActorType::Visitor => Self::Visitor,
            ActorType::Agent => Self::Agent,
            ActorType::System => Self::System,
        }
    }
}

/// Who gave feedback.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct FeedbackActor {
    /// Visitor, agent or system.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub actor_type: FeedbackActorType,
    /// The actor's id in the customer's system.
    pub id: Option<String>,
    /// The actor's name.
    pub name: Option<String>,
    /// A JSON object.
    #[schema(value_type = Object)]
    pub metadata: Json<Value>,
}

/// A rating of a conversation or of one of its messages.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Feedback {
    /// `fb_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The conversation (`conv_…`).
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// The message it is about (`msg_…`), if any.
    #[schema(value_type = Option<String>)]
    pub message_id: Option<ID>,
    /// 1–5 (thumbs down 1, thumbs up 5).
    pub rating: i32,
    /// Free text.
    pub comment: Option<String>,
    /// Who gave it.
    pub actor: FeedbackActor,
    /// When it was given.
    pub created_at: DateTime<Utc>,
}

impl From<feedback::Model> for Feedback {
    fn from(f: feedback::Model) -> Self {
        Self {
            id: ID(f.id),
            conversation_id: ID(f.conversation_id),
            message_id: f.message_id.map(ID),
            rating: f.rating,
            comment: f.comment,
            actor: FeedbackActor {
                actor_type: ActorType::from_db(&f.actor_type).into(),
                id: f.actor_id,
                name: f.actor_name,
                metadata: Json(f.actor_metadata),
            },
            created_at: f.created_at,
        }
    }
}

/// Who gives feedback.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackActorInput {
    /// Default `VISITOR`.
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub actor_type: Option<FeedbackActorType>,
    /// The actor's id in the customer's system.
    pub id: Option<String>,
    /// The actor's name.
    pub name: Option<String>,
    /// A JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Json<Value>>,
}

/// Feedback to give.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// The conversation (`conv_…`).
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// A message of that conversation (`msg_…`), when the feedback is about one.
    #[schema(value_type = Option<String>)]
    pub message_id: Option<ID>,
    /// 1–5; thumbs down is 1, thumbs up 5.
    pub rating: i32,
    /// Free text, at most 4,000 characters.
    pub comment: Option<String>,
    /// Who gives it (default: the visitor).
    pub actor: Option<FeedbackActorInput>,
}

impl TryFrom<FeedbackInput> for SubmitFeedback {
    type Error = AppError;

    /// Parses the ids: a malformed one answers `NOT_FOUND` like an unknown one.
    fn try_from(i: FeedbackInput) -> Result<Self, AppError> {
        let actor = i.actor.unwrap_or_default();
        Ok(Self {
            conversation_id: ConversationId::parse(&i.conversation_id)?,
            message_id: i.message_id.map(|id| MessageId::parse(&id)).transpose()?,
            rating: i.rating,
            comment: i.comment,
            actor_type: actor
                .actor_type
                .unwrap_or(FeedbackActorType::Visitor)
                .into(),
            actor_id: actor.id,
            actor_name: actor.name,
            actor_metadata: actor.metadata.map(|m| m.0),
        })
    }
}

/// A reply began.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ReplyStarted {
    /// `conv_…`
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// The reply (`msg_…`).
    #[schema(value_type = String)]
    pub message_id: ID,
    /// The visitor's message it answers.
    #[schema(value_type = Option<String>)]
    pub user_message_id: Option<ID>,
}

/// More text of a reply.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ReplyDelta {
    /// `conv_…`
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// The reply (`msg_…`).
    #[schema(value_type = String)]
    pub message_id: ID,
    /// Position of this piece, from 0 without gaps.
    pub index: i32,
    /// The text to append.
    pub delta: String,
}

/// The passages a reply cites; sent before it completes.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ReplyCitations {
    /// `conv_…`
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// The reply (`msg_…`).
    #[schema(value_type = String)]
    pub message_id: ID,
    /// Best first.
    pub citations: Vec<Citation>,
}

/// The reply ended: `COMPLETE`, or `CANCELLED` with the text written until then.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ReplyCompleted {
    /// The stored reply.
    pub message: Message,
}

/// The reply could not be generated.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ReplyFailed {
    /// `conv_…`
    #[schema(value_type = String)]
    pub conversation_id: ID,
    /// The reply (`msg_…`).
    #[schema(value_type = String)]
    pub message_id: ID,
    /// Why, for a person.
    pub error: String,
}

/// One event of a streaming reply.
#[derive(Debug, Clone, Union)]
pub enum ReplyEvent {
    /// The reply began.
    Started(ReplyStarted),
    /// More text.
    Delta(ReplyDelta),
    /// Its citations.
    Citations(ReplyCitations),
    /// It ended.
    Completed(ReplyCompleted),
    /// It failed.
    Failed(ReplyFailed),
}

impl ReplyEvent {
    /// The event's name on an event stream (`reply_delta`…).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Started(_) => "reply_started",
            Self::Delta(_) => "reply_delta",
            Self::Citations(_) => "reply_citations",
            Self::Completed(_) => "reply_completed",
            Self::Failed(_) => "reply_failed",
        }
    }

    /// The event's JSON body.
    pub fn to_json(&self) -> Value {
        let value = match self {
            Self::Started(e) => serde_json::to_value(e),
            Self::Delta(e) => serde_json::to_value(e),
            Self::Citations(e) => serde_json::to_value(e),
            Self::Completed(e) => serde_json::to_value(e),
            Self::Failed(e) => serde_json::to_value(e),
        };
        value.unwrap_or(Value::Null)
    }
}

impl From<DomainEvent> for ReplyEvent {
    fn from(e: DomainEvent) -> Self {
        match e {
            DomainEvent::Started {
                conversation_id,
                message_id,
                reply_to,
            } => Self::Started(ReplyStarted {
                conversation_id: ID(conversation_id),
                message_id: ID(message_id),
                user_message_id: reply_to.map(ID),
            }),
            DomainEvent::Delta {
                conversation_id,
                message_id,
                index,
                delta,
            } => Self::Delta(ReplyDelta {
                conversation_id: ID(conversation_id),
                message_id: ID(message_id),
                index: i32::try_from(index).unwrap_or(i32::MAX),
                delta,
            }),
            DomainEvent::Citations {
                conversation_id,
                message_id,
                citations,
            } => Self::Citations(ReplyCitations {
                conversation_id: ID(conversation_id),
                message_id: ID(message_id),
                citations: citations.into_iter().map(Into::into).collect(),
            }),
            DomainEvent::Completed { message } => Self::Completed(ReplyCompleted {
                message: std::sync::Arc::unwrap_or_clone(message).into(),
            }),
            DomainEvent::Failed {
                conversation_id,
                message_id,
                error,
            } => Self::Failed(ReplyFailed {
                conversation_id: ID(conversation_id),
                message_id: ID(message_id),
                error,
            }),
        }
    }
}
