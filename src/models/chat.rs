//! Chat models: what a request carries, what a reply streams, and the trait every chat model
//! implements. Dropping the stream cancels the generation.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::Serialize;

use super::ModelError;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The visitor.
    User,
    /// The assistant.
    Assistant,
}

impl Role {
    /// The role's name in chat templates and provider APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl ChatMessage {
    /// A message of `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A passage retrieved for the question. Generative models see it in the prompt that the
/// conversation layer builds; the extractive model quotes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPassage {
    /// The knowledge source it comes from (`ks_…`).
    pub source_id: String,
    /// The source's title.
    pub title: String,
    /// The passage.
    pub text: String,
    /// Retrieval score, higher is better.
    pub score: f32,
    /// Cosine similarity of the passage to the question, -1–1.
    pub similarity: f32,
    /// The answer of a Q&A pair that matched the question strongly: quoted verbatim.
    pub answer: Option<String>,
}

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOptions {
    /// Most tokens generated.
    pub max_tokens: u32,
    /// 0 picks the likeliest token every time; higher values sample more freely.
    pub temperature: f32,
    /// Text that ends the reply when generated (not included in it).
    pub stop: Vec<String>,
    /// Seed of the sampler, for reproducible replies.
    pub seed: Option<u64>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: 0.7,
            stop: Vec::new(),
            seed: None,
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation so far, oldest first; the last message is usually the visitor's.
    pub messages: Vec<ChatMessage>,
    /// Passages retrieved for the last message, best first.
    pub context: Vec<ContextPassage>,
    /// The assistant's language (BCP 47), when it has one.
    pub language: Option<String>,
    /// Generation settings.
    pub options: GenerationOptions,
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended it, or a stop sequence did.
    Stop,
    /// `max_tokens` was reached.
    Length,
}

impl FinishReason {
    /// The reason as OpenAI and the GenAI conventions name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// The end of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens of the prompt, as the model counts them.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Knowledge sources the reply quotes (`ks_…`), in order of first use.
    pub citations: Vec<String>,
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatChunk {
    /// More text.
    Delta(String),
    /// The reply is complete; always the last chunk.
    Done(Completion),
}

/// A streamed reply. Dropping it cancels the generation.
pub type ChatStream = BoxStream<'static, Result<ChatChunk, ModelError>>;

/// How a model's text is held to the passages it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Faithfulness {
    /// It quotes them: there is nothing to check.
    Quotes,
    /// It generates, and each sentence is checked against them before it is sent.
    Checked,
    /// It generates and is trusted to keep to them (a provider's model, told to cite).
    Trusted,
}

/// Answers conversations.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// What answers (`local:SmolLM2-135M-Instruct`, `openai:gpt-4o-mini`, `extractive`).
    fn id(&self) -> &str;
    /// How its text is held to the passages.
    fn faithfulness(&self) -> Faithfulness {
        Faithfulness::Trusted
    }
    /// Starts a reply; text arrives as it is produced.
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ModelError>;
    /// About how many of the model's tokens `text` takes (for history budgets); four bytes
    /// a token unless the model knows better.
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }
}

/// The messages a generative model sees: the request's, with the retrieved passages added to
/// the system message (one is created when the conversation has none), numbered for citing.
pub fn prompt_messages(request: &ChatRequest) -> Vec<ChatMessage> {
    let mut messages = request.messages.clone();
    if request.context.is_empty() {
        return messages;
    }
    let mut sources = String::from(
        "Answer from these sources when they are relevant, and cite them as [n]. \
         If they do not contain the answer, say so.",
    );
    for (n, passage) in request.context.iter().enumerate() {
        let text = passage.answer.as_deref().unwrap_or(&passage.text);
        sources.push_str(&format!(
            "\n\n[{}] {}\n{}",
            n + 1,
            passage.title,
            text.trim()
        ));
    }
    match messages.iter_mut().find(|m| m.role == Role::System) {
        Some(system) => {
            system.content.push_str("\n\n");
            system.content.push_str(&sources);
        }
        None => messages.insert(0, ChatMessage::new(Role::System, sources)),
    }
    messages
}

/// Holds back text that may be the start of a stop sequence until it is known not to be.
#[derive(Debug, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Feeds `text`; returns what can be sent now, and whether a stop sequence was met (the
    /// text before it is returned, the rest dropped).
    pub(crate) fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|stop| self.pending.find(stop.as_str()))
            .min()
        {
            let out = self.pending[..at].to_owned();
            self.pending.clear();
            return (out, true);
        }
        // Keep the longest tail that is a prefix of some stop sequence.
        let keep = self
            .stops
            .iter()
            .flat_map(|stop| {
                stop.char_indices()
                    .skip(1)
                    .map(|(i, _)| &stop[..i])
                    .filter(|prefix| self.pending.ends_with(prefix))
                    .map(str::len)
            })
            .max()
            .unwrap_or(0);
        let split = self.pending.len() - keep;
        let out = self.pending[..split].to_owned();
        self.pending.drain(..split);
        (out, false)
    }

    /// What is still held back when the reply ends without a stop sequence.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_sequence_split_across_tokens_ends_the_reply_and_is_not_sent() {
        let mut m = StopMatcher::new(&["\nUser:".into()]);
        assert_eq!(m.push("Hello"), ("Hello".into(), false));
        assert_eq!(m.push(" there\nUs"), (" there".into(), false));
        assert_eq!(m.push("er: hi"), (String::new(), true));
    }

    #[test]
    fn text_that_only_looked_like_a_stop_sequence_is_released() {
        let mut m = StopMatcher::new(&["END".into()]);
        assert_eq!(m.push("the EN"), ("the ".into(), false));
        assert_eq!(m.push("ding"), ("ENding".into(), false));
        assert_eq!(m.push(" E"), (" ".into(), false));
        assert_eq!(m.finish(), "E");
    }
}
