//! Statistical acceptance test: simulated BER must agree with the closed form
//! 0.5·erfc(sqrt(Eb/N0)) within a binomial confidence interval.
//!
//! Seeds are fixed, so the outcome is deterministic: a pass stays a pass. The
//! interval is 99.9 % per point so that a correct simulator essentially never
//! lands outside by bad luck when seeds or sizes are changed.

use std::sync::atomic::AtomicBool;

use ber_sim::{Kernel, Params, simulate};

use sluice_core::stats;

/// (Eb/N0 dB, bits in release builds, bits in debug builds). Sizes give at
/// least ~100 expected errors per point in release.
const POINTS: &[(f64, u64, u64)] = &[
    (-2.0, 2_000_000, 500_000),
    (0.0, 2_000_000, 500_000),
    (2.0, 2_000_000, 500_000),
    (4.0, 4_000_000, 1_000_000),
    (6.0, 8_000_000, 2_000_000),
    (8.0, 40_000_000, 4_000_000),
    (9.6, 100_000_000, 4_000_000),
];

#[test]
fn ber_matches_theory_within_confidence_interval() {
    let stop = AtomicBool::new(false);
    for (k, &(db, release_bits, debug_bits)) in POINTS.iter().enumerate() {
        let bits = if cfg!(debug_assertions) {
            debug_bits
        } else {
            release_bits
        };
        let frames = 20;
        let params = Params {
            ebn0_db: db,
            seed: 1000 + k as u64,
            frames,
            bits_per_frame: bits / frames,
        };
        let out = simulate(&params, 2, Kernel::best(), &stop).expect("simulation runs");
        let theory = ber_sim::theory::bpsk_awgn_ber(db);
        let (lo, hi) = stats::binomial_ci(out.errors, out.bits, 0.999);
        println!(
            "{db:5.1} dB: {} / {} = {:.4e}, theory {theory:.4e}, 99.9% CI [{lo:.4e}, {hi:.4e}]",
            out.errors,
            out.bits,
            out.errors as f64 / out.bits as f64
        );
        assert!(
            lo <= theory && theory <= hi,
            "{db} dB: theory {theory:e} outside [{lo:e}, {hi:e}] ({} errors in {} bits)",
            out.errors,
            out.bits
        );
    }
}

/// Deep-tail check in release builds only (it needs ~1e9 bits): at 11 dB the
/// errors come from noise beyond 5.0 σ, i.e. from the ziggurat's tail algorithm.
#[test]
fn ber_in_the_deep_tail_matches_theory() {
    if cfg!(debug_assertions) {
        eprintln!("skipped in debug builds (needs 1e9 bits); run with --release");
        return;
    }
    let params = Params {
        ebn0_db: 11.0,
        seed: 77,
        frames: 400,
        bits_per_frame: 2_500_000,
    };
    let out = simulate(&params, 2, Kernel::best(), &AtomicBool::new(false)).expect("runs");
    let theory = ber_sim::theory::bpsk_awgn_ber(11.0);
    let (lo, hi) = stats::binomial_ci(out.errors, out.bits, 0.999);
    println!(
        "11 dB: {} errors in {} bits, theory {theory:e}",
        out.errors, out.bits
    );
    assert!(
        lo <= theory && theory <= hi,
        "[{lo:e}, {hi:e}] vs {theory:e}"
    );
}
