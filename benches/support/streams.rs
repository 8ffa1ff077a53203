//! What the streaming benchmarks share: a chat model that stamps each token with the time it
//! was emitted, latency samples, and a GraphQL client over HTTP and websocket.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use companin::models::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Completion, FinishReason, ModelError,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    connect_async_with_config,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// The model emits a token this often.
pub const TOKEN_EVERY: Duration = Duration::from_millis(5);

pub static EPOCH: OnceLock<Instant> = OnceLock::new();

pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Emits `tokens` pieces, one every 5 ms; each piece is `<called>:<emitted> ` in µs.
pub struct StampedChat {
    /// Tokens per reply.
    pub tokens: usize,
}

#[async_trait]
impl ChatModel for StampedChat {
    fn id(&self) -> &str {
        "stamped"
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, ModelError> {
        let called = now_us();
        let tokens = self.tokens;
        Ok(async_stream::stream! {
            let mut tick = tokio::time::interval(TOKEN_EVERY);
            tick.tick().await;
            for _ in 0..tokens {
                tick.tick().await;
                yield Ok(ChatChunk::Delta(format!("{called}:{} ", now_us())));
            }
            yield Ok(ChatChunk::Done(Completion {
                finish_reason: FinishReason::Stop,
                prompt_tokens: 1,
                completion_tokens: tokens as u32,
                citations: Vec::new(),
            }));
        }
        .boxed())
    }
}

/// Latencies of one stream, in µs.
#[derive(Default)]
pub struct Sample {
    /// Per reply: time to the first token beyond the model's own, in µs.
    pub first_token_added: Vec<u64>,
    /// Per token: arrival − emission, in µs.
    pub per_token_added: Vec<u64>,
}

impl Sample {
    pub fn extend(&mut self, other: Sample) {
        self.first_token_added.extend(other.first_token_added);
        self.per_token_added.extend(other.per_token_added);
    }

    pub fn print(&mut self, label: &str) -> (f64, f64, f64) {
        let first = percentiles(&mut self.first_token_added);
        let token = percentiles(&mut self.per_token_added);
        println!(
            "{label:<34} first token added p50 {:>8.2} ms p99 {:>8.2} ms · per token added p50 {:>7.2} ms p99 {:>7.2} ms ({} tokens)",
            first.0,
            first.1,
            token.0,
            token.1,
            self.per_token_added.len()
        );
        (first.0, token.1, first.1)
    }
}

pub fn percentiles(values: &mut [u64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_unstable();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

/// Parses `<called>:<emitted> ` pieces, given the arrival time.
pub fn stamps(delta: &str) -> Option<(u64, u64)> {
    let (called, emitted) = delta.trim().split_once(':')?;
    Some((called.parse().ok()?, emitted.parse().ok()?))
}

pub async fn gql(
    http_url: &str,
    key: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = reqwest::Client::new()
        .post(format!("{http_url}/graphql"))
        .header("X-API-Key", key)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "GraphQL errors: {body}");
    Ok(body["data"].clone())
}

pub async fn create_assistant(http_url: &str, key: &str) -> anyhow::Result<String> {
    let data = gql(
        http_url,
        key,
        "mutation { createAssistant(input: {name: \"Bench\"}) { id } }",
        json!({}),
    )
    .await?;
    Ok(data["createAssistant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(ws_url: &str, key: &str) -> anyhow::Result<Socket> {
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = connect_async_with_config(request, None, true).await?;
    socket
        .send(Message::text(
            json!({"type": "connection_init", "payload": {"X-API-Key": key}}).to_string(),
        ))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().contains("connection_ack") => {
                return Ok(socket);
            }
            Some(Ok(_)) => {}
            other => anyhow::bail!("no ack: {other:?}"),
        }
    }
}
