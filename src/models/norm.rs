//! BERT's "add and norm" after a projection, `layer_norm(x·W + b + residual)`, with the bias
//! add, the residual add and the normalisation in one pass over the projection's output as a
//! candle custom op ([`kernels::residual_norm`]), its sums in partial sums that vectorise
//! (candle-nn's layer norm adds one element at a time, and the two adds before it each wrote a
//! tensor of their own).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, bail};

use super::op_input::f32_slice;

/// `layer_norm(projected + bias + residual) · weight + shift` over the last dimension, with
/// `params` (3, width) holding bias, weight and shift; all contiguous f32.
pub(super) struct ResidualNorm {
    /// Added to the variance before its square root.
    pub eps: f32,
}

impl CustomOp3 for ResidualNorm {
    fn name(&self) -> &'static str {
        "residual-norm"
    }

    fn cpu_fwd(
        &self,
        projected: &CpuStorage,
        projected_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
        params: &CpuStorage,
        params_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let projected = f32_slice(self.name(), projected, projected_layout)?;
        let residual = f32_slice(self.name(), residual, residual_layout)?;
        let params = f32_slice(self.name(), params, params_layout)?;
        let width = params.len() / 3;
        if width == 0
            || params_layout.dims() != [3, width]
            || projected_layout.dims().last() != Some(&width)
            || projected_layout.dims() != residual_layout.dims()
        {
            bail!(
                "residual-norm: shapes {:?}, {:?} and {:?} do not match",
                projected_layout.dims(),
                residual_layout.dims(),
                params_layout.dims()
            );
        }
        let (bias, rest) = params.split_at(width);
        let (weight, shift) = rest.split_at(width);
        let out = kernels::residual_norm(projected, residual, [bias, weight, shift], self.eps);
        Ok((CpuStorage::F32(out), projected_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use candle_nn::ops::layer_norm;

    use super::ResidualNorm;

    #[test]
    fn residual_norm_matches_adding_then_candles_layer_norm() -> anyhow::Result<()> {
        let (tokens, width) = (5, 40);
        let device = &Device::Cpu;
        let projected = (Tensor::randn(0f32, 1.0, (tokens, width), device)? * 3.0)?;
        let residual = (Tensor::randn(0f32, 1.0, (tokens, width), device)? + 2.0)?;
        let bias = Tensor::randn(0f32, 1.0, width, device)?;
        let weight = Tensor::randn(1f32, 0.2, width, device)?;
        let shift = Tensor::randn(0f32, 0.2, width, device)?;
        let params = Tensor::stack(&[&bias, &weight, &shift], 0)?;
        let fused = projected.apply_op3_no_bwd(&residual, &params, &ResidualNorm { eps: 1e-12 })?;
        let reference = layer_norm(
            &(projected.broadcast_add(&bias)? + &residual)?,
            &weight,
            &shift,
            1e-12,
        )?;
        let worst = (fused - reference)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        assert!(worst < 1e-5, "largest difference {worst}");
        Ok(())
    }
}
