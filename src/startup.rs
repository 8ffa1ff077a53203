//! Building the application: database, state, schema, router and listener.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    auth::jwt::SigningKeys,
    config::Settings,
    db, graphql, http,
    ingest::{self, worker::JobSignal},
    models::Models,
    services::{
        self,
        replies::{LocalBroker, Replies},
    },
    state::AppState,
    storage::BlobStore,
    vector::VectorStore,
};

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    address: SocketAddr,
}

impl Application {
    /// Migrates the database, loads the models the settings ask for, starts the background
    /// workers and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let models = Models::from_settings(&settings)
            .await
            .map_err(|e| anyhow::anyhow!("loading the models: {e}"))?;
        Self::build_with_models(settings, models).await
    }

    /// [`Application::build`] with the given models.
    pub async fn build_with_models(settings: Settings, models: Models) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let db = db::connect(&settings).await?;
        db::migrate(&db).await?;
        let signing_keys = SigningKeys::load_or_generate(&settings)?;
        tracing::info!(
            keys = signing_keys.len(),
            current_kid = %signing_keys.current().kid,
            source = signing_keys.source,
            "JWT signing keys loaded"
        );
        let vectors =
            VectorStore::open(&settings.lancedb_uri(), settings.vector_index_threshold).await?;
        let stale =
            crate::repo::knowledge::count_all_indexed_by_others(&db, models.embedder.id()).await?;
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
        let state = AppState {
            db,
            blobs: BlobStore::new(&settings.data_dir),
            settings: Arc::new(settings),
            signing_keys: Arc::new(signing_keys),
            models,
            vectors,
            job_signal: JobSignal::default(),
            replies: Arc::new(Replies::new(Arc::new(LocalBroker::default()))),
        };
        ingest::worker::spawn(&state);
        services::replies::spawn_sweeper(&state);
        let schema = graphql::build(&state.settings, Some(state.clone()));
        let listener = TcpListener::bind(state.settings.bind)
            .await
            .with_context(|| format!("binding {}", state.settings.bind))?;
        let address = listener.local_addr()?;
        let router = http::router(state, schema);
        Ok(Self {
            listener,
            router,
            address,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let app = tower::ServiceExt::map_request(self.router, http::normalize_path);
        // Streamed tokens are small writes: send each at once instead of waiting for the
        // peer's delayed ACK (Nagle), which would add up to 40 ms a token.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
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
    tracing::info!("shutting down: finishing in-flight requests");
}
