//! Statistics of aggregated results: the binomial confidence interval of a ratio of two sums
//! (e.g. bit errors / simulated bits), used by the built-in aggregate.
//!
//! The special function it needs (`erfc`, for the normal quantile's refinement) is `libm`'s, a
//! maintained port of musl's. Domain formulas (a theoretical BER curve, say) do not belong here:
//! a pipeline's own task computes them and the aggregate carries them (`aggregate.carry`). All
//! functions are total: bad inputs (NaN, out-of-range confidence, more successes than trials)
//! give a documented, finite answer instead of panicking.

// Published coefficients are quoted as given, not rounded to what an f64 can hold, so they can
// be checked against the source.
#![allow(clippy::excessive_precision)]

/// Two-sided `confidence` interval for a binomial proportion `successes/trials`
/// (for us: bit errors / simulated bits), as `(low, high)` with
/// `0 <= low <= high <= 1`.
///
/// Method: the **Wilson score interval**. It is chosen over the Wald interval
/// because Wald collapses to a zero-width interval when no errors are seen
/// (common at high Eb/N0) and has poor coverage for tiny p; and over
/// Clopper-Pearson because Wilson has close-to-nominal (rather than
/// conservative) coverage, a closed form that needs only the normal quantile,
/// and for the huge `trials` of BER simulation the two are practically equal.
///
/// Edge cases (never NaN, never a panic):
/// * `trials == 0`: nothing is known, `(0.0, 1.0)`.
/// * `successes > trials`: treated as `successes == trials`.
/// * `confidence` NaN or `>= 1`: `(0.0, 1.0)`; `confidence <= 0`: the point
///   estimate `(p, p)`.
pub fn binomial_ci(successes: u64, trials: u64, confidence: f64) -> (f64, f64) {
    if trials == 0 || confidence.is_nan() || confidence >= 1.0 {
        return (0.0, 1.0);
    }
    let k = successes.min(trials) as f64;
    let n = trials as f64;
    let p = k / n;
    if confidence <= 0.0 {
        return (p, p);
    }
    let z = normal_quantile(0.5 + confidence / 2.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let mut low = (center - half).max(0.0);
    let mut high = (center + half).min(1.0);
    // The exact bounds at k == 0 / k == n are 0 / 1; don't let rounding move them.
    if successes == 0 {
        low = 0.0;
    }
    if successes >= trials {
        high = 1.0;
    }
    (low, high)
}

/// Standard normal CDF via `erfc`, accurate in both tails.
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Inverse standard normal CDF for `p` in (0, 1).
///
/// Peter Acklam's rational approximation (relative error ~1e-9) followed by one
/// Halley step against the accurate `normal_cdf`, which brings it to about
/// machine precision (so 0.975 gives 1.959963984540054). Outside (0, 1) it
/// returns ±inf, for NaN it returns NaN.
fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let x = if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley step on f(x) = Phi(x) - p.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_is_accurate() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((normal_quantile(0.995) - 2.575_829_303_548_900_4).abs() < 1e-14);
        assert!((normal_quantile(0.75) - 0.674_489_750_196_081_743).abs() < 1e-14);
        assert!((normal_quantile(0.5)).abs() < 1e-15);
        assert!((normal_quantile(0.01) + 2.326_347_874_040_841).abs() < 1e-13);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(f64::NAN).is_nan());
    }

    #[test]
    fn wilson_interval_known_values() {
        // Reference: Wilson formula evaluated with mpmath, z = 1.959963984540054.
        let (lo, hi) = binomial_ci(10, 1000, 0.95);
        assert!((lo - 0.005_440_754_445_529_248).abs() < 1e-12, "lo = {lo}");
        assert!((hi - 0.018_309_468_870_314_773).abs() < 1e-12, "hi = {hi}");
        let (lo, hi) = binomial_ci(50, 100, 0.95);
        assert!((lo - 0.403_831_530_365_995_63).abs() < 1e-12, "lo = {lo}");
        assert!((hi - 0.596_168_469_634_004_37).abs() < 1e-12, "hi = {hi}");
    }

    #[test]
    fn wilson_interval_edge_cases() {
        // No errors: lower bound exactly 0, upper bound ~ z^2/n (the "rule of 3.84").
        let (lo, hi) = binomial_ci(0, 1_000_000, 0.95);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.841_444_063_944_942e-6).abs() < 1e-11, "hi = {hi}");
        // All successes.
        let (lo, hi) = binomial_ci(20, 20, 0.95);
        assert_eq!(hi, 1.0);
        assert!(lo > 0.8 && lo < 0.9);
        // Degenerate inputs never produce NaN.
        assert_eq!(binomial_ci(0, 0, 0.95), (0.0, 1.0));
        assert_eq!(binomial_ci(5, 0, 0.95), (0.0, 1.0));
        assert_eq!(binomial_ci(3, 10, f64::NAN), (0.0, 1.0));
        assert_eq!(binomial_ci(3, 10, 1.0), (0.0, 1.0));
        assert_eq!(binomial_ci(3, 10, 0.0), (0.3, 0.3));
        assert_eq!(binomial_ci(30, 10, 0.95).1, 1.0);
        // Huge counts (a whole BER job) stay finite and ordered.
        let (lo, hi) = binomial_ci(275, 30_720_000_000, 0.95);
        assert!(lo > 0.0 && lo < 275.0 / 30_720_000_000.0 && hi > 275.0 / 30_720_000_000.0);
    }

    #[test]
    fn wilson_interval_contains_estimate_and_widens_with_confidence() {
        for &(k, n) in &[(1u64, 10u64), (7, 1000), (999, 1000), (123, 456)] {
            let p = k as f64 / n as f64;
            let (l90, h90) = binomial_ci(k, n, 0.90);
            let (l99, h99) = binomial_ci(k, n, 0.99);
            assert!(l90 <= p && p <= h90);
            assert!(l99 <= l90 && h90 <= h99);
        }
    }
}
