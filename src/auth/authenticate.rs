//! Resolving request headers to a [`Principal`].

use axum::http::{HeaderMap, header::AUTHORIZATION};
use chrono::{Duration, Utc};
use sea_orm::DatabaseConnection;

use super::{Principal, Scopes, WidgetGrant, api_key, jwt::SigningKeys, widget_token};
use crate::{
    domain::ids::{AppId, AssistantId, KeyId, OrgId},
    error::{AppError, AppResult},
    repo,
};

/// Header carrying the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header carrying the API key's secret, for keys issued as a pair.
pub const API_SECRET_HEADER: &str = "x-api-secret";

/// `last_used_at` is refreshed at most this often per key, so reads stay reads.
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// Authenticates a request from its headers: `X-API-Key` (or `Authorization: Bearer` with an
/// API key), plus `X-API-Secret` when the key was issued with one; or `Authorization: Bearer`
/// with a widget token.
pub async fn authenticate(
    db: &DatabaseConnection,
    keys: &SigningKeys,
    headers: &HeaderMap,
) -> AppResult<Principal> {
    if let Some(token) = bearer_token(headers)?
        && widget_token::looks_like_jwt(&token)
    {
        return widget(db, keys, &token).await;
    }
    let presented = presented_key(headers)?;
    if !api_key::is_well_formed_key(&presented) {
        return Err(unauthenticated("malformed API key"));
    }
    let key = repo::api_keys::find_by_hash(db, &api_key::hash(&presented))
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
        let secret = header(headers, API_SECRET_HEADER)?
            .ok_or_else(|| unauthenticated("this API key requires its secret in X-API-Secret"))?;
        if !api_key::matches(&secret, secret_hash) {
            return Err(unauthenticated("invalid API secret"));
        }
    }
    let org = OrgId::from_db(key.org_id);
    let id = KeyId::from_db(key.id);
    if key.last_used_at.is_none_or(|at| now - at >= TOUCH_INTERVAL) {
        touch_in_background(db.clone(), org.clone(), id.clone());
    }
    Ok(Principal::api_key(org, id, Scopes::from_db(&key.scopes)))
}

/// A widget token's caller, while its app is not revoked.
async fn widget(db: &DatabaseConnection, keys: &SigningKeys, token: &str) -> AppResult<Principal> {
    let claims = widget_token::verify(keys, token)?;
    let (org, grant) = grant_of(claims, Vec::new())?;
    let app_row = repo::oauth_apps::find(db, &org, &grant.app)
        .await?
        .filter(|a| a.revoked_at.is_none())
        .ok_or_else(|| unauthenticated("the widget token's app has been revoked"))?;
    let allowed_origins = serde_json::from_value(app_row.allowed_origins).unwrap_or_default();
    Ok(Principal::widget(
        org,
        WidgetGrant {
            allowed_origins,
            ..grant
        },
    ))
}

/// The organization and grant a widget token's claims name.
pub(crate) fn grant_of(
    claims: widget_token::WidgetClaims,
    allowed_origins: Vec<String>,
) -> AppResult<(OrgId, WidgetGrant)> {
    let (Ok(org), Ok(app), Ok(assistant)) = (
        OrgId::parse(&claims.org),
        AppId::parse(&claims.app),
        AssistantId::parse(&claims.asst),
    ) else {
        return Err(unauthenticated("invalid widget token"));
    };
    let grant = WidgetGrant {
        app,
        assistant,
        visitor_id: claims.sub,
        external_user_id: claims.ext,
        allowed_origins,
        expires_at: claims.exp,
    };
    Ok((org, grant))
}

/// The token of `Authorization: Bearer …`, when present.
fn bearer_token(headers: &HeaderMap) -> AppResult<Option<String>> {
    Ok(header(headers, AUTHORIZATION.as_str())?
        .and_then(|auth| auth.strip_prefix("Bearer ").map(|t| t.trim().to_owned())))
}

fn presented_key(headers: &HeaderMap) -> AppResult<String> {
    if let Some(key) = header(headers, API_KEY_HEADER)? {
        return Ok(key);
    }
    match header(headers, AUTHORIZATION.as_str())? {
        Some(auth) => match auth.strip_prefix("Bearer ") {
            Some(token) if token.starts_with("cmp_") => Ok(token.trim().to_owned()),
            _ => Err(unauthenticated(
                "unsupported Authorization header: send `X-API-Key: cmp_…` or a widget token",
            )),
        },
        None => Err(unauthenticated(
            "missing credentials: send your API key in the X-API-Key header",
        )),
    }
}

fn header(headers: &HeaderMap, name: &str) -> AppResult<Option<String>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_owned())
                .map_err(|_| unauthenticated(&format!("malformed {name} header")))
        })
        .transpose()
}

fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}

fn touch_in_background(db: DatabaseConnection, org: OrgId, key: KeyId) {
    tokio::spawn(async move {
        if let Err(e) = repo::api_keys::touch(&db, &org, &key, Utc::now()).await {
            tracing::warn!(key = %key, error = %e, "could not record last_used_at");
        }
    });
}
