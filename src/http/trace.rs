//! The span of each HTTP request: named after its route (or GraphQL operation), with the
//! status it was answered with, continuing the caller's trace.

use axum::http::{Request, Response};
use opentelemetry::trace::TraceContextExt;
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::middleware::REQUEST_ID;
use crate::telemetry::propagation;

/// The target of request spans: the logs leave them out unless `RUST_LOG` asks for them.
pub const TARGET: &str = "companin::request";

/// The span of one HTTP request (`otel.name` becomes `METHOD /route` once routed), a child
/// of the caller's span when the request carries `traceparent`.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %request.method(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.route = Empty,
        http.response.status_code = Empty,
        graphql.operation.type = Empty,
        graphql.operation.name = Empty,
        companin.organization.id = Empty,
        request_id = Empty,
    );
    if let Some(id) = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
    {
        span.record("request_id", id);
    }
    propagation::adopt_parent(&span, request.headers());
    span
}

/// Names the current request's span after its route, for the organization that sent it.
pub fn record_route(method: &str, route: &str, organization: &str) {
    let span = Span::current();
    span.record("http.route", route);
    span.record("companin.organization.id", organization);
    rename(&span, format!("{method} {route}"));
}

/// Names the current request's span after the GraphQL operation it ran.
pub fn record_operation(kind: Option<&str>, name: &str) {
    let span = Span::current();
    let kind = kind.unwrap_or("invalid");
    span.record("graphql.operation.type", kind);
    span.record("graphql.operation.name", name);
    rename(&span, format!("{kind} {name}"));
}

/// Renames `span`: the exported span already started when the request came in, so its name
/// is changed on it, not only on the `otel.name` field.
fn rename(span: &Span, name: String) {
    span.record("otel.name", name.as_str());
    span.context().span().update_name(name);
}

/// Records the status a request was answered with; a 5xx marks the span failed.
pub fn record_response<B>(response: &Response<B>, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}
