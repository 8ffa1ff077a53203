//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Labels stay bounded: REST requests are labelled by route template, GraphQL requests by
//! operation type (operation names are chosen by clients), never by organization.

use std::fmt;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// One request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `rest`, `graphql`, `ws` or `openai`.
    pub transport: &'static str,
    /// Route template, or GraphQL operation type.
    pub endpoint: String,
    /// HTTP status answered.
    pub status: u16,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// A model's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model's id (`local:SmolLM2-135M-Instruct`, `openai:gpt-4o-mini`).
    pub model: String,
}

/// Model tokens' labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The model's id.
    pub model: String,
    /// `input` (the prompt) or `output` (generated).
    pub kind: &'static str,
}

/// A webhook attempt's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `succeeded`, `retrying` (failed, tried again later) or `failed` (given up).
    pub outcome: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    /// Requests refused by the rate limiter.
    pub rate_limited: Counter,
    /// Rate-limit checks that failed (the request was admitted).
    pub limiter_errors: Counter,
    /// Request-log entries written to the database.
    pub log_written: Counter,
    /// Request-log entries given up after repeated write failures.
    pub log_dropped: Counter,
    /// Request-log entries waiting to be written.
    pub log_queued: Gauge,
    /// Statements run on the relational store.
    pub db_statements: Counter,
    /// Statements that failed.
    pub db_errors: Counter,
    model_tokens: Family<TokenLabels, Counter>,
    first_token: Family<ModelLabels, Histogram, fn() -> Histogram>,
    webhook_attempts: Family<WebhookLabels, Counter>,
    /// WebSocket connections open now.
    pub websockets_open: Gauge,
    /// Ingestion jobs waiting to run (set when the metrics are read).
    pub ingest_queued: Gauge,
    /// Connections of the database pool, idle or in use (set when the metrics are read).
    pub db_pool_connections: Gauge,
    /// Idle connections of the database pool (set when the metrics are read).
    pub db_pool_idle: Gauge,
}

/// Registers a gauge under `name`.
fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Registers a counter under `name`.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("companin");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Authenticated requests, by transport, endpoint and status",
            requests.clone(),
        );
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register(
            "request_duration_seconds",
            "Time to answer an authenticated request (to the first byte for streams)",
            latency.clone(),
        );
        let log_queued = Gauge::default();
        registry.register(
            "request_log_queued",
            "Request-log entries waiting to be written",
            log_queued.clone(),
        );
        let model_tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "model_tokens",
            "Model tokens, by model and kind (input: the prompt, output: generated)",
            model_tokens.clone(),
        );
        let first_token: Family<ModelLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14)));
        registry.register(
            "model_first_token_seconds",
            "Time from a chat model call to its first token, by model",
            first_token.clone(),
        );
        let webhook_attempts = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome (succeeded, retrying, failed)",
            webhook_attempts.clone(),
        );
        let r = &mut registry;
        Self {
            websockets_open: gauge(r, "websockets_open", "WebSocket connections open"),
            ingest_queued: gauge(r, "ingest_jobs_queued", "Ingestion jobs waiting to run"),
            db_pool_connections: gauge(
                r,
                "db_pool_connections",
                "Connections of the database pool, idle or in use",
            ),
            db_pool_idle: gauge(r, "db_pool_idle", "Idle connections of the database pool"),
            model_tokens,
            first_token,
            webhook_attempts,
            rate_limited: counter(r, "rate_limited", "Requests refused by the rate limiter"),
            limiter_errors: counter(
                r,
                "rate_limiter_errors",
                "Rate-limit checks that failed; the request was admitted",
            ),
            log_written: counter(
                r,
                "request_log_written",
                "Request-log entries written to the database",
            ),
            log_dropped: counter(
                r,
                "request_log_dropped",
                "Request-log entries given up after repeated write failures",
            ),
            db_statements: counter(r, "db_statements", "Statements run on the relational store"),
            db_errors: counter(
                r,
                "db_statement_errors",
                "Statements on the relational store that failed",
            ),
            log_queued,
            requests,
            latency,
            registry,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, labels: RequestLabels, seconds: f64) {
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts one chat reply's tokens.
    pub fn model_tokens(&self, model: &str, input: u32, output: u32) {
        for (kind, tokens) in [("input", input), ("output", output)] {
            self.model_tokens
                .get_or_create(&TokenLabels {
                    model: model.to_owned(),
                    kind,
                })
                .inc_by(u64::from(tokens));
        }
    }

    /// Records a chat model's time to its first token.
    pub fn first_token(&self, model: &str, seconds: f64) {
        self.first_token
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a WebSocket connection open until the guard is dropped.
    pub fn websocket_opened(&self) -> OpenConnection {
        self.websockets_open.inc();
        OpenConnection(self.websockets_open.clone())
    }

    /// Counts one webhook delivery attempt.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&WebhookLabels { outcome })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// An open WebSocket connection; counted until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
