//! The OpenAI-compatible API: an OpenAI client, given Companin's address and a key (or a
//! widget token), talks to an assistant by name and is answered from the organization's
//! knowledge, streaming or not, with OpenAI's shapes for answers and errors.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::TestApp,
    visitor_answers::{REFUND_ANSWER, REFUND_QUESTION, as_visitor, knowledge, widget_token},
};

fn openai(app: &TestApp, method: Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(bearer)
}

/// The `data:` payloads of an OpenAI stream, `[DONE]` included as a string.
fn data_lines(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.into())))
        .collect()
}

async fn messages_of(app: &TestApp, conversation: &str) -> Vec<(String, String)> {
    let (status, page) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/messages"),
        &app.key,
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_openai_client_is_answered_from_the_knowledge_and_each_call_is_a_stored_conversation() {
    let app = TestApp::spawn().await;
    let (qa, _) = knowledge(&app).await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;

    // The assistants are the models.
    let (status, models) = TestApp::send(openai(&app, Method::GET, "/v1/models", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{models}");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], assistant.as_str());
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(models["data"][0]["companin"]["name"], "Shop helper");
    let (status, one) = TestApp::send(openai(
        &app,
        Method::GET,
        "/v1/models/Shop%20helper",
        &app.key,
    ))
    .await;
    assert_eq!((status, &one["id"]), (StatusCode::OK, &json!(assistant)));

    // Named by its name, with a system prompt of the client's: answered from the Q&A pair.
    let response = openai(&app, Method::POST, "/v1/chat/completions", &app.key)
        .json(&json!({
            "model": "Shop helper",
            "messages": [
                {"role": "system", "content": "You are a pirate."},
                {"role": "user", "content": REFUND_QUESTION},
            ],
            "user": "cust-9",
            "temperature": 0.1,
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let conversation = response
        .headers()
        .get("x-companin-conversation-id")
        .and_then(|v| v.to_str().ok())
        .expect("the conversation is named")
        .to_owned();
    let completion: Value = response.json().await.expect("json");
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "Shop helper");
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], REFUND_ANSWER);
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert_eq!(
        usage["total_tokens"].as_i64(),
        Some(
            usage["prompt_tokens"].as_i64().expect("n")
                + usage["completion_tokens"].as_i64().expect("n")
        )
    );
    assert_eq!(
        completion["companin"]["conversation_id"],
        conversation.as_str()
    );
    assert_eq!(
        completion["companin"]["citations"][0]["source_id"],
        qa.as_str()
    );
    let reply_id = completion["companin"]["message_id"]
        .as_str()
        .expect("reply");
    assert_eq!(completion["id"], format!("chatcmpl-{reply_id}"));

    // Stored on channel `openai`, for the visitor the client named.
    let (_, stored) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}"),
        &app.key,
    ))
    .await;
    let (_, session) = TestApp::send(app.rest(
        Method::GET,
        &format!(
            "/api/v1/sessions/{}",
            stored["session_id"].as_str().expect("session")
        ),
        &app.key,
    ))
    .await;
    assert_eq!(
        (
            session["channel"].as_str(),
            session["external_user_id"].as_str()
        ),
        (Some("openai"), Some("cust-9"))
    );

    // Continued by naming it: the stored history is the history, the client's is not stored again.
    let (status, continued) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &app.key)
            .header("X-Companin-Conversation-Id", &conversation)
            .json(&json!({
                "model": assistant,
                "messages": [
                    {"role": "user", "content": REFUND_QUESTION},
                    {"role": "assistant", "content": REFUND_ANSWER},
                    {"role": "user", "content": "Which countries do you ship to?"},
                ],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{continued}");
    assert_eq!(
        continued["companin"]["conversation_id"],
        conversation.as_str()
    );
    assert!(
        continued["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("Belgium and the Netherlands")),
        "{continued}"
    );
    let roles: Vec<String> = messages_of(&app, &conversation)
        .await
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        roles,
        ["USER", "ASSISTANT", "USER", "ASSISTANT"].map(str::to_owned)
    );

    // A new call with the client's own history: stored before the question, in order.
    let (status, fresh) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &app.key).json(&json!({
            "model": assistant,
            "messages": [
                {"role": "user", "content": "Hoi"},
                {"role": "assistant", "content": "Hallo! Waarmee kan ik helpen?"},
                {"role": "user", "content": [{"type": "text", "text": REFUND_QUESTION}]},
            ],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let other = fresh["companin"]["conversation_id"]
        .as_str()
        .expect("conversation");
    assert_ne!(other, conversation);
    let stored = messages_of(&app, other).await;
    let expected = [
        ("USER", "Hoi"),
        ("ASSISTANT", "Hallo! Waarmee kan ik helpen?"),
        ("USER", REFUND_QUESTION),
        ("ASSISTANT", REFUND_ANSWER),
    ]
    .map(|(r, c)| (r.to_owned(), c.to_owned()));
    assert_eq!(stored, expected);

    // Streamed: the role, the text, the end with the citations, the usage, then [DONE].
    let body = openai(&app, Method::POST, "/v1/chat/completions", &app.key)
        .json(&json!({
            "model": assistant,
            "messages": [{"role": "user", "content": "Which countries do you ship to?"}],
            "stream": true,
            "stream_options": {"include_usage": true},
        }))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let chunks = data_lines(&body);
    assert_eq!(chunks.last(), Some(&json!("[DONE]")), "{body}");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.contains("Belgium and the Netherlands"), "{body}");
    let end = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "stop")
        .expect("an end chunk");
    assert!(
        end["companin"]["citations"][0]["source_id"].is_string(),
        "{end}"
    );
    let usage = &chunks[chunks.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].is_number(), "{usage}");
    let ids: Vec<&Value> = chunks[..chunks.len() - 1]
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "one id for every chunk");
}

#[tokio::test]
async fn a_widget_visitor_talks_to_its_own_assistant_and_errors_come_in_openais_shape() {
    let app = TestApp::spawn().await;
    knowledge(&app).await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;
    let other = app.assistant(&app.key, json!({ "name": "Other" })).await;
    let token = widget_token(&app, &assistant).await;
    let ask = |model: &str| json!({ "model": model, "messages": [{"role": "user", "content": REFUND_QUESTION}] });

    // The visitor sees and talks to its own assistant only.
    let (status, models) = TestApp::send(as_visitor(&app, Method::GET, "/v1/models", &token)).await;
    assert_eq!(status, StatusCode::OK, "{models}");
    let ids: Vec<&Value> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&json!(assistant)]);
    let (status, answered) = TestApp::send(
        as_visitor(&app, Method::POST, "/v1/chat/completions", &token).json(&ask("Shop helper")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["choices"][0]["message"]["content"], REFUND_ANSWER);
    let (status, refused) = TestApp::send(
        as_visitor(&app, Method::POST, "/v1/chat/completions", &token).json(&ask(&other)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"]["type"], "permission_error");
    // Another visitor's id is not the visitor's to use.
    let mut as_someone = ask(&assistant);
    as_someone["user"] = json!("someone-else");
    let (status, _) = TestApp::send(
        as_visitor(&app, Method::POST, "/v1/chat/completions", &token).json(&as_someone),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Errors: the status OpenAI's SDKs expect, and `error.{message,type,param,code}`.
    let cases = [
        (
            openai(&app, Method::POST, "/v1/chat/completions", "cmp_live_nope")
                .json(&ask(&assistant)),
            401,
            "authentication_error",
            Value::Null,
        ),
        (
            openai(&app, Method::POST, "/v1/chat/completions", &app.key).json(&ask("Nobody")),
            404,
            "not_found_error",
            json!("model"),
        ),
        (
            openai(&app, Method::POST, "/v1/chat/completions", &app.key)
                .header("content-type", "application/json")
                .body("{\"model\": "),
            400,
            "invalid_request_error",
            Value::Null,
        ),
        (
            openai(&app, Method::POST, "/v1/chat/completions", &app.key).json(
                &json!({"model": assistant, "messages": [{"role": "assistant", "content": "Hi"}]}),
            ),
            400,
            "invalid_request_error",
            json!("messages"),
        ),
        (
            openai(&app, Method::POST, "/v1/chat/completions", &app.key)
                .json(&json!({"model": assistant, "messages": [{"role": "user", "content": ""}]})),
            400,
            "invalid_request_error",
            json!("message"),
        ),
        (
            openai(&app, Method::POST, "/v1/chat/completions", &app.key)
                .header("X-Companin-Conversation-Id", "conv_x")
                .json(&ask(&assistant)),
            400,
            "invalid_request_error",
            json!("x-companin-conversation-id"),
        ),
        (
            openai(&app, Method::GET, "/v1/models/Nobody", &app.key),
            404,
            "not_found_error",
            json!("model"),
        ),
    ];
    for (request, status, kind, param) in cases {
        let (got, body) = TestApp::send(request).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
    }

    // A visitor asking for a person: stored and handed off, answered with no text.
    let desk = app
        .assistant(
            &app.key,
            json!({ "name": "Desk", "handoff": { "keywords": ["talk to a person"] } }),
        )
        .await;
    let (status, handed) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &app.key).json(&json!({
            "model": desk,
            "messages": [{"role": "user", "content": "I want to talk to a person"}],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{handed}");
    assert_eq!(handed["choices"][0]["message"]["content"], "");
    assert_eq!(handed["companin"]["status"], "HANDED_OFF");
    let (_, conversation) = TestApp::send(app.rest(
        Method::GET,
        &format!(
            "/api/v1/conversations/{}",
            handed["companin"]["conversation_id"].as_str().expect("id")
        ),
        &app.key,
    ))
    .await;
    assert_eq!(conversation["status"], "HANDED_OFF", "{conversation}");

    // A conversation of another organization is not found, as any other record.
    let (_, other_key) = app.create_org("Other org").await;
    let other_assistant = app
        .assistant(&other_key, json!({ "name": "Shop helper" }))
        .await;
    let (_, theirs) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &other_key).json(&ask(&other_assistant)),
    )
    .await;
    let theirs = theirs["companin"]["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let (status, body) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &app.key)
            .header("X-Companin-Conversation-Id", &theirs)
            .json(&ask(&assistant)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn a_completion_refused_while_the_model_is_busy_leaves_no_conversation_behind() {
    let app = TestApp::spawn_with(|s| s.replies.max_concurrent_replies = 0).await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let (status, refused) = TestApp::send(
        openai(&app, Method::POST, "/v1/chat/completions", &app.key).json(&json!({
            "model": assistant,
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": "Can I return a kettle?"},
            ],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["error"]["type"], "rate_limit_error", "{refused}");
    let (status, conversations) =
        TestApp::send(app.rest(Method::GET, "/api/v1/conversations", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "{conversations}");
    assert_eq!(
        conversations["data"].as_array().map(Vec::len),
        Some(0),
        "the turns sent are stored with the message or not at all: {conversations}"
    );
}
