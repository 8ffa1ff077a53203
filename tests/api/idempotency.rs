//! `Idempotency-Key`: a client that retries a write it never got an answer to gets the first
//! answer again, and the work is done once — on REST (JSON, streamed and multipart), GraphQL
//! and the OpenAI-compatible API.

use std::{sync::Arc, time::Duration};

use companin::models::Models;
use reqwest::{Method, StatusCode, multipart};
use serde_json::{Value, json};

use crate::{helpers::TestApp, scripted_chat::ScriptedChat};

async fn with_key(request: reqwest::RequestBuilder, key: &str) -> (StatusCode, bool, String) {
    let response = request
        .header("Idempotency-Key", key)
        .send()
        .await
        .expect("sent");
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (
        response.status(),
        replayed,
        response.text().await.expect("body"),
    )
}

async fn count(app: &TestApp, path: &str) -> usize {
    let (status, page) = TestApp::send(app.rest(Method::GET, path, &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().expect("items").len()
}

#[tokio::test]
async fn a_retried_write_with_the_same_key_is_done_once_and_answered_again() {
    let slow = Models {
        chat: Arc::new(ScriptedChat::numbered(20, Duration::from_millis(40))),
        ..Models::local_defaults()
    };
    let app = TestApp::spawn_with_models(|_| {}, slow).await;

    // A create, retried: one assistant, the same answer, marked as a replay.
    let create = || {
        app.rest(Method::POST, "/api/v1/assistants", &app.key)
            .json(&json!({ "name": "Ada" }))
    };
    let (status, replayed, first) = with_key(create(), "create-ada").await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, replayed, again) = with_key(create(), "create-ada").await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{again}");
    assert_eq!(again, first);
    assert_eq!(count(&app, "/api/v1/assistants").await, 1);
    let assistant: Value = serde_json::from_str(&first).expect("json");
    let assistant = assistant["id"].as_str().expect("id").to_owned();

    // The same key for another request is refused; another organization's keys are its own.
    let (status, _, body) = with_key(
        app.rest(Method::POST, "/api/v1/assistants", &app.key)
            .json(&json!({ "name": "Bob" })),
        "create-ada",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("BAD_USER_INPUT") && body.contains("idempotency_key"),
        "{body}"
    );
    let (_, other_key) = app.create_org("Other").await;
    let (status, replayed, _) = with_key(
        app.rest(Method::POST, "/api/v1/assistants", &other_key)
            .json(&json!({ "name": "Ada" })),
        "create-ada",
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));

    // A message sent twice: one exchange stored; a retry while the first runs waits its turn.
    let session = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    let send = || {
        app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
            .json(&json!({ "session_id": session["id"], "message": "Count for me" }))
    };
    let (first, early) = tokio::join!(with_key(send(), "send-1"), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        with_key(send(), "send-1").await
    });
    assert_eq!(first.0, StatusCode::OK, "{}", first.2);
    assert_eq!(early.0, StatusCode::CONFLICT, "{}", early.2);
    let (status, replayed, again) = with_key(send(), "send-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again, first.2);
    let sent: Value = serde_json::from_str(&first.2).expect("json");
    let conversation = sent["user_message"]["conversation_id"]
        .as_str()
        .expect("conversation");
    assert_eq!(
        count(
            &app,
            &format!("/api/v1/conversations/{conversation}/messages")
        )
        .await,
        2,
        "one message and one reply"
    );

    // Streamed: the retry replays the stream as it went out.
    let stream = || {
        app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
            .json(&json!({ "session_id": session["id"], "message": "Again", "stream": true }))
    };
    let (status, _, streamed) = with_key(stream(), "send-2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(streamed.contains("event: reply_completed"), "{streamed}");
    // A stream is kept once it has gone out whole: a retry right after may find it running.
    let mut retry = with_key(stream(), "send-2").await;
    for _ in 0..50 {
        if retry.0 != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        retry = with_key(stream(), "send-2").await;
    }
    let (_, replayed, again) = retry;
    assert!(replayed);
    assert_eq!(again, streamed);
    assert_eq!(
        count(
            &app,
            &format!("/api/v1/conversations/{conversation}/messages")
        )
        .await,
        4
    );

    // A multipart upload retried with a new boundary is the same request.
    let upload = || {
        let form = multipart::Form::new().part(
            "file",
            multipart::Part::bytes(b"Opening hours: 9 to 5.".to_vec()).file_name("hours.txt"),
        );
        app.rest(Method::POST, "/api/v1/knowledge/files/", &app.key)
            .multipart(form)
    };
    let (status, _, uploaded) = with_key(upload(), "upload-hours").await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (status, replayed, again) = with_key(upload(), "upload-hours").await;
    assert_eq!(
        (status, replayed, &again),
        (StatusCode::CREATED, true, &uploaded)
    );
    assert_eq!(count(&app, "/api/v1/knowledge/files").await, 1);

    // GraphQL and the OpenAI-compatible API keep their answers the same way.
    let mutation = || {
        app.rest(Method::POST, "/graphql", &app.key).json(&json!({
            "query": "mutation { createAssistant(input: { name: \"Cy\" }) { id } }"
        }))
    };
    let (_, _, created) = with_key(mutation(), "gql-cy").await;
    let (_, replayed, again) = with_key(mutation(), "gql-cy").await;
    assert!(replayed && again == created, "{again}");
    assert_eq!(count(&app, "/api/v1/assistants").await, 2);
    let chat = || {
        app.client
            .post(format!("{}/v1/chat/completions", app.address))
            .bearer_auth(&app.key)
            .json(&json!({ "model": "Ada", "messages": [{"role": "user", "content": "Hi"}] }))
    };
    let (status, _, completion) = with_key(chat(), "chat-1").await;
    assert_eq!(status, StatusCode::OK, "{completion}");
    let (_, replayed, again) = with_key(chat(), "chat-1").await;
    assert!(replayed && again == completion);

    // A key that is not one is refused before anything runs.
    let (status, _, body) = with_key(create(), &"k".repeat(300)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(count(&app, "/api/v1/assistants").await, 2);
}
