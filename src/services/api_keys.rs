//! API keys: issue (plaintext shown once), list, revoke.

use std::time::Duration;

use chrono::Utc;
use entity::{api_key, organization};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{
    auth::{
        Principal, Scope, Scopes, Tenant, Work,
        api_key::{NewKeyMaterial, hash},
    },
    domain::ids::KeyId,
    error::{AppError, AppResult},
    repo,
};

/// Longest lifetime a key may be given.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// What to issue.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// A label (`billing backend`); defaults to `API key`.
    pub name: Option<String>,
    /// The scopes granted.
    pub scopes: Scopes,
    /// Issue a secret too; then `X-API-Secret` is required with the key.
    pub with_secret: bool,
    /// The key stops working after this long.
    pub expires_in: Option<Duration>,
}

/// A key just issued, with its plaintext (never retrievable again).
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored record.
    pub record: api_key::Model,
    /// The key to send as `X-API-Key`.
    pub key: String,
    /// The secret to send as `X-API-Secret`, when issued as a pair.
    pub secret: Option<String>,
}

/// Issues a key in the caller's organization (admin scope).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewApiKey,
) -> AppResult<CreatedApiKey> {
    let tenant = principal.scope(Scope::Admin)?;
    issue(db, &tenant, input).await
}

/// Issues a key in the handle's organization (the admin API, operator commands).
pub async fn issue(
    db: &DatabaseConnection,
    tenant: &Tenant,
    input: NewApiKey,
) -> AppResult<CreatedApiKey> {
    let org = repo::organizations::find(db, tenant.org())
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    issue_in(db, tenant, &org, input).await
}

/// Issues a key in `org` (the handle's organization) within the caller's transaction.
pub(crate) async fn issue_in(
    db: &impl ConnectionTrait,
    tenant: &Tenant,
    org: &organization::Model,
    input: NewApiKey,
) -> AppResult<CreatedApiKey> {
    if input.scopes.is_empty() {
        return Err(AppError::bad_input("scopes", "grant at least one scope"));
    }
    let name = input
        .name
        .map_or_else(|| "API key".to_owned(), |n| n.trim().to_owned());
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "must be 1 to 100 characters"));
    }
    let expires_at = match input.expires_in {
        None => None,
        Some(d) if d.is_zero() || d > MAX_LIFETIME => {
            return Err(AppError::bad_input(
                "expires_in_seconds",
                "must be between 1 second and 10 years",
            ));
        }
        Some(d) => Some(Utc::now() + chrono::Duration::from_std(d).map_err(anyhow::Error::from)?),
    };
    let material = NewKeyMaterial::generate(org.sandbox, input.with_secret);
    let new = repo::api_keys::NewKey {
        name,
        prefix: material.display_prefix(),
        key_hash: hash(&material.key),
        secret_hash: material.secret.as_deref().map(hash),
        scopes: input.scopes.to_string(),
        expires_at,
    };
    let record = repo::api_keys::insert(db, tenant, new).await?;
    Ok(CreatedApiKey {
        record,
        key: material.key,
        secret: material.secret,
    })
}

/// The caller's organization's keys (admin scope).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
) -> AppResult<Vec<api_key::Model>> {
    let tenant = principal.scope(Scope::Admin)?;
    list_for(db, &tenant).await
}

/// The keys of the handle's organization (the admin API, operator commands).
pub async fn list_for(db: &DatabaseConnection, tenant: &Tenant) -> AppResult<Vec<api_key::Model>> {
    repo::organizations::find(db, tenant.org())
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    Ok(repo::api_keys::list(db, tenant).await?)
}

/// One key of the caller's organization (admin scope).
pub async fn get(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &KeyId,
) -> AppResult<api_key::Model> {
    let tenant = principal.scope(Scope::Admin)?;
    repo::api_keys::find(db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("API key"))
}

/// Revokes a key of the caller's organization (admin scope). Revoking twice is harmless.
pub async fn revoke(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &KeyId,
) -> AppResult<api_key::Model> {
    let tenant = principal.scope(Scope::Admin)?;
    revoke_in(db, &tenant, id).await
}

/// Revokes the key `id`, whichever organization owns it (operator command).
pub async fn revoke_by_id(db: &DatabaseConnection, id: &KeyId) -> AppResult<api_key::Model> {
    let org = repo::api_keys::owner_of(db, id)
        .await?
        .ok_or(AppError::NotFound("API key"))?;
    revoke_in(db, &Tenant::for_work(org, Work::Operator), id).await
}

async fn revoke_in(
    db: &DatabaseConnection,
    tenant: &Tenant,
    id: &KeyId,
) -> AppResult<api_key::Model> {
    repo::api_keys::revoke(db, tenant, id, Utc::now()).await?;
    repo::api_keys::find(db, tenant, id)
        .await?
        .ok_or(AppError::NotFound("API key"))
}
