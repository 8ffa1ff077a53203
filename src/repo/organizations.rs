//! Organizations.

use chrono::Utc;
use entity::organization;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

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
