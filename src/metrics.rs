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
    /// `rest`, `graphql` or `ws`.
    pub transport: &'static str,
    /// Route template, or GraphQL operation type.
    pub endpoint: String,
    /// HTTP status answered.
    pub status: u16,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

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
        let r = &mut registry;
        Self {
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

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}
