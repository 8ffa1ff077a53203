//! Answers kept for `Idempotency-Key`, per organization: the first request with a key claims
//! it, its answer is kept for 24 hours, and a request that died releases it (or lets it be
//! taken over once its lock has passed).

use chrono::{DateTime, Utc};
use entity::idempotency_key;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::domain::access::Tenant;

/// A request running with the key.
pub const PENDING: &str = "PENDING";
/// The key's answer is kept.
pub const DONE: &str = "DONE";

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it, then [`finish`] or [`release`].
    Taken,
    /// Another request has it: running, or answered.
    Held(Box<idempotency_key::Model>),
}

/// A claim's identity: the key and when it was claimed (a key taken over after its lock
/// passed is claimed anew, and the old request may no longer write to it).
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The namespaced key.
    pub key: String,
    /// When it was claimed.
    pub at: DateTime<Utc>,
}

/// Claims `key` for a request of `fingerprint`: taken when it is free, expired, or held by a
/// request whose lock has passed; otherwise what holds it.
pub async fn claim(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    claimed: &Claimed,
    fingerprint: &str,
    locked_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Claim, DbErr> {
    let org = tenant.org().as_str();
    for _ in 0..3 {
        let row = idempotency_key::ActiveModel {
            org_id: Set(org.to_owned()),
            key: Set(claimed.key.clone()),
            fingerprint: Set(fingerprint.to_owned()),
            state: Set(PENDING.to_owned()),
            locked_until: Set(locked_until),
            status: Set(None),
            headers: Set(serde_json::json!([])),
            body: Set(None),
            created_at: Set(claimed.at),
            expires_at: Set(expires_at),
        };
        let table = idempotency_key::Entity;
        let free = Expr::col((table, idempotency_key::Column::ExpiresAt))
            .lte(claimed.at)
            .or(Expr::col((table, idempotency_key::Column::State))
                .eq(PENDING)
                .and(Expr::col((table, idempotency_key::Column::LockedUntil)).lte(claimed.at)));
        let taken = idempotency_key::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([idempotency_key::Column::OrgId, idempotency_key::Column::Key])
                    .update_columns([
                        idempotency_key::Column::Fingerprint,
                        idempotency_key::Column::State,
                        idempotency_key::Column::LockedUntil,
                        idempotency_key::Column::Status,
                        idempotency_key::Column::Headers,
                        idempotency_key::Column::Body,
                        idempotency_key::Column::CreatedAt,
                        idempotency_key::Column::ExpiresAt,
                    ])
                    .action_and_where(free)
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        if taken == 1 {
            return Ok(Claim::Taken);
        }
        // Held: read what holds it (released meanwhile: claim again).
        if let Some(held) = find(db, org, &claimed.key).await? {
            return Ok(Claim::Held(Box::new(held)));
        }
    }
    Err(DbErr::Custom(
        "an idempotency key kept changing hands".to_owned(),
    ))
}

/// Keeps the answer of the request that claimed the key.
pub async fn finish(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    claimed: &Claimed,
    status: u16,
    headers: serde_json::Value,
    body: Vec<u8>,
) -> Result<(), DbErr> {
    idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::State, Expr::value(DONE))
        .col_expr(
            idempotency_key::Column::Status,
            Expr::value(i32::from(status)),
        )
        .col_expr(idempotency_key::Column::Headers, Expr::value(headers))
        .col_expr(idempotency_key::Column::Body, Expr::value(body))
        .filter(mine(tenant, claimed))
        .exec(db)
        .await?;
    Ok(())
}

/// Frees a key whose request kept no answer (it failed, or its client left mid-stream), so
/// a retry runs it again.
pub async fn release(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    claimed: &Claimed,
) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(mine(tenant, claimed))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the keys expired at `now`, every organization's (a retention pass). Returns how
/// many.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}

async fn find(
    db: &impl ConnectionTrait,
    org: &str,
    key: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    idempotency_key::Entity::find()
        .filter(idempotency_key::Column::OrgId.eq(org))
        .filter(idempotency_key::Column::Key.eq(key))
        .one(db)
        .await
}

/// The claim's row, while still pending under this claim.
fn mine(tenant: &Tenant, claimed: &Claimed) -> Condition {
    Condition::all()
        .add(idempotency_key::Column::OrgId.eq(tenant.org().as_str()))
        .add(idempotency_key::Column::Key.eq(claimed.key.as_str()))
        .add(idempotency_key::Column::State.eq(PENDING))
        .add(idempotency_key::Column::CreatedAt.eq(claimed.at))
}
