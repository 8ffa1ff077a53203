//! OAuth apps (admin scope) and the widget tokens they mint (SPEC §9).
//!
//! A customer's server exchanges an app's client id and secret for a short-lived widget
//! token bound to the organization, one assistant and one visitor; the browser widget then
//! uses the token for the visitor operations only, on the app's allowed origins.

use chrono::Utc;
use entity::oauth_app;
use sea_orm::DatabaseConnection;

use crate::{
    auth::{
        Principal, Scope, Tenant, Work,
        api_key::{client_credentials, hash, matches},
        jwt::SigningKeys,
        widget_token::{self, AUDIENCE, ISSUER, WidgetClaims},
    },
    domain::ids::{AppId, AssistantId, OrgId, VisitorId},
    error::{AppError, AppResult},
    repo::{self, oauth_apps::NewApp},
    state::AppState,
};

/// Most allowed origins per app.
const MAX_ORIGINS: usize = 50;

/// An app to create.
#[derive(Debug, Clone)]
pub struct NewOAuthApp {
    /// A label.
    pub name: String,
    /// Origins (`https://shop.example`) the widget may run on.
    pub allowed_origins: Vec<String>,
    /// The assistant tokens are bound to when the request names none.
    pub default_assistant_id: Option<String>,
}

/// An app just created, with its client secret (never retrievable again).
#[derive(Debug, Clone)]
pub struct CreatedOAuthApp {
    /// The stored app.
    pub app: oauth_app::Model,
    /// The client secret.
    pub client_secret: String,
}

/// Creates an app (admin scope).
pub async fn create(
    state: &AppState,
    principal: &Principal,
    input: NewOAuthApp,
) -> AppResult<CreatedOAuthApp> {
    let db = &state.db;
    let tenant = principal.scope(Scope::Admin)?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_input("name", "must be 1 to 100 characters"));
    }
    let origins = normalize_origins(&input.allowed_origins)?;
    if let Some(assistant) = &input.default_assistant_id {
        existing_assistant(db, &tenant, assistant, "default_assistant_id").await?;
    }
    let (client_id, client_secret) = client_credentials();
    let new = NewApp {
        name,
        client_id,
        client_secret_hash: hash(&client_secret),
        allowed_origins: origins,
        default_assistant_id: input.default_assistant_id,
    };
    let app = repo::oauth_apps::insert(db, &tenant, new).await?;
    state.widget_origins.invalidate().await;
    Ok(CreatedOAuthApp { app, client_secret })
}

/// The organization's apps, oldest first (admin scope).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
) -> AppResult<Vec<oauth_app::Model>> {
    let tenant = principal.scope(Scope::Admin)?;
    Ok(repo::oauth_apps::list(db, &tenant).await?)
}

/// One app (admin scope).
pub async fn get(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &AppId,
) -> AppResult<oauth_app::Model> {
    let tenant = principal.scope(Scope::Admin)?;
    repo::oauth_apps::find(db, &tenant, id)
        .await?
        .ok_or(AppError::NotFound("OAuth app"))
}

/// Revokes an app (admin scope): it mints no more tokens and its tokens stop working.
pub async fn revoke(
    state: &AppState,
    principal: &Principal,
    id: &AppId,
) -> AppResult<oauth_app::Model> {
    let app = get(&state.db, principal, id).await?;
    if app.revoked_at.is_some() {
        return Ok(app);
    }
    let tenant = principal.scope(Scope::Admin)?;
    let revoked = repo::oauth_apps::revoke(&state.db, &tenant, id, Utc::now())
        .await?
        .ok_or(AppError::NotFound("OAuth app"))?;
    state.widget_origins.invalidate().await;
    Ok(revoked)
}

/// A token request: client credentials and what to bind the token to.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The assistant (default: the app's default assistant).
    pub assistant_id: Option<String>,
    /// Bind to this visitor (default: a new anonymous visitor).
    pub visitor_id: Option<String>,
    /// Bind to the customer's own id of an authenticated visitor.
    pub external_user_id: Option<String>,
}

/// A minted token.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// The JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// What it grants.
    pub claims: WidgetClaims,
}

/// Checks the client credentials and mints a token valid for `ttl_seconds`.
pub async fn mint(
    db: &DatabaseConnection,
    keys: &SigningKeys,
    ttl_seconds: u64,
    request: TokenRequest,
) -> AppResult<MintedToken> {
    let invalid = || AppError::Unauthenticated("invalid client credentials".into());
    let app = repo::oauth_apps::find_by_client_id(db, request.client_id.trim())
        .await?
        .filter(|app| matches(request.client_secret.trim(), &app.client_secret_hash))
        .ok_or_else(invalid)?;
    if app.revoked_at.is_some() {
        return Err(AppError::Unauthenticated(
            "this OAuth app has been revoked".into(),
        ));
    }
    // The app's organization, for minting its token.
    let tenant = Tenant::for_work(OrgId::from_db(app.org_id.clone()), Work::WidgetTokens);
    let assistant = request
        .assistant_id
        .or(app.default_assistant_id.clone())
        .ok_or_else(|| {
            AppError::bad_input(
                "assistant_id",
                "name an assistant: the app has no default assistant",
            )
        })?;
    existing_assistant(db, &tenant, &assistant, "assistant_id").await?;
    let visitor_id = match request.visitor_id {
        Some(id) => check_visitor_id(id)?,
        None => VisitorId::generate().into_string(),
    };
    let external_user_id = request
        .external_user_id
        .map(|id| {
            let id = id.trim().to_owned();
            super::sessions::check_external_user_id(&id).map(|()| id)
        })
        .transpose()?;
    let now = Utc::now().timestamp();
    let claims = WidgetClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: visitor_id,
        org: app.org_id,
        app: app.id,
        asst: assistant,
        ext: external_user_id,
        iat: now,
        exp: now + i64::try_from(ttl_seconds).unwrap_or(600),
        jti: uuid::Uuid::now_v7().simple().to_string(),
    };
    let access_token = widget_token::sign(keys, &claims)?;
    Ok(MintedToken {
        access_token,
        expires_in: ttl_seconds,
        claims,
    })
}

async fn existing_assistant(
    db: &DatabaseConnection,
    tenant: &Tenant,
    id: &str,
    field: &str,
) -> AppResult<()> {
    let parsed =
        AssistantId::parse(id).map_err(|_| AppError::bad_input(field, "is not an assistant id"))?;
    repo::assistants::find(db, tenant, &parsed)
        .await?
        .map(|_| ())
        .ok_or_else(|| AppError::bad_input(field, "no such assistant"))
}

fn check_visitor_id(id: String) -> AppResult<String> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(AppError::bad_input(
            "visitor_id",
            "must be 1 to 128 letters, digits, `_` or `-`",
        ))
    }
}

/// Origins as browsers send them: `scheme://host[:port]`, lowercase, no path.
fn normalize_origins(raw: &[String]) -> AppResult<Vec<String>> {
    if raw.len() > MAX_ORIGINS {
        return Err(AppError::bad_input(
            "allowed_origins",
            format!("at most {MAX_ORIGINS} origins"),
        ));
    }
    let mut origins = Vec::with_capacity(raw.len());
    for (i, origin) in raw.iter().enumerate() {
        let field = format!("allowed_origins[{i}]");
        let url = url::Url::parse(origin.trim()).map_err(|_| {
            AppError::bad_input(&field, "is not a URL such as https://shop.example")
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.path() != "/"
            || url.query().is_some()
            || !url.username().is_empty()
        {
            return Err(AppError::bad_input(
                &field,
                "must be an origin: http(s)://host[:port], without a path",
            ));
        }
        let origin = url.origin().ascii_serialization();
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        let origins = normalize_origins(&[
            "https://Shop.Example/".into(),
            "http://localhost:3000".into(),
            "https://shop.example".into(),
        ])
        .expect("valid");
        assert_eq!(
            origins,
            vec!["https://shop.example", "http://localhost:3000"]
        );
        for bad in [
            "ftp://x.example",
            "https://x.example/page",
            "not a url",
            "https://u:p@x.example",
        ] {
            assert!(normalize_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
