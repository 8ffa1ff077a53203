//! What outcome analytics read: the conversations started in a range with their handoff,
//! their replies (version, whether cited, time to the first token) and their ratings, for
//! one organization. The service folds them into days or versions.

use chrono::{DateTime, Utc};
use entity::{conversation, feedback, message};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
    sea_query::{Expr, SelectStatement},
};

use super::analytics::cites;
use crate::domain::access::Tenant;

/// Which conversations an outcome report covers.
#[derive(Debug, Clone)]
pub struct OutcomeRange {
    /// Started at or after.
    pub from: DateTime<Utc>,
    /// Started before.
    pub to: DateTime<Utc>,
    /// With this assistant.
    pub assistant_id: Option<String>,
}

/// A conversation of the range: id, start, and what handed it to a person last, if ever.
pub type ConversationRow = (String, DateTime<Utc>, Option<String>);
/// A complete reply: conversation, answering version, whether it cites a passage, time to
/// its first token in ms.
pub type ReplyRow = (String, Option<i32>, i32, Option<i32>);
/// A rating: conversation, 1–5.
pub type RatingRow = (String, i32);

fn conversations_of(
    tenant: &Tenant,
    range: &OutcomeRange,
) -> sea_orm::Select<conversation::Entity> {
    use conversation::Column as C;
    conversation::Entity::find()
        .filter(C::OrgId.eq(tenant.org().as_str()))
        .filter(C::CreatedAt.gte(range.from))
        .filter(C::CreatedAt.lt(range.to))
        .apply_if(range.assistant_id.clone(), |q, a| {
            q.filter(C::AssistantId.eq(a))
        })
}

/// The ids of the range's conversations, as a subquery.
fn ids_of(tenant: &Tenant, range: &OutcomeRange) -> SelectStatement {
    conversations_of(tenant, range)
        .select_only()
        .column(conversation::Column::Id)
        .into_query()
}

/// The range's conversations (at most `cap`, the oldest).
pub async fn conversations(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    range: &OutcomeRange,
    cap: u64,
) -> Result<Vec<ConversationRow>, DbErr> {
    use conversation::Column as C;
    conversations_of(tenant, range)
        .select_only()
        .columns([C::Id, C::CreatedAt, C::HandoffTrigger])
        .order_by_asc(C::Id)
        .limit(cap)
        .into_tuple()
        .all(db)
        .await
}

/// The complete replies of the range's conversations, oldest first (at most `cap`).
pub async fn replies(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    range: &OutcomeRange,
    cap: u64,
) -> Result<Vec<ReplyRow>, DbErr> {
    use message::Column as C;
    message::Entity::find()
        .filter(C::OrgId.eq(tenant.org().as_str()))
        .filter(C::ConversationId.in_subquery(ids_of(tenant, range)))
        .filter(C::Role.eq(message::Role::Assistant))
        .filter(C::Status.eq(message::Status::Complete))
        .select_only()
        .column(C::ConversationId)
        .column(C::AssistantVersion)
        .column_as(Expr::cust(cites(db.get_database_backend())), "cited")
        .column(C::FirstTokenMs)
        .order_by_asc(C::Id)
        .limit(cap)
        .into_tuple()
        .all(db)
        .await
}

/// The ratings given in the range's conversations (at most `cap`).
pub async fn ratings(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    range: &OutcomeRange,
    cap: u64,
) -> Result<Vec<RatingRow>, DbErr> {
    use feedback::Column as C;
    feedback::Entity::find()
        .filter(C::OrgId.eq(tenant.org().as_str()))
        .filter(C::ConversationId.in_subquery(ids_of(tenant, range)))
        .select_only()
        .columns([C::ConversationId, C::Rating])
        .order_by_asc(C::Id)
        .limit(cap)
        .into_tuple()
        .all(db)
        .await
}
