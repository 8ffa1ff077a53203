//! Webhook endpoints of an organization.

use chrono::{DateTime, Utc};
use entity::webhook_endpoint;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use crate::domain::access::Tenant;
use crate::domain::ids::WebhookId;

/// An endpoint to insert.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where events are POSTed.
    pub url: String,
    /// A label.
    pub description: Option<String>,
    /// The event types it receives (`*` for all).
    pub event_types: Vec<String>,
    /// The signing secret.
    pub secret: String,
    /// Whether it receives events.
    pub enabled: bool,
}

/// Inserts an endpoint of the organization.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewEndpoint,
) -> Result<webhook_endpoint::Model, DbErr> {
    let org = tenant.org();
    let now = Utc::now();
    webhook_endpoint::ActiveModel {
        id: Set(WebhookId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        url: Set(new.url),
        description: Set(new.description),
        event_types: Set(serde_json::Value::from(new.event_types)),
        secret: Set(new.secret),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        enabled: Set(new.enabled),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub event_types: Option<Vec<String>>,
    /// New label (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Applies `patch` to the endpoint `id` of the organization; the endpoint as changed, or `None` when
/// the organization has no such endpoint.
pub async fn update(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &WebhookId,
    patch: EndpointPatch,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let mut changes: webhook_endpoint::ActiveModel = Default::default();
    if let Some(url) = patch.url {
        changes.url = Set(url);
    }
    if let Some(event_types) = patch.event_types {
        changes.event_types = Set(serde_json::Value::from(event_types));
    }
    if let Some(description) = patch.description {
        changes.description = Set(description);
    }
    if let Some(enabled) = patch.enabled {
        changes.enabled = Set(enabled);
    }
    apply_and_read(db, tenant, id, changes).await
}

/// A signing secret being rotated out, which keeps signing until `expires_at`.
#[derive(Debug, Clone)]
pub struct PreviousSecret {
    /// The secret.
    pub secret: String,
    /// When it stops signing.
    pub expires_at: DateTime<Utc>,
}

/// Replaces the signing secret of the endpoint `id` of the organization with `secret`, keeping
/// `previous` as the second secret (none when absent); the endpoint as changed, or `None`
/// when the organization has no such endpoint.
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &WebhookId,
    secret: String,
    previous: Option<PreviousSecret>,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let (previous_secret, expires_at) = match previous {
        Some(previous) => (Some(previous.secret), Some(previous.expires_at)),
        None => (None, None),
    };
    let changes = webhook_endpoint::ActiveModel {
        secret: Set(secret),
        previous_secret: Set(previous_secret),
        previous_secret_expires_at: Set(expires_at),
        ..Default::default()
    };
    apply_and_read(db, tenant, id, changes).await
}

/// Every endpoint of the organization, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    let org = tenant.org();
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

/// The enabled endpoints of the organization.
pub async fn enabled(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    let org = tenant.org();
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await
}

/// The endpoint `id` of the organization.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &WebhookId,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let org = tenant.org();
    webhook_endpoint::Entity::find_by_id(id.as_str())
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// Deletes the endpoint `id` of the organization with its deliveries; whether it existed.
pub async fn delete(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &WebhookId,
) -> Result<bool, DbErr> {
    let org = tenant.org();
    let deleted = webhook_endpoint::Entity::delete_many()
        .filter(webhook_endpoint::Column::Id.eq(id.as_str()))
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Writes the fields set in `changes`, and `updated_at` now, to the endpoint `id` of the organization,
/// then reads it back; `None` when the organization has no such endpoint.
async fn apply_and_read(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &WebhookId,
    mut changes: webhook_endpoint::ActiveModel,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    let org = tenant.org();
    changes.updated_at = Set(Utc::now());
    let updated = webhook_endpoint::Entity::update_many()
        .set(changes)
        .filter(webhook_endpoint::Column::Id.eq(id.as_str()))
        .filter(webhook_endpoint::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    find(db, tenant, id).await
}
