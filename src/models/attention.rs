//! BERT's self-attention for one batch as one candle custom op: from the fused query, key and
//! value projection straight to the context, `softmax(q·kᵀ + padding) · v` per sentence and
//! head. Done with tensor operations it took a permuted copy of the projection, two batched
//! matrix products of (sentences × heads) tiny products each, a broadcast add of the mask, a
//! softmax calling the scalar `expf` per score, and a transposed copy back. Here padded keys
//! are skipped (the mask would give them weight 0 exactly), and the loops
//! ([`kernels::self_attention`]) are plain slices the compiler vectorises, `exp` included.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, bail};

use super::op_input::f32_slice;

/// Attention over `qkv` (tokens, 3 × hidden) — per token the (pre-scaled) query, the key and the
/// value, each `heads` heads wide — with `mask` (sentences, width), non-zero where a token is
/// real. Gives the context (tokens, hidden), heads side by side per token.
pub(super) struct SelfAttention {
    /// Attention heads per token.
    pub heads: usize,
}

impl CustomOp2 for SelfAttention {
    fn name(&self) -> &'static str {
        "bert-self-attention"
    }

    fn cpu_fwd(
        &self,
        qkv: &CpuStorage,
        qkv_layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(self.name(), qkv, qkv_layout)?;
        let mask = f32_slice(self.name(), mask, mask_layout)?;
        let (sentences, width) = mask_layout.shape().dims2()?;
        let (tokens, stride) = qkv_layout.shape().dims2()?;
        if tokens != sentences * width || self.heads == 0 || stride % (3 * self.heads) != 0 {
            bail!(
                "self-attention: {tokens} tokens of {stride} for {sentences} sentences of \
                 {width} and {} heads",
                self.heads
            );
        }
        let head_size = stride / 3 / self.heads;
        let shape = kernels::AttentionShape {
            sentences,
            width,
            heads: self.heads,
            head_size,
        };
        Ok((
            CpuStorage::F32(kernels::self_attention(qkv, mask, shape)),
            Shape::from((tokens, stride / 3)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use candle_nn::ops::softmax_last_dim;

    use super::SelfAttention;

    /// The same attention with candle's tensor operations, as the encoder did it before.
    fn reference(qkv: &Tensor, mask: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (sentences, width) = mask.dims2()?;
        let hidden = qkv.dim(1)? / 3;
        let head_size = hidden / heads;
        let padding = ((1.0 - mask)? * f64::from(f32::MIN))?.reshape((sentences, 1, 1, width))?;
        let qkv = qkv
            .reshape((sentences, width, 3, heads, head_size))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(&padding)?;
        softmax_last_dim(&scores)?
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((sentences * width, hidden))
    }

    #[test]
    fn fused_attention_matches_the_tensor_operations_and_ignores_padding() -> anyhow::Result<()> {
        // MiniLM's head size (the kernel's register path) and another (its general one); real
        // lengths across the kernel's blocks of 16 keys.
        for head_size in [32, 8] {
            attention_matches(head_size, 19, &[19, 17, 4, 1])?;
        }
        Ok(())
    }

    fn attention_matches(head_size: usize, width: usize, lengths: &[usize]) -> anyhow::Result<()> {
        let (sentences, heads) = (lengths.len(), 4);
        let hidden = heads * head_size;
        let device = &Device::Cpu;
        let qkv = (Tensor::randn(0f32, 1.0, (sentences * width, 3 * hidden), device)? * 2.0)?;
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..width).map(move |j| if j < n { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (sentences, width), device)?;
        let fused = qkv.apply_op2_no_bwd(&mask, &SelfAttention { heads })?;
        let reference = reference(&qkv, &mask, heads)?;
        let largest = |t: &Tensor| t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>();
        let worst = largest(&(&fused - &reference)?)?;
        assert!(
            worst < 1e-5 * largest(&reference)?,
            "head size {head_size}: largest difference {worst}"
        );

        // What stands in a padded token's key and value changes nothing.
        let noise = (Tensor::randn(0f32, 10.0, qkv.shape(), device)?
            * mask
                .affine(-1.0, 1.0)?
                .reshape((sentences * width, 1))?
                .broadcast_as(qkv.shape())?)?;
        let noisy = (&qkv + noise)?.apply_op2_no_bwd(&mask, &SelfAttention { heads })?;
        let real_rows: Vec<u32> = lengths
            .iter()
            .enumerate()
            .flat_map(|(s, &n)| (0..n).map(move |j| (s * width + j) as u32))
            .collect();
        let real_rows = Tensor::new(real_rows, device)?;
        let moved =
            largest(&(fused.index_select(&real_rows, 0)? - noisy.index_select(&real_rows, 0)?)?)?;
        assert!(
            moved == 0.0,
            "padding moved a real token's context by {moved}"
        );
        Ok(())
    }

    #[test]
    fn exp_is_within_two_ulps_of_the_standard_library_on_softmax_inputs() {
        for i in 0..=87_000 {
            let x = -(i as f32) / 1_000.0;
            let (ours, std) = (kernels::exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 2.0 * f32::EPSILON * std,
                "exp({x}) = {ours}, std {std}"
            );
        }
    }
}
