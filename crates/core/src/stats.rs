//! Small, dependency-free numerical helpers used to judge Monte Carlo results:
//! the complementary error function, the theoretical BPSK/AWGN bit error rate
//! and a binomial confidence interval for an observed error count.
//!
//! Everything here is plain `std` so that the core crate (and the AWS edge that
//! aggregates results) can check a simulated BER against theory without pulling
//! in a numerics library. All functions are total: bad inputs (NaN, out-of-range
//! confidence, more successes than trials) give a documented, finite answer
//! instead of panicking.

// Published coefficients and 40-digit references are quoted as given, not
// rounded to what an f64 can hold, so they can be checked against the sources.
#![allow(clippy::excessive_precision)]

/// `1/sqrt(pi)`.
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_286_9;

/// Complementary error function `erfc(x) = 1 - erf(x)`.
///
/// Implementation: W. J. Cody's rational Chebyshev approximations ("Rational
/// Chebyshev approximations for the error function", Math. Comp. 23 (1969),
/// 631-637; coefficients as in the SPECFUN routine `CALERF`). They were chosen
/// because they are accurate to well below double-precision rounding on each of
/// the three intervals `|x| <= 0.46875`, `0.46875 < |x| <= 4` and `|x| > 4`,
/// and, unlike `1 - erf(x)`, keep full *relative* accuracy deep in the tail,
/// which is exactly where BER values of 1e-9 live. Measured relative error
/// against 40-digit references is below 1e-14 (see tests).
///
/// `erfc(NaN)` is NaN; `erfc(+inf) = 0`, `erfc(-inf) = 2`. For `x > 26.543`
/// the result underflows to 0.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= 0.468_75 {
        // erfc = 1 - erf; there is no cancellation here because erf(y) <= 0.5.
        return 1.0 - erf_small(x);
    }
    let r = if y <= 4.0 { erfc_mid(y) } else { erfc_tail(y) };
    if x < 0.0 { 2.0 - r } else { r }
}

/// erf(x) for |x| <= 0.46875 (Cody's first interval).
fn erf_small(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        1.138_641_541_510_501_56e2,
        3.774_852_376_853_020_21e2,
        3.209_377_589_138_469_47e3,
        1.857_777_061_846_031_53e-1,
    ];
    const B: [f64; 4] = [
        2.360_129_095_234_412_09e1,
        2.440_246_379_344_441_73e2,
        1.282_616_526_077_372_28e3,
        2.844_236_833_439_170_62e3,
    ];
    let y = x.abs();
    // Below ~1.11e-16 the y^2 terms cannot change the result; Cody zeroes them.
    let ysq = if y > 1.11e-16 { y * y } else { 0.0 };
    let mut num = A[4] * ysq;
    let mut den = ysq;
    for i in 0..3 {
        num = (num + A[i]) * ysq;
        den = (den + B[i]) * ysq;
    }
    x * (num + A[3]) / (den + B[3])
}

/// `exp(-y^2)` computed as `exp(-t^2) * exp(-(y-t)(y+t))` with `t = trunc(16y)/16`.
///
/// Cody's trick: `t^2` is exact in floating point, so the rounding error of `y*y`
/// (which would be amplified by up to y^2 ~ 700 relative in the tail) is avoided.
fn exp_neg_sq(y: f64) -> f64 {
    let t = (y * 16.0).trunc() / 16.0;
    let del = (y - t) * (y + t);
    (-t * t).exp() * (-del).exp()
}

/// erfc(y) for 0.46875 < y <= 4.
fn erfc_mid(y: f64) -> f64 {
    const C: [f64; 9] = [
        5.641_884_969_886_700_89e-1,
        8.883_149_794_388_375_94,
        6.611_919_063_714_162_95e1,
        2.986_351_381_974_001_31e2,
        8.819_522_212_417_690_9e2,
        1.712_047_612_634_070_58e3,
        2.051_078_377_826_071_47e3,
        1.230_339_354_797_997_25e3,
        2.153_115_354_744_038_46e-8,
    ];
    const D: [f64; 8] = [
        1.574_492_611_070_983_47e1,
        1.176_939_508_913_124_99e2,
        5.371_811_018_620_098_58e2,
        1.621_389_574_566_690_19e3,
        3.290_799_235_733_459_63e3,
        4.362_619_090_143_247_16e3,
        3.439_367_674_143_721_64e3,
        1.230_339_354_803_749_42e3,
    ];
    let mut num = C[8] * y;
    let mut den = y;
    for i in 0..7 {
        num = (num + C[i]) * y;
        den = (den + D[i]) * y;
    }
    exp_neg_sq(y) * (num + C[7]) / (den + D[7])
}

/// erfc(y) for y > 4 (asymptotic-style rational approximation in 1/y^2).
fn erfc_tail(y: f64) -> f64 {
    const P: [f64; 6] = [
        3.053_266_349_612_323_44e-1,
        3.603_448_999_498_044_39e-1,
        1.257_817_261_112_292_46e-1,
        1.608_378_514_874_227_66e-2,
        6.587_491_615_298_378_03e-4,
        1.631_538_713_730_209_78e-2,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_42,
        1.872_952_849_923_460_47,
        5.279_051_029_514_284_12e-1,
        6.051_834_131_244_131_91e-2,
        2.335_204_976_268_691_85e-3,
    ];
    // Past this point erfc(y) is below the smallest normal double.
    const XBIG: f64 = 26.543;
    if y >= XBIG {
        return 0.0;
    }
    let ysq = 1.0 / (y * y);
    let mut num = P[5] * ysq;
    let mut den = ysq;
    for i in 0..4 {
        num = (num + P[i]) * ysq;
        den = (den + Q[i]) * ysq;
    }
    let r = ysq * (num + P[4]) / (den + Q[4]);
    exp_neg_sq(y) * (FRAC_1_SQRT_PI - r) / y
}

/// Theoretical bit error rate of BPSK with coherent hard-decision detection over
/// AWGN: `0.5 * erfc(sqrt(Eb/N0))` with `Eb/N0 = 10^(ebn0_db/10)`.
///
/// `ebn0_db = -inf` gives 0.5 (pure noise); NaN gives NaN.
pub fn bpsk_awgn_ber(ebn0_db: f64) -> f64 {
    let ebn0 = 10f64.powf(ebn0_db / 10.0);
    0.5 * erfc(ebn0.sqrt())
}

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
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
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

    fn rel_err(got: f64, want: f64) -> f64 {
        if want == 0.0 {
            got.abs()
        } else {
            ((got - want) / want).abs()
        }
    }

    /// Reference values computed with mpmath at 40 significant digits.
    const ERFC_REF: &[(f64, f64)] = &[
        (-3.0, 1.999_977_909_503_001_414_6),
        (-1.0, 1.842_700_792_949_714_869_3),
        (-0.3, 1.328_626_759_459_127_416_2),
        (0.0, 1.0),
        (1e-10, 0.999_999_999_887_162_083_29),
        (0.1, 0.887_537_083_981_715_101_6),
        (0.468_75, 0.507_386_526_782_062_008_41),
        (0.5, 0.479_500_122_186_953_462_32),
        (1.0, 0.157_299_207_050_285_130_66),
        (2.0, 0.004_677_734_981_047_265_837_9),
        (3.0, 2.209_049_699_858_544_137_3e-5),
        (3.999, 1.554_474_949_099_499_153_3e-8),
        (4.0, 1.541_725_790_028_001_885_2e-8),
        (4.5, 1.966_160_441_542_887_476_3e-10),
        (5.0, 1.537_459_794_428_034_850_2e-12),
        (6.0, 2.151_973_671_249_891_311_7e-17),
        (10.0, 2.088_487_583_762_544_757e-45),
        (15.0, 7.212_994_172_451_206_666_6e-100),
        (26.0, 5.663_192_408_856_142_846_5e-296),
    ];

    #[test]
    fn erfc_matches_high_precision_references() {
        for &(x, want) in ERFC_REF {
            let got = erfc(x);
            assert!(
                rel_err(got, want) < 1e-13,
                "erfc({x}) = {got:e}, want {want:e}, rel err {:e}",
                rel_err(got, want)
            );
        }
    }

    #[test]
    fn erfc_special_values() {
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert_eq!(erfc(27.5), 0.0);
        assert_eq!(erfc(-0.0), 1.0);
    }

    #[test]
    fn erfc_is_monotone_and_symmetric() {
        let mut prev = 2.0;
        let mut x = -6.0;
        while x < 26.0 {
            let v = erfc(x);
            assert!(v <= prev, "not monotone at {x}");
            assert!(
                (v + erfc(-x) - 2.0).abs() < 1e-15,
                "erfc(x)+erfc(-x) != 2 at {x}"
            );
            prev = v;
            x += 0.013;
        }
    }

    #[test]
    fn bpsk_ber_matches_references() {
        // mpmath: 0.5*erfc(sqrt(10^(dB/10))).
        let refs = [
            (0.0, 0.078_649_603_525_142_565_329),
            (2.0, 0.037_506_128_358_925_990_636),
            (4.0, 0.012_500_818_040_737_559_791),
            (6.0, 0.002_388_290_780_932_806_327_6),
            (8.0, 1.909_077_740_759_931_646_8e-4),
            (10.0, 3.872_108_215_522_041_818_8e-6),
            (11.0, 2.613_067_953_575_206_96e-7),
            (12.0, 9.006_010_350_628_732_434_6e-9),
        ];
        for (db, want) in refs {
            let got = bpsk_awgn_ber(db);
            // powf/sqrt add a few ulps to the argument, amplified by ~2x^2.
            assert!(
                rel_err(got, want) < 1e-12,
                "ber({db}) = {got:e}, want {want:e}"
            );
        }
        assert_eq!(bpsk_awgn_ber(f64::NEG_INFINITY), 0.5);
    }

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
