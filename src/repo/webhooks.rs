//! Webhook endpoints, the event outbox, deliveries and their attempts.
//!
//! Deliveries are claimed like ingestion jobs: a compare-and-set on the row leases it to one
//! dispatcher until `lease_until`, so any number of replicas can drain the same table and a
//! crashed dispatcher's delivery is taken over when its lease expires.

use chrono::{DateTime, Utc};
use entity::{
    webhook_attempt,
    webhook_delivery::{self, DeliveryStatus},
    webhook_endpoint, webhook_event,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::windowed;
use crate::domain::{
    ids::{DeliveryId, OrgId, WebhookId},
    pagination::{Page, PageRequest},
};

/// Inserts an endpoint.
pub async fn insert(
    db: &impl ConnectionTrait,
    endpoint: webhook_endpoint::ActiveModel,
) -> Result<webhook_endpoint::Model, DbErr> {
    endpoint.insert(db).await
}

/// Saves a changed endpoint.
pub async fn save(
    db: &impl ConnectionTrait,
    endpoint: webhook_endpoint::ActiveModel,
) -> Result<webhook_endpoint::Model, DbErr> {
    endpoint.update(db).await
}

/// Every endpoint of `org`, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    org: &OrgId,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

/// The enabled endpoints of `org`.
pub async fn enabled(
    db: &impl ConnectionTrait,
    org: &OrgId,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

/// The endpoint `id` of `org`.
pub async fn find(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &WebhookId,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id.as_str())
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// Deletes the endpoint `id` of `org` with its deliveries; whether it existed.
pub async fn delete(db: &impl ConnectionTrait, org: &OrgId, id: &WebhookId) -> Result<bool, DbErr> {
    let deleted = webhook_endpoint::Entity::delete_many()
        .filter(webhook_endpoint::Column::Id.eq(id.as_str()))
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Writes an event to the outbox.
pub async fn insert_event(
    db: &impl ConnectionTrait,
    event: webhook_event::ActiveModel,
) -> Result<webhook_event::Model, DbErr> {
    event.insert(db).await
}

/// The event `id` of `org`.
pub async fn find_event(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &str,
) -> Result<Option<webhook_event::Model>, DbErr> {
    webhook_event::Entity::find_by_id(id)
        .filter(webhook_event::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// Queues a delivery.
pub async fn insert_delivery(
    db: &impl ConnectionTrait,
    delivery: webhook_delivery::ActiveModel,
) -> Result<webhook_delivery::Model, DbErr> {
    delivery.insert(db).await
}

/// The delivery `id` of `org`.
pub async fn find_delivery(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &DeliveryId,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find_by_id(id.as_str())
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// A page of the deliveries of `org` to `endpoint`, oldest first, optionally of one status.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    org: &OrgId,
    endpoint: &WebhookId,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> Result<Page<webhook_delivery::Model>, DbErr> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.as_str()));
    if let Some(status) = status {
        query = query.filter(webhook_delivery::Column::Status.eq(status));
    }
    let rows = windowed(query, webhook_delivery::Column::Id, page)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Leases the next due delivery of any organization: pending and due, not claimed by a live
/// dispatcher.
///
/// Unscoped by necessity: dispatchers serve every organization; the delivery names its own.
pub async fn claim(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    for _ in 0..5 {
        let Some(candidate) = webhook_delivery::Entity::find()
            .filter(due(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(1)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        if let Some(claimed) = claim_one(db, &candidate.id, now, lease_until).await? {
            return Ok(Some(claimed));
        }
    }
    Ok(None)
}

/// When the earliest pending delivery that no dispatcher holds is due.
///
/// Unscoped by necessity: dispatchers serve every organization.
pub async fn next_due_at(db: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, DbErr> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::LeaseUntil.is_null())
        .select_only()
        .column(webhook_delivery::Column::NextAttemptAt)
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .limit(1)
        .into_tuple()
        .one(db)
        .await
}

/// Leases the delivery `id` when it is due and unclaimed.
///
/// Unscoped by necessity: the id was read from a scoped query or a claim.
pub async fn claim_one(
    db: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    let claimed = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::LeaseUntil,
            Expr::value(Some(lease_until)),
        )
        .col_expr(
            webhook_delivery::Column::Attempts,
            Expr::col(webhook_delivery::Column::Attempts).add(1),
        )
        .filter(webhook_delivery::Column::Id.eq(id))
        .filter(due(now))
        .exec(db)
        .await?;
    if claimed.rows_affected == 1 {
        webhook_delivery::Entity::find_by_id(id).one(db).await
    } else {
        Ok(None)
    }
}

/// Pending, due at `now`, and not leased to a live dispatcher.
fn due(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .add(webhook_delivery::Column::NextAttemptAt.lte(now))
        .add(
            Condition::any()
                .add(webhook_delivery::Column::LeaseUntil.is_null())
                .add(webhook_delivery::Column::LeaseUntil.lt(now)),
        )
}

/// Deletes the events (with their deliveries and attempts) written before `cutoff`, except
/// those with a delivery still pending (a re-send of an old event).
///
/// Unscoped by necessity: retention applies to every organization alike.
pub async fn prune(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let pending = Query::select()
        .column(webhook_delivery::Column::EventId)
        .from(webhook_delivery::Entity)
        .and_where(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .to_owned();
    let deleted = webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::CreatedAt.lt(cutoff))
        .filter(webhook_event::Column::Id.not_in_subquery(pending))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone)]
pub struct Settled {
    /// `SUCCEEDED`, `FAILED`, or `PENDING` again for a retry.
    pub status: DeliveryStatus,
    /// When a retry is due.
    pub next_attempt_at: DateTime<Utc>,
    /// The endpoint's HTTP status.
    pub last_status_code: Option<i32>,
    /// Why the attempt failed.
    pub last_error: Option<String>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Records the outcome of the attempt made under the claim that counted it as attempt
/// `attempt`, releasing the claim. Returns false, changing nothing, when the claim was lost
/// (it expired and another dispatcher, whose claim counted another attempt, took over).
///
/// Unscoped by necessity: the delivery was claimed by id.
pub async fn settle(
    db: &impl ConnectionTrait,
    id: &str,
    attempt: i32,
    settled: Settled,
) -> Result<bool, DbErr> {
    let updated = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(settled.status),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(settled.next_attempt_at),
        )
        .col_expr(
            webhook_delivery::Column::LastStatusCode,
            Expr::value(settled.last_status_code),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(settled.last_error),
        )
        .col_expr(
            webhook_delivery::Column::DeliveredAt,
            Expr::value(settled.delivered_at),
        )
        .col_expr(
            webhook_delivery::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook_delivery::Column::Id.eq(id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::Attempts.eq(attempt))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Queues the delivery `id` of `org` again, due `now`, retried until `give_up_at`, its
/// attempt count and outcome reset (its attempts stay listed). False when a dispatcher
/// holds it right now.
pub async fn requeue(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &DeliveryId,
    now: DateTime<Utc>,
    give_up_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let none = Option::<DateTime<Utc>>::None;
    let updated = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Pending),
        )
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(webhook_delivery::Column::GiveUpAt, Expr::value(give_up_at))
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
        .col_expr(
            webhook_delivery::Column::LastStatusCode,
            Expr::value(Option::<i32>::None),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(none))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(id.as_str()))
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .filter(
            Condition::any()
                .add(webhook_delivery::Column::LeaseUntil.is_null())
                .add(webhook_delivery::Column::LeaseUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Records one attempt.
pub async fn insert_attempt(
    db: &impl ConnectionTrait,
    attempt: webhook_attempt::ActiveModel,
) -> Result<webhook_attempt::Model, DbErr> {
    attempt.insert(db).await
}

/// The attempts of the delivery `delivery` of `org`, oldest first (at most `limit`, newest
/// kept).
pub async fn attempts(
    db: &impl ConnectionTrait,
    org: &OrgId,
    delivery: &str,
    limit: u64,
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    let mut rows = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::OrgId.eq(org.as_str()))
        .filter(webhook_attempt::Column::DeliveryId.eq(delivery))
        .order_by_desc(webhook_attempt::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.reverse();
    Ok(rows)
}
