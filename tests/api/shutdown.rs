//! A clean stop of the real binary: SIGTERM stops accepting, closes websockets with 1001,
//! lets in-flight requests finish, writes every queued request-log entry and exits 0.

use std::{process::Stdio, time::Duration};

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{helpers::TestApp, ws_support::Ws};

#[tokio::test]
async fn sigterm_drains_requests_closes_sockets_and_loses_no_log_entry() {
    let app = TestApp::spawn().await;
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_companin"))
        .arg("serve")
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("COMPANIN_BIND", "127.0.0.1:0")
        .env("COMPANIN_EMBEDDER", "hash")
        .env("COMPANIN_LLM", "extractive")
        .env("COMPANIN_INGEST_WORKERS", "0")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("companin serve starts");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("log line") {
            if let Some(at) = line.find("listening on http://") {
                return line[at + "listening on ".len()..].trim().to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens in time");
    let served = app.at(address);

    let mut ws = Ws::ready(&served, &served.key).await;
    let requests = (0..40).map(|_| {
        served
            .rest(Method::GET, "/api/v1/viewer", &served.key)
            .send()
    });
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.expect("sent").status(), StatusCode::OK);
    }

    let pid = server.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert_eq!(
        ws.closed().await.0,
        1001,
        "websockets are told the server is going away"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server stops in time")
        .expect("exit status");
    assert!(status.success(), "exit status {status}");

    let db = companin::db::connect(&app.settings).await.expect("db");
    let logged = entity::request_log::Entity::find()
        .filter(entity::request_log::Column::OrgId.eq(app.org_id.as_str()))
        .count(&db)
        .await
        .expect("count");
    assert_eq!(
        logged, 40,
        "every request of the stopped server is in the log"
    );
}
