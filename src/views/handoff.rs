//! Human handoff: who writes a person's message, and the state of a conversation.

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::conversation;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    domain::{
        handoff::{ConversationState, Trigger},
        ids::ConversationId,
    },
    services::handoff::AgentMessage,
};

/// Who answers a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationStatus {
    /// The assistant.
    Bot,
    /// A person: visitor messages get no generated reply.
    HandedOff,
    /// Nobody: it takes no more messages.
    Closed,
}

impl From<ConversationState> for ConversationStatus {
    fn from(s: ConversationState) -> Self {
        match s {
            ConversationState::Bot => Self::Bot,
            ConversationState::HandedOff => Self::HandedOff,
            ConversationState::Closed => Self::Closed,
        }
    }
}

/// What handed a conversation to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HandoffTrigger {
    /// The visitor asked.
    Visitor,
    /// The organization asked, with an API key.
    Operator,
    /// A rating at or below the version's `onRatingAtMost`.
    Rating,
    /// Visitor turns in a row that found no passage (`afterUnansweredTurns`).
    Unanswered,
    /// A visitor message holding one of the version's keywords.
    Keyword,
}

impl From<Trigger> for HandoffTrigger {
    fn from(t: Trigger) -> Self {
        match t {
            Trigger::Visitor => Self::Visitor,
            Trigger::Operator => Self::Operator,
            Trigger::Rating => Self::Rating,
            Trigger::Unanswered => Self::Unanswered,
            Trigger::Keyword => Self::Keyword,
        }
    }
}

/// A conversation's latest handoff to a person (kept when it goes back to the assistant).
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Handoff {
    /// What handed it off.
    pub trigger: HandoffTrigger,
    /// Why, in words.
    pub reason: Option<String>,
    /// For the person who takes it over.
    pub note: Option<String>,
    /// When.
    pub requested_at: DateTime<Utc>,
}

impl Handoff {
    /// The latest handoff of `c`, if it was ever handed off.
    pub fn of(c: &conversation::Model) -> Option<Self> {
        let trigger = Trigger::from_db(c.handoff_trigger.as_deref()?)?;
        Some(Self {
            trigger: trigger.into(),
            reason: c.handoff_reason.clone(),
            note: c.handoff_note.clone(),
            requested_at: c.handed_off_at?,
        })
    }
}

/// Who writes a person's message.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// Their id in the organization's helpdesk (at most 200 characters).
    pub id: Option<String>,
    /// The name the visitor sees (at most 200 characters).
    pub name: Option<String>,
}

impl AgentInput {
    /// The message `content` by `agent` in the conversation `id`.
    pub fn into_message(
        id: ConversationId,
        content: String,
        agent: Option<AgentInput>,
    ) -> AgentMessage {
        let agent = agent.unwrap_or_default();
        AgentMessage {
            conversation_id: id,
            content,
            agent_id: agent.id,
            agent_name: agent.name,
        }
    }
}

/// A person of the organization who wrote a message.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Agent {
    /// Their id in the organization's helpdesk.
    pub id: Option<String>,
    /// Their name.
    pub name: Option<String>,
}
