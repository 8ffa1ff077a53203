//! The background side of ingestion: a pool of workers draining the durable job queue, the
//! URL refresh scheduler, and vector store maintenance.

use std::time::Duration;

use chrono::Utc;
use entity::{ingest_job::JobStatus, knowledge_source::Status};
use tokio::task::JoinHandle;
use tracing::{Instrument, field::Empty};

use super::pipeline::{self, JobError, kinds};
use crate::{
    auth::{Tenant, Work},
    domain::{
        ids::{OrgId, SourceId},
        source_failure::{FailureCode, SourceFailure},
    },
    repo::{self, jobs::Claimed},
    runtime::outbox::{self, Event},
    state::AppState,
    vector::VectorStore,
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
        let most = state.settings.ingestion.ingest_max_attempts;
        match repo::jobs::claim(&state.db, now, now + lease, most).await {
            Ok(Some(Claimed::Run(job))) => {
                // The job's organization, for the indexing work it asks for.
                let tenant = Tenant::for_work(OrgId::from_db(job.org_id.clone()), Work::Ingestion);
                let source = SourceId::from_db(job.source_id.clone());
                let span = tracing::info_span!(
                    "ingestion job",
                    otel.name = format!("ingest {}", job.kind),
                    otel.status_code = Empty,
                    error.type = Empty,
                    companin.organization.id = %job.org_id,
                    companin.source.id = %job.source_id,
                    companin.job.id = %job.id,
                    companin.job.kind = %job.kind,
                    companin.job.attempt = job.attempts,
                );
                let heartbeat = tokio::spawn(renew(state.clone(), tenant.clone(), job.id.clone()));
                let result = pipeline::run(&state, &tenant, &source, &job.kind)
                    .instrument(span.clone())
                    .await;
                heartbeat.abort();
                if let Err(e) = &result {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", e.kind());
                }
                if let Err(e) =
                    settle(&state, &job.id, job.attempts, &tenant, &source, result).await
                {
                    tracing::warn!(job = %job.id, error = %e, "could not record a job's outcome; it will run again");
                }
            }
            Ok(Some(Claimed::Spent(job))) => {
                let tenant = Tenant::for_work(OrgId::from_db(job.org_id.clone()), Work::Ingestion);
                let source = SourceId::from_db(job.source_id.clone());
                tracing::warn!(job = %job.id, source = %source, attempts = job.attempts - 1, "a job stopped without settling on each attempt; it is failed without running again");
                let failure = given_up(job.attempts - 1);
                if let Err(e) = fail(&state, &job.id, &tenant, &source, failure).await {
                    tracing::warn!(job = %job.id, error = %e, "could not fail a spent job; it is found again when its lease ends");
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
        Err(JobError::Permanent(failure)) => {
            tracing::info!(source = %source, reason = %failure, "knowledge source failed");
            fail(state, job, tenant, source, failure).await
        }
        Err(JobError::Transient(error)) => {
            // The cause (a path, a statement, a provider's answer) is for the logs only.
            let message = format!("{error:#}");
            if attempts >= state.settings.ingestion.ingest_max_attempts {
                tracing::warn!(source = %source, error = %message, "knowledge source failed after retries");
                return fail(state, job, tenant, source, given_up(attempts)).await;
            }
            let backoff = (1_i64 << attempts.clamp(0, 16)).min(MAX_BACKOFF_SECONDS);
            tracing::info!(source = %source, error = %message, retry_in_seconds = backoff, "ingestion will be retried");
            let retrying = SourceFailure::new(
                FailureCode::Retrying,
                format!(
                    "indexing was interrupted (attempt {attempts}); it is tried again in {backoff} s"
                ),
            );
            repo::knowledge::set_status(db, tenant, source, Status::Pending, Some(&retrying))
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

/// Why a job that kept failing for reasons outside its content was given up.
fn given_up(attempts: i32) -> SourceFailure {
    SourceFailure::new(
        FailureCode::IndexingFailed,
        format!(
            "indexing was interrupted {attempts} times and was given up; upload the file again or ask for a re-index"
        ),
    )
}

/// Marks the source and its job failed, with `knowledge.failed`, in one transaction.
async fn fail(
    state: &AppState,
    job: &str,
    tenant: &Tenant,
    source: &SourceId,
    failure: SourceFailure,
) -> Result<(), sea_orm::DbErr> {
    let txn = crate::db::begin_write(&state.db).await?;
    repo::knowledge::set_status(&txn, tenant, source, Status::Failed, Some(&failure)).await?;
    repo::jobs::finish(
        &txn,
        tenant,
        job,
        JobStatus::Failed,
        Some(failure.to_string()),
    )
    .await?;
    let emitted = match repo::knowledge::find(&txn, tenant, source).await? {
        Some(failed) => {
            let event = Event::knowledge_failed(&failed);
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

/// Queues a refresh for every URL source whose interval has passed, once across replicas.
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
        // The claim and the job commit together; of replicas scheduling at once, one claims
        // the refresh (the others find it no longer due) and a source deleted meanwhile is
        // claimed by none.
        let txn = crate::db::begin_write(&state.db).await?;
        if !repo::knowledge::claim_refresh(&txn, &tenant, &id, now, next).await? {
            continue;
        }
        repo::jobs::enqueue(&txn, &tenant, &id, kinds::REFRESH, now).await?;
        txn.commit().await?;
        state.job_signal.notify();
    }
    Ok(())
}

/// Compacts and re-indexes the vector tables and sweeps orphaned chunks on a schedule, on one
/// replica a pass.
async fn maintain(state: AppState) {
    let every = Duration::from_secs(state.settings.vectors.vector_optimize_minutes.max(1) * 60);
    loop {
        tokio::time::sleep(every).await;
        // One replica a pass: maintenance commits conflict with each other.
        if !state.take_lease("vector-maintenance", every).await {
            continue;
        }
        if let Err(e) = state.vectors.optimize().await {
            tracing::warn!(error = format!("{e:#}"), "vector store maintenance failed");
        }
        match sweep_orphans(&state.db, &state.vectors).await {
            Ok(0) => {}
            Ok(swept) => {
                tracing::warn!(sources = swept, "removed the chunks of deleted sources");
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "could not sweep orphaned chunks"),
        }
    }
}

/// Removes the chunks of sources that no longer exist (a delete that stopped halfway, a
/// source deleted while another replica indexed it); returns how many sources' chunks went.
pub async fn sweep_orphans(
    db: &sea_orm::DatabaseConnection,
    vectors: &VectorStore,
) -> anyhow::Result<usize> {
    let indexed: Vec<(OrgId, SourceId)> = vectors.indexed_sources().await?.into_iter().collect();
    let ids: Vec<SourceId> = indexed.iter().map(|(_, source)| source.clone()).collect();
    let existing = repo::knowledge::existing(db, &ids).await?;
    let mut swept = 0;
    // A source's row is written before its first chunk, so one being indexed now is found.
    for (org, source) in indexed.iter().filter(|pair| !existing.contains(pair)) {
        vectors.delete_source(org, source).await?;
        swept += 1;
    }
    Ok(swept)
}
