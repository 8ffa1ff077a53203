//! OpenTelemetry: `companin serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports its spans to a
//! loopback OTLP receiver; the caller's `traceparent` comes back in them, and webhooks carry
//! it on. `/metrics` counts what the traces show.

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{KeyValue, any_value::Value as Attribute},
    trace::v1::Span,
};
use prost::Message;
use reqwest::Method;
use serde_json::json;
use tokio::sync::Mutex;

use crate::{
    fake_openai::{FakeOpenAi, Reply},
    helpers::{TestApp, serve_binary},
    webhook_support::Receiver,
    ws_support::Ws,
};

/// The caller's trace and span, as `traceparent` names them.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";
/// Another trace, for the GraphQL request.
const GRAPHQL_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// An OTLP/HTTP receiver on loopback: keeps every span exported to it.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

async fn collect(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut kept = spans.lock().await;
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            kept.extend(scope.spans);
        }
    }
    Vec::new()
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/v1/traces", post(collect))
            .with_state(spans.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url: format!("http://{address}"),
            spans,
        }
    }

    /// The spans of `trace` once `done` holds for them (the exporter sends in batches).
    async fn trace(&self, trace: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        for _ in 0..200 {
            let of_trace: Vec<Span> = self
                .spans
                .lock()
                .await
                .iter()
                .filter(|s| hex::encode(&s.trace_id) == trace)
                .cloned()
                .collect();
            if done(&of_trace) {
                return of_trace;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let names: Vec<String> = self
            .spans
            .lock()
            .await
            .iter()
            .map(|s| format!("{} {}", hex::encode(&s.trace_id), s.name))
            .collect();
        panic!("trace {trace} was not exported whole; spans exported: {names:?}");
    }
}

/// The value of attribute `key`, as text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let found: &KeyValue = span.attributes.iter().find(|a| a.key == key)?;
    Some(match found.value.as_ref()?.value.as_ref()? {
        Attribute::StringValue(s) => s.clone(),
        Attribute::IntValue(i) => i.to_string(),
        Attribute::DoubleValue(d) => d.to_string(),
        Attribute::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

fn named<'a>(spans: &'a [Span], name: &str) -> Option<&'a Span> {
    spans.iter().find(|s| s.name == name)
}

fn gen_ai_chat(spans: &[Span]) -> Option<&Span> {
    spans
        .iter()
        .find(|s| attribute(s, "gen_ai.operation.name").as_deref() == Some("chat"))
}

#[tokio::test]
async fn exported_spans_continue_the_callers_trace_from_the_request_to_the_model_and_the_webhook() {
    let app = TestApp::spawn_with(|s| {
        s.ingestion.allow_private_urls = true;
        // The served process delivers the webhooks, not this one.
        s.webhooks.webhook_workers = 0;
    })
    .await;
    let collector = Collector::start().await;
    let hooks = Receiver::start(0).await;
    let assistant = app.assistant(&app.key, json!({})).await;
    app.uploaded(
        &app.key,
        "ferries.txt",
        "Parcels to Iceland travel by ferry and arrive within nine working days.",
    )
    .await;
    let (webhook, _) = app
        .webhook(&app.key, &hooks.url, json!(["knowledge.ready"]))
        .await;
    let provider = FakeOpenAi::start(vec![Reply::Stream(
        vec![
            "Parcels go by ferry ",
            "and arrive within nine working days [1].",
        ],
        "stop",
    )])
    .await;
    let (_server, served) = serve_binary(
        &app,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("COMPANIN_ALLOW_PRIVATE_URLS", "true"),
            ("COMPANIN_LLM", "openai"),
            ("OPENAI_BASE_URL", provider.base_url.as_str()),
            ("OPENAI_API_KEY", "sk-test"),
        ],
    )
    .await;

    // A REST message that continues the caller's trace.
    let session = served
        .session(&served.key, json!({ "assistant_id": assistant }))
        .await;
    let (status, sent) = TestApp::send(
        served
            .rest(
                Method::POST,
                "/api/v1/conversations/send-message",
                &served.key,
            )
            .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
            .json(
                &json!({ "session_id": session["id"], "message": "How do parcels reach Iceland?" }),
            ),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let spans = collector
        .trace(TRACE, |spans| {
            named(spans, "POST /api/v1/conversations/send-message").is_some()
                && gen_ai_chat(spans).is_some()
                && named(spans, "vector search").is_some()
        })
        .await;
    let request = named(&spans, "POST /api/v1/conversations/send-message").expect("request span");
    assert_eq!(
        hex::encode(&request.parent_span_id),
        CALLER,
        "a child of the caller's span"
    );
    assert_eq!(
        attribute(request, "http.route").as_deref(),
        Some("/api/v1/conversations/send-message")
    );
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    let chat = gen_ai_chat(&spans).expect("model call span");
    assert_eq!(
        attribute(chat, "gen_ai.request.model").as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        attribute(chat, "gen_ai.provider.name").as_deref(),
        Some("openai")
    );
    // The provider call carries the trace on, as a child of the model call's span.
    let sent = provider.traceparents();
    let chat_call = sent
        .iter()
        .flatten()
        .find(|t| t.contains(TRACE))
        .unwrap_or_else(|| panic!("the provider call carries the trace: {sent:?}"));
    assert_eq!(
        chat_call.split('-').nth(2),
        Some(hex::encode(&chat.span_id).as_str()),
        "{chat_call}"
    );
    for key in [
        "gen_ai.provider.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.server.time_to_first_token",
    ] {
        assert!(attribute(chat, key).is_some(), "{key} on {chat:?}");
    }
    assert!(
        spans
            .iter()
            .any(|s| attribute(s, "gen_ai.operation.name").as_deref() == Some("embeddings")),
        "the question is embedded under the trace"
    );
    let search = named(&spans, "vector search").expect("search span");
    assert_eq!(
        attribute(search, "db.system.name").as_deref(),
        Some("lancedb")
    );
    let system = if app.database_url().starts_with("postgres") {
        "postgresql"
    } else {
        "sqlite"
    };
    assert!(
        spans
            .iter()
            .any(|s| attribute(s, "db.system").as_deref() == Some(system)),
        "database statements are spans of the trace"
    );

    // A GraphQL operation, whose webhook test carries the trace to the receiver.
    let (status, body) = TestApp::send(
        served
            .rest(Method::POST, "/graphql", &served.key)
            .header("traceparent", format!("00-{GRAPHQL_TRACE}-{CALLER}-01"))
            .json(&json!({
                "query": "mutation Ping($id: ID!) { testWebhook(id: $id) { status } }",
                "variables": { "id": webhook },
                "operationName": "Ping",
            })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["testWebhook"]["status"], "SUCCEEDED", "{body}");
    let received = hooks.next_of("webhook.test").await;
    let traceparent = received
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("the webhook carries traceparent")
        .to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.get(1), Some(&GRAPHQL_TRACE), "{traceparent}");
    let spans = collector
        .trace(GRAPHQL_TRACE, |spans| {
            named(spans, "mutation Ping").is_some()
                && named(spans, "Mutation.testWebhook").is_some()
                && named(spans, "webhook delivery").is_some()
        })
        .await;
    let delivery = named(&spans, "webhook delivery").expect("delivery span");
    assert_eq!(
        Some(hex::encode(&delivery.span_id).as_str()),
        parts.get(2).copied(),
        "the receiver sees the delivery's span as its parent"
    );
    assert_eq!(
        attribute(delivery, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The metrics count the same work.
    let metrics = metrics(&served).await;
    for expected in [
        "companin_model_tokens_total{model=\"openai:gpt-4o-mini\",kind=\"output\"}",
        "companin_model_first_token_seconds_count{model=\"openai:gpt-4o-mini\"} 1",
        "companin_webhook_attempts_total{outcome=\"succeeded\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} in\n{metrics}");
    }
}

/// The value of the metric line starting with `name ` (a gauge without labels).
fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

async fn metrics(app: &TestApp) -> String {
    reqwest::get(format!("{}/metrics", app.address))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn metrics_show_queued_ingestion_open_websockets_and_the_database_pool() {
    let app = TestApp::spawn_with(|s| s.ingestion.ingest_workers = 0).await;
    let before = metrics(&app).await;
    assert_eq!(
        gauge(&before, "companin_ingest_jobs_queued"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        gauge(&before, "companin_websockets_open"),
        Some(0.0),
        "{before}"
    );
    assert!(
        gauge(&before, "companin_db_pool_connections").is_some_and(|n| n >= 1.0),
        "{before}"
    );
    assert!(
        gauge(&before, "companin_db_pool_idle").is_some(),
        "{before}"
    );

    let (status, _) = app
        .upload(
            &app.key,
            "notes.txt",
            b"Queued until a worker runs.".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let socket = Ws::ready(&app, &app.key).await;
    let during = metrics(&app).await;
    assert_eq!(
        gauge(&during, "companin_ingest_jobs_queued"),
        Some(1.0),
        "{during}"
    );
    assert_eq!(
        gauge(&during, "companin_websockets_open"),
        Some(1.0),
        "{during}"
    );
    drop(socket);
    let mut open = Some(1.0);
    for _ in 0..50 {
        open = gauge(&metrics(&app).await, "companin_websockets_open");
        if open == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, Some(0.0), "a closed websocket is no longer counted");
}
