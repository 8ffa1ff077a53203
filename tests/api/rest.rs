//! The REST layer's envelope, docs, probes and playground.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, code};

#[tokio::test]
async fn the_openapi_document_describes_the_rest_layer_and_the_docs_page_loads() {
    let app = TestApp::spawn().await;
    let (status, doc) = TestApp::send(
        app.client
            .get(format!("{}/api/v1/openapi.json", app.address)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/assistants",
        "/api/v1/assistants/{assistant_id}",
        "/api/v1/assistants/{assistant_id}/versions",
        "/api/v1/assistants/{assistant_id}/versions/{version}/promote",
        "/api/v1/api-keys",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-API-Key"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["api_secret"]["name"],
        "X-API-Secret"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // The committed openapi.json is what the server serves.
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
            .expect("openapi.json exists"),
    )
    .expect("openapi.json is JSON");
    assert!(
        committed == doc,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json`"
    );
    // Every reference resolves, and every operation declares the failures any request may
    // meet (clients and schemathesis check answers against the document).
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} is not in the document"
        );
    }
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            let operation = &item[method];
            if operation.is_null() {
                continue;
            }
            for status in ["400", "401", "403", "422", "429"] {
                assert!(
                    operation["responses"][status]["content"]["application/json"].is_object(),
                    "{method} {path} declares {status}"
                );
            }
            if path.contains('{') || !operation["requestBody"].is_null() {
                assert!(
                    operation["responses"]["404"].is_object(),
                    "{method} {path} 404"
                );
            }
        }
    }
    let page = app
        .client
        .get(format!("{}/api/v1/docs/", app.address))
        .send()
        .await
        .expect("docs");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap_or_default().contains("swagger"));
}

/// Every `$ref` in `value`.
fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn unknown_routes_and_bad_query_strings_answer_in_the_error_envelope() {
    let app = TestApp::spawn().await;
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/nothing-here", &app.key)).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants?limit=many", &app.key)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_USER_INPUT")
    );
    assert!(body["error"]["message"].is_string() && body["error"]["details"].is_object());
    let (status, body) = TestApp::send(app.rest(
        Method::GET,
        "/api/v1/assistants?cursor=%27%20or%201%3D1",
        &app.key,
    ))
    .await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
}

#[tokio::test]
async fn probes_answer_without_credentials_and_the_playground_needs_no_network() {
    let app = TestApp::spawn().await;
    let (status, body) = TestApp::send(app.client.get(format!("{}/healthz", app.address))).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = TestApp::send(app.client.get(format!("{}/readyz", app.address))).await;
    assert_eq!((status, &body["database"]), (StatusCode::OK, &json!("ok")));

    let page = app
        .client
        .get(format!("{}/playground", app.address))
        .send()
        .await
        .expect("playground");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap_or_default();
    assert!(html.contains("/graphql"), "wired to the GraphQL endpoint");
    assert!(html.contains("X-API-Key"), "API key header pre-wired");
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "no external asset: {line}"
        );
        if let Some(src) = line
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            let asset = app
                .client
                .get(format!("{}{src}", app.address))
                .send()
                .await
                .expect("asset");
            assert_eq!(asset.status(), StatusCode::OK, "{src} is served");
        }
    }
}
