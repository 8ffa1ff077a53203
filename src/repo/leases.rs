//! Leases of periodic passes that run once across replicas.
//!
//! Unscoped by necessity: a pass (vector maintenance, webhook retention) serves every
//! organization; a lease names the pass, not any organization's data.

use chrono::{DateTime, Utc};
use entity::lease;
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};

/// Takes the lease `name` for `holder` until `until`, when no replica holds it at `now`.
/// Returns whether it was taken: of replicas asking at once, one gets it. The lease is not
/// given back: a pass that runs every `interval` takes it for `interval`, so the next pass
/// runs on whichever replica asks first once it has expired.
pub async fn take(
    db: &impl ConnectionTrait,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = lease::ActiveModel {
        name: Set(name.to_owned()),
        holder: Set(holder.to_owned()),
        expires_at: Set(until),
    };
    let taken = lease::Entity::insert(row)
        .on_conflict(
            OnConflict::column(lease::Column::Name)
                .update_columns([lease::Column::Holder, lease::Column::ExpiresAt])
                .action_and_where(Expr::col((lease::Entity, lease::Column::ExpiresAt)).lte(now))
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(taken == 1)
}
