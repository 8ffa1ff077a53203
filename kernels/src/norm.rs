//! BERT's "add and norm" after a projection.

use crate::math::sum;

/// `layer_norm(projected + bias + residual) · weight + shift` row by row, rows as wide as
/// `bias`: both adds and the normalisation in one pass, its sums in vectorised partial sums.
pub fn residual_norm(
    projected: &[f32],
    residual: &[f32],
    [bias, weight, shift]: [&[f32]; 3],
    eps: f32,
) -> Vec<f32> {
    let width = bias.len();
    let mut out = vec![0.0; projected.len()];
    for ((out, projected), residual) in out
        .chunks_exact_mut(width)
        .zip(projected.chunks_exact(width))
        .zip(residual.chunks_exact(width))
    {
        for (((o, &p), &r), &b) in out.iter_mut().zip(projected).zip(residual).zip(bias) {
            *o = p + b + r;
        }
        let mean = sum(out, |x| x) / width as f32;
        let variance = sum(out, |x| (x - mean) * (x - mean)) / width as f32;
        let scale = 1.0 / (variance + eps).sqrt();
        for ((o, &w), &s) in out.iter_mut().zip(weight).zip(shift) {
            *o = (*o - mean) * scale * w + s;
        }
    }
    out
}
