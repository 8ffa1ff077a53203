//! OAuth apps and widget tokens.

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use entity::oauth_app;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::services::oauth_apps::{
    CreatedOAuthApp as Created, MintedToken, NewOAuthApp, TokenRequest,
};

/// Whether an app mints tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OAuthAppStatus {
    /// It mints tokens and its tokens work.
    Active,
    /// Revoked: no new tokens, and its tokens stopped working.
    Revoked,
}

/// Client credentials a customer's server exchanges for widget tokens.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(name = "OAuthApp")]
pub struct OAuthApp {
    /// `app_…`
    #[schema(value_type = String)]
    pub id: ID,
    /// Label.
    pub name: String,
    /// Public client id (`cmp_client_…`), sent with the secret.
    pub client_id: String,
    /// Origins the widget may run on.
    pub allowed_origins: Vec<String>,
    /// The assistant tokens are bound to when a token request names none.
    #[schema(value_type = Option<String>)]
    pub default_assistant_id: Option<ID>,
    /// Active or revoked.
    pub status: OAuthAppStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<oauth_app::Model> for OAuthApp {
    fn from(m: oauth_app::Model) -> Self {
        Self {
            id: ID(m.id),
            name: m.name,
            client_id: m.client_id,
            allowed_origins: serde_json::from_value(m.allowed_origins).unwrap_or_default(),
            default_assistant_id: m.default_assistant_id.map(ID),
            status: if m.revoked_at.is_some() {
                OAuthAppStatus::Revoked
            } else {
                OAuthAppStatus::Active
            },
            created_at: m.created_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// An app just created, with its client secret: store it now, it is not shown again.
#[derive(Debug, Clone, SimpleObject, Serialize, ToSchema)]
#[graphql(name = "CreatedOAuthApp")]
pub struct CreatedOAuthApp {
    /// The app.
    pub app: OAuthApp,
    /// The client secret (`cmp_cs_…`).
    pub client_secret: String,
}

impl From<Created> for CreatedOAuthApp {
    fn from(c: Created) -> Self {
        Self {
            app: c.app.into(),
            client_secret: c.client_secret,
        }
    }
}

/// An app to create.
#[derive(Debug, Clone, InputObject, Deserialize, ToSchema)]
#[graphql(name = "CreateOAuthAppInput")]
#[serde(deny_unknown_fields)]
pub struct CreateOAuthAppInput {
    /// Label.
    pub name: String,
    /// Origins (`https://shop.example`, `http://localhost:3000`) the widget may run on.
    #[serde(default)]
    #[graphql(default)]
    pub allowed_origins: Vec<String>,
    /// The assistant tokens are bound to when a token request names none (`asst_…`).
    #[schema(value_type = Option<String>)]
    pub default_assistant_id: Option<ID>,
}

impl From<CreateOAuthAppInput> for NewOAuthApp {
    fn from(i: CreateOAuthAppInput) -> Self {
        Self {
            name: i.name,
            allowed_origins: i.allowed_origins,
            default_assistant_id: i.default_assistant_id.map(|id| id.0),
        }
    }
}

/// `POST /api/v1/widget/token` (and the form fields of `POST /oauth/token`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenRequestBody {
    /// `client_credentials` (only at `/oauth/token`, where it is required).
    pub grant_type: Option<String>,
    /// The app's client id (or HTTP Basic user at `/oauth/token`).
    pub client_id: Option<String>,
    /// The app's client secret (or HTTP Basic password at `/oauth/token`).
    pub client_secret: Option<String>,
    /// The assistant to bind the token to (default: the app's default assistant).
    pub assistant_id: Option<String>,
    /// Bind to this visitor, for example one the widget stored (default: a new one).
    pub visitor_id: Option<String>,
    /// Bind to the customer's own id of an authenticated visitor.
    pub external_user_id: Option<String>,
}

impl TokenRequestBody {
    /// The service's form, with credentials from the body or from HTTP Basic.
    pub fn into_request(self, basic: Option<(String, String)>) -> TokenRequest {
        let (basic_id, basic_secret) = basic.unzip();
        TokenRequest {
            client_id: self.client_id.or(basic_id).unwrap_or_default(),
            client_secret: self.client_secret.or(basic_secret).unwrap_or_default(),
            assistant_id: self.assistant_id,
            visitor_id: self.visitor_id,
            external_user_id: self.external_user_id,
        }
    }
}

/// A widget token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT, for `Authorization: Bearer` (and the websocket's `connection_init`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The visitor the token acts for.
    pub visitor_id: String,
    /// The assistant it may talk to.
    pub assistant_id: String,
}

impl From<MintedToken> for TokenResponse {
    fn from(t: MintedToken) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            visitor_id: t.claims.sub,
            assistant_id: t.claims.asst,
        }
    }
}
