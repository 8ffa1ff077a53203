//! GraphQL conventions: schema drift, CSRF, limits, codes, node, introspection.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn the_committed_schema_matches_the_running_server() {
    let app = TestApp::spawn().await;
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists");
    let built = companin::graphql::sdl(&companin::graphql::build(&app.settings.http, None));
    assert!(
        committed == built,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
    let data = app
        .gql_ok(&app.key, "{ __schema { types { name } } }", json!({}))
        .await;
    for ty in data["__schema"]["types"].as_array().into_iter().flatten() {
        let name = ty["name"].as_str().unwrap_or_default();
        if !name.starts_with("__") && !["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
            assert!(
                committed.contains(&format!(" {name} "))
                    || committed.contains(&format!(" {name}\n")),
                "served type {name} is in schema.graphql"
            );
        }
    }
}

#[tokio::test]
async fn requests_a_browser_could_send_without_preflight_are_refused() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": "{ __typename }" }).to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let (status, response) = TestApp::send(request).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{content_type:?}: {response}"
        );
        assert!(
            response["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("cross-site request forgery")
        );
    }
    let (status, response) = TestApp::send(
        app.client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "text/plain")
            .header("X-API-Key", &app.key)
            .body(body),
    )
    .await;
    assert_eq!(
        (status, &response["data"]),
        (StatusCode::OK, &json!({ "__typename": "Query" })),
        "a custom header forces a preflight"
    );
}

#[tokio::test]
async fn oversized_batched_and_too_deep_requests_are_refused_with_codes() {
    let app = TestApp::spawn_with(|s| {
        s.http.max_request_bytes = 4096;
        s.http.graphql_max_depth = 4;
        s.http.graphql_max_complexity = 50;
    })
    .await;
    let url = format!("{}/graphql", app.address);
    let big = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(8000)) });
    let (status, body) = TestApp::send(
        app.client
            .post(&url)
            .header("X-API-Key", &app.key)
            .json(&big),
    )
    .await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (StatusCode::PAYLOAD_TOO_LARGE, &json!("PAYLOAD_TOO_LARGE"))
    );

    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let (status, body) = TestApp::send(
        app.client
            .post(&url)
            .header("X-API-Key", &app.key)
            .json(&batch),
    )
    .await;
    assert_eq!(
        (status, &body["errors"][0]["extensions"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("BAD_USER_INPUT"))
    );

    let deep = "{ assistants { edges { node { versions { edges { node { id } } } } } } }";
    let (code, _) = app.gql_err(&app.key, deep, json!({})).await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");
    let (code, _) = app
        .gql_err(&app.key, "{ assistants { nodes { id ", json!({}))
        .await;
    assert_eq!(
        code, "GRAPHQL_VALIDATION_FAILED",
        "parse errors carry a code too"
    );
    let (code, error) = app
        .gql_err(
            &app.key,
            "{ assistants(first: 1000) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (code.as_str(), &error["extensions"]["field"]),
        ("BAD_USER_INPUT", &json!("first"))
    );
}

#[tokio::test]
async fn introspection_can_be_switched_off_and_batching_on() {
    let app = TestApp::spawn_with(|s| {
        s.http.graphql_introspection = false;
        s.http.graphql_batching = true;
    })
    .await;
    let (_, body) = app
        .gql_raw(&app.key, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(
        body["data"]["__schema"],
        Value::Null,
        "introspection answers nothing: {body}"
    );
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ viewer { scopes } }" }]);
    let (status, body) = TestApp::send(
        app.client
            .post(format!("{}/graphql", app.address))
            .header("X-API-Key", &app.key)
            .json(&batch),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body[1]["data"]["viewer"]["scopes"],
        json!(["READ", "WRITE", "ADMIN"])
    );
}

#[tokio::test]
async fn node_resolves_every_kind_of_id_of_the_callers_organization() {
    let app = TestApp::spawn().await;
    let data = app
        .gql_ok(&app.key, "mutation { createAssistant(input: { name: \"Ada\" }) { id versions { nodes { id } } } }", json!({}))
        .await;
    let assistant = data["createAssistant"]["id"].clone();
    let version = data["createAssistant"]["versions"]["nodes"][0]["id"].clone();
    let viewer = app
        .gql_ok(
            &app.key,
            "{ viewer { organization { id } apiKey { id } } }",
            json!({}),
        )
        .await;
    let query = "query($id: ID!) { node(id: $id) { __typename id } }";
    for (id, typename) in [
        (
            viewer["viewer"]["organization"]["id"].clone(),
            "Organization",
        ),
        (viewer["viewer"]["apiKey"]["id"].clone(), "ApiKey"),
        (assistant, "Assistant"),
        (version, "AssistantVersion"),
    ] {
        let data = app.gql_ok(&app.key, query, json!({ "id": id })).await;
        assert_eq!(data["node"], json!({ "__typename": typename, "id": id }));
    }
    let data = app
        .gql_ok(&app.key, query, json!({ "id": "nonsense" }))
        .await;
    assert_eq!(data["node"], Value::Null);
}

#[tokio::test]
async fn a_client_of_the_graphql_response_media_type_gets_it_and_400_for_requests_that_cannot_run()
{
    let app = TestApp::spawn().await;
    let post = |query: &str| {
        app.client
            .post(format!("{}/graphql", app.address))
            .header("X-API-Key", &app.key)
            .header(
                "Accept",
                "application/graphql-response+json, application/json;q=0.9",
            )
            .json(&json!({ "query": query }))
            .send()
    };
    for (query, status, data) in [
        ("{ viewer { scopes } }", 200, true),
        ("{ viewer { scopes ", 400, false),
        ("{ viewer { noSuchField } }", 400, false),
    ] {
        let response = post(query).await.expect("sent");
        assert_eq!(response.status().as_u16(), status, "{query}");
        assert_eq!(
            response.headers()["content-type"],
            "application/graphql-response+json",
            "{query}"
        );
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body.get("data").is_some(), data, "{query}: {body}");
    }
    // A body without a content type is not guessed at.
    let untyped = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("X-API-Key", &app.key)
        .body(r#"{"query": "{ viewer { scopes } }"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(untyped.status().as_u16(), 400);
    // Without it, the same failure is a 200 in application/json, as clients of old expect.
    let (status, body) = app.gql_raw(&app.key, "{ viewer { scopes ", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{body}");
}
