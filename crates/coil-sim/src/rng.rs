//! The simulation's seeded pseudo-random generator (SplitMix64).
//!
//! Written in-crate on purpose: the simulation must not read OS entropy or depend on a crate
//! whose stream could change between versions, because a replay of the same seed and inputs
//! has to produce the same `state_hash`.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, passes BigCrush, and is more than
/// good enough for spawn spots, pellet values and bot wandering.
#[derive(Debug, Clone)]
pub(crate) struct SimRng {
    state: u64,
}

impl SimRng {
    pub(crate) fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_unit(&mut self) -> f32 {
        // 24 random bits fill an f32 mantissa exactly, so the result is never 1.0.
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [low, high).
    pub(crate) fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.next_unit()
    }

    /// Uniform in 0..bound (bound 0 yields 0).
    pub(crate) fn below(&mut self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

/// The SplitMix64 finalizer; also used as a stateless hash for per-tick bot noise.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_stream_and_different_seeds_differ() {
        let mut first = SimRng::new(7);
        let mut second = SimRng::new(7);
        let mut other = SimRng::new(8);
        let first_values: Vec<u64> = (0..16).map(|_| first.next_u64()).collect();
        let second_values: Vec<u64> = (0..16).map(|_| second.next_u64()).collect();
        let other_values: Vec<u64> = (0..16).map(|_| other.next_u64()).collect();
        assert_eq!(first_values, second_values);
        assert_ne!(first_values, other_values);
    }

    #[test]
    fn unit_values_stay_in_range() {
        let mut rng = SimRng::new(123);
        for _ in 0..10_000 {
            let value = rng.next_unit();
            assert!((0.0..1.0).contains(&value));
            assert!(rng.below(5) < 5);
        }
    }
}
