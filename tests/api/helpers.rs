//! Starting the application for a test and talking to it: on SQLite, or on PostgreSQL when
//! `TEST_DATABASE_URL` is set, with Redis when `TEST_REDIS_URL` is set.

use companin::{
    auth::AuthChain,
    config::{
        EmbedderChoice, HttpSettings, IngestionSettings, LlmChoice, ModelSettings,
        RateLimitSettings, Settings,
    },
    db,
    models::Models,
    services,
    startup::Application,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The models fetched by `scripts/fetch-models.sh` (the README's test command runs it).
pub fn models_dir() -> std::path::PathBuf {
    std::env::var_os("COMPANIN_MODELS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
}

/// A running server with its own database, data dir and first organization.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// The admin key of the first organization.
    pub key: String,
    pub org_id: String,
    _dir: std::sync::Arc<TempDir>,
    _postgres: Option<std::sync::Arc<PostgresDb>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the server with adjusted settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_inner(adjust, None, |chain| chain).await
    }

    /// Starts the server with adjusted settings and the given models.
    pub async fn spawn_with_models(adjust: impl FnOnce(&mut Settings), models: Models) -> Self {
        Self::spawn_inner(adjust, Some(models), |chain| chain).await
    }

    /// Starts the server with its authenticator chain changed by `configure`.
    pub async fn spawn_with_auth(configure: impl FnOnce(AuthChain) -> AuthChain) -> Self {
        Self::spawn_inner(|_| {}, None, configure).await
    }

    async fn spawn_inner(
        adjust: impl FnOnce(&mut Settings),
        models: Option<Models>,
        configure: impl FnOnce(AuthChain) -> AuthChain,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // The fast, dependency-free models unless a test asks for the real ones.
        let mut settings = Settings {
            data_dir: dir.path().to_path_buf(),
            http: HttpSettings {
                bind: "127.0.0.1:0".parse().expect("address"),
                ..Settings::default().http
            },
            models: ModelSettings {
                embedder: EmbedderChoice::Hash,
                llm: LlmChoice::Extractive,
                models_dir: models_dir(),
                ..Settings::default().models
            },
            rate_limits: RateLimitSettings {
                // Polling tests make many requests; rate-limit tests set their own budget.
                rate_limit_per_hour: 100_000,
                ..Settings::default().rate_limits
            },
            // Files are extracted by the server's binary, not by this test binary.
            ingestion: IngestionSettings {
                extract_program: Some(env!("CARGO_BIN_EXE_companin").into()),
                ..Settings::default().ingestion
            },
            ..Settings::default()
        };
        let postgres = PostgresDb::create().await;
        if let Some(pg) = &postgres {
            settings.database.database_url = Some(pg.url.clone().into());
        }
        // With Redis, reply events and rate limits go through it, as on replicas.
        if let Ok(redis) = std::env::var("TEST_REDIS_URL") {
            settings.redis.redis_url = Some(redis.into());
            settings.redis.redis_prefix =
                format!("companin-test-{}:", uuid::Uuid::now_v7().simple());
        }
        adjust(&mut settings);
        let models = match models {
            Some(models) => models,
            None => Models::from_settings(&settings.models)
                .await
                .expect("models load"),
        };
        let app = Application::build_with(settings.clone(), models, configure)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let mut test_app = Self {
            address,
            client: reqwest::Client::new(),
            settings,
            key: String::new(),
            org_id: String::new(),
            _dir: std::sync::Arc::new(dir),
            _postgres: postgres.map(std::sync::Arc::new),
        };
        let (org_id, key) = test_app.create_org("Acme").await;
        test_app.org_id = org_id;
        test_app.key = key;
        test_app
    }

    /// The same organization, data and database, served by another server at `address`.
    pub fn at(&self, address: String) -> Self {
        Self {
            address,
            client: self.client.clone(),
            settings: self.settings.clone(),
            key: self.key.clone(),
            org_id: self.org_id.clone(),
            _dir: self._dir.clone(),
            _postgres: self._postgres.clone(),
        }
    }

    /// Creates another organization; returns its id and admin key.
    pub async fn create_org(&self, name: &str) -> (String, String) {
        let db = db::connect(&self.settings).await.expect("db");
        let (org, key) = services::organizations::create(&db, name, false)
            .await
            .expect("organization created");
        (org.id, key.key)
    }

    /// Issues a key in this app's first organization through GraphQL.
    pub async fn issue_key(&self, input: Value) -> Value {
        let data = self
            .gql_ok(
                &self.key,
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key secret apiKey { id scopes hasSecret } } }",
                json!({ "input": input }),
            )
            .await;
        data["createApiKey"].clone()
    }

    /// A GraphQL request with `key`; returns the status and body.
    pub async fn gql_raw(&self, key: &str, query: &str, variables: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("X-API-Key", key)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// A GraphQL request that must succeed; returns `data`.
    pub async fn gql_ok(&self, key: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql_raw(key, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// A GraphQL request that must fail; returns the first error's code and the error.
    pub async fn gql_err(&self, key: &str, query: &str, variables: Value) -> (String, Value) {
        let (_, body) = self.gql_raw(key, query, variables).await;
        let error = body["errors"][0].clone();
        assert!(!error.is_null(), "expected an error: {body}");
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            error,
        )
    }

    /// A REST request with `key`.
    pub fn rest(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.address, path))
            .header("X-API-Key", key)
    }

    /// Sends a REST request; returns the status and JSON body.
    pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// The websocket URL of the GraphQL endpoint.
    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.address.replacen("http", "ws", 1))
    }

    /// The database URL the server uses, for the CLI.
    pub fn database_url(&self) -> String {
        self.settings.database_url()
    }
}

/// `companin serve` as a child process on this test's database and data dir (hash embedder,
/// extractive answers, no ingestion workers unless `env` says), with `env` on top; returns
/// the process and the server as a [`TestApp`] of the same organization.
pub async fn serve_binary(app: &TestApp, env: &[(&str, &str)]) -> (tokio::process::Child, TestApp) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_companin"));
    server
        .arg("serve")
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("COMPANIN_BIND", "127.0.0.1:0")
        .env("COMPANIN_EMBEDDER", "hash")
        .env("COMPANIN_LLM", "extractive")
        .env("COMPANIN_INGEST_WORKERS", "0")
        .env("RUST_LOG", "info");
    for (name, value) in env {
        server.env(name, value);
    }
    let mut server = server
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("companin serve starts");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let address = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("log line") {
            if let Some(at) = line.find("listening on http://") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens in time");
    // Keep reading its log, so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (server, app.at(address))
}

/// Starts a server for `settings` with `models`, on `runtime` (default: the test's own), and
/// returns its base URL. Dropping that runtime kills the server and its workers mid-flight.
pub async fn start(
    settings: Settings,
    models: Models,
    runtime: Option<tokio::runtime::Handle>,
) -> String {
    let runtime = runtime.unwrap_or_else(tokio::runtime::Handle::current);
    let app = runtime
        .spawn(async move { Application::build_with_models(settings, models).await })
        .await
        .expect("build task")
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    runtime.spawn(app.run_until_stopped());
    address
}

/// A throwaway PostgreSQL database, dropped with the test.
struct PostgresDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDb {
    async fn create() -> Option<Self> {
        let admin_url = std::env::var("TEST_DATABASE_URL").ok()?;
        let name = format!("companin_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL reachable");
        sea_orm::ConnectionTrait::execute_unprepared(
            &admin,
            &format!("CREATE DATABASE \"{name}\""),
        )
        .await
        .expect("test database created");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(Self {
            admin_url,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // The test's runtime is ending: drop the database from a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = sea_orm::Database::connect(&admin_url).await.ok()?;
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                )
                .await
                .ok()
            })
        })
        .join();
    }
}

/// The code of a REST error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}
