//! The streaming path: a chat model scripted to emit a token every 5 ms, replies streamed to
//! websocket clients over `graphql-transport-ws` (`chat` subscriptions). Each token carries
//! the time the model emitted it, so the client measures the latency the server adds:
//! per token (arrival − emission) and for the first token ((arrival − send) − the model's
//! own time to first token). Baseline, same run: the same model consumed in-process.
//! Then the memory of idle subscriptions in a separate server process.
//!
//! Run: `cargo bench --profile dev --bench streaming`
//! (`BENCH_STREAMS` concurrent streams, default 1000; `BENCH_TOKENS` tokens per reply,
//! default 50; `BENCH_IDLE` idle subscriptions for the memory figure, default 1000;
//! `BENCH_DATABASE_URL` to run the server on PostgreSQL instead of SQLite; `BENCH_MESSAGE`
//! the visitor's message, default `hi`: a question, which nothing in the empty knowledge
//! answers, is recorded in the knowledge-gap inbox after each reply; `BENCH_HANDOFF=1` gives
//! the assistant handoff rules — keywords and unanswered turns — checked on every send.)

mod support;

use std::{sync::Arc, time::Duration};

use companin::{
    config::{
        DatabaseSettings, EmbedderChoice, HttpSettings, LlmChoice, ModelSettings,
        RateLimitSettings, ReplySettings, Settings,
    },
    models::{ChatChunk, ChatModel, ChatRequest, Models},
    startup::Application,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::streams::{
    EPOCH, Sample, Socket, StampedChat, connect, create_assistant, gql, now_us, stamps,
};
use tokio_tungstenite::tungstenite::Message;

/// Single-stream runs measured (after one warm-up run).
const SINGLE_RUNS: usize = 10;
const CHAT: &str = "subscription($input: SendMessageInput!) { chat(input: $input) { \
    __typename ... on ReplyDelta { delta } } }";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    EPOCH.get_or_init(std::time::Instant::now);
    let streams = env_or("BENCH_STREAMS", 1000);
    let tokens = env_or("BENCH_TOKENS", 50);
    let idle = env_or("BENCH_IDLE", 1000);
    let message = std::env::var("BENCH_MESSAGE").unwrap_or_else(|_| "hi".to_owned());
    let handoff = std::env::var("BENCH_HANDOFF").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        println!(
            "streaming · a token every 5 ms · {tokens} tokens per reply · message {message:?} · handoff rules {}",
            if handoff { "on" } else { "off" }
        );
        let mut baseline = in_process(tokens).await;
        baseline.print("baseline: model in-process");
        let dir = tempfile::tempdir()?;
        let (ws_url, http_url, key) = start(dir.path().to_path_buf(), tokens).await?;
        let assistant = create_assistant(&http_url, &key).await?;
        if handoff {
            gql(
                &http_url,
                &key,
                "mutation($id: ID!) { updateAssistant(id: $id, input: { handoff: {
                    keywords: [\"human\", \"agent\", \"mens\", \"pessoa\", \"persona\"],
                    afterUnansweredTurns: 20, onRatingAtMost: 2 } }) { version } }",
                json!({ "id": assistant }),
            )
            .await?;
        }
        // One stream at a time, after a warm-up run (first queries, connection pool).
        run(&ws_url, &http_url, &key, &assistant, &message, 1).await?;
        let mut single = Sample::default();
        for _ in 0..SINGLE_RUNS {
            single.extend(run(&ws_url, &http_url, &key, &assistant, &message, 1).await?);
        }
        let (first, p99_one, _) = single.print(&format!("1 stream over websocket (×{SINGLE_RUNS})"));
        let label = format!("{streams} concurrent streams");
        let (_, p99_many, _) = run(&ws_url, &http_url, &key, &assistant, &message, streams)
            .await?
            .print(&label);
        println!(
            "goals: added first token p50 ≤ 5 ms ({first:.2}); per token p99 ≤ 2 ms at 1 stream ({p99_one:.2}); ≤ 50 ms at {streams} ({p99_many:.2})"
        );
        let per_subscription = idle_memory(idle).await?;
        println!(
            "memory per idle subscription (server process, {idle} connections): {:.1} KiB (goal ≤ 64 KiB)",
            per_subscription / 1024.0
        );
        Ok::<_, anyhow::Error>(())
    })
}

/// The model alone: how late each token arrives at an in-process consumer.
async fn in_process(tokens: usize) -> Sample {
    let model = StampedChat { tokens };
    let mut sample = Sample::default();
    let start = now_us();
    let Ok(mut stream) = model.stream(ChatRequest::default()).await else {
        return sample;
    };
    let mut first = true;
    while let Some(Ok(ChatChunk::Delta(piece))) = stream.next().await {
        let arrived = now_us();
        if let Some((called, emitted)) = stamps(&piece) {
            if first {
                sample
                    .first_token_added
                    .push((arrived - start).saturating_sub(emitted - called));
                first = false;
            }
            sample.per_token_added.push(arrived.saturating_sub(emitted));
        }
    }
    sample
}

async fn start(
    data_dir: std::path::PathBuf,
    tokens: usize,
) -> anyhow::Result<(String, String, String)> {
    let settings = Settings {
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
        models: ModelSettings {
            embedder: EmbedderChoice::Hash,
            llm: LlmChoice::Extractive,
            ..Settings::default().models
        },
        // Every stream is the one organization's: let all of them generate at once.
        replies: ReplySettings {
            max_concurrent_replies: usize::MAX,
            ..Settings::default().replies
        },
        database: DatabaseSettings {
            database_url: std::env::var("BENCH_DATABASE_URL").ok().map(Into::into),
            database_max_connections: 32,
        },
        ..Settings::default()
    };
    let models = Models {
        chat: Arc::new(StampedChat { tokens }),
        ..Models::local_defaults()
    };
    let app = Application::build_with_models(settings.clone(), models).await?;
    let address = app.address();
    tokio::spawn(app.run_until_stopped());
    let db = companin::db::connect(&settings).await?;
    let (_, key) = companin::services::organizations::create(&db, "Bench", false)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    Ok((
        format!("ws://{address}/graphql"),
        format!("http://{address}"),
        key.key,
    ))
}

/// `n` clients each send a message over their own socket at the same moment and read the
/// streamed reply.
async fn run(
    ws_url: &str,
    http_url: &str,
    key: &str,
    assistant: &str,
    message: &str,
    n: usize,
) -> anyhow::Result<Sample> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let session = gql(
            http_url,
            key,
            "mutation($a: ID!) { createSession(input: {assistantId: $a}) { id } }",
            json!({"a": assistant}),
        )
        .await?["createSession"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        clients.push((connect(ws_url, key).await?, session));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(mut socket, session)| {
            let barrier = barrier.clone();
            let message = message.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                let sent = now_us();
                let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": CHAT,
                    "variables": {"input": {"sessionId": session, "message": message}}}});
                socket.send(Message::text(subscribe.to_string())).await?;
                let mut sample = Sample::default();
                let mut first = true;
                while let Some(message) = socket.next().await {
                    let Message::Text(text) = message? else {
                        continue;
                    };
                    let arrived = now_us();
                    let frame: Value = serde_json::from_str(text.as_str())?;
                    match frame["type"].as_str() {
                        Some("next") => {
                            let delta = frame["payload"]["data"]["chat"]["delta"]
                                .as_str()
                                .unwrap_or_default();
                            if let Some((called, emitted)) = stamps(delta) {
                                if first {
                                    sample
                                        .first_token_added
                                        .push((arrived - sent).saturating_sub(emitted - called));
                                    first = false;
                                }
                                sample.per_token_added.push(arrived.saturating_sub(emitted));
                            }
                        }
                        Some("complete") | Some("error") => break,
                        _ => {}
                    }
                }
                let _ = socket.close(None).await;
                Ok::<_, anyhow::Error>(sample)
            })
        })
        .collect();
    let mut all = Sample::default();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// Resident memory of a separate server process before and after `count` idle
/// `conversationEvents` subscriptions, per subscription, in bytes.
async fn idle_memory(count: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let binary = env!("CARGO_BIN_EXE_companin");
    let envs = [
        ("COMPANIN_DATA_DIR", dir.path().display().to_string()),
        ("COMPANIN_BIND", format!("127.0.0.1:{port}")),
        ("COMPANIN_EMBEDDER", "hash".into()),
        ("COMPANIN_LLM", "extractive".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let created = tokio::process::Command::new(binary)
        .args(["org", "create", "--name", "Idle"])
        .envs(envs.clone())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&created.stdout);
    let key = stdout
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(_, v)| v.starts_with("cmp_"))
                .map(|(_, v)| v.to_owned())
        })
        .ok_or_else(|| anyhow::anyhow!("no key in {stdout}"))?;
    let mut server = tokio::process::Command::new(binary)
        .arg("serve")
        .envs(envs)
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let http_url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{http_url}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let assistant = create_assistant(&http_url, &key).await?;
    let session = gql(
        &http_url,
        &key,
        "mutation($a: ID!) { createSession(input: {assistantId: $a}) { id } }",
        json!({"a": assistant}),
    )
    .await?["createSession"]["id"]
        .clone();
    let sent = gql(&http_url, &key, "mutation($s: ID!) { sendMessage(input: {sessionId: $s, message: \"hi\"}) { reply { conversationId } } }", json!({"s": session})).await?;
    let conversation = sent["sendMessage"]["reply"]["conversationId"].clone();
    let ws_url = format!("ws://127.0.0.1:{port}/graphql");
    // Warm up one connection so lazily allocated pools are counted in the baseline.
    let mut warm = connect(&ws_url, &key).await?;
    subscribe_idle(&mut warm, &conversation).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid)?;
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let mut socket = connect(&ws_url, &key).await?;
        subscribe_idle(&mut socket, &conversation).await?;
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss(pid)?;
    drop(sockets);
    let _ = server.kill().await;
    Ok((after.saturating_sub(before)) as f64 / count as f64)
}

async fn subscribe_idle(socket: &mut Socket, conversation: &Value) -> anyhow::Result<()> {
    let frame = json!({"id": "idle", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename } }",
        "variables": {"c": conversation}}});
    socket.send(Message::text(frame.to_string())).await?;
    Ok(())
}

fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS"))?;
    Ok(kib * 1024)
}
