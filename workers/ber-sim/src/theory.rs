//! The closed form the simulation is checked against: the bit error rate of BPSK with coherent
//! hard-decision detection over AWGN, `0.5 * erfc(sqrt(Eb/N0))`.
//!
//! The BER example's own formula, computed by its own worker: each task writes it into its
//! result beside the counts, and the pipeline's aggregate carries it into `results.csv`
//! (`aggregate.carry`). `erfc` is `libm`'s (a port of musl's), the same implementation on every
//! machine a retried task may land on, so the column is byte-identical between runs.

/// `0.5 * erfc(sqrt(10^(ebn0_db/10)))`. `ebn0_db = -inf` gives 0.5 (pure noise); NaN gives NaN.
pub fn bpsk_awgn_ber(ebn0_db: f64) -> f64 {
    let ebn0 = 10f64.powf(ebn0_db / 10.0);
    0.5 * libm::erfc(ebn0.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 40-digit references are quoted as computed, not rounded to what an f64 holds.
    #[allow(clippy::excessive_precision)]
    #[test]
    fn matches_high_precision_references() {
        // mpmath at 40 digits: 0.5*erfc(sqrt(10^(dB/10))).
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
            // powf/sqrt round the argument by a few ulps, amplified by ~2x^2 in the tail.
            let rel = ((got - want) / want).abs();
            assert!(
                rel < 1e-14,
                "ber({db}) = {got:e}, want {want:e}, rel {rel:e}"
            );
        }
        assert_eq!(bpsk_awgn_ber(f64::NEG_INFINITY), 0.5);
        assert!(bpsk_awgn_ber(f64::NAN).is_nan());
    }
}
