//! The loops of the local models' forward passes that candle does not fuse, over plain slices
//! that the compiler vectorises. A crate of its own, without dependencies, so that the dev
//! profile (which builds the main crate at opt-level 1, where LLVM vectorises no loop) builds
//! it optimised like the dependencies; `models/` wraps each kernel as a candle custom op.
//!
//! The kernels take their sizes on trust: callers check the shapes first.

mod attention;
mod gelu;
mod math;
mod norm;

pub use attention::{AttentionShape, self_attention};
pub use gelu::bias_gelu;
pub use math::exp;
pub use norm::residual_norm;
