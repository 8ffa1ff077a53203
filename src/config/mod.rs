//! Typed settings, loaded once: defaults → optional `companin.toml` → environment.
//!
//! Environment variables are `COMPANIN_<FIELD>` (for example `COMPANIN_DATA_DIR`), plus the
//! conventional `DATABASE_URL`, `REDIS_URL`, `OPENAI_API_KEY` and `OPENAI_BASE_URL`. Secrets are [`SecretString`]s: their `Debug` output is
//! redacted, and [`Settings::summary`] masks passwords inside URLs.

use std::path::{Path, PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::ExposeSecret;
use serde::Deserialize;

mod parts;

pub use parts::{
    AuthSettings, DatabaseSettings, HttpSettings, IngestionSettings, ModelSettings,
    RateLimitSettings, RedisSettings, ReplySettings, VectorSettings, WebhookSettings,
};

/// Everything the server and the CLI can be configured with, one part per component. File
/// keys and environment variables stay flat (`COMPANIN_INGEST_WORKERS`): each part is read
/// from the same flat layers ([`Settings::from_figment`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Root of the embedded stores (SQLite file, vector store, uploads, generated keys).
    pub data_dir: PathBuf,
    /// `pretty` (default) or `json` log lines.
    pub log_format: LogFormat,
    /// The proxy every outbound request goes through (URL fetches, webhooks, providers, key
    /// sets); none when unset, whatever `HTTP_PROXY` and the like say.
    pub egress_proxy: Option<String>,
    /// The relational store.
    pub database: DatabaseSettings,
    /// The HTTP server and the GraphQL limits.
    pub http: HttpSettings,
    /// Ingestion: workers, chunking, URL fetching.
    pub ingestion: IngestionSettings,
    /// The vector store.
    pub vectors: VectorSettings,
    /// The embedder and the chat model, local or at an OpenAI-compatible provider.
    pub models: ModelSettings,
    /// Sessions, messages and the replies generated for them.
    pub replies: ReplySettings,
    /// Webhook delivery: dispatchers, retries, retention.
    pub webhooks: WebhookSettings,
    /// Per-organization request budgets, their webhook alerts, and the request log.
    pub rate_limits: RateLimitSettings,
    /// Redis, shared by every replica.
    pub redis: RedisSettings,
    /// Signing keys, widget tokens and external issuers.
    pub auth: AuthSettings,
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
    /// The only organization this issuer may name. Unset, the issuer may name any
    /// organization, which must be said with `multi_tenant`.
    pub organization: Option<String>,
    /// The operator trusts the issuer to name any organization (a deployment's own identity
    /// provider); without it, `organization` is required.
    pub multi_tenant: bool,
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
            multi_tenant: false,
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
    /// all-MiniLM-L6-v2 through candle (English); start-up fails without its files.
    Local,
    /// multilingual-e5-small through candle (about a hundred languages); start-up fails
    /// without its file.
    E5,
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
            log_format: LogFormat::Pretty,
            egress_proxy: None,
            database: DatabaseSettings::default(),
            http: HttpSettings::default(),
            ingestion: IngestionSettings::default(),
            vectors: VectorSettings::default(),
            models: ModelSettings::default(),
            replies: ReplySettings::default(),
            webhooks: WebhookSettings::default(),
            rate_limits: RateLimitSettings::default(),
            redis: RedisSettings::default(),
            auth: AuthSettings::default(),
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
        let figment = Figment::new()
            .merge(Toml::file(file))
            .merge(Env::prefixed("COMPANIN_").ignore(&["config"]).split("__"))
            .merge(Env::raw().only(&[
                "DATABASE_URL",
                "REDIS_URL",
                "OPENAI_API_KEY",
                "OPENAI_BASE_URL",
            ]));
        Self::from_figment(&figment)
    }

    /// Reads every part from the same flat keys; an error names the key at fault.
    pub fn from_figment(figment: &Figment) -> anyhow::Result<Self> {
        /// The keys that belong to no component.
        #[derive(Deserialize)]
        #[serde(default)]
        struct Process {
            data_dir: PathBuf,
            log_format: LogFormat,
            egress_proxy: Option<String>,
        }
        impl Default for Process {
            fn default() -> Self {
                let defaults = Settings::default();
                Self {
                    data_dir: defaults.data_dir,
                    log_format: defaults.log_format,
                    egress_proxy: defaults.egress_proxy,
                }
            }
        }
        let invalid = |e: figment::Error| anyhow::anyhow!("invalid configuration: {e}");
        let process: Process = figment.extract().map_err(invalid)?;
        Ok(Self {
            data_dir: process.data_dir,
            log_format: process.log_format,
            egress_proxy: process.egress_proxy,
            database: figment.extract().map_err(invalid)?,
            http: figment.extract().map_err(invalid)?,
            ingestion: figment.extract().map_err(invalid)?,
            vectors: figment.extract().map_err(invalid)?,
            models: figment.extract().map_err(invalid)?,
            replies: figment.extract().map_err(invalid)?,
            webhooks: figment.extract().map_err(invalid)?,
            rate_limits: figment.extract().map_err(invalid)?,
            redis: figment.extract().map_err(invalid)?,
            auth: figment.extract().map_err(invalid)?,
        })
    }

    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database.database_url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("companin.db").display()
            ),
        }
    }

    /// The LanceDB URI in force.
    pub fn lancedb_uri(&self) -> String {
        self.vectors
            .lancedb_uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lancedb").display().to_string())
    }

    /// Where uploads are kept: the blob store URI, or the directory in the data dir.
    pub fn blob_location(&self) -> String {
        self.ingestion
            .blob_uri
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads").display().to_string())
    }

    /// One line describing what this process uses, with secrets masked.
    pub fn summary(&self) -> String {
        format!(
            "data_dir={} database={} lancedb={} blobs={} redis={} bind={} rate_limit_per_hour={} graphql(depth={} complexity={} introspection={} batching={}) max_request_bytes={} max_upload_bytes={} ingest_workers={} allow_private_urls={} models_dir={} jwt_secret={}",
            self.data_dir.display(),
            redact_url(&self.database_url()),
            redact_url(&self.lancedb_uri()),
            redact_url(&self.blob_location()),
            self.redis
                .redis_url
                .as_ref()
                .map_or_else(|| "none".to_owned(), |u| redact_url(u.expose_secret())),
            self.http.bind,
            self.rate_limits.rate_limit_per_hour,
            self.http.graphql_max_depth,
            self.http.graphql_max_complexity,
            self.http.graphql_introspection,
            self.http.graphql_batching,
            self.http.max_request_bytes,
            self.http.max_upload_bytes,
            self.ingestion.ingest_workers,
            self.ingestion.allow_private_urls,
            self.models.models_dir.display(),
            if self.auth.jwt_secret.is_some() {
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
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn flat_keys_fill_each_components_part() {
        let settings = Settings::from_figment(&Figment::new().merge(Toml::string(
            "ingest_workers = 0\nbind = \"0.0.0.0:9000\"\nrate_limit_alert_share = 1\n\
                 webhook_workers = 7\nembedder = \"hash\"\n\
                 [external_jwt]\nissuer = \"https://id.example\"\naudience = \"api\"\n",
        )))
        .expect("valid settings");
        assert_eq!(settings.ingestion.ingest_workers, 0);
        assert_eq!(settings.http.bind.port(), 9000);
        assert!((settings.rate_limits.rate_limit_alert_share - 1.0).abs() < f64::EPSILON);
        assert_eq!(settings.webhooks.webhook_workers, 7);
        assert_eq!(settings.models.embedder, EmbedderChoice::Hash);
        let external = settings.auth.external_jwt.expect("external issuer");
        assert_eq!(external.audience, ["api"]);
        let refused = Settings::from_figment(
            &Figment::new().merge(Toml::string("bind = \"not an address\"")),
        );
        assert!(
            refused.is_err_and(|e| e.to_string().contains("bind")),
            "a bad value names its key"
        );
        // Untouched keys keep their defaults.
        assert_eq!(settings.replies.max_message_chars, 8_000);
        assert_eq!(settings.http.graphql_max_complexity, 2000);
    }

    #[test]
    fn a_database_password_never_reaches_the_summary() {
        let mut settings = Settings::default();
        settings.database.database_url = Some(SecretString::from(
            "postgres://app:hunter2@db:5432/companin",
        ));
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
        let mut settings = Settings::default();
        settings.auth.jwt_secret = Some(SecretString::from("topsecret"));
        assert!(!format!("{settings:?}").contains("topsecret"));
    }
}
