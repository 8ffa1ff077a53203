//! The product's main path: an organization's knowledge answers its visitors, whatever
//! transport and credential they use — a widget token over REST, GraphQL over HTTP and the
//! websocket `chat` subscription — while the visitor still reaches nothing but its own
//! conversations.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    conversation_support::{CHAT, events, whole_reply, with_events},
    helpers::{TestApp, code},
    ws_support::Ws,
};

const SHOP: &str = "https://shop.example";
pub const REFUND_QUESTION: &str = "What is the refund window?";
pub const REFUND_ANSWER: &str = "Refunds are accepted within 30 days of delivery.";
const SHIPPING_DOC: &str = "# Shipping\n\nWe ship to Belgium and the Netherlands from our \
    warehouse in Ghent. Parcels arrive within two working days.\n\n# Gift cards\n\n\
    Gift cards never expire and can be used in every shop.";

/// The organization's knowledge: a Q&A pair and an indexed document. Returns their ids.
pub async fn knowledge(app: &TestApp) -> (String, String) {
    let qa = app
        .create_qa(&app.key, REFUND_QUESTION, REFUND_ANSWER)
        .await;
    assert_eq!(app.settled(&app.key, &qa).await["status"], "READY");
    let (status, doc) = app
        .upload(
            &app.key,
            "shipping.md",
            SHIPPING_DOC.as_bytes().to_vec(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doc}");
    let doc = doc["id"].as_str().expect("source id").to_owned();
    assert_eq!(app.settled(&app.key, &doc).await["status"], "READY");
    (qa, doc)
}

/// A widget token for a new visitor of an OAuth app bound to `assistant`.
pub async fn widget_token(app: &TestApp, assistant: &str) -> String {
    let created = app
        .gql_ok(
            &app.key,
            "mutation($input: CreateOAuthAppInput!) { createOAuthApp(input: $input) {
                clientSecret app { clientId } } }",
            json!({ "input": { "name": "Shop", "allowedOrigins": [SHOP], "defaultAssistantId": assistant } }),
        )
        .await["createOAuthApp"]
        .clone();
    let (status, token) = TestApp::send(
        app.client
            .post(format!("{}/api/v1/widget/token", app.address))
            .json(&json!({
                "client_id": created["app"]["clientId"],
                "client_secret": created["clientSecret"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    token["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

pub fn as_visitor(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("Origin", SHOP)
}

pub async fn visitor_gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    TestApp::send(
        as_visitor(app, Method::POST, "/graphql", token)
            .json(&json!({ "query": query, "variables": variables })),
    )
    .await
    .1
}

#[tokio::test]
async fn a_widget_visitor_is_answered_from_the_organizations_knowledge_on_every_transport() {
    let app = TestApp::spawn().await;
    let (qa, doc) = knowledge(&app).await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;
    let token = widget_token(&app, &assistant).await;
    let (status, session) =
        TestApp::send(as_visitor(&app, Method::POST, "/api/v1/sessions", &token).json(&json!({})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let session = session["id"].as_str().expect("session id").to_owned();

    // REST: the Q&A pair is answered verbatim, as it is for an API key.
    let (status, sent) = TestApp::send(
        as_visitor(
            &app,
            Method::POST,
            "/api/v1/conversations/send-message",
            &token,
        )
        .json(&json!({ "session_id": session, "message": "what is the refund window" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(
        (
            sent["reply"]["content"].as_str(),
            sent["reply"]["model"].as_str()
        ),
        (Some(REFUND_ANSWER), Some("qa-match")),
        "{sent}"
    );
    assert_eq!(sent["reply"]["citations"][0]["source_id"], qa.as_str());

    // GraphQL over HTTP: a reply grounded in the document's passage, citing it.
    let sent = visitor_gql(
        &app,
        &token,
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
            reply { status content citations { sourceId chunkText } } } }",
        json!({ "input": { "sessionId": session, "message": "Which countries do you ship to?" } }),
    )
    .await;
    let reply = &sent["data"]["sendMessage"]["reply"];
    assert_eq!(reply["status"], "COMPLETE", "{sent}");
    assert!(
        reply["content"]
            .as_str()
            .is_some_and(|c| c.contains("Belgium and the Netherlands")),
        "{sent}"
    );
    assert_eq!(reply["citations"][0]["sourceId"], doc.as_str(), "{sent}");

    // The websocket `chat` subscription, authenticated by the widget token in connection_init.
    let mut ws = Ws::connect_with(&app, "graphql-transport-ws", &[("Origin", SHOP)]).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.subscribe(
        "1",
        &with_events(CHAT),
        json!({"input": {"sessionId": session, "message": REFUND_QUESTION}}),
    )
    .await;
    let (text, completed) = whole_reply(&events(&ws.until_complete("1").await, "chat"));
    assert_eq!(text, REFUND_ANSWER);
    assert_eq!(completed["citations"][0]["sourceId"], qa.as_str());
    ws.close().await;

    // Knowledge answers the visitor's questions; the visitor still cannot read it directly,
    // nor the assistant's configuration and drafts.
    let searched = visitor_gql(
        &app,
        &token,
        "{ searchKnowledge(query: \"refund\") { text } }",
        json!({}),
    )
    .await;
    assert_eq!(searched["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (status, body) = TestApp::send(
        as_visitor(&app, Method::POST, "/api/v1/knowledge/search", &token)
            .json(&json!({ "query": "refund" })),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    let drafts = visitor_gql(
        &app,
        &token,
        "query($id: ID!) { assistant(id: $id) { versions { nodes { version } } } }",
        json!({ "id": assistant }),
    )
    .await;
    assert_eq!(drafts["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn a_visitor_sees_only_its_own_conversations_and_messages() {
    let app = TestApp::spawn().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let (mine, theirs) = (
        widget_token(&app, &assistant).await,
        widget_token(&app, &assistant).await,
    );
    let send = |token: String| {
        let app = &app;
        async move {
            let sent = visitor_gql(
                app,
                &token,
                "mutation { sendMessage(input: { message: \"Hello\", sessionId: null }) { reply { id } } }",
                json!({}),
            )
            .await;
            // No session: a clear input error, not a crash.
            assert_eq!(
                sent["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{sent}"
            );
            let (_, session) = TestApp::send(
                as_visitor(app, Method::POST, "/api/v1/sessions", &token).json(&json!({})),
            )
            .await;
            let sent = visitor_gql(
                app,
                &token,
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                    reply { id conversationId } } }",
                json!({ "input": { "sessionId": session["id"], "message": "Hello" } }),
            )
            .await;
            (
                session["id"].as_str().expect("session").to_owned(),
                sent["data"]["sendMessage"]["reply"].clone(),
            )
        }
    };
    let (my_session, my_reply) = send(mine.clone()).await;
    let (their_session, their_reply) = send(theirs).await;
    assert_ne!(my_session, their_session);

    // Their conversation, its messages, one of its messages and its session are not found;
    // my own are.
    for (id, field, query) in [
        (
            &their_reply["conversationId"],
            "conversation",
            "query($id: ID!) { conversation(id: $id) { id } }",
        ),
        (
            &their_reply["id"],
            "message",
            "query($id: ID!) { message(id: $id) { id } }",
        ),
        (
            &json!(their_session),
            "session",
            "query($id: ID!) { session(id: $id) { id } }",
        ),
    ] {
        let found = visitor_gql(&app, &mine, query, json!({ "id": id })).await;
        assert!(
            found["data"][field].is_null() && found.get("errors").is_none(),
            "{field}: {found}"
        );
    }
    let (status, body) = TestApp::send(as_visitor(
        &app,
        Method::GET,
        &format!(
            "/api/v1/conversations/{}/messages",
            their_reply["conversationId"].as_str().unwrap_or_default()
        ),
        &mine,
    ))
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let own = visitor_gql(
        &app,
        &mine,
        "query($id: ID!) { conversation(id: $id) { messages { nodes { role } } } }",
        json!({ "id": my_reply["conversationId"] }),
    )
    .await;
    assert_eq!(
        own["data"]["conversation"]["messages"]["nodes"],
        json!([{ "role": "USER" }, { "role": "ASSISTANT" }]),
        "{own}"
    );
}
