//! A small OpenAI-compatible server on loopback: real HTTP, real SSE chunks. Each test scripts
//! the answers; every request is recorded.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A streamed chat completion of these pieces, then `finish_reason` and usage.
    Stream(Vec<&'static str>, &'static str),
    /// A non-streamed chat completion with this content.
    Message(String),
    /// Embeddings of this many dimensions for each input (`[len(text), 1, 0, …]`), in
    /// reverse order of `index` to check the client sorts them.
    Embeddings(usize),
    /// An error status with an OpenAI error body of `type`.
    Error(u16, &'static str),
    /// A streamed chat completion that sends these pieces and then never ends (a model that
    /// hangs mid-reply).
    Stall(Vec<&'static str>),
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<(String, Value)>>,
    traceparents: Mutex<Vec<Option<String>>>,
}

/// A running fake provider.
pub struct FakeOpenAi {
    /// Its base URL, `http://127.0.0.1:port/v1`.
    pub base_url: String,
    script: Arc<Script>,
}

impl FakeOpenAi {
    /// Starts a provider that answers with `replies` in order (the last one repeats).
    pub async fn start(replies: Vec<Reply>) -> Self {
        let script = Arc::new(Script {
            replies: Mutex::new(replies.into()),
            requests: Mutex::default(),
            traceparents: Mutex::default(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .route("/v1/embeddings", post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, script }
    }

    /// The requests received: path and JSON body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.script.requests.lock().expect("lock").clone()
    }

    /// The `traceparent` header of each request received, in order.
    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.script.traceparents.lock().expect("lock").clone()
    }
}

async fn answer(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    script.traceparents.lock().expect("lock").push(
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    script
        .requests
        .lock()
        .expect("lock")
        .push((uri.path().to_owned(), body.clone()));
    let reply = {
        let mut replies = script.replies.lock().expect("lock");
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    };
    match reply {
        Some(Reply::Stream(pieces, finish)) => stream(&pieces, finish),
        Some(Reply::Stall(pieces)) => stall(&pieces),
        Some(Reply::Message(content)) => Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{ "index": 0, "finish_reason": "stop",
                "message": { "role": "assistant", "content": content } }],
            "usage": { "prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10 }
        }))
        .into_response(),
        Some(Reply::Embeddings(dimensions)) => {
            let inputs: Vec<String> = match &body["input"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default().to_owned())
                    .collect(),
                _ => Vec::new(),
            };
            let mut data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    let mut vector = vec![0.0f32; dimensions];
                    vector[0] = text.len() as f32;
                    vector[1] = 1.0;
                    json!({ "object": "embedding", "index": index, "embedding": vector })
                })
                .collect();
            data.reverse();
            Json(
                json!({ "object": "list", "model": body["model"], "data": data,
                "usage": { "prompt_tokens": 1, "total_tokens": 1 } }),
            )
            .into_response()
        }
        Some(Reply::Error(status, kind)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::RETRY_AFTER, "0")],
            Json(
                json!({ "error": { "message": format!("scripted {kind}"), "type": kind,
                "param": null, "code": null } }),
            ),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn stream(pieces: &[&str], finish: &str) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "fake", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] })
    };
    let mut events = vec![chunk(
        json!({ "role": "assistant", "content": "" }),
        Value::Null,
    )];
    events.extend(
        pieces
            .iter()
            .map(|p| chunk(json!({ "content": p }), Value::Null)),
    );
    events.push(chunk(json!({}), json!(finish)));
    events.push(json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "fake", "choices": [],
        "usage": { "prompt_tokens": 11, "completion_tokens": pieces.len(), "total_tokens": 11 + pieces.len() } }));
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn stall(pieces: &[&str]) -> Response {
    let sent: Vec<Result<String, std::convert::Infallible>> = pieces
        .iter()
        .map(|p| {
            let chunk = json!({ "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "fake", "choices": [{ "index": 0, "delta": { "content": p }, "finish_reason": null }] });
            Ok(format!("data: {chunk}\n\n"))
        })
        .collect();
    let body = futures::StreamExt::chain(futures::stream::iter(sent), futures::stream::pending());
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}
