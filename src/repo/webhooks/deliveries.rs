//! Deliveries of events to endpoints, their claims and their attempts.

use chrono::{DateTime, Utc};
use entity::{
    webhook_attempt,
    webhook_delivery::{self, DeliveryStatus},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, LockBehavior, LockType},
};

use crate::domain::access::Tenant;
use crate::{
    domain::{
        ids::{AttemptId, DeliveryId, OrgId, WebhookId},
        pagination::{Page, PageRequest},
    },
    repo::windowed,
};

/// A delivery to queue: due now, retried until `retry_window` from now.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The event it carries.
    pub event_id: String,
    /// The endpoint it goes to.
    pub endpoint_id: String,
    /// How long failed attempts are retried.
    pub retry_window: chrono::Duration,
}

/// Queues a delivery of the organization.
pub async fn insert_delivery(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewDelivery,
) -> Result<webhook_delivery::Model, DbErr> {
    let org = tenant.org();
    let now = Utc::now();
    webhook_delivery::ActiveModel {
        id: Set(DeliveryId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        event_id: Set(new.event_id),
        endpoint_id: Set(new.endpoint_id),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        give_up_at: Set(now + new.retry_window),
        lease_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        delivered_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// The delivery `id` of the organization.
pub async fn find_delivery(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &DeliveryId,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    let org = tenant.org();
    webhook_delivery::Entity::find_by_id(id.as_str())
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// A page of the deliveries of the organization to `endpoint`, oldest first, optionally of one status.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    endpoint: &WebhookId,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> Result<Page<webhook_delivery::Model>, DbErr> {
    let org = tenant.org();
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
/// dispatcher. PostgreSQL: the candidate is locked, and one another dispatcher has locked is
/// skipped, so dispatchers claiming at once take different deliveries. SQLite has one writer
/// at a time: the compare-and-set of the lease is enough, retried when another dispatcher won.
///
/// Unscoped by necessity: dispatchers serve every organization; the delivery names its own.
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    for _ in 0..5 {
        let mut next = webhook_delivery::Entity::find()
            .filter(due(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(1);
        let claimed = if postgres {
            next = next.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
            let txn = crate::db::begin_write(db).await?;
            let Some(candidate) = next.one(&txn).await? else {
                return Ok(None);
            };
            let org = OrgId::from_db(candidate.org_id.clone());
            let claimed = lease(&txn, &org, &candidate.id, now, lease_until).await?;
            txn.commit().await?;
            claimed
        } else {
            let Some(candidate) = next.one(db).await? else {
                return Ok(None);
            };
            let org = OrgId::from_db(candidate.org_id.clone());
            lease(db, &org, &candidate.id, now, lease_until).await?
        };
        if claimed.is_some() {
            return Ok(claimed);
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

/// Leases the delivery `id` of the handle's organization when it is due and unclaimed.
pub async fn claim_one(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    lease(db, tenant.org(), id, now, lease_until).await
}

/// Leases the delivery `id` of the organization when it is due and unclaimed.
async fn lease(
    db: &impl ConnectionTrait,
    org: &OrgId,
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
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .filter(due(now))
        .exec(db)
        .await?;
    if claimed.rows_affected == 1 {
        webhook_delivery::Entity::find_by_id(id)
            .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
            .one(db)
            .await
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
pub async fn settle(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    attempt: i32,
    settled: Settled,
) -> Result<bool, DbErr> {
    let org = tenant.org();
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
        .filter(webhook_delivery::Column::OrgId.eq(org.as_str()))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_delivery::Column::Attempts.eq(attempt))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Queues the delivery `id` of the organization again, due `now`, retried until `give_up_at`, its
/// attempt count and outcome reset (its attempts stay listed). False when a dispatcher
/// holds it right now.
pub async fn requeue(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &DeliveryId,
    now: DateTime<Utc>,
    give_up_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let org = tenant.org();
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

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// The delivery attempted.
    pub delivery_id: String,
    /// When the request was sent.
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's HTTP status.
    pub status_code: Option<i32>,
    /// Why the attempt failed.
    pub error: Option<String>,
    /// How long the request took.
    pub duration_ms: i32,
    /// The start of the endpoint's answer.
    pub response_excerpt: Option<String>,
}

/// Records one attempt of a delivery of the organization.
pub async fn insert_attempt(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewAttempt,
) -> Result<webhook_attempt::Model, DbErr> {
    let org = tenant.org();
    webhook_attempt::ActiveModel {
        id: Set(AttemptId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        delivery_id: Set(new.delivery_id),
        attempted_at: Set(new.attempted_at),
        status_code: Set(new.status_code),
        error: Set(new.error),
        duration_ms: Set(new.duration_ms),
        response_excerpt: Set(new.response_excerpt),
    }
    .insert(db)
    .await
}

/// The attempts of the delivery `delivery` of the organization, oldest first (at most `limit`, newest
/// kept).
pub async fn attempts(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    delivery: &str,
    limit: u64,
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    let org = tenant.org();
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
