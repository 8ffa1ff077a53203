//! Tokens of the customer's own identity provider: a bearer JWT whose `iss` is the
//! configured issuer, verified against the issuer's published keys (RSA, EC or Ed25519; never
//! a shared secret), its audience, expiry and not-before. One claim names the organization
//! and one the visitor, who then gets the same visitor operations as a widget token.

use async_trait::async_trait;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header, errors::ErrorKind, jwk::PublicKeyUse,
};
use sea_orm::DatabaseConnection;
use serde_json::{Map, Value};

use super::{
    Principal, VisitorGrant,
    chain::{Authenticator, Credentials, unauthenticated},
    jwks::KeySet,
};
use crate::{
    config::ExternalJwtSettings,
    domain::ids::{AssistantId, OrgId},
    error::AppResult,
    repo,
};

/// Signature algorithms accepted: public-key ones only, so a published key can never be
/// used as an HMAC secret.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Longest visitor id taken from a token.
const MAX_VISITOR_CHARS: usize = 255;

/// Verifies the configured external issuer's tokens.
#[derive(Debug)]
pub struct ExternalJwtAuthenticator {
    settings: ExternalJwtSettings,
    keys: KeySet,
    db: DatabaseConnection,
}

impl ExternalJwtAuthenticator {
    /// Checks the settings and loads the issuer's keys.
    pub async fn from_settings(
        settings: &ExternalJwtSettings,
        db: DatabaseConnection,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.issuer.trim().is_empty(),
            "external_jwt.issuer is required (COMPANIN_EXTERNAL_JWT__ISSUER)"
        );
        anyhow::ensure!(
            settings.audience.iter().any(|a| !a.trim().is_empty()),
            "external_jwt.audience is required (COMPANIN_EXTERNAL_JWT__AUDIENCE), so that tokens meant for another service are refused"
        );
        match &settings.organization {
            Some(org) => anyhow::ensure!(
                OrgId::parse(org).is_ok(),
                "external_jwt.organization `{org}` is not an organization id (org_…)"
            ),
            None => anyhow::ensure!(
                settings.multi_tenant,
                "external_jwt.organization is required (COMPANIN_EXTERNAL_JWT__ORGANIZATION): \
                 the issuer's tokens act for that organization only; to let the issuer name any \
                 organization, set COMPANIN_EXTERNAL_JWT__MULTI_TENANT=true"
            ),
        }
        let keys = KeySet::load(settings).await?;
        let loaded = keys.len().await;
        tracing::info!(
            issuer = %settings.issuer,
            keys = loaded,
            org_claim = %settings.org_claim,
            visitor_claim = %settings.visitor_claim,
            "accepting tokens of an external issuer"
        );
        Ok(Self {
            settings: settings.clone(),
            keys,
            db,
        })
    }

    async fn verify(&self, token: &str) -> AppResult<Map<String, Value>> {
        let header = decode_header(token).map_err(|_| unauthenticated("malformed token"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(unauthenticated(&format!(
                "unsupported token algorithm {:?}: sign with RS*, PS*, ES256/384 or EdDSA",
                header.alg
            )));
        }
        let jwk = self.keys.find(header.kid.as_deref()).await.ok_or_else(|| {
            unauthenticated(&format!(
                "the token was signed with a key the issuer does not publish (kid {})",
                header.kid.as_deref().unwrap_or("missing")
            ))
        })?;
        let declared = jwk.common.key_algorithm.map(Algorithm::try_from);
        if declared.is_some_and(|alg| alg.ok() != Some(header.alg)) {
            return Err(unauthenticated(
                "the token's algorithm does not match its key",
            ));
        }
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err(unauthenticated("the issuer's key is not a signing key"));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| unauthenticated("the issuer's key cannot verify tokens"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&self.settings.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_seconds;
        decode::<Map<String, Value>>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => unauthenticated("the token has expired"),
                ErrorKind::ImmatureSignature => unauthenticated("the token is not valid yet"),
                ErrorKind::InvalidAudience => {
                    unauthenticated("the token is meant for another service (aud)")
                }
                ErrorKind::InvalidIssuer => unauthenticated("the token's issuer is not accepted"),
                ErrorKind::InvalidSignature => unauthenticated("invalid token signature"),
                ErrorKind::MissingRequiredClaim(claim) => {
                    unauthenticated(&format!("the token has no `{claim}` claim"))
                }
                _ => unauthenticated("invalid token"),
            })
    }

    /// The organization the claims name, which must exist (and be the configured one).
    async fn organization(&self, claims: &Map<String, Value>) -> AppResult<OrgId> {
        let name = &self.settings.org_claim;
        let org = text_claim(claims, name)
            .and_then(|raw| OrgId::parse(&raw).ok())
            .ok_or_else(|| {
                unauthenticated(&format!(
                    "the token's `{name}` claim must be a Companin organization id (org_…)"
                ))
            })?;
        if self
            .settings
            .organization
            .as_deref()
            .is_some_and(|only| only != org.as_str())
        {
            return Err(unauthenticated(
                "this issuer may not act for that organization",
            ));
        }
        repo::organizations::find(&self.db, &org)
            .await?
            .ok_or_else(|| unauthenticated("the token's organization does not exist"))?;
        Ok(org)
    }
}

#[async_trait]
impl Authenticator for ExternalJwtAuthenticator {
    fn name(&self) -> &'static str {
        "external_jwt"
    }

    async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Option<Principal>> {
        if request.bearer_jwt_issuer()?.as_deref() != Some(self.settings.issuer.as_str()) {
            return Ok(None);
        }
        let Some(token) = request.bearer()? else {
            return Ok(None);
        };
        let claims = self.verify(&token).await?;
        let org = self.organization(&claims).await?;
        let visitor_claim = &self.settings.visitor_claim;
        let visitor = text_claim(&claims, visitor_claim)
            .filter(|v| !v.is_empty() && v.chars().count() <= MAX_VISITOR_CHARS)
            .ok_or_else(|| {
                unauthenticated(&format!(
                    "the token's `{visitor_claim}` claim must identify the visitor (1 to {MAX_VISITOR_CHARS} characters)"
                ))
            })?;
        let assistant_claim = &self.settings.assistant_claim;
        let assistant = match text_claim(&claims, assistant_claim) {
            None => None,
            Some(raw) => Some(AssistantId::parse(&raw).map_err(|_| {
                unauthenticated(&format!(
                    "the token's `{assistant_claim}` claim must be an assistant id (asst_…)"
                ))
            })?),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        Ok(Some(Principal::visitor(
            org,
            VisitorGrant {
                app: None,
                issuer: self.settings.issuer.clone(),
                assistant,
                visitor_id: visitor.clone(),
                external_user_id: Some(visitor),
                allowed_origins: None,
                expires_at,
            },
        )))
    }
}

/// A claim as text (a number is taken as its decimal form).
fn text_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
