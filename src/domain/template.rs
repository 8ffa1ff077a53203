//! Task templates: named prompts with `{{placeholders}}`.

use serde::{Deserialize, Serialize};

/// A validated task template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTemplate {
    /// Unique within the assistant: letters, digits, `-` and `_`.
    pub name: String,
    /// The prompt text.
    pub template: String,
}

/// Longest template text accepted.
pub const MAX_TEMPLATE_LEN: usize = 10_000;

impl TaskTemplate {
    /// The distinct placeholder names, in order of first appearance.
    pub fn placeholders(&self) -> Vec<String> {
        // Stored templates were validated when written.
        placeholders(&self.template).unwrap_or_default()
    }

    /// The template with every `{{placeholder}}` replaced by `value(name)`; names the first
    /// placeholder without a value.
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::with_capacity(self.template.len());
        let mut rest = self.template.as_str();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                break;
            };
            let name = after[..close].trim();
            let filled = value(name).ok_or_else(|| format!("no value for `{{{{{name}}}}}`"))?;
            out.push_str(&rest[..open]);
            out.push_str(&filled);
            rest = &after[close + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Checks a template name.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("may contain only letters, digits, `-` and `_`".into());
    }
    Ok(())
}

/// Parses the `{{placeholder}}` names of a template, refusing unbalanced braces and names
/// that are not identifiers (`customer_name`, `order.id`).
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    if template.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if template.len() > MAX_TEMPLATE_LEN {
        return Err(format!("must be at most {MAX_TEMPLATE_LEN} bytes"));
    }
    let mut names: Vec<String> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if rest[..open].contains("}}") {
            return Err("has `}}` without a matching `{{`".into());
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "has `{{` without a matching `}}`".to_string())?;
        let name = after[..close].trim();
        if !is_identifier(name) {
            return Err(format!(
                "has an invalid placeholder `{{{{{name}}}}}`: use letters, digits, `_` and `.`, starting with a letter"
            ));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("has `}}` without a matching `{{`".into());
    }
    Ok(names)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_listed_once_in_order_of_appearance() {
        let names = placeholders("Hi {{ name }}, order {{order.id}} for {{name}}").expect("valid");
        assert_eq!(names, vec!["name", "order.id"]);
    }

    #[test]
    fn unbalanced_or_invalid_placeholders_are_refused() {
        for bad in [
            "Hi {{name",
            "Hi name}}",
            "Hi {{}}",
            "Hi {{1st}}",
            "{{a b}}",
            "  ",
        ] {
            assert!(placeholders(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rendering_fills_every_placeholder_or_names_the_missing_one() {
        let template = TaskTemplate {
            name: "refund".into(),
            template: "Order {{ order.id }}: {{message}}".into(),
        };
        let filled = template.render(|name| match name {
            "order.id" => Some("A-17".into()),
            "message" => Some("where is it?".into()),
            _ => None,
        });
        assert_eq!(filled.as_deref(), Ok("Order A-17: where is it?"));
        let missing = template.render(|name| (name == "message").then(|| "hi".into()));
        assert_eq!(missing, Err("no value for `{{order.id}}`".into()));
    }

    #[test]
    fn template_names_are_slugs() {
        assert!(check_name("refund-request_2").is_ok());
        assert!(check_name("refund request").is_err());
        assert!(check_name("").is_err());
    }
}
