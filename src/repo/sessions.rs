//! Visitor sessions and the contexts attached to them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{session_context, visitor_session};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set,
    sea_query::{Expr, JoinType},
};

use super::{pages, visible, windowed};
use crate::domain::{
    access::Tenant,
    ids::{ContextId, SessionId, VisitorId},
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

/// Inserts a session, for a new visitor id unless one is given. A visitor's handle opens
/// sessions of its own visitor only, whatever `new` says.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    mut new: NewSession,
) -> Result<visitor_session::Model, DbErr> {
    if let Some(grant) = tenant.visitor() {
        new.visitor_id = Some(grant.visitor_id.clone());
        new.external_user_id = grant.external_user_id.clone();
    }
    let now = Utc::now();
    visitor_session::ActiveModel {
        id: Set(SessionId::generate().into_string()),
        org_id: Set(tenant.org().as_str().to_owned()),
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

/// The session `id`, if `tenant` sees it.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SessionId,
) -> Result<Option<visitor_session::Model>, DbErr> {
    visitor_session::Entity::find_by_id(id.as_str())
        .filter(visible::sessions(tenant))
        .one(db)
        .await
}

/// A page of the sessions `tenant` sees, optionally of one visitor.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    external_user_id: Option<&str>,
    page: &PageRequest,
) -> Result<Page<visitor_session::Model>, DbErr> {
    let mut query = visitor_session::Entity::find().filter(visible::sessions(tenant));
    if let Some(user) = external_user_id {
        query = query.filter(visitor_session::Column::ExternalUserId.eq(user));
    }
    let rows = windowed(query, visitor_session::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Ends the session now (if it has not ended); returns whether `tenant` sees it.
pub async fn end(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SessionId,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    visitor_session::Entity::update_many()
        .col_expr(visitor_session::Column::EndedAt, Expr::value(now))
        .col_expr(visitor_session::Column::UpdatedAt, Expr::value(now))
        .filter(visitor_session::Column::Id.eq(id.as_str()))
        .filter(visible::sessions(tenant))
        .filter(visitor_session::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    Ok(find(db, tenant, id).await?.is_some())
}

/// Attaches traits to a session (one read through [`find`]).
pub async fn insert_context(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    session: &visitor_session::Model,
    traits: serde_json::Value,
) -> Result<session_context::Model, DbErr> {
    session_context::ActiveModel {
        id: Set(ContextId::generate().into_string()),
        org_id: Set(tenant.org().as_str().to_owned()),
        session_id: Set(session.id.clone()),
        traits: Set(traits),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The context `id`, if `tenant` sees its session.
pub async fn find_context(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &ContextId,
) -> Result<Option<session_context::Model>, DbErr> {
    session_context::Entity::find_by_id(id.as_str())
        .filter(contexts(tenant))
        .one(db)
        .await
}

fn contexts(tenant: &Tenant) -> sea_orm::Condition {
    visible::of_sessions(
        tenant,
        session_context::Column::OrgId,
        session_context::Column::SessionId,
    )
}

/// A session `tenant` sees, with its newest context (the traits in force), in one read.
pub async fn find_with_context(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &SessionId,
) -> Result<Option<(visitor_session::Model, Option<session_context::Model>)>, DbErr> {
    let contexts = visitor_session::Entity::belongs_to(session_context::Entity)
        .from(visitor_session::Column::Id)
        .to(session_context::Column::SessionId)
        .into();
    visitor_session::Entity::find_by_id(id.as_str())
        .filter(visible::sessions(tenant))
        .join(JoinType::LeftJoin, contexts)
        .select_also(session_context::Entity)
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
    tenant: &Tenant,
    filter: &ContextFilter,
    page: &PageRequest,
) -> Result<Page<session_context::Model>, DbErr> {
    let mut query = session_context::Entity::find().filter(contexts(tenant));
    if let Some(session) = &filter.session_id {
        query = query.filter(session_context::Column::SessionId.eq(session.as_str()));
    }
    if let Some(user) = &filter.external_user_id {
        let sessions = visitor_session::Entity::find()
            .select_only()
            .column(visitor_session::Column::Id)
            .filter(visible::sessions(tenant))
            .filter(visitor_session::Column::ExternalUserId.eq(user.as_str()))
            .into_query();
        query = query.filter(session_context::Column::SessionId.in_subquery(sessions));
    }
    let rows = windowed(query, session_context::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// A page of each session's contexts (of those `tenant` sees), oldest first.
pub async fn contexts_of_many(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    sessions: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<session_context::Model>>, DbErr> {
    let query = session_context::Entity::find().filter(contexts(tenant));
    pages::per_parent(
        db,
        query,
        session_context::Column::SessionId,
        session_context::Column::Id,
        sessions,
        page,
    )
    .await
}
