//! JWT signing keys: configured, or generated once and kept in the data dir.
//!
//! The key set is a list of `(kid, secret)` with one current key; older keys stay listed so
//! tokens they signed verify until they expire (rotation).

use std::{fs, path::Path};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};

use crate::config::Settings;

const FILE_NAME: &str = "jwt-keys.json";

/// One HMAC signing key.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// Key id, written in the token header.
    pub kid: String,
    secret: SecretSlice<u8>,
}

impl SigningKey {
    /// The secret bytes.
    pub fn secret(&self) -> &[u8] {
        self.secret.expose_secret()
    }
}

/// The key set in force.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    current: SigningKey,
    previous: Vec<SigningKey>,
    /// Where the keys came from, for the start-up log.
    pub source: &'static str,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    current: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    secret: String,
}

impl SigningKeys {
    /// The configured key, or the key file in the data dir (created on first use).
    pub fn load_or_generate(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(secret) = &settings.auth.jwt_secret {
            let bytes = secret.expose_secret().as_bytes().to_vec();
            anyhow::ensure!(
                bytes.len() >= 32,
                "COMPANIN_JWT_SECRET must be at least 32 bytes"
            );
            return Ok(Self {
                current: SigningKey {
                    kid: settings.auth.jwt_kid.clone(),
                    secret: bytes.into(),
                },
                previous: Vec::new(),
                source: "configuration",
            });
        }
        let path = settings.data_dir.join(FILE_NAME);
        if !path.exists() {
            write_new_file(&path)?;
        }
        Self::read_file(&path)
    }

    fn read_file(path: &Path) -> anyhow::Result<Self> {
        let raw =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: KeyFile =
            serde_json::from_str(&raw).with_context(|| format!("parsing {}", path.display()))?;
        let mut keys = file
            .keys
            .into_iter()
            .map(|k| {
                let secret = STANDARD
                    .decode(&k.secret)
                    .with_context(|| format!("key {} in {}", k.kid, path.display()))?;
                Ok(SigningKey {
                    kid: k.kid,
                    secret: secret.into(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let at = keys
            .iter()
            .position(|k| k.kid == file.current)
            .with_context(|| {
                format!(
                    "{}: current key `{}` is not listed",
                    path.display(),
                    file.current
                )
            })?;
        let current = keys.remove(at);
        Ok(Self {
            current,
            previous: keys,
            source: "data dir",
        })
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// The key with id `kid`, current or previous.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)
    }

    /// How many keys verify tokens.
    pub fn len(&self) -> usize {
        1 + self.previous.len()
    }

    /// Never true: there is always a current key.
    pub fn is_empty(&self) -> bool {
        false
    }
}

fn write_new_file(path: &Path) -> anyhow::Result<()> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let kid = format!("k{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let file = KeyFile {
        current: kid.clone(),
        keys: vec![StoredKey {
            kid,
            secret: STANDARD.encode(secret),
        }],
    };
    let json = serde_json::to_string_pretty(&file)?;
    write_private(path, json.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthSettings;

    #[test]
    fn a_generated_key_is_stored_once_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            data_dir: dir.path().to_path_buf(),
            ..Settings::default()
        };
        let first = SigningKeys::load_or_generate(&settings).expect("generated");
        let second = SigningKeys::load_or_generate(&settings).expect("read back");
        assert_eq!(first.current().kid, second.current().kid);
        assert_eq!(first.current().secret(), second.current().secret());
        assert_eq!(first.current().secret().len(), 32);
        assert!(second.find(&first.current().kid).is_some());
    }

    #[test]
    fn a_configured_secret_must_be_long_enough() {
        let settings = Settings {
            auth: AuthSettings {
                jwt_secret: Some("short".into()),
                ..Settings::default().auth
            },
            ..Settings::default()
        };
        assert!(SigningKeys::load_or_generate(&settings).is_err());
    }
}
