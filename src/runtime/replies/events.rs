//! What a reply stream carries.

use std::sync::Arc;

use entity::{conversation, message};
use serde::{Deserialize, Serialize};

use crate::domain::reply_failure::ReplyFailure;

/// A knowledge passage a reply drew on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// `ks_…`
    pub source_id: String,
    /// The source's title.
    pub title: String,
    /// The passage.
    pub chunk_text: String,
    /// Retrieval score, 0–1.
    pub score: f32,
}

/// One event of a reply; every event names its conversation and message.
#[derive(Debug, Clone)]
pub enum ReplyEvent {
    /// Generation began.
    Started {
        /// `conv_…`
        conversation_id: String,
        /// The reply (`msg_…`).
        message_id: String,
        /// The visitor's message it answers.
        reply_to: Option<String>,
    },
    /// More text. `index` counts from 0 without gaps.
    Delta {
        /// `conv_…`
        conversation_id: String,
        /// The reply.
        message_id: String,
        /// Position of this piece.
        index: u32,
        /// The text.
        delta: String,
    },
    /// The passages the reply cites.
    Citations {
        /// `conv_…`
        conversation_id: String,
        /// The reply.
        message_id: String,
        /// Best first.
        citations: Vec<Citation>,
    },
    /// The reply ended: `COMPLETE`, or `CANCELLED` with the text written until then.
    Completed {
        /// The stored reply.
        message: Arc<message::Model>,
    },
    /// The reply could not be generated.
    Failed {
        /// `conv_…`
        conversation_id: String,
        /// The reply.
        message_id: String,
        /// Why: a code and a sentence for a person.
        failure: ReplyFailure,
    },
    /// A message that is not a generated reply: a visitor's while a person answers, or a
    /// person's. An event alone: it opens and ends its stream.
    Posted {
        /// The stored message.
        message: Arc<message::Model>,
    },
    /// The conversation's state changed: handed to a person, back to the assistant, closed.
    /// An event alone, under a key of its own.
    StateChanged {
        /// The event's own key (`state_…`), where a reply's events have the reply's id.
        key: String,
        /// The conversation as changed.
        conversation: Arc<conversation::Model>,
    },
}

impl ReplyEvent {
    /// The reply the event belongs to.
    pub fn message_id(&self) -> &str {
        match self {
            Self::Started { message_id, .. }
            | Self::Delta { message_id, .. }
            | Self::Citations { message_id, .. }
            | Self::Failed { message_id, .. } => message_id,
            Self::Completed { message } | Self::Posted { message } => &message.id,
            Self::StateChanged { key, .. } => key,
        }
    }

    /// The conversation the event belongs to.
    pub fn conversation_id(&self) -> &str {
        match self {
            Self::Started {
                conversation_id, ..
            }
            | Self::Delta {
                conversation_id, ..
            }
            | Self::Citations {
                conversation_id, ..
            }
            | Self::Failed {
                conversation_id, ..
            } => conversation_id,
            Self::Completed { message } | Self::Posted { message } => &message.conversation_id,
            Self::StateChanged { conversation, .. } => &conversation.id,
        }
    }

    /// Whether this is the last event of its reply (or an event alone).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed { .. }
                | Self::Failed { .. }
                | Self::Posted { .. }
                | Self::StateChanged { .. }
        )
    }

    /// Whether this is the first event of its stream: the conversation's watchers are told
    /// of it.
    pub fn opens(&self) -> bool {
        matches!(
            self,
            Self::Started { .. } | Self::Posted { .. } | Self::StateChanged { .. }
        )
    }

    /// The event telling a conversation's watchers of its new state.
    pub fn state_changed(conversation: conversation::Model) -> Self {
        Self::StateChanged {
            key: format!("state_{}", uuid::Uuid::now_v7().simple()),
            conversation: Arc::new(conversation),
        }
    }

    /// The whole of a finished reply as events: started, its text, citations, completion.
    pub fn replay_finished(message: message::Model) -> Vec<ReplyEvent> {
        let conversation_id = message.conversation_id.clone();
        let message_id = message.id.clone();
        let mut events = vec![ReplyEvent::Started {
            conversation_id: conversation_id.clone(),
            message_id: message_id.clone(),
            reply_to: message.reply_to.clone(),
        }];
        if !message.content.is_empty() {
            events.push(ReplyEvent::Delta {
                conversation_id: conversation_id.clone(),
                message_id: message_id.clone(),
                index: 0,
                delta: message.content.clone(),
            });
        }
        if message.status == message::Status::Failed {
            events.push(ReplyEvent::Failed {
                conversation_id,
                message_id,
                failure: ReplyFailure::from_stored(
                    message.error_code.as_deref(),
                    message.error.as_deref(),
                ),
            });
            return events;
        }
        events.push(ReplyEvent::Citations {
            conversation_id,
            message_id,
            citations: citations_of(&message),
        });
        events.push(ReplyEvent::Completed {
            message: Arc::new(message),
        });
        events
    }
}

/// The citations a stored message holds (written by the generator, so well-formed).
pub fn citations_of(message: &message::Model) -> Vec<Citation> {
    serde_json::from_value(message.citations.clone()).unwrap_or_default()
}
