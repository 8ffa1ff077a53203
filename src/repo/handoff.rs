//! A conversation's state (answered by the assistant, by a person, or closed) and the
//! messages that are not generated replies: a visitor's while a person answers, a person's.

use chrono::Utc;
use entity::{
    conversation,
    message::{self, Role, Status},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{
    conversations::{self, NewMessage},
    visible,
};
use crate::domain::{
    access::Tenant,
    handoff::{ConversationState, Trigger},
    ids::ConversationId,
};

/// A handoff to record.
#[derive(Debug, Clone)]
pub struct NewHandoff {
    /// What handed it off.
    pub trigger: Trigger,
    /// Why, in words.
    pub reason: Option<String>,
    /// For the person who takes it over.
    pub note: Option<String>,
}

/// Hands the conversation `id` to a person when the assistant answers it. Returns it as
/// changed, or `None` when it was not in `BOT` state (another request changed it first).
pub async fn hand_off(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &ConversationId,
    handoff: NewHandoff,
) -> Result<Option<conversation::Model>, DbErr> {
    let now = Utc::now();
    let changed = conversation::Entity::update_many()
        .col_expr(
            conversation::Column::Status,
            Expr::value(ConversationState::HandedOff.as_str()),
        )
        .col_expr(
            conversation::Column::HandoffTrigger,
            Expr::value(handoff.trigger.as_str()),
        )
        .col_expr(
            conversation::Column::HandoffReason,
            Expr::value(handoff.reason),
        )
        .col_expr(conversation::Column::HandoffNote, Expr::value(handoff.note))
        .col_expr(conversation::Column::HandedOffAt, Expr::value(Some(now)))
        .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
        .filter(conversation::Column::Id.eq(id.as_str()))
        .filter(visible::conversations(tenant))
        .filter(conversation::Column::Status.eq(ConversationState::Bot.as_str()))
        .exec(db)
        .await?;
    changed_to(db, tenant, id, changed.rows_affected).await
}

/// Moves the conversation `id` from `from` to `to` (closing it records when). Returns it as
/// changed, or `None` when it was not in `from`.
pub async fn change_state(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &ConversationId,
    from: &[ConversationState],
    to: ConversationState,
) -> Result<Option<conversation::Model>, DbErr> {
    let now = Utc::now();
    let mut update = conversation::Entity::update_many()
        .col_expr(conversation::Column::Status, Expr::value(to.as_str()))
        .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
        .filter(conversation::Column::Id.eq(id.as_str()))
        .filter(visible::conversations(tenant))
        .filter(conversation::Column::Status.is_in(from.iter().map(|s| s.as_str())));
    if to == ConversationState::Closed {
        update = update.col_expr(conversation::Column::ClosedAt, Expr::value(Some(now)));
    }
    let changed = update.exec(db).await?;
    changed_to(db, tenant, id, changed.rows_affected).await
}

async fn changed_to(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &ConversationId,
    rows: u64,
) -> Result<Option<conversation::Model>, DbErr> {
    if rows == 0 {
        return Ok(None);
    }
    conversations::find(db, tenant, id).await
}

/// Stores a conversation prepared by [`conversations::opened`].
pub async fn open(
    db: &impl ConnectionTrait,
    conversation: conversation::Model,
) -> Result<(), DbErr> {
    conversation::ActiveModel::from(conversation)
        .insert(db)
        .await?;
    Ok(())
}

/// Who writes a message that is not generated.
#[derive(Debug, Clone)]
pub enum Author {
    /// The visitor, while a person answers.
    Visitor,
    /// A person of the organization.
    Agent {
        /// Their id in the organization's helpdesk.
        id: Option<String>,
        /// Their name, shown to the visitor.
        name: Option<String>,
    },
}

/// Stores a complete message by `author` in the conversation `conversation_id` and marks
/// the conversation active.
pub async fn post(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation_id: &str,
    author: Author,
    content: &str,
) -> Result<message::Model, DbErr> {
    let (role, agent) = match author {
        Author::Visitor => (Role::User, None),
        Author::Agent { id, name } => (Role::Agent, Some((id, name))),
    };
    let mut row = conversations::written(
        tenant,
        NewMessage {
            conversation_id: conversation_id.to_owned(),
            role,
            content: content.to_owned(),
            status: Status::Complete,
            reply_to: None,
            assistant_version: None,
            model: None,
        },
    );
    row.completed_at = Some(row.created_at);
    if let Some((id, name)) = agent {
        row.agent_id = id;
        row.agent_name = name;
    }
    let stored = message::ActiveModel::from(row).insert(db).await?;
    conversations::touch(db, tenant, conversation_id).await?;
    Ok(stored)
}

/// Whether the newest `turns` replies of the conversation written after `since` (its
/// latest handoff: replies before it were counted then) all ended without a passage
/// (complete, with no citation): the visitor's last `turns` questions went unanswered.
pub async fn unanswered_in_a_row(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation: &conversation::Model,
    turns: u64,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let mut query = message::Entity::find()
        .select_only()
        .column(message::Column::Status)
        .column(message::Column::Citations)
        .filter(message::Column::OrgId.eq(org.as_str()))
        .filter(message::Column::ConversationId.eq(conversation.id.as_str()))
        .filter(message::Column::Role.eq(Role::Assistant));
    if let Some(since) = conversation.handed_off_at {
        query = query.filter(message::Column::CreatedAt.gt(since));
    }
    let latest: Vec<(Status, serde_json::Value)> = query
        .order_by_desc(message::Column::Id)
        .limit(turns)
        .into_tuple()
        .all(db)
        .await?;
    Ok(latest.len() as u64 == turns
        && latest.iter().all(|(status, citations)| {
            *status == Status::Complete && citations.as_array().is_none_or(Vec::is_empty)
        }))
}

/// The newest `limit` messages of a conversation, oldest first (for a handoff's summary).
pub async fn latest_messages(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation_id: &str,
    limit: u64,
) -> Result<Vec<message::Model>, DbErr> {
    let org = tenant.org();
    let mut latest = message::Entity::find()
        .filter(message::Column::OrgId.eq(org.as_str()))
        .filter(message::Column::ConversationId.eq(conversation_id))
        .order_by_desc(message::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    latest.reverse();
    Ok(latest)
}
