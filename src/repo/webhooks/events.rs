//! The event outbox: one row per event, with the body its subscribers receive.

use chrono::{DateTime, Utc};
use entity::{
    webhook_delivery::{self, DeliveryStatus},
    webhook_event,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::Query,
};
use serde_json::json;

use crate::domain::access::Tenant;
use crate::domain::ids::EventId;

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Its type's wire name (`knowledge.ready`).
    pub event_type: String,
    /// The type's fields.
    pub data: serde_json::Value,
}

/// Writes an event of the organization, created now. Its payload is the body subscribers receive:
/// `{ id, type, created_at, organization_id, data }`.
pub async fn insert_event(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewEvent,
) -> Result<webhook_event::Model, DbErr> {
    let org = tenant.org();
    let id = EventId::generate().into_string();
    let created_at = Utc::now();
    let payload = json!({
        "id": id,
        "type": new.event_type,
        "created_at": created_at,
        "organization_id": org.as_str(),
        "data": new.data,
    });
    webhook_event::ActiveModel {
        id: Set(id),
        org_id: Set(org.as_str().to_owned()),
        event_type: Set(new.event_type),
        payload: Set(payload.to_string()),
        created_at: Set(created_at),
    }
    .insert(db)
    .await
}

/// The event `id` of the organization.
pub async fn find_event(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &str,
) -> Result<Option<webhook_event::Model>, DbErr> {
    let org = tenant.org();
    webhook_event::Entity::find_by_id(id)
        .filter(webhook_event::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// Deletes the events (with their deliveries and attempts) written before `cutoff`, except
/// those with a delivery still pending (a re-send of an old event).
///
/// Unscoped by necessity: retention applies to every organization alike.
pub async fn prune(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let pending = Query::select()
        .column(webhook_delivery::Column::EventId)
        .from(webhook_delivery::Entity)
        .and_where(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending))
        .to_owned();
    let deleted = webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::CreatedAt.lt(cutoff))
        .filter(webhook_event::Column::Id.not_in_subquery(pending))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
