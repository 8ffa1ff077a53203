//! Webhooks (admin scope): endpoints that receive an organization's events, signed, from a
//! durable outbox, retried with backoff for a day, with every delivery and attempt kept for
//! inspection and re-sending.

pub mod dispatch;
pub mod signature;

use chrono::Utc;
use entity::{
    webhook_attempt,
    webhook_delivery::{self, DeliveryStatus},
    webhook_endpoint, webhook_event,
};

pub use crate::runtime::outbox::{ALL_EVENTS, Event, EventType, Outbox, emit};
use crate::{
    auth::{Principal, Scope, Tenant},
    domain::{
        ids::{DeliveryId, WebhookId},
        pagination::{Page, PageRequest},
    },
    egress,
    error::{AppError, AppResult},
    repo::{
        self,
        webhooks::{EndpointPatch, NewEndpoint, PreviousSecret},
    },
    runtime::outbox,
    state::AppState,
};

/// Most endpoints per organization.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest endpoint URL.
const MAX_URL_CHARS: usize = 2048;
/// Longest a rotated-out secret keeps signing (7 days).
const MAX_PREVIOUS_SECRET_SECONDS: i64 = 7 * 24 * 3600;
/// Attempts listed with a delivery.
const ATTEMPTS_SHOWN: u64 = 50;

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Where to POST events (`https://…`).
    pub url: String,
    /// Event types (`knowledge.ready`), or `*` for all.
    pub events: Vec<String>,
    /// A label.
    pub description: Option<String>,
    /// Whether it receives events (default true).
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// New label (empty clears it).
    pub description: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret, which is shown only on creation and rotation.
#[derive(Debug, Clone)]
pub struct WebhookWithSecret {
    /// The endpoint.
    pub webhook: webhook_endpoint::Model,
    /// `whsec_…`
    pub secret: String,
}

/// A delivery with its event and latest attempts.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// The delivery.
    pub delivery: webhook_delivery::Model,
    /// The event it carries.
    pub event: webhook_event::Model,
    /// Its attempts, oldest first (the latest 50).
    pub attempts: Vec<webhook_attempt::Model>,
}

/// Creates an endpoint (admin scope).
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: NewWebhook,
) -> AppResult<WebhookWithSecret> {
    let tenant = principal.scope(Scope::Admin)?;
    if repo::webhooks::list(&state.db, &tenant).await?.len() >= MAX_ENDPOINTS {
        return Err(AppError::bad_input(
            "url",
            format!("an organization has at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let url = check_url(state, &input.url).await?;
    let events = check_events(&input.events)?;
    let description = check_description(input.description)?;
    let secret = signature::new_secret();
    let new = NewEndpoint {
        url,
        description,
        event_types: events,
        secret: secret.clone(),
        enabled: input.enabled.unwrap_or(true),
    };
    let webhook = repo::webhooks::insert(&state.db, &tenant, new).await?;
    Ok(WebhookWithSecret { webhook, secret })
}

/// The organization's endpoints, oldest first (admin scope).
pub async fn list(
    state: &AppState,
    principal: &Principal,
) -> AppResult<Vec<webhook_endpoint::Model>> {
    let tenant = principal.scope(Scope::Admin)?;
    Ok(repo::webhooks::list(&state.db, &tenant).await?)
}

/// One endpoint (admin scope).
pub async fn get(
    state: &AppState,
    principal: &Principal,
    id: &WebhookId,
) -> AppResult<webhook_endpoint::Model> {
    let tenant = principal.scope(Scope::Admin)?;
    existing(state, &tenant, id).await
}

/// Changes an endpoint (admin scope).
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: &WebhookId,
    patch: WebhookPatch,
) -> AppResult<webhook_endpoint::Model> {
    let tenant = principal.scope(Scope::Admin)?;
    existing(state, &tenant, id).await?;
    let url = match &patch.url {
        Some(url) => Some(check_url(state, url).await?),
        None => None,
    };
    let changes = EndpointPatch {
        url,
        event_types: patch.events.as_deref().map(check_events).transpose()?,
        description: patch
            .description
            .map(|d| check_description(Some(d)))
            .transpose()?,
        enabled: patch.enabled,
    };
    repo::webhooks::update(&state.db, &tenant, id, changes)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

/// Replaces an endpoint's signing secret (admin scope). The old secret keeps signing, as a
/// second `v1`, for `keep_previous_seconds` (default 0, at most 7 days).
pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    id: &WebhookId,
    keep_previous_seconds: Option<i64>,
) -> AppResult<WebhookWithSecret> {
    let tenant = principal.scope(Scope::Admin)?;
    let keep = keep_previous_seconds.unwrap_or(0);
    if !(0..=MAX_PREVIOUS_SECRET_SECONDS).contains(&keep) {
        return Err(AppError::bad_input(
            "keep_previous_seconds",
            format!("must be between 0 and {MAX_PREVIOUS_SECRET_SECONDS}"),
        ));
    }
    let endpoint = existing(state, &tenant, id).await?;
    let secret = signature::new_secret();
    let previous = (keep > 0).then(|| PreviousSecret {
        secret: endpoint.secret,
        expires_at: Utc::now() + chrono::Duration::seconds(keep),
    });
    let webhook = repo::webhooks::rotate_secret(&state.db, &tenant, id, secret.clone(), previous)
        .await?
        .ok_or(AppError::NotFound("webhook"))?;
    Ok(WebhookWithSecret { webhook, secret })
}

/// Deletes an endpoint and its deliveries (admin scope).
pub async fn delete(state: &AppState, principal: &Principal, id: &WebhookId) -> AppResult<()> {
    let tenant = principal.scope(Scope::Admin)?;
    if repo::webhooks::delete(&state.db, &tenant, id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound("webhook"))
    }
}

/// Sends a `webhook.test` event to the endpoint now and returns the delivery after that
/// first attempt (admin scope). A failed test is retried like any delivery.
pub async fn test(
    state: &AppState,
    principal: &Principal,
    id: &WebhookId,
) -> AppResult<DeliveryRecord> {
    let tenant = principal.scope(Scope::Admin)?;
    let endpoint = existing(state, &tenant, id).await?;
    // Queued already claimed by this request, so no dispatcher sends it at the same time.
    let txn = crate::db::begin_write(&state.db).await?;
    let event = outbox::write(&txn, &tenant, Event::test(&endpoint.id)).await?;
    let queued = outbox::queue(&txn, state.outbox(), &tenant, &event, &endpoint).await?;
    let now = Utc::now();
    let lease_until = dispatch::lease_end(state, now);
    let claimed = repo::webhooks::claim_one(&txn, &tenant, &queued.id, now, lease_until)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a new delivery was not due")))?;
    txn.commit().await?;
    dispatch::deliver(state, claimed).await?;
    delivery_record(state, &tenant, &DeliveryId::from_db(queued.id)).await
}

/// A page of an endpoint's deliveries, oldest first, optionally of one status (admin scope).
pub async fn deliveries(
    state: &AppState,
    principal: &Principal,
    webhook_id: &WebhookId,
    status: Option<DeliveryStatus>,
    page: &PageRequest,
) -> AppResult<Page<DeliveryRecord>> {
    let tenant = principal.scope(Scope::Admin)?;
    existing(state, &tenant, webhook_id).await?;
    let page = repo::webhooks::deliveries(&state.db, &tenant, webhook_id, status, page).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for delivery in page.items {
        items.push(with_details(state, &tenant, delivery).await?);
    }
    Ok(Page {
        items,
        has_next: page.has_next,
        has_previous: page.has_previous,
    })
}

/// One delivery with its event and attempts (admin scope).
pub async fn delivery(
    state: &AppState,
    principal: &Principal,
    id: &DeliveryId,
) -> AppResult<DeliveryRecord> {
    let tenant = principal.scope(Scope::Admin)?;
    delivery_record(state, &tenant, id).await
}

/// Sends a delivery again, now, with the same event id and body, retried (from the first
/// backoff step) for another retry window if it fails (admin scope). A delivery being sent
/// right now cannot be re-sent (`CONFLICT`).
pub async fn resend(
    state: &AppState,
    principal: &Principal,
    id: &DeliveryId,
) -> AppResult<DeliveryRecord> {
    let tenant = principal.scope(Scope::Admin)?;
    repo::webhooks::find_delivery(&state.db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("webhook delivery"))?;
    let now = Utc::now();
    let queued = repo::webhooks::requeue(
        &state.db,
        &tenant,
        id,
        now,
        now + state.outbox().retry_window,
    )
    .await?;
    if !queued {
        return Err(AppError::Conflict(
            "the delivery is being sent right now".into(),
        ));
    }
    state.webhook_signal.notify();
    delivery_record(state, &tenant, id).await
}

async fn delivery_record(
    state: &AppState,
    tenant: &Tenant,
    id: &DeliveryId,
) -> AppResult<DeliveryRecord> {
    let delivery = repo::webhooks::find_delivery(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("webhook delivery"))?;
    with_details(state, tenant, delivery).await
}

async fn with_details(
    state: &AppState,
    tenant: &Tenant,
    delivery: webhook_delivery::Model,
) -> AppResult<DeliveryRecord> {
    let event = repo::webhooks::find_event(&state.db, tenant, &delivery.event_id)
        .await?
        .ok_or(AppError::NotFound("webhook event"))?;
    let attempts =
        repo::webhooks::attempts(&state.db, tenant, &delivery.id, ATTEMPTS_SHOWN).await?;
    Ok(DeliveryRecord {
        delivery,
        event,
        attempts,
    })
}

async fn existing(
    state: &AppState,
    tenant: &Tenant,
    id: &WebhookId,
) -> AppResult<webhook_endpoint::Model> {
    repo::webhooks::find(&state.db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("webhook"))
}

/// An http(s) URL whose host resolves to addresses deliveries may reach.
async fn check_url(state: &AppState, raw: &str) -> AppResult<String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(AppError::bad_input(
            "url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
    }
    let url = egress::parse(raw).map_err(|e| AppError::bad_input("url", e.message()))?;
    egress::resolve(&url, state.settings.ingestion.allow_private_urls)
        .await
        .map_err(|e| AppError::bad_input("url", e.message()))?;
    Ok(url.to_string())
}

/// Known, de-duplicated event types; `*` alone subscribes to all.
fn check_events(raw: &[String]) -> AppResult<Vec<String>> {
    let mut events: Vec<String> = Vec::new();
    for name in raw {
        let name = name.trim();
        if name != ALL_EVENTS && EventType::parse(name).is_none() {
            let known: Vec<_> = EventType::SUBSCRIBABLE.iter().map(|t| t.as_str()).collect();
            return Err(AppError::bad_input(
                "events",
                format!(
                    "unknown event type `{name}`: use {} or `*`",
                    known.join(", ")
                ),
            ));
        }
        if !events.iter().any(|e| e == name) {
            events.push(name.to_owned());
        }
    }
    if events.is_empty() {
        return Err(AppError::bad_input(
            "events",
            "name at least one event type (or `*` for all)",
        ));
    }
    if events.iter().any(|e| e == ALL_EVENTS) {
        return Ok(vec![ALL_EVENTS.to_owned()]);
    }
    Ok(events)
}

fn check_description(raw: Option<String>) -> AppResult<Option<String>> {
    let description = raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 255)
    {
        return Err(AppError::bad_input(
            "description",
            "must be at most 255 characters",
        ));
    }
    Ok(description)
}
