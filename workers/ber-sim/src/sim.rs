//! The Monte Carlo BER simulation of BPSK over AWGN with hard decisions.
//!
//! For every bit: a random data bit `b`, the symbol `s = 1 - 2b`, a noise sample
//! `n = σ·z` with `z ~ N(0, 1)` and `σ = sqrt(1 / (2·Eb/N0))` (Eb = 1), the
//! received value `r = s + n`, the decision `b̂ = (r < 0)`, and an error if
//! `b̂ ≠ b`. Every bit is simulated; nothing is sampled from a binomial.
//!
//! # Determinism
//! A task is `frames × bits_per_frame` bits. Frame `k` of seed `s` draws all of
//! its randomness from generators keyed by `(s, k)` only (see
//! [`frame_streams`]), and per-frame error counts are integers, so the total is
//! identical for any thread count, any frame scheduling and any SIMD kernel
//! (the kernels run the same IEEE operations in the same order; Rust never
//! contracts `a*b+c` into an FMA on its own). A retried task reproduces its
//! output bit for bit.
//!
//! # Speed
//! Per frame the bits are processed in blocks of [`BLOCK`]: eight xoshiro256++
//! lanes fill a word buffer, a branch-free loop runs the ziggurat fast path and
//! the decision for every word (auto-vectorised; table lookups become gathers),
//! and the ~0.25 % of words it rejects are finished by the exact scalar slow path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::normal::{self, DATA_BIT, ONE_BITS};
use crate::rng::{GOLDEN_GAMMA, LANES, SplitMix64, Xoshiro256pp, Xoshiro256ppX8, mix64};

/// Accepted Eb/N0 range in dB. Outside it the run is either pure noise or
/// error-free for any feasible bit count, so a value there is almost certainly
/// a typo (e.g. a linear ratio passed as dB).
pub const EBN0_DB_RANGE: std::ops::RangeInclusive<f64> = -30.0..=30.0;

/// Words per inner block: 4 KiB of words plus 512 B of flags stay in L1.
pub const BLOCK: usize = 512;

/// Words per fast-path chunk (see `fast_chunk`).
const CHUNK: usize = 32;

/// Domain-separation constant mixed into frame keys ("ber-sim1").
const FRAME_DOMAIN: u64 = 0x6265_722d_7369_6d31;

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Eb/N0 in dB.
    pub ebn0_db: f64,
    /// Task seed (the pipeline uses the task index).
    pub seed: u64,
    /// Number of frames; frames are the unit of parallelism and of seeding.
    pub frames: u64,
    /// Bits per frame.
    pub bits_per_frame: u64,
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Simulated bits.
    pub bits: u64,
    /// Bit errors among them.
    pub errors: u64,
}

/// Why a run did not produce an [`Outcome`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// The parameters are unusable; the message says which and why.
    #[error("{0}")]
    InvalidParams(String),
    /// The stop flag was raised (SIGTERM) before all frames were done.
    #[error("interrupted before completion")]
    Interrupted,
    /// A worker thread could not be started or died.
    #[error("worker thread failure: {0}")]
    Worker(String),
}

impl Params {
    /// Checks the parameters and returns the total number of bits.
    pub fn validate(&self) -> Result<u64, SimError> {
        if !self.ebn0_db.is_finite() || !EBN0_DB_RANGE.contains(&self.ebn0_db) {
            return Err(SimError::InvalidParams(format!(
                "Eb/N0 must be a finite number of dB in [{}, {}], got {}",
                EBN0_DB_RANGE.start(),
                EBN0_DB_RANGE.end(),
                self.ebn0_db
            )));
        }
        if self.frames == 0 {
            return Err(SimError::InvalidParams("frames must be at least 1".into()));
        }
        if self.bits_per_frame == 0 {
            return Err(SimError::InvalidParams(
                "bits per frame must be at least 1".into(),
            ));
        }
        self.frames.checked_mul(self.bits_per_frame).ok_or_else(|| {
            SimError::InvalidParams(format!(
                "frames × bits per frame overflows 64 bits ({} × {})",
                self.frames, self.bits_per_frame
            ))
        })
    }

    /// Noise standard deviation for this Eb/N0.
    pub fn sigma(&self) -> f64 {
        noise_sigma(self.ebn0_db)
    }
}

/// `σ = sqrt(1 / (2·10^(dB/10)))` for unit bit energy. Uses `libm::pow` so the
/// value (and hence every decision) is identical on every platform.
pub fn noise_sigma(ebn0_db: f64) -> f64 {
    let ebn0 = libm::pow(10.0, ebn0_db / 10.0);
    (1.0 / (2.0 * ebn0)).sqrt()
}

/// The generators of frame `frame` of task `seed`: eight SIMD lanes for the
/// per-bit words and one scalar stream for the ziggurat slow path.
///
/// Seeding follows the xoshiro authors' advice: a SplitMix64 sequence started
/// at a 64-bit key fills the 9 × 256 bits of state. The key mixes seed and
/// frame through the SplitMix64 bijection, so distinct frames of one task
/// always get distinct keys, and distinct (seed, frame) pairs collide only
/// with probability ~2^-64 per pair (~1e-8 for a whole 200 × 4096-frame job).
/// States are then effectively random points on a cycle of length 2^256 - 1,
/// so overlap between the ~10^7 streams of a job (each < 10^6 draws long)
/// is impossible in practice.
pub fn frame_streams(seed: u64, frame: u64) -> (Xoshiro256ppX8, Xoshiro256pp) {
    let key = mix64(seed ^ FRAME_DOMAIN).wrapping_add(mix64(frame.wrapping_mul(GOLDEN_GAMMA)));
    let mut sm = SplitMix64::new(key);
    let lanes = Xoshiro256ppX8::from_splitmix(&mut sm);
    let aux = Xoshiro256pp::from_splitmix(&mut sm);
    (lanes, aux)
}

/// Whether the bit carried by word `w` is received in error given noise `z`.
#[inline(always)]
fn is_error(w: u64, z: f64, sigma: f64) -> u64 {
    let b = (w >> DATA_BIT) & 1;
    // s = 1 - 2b: +1.0 for b = 0, -1.0 for b = 1 (sign bit set).
    let s = f64::from_bits(ONE_BITS | (b << 63));
    let r = s + sigma * z;
    ((r < 0.0) as u64) ^ b
}

/// Fast path for one word: `(error && accepted, rejected)`.
#[inline(always)]
fn fast_bit(w: u64, sigma: f64) -> (u64, u64) {
    let (z, accepted) = normal::fast(w);
    let accepted = accepted as u64;
    (is_error(w, z, sigma) & accepted, accepted ^ 1)
}

/// Errors among `chunk`: the vectorised fast path for every word, then — only
/// if it rejected any (a few percent of chunks) — a scalar pass that finishes
/// the rejected words with the slow path, in word order.
#[inline(always)]
fn fast_chunk(chunk: &[u64], sigma: f64, aux: &mut Xoshiro256pp) -> u64 {
    let mut errors = 0u64;
    let mut rejected = 0u64;
    for &w in chunk {
        let (e, r) = fast_bit(w, sigma);
        errors += e;
        rejected += r;
    }
    if rejected != 0 {
        for &w in chunk {
            if !normal::fast(w).1 {
                errors += is_error(w, normal::slow(w, aux), sigma);
            }
        }
    }
    errors
}

/// Error count of one frame. `#[inline(always)]` so each `target_feature`
/// wrapper below gets its own copy compiled (and vectorised) for its ISA.
#[inline(always)]
fn frame_errors_generic(seed: u64, frame: u64, bits: u64, sigma: f64) -> u64 {
    let (mut lanes, mut aux) = frame_streams(seed, frame);
    let mut words = [0u64; BLOCK];
    let mut block = [0u64; LANES];
    let mut errors = 0u64;
    let mut remaining = bits;
    while remaining > 0 {
        let n = remaining.min(BLOCK as u64) as usize;
        let full = n / LANES * LANES;
        for chunk in words[..full].chunks_exact_mut(LANES) {
            lanes.next_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        if full < n {
            // Last, partial block of the frame: the surplus lane outputs are dropped.
            lanes.next_block(&mut block);
            words[full..n].copy_from_slice(&block[..n - full]);
        }

        // Fast path over 32-word chunks: small enough that most chunks have no
        // rejected word (so no second pass), large enough to amortise the
        // horizontal sums.
        let mut chunks = words[..n].chunks_exact(CHUNK);
        for chunk in chunks.by_ref() {
            errors += fast_chunk(chunk, sigma, &mut aux);
        }
        errors += fast_chunk(chunks.remainder(), sigma, &mut aux);
        remaining -= n as u64;
    }
    errors
}

/// A frame kernel compiled for one instruction set. Construct with
/// [`Kernel::best`], [`Kernel::available`] or [`Kernel::by_name`]; a value only
/// exists if the CPU supports it, which is what makes calling it sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kernel(Isa);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn frame_errors_avx2(seed: u64, frame: u64, bits: u64, sigma: f64) -> u64 {
    frame_errors_generic(seed, frame, bits, sigma)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2")]
fn frame_errors_avx512(seed: u64, frame: u64, bits: u64, sigma: f64) -> u64 {
    frame_errors_generic(seed, frame, bits, sigma)
}

impl Kernel {
    /// The portable kernel (whatever the compile target allows).
    pub fn portable() -> Self {
        Kernel(Isa::Portable)
    }

    /// Every kernel this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut v = vec![Kernel(Isa::Portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Kernel(Isa::Avx2));
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx2")
            {
                v.push(Kernel(Isa::Avx512));
            }
        }
        v
    }

    /// The fastest kernel this CPU can run.
    pub fn best() -> Self {
        Self::available().pop().unwrap_or(Kernel(Isa::Portable))
    }

    /// Looks a kernel up by [`Kernel::name`]; `None` if unknown or unsupported here.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::available().into_iter().find(|k| k.name() == name)
    }

    /// Short name, as reported in the result file.
    pub fn name(&self) -> &'static str {
        match self.0 {
            Isa::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512",
        }
    }

    /// Error count of frame `frame` of task `seed` with `bits` bits at noise `sigma`.
    pub fn frame_errors(&self, seed: u64, frame: u64, bits: u64, sigma: f64) -> u64 {
        match self.0 {
            Isa::Portable => frame_errors_generic(seed, frame, bits, sigma),
            // SAFETY: `Kernel(Isa::Avx2)` is only constructed in `available`
            // after detecting AVX2 on this CPU.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { frame_errors_avx2(seed, frame, bits, sigma) },
            // SAFETY: as above, after detecting all the enabled AVX-512 features.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { frame_errors_avx512(seed, frame, bits, sigma) },
        }
    }
}

/// Runs the simulation on `threads` threads (clamped to `1..=frames`).
///
/// Threads take frames from a shared counter; `stop` is checked before every
/// frame (a frame is well under a millisecond at full speed), so raising it
/// makes the call return [`SimError::Interrupted`] promptly.
pub fn simulate(
    params: &Params,
    threads: usize,
    kernel: Kernel,
    stop: &AtomicBool,
) -> Result<Outcome, SimError> {
    let bits = params.validate()?;
    let sigma = params.sigma();
    let threads = threads.clamp(1, usize::try_from(params.frames).unwrap_or(usize::MAX));
    let next = AtomicU64::new(0);

    let worker = || -> Option<u64> {
        let mut errors = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let frame = next.fetch_add(1, Ordering::Relaxed);
            if frame >= params.frames {
                return Some(errors);
            }
            errors += kernel.frame_errors(params.seed, frame, params.bits_per_frame, sigma);
        }
    };

    let results: Vec<Result<Option<u64>, SimError>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads - 1);
        let mut spawn_error = None;
        for i in 1..threads {
            match std::thread::Builder::new()
                .name(format!("ber-sim-{i}"))
                .spawn_scoped(scope, worker)
            {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(SimError::Worker(format!("cannot start thread: {e}")));
                    // Let the already started workers stop early.
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let mut results = vec![Ok(worker())];
        for h in handles {
            results.push(
                h.join()
                    .map_err(|_| SimError::Worker("a worker thread panicked".into())),
            );
        }
        if let Some(e) = spawn_error {
            results.push(Err(e));
        }
        results
    });

    let mut errors = 0u64;
    for r in results {
        match r? {
            Some(e) => errors += e,
            None => return Err(SimError::Interrupted),
        }
    }
    Ok(Outcome { bits, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: Params, threads: usize, kernel: Kernel) -> Outcome {
        simulate(&p, threads, kernel, &AtomicBool::new(false)).expect("valid params")
    }

    fn params(ebn0_db: f64, seed: u64, frames: u64, bits_per_frame: u64) -> Params {
        Params {
            ebn0_db,
            seed,
            frames,
            bits_per_frame,
        }
    }

    /// Straightforward per-bit scalar model of a frame (no blocks, no flags).
    fn reference_frame(seed: u64, frame: u64, bits: u64, sigma: f64) -> u64 {
        let (lanes, mut aux) = frame_streams(seed, frame);
        let mut lane_rngs: Vec<_> = (0..LANES).map(|l| lanes.lane(l)).collect();
        let mut words = Vec::new();
        while (words.len() as u64) < bits {
            for r in lane_rngs.iter_mut() {
                words.push(r.next_u64());
            }
        }
        words.truncate(bits as usize);
        let mut errors = 0;
        // Blocks only matter for the order of aux draws: the slow path runs after
        // each block's fast pass, in bit order, which for a single stream is the
        // same as plain bit order.
        for w in words {
            let z = match normal::fast(w) {
                (z, true) => z,
                (_, false) => normal::slow(w, &mut aux),
            };
            let b = (w >> DATA_BIT) & 1;
            let s = 1.0 - 2.0 * b as f64;
            let bhat = (s + sigma * z < 0.0) as u64;
            errors += (bhat != b) as u64;
        }
        errors
    }

    #[test]
    fn kernel_matches_scalar_reference() {
        for &(bits, db) in &[
            (1u64, 0.0),
            (7, 0.0),
            (513, -3.0),
            (3000, 2.0),
            (10_001, 6.0),
        ] {
            let sigma = noise_sigma(db);
            for k in Kernel::available() {
                for frame in 0..3 {
                    assert_eq!(
                        k.frame_errors(5, frame, bits, sigma),
                        reference_frame(5, frame, bits, sigma),
                        "kernel {} bits {bits} frame {frame}",
                        k.name()
                    );
                }
            }
        }
    }

    #[test]
    fn all_kernels_and_thread_counts_agree() {
        let p = params(1.0, 17, 24, 20_000);
        let want = run(p, 1, Kernel::portable());
        assert_eq!(want.bits, 480_000);
        assert!(want.errors > 0);
        for k in Kernel::available() {
            for threads in [1, 2, 3, 8, 100] {
                assert_eq!(run(p, threads, k), want, "{} × {threads}", k.name());
            }
        }
    }

    #[test]
    fn seeds_and_frames_give_different_streams() {
        let a = run(params(0.0, 1, 4, 50_000), 1, Kernel::best());
        let b = run(params(0.0, 2, 4, 50_000), 1, Kernel::best());
        assert_ne!(a.errors, b.errors);
        let k = Kernel::best();
        let sigma = noise_sigma(0.0);
        assert_ne!(
            k.frame_errors(1, 0, 50_000, sigma),
            k.frame_errors(1, 1, 50_000, sigma)
        );
    }

    #[test]
    fn sigma_matches_definition() {
        assert!((noise_sigma(0.0) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-16);
        assert!((noise_sigma(10.0) - (1.0f64 / 20.0).sqrt()).abs() < 1e-16);
    }

    #[test]
    fn invalid_params_are_rejected() {
        let stop = AtomicBool::new(false);
        for p in [
            params(f64::NAN, 0, 1, 1),
            params(f64::INFINITY, 0, 1, 1),
            params(31.0, 0, 1, 1),
            params(0.0, 0, 0, 1),
            params(0.0, 0, 1, 0),
            params(0.0, 0, u64::MAX, 2),
        ] {
            let e = simulate(&p, 1, Kernel::best(), &stop).unwrap_err();
            assert!(matches!(e, SimError::InvalidParams(_)), "{p:?}: {e}");
        }
    }

    #[test]
    fn stop_flag_interrupts() {
        let stop = AtomicBool::new(true);
        let e = simulate(&params(0.0, 0, 1000, 1000), 2, Kernel::best(), &stop).unwrap_err();
        assert_eq!(e, SimError::Interrupted);
    }
}
