//! Sentence embeddings from a BERT encoder on the CPU, shared by the local embedders: texts
//! run on the bounded blocking pool in batches of up to 32, as many batches at once as there
//! are cores, each batch on one core of its own (a *lane*), then mean pooling over the
//! attention mask and L2 normalisation, as sentence-transformers does.
//!
//! Splitting one batch's matrix products across cores instead gains less at these sizes (a
//! few hundred tokens by 384–1,536): measured on two cores, two single-threaded products side
//! by side ran at 212 GFLOP/s in all, one product spread over both at 188, and the rest of a
//! forward pass (attention, normalisation, GELU) runs on one core either way.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::{
    ModelError,
    bert::{Encoder, mean_pool_normalized},
    pool::BlockingPool,
};

/// Texts per forward pass.
const BATCH: usize = 32;

/// How a model's texts become token ids.
pub trait Vocabulary: Send + Sync {
    /// The ids of `text` with the model's special tokens, cut to the window it reads.
    fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>>;
    /// The id that pads the shorter rows of a batch.
    fn pad_id(&self) -> u32;
}

/// A BERT encoder with its vocabulary, run in lanes.
pub struct SentenceEncoder {
    model: Arc<Encoder>,
    vocabulary: Arc<dyn Vocabulary>,
    pool: BlockingPool,
    /// One single-threaded rayon pool per core: candle hands a matrix product to the current
    /// rayon pool, so inside a lane it runs on that lane's core alone.
    lanes: Arc<Vec<ThreadPool>>,
}

impl SentenceEncoder {
    /// `model` reading what `vocabulary` makes of texts, on `pool`; `name` names its threads.
    pub fn new(
        model: Encoder,
        vocabulary: Arc<dyn Vocabulary>,
        pool: BlockingPool,
        name: &'static str,
    ) -> Result<Self, ModelError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let lanes = (0..cores)
            .map(|i| {
                ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("{name}-lane-{i}"))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ModelError::unavailable(format!("starting the embedding threads: {e}")))?;
        Ok(Self {
            model: model.into(),
            vocabulary,
            pool,
            lanes: lanes.into(),
        })
    }

    /// The width of the vectors.
    pub fn hidden_size(&self) -> usize {
        self.model.hidden_size()
    }

    /// One unit vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
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
            let (model, vocabulary) = (self.model.clone(), self.vocabulary.clone());
            let lanes = self.lanes.clone();
            let embedded = self
                .pool
                .run(move || {
                    std::thread::scope(|scope| {
                        let running: Vec<_> = inputs
                            .chunks(batch)
                            .zip(lanes.iter())
                            .map(|(batch, lane)| {
                                let (model, vocabulary) = (&model, &vocabulary);
                                scope.spawn(move || {
                                    lane.install(|| embed_batch(model, vocabulary.as_ref(), batch))
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

/// One forward pass: token ids padded to the longest → hidden states → masked mean → unit
/// vectors.
fn embed_batch(
    model: &Encoder,
    vocabulary: &dyn Vocabulary,
    texts: &[String],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let encoded = texts
        .iter()
        .map(|text| vocabulary.encode(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rows = encoded.len();
    let width = encoded.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows * width);
    let mut mask = Vec::with_capacity(rows * width);
    for row in &encoded {
        ids.extend_from_slice(row);
        ids.extend(std::iter::repeat_n(vocabulary.pad_id(), width - row.len()));
        mask.extend(std::iter::repeat_n(1u32, row.len()));
        mask.extend(std::iter::repeat_n(0u32, width - row.len()));
    }
    let device = &Device::Cpu;
    let ids = Tensor::from_vec(ids, (rows, width), device)?;
    let mask = Tensor::from_vec(mask, (rows, width), device)?;
    let hidden = model.forward(&ids, &mask)?;
    Ok(mean_pool_normalized(&hidden, &mask)?.to_vec2()?)
}
