//! What a [`Tenant`] handle sees of the visitor-visible records, as conditions inside each
//! query: everything of its organization, or, for a visitor's handle, its own sessions, the
//! contexts and conversations of those sessions (with its assistant, when its credential
//! names one), and their messages and feedback. A record outside answers like one that does
//! not exist.

use entity::{conversation, visitor_session};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    sea_query::SelectStatement,
};

use crate::domain::access::{Tenant, VisitorGrant};

/// Sessions of the visitor: its own visitor id, or its customer's user id.
fn owner(grant: &VisitorGrant) -> Condition {
    let mut owner = Condition::any().add(visitor_session::Column::VisitorId.eq(&grant.visitor_id));
    if let Some(user) = &grant.external_user_id {
        owner = owner.add(visitor_session::Column::ExternalUserId.eq(user));
    }
    owner
}

/// The sessions `tenant` sees.
pub(super) fn sessions(tenant: &Tenant) -> Condition {
    let all = Condition::all().add(visitor_session::Column::OrgId.eq(tenant.org().as_str()));
    match tenant.visitor() {
        Some(grant) => all.add(owner(grant)),
        None => all,
    }
}

fn session_ids(tenant: &Tenant) -> SelectStatement {
    visitor_session::Entity::find()
        .select_only()
        .column(visitor_session::Column::Id)
        .filter(sessions(tenant))
        .into_query()
}

/// Rows of a session-owned table (the organization and `session` columns) that `tenant` sees.
pub(super) fn of_sessions<C: ColumnTrait>(tenant: &Tenant, org: C, session: C) -> Condition {
    let all = Condition::all().add(org.eq(tenant.org().as_str()));
    match tenant.visitor() {
        Some(_) => all.add(session.in_subquery(session_ids(tenant))),
        None => all,
    }
}

/// The conversations `tenant` sees.
pub(super) fn conversations(tenant: &Tenant) -> Condition {
    let all = of_sessions(
        tenant,
        conversation::Column::OrgId,
        conversation::Column::SessionId,
    );
    match tenant.bound_assistant() {
        Some(assistant) => all.add(conversation::Column::AssistantId.eq(assistant.as_str())),
        None => all,
    }
}

/// Rows of a conversation-owned table (the organization and `conversation` columns) that `tenant` sees.
pub(super) fn of_conversations<C: ColumnTrait>(
    tenant: &Tenant,
    org: C,
    conversation_column: C,
) -> Condition {
    let all = Condition::all().add(org.eq(tenant.org().as_str()));
    if tenant.visitor().is_none() {
        return all;
    }
    let visible = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::Id)
        .filter(conversations(tenant))
        .into_query();
    all.add(conversation_column.in_subquery(visible))
}
