//! OAuth apps of an organization.

use chrono::{DateTime, Utc};
use entity::oauth_app;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, sea_query::Expr,
};

use crate::domain::access::Tenant;
use crate::domain::ids::AppId;

/// An app to insert.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// A label.
    pub name: String,
    /// The public client id.
    pub client_id: String,
    /// The hash of the client secret.
    pub client_secret_hash: String,
    /// Origins the widget may run on, normalized.
    pub allowed_origins: Vec<String>,
    /// The assistant tokens are bound to when a request names none.
    pub default_assistant_id: Option<String>,
}

/// Inserts an app of the organization, created now.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewApp,
) -> Result<oauth_app::Model, DbErr> {
    let org = tenant.org();
    oauth_app::ActiveModel {
        id: Set(AppId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        name: Set(new.name),
        client_id: Set(new.client_id),
        client_secret_hash: Set(new.client_secret_hash),
        allowed_origins: Set(serde_json::Value::from(new.allowed_origins)),
        default_assistant_id: Set(new.default_assistant_id),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// Every app of the organization, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
) -> Result<Vec<oauth_app::Model>, DbErr> {
    let org = tenant.org();
    oauth_app::Entity::find()
        .filter(oauth_app::Column::OrgId.eq(org.as_str()))
        .order_by_asc(oauth_app::Column::Id)
        .all(db)
        .await
}

/// The app `id` of the organization.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AppId,
) -> Result<Option<oauth_app::Model>, DbErr> {
    let org = tenant.org();
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

/// Marks the app `id` of the organization revoked at `at`; the app as revoked, or `None` when the organization has
/// no such app.
pub async fn revoke(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &AppId,
    at: DateTime<Utc>,
) -> Result<Option<oauth_app::Model>, DbErr> {
    let org = tenant.org();
    let result = oauth_app::Entity::update_many()
        .col_expr(oauth_app::Column::RevokedAt, Expr::value(Some(at)))
        .filter(oauth_app::Column::Id.eq(id.as_str()))
        .filter(oauth_app::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    find(db, tenant, id).await
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
