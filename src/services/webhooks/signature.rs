//! Signing deliveries the way Stripe does: `Companin-Signature: t=<unix seconds>,v1=<hex>`,
//! where `v1` is HMAC-SHA256 over `"<t>.<body>"` keyed with the endpoint's secret. While a
//! rotated-out secret is still valid, a second `v1` signed with it follows, so a receiver can
//! switch secrets without dropping events.
//!
//! Every delivery is signed the Standard Webhooks way too (<https://www.standardwebhooks.com>),
//! so its libraries and Svix's verifiers accept it as it is: `webhook-id` (the event id, the
//! same on every retry), `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64
//! HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the secret's base64 part (after
//! `whsec_`), one `v1,…` per valid secret, separated by spaces.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "companin-signature";
/// Standard Webhooks: the message id (the event id).
pub const STANDARD_ID: &str = "webhook-id";
/// Standard Webhooks: when the delivery was signed, in unix seconds.
pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks: `v1,<base64>` per secret.
pub const STANDARD_SIGNATURE: &str = "webhook-signature";
/// The prefix of a signing secret; what follows is the base64 of the key.
pub const SECRET_PREFIX: &str = "whsec_";

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The header value: the timestamp, then one `v1` per secret.
pub fn header_value<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret, timestamp, body));
    }
    value
}

/// The `webhook-signature` value: one `v1,<base64>` per secret, separated by spaces.
pub fn standard_header_value<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|secret| format!("v1,{}", standard_sign(secret, id, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`, keyed with the secret's decoded part.
fn standard_sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&standard_key(secret))
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The key a Standard Webhooks verifier derives from `secret`: the base64 after `whsec_`.
/// Every secret Companin issues decodes (older ones are 40 base64-alphabet characters); a
/// secret that would not is used as its bytes, as no verifier could check it anyway.
fn standard_key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

/// A new signing secret in the Standard Webhooks form: `whsec_` and the base64 of 32 random
/// bytes.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_signature_matches_the_specifications_example() {
        // The example of the Standard Webhooks specification (and its reference libraries).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            standard_header_value(
                [secret],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let both = standard_header_value([secret, secret], "msg_1", 1, body);
        assert_eq!(both.split(' ').count(), 2);
        assert!(both.split(' ').all(|s| s.starts_with("v1,")));
    }

    #[test]
    fn new_secrets_are_whsec_and_32_bytes_of_base64() {
        let secret = new_secret();
        let key = STANDARD
            .decode(secret.strip_prefix(SECRET_PREFIX).expect("prefixed"))
            .expect("base64");
        assert_eq!(key.len(), 32);
        assert_ne!(secret, new_secret());
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Reference computed with Python's hmac module.
        let body = br#"{"id":"evt_1"}"#;
        assert_eq!(
            sign("whsec_test", 1_700_000_000, body),
            "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
        let header = header_value(["whsec_test", "whsec_old"], 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1=c89214b5"));
        assert_eq!(header.matches(",v1=").count(), 2);
    }
}
