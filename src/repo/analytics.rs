//! Analytics reads over the request log, conversations, messages and feedback, always for
//! one organization. Aggregates that every database computes the same way run in SQL;
//! percentiles are computed by the service from the latencies read here.

use chrono::{DateTime, Utc};
use entity::{conversation, feedback, message, request_log};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select,
    sea_query::{Expr, SelectStatement},
};

use super::windowed;
use crate::domain::access::Tenant;
use crate::domain::{
    ids::OrgId,
    pagination::{Page, PageRequest},
};

/// Which request-log rows to read.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// From this time (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Until this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// Only this API key's requests.
    pub key_id: Option<String>,
    /// Only this route template or GraphQL operation name.
    pub endpoint: Option<String>,
    /// Only this HTTP status.
    pub status: Option<i32>,
    /// Only `rest`, `graphql`, `ws` or `openai`.
    pub transport: Option<String>,
    /// Only refused (true) or admitted (false) requests.
    pub rate_limited: Option<bool>,
    /// Only entries up to this id (an export's snapshot).
    pub through_id: Option<String>,
}

fn logs_of(org: &OrgId, f: &LogFilter) -> Select<request_log::Entity> {
    use request_log::Column as C;
    request_log::Entity::find()
        .filter(C::OrgId.eq(org.as_str()))
        .apply_if(f.since, |q, t| q.filter(C::CreatedAt.gte(t)))
        .apply_if(f.until, |q, t| q.filter(C::CreatedAt.lt(t)))
        .apply_if(f.key_id.clone(), |q, k| q.filter(C::KeyId.eq(k)))
        .apply_if(f.endpoint.clone(), |q, e| q.filter(C::Endpoint.eq(e)))
        .apply_if(f.status, |q, s| q.filter(C::Status.eq(s)))
        .apply_if(f.transport.clone(), |q, t| q.filter(C::Transport.eq(t)))
        .apply_if(f.rate_limited, |q, r| q.filter(C::RateLimited.eq(r)))
        .apply_if(f.through_id.clone(), |q, id| q.filter(C::Id.lte(id)))
}

/// A page of log entries, oldest first.
pub async fn logs(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &LogFilter,
    page: &PageRequest,
) -> Result<Page<request_log::Model>, DbErr> {
    let org = tenant.org();
    let rows = windowed(logs_of(org, filter), request_log::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Per hour (hours since the epoch): requests, errors (status ≥ 400) and refusals.
pub async fn hourly(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &LogFilter,
) -> Result<Vec<(i64, i64, i64, i64)>, DbErr> {
    let org = tenant.org();
    use request_log::Column as C;
    logs_of(org, filter)
        .select_only()
        .column(C::Hour)
        .column_as(C::Id.count(), "requests")
        .column_as(
            Expr::cust("SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)"),
            "errors",
        )
        .column_as(
            Expr::cust("SUM(CASE WHEN rate_limited THEN 1 ELSE 0 END)"),
            "refused",
        )
        .group_by(C::Hour)
        .into_tuple()
        .all(db)
        .await
}

/// Refused requests per key.
pub async fn refusals_by_key(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &LogFilter,
) -> Result<Vec<(Option<String>, i64)>, DbErr> {
    let org = tenant.org();
    use request_log::Column as C;
    logs_of(org, filter)
        .filter(C::RateLimited.eq(true))
        .select_only()
        .column(C::KeyId)
        .column_as(C::Id.count(), "refused")
        .group_by(C::KeyId)
        .into_tuple()
        .all(db)
        .await
}

/// Every matching request's transport, endpoint, operation type, status and latency (at
/// most `cap` rows, newest first).
pub async fn latencies(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &LogFilter,
    cap: u64,
) -> Result<Vec<(String, String, Option<String>, i32, f64)>, DbErr> {
    let org = tenant.org();
    use request_log::Column as C;
    logs_of(org, filter)
        .select_only()
        .columns([
            C::Transport,
            C::Endpoint,
            C::OperationType,
            C::Status,
            C::LatencyMs,
        ])
        .order_by_desc(C::Id)
        .limit(cap)
        .into_tuple()
        .all(db)
        .await
}

/// Which conversations to describe.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Started at or after.
    pub since: Option<DateTime<Utc>>,
    /// Started before.
    pub until: Option<DateTime<Utc>>,
    /// With this assistant.
    pub assistant_id: Option<String>,
}

fn conversation_ids(org: &OrgId, f: &ConversationFilter) -> SelectStatement {
    use conversation::Column as C;
    conversation::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::OrgId.eq(org.as_str()))
        .apply_if(f.since, |q, t| q.filter(C::CreatedAt.gte(t)))
        .apply_if(f.until, |q, t| q.filter(C::CreatedAt.lt(t)))
        .apply_if(f.assistant_id.clone(), |q, a| {
            q.filter(C::AssistantId.eq(a))
        })
        .into_query()
}

/// How many conversations match.
pub async fn conversation_count(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &ConversationFilter,
) -> Result<u64, DbErr> {
    let org = tenant.org();
    use sea_orm::PaginatorTrait;
    conversation::Entity::find()
        .filter(conversation::Column::Id.in_subquery(conversation_ids(org, filter)))
        .count(db)
        .await
}

/// Per matching conversation with messages: message count, first and last message time.
pub async fn conversation_spans(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &ConversationFilter,
) -> Result<Vec<(String, i64, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    let org = tenant.org();
    use message::Column as C;
    message::Entity::find()
        .filter(C::OrgId.eq(org.as_str()))
        .filter(C::ConversationId.in_subquery(conversation_ids(org, filter)))
        .select_only()
        .column(C::ConversationId)
        .column_as(C::Id.count(), "messages")
        .column_as(C::CreatedAt.min(), "first_at")
        .column_as(C::CreatedAt.max(), "last_at")
        .group_by(C::ConversationId)
        .into_tuple()
        .all(db)
        .await
}

/// Ratings given in matching conversations: (rating, count).
pub async fn ratings(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &ConversationFilter,
) -> Result<Vec<(i32, i64)>, DbErr> {
    let org = tenant.org();
    use feedback::Column as C;
    feedback::Entity::find()
        .filter(C::OrgId.eq(org.as_str()))
        .filter(C::ConversationId.in_subquery(conversation_ids(org, filter)))
        .select_only()
        .column(C::Rating)
        .column_as(C::Id.count(), "count")
        .group_by(C::Rating)
        .into_tuple()
        .all(db)
        .await
}

/// SQL that is 1 for a message that cites a passage, else 0.
pub(super) fn cites(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "CASE WHEN citations::text <> '[]' THEN 1 ELSE 0 END",
        _ => "CASE WHEN citations <> '[]' THEN 1 ELSE 0 END",
    }
}

/// Completed assistant answers in matching conversations, and how many cite a source.
pub async fn answers(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    filter: &ConversationFilter,
) -> Result<(i64, i64), DbErr> {
    let org = tenant.org();
    use message::Column as C;
    let cited = format!("SUM({})", cites(db.get_database_backend()));
    let row: Option<(i64, Option<i64>)> = message::Entity::find()
        .filter(C::OrgId.eq(org.as_str()))
        .filter(C::ConversationId.in_subquery(conversation_ids(org, filter)))
        .filter(C::Role.eq(message::Role::Assistant))
        .filter(C::Status.eq(message::Status::Complete))
        // Replies answer a message; earlier turns a client sent (OpenAI's API) answer none.
        .filter(C::ReplyTo.is_not_null())
        .select_only()
        .column_as(C::Id.count(), "answers")
        .column_as(Expr::cust(cited), "cited")
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map_or((0, 0), |(answers, cited)| (answers, cited.unwrap_or(0))))
}
