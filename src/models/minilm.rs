//! `local` embedder: all-MiniLM-L6-v2 (a 6-layer BERT) through candle, from safetensors. Mean
//! pooling over the attention mask and L2 normalisation, as sentence-transformers does, with
//! its 256-token limit. Runs on the bounded blocking pool in batches of up to 32, as many
//! batches at once as there are cores, each batch on one core of its own (a *lane*).
//! Splitting one batch's matrix products across cores instead gains less at these sizes (a
//! few hundred tokens by 384–1,536): measured on two cores, two single-threaded products side
//! by side ran at 212 GFLOP/s in all, one product spread over both at 188, and the rest of a
//! forward pass (attention, normalisation, GELU) runs on one core either way.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use rayon::{ThreadPool, ThreadPoolBuilder};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{
    Embedder, ModelError,
    bert::{Encoder, mean_pool_normalized},
    pool::BlockingPool,
};

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
    model: std::sync::Arc<Encoder>,
    tokenizer: std::sync::Arc<Tokenizer>,
    /// The tokenizer without padding or truncation, to measure texts.
    counter: Tokenizer,
    pool: BlockingPool,
    /// One single-threaded rayon pool per core: candle hands a matrix product to the current
    /// rayon pool, so inside a lane it runs on that lane's core alone.
    lanes: std::sync::Arc<Vec<ThreadPool>>,
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
        let model = Encoder::load(vb, &config)
            .map_err(|e| ModelError::unavailable(format!("{DIR}/model.safetensors: {e}")))?;
        if model.hidden_size() != DIMENSION {
            return Err(ModelError::unavailable(format!(
                "{DIR}: expected {DIMENSION}-dimensional vectors, the config says {}",
                config.hidden_size
            )));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let lanes = (0..cores)
            .map(|i| {
                ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("minilm-lane-{i}"))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::unavailable(format!("starting the embedding threads: {e}")))?;
        Ok(Self {
            model: model.into(),
            tokenizer: tokenizer.into(),
            counter,
            pool,
            lanes: lanes.into(),
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
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // Similar lengths share a batch, so little of each batch is padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut vectors = vec![Vec::new(); texts.len()];
        // Each blocking job runs one batch per lane; the slot is given back between jobs, so
        // a query's embedding is not stuck behind a long upload.
        let per_job = BATCH * self.lanes.len();
        for group in order.chunks(per_job) {
            let inputs: Vec<String> = group.iter().map(|&i| texts[i].clone()).collect();
            // A group smaller than a batch per lane is shared out evenly, so that a short
            // document's chunks use every core too.
            let batch = group.len().div_ceil(self.lanes.len());
            let (model, tokenizer) = (self.model.clone(), self.tokenizer.clone());
            let lanes = self.lanes.clone();
            let embedded = self
                .pool
                .run(move || {
                    std::thread::scope(|scope| {
                        let running: Vec<_> = inputs
                            .chunks(batch)
                            .zip(lanes.iter())
                            .map(|(batch, lane)| {
                                let (model, tokenizer) = (&model, &tokenizer);
                                scope.spawn(move || {
                                    lane.install(|| embed_batch(model, tokenizer, batch.to_vec()))
                                })
                            })
                            .collect();
                        running
                            .into_iter()
                            .map(|batch| {
                                batch
                                    .join()
                                    .map_err(|_| anyhow::anyhow!("an embedding thread panicked"))?
                            })
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .await??;
            for (&i, vector) in group.iter().zip(embedded.into_iter().flatten()) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }
}

/// One forward pass: token ids → hidden states → masked mean → unit vectors.
fn embed_batch(
    model: &Encoder,
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
    let hidden = model.forward(&ids, &mask)?;
    Ok(mean_pool_normalized(&hidden, &mask)?.to_vec2()?)
}
