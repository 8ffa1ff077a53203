//! Conversations and their messages (SPEC §7): opening, reading and listing them. Sending a
//! message is [`send`]; following and cancelling replies is [`super::replies`].

mod send;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    assistant_version, conversation,
    message::{self, Status},
    visitor_session,
};

use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::{AssistantId, ConversationId, MessageId, SessionId},
        pagination::{Page, PageRequest},
    },
    error::{AppError, AppResult},
    repo::{
        self,
        conversations::{ConversationFilter, NewConversation},
    },
    services::sessions,
    state::AppState,
};
pub use send::{SendMessage, Sent, send};

/// A conversation to open.
#[derive(Debug, Clone)]
pub struct CreateConversation {
    /// `sess_…`
    pub session_id: SessionId,
    /// `asst_…`; default the session's assistant.
    pub assistant_id: Option<AssistantId>,
    /// Pin a version number; default the live version at each message.
    pub assistant_version: Option<i32>,
    /// A title.
    pub title: Option<String>,
}

/// Opens a conversation in an open session.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: CreateConversation,
) -> AppResult<conversation::Model> {
    let tenant = principal.visitor_scope(Scope::Write)?;
    let session = sessions::existing(state, &tenant, &input.session_id).await?;
    sessions::ensure_open(&session)?;
    let asked = tenant.assistant_for(input.assistant_id)?;
    let assistant_id = assistant_of(&session, asked)?;
    let (assistant, _) = usable_assistant(state, &tenant, &assistant_id).await?;
    if let Some(number) = input.assistant_version
        && let Some(pinned) = version(state, &tenant, &assistant, Some(number)).await?
    {
        visitor_may_pin(&tenant, &assistant, &pinned)?;
    }
    if let Some(title) = &input.title
        && title.chars().count() > 200
    {
        return Err(AppError::bad_input(
            "title",
            "must be at most 200 characters",
        ));
    }
    Ok(repo::conversations::insert(
        &state.db,
        &tenant,
        NewConversation {
            session_id: session.id,
            assistant_id: assistant.id,
            assistant_version: input.assistant_version,
            title: input.title,
            external_user_id: session.external_user_id,
        },
    )
    .await?)
}

pub(crate) fn assistant_of(
    session: &visitor_session::Model,
    asked: Option<AssistantId>,
) -> AppResult<AssistantId> {
    asked
        .or_else(|| session.assistant_id.clone().map(AssistantId::from_db))
        .ok_or_else(|| {
            AppError::bad_input(
                "assistant_id",
                "the session was opened without an assistant: name one",
            )
        })
}

/// The assistant `id` (not deleted) and its live version; `ASSISTANT_INACTIVE` when paused.
pub(crate) async fn usable_assistant(
    state: &AppState,
    tenant: &Tenant,
    id: &AssistantId,
) -> AppResult<repo::assistants::AssistantRow> {
    let row = repo::assistants::find(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("assistant"))?;
    if !row.0.active {
        return Err(AppError::AssistantInactive);
    }
    Ok(row)
}

/// Version `number` of the assistant, or its live version.
pub(crate) async fn version(
    state: &AppState,
    tenant: &Tenant,
    assistant: &entity::assistant::Model,
    number: Option<i32>,
) -> AppResult<Option<assistant_version::Model>> {
    let Some(number) = number else {
        return Ok(None);
    };
    repo::assistants::find_version(
        &state.db,
        tenant,
        &AssistantId::from_db(assistant.id.clone()),
        number,
    )
    .await?
    .map(Some)
    .ok_or_else(|| {
        AppError::bad_input(
            "assistant_version",
            format!("the assistant has no version {number}"),
        )
    })
}

/// A visitor may name only the live version: versions not promoted are tried with API keys.
pub(crate) fn visitor_may_pin(
    tenant: &Tenant,
    assistant: &entity::assistant::Model,
    pinned: &assistant_version::Model,
) -> AppResult<()> {
    if tenant.visitor().is_some() && pinned.id != assistant.live_version_id {
        return Err(AppError::Forbidden(
            "a visitor talks to the assistant's live version; pinning another takes an API key"
                .into(),
        ));
    }
    Ok(())
}

/// The conversation `id`.
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &ConversationId,
) -> AppResult<conversation::Model> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    existing(state, &tenant, id).await
}

/// The conversation `id` as `tenant` sees it, or `NOT_FOUND`.
pub(crate) async fn existing(
    state: &AppState,
    tenant: &Tenant,
    id: &ConversationId,
) -> AppResult<conversation::Model> {
    repo::conversations::find(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("conversation"))
}

/// Which conversations to list (ids as given by the client).
#[derive(Debug, Clone, Default)]
pub struct ListConversations {
    /// Of this session.
    pub session_id: Option<String>,
    /// With this assistant.
    pub assistant_id: Option<String>,
    /// Of this visitor, across channels.
    pub external_user_id: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
}

/// A page of conversations, oldest first.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    filter: ListConversations,
    page: &PageRequest,
) -> AppResult<Page<conversation::Model>> {
    let tenant = principal.scope(Scope::Read)?;
    // A malformed or foreign id matches nothing, like an unknown one.
    let parsed = |raw: Option<String>, valid: fn(&str) -> bool| match raw {
        Some(id) if !valid(&id) => Err(()),
        other => Ok(other),
    };
    let (Ok(session_id), Ok(assistant_id)) = (
        parsed(filter.session_id, SessionId::is_well_formed),
        parsed(filter.assistant_id, AssistantId::is_well_formed),
    ) else {
        return Ok(page.finish(Vec::new()));
    };
    let filter = ConversationFilter {
        session_id,
        assistant_id,
        external_user_id: filter.external_user_id,
        since: filter.since,
        until: filter.until,
    };
    Ok(repo::conversations::list(&state.db, &tenant, &filter, page).await?)
}

/// A page of a conversation's messages, oldest first.
pub async fn messages(
    state: &AppState,
    principal: &Principal,
    conversation_id: &ConversationId,
    page: &PageRequest,
) -> AppResult<Page<message::Model>> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    let conversation = existing(state, &tenant, conversation_id).await?;
    Ok(repo::conversations::messages(&state.db, &tenant, &conversation.id, page).await?)
}

/// A page of each conversation's messages, oldest first, in one read (nested GraphQL
/// fields). Conversations the caller does not see get an empty page.
pub async fn messages_of_many(
    state: &AppState,
    principal: &Principal,
    conversation_ids: &[String],
    page: &PageRequest,
) -> AppResult<HashMap<String, Page<message::Model>>> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    Ok(repo::conversations::messages_of_many(&state.db, &tenant, conversation_ids, page).await?)
}

/// A page of each session's conversations, oldest first, in one read (read scope).
pub async fn of_sessions(
    state: &AppState,
    principal: &Principal,
    session_ids: &[String],
    page: &PageRequest,
) -> AppResult<HashMap<String, Page<conversation::Model>>> {
    let tenant = principal.scope(Scope::Read)?;
    Ok(repo::conversations::of_sessions(&state.db, &tenant, session_ids, page).await?)
}

/// The message `id`.
pub async fn message(
    state: &AppState,
    principal: &Principal,
    id: &MessageId,
) -> AppResult<message::Model> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    find_message(state, &tenant, id).await
}

/// The message `id` as `tenant` sees it, or `NOT_FOUND`.
pub(crate) async fn find_message(
    state: &AppState,
    tenant: &Tenant,
    id: &MessageId,
) -> AppResult<message::Model> {
    repo::conversations::find_message(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("message"))
}

/// The wire name of a status.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "PENDING",
        Status::Streaming => "STREAMING",
        Status::Complete => "COMPLETE",
        Status::Failed => "FAILED",
        Status::Cancelled => "CANCELLED",
    }
}
