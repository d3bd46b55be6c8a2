//! ber-sim: sluice's reference workload — a Monte Carlo estimate of the bit
//! error rate (BER) of BPSK over an AWGN channel with hard-decision detection,
//! fast enough that a 2.46e11-bit job fits in minutes on two cores.
//!
//! * [`rng`]: xoshiro256++ (scalar and 8-lane SIMD layout) seeded by SplitMix64.
//! * [`normal`]: exact ziggurat normal sampler, split into a vectorisable fast
//!   path and a scalar slow path.
//! * [`sim`]: the per-frame kernel (with runtime ISA dispatch), the threaded
//!   driver and parameter validation.
//! * [`output`]: the JSON result file and its atomic write.

pub mod normal;
pub mod output;
pub mod rng;
pub mod sim;

pub use output::TaskResult;
pub use sim::{Kernel, Outcome, Params, SimError, simulate};

pub mod theory;
