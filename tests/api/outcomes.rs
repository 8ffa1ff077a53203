//! Outcome analytics through the running server: containment, handoffs by trigger,
//! unanswered and cited replies, CSAT and first-token latency, per day and per assistant
//! version, over GraphQL and as a CSV export.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, code};

const ROW: &str = "key conversations contained containmentRate handoffs handoffRate
    handoffsByTrigger { trigger count } answers unanswered unansweredRate citationRate
    ratings csat averageRating firstTokenP50Ms firstTokenP95Ms";

/// The outcome report with GraphQL arguments `args` (none when empty).
async fn outcomes(app: &TestApp, key: &str, args: &str) -> Value {
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({args})")
    };
    app.gql_ok(
        key,
        &format!(
            "{{ analytics {{ outcomes{args} {{ groupBy rows {{ {ROW} }} total {{ {ROW} }} }} }} }}"
        ),
        json!({}),
    )
    .await["analytics"]["outcomes"]
        .clone()
}

/// A new conversation of `assistant` opened by `message`; the send's payload.
async fn conversation_with(app: &TestApp, assistant: &str, message: &str) -> Value {
    let session = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    app.say(
        &app.key,
        json!({ "sessionId": session["id"], "message": message }),
    )
    .await
}

#[tokio::test]
async fn outcomes_show_containment_handoffs_by_trigger_csat_and_latency_per_day_and_version() {
    let app = TestApp::spawn().await;
    let assistant = app
        .assistant(&app.key, json!({ "handoff": { "keywords": ["human"] } }))
        .await;
    app.uploaded(
        &app.key,
        "returns.txt",
        "Returns are accepted within 30 days of delivery.",
    )
    .await;
    // Answered and rated 5: contained.
    let happy = conversation_with(&app, &assistant, "How long do I have to return things?").await;
    app.rate(&app.key, &happy, 5).await;
    // A keyword hands it off before any reply.
    let keyword = conversation_with(&app, &assistant, "I want a human please").await;
    assert_eq!(keyword["reply"], Value::Null, "{keyword}");
    // Answered, rated 1: not contained.
    let unhappy = conversation_with(&app, &assistant, "Can I return a used kettle?").await;
    app.rate(&app.key, &unhappy, 1).await;
    // The organization hands it to a person after an answer.
    let asked = conversation_with(&app, &assistant, "Where do I send my return?").await;
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { requestHandoff(conversationId: $id) { id } }",
        json!({ "id": asked["userMessage"]["conversationId"] }),
    )
    .await;

    let by_day = outcomes(&app, &app.key, &format!("assistantId: \"{assistant}\"")).await;
    assert_eq!(by_day["groupBy"], "DAY");
    let days = by_day["rows"].as_array().cloned().unwrap_or_default();
    assert!(
        days.len() >= 30,
        "every day of the default range: {}",
        days.len()
    );
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let last = days.last().cloned().unwrap_or_default();
    assert_eq!(last["key"], today.as_str());
    let total = &by_day["total"];
    assert_eq!(
        (
            total["conversations"].as_i64(),
            total["contained"].as_i64(),
            total["handoffs"].as_i64(),
            total["answers"].as_i64(),
            total["unanswered"].as_i64(),
            total["ratings"].as_i64(),
        ),
        (Some(4), Some(1), Some(2), Some(3), Some(0), Some(2)),
        "{total}"
    );
    assert_eq!(last["conversations"], total["conversations"]);
    assert_eq!(total["containmentRate"], 0.25);
    assert_eq!(total["handoffRate"], 0.5);
    assert_eq!(total["citationRate"], 1.0);
    assert_eq!(
        (total["csat"].as_f64(), total["averageRating"].as_f64()),
        (Some(0.5), Some(3.0))
    );
    assert_eq!(
        total["handoffsByTrigger"],
        json!([{ "trigger": "OPERATOR", "count": 1 }, { "trigger": "KEYWORD", "count": 1 }])
    );
    assert!(
        total["firstTokenP50Ms"].as_f64().is_some()
            && total["firstTokenP95Ms"].as_f64() >= total["firstTokenP50Ms"].as_f64(),
        "{total}"
    );

    // A new version answers the next conversation: each version has its row.
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { updateAssistant(id: $id, input: { instructions: \"Be brief.\" }) { version } }",
        json!({ "id": assistant }),
    )
    .await;
    let later = conversation_with(&app, &assistant, "Do you refund shipping costs?").await;
    assert_eq!(later["reply"]["assistantVersion"], 2, "{later}");
    let by_version = outcomes(&app, &app.key, "groupBy: VERSION").await;
    let keys: Vec<(String, i64)> = by_version["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["key"].as_str().unwrap_or_default().to_owned(),
                        r["conversations"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            ("1".to_owned(), 3),
            ("2".to_owned(), 1),
            ("none".to_owned(), 1)
        ],
        "the keyword conversation has no reply"
    );

    // CSV, with the total last; bad ranges are refused; another organization sees nothing.
    let response = app
        .rest(
            Method::GET,
            "/analytics/outcomes?group_by=version&format=csv",
            &app.key,
        )
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("key,conversations,contained,containment_rate,handoffs"),
        "{csv}"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("total,5,2,")),
        "{csv}"
    );
    for backwards_or_too_long in [
        "/api/v1/analytics/outcomes?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/analytics/outcomes?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
    ] {
        let (status, body) =
            TestApp::send(app.rest(Method::GET, backwards_or_too_long, &app.key)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT"),
            "{body}"
        );
    }
    let (_, other) = app.create_org("Other").await;
    let theirs = outcomes(&app, &other, "").await;
    assert_eq!(theirs["total"]["conversations"], 0, "{theirs}");
}
