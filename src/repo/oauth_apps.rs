//! OAuth apps of an organization.

use chrono::{DateTime, Utc};
use entity::oauth_app;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Set,
};

use crate::domain::ids::{AppId, OrgId};

/// Inserts an app.
pub async fn insert(
    db: &impl ConnectionTrait,
    app: oauth_app::ActiveModel,
) -> Result<oauth_app::Model, DbErr> {
    app.insert(db).await
}

/// Every app of `org`, oldest first.
pub async fn list(db: &impl ConnectionTrait, org: &OrgId) -> Result<Vec<oauth_app::Model>, DbErr> {
    oauth_app::Entity::find()
        .filter(oauth_app::Column::OrgId.eq(org.as_str()))
        .order_by_asc(oauth_app::Column::Id)
        .all(db)
        .await
}

/// The app `id` of `org`.
pub async fn find(
    db: &impl ConnectionTrait,
    org: &OrgId,
    id: &AppId,
) -> Result<Option<oauth_app::Model>, DbErr> {
    oauth_app::Entity::find_by_id(id.as_str())
        .filter(oauth_app::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// The app with `client_id`, whatever its organization.
///
/// Unscoped by necessity: client credentials are how a token request's organization is found.
pub async fn find_by_client_id(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<Option<oauth_app::Model>, DbErr> {
    oauth_app::Entity::find()
        .filter(oauth_app::Column::ClientId.eq(client_id))
        .one(db)
        .await
}

/// Marks the app revoked at `at`.
pub async fn revoke(
    db: &impl ConnectionTrait,
    app: oauth_app::Model,
    at: DateTime<Utc>,
) -> Result<oauth_app::Model, DbErr> {
    let mut active = app.into_active_model();
    active.revoked_at = Set(Some(at));
    active.update(db).await
}

/// The allowed origins of every active app, whatever its organization.
///
/// Unscoped by necessity: a CORS preflight carries no credentials, so it is answered for
/// any origin some app allows; each request is then checked against its own app's origins.
pub async fn all_active_origins(
    db: &impl ConnectionTrait,
) -> Result<Vec<serde_json::Value>, DbErr> {
    use sea_orm::QuerySelect;
    oauth_app::Entity::find()
        .filter(oauth_app::Column::RevokedAt.is_null())
        .select_only()
        .column(oauth_app::Column::AllowedOrigins)
        .into_tuple()
        .all(db)
        .await
}
