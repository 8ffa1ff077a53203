//! Sending deliveries: a few dispatchers per process drain the outbox (woken when an event is
//! written, polling for retries and other replicas' events), sign each request, record every
//! attempt and schedule the next one with exponential backoff until the delivery's retry
//! window closes. Endpoints are reached through the SSRF guard of [`crate::egress`];
//! redirects are not followed (a 3xx is a failed attempt).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{
    webhook_delivery::{self, DeliveryStatus},
    webhook_endpoint, webhook_event,
};
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use sea_orm::DbErr;
use tokio::task::JoinHandle;
use tracing::{Instrument, field::Empty};

use super::{EventType, signature};
use crate::{
    auth::{Tenant, Work},
    domain::ids::{OrgId, WebhookId},
    egress,
    repo::{
        self,
        webhooks::{NewAttempt, Settled},
    },
    state::AppState,
    telemetry,
};

/// How often idle dispatchers look for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Bytes of an endpoint's answer kept with the attempt.
const EXCERPT_BYTES: usize = 512;

/// Starts `webhook_workers` dispatchers (none on an API-only replica) and the pruning of
/// events older than `webhook_retention_days`.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    let workers = state.settings.webhooks.webhook_workers;
    let mut tasks: Vec<JoinHandle<()>> = (0..workers)
        .map(|_| tokio::spawn(work(state.clone())))
        .collect();
    if workers > 0 {
        tasks.push(tokio::spawn(prune(state.clone())));
    }
    tasks
}

/// When a claim taken at `now` expires: after the request's timeout, with room to record it.
pub fn lease_end(state: &AppState, now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::seconds(state.settings.webhooks.webhook_timeout_seconds as i64 + 30)
}

async fn work(state: AppState) {
    loop {
        let now = Utc::now();
        match repo::webhooks::claim(&state.db, now, lease_end(&state, now)).await {
            Ok(Some(delivery)) => {
                let id = delivery.id.clone();
                if let Err(e) = deliver(&state, delivery).await {
                    tracing::warn!(delivery = %id, error = %e, "could not record a webhook attempt; it will be retried");
                }
            }
            Ok(None) => {
                let wait = idle_wait(&state).await;
                tokio::select! {
                    () = state.webhook_signal.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a webhook delivery");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// How long an idle dispatcher waits: until the next retry is due, at most [`POLL`] (other
/// replicas' new events are found by polling).
async fn idle_wait(state: &AppState) -> Duration {
    match repo::webhooks::next_due_at(&state.db).await {
        Ok(Some(due)) => (due - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(5), POLL),
        _ => POLL,
    }
}

/// Prunes old events every [`PRUNE_EVERY`], on one replica a pass.
async fn prune(state: AppState) {
    loop {
        if !state.take_lease("webhook-retention", PRUNE_EVERY).await {
            tokio::time::sleep(PRUNE_EVERY).await;
            continue;
        }
        let cutoff = Utc::now()
            - chrono::Duration::days(i64::from(state.settings.webhooks.webhook_retention_days));
        match repo::webhooks::prune(&state.db, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned old webhook events"),
            Err(e) => tracing::warn!(error = %e, "could not prune webhook events"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// One attempt of a claimed delivery, recorded with the delivery's next state. The outcome
/// is kept only while the claim holds (a dispatcher whose claim expired and was taken over
/// changes nothing).
pub async fn deliver(state: &AppState, delivery: webhook_delivery::Model) -> Result<(), DbErr> {
    let span = tracing::info_span!(
        "webhook delivery",
        otel.name = "webhook delivery",
        otel.kind = "client",
        otel.status_code = Empty,
        companin.organization.id = %delivery.org_id,
        companin.webhook.delivery.id = %delivery.id,
        companin.webhook.attempt = delivery.attempts,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    attempt_once(state, delivery).instrument(span).await
}

async fn attempt_once(state: &AppState, delivery: webhook_delivery::Model) -> Result<(), DbErr> {
    let db = &state.db;
    let attempt = delivery.attempts;
    // The delivery's organization, for the delivery work it asks for.
    let tenant = Tenant::for_work(OrgId::from_db(delivery.org_id.clone()), Work::Webhooks);
    let endpoint = repo::webhooks::find(
        db,
        &tenant,
        &WebhookId::from_db(delivery.endpoint_id.clone()),
    )
    .await?;
    let event = repo::webhooks::find_event(db, &tenant, &delivery.event_id).await?;
    let (Some(endpoint), Some(event)) = (endpoint, event) else {
        // Deleted meanwhile: the cascade removes the delivery too.
        return Ok(());
    };
    let now = Utc::now();
    let is_test = event.event_type == EventType::WebhookTest.as_str();
    if !endpoint.enabled && !is_test {
        let settled = Settled {
            status: DeliveryStatus::Failed,
            next_attempt_at: now,
            last_status_code: None,
            last_error: Some("the endpoint is disabled".into()),
            delivered_at: None,
        };
        repo::webhooks::settle(db, &tenant, &delivery.id, attempt, settled).await?;
        return Ok(());
    }
    let sent = send(state, &endpoint, &event, &delivery.id).await;
    // The attempt and the delivery's next state are written together.
    let txn = crate::db::begin_write(db).await?;
    let attempted = NewAttempt {
        delivery_id: delivery.id.clone(),
        attempted_at: sent.at,
        status_code: sent.status,
        error: sent.error.clone(),
        duration_ms: i32::try_from(sent.duration.as_millis()).unwrap_or(i32::MAX),
        response_excerpt: sent.excerpt.clone(),
    };
    repo::webhooks::insert_attempt(&txn, &tenant, attempted).await?;
    let span = tracing::Span::current();
    if let Some(status) = sent.status {
        span.record("http.response.status_code", status);
    }
    let settled = settlement(state, &delivery, sent);
    let outcome = match settled.status {
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Pending => "retrying",
    };
    if outcome != "succeeded" {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", outcome);
    }
    let kept = repo::webhooks::settle(&txn, &tenant, &delivery.id, attempt, settled).await?;
    txn.commit().await?;
    if kept {
        state.metrics.webhook_attempt(outcome);
    } else {
        tracing::warn!(delivery = %delivery.id, "a webhook delivery's claim expired during its attempt; another dispatcher has it");
    }
    Ok(())
}

/// The delivery's next state after an attempt: delivered, failed for good (a permanent
/// refusal, or the retry window closed), or pending its next retry with backoff.
fn settlement(state: &AppState, delivery: &webhook_delivery::Model, sent: Sent) -> Settled {
    let now = Utc::now();
    let retry_at = now + backoff(state, delivery.attempts);
    let status = match &sent.error {
        None => DeliveryStatus::Succeeded,
        Some(_) if sent.permanent || retry_at > delivery.give_up_at => DeliveryStatus::Failed,
        Some(_) => DeliveryStatus::Pending,
    };
    Settled {
        status,
        next_attempt_at: if status == DeliveryStatus::Pending {
            retry_at
        } else {
            delivery.next_attempt_at
        },
        last_status_code: sent.status,
        last_error: sent.error,
        delivered_at: (status == DeliveryStatus::Succeeded).then_some(now),
    }
}

/// The wait after the `attempts`-th failed attempt: the base doubled each time, capped, with
/// ±10 % jitter so that many deliveries failing together do not retry together.
fn backoff(state: &AppState, attempts: i32) -> chrono::Duration {
    let settings = &state.settings.webhooks;
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
    let ms = settings
        .webhook_retry_base_ms
        .saturating_mul(1_u64 << doublings)
        .min(settings.webhook_retry_max_ms);
    let jitter = rand::rng().random_range(0.9..1.1);
    chrono::Duration::milliseconds((ms as f64 * jitter) as i64)
}

/// What one request came to.
struct Sent {
    at: DateTime<Utc>,
    status: Option<i32>,
    /// `None` when the endpoint answered 2xx.
    error: Option<String>,
    /// Retrying cannot help: the URL is refused by the SSRF guard.
    permanent: bool,
    excerpt: Option<String>,
    duration: Duration,
}

async fn send(
    state: &AppState,
    endpoint: &webhook_endpoint::Model,
    event: &webhook_event::Model,
    delivery_id: &str,
) -> Sent {
    let at = Utc::now();
    let started = Instant::now();
    let failed = |error: String, permanent: bool| Sent {
        at,
        status: None,
        error: Some(error),
        permanent,
        excerpt: None,
        duration: started.elapsed(),
    };
    let timeout = Duration::from_secs(state.settings.webhooks.webhook_timeout_seconds);
    let client = match egress::parse(&endpoint.url) {
        Ok(url) => state
            .outbound
            .get(&url, state.settings.ingestion.allow_private_urls, timeout)
            .await
            .map(|client| (client, url)),
        Err(e) => Err(e),
    };
    let (client, url) = match client {
        Ok(pair) => pair,
        Err(refused) => return failed(refused.message().to_owned(), refused.is_permanent()),
    };
    let response = signed(client, url, endpoint, event, delivery_id, at)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => return failed(egress::describe(&e), false),
    };
    let status = response.status();
    let excerpt = excerpt(response).await;
    let error = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!(
            "the endpoint answered {status}: redirects are not followed, use the final URL"
        ))
    } else {
        Some(format!("the endpoint answered {status}"))
    };
    Sent {
        at,
        status: Some(i32::from(status.as_u16())),
        error,
        permanent: false,
        excerpt,
        duration: started.elapsed(),
    }
}

/// The event's POST, signed with the endpoint's secret (and its previous one while that
/// is still valid).
fn signed(
    client: reqwest::Client,
    url: url::Url,
    endpoint: &webhook_endpoint::Model,
    event: &webhook_event::Model,
    delivery_id: &str,
    at: DateTime<Utc>,
) -> reqwest::RequestBuilder {
    let previous = endpoint.previous_secret.as_deref().filter(|_| {
        endpoint
            .previous_secret_expires_at
            .is_some_and(|until| until > at)
    });
    let secrets = || std::iter::once(endpoint.secret.as_str()).chain(previous);
    let body = event.payload.as_bytes();
    let mut trace = reqwest::header::HeaderMap::new();
    telemetry::propagation::inject(&mut trace);
    client
        .post(url)
        .headers(trace)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, "Companin-Webhooks/1.0")
        .header("companin-event-id", &event.id)
        .header("companin-event-type", &event.event_type)
        .header("companin-delivery-id", delivery_id)
        .header(
            signature::HEADER,
            signature::header_value(secrets(), at.timestamp(), body),
        )
        .header(signature::STANDARD_ID, &event.id)
        .header(signature::STANDARD_TIMESTAMP, at.timestamp())
        .header(
            signature::STANDARD_SIGNATURE,
            signature::standard_header_value(secrets(), &event.id, at.timestamp(), body),
        )
        .body(event.payload.clone())
}

/// The first [`EXCERPT_BYTES`] of the endpoint's answer, kept with the attempt.
async fn excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(piece)) => excerpt.extend_from_slice(&piece),
            _ => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned())
}
