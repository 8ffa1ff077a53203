//! Nested GraphQL fields are read in batches: a page of conversations with their messages
//! and feedback costs a few statements, not a few per conversation — and each batch answers
//! what one read per parent would.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Statements the server has run so far (`/metrics`).
async fn statements(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("companin_db_statements_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the statement counter is exported")
}

/// Runs `query` and returns its data with the statements it took.
async fn counted(app: &TestApp, query: &str) -> (Value, u64) {
    let before = statements(app).await;
    let data = app.gql_ok(&app.key, query, json!({})).await;
    (data, statements(app).await - before)
}

/// A page of conversations with their messages and feedback.
const NESTED: &str = "{ conversations(first: 20) { nodes { id
    messages(first: 20) { nodes { id } } feedback { nodes { rating } } } } }";
/// One level deeper: each message's feedback.
const DEEPER: &str = "{ conversations(first: 20) { nodes { id
    messages(first: 2) { nodes { id role feedback(first: 5) { nodes { rating } } } } } } }";

#[tokio::test]
async fn a_page_of_conversations_with_messages_and_feedback_takes_a_constant_number_of_statements()
{
    // No background work: every statement counted is the request's own.
    let app = TestApp::spawn_with(|s| {
        s.ingestion.ingest_workers = 0;
        s.webhooks.webhook_workers = 0;
        s.rate_limits.request_log_enabled = false;
        s.ingestion.scheduler_interval_seconds = 3600;
    })
    .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let mut replies = Vec::new();
    for n in 0..20 {
        let session = app
            .session(&app.key, json!({ "assistant_id": assistant }))
            .await;
        let sent = app
            .say(
                &app.key,
                json!({ "sessionId": session["id"], "message": format!("Question {n}") }),
            )
            .await;
        replies.push(sent["reply"].clone());
    }
    for (n, reply) in replies.iter().enumerate().take(3) {
        app.gql_ok(
            &app.key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({ "input": { "conversationId": reply["conversationId"],
                "messageId": reply["id"], "rating": n + 1 } }),
        )
        .await;
    }

    let (flat, flat_statements) =
        counted(&app, "{ conversations(first: 20) { nodes { id } } }").await;
    let (nested, nested_statements) = counted(&app, NESTED).await;
    let (deeper, deeper_statements) = counted(&app, DEEPER).await;
    eprintln!(
        "statements: flat list {flat_statements}, with messages and feedback \
         {nested_statements}, with messages' feedback {deeper_statements}"
    );
    // The list, then one batch per relation: messages and the conversations' feedback; or
    // messages and their feedback.
    for (what, statements) in [("nested", nested_statements), ("deeper", deeper_statements)] {
        assert!(
            statements <= flat_statements + 2,
            "{what} reads took {statements} statements, the list alone {flat_statements}"
        );
    }

    // The batches answer what per-conversation reads do.
    let nodes = nested["conversations"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 20);
    assert_eq!(
        flat["conversations"]["nodes"].as_array().map(Vec::len),
        Some(20)
    );
    let deeper = deeper["conversations"]["nodes"].as_array().expect("nodes");
    for ((conversation, deeper), reply) in nodes.iter().zip(deeper).zip(&replies) {
        assert_eq!(conversation["id"], reply["conversationId"]);
        let messages = conversation["messages"]["nodes"]
            .as_array()
            .expect("messages");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1]["id"], reply["id"]);
        let messages = deeper["messages"]["nodes"].as_array().expect("messages");
        assert_eq!(
            messages
                .iter()
                .map(|m| m["role"].clone())
                .collect::<Vec<_>>(),
            [json!("USER"), json!("ASSISTANT")]
        );
        // The feedback is on the reply, so the reply's and the conversation's agree.
        assert_eq!(
            messages[1]["feedback"]["nodes"],
            conversation["feedback"]["nodes"]
        );
        assert_eq!(messages[0]["feedback"]["nodes"], json!([]));
    }
    let ratings: Vec<Value> = nodes
        .iter()
        .map(|c| c["feedback"]["nodes"].clone())
        .collect();
    assert_eq!(
        &ratings[..4],
        [
            json!([{ "rating": 1 }]),
            json!([{ "rating": 2 }]),
            json!([{ "rating": 3 }]),
            json!([])
        ]
    );
    // A connection costs its items' complexity times the page size asked for: three nested
    // pages of 20 (8,000 feedback rows at most) are refused before anything is read.
    let (code, _) = app
        .gql_err(
            &app.key,
            "{ conversations(first: 20) { nodes { messages(first: 20) { nodes {
                feedback(first: 20) { nodes { rating } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED");

    let one = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { conversation(id: $id) { messages(last: 1) { nodes { id }
                pageInfo { hasPreviousPage hasNextPage } } } }",
            json!({ "id": replies[0]["conversationId"] }),
        )
        .await;
    assert_eq!(
        one["conversation"]["messages"],
        json!({ "nodes": [{ "id": replies[0]["id"] }],
            "pageInfo": { "hasPreviousPage": true, "hasNextPage": false } })
    );
}
