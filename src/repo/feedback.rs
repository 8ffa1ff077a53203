//! Feedback on conversations and messages.

use std::collections::HashMap;

use chrono::Utc;
use entity::feedback;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::{pages, visible, windowed};
use crate::domain::{
    access::Tenant,
    ids::FeedbackId,
    pagination::{Page, PageRequest},
};

/// Feedback to store (validated by the service).
#[derive(Debug, Clone)]
pub struct NewFeedback {
    /// `conv_…`
    pub conversation_id: String,
    /// `msg_…` of the conversation, when the feedback is about one message.
    pub message_id: Option<String>,
    /// 1–5.
    pub rating: i32,
    /// Free text.
    pub comment: Option<String>,
    /// `VISITOR`, `AGENT` or `SYSTEM`.
    pub actor_type: String,
    /// The actor's id in the customer's system.
    pub actor_id: Option<String>,
    /// The actor's name.
    pub actor_name: Option<String>,
    /// JSON object.
    pub actor_metadata: serde_json::Value,
}

/// Inserts feedback.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewFeedback,
) -> Result<feedback::Model, DbErr> {
    let org = tenant.org();
    feedback::ActiveModel {
        id: Set(FeedbackId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        conversation_id: Set(new.conversation_id),
        message_id: Set(new.message_id),
        rating: Set(new.rating),
        comment: Set(new.comment),
        actor_type: Set(new.actor_type),
        actor_id: Set(new.actor_id),
        actor_name: Set(new.actor_name),
        actor_metadata: Set(new.actor_metadata),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

fn of(tenant: &Tenant) -> sea_orm::Condition {
    visible::of_conversations(
        tenant,
        feedback::Column::OrgId,
        feedback::Column::ConversationId,
    )
}

/// The feedback `id`, if `tenant` sees its conversation.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &FeedbackId,
) -> Result<Option<feedback::Model>, DbErr> {
    feedback::Entity::find_by_id(id.as_str())
        .filter(of(tenant))
        .one(db)
        .await
}

/// A page of the feedback on a conversation, or on one of its messages, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    conversation_id: &str,
    message_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<feedback::Model>, DbErr> {
    let mut query = feedback::Entity::find()
        .filter(of(tenant))
        .filter(feedback::Column::ConversationId.eq(conversation_id));
    if let Some(message) = message_id {
        query = query.filter(feedback::Column::MessageId.eq(message));
    }
    let rows = windowed(query, feedback::Column::Id, page).all(db).await?;
    Ok(page.finish(rows))
}

/// What feedback is about: a conversation (any of its feedback) or one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// Conversations.
    Conversations,
    /// Messages.
    Messages,
}

/// A page of the feedback on each conversation or message (of those `tenant` sees), oldest
/// first, in one statement.
pub async fn of_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    about: About,
    ids: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<feedback::Model>>, DbErr> {
    let parent = match about {
        About::Conversations => feedback::Column::ConversationId,
        About::Messages => feedback::Column::MessageId,
    };
    let query = feedback::Entity::find().filter(of(tenant));
    pages::per_parent(db, query, parent, feedback::Column::Id, ids, page).await
}
