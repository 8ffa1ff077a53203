//! Human handoff: a conversation answered by a person instead of the assistant. Requested by
//! the visitor or the organization, or by the assistant version's own rules (a low rating,
//! unanswered turns, a keyword); released back to the assistant; closed. While a person
//! answers, a visitor's message is stored and streamed to the conversation's watchers and no
//! reply is generated; a person's messages reach the visitor the same way.

use std::sync::Arc;

use entity::{conversation, message};
use sea_orm::DatabaseTransaction;
use serde_json::{Value, json};

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        handoff::{ConversationState, HandoffRules, Trigger},
        ids::{ConversationId, SessionId},
        knowledge_gap::GapReason,
    },
    error::{AppError, AppResult},
    language,
    models::{LocalSummarizer, Summarizer},
    repo::{
        self,
        handoff::{Author, NewHandoff},
    },
    runtime::replies::ReplyEvent,
    services::{
        conversations::existing,
        knowledge_gaps,
        webhooks::{self, Event},
    },
    state::AppState,
};

/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 4_000;
/// Longest message a person writes, in characters.
pub const MAX_AGENT_MESSAGE_CHARS: usize = 16_000;
/// Messages a handoff's webhook carries, newest last.
const HANDOFF_MESSAGES: u64 = 20;

/// A handoff to request.
#[derive(Debug, Clone)]
pub struct RequestHandoff {
    /// `conv_…`
    pub conversation_id: ConversationId,
    /// Why, in words (at most 500 characters).
    pub reason: Option<String>,
    /// For the person who takes over (at most 4,000 characters).
    pub note: Option<String>,
}

/// Hands a conversation to a person, at the visitor's request (a visitor credential) or the
/// organization's (an API key). A conversation already handed off is returned as it is.
pub async fn request(
    state: &AppState,
    principal: &Principal,
    input: RequestHandoff,
) -> AppResult<conversation::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let reason = bounded("reason", input.reason, MAX_REASON_CHARS)?;
    let note = bounded("note", input.note, MAX_NOTE_CHARS)?;
    let conversation = existing(state, &tenant, &input.conversation_id).await?;
    let trigger = if tenant.visitor().is_some() {
        Trigger::Visitor
    } else {
        Trigger::Operator
    };
    hand_off(
        state,
        &tenant,
        conversation,
        NewHandoff {
            trigger,
            reason,
            note,
        },
    )
    .await
}

/// Hands `conversation` to a person: its state changes, `conversation.handoff_requested`
/// is written in the same transaction, and the conversation's watchers are told. Once per
/// handoff: a conversation already handed off is returned unchanged.
pub(crate) async fn hand_off(
    state: &AppState,
    tenant: &Tenant,
    conversation: conversation::Model,
    handoff: NewHandoff,
) -> AppResult<conversation::Model> {
    match ConversationState::from_db(&conversation.status) {
        ConversationState::Closed => return Err(AppError::ConversationClosed),
        ConversationState::HandedOff => return Ok(conversation),
        ConversationState::Bot => {}
    }
    let id = ConversationId::from_db(conversation.id.clone());
    let by_keyword = handoff.trigger == Trigger::Keyword;
    let context = handoff_context(state, tenant, &conversation).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    let Some(changed) = repo::handoff::hand_off(&txn, tenant, &id, handoff).await? else {
        drop(txn);
        // Another request changed the state first.
        return settled(state, tenant, &id, ConversationState::HandedOff).await;
    };
    let event = Event::handoff_requested(&changed, context);
    let changed = committed(state, tenant, txn, changed, event).await?;
    // The visitor's latest question went to a person; a keyword's message asked for one.
    if !by_keyword {
        knowledge_gaps::spawn_about(state, tenant, &changed, None, GapReason::Handoff);
    }
    Ok(changed)
}

/// Gives a handed-off conversation back to the assistant (an API key). One that the
/// assistant answers already is returned as it is.
pub async fn release(
    state: &AppState,
    principal: &Principal,
    id: &ConversationId,
) -> AppResult<conversation::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let conversation = existing(state, &tenant, id).await?;
    match ConversationState::from_db(&conversation.status) {
        ConversationState::Closed => return Err(AppError::ConversationClosed),
        ConversationState::Bot => return Ok(conversation),
        ConversationState::HandedOff => {}
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let changed = repo::handoff::change_state(
        &txn,
        &tenant,
        id,
        &[ConversationState::HandedOff],
        ConversationState::Bot,
    )
    .await?;
    let Some(changed) = changed else {
        drop(txn);
        return settled(state, &tenant, id, ConversationState::Bot).await;
    };
    let event = Event::handoff_released(&changed);
    committed(state, &tenant, txn, changed, event).await
}

/// Writes `event` in the transaction that changed the conversation's state, commits, and
/// tells the conversation's watchers.
async fn committed(
    state: &AppState,
    tenant: &Tenant,
    txn: DatabaseTransaction,
    changed: conversation::Model,
    event: Event,
) -> AppResult<conversation::Model> {
    let emitted = webhooks::emit(&txn, state.outbox(), tenant, event).await?;
    txn.commit().await?;
    if emitted.is_some() {
        state.webhook_signal.notify();
    }
    announce(state, &changed).await;
    Ok(changed)
}

/// Closes a conversation (the visitor or an API key): it takes no more messages; a message
/// sent to its session opens a new one. Closing a closed conversation returns it.
pub async fn close(
    state: &AppState,
    principal: &Principal,
    id: &ConversationId,
) -> AppResult<conversation::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let conversation = existing(state, &tenant, id).await?;
    if ConversationState::from_db(&conversation.status) == ConversationState::Closed {
        return Ok(conversation);
    }
    let changed = repo::handoff::change_state(
        &state.db,
        &tenant,
        id,
        &[ConversationState::Bot, ConversationState::HandedOff],
        ConversationState::Closed,
    )
    .await?;
    match changed {
        Some(changed) => {
            announce(state, &changed).await;
            Ok(changed)
        }
        None => existing(state, &tenant, id).await,
    }
}

/// A message from a person of the organization.
#[derive(Debug, Clone)]
pub struct AgentMessage {
    /// `conv_…`, handed off.
    pub conversation_id: ConversationId,
    /// The text, 1–16,000 characters.
    pub content: String,
    /// The person's id in the organization's helpdesk.
    pub agent_id: Option<String>,
    /// The person's name, shown to the visitor.
    pub agent_name: Option<String>,
}

/// Stores a person's message in a handed-off conversation (an API key) and streams it to
/// the conversation's watchers, the visitor's included.
pub async fn send_agent_message(
    state: &AppState,
    principal: &Principal,
    input: AgentMessage,
) -> AppResult<message::Model> {
    let tenant = principal.scope(Scope::Write)?;
    let content = input.content.trim();
    if content.is_empty() || content.chars().count() > MAX_AGENT_MESSAGE_CHARS {
        return Err(AppError::bad_input(
            "content",
            format!("must be 1 to {MAX_AGENT_MESSAGE_CHARS} characters"),
        ));
    }
    let agent_id = bounded("agent.id", input.agent_id, 200)?;
    let agent_name = bounded("agent.name", input.agent_name, 200)?;
    let conversation = existing(state, &tenant, &input.conversation_id).await?;
    match ConversationState::from_db(&conversation.status) {
        ConversationState::Closed => return Err(AppError::ConversationClosed),
        ConversationState::Bot => {
            return Err(AppError::Conflict(
                "the assistant answers this conversation: hand it off first (requestHandoff)"
                    .into(),
            ));
        }
        ConversationState::HandedOff => {}
    }
    let author = Author::Agent {
        id: agent_id,
        name: agent_name,
    };
    let stored = repo::handoff::post(&state.db, &tenant, &conversation.id, author, content).await?;
    posted(state, &stored).await;
    Ok(stored)
}

/// Stores a visitor's message for a person to answer (no reply is generated), with the
/// conversation when the message `opens` it, and streams it to the conversation's watchers.
pub(crate) async fn visitor_message(
    state: &AppState,
    tenant: &Tenant,
    opens: Option<conversation::Model>,
    history: &[message::Model],
    conversation_id: &str,
    text: &str,
) -> AppResult<message::Model> {
    let txn = crate::db::begin_write(&state.db).await?;
    if let Some(conversation) = opens {
        repo::handoff::open(&txn, conversation).await?;
        repo::conversations::insert_history(&txn, history).await?;
    }
    let stored = repo::handoff::post(&txn, tenant, conversation_id, Author::Visitor, text).await?;
    txn.commit().await?;
    posted(state, &stored).await;
    Ok(stored)
}

/// The keyword of `rules` that `text` holds (whole words, case and accents aside).
pub(crate) fn keyword_in<'a>(rules: &'a HandoffRules, text: &str) -> Option<&'a str> {
    if rules.keywords.is_empty() {
        return None;
    }
    let words = language::stems(None, text);
    rules
        .keywords
        .iter()
        .find(|keyword| {
            let wanted = language::stems(None, keyword);
            !wanted.is_empty() && words.windows(wanted.len()).any(|w| w == wanted.as_slice())
        })
        .map(String::as_str)
}

/// Hands `conversation` (as it was when the visitor's message was sent) off when the
/// version's rule on unanswered turns is met by the reply that just ended (called by the
/// reply's task with the organization's handle). A conversation handed off or closed
/// meanwhile stays as it is.
pub(crate) async fn after_reply(
    state: &AppState,
    work: &Tenant,
    conversation: conversation::Model,
    rules: &HandoffRules,
) -> AppResult<()> {
    let Some(turns) = rules.after_unanswered_turns else {
        return Ok(());
    };
    let turns = u64::try_from(turns).unwrap_or(1);
    if !repo::handoff::unanswered_in_a_row(&state.db, work, &conversation, turns).await? {
        return Ok(());
    }
    let reason = format!("{turns} visitor turn(s) in a row found no passage in the knowledge");
    hand_off(
        state,
        work,
        conversation,
        NewHandoff {
            trigger: Trigger::Unanswered,
            reason: Some(reason),
            note: None,
        },
    )
    .await
    .map(drop)
    .or_else(|e| match e {
        AppError::ConversationClosed => Ok(()),
        e => Err(e),
    })
}

/// Hands the conversation off when `rating` is at or below the rule of the version that
/// answers it (called after feedback is stored).
pub(crate) async fn after_rating(
    state: &AppState,
    tenant: &Tenant,
    conversation: conversation::Model,
    rating: i32,
) -> AppResult<()> {
    if ConversationState::from_db(&conversation.status) != ConversationState::Bot {
        return Ok(());
    }
    let work = tenant.on_behalf(crate::auth::Work::Replies);
    let assistant = crate::domain::ids::AssistantId::from_db(conversation.assistant_id.clone());
    let Some((_, live)) = repo::assistants::find(&state.db, &work, &assistant).await? else {
        return Ok(());
    };
    let version = match conversation.assistant_version {
        Some(number) => repo::assistants::find_version(&state.db, &work, &assistant, number)
            .await?
            .unwrap_or(live),
        None => live,
    };
    let rules = repo::assistants::handoff_of(&version);
    if rules.on_rating_at_most.is_none_or(|most| rating > most) {
        return Ok(());
    }
    hand_off(
        state,
        tenant,
        conversation,
        NewHandoff {
            trigger: Trigger::Rating,
            reason: Some(format!("rated {rating} of 5")),
            note: None,
        },
    )
    .await
    .map(drop)
}

/// What a helpdesk needs to open a ticket: the visitor's traits, an extractive summary of
/// what the visitor said, and the latest messages.
async fn handoff_context(
    state: &AppState,
    tenant: &Tenant,
    conversation: &conversation::Model,
) -> AppResult<Value> {
    let session = SessionId::from_db(conversation.session_id.clone());
    let traits = repo::sessions::find_with_context(&state.db, tenant, &session)
        .await?
        .and_then(|(_, context)| context)
        .map_or_else(|| json!({}), |c| c.traits);
    let latest =
        repo::handoff::latest_messages(&state.db, tenant, &conversation.id, HANDOFF_MESSAGES)
            .await?;
    let said: Vec<&str> = latest
        .iter()
        .filter(|m| m.role == message::Role::User)
        .map(|m| m.content.as_str())
        .collect();
    let summary = match LocalSummarizer.summarize(&said.join("\n")).await {
        Ok(summary) => summary.summary,
        Err(e) => {
            tracing::warn!(error = %e, "could not summarize a conversation handed off");
            String::new()
        }
    };
    let messages: Vec<Value> = latest
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "role": role_name(m.role),
                "content": m.content,
                "created_at": m.created_at,
            })
        })
        .collect();
    Ok(json!({ "traits": traits, "summary": summary, "messages": messages }))
}

/// The wire name of a role.
pub fn role_name(role: message::Role) -> &'static str {
    match role {
        message::Role::User => "USER",
        message::Role::Assistant => "ASSISTANT",
        message::Role::Agent => "AGENT",
    }
}

/// The conversation as it is after another request changed it first: `expected`, or the
/// conflict it is in.
async fn settled(
    state: &AppState,
    tenant: &Tenant,
    id: &ConversationId,
    expected: ConversationState,
) -> AppResult<conversation::Model> {
    let now = existing(state, tenant, id).await?;
    let current = ConversationState::from_db(&now.status);
    if current == expected {
        Ok(now)
    } else if current == ConversationState::Closed {
        Err(AppError::ConversationClosed)
    } else {
        Err(AppError::Conflict(format!(
            "the conversation changed meanwhile; it is {}",
            current.as_str()
        )))
    }
}

/// Tells the conversation's watchers its state changed.
async fn announce(state: &AppState, conversation: &conversation::Model) {
    state
        .replies
        .broker()
        .publish(ReplyEvent::state_changed(conversation.clone()))
        .await;
}

/// Streams a stored message (not a generated reply) to the conversation's watchers.
async fn posted(state: &AppState, message: &message::Model) {
    state
        .replies
        .broker()
        .publish(ReplyEvent::Posted {
            message: Arc::new(message.clone()),
        })
        .await;
}

/// `value` trimmed, `None` when blank; refused past `most` characters.
fn bounded(field: &str, value: Option<String>, most: usize) -> AppResult<Option<String>> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > most) {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {most} characters"),
        ));
    }
    Ok(value)
}
