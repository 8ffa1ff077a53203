//! Authentication failure modes and scopes, on both transports.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, code};

const LIST: &str = "{ assistants { nodes { id } } }";

/// Asserts that `headers` are refused on both transports with 401 `UNAUTHENTICATED`.
async fn assert_refused(app: &TestApp, headers: &[(&str, &str)], case: &str) {
    let mut rest = app
        .client
        .get(format!("{}/api/v1/assistants/", app.address));
    let mut gql = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": LIST }));
    for (name, value) in headers {
        rest = rest.header(*name, *value);
        gql = gql.header(*name, *value);
    }
    let (status, body) = TestApp::send(rest).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "REST, {case}: {body}");
    assert_eq!(code(&body), "UNAUTHENTICATED", "REST, {case}");
    let (status, body) = TestApp::send(gql).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "GraphQL, {case}: {body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "GraphQL, {case}"
    );
    assert!(
        body.get("data").is_none(),
        "GraphQL, {case}: nothing executed"
    );
}

#[tokio::test]
async fn every_missing_or_bad_credential_is_refused_on_both_transports() {
    let app = TestApp::spawn().await;
    let unknown = format!("cmp_live_{}", "A".repeat(40));
    let paired = app
        .issue_key(json!({ "withSecret": true, "scopes": ["READ"] }))
        .await;
    let (paired_key, secret) = (
        paired["key"].as_str().unwrap_or_default(),
        paired["secret"].as_str().unwrap_or_default(),
    );
    let revoked = app.issue_key(json!({})).await;
    let revoked_id = revoked["apiKey"]["id"].as_str().unwrap_or_default();
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { revokeApiKey(id: $id) { status } }",
        json!({ "id": revoked_id }),
    )
    .await;
    let expiring = app.issue_key(json!({ "expiresInSeconds": 1 })).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    assert_refused(&app, &[], "missing key").await;
    assert_refused(&app, &[("X-API-Key", "not-a-key")], "malformed key").await;
    assert_refused(&app, &[("X-API-Key", &unknown)], "unknown key").await;
    assert_refused(
        &app,
        &[("X-API-Key", revoked["key"].as_str().unwrap_or_default())],
        "revoked key",
    )
    .await;
    assert_refused(
        &app,
        &[("X-API-Key", expiring["key"].as_str().unwrap_or_default())],
        "expired key",
    )
    .await;
    assert_refused(
        &app,
        &[("X-API-Key", paired_key)],
        "secret required but missing",
    )
    .await;
    assert_refused(
        &app,
        &[
            ("X-API-Key", paired_key),
            ("X-API-Secret", "cmp_secret_wrong"),
        ],
        "wrong secret",
    )
    .await;
    assert_refused(
        &app,
        &[("Authorization", "Basic dXNlcjpwdw==")],
        "unsupported scheme",
    )
    .await;

    let (status, _) = TestApp::send(
        app.rest(Method::GET, "/api/v1/assistants", paired_key)
            .header("X-API-Secret", secret),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "key with its secret works");
    let (status, _) = TestApp::send(
        app.client
            .get(format!("{}/api/v1/assistants", app.address))
            .bearer_auth(&app.key),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an API key also works as a bearer token"
    );
}

#[tokio::test]
async fn scopes_decide_what_a_key_may_do_on_both_transports() {
    let app = TestApp::spawn().await;
    let read = app.issue_key(json!({ "scopes": ["READ"] })).await["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let write = app.issue_key(json!({ "scopes": ["WRITE"] })).await["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let create = "mutation { createAssistant(input: { name: \"Ada\" }) { id } }";

    let (code_, _) = app.gql_err(&read, create, json!({})).await;
    assert_eq!(code_, "FORBIDDEN");
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/assistants/", &read)
            .json(&json!({ "name": "Ada" })),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    app.gql_ok(&read, LIST, json!({})).await;

    app.gql_ok(&write, create, json!({})).await;
    let data = app.gql_ok(&write, LIST, json!({})).await;
    assert_eq!(
        data["assistants"]["nodes"].as_array().map(Vec::len),
        Some(1),
        "write implies read"
    );
    let (code_, _) = app.gql_err(&write, "{ apiKeys { id } }", json!({})).await;
    assert_eq!(code_, "FORBIDDEN", "key management needs admin");
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/api-keys", &write)
            .json(&json!({})),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
}

#[tokio::test]
async fn keys_are_shown_once_recorded_when_used_and_revoked_at_once() {
    let app = TestApp::spawn().await;
    let (status, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/api-keys/", &app.key)
            .json(&json!({ "name": "billing backend", "scopes": ["read"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap_or_default().to_owned();
    let id = created["api_key"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("cmp_live_"));
    assert_eq!(created["api_key"]["scopes"], json!(["read"]));

    let (status, _) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &key)).await;
    assert_eq!(status, StatusCode::OK);
    let mut last_used = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, keys) = TestApp::send(app.rest(Method::GET, "/api/v1/api-keys", &app.key)).await;
        let listed = keys
            .as_array()
            .and_then(|l| l.iter().find(|k| k["id"] == id.as_str()).cloned())
            .unwrap_or_default();
        assert!(
            !listed.to_string().contains(&key),
            "the plaintext is never listed"
        );
        last_used = listed["last_used_at"].clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!last_used.is_null(), "last_used_at is recorded");

    let (status, revoked) =
        TestApp::send(app.rest(Method::DELETE, &format!("/api/v1/api-keys/{id}"), &app.key)).await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, body) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &key)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );
}
