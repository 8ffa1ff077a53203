//! JSON: flattened to `path: value` lines.

use serde_json::Value;

use super::shorten;
use crate::ingest::{Block, BlockKind, Document, ExtractError};

/// Longest path written before a value. The path is repeated on every line, so a long key
/// over many values would multiply the text: a longer one keeps its last characters (the
/// most specific part) after an ellipsis.
const MAX_PATH_CHARS: usize = 200;

/// Longest key kept whole inside a path.
const MAX_KEY_CHARS: usize = 64;

/// Every scalar as `a.b[0].c: value`.
pub fn extract(bytes: &[u8]) -> Result<Document, ExtractError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        // serde_json refuses documents nested deeper than 128 levels before it recurses.
        if e.to_string().contains("recursion limit") {
            ExtractError::TooComplex("the JSON nests deeper than 128 levels".into())
        } else {
            ExtractError::Corrupt(format!("invalid JSON: {e}"))
        }
    })?;
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
                let key = shorten(key, MAX_KEY_CHARS);
                let next = if path.is_empty() {
                    key.into_owned()
                } else {
                    format!("{path}.{key}")
                };
                flatten(child, keep_tail(next), lines);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                flatten(child, keep_tail(format!("{path}[{i}]")), lines);
            }
        }
        Value::Null => {}
        Value::String(s) if s.trim().is_empty() => {}
        Value::String(s) => lines.push(label(&path, s)),
        other => lines.push(label(&path, &other.to_string())),
    }
}

/// The path, or its last [`MAX_PATH_CHARS`] characters after an ellipsis.
fn keep_tail(path: String) -> String {
    let chars = path.chars().count();
    if chars <= MAX_PATH_CHARS {
        return path;
    }
    let tail: String = path.chars().skip(chars - (MAX_PATH_CHARS - 1)).collect();
    format!("…{tail}")
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
    fn a_long_key_over_many_values_is_written_short_on_each_line() {
        let key = "k".repeat(20_000);
        let values: Vec<String> = (0..1_000).map(|i| format!("\"{i}\"")).collect();
        let json = format!("{{\"{key}\": [{}]}}", values.join(","));
        let doc = extract(json.as_bytes()).expect("valid");
        let text = &doc.blocks[0].text;
        assert_eq!(text.lines().count(), 1_000);
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= MAX_PATH_CHARS + 8),
            "{}",
            &text[..200]
        );
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.ends_with("[999]: 999"))
        );
    }

    #[test]
    fn nesting_past_the_parser_limit_is_too_complex() {
        let json = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            extract(json.as_bytes()),
            Err(ExtractError::TooComplex(m)) if m.contains("128")
        ));
    }

    #[test]
    fn broken_json_is_refused() {
        assert!(matches!(
            extract(b"{\"a\": "),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
