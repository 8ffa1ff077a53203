//! The model seam: embedders, summarizers and chat models behind traits. This is the only
//! module that imports candle, tokenizers and async-openai. [`Models::from_settings`] picks
//! the models in use (SPEC §13): local ones when their files are in the models dir, an
//! OpenAI-compatible provider when configured, dependency-free fallbacks otherwise.

mod attention;
mod bert;
mod chat;
mod e5;
mod error;
mod extractive;
mod gelu;
mod gguf_vocab;
mod hash;
mod llama;
mod minilm;
mod norm;
mod op_input;
mod openai;
mod pool;
mod sentence;
mod smollm;
mod summarize;
mod traced;

use std::{path::Path, sync::Arc};

use async_trait::async_trait;

pub use chat::{
    ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatStream, Completion, ContextPassage,
    Faithfulness, FinishReason, GenerationOptions, Role, prompt_messages,
};
pub use e5::E5Embedder;
pub use error::ModelError;
pub use extractive::{ExtractiveChat, NO_ANSWER};
pub use hash::HashEmbedder;
pub use minilm::MiniLmEmbedder;
pub use openai::{OpenAi, OpenAiChat, OpenAiEmbedder, OpenAiSummarizer};
pub use pool::BlockingPool;
pub use smollm::LocalChat;
pub use summarize::LocalSummarizer;

use crate::config::{EmbedderChoice, LlmChoice, ModelSettings};

/// The command that fetches the local model files.
pub const FETCH_COMMAND: &str = "scripts/fetch-models.sh";

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// A stable id of the model and its version (`hash-v1`); part of the vector table name.
    fn id(&self) -> &str;
    /// Length of every vector.
    fn dimension(&self) -> usize;
    /// One L2-normalised vector per text to be found (a chunk, a Q&A pair), in order.
    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>>;
    /// The L2-normalised vector of a search query. Models trained with a marker for each
    /// side (E5's `query: ` and `passage: `) embed a query apart from what it looks for.
    async fn embed_query(&self, query: &str) -> anyhow::Result<Vec<f32>> {
        Ok(self
            .embed(&[query.to_owned()])
            .await?
            .pop()
            .unwrap_or_default())
    }
    /// Tokens of a text the model reads, its special tokens aside, when it reads a bounded
    /// window (what lies beyond is not embedded); `None` when it has no known limit.
    fn window(&self) -> Option<usize> {
        None
    }
    /// The languages (ISO 639-1) it embeds meaningfully; `None`: every language.
    fn languages(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// How many of the window's tokens `text` takes (without special tokens).
    fn count_tokens(&self, text: &str) -> usize {
        text.chars().count().div_ceil(4)
    }
}

/// A summary and key phrases of a text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// A few sentences.
    pub summary: String,
    /// Key phrases, most important first.
    pub keywords: Vec<String>,
}

/// Summarises texts and extracts their keywords.
#[async_trait]
pub trait Summarizer: Send + Sync {
    /// What produces the summaries (`extractive`).
    fn id(&self) -> &str;
    /// The summary and keywords of `text`.
    async fn summarize(&self, text: &str) -> anyhow::Result<Summary>;
    /// What an image shows, when this summarizer can see images (`None` otherwise).
    async fn describe_image(&self, _bytes: &[u8], _mime: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
}

/// An LLM summarizer that falls back to the local one when the provider fails, so a provider
/// outage never fails an ingestion.
struct WithFallback {
    primary: Arc<dyn Summarizer>,
}

#[async_trait]
impl Summarizer for WithFallback {
    fn id(&self) -> &str {
        self.primary.id()
    }

    async fn summarize(&self, text: &str) -> anyhow::Result<Summary> {
        match self.primary.summarize(text).await {
            Ok(summary) => Ok(summary),
            Err(e) => {
                tracing::warn!(error = %e, "LLM summary failed; using the extractive summary");
                LocalSummarizer.summarize(text).await
            }
        }
    }

    async fn describe_image(&self, bytes: &[u8], mime: &str) -> anyhow::Result<Option<String>> {
        self.primary.describe_image(bytes, mime).await
    }
}

/// The models in use, shared by the server.
#[derive(Clone)]
pub struct Models {
    /// Embeds chunks and queries.
    pub embedder: Arc<dyn Embedder>,
    /// Summarises sources.
    pub summarizer: Arc<dyn Summarizer>,
    /// Answers conversations.
    pub chat: Arc<dyn ChatModel>,
    /// Why a local model is not in use, and how to get it; empty when nothing is missing.
    pub notes: Vec<String>,
}

impl Models {
    /// The dependency-free models: the hash embedder, the extractive summarizer and
    /// extractive answers.
    pub fn local_defaults() -> Self {
        Self {
            embedder: Arc::new(HashEmbedder::default()),
            summarizer: Arc::new(LocalSummarizer),
            chat: Arc::new(ExtractiveChat::lexical()),
            notes: Vec::new(),
        }
    }

    /// The models `settings` ask for. A model asked for by name must load; `auto` falls back
    /// (with a note saying what is missing and how to fetch it).
    pub async fn from_settings(settings: &ModelSettings) -> Result<Self, ModelError> {
        let dir = settings.models_dir.as_path();
        let mut notes = Vec::new();
        let provider_configured =
            settings.openai_api_key.is_some() || settings.openai_base_url.is_some();
        // One client, shared by whichever models use the provider.
        let mut api: Option<OpenAi> = None;
        let mut provider = || -> Result<OpenAi, ModelError> {
            if let Some(api) = &api {
                return Ok(api.clone());
            }
            let client = OpenAi::new(settings)?;
            api = Some(client.clone());
            Ok(client)
        };

        // The local embedder that the extractive answer may read meaning with (MiniLM or e5,
        // the ones measured for it); it embeds every reply's parts, so never a paid provider.
        let mut meaning: Option<Arc<dyn Embedder>> = None;
        let mut minilm = || -> Result<Arc<dyn Embedder>, ModelError> {
            let model: Arc<dyn Embedder> = Arc::new(load_minilm(dir)?);
            meaning = Some(model.clone());
            Ok(model)
        };
        let embedder: Arc<dyn Embedder> = match settings.embedder {
            EmbedderChoice::Hash => Arc::new(HashEmbedder::default()),
            EmbedderChoice::Openai => Arc::new(OpenAiEmbedder::new(provider()?, settings).await?),
            EmbedderChoice::Local => minilm()?,
            EmbedderChoice::E5 => {
                let model: Arc<dyn Embedder> = Arc::new(load_e5(dir)?);
                meaning = Some(model.clone());
                model
            }
            EmbedderChoice::Auto => match missing(dir, &minilm_files()) {
                None => minilm()?,
                Some(missing) => {
                    notes.push(format!(
                        "embedder: all-MiniLM-L6-v2 is not in {} ({missing}); using the hash \
                         embedder (lexical only). Run {FETCH_COMMAND} to fetch it.",
                        dir.display()
                    ));
                    Arc::new(HashEmbedder::default())
                }
            },
        };

        let chat: Arc<dyn ChatModel> = match settings.llm {
            LlmChoice::Openai => {
                Arc::new(OpenAiChat::new(provider()?, &settings.openai_chat_model))
            }
            LlmChoice::Local => Arc::new(load_smollm(dir)?),
            LlmChoice::Auto if provider_configured => {
                Arc::new(OpenAiChat::new(provider()?, &settings.openai_chat_model))
            }
            // Measured on this machine by `scripts/eval/answers.py`: the extractive answer
            // states the fact at least as often as SmolLM2-135M in en/es/pt, states nothing
            // the passages do not hold, and answers in milliseconds where the model takes
            // seconds; the model stays one setting away (`COMPANIN_LLM=local`).
            LlmChoice::Extractive | LlmChoice::Auto => Arc::new(match meaning {
                Some(embedder) => ExtractiveChat::reading_meaning_with(embedder),
                None => ExtractiveChat::lexical(),
            }),
        };

        let summarizer: Arc<dyn Summarizer> = if chat.id().starts_with("openai:") {
            Arc::new(WithFallback {
                primary: Arc::new(OpenAiSummarizer::new(
                    provider()?,
                    &settings.openai_chat_model,
                    settings.openai_vision,
                )),
            })
        } else {
            Arc::new(LocalSummarizer)
        };
        Ok(Self {
            embedder,
            summarizer,
            chat,
            notes,
        })
    }
}

fn minilm_files() -> Vec<String> {
    minilm::FILES
        .iter()
        .map(|f| format!("{}/{f}", minilm::DIR))
        .collect()
}

/// The files of `files` absent from `dir`, as a phrase; `None` when all are there.
fn missing(dir: &Path, files: &[String]) -> Option<String> {
    let absent: Vec<&str> = files
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .map(String::as_str)
        .collect();
    (!absent.is_empty()).then(|| format!("missing {}", absent.join(", ")))
}

fn load_minilm(dir: &Path) -> Result<MiniLmEmbedder, ModelError> {
    if let Some(missing) = missing(dir, &minilm_files()) {
        return Err(ModelError::unavailable(format!(
            "COMPANIN_EMBEDDER=local, but all-MiniLM-L6-v2 is not in {} ({missing}); run {FETCH_COMMAND}",
            dir.display()
        )));
    }
    MiniLmEmbedder::load(dir, BlockingPool::new(1))
}

fn e5_file() -> String {
    format!("{}/{}", e5::DIR, e5::FILE)
}

fn load_e5(dir: &Path) -> Result<E5Embedder, ModelError> {
    if let Some(missing) = missing(dir, &[e5_file()]) {
        return Err(ModelError::unavailable(format!(
            "COMPANIN_EMBEDDER=e5, but multilingual-e5-small is not in {} ({missing}); run {FETCH_COMMAND}",
            dir.display()
        )));
    }
    E5Embedder::load(dir, BlockingPool::new(1))
}

fn load_smollm(dir: &Path) -> Result<LocalChat, ModelError> {
    if let Some(missing) = missing(dir, &[smollm::FILE.to_owned()]) {
        return Err(ModelError::unavailable(format!(
            "COMPANIN_LLM=local, but SmolLM2-135M-Instruct is not in {} ({missing}); run {FETCH_COMMAND}",
            dir.display()
        )));
    }
    LocalChat::load(dir, BlockingPool::new(1))
}
