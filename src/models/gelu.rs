//! The bias add and the exact GELU after BERT's intermediate projection, fused into one pass
//! over its output as a candle custom op. `erf` is evaluated with the rational approximation of
//! Eigen (also XLA's and TVM's), which the compiler turns into vector instructions, where
//! candle's `gelu_erf` calls the scalar `erff` once per element — the widest activation of the
//! encoder (tokens × 1,536), so it was several percent of an embedding pass.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, bail};

/// `gelu(x + bias)` over the last dimension of `x`; both contiguous f32.
pub(super) struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(bias)) = (x, bias) else {
            bail!("bias-gelu: f32 tensors only")
        };
        let (Some((x_start, x_end)), Some((bias_start, bias_end))) = (
            x_layout.contiguous_offsets(),
            bias_layout.contiguous_offsets(),
        ) else {
            bail!("bias-gelu: contiguous tensors only")
        };
        let (x, bias) = (&x[x_start..x_end], &bias[bias_start..bias_end]);
        if bias.is_empty() || x_layout.dims().last() != Some(&bias.len()) {
            bail!("bias-gelu: the bias must be as wide as the last dimension");
        }
        let mut out = vec![0.0; x.len()];
        for (out, x) in out
            .chunks_exact_mut(bias.len())
            .zip(x.chunks_exact(bias.len()))
        {
            for ((out, &x), &b) in out.iter_mut().zip(x).zip(bias) {
                *out = gelu(x + b);
            }
        }
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }
}

/// The exact GELU, `x · Φ(x)`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Eigen's numerator coefficients, highest power of x² first.
const ALPHA: [f64; 7] = [
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
];
/// Eigen's denominator coefficients, highest power of x² first.
const BETA: [f64; 5] = [
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
];

/// `erf` in f32: Eigen's `generic_fast_erf_float`, `x · α(x²) / β(x²)` on [-4, 4] (beyond
/// which erf is ±1 in f32).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0, |p, &a| p * x2 + a as f32);
    let q = BETA.iter().fold(0.0, |q, &b| q * x2 + b as f32);
    x * p / q
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::BiasGelu;

    #[test]
    fn fused_bias_gelu_matches_candles_exact_gelu_after_the_bias_add() -> anyhow::Result<()> {
        let width = 7;
        let values: Vec<f32> = (0..4_001).map(|i| (i as f32 - 2_000.0) / 200.0).collect();
        let rows = values.len() / width;
        let x = Tensor::from_slice(&values[..rows * width], (rows, width), &Device::Cpu)?;
        let bias = Tensor::from_slice(
            &[0.0f32, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0],
            width,
            &Device::Cpu,
        )?;
        let fused = x.apply_op2_no_bwd(&bias, &BiasGelu)?;
        let reference = x.broadcast_add(&bias)?.gelu_erf()?;
        let worst = (fused - reference)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        assert!(worst < 2e-6, "largest difference {worst}");
        Ok(())
    }
}
