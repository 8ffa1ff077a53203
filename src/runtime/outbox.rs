//! The events an organization can subscribe to, and the outbox they are written to.
//!
//! [`emit`] runs inside the transaction of the change that raised the event: the event and
//! one delivery per subscribed endpoint commit with the change or not at all, so no event is
//! lost to a crash after the change and none is sent for a change that rolled back.

use chrono::{DateTime, Utc};
use entity::{
    conversation, feedback, knowledge_source, webhook_delivery, webhook_endpoint, webhook_event,
};
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseConnection, DbErr};
use serde_json::{Value, json};

use crate::{
    domain::{access::Tenant, ids::EventId},
    limiter::Decision,
    repo,
};

/// A kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The organization used a configured share (default 80 %) of its window's budget.
    RateLimitApproaching,
    /// The first request refused in a window.
    RateLimitExceeded,
    /// A knowledge source was indexed (new or changed content) and is searchable.
    KnowledgeReady,
    /// A knowledge source could not be indexed.
    KnowledgeFailed,
    /// A URL refresh found new content (sent once it is indexed).
    UrlChanged,
    /// Feedback rated 1 or 2.
    FeedbackNegative,
    /// A version of an assistant went live.
    AssistantVersionPromoted,
    /// A conversation was handed to a person.
    HandoffRequested,
    /// A conversation handed to a person went back to the assistant.
    HandoffReleased,
    /// Sent by `testWebhook` to one endpoint; not subscribable.
    WebhookTest,
}

impl EventType {
    /// Every type an endpoint can subscribe to.
    pub const SUBSCRIBABLE: [EventType; 9] = [
        EventType::RateLimitApproaching,
        EventType::RateLimitExceeded,
        EventType::KnowledgeReady,
        EventType::KnowledgeFailed,
        EventType::UrlChanged,
        EventType::FeedbackNegative,
        EventType::AssistantVersionPromoted,
        EventType::HandoffRequested,
        EventType::HandoffReleased,
    ];

    /// The wire name (`knowledge.ready`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimitApproaching => "rate_limit.approaching",
            Self::RateLimitExceeded => "rate_limit.exceeded",
            Self::KnowledgeReady => "knowledge.ready",
            Self::KnowledgeFailed => "knowledge.failed",
            Self::UrlChanged => "url.changed",
            Self::FeedbackNegative => "feedback.negative",
            Self::AssistantVersionPromoted => "assistant.version_promoted",
            Self::HandoffRequested => "conversation.handoff_requested",
            Self::HandoffReleased => "conversation.handoff_released",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// The subscribable type named `raw`.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .find(|t| t.as_str() == raw.trim())
    }
}

/// Subscribes an endpoint to every type, present and future.
pub const ALL_EVENTS: &str = "*";

/// An event to write: its type and its `data`.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The type's fields.
    pub data: Value,
}

impl Event {
    /// `knowledge.ready` for a source just indexed.
    pub fn knowledge_ready(source: &knowledge_source::Model) -> Self {
        Self {
            kind: EventType::KnowledgeReady,
            data: json!({ "source": source_fields(source) }),
        }
    }

    /// `knowledge.failed` for a source that could not be indexed.
    pub fn knowledge_failed(source: &knowledge_source::Model) -> Self {
        Self {
            kind: EventType::KnowledgeFailed,
            data: json!({ "source": source_fields(source) }),
        }
    }

    /// `url.changed`: a refresh of `source` found new content, now indexed (the event is
    /// written with the re-indexed source).
    pub fn url_changed(
        source: &knowledge_source::Model,
        previous_hash: Option<&str>,
        status: i32,
    ) -> Self {
        Self {
            kind: EventType::UrlChanged,
            data: json!({
                "source": source_fields(source),
                "url": source.url,
                "previous_content_hash": previous_hash,
                "content_hash": source.content_hash,
                "http_status": status,
            }),
        }
    }

    /// `feedback.negative` for feedback rated 1 or 2.
    pub fn feedback_negative(feedback: &feedback::Model, assistant_id: &str) -> Self {
        Self {
            kind: EventType::FeedbackNegative,
            data: json!({
                "feedback": {
                    "id": feedback.id,
                    "conversation_id": feedback.conversation_id,
                    "message_id": feedback.message_id,
                    "rating": feedback.rating,
                    "comment": feedback.comment,
                    "actor_type": feedback.actor_type,
                    "actor_id": feedback.actor_id,
                    "created_at": feedback.created_at,
                },
                "assistant_id": assistant_id,
            }),
        }
    }

    /// `assistant.version_promoted`: `version` of `assistant` went live.
    pub fn version_promoted(
        assistant_id: &str,
        version_id: &str,
        version: i32,
        previous_version_id: Option<&str>,
    ) -> Self {
        Self {
            kind: EventType::AssistantVersionPromoted,
            data: json!({
                "assistant_id": assistant_id,
                "version_id": version_id,
                "version": version,
                "previous_version_id": previous_version_id,
            }),
        }
    }

    /// `conversation.handoff_requested`: `conversation` went to a person. `context` holds the
    /// visitor's traits, a summary of what the visitor said and the latest messages.
    pub fn handoff_requested(conversation: &conversation::Model, context: Value) -> Self {
        let mut data = json!({
            "conversation": conversation_fields(conversation),
            "trigger": conversation.handoff_trigger,
            "reason": conversation.handoff_reason,
            "note": conversation.handoff_note,
        });
        if let (Some(data), Value::Object(context)) = (data.as_object_mut(), context) {
            data.extend(context);
        }
        Self {
            kind: EventType::HandoffRequested,
            data,
        }
    }

    /// `conversation.handoff_released`: `conversation` went back to the assistant.
    pub fn handoff_released(conversation: &conversation::Model) -> Self {
        Self {
            kind: EventType::HandoffReleased,
            data: json!({ "conversation": conversation_fields(conversation) }),
        }
    }

    /// `rate_limit.approaching`: the hit that reached `share` of the window's budget.
    pub fn rate_limit_approaching(decision: &Decision, share: f64) -> Self {
        Self {
            kind: EventType::RateLimitApproaching,
            data: json!({
                "limit": decision.policy.limit,
                "window_seconds": decision.policy.window_seconds,
                "used": decision.count,
                "remaining": decision.remaining,
                "threshold": share,
                "resets_at": reset_time(decision.reset_at),
            }),
        }
    }

    /// `rate_limit.exceeded`: the first refusal of a window.
    pub fn rate_limit_exceeded(decision: &Decision) -> Self {
        Self {
            kind: EventType::RateLimitExceeded,
            data: json!({
                "limit": decision.policy.limit,
                "window_seconds": decision.policy.window_seconds,
                "resets_at": reset_time(decision.reset_at),
                "retry_after_seconds": decision.reset_after,
            }),
        }
    }

    /// `webhook.test`, sent by `testWebhook`.
    pub fn test(webhook_id: &str) -> Self {
        Self {
            kind: EventType::WebhookTest,
            data: json!({
                "webhook_id": webhook_id,
                "message": "This is a test event from Companin.",
            }),
        }
    }
}

fn conversation_fields(c: &conversation::Model) -> Value {
    json!({
        "id": c.id,
        "session_id": c.session_id,
        "assistant_id": c.assistant_id,
        "external_user_id": c.external_user_id,
        "status": c.status,
        "handed_off_at": c.handed_off_at,
        "created_at": c.created_at,
    })
}

fn reset_time(unix: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(unix).ok()?, 0)
}

fn source_fields(source: &knowledge_source::Model) -> Value {
    json!({
        "id": source.id,
        "kind": source.kind.to_value(),
        "title": source.title,
        "status": source.status.to_value(),
        "url": source.url,
        "file_name": source.file_name,
        "chunk_count": source.chunk_count,
        "content_hash": source.content_hash,
        "embedding_model": source.embedding_model,
        "error": source.error,
        "error_code": source.error_code,
    })
}

/// Whether `endpoint` wants events of `kind`.
pub fn subscribed(endpoint: &webhook_endpoint::Model, kind: EventType) -> bool {
    serde_json::from_value::<Vec<String>>(endpoint.event_types.clone())
        .unwrap_or_default()
        .iter()
        .any(|t| t == ALL_EVENTS || t == kind.as_str())
}

/// How the outbox schedules deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    /// Retries stop this long after the event.
    pub retry_window: chrono::Duration,
}

impl Outbox {
    /// The schedule from configuration (`webhook_retry_window_seconds`).
    pub fn from_settings(settings: &crate::config::WebhookSettings) -> Self {
        Self {
            retry_window: chrono::Duration::seconds(i64::from(
                settings.webhook_retry_window_seconds,
            )),
        }
    }
}

/// Writes `event` of the organization to the outbox, with a delivery for every enabled endpoint that
/// subscribes to it, on `db` (the change's transaction). Returns the event's id, or `None`
/// when no endpoint wants it (nothing is written).
///
/// Call it after the change's own writes: on SQLite the transaction then already holds the
/// write lock when it reads the endpoints.
pub async fn emit(
    db: &impl ConnectionTrait,
    outbox: Outbox,
    tenant: &Tenant,
    event: Event,
) -> Result<Option<EventId>, DbErr> {
    let endpoints = subscribers(db, tenant, event.kind).await?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    record(db, outbox, tenant, event, &endpoints)
        .await
        .map(Some)
}

/// [`emit`] outside any change's transaction (rate-limit events): the endpoints are read
/// first, then the event and its deliveries are written in one transaction of their own.
pub async fn emit_now(
    db: &DatabaseConnection,
    outbox: Outbox,
    tenant: &Tenant,
    event: Event,
) -> Result<Option<EventId>, DbErr> {
    let endpoints = subscribers(db, tenant, event.kind).await?;
    if endpoints.is_empty() {
        return Ok(None);
    }
    let txn = crate::db::begin_write(db).await?;
    let id = record(&txn, outbox, tenant, event, &endpoints).await?;
    txn.commit().await?;
    Ok(Some(id))
}

/// The enabled endpoints of the organization that want `kind`.
async fn subscribers(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    kind: EventType,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    Ok(repo::webhooks::enabled(db, tenant)
        .await?
        .into_iter()
        .filter(|e| subscribed(e, kind))
        .collect())
}

/// Writes `event` and its deliveries to `endpoints`.
async fn record(
    db: &impl ConnectionTrait,
    outbox: Outbox,
    tenant: &Tenant,
    event: Event,
    endpoints: &[webhook_endpoint::Model],
) -> Result<EventId, DbErr> {
    let written = write(db, tenant, event).await?;
    for endpoint in endpoints {
        queue(db, outbox, tenant, &written, endpoint).await?;
    }
    Ok(EventId::from_db(written.id))
}

/// Writes the event row; its payload is `{ id, type, created_at, organization_id, data }`.
pub(crate) async fn write(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    event: Event,
) -> Result<webhook_event::Model, DbErr> {
    let new = repo::webhooks::NewEvent {
        event_type: event.kind.as_str().to_owned(),
        data: event.data,
    };
    repo::webhooks::insert_event(db, tenant, new).await
}

/// Queues the delivery of `event` to `endpoint`, due now.
pub(crate) async fn queue(
    db: &impl ConnectionTrait,
    outbox: Outbox,
    tenant: &Tenant,
    event: &webhook_event::Model,
    endpoint: &webhook_endpoint::Model,
) -> Result<webhook_delivery::Model, DbErr> {
    let new = repo::webhooks::NewDelivery {
        event_id: event.id.clone(),
        endpoint_id: endpoint.id.clone(),
        retry_window: outbox.retry_window,
    };
    repo::webhooks::insert_delivery(db, tenant, new).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscribable_type_parses_back_from_its_wire_name() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("webhook.test"), None);
        assert_eq!(EventType::parse("knowledge.deleted"), None);
    }
}
