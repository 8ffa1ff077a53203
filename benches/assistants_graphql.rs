//! `assistants(first: 20)` over GraphQL with API-key auth, against a bare axum handler that
//! reads the same 20 rows from the same database, in one run, with one load generator; and
//! the same GraphQL server with the rate limiter and the request log switched off, to
//! measure what governance costs (goal: at most 10 %).
//!
//! Last, the governed server again with OpenTelemetry exporting every span (request, root
//! field, database statements) over OTLP/HTTP to a loopback collector that accepts and
//! discards them, to measure what tracing costs.
//!
//! Run: `cargo bench --profile dev --bench assistants_graphql`
//! (`BENCH_SECONDS` sets the measured seconds per target, default 10; `BENCH_CONNECTIONS`
//! the concurrent connections, default 64.)

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Json, Router, extract::State, routing::get};
use companin::{
    auth::{ApiKeyAuthenticator, Authenticator, Credentials},
    config::{HttpSettings, RateLimitSettings, Settings},
    db,
    domain::assistant::AssistantPatch,
    services,
    startup::Application,
};
use entity::{assistant, assistant_version};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};

const QUERY: &str = "{ assistants(first: 20) { nodes { id name language version } } }";

fn main() -> anyhow::Result<()> {
    let seconds = env_or("BENCH_SECONDS", 10);
    let connections = env_or("BENCH_CONNECTIONS", 64);
    let collector = std::net::TcpListener::bind("127.0.0.1:0")?;
    collector.set_nonblocking(true)?;
    let servers = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let (graphql_url, ungoverned_url, bare_url, key) =
        servers.block_on(start(dir.path().to_path_buf()))?;

    let load = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "assistants(first: 20) · {connections} connections · {seconds} s per target after 2 s warm-up"
    );
    let bare = load.block_on(drive(Target::Bare(bare_url), connections, seconds))?;
    let ungoverned = load.block_on(drive(
        Target::Graphql(ungoverned_url, key.clone()),
        connections,
        seconds,
    ))?;
    let graphql = load.block_on(drive(
        Target::Graphql(graphql_url, key.clone()),
        connections,
        seconds,
    ))?;
    let traced_url = servers.block_on(traced(dir.path().to_path_buf(), collector))?;
    let traced = load.block_on(drive(
        Target::Graphql(traced_url, key),
        connections,
        seconds,
    ))?;
    bare.print("bare axum handler (same rows)");
    ungoverned.print("GraphQL, no limiter or log");
    graphql.print("GraphQL + API key (governed)");
    traced.print("governed + OTLP traces");
    println!(
        "ratio GraphQL / bare: {:.2} (goal ≥ 0.50)",
        graphql.per_second / bare.per_second
    );
    println!(
        "ratio governed / ungoverned: {:.3} (limiter + request log overhead {:.1} %, goal ≤ 10 %)",
        graphql.per_second / ungoverned.per_second,
        (1.0 - graphql.per_second / ungoverned.per_second) * 100.0
    );
    println!(
        "ratio traced / governed: {:.3} (tracing overhead {:.1} %)",
        traced.per_second / graphql.per_second,
        (1.0 - traced.per_second / graphql.per_second) * 100.0
    );
    Ok(())
}

/// Switches tracing on (exporting to a collector on `listener` that discards what it gets)
/// and starts a governed server over the same database; returns its GraphQL URL.
async fn traced(
    data_dir: std::path::PathBuf,
    listener: std::net::TcpListener,
) -> anyhow::Result<String> {
    let sink = Router::new().route(
        "/v1/traces",
        axum::routing::post(|_: axum::body::Bytes| async {}),
    );
    let endpoint = format!("http://{}/v1/traces", listener.local_addr()?);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(async move { axum::serve(listener, sink).await });
    let telemetry =
        companin::telemetry::init_exporting_to(companin::config::LogFormat::Pretty, &endpoint)?;
    std::mem::forget(telemetry);
    anyhow::ensure!(companin::telemetry::exporting(), "tracing is on");
    let app = Application::build(bench_settings(data_dir)?).await?;
    let url = format!("http://{}/graphql", app.address());
    tokio::spawn(app.run_until_stopped());
    Ok(url)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the servers (governed, ungoverned, bare) over one SQLite database holding 20
/// assistants.
async fn start(data_dir: std::path::PathBuf) -> anyhow::Result<(String, String, String, String)> {
    let settings = bench_settings(data_dir)?;
    let app = Application::build(settings.clone()).await?;
    let graphql_url = format!("http://{}/graphql", app.address());
    tokio::spawn(app.run_until_stopped());
    let ungoverned = Application::build(Settings {
        rate_limits: RateLimitSettings {
            rate_limit_enabled: false,
            request_log_enabled: false,
            ..settings.clone().rate_limits
        },
        ..settings.clone()
    })
    .await?;
    let ungoverned_url = format!("http://{}/graphql", ungoverned.address());
    tokio::spawn(ungoverned.run_until_stopped());

    let db = db::connect(&settings).await?;
    let (org, key) = services::organizations::create(&db, "Bench", false)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-api-key", key.key.parse()?);
    let credentials = Credentials {
        headers: &headers,
        peer: None,
    };
    let principal = ApiKeyAuthenticator::new(db.clone())
        .authenticate(&credentials)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?
        .ok_or_else(|| anyhow::anyhow!("the key was not recognised"))?;
    for i in 0..20 {
        let patch = AssistantPatch {
            name: Some(format!("Assistant {i}")),
            ..AssistantPatch::default()
        };
        services::assistants::create(&db, &principal, patch, true)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    }

    let bare = Router::new()
        .route("/assistants", get(bare_assistants))
        .with_state(Arc::new((db, org.id)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bare_url = format!("http://{}/assistants", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, bare).await });
    Ok((graphql_url, ungoverned_url, bare_url, key.key))
}

/// The governed server's settings over `data_dir`.
fn bench_settings(data_dir: std::path::PathBuf) -> anyhow::Result<Settings> {
    Ok(Settings {
        data_dir,
        http: HttpSettings {
            bind: "127.0.0.1:0".parse()?,
            ..Settings::default().http
        },
        // The benchmark measures serving, not the per-organization budget.
        rate_limits: RateLimitSettings {
            rate_limit_per_hour: u32::MAX,
            ..Settings::default().rate_limits
        },
        ..Settings::default()
    })
}

/// The baseline: the same query the GraphQL resolver runs, serialized straight to JSON.
async fn bare_assistants(State(state): State<Arc<(DatabaseConnection, String)>>) -> Json<Value> {
    let (db, org) = &*state;
    let rows = assistant::Entity::find()
        .filter(assistant::Column::OrgId.eq(org.as_str()))
        .filter(assistant::Column::DeletedAt.is_null())
        .find_also_related(assistant_version::Entity)
        .order_by_asc(assistant::Column::Id)
        .limit(21)
        .all(db)
        .await
        .unwrap_or_default();
    let nodes: Vec<Value> = rows
        .into_iter()
        .take(20)
        .filter_map(|(a, v)| v.map(|v| json!({ "id": a.id, "name": v.name, "language": v.language, "version": v.version })))
        .collect();
    Json(json!({ "data": { "assistants": { "nodes": nodes } } }))
}

enum Target {
    Bare(String),
    Graphql(String, String),
}

struct Outcome {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
}

impl Outcome {
    fn print(&self, name: &str) {
        println!(
            "{name:<32} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests)",
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests
        );
    }
}

/// Runs `connections` request loops against `target`: a warm-up, then the measured window.
async fn drive(target: Target, connections: u64, seconds: u64) -> anyhow::Result<Outcome> {
    let target = Arc::new(target);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()?;
    let warm_up = Instant::now() + Duration::from_secs(2);
    let end = warm_up + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, target) = (client.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let request = match &*target {
                    Target::Bare(url) => client.get(url),
                    Target::Graphql(url, key) => client
                        .post(url)
                        .header("x-api-key", key)
                        .json(&json!({ "query": QUERY })),
                };
                let response = request.send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "status {}",
                    response.status()
                );
                let body: Value = response.json().await?;
                anyhow::ensure!(
                    body["data"]["assistants"]["nodes"].as_array().map(Vec::len) == Some(20),
                    "20 rows"
                );
                if started >= warm_up {
                    latencies.push(started.elapsed());
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Outcome {
        per_second: all.len() as f64 / seconds as f64,
        p50: at(0.50),
        p99: at(0.99),
        requests: all.len(),
    })
}
