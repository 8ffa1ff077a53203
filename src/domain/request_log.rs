//! One logged request: what the request path records and the request log stores.

use chrono::{DateTime, Utc};

/// How a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The REST layer.
    Rest,
    /// GraphQL over HTTP.
    Graphql,
    /// A GraphQL operation started over websocket.
    Ws,
    /// The OpenAI-compatible API under `/v1`.
    OpenAi,
}

impl Transport {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Graphql => "graphql",
            Self::Ws => "ws",
            Self::OpenAi => "openai",
        }
    }
}

/// One request to log.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The caller's organization.
    pub org_id: String,
    /// The API key, for key-authenticated requests.
    pub key_id: Option<String>,
    /// The OAuth app, for widget-token requests.
    pub app_id: Option<String>,
    /// How it arrived.
    pub transport: Transport,
    /// HTTP method (`WS` for websocket operations).
    pub method: String,
    /// Route template or GraphQL operation name.
    pub endpoint: String,
    /// GraphQL operation type.
    pub operation_type: Option<&'static str>,
    /// HTTP status answered.
    pub status: u16,
    /// Time to answer, in milliseconds.
    pub latency_ms: f64,
    /// Whether the rate limiter refused it.
    pub rate_limited: bool,
    /// The `X-Request-Id` it carried.
    pub request_id: Option<String>,
    /// When it arrived.
    pub at: DateTime<Utc>,
}
