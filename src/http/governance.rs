//! The governed request path of every authenticated route: authenticate, admit against the
//! organization's rate limit, run the handler, then answer with the rate-limit headers, log
//! the request (off the hot path) and count it in the metrics.

use std::time::Instant;

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue,
        header::{ORIGIN, RETRY_AFTER},
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;

use super::{graphql, idempotency, middleware::REQUEST_ID};
use crate::{
    auth::{Credentials, Principal},
    domain::request_log::{Entry, Transport},
    error::AppError,
    limiter::Decision,
    metrics::RequestLabels,
    state::AppState,
};

/// What a GraphQL request ran, set by the GraphQL handler on its response for the log.
#[derive(Debug, Clone)]
pub struct OperationInfo {
    /// The operation's name (`anonymous` when it has none).
    pub name: String,
    /// `query`, `mutation` or `subscription`; `None` when the document did not parse.
    pub kind: Option<&'static str>,
}

/// Middleware of the authenticated REST routes, the OpenAI-compatible `/v1` and `POST /graphql`.
pub async fn govern(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let (started, at) = (Instant::now(), Utc::now());
    let path = request.uri().path();
    let transport = if path == "/graphql" {
        Transport::Graphql
    } else if path.starts_with(super::openai::PREFIX) {
        Transport::OpenAi
    } else {
        Transport::Rest
    };
    let peer = peer(request.extensions());
    let (principal, decision) = match admit(&state, request.headers(), peer, transport).await {
        Ok(admitted) => admitted,
        Err(e) => return refusal(transport, e),
    };
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let method = request.method().as_str().to_owned();
    super::trace::record_route(&method, &route, principal.billed_org().as_str());
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refused = decision.filter(|d| !d.allowed);
    let mut response = match &refused {
        None => {
            request.extensions_mut().insert(principal.clone());
            if idempotency::asked(&request) {
                idempotency::run(&state, &principal, request, next)
                    .await
                    .unwrap_or_else(|e| refusal(transport, e))
            } else {
                next.run(request).await
            }
        }
        Some(decision) => rate_limited(transport, decision),
    };
    if let Some(decision) = &decision {
        set_rate_limit_headers(response.headers_mut(), decision);
    }
    let operation = response.extensions().get::<OperationInfo>().cloned();
    if let Some(operation) = &operation {
        super::trace::record_operation(operation.kind, &operation.name);
    }
    let served = Served {
        principal: &principal,
        transport,
        method,
        route,
        operation,
        status: response.status().as_u16(),
        started,
        at,
        rate_limited: refused.is_some(),
        request_id,
    };
    record(&state, served).await;
    response
}

/// The caller and the rate limiter's decision on its organization; an error for a request
/// refused before its handler (a possible forgery, bad credentials, a foreign origin).
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    transport: Transport,
) -> Result<(Principal, Option<Decision>), AppError> {
    if transport == Transport::Graphql && !graphql::preflighted(headers) {
        return Err(AppError::Malformed(
            "this request could be a cross-site request forgery: send `Content-Type: application/json` or a custom header such as `X-API-Key`".into(),
        ));
    }
    let credentials = Credentials { headers, peer };
    let principal = state.auth.authenticate(&credentials).await?;
    check_origin(&principal, headers)?;
    let decision = state.rate_limits.admit(principal.billed_org()).await?;
    Ok((principal, decision))
}

/// Governs a REST request authenticated by its handler (token minting with client
/// credentials): counts it, answers `respond()` when admitted or 429, sets the rate-limit
/// headers and logs it.
pub(super) async fn admit_outside_middleware(
    state: &AppState,
    principal: &Principal,
    route: &str,
    (started, at): (Instant, chrono::DateTime<Utc>),
    respond: impl FnOnce() -> Response,
) -> Response {
    let decision = match state.rate_limits.admit(principal.billed_org()).await {
        Ok(decision) => decision,
        Err(e) => return e.into_response(),
    };
    let refused = decision.filter(|d| !d.allowed);
    let mut response = match &refused {
        None => respond(),
        Some(decision) => rate_limited(Transport::Rest, decision),
    };
    if let Some(decision) = &decision {
        set_rate_limit_headers(response.headers_mut(), decision);
    }
    let served = Served {
        principal,
        transport: Transport::Rest,
        method: "POST".into(),
        route: route.to_owned(),
        operation: None,
        status: response.status().as_u16(),
        started,
        at,
        rate_limited: refused.is_some(),
        request_id: None,
    };
    record(state, served).await;
    response
}

/// A 429 with `Retry-After`, in the transport's error shape.
fn rate_limited(transport: Transport, decision: &Decision) -> Response {
    let mut refused = refusal(
        transport,
        AppError::RateLimited {
            retry_after: decision.reset_after,
        },
    );
    refused
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(decision.reset_after));
    refused
}

/// One answered request, to log and count.
pub(super) struct Served<'a> {
    pub principal: &'a Principal,
    pub transport: Transport,
    pub method: String,
    /// Route template (REST), or the path.
    pub route: String,
    /// The GraphQL operation, for GraphQL transports.
    pub operation: Option<OperationInfo>,
    pub status: u16,
    pub started: Instant,
    pub at: chrono::DateTime<Utc>,
    pub rate_limited: bool,
    pub request_id: Option<String>,
}

/// Counts `served` in the metrics and queues its request-log entry.
pub(super) async fn record(state: &AppState, served: Served<'_>) {
    let latency = served.started.elapsed();
    let (endpoint, operation_type) = match served.operation {
        Some(op) => (op.name, op.kind),
        None => (served.route.clone(), None),
    };
    let label = match served.transport {
        Transport::Rest | Transport::OpenAi => served.route,
        Transport::Graphql | Transport::Ws => operation_type.unwrap_or("invalid").to_owned(),
    };
    state.metrics.observe(
        RequestLabels {
            transport: served.transport.as_str(),
            endpoint: label,
            status: served.status,
        },
        latency.as_secs_f64(),
    );
    state
        .request_log
        .record(Entry {
            org_id: served.principal.billed_org().as_str().to_owned(),
            key_id: served.principal.key_id().map(str::to_owned),
            app_id: served.principal.app_id().map(str::to_owned),
            transport: served.transport,
            method: served.method,
            endpoint,
            operation_type,
            status: served.status,
            latency_ms: latency.as_secs_f64() * 1000.0,
            rate_limited: served.rate_limited,
            request_id: served.request_id,
            at: served.at,
        })
        .await;
}

/// The client's address, when the server was started with connection info.
pub(super) fn peer(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip())
}

/// A widget token works only on its app's allowed origins (browsers send `Origin`).
pub(super) fn check_origin(principal: &Principal, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(grant) = principal.visitor_grant() else {
        return Ok(());
    };
    match headers.get(ORIGIN).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(origin)) if grant.allows_origin(origin) => Ok(()),
        Some(origin) => Err(AppError::Forbidden(format!(
            "the widget may not run on {}: add the origin to the OAuth app's allowed origins",
            origin.unwrap_or("this origin")
        ))),
    }
}

/// The transport's error shape.
fn refusal(transport: Transport, error: AppError) -> Response {
    match transport {
        Transport::Graphql => graphql::refuse(error),
        Transport::OpenAi => super::openai::refusal(error),
        Transport::Rest | Transport::Ws => error.into_response(),
    }
}

/// `X-RateLimit-*` and the IETF `RateLimit-Policy` / `RateLimit` headers.
pub fn set_rate_limit_headers(headers: &mut HeaderMap, decision: &Decision) {
    let policy = decision.policy;
    let pairs = [
        ("x-ratelimit-limit", policy.limit.to_string()),
        ("x-ratelimit-remaining", decision.remaining.to_string()),
        ("x-ratelimit-reset", decision.reset_at.to_string()),
        (
            "ratelimit-policy",
            format!("\"org\";q={};w={}", policy.limit, policy.window_seconds),
        ),
        (
            "ratelimit",
            format!(
                "\"org\";r={};t={}",
                decision.remaining, decision.reset_after
            ),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// The caller admitted by [`govern`], for handlers.
pub fn principal_of(parts: &axum::http::request::Parts) -> Result<Principal, AppError> {
    parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| AppError::Unauthenticated("missing credentials".into()))
}
