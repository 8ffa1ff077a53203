//! The settings of each component, each read from the same flat keys as the others (see
//! [`super::Settings::from_figment`]), so file keys and environment variables stay flat.

use std::{net::SocketAddr, path::PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::{EmbedderChoice, ExternalJwtSettings, LlmChoice};

/// The relational store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; a SQLite file in the data dir when unset.
    pub database_url: Option<SecretString>,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            database_max_connections: 16,
        }
    }
}

/// The HTTP server and the GraphQL limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Address the HTTP server listens on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Largest JSON or GraphQL request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest uploaded file, in bytes.
    pub max_upload_bytes: usize,
    /// The URL browsers reach this server at (`https://chat.example.com`), for the links and
    /// the widget origin the sandbox prints; `http://127.0.0.1:<port>` when unset.
    pub public_url: Option<String>,
    /// On SIGTERM/SIGINT: seconds to let in-flight requests and streams finish before the
    /// remaining connections are closed.
    pub shutdown_grace_seconds: u64,
    /// Seconds a websocket may stay open without `connection_init` (closed with 4408).
    pub ws_init_timeout_seconds: u64,
    /// Deepest GraphQL selection accepted.
    pub graphql_max_depth: usize,
    /// Largest GraphQL query complexity accepted.
    pub graphql_max_complexity: usize,
    /// Whether GraphQL introspection is answered.
    pub graphql_introspection: bool,
    /// Whether a GraphQL HTTP request may carry a batch (a JSON array of operations).
    pub graphql_batching: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_request_bytes: 1024 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
            public_url: None,
            shutdown_grace_seconds: 30,
            ws_init_timeout_seconds: 10,
            graphql_max_depth: 16,
            graphql_max_complexity: 2000,
            graphql_introspection: true,
            graphql_batching: false,
        }
    }
}

/// Ingestion: workers, chunking, URL fetching.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestionSettings {
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
    /// The program that extracts a file's text in a child process (`<program> extract`);
    /// this server's own executable when unset.
    pub extract_program: Option<PathBuf>,
    /// Longest one extraction may run (wall clock and CPU), in seconds.
    pub extract_timeout_seconds: u64,
    /// Memory one extraction may use (its address space), in MiB.
    pub extract_memory_mib: u64,
    /// Most characters of text one source may give; a larger one fails `FILE_TOO_COMPLEX`.
    pub max_extracted_chars: usize,
    /// Most chunks one source may give; a larger one fails `FILE_TOO_COMPLEX`.
    pub max_chunks_per_source: usize,
    /// Where uploaded files are kept until their source is deleted: `file:///path`, or an
    /// object store every replica reads (`s3://bucket/prefix`); `<data_dir>/uploads` when
    /// unset.
    pub blob_uri: Option<String>,
}

impl Default for IngestionSettings {
    fn default() -> Self {
        Self {
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
            extract_program: None,
            extract_timeout_seconds: 60,
            extract_memory_mib: 1024,
            max_extracted_chars: 5_000_000,
            max_chunks_per_source: 10_000,
            blob_uri: None,
        }
    }
}

/// The vector store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VectorSettings {
    /// LanceDB location: a directory or object-store URI; `<data_dir>/lancedb` when unset.
    pub lancedb_uri: Option<String>,
    /// Rows a vector table needs before it gets an approximate index.
    pub vector_index_threshold: usize,
    /// Minutes between vector store maintenance passes (compaction, index updates).
    pub vector_optimize_minutes: u64,
}

impl Default for VectorSettings {
    fn default() -> Self {
        Self {
            lancedb_uri: None,
            vector_index_threshold: 50_000,
            vector_optimize_minutes: 10,
        }
    }
}

/// The embedder and the chat model, local or at an OpenAI-compatible provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
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
    /// The provider's model for search queries, when the provider serves an asymmetric
    /// model's query side under a name of its own; the embedding model otherwise.
    pub openai_embedding_query_model: Option<String>,
    /// Text put before every search query sent to the provider (`query: ` for an E5 model
    /// served as it is).
    pub openai_embedding_query_prefix: String,
    /// Text put before every passage sent to the provider (`passage: ` for E5). Passages
    /// embedded with another prefix stay in the store until `reembedKnowledge`.
    pub openai_embedding_passage_prefix: String,
    /// Whether the provider's chat model accepts images (used to describe uploaded images).
    pub openai_vision: bool,
    /// Timeout of one request to the provider, streaming included.
    pub openai_timeout_seconds: u64,
    /// Retries of a request the provider answered with 429 or 5xx, with exponential backoff.
    pub openai_max_retries: usize,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("./models"),
            embedder: EmbedderChoice::Auto,
            llm: LlmChoice::Auto,
            openai_api_key: None,
            openai_base_url: None,
            openai_chat_model: "gpt-4o-mini".into(),
            openai_embedding_model: "text-embedding-3-small".into(),
            openai_embedding_dimensions: None,
            openai_embedding_query_model: None,
            openai_embedding_query_prefix: String::new(),
            openai_embedding_passage_prefix: String::new(),
            openai_vision: false,
            openai_timeout_seconds: 60,
            openai_max_retries: 3,
        }
    }
}

/// Sessions, messages and the replies generated for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ReplySettings {
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
    /// Replies one organization may have generating at once in this process; a message
    /// beyond them is refused `RATE_LIMITED`, so one tenant cannot fill the model's queue.
    pub max_concurrent_replies: usize,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            session_ttl_seconds: 24 * 60 * 60,
            max_message_chars: 8_000,
            max_traits_bytes: 16 * 1024,
            history_tokens: 1_500,
            reply_flush_ms: 200,
            reply_abandoned_seconds: 120,
            max_concurrent_replies: 16,
        }
    }
}

/// Webhook delivery: dispatchers, retries, retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
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
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            webhook_workers: 2,
            webhook_timeout_seconds: 10,
            webhook_retry_base_ms: 30_000,
            webhook_retry_max_ms: 3_600_000,
            webhook_retry_window_seconds: 86_400,
            webhook_retention_days: 30,
        }
    }
}

/// Per-organization request budgets, their webhook alerts, and the request log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Default per-organization request budget per hour.
    pub rate_limit_per_hour: u32,
    /// Most requests per hour an organization's admin may give itself (the operator's command
    /// line may go above); the default budget when unset.
    pub rate_limit_max_per_hour: Option<u32>,
    /// Whether requests are counted against the budgets (off only behind a gateway that
    /// limits, or to measure the limiter's cost).
    pub rate_limit_enabled: bool,
    /// Share of a window's budget (0–1) at which `rate_limit.approaching` is sent.
    pub rate_limit_alert_share: f64,
    /// Whether every authenticated request is written to the request log (analytics read it).
    pub request_log_enabled: bool,
}

impl RateLimitSettings {
    /// Most requests per hour an organization's admin may give itself.
    pub fn ceiling_per_hour(&self) -> u32 {
        self.rate_limit_max_per_hour
            .unwrap_or(self.rate_limit_per_hour)
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            rate_limit_per_hour: 1000,
            rate_limit_max_per_hour: None,
            rate_limit_enabled: true,
            rate_limit_alert_share: 0.8,
            request_log_enabled: true,
        }
    }
}

/// Redis, shared by every replica.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Redis (`REDIS_URL`: `redis://host:6379/0`, or `rediss://` for TLS): rate limits and
    /// reply events shared by every replica. Counted and carried in this process when unset.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub redis_prefix: String,
    /// A PEM file of the CA that signed the `rediss://` server's certificate, trusted instead
    /// of the system's roots (a private CA).
    pub redis_ca_file: Option<std::path::PathBuf>,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_prefix: "companin:".into(),
            redis_ca_file: None,
        }
    }
}

/// Signing keys, widget tokens and external issuers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// HMAC signing secret for JWTs; generated and stored in the data dir when unset.
    pub jwt_secret: Option<SecretString>,
    /// Key id (`kid`) of `jwt_secret`.
    pub jwt_kid: String,
    /// Lifetime of a widget token, in seconds.
    pub widget_token_ttl_seconds: u64,
    /// Bearer JWTs from the customer's own identity provider (unset: not accepted).
    pub external_jwt: Option<ExternalJwtSettings>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_kid: "k1".into(),
            widget_token_ttl_seconds: 600,
            external_jwt: None,
        }
    }
}
