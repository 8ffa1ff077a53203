//! The durable ingestion queue.
//!
//! Claiming is a compare-and-set on the job row (on PostgreSQL of a row locked with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different jobs), so any number of
//! workers (and replicas) can poll the same table: a job is leased until `lease_until`, renewed while it runs, and
//! taken over by another worker when a lease expires (its worker died).

use chrono::{DateTime, Utc};
use entity::ingest_job::{self, JobStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query, SelectStatement},
};

use crate::domain::access::Tenant;
use crate::domain::ids::{JobId, SourceId};

/// Queues a job for `source` unless one is already waiting.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    source: &SourceId,
    kind: &str,
    run_after: DateTime<Utc>,
) -> Result<(), DbErr> {
    let org = tenant.org();
    let waiting = ingest_job::Entity::find()
        .filter(ingest_job::Column::OrgId.eq(org.as_str()))
        .filter(ingest_job::Column::SourceId.eq(source.as_str()))
        .filter(ingest_job::Column::Status.eq(JobStatus::Queued))
        .one(db)
        .await?;
    if waiting.is_some() {
        return Ok(());
    }
    let now = Utc::now();
    ingest_job::ActiveModel {
        id: Set(JobId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        source_id: Set(source.as_str().to_owned()),
        kind: Set(kind.to_owned()),
        status: Set(JobStatus::Queued),
        attempts: Set(0),
        run_after: Set(run_after),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How many jobs wait to run, across organizations (a metric: unscoped by necessity).
pub async fn queued(db: &DatabaseConnection) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    ingest_job::Entity::find()
        .filter(ingest_job::Column::Status.eq(JobStatus::Queued))
        .count(db)
        .await
}

/// A job a worker took.
#[derive(Debug)]
pub enum Claimed {
    /// To run.
    Run(ingest_job::Model),
    /// Leased again after its attempts were spent: each run stopped without settling it (the
    /// process died inside it), so it is failed without running again.
    Spent(ingest_job::Model),
}

/// Leases the next runnable job of any organization: queued and due, or running with an
/// expired lease; never one whose source another worker is indexing. The organization whose
/// jobs ran least recently goes first, so one organization's hundreds of files delay
/// another's one file by at most the jobs already running.
///
/// Unscoped by necessity: workers serve every organization; the job names its own.
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    max_attempts: i32,
) -> Result<Option<Claimed>, DbErr> {
    let runnable = || {
        Condition::all()
            .add(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(ingest_job::Column::Status.eq(JobStatus::Queued))
                            .add(ingest_job::Column::RunAfter.lte(now)),
                    )
                    .add(
                        Condition::all()
                            .add(ingest_job::Column::Status.eq(JobStatus::Running))
                            .add(ingest_job::Column::LeaseUntil.lt(now)),
                    ),
            )
            .add(Expr::exists(held_by_another(now)).not())
    };
    // When the organization last had a job taken or settled; never comes first.
    let served = "(SELECT MAX(served.updated_at) FROM ingest_job AS served \
                  WHERE served.org_id = ingest_job.org_id AND served.status <> 'QUEUED')";
    // PostgreSQL: the candidate is locked, and one another worker has locked is skipped,
    // so workers claiming at once take different jobs. SQLite has one writer at a time: the
    // compare-and-set below is enough, retried when another worker won.
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    for _ in 0..5 {
        let txn = if postgres {
            Some(crate::db::begin_write(db).await?)
        } else {
            None
        };
        let mut candidates = ingest_job::Entity::find()
            .filter(runnable())
            .order_by(Expr::cust(format!("{served} IS NOT NULL")), Order::Asc)
            .order_by(Expr::cust(served), Order::Asc)
            .order_by_asc(ingest_job::Column::RunAfter);
        if postgres {
            candidates = candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let found = match &txn {
            Some(txn) => candidates.one(txn).await?,
            None => candidates.one(db).await?,
        };
        let Some(candidate) = found else {
            return Ok(None);
        };
        let claim = ingest_job::Entity::update_many()
            .col_expr(ingest_job::Column::Status, Expr::value(JobStatus::Running))
            .col_expr(ingest_job::Column::LeaseUntil, Expr::value(lease_until))
            .col_expr(
                ingest_job::Column::Attempts,
                Expr::col(ingest_job::Column::Attempts).add(1),
            )
            .col_expr(ingest_job::Column::UpdatedAt, Expr::value(now))
            .filter(ingest_job::Column::Id.eq(candidate.id.as_str()))
            .filter(runnable());
        let claimed = match txn {
            Some(txn) => {
                let claimed = claim.exec(&txn).await?;
                txn.commit().await?;
                claimed
            }
            None => claim.exec(db).await?,
        };
        if claimed.rows_affected == 1 {
            return Ok(ingest_job::Entity::find_by_id(candidate.id)
                .one(db)
                .await?
                .map(|job| {
                    if job.attempts > max_attempts {
                        Claimed::Spent(job)
                    } else {
                        Claimed::Run(job)
                    }
                }));
        }
    }
    Ok(None)
}

/// Another job of the same source, running under a live lease.
fn held_by_another(now: DateTime<Utc>) -> SelectStatement {
    let other = Alias::new("other");
    let column = |c: ingest_job::Column| (other.clone(), c);
    Query::select()
        .expr(Expr::val(1))
        .from_as(ingest_job::Entity, other.clone())
        .and_where(
            Expr::col(column(ingest_job::Column::SourceId))
                .equals((ingest_job::Entity, ingest_job::Column::SourceId)),
        )
        .and_where(
            Expr::col(column(ingest_job::Column::Id))
                .ne(Expr::col((ingest_job::Entity, ingest_job::Column::Id))),
        )
        .and_where(Expr::col(column(ingest_job::Column::Status)).eq(JobStatus::Running))
        .and_where(Expr::col(column(ingest_job::Column::LeaseUntil)).gte(now))
        .to_owned()
}

/// Extends the lease of the running job `id` of the organization.
pub async fn renew(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    lease_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    let org = tenant.org();
    ingest_job::Entity::update_many()
        .col_expr(ingest_job::Column::LeaseUntil, Expr::value(lease_until))
        .filter(ingest_job::Column::Id.eq(id))
        .filter(ingest_job::Column::OrgId.eq(org.as_str()))
        .filter(ingest_job::Column::Status.eq(JobStatus::Running))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends the job `id` of the organization as done or failed.
pub async fn finish(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    status: JobStatus,
    error: Option<String>,
) -> Result<(), DbErr> {
    let org = tenant.org();
    ingest_job::Entity::update_many()
        .col_expr(ingest_job::Column::Status, Expr::value(status))
        .col_expr(
            ingest_job::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(ingest_job::Column::LastError, Expr::value(error))
        .col_expr(ingest_job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(ingest_job::Column::Id.eq(id))
        .filter(ingest_job::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts the job `id` of the organization back in the queue to run again after `run_after`.
pub async fn retry_later(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
    run_after: DateTime<Utc>,
    error: String,
) -> Result<(), DbErr> {
    let org = tenant.org();
    ingest_job::Entity::update_many()
        .col_expr(ingest_job::Column::Status, Expr::value(JobStatus::Queued))
        .col_expr(ingest_job::Column::RunAfter, Expr::value(run_after))
        .col_expr(
            ingest_job::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(ingest_job::Column::LastError, Expr::value(Some(error)))
        .col_expr(ingest_job::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(ingest_job::Column::Id.eq(id))
        .filter(ingest_job::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
