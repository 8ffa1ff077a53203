//! `local` embedder: all-MiniLM-L6-v2 (a 6-layer BERT) through candle, from safetensors. Mean
//! pooling over the attention mask and L2 normalisation, as sentence-transformers does, with
//! its 256-token limit. Runs batched on the bounded blocking pool.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{Embedder, ModelError, pool::BlockingPool};

/// The model's directory under the models dir.
pub const DIR: &str = "all-MiniLM-L6-v2";
/// The files it needs there.
pub const FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// sentence-transformers' `max_seq_length` for this model.
const MAX_TOKENS: usize = 256;
/// Texts per forward pass.
const BATCH: usize = 32;
const DIMENSION: usize = 384;

/// all-MiniLM-L6-v2 on the CPU.
pub struct MiniLmEmbedder {
    model: std::sync::Arc<BertModel>,
    tokenizer: std::sync::Arc<Tokenizer>,
    pool: BlockingPool,
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
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| ModelError::unavailable(format!("{DIR}/tokenizer.json: {e}")))?;
        let weights = read(&path("model.safetensors"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/model.safetensors: {e}")))?;
        if config.hidden_size != DIMENSION {
            return Err(ModelError::unavailable(format!(
                "{DIR}: expected {DIMENSION}-dimensional vectors, the config says {}",
                config.hidden_size
            )));
        }
        Ok(Self {
            model: model.into(),
            tokenizer: tokenizer.into(),
            pool,
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

    async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Similar lengths share a batch, so little of each batch is padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut vectors = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<String> = batch.iter().map(|&i| texts[i].clone()).collect();
            let (model, tokenizer) = (self.model.clone(), self.tokenizer.clone());
            let embedded = self
                .pool
                .run(move || embed_batch(&model, &tokenizer, inputs))
                .await??;
            for (&i, vector) in batch.iter().zip(embedded) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }
}

/// One forward pass: token ids → hidden states → masked mean → unit vectors.
fn embed_batch(
    model: &BertModel,
    tokenizer: &Tokenizer,
    texts: Vec<String>,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let encodings = tokenizer
        .encode_batch(texts, true)
        .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
    let rows = encodings.len();
    let width = encodings.first().map_or(0, |e| e.get_ids().len());
    let mut ids = Vec::with_capacity(rows * width);
    let mut mask = Vec::with_capacity(rows * width);
    for encoding in &encodings {
        ids.extend_from_slice(encoding.get_ids());
        mask.extend_from_slice(encoding.get_attention_mask());
    }
    let device = &Device::Cpu;
    let ids = Tensor::from_vec(ids, (rows, width), device)?;
    let mask = Tensor::from_vec(mask, (rows, width), device)?;
    let token_types = ids.zeros_like()?;
    let hidden = model.forward(&ids, &token_types, Some(&mask))?;
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(mean.broadcast_div(&norms)?.to_vec2()?)
}
