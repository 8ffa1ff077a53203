//! W3C trace context on the way in and out. Without an exporter installed the propagator is
//! a no-op: nothing is read or sent.

use axum::http::HeaderMap;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the trace `headers` continue (`traceparent`, `tracestate`).
pub fn adopt_parent(span: &Span, headers: &HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when no exporter is installed: there is no trace to continue.
    let _ = span.set_parent(parent);
}

/// Adds the current span's `traceparent` (and `tracestate`) to an outgoing request.
pub fn inject(headers: &mut HeaderMap) {
    let context = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}
