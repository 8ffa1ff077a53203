//! Visitor sessions and the contexts attached to them.

use chrono::{DateTime, Utc};
use entity::{session_context, visitor_session};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set, sea_query::Expr,
};

use super::windowed;
use crate::domain::{
    ids::{ContextId, OrgId, SessionId, VisitorId},
    pagination::{Page, PageRequest},
};

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The assistant it talks to, if one was named.
    pub assistant_id: Option<String>,
    /// The customer's own id of the visitor.
    pub external_user_id: Option<String>,
    /// `web`, `widget`, `api`…
    pub channel: String,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// When it stops taking messages.
    pub expires_at: DateTime<Utc>,
    /// The visitor (a widget token's); a new `vis_…` id when absent.
    pub visitor_id: Option<String>,
}

/// Inserts a session, for a new visitor id unless one is given.
pub async fn insert(
    db: &impl ConnectionTrait,
    org: &OrgId,
    new: NewSession,
) -> Result<visitor_session::Model, DbErr> {
    let now = Utc::now();
    visitor_session::ActiveModel {
        id: Set(SessionId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        assistant_id: Set(new.assistant_id),
        visitor_id: Set(new
            .visitor_id
            .unwrap_or_else(|| VisitorId::generate().into_string())),
        external_user_id: Set(new.external_user_id),
        channel: Set(new.channel),
        metadata: Set(new.metadata),
        expires_at: Set(new.expires_at),
        ended_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// The session `id` of `org`.
pub async fn find(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &SessionId,
) -> Result<Option<visitor_session::Model>, DbErr> {
    visitor_session::Entity::find_by_id(id.as_str())
        .filter(visitor_session::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// A page of the organization's sessions, optionally of one visitor.
pub async fn list(
    db: &impl ConnectionTrait,
    org: &OrgId,
    external_user_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<visitor_session::Model>, DbErr> {
    let mut query =
        visitor_session::Entity::find().filter(visitor_session::Column::OrgId.eq(org.as_str()));
    if let Some(user) = external_user_id {
        query = query.filter(visitor_session::Column::ExternalUserId.eq(user));
    }
    let rows = windowed(query, visitor_session::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Ends the session now (if it has not ended); returns whether it exists.
pub async fn end(db: &impl ConnectionTrait, org: &OrgId, id: &SessionId) -> Result<bool, DbErr> {
    let now = Utc::now();
    visitor_session::Entity::update_many()
        .col_expr(visitor_session::Column::EndedAt, Expr::value(now))
        .col_expr(visitor_session::Column::UpdatedAt, Expr::value(now))
        .filter(visitor_session::Column::Id.eq(id.as_str()))
        .filter(visitor_session::Column::OrgId.eq(org.as_str()))
        .filter(visitor_session::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    Ok(find(db, org, id).await?.is_some())
}

/// Attaches traits to a session.
pub async fn insert_context(
    db: &impl ConnectionTrait,
    org: &OrgId,
    session: &SessionId,
    traits: serde_json::Value,
) -> Result<session_context::Model, DbErr> {
    session_context::ActiveModel {
        id: Set(ContextId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        session_id: Set(session.as_str().to_owned()),
        traits: Set(traits),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The context `id` of `org`.
pub async fn find_context(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &ContextId,
) -> Result<Option<session_context::Model>, DbErr> {
    session_context::Entity::find_by_id(id.as_str())
        .filter(session_context::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// The newest context of a session: the traits in force.
pub async fn latest_context(
    db: &impl ConnectionTrait,
    org: &OrgId,
    session: &SessionId,
) -> Result<Option<session_context::Model>, DbErr> {
    session_context::Entity::find()
        .filter(session_context::Column::OrgId.eq(org.as_str()))
        .filter(session_context::Column::SessionId.eq(session.as_str()))
        .order_by_desc(session_context::Column::Id)
        .one(db)
        .await
}

/// Which contexts to list.
#[derive(Debug, Clone, Default)]
pub struct ContextFilter {
    /// Of this session.
    pub session_id: Option<SessionId>,
    /// Of the sessions of this visitor.
    pub external_user_id: Option<String>,
}

/// A page of contexts, oldest first.
pub async fn list_contexts(
    db: &impl ConnectionTrait,
    org: &OrgId,
    filter: &ContextFilter,
    page: &PageRequest,
) -> Result<Page<session_context::Model>, DbErr> {
    let mut query =
        session_context::Entity::find().filter(session_context::Column::OrgId.eq(org.as_str()));
    if let Some(session) = &filter.session_id {
        query = query.filter(session_context::Column::SessionId.eq(session.as_str()));
    }
    if let Some(user) = &filter.external_user_id {
        let sessions = visitor_session::Entity::find()
            .select_only()
            .column(visitor_session::Column::Id)
            .filter(visitor_session::Column::OrgId.eq(org.as_str()))
            .filter(visitor_session::Column::ExternalUserId.eq(user.as_str()))
            .into_query();
        query = query.filter(session_context::Column::SessionId.in_subquery(sessions));
    }
    let rows = windowed(query, session_context::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}
