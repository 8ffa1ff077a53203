//! Scalar functions in operations that vectorise.

/// `Σ f(x)` in sixteen partial sums, so that it vectorises (a plain sum is one long chain
/// the compiler may not reorder).
#[inline(always)]
pub(crate) fn sum(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut partial = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for chunk in chunks {
        for (p, &x) in partial.iter_mut().zip(chunk) {
            *p += f(x);
        }
    }
    partial.iter().sum::<f32>() + rest
}

/// `eˣ` for x ≤ 0 in f32 (Cephes' `expf`: x = n·ln 2 + r, a degree-6 polynomial for eʳ, 2ⁿ
/// from the exponent bits), within two ulps of the standard library's. Below -87 it gives
/// about 1e-38 rather than 0, which no softmax weight notices; above 0 it gives 1.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, the first with few bits, so that n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 0.0);
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    // n is in [-126, 0], so the biased exponent n + 127 is a normal number's.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `erf` in f32: Eigen's `generic_fast_erf_float` (also XLA's and TVM's), `x · α(x²) / β(x²)`
/// on [-4, 4], beyond which erf is ±1 in f32.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    /// Numerator coefficients, highest power of x² first.
    const ALPHA: [f64; 7] = [
        -2.72614225801306e-10,
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ];
    /// Denominator coefficients, highest power of x² first.
    const BETA: [f64; 5] = [
        -1.45660718464996e-05,
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0, |p, &a| p * x2 + a as f32);
    let q = BETA.iter().fold(0.0, |q, &b| q * x2 + b as f32);
    x * p / q
}
