//! Rate limiting: headers, refusals, exact counting under concurrency (in memory, in Redis,
//! and across two servers sharing Redis), subscription starts, the admin override.

use companin::models::Models;
use reqwest::{Method, StatusCode};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code, start},
    ws_support::Ws,
};

const SET_LIMIT: &str = "mutation($input: SetRateLimitInput!) { setRateLimit(input: $input) { limit windowSeconds isDefault } }";

/// Sets the organization's limit over GraphQL (one request of the budget).
async fn set_limit(app: &TestApp, limit: u32, window_seconds: u32) {
    let data = app
        .gql_ok(
            &app.key,
            SET_LIMIT,
            json!({ "input": { "limit": limit, "windowSeconds": window_seconds } }),
        )
        .await;
    assert_eq!(
        data["setRateLimit"],
        json!({ "limit": limit, "windowSeconds": window_seconds, "isDefault": false })
    );
}

/// Makes sure the current window lasts more than `margin` seconds (waiting for the next one
/// if needed), so a test's burst never straddles two windows. Spends exactly one request of
/// the window it returns in.
async fn fresh_window(app: &TestApp, margin: u64) {
    loop {
        let response = app
            .rest(Method::GET, "/api/v1/rate-limit", &app.key)
            .send()
            .await
            .expect("request sent");
        let reset_after: u64 = header(&response, "ratelimit")
            .split("t=")
            .nth(1)
            .and_then(|t| t.parse().ok())
            .expect("RateLimit header with t=");
        if reset_after > margin {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(reset_after + 1)).await;
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_owned()
}

async fn assistants_stored(app: &TestApp) -> u64 {
    let db = companin::db::connect(&app.settings).await.expect("db");
    entity::assistant::Entity::find()
        .count(&db)
        .await
        .expect("count")
}

#[tokio::test]
async fn every_response_carries_the_budget_and_a_refusal_executes_nothing() {
    let app = TestApp::spawn().await;
    fresh_window(&app, 30).await;
    set_limit(&app, 4, 3600).await;
    // The budget so far: the window check and setRateLimit.
    let response = app
        .rest(Method::GET, "/api/v1/assistants", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-ratelimit-limit"), "4");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "1");
    let reset: u64 = header(&response, "x-ratelimit-reset")
        .parse()
        .expect("epoch");
    assert!(reset > chrono::Utc::now().timestamp() as u64);
    assert_eq!(header(&response, "ratelimit-policy"), "\"org\";q=4;w=3600");
    assert!(header(&response, "ratelimit").starts_with("\"org\";r=1;t="));

    let (status, body) = app
        .gql_raw(&app.key, "query Who { viewer { scopes } }", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Over the limit: REST and GraphQL both refuse, with Retry-After, and nothing runs.
    let refused = app
        .rest(Method::POST, "/api/v1/assistants", &app.key)
        .json(&json!({ "name": "Never" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&refused, "retry-after").parse().expect("seconds");
    assert!((1..=3600).contains(&retry_after));
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(code(&body), "RATE_LIMITED");
    assert_eq!(body["error"]["details"]["retry_after"], retry_after);

    let (status, body) = app
        .gql_raw(
            &app.key,
            "mutation { createAssistant(input: { name: \"Never\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert_eq!(assistants_stored(&app).await, 0);

    // Unauthenticated requests are not counted and say so first.
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants", "cmp_live_nope")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );

    // Another organization has its own budget.
    let (_, other_key) = app.create_org("Other").await;
    let (status, _) = TestApp::send(app.rest(Method::GET, "/api/v1/assistants", &other_key)).await;
    assert_eq!(status, StatusCode::OK);
}

/// Fires `n` concurrent requests spread over `apps`; returns (admitted, refused).
async fn burst(apps: &[&TestApp], n: usize) -> (usize, usize) {
    let requests = (0..n).map(|i| {
        let app = apps[i % apps.len()];
        app.rest(Method::GET, "/api/v1/viewer", &app.key).send()
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.expect("sent").status())
        .collect();
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(admitted + refused, n, "only 200s and 429s: {statuses:?}");
    (admitted, refused)
}

#[tokio::test]
async fn concurrent_requests_against_a_limit_admit_exactly_the_limit_in_memory() {
    let app = TestApp::spawn().await;
    fresh_window(&app, 60).await;
    set_limit(&app, 25, 3600).await;
    // 2 requests of the budget are spent (the window check and setRateLimit).
    assert_eq!(burst(&[&app], 80).await, (23, 57));
}

#[tokio::test]
async fn two_servers_sharing_redis_admit_exactly_the_limit_between_them() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL is not set: the Redis rate-limit suite is skipped");
        return;
    };
    let prefix = format!("companin-test-{}:", uuid::Uuid::now_v7().simple());
    let first = TestApp::spawn_with(|s| {
        s.redis.redis_url = Some(redis_url.clone().into());
        s.redis.redis_prefix = prefix.clone();
    })
    .await;
    let second = first.at(start(first.settings.clone(), Models::local_defaults(), None).await);
    fresh_window(&first, 60).await;
    set_limit(&first, 30, 3600).await;
    assert_eq!(burst(&[&first, &second], 90).await, (28, 62));
    // Both servers see the spent budget.
    let (status, _) = TestApp::send(second.rest(Method::GET, "/api/v1/viewer", &second.key)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_subscription_start_counts_and_is_refused_over_the_limit() {
    let app = TestApp::spawn().await;
    fresh_window(&app, 30).await;
    set_limit(&app, 3, 3600).await;
    let mut ws = Ws::ready(&app, &app.key).await;
    let query = "subscription($id: ID!) { conversationEvents(conversationId: $id) { __typename } }";
    // The third request of the window: admitted (it ends with NOT_FOUND, which is fine).
    ws.subscribe(
        "1",
        query,
        json!({ "id": "conv_0192f0c0e1d27a3b8c4d5e6f7a8b9c0d" }),
    )
    .await;
    let first = ws.recv().await;
    assert_ne!(
        first["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{first}"
    );
    ws.subscribe(
        "2",
        query,
        json!({ "id": "conv_0192f0c0e1d27a3b8c4d5e6f7a8b9c0d" }),
    )
    .await;
    let refused = loop {
        let frame = ws.recv().await;
        if frame["id"] == "2" {
            break frame;
        }
    };
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        refused["payload"][0]["extensions"]["retryAfter"]
            .as_u64()
            .is_some()
    );
    // The connection stays usable.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
}

#[tokio::test]
async fn admins_override_and_reset_the_limit_over_rest_and_the_cli_sets_it_too() {
    let app = TestApp::spawn().await;
    let (status, limit) =
        TestApp::send(app.rest(Method::GET, "/api/v1/rate-limit", &app.key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        limit,
        json!({ "limit": app.settings.rate_limits.rate_limit_per_hour, "window_seconds": 3600, "is_default": true })
    );

    let read_only = app.issue_key(json!({ "scopes": ["READ"] })).await;
    let read_key = read_only["key"].as_str().expect("key");
    let (status, body) = TestApp::send(
        app.rest(Method::PUT, "/api/v1/rate-limit", read_key)
            .json(&json!({ "limit": 10 })),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));

    let (status, body) = TestApp::send(
        app.rest(Method::PUT, "/api/v1/rate-limit", &app.key)
            .json(&json!({ "limit": 0 })),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT")
    );
    assert_eq!(body["error"]["details"]["field"], "limit");

    // An admin may not raise its own budget above the operator's ceiling (here the default
    // budget, 100,000 an hour): neither at once nor through a short window.
    for (limit, window) in [(100_001, 3600), (2_000, 60)] {
        let (status, body) = TestApp::send(
            app.rest(Method::PUT, "/api/v1/rate-limit", &app.key)
                .json(&json!({ "limit": limit, "window_seconds": window })),
        )
        .await;
        assert_eq!(
            (status, code(&body), &body["error"]["details"]["field"]),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "BAD_USER_INPUT",
                &json!("limit")
            ),
            "{limit} per {window} s: {body}"
        );
    }

    let (status, set) = TestApp::send(
        app.rest(Method::PUT, "/api/v1/rate-limit", &app.key)
            .json(&json!({ "limit": 50, "window_seconds": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        set,
        json!({ "limit": 50, "window_seconds": 60, "is_default": false })
    );
    let response = app
        .rest(Method::GET, "/api/v1/viewer", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&response, "ratelimit-policy"), "\"org\";q=50;w=60");

    let (status, reset) =
        TestApp::send(app.rest(Method::DELETE, "/api/v1/rate-limit", &app.key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reset["is_default"], true);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_companin"))
        .args([
            "org",
            "set-limit",
            &app.org_id,
            "--limit",
            "7",
            "--window",
            "15m",
        ])
        .env_clear()
        .env("COMPANIN_DATA_DIR", &app.settings.data_dir)
        .env("DATABASE_URL", app.database_url())
        .env("RUST_LOG", "warn")
        .output()
        .expect("companin runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("rate_limit: 7") && stdout.contains("window_seconds: 900"),
        "{stdout}"
    );
    let (_, limit) = TestApp::send(app.rest(Method::GET, "/api/v1/rate-limit", &app.key)).await;
    assert_eq!(
        limit,
        json!({ "limit": 7, "window_seconds": 900, "is_default": false })
    );
}

async fn sessions_stored(app: &TestApp) -> u64 {
    let db = companin::db::connect(&app.settings).await.expect("db");
    entity::visitor_session::Entity::find()
        .count(&db)
        .await
        .expect("count")
}

/// A mutation that opens `n` sessions under aliases.
fn sessions(n: usize) -> String {
    let fields: String = (0..n)
        .map(|i| format!("s{i}: createSession(input: {{}}) {{ id }} "))
        .collect();
    format!("mutation {{ {fields} }}")
}

#[tokio::test]
async fn each_field_that_starts_work_pays_as_a_request_and_what_the_window_cannot_pay_runs_nothing()
{
    let app = TestApp::spawn().await;
    fresh_window(&app, 30).await;
    set_limit(&app, 10, 3600).await;
    // Spent: the window check and setRateLimit.

    let (status, body) = app.gql_raw(&app.key, &sessions(20), json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{status}: {body}"
    );
    assert_eq!(
        sessions_stored(&app).await,
        0,
        "a refused request runs nothing"
    );

    // The refused request counted once, its fields nothing: four sessions (four requests)
    // still fit, and are paid for.
    let opened = app.gql_ok(&app.key, &sessions(4), json!({})).await;
    assert_eq!(opened.as_object().map(|o| o.len()), Some(4));
    let response = app
        .rest(Method::GET, "/api/v1/assistants", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "2");

    // Over websocket the same: the subscribe pays one, its three sessions three.
    let mut ws = Ws::ready(&app, &app.key).await;
    ws.subscribe("1", &sessions(3), json!({})).await;
    let refused = ws.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert_eq!(sessions_stored(&app).await, 4);
}
