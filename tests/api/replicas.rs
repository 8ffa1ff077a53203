//! Two replicas on one PostgreSQL database, one Redis and one S3-compatible object store,
//! each with a data dir of its own: what one replica accepts, the other serves.
//!
//! Runs when `TEST_DATABASE_URL`, `TEST_REDIS_URL` and `TEST_S3_BUCKET` are set (`.ci/run`
//! starts `moto_server` and sets `AWS_ENDPOINT_URL` and the credentials); skipped otherwise.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use companin::{
    config::Settings,
    domain::ids::{OrgId, SourceId},
    models::{Embedder, HashEmbedder, Models},
    vector::VectorStore,
};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tempfile::TempDir;

use crate::{
    conversation_support::{CHAT, REPLY_STREAM, events, sse_events, whole_reply, with_events},
    fake_openai::{FakeOpenAi, Reply},
    helpers::{TestApp, serve_binary, start},
    ingestion::{Page, article, serve},
    scripted_chat::ScriptedChat,
    webhook_support::Receiver,
    ws_support::Ws,
};

/// The shared services of a two-replica test.
struct Shared {
    redis: String,
    bucket: String,
    /// Keys, objects and tables of this test start with it.
    run: String,
}

impl Shared {
    fn from_env() -> Option<Self> {
        let found = (
            std::env::var("TEST_DATABASE_URL"),
            std::env::var("TEST_REDIS_URL"),
            std::env::var("TEST_S3_BUCKET"),
        );
        let (Ok(_), Ok(redis), Ok(bucket)) = found else {
            eprintln!(
                "TEST_DATABASE_URL, TEST_REDIS_URL and TEST_S3_BUCKET are not all set: the two-replica suite is skipped"
            );
            return None;
        };
        Some(Self {
            redis,
            bucket,
            run: format!("t{}", uuid::Uuid::now_v7().simple()),
        })
    }

    /// Points `settings` at the shared Redis, vector store and blob store.
    fn configure(&self, settings: &mut Settings) {
        settings.redis.redis_url = Some(self.redis.clone().into());
        settings.redis.redis_prefix = format!("companin-{}:", self.run);
        settings.vectors.lancedb_uri = Some(format!("s3://{}/{}/lancedb", self.bucket, self.run));
        settings.ingestion.blob_uri = Some(format!("s3://{}/{}/uploads", self.bucket, self.run));
        settings.ingestion.allow_private_urls = true;
    }

    /// The same as environment variables, for a replica run as a process.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("REDIS_URL".to_owned(), self.redis.clone()),
            (
                "COMPANIN_REDIS_PREFIX".to_owned(),
                format!("companin-{}:", self.run),
            ),
            (
                "COMPANIN_LANCEDB_URI".to_owned(),
                format!("s3://{}/{}/lancedb", self.bucket, self.run),
            ),
            (
                "COMPANIN_BLOB_URI".to_owned(),
                format!("s3://{}/{}/uploads", self.bucket, self.run),
            ),
        ];
        env.extend(std::env::vars().filter(|(name, _)| name.starts_with("AWS_")));
        env
    }
}

/// Replica A and replica B of one deployment, the same organization on both.
struct Replicas {
    a: TestApp,
    b: TestApp,
    _b_dir: TempDir,
}

/// Starts A with `adjust` and `models()`, then B with the same settings and a data dir of
/// its own; `adjust_b` changes B's settings further.
async fn replicas(
    shared: &Shared,
    adjust: impl Fn(&mut Settings),
    adjust_b: impl FnOnce(&mut Settings),
    models: impl Fn() -> Models,
) -> Replicas {
    let a = TestApp::spawn_with_models(
        |s| {
            shared.configure(s);
            adjust(s);
        },
        models(),
    )
    .await;
    let b_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = a.settings.clone();
    settings.data_dir = b_dir.path().to_path_buf();
    adjust_b(&mut settings);
    let b = a.at(start(settings, models(), None).await);
    Replicas {
        a,
        b,
        _b_dir: b_dir,
    }
}

fn scripted(pieces: usize, every_ms: u64) -> impl Fn() -> Models {
    move || Models {
        chat: Arc::new(ScriptedChat::numbered(
            pieces,
            Duration::from_millis(every_ms),
        )),
        ..Models::local_defaults()
    }
}

/// Searches until `word` finds `source` (a replica sees another's commits within a second).
async fn finds(app: &TestApp, word: &str, source: &str) -> bool {
    for _ in 0..50 {
        let hits = app.search(&app.key, word, json!({ "mode": "TEXT" })).await;
        if hits.iter().any(|h| h["source"]["id"] == source) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn an_upload_accepted_by_one_replica_is_indexed_by_the_other_and_found_from_the_first() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let Replicas { a, b, _b_dir } = replicas(
        &shared,
        |s| s.ingestion.ingest_workers = 0,
        |s| s.ingestion.ingest_workers = 1,
        Models::local_defaults,
    )
    .await;
    let (status, created) = a
        .upload(
            &a.key,
            "depot.txt",
            b"The Zwolle depot keeps spare quokkaparts for every bicycle model.".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    // A has no workers: only B can have read the file from the shared blob store.
    let source = a.settled(&a.key, &id).await;
    assert_eq!(source["status"], "READY", "{source}");
    assert!(finds(&a, "quokkaparts", &id).await, "found from A");
    assert!(finds(&b, "quokkaparts", &id).await, "found from B");

    // Deleted on B: its file and chunks are gone for both.
    let (status, _) = TestApp::send(b.rest(
        Method::DELETE,
        &format!("/api/v1/knowledge/files/{id}"),
        &b.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let hits = a
        .search(&a.key, "quokkaparts", json!({ "mode": "TEXT" }))
        .await;
    assert!(
        hits.iter().all(|h| h["source"]["id"] != id.as_str()),
        "{hits:?}"
    );
}

#[tokio::test]
async fn two_replicas_indexing_into_one_table_at_once_lose_no_chunk() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let Replicas { a, b, _b_dir } = replicas(
        &shared,
        |s| s.ingestion.ingest_workers = 2,
        |_| {},
        Models::local_defaults,
    )
    .await;
    let words: Vec<String> = (0..16).map(|i| format!("kiwiword{i}x")).collect();
    let uploads = words.iter().enumerate().map(|(i, word)| {
        let replica = if i % 2 == 0 { &a } else { &b };
        async move {
            let text = format!("Section {i}. The {word} is stocked at the depot on weekdays.");
            let (status, created) = replica
                .upload(&replica.key, &format!("f{i}.txt"), text.into_bytes(), None)
                .await;
            assert_eq!(status, StatusCode::CREATED, "{created}");
            created["id"].as_str().expect("id").to_owned()
        }
    });
    let ids: Vec<String> = futures::future::join_all(uploads).await;
    for id in &ids {
        let source = a.settled(&a.key, id).await;
        assert_eq!(source["status"], "READY", "{source}");
    }
    for (word, id) in words.iter().zip(&ids) {
        for (name, replica) in [("A", &a), ("B", &b)] {
            if !finds(replica, word, id).await {
                panic!(
                    "{word} not found from {name}; the table holds {} chunk(s) of its source",
                    chunks_stored(&a, id).await
                );
            }
        }
    }
}

/// How many chunks of `source` the shared table holds, read by a store of its own: tells a
/// lost commit from a search that misses a stored chunk.
async fn chunks_stored(app: &TestApp, source: &str) -> usize {
    let store = VectorStore::open(&app.settings.lancedb_uri(), usize::MAX)
        .await
        .expect("store");
    let embedder = HashEmbedder::default();
    store
        .count_source(
            embedder.id(),
            embedder.dimension(),
            &OrgId::from_db(app.org_id.clone()),
            &SourceId::from_db(source.to_owned()),
        )
        .await
        .expect("count")
}

#[tokio::test]
async fn a_reply_generated_on_one_replica_streams_live_to_subscribers_on_the_other() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let Replicas { a, b, _b_dir } = replicas(&shared, |_| {}, |_| {}, scripted(30, 30)).await;
    let key = a.key.clone();
    let assistant = a.assistant(&key, json!({})).await;
    let session = a.session(&key, json!({ "assistant_id": assistant })).await;
    let first = a
        .say(
            &key,
            json!({ "sessionId": session["id"], "message": "Hello" }),
        )
        .await;
    let conversation = first["userMessage"]["conversationId"].clone();
    let expected: String = (0..30).map(|i| format!("t{i} ")).collect();

    // B watches the conversation; A generates the next reply.
    let mut watcher = Ws::ready(&b, &key).await;
    watcher
        .subscribe(
            "w",
            &with_events(
                "subscription($id: ID!) { conversationEvents(conversationId: $id) { ...Events } }",
            ),
            json!({ "id": conversation }),
        )
        .await;
    // The subscription is registered before the message is sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = a
        .gql_ok(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input, wait: false) { reply { id } } }",
            json!({ "input": { "sessionId": session["id"], "message": "Tell me more" } }),
        )
        .await;
    let reply_id = sent["sendMessage"]["reply"]["id"]
        .as_str()
        .expect("reply")
        .to_owned();

    // Re-attached on B while A generates: over SSE and over a websocket.
    let sse = {
        let request = b.rest(
            Method::GET,
            &format!("/api/v1/messages/{reply_id}/stream"),
            &key,
        );
        tokio::spawn(async move {
            request
                .send()
                .await
                .expect("sent")
                .text()
                .await
                .expect("body")
        })
    };
    let mut attached = Ws::ready(&b, &key).await;
    attached
        .subscribe("r", &with_events(REPLY_STREAM), json!({ "id": reply_id }))
        .await;

    let mut watched = Vec::new();
    let mut delta_times = Vec::new();
    loop {
        let frame = watcher.recv().await;
        let event = frame["payload"]["data"]["conversationEvents"].clone();
        if event["__typename"] == "ReplyDelta" {
            delta_times.push(Instant::now());
        }
        let done = event["__typename"] == "ReplyCompleted";
        watched.push(frame["payload"].clone());
        if done {
            break;
        }
    }
    let (text, reply) = whole_reply(&events(&watched, "conversationEvents"));
    assert_eq!(text, expected, "every delta, in order, once");
    assert_eq!(reply["id"], reply_id.as_str());
    let spread = delta_times
        .last()
        .zip(delta_times.first())
        .map(|(last, first)| last.duration_since(*first))
        .unwrap_or_default();
    assert!(
        spread >= Duration::from_millis(400),
        "the deltas arrive as they are generated, not in a burst at the end: {spread:?}"
    );

    let (text, _) = whole_reply(&events(&attached.until_complete("r").await, "replyStream"));
    assert_eq!(
        text, expected,
        "re-attached on B: what was generated, then the rest"
    );
    let sse = sse_events(&sse.await.expect("SSE task"));
    let streamed: String = sse
        .iter()
        .filter(|(name, _)| name == "reply_delta")
        .map(|(_, e)| e["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(streamed, expected, "{sse:?}");
    assert_eq!(sse.last().map(|(n, _)| n.as_str()), Some("done"));

    // A `chat` on B is answered on B and watched from A just the same.
    let mut chat = Ws::ready(&b, &key).await;
    chat.subscribe(
        "c",
        &with_events(CHAT),
        json!({ "input": { "sessionId": session["id"], "message": "And then?" } }),
    )
    .await;
    let (text, _) = whole_reply(&events(&chat.until_complete("c").await, "chat"));
    assert_eq!(text, expected);
}

#[tokio::test]
async fn each_webhook_event_is_delivered_once_by_two_replicas() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let Replicas { a, b, _b_dir } = replicas(
        &shared,
        |s| s.webhooks.webhook_workers = 2,
        |_| {},
        Models::local_defaults,
    )
    .await;
    let receiver = Receiver::start(0).await;
    a.webhook(&a.key, &receiver.url, json!(["knowledge.ready"]))
        .await;
    for i in 0..10 {
        let replica = if i % 2 == 0 { &a } else { &b };
        replica
            .create_qa(
                &replica.key,
                &format!("Question {i}?"),
                &format!("Answer {i}."),
            )
            .await;
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let received = receiver.next_of("knowledge.ready").await;
        assert!(
            seen.insert(received.event_id().to_owned()),
            "delivered twice: {}",
            received.event_id()
        );
    }
    // Both replicas' dispatchers poll every second: nothing more arrives.
    let more = tokio::time::timeout(Duration::from_secs(3), receiver.next()).await;
    assert!(
        more.is_err(),
        "an event was delivered again: {:?}",
        more.map(|r| r.json)
    );
}

#[tokio::test]
async fn a_due_url_refresh_runs_once_across_replicas() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let Replicas { a, b: _b, _b_dir } = replicas(
        &shared,
        |s| s.ingestion.scheduler_interval_seconds = 1,
        |_| {},
        Models::local_defaults,
    )
    .await;
    let page = Page::default();
    let id = ready_url_source(&a, &page).await;
    let before = page.fetches();

    // Due now, for both replicas' schedulers.
    make_due(&a, &id).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while page.fetches() == before {
        assert!(Instant::now() < deadline, "the refresh ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several scheduler passes of each replica later, it has still run once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        page.fetches(),
        before + 1,
        "one refresh across both replicas"
    );
}

#[tokio::test]
async fn a_replica_killed_mid_reply_leaves_a_failed_reply_that_subscribers_elsewhere_hear_of() {
    let Some(shared) = Shared::from_env() else {
        return;
    };
    let a = TestApp::spawn_with(|s| {
        shared.configure(s);
        s.replies.reply_abandoned_seconds = 8;
    })
    .await;
    let key = a.key.clone();
    let provider = FakeOpenAi::start(vec![
        Reply::Stream(vec!["Hello."], "stop"),
        Reply::Stall(vec!["Our ", "depot ", "opens "]),
    ])
    .await;
    let b_dir = tempfile::tempdir().expect("temp dir");
    let mut env = shared.env();
    env.extend([
        (
            "COMPANIN_DATA_DIR".to_owned(),
            b_dir.path().display().to_string(),
        ),
        ("COMPANIN_LLM".to_owned(), "openai".to_owned()),
        ("OPENAI_BASE_URL".to_owned(), provider.base_url.clone()),
        ("OPENAI_API_KEY".to_owned(), "sk-test".to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (mut b_process, b) = serve_binary(&a, &env).await;

    let assistant = a.assistant(&key, json!({})).await;
    let session = a.session(&key, json!({ "assistant_id": assistant })).await;
    // A conversation B answered; A watches it.
    let (status, first) = TestApp::send(
        b.rest(Method::POST, "/api/v1/conversations/send-message", &key)
            .json(&json!({ "session_id": session["id"], "message": "Hello" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let mut watcher = Ws::ready(&a, &key).await;
    watcher
        .subscribe(
            "w",
            &with_events(
                "subscription($id: ID!) { conversationEvents(conversationId: $id) { ...Events } }",
            ),
            json!({ "id": first["reply"]["conversation_id"] }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // B generates; the model hangs after three pieces.
    let mut generating = b
        .rest(Method::POST, "/api/v1/conversations/send-message", &key)
        .header("Accept", "text/event-stream")
        .json(&json!({ "session_id": session["id"], "message": "When does the depot open?" }))
        .send()
        .await
        .expect("sent")
        .bytes_stream();
    let mut seen = String::new();
    while !seen.contains("event: reply_delta") {
        let chunk = generating
            .next()
            .await
            .expect("more events")
            .expect("a chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let started = sse_events(&seen);
    let reply_id = started
        .iter()
        .find(|(name, _)| name == "reply_started")
        .and_then(|(_, e)| e["message_id"].as_str())
        .expect("the started event names the reply")
        .to_owned();

    // A follows it live, then B dies.
    let mut follower = Ws::ready(&a, &key).await;
    follower
        .subscribe("r", &with_events(REPLY_STREAM), json!({ "id": reply_id }))
        .await;
    let first = follower.recv().await;
    assert_eq!(
        first["payload"]["data"]["replyStream"]["__typename"], "ReplyStarted",
        "{first}"
    );
    b_process.start_kill().expect("SIGKILL");
    let killed = Instant::now();
    drop(generating);
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let frame = follower.recv().await;
            let event = frame["payload"]["data"]["replyStream"].clone();
            if event["__typename"] == "ReplyFailed" {
                return event;
            }
            assert_ne!(event["__typename"], "ReplyCompleted", "{event}");
        }
    })
    .await
    .expect("the follower hears the reply failed");
    assert_eq!(failed["errorCode"], "INTERRUPTED", "{failed}");
    // The watcher on A heard of the reply through Redis: its start, its text, its failure.
    let mut heard = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), watcher.recv())
            .await
            .expect("the watcher hears the failure too");
        let kind = frame["payload"]["data"]["conversationEvents"]["__typename"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        heard.push(kind.clone());
        if kind == "ReplyFailed" {
            break;
        }
    }
    assert_eq!(
        heard.first().map(String::as_str),
        Some("ReplyStarted"),
        "{heard:?}"
    );
    assert!(heard.iter().any(|k| k == "ReplyDelta"), "{heard:?}");
    assert!(
        killed.elapsed() < Duration::from_secs(8 + 2 + 5),
        "failed within the abandoned time and a sweep: {:?}",
        killed.elapsed()
    );
    let stored = a.message(&key, &reply_id).await;
    assert_eq!(stored["status"], "FAILED", "{stored}");
    drop(b);
}

#[tokio::test]
async fn a_server_counts_and_streams_through_redis_over_tls_trusting_only_the_configured_ca() {
    let (Ok(url), Ok(ca)) = (
        std::env::var("TEST_REDISS_URL"),
        std::env::var("TEST_REDIS_CA_FILE"),
    ) else {
        eprintln!(
            "TEST_REDISS_URL and TEST_REDIS_CA_FILE are not set: the Redis TLS test is skipped"
        );
        return;
    };
    let prefix = format!("companin-tls-{}:", uuid::Uuid::now_v7().simple());
    let app = TestApp::spawn_with_models(
        |s| {
            s.redis.redis_url = Some(url.clone().into());
            s.redis.redis_prefix = prefix.clone();
            s.redis.redis_ca_file = Some(ca.clone().into());
        },
        scripted(5, 10)(),
    )
    .await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app
        .session(&key, json!({ "assistant_id": assistant }))
        .await;
    let first = app
        .say(
            &key,
            json!({ "sessionId": session["id"], "message": "Hello" }),
        )
        .await;
    // A watcher hears of new replies only through the Redis stream of notices.
    let mut watcher = Ws::ready(&app, &key).await;
    watcher
        .subscribe(
            "w",
            &with_events(
                "subscription($id: ID!) { conversationEvents(conversationId: $id) { ...Events } }",
            ),
            json!({ "id": first["userMessage"]["conversationId"] }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.say(
        &key,
        json!({ "sessionId": session["id"], "message": "Again" }),
    )
    .await;
    let mut watched = Vec::new();
    loop {
        let frame = watcher.recv().await;
        let done = frame["payload"]["data"]["conversationEvents"]["__typename"] == "ReplyCompleted";
        watched.push(frame["payload"].clone());
        if done {
            break;
        }
    }
    let (text, _) = whole_reply(&events(&watched, "conversationEvents"));
    assert_eq!(text, "t0 t1 t2 t3 t4 ");

    // Without the CA, the server's certificate is not trusted and the server does not start.
    let mut untrusted = app.settings.clone();
    untrusted.redis.redis_ca_file = None;
    let refused =
        companin::startup::Application::build_with_models(untrusted, Models::local_defaults())
            .await;
    assert!(
        refused.is_err(),
        "a Redis certificate nobody vouches for is refused"
    );
}

#[tokio::test]
async fn a_periodic_pass_is_leased_to_one_replica_at_a_time_until_the_lease_expires() {
    use companin::repo::leases::take;
    let app = TestApp::spawn().await;
    let db = sea_orm::Database::connect(&app.database_url())
        .await
        .expect("db");
    let now = chrono::Utc::now();
    let minute = chrono::Duration::minutes(1);
    // Ten replicas ask at once: one gets it.
    let asks = (0..10).map(|i| {
        let db = db.clone();
        async move { take(&db, "bench-pass", &format!("rep_{i}"), now, now + minute).await }
    });
    let taken = futures::future::join_all(asks)
        .await
        .into_iter()
        .map(|r| r.expect("the lease statement runs"))
        .filter(|taken| *taken)
        .count();
    assert_eq!(taken, 1, "one replica holds the lease");
    assert!(
        !take(
            &db,
            "bench-pass",
            "rep_x",
            now + chrono::Duration::seconds(59),
            now + minute * 2
        )
        .await
        .expect("runs"),
        "not before it expires"
    );
    assert!(
        take(&db, "bench-pass", "rep_x", now + minute, now + minute * 2)
            .await
            .expect("runs"),
        "anyone once it has"
    );
    assert!(
        take(&db, "other-pass", "rep_x", now, now + minute)
            .await
            .expect("runs"),
        "leases are per pass"
    );
}

/// A URL source of `page`, refreshed hourly, once it is indexed; returns its id.
async fn ready_url_source(app: &TestApp, page: &Page) -> String {
    *page.body.lock().expect("lock") = article("The depot opens at seven. ");
    let url = serve(page.clone()).await;
    let (status, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/urls/", &app.key)
            .json(&json!({ "url": url, "refresh_interval_minutes": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(app.settled(&app.key, &id).await["status"], "READY");
    id
}

/// Moves the next refresh of source `id` into the past.
async fn make_due(app: &TestApp, id: &str) {
    use entity::knowledge_source::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let db = sea_orm::Database::connect(&app.database_url())
        .await
        .expect("db");
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    Entity::update_many()
        .col_expr(Column::NextRefreshAt, Expr::value(past))
        .filter(Column::Id.eq(id))
        .exec(&db)
        .await
        .expect("made due");
}

#[tokio::test]
async fn a_due_refresh_is_claimed_by_one_of_many_schedulers_asking_at_once() {
    use companin::{
        auth::{Tenant, Work},
        domain::ids::{OrgId, SourceId},
        repo::knowledge::claim_refresh,
    };
    // This server's own scheduler stays asleep: only the claims below compete.
    let app = TestApp::spawn_with(|s| {
        s.ingestion.allow_private_urls = true;
        s.ingestion.scheduler_interval_seconds = 3600;
    })
    .await;
    let page = Page::default();
    let id = ready_url_source(&app, &page).await;
    make_due(&app, &id).await;

    let db = sea_orm::Database::connect(&app.database_url())
        .await
        .expect("db");
    let tenant = Tenant::for_work(OrgId::from_db(app.org_id.clone()), Work::Ingestion);
    let source = SourceId::from_db(id);
    let now = chrono::Utc::now();
    let next = now + chrono::Duration::minutes(60);
    let claims = (0..10).map(|_| claim_refresh(&db, &tenant, &source, now, next));
    let claimed = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.expect("the claim runs"))
        .filter(|claimed| *claimed)
        .count();
    assert_eq!(claimed, 1, "one scheduler claims the due refresh");
}
