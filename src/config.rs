//! Typed settings, loaded once: defaults → optional `companin.toml` → environment.
//!
//! Environment variables are `COMPANIN_<FIELD>` (for example `COMPANIN_DATA_DIR`), plus the
//! conventional `DATABASE_URL`, `REDIS_URL`, `OPENAI_API_KEY` and `OPENAI_BASE_URL`. Secrets are [`SecretString`]s: their `Debug` output is
//! redacted, and [`Settings::summary`] masks passwords inside URLs.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Everything the server and the CLI can be configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Root of the embedded stores (SQLite file, vector store, uploads, generated keys).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a SQLite file in the data dir when unset.
    pub database_url: Option<SecretString>,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// Address the HTTP server listens on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Default per-organization request budget per hour.
    pub rate_limit_per_hour: u32,
    /// Whether requests are counted against the budgets (off only behind a gateway that
    /// limits, or to measure the limiter's cost).
    pub rate_limit_enabled: bool,
    /// Whether every authenticated request is written to the request log (analytics read it).
    pub request_log_enabled: bool,
    /// HMAC signing secret for JWTs; generated and stored in the data dir when unset.
    pub jwt_secret: Option<SecretString>,
    /// Key id (`kid`) of `jwt_secret`.
    pub jwt_kid: String,
    /// Deepest GraphQL selection accepted.
    pub graphql_max_depth: usize,
    /// Largest GraphQL query complexity accepted.
    pub graphql_max_complexity: usize,
    /// Whether GraphQL introspection is answered.
    pub graphql_introspection: bool,
    /// Whether a GraphQL HTTP request may carry a batch (a JSON array of operations).
    pub graphql_batching: bool,
    /// Largest JSON or GraphQL request body, in bytes.
    pub max_request_bytes: usize,
    /// `pretty` (default) or `json` log lines.
    pub log_format: LogFormat,
    /// LanceDB location: a directory or object-store URI; `<data_dir>/lancedb` when unset.
    pub lancedb_uri: Option<String>,
    /// Largest uploaded file, in bytes.
    pub max_upload_bytes: usize,
    /// Concurrent ingestion jobs in this process; 0 makes an API-only replica.
    pub ingest_workers: usize,
    /// How long a worker's claim on a job lasts without renewal; a crashed worker's job is
    /// taken over after it.
    pub ingest_lease_seconds: u64,
    /// Attempts before a job gives up on a transient error.
    pub ingest_max_attempts: i32,
    /// Chunk size to aim for, in characters.
    pub chunk_target_chars: usize,
    /// Characters a prose chunk repeats from the previous one.
    pub chunk_overlap_chars: usize,
    /// Allow URL sources on private, loopback and link-local addresses.
    pub allow_private_urls: bool,
    /// Timeout of one URL fetch.
    pub url_fetch_timeout_seconds: u64,
    /// Largest page fetched, in bytes.
    pub url_max_bytes: usize,
    /// Refresh interval of URL sources that do not set one.
    pub url_refresh_minutes: i32,
    /// Seconds between scans for URL sources due for a refresh.
    pub scheduler_interval_seconds: u64,
    /// Rows a vector table needs before it gets an approximate index.
    pub vector_index_threshold: usize,
    /// Minutes between vector store maintenance passes (compaction, index updates).
    pub vector_optimize_minutes: u64,
    /// Where the local model files live (`scripts/fetch-models.sh` puts them there).
    pub models_dir: PathBuf,
    /// Which embedder turns text into vectors.
    pub embedder: EmbedderChoice,
    /// Which chat model answers.
    pub llm: LlmChoice,
    /// API key of the OpenAI-compatible provider (`OPENAI_API_KEY`).
    pub openai_api_key: Option<SecretString>,
    /// Base URL of the OpenAI-compatible provider (`OPENAI_BASE_URL`), for example
    /// `http://localhost:11434/v1` for Ollama; OpenAI's when unset.
    pub openai_base_url: Option<String>,
    /// Chat model name at the provider.
    pub openai_chat_model: String,
    /// Embedding model name at the provider.
    pub openai_embedding_model: String,
    /// Length of the provider's embedding vectors; known for OpenAI's models, asked of the
    /// provider once at start-up otherwise.
    pub openai_embedding_dimensions: Option<usize>,
    /// Whether the provider's chat model accepts images (used to describe uploaded images).
    pub openai_vision: bool,
    /// Timeout of one request to the provider, streaming included.
    pub openai_timeout_seconds: u64,
    /// Retries of a request the provider answered with 429 or 5xx, with exponential backoff.
    pub openai_max_retries: usize,
    /// Lifetime of a session that does not set `ttl_seconds`.
    pub session_ttl_seconds: u64,
    /// Longest visitor message, in characters.
    pub max_message_chars: usize,
    /// Largest traits object of a context or metadata object of a session, in bytes of JSON.
    pub max_traits_bytes: usize,
    /// Tokens of earlier messages given to the chat model with each new one (newest first).
    pub history_tokens: usize,
    /// Milliseconds between writes of a streaming reply's text to the database.
    pub reply_flush_ms: u64,
    /// Seconds without a write after which a streaming reply counts as abandoned (its server
    /// stopped) and is marked failed.
    pub reply_abandoned_seconds: u64,
    /// Seconds a websocket may stay open without `connection_init` (closed with 4408).
    pub ws_init_timeout_seconds: u64,
    /// Redis (`REDIS_URL`, `redis://host:6379/0`): rate limits shared by every replica.
    /// Counted in this process when unset.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// The URL browsers reach this server at (`https://chat.example.com`), for the links and
    /// the widget origin the sandbox prints; `http://127.0.0.1:<port>` when unset.
    pub public_url: Option<String>,
    /// Lifetime of a widget token, in seconds.
    pub widget_token_ttl_seconds: u64,
    /// On SIGTERM/SIGINT: seconds to let in-flight requests and streams finish before the
    /// remaining connections are closed.
    pub shutdown_grace_seconds: u64,
    /// Share of a window's budget (0–1) at which `rate_limit.approaching` is sent.
    pub rate_limit_alert_share: f64,
    /// Concurrent webhook deliveries in this process; 0 sends none (an API-only replica).
    pub webhook_workers: usize,
    /// Timeout of one webhook request.
    pub webhook_timeout_seconds: u64,
    /// Wait before the first retry of a failed delivery; doubled after each failure.
    pub webhook_retry_base_ms: u64,
    /// Longest wait between two attempts.
    pub webhook_retry_max_ms: u64,
    /// Seconds after an event (or a re-send) during which a failing delivery is retried
    /// (a day by default); after that it is marked failed.
    pub webhook_retry_window_seconds: u32,
    /// Days webhook events, deliveries and attempts are kept.
    pub webhook_retention_days: u32,
    /// Bearer JWTs from the customer's own identity provider (unset: not accepted).
    pub external_jwt: Option<ExternalJwtSettings>,
}

/// Accepting the customer's own JWTs (`COMPANIN_EXTERNAL_JWT__ISSUER`, …): verified against
/// the issuer's JSON Web Key Set, with one claim naming the organization and one the visitor.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExternalJwtSettings {
    /// Expected `iss`; tokens from other issuers are left to the other authenticators.
    pub issuer: String,
    /// Expected `aud` (any of them); required, so that tokens meant for another service are
    /// refused. One value, or a list (`["a", "b"]`).
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// The key set as a file (read at start-up, and again when a token names an unknown key).
    pub jwks_file: Option<PathBuf>,
    /// The key set at a URL (fetched at start-up, every `jwks_refresh_seconds`, and when a
    /// token names an unknown key, at most once a minute).
    pub jwks_url: Option<String>,
    /// Seconds between fetches of `jwks_url`.
    pub jwks_refresh_seconds: u64,
    /// The claim holding the Companin organization id (`org_…`).
    pub org_claim: String,
    /// The claim identifying the visitor (the customer's user id).
    pub visitor_claim: String,
    /// The claim naming the one assistant the visitor may use (`asst_…`); absent from a
    /// token, any of the organization's assistants.
    pub assistant_claim: String,
    /// The only organization this issuer may name; unset, any organization (the issuer is
    /// trusted by the deployment).
    pub organization: Option<String>,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl Default for ExternalJwtSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: Vec::new(),
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_seconds: 3600,
            org_claim: "org".into(),
            visitor_claim: "sub".into(),
            assistant_claim: "assistant".into(),
            organization: None,
            leeway_seconds: 30,
        }
    }
}

/// Which embedder is used (`COMPANIN_EMBEDDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderChoice {
    /// The local model when its files are present, the hash embedder otherwise.
    Auto,
    /// all-MiniLM-L6-v2 through candle; start-up fails without its files.
    Local,
    /// The OpenAI-compatible provider's embeddings endpoint.
    Openai,
    /// The dependency-free hash embedder (lexical, no semantics).
    Hash,
}

/// Which chat model answers (`COMPANIN_LLM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmChoice {
    /// The OpenAI-compatible provider when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set, else
    /// the local model when its file is present, else extractive answers.
    Auto,
    /// SmolLM2-135M-Instruct through candle; start-up fails without its file.
    Local,
    /// The OpenAI-compatible provider's chat endpoint.
    Openai,
    /// Answers quoted from the best matching Q&A or passages, with citations; no model.
    Extractive,
}

/// Shape of the log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 16,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_limit_per_hour: 1000,
            rate_limit_enabled: true,
            request_log_enabled: true,
            jwt_secret: None,
            jwt_kid: "k1".into(),
            graphql_max_depth: 16,
            graphql_max_complexity: 2000,
            graphql_introspection: true,
            graphql_batching: false,
            max_request_bytes: 1024 * 1024,
            log_format: LogFormat::Pretty,
            lancedb_uri: None,
            max_upload_bytes: 25 * 1024 * 1024,
            ingest_workers: 2,
            ingest_lease_seconds: 60,
            ingest_max_attempts: 5,
            chunk_target_chars: 1000,
            chunk_overlap_chars: 150,
            allow_private_urls: false,
            url_fetch_timeout_seconds: 15,
            url_max_bytes: 10 * 1024 * 1024,
            url_refresh_minutes: 1440,
            scheduler_interval_seconds: 15,
            vector_index_threshold: 50_000,
            vector_optimize_minutes: 10,
            models_dir: PathBuf::from("./models"),
            embedder: EmbedderChoice::Auto,
            llm: LlmChoice::Auto,
            openai_api_key: None,
            openai_base_url: None,
            openai_chat_model: "gpt-4o-mini".into(),
            openai_embedding_model: "text-embedding-3-small".into(),
            openai_embedding_dimensions: None,
            openai_vision: false,
            openai_timeout_seconds: 60,
            openai_max_retries: 3,
            session_ttl_seconds: 24 * 60 * 60,
            max_message_chars: 8_000,
            max_traits_bytes: 16 * 1024,
            history_tokens: 1_500,
            reply_flush_ms: 200,
            reply_abandoned_seconds: 120,
            ws_init_timeout_seconds: 10,
            redis_url: None,
            redis_prefix: "companin:".into(),
            shutdown_grace_seconds: 30,
            widget_token_ttl_seconds: 600,
            public_url: None,
            rate_limit_alert_share: 0.8,
            webhook_workers: 2,
            webhook_timeout_seconds: 10,
            webhook_retry_base_ms: 30_000,
            webhook_retry_max_ms: 3_600_000,
            webhook_retry_window_seconds: 86_400,
            webhook_retention_days: 30,
            external_jwt: None,
        }
    }
}

impl Settings {
    /// Loads the layers: defaults, then the TOML file (`path`, or `./companin.toml` when it
    /// exists), then the environment.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = path.map_or_else(|| PathBuf::from("companin.toml"), Path::to_path_buf);
        if path.is_some() && !file.exists() {
            anyhow::bail!("configuration file {} does not exist", file.display());
        }
        Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("COMPANIN_").ignore(&["config"]).split("__"))
            .merge(Env::raw().only(&[
                "DATABASE_URL",
                "REDIS_URL",
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
            ]))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("companin.db").display()
            ),
        }
    }

    /// The LanceDB URI in force.
    pub fn lancedb_uri(&self) -> String {
        self.lancedb_uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lancedb").display().to_string())
    }

    /// One line describing what this process uses, with secrets masked.
    pub fn summary(&self) -> String {
        format!(
            "data_dir={} database={} lancedb={} redis={} bind={} rate_limit_per_hour={} graphql(depth={} complexity={} introspection={} batching={}) max_request_bytes={} max_upload_bytes={} ingest_workers={} allow_private_urls={} models_dir={} jwt_secret={}",
            self.data_dir.display(),
            redact_url(&self.database_url()),
            redact_url(&self.lancedb_uri()),
            self.redis_url
                .as_ref()
                .map_or_else(|| "none".to_owned(), |u| redact_url(u.expose_secret())),
            self.bind,
            self.rate_limit_per_hour,
            self.graphql_max_depth,
            self.graphql_max_complexity,
            self.graphql_introspection,
            self.graphql_batching,
            self.max_request_bytes,
            self.max_upload_bytes,
            self.ingest_workers,
            self.allow_private_urls,
            self.models_dir.display(),
            if self.jwt_secret.is_some() {
                "configured"
            } else {
                "data dir"
            },
        )
    }
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Masks the password of a URL such as `postgres://user:pw@host/db`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // A URL with a password always has a host, so this cannot fail.
            let _ = url.set_password(Some("REDACTED"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_never_reaches_the_summary() {
        let settings = Settings {
            database_url: Some(SecretString::from(
                "postgres://app:hunter2@db:5432/companin",
            )),
            ..Settings::default()
        };
        let summary = settings.summary();
        assert!(!summary.contains("hunter2"), "{summary}");
        assert!(summary.contains("postgres://app:REDACTED@db:5432/companin"));
    }

    #[test]
    fn the_default_database_is_a_sqlite_file_in_the_data_dir() {
        let settings = Settings::default();
        assert_eq!(
            settings.database_url(),
            "sqlite://./data/companin.db?mode=rwc"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let settings = Settings {
            jwt_secret: Some(SecretString::from("topsecret")),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("topsecret"));
    }
}
