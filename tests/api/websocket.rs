//! The `graphql-transport-ws` protocol to the letter, with raw frames: close codes, pings,
//! errors, credentials, and the legacy `graphql-ws` protocol.

use serde_json::json;

use crate::{
    conversation_support::{CHAT, events, whole_reply, with_events},
    helpers::TestApp,
    ws_support::Ws,
};

#[tokio::test]
async fn each_protocol_violation_closes_the_socket_with_its_code() {
    let app = TestApp::spawn_with(|s| s.http.ws_init_timeout_seconds = 1).await;
    let key = app.key.clone();

    let mut ws = Ws::connect(&app).await;
    ws.subscribe("1", "{ viewer { organization { id } } }", json!({}))
        .await;
    assert_eq!(ws.closed().await, (4401, "Unauthorized".into()));

    let mut ws = Ws::connect(&app).await;
    ws.send(json!({"type": "connection_init", "payload": {"X-API-Key": "cmp_live_nope"}}))
        .await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.starts_with("Forbidden"), "{reason}");

    let mut ws = Ws::ready(&app, &key).await;
    ws.send(json!({"type": "connection_init", "payload": {"X-API-Key": key}}))
        .await;
    assert_eq!(
        ws.closed().await,
        (4429, "Too many initialisation requests".into())
    );

    for garbage in [
        "not json",
        r#"{"type": "bogus"}"#,
        r#"{"type": "subscribe", "id": "1"}"#,
    ] {
        let mut ws = Ws::ready(&app, &key).await;
        ws.send_text(garbage).await;
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4400, "{garbage}: {reason}");
    }

    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let sent = app
        .say(&key, json!({"sessionId": session["id"], "message": "hi"}))
        .await;
    let mut ws = Ws::ready(&app, &key).await;
    let watch = "subscription($id: ID!) { conversationEvents(conversationId: $id) { __typename } }";
    let vars = json!({"id": sent["reply"]["conversationId"]});
    ws.subscribe("same", watch, vars.clone()).await;
    ws.subscribe("same", watch, vars).await;
    assert_eq!(
        ws.closed().await,
        (4409, "Subscriber for same already exists".into())
    );

    let mut ws = Ws::connect(&app).await;
    assert_eq!(
        ws.closed().await,
        (4408, "Connection initialisation timeout".into())
    );
}

#[tokio::test]
async fn pings_are_answered_errors_are_reported_and_the_connection_goes_on() {
    let app = TestApp::spawn().await;
    let mut ws = Ws::ready(&app, &app.key).await;
    ws.send(json!({"type": "ping", "payload": {"n": 1}})).await;
    assert_eq!(
        ws.recv().await,
        json!({"type": "pong", "payload": {"n": 1}})
    );

    ws.subscribe("bad", "subscription { nope }", json!({}))
        .await;
    let error = ws.recv().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "bad");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // A failing resolver is a result with errors, then complete.
    ws.subscribe(
        "missing",
        "subscription { replyStream(messageId: \"msg_0192aaaaaaaaaaaaaaaaaaaaaaaaaaaa\") { __typename } }",
        json!({}),
    )
    .await;
    let payloads = ws.until_complete("missing").await;
    assert_eq!(
        payloads[0]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{payloads:?}"
    );

    // Queries work over the socket too, and the id is free again once complete.
    for _ in 0..2 {
        ws.subscribe("q", "{ viewer { organization { id } } }", json!({}))
            .await;
        let payloads = ws.until_complete("q").await;
        assert_eq!(
            payloads[0]["data"]["viewer"]["organization"]["id"],
            app.org_id
        );
    }
    ws.subscribe("done", "{ viewer { organization { id } } }", json!({}))
        .await;
    ws.send(json!({"id": "done", "type": "complete"})).await;
    ws.close().await;
}

#[tokio::test]
async fn credentials_may_come_in_the_upgrade_request_headers() {
    let app = TestApp::spawn().await;
    let mut ws = Ws::connect_with(&app, "graphql-transport-ws", &[("X-API-Key", &app.key)]).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_streams_a_reply() {
    let app = TestApp::spawn().await;
    let key = app.key.clone();
    let assistant = app.assistant(&key, json!({})).await;
    let session = app.session(&key, json!({"assistant_id": assistant})).await;
    let mut ws = Ws::connect_with(&app, "graphql-ws", &[]).await;
    ws.send(json!({"type": "connection_init", "payload": {"X-API-Key": key}}))
        .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.send(json!({"id": "1", "type": "start", "payload": {
        "query": with_events(CHAT),
        "variables": {"input": {"sessionId": session["id"], "message": "hello"}}}}))
        .await;
    let mut payloads = Vec::new();
    loop {
        let frame = ws.recv().await;
        match frame["type"].as_str() {
            Some("data") => payloads.push(frame["payload"].clone()),
            Some("complete") => break,
            Some("ka") => {}
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
    let (text, reply) = whole_reply(&events(&payloads, "chat"));
    assert_eq!(reply["content"], text);
    assert_eq!(reply["status"], "COMPLETE");
}
