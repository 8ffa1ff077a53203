//! OAuth apps and widget tokens: minting, what a token may and may not do, its visitor and
//! assistant binding, origins and CORS, expiry, signatures, key rotation and revocation.

use companin::auth::{
    jwt::SigningKeys,
    widget_token::{self, AUDIENCE, ISSUER, WidgetClaims},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code},
    ws_support::Ws,
};

const SHOP: &str = "https://shop.example";

/// An OAuth app of the first organization bound by default to `assistant`.
async fn oauth_app(app: &TestApp, assistant: &str) -> (String, String, String) {
    let data = app
        .gql_ok(
            &app.key,
            "mutation($input: CreateOAuthAppInput!) { createOAuthApp(input: $input) {
                clientSecret app { id clientId allowedOrigins defaultAssistantId status } } }",
            json!({ "input": { "name": "Shop", "allowedOrigins": ["https://Shop.example/"], "defaultAssistantId": assistant } }),
        )
        .await;
    let created = &data["createOAuthApp"];
    assert_eq!(created["app"]["allowedOrigins"], json!([SHOP]));
    assert_eq!(created["app"]["status"], "ACTIVE");
    (
        created["app"]["id"].as_str().expect("id").to_owned(),
        created["app"]["clientId"]
            .as_str()
            .expect("client id")
            .to_owned(),
        created["clientSecret"].as_str().expect("secret").to_owned(),
    )
}

async fn mint(app: &TestApp, body: Value) -> (StatusCode, Value) {
    TestApp::send(
        app.client
            .post(format!("{}/api/v1/widget/token", app.address))
            .json(&body),
    )
    .await
}

/// A request with a widget token (and the shop's origin, as the browser sends it).
fn widget(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("Origin", SHOP)
}

async fn widget_gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let (_, body) = TestApp::send(
        widget(app, Method::POST, "/graphql", token)
            .json(&json!({ "query": query, "variables": variables })),
    )
    .await;
    body
}

#[tokio::test]
async fn a_widget_token_opens_a_session_converses_and_rates_but_does_nothing_else() {
    let app = TestApp::spawn().await;
    let assistant = app
        .assistant(&app.key, json!({ "name": "Shop helper" }))
        .await;
    let other_assistant = app.assistant(&app.key, json!({ "name": "Internal" })).await;
    let (app_id, client_id, secret) = oauth_app(&app, &assistant).await;

    let (status, token) = mint(
        &app,
        json!({ "client_id": client_id, "client_secret": secret }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(
        (token["token_type"].as_str(), token["expires_in"].as_u64()),
        (Some("Bearer"), Some(600))
    );
    assert_eq!(token["assistant_id"], assistant.as_str());
    let visitor = token["visitor_id"].as_str().expect("visitor").to_owned();
    let token = token["access_token"].as_str().expect("token").to_owned();

    let viewer = widget_gql(
        &app,
        &token,
        "{ viewer { scopes widget { appId assistantId visitorId } organization { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        viewer["data"]["viewer"]["widget"],
        json!({ "appId": app_id, "assistantId": assistant, "visitorId": visitor }),
        "{viewer}"
    );
    assert_eq!(viewer["data"]["viewer"]["scopes"], json!([]));

    // The visitor operations.
    let (status, session) =
        TestApp::send(widget(&app, Method::POST, "/api/v1/sessions", &token).json(&json!({})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(
        (
            session["channel"].as_str(),
            session["visitor_id"].as_str(),
            session["assistant_id"].as_str()
        ),
        (
            Some("widget"),
            Some(visitor.as_str()),
            Some(assistant.as_str())
        )
    );
    let session_id = session["id"].as_str().expect("session").to_owned();
    let (status, _) = TestApp::send(
        widget(&app, Method::POST, "/api/v1/contexts", &token)
            .json(&json!({ "session_id": session_id, "traits": { "plan": "pro" } })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let sent = widget_gql(
        &app,
        &token,
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { reply { id conversationId status } } }",
        json!({ "input": { "sessionId": session_id, "message": "Hello!" } }),
    )
    .await;
    let reply = &sent["data"]["sendMessage"]["reply"];
    assert_eq!(reply["status"], "COMPLETE", "{sent}");
    let conversation = reply["conversationId"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let (status, messages) = TestApp::send(widget(
        &app,
        Method::GET,
        &format!("/api/v1/conversations/{conversation}/messages"),
        &token,
    ))
    .await;
    assert_eq!(
        (status, messages["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let rated = widget_gql(
        &app,
        &token,
        "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { rating actor { type id } } }",
        json!({ "input": { "conversationId": conversation, "messageId": reply["id"], "rating": 5, "actor": { "type": "AGENT", "id": "impostor" } } }),
    )
    .await;
    assert_eq!(
        rated["data"]["submitFeedback"],
        json!({ "rating": 5, "actor": { "type": "VISITOR", "id": visitor } }),
        "{rated}"
    );

    // Nothing else: not the organization's other data, not management.
    for path in [
        "/api/v1/assistants",
        "/api/v1/conversations",
        "/analytics/logs",
        "/api/v1/api-keys",
        "/api/v1/knowledge/qas",
    ] {
        let (status, body) = TestApp::send(widget(&app, Method::GET, path, &token)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "FORBIDDEN"),
            "{path}"
        );
    }
    let refused = widget_gql(
        &app,
        &token,
        "mutation { createAssistant(input: { name: \"x\" }) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (status, _) = TestApp::send(
        widget(&app, Method::POST, "/api/v1/sessions", &token)
            .json(&json!({ "assistant_id": other_assistant })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bound to one assistant");

    // Another visitor's session and conversation do not exist for this token.
    let theirs = app
        .session(&app.key, json!({ "assistant_id": assistant }))
        .await;
    let their_id = theirs["id"].as_str().expect("id");
    let (status, body) = TestApp::send(widget(
        &app,
        Method::GET,
        &format!("/api/v1/sessions/{their_id}"),
        &token,
    ))
    .await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    let said = app
        .say(&app.key, json!({ "sessionId": their_id, "message": "Hi" }))
        .await;
    let their_conversation = said["reply"]["conversationId"]
        .as_str()
        .expect("conversation");
    let (status, _) = TestApp::send(widget(
        &app,
        Method::GET,
        &format!("/api/v1/conversations/{their_conversation}"),
        &token,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let sneaky = widget_gql(
        &app,
        &token,
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { reply { id } } }",
        json!({ "input": { "conversationId": their_conversation, "message": "Let me in" } }),
    )
    .await;
    assert_eq!(
        sneaky["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{sneaky}"
    );

    // Another organization's records answer like missing ones.
    let (_, other_key) = app.create_org("Other").await;
    let other_assistant = app.assistant(&other_key, json!({})).await;
    let other_session = app
        .session(&other_key, json!({ "assistant_id": other_assistant }))
        .await;
    let (status, _) = TestApp::send(widget(
        &app,
        Method::GET,
        &format!(
            "/api/v1/sessions/{}",
            other_session["id"].as_str().unwrap_or_default()
        ),
        &token,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The request log names the app.
    let (_, logs) = TestApp::send(app.rest(
        Method::GET,
        "/analytics/logs?endpoint=/api/v1/sessions&limit=100",
        &app.key,
    ))
    .await;
    assert!(
        logs["data"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["app_id"] == app_id.as_str())),
        "{logs}"
    );
}

#[tokio::test]
async fn tokens_are_refused_from_other_origins_and_cors_answers_only_allowed_ones() {
    let app = TestApp::spawn().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let (_, client_id, secret) = oauth_app(&app, &assistant).await;
    let (_, token) = mint(
        &app,
        json!({ "client_id": client_id, "client_secret": secret }),
    )
    .await;
    let token = token["access_token"].as_str().expect("token");

    let (status, body) = TestApp::send(
        app.client
            .post(format!("{}/api/v1/sessions", app.address))
            .bearer_auth(token)
            .header("Origin", "https://evil.example")
            .json(&json!({})),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"));

    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, format!("{}/graphql", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight(SHOP).await.expect("sent");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(SHOP)
    );
    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Over websocket: the token in connection_init; the page's origin checked at the upgrade.
    let mut ws = Ws::connect_with(&app, "graphql-transport-ws", &[("Origin", SHOP)]).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    let mut evil = Ws::connect_with(
        &app,
        "graphql-transport-ws",
        &[("Origin", "https://evil.example")],
    )
    .await;
    evil.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(evil.closed().await.0, 4403);
}

#[tokio::test]
async fn wrong_credentials_expired_forged_unknown_key_and_revoked_app_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let (app_id, client_id, secret) = oauth_app(&app, &assistant).await;

    let (status, body) = mint(
        &app,
        json!({ "client_id": client_id, "client_secret": "cmp_cs_wrong" }),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );

    // OAuth 2.0 form: Basic credentials, grant type checked, RFC 6749 errors.
    let form = |grant: &'static str, secret: &str| {
        app.client
            .post(format!("{}/oauth/token", app.address))
            .basic_auth(&client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type={grant}"))
            .send()
    };
    let ok = form("client_credentials", &secret).await.expect("sent");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let ok: Value = ok.json().await.expect("JSON");
    assert!(
        ok["access_token"]
            .as_str()
            .is_some_and(widget_token::looks_like_jwt)
    );
    let bad_grant: Value = form("password", &secret)
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(bad_grant["error"], "unsupported_grant_type");
    let bad_client = form("client_credentials", "cmp_cs_nope")
        .await
        .expect("sent");
    assert_eq!(bad_client.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad_client.json::<Value>().await.expect("JSON")["error"],
        "invalid_client"
    );

    // Tokens the server did not sign as they are, or that expired.
    let keys = SigningKeys::load_or_generate(&app.settings).expect("the server's keys");
    let now = chrono::Utc::now().timestamp();
    let claims = WidgetClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "vis_someone".into(),
        org: app.org_id.clone(),
        app: app_id.clone(),
        asst: assistant.clone(),
        ext: None,
        iat: now - 700,
        exp: now - 100,
        jti: "expired".into(),
    };
    let expired = widget_token::sign(&keys, &claims).expect("signed");
    let valid = widget_token::sign(
        &keys,
        &WidgetClaims {
            exp: now + 600,
            ..claims.clone()
        },
    )
    .expect("signed");
    let other_settings = companin::config::Settings {
        auth: companin::config::AuthSettings {
            jwt_secret: Some("another secret of at least thirty-two bytes".into()),
            jwt_kid: keys.current().kid.clone(),
            ..app.settings.clone().auth
        },
        ..app.settings.clone()
    };
    let forged = widget_token::sign(
        &SigningKeys::load_or_generate(&other_settings).expect("keys"),
        &WidgetClaims {
            exp: now + 600,
            ..claims.clone()
        },
    )
    .expect("signed");
    let unknown_kid = widget_token::sign(
        &SigningKeys::load_or_generate(&companin::config::Settings {
            auth: companin::config::AuthSettings {
                jwt_kid: "retired".into(),
                ..other_settings.clone().auth
            },
            ..other_settings.clone()
        })
        .expect("keys"),
        &WidgetClaims {
            exp: now + 600,
            ..claims.clone()
        },
    )
    .expect("signed");
    let viewer = "{ viewer { widget { visitorId } } }";
    assert_eq!(
        widget_gql(&app, &valid, viewer, json!({})).await["data"]["viewer"]["widget"]["visitorId"],
        "vis_someone"
    );
    for (token, expected) in [
        (&expired, "expired"),
        (&forged, "signature"),
        (&unknown_kid, "key"),
    ] {
        let body = widget_gql(&app, token, viewer, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains(expected)),
            "{body}"
        );
    }

    // Revoking the app stops its tokens and its minting at once.
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { revokeOAuthApp(id: $id) { status } }",
        json!({ "id": app_id }),
    )
    .await;
    let body = widget_gql(&app, &valid, viewer, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = mint(
        &app,
        json!({ "client_id": client_id, "client_secret": secret }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_verify_until_they_expire() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let old = [7u8; 32];
    let new = [9u8; 32];
    let key_file = |current: &str| {
        json!({ "current": current, "keys": [
            { "kid": "old", "secret": STANDARD.encode(old) },
            { "kid": "new", "secret": STANDARD.encode(new) } ] })
        .to_string()
    };
    let before = TestApp::spawn_with(|s| {
        std::fs::write(s.data_dir.join("jwt-keys.json"), key_file("old")).expect("key file");
    })
    .await;
    let assistant = before.assistant(&before.key, json!({})).await;
    let (_, client_id, secret) = oauth_app(&before, &assistant).await;
    let (_, minted) = mint(
        &before,
        json!({ "client_id": client_id, "client_secret": secret }),
    )
    .await;
    let token = minted["access_token"].as_str().expect("token").to_owned();

    // The operator rotates: `new` signs from now on, `old` still verifies.
    std::fs::write(
        before.settings.data_dir.join("jwt-keys.json"),
        key_file("new"),
    )
    .expect("key file");
    let rotated = before.at(crate::helpers::start(
        before.settings.clone(),
        companin::models::Models::local_defaults(),
        None,
    )
    .await);
    let viewer = "{ viewer { widget { assistantId } } }";
    assert_eq!(
        widget_gql(&rotated, &token, viewer, json!({})).await["data"]["viewer"]["widget"]["assistantId"],
        assistant.as_str()
    );
    let (_, fresh) = mint(
        &rotated,
        json!({ "client_id": client_id, "client_secret": secret }),
    )
    .await;
    let header = fresh["access_token"]
        .as_str()
        .and_then(|t| t.split('.').next())
        .expect("header");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64"),
    )
    .expect("JSON");
    assert_eq!(header["kid"], "new");
}

/// A widget socket initialised with `token` from the shop's page; asserts the ack.
pub async fn widget_socket(app: &TestApp, token: &str) -> Ws {
    let mut ws = Ws::connect_with(app, "graphql-transport-ws", &[("Origin", SHOP)]).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    let ack = ws.recv().await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

#[tokio::test]
async fn an_open_socket_closes_with_4403_once_its_key_or_app_is_revoked_or_its_token_expires() {
    let app = TestApp::spawn().await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let (app_id, _, _) = oauth_app(&app, &assistant).await;
    let keys = SigningKeys::load_or_generate(&app.settings).expect("the server's keys");
    let now = chrono::Utc::now().timestamp();
    let token = |exp: i64| {
        widget_token::sign(
            &keys,
            &WidgetClaims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: "vis_socket".into(),
                org: app.org_id.clone(),
                app: app_id.clone(),
                asst: assistant.clone(),
                ext: None,
                iat: now,
                exp,
                jti: format!("socket-{exp}"),
            },
        )
        .expect("signed")
    };
    let issued = app.issue_key(json!({})).await;
    let key = issued["key"].as_str().expect("key").to_owned();
    let key_id = issued["apiKey"]["id"].as_str().expect("id").to_owned();

    let mut by_key = Ws::ready(&app, &key).await;
    let mut by_app = widget_socket(&app, &token(now + 600)).await;
    let mut expiring = widget_socket(&app, &token(now + 2)).await;
    let viewer = "{ viewer { scopes } }";
    by_key.subscribe("1", viewer, json!({})).await;
    assert_eq!(
        by_key.until_complete("1").await.len(),
        1,
        "works while valid"
    );

    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { revokeApiKey(id: $id) { status } }",
        json!({ "id": key_id }),
    )
    .await;
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { revokeOAuthApp(id: $id) { status } }",
        json!({ "id": app_id }),
    )
    .await;

    // The short token ends its socket when it expires, with nothing asked.
    let (code, reason) = expiring.closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("expired"), "{reason}");

    // Past the few seconds a check is trusted, the next operation finds the revocations.
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    by_key.subscribe("2", viewer, json!({})).await;
    let (code, reason) = by_key.closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("revoked"), "{reason}");
    by_app
        .subscribe("1", "{ viewer { widget { visitorId } } }", json!({}))
        .await;
    let (code, reason) = by_app.closed().await;
    assert_eq!(code, 4403, "{reason}");
}
