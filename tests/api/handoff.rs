//! Human handoff through the running server: a visitor or the organization hands a
//! conversation to a person, whose messages reach the visitor live while no model runs; the
//! assistant's own rules (a keyword, unanswered turns, a low rating) do the same; releasing
//! and closing.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use companin::models::{ChatModel, ChatRequest, ChatStream, Faithfulness, ModelError, Models};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code},
    scripted_chat::ScriptedChat,
    visitor_answers::{as_visitor, visitor_gql, widget_token},
    webhook_support::Receiver,
    widget_tokens::widget_socket,
};

/// A conversation's events, handoff included.
const CONVERSATION_EVENTS: &str =
    "subscription($id: ID!) { conversationEvents(conversationId: $id) {
    __typename
    ... on ReplyCompleted { message { id role content } }
    ... on VisitorMessage { message { id role content } }
    ... on AgentMessage { message { id role content agent { id name } } }
    ... on ConversationStatusChanged { conversation { id status handoff { trigger reason } } } } }";

const CHAT_HANDED_OFF: &str = "subscription($input: SendMessageInput!) { chat(input: $input) {
    __typename
    ... on VisitorMessage { message { id role content } }
    ... on AgentMessage { message { id role content agent { name } } }
    ... on ConversationStatusChanged { conversation { status } }
    ... on ReplyCompleted { message { content } } } }";

const CONVERSATION: &str = "id status closedAt handoff { trigger reason note requestedAt }";

/// A scripted chat model that counts the replies it is asked for.
struct Counting {
    inner: ScriptedChat,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl ChatModel for Counting {
    fn id(&self) -> &str {
        "counting"
    }

    fn faithfulness(&self) -> Faithfulness {
        Faithfulness::Trusted
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.stream(request).await
    }
}

/// A server whose chat model answers "Happy to help." and counts its calls.
async fn counting_app() -> (TestApp, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let chat = Counting {
        inner: ScriptedChat::checked(&["Happy ", "to help."]),
        calls: calls.clone(),
    };
    let models = Models {
        chat: Arc::new(chat),
        ..Models::local_defaults()
    };
    // Webhooks go to a receiver on loopback.
    let app = TestApp::spawn_with_models(|s| s.ingestion.allow_private_urls = true, models).await;
    (app, calls)
}

/// The error code of a GraphQL response's first error.
fn gql_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A new session with `assistant`; its id.
async fn session_with(app: &TestApp, assistant: &str) -> Value {
    app.session(&app.key, json!({ "assistant_id": assistant }))
        .await["id"]
        .clone()
}

async fn conversation(app: &TestApp, id: &Value) -> Value {
    app.gql_ok(
        &app.key,
        &format!("query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION} }} }}"),
        json!({ "id": id }),
    )
    .await["conversation"]
        .clone()
}

/// The `next` payloads of operation `id` until one of `typename`.
async fn until_event(ws: &mut crate::ws_support::Ws, id: &str, typename: &str) -> Value {
    loop {
        let frame = ws.recv().await;
        assert_ne!(frame["type"], "error", "{frame}");
        if frame["type"] == "next" && frame["id"] == id {
            let event = frame["payload"]["data"]
                .as_object()
                .and_then(|data| data.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            if event["__typename"] == typename {
                return event;
            }
        }
    }
}

/// The first event of `typename` on each of the operations `ids`, by operation.
async fn events_on(
    ws: &mut crate::ws_support::Ws,
    ids: &[&str],
    typename: &str,
) -> HashMap<String, Value> {
    let mut found = HashMap::new();
    while found.len() < ids.len() {
        let frame = ws.recv().await;
        assert_ne!(frame["type"], "error", "{frame}");
        let Some(id) = frame["id"].as_str().filter(|id| ids.contains(id)) else {
            continue;
        };
        let event = frame["payload"]["data"]
            .as_object()
            .and_then(|data| data.values().next())
            .cloned()
            .unwrap_or(Value::Null);
        if frame["type"] == "next" && event["__typename"] == typename {
            found.entry(id.to_owned()).or_insert(event);
        }
    }
    found
}

#[tokio::test]
async fn a_visitor_hands_off_to_a_person_who_answers_live_while_no_model_runs_until_released() {
    let (app, calls) = counting_app().await;
    let receiver = Receiver::start(0).await;
    let (webhook, _) = app
        .webhook(
            &app.key,
            &receiver.url,
            json!([
                "conversation.handoff_requested",
                "conversation.handoff_released"
            ]),
        )
        .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let token = widget_token(&app, &assistant).await;
    let (status, session) =
        TestApp::send(as_visitor(&app, Method::POST, "/api/v1/sessions", &token).json(&json!({})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let session = session["id"].clone();
    let (status, _) = TestApp::send(
        as_visitor(&app, Method::POST, "/api/v1/contexts", &token)
            .json(&json!({ "session_id": session, "traits": { "name": "Joana", "plan": "pro" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let send = "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
        userMessage { id conversationId } reply { status content } } }";
    let first = visitor_gql(
        &app,
        &token,
        send,
        json!({ "input": { "sessionId": session, "message": "My parcel never arrived." } }),
    )
    .await;
    let conversation_id = first["data"]["sendMessage"]["userMessage"]["conversationId"].clone();
    assert_eq!(
        first["data"]["sendMessage"]["reply"]["status"], "COMPLETE",
        "{first}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The visitor's widget watches the conversation, then asks for a person.
    let mut widget = widget_socket(&app, &token).await;
    widget
        .subscribe(
            "events",
            CONVERSATION_EVENTS,
            json!({ "id": conversation_id }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = visitor_gql(
        &app,
        &token,
        &format!(
            "mutation($id: ID!) {{ requestHandoff(conversationId: $id, reason: \"wants a refund\") {{ {CONVERSATION} }} }}"
        ),
        json!({ "id": conversation_id }),
    )
    .await;
    let handed = &asked["data"]["requestHandoff"];
    assert_eq!(
        (
            handed["status"].as_str(),
            handed["handoff"]["trigger"].as_str()
        ),
        (Some("HANDED_OFF"), Some("VISITOR")),
        "{asked}"
    );
    let changed = until_event(&mut widget, "events", "ConversationStatusChanged").await;
    assert_eq!(changed["conversation"]["status"], "HANDED_OFF", "{changed}");

    // The helpdesk hears of it once, with what it needs to open a ticket.
    let requested = receiver.next_of("conversation.handoff_requested").await;
    let data = &requested.json["data"];
    assert_eq!(data["conversation"]["id"], conversation_id);
    assert_eq!(
        (data["trigger"].as_str(), data["reason"].as_str()),
        (Some("VISITOR"), Some("wants a refund"))
    );
    assert_eq!(data["traits"]["name"], "Joana", "{data}");
    assert!(
        data["summary"]
            .as_str()
            .is_some_and(|s| s.contains("parcel")),
        "{data}"
    );
    assert_eq!(data["messages"][0]["content"], "My parcel never arrived.");
    // Asking again changes nothing and sends nothing.
    let again = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { requestHandoff(conversationId: $id) { status handoff { trigger } } }",
            json!({ "id": conversation_id }),
        )
        .await;
    assert_eq!(again["requestHandoff"]["handoff"]["trigger"], "VISITOR");

    // While handed off the visitor's messages are stored and streamed; no model runs.
    let waiting = visitor_gql(
        &app,
        &token,
        send,
        json!({ "input": { "sessionId": session, "message": "Is anyone there?" } }),
    )
    .await;
    assert_eq!(
        waiting["data"]["sendMessage"]["reply"],
        Value::Null,
        "{waiting}"
    );
    let seen = until_event(&mut widget, "events", "VisitorMessage").await;
    assert_eq!(seen["message"]["content"], "Is anyone there?");

    // The visitor's `chat` carries its message and the state, then the person's answer.
    widget
        .subscribe(
            "chat",
            CHAT_HANDED_OFF,
            json!({ "input": { "conversationId": conversation_id, "message": "Hello?" } }),
        )
        .await;
    let own = until_event(&mut widget, "chat", "VisitorMessage").await;
    assert_eq!(own["message"]["content"], "Hello?");
    until_event(&mut widget, "chat", "ConversationStatusChanged").await;
    let agent = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { sendAgentMessage(conversationId: $id, content: \"Ana here, I am on it.\",
                agent: { id: \"zd-7\", name: \"Ana\" }) { id role content agent { id name } } }",
            json!({ "id": conversation_id }),
        )
        .await;
    assert_eq!(agent["sendAgentMessage"]["role"], "AGENT", "{agent}");
    // Both subscriptions get it, in no fixed order.
    let mut both = events_on(&mut widget, &["chat", "events"], "AgentMessage").await;
    let answered = both.remove("chat").expect("chat's");
    assert_eq!(
        (
            answered["message"]["content"].as_str(),
            answered["message"]["agent"]["name"].as_str()
        ),
        (Some("Ana here, I am on it."), Some("Ana")),
        "{answered}"
    );
    let watched = both.remove("events").expect("events'");
    assert_eq!(watched["message"]["agent"]["id"], "zd-7");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no model call while handed off"
    );

    // Only the organization releases it; then the assistant answers again.
    let denied = visitor_gql(
        &app,
        &token,
        "mutation($id: ID!) { releaseHandoff(conversationId: $id) { status } }",
        json!({ "id": conversation_id }),
    )
    .await;
    assert_eq!(gql_code(&denied), "FORBIDDEN", "{denied}");
    let released = app
        .gql_ok(
            &app.key,
            "mutation($id: ID!) { releaseHandoff(conversationId: $id) { status handoff { trigger } } }",
            json!({ "id": conversation_id }),
        )
        .await;
    assert_eq!(released["releaseHandoff"]["status"], "BOT");
    assert_eq!(
        receiver.next_of("conversation.handoff_released").await.json["data"]["conversation"]["id"],
        conversation_id
    );
    let back = visitor_gql(
        &app,
        &token,
        send,
        json!({ "input": { "sessionId": session, "message": "Thanks!" } }),
    )
    .await;
    assert_eq!(
        back["data"]["sendMessage"]["reply"]["status"], "COMPLETE",
        "{back}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let sent_events: Vec<String> = app
        .deliveries(&app.key, &webhook)
        .await
        .iter()
        .map(|d| d["event"]["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        sent_events,
        [
            "conversation.handoff_requested",
            "conversation.handoff_released"
        ],
        "one event per handoff and per release"
    );

    // Closed: the conversation refuses messages; its session opens a new one.
    let closed = visitor_gql(
        &app,
        &token,
        "mutation($id: ID!) { closeConversation(conversationId: $id) { status closedAt } }",
        json!({ "id": conversation_id }),
    )
    .await;
    assert_eq!(
        closed["data"]["closeConversation"]["status"], "CLOSED",
        "{closed}"
    );
    let refused = visitor_gql(
        &app,
        &token,
        send,
        json!({ "input": { "conversationId": conversation_id, "message": "One more thing" } }),
    )
    .await;
    assert_eq!(gql_code(&refused), "CONVERSATION_CLOSED", "{refused}");
    let fresh = visitor_gql(
        &app,
        &token,
        send,
        json!({ "input": { "sessionId": session, "message": "One more thing" } }),
    )
    .await;
    let fresh_id = &fresh["data"]["sendMessage"]["userMessage"]["conversationId"];
    assert!(
        fresh_id.is_string() && *fresh_id != conversation_id,
        "{fresh}"
    );
}

#[tokio::test]
async fn the_versions_rules_hand_off_on_a_keyword_on_unanswered_turns_and_on_a_low_rating() {
    let (app, calls) = counting_app().await;
    let assistant = app
        .assistant(
            &app.key,
            json!({ "handoff": {
                "keywords": ["falar com uma pessoa", "human"],
                "afterUnansweredTurns": 2,
                "onRatingAtMost": 2 } }),
        )
        .await;
    let rules = app
        .gql_ok(
            &app.key,
            "query($id: ID!) { assistant(id: $id) { handoff { keywords afterUnansweredTurns onRatingAtMost } } }",
            json!({ "id": assistant }),
        )
        .await;
    assert_eq!(
        rules["assistant"]["handoff"]["keywords"],
        json!(["falar com uma pessoa", "human"])
    );

    // A keyword, whatever its case and accents, over REST: no reply, handed off.
    let (status, sent) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", &app.key)
            .json(&json!({ "session_id": session_with(&app, &assistant).await,
                "message": "Quero FALAR com uma pessóa, por favor" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["reply"], Value::Null, "{sent}");
    let handed = conversation(&app, &sent["user_message"]["conversation_id"]).await;
    assert_eq!(
        (
            handed["status"].as_str(),
            handed["handoff"]["trigger"].as_str()
        ),
        (Some("HANDED_OFF"), Some("KEYWORD")),
        "{handed}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // "humane" is not "human".
    let unmoved = app
        .say(
            &app.key,
            json!({ "sessionId": session_with(&app, &assistant).await, "message": "Be humane" }),
        )
        .await;
    assert_eq!(unmoved["reply"]["status"], "COMPLETE", "{unmoved}");

    // Two visitor turns in a row that found no passage (there is no knowledge).
    let turns = session_with(&app, &assistant).await;
    let one = app
        .say(
            &app.key,
            json!({ "sessionId": turns, "message": "Where is my order?" }),
        )
        .await;
    let id = one["userMessage"]["conversationId"].clone();
    assert_eq!(conversation(&app, &id).await["status"], "BOT");
    app.say(
        &app.key,
        json!({ "sessionId": turns, "message": "Hello??" }),
    )
    .await;
    let after = conversation(&app, &id).await;
    assert_eq!(
        (
            after["status"].as_str(),
            after["handoff"]["trigger"].as_str()
        ),
        (Some("HANDED_OFF"), Some("UNANSWERED")),
        "{after}"
    );

    // A rating of 2.
    let rated = session_with(&app, &assistant).await;
    let sent = app
        .say(&app.key, json!({ "sessionId": rated, "message": "Hi" }))
        .await;
    let id = sent["userMessage"]["conversationId"].clone();
    app.rate(&app.key, &sent, 2).await;
    let low = conversation(&app, &id).await;
    assert_eq!(
        (low["status"].as_str(), low["handoff"]["trigger"].as_str()),
        (Some("HANDED_OFF"), Some("RATING")),
        "{low}"
    );
}

#[tokio::test]
async fn over_rest_a_conversation_is_handed_off_answered_released_and_closed_with_clear_errors() {
    let (app, _) = counting_app().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let session = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    let sent = app
        .say(
            &app.key,
            json!({ "sessionId": session["id"], "message": "Hi" }),
        )
        .await;
    let id = sent["userMessage"]["conversationId"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    let path = |tail: &str| format!("/api/v1/conversations/{id}{tail}");

    // An agent message before the handoff is a conflict.
    let (status, body) = TestApp::send(
        app.rest(Method::POST, &path("/agent-messages"), &app.key)
            .json(&json!({ "content": "Hello" })),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "CONFLICT"),
        "{body}"
    );
    let (status, body) = TestApp::send(
        app.rest(Method::POST, &path("/handoff"), &app.key)
            .json(&json!({ "reason": "x".repeat(501) })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = TestApp::send(
        app.rest(Method::POST, &path("/handoff"), &app.key)
            .json(&json!({ "reason": "VIP customer", "note": "Call back before noon" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["handoff"]["trigger"].as_str(),
            body["handoff"]["note"].as_str()
        ),
        (
            Some("HANDED_OFF"),
            Some("OPERATOR"),
            Some("Call back before noon")
        ),
        "{body}"
    );
    let (status, message) = TestApp::send(
        app.rest(Method::POST, &path("/agent-messages"), &app.key)
            .json(&json!({ "content": "Hi, Bram here.", "agent": { "name": "Bram" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(
        (message["role"].as_str(), message["agent"]["name"].as_str()),
        (Some("AGENT"), Some("Bram"))
    );
    let (_, messages) = TestApp::send(app.rest(Method::GET, &path("/messages"), &app.key)).await;
    let roles: Vec<&str> = messages["data"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["USER", "ASSISTANT", "AGENT"], "{messages}");

    // Another organization sees none of it.
    let (_, other_key) = app.create_org("Other").await;
    let (status, _) = TestApp::send(app.rest(Method::POST, &path("/handoff"), &other_key)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = TestApp::send(app.rest(Method::DELETE, &path("/handoff"), &app.key)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("BOT")),
        "{body}"
    );
    let (status, body) = TestApp::send(app.rest(Method::POST, &path("/close"), &app.key)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("CLOSED")),
        "{body}"
    );
    let (status, body) = TestApp::send(app.rest(Method::POST, &path("/handoff"), &app.key)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "CONVERSATION_CLOSED"),
        "{body}"
    );
}
