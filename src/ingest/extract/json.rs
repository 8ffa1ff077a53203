//! JSON: flattened to `path: value` lines.

use serde_json::Value;

use crate::ingest::{Block, BlockKind, Document, ExtractError};

/// Every scalar as `a.b[0].c: value`.
pub fn extract(bytes: &[u8]) -> Result<Document, ExtractError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("invalid JSON: {e}")))?;
    let mut lines = Vec::new();
    flatten(&value, String::new(), &mut lines);
    Ok(Document {
        blocks: vec![Block {
            heading_path: Vec::new(),
            text: lines.join("\n"),
            kind: BlockKind::Records,
        }],
    })
}

fn flatten(value: &Value, path: String, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let next = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, next, lines);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, format!("{path}[{i}]"), lines);
            }
        }
        Value::Null => {}
        Value::String(s) if s.trim().is_empty() => {}
        Value::String(s) => lines.push(label(&path, s)),
        other => lines.push(label(&path, &other.to_string())),
    }
}

fn label(path: &str, value: &str) -> String {
    if path.is_empty() {
        value.to_owned()
    } else {
        format!("{path}: {value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_are_named_by_their_path() {
        let doc =
            extract(br#"{"plan": {"name": "Pro", "seats": 5}, "tags": ["a", "b"], "x": null}"#)
                .expect("valid");
        assert_eq!(
            doc.blocks[0].text,
            "plan.name: Pro\nplan.seats: 5\ntags[0]: a\ntags[1]: b"
        );
    }

    #[test]
    fn broken_json_is_refused() {
        assert!(matches!(
            extract(b"{\"a\": "),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
