//! The built-in authenticators: API keys (with their secret when issued as a pair) and
//! widget tokens.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use sea_orm::DatabaseConnection;

use super::{
    Principal, Scopes, Tenant, VisitorGrant, Work, api_key,
    chain::{Authenticator, Credentials, unauthenticated},
    jwt::SigningKeys,
    widget_token,
};
use crate::{
    domain::ids::{AppId, AssistantId, KeyId, OrgId},
    error::AppResult,
    repo,
};

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header carrying the API key's secret, for keys issued as a pair.
pub const API_SECRET_HEADER: &str = "x-api-secret";

/// `last_used_at` is refreshed at most this often per key, so reads stay reads.
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// `X-API-Key: cmp_…` (or `Authorization: Bearer cmp_…`), plus `X-API-Secret` when the key
/// was issued with a secret.
#[derive(Debug, Clone)]
pub struct ApiKeyAuthenticator {
    db: DatabaseConnection,
}

impl ApiKeyAuthenticator {
    /// Keys looked up in `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Authenticator for ApiKeyAuthenticator {
    fn name(&self) -> &'static str {
        "api_key"
    }

    async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Option<Principal>> {
        let presented = match request.header(API_KEY_HEADER)? {
            Some(key) => key,
            None => match request.bearer()? {
                Some(token) if token.starts_with("cmp_") => token,
                _ => return Ok(None),
            },
        };
        if !api_key::is_well_formed_key(&presented) {
            return Err(unauthenticated("malformed API key"));
        }
        let key = repo::api_keys::find_by_hash(&self.db, &api_key::hash(&presented))
            .await?
            .filter(|k| api_key::matches(&presented, &k.key_hash))
            .ok_or_else(|| unauthenticated("invalid API key"))?;
        let now = Utc::now();
        if key.revoked_at.is_some() {
            return Err(unauthenticated("this API key has been revoked"));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(unauthenticated("this API key has expired"));
        }
        if let Some(secret_hash) = &key.secret_hash {
            let secret = request.header(API_SECRET_HEADER)?.ok_or_else(|| {
                unauthenticated("this API key requires its secret in X-API-Secret")
            })?;
            if !api_key::matches(&secret, secret_hash) {
                return Err(unauthenticated("invalid API secret"));
            }
        }
        let org = OrgId::from_db(key.org_id);
        let id = KeyId::from_db(key.id);
        if key.last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
            touch_in_background(self.db.clone(), org.clone(), id.clone());
        }
        Ok(Some(Principal::api_key(
            org,
            id,
            Scopes::from_db(&key.scopes),
        )))
    }
}

/// `Authorization: Bearer <widget token>`: a JWT this server signed for an OAuth app, valid
/// while the app is not revoked.
#[derive(Debug, Clone)]
pub struct WidgetTokenAuthenticator {
    db: DatabaseConnection,
    keys: std::sync::Arc<SigningKeys>,
}

impl WidgetTokenAuthenticator {
    /// Tokens verified with `keys`, apps looked up in `db`.
    pub fn new(db: DatabaseConnection, keys: std::sync::Arc<SigningKeys>) -> Self {
        Self { db, keys }
    }
}

#[async_trait]
impl Authenticator for WidgetTokenAuthenticator {
    fn name(&self) -> &'static str {
        "widget_token"
    }

    async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Option<Principal>> {
        if request.bearer_jwt_issuer()?.as_deref() != Some(widget_token::ISSUER) {
            return Ok(None);
        }
        let Some(token) = request.bearer()? else {
            return Ok(None);
        };
        let claims = widget_token::verify(&self.keys, &token)?;
        let (org, grant) = grant_of(claims, Vec::new())?;
        let app = grant
            .app
            .clone()
            .ok_or_else(|| unauthenticated("invalid widget token"))?;
        let checking = Tenant::for_work(org.clone(), Work::Authentication);
        let app_row = repo::oauth_apps::find(&self.db, &checking, &app)
            .await?
            .filter(|a| a.revoked_at.is_none())
            .ok_or_else(|| unauthenticated("the widget token's app has been revoked"))?;
        let allowed_origins = serde_json::from_value(app_row.allowed_origins).unwrap_or_default();
        Ok(Some(Principal::visitor(
            org,
            VisitorGrant {
                allowed_origins: Some(allowed_origins),
                ..grant
            },
        )))
    }
}

/// The organization and grant a widget token's claims name.
pub(crate) fn grant_of(
    claims: widget_token::WidgetClaims,
    allowed_origins: Vec<String>,
) -> AppResult<(OrgId, VisitorGrant)> {
    let (Ok(org), Ok(app), Ok(assistant)) = (
        OrgId::parse(&claims.org),
        AppId::parse(&claims.app),
        AssistantId::parse(&claims.asst),
    ) else {
        return Err(unauthenticated("invalid widget token"));
    };
    let grant = VisitorGrant {
        app: Some(app),
        issuer: claims.iss,
        assistant: Some(assistant),
        visitor_id: claims.sub,
        external_user_id: claims.ext,
        allowed_origins: Some(allowed_origins),
        expires_at: claims.exp,
    };
    Ok((org, grant))
}

fn touch_in_background(db: DatabaseConnection, org: OrgId, key: KeyId) {
    tokio::spawn(async move {
        let recording = Tenant::for_work(org, Work::Authentication);
        if let Err(e) = repo::api_keys::touch(&db, &recording, &key, Utc::now()).await {
            tracing::warn!(key = %key, error = %e, "could not record last_used_at");
        }
    });
}
