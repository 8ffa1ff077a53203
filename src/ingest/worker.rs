//! The background side of ingestion: a pool of workers draining the durable job queue, the
//! URL refresh scheduler, and vector store maintenance.

use std::time::Duration;

use chrono::Utc;
use entity::{ingest_job::JobStatus, knowledge_source::Status};
use sea_orm::TransactionTrait;
use tokio::task::JoinHandle;

use super::pipeline::{self, JobError, kinds};
use crate::{
    auth::{Tenant, Work},
    domain::ids::{OrgId, SourceId},
    repo,
    runtime::outbox::{self, Event},
    state::AppState,
};

/// How often idle workers look for due jobs (retries, other replicas' jobs).
const POLL: Duration = Duration::from_secs(1);
/// Longest wait before a retry.
const MAX_BACKOFF_SECONDS: i64 = 300;

/// Starts the workers (none when `ingest_workers` is 0: an API-only replica), the scheduler
/// and the maintenance loop.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    let mut tasks: Vec<JoinHandle<()>> = (0..state.settings.ingestion.ingest_workers)
        .map(|_| tokio::spawn(work(state.clone())))
        .collect();
    tasks.push(tokio::spawn(schedule(state.clone())));
    tasks.push(tokio::spawn(maintain(state.clone())));
    tasks
}

async fn work(state: AppState) {
    loop {
        let now = Utc::now();
        let lease = chrono::Duration::seconds(state.settings.ingestion.ingest_lease_seconds as i64);
        match repo::jobs::claim(&state.db, now, now + lease).await {
            Ok(Some(job)) => {
                // The job's organization, for the indexing work it asks for.
                let tenant = Tenant::for_work(OrgId::from_db(job.org_id.clone()), Work::Ingestion);
                let source = SourceId::from_db(job.source_id.clone());
                let heartbeat = tokio::spawn(renew(state.clone(), tenant.clone(), job.id.clone()));
                let result = pipeline::run(&state, &tenant, &source, &job.kind).await;
                heartbeat.abort();
                if let Err(e) =
                    settle(&state, &job.id, job.attempts, &tenant, &source, result).await
                {
                    tracing::warn!(job = %job.id, error = %e, "could not record a job's outcome; it will run again");
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = state.job_signal.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim an ingestion job");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Keeps the lease of a running job of the handle's organization alive.
async fn renew(state: AppState, tenant: Tenant, job: String) {
    let every =
        Duration::from_millis((state.settings.ingestion.ingest_lease_seconds * 1000 / 3).max(100));
    loop {
        tokio::time::sleep(every).await;
        let until = Utc::now()
            + chrono::Duration::seconds(state.settings.ingestion.ingest_lease_seconds as i64);
        if let Err(e) = repo::jobs::renew(&state.db, &tenant, &job, until).await {
            tracing::warn!(job, error = %e, "could not renew a job lease");
        }
    }
}

/// Records how a job ended: done, failed for good, or queued again with backoff.
async fn settle(
    state: &AppState,
    job: &str,
    attempts: i32,
    tenant: &Tenant,
    source: &SourceId,
    result: Result<(), JobError>,
) -> Result<(), sea_orm::DbErr> {
    let db = &state.db;
    match result {
        Ok(()) => repo::jobs::finish(db, tenant, job, JobStatus::Done, None).await,
        Err(JobError::Permanent(message)) => {
            tracing::info!(source = %source, reason = %message, "knowledge source failed");
            fail(state, job, tenant, source, message).await
        }
        Err(JobError::Transient(error)) => {
            let message = format!("{error:#}");
            if attempts >= state.settings.ingestion.ingest_max_attempts {
                tracing::warn!(source = %source, error = %message, "knowledge source failed after retries");
                let reason = format!("gave up after {attempts} attempts: {message}");
                return fail(state, job, tenant, source, reason).await;
            }
            let backoff = (1_i64 << attempts.clamp(0, 16)).min(MAX_BACKOFF_SECONDS);
            tracing::info!(source = %source, error = %message, retry_in_seconds = backoff, "ingestion will be retried");
            repo::knowledge::set_status(
                db,
                tenant,
                source,
                Status::Pending,
                Some(format!("retrying: {message}")),
            )
            .await?;
            repo::jobs::retry_later(
                db,
                tenant,
                job,
                Utc::now() + chrono::Duration::seconds(backoff),
                message,
            )
            .await
        }
    }
}

/// Marks the source and its job failed, with `knowledge.failed`, in one transaction.
async fn fail(
    state: &AppState,
    job: &str,
    tenant: &Tenant,
    source: &SourceId,
    reason: String,
) -> Result<(), sea_orm::DbErr> {
    let txn = state.db.begin().await?;
    repo::knowledge::set_status(&txn, tenant, source, Status::Failed, Some(reason.clone())).await?;
    repo::jobs::finish(&txn, tenant, job, JobStatus::Failed, Some(reason.clone())).await?;
    let emitted = match repo::knowledge::find(&txn, tenant, source).await? {
        Some(failed) => {
            let event = Event::knowledge_failed(&failed, &reason);
            outbox::emit(&txn, state.outbox(), tenant, event).await?
        }
        None => None,
    };
    txn.commit().await?;
    if emitted.is_some() {
        state.webhook_signal.notify();
    }
    Ok(())
}

/// Queues a refresh for every URL source whose interval has passed.
async fn schedule(state: AppState) {
    let every = Duration::from_millis(
        (state.settings.ingestion.scheduler_interval_seconds * 1000).max(100),
    );
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = schedule_due(&state).await {
            tracing::warn!(error = %e, "could not schedule URL refreshes");
        }
    }
}

/// One scheduler pass.
async fn schedule_due(state: &AppState) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now();
    for source in repo::knowledge::due_for_refresh(&state.db, now, 100).await? {
        let tenant = Tenant::for_work(OrgId::from_db(source.org_id.clone()), Work::Ingestion);
        let id = SourceId::from_db(source.id.clone());
        let minutes = source
            .refresh_interval_minutes
            .unwrap_or(state.settings.ingestion.url_refresh_minutes)
            .max(1);
        let next = now + chrono::Duration::minutes(i64::from(minutes));
        if !repo::knowledge::schedule_refresh(&state.db, &tenant, &id, next).await? {
            continue; // deleted meanwhile
        }
        repo::jobs::enqueue(&state.db, &tenant, &id, kinds::REFRESH, now).await?;
        state.job_signal.notify();
    }
    Ok(())
}

/// Compacts and re-indexes the vector tables on a schedule.
async fn maintain(state: AppState) {
    let every = Duration::from_secs(state.settings.vectors.vector_optimize_minutes.max(1) * 60);
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = state.vectors.optimize().await {
            tracing::warn!(error = format!("{e:#}"), "vector store maintenance failed");
        }
    }
}
