//! Organizations and the caller's view of itself.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::organization;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_keys::{ApiKey, ApiKeyScope};
use crate::services::organizations::Caller;

/// An organization: the tenant that owns every other record.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Organization {
    /// `org_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// Display name.
    pub name: String,
    /// Sandbox organizations use `cmp_test_` keys and hold demo data.
    pub sandbox: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<organization::Model> for Organization {
    fn from(m: organization::Model) -> Self {
        Self {
            id: ID(m.id),
            name: m.name,
            sandbox: m.sandbox,
            created_at: m.created_at,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct Viewer {
    /// The caller's organization.
    pub organization: Organization,
    /// The API key used for this request.
    pub api_key: Option<ApiKey>,
    /// The scopes this request may use.
    pub scopes: Vec<ApiKeyScope>,
}

impl From<Caller> for Viewer {
    fn from(c: Caller) -> Self {
        Self {
            organization: c.organization.into(),
            api_key: c.key.map(Into::into),
            scopes: c.scopes.granted().into_iter().map(Into::into).collect(),
        }
    }
}
