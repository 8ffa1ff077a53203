//! Organizations.

use chrono::Utc;
use entity::organization;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set};

use crate::domain::ids::OrgId;

/// Inserts a new organization.
pub async fn insert(
    db: &impl ConnectionTrait,
    name: &str,
    sandbox: bool,
) -> Result<organization::Model, sea_orm::DbErr> {
    organization::ActiveModel {
        id: Set(OrgId::generate().into_string()),
        name: Set(name.to_owned()),
        sandbox: Set(sandbox),
        rate_limit: Set(None),
        rate_limit_window_seconds: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The organization `org`.
pub async fn find(
    db: &impl ConnectionTrait,
    org: &OrgId,
) -> Result<Option<organization::Model>, sea_orm::DbErr> {
    organization::Entity::find_by_id(org.as_str()).one(db).await
}

/// Sets (or, with `None`, clears) the organization's rate-limit override.
pub async fn set_rate_limit(
    db: &impl ConnectionTrait,
    org: &OrgId,
    limit: Option<(i32, i32)>,
) -> Result<Option<organization::Model>, sea_orm::DbErr> {
    let Some(found) = find(db, org).await? else {
        return Ok(None);
    };
    let mut active = found.into_active_model();
    active.rate_limit = Set(limit.map(|(requests, _)| requests));
    active.rate_limit_window_seconds = Set(limit.map(|(_, window)| window));
    active.update(db).await.map(Some)
}

/// Every organization, oldest first.
///
/// Unscoped by necessity: the operator's `org list` names them all.
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<organization::Model>, sea_orm::DbErr> {
    use sea_orm::QueryOrder;
    organization::Entity::find()
        .order_by_asc(organization::Column::Id)
        .all(db)
        .await
}

/// The oldest sandbox organization named `name`.
///
/// Unscoped by necessity: the operator's `serve --demo` looks for the sandbox it seeded.
pub async fn find_sandbox(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<organization::Model>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    organization::Entity::find()
        .filter(organization::Column::Sandbox.eq(true))
        .filter(organization::Column::Name.eq(name))
        .order_by_asc(organization::Column::Id)
        .one(db)
        .await
}
