//! Chat completions as OpenAI's chat API takes them: a model (an assistant, by id or by
//! name), the turns so far and the visitor's last message. Every call is a conversation on
//! channel `openai`: a new one, opened with the turns the client sent, or the one the client
//! names, continued from its stored history. Retrieval, the live (or split-chosen) version,
//! handoff rules and the knowledge-gap inbox apply as to any message.

use entity::message::Role;

use super::{
    conversations::{self, SendMessage, Sent},
    sessions::{self, CreateSession},
};
use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::{AssistantId, ConversationId, SessionId},
        pagination::{MAX_PAGE_SIZE, PageRequest},
    },
    error::{AppError, AppResult},
    repo::{self, assistants::AssistantRow},
    state::AppState,
};

/// The channel of the sessions these calls open.
pub const CHANNEL: &str = "openai";
/// Most turns a call may send before its last message.
pub const MAX_TURNS: usize = 200;
/// Turns kept of those: the latest, as many as a reply reads of a conversation's history.
const KEPT_TURNS: usize = 50;
/// Longest turn kept, in characters (an earlier reply may be longer than a visitor's message).
pub const MAX_TURN_CHARS: usize = 32_000;

/// One earlier turn of the conversation the client sends.
#[derive(Debug, Clone)]
pub struct Turn {
    /// `User` or `Assistant`.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// A chat completion to start.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// The assistant: its id (`asst_…`) or the name of its live version.
    pub model: String,
    /// The turns before the last message (ignored when continuing a stored conversation).
    pub turns: Vec<Turn>,
    /// The visitor's last message.
    pub message: String,
    /// The customer's own id of the visitor (the session's `external_user_id`).
    pub user: Option<String>,
    /// A conversation to continue instead of opening one.
    pub conversation_id: Option<ConversationId>,
}

/// Stores the visitor's message in a new conversation on channel `openai` (or the one named)
/// and starts the reply.
pub async fn start(state: &AppState, principal: &Principal, input: Completion) -> AppResult<Sent> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let assistant = resolve_model(state, &tenant, &input.model).await?;
    check_turns(&input.turns)?;
    // Checked before a conversation is opened for it (`send` checks again).
    let most = state.settings.replies.max_message_chars;
    let length = input.message.trim().chars().count();
    if length == 0 || length > most {
        return Err(AppError::bad_input(
            "message",
            format!("the last message must be 1 to {most} characters"),
        ));
    }
    // A new conversation opens with the turns sent, stored with the message: a message
    // refused (the model busy) leaves no conversation behind.
    let (conversation_id, session_id, history) = match input.conversation_id {
        Some(id) => (Some(id), None, Vec::new()),
        None => {
            let kept = input.turns.len().saturating_sub(KEPT_TURNS);
            let history = input
                .turns
                .into_iter()
                .skip(kept)
                .map(|t| (t.role, t.content))
                .collect();
            let session = open(state, principal, &assistant, input.user).await?;
            (None, Some(session), history)
        }
    };
    conversations::send(
        state,
        principal,
        SendMessage {
            conversation_id,
            session_id,
            assistant_id: Some(assistant),
            message: input.message,
            history,
            ..SendMessage::default()
        },
    )
    .await
}

/// The assistants a caller may name as models: a visitor token's own, or the organization's
/// (the first [`MAX_PAGE_SIZE`]).
pub async fn models(state: &AppState, principal: &Principal) -> AppResult<Vec<AssistantRow>> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    if let Some(bound) = tenant.bound_assistant() {
        return Ok(repo::assistants::find(&state.db, &tenant, bound)
            .await?
            .into_iter()
            .collect());
    }
    let page = PageRequest::rest(Some(MAX_PAGE_SIZE), None)?;
    Ok(repo::assistants::list(&state.db, &tenant, &page)
        .await?
        .items)
}

/// The assistant a model names, when the caller may talk to it.
pub async fn model(
    state: &AppState,
    principal: &Principal,
    model: &str,
) -> AppResult<AssistantRow> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    let id = resolve_model(state, &tenant, model).await?;
    repo::assistants::find(&state.db, &tenant, &id)
        .await?
        .ok_or(AppError::NotFound("model"))
}

/// The assistant `model` names: an id, or the name of exactly one live version.
async fn resolve_model(state: &AppState, tenant: &Tenant, model: &str) -> AppResult<AssistantId> {
    let model = model.trim();
    if model.is_empty() {
        return Err(AppError::bad_input(
            "model",
            "name an assistant: its id (asst_…) or its name",
        ));
    }
    let id = if AssistantId::is_well_formed(model) {
        let id = AssistantId::parse(model)?;
        repo::assistants::find(&state.db, tenant, &id)
            .await?
            .ok_or(AppError::NotFound("model"))?;
        id
    } else {
        let named = repo::assistants::find_by_name(&state.db, tenant, model, 2).await?;
        match named.as_slice() {
            [] => return Err(AppError::NotFound("model")),
            [(assistant, _)] => AssistantId::from_db(assistant.id.clone()),
            _ => {
                return Err(AppError::bad_input(
                    "model",
                    "several assistants have this name: use the assistant's id (asst_…)",
                ));
            }
        }
    };
    tenant.assistant_for(Some(id.clone()))?;
    Ok(id)
}

fn check_turns(turns: &[Turn]) -> AppResult<()> {
    if turns.len() > MAX_TURNS {
        return Err(AppError::bad_input(
            "messages",
            format!("at most {MAX_TURNS} messages may come before the last one"),
        ));
    }
    for (i, turn) in turns.iter().enumerate() {
        if turn.content.chars().count() > MAX_TURN_CHARS {
            return Err(AppError::bad_input(
                format!("messages[{i}].content"),
                format!("must be at most {MAX_TURN_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// A session on channel `openai` for `user`, whose first message opens its conversation.
async fn open(
    state: &AppState,
    principal: &Principal,
    assistant: &AssistantId,
    user: Option<String>,
) -> AppResult<SessionId> {
    let session = sessions::create(
        state,
        principal,
        CreateSession {
            assistant_id: Some(assistant.clone()),
            external_user_id: user,
            channel: Some(CHANNEL.to_owned()),
            ..CreateSession::default()
        },
    )
    .await?;
    Ok(SessionId::from_db(session.id))
}
