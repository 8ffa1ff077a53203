//! Reading a candle custom op's CPU input as the plain slice the `kernels` take.

use candle_core::{CpuStorage, Layout, Result, bail};

/// The values of a contiguous f32 tensor, or an error naming `op`.
pub(super) fn f32_slice<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("{op}: f32 tensors only")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("{op}: contiguous tensors only"),
    }
}
