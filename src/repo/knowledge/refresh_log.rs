//! The refresh log of URL sources: one row per fetch.

use chrono::Utc;
use entity::url_refresh;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::domain::access::Tenant;
use crate::domain::ids::{RefreshId, SourceId};

/// Records one fetch of a URL source, now.
pub async fn record_refresh(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    source: &SourceId,
    outcome: &str,
    http_status: Option<i32>,
    error: Option<String>,
) -> Result<url_refresh::Model, DbErr> {
    let org = tenant.org();
    url_refresh::ActiveModel {
        id: Set(RefreshId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        source_id: Set(source.as_str().to_owned()),
        fetched_at: Set(Utc::now()),
        outcome: Set(outcome.to_owned()),
        http_status: Set(http_status),
        error: Set(error),
    }
    .insert(db)
    .await
}

/// The refresh log of a source, newest first.
pub async fn refreshes(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    source: &SourceId,
    limit: u64,
) -> Result<Vec<url_refresh::Model>, DbErr> {
    let org = tenant.org();
    url_refresh::Entity::find()
        .filter(url_refresh::Column::OrgId.eq(org.as_str()))
        .filter(url_refresh::Column::SourceId.eq(source.as_str()))
        .order_by_desc(url_refresh::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
