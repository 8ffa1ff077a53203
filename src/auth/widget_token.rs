//! Widget tokens: short-lived HS256 JWTs minted for an OAuth app, bound to one
//! organization, one assistant and one visitor. The header's `kid` names the signing key,
//! so tokens signed before a rotation verify until they expire.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
    errors::ErrorKind,
};
use serde::{Deserialize, Serialize};

use super::jwt::SigningKeys;
use crate::error::AppError;

/// `iss` of every widget token.
pub const ISSUER: &str = "companin";
/// `aud` of every widget token.
pub const AUDIENCE: &str = "companin-widget";
/// Seconds of clock skew tolerated on `exp`.
const LEEWAY: u64 = 5;

/// What a widget token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetClaims {
    /// [`ISSUER`].
    pub iss: String,
    /// [`AUDIENCE`].
    pub aud: String,
    /// The visitor (`vis_…`, or the customer's visitor id).
    pub sub: String,
    /// The organization (`org_…`).
    pub org: String,
    /// The OAuth app (`app_…`).
    pub app: String,
    /// The assistant (`asst_…`).
    pub asst: String,
    /// The customer's own id of the visitor, for an authenticated visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// Signs `claims` with the current key.
pub fn sign(keys: &SigningKeys, claims: &WidgetClaims) -> anyhow::Result<String> {
    let key = keys.current();
    let header = Header {
        kid: Some(key.kid.clone()),
        ..Header::new(Algorithm::HS256)
    };
    Ok(encode(
        &header,
        claims,
        &EncodingKey::from_secret(key.secret()),
    )?)
}

/// Whether `raw` looks like a JWT (three base64url parts), so it is not mistaken for a key.
pub fn looks_like_jwt(raw: &str) -> bool {
    raw.split('.').count() == 3 && raw.starts_with("eyJ")
}

/// Verifies signature (by `kid`), algorithm, issuer, audience and expiry.
pub fn verify(keys: &SigningKeys, token: &str) -> Result<WidgetClaims, AppError> {
    let header = decode_header(token).map_err(|_| refused("malformed token"))?;
    let kid = header
        .kid
        .ok_or_else(|| refused("the token names no signing key (kid)"))?;
    let key = keys
        .find(&kid)
        .ok_or_else(|| refused("the token was signed with an unknown or retired key"))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY;
    decode::<WidgetClaims>(token, &DecodingKey::from_secret(key.secret()), &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => refused("the widget token has expired: mint a new one"),
            ErrorKind::InvalidSignature => refused("invalid token signature"),
            ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => {
                refused("this token is not a Companin widget token")
            }
            ErrorKind::InvalidAlgorithm => refused("unsupported token algorithm"),
            _ => refused("invalid token"),
        })
}

fn refused(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthSettings, Settings};

    fn claims(exp_in: i64) -> WidgetClaims {
        let now = chrono::Utc::now().timestamp();
        WidgetClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "vis_1".into(),
            org: "org_1".into(),
            app: "app_1".into(),
            asst: "asst_1".into(),
            ext: None,
            iat: now,
            exp: now + exp_in,
            jti: "j".into(),
        }
    }

    fn keys(secret: &str, kid: &str) -> SigningKeys {
        let settings = Settings {
            auth: AuthSettings {
                jwt_secret: Some(secret.into()),
                jwt_kid: kid.into(),
                ..Settings::default().auth
            },
            ..Settings::default()
        };
        SigningKeys::load_or_generate(&settings).expect("keys")
    }

    #[test]
    fn a_minted_token_verifies_and_tampering_or_expiry_is_refused() {
        let keys = keys("0123456789abcdef0123456789abcdef", "k1");
        let token = sign(&keys, &claims(600)).expect("signed");
        assert!(looks_like_jwt(&token));
        assert_eq!(verify(&keys, &token).expect("valid").asst, "asst_1");

        let expired = sign(&keys, &claims(-60)).expect("signed");
        assert!(verify(&keys, &expired).is_err());

        let other = keys_with_other_secret();
        assert!(
            verify(&other, &token).is_err(),
            "another secret under the same kid"
        );
        let mut forged = token.clone();
        forged.push('x');
        assert!(verify(&keys, &forged).is_err());
    }

    fn keys_with_other_secret() -> SigningKeys {
        keys("ffffffffffffffffffffffffffffffff", "k1")
    }

    #[test]
    fn a_token_from_an_unknown_key_is_refused() {
        let token = sign(
            &keys("0123456789abcdef0123456789abcdef", "old"),
            &claims(600),
        )
        .expect("signed");
        let rotated = keys("0123456789abcdef0123456789abcdef", "new");
        assert!(verify(&rotated, &token).is_err());
    }
}
