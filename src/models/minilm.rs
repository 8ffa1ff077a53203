//! The English embedder: all-MiniLM-L6-v2 (a 6-layer BERT) through candle, from safetensors,
//! with sentence-transformers' 256-token limit, run by [`SentenceEncoder`].

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::{Tokenizer, TruncationParams};

use super::{
    Embedder, ModelError,
    bert::Encoder,
    pool::BlockingPool,
    sentence::{SentenceEncoder, Vocabulary},
};

/// The model's directory under the models dir.
pub const DIR: &str = "all-MiniLM-L6-v2";
/// The files it needs there.
pub const FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// sentence-transformers' `max_seq_length` for this model.
const MAX_TOKENS: usize = 256;
const DIMENSION: usize = 384;

/// all-MiniLM-L6-v2 on the CPU.
pub struct MiniLmEmbedder {
    encoder: SentenceEncoder,
    /// The tokenizer without truncation, to measure texts.
    counter: Tokenizer,
}

/// The WordPiece tokenizer, cut to the window.
struct WordPieces(Tokenizer);

impl Vocabulary for WordPieces {
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
        Ok(self
            .0
            .encode(text, true)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?
            .get_ids()
            .to_vec())
    }

    fn pad_id(&self) -> u32 {
        0
    }
}

impl MiniLmEmbedder {
    /// Loads the model from `<models_dir>/all-MiniLM-L6-v2`.
    pub fn load(models_dir: &Path, pool: BlockingPool) -> Result<Self, ModelError> {
        let dir = models_dir.join(DIR);
        let path = |file: &str| -> PathBuf { dir.join(file) };
        let config: Config = serde_json::from_slice(&read(&path("config.json"))?)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(path("tokenizer.json"))
            .map_err(|e| ModelError::unavailable(format!("{DIR}/tokenizer.json: {e}")))?;
        let mut counter = tokenizer.clone();
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::unavailable(format!("{DIR}/tokenizer.json: {e}")))?;
        let weights = read(&path("model.safetensors"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/model.safetensors: {e}")))?;
        let model = Encoder::load(vb, &config)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/model.safetensors: {e}")))?;
        if model.hidden_size() != DIMENSION {
            return Err(ModelError::unavailable(format!(
                "{DIR}: expected {DIMENSION}-dimensional vectors, the config says {}",
                config.hidden_size
            )));
        }
        Ok(Self {
            encoder: SentenceEncoder::new(model, Arc::new(WordPieces(tokenizer)), pool, "minilm")?,
            counter,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|e| ModelError::unavailable(format!("{}: {e}", path.display())))
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn id(&self) -> &str {
        "all-MiniLM-L6-v2"
    }

    fn dimension(&self) -> usize {
        DIMENSION
    }

    fn languages(&self) -> Option<&'static [&'static str]> {
        // Trained on English pairs: other languages land near each other whatever they say.
        Some(&["en"])
    }

    fn window(&self) -> Option<usize> {
        // [CLS] and [SEP] take two of the 256.
        Some(MAX_TOKENS - 2)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.counter
            .encode(text, false)
            .map_or_else(|_| text.chars().count(), |e| e.get_ids().len())
    }

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.encoder.embed(texts).await
    }
}
