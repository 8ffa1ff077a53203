//! Analytics checked against known traffic: endpoint mix, usage, logs and their exports,
//! rate-limit refusals, conversation figures, and the Prometheus metrics.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

const ENDPOINTS: &str = "query Report { analytics {
    endpoints { transport endpoint operationType requests errors errorRate p50Ms p95Ms p99Ms }
    usage(granularity: DAY) { start requests errors rateLimited }
    logs(last: 100) { edges { node { transport method endpoint operationType status latencyMs keyId rateLimited } } }
} }";

fn find<'a>(rows: &'a Value, endpoint: &str) -> &'a Value {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["endpoint"] == endpoint))
        .unwrap_or_else(|| panic!("no {endpoint} in {rows}"))
}

#[tokio::test]
async fn analytics_report_known_traffic_by_endpoint_and_day_and_export_every_entry() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        let (status, _) =
            TestApp::send(app.rest(Method::GET, "/api/v1/assistants/", &app.key)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = TestApp::send(app.rest(
        Method::GET,
        "/api/v1/assistants/asst_0192f0c0e1d27a3b8c4d5e6f7a8b9c0d",
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for _ in 0..2 {
        app.gql_ok(&app.key, "query Probe { viewer { scopes } }", json!({}))
            .await;
    }

    let report = app.gql_ok(&app.key, ENDPOINTS, json!({})).await["analytics"].clone();
    let endpoints = &report["endpoints"];
    let list = find(endpoints, "/api/v1/assistants");
    assert_eq!(
        (
            list["transport"].as_str(),
            list["requests"].as_i64(),
            list["errors"].as_i64()
        ),
        (Some("rest"), Some(3), Some(0))
    );
    assert!(list["p50Ms"].as_f64().expect("p50") > 0.0);
    assert!(list["p50Ms"].as_f64() <= list["p99Ms"].as_f64());
    let one = find(endpoints, "/api/v1/assistants/{assistant_id}");
    assert_eq!(
        (
            one["requests"].as_i64(),
            one["errors"].as_i64(),
            one["errorRate"].as_f64()
        ),
        (Some(1), Some(1), Some(1.0))
    );
    let probe = find(endpoints, "Probe");
    assert_eq!(
        (
            probe["transport"].as_str(),
            probe["operationType"].as_str(),
            probe["requests"].as_i64()
        ),
        (Some("graphql"), Some("query"), Some(2))
    );
    assert_eq!(endpoints.as_array().map(Vec::len), Some(3), "{endpoints}");

    let days = report["usage"].as_array().expect("usage");
    assert_eq!(
        days.len(),
        8,
        "the last 7 days, both ends included: {days:?}"
    );
    let total: i64 = days.iter().filter_map(|d| d["requests"].as_i64()).sum();
    let errors: i64 = days.iter().filter_map(|d| d["errors"].as_i64()).sum();
    assert_eq!((total, errors), (6, 1));
    let logs = report["logs"]["edges"].as_array().expect("logs");
    assert_eq!(logs.len(), 6);
    assert_eq!(logs[3]["node"]["status"], 404);
    assert_eq!(logs[0]["node"]["method"], "GET");

    // Every entry as CSV (the report request above is the 7th).
    let csv = app
        .rest(Method::GET, "/analytics/logs?format=csv", &app.key)
        .send()
        .await
        .expect("sent");
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 8, "{csv}");
    assert!(
        lines[0].starts_with("id,created_at,key_id,app_id,transport,method,endpoint"),
        "{}",
        lines[0]
    );
    assert!(lines[7].contains("Report"), "{}", lines[7]);

    // JSON lines under /api/v1, filtered to REST: the 4 calls and the CSV export.
    let jsonl = app
        .rest(
            Method::GET,
            "/api/v1/analytics/logs?format=jsonl&transport=rest",
            &app.key,
        )
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let entries: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(entries.len(), 5, "{jsonl}");
    assert_eq!(entries[4]["endpoint"], "/analytics/logs");

    // Paginated JSON, filtered by status.
    let (status, page) =
        TestApp::send(app.rest(Method::GET, "/analytics/logs?status=200&limit=2", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let (_, next) = TestApp::send(app.rest(
        Method::GET,
        &format!("/analytics/logs?status=200&limit=100&cursor={cursor}"),
        &app.key,
    ))
    .await;
    assert!(
        next["data"]
            .as_array()
            .is_some_and(|rows| rows.iter().all(|r| r["status"] == 200))
    );

    // Usage and endpoints export as CSV too; a bad filter is a clear error.
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/analytics/usage?transport=smtp", &app.key)).await;
    assert_eq!(
        (status, body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("transport"))
    );
    let endpoints_csv = app
        .rest(Method::GET, "/analytics/endpoints?format=csv", &app.key)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(endpoints_csv.starts_with(
        "transport,endpoint,operation_type,requests,errors,error_rate,p50_ms,p95_ms,p99_ms"
    ));

    // Another organization sees none of it.
    let (_, other) = app.create_org("Other").await;
    let (_, theirs) = TestApp::send(app.rest(Method::GET, "/analytics/logs", &other)).await;
    assert_eq!(theirs["data"], json!([]));

    // Prometheus counts by route template and operation type.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"companin_requests_total{transport="rest",endpoint="/api/v1/assistants",status="200"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"companin_requests_total{transport="graphql",endpoint="query",status="200"}"#
        )
    );
}

#[tokio::test]
async fn refused_requests_are_recorded_with_their_key_and_endpoint_and_reported_over_time() {
    let app = TestApp::spawn().await;
    let viewer = app
        .gql_ok(&app.key, "{ viewer { apiKey { id } } }", json!({}))
        .await;
    let key_id = viewer["viewer"]["apiKey"]["id"]
        .as_str()
        .expect("key id")
        .to_owned();
    app.gql_ok(
        &app.key,
        "mutation { setRateLimit(input: { limit: 3, windowSeconds: 1 }) { limit } }",
        json!({}),
    )
    .await;
    let mut refused = 0;
    for _ in 0..12 {
        let (status, _) = TestApp::send(app.rest(Method::GET, "/api/v1/viewer", &app.key)).await;
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(
        refused >= 3,
        "12 quick requests against 3 a second: {refused} refused"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let (status, report) = TestApp::send(app.rest(
        Method::GET,
        "/analytics/rate-limits?granularity=hour",
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["total"], refused);
    assert_eq!(
        report["by_key"],
        json!([{ "key_id": key_id, "count": refused }])
    );
    let series: i64 = report["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(|b| b["count"].as_i64())
        .sum();
    assert_eq!(series as usize, refused);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, events) = TestApp::send(app.rest(
        Method::GET,
        "/analytics/logs?rate_limited=true&limit=100",
        &app.key,
    ))
    .await;
    let events = events["data"].as_array().expect("events").clone();
    assert_eq!(events.len(), refused);
    assert!(events.iter().all(|e| e["endpoint"] == "/api/v1/viewer"
        && e["status"] == 429
        && e["key_id"] == key_id.as_str()));
}

#[tokio::test]
async fn conversation_analytics_count_messages_ratings_and_cited_answers_per_assistant() {
    let app = TestApp::spawn().await;
    let plain = app.assistant(&app.key, json!({ "name": "Plain" })).await;
    let session = app.session(&app.key, json!({})).await;
    let session_id = session["id"].as_str().expect("session id");
    let first = app
        .say(
            &app.key,
            json!({ "sessionId": session_id, "assistantId": plain, "message": "Hello there" }),
        )
        .await;
    assert!(
        first["reply"]["citations"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{first}"
    );

    let qa = app
        .create_qa(&app.key, "When are you open?", "From 9 to 5 on weekdays.")
        .await;
    app.settled(&app.key, &qa).await;
    let helpful = app.assistant(&app.key, json!({ "name": "Helpful" })).await;
    let asked = app
        .say(&app.key, json!({ "sessionId": session_id, "assistantId": helpful, "message": "When are you open?" }))
        .await;
    assert!(
        asked["reply"]["citations"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{asked}"
    );
    let conversation = asked["reply"]["conversationId"]
        .as_str()
        .expect("conversation")
        .to_owned();
    app.say(
        &app.key,
        json!({ "conversationId": conversation, "message": "Thanks!" }),
    )
    .await;

    for (rating, message) in [(5, asked["reply"]["id"].clone()), (2, Value::Null)] {
        app.gql_ok(
            &app.key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({ "input": { "conversationId": conversation, "messageId": message, "rating": rating } }),
        )
        .await;
    }

    const REPORT: &str =
        "query($filter: AnalyticsFilter) { analytics { conversations(filter: $filter) {
        conversations messages messagesPerConversation averageDurationSeconds averageRating
        ratings { rating count } answers citedAnswers citedShare } } }";
    let all = app.gql_ok(&app.key, REPORT, json!({})).await["analytics"]["conversations"].clone();
    assert_eq!(all["conversations"], 2);
    assert_eq!(all["messages"], 6);
    assert_eq!(all["messagesPerConversation"], 3.0);
    assert_eq!(all["averageRating"], 3.5);
    assert_eq!(
        all["ratings"],
        json!([{"rating":1,"count":0},{"rating":2,"count":1},{"rating":3,"count":0},{"rating":4,"count":0},{"rating":5,"count":1}])
    );
    // "Thanks!" finds nothing to quote: that reply says so and cites nothing.
    assert_eq!(
        (all["answers"].as_i64(), all["citedAnswers"].as_i64()),
        (Some(3), Some(1))
    );
    assert!(
        all["averageDurationSeconds"]
            .as_f64()
            .is_some_and(|d| d >= 0.0)
    );

    let only_plain = app
        .gql_ok(
            &app.key,
            REPORT,
            json!({ "filter": { "assistantId": plain } }),
        )
        .await["analytics"]["conversations"]
        .clone();
    assert_eq!(
        (
            only_plain["conversations"].as_i64(),
            only_plain["citedShare"].as_f64(),
            only_plain["averageRating"].clone()
        ),
        (Some(1), Some(0.0), Value::Null)
    );

    let (status, future) = TestApp::send(app.rest(
        Method::GET,
        "/api/v1/analytics/conversations?since=2100-01-01T00:00:00Z",
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(future["conversations"], 0);
    let csv = app
        .rest(Method::GET, "/analytics/conversations?format=csv", &app.key)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        csv.starts_with("conversations,messages,messages_per_conversation"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("2,6,3")),
        "{csv}"
    );
}

#[tokio::test]
async fn what_callers_name_is_recorded_only_when_bounded_and_exports_open_as_text() {
    let app = TestApp::spawn().await;
    let graphql = |body: Value| {
        app.client
            .post(format!("{}/graphql", app.address))
            .header("X-API-Key", &app.key)
            .json(&body)
            .send()
    };
    // A formula for an operation name, and a name far too long to record.
    graphql(json!({ "query": "query { viewer { scopes } }", "operationName": "=HYPERLINK(\"http://evil\")" }))
        .await
        .expect("sent");
    let long = format!("Q{}", "a".repeat(150));
    graphql(json!({ "query": format!("query {long} {{ viewer {{ scopes }} }}") }))
        .await
        .expect("sent");
    let with_id = |id: &str| {
        app.rest(Method::GET, "/api/v1/viewer", &app.key)
            .header("X-Request-Id", id)
            .send()
    };
    let kept = with_id("trace-42").await.expect("sent");
    assert_eq!(kept.headers()["x-request-id"], "trace-42");
    for unsafe_id in ["=1+2*cmd", &"x".repeat(65)] {
        let replaced = with_id(unsafe_id).await.expect("sent");
        let id = replaced.headers()["x-request-id"].to_str().expect("ascii");
        assert!(
            id != unsafe_id && id.len() == 36,
            "a new id replaces {unsafe_id}: {id}"
        );
    }

    let csv = app
        .rest(Method::GET, "/analytics/logs?format=csv", &app.key)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let headers = reader.headers().expect("header").clone();
    let column = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (endpoint, request_id) = (column("endpoint"), column("request_id"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let endpoints: Vec<&str> = rows.iter().filter_map(|r| r.get(endpoint)).collect();
    assert_eq!(
        endpoints.iter().filter(|e| **e == "invalid").count(),
        2,
        "{endpoints:?}"
    );
    let ids: Vec<&str> = rows.iter().filter_map(|r| r.get(request_id)).collect();
    assert!(ids.contains(&"trace-42"), "{ids:?}");
    assert!(
        !csv.contains("=1+2") && !csv.contains("HYPERLINK") && !csv.contains(&long),
        "{csv}"
    );
}
