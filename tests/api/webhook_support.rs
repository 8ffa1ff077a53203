//! A webhook receiver on loopback: records every request, answers 500 to the first few when
//! asked to, and verifies signatures the way the README tells receivers to.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Mutex, mpsc};

use crate::helpers::TestApp;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    pub fn event_id(&self) -> &str {
        self.json["id"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether the request is signed with `secret` both ways: `Companin-Signature` and the
    /// Standard Webhooks headers.
    pub fn signed_with(&self, secret: &str) -> bool {
        self.companin_signed_with(secret) && self.standard_signed_with(secret)
    }

    /// Whether `Companin-Signature` carries a `v1` that is HMAC-SHA256 of `"{t}.{body}"`
    /// with `secret`, with `t` within five minutes of now.
    fn companin_signed_with(&self, secret: &str) -> bool {
        let header = self.header("companin-signature");
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", v)) => signatures.push(v.to_owned()),
                _ => {}
            }
        }
        let Some(t) = timestamp else {
            return false;
        };
        if (chrono::Utc::now().timestamp() - t).abs() > 300 {
            return false;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{t}.").as_bytes());
        mac.update(&self.body);
        let expected = hex::encode(mac.finalize().into_bytes());
        signatures.contains(&expected)
    }

    /// Whether `webhook-id` is the event id, `webhook-timestamp` within five minutes of now
    /// and `webhook-signature` holds `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`
    /// keyed with the base64-decoded part of `secret` after `whsec_` (Standard Webhooks).
    fn standard_signed_with(&self, secret: &str) -> bool {
        let id = self.header("webhook-id");
        let Ok(timestamp) = self.header("webhook-timestamp").parse::<i64>() else {
            return false;
        };
        if id != self.event_id() || (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
            return false;
        }
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("the secret is base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.header("webhook-signature")
            .split(' ')
            .any(|candidate| candidate == expected)
    }

    /// How many secrets signed the request (as many `v1` of each kind).
    pub fn signature_count(&self) -> usize {
        let companin = self.header("companin-signature").matches("v1=").count();
        let standard = self.header("webhook-signature").split(' ').count();
        assert_eq!(companin, standard, "both signatures name every secret");
        companin
    }
}

#[derive(Clone)]
struct Shared {
    fail_first: Arc<AtomicUsize>,
    sink: mpsc::UnboundedSender<Received>,
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let failing = shared
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let _ = shared.sink.send(Received {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}

/// A receiver; requests are read in arrival order.
pub struct Receiver {
    pub url: String,
    inbox: Mutex<mpsc::UnboundedReceiver<Received>>,
    /// Requests read past while looking for another type.
    held: Mutex<VecDeque<Received>>,
}

impl Receiver {
    /// Starts a receiver that answers 500 to its first `fail_first` requests (`usize::MAX`:
    /// to all of them).
    pub async fn start(fail_first: usize) -> Self {
        let (sink, inbox) = mpsc::unbounded_channel();
        let shared = Shared {
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            sink,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/hooks", post(receive))
            .with_state(shared);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://{address}/hooks"),
            inbox: Mutex::new(inbox),
            held: Mutex::new(VecDeque::new()),
        }
    }

    /// The next request, in arrival order.
    pub async fn next(&self) -> Received {
        if let Some(held) = self.held.lock().await.pop_front() {
            return held;
        }
        tokio::time::timeout(Duration::from_secs(30), self.inbox.lock().await.recv())
            .await
            .expect("a webhook request within 30 s")
            .expect("receiver open")
    }

    /// The next request carrying an event of `event_type`; others are kept for later.
    pub async fn next_of(&self, event_type: &str) -> Received {
        {
            let mut held = self.held.lock().await;
            if let Some(at) = held.iter().position(|r| r.event_type() == event_type) {
                return held.remove(at).expect("present");
            }
        }
        loop {
            let received =
                tokio::time::timeout(Duration::from_secs(30), self.inbox.lock().await.recv())
                    .await
                    .unwrap_or_else(|_| panic!("a `{event_type}` webhook within 30 s"))
                    .expect("receiver open");
            if received.event_type() == event_type {
                return received;
            }
            self.held.lock().await.push_back(received);
        }
    }
}

impl TestApp {
    /// Creates a webhook endpoint over GraphQL; returns its id and secret.
    pub async fn webhook(&self, key: &str, url: &str, events: Value) -> (String, String) {
        let data = self
            .gql_ok(
                key,
                "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id url events enabled } } }",
                json!({ "input": { "url": url, "events": events } }),
            )
            .await;
        let created = &data["createWebhook"];
        (
            created["webhook"]["id"].as_str().expect("id").to_owned(),
            created["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// Every delivery of endpoint `id`, oldest first, with its event and attempts.
    pub async fn deliveries(&self, key: &str, id: &str) -> Vec<Value> {
        let data = self
            .gql_ok(
                key,
                "query($id: ID!) { node(id: $id) { ... on Webhook { deliveries(first: 100) { edges { node {
                    id status attemptCount lastStatusCode lastError nextAttemptAt deliveredAt
                    event { id type payload } attempts { statusCode error durationMs } } } } } } }",
                json!({ "id": id }),
            )
            .await;
        data["node"]["deliveries"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }
}
