//! The bias add and the exact GELU after BERT's intermediate projection, fused into one pass
//! over its output as a candle custom op ([`kernels::bias_gelu`]). `erf` is evaluated with the
//! rational approximation of Eigen, which vectorises, where candle's `gelu_erf` calls the scalar
//! `erff` once per element — on the widest activation of the encoder (tokens × 1,536).

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, bail};

use super::op_input::f32_slice;

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
        let x = f32_slice(self.name(), x, x_layout)?;
        let bias = f32_slice(self.name(), bias, bias_layout)?;
        if bias.is_empty() || x_layout.dims().last() != Some(&bias.len()) {
            bail!("bias-gelu: the bias must be as wide as the last dimension");
        }
        Ok((
            CpuStorage::F32(kernels::bias_gelu(x, bias)),
            x_layout.shape().clone(),
        ))
    }
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
