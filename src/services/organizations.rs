//! Organizations: the operator creates them; callers read their own.

use entity::{api_key, organization};
use sea_orm::DatabaseConnection;

use super::api_keys::{self, CreatedApiKey, NewApiKey};
use crate::{
    auth::{Principal, Scope, Scopes, Tenant, VisitorGrant, Work},
    domain::ids::OrgId,
    error::{AppError, AppResult},
    repo,
};

/// Creates an organization and its first admin key (operator command).
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    sandbox: bool,
) -> AppResult<(organization::Model, CreatedApiKey)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "must be 1 to 100 characters"));
    }
    let txn = crate::db::begin_write(db).await?;
    let org = repo::organizations::insert(&txn, name, sandbox).await?;
    let tenant = Tenant::for_work(OrgId::from_db(org.id.clone()), Work::Operator);
    let first_key = NewApiKey {
        name: Some("first admin key".into()),
        scopes: Scopes::all(),
        with_secret: false,
        expires_in: None,
    };
    let key = api_keys::issue_in(&txn, &tenant, &org, first_key).await?;
    txn.commit().await?;
    Ok((org, key))
}

/// The caller's own organization.
pub async fn current(
    db: &DatabaseConnection,
    principal: &Principal,
) -> AppResult<organization::Model> {
    let tenant = principal.scope(Scope::Read)?;
    repo::organizations::find(db, tenant.org())
        .await?
        .ok_or(AppError::NotFound("organization"))
}

/// The caller as stored: its organization, its key and the scopes in force.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's organization.
    pub organization: organization::Model,
    /// The key of this request.
    pub key: Option<api_key::Model>,
    /// The scopes granted.
    pub scopes: Scopes,
    /// What a widget token allows, for a widget.
    pub widget: Option<VisitorGrant>,
}

/// The caller: organization, key (or widget grant) and scopes. Widgets may ask too.
pub async fn viewer(db: &DatabaseConnection, principal: &Principal) -> AppResult<Caller> {
    let tenant = principal.visitor_scope(Scope::Read)?;
    let organization = repo::organizations::find(db, tenant.org())
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let key = match principal.key() {
        Some(key) => repo::api_keys::find(db, &tenant, key).await?,
        None => None,
    };
    Ok(Caller {
        organization,
        key,
        scopes: principal.scopes(),
        widget: principal.visitor_grant().cloned(),
    })
}
