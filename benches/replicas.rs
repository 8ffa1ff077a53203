//! Scale-out, measured: replicas on one PostgreSQL database and one Redis, with the vector
//! store and the uploads in one shared directory (what an object store is to replicas on
//! several machines).
//!
//! - What the Redis reply broker adds per token and to the first token: a `chat` client on
//!   replica A (the generating replica) and a `conversationEvents` watcher on replica B
//!   follow the same replies; baseline in the same run: one replica without Redis.
//! - What an idle subscriber costs Redis: its connections before and after `BENCH_IDLE`
//!   idle subscriptions.
//! - Throughput of `assistants(first: 20)` and of `sendMessage` (a 5-token scripted model),
//!   against one replica and spread over two (both in this process, on this machine's cores).
//! - Ingestion of `BENCH_FILES` files by one replica's workers and by two replicas'.
//!
//! Needs Redis (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`) and PostgreSQL
//! (`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`; a throwaway
//! database is created in it and dropped).
//!
//! Run: `cargo bench --profile dev --bench replicas`

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use companin::{
    config::{
        DatabaseSettings, EmbedderChoice, HttpSettings, IngestionSettings, LlmChoice,
        ModelSettings, RateLimitSettings, RedisSettings, ReplySettings, Settings, VectorSettings,
    },
    models::Models,
    startup::Application,
};
use futures::{SinkExt, StreamExt};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use support::streams::{
    EPOCH, Sample, StampedChat, connect, create_assistant, gql, now_us, stamps,
};
use tokio_tungstenite::tungstenite::Message;

const TOKENS: usize = 50;
const REPLIES: usize = 20;
const CHAT: &str = "subscription($input: SendMessageInput!) { chat(input: $input) { \
    __typename ... on ReplyDelta { delta } } }";
const WATCH: &str = "subscription($c: ID!) { conversationEvents(conversationId: $c) { \
    __typename ... on ReplyDelta { delta } } }";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() -> anyhow::Result<()> {
    EPOCH.get_or_init(Instant::now);
    let redis = env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379");
    let admin = env_or(
        "BENCH_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let idle: usize = env_or("BENCH_IDLE", "500").parse()?;
    let files: usize = env_or("BENCH_FILES", "200").parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let database = Database::create(&admin).await?;
        let shared = tempfile::tempdir()?;
        let prefix = format!("bench-{}:", uuid::Uuid::now_v7().simple());
        let deployment = Deployment {
            database: database.url.clone(),
            redis: redis.clone(),
            prefix: prefix.clone(),
            shared: shared.path().to_path_buf(),
        };
        let outcome = measure(&deployment, &admin, &redis, idle, files).await;
        database.drop().await;
        outcome
    })
}

async fn measure(
    deployment: &Deployment,
    admin: &str,
    redis: &str,
    idle: usize,
    files: usize,
) -> anyhow::Result<()> {
    println!("replicas · PostgreSQL + Redis · a token every 5 ms · {TOKENS} tokens per reply");
    let alone = Replica::start(&Deployment::alone()?, 0, 0).await?;
    let a = Replica::start(deployment, 0, 0).await?;
    let b = Replica::start(deployment, 0, 0).await?;
    let key = a.org_key().await?;

    // 1. Per-token and first-token latency across replicas.
    let mut local = Sample::default();
    let alone_key = alone.org_key().await?;
    let alone_assistant = create_assistant(&alone.http, &alone_key).await?;
    for _ in 0..REPLIES {
        local.extend(chat_only(&alone, &alone_key, &alone_assistant).await?);
    }
    let assistant = create_assistant(&a.http, &key).await?;
    let (mut on_a, mut on_b) = (Sample::default(), Sample::default());
    for _ in 0..REPLIES {
        let (here, there) = chat_and_watch(&a, &b, &key, &assistant).await?;
        on_a.extend(here);
        on_b.extend(there);
    }
    println!("per-token and first-token latency the server adds ({REPLIES} replies):");
    let (_, base_p99, _) = local.print("baseline: one replica, no Redis");
    on_a.print("replica A, generating (Redis on)");
    let (first_b, p99_b, _) = on_b.print("replica B, following A via Redis");
    let p95 = |s: &mut Sample| percentiles_at(&mut s.per_token_added, 0.95);
    println!(
        "per token p95: baseline {:.2} ms, across replicas {:.2} ms (goal ≤ 20 ms); p99 {base_p99:.2} → {p99_b:.2} ms; first token across replicas p50 {first_b:.2} ms",
        p95(&mut local),
        p95(&mut on_b)
    );

    // 2. Idle subscribers and Redis connections.
    let before = redis_clients(redis).await?;
    let conversation = conversation_of(&a, &key, &assistant).await?;
    let mut sockets = Vec::with_capacity(idle);
    for _ in 0..idle {
        let mut socket = connect(&b.ws, &key).await?;
        let frame = json!({"id": "idle", "type": "subscribe", "payload": {
            "query": WATCH, "variables": {"c": conversation}}});
        socket.send(Message::text(frame.to_string())).await?;
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = redis_clients(redis).await?;
    println!(
        "Redis connections: {before} before, {after} with {idle} idle subscriptions on replica B (goal: no growth)"
    );
    drop(sockets);

    // 3. Throughput, one replica vs two, with a model that answers in 5 tokens (25 ms).
    let (a, b) = (
        Replica::start(deployment, 0, 5).await?,
        Replica::start(deployment, 0, 5).await?,
    );
    let list = |http: &str, key: &str| {
        let (http, key) = (http.to_owned(), key.to_owned());
        async move {
            gql(
                &http,
                &key,
                "{ assistants(first: 20) { nodes { id name } } }",
                json!({}),
            )
            .await
        }
    };
    let assistants_one = throughput(&[&a], &key, list).await?;
    let assistants_two = throughput(&[&a, &b], &key, list).await?;
    let send = move |http: &str, key: &str| {
        let (http, key, assistant) = (http.to_owned(), key.to_owned(), assistant.clone());
        async move {
            let session = gql(
                &http,
                &key,
                "mutation($a: ID!) { createSession(input: {assistantId: $a}) { id } }",
                json!({"a": assistant}),
            )
            .await?;
            gql(&http, &key, "mutation($s: ID!) { sendMessage(input: {sessionId: $s, message: \"hi\"}) { reply { status } } }", json!({"s": session["createSession"]["id"]})).await
        }
    };
    let send_one = throughput(&[&a], &key, send.clone()).await?;
    let send_two = throughput(&[&a, &b], &key, send).await?;
    println!(
        "throughput (32 clients, 5 s): assistants(first: 20) {assistants_one:.0}/s on one replica, {assistants_two:.0}/s on two; sendMessage {send_one:.0}/s on one, {send_two:.0}/s on two"
    );
    println!(
        "  (both replicas run in this process on the same {} cores: this shows what a second replica costs, not what a second machine adds)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // 4. Ingestion across replicas.
    let one = ingest(admin, redis, files, 1).await?;
    let two = ingest(admin, redis, files, 2).await?;
    println!(
        "ingestion of {files} files (2 workers a replica): one replica {:.1} s ({:.1} files/s), two replicas {:.1} s ({:.1} files/s)",
        one.as_secs_f64(),
        files as f64 / one.as_secs_f64(),
        two.as_secs_f64(),
        files as f64 / two.as_secs_f64()
    );
    Ok(())
}

fn percentiles_at(values: &mut [u64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_unstable();
    values[((values.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
}

/// Where replicas keep their shared state.
struct Deployment {
    database: String,
    redis: String,
    prefix: String,
    shared: std::path::PathBuf,
}

impl Deployment {
    /// A single replica on SQLite with nothing shared.
    fn alone() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?.keep();
        Ok(Self {
            database: format!("sqlite://{}?mode=rwc", dir.join("companin.db").display()),
            redis: String::new(),
            prefix: String::new(),
            shared: dir,
        })
    }
}

/// A running replica.
struct Replica {
    http: String,
    ws: String,
    database: String,
}

impl Replica {
    async fn start(deployment: &Deployment, workers: usize, tokens: usize) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?.keep();
        let settings = Settings {
            data_dir,
            http: HttpSettings {
                bind: "127.0.0.1:0".parse()?,
                ..Settings::default().http
            },
            rate_limits: RateLimitSettings {
                rate_limit_per_hour: u32::MAX,
                ..Settings::default().rate_limits
            },
            models: ModelSettings {
                embedder: EmbedderChoice::Hash,
                llm: LlmChoice::Extractive,
                ..Settings::default().models
            },
            replies: ReplySettings {
                max_concurrent_replies: usize::MAX,
                ..Settings::default().replies
            },
            database: DatabaseSettings {
                database_url: Some(deployment.database.clone().into()),
                // Nine replicas run in this process: stay within PostgreSQL's default 100.
                database_max_connections: 8,
            },
            redis: RedisSettings {
                redis_url: (!deployment.redis.is_empty()).then(|| deployment.redis.clone().into()),
                redis_prefix: deployment.prefix.clone(),
                ..Settings::default().redis
            },
            vectors: VectorSettings {
                lancedb_uri: Some(deployment.shared.join("lancedb").display().to_string()),
                ..Settings::default().vectors
            },
            ingestion: IngestionSettings {
                ingest_workers: workers,
                blob_uri: Some(format!(
                    "file://{}",
                    deployment.shared.join("uploads").display()
                )),
                extract_program: Some(env!("CARGO_BIN_EXE_companin").into()),
                ..Settings::default().ingestion
            },
            ..Settings::default()
        };
        let models = Models {
            chat: Arc::new(StampedChat {
                tokens: if tokens == 0 { TOKENS } else { tokens },
            }),
            ..Models::local_defaults()
        };
        let app = Application::build_with_models(settings, models).await?;
        let address = app.address();
        tokio::spawn(app.run_until_stopped());
        Ok(Self {
            http: format!("http://{address}"),
            ws: format!("ws://{address}/graphql"),
            database: deployment.database.clone(),
        })
    }

    /// A new organization's admin key.
    async fn org_key(&self) -> anyhow::Result<String> {
        let db = sea_orm::Database::connect(&self.database).await?;
        let (_, key) = companin::services::organizations::create(&db, "Bench", false)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        Ok(key.key)
    }
}

async fn conversation_of(replica: &Replica, key: &str, assistant: &str) -> anyhow::Result<Value> {
    let session = gql(
        &replica.http,
        key,
        "mutation($a: ID!) { createSession(input: {assistantId: $a}) { id } }",
        json!({"a": assistant}),
    )
    .await?;
    let sent = gql(
        &replica.http,
        key,
        "mutation($s: ID!) { sendMessage(input: {sessionId: $s, message: \"hi\"}) { reply { conversationId } } }",
        json!({"s": session["createSession"]["id"]}),
    )
    .await?;
    Ok(sent["sendMessage"]["reply"]["conversationId"].clone())
}

/// Reads one reply's deltas from `socket` (subscription `id`, field `field`), measuring
/// from `sent`.
async fn read_reply(
    socket: &mut support::streams::Socket,
    field: &str,
    sent: &std::sync::atomic::AtomicU64,
) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    let mut first = true;
    let mut seen = 0;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let arrived = now_us();
        let frame: Value = serde_json::from_str(text.as_str())?;
        match frame["type"].as_str() {
            Some("next") => {
                let delta = frame["payload"]["data"][field]["delta"]
                    .as_str()
                    .unwrap_or_default();
                if let Some((called, emitted)) = stamps(delta) {
                    if first {
                        let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
                        sample
                            .first_token_added
                            .push((arrived.saturating_sub(sent)).saturating_sub(emitted - called));
                        first = false;
                    }
                    sample.per_token_added.push(arrived.saturating_sub(emitted));
                    seen += 1;
                    if seen == TOKENS {
                        break;
                    }
                }
            }
            Some("complete") | Some("error") => break,
            _ => {}
        }
    }
    Ok(sample)
}

/// One reply by `chat` on a replica without Redis.
async fn chat_only(replica: &Replica, key: &str, assistant: &str) -> anyhow::Result<Sample> {
    let session = gql(
        &replica.http,
        key,
        "mutation($a: ID!) { createSession(input: {assistantId: $a}) { id } }",
        json!({"a": assistant}),
    )
    .await?;
    let mut socket = connect(&replica.ws, key).await?;
    let sent = std::sync::atomic::AtomicU64::new(now_us());
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": CHAT,
        "variables": {"input": {"sessionId": session["createSession"]["id"], "message": "hi"}}}});
    socket.send(Message::text(subscribe.to_string())).await?;
    read_reply(&mut socket, "chat", &sent).await
}

/// One reply generated on `a` by `chat`, watched on `b` by `conversationEvents`.
async fn chat_and_watch(
    a: &Replica,
    b: &Replica,
    key: &str,
    assistant: &str,
) -> anyhow::Result<(Sample, Sample)> {
    let conversation = conversation_of(a, key, assistant).await?;
    let mut watcher = connect(&b.ws, key).await?;
    let watch = json!({"id": "w", "type": "subscribe", "payload": {"query": WATCH,
        "variables": {"c": conversation}}});
    watcher.send(Message::text(watch.to_string())).await?;
    // The watch is registered with B's reader before the message is sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut socket = connect(&a.ws, key).await?;
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(now_us()));
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": CHAT,
        "variables": {"input": {"conversationId": conversation, "assistantId": assistant, "message": "more"}}}});
    socket.send(Message::text(subscribe.to_string())).await?;
    let watched = {
        let sent = sent.clone();
        tokio::spawn(async move { read_reply(&mut watcher, "conversationEvents", &sent).await })
    };
    let here = read_reply(&mut socket, "chat", &sent).await?;
    let there = watched.await??;
    Ok((here, there))
}

/// Requests per second `call` sustains with 32 clients for 5 s, spread over `replicas`.
async fn throughput<F, Fut>(replicas: &[&Replica], key: &str, call: F) -> anyhow::Result<f64>
where
    F: Fn(&str, &str) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Value>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let http = replicas[i % replicas.len()].http.clone();
            let (key, call) = (key.to_owned(), call.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    call(&http, &key).await?;
                    done += 1;
                }
                Ok::<_, anyhow::Error>(done)
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client.await??;
    }
    Ok(total as f64 / 5.0)
}

/// Time for `replicas` replicas (2 workers each) to index `files` text files uploaded to the
/// first.
async fn ingest(
    admin: &str,
    redis: &str,
    files: usize,
    replicas: usize,
) -> anyhow::Result<Duration> {
    // A deployment of its own: the replicas of an earlier run keep polling theirs.
    let database = Database::create(admin).await?;
    let fresh = Deployment {
        database: database.url.clone(),
        redis: redis.to_owned(),
        prefix: format!("bench-{}:", uuid::Uuid::now_v7().simple()),
        shared: tempfile::tempdir()?.keep(),
    };
    // The uploading replica has no workers: the measured ones do all the indexing.
    let front = Replica::start(&fresh, 0, 0).await?;
    let key = front.org_key().await?;
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(files);
    for i in 0..files {
        let text = sample_text(i);
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(text.into_bytes()).file_name(format!("doc{i}.txt")),
        );
        let created: Value = client
            .post(format!("{}/api/v1/knowledge/files/", front.http))
            .header("X-API-Key", &key)
            .multipart(form)
            .send()
            .await?
            .json()
            .await?;
        ids.push(created["id"].as_str().unwrap_or_default().to_owned());
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..replicas {
        workers.push(Replica::start(&fresh, 2, 0).await?);
    }
    let db = sea_orm::Database::connect(&fresh.database).await?;
    loop {
        let pending = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!(
                    "SELECT COUNT(*) AS n FROM knowledge_source WHERE status IN ('PENDING', 'PROCESSING') AND id IN ({})",
                    ids.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(",")
                ),
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or_default();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    drop(db);
    database.drop().await;
    Ok(took)
}

/// A paragraph of plain text, different for each `i`.
fn sample_text(i: usize) -> String {
    let topics = [
        "returns", "shipping", "warranty", "invoices", "accounts", "repairs",
    ];
    let topic = topics[i % topics.len()];
    (0..12)
        .map(|j| {
            format!(
                "Section {j} of document {i} explains {topic}: customers ask how {topic} work, what they cost and how long they take. "
            )
        })
        .collect()
}

/// Clients connected to Redis.
async fn redis_clients(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut connection)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no connected_clients in INFO"))
}

/// A throwaway PostgreSQL database.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = format!("companin_bench_{}", uuid::Uuid::now_v7().simple());
        let db = sea_orm::Database::connect(admin).await?;
        db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        let mut url = url::Url::parse(admin)?;
        url.set_path(&name);
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop(self) {
        if let Ok(db) = sea_orm::Database::connect(&self.admin).await {
            let _ = db
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}
