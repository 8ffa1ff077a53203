//! The state every handler and resolver shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use tokio_util::sync::CancellationToken;

use crate::{
    auth::{AuthChain, jwt::SigningKeys},
    config::Settings,
    egress::PinnedClients,
    metrics::Metrics,
    models::Models,
    runtime::{
        exchanges::ExchangeWriter,
        outbox::Outbox,
        rate_limits::RateLimits,
        replies::Replies,
        request_log::RequestLog,
        signals::{JobSignal, WebhookSignal},
        widget_origins::WidgetOrigins,
    },
    storage::BlobStore,
    vector::VectorStore,
};

/// Cheap to clone: handles to the shared parts of the application.
#[derive(Clone)]
pub struct AppState {
    /// The relational store.
    pub db: DatabaseConnection,
    /// The settings in force.
    pub settings: Arc<Settings>,
    /// Keys that sign and verify JWTs.
    pub signing_keys: Arc<SigningKeys>,
    /// Embedder and summarizer.
    pub models: Models,
    /// Chunks and their vectors.
    pub vectors: VectorStore,
    /// Uploaded files.
    pub blobs: BlobStore,
    /// Wakes ingestion workers.
    pub job_signal: JobSignal,
    /// Replies being generated, and the broker that streams them.
    pub replies: Arc<Replies>,
    /// Per-organization request budgets.
    pub rate_limits: Arc<RateLimits>,
    /// The batched request log.
    pub request_log: RequestLog,
    /// Stores sent messages with their pending replies, many per commit.
    pub exchanges: ExchangeWriter,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Origins the chat widget may run on, for CORS.
    pub widget_origins: Arc<WidgetOrigins>,
    /// Resolves each request's caller.
    pub auth: Arc<AuthChain>,
    /// Wakes webhook dispatchers.
    pub webhook_signal: WebhookSignal,
    /// HTTP clients for webhook endpoints, pinned to checked addresses and reused.
    pub outbound: Arc<PinnedClients>,
    /// Cancelled when the server begins to shut down: long-lived connections close.
    pub shutdown: CancellationToken,
    /// This process's name among the replicas (the holder of the leases it takes).
    pub replica: Arc<str>,
}

impl AppState {
    /// Whether this replica runs the periodic pass `name` now: it takes the pass's lease for
    /// most of `every` unless another replica holds it. A pass that runs on every replica
    /// every `every` thus runs about once per `every` across them.
    pub async fn take_lease(&self, name: &str, every: std::time::Duration) -> bool {
        let now = chrono::Utc::now();
        let hold =
            chrono::Duration::from_std(every.mul_f64(0.9)).unwrap_or(chrono::Duration::zero());
        match crate::repo::leases::take(&self.db, name, &self.replica, now, now + hold).await {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "could not take a lease; the pass is skipped");
                false
            }
        }
    }

    /// Where webhook events are written, with the configured retry policy.
    pub fn outbox(&self) -> Outbox {
        Outbox::from_settings(&self.settings.webhooks)
    }
}
