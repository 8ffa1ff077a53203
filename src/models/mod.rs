//! The model seam: embedders and summarizers behind traits. This is the only module that
//! talks to model libraries; the local and OpenAI-compatible models plug in here.

mod hash;
mod summarize;

use std::sync::Arc;

use async_trait::async_trait;

pub use hash::HashEmbedder;
pub use summarize::LocalSummarizer;

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// A stable id of the model and its version (`hash-v1`); part of the vector table name.
    fn id(&self) -> &str;
    /// Length of every vector.
    fn dimension(&self) -> usize;
    /// One L2-normalised vector per text, in order.
    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>>;
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
}

/// The models in use, shared by the server.
#[derive(Clone)]
pub struct Models {
    /// Embeds chunks and queries.
    pub embedder: Arc<dyn Embedder>,
    /// Summarises sources.
    pub summarizer: Arc<dyn Summarizer>,
}

impl Models {
    /// The dependency-free defaults: the hash embedder and the extractive summarizer.
    pub fn local_defaults() -> Self {
        Self {
            embedder: Arc::new(HashEmbedder::default()),
            summarizer: Arc::new(LocalSummarizer),
        }
    }
}
