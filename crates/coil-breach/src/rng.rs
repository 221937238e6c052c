//! Breach's seeded pseudo-random generator (SplitMix64), for weapon spread, spawn spots and
//! bot decisions.
//!
//! Written in-crate on purpose (like `coil-sim`'s): the simulation must not read OS entropy or
//! depend on a crate whose stream could change between versions, because a replay of the same
//! seed and inputs has to produce the same `state_hash`.

/// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, passes BigCrush.
#[derive(Debug, Clone)]
pub(crate) struct BreachRng {
    state: u64,
}

impl BreachRng {
    pub(crate) fn new(seed: u64) -> BreachRng {
        BreachRng { state: seed }
    }

    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in 0..bound (bound 0 yields 0).
    pub(crate) fn below(&mut self, bound: u32) -> u32 {
        if bound == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(bound)) >> 32) as u32
    }

    /// Uniform in `-magnitude..=magnitude`.
    pub(crate) fn symmetric(&mut self, magnitude: i32) -> i32 {
        if magnitude <= 0 {
            return 0;
        }
        self.below(magnitude as u32 * 2 + 1) as i32 - magnitude
    }
}

/// The SplitMix64 finalizer; also the mixing step of `state_hash`.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// Folds values into a running 64-bit hash (order-sensitive, stable across runs and builds).
#[derive(Debug, Clone)]
pub(crate) struct StateHasher {
    hash: u64,
}

impl StateHasher {
    pub(crate) fn new() -> StateHasher {
        StateHasher {
            hash: 0x6272_6561_6368_0001,
        }
    }

    pub(crate) fn add(&mut self, value: u64) {
        self.hash = mix64(self.hash ^ value.wrapping_add(0x9E37_79B9_7F4A_7C15));
    }

    pub(crate) fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_stream_and_different_seeds_differ() {
        let mut first = BreachRng::new(7);
        let mut second = BreachRng::new(7);
        let mut other = BreachRng::new(8);
        let first_values: Vec<u64> = (0..16).map(|_| first.next_u64()).collect();
        let second_values: Vec<u64> = (0..16).map(|_| second.next_u64()).collect();
        let other_values: Vec<u64> = (0..16).map(|_| other.next_u64()).collect();
        assert_eq!(first_values, second_values);
        assert_ne!(first_values, other_values);
    }

    #[test]
    fn bounded_values_stay_in_range() {
        let mut rng = BreachRng::new(123);
        for _ in 0..10_000 {
            assert!(rng.below(5) < 5);
            let value = rng.symmetric(3);
            assert!((-3..=3).contains(&value));
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.symmetric(0), 0);
    }

    #[test]
    fn hasher_is_order_sensitive() {
        let mut first = StateHasher::new();
        first.add(1);
        first.add(2);
        let mut second = StateHasher::new();
        second.add(2);
        second.add(1);
        assert_ne!(first.finish(), second.finish());
    }
}
