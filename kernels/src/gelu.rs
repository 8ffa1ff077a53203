//! The bias add and exact GELU after BERT's intermediate projection.

use crate::math::erf;

/// `gelu(x + bias)` row by row, rows as wide as `bias`; `erf` by Eigen's rational
/// approximation, which vectorises where the standard `erff` is called once per element.
pub fn bias_gelu(x: &[f32], bias: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for (out, x) in out
        .chunks_exact_mut(bias.len())
        .zip(x.chunks_exact(bias.len()))
    {
        for ((out, &x), &b) in out.iter_mut().zip(x).zip(bias) {
            let x = x + b;
            *out = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
    out
}
