//! What a reply stream carries.

use std::sync::Arc;

use entity::message;
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
}

impl ReplyEvent {
    /// The reply the event belongs to.
    pub fn message_id(&self) -> &str {
        match self {
            Self::Started { message_id, .. }
            | Self::Delta { message_id, .. }
            | Self::Citations { message_id, .. }
            | Self::Failed { message_id, .. } => message_id,
            Self::Completed { message } => &message.id,
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
            Self::Completed { message } => &message.conversation_id,
        }
    }

    /// Whether this is the last event of its reply.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. })
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
