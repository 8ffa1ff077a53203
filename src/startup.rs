//! Building the application: database, state, schema, router and listener.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{
        ApiKeyAuthenticator, AuthChain, ExternalJwtAuthenticator, WidgetTokenAuthenticator,
        jwt::SigningKeys,
    },
    config::Settings,
    db, graphql, http, ingest,
    limiter::{Limiter, MemoryLimiter, RedisLimiter},
    metrics::Metrics,
    models::Models,
    runtime::{
        exchanges::ExchangeWriter,
        outbox::Outbox,
        rate_limits::{Alerts, RateLimits},
        replies::{LocalBroker, Replies, ReplyBroker, SharedBroker},
        request_log::RequestLog,
        signals::{JobSignal, WebhookSignal},
        widget_origins::WidgetOrigins,
    },
    services,
    shared_log::SharedLog,
    state::AppState,
    storage::BlobStore,
    vector::VectorStore,
};

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    address: SocketAddr,
    state: AppState,
}

impl Application {
    /// Migrates the database, loads the models the settings ask for, starts the background
    /// workers and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::tls::configure_egress(settings.egress_proxy.as_deref())?;
        let models = Models::from_settings(&settings.models)
            .await
            .map_err(|e| anyhow::anyhow!("loading the models: {e}"))?;
        Self::build_with_models(settings, models).await
    }

    /// [`Application::build`] with the given models.
    pub async fn build_with_models(settings: Settings, models: Models) -> anyhow::Result<Self> {
        Self::build_with(settings, models, |chain| chain).await
    }

    /// [`Application::build`] with the given models and a deployment's own authentication:
    /// `configure` receives the built-in authenticator chain (API keys, widget tokens, the
    /// configured external issuer) and returns the chain to use, for example with an
    /// authenticator prepended. See [`crate::auth::chain`].
    pub async fn build_with(
        settings: Settings,
        models: Models,
        configure: impl FnOnce(AuthChain) -> AuthChain,
    ) -> anyhow::Result<Self> {
        let mut state = state(settings, models).await?;
        state.auth = Arc::new(configure((*state.auth).clone()));
        tracing::info!(authenticators = ?state.auth.names(), "authentication");
        ingest::worker::spawn(&state);
        services::webhooks::dispatch::spawn(&state);
        services::replies::spawn_sweeper(&state);
        services::idempotency::spawn_prune(&state);
        let schema = graphql::build(&state.settings.http, Some(state.clone()));
        let listener = TcpListener::bind(state.settings.http.bind)
            .await
            .with_context(|| format!("binding {}", state.settings.http.bind))?;
        let address = listener.local_addr()?;
        let router = http::router(state.clone(), schema);
        Ok(Self {
            listener,
            router,
            address,
            state,
        })
    }

    /// The shared state the server runs with.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then shuts down cleanly: stops accepting, closes
    /// websockets (1001), lets in-flight requests and streams finish for up to
    /// `shutdown_grace_seconds`, and writes the queued request log.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let shutdown = state.shutdown.clone();
        let grace = Duration::from_secs(state.settings.http.shutdown_grace_seconds);
        let app = tower::ServiceExt::map_request(self.router, http::normalize_path);
        // Streamed tokens are small writes: send each at once instead of waiting for the
        // peer's delayed ACK (Nagle), which would add up to 40 ms a token.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let trigger = shutdown.clone();
        let server = axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("shutting down: finishing in-flight requests and streams");
            trigger.cancel();
        });
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = server => served.context("serving HTTP"),
            () = deadline => {
                tracing::warn!(grace_seconds = grace.as_secs(), "connections still open after the grace period: closing them");
                Ok(())
            }
        };
        state.request_log.flush().await;
        tracing::info!("request log written; stopped");
        served
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Connects and migrates the database, loads the signing keys and opens the stores: the
/// state of a server, or of a command that works like one (`companin sandbox seed`). No
/// background worker is started.
pub async fn state(settings: Settings, models: Models) -> anyhow::Result<AppState> {
    crate::tls::configure_egress(settings.egress_proxy.as_deref())?;
    crate::tls::install_crypto_provider();
    let mut db = db::connect(&settings).await?;
    db::migrate(&db).await?;
    let metrics = Arc::new(Metrics::default());
    count_statements(&mut db, &metrics);
    let models = models.traced(metrics.clone());
    let signing_keys = SigningKeys::load_or_generate(&settings)?;
    tracing::info!(
        keys = signing_keys.len(),
        current_kid = %signing_keys.current().kid,
        source = signing_keys.source,
        "JWT signing keys loaded"
    );
    let vectors = VectorStore::open(
        &settings.lancedb_uri(),
        settings.vectors.vector_index_threshold,
    )
    .await?;
    let blobs = match &settings.ingestion.blob_uri {
        Some(uri) => BlobStore::open(uri)?,
        None => BlobStore::in_dir(&settings.data_dir.join("uploads"))?,
    };
    announce_models(&db, &models).await?;
    let webhook_signal = WebhookSignal::default();
    let rate_limits = rate_limits(&settings, &db, &metrics, &webhook_signal).await?;
    let signing_keys = Arc::new(signing_keys);
    let auth = Arc::new(auth_chain(&settings, &db, &signing_keys).await?);
    let broker = reply_broker(&settings).await?;
    let request_log = RequestLog::start(
        db.clone(),
        metrics.clone(),
        settings.rate_limits.request_log_enabled,
    );
    let state = AppState {
        rate_limits,
        request_log,
        exchanges: ExchangeWriter::start(db.clone()),
        metrics,
        shutdown: CancellationToken::new(),
        widget_origins: Arc::new(WidgetOrigins::new(db.clone())),
        db,
        blobs,
        settings: Arc::new(settings),
        signing_keys,
        auth,
        webhook_signal,
        outbound: Arc::default(),
        models,
        vectors,
        job_signal: JobSignal::default(),
        replies: Arc::new(Replies::new(broker)),
        replica: format!("rep_{}", uuid::Uuid::now_v7().simple()).into(),
    };
    Ok(state)
}

/// Logs the models in use and warns of sources a previous embedder indexed.
async fn announce_models(db: &sea_orm::DatabaseConnection, models: &Models) -> anyhow::Result<()> {
    let stale =
        crate::repo::knowledge::count_all_indexed_by_others(db, models.embedder.id()).await?;
    if stale > 0 {
        tracing::warn!(
            stale,
            embedder = models.embedder.id(),
            "knowledge sources were indexed by another embedder and are not found by searches \
             until re-indexed: run the reembedKnowledge mutation (POST /api/v1/knowledge/reembed)"
        );
    }
    tracing::info!(
        embedder = models.embedder.id(),
        dimension = models.embedder.dimension(),
        chat = models.chat.id(),
        summarizer = models.summarizer.id(),
        "models in use"
    );
    for note in &models.notes {
        tracing::warn!("{note}");
    }
    Ok(())
}

/// Counts every statement run on `db` (and its transactions) in `metrics`.
fn count_statements(db: &mut sea_orm::DatabaseConnection, metrics: &Arc<Metrics>) {
    let counted = metrics.clone();
    db.set_metric_callback(move |statement| {
        counted.db_statements.inc();
        if statement.failed {
            counted.db_errors.inc();
        }
    });
}

/// The built-in authenticators: API keys, widget tokens, and the external issuer when one
/// is configured.
async fn auth_chain(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    keys: &Arc<SigningKeys>,
) -> anyhow::Result<AuthChain> {
    let chain = AuthChain::default()
        .push(ApiKeyAuthenticator::new(db.clone()))
        .push(WidgetTokenAuthenticator::new(db.clone(), keys.clone()));
    Ok(match &settings.auth.external_jwt {
        Some(external) => {
            chain.push(ExternalJwtAuthenticator::from_settings(external, db.clone()).await?)
        }
        None => chain,
    })
}

/// The Redis client `REDIS_URL` asks for, if any: `rediss://` speaks TLS, trusting the
/// system's roots or, when `COMPANIN_REDIS_CA_FILE` is set, that CA alone.
pub(crate) fn redis_client(settings: &Settings) -> anyhow::Result<Option<redis::Client>> {
    let Some(url) = &settings.redis.redis_url else {
        return Ok(None);
    };
    let url = url.expose_secret();
    let client = match &settings.redis.redis_ca_file {
        Some(ca) => {
            let root = std::fs::read(ca)
                .with_context(|| format!("reading COMPANIN_REDIS_CA_FILE {}", ca.display()))?;
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root),
            };
            redis::Client::build_with_tls(url, certificates)
        }
        None => redis::Client::open(url),
    };
    client.context("REDIS_URL is not a Redis URL").map(Some)
}

/// Reply events travel through Redis when `REDIS_URL` is set (any replica follows any
/// replica's replies), in memory otherwise.
async fn reply_broker(settings: &Settings) -> anyhow::Result<Arc<dyn ReplyBroker>> {
    Ok(match redis_client(settings)? {
        Some(client) => {
            let log = SharedLog::connect(client, &settings.redis.redis_prefix).await?;
            tracing::info!("reply events are shared through Redis");
            Arc::new(SharedBroker::new(log))
        }
        None => Arc::new(LocalBroker::default()),
    })
}

/// Admission against per-organization budgets, counted in Redis when `REDIS_URL` is set.
async fn rate_limits(
    settings: &Settings,
    db: &sea_orm::DatabaseConnection,
    metrics: &Arc<Metrics>,
    webhook_signal: &WebhookSignal,
) -> anyhow::Result<Arc<RateLimits>> {
    let limiter: Arc<dyn Limiter> = match redis_client(settings)? {
        Some(client) => {
            Arc::new(RedisLimiter::connect(client, &settings.redis.redis_prefix).await?)
        }
        None => Arc::new(MemoryLimiter::default()),
    };
    let rate_limits = RateLimits::new(
        db.clone(),
        limiter,
        settings.rate_limits.rate_limit_per_hour,
        metrics.clone(),
        settings.rate_limits.rate_limit_enabled,
    )
    .with_alerts(Alerts {
        share: settings.rate_limits.rate_limit_alert_share,
        outbox: Outbox::from_settings(&settings.webhooks),
        signal: webhook_signal.clone(),
    });
    tracing::info!(
        enabled = settings.rate_limits.rate_limit_enabled,
        counted_in = rate_limits.kind(),
        default_per_hour = settings.rate_limits.rate_limit_per_hour,
        "rate limits"
    );
    Ok(Arc::new(rate_limits))
}
