//! Sessions, contexts, conversations, replies and feedback through GraphQL, websocket and
//! REST with server-sent events.

use std::{sync::Arc, time::Duration};

use companin::{config::LlmChoice, models::Models};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    conversation_support::{
        CHAT, REPLY_STREAM, SseFrame, events, sse_events, sse_frames, whole_reply, with_events,
    },
    fake_openai::{FakeOpenAi, Reply},
    helpers::{TestApp, code},
    scripted_chat::ScriptedChat,
    ws_support::Ws,
};

const RETURNS_DOC: &str = "# Returns\n\nItems can be returned within 30 days of delivery. \
    Refunds reach your card within five business days.\n\n# Shipping\n\n\
    We ship to Belgium and the Netherlands from our warehouse in Ghent.";

/// An app with the returns document indexed; returns its source id.
async fn with_returns_doc(app: &TestApp) -> String {
    let (status, source) = app
        .upload(
            &app.key,
            "returns.md",
            RETURNS_DOC.as_bytes().to_vec(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{source}");
    let id = source["id"].as_str().expect("source id").to_owned();
    assert_eq!(app.settled(&app.key, &id).await["status"], "READY");
    id
}

#[tokio::test]
async fn a_visitor_gets_a_reply_streamed_over_websocket_with_citations_and_rates_it() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let doc = with_returns_doc(&app).await;
    let assistant = app.assistant(&key, json!({})).await;
    let session = app
        .gql_ok(
            &key,
            "mutation($input: CreateSessionInput!) { createSession(input: $input) { id visitorId externalUserId channel active expiresAt } }",
            json!({"input": {"assistantId": assistant, "externalUserId": "cust-42", "channel": "web",
                "metadata": {"crm": "hs-9"}}}),
        )
        .await["createSession"]
        .clone();
    assert_eq!(session["active"], true);
    assert!(
        session["visitorId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("vis_")
    );
    let session_id = session["id"].as_str().expect("session id");
    let context = app
        .gql_ok(
            &key,
            "mutation($input: AttachContextInput!) { attachContext(input: $input) { id sessionId traits } }",
            json!({"input": {"sessionId": session_id, "traits": {"name": "Ana", "plan": "pro"}}}),
        )
        .await["attachContext"]
        .clone();
    assert_eq!(context["traits"]["plan"], "pro");

    let mut ws = Ws::ready(&app, &key).await;
    ws.subscribe(
        "1",
        &with_events(CHAT),
        json!({"input": {"sessionId": session_id, "message": "How many days do I have to return items?"}}),
    )
    .await;
    let events = events(&ws.until_complete("1").await, "chat");
    let (text, reply) = whole_reply(&events);
    assert!(text.contains("30 days"), "{text}");
    assert_eq!(
        reply["content"], text,
        "the stored reply is what was streamed"
    );
    assert_eq!(reply["status"], "COMPLETE");
    assert_eq!(reply["role"], "ASSISTANT");
    assert_eq!(reply["model"], "extractive");
    assert_eq!(reply["citations"][0]["sourceId"], doc);
    let citations = &events[events.len() - 2]["citations"];
    assert!(
        citations[0]["chunkText"]
            .as_str()
            .unwrap_or_default()
            .contains("30 days")
    );
    assert!(reply["latencyMs"].as_i64().is_some() && reply["firstTokenMs"].as_i64().is_some());
    let conversation_id = events[0]["conversationId"].as_str().expect("conversation");
    let user_message_id = events[0]["userMessageId"].as_str().expect("user message");
    let reply_id = reply["id"].as_str().expect("reply id");

    let feedback = app
        .gql_ok(
            &key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id rating comment messageId actor { type id name metadata } } }",
            json!({"input": {"conversationId": conversation_id, "messageId": reply_id, "rating": 5,
                "comment": "Clear answer", "actor": {"type": "VISITOR", "id": "cust-42", "name": "Ana", "metadata": {"source": "widget"}}}}),
        )
        .await["submitFeedback"]
        .clone();
    assert!(
        feedback["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("fb_")
    );
    assert_eq!(feedback["actor"]["metadata"]["source"], "widget");

    let data = app
        .gql_ok(
            &key,
            "query($id: ID!) { conversation(id: $id) { sessionId assistantId externalUserId
                messages { nodes { id role status content replyTo feedback { nodes { rating } } } }
                feedback { nodes { rating comment actor { type name } } } } }",
            json!({"id": conversation_id}),
        )
        .await;
    let conversation = &data["conversation"];
    assert_eq!(conversation["externalUserId"], "cust-42");
    let messages = conversation["messages"]["nodes"]
        .as_array()
        .expect("messages");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["id"], user_message_id);
    assert_eq!(messages[0]["role"], "USER");
    assert_eq!(messages[1]["replyTo"], user_message_id);
    assert_eq!(messages[1]["feedback"]["nodes"][0]["rating"], 5);
    assert_eq!(
        conversation["feedback"]["nodes"][0]["actor"]["type"],
        "VISITOR"
    );
    assert_eq!(
        conversation["feedback"]["nodes"][0]["comment"],
        "Clear answer"
    );
    ws.close().await;
}

#[tokio::test]
async fn a_visitor_gets_a_reply_as_server_sent_events_and_its_journey_spans_channels() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let doc = with_returns_doc(&app).await;
    let assistant = app.assistant(&key, json!({})).await;
    let web = app
        .session(
            &key,
            json!({"assistant_id": assistant, "external_user_id": "cust-7", "channel": "widget"}),
        )
        .await;
    let (status, context) = TestApp::send(
        app.rest(Method::POST, "/api/v1/contexts", &key)
            .json(&json!({"session_id": web["id"], "traits": {"locale": "nl-BE"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{context}");

    let response = app
        .rest(Method::POST, "/api/v1/conversations/send-message", &key)
        .header("Accept", "text/event-stream")
        .json(&json!({"session_id": web["id"], "message": "Where do you ship to?"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.expect("body");
    let events = sse_events(&body);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"reply_started"), "{names:?}");
    assert_eq!(
        &names[names.len() - 3..],
        ["reply_citations", "reply_completed", "done"]
    );
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "reply_delta")
        .map(|(_, d)| d["delta"].as_str().unwrap_or_default())
        .collect();
    let reply = &events[events.len() - 2].1["message"];
    assert_eq!(reply["content"], text);
    assert!(text.contains("Belgium"), "{text}");
    assert_eq!(reply["citations"][0]["source_id"], doc);
    let conversation = reply["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();

    // The same conversation again, as JSON this time.
    let (status, payload) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &key)
            .json(&json!({"conversation_id": conversation, "message": "And how long do refunds take?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{payload}");
    assert_eq!(payload["reply"]["status"], "COMPLETE");
    assert!(
        payload["reply"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("five business days")
    );
    // A conversation is with one assistant: naming another is refused, not ignored.
    let other = app.assistant(&key, json!({ "name": "Other" })).await;
    let (status, refused) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &key)
            .json(
                &json!({"conversation_id": conversation, "assistant_id": other, "message": "Hi"}),
            ),
    )
    .await;
    assert_eq!(
        (
            status,
            code(&refused),
            &refused["error"]["details"]["field"]
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "BAD_USER_INPUT",
            &json!("assistant_id")
        ),
        "{refused}"
    );

    let (status, feedback) = TestApp::send(
        app.rest(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/feedback"),
            &key,
        )
        .json(
            &json!({"thumbs": "down", "message_id": payload["reply"]["id"], "comment": "too slow"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{feedback}");
    assert_eq!(feedback["rating"], 1);
    assert_eq!(feedback["actor"]["type"], "VISITOR");
    let (_, listed) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/feedback"),
        &key,
    ))
    .await;
    assert_eq!(listed["data"][0]["comment"], "too slow");
    let (_, messages) = TestApp::send(app.rest(
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/messages"),
        &key,
    ))
    .await;
    let roles: Vec<&str> = messages["data"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["USER", "ASSISTANT", "USER", "ASSISTANT"]);

    // The same visitor writes by email: one journey across channels.
    let email = app
        .session(
            &key,
            json!({"assistant_id": assistant, "external_user_id": "cust-7", "channel": "email"}),
        )
        .await;
    app.say(
        &key,
        json!({"sessionId": email["id"], "message": "Do you ship to Germany?"}),
    )
    .await;
    app.session(
        &key,
        json!({"assistant_id": assistant, "external_user_id": "someone-else"}),
    )
    .await;
    for (path, expected) in [
        ("/api/v1/sessions", 2),
        ("/api/v1/conversations", 2),
        ("/api/v1/contexts", 1),
    ] {
        let (status, list) = TestApp::send(app.rest(
            Method::GET,
            &format!("{path}?external_user_id=cust-7"),
            &key,
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(
            list["data"].as_array().map(Vec::len),
            Some(expected),
            "{path}: {list}"
        );
    }
    let channels = app
        .gql_ok(
            &key,
            "{ sessions(externalUserId: \"cust-7\") { nodes { channel conversations { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let channels: Vec<&str> = channels["sessions"]["nodes"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["channel"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(channels, ["widget", "email"]);
}

#[tokio::test]
async fn replies_come_from_the_openai_compatible_provider_with_instructions_traits_history_and_a_task_template()
 {
    let fake = FakeOpenAi::start(vec![
        // The document's summary, written by the provider at ingestion.
        Reply::Message(r#"{"summary": "Returns and shipping.", "keywords": ["returns"]}"#.into()),
        Reply::Stream(
            vec!["You have ", "30 days ", "to return items [1]."],
            "stop",
        ),
        Reply::Stream(vec!["Order A-17 ", "ships today."], "stop"),
    ])
    .await;
    let base_url = fake.base_url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.models.llm = LlmChoice::Openai;
        s.models.openai_base_url = Some(base_url);
        s.models.openai_api_key = Some("sk-test".to_owned().into());
    })
    .await;
    let key = app.key.clone();
    let doc = with_returns_doc(&app).await;
    assert_eq!(
        app.settled(&key, &doc).await["summary"],
        "Returns and shipping.",
        "the provider summarised the document"
    );
    let assistant = app
        .assistant(
            &key,
            json!({"tone": "friendly", "language": "en", "taskTemplates": [
                {"name": "order", "template": "Customer {{traits.name}} asks about order {{order_id}}: {{message}}"}]}),
        )
        .await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    app.gql_ok(
        &key,
        "mutation($input: AttachContextInput!) { attachContext(input: $input) { id } }",
        json!({"input": {"sessionId": session["id"], "traits": {"name": "Ana"}}}),
    )
    .await;

    let first = app
        .say(
            &key,
            json!({"sessionId": session["id"], "message": "How long can I return items?"}),
        )
        .await;
    let reply = &first["reply"];
    assert_eq!(reply["content"], "You have 30 days to return items [1].");
    assert_eq!(reply["model"], "openai:gpt-4o-mini");
    assert_eq!(reply["usage"]["promptTokens"], 11);
    assert_eq!(
        reply["citations"][0]["sourceId"], doc,
        "[1] cites the first passage"
    );
    assert_eq!(reply["citations"].as_array().map(Vec::len), Some(1));

    let second = app
        .say(
            &key,
            json!({"conversationId": reply["conversationId"], "message": "Is it shipped?",
            "template": "order", "variables": {"order_id": "A-17"}}),
        )
        .await;
    assert_eq!(second["reply"]["content"], "Order A-17 ships today.");
    assert_eq!(
        second["userMessage"]["content"], "Is it shipped?",
        "the visitor's words are stored"
    );

    let chats: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|(path, _)| path.ends_with("/chat/completions"))
        .map(|(_, body)| body)
        .collect();
    assert_eq!(chats.len(), 3, "one summary, two replies");
    let chats = &chats[1..];
    let system = chats[0]["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(system.contains("You help customers of Acme."), "{system}");
    assert!(system.contains("friendly"), "{system}");
    assert!(
        system.contains("\"name\":\"Ana\""),
        "traits are given: {system}"
    );
    assert!(
        system.contains("within 30 days of delivery"),
        "passages are given: {system}"
    );
    let turns: Vec<(String, String)> = chats[1]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        turns[1],
        ("user".into(), "How long can I return items?".into())
    );
    assert_eq!(
        turns[2],
        (
            "assistant".into(),
            "You have 30 days to return items [1].".into()
        )
    );
    assert_eq!(
        turns[3],
        (
            "user".into(),
            "Customer Ana asks about order A-17: Is it shipped?".into()
        )
    );

    let (code, error) = app
        .gql_err(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { reply { id } } }",
            json!({"input": {"sessionId": session["id"], "message": "x", "template": "order"}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("order_id"),
        "{error}"
    );
}

#[tokio::test]
async fn replies_come_from_the_local_models_over_server_sent_events() {
    let app = TestApp::spawn_with(|s| {
        s.models.embedder = companin::config::EmbedderChoice::Local;
        s.models.llm = LlmChoice::Local;
    })
    .await;
    let key = app.key.clone();
    with_returns_doc(&app).await;
    let assistant = app
        .assistant(&key, json!({"maxTokens": 24, "temperature": 0.0}))
        .await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let response = app
        .rest(Method::POST, "/api/v1/conversations/send-message", &key)
        .json(&json!({"session_id": session["id"], "message": "How many days do I have to return items?", "stream": true}))
        .send()
        .await
        .expect("sent");
    let events = sse_events(&response.text().await.expect("body"));
    let deltas = events.iter().filter(|(n, _)| n == "reply_delta").count();
    assert!(deltas >= 2, "the reply streams token by token: {events:?}");
    let reply = &events[events.len() - 2].1["message"];
    assert_eq!(reply["status"], "COMPLETE", "{reply}");
    assert_eq!(reply["model"], "local:SmolLM2-135M-Instruct");
    assert!(
        !reply["content"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty()
    );
    assert!(
        reply["usage"]["prompt_tokens"].as_i64().unwrap_or_default() > 50,
        "{reply}"
    );
    assert!(
        reply["usage"]["completion_tokens"]
            .as_i64()
            .unwrap_or_default()
            <= 24,
        "{reply}"
    );
}

#[tokio::test]
async fn a_strongly_matching_qa_pair_is_answered_verbatim() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let qa = app
        .create_qa(
            &key,
            "What are your opening hours?",
            "We are open 9:00–17:00, Monday to Friday.",
        )
        .await;
    app.settled(&key, &qa).await;
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let sent = app
        .say(
            &key,
            json!({"sessionId": session["id"], "message": "What are your opening hours?"}),
        )
        .await;
    assert_eq!(
        sent["reply"]["content"],
        "We are open 9:00–17:00, Monday to Friday."
    );
    assert_eq!(sent["reply"]["model"], "qa-match");
    assert_eq!(sent["reply"]["citations"][0]["sourceId"], qa);
}

/// An app whose checked model says `pieces`, with the returns document indexed, and a
/// visitor's session.
async fn checked_model_session(pieces: &[&str]) -> (TestApp, String, Value) {
    let app = TestApp::spawn_with_models(
        |_| {},
        Models {
            chat: Arc::new(ScriptedChat::checked(pieces)),
            ..Models::local_defaults()
        },
    )
    .await;
    let key = app.key.clone();
    with_returns_doc(&app).await;
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    (app, key, session)
}

#[tokio::test]
async fn a_generated_sentence_the_knowledge_does_not_support_never_reaches_the_visitor() {
    // A model that states the return period, then invents a command.
    let (app, key, session) = checked_model_session(&[
        "Items can be returned within ",
        "30 days of delivery [1]. ",
        "To speed it up, run `rm -rf /var/lib/returns` first. ",
        "Refunds reach your card within five business days.",
    ])
    .await;
    let response = app
        .rest(Method::POST, "/api/v1/conversations/send-message", &key)
        .json(&json!({"session_id": session["id"], "message": "How long do I have to return an item?", "stream": true}))
        .send()
        .await
        .expect("sent");
    let events = sse_events(&response.text().await.expect("body"));
    let streamed: String = events
        .iter()
        .filter(|(name, _)| name == "reply_delta")
        .map(|(_, e)| e["delta"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        streamed,
        "Items can be returned within 30 days of delivery [1]."
    );
    let reply = &events[events.len() - 2].1["message"];
    assert_eq!(reply["content"], streamed, "{reply}");
    assert_eq!(reply["grounding"], "TRIMMED");
    assert_eq!(reply["model"], "scripted");

    // Not one supported sentence: the visitor gets a quote of the knowledge instead.
    let (app, key, session) =
        checked_model_session(&["Returns are free for premium members and take 90 days."]).await;
    let sent = app
        .gql_ok(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                reply { content model grounding citations { sourceId } } } }",
            json!({"input": {"sessionId": session["id"], "message": "How long do I have to return an item?"}}),
        )
        .await;
    let reply = &sent["sendMessage"]["reply"];
    assert_eq!(reply["grounding"], "REPLACED", "{reply}");
    assert_eq!(reply["model"], "extractive");
    let content = reply["content"].as_str().unwrap_or_default();
    assert!(
        content.starts_with("Items can be returned within 30 days of delivery. [1]"),
        "{content}"
    );
    assert!(!content.contains("90"), "{content}");
}

fn slow_models(pieces: usize, every_ms: u64) -> Models {
    Models {
        chat: Arc::new(ScriptedChat::numbered(
            pieces,
            Duration::from_millis(every_ms),
        )),
        ..Models::local_defaults()
    }
}

#[tokio::test]
async fn a_reply_keeps_generating_after_the_client_leaves_and_a_reattached_client_gets_all_of_it() {
    let app = TestApp::spawn_with_models(|_| {}, slow_models(40, 25)).await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let expected: String = (0..40).map(|i| format!("t{i} ")).collect();

    let mut ws = Ws::ready(&app, &key).await;
    ws.subscribe(
        "c",
        &with_events(CHAT),
        json!({"input": {"sessionId": session["id"], "message": "Hi"}}),
    )
    .await;
    let mut reply_id = String::new();
    let mut seen = 0;
    while seen < 3 {
        let frame = ws.recv().await;
        let event = &frame["payload"]["data"]["chat"];
        match event["__typename"].as_str() {
            Some("ReplyStarted") => {
                reply_id = event["messageId"].as_str().unwrap_or_default().to_owned()
            }
            Some("ReplyDelta") => seen += 1,
            _ => {}
        }
    }
    ws.close().await;

    let mut again = Ws::ready(&app, &key).await;
    again
        .subscribe("r", &with_events(REPLY_STREAM), json!({"id": reply_id}))
        .await;
    let (text, reply) = whole_reply(&events(&again.until_complete("r").await, "replyStream"));
    assert_eq!(
        text, expected,
        "what was generated before, then the rest live"
    );
    assert_eq!(reply["content"], expected);

    // Stored to the end, and a finished reply replays whole, over SSE too.
    assert_eq!(app.message(&key, &reply_id).await["status"], "COMPLETE");
    let body = app
        .rest(
            Method::GET,
            &format!("/api/v1/messages/{reply_id}/stream"),
            &key,
        )
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let replayed = sse_events(&body);
    assert_eq!(replayed[1].1["delta"], expected);
    assert_eq!(replayed.last().map(|(n, _)| n.as_str()), Some("done"));
}

/// The text of the `reply_delta` frames.
fn delta_text(frames: &[SseFrame]) -> String {
    frames
        .iter()
        .filter(|f| f.name == "reply_delta")
        .map(|f| f.data["delta"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn an_sse_client_reattaching_with_last_event_id_gets_the_rest_of_the_reply_exactly_once() {
    let app = TestApp::spawn_with_models(|_| {}, slow_models(40, 25)).await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let expected: String = (0..40).map(|i| format!("t{i} ")).collect();

    // Read the streamed send until a few pieces have arrived, then drop the connection.
    let mut response = app
        .rest(Method::POST, "/api/v1/conversations/send-message", &key)
        .json(&json!({"session_id": session["id"], "message": "Count", "stream": true}))
        .send()
        .await
        .expect("sent");
    let mut body = String::new();
    let seen = loop {
        let chunk = response.chunk().await.expect("read").expect("more");
        body.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        // Only whole blocks: the last one may be cut.
        let whole = &body[..body.rfind("\n\n").unwrap_or(0)];
        let frames = sse_frames(whole);
        if frames.iter().filter(|f| f.name == "reply_delta").count() >= 4 {
            break frames;
        }
    };
    drop(response);
    assert_eq!(seen[0].name, "reply_started");
    assert_eq!(seen[0].id, Some(0));
    let reply_id = seen[0].data["message_id"].as_str().expect("id").to_owned();
    let last = seen.last().expect("frames").id.expect("a delta has an id");
    let before = delta_text(&seen);
    assert_eq!(
        last,
        before.len() as u64,
        "a delta's id counts the text so far"
    );

    // Re-attached while it runs: only what follows, each piece once, ids growing.
    let resumed = app
        .rest(
            Method::GET,
            &format!("/api/v1/messages/{reply_id}/stream"),
            &key,
        )
        .header("Last-Event-ID", last.to_string())
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let rest = sse_frames(&resumed);
    assert!(rest.iter().all(|f| f.name != "reply_started"), "{resumed}");
    assert_eq!(format!("{before}{}", delta_text(&rest)), expected);
    let ids: Vec<u64> = rest.iter().filter_map(|f| f.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let names: Vec<&str> = rest.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names[names.len() - 3..],
        ["reply_citations", "reply_completed", "done"]
    );

    // Ended, it is read back from storage as one piece: the same ids mean the same place.
    let again = |after: u64| {
        app.rest(
            Method::GET,
            &format!("/api/v1/messages/{reply_id}/stream"),
            &key,
        )
        .header("Last-Event-ID", after.to_string())
        .send()
    };
    let stored = sse_frames(&again(last).await.expect("sent").text().await.expect("body"));
    assert_eq!(format!("{before}{}", delta_text(&stored)), expected);
    let citations = stored
        .iter()
        .find(|f| f.name == "reply_citations")
        .and_then(|f| f.id)
        .expect("citations have an id");
    let tail = sse_frames(
        &again(citations)
            .await
            .expect("sent")
            .text()
            .await
            .expect("body"),
    );
    let names: Vec<&str> = tail.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["reply_completed", "done"]);

    // An id this stream never sent is refused.
    let response = app
        .rest(
            Method::GET,
            &format!("/api/v1/messages/{reply_id}/stream"),
            &key,
        )
        .header("Last-Event-ID", "t5")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn cancelling_a_reply_stops_it_and_keeps_the_text_written_so_far() {
    let app =
        TestApp::spawn_with_models(|s| s.replies.reply_flush_ms = 20, slow_models(200, 20)).await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let sent = app
        .gql_ok(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input, wait: false) { userMessage { id } reply { id status } } }",
            json!({"input": {"sessionId": session["id"], "message": "Tell me everything"}}),
        )
        .await;
    let reply_id = sent["sendMessage"]["reply"]["id"]
        .as_str()
        .expect("reply")
        .to_owned();
    let user_message_id = sent["sendMessage"]["userMessage"]["id"].clone();
    assert_eq!(sent["sendMessage"]["reply"]["status"], "PENDING");

    let mut ws = Ws::ready(&app, &key).await;
    ws.subscribe("r", &with_events(REPLY_STREAM), json!({"id": reply_id}))
        .await;
    let mut deltas = 0;
    while deltas < 5 {
        let frame = ws.recv().await;
        if frame["payload"]["data"]["replyStream"]["__typename"] == "ReplyDelta" {
            deltas += 1;
        }
    }
    let cancelled = app
        .gql_ok(
            &key,
            "mutation($id: ID!) { cancelReply(messageId: $id) { status content } }",
            json!({"id": reply_id}),
        )
        .await["cancelReply"]
        .clone();
    assert_eq!(cancelled["status"], "CANCELLED");
    let kept = cancelled["content"].as_str().unwrap_or_default().to_owned();
    assert!(kept.starts_with("t0 t1 t2 t3 t4 "), "{kept}");
    assert!(!kept.contains("t199"), "{kept}");

    let events = events(&ws.until_complete("r").await, "replyStream");
    let last = events.last().expect("events");
    assert_eq!(last["__typename"], "ReplyCompleted");
    assert_eq!(last["message"]["status"], "CANCELLED");
    assert_eq!(last["message"]["content"], kept);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored = app.message(&key, &reply_id).await;
    assert_eq!(stored["content"], kept, "generation stopped");
    assert_eq!(
        app.gql_ok(
            &key,
            "mutation($id: ID!) { cancelReply(messageId: $id) { status } }",
            json!({"id": reply_id})
        )
        .await["cancelReply"]["status"],
        "CANCELLED",
        "cancelling again changes nothing"
    );
    let (code, _) = app
        .gql_err(
            &key,
            "mutation($id: ID!) { cancelReply(messageId: $id) { status } }",
            json!({"id": user_message_id}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT", "a visitor's message is not a reply");
}

#[tokio::test]
async fn ended_and_expired_sessions_refuse_messages_but_stay_readable() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let ended = app.session(&key, json!({"assistant_id": assistant})).await;
    let ended_id = ended["id"].as_str().expect("id");
    let data = app
        .gql_ok(
            &key,
            "mutation($id: ID!) { endSession(id: $id) { active endedAt } }",
            json!({"id": ended_id}),
        )
        .await;
    assert_eq!(data["endSession"]["active"], false);

    let expired = app
        .session(&key, json!({"assistant_id": assistant, "ttl_seconds": 60}))
        .await;
    let expired_id = expired["id"].as_str().expect("id");
    let db = companin::db::connect(&app.settings).await.expect("db");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        &format!("UPDATE visitor_session SET expires_at = '2020-01-01T00:00:00Z' WHERE id = '{expired_id}'"),
    )
    .await
    .expect("expired");

    for session in [ended_id, expired_id] {
        let (status, body) = TestApp::send(
            app.rest(Method::POST, "/api/v1/conversations/send-message", &key)
                .json(&json!({"session_id": session, "message": "Hello?"})),
        )
        .await;
        assert_eq!(status, StatusCode::GONE, "{body}");
        assert_eq!(code(&body), "SESSION_EXPIRED");
        let (code, _) = app
            .gql_err(
                &key,
                "mutation($input: AttachContextInput!) { attachContext(input: $input) { id } }",
                json!({"input": {"sessionId": session, "traits": {"a": 1}}}),
            )
            .await;
        assert_eq!(code, "SESSION_EXPIRED");
        let (status, readable) =
            TestApp::send(app.rest(Method::GET, &format!("/api/v1/sessions/{session}"), &key))
                .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(readable["active"], false);
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_at_fault() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/sessions", &key)
            .json(&json!({"channel": "Web Chat!"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("channel"))
    );
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/contexts", &key)
            .json(&json!({"session_id": session["id"], "traits": ["not", "an", "object"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("traits"))
    );
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &key)
            .json(&json!({"session_id": session["id"], "message": "   "})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "BAD_USER_INPUT")
    );
    let sent = app
        .say(&key, json!({"sessionId": session["id"], "message": "hi"}))
        .await;
    let (code, error) = app
        .gql_err(
            &key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({"input": {"conversationId": sent["reply"]["conversationId"], "rating": 7}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "rating");
    let (code, _) = app
        .gql_err(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { reply { id } } }",
            json!({"input": {"message": "no target"}}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_paused_assistant_answers_assistant_inactive() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    app.gql_ok(
        &key,
        "mutation($id: ID!) { setAssistantActive(id: $id, active: false) { active } }",
        json!({"id": assistant}),
    )
    .await;
    let (status, body) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &key)
            .json(&json!({"session_id": session["id"], "message": "Anyone there?"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "ASSISTANT_INACTIVE")
    );
    let (code, _) = app
        .gql_err(
            &key,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { reply { id } } }",
            json!({"input": {"sessionId": session["id"], "message": "Anyone?"}}),
        )
        .await;
    assert_eq!(code, "ASSISTANT_INACTIVE");
}

#[tokio::test]
async fn another_organization_cannot_see_or_touch_sessions_conversations_messages_or_feedback() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let (_, other) = app.create_org("Globex").await;
    let assistant = app.assistant(&key, json!({})).await;
    let session = app
        .session(
            &key,
            json!({"assistant_id": assistant, "external_user_id": "shared-id"}),
        )
        .await;
    let sent = app
        .say(
            &key,
            json!({"sessionId": session["id"], "message": "hello"}),
        )
        .await;
    let reply = &sent["reply"];
    let conversation = reply["conversationId"].as_str().expect("conversation");
    let feedback = app
        .gql_ok(
            &key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({"input": {"conversationId": conversation, "rating": 4}}),
        )
        .await["submitFeedback"]["id"]
        .clone();
    let context = app
        .gql_ok(
            &key,
            "mutation($input: AttachContextInput!) { attachContext(input: $input) { id } }",
            json!({"input": {"sessionId": session["id"], "traits": {"x": 1}}}),
        )
        .await["attachContext"]["id"]
        .clone();

    for id in [
        &session["id"],
        &json!(conversation),
        &reply["id"],
        &feedback,
        &context,
    ] {
        let data = app
            .gql_ok(
                &other,
                "query($id: ID!) { node(id: $id) { id } }",
                json!({"id": id}),
            )
            .await;
        assert!(data["node"].is_null(), "{id} is invisible");
    }
    let data = app
        .gql_ok(
            &other,
            "query($s: ID!, $c: ID!, $m: ID!) { session(id: $s) { id } conversation(id: $c) { id } message(id: $m) { id }
              sessions(externalUserId: \"shared-id\") { nodes { id } } conversations { nodes { id } } }",
            json!({"s": session["id"], "c": conversation, "m": reply["id"]}),
        )
        .await;
    assert!(
        data["session"].is_null() && data["conversation"].is_null() && data["message"].is_null()
    );
    assert_eq!(data["sessions"]["nodes"], json!([]));
    assert_eq!(data["conversations"]["nodes"], json!([]));
    for path in [
        format!(
            "/api/v1/sessions/{}",
            session["id"].as_str().unwrap_or_default()
        ),
        format!("/api/v1/conversations/{conversation}"),
        format!("/api/v1/conversations/{conversation}/messages"),
        format!("/api/v1/conversations/{conversation}/feedback"),
        format!(
            "/api/v1/messages/{}/stream",
            reply["id"].as_str().unwrap_or_default()
        ),
    ] {
        let (status, body) = TestApp::send(app.rest(Method::GET, &path, &other)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "NOT_FOUND"),
            "{path}"
        );
    }
    let (status, _) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &other)
            .json(&json!({"conversation_id": conversation, "message": "sneaky"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = TestApp::send(
        app.rest(
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/feedback"),
            &other,
        )
        .json(&json!({"rating": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (query, vars) in [
        (
            "mutation($id: ID!) { cancelReply(messageId: $id) { id } }",
            json!({"id": reply["id"]}),
        ),
        (
            "mutation($id: ID!) { endSession(id: $id) { id } }",
            json!({"id": session["id"]}),
        ),
        (
            "mutation($input: CreateConversationInput!) { createConversation(input: $input) { id } }",
            json!({"input": {"sessionId": session["id"]}}),
        ),
    ] {
        let (code, _) = app.gql_err(&other, query, vars).await;
        assert_eq!(code, "NOT_FOUND", "{query}");
    }
    let mut ws = Ws::ready(&app, &other).await;
    ws.subscribe("r", &with_events(REPLY_STREAM), json!({"id": reply["id"]}))
        .await;
    let payloads = ws.until_complete("r").await;
    assert_eq!(
        payloads[0]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{payloads:?}"
    );
}

#[tokio::test]
async fn an_organization_at_its_concurrent_replies_is_refused_more_until_one_ends_while_others_go_on()
 {
    let app = TestApp::spawn_with_models(
        |s| s.replies.max_concurrent_replies = 2,
        slow_models(30, 50),
    )
    .await;
    let send = "mutation($input: SendMessageInput!) { sendMessage(input: $input, wait: false) { reply { id } } }";
    let say = |key: String, session: Value| {
        let app = &app;
        async move {
            app.gql_raw(
                &key,
                send,
                json!({"input": {"sessionId": session["id"], "message": "Hi"}}),
            )
            .await
            .1
        }
    };
    let assistant = app.assistant(&app.key, json!({})).await;
    let session = app
        .session(&app.key, json!({"assistant_id": assistant}))
        .await;
    let mut replies = Vec::new();
    for _ in 0..2 {
        let body = say(app.key.clone(), session.clone()).await;
        replies.push(
            body["data"]["sendMessage"]["reply"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{body}"))
                .to_owned(),
        );
    }
    let refused = say(app.key.clone(), session.clone()).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );

    let (_, other_key) = app.create_org("Other").await;
    let other_assistant = app.assistant(&other_key, json!({})).await;
    let other_session = app
        .session(&other_key, json!({"assistant_id": other_assistant}))
        .await;
    let other = say(other_key, other_session).await;
    assert!(
        other["errors"].is_null(),
        "another organization goes on: {other}"
    );

    for id in &replies {
        for _ in 0..200 {
            if app.message(&app.key, id).await["status"] == "COMPLETE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The slot is given back as the reply's task ends, just after its message is stored.
    let mut again = Value::Null;
    for _ in 0..40 {
        again = say(app.key.clone(), session.clone()).await;
        if again["errors"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again["errors"].is_null(), "a slot is free again: {again}");
}

/// Sends are stored many per commit: visitors sending at once each find their own messages,
/// in order, in their own conversation, and a send whose conversation vanished fails alone.
#[tokio::test]
async fn visitors_sending_at_once_find_their_own_messages_and_a_vanished_conversation_fails_alone()
{
    use companin::{
        auth::{Tenant, Work},
        domain::ids::OrgId,
        repo::conversations::exchange,
        runtime::exchanges::ExchangeWriter,
    };
    // Every visitor's reply generates at once.
    let app = TestApp::spawn_with(|s| s.replies.max_concurrent_replies = 100).await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let session = app
            .session(&app.key, json!({ "assistant_id": assistant }))
            .await;
        sessions.push(session["id"].as_str().expect("session id").to_owned());
    }
    // The first round opens the conversations, the second continues them.
    let mut conversations = vec![String::new(); sessions.len()];
    for round in 0..2 {
        let sends = sessions.iter().enumerate().map(|(i, session)| {
            app.say(
                &app.key,
                json!({ "sessionId": session, "message": format!("visitor {i} asks {round}") }),
            )
        });
        for (i, sent) in futures::future::join_all(sends).await.iter().enumerate() {
            assert_eq!(sent["reply"]["status"], "COMPLETE", "{sent}");
            assert_eq!(sent["reply"]["replyTo"], sent["userMessage"]["id"]);
            let conversation = sent["userMessage"]["conversationId"]
                .as_str()
                .expect("conversation id");
            if round == 0 {
                conversations[i] = conversation.to_owned();
            }
            assert_eq!(conversation, conversations[i], "round 2 continues round 1");
        }
    }
    let app = &app;
    let messages = |id: String| async move {
        let data = app
            .gql_ok(
                &app.key,
                "query($id: ID!) { conversation(id: $id) {
                    messages(first: 50) { edges { node { role content } } } } }",
                json!({ "id": id }),
            )
            .await;
        data["conversation"]["messages"]["edges"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|e| (e["node"]["role"].clone(), e["node"]["content"].clone()))
            .collect::<Vec<_>>()
    };
    for (i, conversation) in conversations.iter().enumerate() {
        let stored = messages(conversation.clone()).await;
        let roles: Vec<_> = stored
            .iter()
            .map(|(role, _)| role.as_str().expect("role"))
            .collect();
        assert_eq!(
            roles,
            ["USER", "ASSISTANT", "USER", "ASSISTANT"],
            "{stored:?}"
        );
        assert_eq!(stored[0].1, format!("visitor {i} asks 0"));
        assert_eq!(stored[2].1, format!("visitor {i} asks 1"));
    }

    // The writer answers each send for itself, when its batch fails too.
    let db = companin::db::connect(&app.settings)
        .await
        .expect("database");
    let writer = ExchangeWriter::start(db);
    let tenant = Tenant::for_work(OrgId::from_db(app.org_id.clone()), Work::Replies);
    let kept = exchange(&tenant, &conversations[0], None, Vec::new(), "one more", 1);
    let vanished = exchange(&tenant, "conv_vanished", None, Vec::new(), "lost", 1);
    let both = async { tokio::join!(writer.store(kept), writer.store(vanished)) };
    let (kept, vanished) = tokio::time::timeout(Duration::from_secs(30), both)
        .await
        .expect("each send is answered");
    assert!(vanished.is_err(), "a message to no conversation is refused");
    let kept = kept.expect("the other send is stored");
    let stored = messages(conversations[0].clone()).await;
    assert_eq!(stored.len(), 6, "{stored:?}");
    assert_eq!(stored[4].1, "one more");
    assert_eq!(kept.reply.reply_to.as_deref(), Some(kept.user.id.as_str()));
}
