//! Webhook delivery: how fast the outbox is drained into a receiver on loopback, against the
//! same number of plain signed-size POSTs from one HTTP client with the same concurrency
//! (the baseline, same run); how fast events are written to the outbox; and the latency
//! from an event's commit to its arrival at the receiver when the dispatchers are idle.
//!
//! Run: `cargo bench --profile dev --bench webhooks`
//! (`BENCH_EVENTS` events, default 2000; `BENCH_WORKERS` dispatchers, default 2.)

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::StatusCode, routing::post};
use companin::{
    auth::{ApiKeyAuthenticator, Authenticator, Credentials},
    auth::{Tenant, Work},
    config::{
        EmbedderChoice, HttpSettings, IngestionSettings, LlmChoice, ModelSettings,
        RateLimitSettings, Settings, WebhookSettings,
    },
    domain::ids::OrgId,
    runtime::outbox::emit_now,
    services::{
        self,
        webhooks::{Event, NewWebhook, Outbox},
    },
    startup::Application,
};
use futures::{StreamExt, stream};
use tokio::sync::Notify;

#[derive(Default)]
struct Received {
    count: AtomicU64,
    first_last: Mutex<Option<(Instant, Instant)>>,
    arrived: Notify,
}

impl Received {
    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        if let Ok(mut span) = self.first_last.lock() {
            *span = None;
        }
    }

    /// Waits until `n` requests arrived; the time from the first to the last.
    async fn wait_for(&self, n: u64) -> Duration {
        while self.count.load(Ordering::SeqCst) < n {
            let _ = tokio::time::timeout(Duration::from_millis(50), self.arrived.notified()).await;
        }
        self.first_last
            .lock()
            .ok()
            .and_then(|span| span.map(|(first, last)| last - first))
            .unwrap_or_default()
    }
}

async fn receive(State(received): State<Arc<Received>>, _body: axum::body::Bytes) -> StatusCode {
    let now = Instant::now();
    if let Ok(mut span) = received.first_last.lock() {
        let first = span.map_or(now, |(first, _)| first);
        *span = Some((first, now));
    }
    received.count.fetch_add(1, Ordering::SeqCst);
    received.arrived.notify_waiters();
    StatusCode::OK
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = env_or("BENCH_EVENTS", 2000);
    let workers = env_or("BENCH_WORKERS", 2) as usize;
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    let router = Router::new()
        .route("/hooks", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir()?;
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        http: HttpSettings {
            bind: "127.0.0.1:0".parse()?,
            ..Settings::default().http
        },
        models: ModelSettings {
            embedder: EmbedderChoice::Hash,
            llm: LlmChoice::Extractive,
            ..Settings::default().models
        },
        ingestion: IngestionSettings {
            allow_private_urls: true,
            ..Settings::default().ingestion
        },
        rate_limits: RateLimitSettings {
            rate_limit_per_hour: u32::MAX,
            ..Settings::default().rate_limits
        },
        webhooks: WebhookSettings {
            webhook_workers: 0,
            ..Settings::default().webhooks
        },
        ..Settings::default()
    };
    let writer = Application::build(settings.clone()).await?;
    let state = writer.state().clone();
    let (org, key) = services::organizations::create(&state.db, "Bench", false)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-api-key", key.key.parse()?);
    let principal = ApiKeyAuthenticator::new(state.db.clone())
        .authenticate(&Credentials {
            headers: &headers,
            peer: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?
        .ok_or_else(|| anyhow::anyhow!("the key was not recognised"))?;
    let webhook = services::webhooks::create(
        &state,
        &principal,
        NewWebhook {
            url: url.clone(),
            events: vec!["*".into()],
            description: None,
            enabled: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let org = OrgId::from_db(org.id);
    let tenant = Tenant::for_work(org.clone(), Work::Webhooks);
    let outbox = Outbox::from_settings(&settings.webhooks);
    let event = |i: u64| {
        Event::version_promoted(
            "asst_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &format!("ver_{i:032x}"),
            i as i32 + 2,
            Some("ver_0192bbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
        )
    };

    // Outbox writes: one transaction per event, as a change would commit it.
    let started = Instant::now();
    for i in 0..events {
        emit_now(&state.db, outbox, &tenant, event(i)).await?;
    }
    let writes = started.elapsed();

    // Baseline: the same number of POSTs of the same size from one client, same concurrency.
    let body = serde_json::json!({
        "id": "evt_0192cccccccccccccccccccccccccccc", "type": "assistant.version_promoted",
        "created_at": chrono::Utc::now(), "organization_id": org.as_str(), "data": event(0).data,
    })
    .to_string();
    let client = reqwest::Client::new();
    received.reset();
    stream::iter(0..events)
        .for_each_concurrent(workers, |_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move {
                let _ = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("companin-signature", "t=0,v1=0")
                    .body(body)
                    .send()
                    .await;
            }
        })
        .await;
    let plain = received.wait_for(events).await;

    // Dispatch: a server with dispatchers drains the outbox the writer filled.
    received.reset();
    let sender = Application::build(Settings {
        webhooks: WebhookSettings {
            webhook_workers: workers,
            ..settings.clone().webhooks
        },
        ..settings.clone()
    })
    .await?;
    let sender_state = sender.state().clone();
    let drained = received.wait_for(events).await;

    // Latency: one event at a time, committed and announced, until it arrives.
    let mut latencies = Vec::new();
    for i in 0..200 {
        let before = received.count.load(Ordering::SeqCst);
        let at = Instant::now();
        emit_now(&sender_state.db, outbox, &tenant, event(events + i)).await?;
        sender_state.webhook_signal.notify();
        received.wait_for(before + 1).await;
        latencies.push(at.elapsed());
    }
    latencies.sort();

    let per_second = |n: u64, d: Duration| (n.saturating_sub(1)) as f64 / d.as_secs_f64();
    let (deliveries, posts) = (per_second(events, drained), per_second(events, plain));
    println!(
        "events: {events}, dispatchers: {workers}, endpoint: {}",
        webhook.webhook.id
    );
    println!(
        "outbox writes (one transaction each): {:.0} events/s",
        events as f64 / writes.as_secs_f64()
    );
    println!("plain POSTs (baseline): {posts:.0} req/s");
    println!("webhook deliveries: {deliveries:.0} deliveries/s");
    println!("ratio deliveries / plain POSTs: {:.2}", deliveries / posts);
    println!(
        "commit → receiver, idle dispatchers: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1000.0,
        percentile(&latencies, 99.0).as_secs_f64() * 1000.0
    );
    Ok(())
}
