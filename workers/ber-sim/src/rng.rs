//! Pseudo-random number generators for the simulation kernel.
//!
//! * [`SplitMix64`] turns a small key (seed, frame index) into well-mixed state
//!   words; this is the seeding procedure the xoshiro authors recommend.
//! * [`Xoshiro256pp`] is the scalar xoshiro256++ generator (Blackman & Vigna
//!   2019): 256-bit state, period 2^256 - 1, passes BigCrush/PractRand, and its
//!   `++` scrambler gives good quality in *all* output bits, which matters
//!   because the kernel slices one output word into several independent fields.
//! * [`Xoshiro256ppX8`] is eight independent xoshiro256++ streams in
//!   structure-of-arrays layout. Each lane is bit-for-bit the scalar generator;
//!   the layout only lets the compiler update all eight with SIMD adds, xors and
//!   shifts, which is where most of ber-sim's speed comes from.

/// Weyl-sequence increment of SplitMix64 (2^64 / golden ratio, odd).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function (a bijective 64-bit mixer).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea & Flood 2014): a counter-based generator used only to
/// expand keys into generator states.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Starts the sequence at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next output.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }
}

/// One xoshiro256++ step on a state held in four words; returns the output.
#[inline(always)]
fn step(s0: &mut u64, s1: &mut u64, s2: &mut u64, s3: &mut u64) -> u64 {
    let out = s0.wrapping_add(*s3).rotate_left(23).wrapping_add(*s0);
    let t = *s1 << 17;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = s3.rotate_left(45);
    out
}

/// Draws a xoshiro state from SplitMix64, avoiding the single forbidden all-zero
/// state (SplitMix64 is a bijection of its counter, so four consecutive zero
/// outputs cannot actually happen; the check just makes that explicit).
fn state_from(sm: &mut SplitMix64) -> [u64; 4] {
    let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
    if s == [0; 4] { [1, 0, 0, 0] } else { s }
}

/// Scalar xoshiro256++.
#[derive(Clone, Debug)]
pub struct Xoshiro256pp {
    s: [u64; 4],
}

impl Xoshiro256pp {
    /// Seeds from the next four SplitMix64 outputs.
    pub fn from_splitmix(sm: &mut SplitMix64) -> Self {
        Self { s: state_from(sm) }
    }

    /// Uses `s` as the state; an all-zero state (which would be a fixed point)
    /// is replaced by `[1, 0, 0, 0]`.
    pub fn from_state(s: [u64; 4]) -> Self {
        Self {
            s: if s == [0; 4] { [1, 0, 0, 0] } else { s },
        }
    }

    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.s;
        step(s0, s1, s2, s3)
    }

    /// Uniform double in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform double in `(0, 1]` (never 0, so it is safe to take `ln`).
    #[inline]
    pub fn next_f64_nonzero(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Number of lanes in [`Xoshiro256ppX8`].
pub const LANES: usize = 8;

/// Eight independent xoshiro256++ streams, structure-of-arrays.
#[derive(Clone, Debug)]
pub struct Xoshiro256ppX8 {
    s0: [u64; LANES],
    s1: [u64; LANES],
    s2: [u64; LANES],
    s3: [u64; LANES],
}

impl Xoshiro256ppX8 {
    /// Seeds lane 0, 1, ... 7 in order, each from the next four SplitMix64 outputs.
    pub fn from_splitmix(sm: &mut SplitMix64) -> Self {
        let mut g = Self {
            s0: [0; LANES],
            s1: [0; LANES],
            s2: [0; LANES],
            s3: [0; LANES],
        };
        for l in 0..LANES {
            let [a, b, c, d] = state_from(sm);
            g.s0[l] = a;
            g.s1[l] = b;
            g.s2[l] = c;
            g.s3[l] = d;
        }
        g
    }

    /// Lane `l` as a scalar generator (same future outputs).
    pub fn lane(&self, l: usize) -> Xoshiro256pp {
        let l = l % LANES;
        Xoshiro256pp::from_state([self.s0[l], self.s1[l], self.s2[l], self.s3[l]])
    }

    /// One output from every lane: `out[l]` is lane `l`'s next output.
    #[inline(always)]
    // Indexing all five arrays by lane is the shape the SLP vectoriser turns
    // into one SIMD operation per line of `step`.
    #[allow(clippy::needless_range_loop)]
    pub fn next_block(&mut self, out: &mut [u64; LANES]) {
        for l in 0..LANES {
            out[l] = step(
                &mut self.s0[l],
                &mut self.s1[l],
                &mut self.s2[l],
                &mut self.s3[l],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn splitmix_matches_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (from the reference C code's
        // well-known test vector).
        let mut sm = SplitMix64::new(1_234_567);
        let want = [
            6_457_827_717_110_365_317u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for w in want {
            assert_eq!(sm.next_u64(), w);
        }
    }

    #[test]
    fn scalar_matches_rand_xoshiro() {
        let state = [0x0123_4567_89AB_CDEFu64, 42, 0xDEAD_BEEF, 7];
        let mut seed = [0u8; 32];
        for (i, w) in state.iter().enumerate() {
            seed[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut reference = rand_xoshiro::Xoshiro256PlusPlus::from_seed(seed);
        let mut ours = Xoshiro256pp::from_state(state);
        for _ in 0..1000 {
            assert_eq!(ours.next_u64(), reference.next_u64());
        }
    }

    #[test]
    fn lanes_are_independent_scalar_streams() {
        let mut g = Xoshiro256ppX8::from_splitmix(&mut SplitMix64::new(99));
        let mut scalars: Vec<_> = (0..LANES).map(|l| g.lane(l)).collect();
        let mut block = [0u64; LANES];
        for _ in 0..100 {
            g.next_block(&mut block);
            for (l, s) in scalars.iter_mut().enumerate() {
                assert_eq!(block[l], s.next_u64());
            }
        }
        // Lanes are seeded differently.
        assert!(block.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn uniforms_are_in_range() {
        let mut g = Xoshiro256pp::from_state([0; 4]);
        for _ in 0..10_000 {
            let u = g.next_f64();
            assert!((0.0..1.0).contains(&u));
            let v = g.next_f64_nonzero();
            assert!(v > 0.0 && v <= 1.0);
        }
    }
}
