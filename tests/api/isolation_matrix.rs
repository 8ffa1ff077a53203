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
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::{
    external_auth::{AUDIENCE, ISSUER, PUBLIC_1, SEED_1, jwk, serve_jwks, token, trusted_issuer},
    helpers::TestApp,
    webhook_support::Receiver,
    ws_support::Ws,
};

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The id prefixes of the records the matrix passes.
const KINDS: [&str; 14] = [
    "org_", "asst_", "ver_", "ks_", "sess_", "ctx_", "conv_", "msg_", "fb_", "key_", "app_", "wh_",
    "whd_", "evt_",
];

/// One record of each kind of an organization, by prefix.
type Records = BTreeMap<&'static str, String>;

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

/// The kind of record an id slot names, from its name (`assistantId`, `session_id`) or, for
/// a bare `id`, from the field or path it belongs to; `None` when it could be any.
fn kind_of(slot: &str, context: &str) -> Option<&'static str> {
    let slot = slot.to_lowercase().replace('_', "");
    let subject = match slot.as_str() {
        "id" | "ids" => context.to_lowercase(),
        other => other.to_owned(),
    };
    let table: [(&str, &'static str); 13] = [
        ("delivery", "whd_"),
        ("webhook", "wh_"),
        ("event", "evt_"),
        ("feedback", "fb_"),
        ("context", "ctx_"),
        ("message", "msg_"),
        ("reply", "msg_"),
        ("conversation", "conv_"),
        ("session", "sess_"),
        ("assistant", "asst_"),
        ("apikey", "key_"),
        ("oauth", "app_"),
        ("knowledge", "ks_"),
    ];
    let by_name = table
        .iter()
        .find(|(word, _)| subject.contains(word))
        .map(|(_, kind)| *kind);
    by_name.or(match subject.as_str() {
        "keyid" => Some("key_"),
        "appid" => Some("app_"),
        "sourceid" => Some("ks_"),
        _ => None,
    })
}

/// A well-formed id of `kind` that names nothing.
fn missing(kind: &str) -> String {
    format!("{kind}{}", "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b")
}

/// An answer reduced to what a caller could tell apart: the ids under test and every other
/// generated id or time are replaced by placeholders.
fn normalized(value: &Value, tested: &[&str]) -> Value {
    match value {
        Value::String(text) => {
            let mut text = text.clone();
            for id in tested {
                text = text.replace(id, "<tested-id>");
            }
            let looks_like_id = text.split_once('_').is_some_and(|(prefix, hex)| {
                !prefix.is_empty()
                    && prefix.bytes().all(|b| b.is_ascii_lowercase())
                    && hex.len() == 32
                    && hex.bytes().all(|b| b.is_ascii_hexdigit())
            });
            let looks_like_time = text.len() >= 20
                && text.as_bytes().get(4) == Some(&b'-')
                && text.as_bytes().get(10) == Some(&b'T');
            Value::String(if looks_like_id {
                "<id>".into()
            } else if looks_like_time {
                "<time>".into()
            } else {
                text
            })
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalized(v, tested)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match v {
                    // Durations differ from one call to the next.
                    Value::Number(_) if k.ends_with("Ms") || k.ends_with("_ms") => {
                        (k.clone(), json!("<ms>"))
                    }
                    _ => (k.clone(), normalized(v, tested)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether two answers differ once normalized.
fn differ(foreign: &Value, absent: &Value, tested: &[&str]) -> bool {
    normalized(foreign, tested) != normalized(absent, tested)
}

/// `value` with every part where `first` and `second` (the same call made twice) differ
/// replaced by `"<drifts>"`.
fn masked(value: &Value, first: &Value, second: &Value) -> Value {
    if first == second {
        return value.clone();
    }
    match (value, first, second) {
        (Value::Object(map), Value::Object(a), Value::Object(b)) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let (a, b) = (
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    );
                    (k.clone(), masked(v, a, b))
                })
                .collect(),
        ),
        (Value::Array(items), Value::Array(a), Value::Array(b))
            if items.len() == a.len() && a.len() == b.len() =>
        {
            Value::Array(
                items
                    .iter()
                    .zip(a.iter().zip(b))
                    .map(|(v, (a, b))| masked(v, a, b))
                    .collect(),
            )
        }
        _ => json!("<drifts>"),
    }
}

/// `value` with its numbers left out and its arrays sorted.
fn shape(value: &Value) -> Value {
    match value {
        Value::Number(_) => json!("<n>"),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(shape).collect();
            items.sort_by_key(Value::to_string);
            Value::Array(items)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
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

// ---------------------------------------------------------------------------------------
// GraphQL: root fields from introspection.

const INTROSPECTION: &str = "query {
  __schema { queryType { name } mutationType { name } subscriptionType { name }
    types { kind name enumValues { name }
      fields { name args { name type { ...T } } type { ...T } }
      inputFields { name type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name } } } } }";

struct Schema {
    types: BTreeMap<String, Value>,
}

impl Schema {
    fn named(t: &Value) -> &str {
        match t["ofType"].is_object() {
            true => Self::named(&t["ofType"]),
            false => t["name"].as_str().unwrap_or_default(),
        }
    }

    fn signature(t: &Value) -> String {
        match t["kind"].as_str() {
            Some("NON_NULL") => format!("{}!", Self::signature(&t["ofType"])),
            Some("LIST") => format!("[{}]", Self::signature(&t["ofType"])),
            _ => t["name"].as_str().unwrap_or_default().to_owned(),
        }
    }

    fn is_list(t: &Value) -> bool {
        match t["kind"].as_str() {
            Some("NON_NULL") => Self::is_list(&t["ofType"]),
            Some("LIST") => true,
            _ => false,
        }
    }

    fn kind_of(&self, name: &str) -> &str {
        self.types
            .get(name)
            .and_then(|t| t["kind"].as_str())
            .unwrap_or_default()
    }

    /// A value of type `t` for a required argument; `None` when it cannot be sent as JSON
    /// (an upload). Id slots inside are filled with `own` ids and listed in `slots`.
    fn sample(
        &self,
        t: &Value,
        path: Vec<String>,
        context: &str,
        own: &Records,
        slots: &mut Vec<Slot>,
    ) -> Option<Value> {
        let name = Self::named(t);
        if name == "ID" {
            let slot = path.last().cloned().unwrap_or_default();
            let kind = kind_of(&slot, context).unwrap_or("asst_");
            let id = own.get(kind).cloned().unwrap_or_else(|| missing(kind));
            let list = Self::is_list(t);
            slots.push(Slot {
                path,
                list,
                optional: t["kind"] != "NON_NULL",
            });
            return Some(if list { json!([id]) } else { json!(id) });
        }
        if Self::is_list(t) {
            return Some(json!([]));
        }
        match (self.kind_of(name), name) {
            (_, "Upload") => None,
            (_, "String") => Some(json!("x")),
            (_, "Int") => Some(json!(1)),
            (_, "Float") => Some(json!(1.0)),
            (_, "Boolean") => Some(json!(true)),
            (_, "DateTime") => Some(json!("2026-01-01T00:00:00Z")),
            ("ENUM", _) => Some(self.types[name]["enumValues"][0]["name"].clone()),
            ("INPUT_OBJECT", _) => {
                let mut object = Map::new();
                for field in self.types[name]["inputFields"].as_array()? {
                    let field_name = field["name"].as_str().unwrap_or_default();
                    let required = field["type"]["kind"] == "NON_NULL";
                    if !required && Self::named(&field["type"]) != "ID" {
                        continue;
                    }
                    let mut inner = path.clone();
                    inner.push(field_name.to_owned());
                    let value = self.sample(&field["type"], inner, context, own, slots)?;
                    object.insert(field_name.to_owned(), value);
                }
                Some(Value::Object(object))
            }
            _ => Some(json!({})),
        }
    }

    /// Every scalar of `name` and of the objects it holds, two levels deep.
    fn selection(&self, name: &str, depth: usize) -> String {
        let t = &self.types[name];
        let mut picked = vec!["__typename".to_owned()];
        if depth < 2 {
            for field in t["fields"].as_array().into_iter().flatten() {
                let takes_required = field["args"]
                    .as_array()
                    .is_some_and(|args| args.iter().any(|a| a["type"]["kind"] == "NON_NULL"));
                if takes_required {
                    continue;
                }
                let field_name = field["name"].as_str().unwrap_or_default();
                let inner = Self::named(&field["type"]);
                match self.kind_of(inner) {
                    "SCALAR" | "ENUM" => picked.push(field_name.to_owned()),
                    "OBJECT" | "INTERFACE" => {
                        picked.push(format!("{field_name} {}", self.selection(inner, depth + 1)))
                    }
                    _ => {}
                }
            }
        }
        format!("{{ {} }}", picked.join(" "))
    }
}

/// An id argument or input field: where it is, whether it takes a list, and whether the
/// field could be called without it.
struct Slot {
    path: Vec<String>,
    list: bool,
    optional: bool,
}

/// One GraphQL root field ready to call: its operation text and variables with own ids,
/// and the id slots to try.
struct FieldCase {
    label: String,
    operation: String,
    variables: Value,
    slots: Vec<Slot>,
}

fn field_case(schema: &Schema, keyword: &str, field: &Value, own: &Records) -> Option<FieldCase> {
    let name = field["name"].as_str().unwrap_or_default();
    let mut variables = Map::new();
    let mut slots = Vec::new();
    let (mut declared, mut passed) = (Vec::new(), Vec::new());
    for arg in field["args"].as_array().into_iter().flatten() {
        let arg_name = arg["name"].as_str().unwrap_or_default();
        let required = arg["type"]["kind"] == "NON_NULL";
        let holds_id = Schema::named(&arg["type"]) == "ID"
            || schema.kind_of(Schema::named(&arg["type"])) == "INPUT_OBJECT";
        if !required && !holds_id {
            continue;
        }
        let value = schema.sample(
            &arg["type"],
            vec![arg_name.to_owned()],
            name,
            own,
            &mut slots,
        )?;
        declared.push(format!("${arg_name}: {}", Schema::signature(&arg["type"])));
        passed.push(format!("{arg_name}: ${arg_name}"));
        variables.insert(arg_name.to_owned(), value);
    }
    let returns = Schema::named(&field["type"]);
    let selection = match schema.kind_of(returns) {
        "OBJECT" | "INTERFACE" => schema.selection(returns, 0),
        "UNION" => "{ __typename }".to_owned(),
        _ => String::new(),
    };
    let signature = match declared.is_empty() {
        true => String::new(),
        false => format!("({})", declared.join(", ")),
    };
    let arguments = match passed.is_empty() {
        true => String::new(),
        false => format!("({})", passed.join(", ")),
    };
    Some(FieldCase {
        label: format!("{keyword} {name}"),
        operation: format!("{keyword}{signature} {{ {name}{arguments} {selection} }}"),
        variables: Value::Object(variables),
        slots,
    })
}

/// `variables` with `slot` set to `id` and every other optional id left out: a caller's own
/// id beside it must not decide the answer first (a conversation chosen over a session).
fn with_id(variables: &Value, slots: &[Slot], slot: &Slot, id: &str) -> Value {
    let mut changed = variables.clone();
    for other in slots {
        if other.optional && other.path != slot.path {
            let (last, parents) = other.path.split_last().expect("a path");
            let mut at = &mut changed;
            for step in parents {
                at = &mut at[step.as_str()];
            }
            if let Some(object) = at.as_object_mut() {
                object.remove(last);
            }
        }
    }
    let mut at = &mut changed;
    for step in &slot.path {
        at = &mut at[step.as_str()];
    }
    *at = if slot.list { json!([id]) } else { json!(id) };
    changed
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

// ---------------------------------------------------------------------------------------
// REST: operations from the OpenAPI document.

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A JSON value of an OpenAPI schema, for a required field.
fn rest_sample(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    let variants = schema["oneOf"].as_array().or(schema["anyOf"].as_array());
    if let Some(variant) = variants.into_iter().flatten().find(|v| v["type"] != "null") {
        return rest_sample(doc, variant);
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .cloned()
            .unwrap_or_default(),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("string") if schema["format"] == "date-time" => json!("2026-01-01T00:00:00Z"),
        Some("string") => json!("x"),
        Some("integer") => json!(1),
        Some("number") => json!(1.0),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        _ => {
            let (properties, required) = object_parts(doc, schema);
            let mut object = Map::new();
            for name in required {
                let sample = rest_sample(doc, properties.get(&name).unwrap_or(&Value::Null));
                object.insert(name, sample);
            }
            Value::Object(object)
        }
    }
}

/// The properties and required names of an object schema, through `allOf`.
fn object_parts(doc: &Value, schema: &Value) -> (Map<String, Value>, Vec<String>) {
    let schema = resolve(doc, schema);
    let mut properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (more, also) = object_parts(doc, part);
        properties.extend(more);
        required.extend(also);
    }
    (properties, required)
}

/// Where a REST id goes.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Path,
    Query,
    Body { list: bool },
}

/// Whether a REST parameter or property names a record (and not, say, a client id or a
/// visitor's own id).
fn names_record(name: &str) -> bool {
    (name == "id" || name == "ids" || name.ends_with("_id") || name.ends_with("_ids"))
        && !name.starts_with("external")
        && !["client_id", "visitor_id"].contains(&name)
}

struct RestCase {
    label: String,
    method: Method,
    path: String,
    path_values: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    body: Option<Value>,
    /// Each id's name, place, and whether the operation takes it optionally.
    slots: Vec<(String, Place, bool)>,
}

/// The kind of record a REST parameter names: a bare `{id}` names what the path segment
/// before it lists (`/webhooks/{id}/deliveries`: a webhook), else what the path is about.
fn rest_kind(name: &str, path: &str) -> Option<&'static str> {
    let before = path
        .split_once(&format!("/{{{name}}}"))
        .and_then(|(head, _)| head.rsplit('/').next())
        .unwrap_or_default();
    kind_of(name, before).or_else(|| kind_of(name, path))
}

fn rest_case(doc: &Value, path: &str, method: &str, op: &Value, own: &Records) -> RestCase {
    let own_id = |name: &str| {
        let kind = rest_kind(name, path).unwrap_or("asst_");
        own.get(kind).cloned().unwrap_or_else(|| missing(kind))
    };
    let mut case = RestCase {
        label: format!("{} {path}", method.to_uppercase()),
        method: Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
        path: path.to_owned(),
        path_values: BTreeMap::new(),
        query: BTreeMap::new(),
        body: None,
        slots: Vec::new(),
    };
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap_or_default().to_owned();
        let record = names_record(&name) && resolve(doc, &param["schema"])["type"] != "integer";
        let value = match record {
            true => own_id(&name),
            false => match rest_sample(doc, &param["schema"]) {
                Value::String(s) => s,
                other => other.to_string(),
            },
        };
        match param["in"].as_str() {
            Some("path") => {
                if record {
                    case.slots.push((name.clone(), Place::Path, false));
                }
                case.path_values.insert(name, value);
            }
            Some("query") if record => {
                let optional = param["required"] != true;
                case.slots.push((name.clone(), Place::Query, optional));
                case.query.insert(name, value);
            }
            Some("query") if param["required"] == true => {
                case.query.insert(name, value);
            }
            _ => {}
        }
    }
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    if !schema.is_null() {
        let mut body = rest_sample(doc, schema);
        let (properties, required) = object_parts(doc, schema);
        for (name, property) in properties {
            // A token request names the caller's own OAuth app.
            if let Some(own_value) = own
                .get(name.as_str())
                .filter(|_| name.starts_with("client_"))
            {
                body[name.as_str()] = json!(own_value);
                continue;
            }
            if !names_record(&name) {
                continue;
            }
            let list = resolve(doc, &property)["type"] == "array"
                || property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("array")));
            let id = own_id(&name);
            body[name.as_str()] = if list { json!([id]) } else { json!(id) };
            let optional = !required.contains(&name);
            case.slots.push((name, Place::Body { list }, optional));
        }
        case.body = Some(body);
    }
    case
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
            json!({ "input": { "conversationId": ids["conv_"], "messageId": ids["msg_"], "rating": 5 } }),
        )
        .await;
    ids.insert("fb_", text(&feedback["submitFeedback"]["id"]));
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
