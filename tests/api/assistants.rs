//! Assistants with versioned configuration, over GraphQL and REST.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, code};

const CREATE: &str = "mutation($input: CreateAssistantInput!) { createAssistant(input: $input) { id name version latestVersion active } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateAssistantInput!, $promote: Boolean) { updateAssistant(id: $id, input: $input, promote: $promote) { id version isLive instructions } }";
const VERSIONS: &str = "query($id: ID!) { assistant(id: $id) { version latestVersion instructions versions { nodes { version isLive instructions tone } } } }";

async fn create(app: &TestApp, input: Value) -> String {
    let data = app
        .gql_ok(&app.key, CREATE, json!({ "input": input }))
        .await;
    data["createAssistant"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_update_writes_a_new_live_version_and_never_changes_the_old_one() {
    let app = TestApp::spawn().await;
    let id = create(
        &app,
        json!({ "name": "Ada", "instructions": "Be brief.", "tone": "formal" }),
    )
    .await;
    let data = app
        .gql_ok(
            &app.key,
            UPDATE,
            json!({ "id": id, "input": { "instructions": "Be thorough." } }),
        )
        .await;
    assert_eq!(data["updateAssistant"]["version"], 2);
    assert_eq!(data["updateAssistant"]["isLive"], true);

    let data = app.gql_ok(&app.key, VERSIONS, json!({ "id": id })).await;
    let assistant = &data["assistant"];
    assert_eq!(assistant["instructions"], "Be thorough.");
    assert_eq!(
        assistant["versions"]["nodes"],
        json!([
            { "version": 1, "isLive": false, "instructions": "Be brief.", "tone": "formal" },
            { "version": 2, "isLive": true, "instructions": "Be thorough.", "tone": "formal" },
        ]),
        "v1 is untouched and v2 inherits what it did not change"
    );
}

#[tokio::test]
async fn a_draft_is_not_live_until_promoted_and_promoting_back_rolls_back() {
    let app = TestApp::spawn().await;
    let (status, created) = TestApp::send(
        app.rest(Method::POST, "/api/v1/assistants/", &app.key)
            .json(&json!({ "name": "Ada", "temperature": 0.2 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/api/v1/assistants/{id}");

    let (status, draft) = TestApp::send(
        app.rest(Method::PATCH, &path, &app.key)
            .json(&json!({ "temperature": 1.1, "promote": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{draft}");
    assert_eq!(
        (draft["version"].as_i64(), draft["is_live"].as_bool()),
        (Some(2), Some(false))
    );
    let (_, live) = TestApp::send(app.rest(Method::GET, &path, &app.key)).await;
    assert_eq!(
        (
            live["temperature"].as_f64(),
            live["version"].as_i64(),
            live["latest_version"].as_i64()
        ),
        (Some(0.2), Some(1), Some(2))
    );

    let (status, promoted) = TestApp::send(app.rest(
        Method::POST,
        &format!("{path}/versions/2/promote"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(
        (
            promoted["temperature"].as_f64(),
            promoted["version"].as_i64()
        ),
        (Some(1.1), Some(2))
    );

    let (_, rolled_back) = TestApp::send(app.rest(
        Method::POST,
        &format!("{path}/versions/1/promote"),
        &app.key,
    ))
    .await;
    assert_eq!(
        (
            rolled_back["temperature"].as_f64(),
            rolled_back["version"].as_i64()
        ),
        (Some(0.2), Some(1))
    );
    let (_, versions) =
        TestApp::send(app.rest(Method::GET, &format!("{path}/versions"), &app.key)).await;
    let live: Vec<_> = versions["data"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|x| (x["version"].as_i64(), x["is_live"].as_bool()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(live, vec![(Some(1), Some(true)), (Some(2), Some(false))]);

    let (status, body) = TestApp::send(app.rest(
        Method::POST,
        &format!("{path}/versions/9/promote"),
        &app.key,
    ))
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));

    let (_, branched) = TestApp::send(
        app.rest(Method::PATCH, &path, &app.key)
            .json(&json!({ "name": "Ada v3", "base_version": 1 })),
    )
    .await;
    assert_eq!(
        (
            branched["version"].as_i64(),
            branched["temperature"].as_f64()
        ),
        (Some(3), Some(0.2)),
        "built on v1, not the v2 draft"
    );
}

#[tokio::test]
async fn pausing_an_assistant_keeps_its_versions_and_can_be_undone() {
    let app = TestApp::spawn().await;
    let id = create(&app, json!({ "name": "Ada", "active": false })).await;
    let set = "mutation($id: ID!, $active: Boolean!) { setAssistantActive(id: $id, active: $active) { active version } }";
    let (_, body) =
        TestApp::send(app.rest(Method::GET, &format!("/api/v1/assistants/{id}"), &app.key)).await;
    assert_eq!(body["active"], false, "created paused");
    let data = app
        .gql_ok(&app.key, set, json!({ "id": id, "active": true }))
        .await;
    assert_eq!(
        data["setAssistantActive"],
        json!({ "active": true, "version": 1 })
    );
    let (status, body) = TestApp::send(
        app.rest(
            Method::PUT,
            &format!("/api/v1/assistants/{id}/active"),
            &app.key,
        )
        .json(&json!({ "active": false })),
    )
    .await;
    assert_eq!(
        (
            status,
            body["active"].as_bool(),
            body["latest_version"].as_i64()
        ),
        (StatusCode::OK, Some(false), Some(1)),
        "no version written"
    );
}

#[tokio::test]
async fn invalid_settings_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "name": "" }), "name"),
        (json!({ "name": "Ada", "temperature": 3.0 }), "temperature"),
        (
            json!({ "name": "Ada", "language": "not a tag" }),
            "language",
        ),
        (json!({ "name": "Ada", "topK": 0 }), "topK"),
        (
            json!({ "name": "Ada", "taskTemplates": [{ "name": "greet", "template": "Hi {{name" }] }),
            "taskTemplates[0].template",
        ),
    ];
    for (input, field) in cases {
        let (code_, error) = app
            .gql_err(&app.key, CREATE, json!({ "input": input }))
            .await;
        assert_eq!(code_, "BAD_USER_INPUT", "{error}");
        assert_eq!(error["extensions"]["field"], field, "{error}");
    }

    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/assistants/", &app.key)
            .json(&json!({ "name": "Ada", "max_tokens": 0 })),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT")
    );
    assert_eq!(body["error"]["details"]["field"], "max_tokens");
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/assistants/", &app.key)
            .json(&json!({ "name": "Ada", "temprature": 0.5 })),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT"),
        "unknown fields are refused: {body}"
    );
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/assistants/", &app.key)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_USER_INPUT"),
        "malformed JSON"
    );

    let data = app
        .gql_ok(&app.key, "{ assistants { nodes { id } } }", json!({}))
        .await;
    assert_eq!(
        data["assistants"]["nodes"],
        json!([]),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_deleted_assistant_disappears_but_a_second_delete_is_not_found() {
    let app = TestApp::spawn().await;
    let id = create(&app, json!({ "name": "Ada" })).await;
    let path = format!("/api/v1/assistants/{id}");
    let (status, body) = TestApp::send(app.rest(Method::DELETE, &path, &app.key)).await;
    assert_eq!(
        (status, body["deleted"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _) = TestApp::send(app.rest(Method::GET, &path, &app.key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = TestApp::send(app.rest(Method::DELETE, &path, &app.key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let data = app
        .gql_ok(&app.key, "{ assistants { nodes { id } } }", json!({}))
        .await;
    assert_eq!(data["assistants"]["nodes"], json!([]));
}

#[tokio::test]
async fn lists_page_through_every_assistant_exactly_once_in_both_directions() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&app, json!({ "name": format!("A{i}") })).await);
    }
    let page = "query($after: String) { assistants(first: 2, after: $after) { nodes { id } pageInfo { hasNextPage endCursor } } }";
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    loop {
        let data = app.gql_ok(&app.key, page, json!({ "after": after })).await;
        let conn = &data["assistants"];
        seen.extend(
            conn["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n["id"].as_str().unwrap_or_default().to_owned()),
        );
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ids, "GraphQL forward pages");

    let data = app
        .gql_ok(&app.key, "query($before: String) { assistants(last: 2, before: $before) { edges { cursor node { id } } pageInfo { hasPreviousPage } } }", json!({ "before": ids[4] }))
        .await;
    let back: Vec<_> = data["assistants"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(back, ids[2..4].to_vec());
    assert_eq!(data["assistants"]["pageInfo"]["hasPreviousPage"], true);

    let (mut rest_seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/assistants/?limit=2&cursor={c}"),
            None => "/api/v1/assistants/?limit=2".to_owned(),
        };
        let (status, body) = TestApp::send(app.rest(Method::GET, &path, &app.key)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rest_seen.extend(
            body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["id"].as_str().unwrap_or_default().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(rest_seen, ids, "REST pages");
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants?limit=1000", &app.key)).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
}

#[tokio::test]
async fn concurrent_updates_each_get_their_own_version_number() {
    let app = TestApp::spawn().await;
    let id = create(&app, json!({ "name": "Ada" })).await;
    let path = format!("/api/v1/assistants/{id}");
    let updates = (0..8).map(|i| {
        TestApp::send(
            app.rest(Method::PATCH, &path, &app.key)
                .json(&json!({ "instructions": format!("variant {i}") })),
        )
    });
    let results = futures::future::join_all(updates).await;
    let mut numbers: Vec<i64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["version"].as_i64().unwrap_or_default()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (2..=9).collect::<Vec<_>>());
    let (_, versions) =
        TestApp::send(app.rest(Method::GET, &format!("{path}/versions?limit=100"), &app.key)).await;
    assert_eq!(versions["data"].as_array().map(Vec::len), Some(9));
}
