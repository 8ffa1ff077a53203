//! The isolation matrix: every GraphQL root field with an id argument (queries and mutations
//! over HTTP, subscriptions over websocket) and every JSON operation of the REST layer's
//! OpenAPI document with an id in its path, query or body, called by each kind of caller
//! (live key, sandbox key, widget token, external JWT) with another organization's ids, must
//! answer exactly as for a well-formed id that does not exist: same status, same code, same
//! message, same data. The cases are generated from the schema and the document, so a new
//! field or route with an id is walked the day it is added. Not walked: ids in nested fields'
//! arguments, uploads, form-encoded routes.

use std::{collections::BTreeMap, time::Duration};

use companin::{db, services};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::{
    external_auth::{AUDIENCE, ISSUER, PUBLIC_1, SEED_1, jwk, serve_jwks, token, trusted_issuer},
    helpers::TestApp,
    isolation_cases::{
        INTROSPECTION, KINDS, Place, Records, RestCase, Schema, differ, field_case, kind_of,
        masked, missing, normalized, rest_case, rest_kind, shape, with_id,
    },
    webhook_support::Receiver,
    ws_support::Ws,
};

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Who calls.
struct Caller {
    label: &'static str,
    /// The caller's own records (its other id slots are filled with them).
    own: Records,
    credential: Credential,
}

enum Credential {
    Key(String),
    Bearer {
        token: String,
        origin: Option<String>,
    },
}

impl Caller {
    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.credential {
            Credential::Key(key) => request.header("X-API-Key", key),
            Credential::Bearer { token, origin } => {
                let request = request.bearer_auth(token);
                match origin {
                    Some(origin) => request.header("Origin", origin),
                    None => request,
                }
            }
        }
    }

    fn init_payload(&self) -> Value {
        match &self.credential {
            Credential::Key(key) => json!({ "X-API-Key": key }),
            Credential::Bearer { token, .. } => {
                json!({ "Authorization": format!("Bearer {token}") })
            }
        }
    }

    fn origin(&self) -> Option<&str> {
        match &self.credential {
            Credential::Bearer {
                origin: Some(origin),
                ..
            } => Some(origin.as_str()),
            _ => None,
        }
    }
}

/// How the walk went.
#[derive(Default)]
struct Tally {
    cases: usize,
    graphql: usize,
    rest: usize,
    subscriptions: usize,
    /// By caller: cases whose answers said the record was not found (404, `NOT_FOUND` or
    /// null), and all its cases.
    not_found: BTreeMap<&'static str, (usize, usize)>,
    /// Root fields and operations that take no id.
    without_ids: Vec<String>,
    mismatches: Vec<String>,
}

impl Tally {
    /// Records a case: the answers for the foreign id and the missing one, and, when they
    /// differed, the missing one's asked again: what changes between two identical calls
    /// (counts of the caller's own requests) is left out of the comparison.
    fn record(
        &mut self,
        caller: &'static str,
        label: String,
        (foreign, absent, again): (Value, Value, Option<Value>),
        tested: &[&str],
    ) {
        self.cases += 1;
        let (mut foreign, mut absent) = (normalized(&foreign, tested), normalized(&absent, tested));
        if let Some(again) = again {
            let again = normalized(&again, tested);
            (foreign, absent) = if shape(&absent) == shape(&again) {
                // Counts of the caller's own requests moved, and rows sorted by them with
                // them: compare what is there, not how many.
                (shape(&foreign), shape(&absent))
            } else {
                (
                    masked(&foreign, &absent, &again),
                    masked(&absent, &absent, &again),
                )
            };
        }
        let text = absent.to_string();
        let counts = self.not_found.entry(caller).or_default();
        counts.1 += 1;
        if absent["status"] == 404 || text.contains("NOT_FOUND") || text.contains(":null") {
            counts.0 += 1;
        }
        if foreign != absent {
            self.mismatches.push(format!(
                "{label}\n  foreign: {foreign}\n  absent:  {absent}"
            ));
        }
    }
}

async fn graphql(app: &TestApp, caller: &Caller, operation: &str, variables: &Value) -> Value {
    let request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": operation, "variables": variables }));
    let (status, body) = TestApp::send(caller.authorize(request)).await;
    json!({ "status": status.as_u16(), "body": body })
}

/// A subscription's first answer (or `open` when none came in time).
async fn subscription(app: &TestApp, caller: &Caller, operation: &str, variables: &Value) -> Value {
    let headers: Vec<(&str, &str)> = caller.origin().map(|o| ("Origin", o)).into_iter().collect();
    let mut ws = Ws::connect_with(app, "graphql-transport-ws", &headers).await;
    ws.send(json!({ "type": "connection_init", "payload": caller.init_payload() }))
        .await;
    let mut socket = ws.into_inner();
    let ack = next_frame(&mut socket).await;
    if ack["type"] != "connection_ack" {
        return json!({ "refused": ack });
    }
    let subscribe = json!({ "id": "1", "type": "subscribe",
        "payload": { "query": operation, "variables": variables } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .expect("subscribe sent");
    let first = next_frame(&mut socket).await;
    let _ = socket.close(None).await;
    first
}

/// The next frame as JSON: a text frame, `{"closed": code}`, or `"open"` when none came
/// within three seconds (a refusal comes at once).
async fn next_frame(socket: &mut WsStream) -> Value {
    loop {
        let Ok(message) = tokio::time::timeout(Duration::from_secs(3), socket.next()).await else {
            return json!("open");
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                return json!({ "type": frame["type"], "payload": frame["payload"] });
            }
            Some(Ok(Message::Close(frame))) => {
                return json!({ "closed": frame.map(|f| u16::from(f.code)) });
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return json!({ "closed": null }),
        }
    }
}

async fn walk_graphql(
    app: &TestApp,
    schema: &Schema,
    roots: &[(&str, String)],
    caller: &Caller,
    victim: &Records,
    tally: &mut Tally,
) {
    for (keyword, root) in roots {
        for field in schema.types[root]["fields"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(case) = field_case(schema, keyword, field, &caller.own) else {
                continue;
            };
            if case.slots.is_empty() {
                if caller.label == "live key" {
                    tally.without_ids.push(case.label.clone());
                }
                continue;
            }
            for slot_at in &case.slots {
                let slot = slot_at.path.last().cloned().unwrap_or_default();
                let field_name = field["name"].as_str().unwrap_or_default();
                let kinds: Vec<&str> = match kind_of(&slot, field_name) {
                    Some(kind) => vec![kind],
                    None => KINDS.to_vec(),
                };
                for kind in kinds {
                    let (theirs, absent) = (&victim[kind], missing(kind));
                    let foreign_vars = with_id(&case.variables, &case.slots, slot_at, theirs);
                    let absent_vars = with_id(&case.variables, &case.slots, slot_at, &absent);
                    let (foreign, answer) = match *keyword {
                        "subscription" => {
                            tally.subscriptions += 1;
                            (
                                subscription(app, caller, &case.operation, &foreign_vars).await,
                                subscription(app, caller, &case.operation, &absent_vars).await,
                            )
                        }
                        _ => {
                            tally.graphql += 1;
                            (
                                graphql(app, caller, &case.operation, &foreign_vars).await,
                                graphql(app, caller, &case.operation, &absent_vars).await,
                            )
                        }
                    };
                    let tested = [theirs.as_str(), absent.as_str()];
                    let again =
                        match differ(&foreign, &answer, &tested) && *keyword != "subscription" {
                            true => Some(graphql(app, caller, &case.operation, &absent_vars).await),
                            false => None,
                        };
                    let label = format!(
                        "{} · {} · {} = {kind}…",
                        caller.label,
                        case.label,
                        slot_at.path.join(".")
                    );
                    tally.record(caller.label, label, (foreign, answer, again), &tested);
                }
            }
        }
    }
}

async fn rest_call(
    app: &TestApp,
    caller: &Caller,
    case: &RestCase,
    slot: &str,
    place: Place,
    id: &str,
) -> Value {
    let mut path = case.path.clone();
    for (name, value) in &case.path_values {
        let value = if place == Place::Path && name == slot {
            id
        } else {
            value
        };
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let mut query = case.query.clone();
    let mut body = case.body.clone();
    // Every other optional id is left out: the caller's own id beside it must not decide
    // the answer first.
    for (other, other_place, optional) in &case.slots {
        if *optional && other != slot {
            match other_place {
                Place::Query => {
                    query.remove(other);
                }
                Place::Body { .. } => {
                    if let Some(object) = body.as_mut().and_then(Value::as_object_mut) {
                        object.remove(other);
                    }
                }
                Place::Path => {}
            }
        }
    }
    if place == Place::Query {
        query.insert(slot.to_owned(), id.to_owned());
    }
    let mut request = app
        .client
        .request(case.method.clone(), format!("{}{path}", app.address))
        .query(&query);
    if let Some(mut body) = body {
        if let Place::Body { list } = place {
            body[slot] = if list { json!([id]) } else { json!(id) };
        }
        request = request.json(&body);
    }
    let (status, body) = TestApp::send(caller.authorize(request)).await;
    json!({ "status": status.as_u16(), "body": body })
}

async fn walk_rest(
    app: &TestApp,
    doc: &Value,
    caller: &Caller,
    victim: &Records,
    tally: &mut Tally,
) {
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "put", "post", "delete", "patch"] {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            let case = rest_case(doc, path, method, op, &caller.own);
            if case.slots.is_empty() {
                if caller.label == "live key" {
                    tally.without_ids.push(case.label.clone());
                }
                continue;
            }
            for (slot, place, _) in &case.slots {
                let kinds: Vec<&str> = match rest_kind(slot, path) {
                    Some(kind) => vec![kind],
                    None => KINDS.to_vec(),
                };
                for kind in kinds {
                    let (theirs, absent) = (&victim[kind], missing(kind));
                    tally.rest += 1;
                    let foreign = rest_call(app, caller, &case, slot, *place, theirs).await;
                    let answer = rest_call(app, caller, &case, slot, *place, &absent).await;
                    let tested = [theirs.as_str(), absent.as_str()];
                    let again = match differ(&foreign, &answer, &tested) {
                        true => Some(rest_call(app, caller, &case, slot, *place, &absent).await),
                        false => None,
                    };
                    let label = format!("{} · {} · {slot} = {kind}…", caller.label, case.label);
                    tally.record(caller.label, label, (foreign, answer, again), &tested);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The organizations and their records.

/// One record of every kind in the organization of admin `key`.
async fn seed(app: &TestApp, org: &str, key: &str, hooks: &str) -> Records {
    let mut ids = Records::new();
    ids.insert("org_", org.to_owned());
    let assistant = app.assistant(key, json!({ "name": "Helper" })).await;
    ids.insert("asst_", assistant.clone());
    let versions = app
        .gql_ok(
            key,
            "query($id: ID!) { assistant(id: $id) { versions(first: 1) { nodes { id } } } }",
            json!({ "id": assistant }),
        )
        .await;
    ids.insert(
        "ver_",
        text(&versions["assistant"]["versions"]["nodes"][0]["id"]),
    );
    let source = app
        .uploaded(
            key,
            "returns.txt",
            "Returns are accepted within 30 days of delivery.",
        )
        .await;
    ids.insert("ks_", text(&source["id"]));
    let session = app.session(key, json!({ "assistant_id": assistant })).await;
    let context = app
        .gql_ok(
            key,
            "mutation($input: AttachContextInput!) { attachContext(input: $input) { id } }",
            json!({ "input": { "sessionId": session["id"], "traits": { "plan": "pro" } } }),
        )
        .await;
    ids.insert("ctx_", text(&context["attachContext"]["id"]));
    let (_, sent) = TestApp::send(
        app.rest(Method::POST, "/api/v1/conversations/send-message", key)
            .json(&json!({ "session_id": session["id"], "message": "How long do returns take?" })),
    )
    .await;
    ids.insert("sess_", text(&session["id"]));
    ids.insert("conv_", text(&sent["reply"]["conversation_id"]));
    ids.insert("msg_", text(&sent["reply"]["id"]));
    let feedback = app
        .gql_ok(
            key,
            "mutation($input: FeedbackInput!) { submitFeedback(input: $input) { id } }",
            json!({ "input": { "conversationId": ids["conv_"], "messageId": ids["msg_"], "rating": 1 } }),
        )
        .await;
    ids.insert("fb_", text(&feedback["submitFeedback"]["id"]));
    // The low rating opens a knowledge gap, in the background.
    let mut gap = Value::Null;
    for _ in 0..100 {
        let gaps = app
            .gql_ok(key, "{ knowledgeGaps { nodes { id } } }", json!({}))
            .await;
        gap = gaps["knowledgeGaps"]["nodes"][0]["id"].clone();
        if !gap.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ids.insert("gap_", text(&gap));
    let created = app
        .gql_ok(
            key,
            "mutation { createApiKey(input: { name: \"spare\" }) { apiKey { id } } }",
            json!({}),
        )
        .await;
    ids.insert("key_", text(&created["createApiKey"]["apiKey"]["id"]));
    let oauth = app
        .gql_ok(
            key,
            "mutation($input: CreateOAuthAppInput!) { createOAuthApp(input: $input) { clientSecret app { id clientId } } }",
            json!({ "input": { "name": "Shop", "allowedOrigins": [SHOP], "defaultAssistantId": assistant } }),
        )
        .await;
    ids.insert("app_", text(&oauth["createOAuthApp"]["app"]["id"]));
    ids.insert(
        "client_id",
        text(&oauth["createOAuthApp"]["app"]["clientId"]),
    );
    ids.insert(
        "client_secret",
        text(&oauth["createOAuthApp"]["clientSecret"]),
    );
    let (webhook, _) = app.webhook(key, hooks, json!(["knowledge.ready"])).await;
    let delivery = app
        .gql_ok(
            key,
            "mutation($id: ID!) { testWebhook(id: $id) { id event { id } } }",
            json!({ "id": webhook }),
        )
        .await;
    ids.insert("wh_", webhook);
    ids.insert("whd_", text(&delivery["testWebhook"]["id"]));
    ids.insert("evt_", text(&delivery["testWebhook"]["event"]["id"]));
    for kind in KINDS {
        assert!(ids[kind].starts_with(kind), "seeded {kind}: {ids:?}");
    }
    ids
}

/// The records a visitor makes itself (a session, its conversation and reply, feedback, a
/// context), over `own` for the rest.
async fn visitor_records(app: &TestApp, caller: &Caller) -> Records {
    let mut own = caller.own.clone();
    let call = |method: Method, path: &str, body: Value| {
        caller
            .authorize(app.client.request(method, format!("{}{path}", app.address)))
            .json(&body)
    };
    let (status, session) = TestApp::send(call(Method::POST, "/api/v1/sessions", json!({}))).await;
    assert_eq!(status, 201, "{} opens a session: {session}", caller.label);
    let (status, sent) = TestApp::send(call(
        Method::POST,
        "/api/v1/conversations/send-message",
        json!({ "session_id": session["id"], "message": "How long do returns take?" }),
    ))
    .await;
    assert_eq!(status, 200, "{} sends a message: {sent}", caller.label);
    own.insert("sess_", text(&session["id"]));
    own.insert("conv_", text(&sent["reply"]["conversation_id"]));
    own.insert("msg_", text(&sent["reply"]["id"]));
    let (status, feedback) = TestApp::send(call(
        Method::POST,
        &format!("/api/v1/conversations/{}/feedback", own["conv_"]),
        json!({ "rating": 5, "message_id": own["msg_"] }),
    ))
    .await;
    assert!(status.is_success(), "{} rates: {feedback}", caller.label);
    own.insert("fb_", text(&feedback["id"]));
    let (status, context) = TestApp::send(call(
        Method::POST,
        "/api/v1/contexts",
        json!({ "session_id": own["sess_"], "traits": { "plan": "pro" } }),
    ))
    .await;
    if status.is_success() {
        own.insert("ctx_", text(&context["id"]));
    }
    own
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

const SHOP: &str = "https://shop.example";

/// The least share of a caller's cases whose answers say the record was not found.
const MIN_NOT_FOUND_PERCENT: usize = 50;

/// What the victim organization holds, as its own admin sees it.
async fn holdings(app: &TestApp, key: &str, records: &Records) -> Value {
    let mut seen = Vec::new();
    for kind in KINDS.into_iter().filter(|k| *k != "org_") {
        let data = app
            .gql_ok(
                key,
                "query($id: ID!) { node(id: $id) { __typename id } }",
                json!({ "id": records[kind] }),
            )
            .await;
        seen.push(data["node"].clone());
    }
    let lists = app
        .gql_ok(
            key,
            "{ assistants { nodes { id name active latestVersion linkedSourceIds excludedSourceIds } }
               apiKeys { id revokedAt } oauthApps { id status revokedAt }
               webhooks { id enabled url updatedAt } rateLimit { limit windowSeconds } }",
            json!({}),
        )
        .await;
    json!({ "nodes": seen, "lists": lists })
}

#[tokio::test]
async fn no_field_or_route_tells_another_organizations_record_from_a_missing_one() {
    let keys = std::sync::Arc::new(std::sync::Mutex::new(vec![jwk("k1", PUBLIC_1)]));
    let jwks_url = serve_jwks(keys).await;
    let app = TestApp::spawn_with(|s| {
        s.ingestion.allow_private_urls = true;
        s.auth.external_jwt = Some(trusted_issuer(jwks_url));
    })
    .await;
    let hooks = Receiver::start(0).await;
    let (victim_org, victim_key) = app.create_org("Globex").await;
    let victim = seed(&app, &victim_org, &victim_key, &hooks.url).await;
    let before = holdings(&app, &victim_key, &victim).await;

    let own = seed(&app, &app.org_id, &app.key, &hooks.url).await;
    let database = db::connect(&app.settings).await.expect("db");
    let (sandbox_org, sandbox_key) = services::organizations::create(&database, "Sandbox", true)
        .await
        .expect("sandbox organization");
    let sandbox_own = seed(&app, &sandbox_org.id, &sandbox_key.key, &hooks.url).await;
    let (status, minted) = TestApp::send(
        app.client
            .post(format!("{}/api/v1/widget/token", app.address))
            .json(&json!({ "client_id": own["client_id"], "client_secret": own["client_secret"] })),
    )
    .await;
    assert_eq!(status, 200, "{minted}");
    let now = chrono::Utc::now().timestamp();
    let jwt = token(
        SEED_1,
        "k1",
        &json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "org": app.org_id,
            "assistant": own["asst_"], "iat": now, "exp": now + 3600 }),
    );
    // Visitors first, while the widget token is fresh; each visitor's other id slots hold
    // records it made itself (a visitor sees no one else's sessions).
    let mut callers = vec![
        Caller {
            label: "widget token",
            own: own.clone(),
            credential: Credential::Bearer {
                token: text(&minted["access_token"]),
                origin: Some(SHOP.into()),
            },
        },
        Caller {
            label: "external JWT",
            own: own.clone(),
            credential: Credential::Bearer {
                token: jwt,
                origin: None,
            },
        },
    ];
    for caller in &mut callers {
        caller.own = visitor_records(&app, caller).await;
    }
    callers.extend([
        Caller {
            label: "live key",
            own,
            credential: Credential::Key(app.key.clone()),
        },
        Caller {
            label: "sandbox key",
            own: sandbox_own,
            credential: Credential::Key(sandbox_key.key.clone()),
        },
    ]);

    let introspected = app.gql_ok(&app.key, INTROSPECTION, json!({})).await;
    let schema = Schema {
        types: introspected["__schema"]["types"]
            .as_array()
            .expect("types")
            .iter()
            .map(|t| (text(&t["name"]), t.clone()))
            .collect(),
    };
    let roots: Vec<(&str, String)> = [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ]
    .into_iter()
    .map(|(keyword, root)| (keyword, text(&introspected["__schema"][root]["name"])))
    .collect();
    let (status, doc) = TestApp::send(
        app.client
            .get(format!("{}/api/v1/openapi.json", app.address)),
    )
    .await;
    assert_eq!(status, 200);

    let mut tally = Tally::default();
    for caller in &callers {
        walk_graphql(&app, &schema, &roots, caller, &victim, &mut tally).await;
        walk_rest(&app, &doc, caller, &victim, &mut tally).await;
    }
    eprintln!(
        "isolation matrix: {} cases ({} GraphQL over HTTP, {} subscriptions, {} REST) for {} \
         callers; answered not found (of all) by caller: {:?}; without ids: {}",
        tally.cases,
        tally.graphql,
        tally.subscriptions,
        tally.rest,
        callers.len(),
        tally.not_found,
        tally.without_ids.join(", ")
    );
    assert!(
        tally.mismatches.is_empty(),
        "{} of {} cases told a foreign record from a missing one:\n{}",
        tally.mismatches.len(),
        tally.cases,
        tally
            .mismatches
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(tally.graphql > 100 && tally.rest > 100 && tally.subscriptions >= 12);
    // The cases reach the records they name: most answers say "not found" rather than
    // stopping earlier (a refused credential, an invalid value).
    for (caller, (found_missing, cases)) in &tally.not_found {
        assert!(
            found_missing * 100 >= cases * MIN_NOT_FOUND_PERCENT,
            "{caller}: only {found_missing} of {cases} cases reached a record lookup"
        );
    }
    assert_eq!(
        holdings(&app, &victim_key, &victim).await,
        before,
        "nothing of the victim organization changed"
    );
}
