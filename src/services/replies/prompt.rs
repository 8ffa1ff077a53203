//! The prompt of a reply: the assistant version's instructions, tone and language, the
//! visitor's traits, the recent history within a token budget, and the retrieved passages.

use entity::{assistant_version, message};
use serde_json::Value;

use crate::{
    models::{ChatMessage, ChatRequest, ContextPassage, GenerationOptions, Role},
    services::retrieval::Hit,
};

/// What a prompt is built from.
pub struct PromptParts<'a> {
    /// The answering version.
    pub version: &'a assistant_version::Model,
    /// The visitor's latest traits (a JSON object).
    pub traits: &'a Value,
    /// Earlier messages of the conversation, newest first.
    pub history: &'a [message::Model],
    /// The visitor's message as the model should read it (a task template may have wrapped
    /// it).
    pub message: &'a str,
    /// Passages retrieved for the message, best first.
    pub passages: &'a [Hit],
    /// Tokens of history to include at most.
    pub history_tokens: usize,
}

/// The chat request for `parts`; `count` measures text in the chat model's tokens.
pub fn build(parts: &PromptParts<'_>, count: &dyn Fn(&str) -> usize) -> ChatRequest {
    let mut messages = vec![ChatMessage::new(Role::System, system_prompt(parts))];
    let mut budget = parts.history_tokens;
    let mut history = Vec::new();
    for earlier in parts.history {
        let usable = matches!(
            earlier.status,
            message::Status::Complete | message::Status::Cancelled
        ) || earlier.role == message::Role::User;
        if !usable || earlier.content.trim().is_empty() {
            continue;
        }
        let cost = count(&earlier.content);
        if cost > budget {
            break;
        }
        budget -= cost;
        let role = match earlier.role {
            message::Role::User => Role::User,
            // A person's answers while the conversation was handed off read as the
            // assistant's side of it.
            message::Role::Assistant | message::Role::Agent => Role::Assistant,
        };
        history.push(ChatMessage::new(role, earlier.content.clone()));
    }
    history.reverse();
    messages.extend(history);
    messages.push(ChatMessage::new(Role::User, parts.message));
    ChatRequest {
        messages,
        context: parts.passages.iter().map(passage).collect(),
        language: Some(parts.version.language.clone()),
        options: GenerationOptions {
            max_tokens: parts.version.max_tokens.max(1) as u32,
            temperature: parts.version.temperature as f32,
            ..GenerationOptions::default()
        },
    }
}

fn system_prompt(parts: &PromptParts<'_>) -> String {
    let v = parts.version;
    let mut out = if v.instructions.trim().is_empty() {
        format!("You are {}, a helpful assistant.", v.name)
    } else {
        v.instructions.trim().to_owned()
    };
    if !v.description.trim().is_empty() {
        out.push_str(&format!("\nAbout you: {}", v.description.trim()));
    }
    out.push_str(&format!(
        "\nTone: {}. Answer in the language with tag `{}` unless the visitor writes in another.",
        v.tone, v.language
    ));
    if parts.traits.as_object().is_some_and(|t| !t.is_empty()) {
        out.push_str(&format!(
            "\nWhat is known about the visitor (JSON): {}",
            parts.traits
        ));
    }
    out
}

fn passage(hit: &Hit) -> ContextPassage {
    ContextPassage {
        source_id: hit.source.id.clone(),
        title: hit.source.title.clone(),
        text: hit.text.clone(),
        score: hit.score,
        similarity: hit.similarity,
        answer: if hit.strong_qa_match {
            hit.source.answer.clone()
        } else {
            None
        },
    }
}

/// Which passages (by position) a generated text cites as `[n]`, in order of first use.
pub fn cited_positions(text: &str, passages: usize) -> Vec<usize> {
    let mut cited = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty()
            && rest[digits.len()..].starts_with(']')
            && let Ok(n) = digits.parse::<usize>()
            && (1..=passages).contains(&n)
            && !cited.contains(&(n - 1))
        {
            cited.push(n - 1);
        }
    }
    cited
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citation_markers_are_read_once_each_and_only_for_given_passages() {
        assert_eq!(
            cited_positions("A [2] b [1] c [2] d [7] [x]", 3),
            vec![1, 0]
        );
        assert!(cited_positions("no markers", 3).is_empty());
    }
}
