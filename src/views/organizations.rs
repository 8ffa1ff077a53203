//! Organizations and the caller's view of itself.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::organization;
use serde::Serialize;
use utoipa::ToSchema;

use super::api_keys::{ApiKey, ApiKeyScope};
use crate::{auth::VisitorGrant, services::organizations::Caller};

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
    /// The scopes this request may use (none for a visitor token).
    pub scopes: Vec<ApiKeyScope>,
    /// For a visitor token (widget or external issuer): what it is bound to.
    pub widget: Option<WidgetAccess>,
}

/// What a visitor credential (a widget token, or a token of the customer's own identity
/// provider) is bound to.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
pub struct WidgetAccess {
    /// The OAuth app (`app_…`) of a widget token; null for an external issuer's token.
    #[schema(value_type = Option<String>)]
    pub app_id: Option<ID>,
    /// Who issued the token: `companin` for widget tokens, else the external issuer.
    pub issuer: String,
    /// The one assistant it may talk to (`asst_…`); null: any of the organization's.
    #[schema(value_type = Option<String>)]
    pub assistant_id: Option<ID>,
    /// The visitor it acts for.
    pub visitor_id: String,
    /// The customer's own id of the visitor, when bound to one.
    pub external_user_id: Option<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl From<VisitorGrant> for WidgetAccess {
    fn from(g: VisitorGrant) -> Self {
        Self {
            app_id: g.app.map(|a| ID(a.into_string())),
            issuer: g.issuer,
            assistant_id: g.assistant.map(|a| ID(a.into_string())),
            visitor_id: g.visitor_id,
            external_user_id: g.external_user_id,
            expires_at: DateTime::from_timestamp(g.expires_at, 0).unwrap_or_default(),
        }
    }
}

impl From<Caller> for Viewer {
    fn from(c: Caller) -> Self {
        Self {
            organization: c.organization.into(),
            api_key: c.key.map(Into::into),
            scopes: c.scopes.granted().into_iter().map(Into::into).collect(),
            widget: c.widget.map(Into::into),
        }
    }
}
