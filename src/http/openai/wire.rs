//! OpenAI's chat completion request, and the completion and chunk objects answered to it.
//! Fields Companin has no use for (`temperature`, `max_tokens`…) are accepted and ignored:
//! the assistant's configuration decides.

use entity::message::{self, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{AppError, AppResult},
    services::{
        completions::{Completion, Turn},
        replies::{Citation, citations_of},
    },
};

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// An assistant: its id or its name.
    pub model: String,
    /// The conversation; the last one is the visitor's message.
    pub messages: Vec<ChatMessage>,
    /// Stream `chat.completion.chunk`s.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `include_usage`: a last chunk with the token counts.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// The visitor's id in the customer's system.
    #[serde(default)]
    pub user: Option<String>,
    /// How many choices: only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// Tools the model may call: none are supported.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send the token counts in a last chunk.
    #[serde(default)]
    pub include_usage: bool,
}

/// One message of `messages`.
#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// Text, or parts of which only `text` ones are supported.
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts: `{"type": "text", "text": …}`.
    Parts(Vec<Part>),
}

/// One part of a message's content.
#[derive(Debug, Deserialize)]
pub struct Part {
    /// `text` (images and audio are not supported).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

impl ChatRequest {
    /// Whether the answer streams.
    pub fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether a streamed answer ends with the token counts.
    pub fn includes_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// The completion to start: the last message is the visitor's, the `user` and
    /// `assistant` messages before it the history; `system` and `developer` messages are
    /// left out (the assistant's own instructions apply).
    pub fn into_completion(self) -> AppResult<Completion> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(AppError::bad_input(
                "n",
                "only one choice (n = 1) is generated",
            ));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(AppError::bad_input(
                "tools",
                "tools are not supported: the assistant answers from its knowledge",
            ));
        }
        let mut turns = Vec::with_capacity(self.messages.len());
        let count = self.messages.len();
        let mut last = None;
        for (i, message) in self.messages.into_iter().enumerate() {
            let role = match message.role.as_str() {
                "system" | "developer" => continue,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(AppError::bad_input(
                        format!("messages[{i}].role"),
                        format!(
                            "`{other}` messages are not supported: send system, user and assistant messages"
                        ),
                    ));
                }
            };
            let content = text_of(message.content, i)?;
            if i + 1 == count {
                last = Some((role, content));
            } else if !content.is_empty() {
                turns.push(Turn { role, content });
            }
        }
        let Some((Role::User, message)) = last else {
            return Err(AppError::bad_input(
                "messages",
                "the last message must be the visitor's (role `user`)",
            ));
        };
        Ok(Completion {
            model: self.model,
            turns,
            message,
            user: self.user,
            conversation_id: None,
        })
    }
}

/// A message's text: its string, or its text parts joined by a line break.
fn text_of(content: Option<Content>, i: usize) -> AppResult<String> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(text)) => Ok(text),
        Some(Content::Parts(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(text)) => texts.push(text),
                    (kind, _) => {
                        return Err(AppError::bad_input(
                            format!("messages[{i}].content"),
                            format!("`{kind}` content is not supported: send text"),
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

/// What every object of one completion shares.
#[derive(Debug, Clone)]
pub struct Header {
    /// `chatcmpl-` and the reply's id.
    pub id: String,
    /// When the reply started, in unix seconds.
    pub created: i64,
    /// The model as the client named it.
    pub model: String,
    /// The conversation (`conv_…`).
    pub conversation_id: String,
}

impl Header {
    /// The header of the completion answering with `reply_id`.
    pub fn new(reply_id: &str, created: i64, model: String, conversation_id: String) -> Self {
        Self {
            id: format!("chatcmpl-{reply_id}"),
            created,
            model,
            conversation_id,
        }
    }

    /// A `chat.completion` of a finished reply; of none when a person answers the
    /// conversation (no text, `status: HANDED_OFF`).
    pub fn completion(&self, reply: Option<&message::Model>) -> Value {
        let (content, extra) = match reply {
            Some(reply) => (
                reply.content.as_str(),
                self.extra(Some(&reply.id), &citations_of(reply), status(reply)),
            ),
            None => ("", self.extra(None, &[], "HANDED_OFF")),
        };
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content, "refusal": null },
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage(reply),
            "companin": extra,
        })
    }

    /// A `chat.completion.chunk` carrying `delta`, and `finish_reason` when it ends the
    /// choice.
    pub fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        })
    }

    /// The chunk that ends the choice, with Companin's extra field.
    pub fn last_chunk(&self, reply: Option<&message::Model>, citations: &[Citation]) -> Value {
        let mut chunk = self.chunk(json!({}), Some("stop"));
        chunk["companin"] = match reply {
            Some(reply) => self.extra(Some(&reply.id), citations, status(reply)),
            None => self.extra(None, &[], "HANDED_OFF"),
        };
        chunk
    }

    /// The chunk after the last with the token counts (`stream_options.include_usage`).
    pub fn usage_chunk(&self, reply: Option<&message::Model>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage(reply),
        })
    }

    /// `companin`: what the SDKs ignore and a Companin client reads — the conversation to
    /// continue (`X-Companin-Conversation-Id`), the reply and the passages it cites.
    fn extra(&self, message_id: Option<&str>, citations: &[Citation], status: &str) -> Value {
        json!({
            "conversation_id": self.conversation_id,
            "message_id": message_id,
            "status": status,
            "citations": citations,
        })
    }
}

/// `usage` of a reply: the tokens the model counted (none for a quoted answer, or when a
/// person answers).
fn usage(reply: Option<&message::Model>) -> Value {
    let prompt = reply.and_then(|r| r.prompt_tokens).unwrap_or(0).max(0);
    let completion = reply.and_then(|r| r.completion_tokens).unwrap_or(0).max(0);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

fn status(reply: &message::Model) -> &'static str {
    match reply.status {
        message::Status::Complete => "COMPLETE",
        message::Status::Cancelled => "CANCELLED",
        message::Status::Failed => "FAILED",
        message::Status::Pending | message::Status::Streaming => "STREAMING",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).expect("a request")
    }

    #[test]
    fn the_last_user_message_is_asked_and_the_turns_before_it_are_the_history() {
        let completion = request(json!({
            "model": "Ada",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hoi"},
                {"role": "assistant", "content": "Hallo!"},
                {"role": "user", "content": [{"type": "text", "text": "Waar"}, {"type": "text", "text": "zijn jullie?"}]},
            ],
            "temperature": 0.2,
            "user": "cust-7",
        }))
        .into_completion()
        .expect("taken");
        assert_eq!(completion.message, "Waar\nzijn jullie?");
        let turns: Vec<_> = completion
            .turns
            .iter()
            .map(|t| (t.role, t.content.as_str()))
            .collect();
        assert_eq!(turns, [(Role::User, "Hoi"), (Role::Assistant, "Hallo!")]);
        assert_eq!(completion.user.as_deref(), Some("cust-7"));
    }

    #[test]
    fn what_cannot_be_answered_names_its_parameter() {
        let param = |body: Value| match request(body).into_completion() {
            Err(AppError::BadInput { field, .. }) => field,
            other => panic!("refused: {other:?}"),
        };
        let user = json!({"role": "user", "content": "Hi"});
        assert_eq!(
            param(json!({"model": "a", "messages": []})).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(
                json!({"model": "a", "messages": [user, {"role": "assistant", "content": "Yes"}]})
            )
            .as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(json!({"model": "a", "messages": [{"role": "tool", "content": "42"}, user]}))
                .as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param(json!({"model": "a", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})).as_deref(),
            Some("messages[0].content")
        );
        assert_eq!(
            param(json!({"model": "a", "n": 2, "messages": [user]})).as_deref(),
            Some("n")
        );
        assert_eq!(
            param(json!({"model": "a", "tools": [{"type": "function"}], "messages": [user]}))
                .as_deref(),
            Some("tools")
        );
    }
}
