//! API keys.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::api_key;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    auth::{Scope, Scopes},
    error::AppError,
    services::api_keys::{CreatedApiKey as Created, NewApiKey},
};

/// A permission of an API key. `ADMIN` implies `WRITE`, which implies `READ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    /// Read every resource of the organization.
    Read,
    /// Create and change resources.
    Write,
    /// Manage API keys and OAuth apps.
    Admin,
}

impl From<Scope> for ApiKeyScope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Read => Self::Read,
            Scope::Write => Self::Write,
            Scope::Admin => Self::Admin,
        }
    }
}

impl From<ApiKeyScope> for Scope {
    fn from(s: ApiKeyScope) -> Self {
        match s {
            ApiKeyScope::Read => Self::Read,
            ApiKeyScope::Write => Self::Write,
            ApiKeyScope::Admin => Self::Admin,
        }
    }
}

/// Whether a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    /// The key authenticates requests.
    Active,
    /// The key was revoked.
    Revoked,
    /// The key is past its expiry.
    Expired,
}

/// An API key. The plaintext is never shown again after creation.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct ApiKey {
    /// `key_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// Label.
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    /// Granted scopes.
    pub scopes: Vec<ApiKeyScope>,
    /// Whether `X-API-Secret` must accompany the key.
    pub has_secret: bool,
    /// Active, revoked or expired.
    pub status: ApiKeyStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        let status = if m.revoked_at.is_some() {
            ApiKeyStatus::Revoked
        } else if m.expires_at.is_some_and(|at| at <= Utc::now()) {
            ApiKeyStatus::Expired
        } else {
            ApiKeyStatus::Active
        };
        Self {
            id: ID(m.id),
            name: m.name,
            prefix: m.prefix,
            scopes: Scopes::from_db(&m.scopes)
                .granted()
                .into_iter()
                .map(Into::into)
                .collect(),
            has_secret: m.secret_hash.is_some(),
            status,
            created_at: m.created_at,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
        }
    }
}

/// A key just created, with its plaintext: store it now, it is not shown again.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's record.
    pub api_key: ApiKey,
    /// The key, for `X-API-Key`.
    pub key: String,
    /// The secret, for `X-API-Secret`, when issued as a pair.
    pub secret: Option<String>,
}

impl From<Created> for CreatedApiKey {
    fn from(c: Created) -> Self {
        Self {
            api_key: c.record.into(),
            key: c.key,
            secret: c.secret,
        }
    }
}

/// A key to create.
#[derive(Debug, Clone, Default, InputObject, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyInput {
    /// Label; defaults to `API key`.
    pub name: Option<String>,
    /// Scopes to grant; defaults to `READ` and `WRITE`.
    pub scopes: Option<Vec<ApiKeyScope>>,
    /// Also issue a secret, required as `X-API-Secret` with every request.
    pub with_secret: Option<bool>,
    /// Lifetime in seconds; the key never expires when absent.
    pub expires_in_seconds: Option<i64>,
}

impl CreateApiKeyInput {
    /// The service's form of this input.
    pub fn into_new_key(self) -> Result<NewApiKey, AppError> {
        let scopes = match self.scopes {
            Some(list) => list.into_iter().map(Scope::from).collect(),
            None => Scopes::from_iter([Scope::Read, Scope::Write]),
        };
        let expires_in = match self.expires_in_seconds {
            None => None,
            Some(s) if s > 0 => Some(std::time::Duration::from_secs(s as u64)),
            Some(_) => {
                return Err(AppError::bad_input(
                    "expires_in_seconds",
                    "must be positive",
                ));
            }
        };
        Ok(NewApiKey {
            name: self.name,
            scopes,
            with_secret: self.with_secret.unwrap_or(false),
            expires_in,
        })
    }
}
