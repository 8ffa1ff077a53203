//! The request log: written in batches, read by analytics (always for one organization).

use entity::request_log;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use crate::domain::request_log::Entry;

/// Inserts a batch of entries.
pub async fn insert_many(
    db: &impl ConnectionTrait,
    entries: &[Entry],
) -> Result<(), sea_orm::DbErr> {
    let rows = entries.iter().map(|e| request_log::ActiveModel {
        id: Set(time_ordered_id(e)),
        org_id: Set(e.org_id.clone()),
        key_id: Set(e.key_id.clone()),
        app_id: Set(e.app_id.clone()),
        transport: Set(e.transport.as_str().to_owned()),
        method: Set(e.method.clone()),
        endpoint: Set(e.endpoint.clone()),
        operation_type: Set(e.operation_type.map(str::to_owned)),
        status: Set(i32::from(e.status)),
        latency_ms: Set(e.latency_ms),
        rate_limited: Set(e.rate_limited),
        request_id: Set(e.request_id.clone()),
        hour: Set(e.at.timestamp().div_euclid(3600)),
        created_at: Set(e.at),
    });
    request_log::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// A UUIDv7 from the request's arrival time, so ids sort by when requests came in: the
/// sub-millisecond part of the time fills the first 12 random bits (about 0.25 µs steps), so
/// requests of the same millisecond sort in arrival order too.
fn time_ordered_id(entry: &Entry) -> String {
    let seconds = u64::try_from(entry.at.timestamp()).unwrap_or_default();
    let precise = uuid::ContextV7::new().with_additional_precision();
    let timestamp =
        uuid::Timestamp::from_unix(&precise, seconds, entry.at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(timestamp).simple().to_string()
}
