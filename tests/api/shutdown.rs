//! A clean stop of the real binary: SIGTERM stops accepting, closes websockets with 1001,
//! lets in-flight requests finish, writes every queued request-log entry and exits 0.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    helpers::{TestApp, serve_binary},
    ws_support::Ws,
};

#[tokio::test]
async fn sigterm_drains_requests_closes_sockets_and_loses_no_log_entry() {
    let app = TestApp::spawn().await;
    let (mut server, served) = serve_binary(&app, &[]).await;

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
