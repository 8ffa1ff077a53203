//! API key material: generation, hashing and constant-time checks.
//!
//! Keys and secrets are 40 random base62 characters (≈238 bits), so one SHA-256 is a sound
//! hash at rest: there is nothing to brute-force that a slow hash would protect.

use rand::{Rng, distr::Alphanumeric};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of keys of live organizations.
pub const LIVE_PREFIX: &str = "cmp_live_";
/// Prefix of keys of sandbox organizations.
pub const TEST_PREFIX: &str = "cmp_test_";
/// Prefix of key secrets.
pub const SECRET_PREFIX: &str = "cmp_secret_";
const RANDOM_LEN: usize = 40;
/// How many characters of a key are kept in clear to recognise it.
const DISPLAY_LEN: usize = 16;

/// Freshly generated plaintext credentials, shown once.
#[derive(Debug, Clone)]
pub struct NewKeyMaterial {
    /// The key (`cmp_live_…` or `cmp_test_…`).
    pub key: String,
    /// The secret, when issued as a pair.
    pub secret: Option<String>,
}

impl NewKeyMaterial {
    /// Generates a key (and a secret when asked) for a live or sandbox organization.
    pub fn generate(sandbox: bool, with_secret: bool) -> Self {
        let prefix = if sandbox { TEST_PREFIX } else { LIVE_PREFIX };
        Self {
            key: format!("{prefix}{}", random_part()),
            secret: with_secret.then(|| format!("{SECRET_PREFIX}{}", random_part())),
        }
    }

    /// The part of the key kept in clear.
    pub fn display_prefix(&self) -> String {
        self.key.chars().take(DISPLAY_LEN).collect()
    }
}

/// Prefix of OAuth client ids.
pub const CLIENT_ID_PREFIX: &str = "cmp_client_";
/// Prefix of OAuth client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "cmp_cs_";

/// A new OAuth client id and secret.
pub fn client_credentials() -> (String, String) {
    (
        format!("{CLIENT_ID_PREFIX}{}", &random_part()[..24]),
        format!("{CLIENT_SECRET_PREFIX}{}", random_part()),
    )
}

fn random_part() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect()
}

/// Whether `raw` has the shape of a key; anything else is refused before a lookup.
pub fn is_well_formed_key(raw: &str) -> bool {
    well_formed(raw, LIVE_PREFIX) || well_formed(raw, TEST_PREFIX)
}

fn well_formed(raw: &str, prefix: &str) -> bool {
    raw.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Hex SHA-256 of a key or secret: the only form stored.
pub fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Compares a presented credential with a stored hash in constant time.
pub fn matches(plaintext: &str, stored_hash: &str) -> bool {
    hash(plaintext)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_keys_and_live_keys_are_told_apart_by_prefix() {
        let live = NewKeyMaterial::generate(false, false);
        let test = NewKeyMaterial::generate(true, true);
        assert!(live.key.starts_with("cmp_live_") && live.secret.is_none());
        assert!(test.key.starts_with("cmp_test_"));
        assert!(
            test.secret
                .as_deref()
                .is_some_and(|s| s.starts_with("cmp_secret_"))
        );
        assert!(is_well_formed_key(&live.key) && is_well_formed_key(&test.key));
    }

    #[test]
    fn only_the_matching_plaintext_matches_a_hash() {
        let material = NewKeyMaterial::generate(false, false);
        let stored = hash(&material.key);
        assert!(matches(&material.key, &stored));
        assert!(!matches(&format!("{}x", material.key), &stored));
    }

    #[test]
    fn malformed_keys_are_recognised_without_a_lookup() {
        for raw in [
            "",
            "cmp_live_",
            "sk_live_abc",
            "cmp_live_short",
            "cmp_live_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(!is_well_formed_key(raw), "{raw}");
        }
    }
}
