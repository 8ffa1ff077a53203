//! API keys of an organization.

use chrono::{DateTime, Utc};
use entity::api_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::Expr,
};

use crate::domain::access::Tenant;
use crate::domain::ids::{KeyId, OrgId};

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// A label.
    pub name: String,
    /// The start of the key, shown in listings.
    pub prefix: String,
    /// The hash of the key.
    pub key_hash: String,
    /// The hash of the secret, when issued as a pair.
    pub secret_hash: Option<String>,
    /// The scopes granted, as stored.
    pub scopes: String,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts a key of the organization, created now.
pub async fn insert(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    new: NewKey,
) -> Result<api_key::Model, sea_orm::DbErr> {
    let org = tenant.org();
    api_key::ActiveModel {
        id: Set(KeyId::generate().into_string()),
        org_id: Set(org.as_str().to_owned()),
        name: Set(new.name),
        prefix: Set(new.prefix),
        key_hash: Set(new.key_hash),
        secret_hash: Set(new.secret_hash),
        scopes: Set(new.scopes),
        created_at: Set(Utc::now()),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(db)
    .await
}

/// Every key of the organization, oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
) -> Result<Vec<api_key::Model>, sea_orm::DbErr> {
    let org = tenant.org();
    api_key::Entity::find()
        .filter(api_key::Column::OrgId.eq(org.as_str()))
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

/// The key `id` of the organization.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &KeyId,
) -> Result<Option<api_key::Model>, sea_orm::DbErr> {
    let org = tenant.org();
    api_key::Entity::find_by_id(id.as_str())
        .filter(api_key::Column::OrgId.eq(org.as_str()))
        .one(db)
        .await
}

/// The key whose plaintext hashes to `key_hash`, whatever its organization.
///
/// Unscoped by necessity: this is how a request's organization is found in the first place.
pub async fn find_by_hash(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> Result<Option<api_key::Model>, sea_orm::DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(key_hash))
        .one(db)
        .await
}

/// The organization owning the key `id`.
///
/// Unscoped by necessity: the operator's `companin key revoke KEY_ID` names only the key.
pub async fn owner_of(
    db: &impl ConnectionTrait,
    id: &KeyId,
) -> Result<Option<OrgId>, sea_orm::DbErr> {
    let key = api_key::Entity::find_by_id(id.as_str()).one(db).await?;
    Ok(key.map(|k| OrgId::from_db(k.org_id)))
}

/// Marks the key revoked at `at` unless it already is; returns whether a row changed.
pub async fn revoke(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &KeyId,
    at: DateTime<Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let org = tenant.org();
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(at))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(api_key::Column::OrgId.eq(org.as_str()))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Records that the key was used at `at`.
pub async fn touch(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    id: &KeyId,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let org = tenant.org();
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
        .filter(api_key::Column::Id.eq(id.as_str()))
        .filter(api_key::Column::OrgId.eq(org.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
