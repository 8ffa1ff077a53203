//! Log output and traces.
//!
//! Logs go to stderr, so command output on stdout stays clean. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, `serve`
//! also exports its spans over OTLP (HTTP/protobuf), configured by the standard `OTEL_*`
//! variables; W3C `traceparent` is read on every request ([`propagation`]) and sent on
//! webhook deliveries and model-provider calls.

pub mod propagation;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer, filter, fmt, layer::SubscriberExt, registry::LookupSpan,
    util::SubscriberInitExt,
};

use crate::config::LogFormat;

/// The variables that turn the OTLP export on; the first set one wins (the SDK reads them
/// again, with the rest of the `OTEL_*` settings).
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans (what is traced only for an exporter checks it).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The installed telemetry; [`Telemetry::shutdown`] sends the spans still buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports what is buffered and stops the exporter (on a thread of its own: the SDK's
    /// exporter blocks).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = flushed {
            eprintln!("warning: the last spans could not be exported: {e}");
        }
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the default filter of the logs.
/// With `export` and an OTLP endpoint configured, spans of this crate (and the database
/// statements they run) are exported too; an export that cannot be set up is an error.
pub fn init(format: LogFormat, export: bool) -> anyhow::Result<Telemetry> {
    let endpoint = (export && endpoint_configured()).then_some(None);
    install(format, endpoint)
}

/// [`init`], exporting to the OTLP/HTTP traces URL `endpoint` whatever the environment says
/// (the benchmarks' loopback collector).
pub fn init_exporting_to(format: LogFormat, endpoint: &str) -> anyhow::Result<Telemetry> {
    install(format, Some(Some(endpoint.to_owned())))
}

/// Installs the subscriber, exporting when `endpoint` is given: to its URL, or (`None`
/// inside) where the `OTEL_*` variables say.
fn install(format: LogFormat, endpoint: Option<Option<String>>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,sea_orm=warn,tower_http=warn,companin::request=warn")
    });
    let logs = fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Pretty => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    }
    .with_filter(filter);
    let provider = match endpoint {
        Some(url) => {
            // The exporter's HTTP client needs the process's TLS provider.
            crate::tls::install_crypto_provider();
            Some(provider(url)?)
        }
        None => None,
    };
    let traces = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("companin"))
            .with_threads(false)
            .with_filter(exported())
    });
    // Already installed (tests build many servers in one process): keep the first.
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!("exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// What is exported: this crate's spans and events (info and above), and the database
/// statements run inside one of them (a poller's statements outside any span are not traces
/// worth keeping). Decided per callsite wherever it can be: only sea-orm's spans are looked
/// at as they happen, and other crates' callsites stay disabled.
fn exported<S: tracing::Subscriber + for<'a> LookupSpan<'a>>()
-> impl tracing_subscriber::layer::Filter<S> {
    use tracing_subscriber::filter::FilterExt;
    let targets = filter::Targets::new()
        .with_target("companin", Level::INFO)
        .with_target("sea_orm", Level::INFO);
    let inside = filter::dynamic_filter_fn(
        |meta: &tracing::Metadata<'_>, cx: &tracing_subscriber::layer::Context<'_, S>| {
            !meta.target().starts_with("sea_orm") || cx.lookup_current().is_some()
        },
    )
    .with_callsite_filter(|meta| {
        if meta.target().starts_with("sea_orm") {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::always()
        }
    });
    targets.and(inside)
}

fn endpoint_configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled
        && ENDPOINT_VARIABLES
            .iter()
            .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// The tracer provider: OTLP over HTTP/protobuf to `url` (or where the environment says),
/// batched, with the `service.*` resource (`OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` apply).
fn provider(url: Option<String>) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(url) = url {
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter
        .build()
        .context("configuring the OTLP trace export (OTEL_EXPORTER_OTLP_* variables)")?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name("companin");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
