//! Standard normal samples by the ziggurat method (Marsaglia & Tsang 2000),
//! split into a branch-free *fast path* that the kernel runs with SIMD on every
//! bit, and an exact scalar *slow path* for the ~0.25 % of draws it rejects.
//!
//! 2048 layers (rather than the usual 128 or 256) because the slow path is
//! branchy scalar code with cache misses: each doubling of the layer count
//! halves how often it runs, and the 16 KiB fast-path table still sits in L1.
//!
//! # Why this is statistically exact
//! The ziggurat covers the density `f(x) = exp(-x²/2)` (x ≥ 0) with 2048 layers
//! of equal area `V`: a base strip that includes the tail beyond `R`, and 2047
//! rectangles. A layer is chosen uniformly, a point uniformly in it; points under
//! the curve are returned, the tail is sampled exactly with Marsaglia's (1964)
//! exponential method, and points in a layer's "wedge" above the curve are
//! rejected and the *whole draw is restarted*. This is plain rejection sampling
//! from the exact density, so the output is N(0, 1) up to floating-point
//! granularity — no truncation, which matters because a BER of 1e-9 is decided
//! by noise beyond 5.6 σ (here handled by the exact tail algorithm).
//!
//! # Word layout
//! One xoshiro256++ output `w` feeds one simulated bit; its fields are disjoint,
//! so they are independent uniform variables (this avoids the correlation of
//! the original 32-bit ziggurat, which reused the index bits in the value —
//! Doornik 2005):
//!
//! | bits   | use                                           |
//! |--------|-----------------------------------------------|
//! | 0..=10 | layer index `i` (2048 layers)                 |
//! | 11     | sign of the noise sample                      |
//! | 12     | the transmitted data bit `b` (used by `sim`)  |
//! | 13..63 | 51-bit magnitude `u ∈ [0, 1)`                 |
//!
//! The tables in `zig_tables.rs` are generated offline with 50-digit
//! arithmetic (`bench/ber-sim/gen_ziggurat.py`) and checked by the tests below.
//! The slow path uses the pure-Rust `libm` crate so that results do not depend
//! on the host's C library.

use crate::rng::Xoshiro256pp;

/// The generated ziggurat tables (`zig_tables.rs`): layer edges `X`, `f(X)`
/// and the in-curve ratios, as exact f64 literals.
//
// The tables are `const` because they are only read while const-evaluating
// `PACKED` and `SLOW` (and by tests); nothing large is copied at run time.
#[allow(
    clippy::excessive_precision,
    clippy::unreadable_literal,
    clippy::large_const_arrays,
    dead_code
)]
mod tables {
    include!("zig_tables.rs");
}
pub(crate) use tables::{F, LAYERS, RATIO, X};

/// Bit position of the sample's sign.
const SIGN_BIT: u32 = LAYERS.trailing_zeros();
/// Bit position of the transmitted data bit.
pub(crate) const DATA_BIT: u32 = SIGN_BIT + 1;
// The magnitude takes bits 13..=63, right above the data bit.
const _: () = assert!(LAYERS.is_power_of_two() && DATA_BIT == 12);

/// Bit pattern of 1.0: OR-ing 52 random bits into it gives a double in [1, 2).
pub(crate) const ONE_BITS: u64 = 0x3FF0_0000_0000_0000;

/// Layer index (bits 0..=10).
#[inline(always)]
pub(crate) fn layer(w: u64) -> usize {
    (w & (LAYERS as u64 - 1)) as usize
}

/// Sign bit of the sample, already shifted to the IEEE sign position.
#[inline(always)]
pub(crate) fn sign_mask(w: u64) -> u64 {
    ((w >> SIGN_BIT) & 1) << 63
}

/// Magnitude `u ∈ [0, 1)` on a grid of 2^-51 (exact: `[1, 2) - 1`): bits
/// 13..=63 become mantissa bits 1..=51; mantissa bit 0, which would be the data
/// bit, is cleared so the two stay independent.
#[inline(always)]
pub(crate) fn magnitude(w: u64) -> f64 {
    f64::from_bits(((w >> 12) & (MANTISSA & !1)) | ONE_BITS) - 1.0
}

/// Biased IEEE exponent subtracted from `X[i]`'s exponent when packing it.
const X_EXP_BASE: u64 = 1019;
const MANTISSA: u64 = (1 << 52) - 1;
/// Base of a packed `eps`'s biased exponent. Its low six bits are zero, so the
/// six stored exponent bits (14..=63 for eps in [2^-49, 1]) can be OR-ed in.
const EPS_EXP_BASE: u64 = 960;
const _: () = assert!(EPS_EXP_BASE & 63 == 0 && 1023 - 49 - EPS_EXP_BASE < 64);

/// Fast-path table: one word per layer, so the SIMD loop needs a single gather
/// per bit (gathers are its bottleneck; two tables cost ~35 % more time).
///
/// Layout of `PACKED[i]`:
/// * bits 0..=51: the mantissa of `X[i]`, bits 52..=54: its exponent minus
///   [`X_EXP_BASE`] — `X[i]` is recovered *exactly* (all edges lie in
///   [0.0625, 8), so three exponent bits suffice);
/// * bits 55..=63: `eps = 2^-E·(1 + M/8)` as a 9-bit mini-float (3 mantissa
///   bits `M`, 6 exponent bits = biased exponent − [`EPS_EXP_BASE`]), the
///   smallest such value with `1 - eps <= RATIO[i]`; the fast path accepts
///   when `1 - u > eps`. Decoding it is a shift and a mask-and-or.
///
/// The threshold is conservative: `u` below it is certainly below `RATIO[i]`.
/// Words between the two go to the slow path, which re-tests against the exact
/// `RATIO[i]` first, so the sampler stays exact; the rounding only sends
/// ~0.03 % more draws down the slow path. Computed at compile time; every step
/// (`1 - eps` with a 4-bit eps) is exact in f64.
pub(crate) static PACKED: [u64; LAYERS] = {
    let mut t = [0u64; LAYERS];
    let mut i = 0;
    while i < LAYERS {
        let xb = X[i].to_bits();
        let exp = xb >> 52;
        assert!(
            exp >= X_EXP_BASE && exp - X_EXP_BASE < 8,
            "X out of packable range"
        );
        // eps = 1 (threshold 0: never accept) unless something better fits.
        let mut code = (1023 - EPS_EXP_BASE) << 3;
        let mut best = 0.0f64;
        let mut e = 0u64;
        while e < 50 {
            let mut m = 0u64;
            while m < 8 {
                let thr = 1.0 - f64::from_bits(((1023 - e) << 52) | (m << 49));
                if thr <= RATIO[i] && thr > best {
                    best = thr;
                    code = ((1023 - e - EPS_EXP_BASE) << 3) | m;
                }
                m += 1;
            }
            e += 1;
        }
        t[i] = (xb & MANTISSA) | ((exp - X_EXP_BASE) << 52) | (code << 55);
        i += 1;
    }
    t
};

/// `X[i]` from a packed entry (exact).
#[inline(always)]
pub(crate) fn packed_edge(t: u64) -> f64 {
    f64::from_bits((t & MANTISSA) | ((((t >> 52) & 7) + X_EXP_BASE) << 52))
}

/// `eps` from a packed entry: bits 55..=63 land on 49..=57 (mantissa bits
/// 49..=51 and the low six exponent bits), then the exponent base is OR-ed in
/// (a shift and one ternary-logic instruction).
#[inline(always)]
pub(crate) fn packed_eps(t: u64) -> f64 {
    f64::from_bits(((t >> 6) & (0x1FF << 49)) | (EPS_EXP_BASE << 52))
}

/// Conservative acceptance threshold `1 - eps` from a packed entry (exact).
#[cfg(test)]
pub(crate) fn packed_threshold(t: u64) -> f64 {
    1.0 - packed_eps(t)
}

/// Fast path: the candidate sample for word `w` and whether it is accepted
/// (`u` below the layer's conservative threshold, so the point lies in the
/// part of layer `i` that is entirely under the curve). Written branch-free
/// with a single table lookup so that it vectorises well.
#[inline(always)]
pub fn fast(w: u64) -> (f64, bool) {
    let t = PACKED[layer(w)];
    let f = f64::from_bits(((w >> 12) & (MANTISSA & !1)) | ONE_BITS);
    let u = f - 1.0;
    let z = f64::from_bits((u * packed_edge(t)).to_bits() ^ sign_mask(w));
    // `2 - f` is exactly `1 - u` (Sterbenz), and `1 - eps` is exact, so this is
    // exactly `u < 1 - eps`.
    (z, 2.0 - f > packed_eps(t))
}

/// Curvature of `f` over a layer's wedge, which decides which cheap bounds hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// `x >= 1` throughout: `f` lies below the chord and above both tangents.
    Convex,
    /// `x <= 1` throughout: `f` lies above the chord and below both tangents.
    Concave,
    /// The layer straddles the inflection point `x = 1`: no cheap bound.
    Mixed,
}

/// Everything the slow path needs about one layer, in one 64-byte cache line
/// (the slow path runs rarely, so its tables are usually not in L1; one line
/// per call instead of five scattered ones).
///
/// The wedge constants use coordinates normalised to the wedge rectangle:
/// `t = (X[i] - x) / (X[i] - X[i+1])` and `v = (y - F[i]) / (F[i+1] - F[i])`,
/// both in [0, 1]. There the chord is `v = t`, the tangent at `X[i]` is
/// `v = a·t` and the tangent at `X[i+1]` is `v = 1 - b·(1 - t)`.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct SlowLayer {
    x: f64,
    x_next: f64,
    f: f64,
    f_next: f64,
    ratio: f64,
    a: f64,
    b: f64,
    inv_width: f64,
}

impl SlowLayer {
    fn shape(&self) -> Shape {
        if self.x_next >= 1.0 {
            Shape::Convex
        } else if self.x <= 1.0 {
            Shape::Concave
        } else {
            Shape::Mixed
        }
    }
}

/// Computed at compile time from the tables with plain IEEE arithmetic.
static SLOW: [SlowLayer; LAYERS] = {
    let mut t = [SlowLayer {
        x: 0.0,
        x_next: 0.0,
        f: 0.0,
        f_next: 0.0,
        ratio: 0.0,
        a: 0.0,
        b: 0.0,
        inv_width: 0.0,
    }; LAYERS];
    let mut i = 0;
    while i < LAYERS {
        let width = X[i] - X[i + 1];
        let height = F[i + 1] - F[i];
        t[i] = SlowLayer {
            x: X[i],
            x_next: X[i + 1],
            f: F[i],
            f_next: F[i + 1],
            ratio: RATIO[i],
            // Layer 0 (base strip + tail) has no wedge; its constants are unused.
            a: if i == 0 {
                0.0
            } else {
                X[i] * F[i] * width / height
            },
            b: if i == 0 {
                0.0
            } else {
                X[i + 1] * F[i + 1] * width / height
            },
            inv_width: 1.0 / width,
        };
        i += 1;
    }
    t
};

/// Slow path: finishes a draw whose first word `w` was rejected by [`fast`],
/// taking any further randomness from `aux`.
///
/// Retried draws start from fresh words of `aux`, never from the bits of `w`
/// that were already used, so every restart is independent.
pub fn slow(mut w: u64, aux: &mut Xoshiro256pp) -> f64 {
    loop {
        let i = layer(w);
        let l = &SLOW[i];
        let u = magnitude(w);
        let neg = sign_mask(w);
        let x = u * l.x;
        let signed = |v: f64| f64::from_bits(v.to_bits() ^ neg);
        if u < l.ratio {
            return signed(x);
        }
        if i == 0 {
            return signed(tail(aux));
        }
        // Wedge: a height uniform between the layer's bottom f(X[i]) and top
        // f(X[i+1]); accept if it is under the curve.
        let v = aux.next_f64();
        if wedge_accepts(l, x, v) {
            return signed(x);
        }
        w = aux.next_u64();
    }
}

/// Whether the wedge point (x, F[i] + v·(F[i+1] - F[i])) of a layer `i >= 1`
/// lies under `f`. The chord and tangent bounds settle most points without
/// `exp` (they are exact inequalities for a convex/concave `f`; the two tests
/// can disagree only within rounding of the curve, where the `exp` test itself
/// is no more exact); the rest get the exact comparison.
#[inline]
fn wedge_accepts(l: &SlowLayer, x: f64, v: f64) -> bool {
    let t = (l.x - x) * l.inv_width;
    let upper_tangent = l.a * t;
    let lower_tangent = 1.0 - l.b * (1.0 - t);
    match l.shape() {
        Shape::Convex if v >= t => return false,
        Shape::Convex if v < upper_tangent.max(lower_tangent) => return true,
        Shape::Concave if v < t => return true,
        Shape::Concave if v >= upper_tangent.min(lower_tangent) => return false,
        _ => {}
    }
    let y = l.f + v * (l.f_next - l.f);
    y < libm::exp(-0.5 * x * x)
}

/// Exact sample from the normal tail `x > R` (Marsaglia 1964).
fn tail(aux: &mut Xoshiro256pp) -> f64 {
    loop {
        let x = -libm::log(aux.next_f64_nonzero()) / tables::R;
        let y = -libm::log(aux.next_f64_nonzero());
        if 2.0 * y > x * x {
            return tables::R + x;
        }
    }
}

/// One standard normal sample from a scalar generator (used by tests and as
/// the reference the SIMD kernel must agree with).
pub fn sample(rng: &mut Xoshiro256pp) -> f64 {
    let w = rng.next_u64();
    match fast(w) {
        (z, true) => z,
        (_, false) => slow(w, rng),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use sluice_core::stats as sluice_stats;

    fn f(x: f64) -> f64 {
        (-0.5 * x * x).exp()
    }

    #[test]
    fn tables_describe_a_valid_ziggurat() {
        assert_eq!(X[1], tables::R);
        assert_eq!(X[LAYERS], 0.0);
        assert_eq!(F[LAYERS], 1.0);
        // Base strip: rectangle X0 * f(R) has the same area as the in-curve part
        // plus the tail.
        let tail_area =
            (std::f64::consts::PI / 2.0).sqrt() * libm::erfc(tables::R / std::f64::consts::SQRT_2);
        let base = tables::R * f(tables::R) + tail_area;
        assert!((base / tables::V - 1.0).abs() < 1e-12);
        assert!((X[0] * F[1] / tables::V - 1.0).abs() < 1e-12);
        for i in 1..LAYERS {
            assert!(X[i + 1] < X[i], "edges must decrease");
            assert!((F[i] / f(X[i]) - 1.0).abs() < 1e-14);
            let area = X[i] * (F[i + 1] - F[i]);
            assert!(
                (area / tables::V - 1.0).abs() < 1e-9,
                "layer {i} area {area}"
            );
            assert!((RATIO[i] - X[i + 1] / X[i]).abs() < 1e-15);
        }
    }

    #[test]
    fn packed_table_is_exact_and_conservative() {
        let mut lost = 0.0;
        for i in 0..LAYERS {
            let t = PACKED[i];
            assert_eq!(packed_edge(t).to_bits(), X[i].to_bits(), "edge {i}");
            let thr = packed_threshold(t);
            assert!(
                thr <= RATIO[i] && thr >= 0.0,
                "threshold {i}: {thr} vs {}",
                RATIO[i]
            );
            lost += RATIO[i] - thr;
        }
        // Extra slow-path rate caused by the 4-bit thresholds.
        assert!(
            lost / (LAYERS as f64) < 5e-4,
            "lost {}",
            lost / LAYERS as f64
        );
    }

    /// The cheap chord/tangent decisions never contradict the exact test.
    #[test]
    fn wedge_bounds_agree_with_exact_test() {
        let mut rng = Xoshiro256pp::from_splitmix(&mut SplitMix64::new(3));
        let mut mixed = 0;
        for i in 1..LAYERS {
            let l = &SLOW[i];
            assert_eq!((l.x, l.x_next, l.ratio), (X[i], X[i + 1], RATIO[i]));
            mixed += (l.shape() == Shape::Mixed) as usize;
            for _ in 0..300 {
                let x = X[i + 1] + rng.next_f64() * (X[i] - X[i + 1]);
                let v = rng.next_f64();
                let exact = F[i] + v * (F[i + 1] - F[i]) < (-0.5 * x * x).exp();
                assert_eq!(wedge_accepts(l, x, v), exact, "layer {i} x {x} v {v}");
            }
        }
        // Exactly one layer straddles the inflection point.
        assert_eq!(mixed, 1);
        assert_eq!(std::mem::size_of::<SlowLayer>(), 64);
    }

    #[test]
    fn word_fields_are_disjoint() {
        // Flipping a bit changes exactly one field.
        let w = 0x5555_5555_5555_5555u64;
        assert_ne!(layer(w ^ 1), layer(w));
        assert_eq!(magnitude(w ^ 1), magnitude(w));
        assert_ne!(layer(w ^ 0x400), layer(w));
        assert_ne!(sign_mask(w ^ 0x800), sign_mask(w));
        assert_eq!(layer(w ^ 0x800), layer(w));
        assert_eq!(magnitude(w ^ 0x800), magnitude(w));
        let data = 1u64 << DATA_BIT;
        assert_eq!(data, 0x1000);
        assert_eq!(layer(w ^ data), layer(w));
        assert_eq!(magnitude(w ^ data), magnitude(w));
        assert_eq!(sign_mask(w ^ data), sign_mask(w));
        assert_ne!(magnitude(w ^ (1 << 13)), magnitude(w));
        assert_eq!(magnitude(u64::MAX), 1.0 - 2.0 * f64::EPSILON);
    }

    /// Moments and tail probabilities of 4M samples against the exact normal.
    #[test]
    fn samples_are_standard_normal() {
        let mut rng = Xoshiro256pp::from_splitmix(&mut SplitMix64::new(2024));
        let n = 4_000_000u64;
        let thresholds = [0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 4.5];
        let mut beyond = [0u64; 7];
        let (mut s1, mut s2, mut s4, mut neg) = (0.0f64, 0.0f64, 0.0f64, 0u64);
        for _ in 0..n {
            let z = sample(&mut rng);
            assert!(z.is_finite());
            s1 += z;
            s2 += z * z;
            s4 += z * z * z * z;
            neg += (z < 0.0) as u64;
            for (k, t) in thresholds.iter().enumerate() {
                beyond[k] += (z.abs() > *t) as u64;
            }
        }
        let nf = n as f64;
        // Standard errors: mean 1/sqrt(n), var sqrt(2/n), 4th moment sqrt(96/n).
        assert!((s1 / nf).abs() < 5.0 / nf.sqrt(), "mean {}", s1 / nf);
        assert!((s2 / nf - 1.0).abs() < 5.0 * (2.0 / nf).sqrt());
        assert!((s4 / nf - 3.0).abs() < 5.0 * (96.0 / nf).sqrt());
        let (lo, hi) = sluice_stats::binomial_ci(neg, n, 0.99999);
        assert!(lo < 0.5 && 0.5 < hi, "sign balance {neg}/{n}");
        for (k, t) in thresholds.iter().enumerate() {
            let p = libm::erfc(t / std::f64::consts::SQRT_2);
            let (lo, hi) = sluice_stats::binomial_ci(beyond[k], n, 0.99999);
            assert!(
                lo < p && p < hi,
                "P(|z|>{t}) = {} outside [{lo}, {hi}] (want {p})",
                beyond[k] as f64 / nf
            );
        }
    }

    /// The tail sampler alone: conditional distribution beyond R.
    #[test]
    fn tail_is_conditional_normal() {
        let mut rng = Xoshiro256pp::from_splitmix(&mut SplitMix64::new(7));
        let n = 400_000u64;
        let r = tables::R;
        let q = |t: f64| {
            libm::erfc(t / std::f64::consts::SQRT_2) / libm::erfc(r / std::f64::consts::SQRT_2)
        };
        let mut c = [0u64; 3];
        let ts = [4.3, 5.0, 5.6];
        for _ in 0..n {
            let x = tail(&mut rng);
            assert!(x > r);
            for (k, t) in ts.iter().enumerate() {
                c[k] += (x > *t) as u64;
            }
        }
        for (k, t) in ts.iter().enumerate() {
            let (lo, hi) = sluice_stats::binomial_ci(c[k], n, 0.99999);
            assert!(lo < q(*t) && q(*t) < hi, "P(x>{t}|x>R)");
        }
    }
}
