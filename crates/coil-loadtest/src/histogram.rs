//! Log-bucketed histograms for latencies and intervals: a plain one for reports and an atomic
//! one that thousands of player tasks record into without a lock.
//!
//! Values are `u64` in whatever unit the caller picks (microseconds here). Each power of two is
//! split into 32 buckets, so a reported percentile is within ~3% of the true value whatever its
//! magnitude, and the whole `u64` range fits in 1,920 buckets. This module does no IO.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets per power of two, as a bit count: 2^5 = 32 buckets, relative error ≤ 1/32.
const SUB_BUCKET_BITS: u32 = 5;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Enough buckets for every `u64`: values below 32 are exact, then 32 per power of two.
const BUCKET_COUNT: usize = ((64 - SUB_BUCKET_BITS as usize) + 1) * SUB_BUCKETS as usize;

fn bucket_index(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BUCKET_BITS;
    let mantissa = (value >> shift) - SUB_BUCKETS;
    ((u64::from(shift) + 1) * SUB_BUCKETS + mantissa) as usize
}

/// Smallest value that lands in bucket `index`.
fn bucket_low(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = index / SUB_BUCKETS - 1;
    let mantissa = index % SUB_BUCKETS;
    (SUB_BUCKETS + mantissa) << shift
}

/// Largest value that lands in bucket `index`.
fn bucket_high(index: usize) -> u64 {
    if index + 1 >= BUCKET_COUNT {
        u64::MAX
    } else {
        bucket_low(index + 1) - 1
    }
}

/// A histogram owned by one place (a report, a test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKET_COUNT],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, value: u64) {
        self.counts[bucket_index(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds everything `other` recorded (to report several windows together).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value at percentile `percent` (0–100): the middle of the bucket holding that rank,
    /// clamped to the smallest and largest values recorded. `None` when empty.
    pub fn percentile(&self, percent: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let fraction = (percent / 100.0).clamp(0.0, 1.0);
        let rank = ((fraction * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &bucket) in self.counts.iter().enumerate() {
            seen += bucket;
            if seen >= rank {
                let low = bucket_low(index);
                let high = bucket_high(index);
                let middle = low + (high - low) / 2;
                return Some(middle.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// A histogram many tasks record into at once (relaxed atomics: counts are statistics, not
/// synchronisation). [`AtomicHistogram::take`] reads and resets it for a measurement window.
#[derive(Debug)]
pub struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram::new()
    }
}

impl AtomicHistogram {
    pub fn new() -> AtomicHistogram {
        AtomicHistogram {
            counts: (0..BUCKET_COUNT).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn record(&self, value: u64) {
        self.counts[bucket_index(value)].fetch_add(1, Ordering::Relaxed);
    }

    /// Everything recorded since the last take, as a plain histogram; the atomic one starts
    /// over. Values are known to bucket precision only, so min/max/sum are bucket middles.
    pub fn take(&self) -> Histogram {
        let mut histogram = Histogram::new();
        for (index, bucket) in self.counts.iter().enumerate() {
            let count = bucket.swap(0, Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let low = bucket_low(index);
            let middle = low + (bucket_high(index) - low) / 2;
            histogram.counts[index] = count;
            histogram.count += count;
            histogram.sum += u128::from(middle) * u128::from(count);
            histogram.min = histogram.min.min(low);
            histogram.max = histogram.max.max(bucket_high(index));
        }
        histogram
    }
}

/// Exact percentile of a small list (per-player rates): nearest rank on a sorted copy.
pub fn percentile_of_sorted(sorted: &[f64], percent: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let fraction = (percent / 100.0).clamp(0.0, 1.0);
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_and_are_contiguous() {
        for index in 0..BUCKET_COUNT - 1 {
            assert_eq!(
                bucket_high(index) + 1,
                bucket_low(index + 1),
                "index {index}"
            );
            assert_eq!(bucket_index(bucket_low(index)), index);
            assert_eq!(bucket_index(bucket_high(index)), index);
        }
        assert_eq!(bucket_index(u64::MAX), BUCKET_COUNT - 1);
        assert_eq!(bucket_index(0), 0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut histogram = Histogram::new();
        for value in 1..=20 {
            histogram.record(value);
        }
        assert_eq!(histogram.percentile(50.0), Some(10));
        assert_eq!(histogram.percentile(100.0), Some(20));
        assert_eq!(histogram.percentile(0.0), Some(1));
        assert_eq!(histogram.min(), Some(1));
        assert_eq!(histogram.mean(), Some(10.5));
    }

    #[test]
    fn percentiles_of_a_uniform_range_are_within_bucket_precision() {
        let mut histogram = Histogram::new();
        for value in 1..=100_000u64 {
            histogram.record(value);
        }
        for (percent, expected) in [(50.0, 50_000.0), (95.0, 95_000.0), (99.0, 99_000.0)] {
            let got = histogram.percentile(percent).unwrap() as f64;
            let error = (got - expected).abs() / expected;
            assert!(error < 0.035, "p{percent}: got {got}, expected ~{expected}");
        }
        assert_eq!(histogram.max(), Some(100_000));
    }

    #[test]
    fn a_tail_shows_in_p99_but_not_p50() {
        let mut histogram = Histogram::new();
        for _ in 0..980 {
            histogram.record(50_000);
        }
        for _ in 0..20 {
            histogram.record(400_000);
        }
        let p50 = histogram.percentile(50.0).unwrap();
        let p99 = histogram.percentile(99.0).unwrap();
        assert!((48_000..=52_000).contains(&p50), "p50 {p50}");
        assert!((380_000..=420_000).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn empty_histograms_have_no_percentiles() {
        assert_eq!(Histogram::new().percentile(50.0), None);
        assert_eq!(Histogram::new().mean(), None);
        assert_eq!(AtomicHistogram::new().take().count(), 0);
        assert_eq!(percentile_of_sorted(&[], 50.0), None);
    }

    #[test]
    fn atomic_take_reads_and_resets() {
        let atomic = AtomicHistogram::new();
        for value in [10, 20, 30, 1_000, 1_000] {
            atomic.record(value);
        }
        let first = atomic.take();
        assert_eq!(first.count(), 5);
        let p50 = first.percentile(50.0).unwrap();
        assert_eq!(p50, 30);
        let p99 = first.percentile(99.0).unwrap();
        assert!((970..=1_030).contains(&p99), "p99 {p99}");
        assert_eq!(atomic.take().count(), 0);
    }

    #[test]
    fn merged_histograms_add_up() {
        let mut first = Histogram::new();
        let mut second = Histogram::new();
        for value in 1..=50 {
            first.record(value);
        }
        for value in 51..=100 {
            second.record(value);
        }
        let mut both = Histogram::new();
        both.merge(&first);
        both.merge(&second);
        assert_eq!(both.count(), 100);
        assert_eq!(both.min(), Some(1));
        assert_eq!(both.max(), Some(100));
        assert_eq!(both.mean(), Some(50.5));
        let p50 = both.percentile(50.0).unwrap();
        assert!((48..=52).contains(&p50), "p50 {p50}");
        both.merge(&Histogram::new());
        assert_eq!(both.count(), 100);
    }

    #[test]
    fn exact_percentiles_over_players_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_of_sorted(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile_of_sorted(&sorted, 95.0), Some(95.0));
        assert_eq!(percentile_of_sorted(&sorted[..1], 95.0), Some(1.0));
    }
}
