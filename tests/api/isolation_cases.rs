//! How the isolation matrix builds its cases and compares its answers: id kinds, GraphQL
//! root fields from introspection, REST operations from the OpenAPI document, and answers
//! reduced to what a caller could tell apart.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value, json};

/// The id prefixes of the records the matrix passes.
pub(crate) const KINDS: [&str; 15] = [
    "org_", "asst_", "ver_", "ks_", "sess_", "ctx_", "conv_", "msg_", "fb_", "key_", "app_", "wh_",
    "whd_", "evt_", "gap_",
];

/// One record of each kind of an organization, by prefix.
pub(crate) type Records = BTreeMap<&'static str, String>;

/// The kind of record an id slot names, from its name (`assistantId`, `session_id`) or, for
/// a bare `id`, from the field or path it belongs to; `None` when it could be any.
pub(crate) fn kind_of(slot: &str, context: &str) -> Option<&'static str> {
    let slot = slot.to_lowercase().replace('_', "");
    let subject = match slot.as_str() {
        "id" | "ids" => context.to_lowercase(),
        other => other.to_owned(),
    };
    let table: [(&str, &'static str); 14] = [
        ("gap", "gap_"),
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
pub(crate) fn missing(kind: &str) -> String {
    format!("{kind}{}", "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b")
}

/// An answer reduced to what a caller could tell apart: the ids under test and every other
/// generated id or time are replaced by placeholders.
pub(crate) fn normalized(value: &Value, tested: &[&str]) -> Value {
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
pub(crate) fn differ(foreign: &Value, absent: &Value, tested: &[&str]) -> bool {
    normalized(foreign, tested) != normalized(absent, tested)
}

/// `value` with every part where `first` and `second` (the same call made twice) differ
/// replaced by `"<drifts>"`.
pub(crate) fn masked(value: &Value, first: &Value, second: &Value) -> Value {
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
pub(crate) fn shape(value: &Value) -> Value {
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

// ---------------------------------------------------------------------------------------
// GraphQL: root fields from introspection.

pub(crate) const INTROSPECTION: &str = "query {
  __schema { queryType { name } mutationType { name } subscriptionType { name }
    types { kind name enumValues { name }
      fields { name args { name type { ...T } } type { ...T } }
      inputFields { name type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name } } } } }";

pub(crate) struct Schema {
    pub(crate) types: BTreeMap<String, Value>,
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
pub(crate) struct Slot {
    pub(crate) path: Vec<String>,
    pub(crate) list: bool,
    pub(crate) optional: bool,
}

/// One GraphQL root field ready to call: its operation text and variables with own ids,
/// and the id slots to try.
pub(crate) struct FieldCase {
    pub(crate) label: String,
    pub(crate) operation: String,
    pub(crate) variables: Value,
    pub(crate) slots: Vec<Slot>,
}

pub(crate) fn field_case(
    schema: &Schema,
    keyword: &str,
    field: &Value,
    own: &Records,
) -> Option<FieldCase> {
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
pub(crate) fn with_id(variables: &Value, slots: &[Slot], slot: &Slot, id: &str) -> Value {
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

// ---------------------------------------------------------------------------------------
// REST: operations from the OpenAPI document.

pub(crate) fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A JSON value of an OpenAPI schema, for a required field.
pub(crate) fn rest_sample(doc: &Value, schema: &Value) -> Value {
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
pub(crate) fn object_parts(doc: &Value, schema: &Value) -> (Map<String, Value>, Vec<String>) {
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
pub(crate) enum Place {
    Path,
    Query,
    Body { list: bool },
}

/// Whether a REST parameter or property names a record (and not, say, a client id or a
/// visitor's own id).
pub(crate) fn names_record(name: &str) -> bool {
    (name == "id" || name == "ids" || name.ends_with("_id") || name.ends_with("_ids"))
        && !name.starts_with("external")
        && !["client_id", "visitor_id"].contains(&name)
}

pub(crate) struct RestCase {
    pub(crate) label: String,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) path_values: BTreeMap<String, String>,
    pub(crate) query: BTreeMap<String, String>,
    pub(crate) body: Option<Value>,
    /// Each id's name, place, and whether the operation takes it optionally.
    pub(crate) slots: Vec<(String, Place, bool)>,
}

/// The kind of record a REST parameter names: a bare `{id}` names what the path segment
/// before it lists (`/webhooks/{id}/deliveries`: a webhook), else what the path is about.
pub(crate) fn rest_kind(name: &str, path: &str) -> Option<&'static str> {
    let before = path
        .split_once(&format!("/{{{name}}}"))
        .and_then(|(head, _)| head.rsplit('/').next())
        .unwrap_or_default();
    kind_of(name, before).or_else(|| kind_of(name, path))
}

pub(crate) fn rest_case(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    own: &Records,
) -> RestCase {
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
