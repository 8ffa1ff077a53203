//! Helpers for conversation tests: assistants, sessions, sending, reading event streams.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Every field of every reply event.
pub const CHAT: &str =
    "subscription($input: SendMessageInput!) { chat(input: $input) { ...Events } }";
/// Re-attaching to a reply.
pub const REPLY_STREAM: &str =
    "subscription($id: ID!) { replyStream(messageId: $id) { ...Events } }";
/// The event fields, appended to the operations above.
pub const EVENTS: &str = "fragment Events on ReplyEvent { __typename
  ... on ReplyStarted { conversationId messageId userMessageId }
  ... on ReplyDelta { messageId index delta }
  ... on ReplyCitations { messageId citations { sourceId title chunkText score } }
  ... on ReplyCompleted { message { id conversationId role status content model error
      citations { sourceId } usage { promptTokens completionTokens } latencyMs firstTokenMs } }
  ... on ReplyFailed { messageId error errorCode } }";

/// An operation with the event fragment.
pub fn with_events(operation: &str) -> String {
    format!("{operation}\n{EVENTS}")
}

impl TestApp {
    /// Creates an assistant over GraphQL with extra settings; returns its id.
    pub async fn assistant(&self, key: &str, extra: Value) -> String {
        let mut input = json!({ "name": "Helper", "instructions": "You help customers of Acme." });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let data = self
            .gql_ok(
                key,
                "mutation($input: CreateAssistantInput!) { createAssistant(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createAssistant"]["id"]
            .as_str()
            .expect("assistant id")
            .to_owned()
    }

    /// Opens a session over REST; returns it.
    pub async fn session(&self, key: &str, body: Value) -> Value {
        let (status, session) =
            TestApp::send(self.rest(Method::POST, "/api/v1/sessions", key).json(&body)).await;
        assert_eq!(status, 201, "{session}");
        session
    }

    /// Sends a message over GraphQL and waits for the reply; returns the payload.
    pub async fn say(&self, key: &str, input: Value) -> Value {
        let data = self
            .gql_ok(
                key,
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                    userMessage { id conversationId role status content }
                    reply { id conversationId role status content model error replyTo
                        assistantVersion citations { sourceId title chunkText score }
                        usage { promptTokens completionTokens } latencyMs firstTokenMs } } }",
                json!({ "input": input }),
            )
            .await;
        data["sendMessage"].clone()
    }

    /// Rates the reply of `sent` (what [`TestApp::say`] returns) over GraphQL.
    pub async fn rate(&self, key: &str, sent: &Value, rating: i32) {
        self.gql_ok(
            key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({ "input": { "conversationId": sent["userMessage"]["conversationId"],
                "messageId": sent["reply"]["id"], "rating": rating } }),
        )
        .await;
    }

    /// A message over GraphQL.
    pub async fn message(&self, key: &str, id: &str) -> Value {
        let data = self
            .gql_ok(
                key,
                "query($id: ID!) { message(id: $id) { id role status content model error citations { sourceId } } }",
                json!({ "id": id }),
            )
            .await;
        data["message"].clone()
    }
}

/// The `chat`/`replyStream` events of `next` payloads.
pub fn events(payloads: &[Value], field: &str) -> Vec<Value> {
    payloads
        .iter()
        .map(|p| {
            assert!(p.get("errors").is_none(), "unexpected errors: {p}");
            p["data"][field].clone()
        })
        .collect()
}

/// Checks the shape of a whole reply's events (started, deltas 0..n without gaps,
/// citations, completed) and returns the text the deltas make and the completed message.
pub fn whole_reply(events: &[Value]) -> (String, Value) {
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["__typename"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.first(), Some(&"ReplyStarted"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"ReplyCompleted"), "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2], "ReplyCitations", "{kinds:?}");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["__typename"] == "ReplyDelta")
        .collect();
    for (i, delta) in deltas.iter().enumerate() {
        assert_eq!(delta["index"], i, "deltas arrive in order without gaps");
    }
    let text: String = deltas
        .iter()
        .map(|d| d["delta"].as_str().unwrap_or_default())
        .collect();
    let completed = events.last().expect("events")["message"].clone();
    (text, completed)
}

/// The events of a `text/event-stream` body: (event name, JSON data).
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    sse_frames(body)
        .into_iter()
        .map(|frame| (frame.name, frame.data))
        .collect()
}

/// One event of a `text/event-stream` body.
#[derive(Debug, Clone)]
pub struct SseFrame {
    /// `id:`, when the event has one.
    pub id: Option<u64>,
    pub name: String,
    pub data: Value,
}

/// The named events of a `text/event-stream` body (comment lines and partial blocks aside).
pub fn sse_frames(body: &str) -> Vec<SseFrame> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let (mut id, mut name, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                }
            }
            Some(SseFrame {
                id,
                name: name?,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            })
        })
        .collect()
}
