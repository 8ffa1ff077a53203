//! No organization can read, change or detect another's records.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Every assistant operation, answered for `id` with `key`: GraphQL outcomes then REST ones.
async fn outcomes(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let vars = json!({ "id": id });
    let mut seen = Vec::new();
    for query in [
        "query($id: ID!) { assistant(id: $id) { id } }",
        "query($id: ID!) { node(id: $id) { id } }",
    ] {
        seen.push(app.gql_raw(key, query, vars.clone()).await.1);
    }
    for mutation in [
        "mutation($id: ID!) { updateAssistant(id: $id, input: { name: \"x\" }) { id } }",
        "mutation($id: ID!) { promoteAssistantVersion(assistantId: $id, version: 1) { id } }",
        "mutation($id: ID!) { setAssistantActive(id: $id, active: false) { id } }",
        "mutation($id: ID!) { deleteAssistant(id: $id) { id } }",
    ] {
        let (_, body) = app.gql_raw(key, mutation, vars.clone()).await;
        seen.push(json!({ "code": body["errors"][0]["extensions"]["code"], "message": body["errors"][0]["message"], "data": body["data"] }));
    }
    let path = format!("/api/v1/assistants/{id}");
    let requests = [
        app.rest(Method::GET, &path, key),
        app.rest(Method::PATCH, &path, key)
            .json(&json!({ "name": "x" })),
        app.rest(Method::GET, &format!("{path}/versions"), key),
        app.rest(Method::POST, &format!("{path}/versions/1/promote"), key),
        app.rest(Method::PUT, &format!("{path}/active"), key)
            .json(&json!({ "active": false })),
        app.rest(Method::DELETE, &path, key),
    ];
    for request in requests {
        let (status, body) = TestApp::send(request).await;
        seen.push(json!({ "status": status.as_u16(), "body": body }));
    }
    seen
}

#[tokio::test]
async fn another_organizations_assistant_answers_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let (_, other_key) = app.create_org("Globex").await;
    let data = app
        .gql_ok(
            &app.key,
            "mutation { createAssistant(input: { name: \"Secret\" }) { id } }",
            json!({}),
        )
        .await;
    let theirs = data["createAssistant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let missing = format!("asst_{}", "0".repeat(32));

    let foreign = outcomes(&app, &other_key, &theirs).await;
    let absent = outcomes(&app, &other_key, &missing).await;
    assert_eq!(
        foreign, absent,
        "a foreign id is indistinguishable from a missing one"
    );
    assert_eq!(foreign[0]["data"]["assistant"], Value::Null);
    assert_eq!(foreign[2]["code"], "NOT_FOUND");
    assert_eq!(foreign[6]["status"], 404);

    let data = app
        .gql_ok(&other_key, "{ assistants { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        data["assistants"]["nodes"],
        json!([]),
        "lists hold only the caller's records"
    );
    let data = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { assistant(id: $id) { name active version } }",
            json!({ "id": theirs }),
        )
        .await;
    assert_eq!(
        data["assistant"],
        json!({ "name": "Secret", "active": true, "version": 1 }),
        "the owner's assistant is untouched"
    );
}

#[tokio::test]
async fn keys_and_versions_of_another_organization_are_invisible() {
    let app = TestApp::spawn().await;
    let (other_org, other_key) = app.create_org("Globex").await;
    let their_key_id = app
        .gql_ok(&other_key, "{ viewer { apiKey { id } } }", json!({}))
        .await["viewer"]["apiKey"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let data = app
        .gql_ok(
            &other_key,
            "mutation { createAssistant(input: { name: \"Theirs\" }) { id } }",
            json!({}),
        )
        .await;
    let their_assistant = data["createAssistant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let data = app
        .gql_ok(
            &other_key,
            "query($id: ID!) { assistant(id: $id) { versions { nodes { id } } } }",
            json!({ "id": their_assistant }),
        )
        .await;
    let their_version = data["assistant"]["versions"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    for id in [&other_org, &their_key_id, &their_version] {
        let data = app
            .gql_ok(
                &app.key,
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["node"], Value::Null, "{id}");
    }
    let (code, _) = app
        .gql_err(
            &app.key,
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": their_key_id }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let (status, _) = TestApp::send(app.rest(
        Method::DELETE,
        &format!("/api/v1/api-keys/{their_key_id}"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let data = app.gql_ok(&app.key, "{ apiKeys { id } }", json!({})).await;
    assert!(!data.to_string().contains(&their_key_id));
    let (status, _) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &other_key)).await;
    assert_eq!(status, StatusCode::OK, "their key still works");
}
