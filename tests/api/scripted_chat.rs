//! A chat model that replies with scripted pieces at a fixed pace, so tests (and the
//! streaming benchmark) control timing exactly.

use std::time::Duration;

use async_trait::async_trait;
use companin::models::{
    ChatChunk, ChatModel, ChatRequest, ChatStream, Completion, Faithfulness, FinishReason,
    ModelError,
};
use futures::StreamExt;

/// Replies `pieces`, one every `every`; cites nothing.
pub struct ScriptedChat {
    /// The reply, piece by piece.
    pub pieces: Vec<String>,
    /// Time before each piece.
    pub every: Duration,
    /// Whether its sentences are checked against the passages, as the local model's are.
    pub checked: bool,
}

impl ScriptedChat {
    /// `count` pieces `"t0 "`, `"t1 "`, … one every `every`.
    pub fn numbered(count: usize, every: Duration) -> Self {
        Self {
            pieces: (0..count).map(|i| format!("t{i} ")).collect(),
            every,
            checked: false,
        }
    }

    /// `pieces` at once, checked against the passages like the local model.
    pub fn checked(pieces: &[&str]) -> Self {
        Self {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            every: Duration::ZERO,
            checked: true,
        }
    }
}

#[async_trait]
impl ChatModel for ScriptedChat {
    fn id(&self) -> &str {
        "scripted"
    }

    fn faithfulness(&self) -> Faithfulness {
        if self.checked {
            Faithfulness::Checked
        } else {
            Faithfulness::Trusted
        }
    }

    async fn stream(&self, _request: ChatRequest) -> Result<ChatStream, ModelError> {
        let (pieces, every) = (self.pieces.clone(), self.every);
        let total = pieces.len() as u32;
        Ok(async_stream::stream! {
            for piece in pieces {
                tokio::time::sleep(every).await;
                yield Ok(ChatChunk::Delta(piece));
            }
            yield Ok(ChatChunk::Done(Completion {
                finish_reason: FinishReason::Stop,
                prompt_tokens: 7,
                completion_tokens: total,
                citations: Vec::new(),
            }));
        }
        .boxed())
    }
}
