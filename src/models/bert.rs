//! The BERT encoder behind the `local` embedder, laid out for throughput on the CPU: every
//! projection is one plain matrix product over all tokens of the batch (weights stored
//! transposed and contiguous), the query, key and value projections are fused into one, the
//! attention scale is folded into the query weights, attention from that projection to the
//! context is one fused pass, and so are each output projection's bias, residual add and layer
//! norm, and the intermediate projection's bias and GELU.
//! Numerically it is the Hugging Face `BertModel` forward pass.

use candle_core::{
    D, DType, Device, Result, Tensor,
    quantized::{GgmlDType, ggml_file::qtensor_from_ggml},
};
use candle_nn::{VarBuilder, ops::layer_norm};
use candle_transformers::models::bert::{Config, HiddenAct};

use super::{attention::SelfAttention, gelu::BiasGelu, norm::ResidualNorm};

/// An affine projection `x · W + b`, with `W` stored as (inputs, outputs).
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// Reads a PyTorch `Linear` (weight stored as outputs × inputs).
    fn load(vb: &VarBuilder, inputs: usize, outputs: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get((outputs, inputs), "weight")?.t()?.contiguous()?,
            bias: vb.get(outputs, "bias")?,
        })
    }

    /// Stacks projections of the same input side by side (their outputs concatenated).
    fn fuse(parts: &[Dense]) -> Result<Self> {
        let weights: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let biases: Vec<&Tensor> = parts.iter().map(|p| &p.bias).collect();
        Ok(Self {
            weight: Tensor::cat(&weights, 1)?.contiguous()?,
            bias: Tensor::cat(&biases, 0)?,
        })
    }

    fn scaled(self, factor: f64) -> Result<Self> {
        Ok(Self {
            weight: (self.weight * factor)?,
            bias: (self.bias * factor)?,
        })
    }

    /// `x` is (tokens, inputs).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?.broadcast_add(&self.bias)
    }

    /// [`Dense::forward`] followed by the exact GELU, the bias add and the activation fused.
    fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?
            .apply_op2_no_bwd(&self.bias, &BiasGelu)
    }
}

/// A projection followed by BERT's add and norm, `layer_norm(x·W + b + residual)`, the adds
/// and the normalisation fused.
struct DenseNorm {
    weight: Tensor,
    /// Bias, norm weight and norm shift, (3, outputs).
    params: Tensor,
    norm: ResidualNorm,
}

impl DenseNorm {
    fn load(
        dense: &VarBuilder,
        norm: &VarBuilder,
        inputs: usize,
        outputs: usize,
        eps: f64,
    ) -> Result<Self> {
        let Dense { weight, bias } = Dense::load(dense, inputs, outputs)?;
        let norm = Norm::load(norm, outputs, eps)?;
        Ok(Self {
            weight,
            params: Tensor::stack(&[&bias, &norm.weight, &norm.bias], 0)?,
            norm: ResidualNorm { eps: norm.eps },
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight)?
            .apply_op3_no_bwd(residual, &self.params, &self.norm)
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    /// Query (pre-scaled), key and value, side by side.
    qkv: Dense,
    /// Attention's output projection, add and norm.
    attention_output: DenseNorm,
    intermediate: Dense,
    /// The feed-forward block's output projection, add and norm.
    output: DenseNorm,
}

/// The word embeddings: a table of floats, or of 4-bit blocks (GGML's `Q4_0`: 18 bytes per
/// 32 weights) read a row per token, which keeps a 250,000-word table at a seventh of its
/// size as floats.
pub enum Words {
    /// (vocabulary, hidden) floats.
    Dense(Tensor),
    /// `Q4_0` rows of `hidden` weights each.
    Q4_0 {
        /// The rows, one after another.
        blocks: Vec<u8>,
        /// Rows in the table.
        rows: usize,
        /// Weights per row.
        hidden: usize,
    },
}

impl Words {
    /// The embeddings of `ids`, (ids, hidden).
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            Self::Dense(table) => table.index_select(ids, 0),
            Self::Q4_0 {
                blocks,
                rows,
                hidden,
            } => {
                let row_bytes = hidden / GgmlDType::Q4_0.block_size() * GgmlDType::Q4_0.type_size();
                let ids = ids.to_vec1::<u32>()?;
                let mut gathered = Vec::with_capacity(ids.len() * row_bytes);
                for &id in &ids {
                    let id = id as usize;
                    if id >= *rows {
                        candle_core::bail!("token id {id} outside the vocabulary of {rows}");
                    }
                    gathered.extend_from_slice(&blocks[id * row_bytes..(id + 1) * row_bytes]);
                }
                qtensor_from_ggml(
                    GgmlDType::Q4_0,
                    &gathered,
                    vec![ids.len(), *hidden],
                    &Device::Cpu,
                )?
                .dequantize(&Device::Cpu)
            }
        }
    }
}

/// A BERT encoder (embeddings and transformer layers, no pooler).
pub struct Encoder {
    words: Words,
    /// Position embeddings plus the (single) token-type embedding, (positions, hidden).
    positions: Tensor,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

impl Encoder {
    /// Reads the weights of a Hugging Face BERT checkpoint (with or without the `bert.` prefix).
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let words = vb.pp("embeddings").get(
            (config.vocab_size, config.hidden_size),
            "word_embeddings.weight",
        )?;
        Self::load_with_words(vb, config, Words::Dense(words))
    }

    /// Reads the weights of a BERT checkpoint named as Hugging Face names them, but for the
    /// word embeddings, which are given.
    pub fn load_with_words(vb: VarBuilder, config: &Config, words: Words) -> Result<Self> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("only BERT with the exact GELU is supported");
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        let head_size = hidden / heads;
        let eps = config.layer_norm_eps;
        let embeddings = vb.pp("embeddings");
        let positions = embeddings
            .get(
                (config.max_position_embeddings, hidden),
                "position_embeddings.weight",
            )?
            .broadcast_add(
                &embeddings
                    .get(
                        (config.type_vocab_size, hidden),
                        "token_type_embeddings.weight",
                    )?
                    .get(0)?,
            )?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let layer = vb.pp(format!("encoder.layer.{i}"));
                let attention = layer.pp("attention");
                let projection =
                    |name: &str| Dense::load(&attention.pp("self").pp(name), hidden, hidden);
                let query = projection("query")?.scaled(1.0 / (head_size as f64).sqrt())?;
                Ok(Layer {
                    qkv: Dense::fuse(&[query, projection("key")?, projection("value")?])?,
                    attention_output: DenseNorm::load(
                        &attention.pp("output.dense"),
                        &attention.pp("output.LayerNorm"),
                        hidden,
                        hidden,
                        eps,
                    )?,
                    intermediate: Dense::load(
                        &layer.pp("intermediate.dense"),
                        hidden,
                        config.intermediate_size,
                    )?,
                    output: DenseNorm::load(
                        &layer.pp("output.dense"),
                        &layer.pp("output.LayerNorm"),
                        config.intermediate_size,
                        hidden,
                        eps,
                    )?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            words,
            positions,
            embedding_norm: Norm::load(&embeddings.pp("LayerNorm"), hidden, eps)?,
            layers,
            heads,
            hidden,
        })
    }

    /// Hidden states (rows, width, hidden) for token ids and attention mask, both (rows, width).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (rows, width) = ids.dims2()?;
        let tokens = rows * width;
        let words = self.words.lookup(&ids.flatten_all()?)?;
        let x = words
            .reshape((rows, width, self.hidden))?
            .broadcast_add(&self.positions.narrow(0, 0, width)?)?
            .reshape((tokens, self.hidden))?;
        let mut x = self.embedding_norm.forward(&x)?;
        let mask = mask.to_dtype(DType::F32)?;
        let attention = SelfAttention { heads: self.heads };
        for layer in &self.layers {
            let context = layer.qkv.forward(&x)?.apply_op2_no_bwd(&mask, &attention)?;
            let attended = layer.attention_output.forward(&context, &x)?;
            let expanded = layer.intermediate.forward_gelu(&attended)?;
            x = layer.output.forward(&expanded, &attended)?;
        }
        x.reshape((rows, width, self.hidden))
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }
}

/// Masked mean over the tokens of each row, scaled to unit length: (rows, width, hidden) →
/// (rows, hidden).
pub fn mean_pool_normalized(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norms)
}
