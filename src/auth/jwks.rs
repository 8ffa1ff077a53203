//! An external issuer's JSON Web Key Set, from a file or a URL, kept fresh: a URL is fetched
//! again every `jwks_refresh_seconds` (a minute after a failed fetch, keeping the keys it
//! had), and either source is read again when a token names a key the set lacks (the issuer
//! rotated), at most once a minute. One reload runs at a time; requests that find one
//! running wait for it instead of fetching too.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::{Mutex, RwLock};

use crate::config::ExternalJwtSettings;

/// Shortest time between two reloads forced by unknown keys, and the wait after a failed
/// fetch.
const RETRY_EVERY: Duration = Duration::from_secs(60);
/// Timeout of a key-set fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Url(url) => f.write_str(url),
        }
    }
}

/// The keys an issuer signs with.
#[derive(Debug)]
pub struct KeySet {
    source: Source,
    refresh_every: Duration,
    /// The keys, and when a URL is due to be fetched again.
    loaded: RwLock<(JwkSet, Instant)>,
    /// Held while reloading; the last forced reload.
    reloading: Mutex<Option<Instant>>,
}

impl KeySet {
    /// Reads the configured file (which must hold a valid key set) or fetches the URL (a
    /// failure is logged and retried when a token arrives, so an identity provider's outage
    /// does not stop the server).
    pub async fn load(settings: &ExternalJwtSettings) -> anyhow::Result<Self> {
        let source = match (&settings.jwks_file, &settings.jwks_url) {
            (Some(file), None) => Source::File(file.clone()),
            (None, Some(url)) => Source::Url(url.clone()),
            _ => anyhow::bail!(
                "external_jwt: set exactly one of jwks_file and jwks_url (COMPANIN_EXTERNAL_JWT__JWKS_FILE / __JWKS_URL)"
            ),
        };
        let refresh_every = Duration::from_secs(settings.jwks_refresh_seconds.max(1));
        if let Source::Url(url) = &source
            && !url.starts_with("https://")
        {
            tracing::warn!(
                url,
                "the external issuer's keys are fetched without TLS: use https outside development"
            );
        }
        let (keys, next) = match fetch(&source).await {
            Ok(keys) => (keys, Instant::now() + refresh_every),
            Err(e) if matches!(source, Source::Url(_)) => {
                tracing::warn!(source = %source, error = format!("{e:#}"), "could not fetch the external issuer's keys; will retry when a token arrives");
                (JwkSet { keys: Vec::new() }, Instant::now())
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            source,
            refresh_every,
            loaded: RwLock::new((keys, next)),
            reloading: Mutex::new(None),
        })
    }

    /// How many keys are loaded.
    pub async fn len(&self) -> usize {
        self.loaded.read().await.0.keys.len()
    }

    /// Whether no key is loaded.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// The key named `kid` (or the only key, for a token without `kid`), reloading the set
    /// when it is due or lacks the key.
    pub async fn find(&self, kid: Option<&str>) -> Option<Jwk> {
        let due =
            matches!(self.source, Source::Url(_)) && Instant::now() >= self.loaded.read().await.1;
        if due {
            self.reload(false).await;
        }
        if let Some(key) = self.lookup(kid).await {
            return Some(key);
        }
        self.reload(true).await;
        self.lookup(kid).await
    }

    async fn lookup(&self, kid: Option<&str>) -> Option<Jwk> {
        let loaded = self.loaded.read().await;
        match kid {
            Some(kid) => loaded.0.find(kid).cloned(),
            None if loaded.0.keys.len() == 1 => loaded.0.keys.first().cloned(),
            None => None,
        }
    }

    /// Reads the source again: when due (`forced` false), or for an unknown key (`forced`,
    /// at most once a minute). A caller that waited for another's reload does not repeat it.
    async fn reload(&self, forced: bool) {
        let started = Instant::now();
        let mut last_forced = self.reloading.lock().await;
        if forced {
            if last_forced.is_some_and(|at| at.elapsed() < RETRY_EVERY) {
                return;
            }
            *last_forced = Some(Instant::now());
        } else if self.loaded.read().await.1 > started {
            return;
        }
        match fetch(&self.source).await {
            Ok(keys) => {
                tracing::info!(source = %self.source, keys = keys.keys.len(), "external issuer's keys reloaded");
                *self.loaded.write().await = (keys, Instant::now() + self.refresh_every);
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = format!("{e:#}"), "could not reload the external issuer's keys; keeping the previous ones");
                self.loaded.write().await.1 = Instant::now() + RETRY_EVERY;
            }
        }
    }
}

async fn fetch(source: &Source) -> anyhow::Result<JwkSet> {
    let raw = match source {
        Source::File(path) => tokio::fs::read_to_string(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?,
        Source::Url(url) => {
            crate::tls::client_builder()
                .timeout(FETCH_TIMEOUT)
                .build()?
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("fetching {url}"))?
                .text()
                .await?
        }
    };
    serde_json::from_str(&raw).with_context(|| format!("{source} is not a JSON Web Key Set"))
}
