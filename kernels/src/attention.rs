//! BERT's self-attention, from the fused query-key-value projection straight to the context.

use crate::math::{exp, sum};

/// The layout of one batch: `sentences` rows of `width` tokens, `heads` heads of `head_size`.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Rows of the batch.
    pub sentences: usize,
    /// Tokens per row, padding included.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// Components per head.
    pub head_size: usize,
}

/// `softmax(q·kᵀ) · v` per sentence and head over `qkv` (tokens, 3 × hidden) — per token the
/// (pre-scaled) query, then the key, then the value, each heads × head_size — where `mask`
/// (sentences × width) is non-zero for real tokens; padded keys take no part (the additive
/// mask of the reference gives them weight 0 exactly). Returns the context (tokens, hidden),
/// heads side by side. A sentence without a real token gets zeros.
pub fn self_attention(qkv: &[f32], mask: &[f32], shape: AttentionShape) -> Vec<f32> {
    // The head size a constant where it is a common one, so that a query and a context row
    // stay in registers.
    match shape.head_size {
        32 => attend::<32>(qkv, mask, shape),
        64 => attend::<64>(qkv, mask, shape),
        _ => attend::<0>(qkv, mask, shape),
    }
}

/// Keys per block of scores, held in registers while a query's components are added in.
const BLOCK: usize = 16;

/// [`self_attention`] for heads of `HS` (0: of `shape.head_size`).
fn attend<const HS: usize>(qkv: &[f32], mask: &[f32], shape: AttentionShape) -> Vec<f32> {
    let AttentionShape {
        sentences,
        width,
        heads,
        head_size,
    } = shape;
    let head_size = if HS == 0 { head_size } else { HS };
    let hidden = heads * head_size;
    let stride = 3 * hidden;
    let padded = width.div_ceil(BLOCK) * BLOCK;
    let mut context = vec![0.0; sentences * width * hidden];
    // One head's keys, transposed (head_size × padded, zeros past the real ones), and values
    // (real tokens × head_size).
    let mut keys = vec![0.0; head_size * padded];
    let mut values = vec![0.0; width * head_size];
    let mut scores = vec![0.0; padded];
    let mut real = Vec::with_capacity(width);
    for sentence in 0..sentences {
        let first = sentence * width;
        real.clear();
        real.extend((0..width).filter(|&j| mask.get(first + j).is_some_and(|&m| m != 0.0)));
        let n = real.len();
        if n == 0 {
            continue;
        }
        let blocks = n.div_ceil(BLOCK);
        let row = blocks * BLOCK;
        for head in 0..heads {
            let (q_at, k_at, v_at) = (
                head * head_size,
                hidden + head * head_size,
                2 * hidden + head * head_size,
            );
            keys[..head_size * row].fill(0.0);
            for (jj, &j) in real.iter().enumerate() {
                let token = &qkv[(first + j) * stride..][..stride];
                for (d, &k) in token[k_at..][..head_size].iter().enumerate() {
                    keys[d * row + jj] = k;
                }
                values[jj * head_size..][..head_size].copy_from_slice(&token[v_at..][..head_size]);
            }
            for i in 0..width {
                let query = &qkv[(first + i) * stride + q_at..][..head_size];
                for (b, block) in scores[..row].chunks_exact_mut(BLOCK).enumerate() {
                    let mut acc = [0.0f32; BLOCK];
                    for (d, &q) in query.iter().enumerate() {
                        for (a, &k) in acc.iter_mut().zip(&keys[d * row + b * BLOCK..][..BLOCK]) {
                            *a += q * k;
                        }
                    }
                    block.copy_from_slice(&acc);
                }
                let scores = &mut scores[..n];
                let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
                for s in scores.iter_mut() {
                    *s = exp(*s - max);
                }
                let scale = 1.0 / sum(scores, |p| p);
                let out = &mut context[(first + i) * hidden + q_at..][..head_size];
                if HS == 0 {
                    for (&p, value) in scores.iter().zip(values.chunks_exact(head_size)) {
                        for (o, &v) in out.iter_mut().zip(value) {
                            *o += p * v;
                        }
                    }
                    for o in out {
                        *o *= scale;
                    }
                } else {
                    let mut acc = [0.0f32; HS];
                    for (&p, value) in scores.iter().zip(values.chunks_exact(HS)) {
                        for (a, &v) in acc.iter_mut().zip(value) {
                            *a += p * v;
                        }
                    }
                    for (o, a) in out.iter_mut().zip(acc) {
                        *o = a * scale;
                    }
                }
            }
        }
    }
    context
}
