//! The authenticator chain's extension point: tokens of the customer's own identity
//! provider verified against its published keys, and a deployment's own authenticator.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use companin::{
    auth::{Authenticator, Credentials, Principal},
    config::ExternalJwtSettings,
    domain::ids::OrgId,
    error::{AppError, AppResult},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, code},
    visitor_answers,
};

pub(crate) const ISSUER: &str = "https://id.shop.example";
pub(crate) const AUDIENCE: &str = "companin-api";

/// RFC 8032 §7.1, test 1 and test 2: Ed25519 seeds and their public keys.
pub(crate) const SEED_1: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub(crate) const PUBLIC_1: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SEED_2: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const PUBLIC_2: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

pub(crate) fn jwk(kid: &str, public_hex: &str) -> Value {
    let x = URL_SAFE_NO_PAD.encode(hex::decode(public_hex).expect("hex"));
    json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig" })
}

/// An EdDSA token signed with `seed` under `kid`.
pub(crate) fn token(seed_hex: &str, kid: &str, claims: &Value) -> String {
    // PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
    let mut der = hex::decode("302e020100300506032b657004220420").expect("hex");
    der.extend(hex::decode(seed_hex).expect("hex"));
    let header = Header {
        kid: Some(kid.to_owned()),
        ..Header::new(Algorithm::EdDSA)
    };
    encode(&header, claims, &EncodingKey::from_ed_der(&der)).expect("signed")
}

/// The test issuer, its keys at `jwks_url`, trusted to name any organization.
pub(crate) fn trusted_issuer(jwks_url: String) -> ExternalJwtSettings {
    ExternalJwtSettings {
        issuer: ISSUER.into(),
        audience: vec![AUDIENCE.into()],
        jwks_url: Some(jwks_url),
        multi_tenant: true,
        ..ExternalJwtSettings::default()
    }
}

/// Serves a key set the test can change.
pub(crate) async fn serve_jwks(keys: Arc<Mutex<Vec<Value>>>) -> String {
    async fn jwks(State(keys): State<Arc<Mutex<Vec<Value>>>>) -> Json<Value> {
        Json(json!({ "keys": *keys.lock().expect("lock") }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let router = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(keys);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/.well-known/jwks.json")
}

#[tokio::test]
async fn tokens_of_the_configured_issuer_act_for_their_visitor_and_bad_ones_are_refused() {
    let keys = Arc::new(Mutex::new(vec![jwk("k1", PUBLIC_1)]));
    let jwks_url = serve_jwks(keys.clone()).await;
    let app = TestApp::spawn_with(|s| {
        s.auth.external_jwt = Some(trusted_issuer(jwks_url));
    })
    .await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "org": app.org_id,
            "assistant": assistant, "iat": now, "exp": now + 300,
        });
        for (name, value) in changes.as_object().expect("object") {
            claims[name] = value.clone();
        }
        claims
    };
    let call = |method: Method, path: &str, token: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(token)
    };

    let good = token(SEED_1, "k1", &claims(json!({})));
    let (status, viewer) = TestApp::send(call(Method::GET, "/api/v1/viewer", &good)).await;
    assert_eq!(status, StatusCode::OK, "{viewer}");
    assert_eq!(viewer["organization"]["id"], app.org_id.as_str());
    assert_eq!(viewer["widget"]["issuer"], ISSUER);
    assert_eq!(viewer["widget"]["visitor_id"], "user-42");
    assert_eq!(viewer["widget"]["assistant_id"], assistant.as_str());
    assert!(viewer["widget"]["app_id"].is_null());

    let (status, session) =
        TestApp::send(call(Method::POST, "/api/v1/sessions", &good).json(&json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["external_user_id"], "user-42");
    assert_eq!(session["assistant_id"], assistant.as_str());
    let (status, refused) = TestApp::send(
        call(Method::POST, "/api/v1/assistants", &good).json(&json!({ "name": "Mine" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    // The issuer rotates: a token of a new key verifies once the set is fetched again.
    keys.lock().expect("lock").push(jwk("k2", PUBLIC_2));
    let rotated = token(SEED_2, "k2", &claims(json!({})));
    let (status, body) = TestApp::send(call(Method::GET, "/api/v1/viewer", &rotated)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let missing_org = OrgId::generate().into_string();
    for (label, bad, expected) in [
        (
            "expired",
            token(SEED_1, "k1", &claims(json!({ "exp": now - 120 }))),
            "expired",
        ),
        (
            "wrong issuer",
            token(
                SEED_1,
                "k1",
                &claims(json!({ "iss": "https://evil.example" })),
            ),
            "not accepted",
        ),
        (
            "wrong audience",
            token(SEED_1, "k1", &claims(json!({ "aud": "another-api" }))),
            "another service",
        ),
        (
            "unknown key",
            token(SEED_1, "k9", &claims(json!({}))),
            "does not publish",
        ),
        (
            "another key under a known kid",
            token(SEED_2, "k1", &claims(json!({}))),
            "signature",
        ),
        (
            "an organization that does not exist",
            token(SEED_1, "k1", &claims(json!({ "org": missing_org }))),
            "does not exist",
        ),
    ] {
        let (status, body) = TestApp::send(call(Method::GET, "/api/v1/viewer", &bad)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}: {body}");
        assert_eq!(code(&body), "UNAUTHENTICATED", "{label}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{label}: {message}");
    }
}

/// A deployment's own policy: some API keys work only from one address.
struct AllowList {
    inner: Arc<dyn Authenticator>,
    only_from: Arc<Mutex<HashMap<String, IpAddr>>>,
}

#[async_trait]
impl Authenticator for AllowList {
    fn name(&self) -> &'static str {
        "api_key"
    }

    async fn authenticate(&self, request: &Credentials<'_>) -> AppResult<Option<Principal>> {
        let Some(principal) = self.inner.authenticate(request).await? else {
            return Ok(None);
        };
        let allowed = principal
            .key_id()
            .and_then(|key| self.only_from.lock().ok()?.get(key).copied());
        match allowed {
            Some(ip) if request.peer != Some(ip) => Err(AppError::Forbidden(format!(
                "this key may only be used from {ip}"
            ))),
            _ => Ok(Some(principal)),
        }
    }
}

#[tokio::test]
async fn a_deployment_adds_its_own_authenticator_without_touching_the_handlers() {
    let only_from = Arc::new(Mutex::new(HashMap::new()));
    let restrictions = only_from.clone();
    let app = TestApp::spawn_with_auth(move |chain| {
        chain.wrap("api_key", |inner| AllowList {
            inner,
            only_from: restrictions,
        })
    })
    .await;
    let office = app.issue_key(json!({ "name": "office" })).await;
    let office_key = office["key"].as_str().expect("key").to_owned();
    only_from.lock().expect("lock").insert(
        office["apiKey"]["id"].as_str().expect("id").to_owned(),
        "10.0.0.7".parse().expect("ip"),
    );

    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants", &office_key)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10.0.0.7")
    );
    let (code_, _) = app
        .gql_err(&office_key, "{ viewer { scopes } }", json!({}))
        .await;
    assert_eq!(code_, "FORBIDDEN", "the same chain guards GraphQL");
    let (status, _) = TestApp::send(app.rest(Method::GET, "/api/v1/assistants", &app.key)).await;
    assert_eq!(status, StatusCode::OK, "other keys are unaffected");

    // The authenticator sees the client's real address: from loopback, the key works.
    only_from.lock().expect("lock").insert(
        office["apiKey"]["id"].as_str().expect("id").to_owned(),
        "127.0.0.1".parse().expect("ip"),
    );
    let (status, body) =
        TestApp::send(app.rest(Method::GET, "/api/v1/assistants", &office_key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_visitor_of_the_customers_identity_provider_is_answered_from_knowledge() {
    let jwks_url = serve_jwks(Arc::new(Mutex::new(vec![jwk("k1", PUBLIC_1)]))).await;
    let app = TestApp::spawn_with(|s| {
        s.auth.external_jwt = Some(trusted_issuer(jwks_url));
    })
    .await;
    let (qa, doc) = visitor_answers::knowledge(&app).await;
    let assistant = app.assistant(&app.key, json!({})).await;
    let now = chrono::Utc::now().timestamp();
    let visitor = token(
        SEED_1,
        "k1",
        &json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "user-7", "org": app.org_id,
            "assistant": assistant, "iat": now, "exp": now + 300 }),
    );
    let call = |method: Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.address))
            .bearer_auth(&visitor)
    };
    let (status, session) =
        TestApp::send(call(Method::POST, "/api/v1/sessions").json(&json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");

    let ask = |message: &'static str| {
        TestApp::send(
            call(Method::POST, "/api/v1/conversations/send-message")
                .json(&json!({ "session_id": session["id"], "message": message })),
        )
    };
    let (status, sent) = ask("What is the refund window").await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(
        sent["reply"]["content"],
        visitor_answers::REFUND_ANSWER,
        "{sent}"
    );
    assert_eq!(sent["reply"]["citations"][0]["source_id"], qa.as_str());
    let (_, sent) = ask("Do you ship to the Netherlands?").await;
    assert!(
        sent["reply"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("Belgium and the Netherlands")),
        "{sent}"
    );
    assert_eq!(sent["reply"]["citations"][0]["source_id"], doc.as_str());

    // A draft is tried with API keys: a visitor may not pin it, only the live version.
    app.gql_ok(
        &app.key,
        "mutation($id: ID!) { updateAssistant(id: $id, input: { instructions: \"Draft.\" }, promote: false) { version } }",
        json!({ "id": assistant }),
    )
    .await;
    let pin = |version: i64| {
        TestApp::send(call(Method::POST, "/api/v1/conversations/send-message").json(
            &json!({ "session_id": session["id"], "message": "Hi", "assistant_version": version }),
        ))
    };
    let (status, refused) = pin(2).await;
    assert_eq!(
        (status, code(&refused)),
        (StatusCode::FORBIDDEN, "FORBIDDEN"),
        "{refused}"
    );
    let (status, live) = pin(1).await;
    assert_eq!(status, StatusCode::OK, "{live}");

    let (status, body) = TestApp::send(
        call(Method::POST, "/api/v1/knowledge/search").json(&json!({ "query": "refund" })),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "FORBIDDEN"),
        "{body}"
    );
}

#[tokio::test]
async fn an_issuer_without_an_organization_starts_only_when_trusted_to_name_any() {
    let app = TestApp::spawn().await;
    let db = companin::db::connect(&app.settings).await.expect("db");
    let settings = ExternalJwtSettings {
        issuer: ISSUER.into(),
        audience: vec![AUDIENCE.into()],
        jwks_url: Some("http://127.0.0.1:9/.well-known/jwks.json".into()),
        ..ExternalJwtSettings::default()
    };
    let Err(refused) = companin::auth::ExternalJwtAuthenticator::from_settings(&settings, db).await
    else {
        panic!("an issuer that may name any organization started without being trusted to");
    };
    assert!(
        refused
            .to_string()
            .contains("COMPANIN_EXTERNAL_JWT__MULTI_TENANT=true"),
        "{refused}"
    );
}
