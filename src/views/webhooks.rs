//! Webhook endpoints, their deliveries and attempts.

use async_graphql::{Enum, ID, InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_delivery::DeliveryStatus, webhook_endpoint};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::services::webhooks::{DeliveryRecord, NewWebhook, WebhookPatch, WebhookWithSecret};

/// An endpoint that receives the organization's events.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(complex)]
pub struct Webhook {
    /// `wh_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// Where events are POSTed.
    pub url: String,
    /// A label.
    pub description: Option<String>,
    /// The event types it receives (`knowledge.ready`…), or `["*"]` for all.
    pub events: Vec<String>,
    /// Whether it receives events.
    pub enabled: bool,
    /// Until when the secret before the last rotation still signs (as a second `v1`).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for Webhook {
    fn from(m: webhook_endpoint::Model) -> Self {
        let now = Utc::now();
        Self {
            id: ID(m.id),
            url: m.url,
            description: m.description,
            events: serde_json::from_value(m.event_types).unwrap_or_default(),
            enabled: m.enabled,
            previous_secret_expires_at: m.previous_secret_expires_at.filter(|at| *at > now),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// An endpoint with its signing secret: store it now, it is not shown again.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(name = "WebhookWithSecret")]
pub struct WebhookWithSecretPayload {
    /// The endpoint.
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`): the key of the `Companin-Signature` HMAC.
    pub secret: String,
}

impl From<WebhookWithSecret> for WebhookWithSecretPayload {
    fn from(w: WebhookWithSecret) -> Self {
        Self {
            webhook: w.webhook.into(),
            secret: w.secret,
        }
    }
}

/// An endpoint to create.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookInput {
    /// Where to POST events (`https://…`).
    pub url: String,
    /// Event types to receive (`rate_limit.approaching`, `rate_limit.exceeded`,
    /// `knowledge.ready`, `knowledge.failed`, `url.changed`, `feedback.negative`,
    /// `assistant.version_promoted`), or `["*"]` for all.
    pub events: Vec<String>,
    /// A label.
    pub description: Option<String>,
    /// Whether it receives events (default true).
    pub enabled: Option<bool>,
}

impl From<CreateWebhookInput> for NewWebhook {
    fn from(i: CreateWebhookInput) -> Self {
        Self {
            url: i.url,
            events: i.events,
            description: i.description,
            enabled: i.enabled,
        }
    }
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookInput {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// New label (empty clears it).
    pub description: Option<String>,
    /// Enable or disable (a disabled endpoint's pending deliveries fail).
    pub enabled: Option<bool>,
}

impl From<UpdateWebhookInput> for WebhookPatch {
    fn from(i: UpdateWebhookInput) -> Self {
        Self {
            url: i.url,
            events: i.events,
            description: i.description,
            enabled: i.enabled,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[graphql(name = "WebhookDeliveryStatus")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Retries ran out, or the endpoint was disabled; it can be re-sent.
    Failed,
}

impl From<DeliveryStatus> for WebhookDeliveryStatus {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::Failed => Self::Failed,
        }
    }
}

impl From<WebhookDeliveryStatus> for DeliveryStatus {
    fn from(s: WebhookDeliveryStatus) -> Self {
        match s {
            WebhookDeliveryStatus::Pending => Self::Pending,
            WebhookDeliveryStatus::Succeeded => Self::Succeeded,
            WebhookDeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// An event, as its endpoints receive it.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// `evt_…`: the same on every attempt and re-send, for de-duplication.
    #[schema(value_type = String)]
    pub id: ID,
    /// `knowledge.ready`…
    #[graphql(name = "type")]
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// The exact JSON body POSTed: `{ id, type, created_at, organization_id, data }`.
    #[schema(value_type = Object)]
    pub payload: Json<Value>,
}

/// One HTTP request of a delivery.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct WebhookAttempt {
    /// `wha_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// When it was sent.
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's HTTP status, when it answered.
    pub status_code: Option<i32>,
    /// Why it failed; null when it succeeded.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i32,
    /// The start of the endpoint's answer.
    pub response_excerpt: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(m: webhook_attempt::Model) -> Self {
        Self {
            id: ID(m.id),
            attempted_at: m.attempted_at,
            status_code: m.status_code,
            error: m.error,
            duration_ms: m.duration_ms,
            response_excerpt: m.response_excerpt,
        }
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// `whd_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// The endpoint (`wh_…`).
    #[schema(value_type = String)]
    pub webhook_id: ID,
    /// The event carried.
    pub event: WebhookEvent,
    /// Where it stands.
    pub status: WebhookDeliveryStatus,
    /// Requests made so far.
    pub attempt_count: i32,
    /// The latest attempts, oldest first (up to 50).
    pub attempts: Vec<WebhookAttempt>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// No retry is scheduled after this.
    pub give_up_at: DateTime<Utc>,
    /// The HTTP status of the last attempt.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRecord> for WebhookDelivery {
    fn from(r: DeliveryRecord) -> Self {
        let d = r.delivery;
        let payload = serde_json::from_str(&r.event.payload).unwrap_or(Value::Null);
        Self {
            id: ID(d.id),
            webhook_id: ID(d.endpoint_id),
            event: WebhookEvent {
                id: ID(r.event.id),
                event_type: r.event.event_type,
                created_at: r.event.created_at,
                payload: Json(payload),
            },
            status: d.status.into(),
            attempt_count: d.attempts,
            attempts: r.attempts.into_iter().map(Into::into).collect(),
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            give_up_at: d.give_up_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}
