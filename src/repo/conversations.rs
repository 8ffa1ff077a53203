//! Conversations and their messages.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use entity::{
    conversation,
    message::{self, Role, Status},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use super::{pages, visible, windowed};
use crate::domain::{
    access::Tenant,
    handoff::ConversationState,
    ids::{ConversationId, MessageId},
    pagination::{Page, PageRequest},
    reply_failure::{ReplyFailure, ReplyFailureCode},
};

/// A conversation to open.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// The session it belongs to (`sess_…`).
    pub session_id: String,
    /// The assistant answering (`asst_…`).
    pub assistant_id: String,
    /// A pinned version number.
    pub assistant_version: Option<i32>,
    /// A title.
    pub title: Option<String>,
    /// The session's visitor.
    pub external_user_id: Option<String>,
}

/// Inserts a conversation.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewConversation,
) -> Result<conversation::Model, DbErr> {
    conversation::ActiveModel::from(opened(tenant, new))
        .insert(db)
        .await
}

/// A conversation about to be opened, with its id and times, not yet stored.
pub fn opened(tenant: &Tenant, new: NewConversation) -> conversation::Model {
    let now = stored_now();
    conversation::Model {
        id: ConversationId::generate().into_string(),
        org_id: tenant.org().as_str().to_owned(),
        session_id: new.session_id,
        assistant_id: new.assistant_id,
        assistant_version: new.assistant_version,
        title: new.title,
        external_user_id: new.external_user_id,
        status: ConversationState::Bot.as_str().to_owned(),
        handoff_trigger: None,
        handoff_reason: None,
        handoff_note: None,
        handed_off_at: None,
        closed_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// The conversation `id`, if `tenant` sees it.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &ConversationId,
) -> Result<Option<conversation::Model>, DbErr> {
    conversation::Entity::find_by_id(id.as_str())
        .filter(visible::conversations(tenant))
        .one(db)
        .await
}

/// The newest conversation of a session with an assistant.
pub async fn latest_of_session(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    session_id: &str,
    assistant_id: &str,
) -> Result<Option<conversation::Model>, DbErr> {
    conversation::Entity::find()
        .filter(visible::conversations(tenant))
        .filter(conversation::Column::SessionId.eq(session_id))
        .filter(conversation::Column::AssistantId.eq(assistant_id))
        .order_by_desc(conversation::Column::Id)
        .one(db)
        .await
}

/// Which conversations to list.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Of this session.
    pub session_id: Option<String>,
    /// With this assistant.
    pub assistant_id: Option<String>,
    /// Of this visitor (all channels).
    pub external_user_id: Option<String>,
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
}

/// A page of the conversations `tenant` sees, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &ConversationFilter,
    page: &PageRequest,
) -> Result<Page<conversation::Model>, DbErr> {
    let mut query = conversation::Entity::find().filter(visible::conversations(tenant));
    if let Some(session) = &filter.session_id {
        query = query.filter(conversation::Column::SessionId.eq(session.as_str()));
    }
    if let Some(assistant) = &filter.assistant_id {
        query = query.filter(conversation::Column::AssistantId.eq(assistant.as_str()));
    }
    if let Some(user) = &filter.external_user_id {
        query = query.filter(conversation::Column::ExternalUserId.eq(user.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(conversation::Column::CreatedAt.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(conversation::Column::CreatedAt.lt(until));
    }
    let rows = windowed(query, conversation::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Marks the conversation as active now.
pub async fn touch(db: &impl ConnectionTrait, tenant: &Tenant, id: &str) -> Result<(), DbErr> {
    let org = tenant.org();
    conversation::Entity::update_many()
        .col_expr(conversation::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(conversation::Column::Id.eq(id))
        .filter(conversation::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The conversation (`conv_…`).
    pub conversation_id: String,
    /// Who writes it.
    pub role: Role,
    /// Its text (empty for a reply that is about to stream).
    pub content: String,
    /// Its state.
    pub status: Status,
    /// A reply's user message.
    pub reply_to: Option<String>,
    /// The answering version.
    pub assistant_version: Option<i32>,
    /// The answering model.
    pub model: Option<String>,
}

/// Inserts a message.
pub async fn insert_message(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewMessage,
) -> Result<message::Model, DbErr> {
    message::ActiveModel::from(written(tenant, new))
        .insert(db)
        .await
}

/// A conversation's earlier turns as finished messages, oldest first, stamped now: made
/// before the message that opens the conversation and stored with it (a client that keeps
/// the history itself, as OpenAI's chat API does, sends it again).
pub fn history(
    tenant: &Tenant,
    conversation_id: &str,
    turns: Vec<(Role, String)>,
) -> Vec<message::Model> {
    turns
        .into_iter()
        .map(|(role, content)| {
            let mut message = written(
                tenant,
                NewMessage {
                    conversation_id: conversation_id.to_owned(),
                    role,
                    content,
                    status: Status::Complete,
                    reply_to: None,
                    assistant_version: None,
                    model: None,
                },
            );
            message.completed_at = Some(message.created_at);
            message
        })
        .collect()
}

/// Stores turns [`history`] made (in the transaction that opens their conversation).
pub async fn insert_history(
    db: &impl ConnectionTrait,
    history: &[message::Model],
) -> Result<(), DbErr> {
    if history.is_empty() {
        return Ok(());
    }
    message::Entity::insert_many(history.iter().cloned().map(message::ActiveModel::from))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// A message about to be stored, with its id and times.
pub(super) fn written(tenant: &Tenant, new: NewMessage) -> message::Model {
    let now = stored_now();
    message::Model {
        id: MessageId::generate().into_string(),
        org_id: tenant.org().as_str().to_owned(),
        conversation_id: new.conversation_id,
        role: new.role,
        content: new.content,
        status: new.status,
        reply_to: new.reply_to,
        assistant_version: new.assistant_version,
        model: new.model,
        prompt_tokens: None,
        completion_tokens: None,
        first_token_ms: None,
        latency_ms: None,
        citations: serde_json::json!([]),
        grounding: None,
        error: None,
        error_code: None,
        agent_id: None,
        agent_name: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
    }
}

/// Now, to the microsecond the databases keep: a row returned before it is read back shows
/// the times a later read does.
fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A visitor's message and the reply about to be generated for it (`PENDING`), with the
/// conversation when the message opens it: what sending a message stores, all or nothing.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The conversation to open first; `None` when it exists (it is then touched).
    pub opens: Option<conversation::Model>,
    /// The turns the conversation it opens starts with (see [`history`]).
    pub history: Vec<message::Model>,
    /// The visitor's message.
    pub user: message::Model,
    /// The reply, `PENDING`.
    pub reply: message::Model,
}

/// The exchange of `text` in the conversation `conversation_id` (or in `opens`, which it
/// opens with `history`), answered by assistant version `version`.
pub fn exchange(
    tenant: &Tenant,
    conversation_id: &str,
    opens: Option<conversation::Model>,
    history: Vec<message::Model>,
    text: &str,
    version: i32,
) -> Exchange {
    let user = written(
        tenant,
        NewMessage {
            conversation_id: conversation_id.to_owned(),
            role: Role::User,
            content: text.to_owned(),
            status: Status::Complete,
            reply_to: None,
            assistant_version: None,
            model: None,
        },
    );
    let reply = written(
        tenant,
        NewMessage {
            conversation_id: conversation_id.to_owned(),
            role: Role::Assistant,
            content: String::new(),
            status: Status::Pending,
            reply_to: Some(user.id.clone()),
            assistant_version: Some(version),
            model: None,
        },
    );
    Exchange {
        opens,
        history,
        user,
        reply,
    }
}

/// Stores exchanges (of any organizations) with three statements whatever their number:
/// the conversations they open, their messages, the times of the conversations they
/// continue. Run it in a transaction: all are stored or none.
pub async fn store_exchanges(
    db: &impl ConnectionTrait,
    exchanges: &[&Exchange],
) -> Result<(), DbErr> {
    let opened = exchanges.iter().filter_map(|e| e.opens.clone());
    conversation::Entity::insert_many(opened.map(conversation::ActiveModel::from))
        .exec_without_returning(db)
        .await?;
    let messages = exchanges.iter().flat_map(|e| {
        e.history
            .iter()
            .cloned()
            .chain([e.user.clone(), e.reply.clone()])
    });
    message::Entity::insert_many(messages.map(message::ActiveModel::from))
        .exec_without_returning(db)
        .await?;
    // Each conversation is touched in its own organization.
    let continued =
        exchanges
            .iter()
            .filter(|e| e.opens.is_none())
            .fold(Condition::any(), |any, e| {
                any.add(
                    Condition::all()
                        .add(conversation::Column::Id.eq(e.user.conversation_id.as_str()))
                        .add(conversation::Column::OrgId.eq(e.user.org_id.as_str())),
                )
            });
    if !continued.is_empty() {
        conversation::Entity::update_many()
            .col_expr(conversation::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(continued)
            .exec(db)
            .await?;
    }
    Ok(())
}

fn messages_of(tenant: &Tenant) -> sea_orm::Condition {
    visible::of_conversations(
        tenant,
        message::Column::OrgId,
        message::Column::ConversationId,
    )
}

/// The message `id`, if `tenant` sees its conversation.
pub async fn find_message(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &MessageId,
) -> Result<Option<message::Model>, DbErr> {
    message::Entity::find_by_id(id.as_str())
        .filter(messages_of(tenant))
        .one(db)
        .await
}

/// A page of a conversation's messages, oldest first (none unless `tenant` sees it).
pub async fn messages(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation: &str,
    page: &PageRequest,
) -> Result<Page<message::Model>, DbErr> {
    let query = message::Entity::find()
        .filter(messages_of(tenant))
        .filter(message::Column::ConversationId.eq(conversation));
    let rows = windowed(query, message::Column::Id, page).all(db).await?;
    Ok(page.finish(rows))
}

/// A page of each conversation's messages (of those `tenant` sees), oldest first.
pub async fn messages_of_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversations: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<message::Model>>, DbErr> {
    let query = message::Entity::find().filter(messages_of(tenant));
    pages::per_parent(
        db,
        query,
        message::Column::ConversationId,
        message::Column::Id,
        conversations,
        page,
    )
    .await
}

/// A page of each session's conversations (of those `tenant` sees), oldest first.
pub async fn of_sessions(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    sessions: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<conversation::Model>>, DbErr> {
    let query = conversation::Entity::find().filter(visible::conversations(tenant));
    pages::per_parent(
        db,
        query,
        conversation::Column::SessionId,
        conversation::Column::Id,
        sessions,
        page,
    )
    .await
}

/// The newest `limit` messages of a conversation before `before`, newest first.
pub async fn recent_messages(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation: &str,
    before: &str,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(messages_of(tenant))
        .filter(message::Column::ConversationId.eq(conversation))
        .filter(message::Column::Id.lt(before))
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Writes what a streaming reply holds so far. Returns false when the reply is no longer
/// streaming (it was cancelled), so the generator stops.
pub async fn save_progress(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    content: &str,
    first_token_ms: Option<i32>,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let mut update = message::Entity::update_many()
        .col_expr(message::Column::Content, Expr::value(content))
        .col_expr(message::Column::Status, Expr::value(Status::Streaming))
        .col_expr(message::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::OrgId.eq(org.as_str()))
        .filter(message::Column::Status.is_in([Status::Pending, Status::Streaming]));
    if let Some(ms) = first_token_ms {
        update = update.col_expr(message::Column::FirstTokenMs, Expr::value(ms));
    }
    Ok(update.exec(db).await?.rows_affected > 0)
}

/// How a reply ended.
#[derive(Debug, Clone)]
pub struct Finish {
    /// `COMPLETE`, `FAILED` or `CANCELLED`.
    pub status: Status,
    /// The whole text written.
    pub content: String,
    /// The model that answered.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: Option<i32>,
    /// Generated tokens.
    pub completion_tokens: Option<i32>,
    /// Time to the first text.
    pub first_token_ms: Option<i32>,
    /// Time to the end.
    pub latency_ms: i32,
    /// JSON array of citations.
    pub citations: serde_json::Value,
    /// Why it failed.
    pub error: Option<ReplyFailure>,
    /// How the text relates to its passages.
    pub grounding: Option<&'static str>,
}

/// Completes a reply that is still pending or streaming. Returns false when it had already
/// ended (cancelled meanwhile), leaving it as it was.
pub async fn finish(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    finish: Finish,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let result = message::Entity::update_many()
        .col_expr(message::Column::Status, Expr::value(finish.status))
        .col_expr(message::Column::Content, Expr::value(finish.content))
        .col_expr(message::Column::Model, Expr::value(finish.model))
        .col_expr(
            message::Column::PromptTokens,
            Expr::value(finish.prompt_tokens),
        )
        .col_expr(
            message::Column::CompletionTokens,
            Expr::value(finish.completion_tokens),
        )
        .col_expr(
            message::Column::FirstTokenMs,
            Expr::value(finish.first_token_ms),
        )
        .col_expr(message::Column::LatencyMs, Expr::value(finish.latency_ms))
        .col_expr(message::Column::Citations, Expr::value(finish.citations))
        .col_expr(
            message::Column::ErrorCode,
            Expr::value(finish.error.as_ref().map(|f| f.code.as_str())),
        )
        .col_expr(
            message::Column::Error,
            Expr::value(finish.error.map(|f| f.message)),
        )
        .col_expr(
            message::Column::Grounding,
            Expr::value(finish.grounding.map(str::to_owned)),
        )
        .col_expr(message::Column::CompletedAt, Expr::value(Utc::now()))
        .col_expr(message::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::OrgId.eq(org.as_str()))
        .filter(message::Column::Status.is_in([Status::Pending, Status::Streaming]))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Marks a pending or streaming reply cancelled, keeping the text saved so far. Returns
/// whether it was still running.
pub async fn cancel(db: &impl ConnectionTrait, tenant: &Tenant, id: &str) -> Result<bool, DbErr> {
    let org = tenant.org();
    let result = message::Entity::update_many()
        .col_expr(message::Column::Status, Expr::value(Status::Cancelled))
        .col_expr(message::Column::CompletedAt, Expr::value(Utc::now()))
        .col_expr(message::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::OrgId.eq(org.as_str()))
        .filter(message::Column::Status.is_in([Status::Pending, Status::Streaming]))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Fails every reply left pending or streaming by a process that stopped: one whose
/// generator has not written since `stale_before` (generators write at least every few
/// seconds). Unscoped: the sweeper covers every organization. Returns the replies this call
/// failed (of replicas sweeping at once, each reply is returned to one).
pub async fn fail_abandoned(
    db: &impl ConnectionTrait,
    stale_before: DateTime<Utc>,
) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::Status, Expr::value(Status::Failed))
        .col_expr(
            message::Column::Error,
            Expr::value("the server stopped while this reply was being generated"),
        )
        .col_expr(
            message::Column::ErrorCode,
            Expr::value(ReplyFailureCode::Interrupted.as_str()),
        )
        .col_expr(message::Column::CompletedAt, Expr::value(Utc::now()))
        .filter(message::Column::Status.is_in([Status::Pending, Status::Streaming]))
        .filter(message::Column::UpdatedAt.lt(stale_before))
        .exec_with_returning(db)
        .await
}
