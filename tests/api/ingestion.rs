//! The durable pipeline: URL refreshes, SSRF refusal, resuming after a crash, and deleting a
//! source while its job runs.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode as AxumStatus, header},
    response::{IntoResponse, Response},
    routing::get,
};
use companin::{
    config::{IngestionSettings, Settings},
    models::{Embedder, HashEmbedder, LocalSummarizer, Models},
    vector::VectorStore,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

use crate::helpers::{TestApp, code, start};

/// A page served on loopback whose body the test changes; counts fetches.
#[derive(Clone, Default)]
pub struct Page {
    pub body: Arc<Mutex<String>>,
    fetches: Arc<Mutex<usize>>,
}

impl Page {
    /// How many times the page was fetched.
    pub fn fetches(&self) -> usize {
        *self.fetches.lock().expect("lock")
    }
}

async fn serve_page(State(page): State<Page>, headers: HeaderMap) -> Response {
    *page.fetches.lock().expect("lock") += 1;
    let body = page.body.lock().expect("lock").clone();
    let etag = format!(
        "\"{}\"",
        body.len() * 31 + body.bytes().map(usize::from).sum::<usize>()
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (AxumStatus::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, "text/html".to_owned()),
        ],
        body,
    )
        .into_response()
}

pub async fn serve(page: Page) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let router = Router::new()
        .route("/page", get(serve_page))
        .with_state(page);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/page")
}

pub fn article(sentence: &str) -> String {
    format!(
        "<html><body><article><h1>Service news</h1><p>{}</p></article></body></html>",
        sentence.repeat(6)
    )
}

async fn refreshes(app: &TestApp, id: &str) -> Vec<Value> {
    let (_, log) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/knowledge/urls/{id}/refreshes"),
        &app.key,
    ))
    .await;
    log.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_url_is_re_embedded_only_when_its_content_changes() {
    let app = TestApp::spawn_with(|s| s.ingestion.allow_private_urls = true).await;
    let page = Page::default();
    *page.body.lock().expect("lock") =
        article("Our helpdesk answers the phone from eight in the morning. ");
    let url = serve(page.clone()).await;

    let (status, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/urls/", &app.key)
            .json(&json!({ "url": url, "refresh_interval_minutes": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let first = app.settled(&app.key, &id).await;
    assert_eq!(first["status"], "READY", "{first}");
    assert_eq!(
        app.search(&app.key, "helpdesk phone morning", json!({}))
            .await[0]["source"]["id"],
        id.as_str()
    );

    let refresh = |app: &TestApp| {
        TestApp::send(app.rest(
            Method::POST,
            &format!("/api/v1/knowledge/urls/{id}/refresh"),
            &app.key,
        ))
    };
    assert_eq!(refresh(&app).await.0, StatusCode::OK);
    let mut log = refreshes(&app, &id).await;
    for _ in 0..200 {
        if log.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        log = refreshes(&app, &id).await;
    }
    assert_eq!(log[0]["outcome"], "UNCHANGED", "{log:?}");
    assert_eq!(log[0]["http_status"], 304, "the fetch was conditional");
    let unchanged = app.settled(&app.key, &id).await;
    assert_eq!(
        unchanged["indexedAt"], first["indexedAt"],
        "unchanged content is not re-embedded"
    );

    *page.body.lock().expect("lock") =
        article("From May the helpdesk also answers chat messages at night. ");
    refresh(&app).await;
    for _ in 0..200 {
        if refreshes(&app, &id).await.len() == 3
            && app.settled(&app.key, &id).await["indexedAt"] != first["indexedAt"]
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = refreshes(&app, &id).await;
    assert_eq!(log[0]["outcome"], "CHANGED", "{log:?}");
    let changed = app.settled(&app.key, &id).await;
    assert_ne!(
        changed["indexedAt"], first["indexedAt"],
        "changed content is re-embedded"
    );
    assert_ne!(changed["contentHash"], first["contentHash"]);
    let hits = app
        .search(
            &app.key,
            "chat messages at night",
            json!({ "mode": "TEXT" }),
        )
        .await;
    assert_eq!(hits[0]["source"]["id"], id.as_str());
    let stale = app
        .search(&app.key, "phone eight morning", json!({ "mode": "TEXT" }))
        .await;
    assert!(
        stale.iter().all(|h| !h["text"]
            .as_str()
            .unwrap_or_default()
            .contains("eight in the morning")),
        "old chunks are gone"
    );
    assert_eq!(*page.fetches.lock().expect("lock"), 3);
}

#[tokio::test]
async fn urls_on_private_addresses_are_refused_without_the_flag() {
    let app = TestApp::spawn().await;
    let url = serve(Page::default()).await;
    for target in [
        url.as_str(),
        "http://localhost:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "ftp://example.com/",
    ] {
        let (status, body) = TestApp::send(
            app.rest(Method::POST, "/api/v1/knowledge/urls", &app.key)
                .json(&json!({ "url": target })),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT"),
            "{target}: {body}"
        );
        assert_eq!(body["error"]["details"]["field"], "url");
    }
    let (_, listed) =
        TestApp::send(app.rest(Method::GET, "/api/v1/knowledge/urls", &app.key)).await;
    assert_eq!(listed["data"], json!([]), "nothing was stored");
}

/// Embeds like the hash embedder, after a long pause: a worker is inside this job when the
/// server dies.
struct StallingEmbedder(HashEmbedder);

#[async_trait]
impl Embedder for StallingEmbedder {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn dimension(&self) -> usize {
        self.0.dimension()
    }
    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        tokio::time::sleep(Duration::from_secs(600)).await;
        self.0.embed(texts).await
    }
}

#[tokio::test]
async fn a_job_cut_off_by_a_crash_resumes_after_restart_without_duplicate_chunks() {
    let app = TestApp::spawn_with(|s| {
        s.ingestion.ingest_lease_seconds = 1;
        s.ingestion.ingest_workers = 0;
    })
    .await;
    let with_worker = with_one_worker(&app);
    let id = crash_inside_a_job(&app, with_worker.clone()).await;
    start(with_worker, Models::local_defaults(), None).await;

    let source = app.settled(&app.key, &id).await;
    assert_eq!(
        source["status"], "READY",
        "the restarted server took the job over: {source}"
    );
    let chunks = source["chunkCount"].as_i64().unwrap_or_default();
    assert!(chunks > 1, "{source}");
    let store = VectorStore::open(&app.settings.lancedb_uri(), usize::MAX)
        .await
        .expect("store");
    let embedder = HashEmbedder::default();
    let org = companin::domain::ids::OrgId::from_db(app.org_id.clone());
    let source_id = companin::domain::ids::SourceId::from_db(id.clone());
    let stored = store
        .count_source(embedder.id(), embedder.dimension(), &org, &source_id)
        .await
        .expect("count");
    assert_eq!(stored as i64, chunks, "each chunk stored exactly once");
}

/// The settings of `app` (its database and data dir) for a server with one worker.
fn with_one_worker(app: &TestApp) -> Settings {
    Settings {
        ingestion: IngestionSettings {
            ingest_workers: 1,
            ..app.settings.clone().ingestion
        },
        ..app.settings.clone()
    }
}

/// Starts a server whose one worker stalls inside the job of an uploaded file, waits until it
/// holds the job, and kills it there, as a crash would; returns the source's id.
async fn crash_inside_a_job(app: &TestApp, with_worker: Settings) -> String {
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let stalling = Models {
        embedder: Arc::new(StallingEmbedder(HashEmbedder::default())),
        summarizer: Arc::new(LocalSummarizer),
        ..Models::local_defaults()
    };
    let crashing = start(with_worker, stalling, Some(doomed.handle().clone())).await;
    let text = "Chapter one explains the boiler. ".repeat(200);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text.into_bytes()).file_name("boiler.txt"),
    );
    let (status, created) = TestApp::send(
        app.client
            .post(format!("{crashing}/api/v1/knowledge/files"))
            .header("X-API-Key", &app.key)
            .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let status_query = "query($id: ID!) { knowledgeSource(id: $id) { status } }";
    let mut seen = Value::Null;
    for _ in 0..400 {
        seen = app
            .gql_ok(&app.key, status_query, json!({ "id": id }))
            .await["knowledgeSource"]["status"]
            .clone();
        if seen == "PROCESSING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        seen, "PROCESSING",
        "a worker of the doomed server holds the job"
    );
    doomed.shutdown_background();
    id
}

#[tokio::test]
async fn a_job_that_stopped_the_server_on_every_attempt_fails_when_claimed_instead_of_running_again()
 {
    let app = TestApp::spawn_with(|s| {
        s.ingestion.ingest_lease_seconds = 1;
        s.ingestion.ingest_workers = 0;
        s.ingestion.ingest_max_attempts = 1;
    })
    .await;
    let with_worker = with_one_worker(&app);
    let id = crash_inside_a_job(&app, with_worker.clone()).await;
    // Its one attempt is spent: the next server to find it fails it without running it (a
    // file that kills its worker would otherwise kill every restart).
    start(with_worker, Models::local_defaults(), None).await;
    let source = app.settled(&app.key, &id).await;
    let query =
        "query($id: ID!) { knowledgeSource(id: $id) { status errorCode error chunkCount } }";
    let failed = app.gql_ok(&app.key, query, json!({ "id": id })).await["knowledgeSource"].clone();
    assert_eq!(source["status"], "FAILED", "{failed}");
    assert_eq!(failed["errorCode"], "INDEXING_FAILED", "{failed}");
    assert_eq!(failed["chunkCount"], 0, "it was not run again: {failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted 1 times")),
        "{failed}"
    );
}

#[tokio::test]
async fn the_scheduler_refreshes_a_url_once_its_interval_has_passed() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = TestApp::spawn_with(|s| {
        s.ingestion.allow_private_urls = true;
        s.ingestion.scheduler_interval_seconds = 1;
    })
    .await;
    let page = Page::default();
    *page.body.lock().expect("lock") = article("The library lends umbrellas on rainy days. ");
    let url = serve(page.clone()).await;
    let (_, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/knowledge/urls", &app.key)
            .json(&json!({ "url": url, "refresh_interval_minutes": 90 })),
    )
    .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.settled(&app.key, &id).await["status"], "READY");
    assert_eq!(
        refreshes(&app, &id).await.len(),
        1,
        "fetched once when added"
    );

    let db = companin::db::connect(&app.settings).await.expect("db");
    entity::knowledge_source::Entity::update_many()
        .col_expr(
            entity::knowledge_source::Column::NextRefreshAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .filter(entity::knowledge_source::Column::Id.eq(id.as_str()))
        .exec(&db)
        .await
        .expect("made due");
    let mut log = refreshes(&app, &id).await;
    for _ in 0..200 {
        if log.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        log = refreshes(&app, &id).await;
    }
    assert_eq!(log.len(), 2, "the scheduler fetched it again: {log:?}");
    assert_eq!(log[0]["outcome"], "UNCHANGED");
    let (_, source) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/knowledge/urls/{id}"),
        &app.key,
    ))
    .await;
    let next: chrono::DateTime<chrono::Utc> = source["next_refresh_at"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("next refresh time");
    let ahead = next - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(85) && ahead <= chrono::Duration::minutes(90),
        "next refresh in its interval: {ahead}"
    );
}

/// Embeds like the hash embedder; its first call waits for the test's permit, so the test
/// acts while a worker is inside that job.
struct GatedEmbedder {
    inner: HashEmbedder,
    first: AtomicBool,
    entered: Arc<Notify>,
    release: Arc<Semaphore>,
}

#[async_trait]
impl Embedder for GatedEmbedder {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        if self.first.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            let _permit = self.release.acquire().await?;
        }
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn deleting_a_source_while_its_job_runs_leaves_no_chunks_behind() {
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
    let gated = Models {
        embedder: Arc::new(GatedEmbedder {
            inner: HashEmbedder::default(),
            first: AtomicBool::new(true),
            entered: entered.clone(),
            release: release.clone(),
        }),
        summarizer: Arc::new(LocalSummarizer),
        ..Models::local_defaults()
    };
    let app = TestApp::spawn_with_models(|s| s.ingestion.ingest_workers = 1, gated).await;
    let text = "Chapter one explains the boiler. ".repeat(200);
    let (status, created) = app
        .upload(&app.key, "boiler.txt", text.into_bytes(), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    tokio::time::timeout(Duration::from_secs(30), entered.notified())
        .await
        .expect("the worker reached the embedder");

    let (status, body) = TestApp::send(app.rest(
        Method::DELETE,
        &format!("/api/v1/knowledge/files/{id}"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    release.add_permits(1);
    // The one worker takes jobs in turn: once the next file is ready, the deleted source's
    // job has ended, having written its chunks after the delete.
    app.uploaded(
        &app.key,
        "kettle.txt",
        "The kettle holds one and a half litres.",
    )
    .await;

    let store = VectorStore::open(&app.settings.lancedb_uri(), usize::MAX)
        .await
        .expect("store");
    let embedder = HashEmbedder::default();
    let org = companin::domain::ids::OrgId::from_db(app.org_id.clone());
    let source = companin::domain::ids::SourceId::from_db(id.clone());
    let left = store
        .count_source(embedder.id(), embedder.dimension(), &org, &source)
        .await
        .expect("count");
    assert_eq!(left, 0, "no chunk of the deleted source remains");
    let query = "query($id: ID!) { knowledgeSource(id: $id) { id } }";
    let found = app.gql_ok(&app.key, query, json!({ "id": id })).await;
    assert_eq!(found["knowledgeSource"], Value::Null, "{found}");
}

#[tokio::test]
async fn the_sweep_removes_the_chunks_of_sources_that_are_gone_and_keeps_the_rest() {
    use sea_orm::EntityTrait;
    let app = TestApp::spawn().await;
    let kept = app
        .uploaded(&app.key, "kept.txt", "The boiler is serviced every spring.")
        .await;
    let gone = app
        .uploaded(
            &app.key,
            "gone.txt",
            "The kettle holds one and a half litres.",
        )
        .await;
    // A delete that stopped after the row: its chunks stayed behind.
    let db = companin::db::connect(&app.settings).await.expect("db");
    let gone_id = gone["id"].as_str().expect("id").to_owned();
    entity::knowledge_source::Entity::delete_by_id(gone_id.clone())
        .exec(&db)
        .await
        .expect("row deleted");

    let store = VectorStore::open(&app.settings.lancedb_uri(), usize::MAX)
        .await
        .expect("store");
    let swept = companin::ingest::worker::sweep_orphans(&db, &store)
        .await
        .expect("sweep");
    assert_eq!(swept, 1, "one source's chunks were orphaned");
    let embedder = HashEmbedder::default();
    let org = companin::domain::ids::OrgId::from_db(app.org_id.clone());
    let count = |id: &str| {
        let source = companin::domain::ids::SourceId::from_db(id.to_owned());
        let (store, embedder, org) = (&store, &embedder, &org);
        async move {
            store
                .count_source(embedder.id(), embedder.dimension(), org, &source)
                .await
                .expect("count")
        }
    };
    assert_eq!(count(&gone_id).await, 0);
    assert!(count(kept["id"].as_str().expect("id")).await > 0);
    assert_eq!(
        companin::ingest::worker::sweep_orphans(&db, &store)
            .await
            .expect("sweep"),
        0,
        "nothing is left to sweep"
    );
}

#[tokio::test]
async fn outbound_requests_ignore_proxy_variables_and_take_only_the_configured_proxy() {
    // The test's own server runs no worker: the child servers below fetch.
    let app = TestApp::spawn_with(|s| s.ingestion.ingest_workers = 0).await;
    let origin = Page::default();
    *origin.body.lock().expect("lock") = article("The boiler is serviced every spring. ");
    let url = serve(origin.clone()).await;
    // A "proxy" answers what it is asked for with its own page (a forward proxy's request
    // names the origin's URL, whose path the same router serves).
    let proxy = Page::default();
    *proxy.body.lock().expect("lock") = article("Answered by the proxy instead. ");
    let proxy_address = serve(proxy.clone())
        .await
        .trim_end_matches("/page")
        .to_owned();
    let base = [
        ("COMPANIN_ALLOW_PRIVATE_URLS", "true"),
        ("COMPANIN_INGEST_WORKERS", "1"),
    ];
    let cases = [
        (
            vec![
                ("HTTP_PROXY", proxy_address.as_str()),
                ("http_proxy", proxy_address.as_str()),
                ("ALL_PROXY", proxy_address.as_str()),
            ],
            "boiler",
        ),
        (
            vec![("COMPANIN_EGRESS_PROXY", proxy_address.as_str())],
            "proxy",
        ),
    ];
    for (n, (env, expected)) in cases.into_iter().enumerate() {
        let env: Vec<(&str, &str)> = base.iter().copied().chain(env).collect();
        let (mut child, served) = crate::helpers::serve_binary(&app, &env).await;
        let (status, created) = TestApp::send(
            served
                .rest(Method::POST, "/api/v1/knowledge/urls/", &served.key)
                .json(&json!({ "url": format!("{url}?case={n}") })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let source = served
            .settled(&served.key, created["id"].as_str().unwrap_or_default())
            .await;
        assert!(
            source["summary"]
                .as_str()
                .is_some_and(|s| s.contains(expected)),
            "case {n}: {source}"
        );
        let _ = child.kill().await;
    }
    assert_eq!(
        *proxy.fetches.lock().expect("lock"),
        1,
        "only the configured proxy was used"
    );
}
