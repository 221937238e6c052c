//! The week of demand: a daily curve, a weekend peak and one 2× spike, scaled so the week's
//! highest minute is exactly the requested peak CCU.
//!
//! Owns the shape only (players wanted online at each minute of a week starting Monday 00:00
//! UTC) and a small seeded random generator for the simulation's noise. It must not know
//! about nodes, prices or the autoscaler, and it reads no clock.

use serde::Serialize;

pub const MINUTES_PER_DAY: u32 = 24 * 60;
pub const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// Parameters of the weekly curve. All times are minutes after Monday 00:00 UTC.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficShape {
    pub peak_ccu: u32,
    /// Hour of day (UTC) of the daily evening peak; 01:00 UTC is 20:00 on the US east coast.
    pub evening_peak_hour_utc: f64,
    /// Lowest point of a day as a share of that day's peak.
    pub night_trough_fraction: f64,
    /// Weekday peaks as a share of weekend peaks.
    pub weekday_fraction_of_weekend: f64,
    /// The spike: the curve is multiplied by `spike_multiplier` from `spike_start_minute`
    /// for `spike_minutes`, reached over `spike_ramp_minutes` (a streamer, a launch).
    pub spike_start_minute: u32,
    pub spike_minutes: u32,
    pub spike_ramp_minutes: u32,
    pub spike_multiplier: f64,
}

impl TrafficShape {
    /// The default week for a region whose evening peak is at `evening_peak_hour_utc`:
    /// nights at 35% of the day's peak, weekdays at 80% of the weekend, and a 2× spike on
    /// Wednesday afternoon local time (six hours before the evening peak), lasting an hour
    /// after a 10-minute ramp.
    pub fn default_week(peak_ccu: u32, evening_peak_hour_utc: f64) -> Self {
        let wednesday = 2 * MINUTES_PER_DAY;
        let spike_hour = (evening_peak_hour_utc - 6.0).rem_euclid(24.0);
        Self {
            peak_ccu,
            evening_peak_hour_utc,
            night_trough_fraction: 0.35,
            weekday_fraction_of_weekend: 0.8,
            spike_start_minute: wednesday + (spike_hour * 60.0) as u32,
            spike_minutes: 60,
            spike_ramp_minutes: 10,
            spike_multiplier: 2.0,
        }
    }

    /// The unscaled curve at `minute` without the spike.
    fn base(&self, minute: u32) -> f64 {
        let minute = minute % MINUTES_PER_WEEK;
        let hour = f64::from(minute % MINUTES_PER_DAY) / 60.0;
        let phase = (hour - self.evening_peak_hour_utc) / 24.0 * std::f64::consts::TAU;
        // Raised cosine, sharpened so evenings are busier than afternoons.
        let daily = ((1.0 + phase.cos()) / 2.0).powf(1.5);
        let trough = self.night_trough_fraction.clamp(0.0, 1.0);
        let day_shape = trough + (1.0 - trough) * daily;
        // The evening of a calendar day belongs to that day in local time; with a peak hour
        // after midnight UTC, shift the weekday by the peak's offset so Saturday evening in
        // the US (Sunday 01:00 UTC) counts as weekend.
        let local_minute = (i64::from(minute) - local_offset_minutes(self.evening_peak_hour_utc))
            .rem_euclid(i64::from(MINUTES_PER_WEEK));
        let day_index = local_minute / i64::from(MINUTES_PER_DAY);
        let weekend = day_index >= 5;
        let day_factor = if weekend {
            1.0
        } else {
            self.weekday_fraction_of_weekend.clamp(0.0, 1.0)
        };
        day_shape * day_factor
    }

    /// Multiplier of the spike at `minute` (1 outside it, ramps linearly in and out).
    fn spike_factor(&self, minute: u32) -> f64 {
        let start = self.spike_start_minute;
        let ramp = self.spike_ramp_minutes.max(1);
        let end = start.saturating_add(self.spike_minutes);
        if minute < start || minute >= end.saturating_add(ramp) {
            return 1.0;
        }
        let extra = self.spike_multiplier - 1.0;
        let progress = if minute < start + ramp {
            f64::from(minute - start) / f64::from(ramp)
        } else if minute < end {
            1.0
        } else {
            1.0 - f64::from(minute - end) / f64::from(ramp)
        };
        1.0 + extra * progress
    }

    /// Players wanted online at each minute of the week, scaled so the maximum equals
    /// `peak_ccu`.
    pub fn weekly_demand(&self) -> Vec<f64> {
        let raw: Vec<f64> = (0..MINUTES_PER_WEEK)
            .map(|minute| self.base(minute) * self.spike_factor(minute))
            .collect();
        let highest = raw.iter().copied().fold(0.0, f64::max);
        let scale = if highest > 0.0 {
            f64::from(self.peak_ccu) / highest
        } else {
            0.0
        };
        raw.into_iter().map(|value| value * scale).collect()
    }

    /// Same scale as `weekly_demand`, without the spike: what the week would be without it.
    pub fn weekly_demand_without_spike(&self) -> Vec<f64> {
        let with_spike = self.weekly_demand();
        (0..MINUTES_PER_WEEK)
            .map(|minute| with_spike[minute as usize] / self.spike_factor(minute))
            .collect()
    }
}

/// Hours between UTC and the local time whose 20:00 is the evening peak.
fn local_offset_minutes(evening_peak_hour_utc: f64) -> i64 {
    let offset_hours = (evening_peak_hour_utc - 20.0 + 12.0).rem_euclid(24.0) - 12.0;
    (offset_hours * 60.0).round() as i64
}

/// SplitMix64: a tiny, well-known seeded generator. The simulation needs reproducible
/// noise, not cryptographic quality, and this avoids a dependency.
#[derive(Clone, Debug)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `expected` rounded to a whole number up or down at random so the mean is `expected`.
    pub fn round_randomly(&mut self, expected: f64) -> u64 {
        if !(expected.is_finite() && expected > 0.0) {
            return 0;
        }
        let whole = expected.floor();
        let fraction = expected - whole;
        whole as u64 + u64::from(self.next_unit() < fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us_week() -> TrafficShape {
        TrafficShape::default_week(100_000, 1.0)
    }

    #[test]
    fn the_week_peaks_exactly_at_the_requested_ccu_and_never_goes_negative() {
        let demand = us_week().weekly_demand();
        assert_eq!(demand.len(), MINUTES_PER_WEEK as usize);
        let highest = demand.iter().copied().fold(0.0, f64::max);
        assert!((highest - 100_000.0).abs() < 1e-6, "{highest}");
        assert!(demand.iter().all(|value| *value > 0.0));
    }

    #[test]
    fn the_spike_doubles_the_curve_and_is_gone_after_its_ramp() {
        let shape = us_week();
        let with = shape.weekly_demand();
        let without = shape.weekly_demand_without_spike();
        let middle = (shape.spike_start_minute + shape.spike_ramp_minutes + 5) as usize;
        assert!((with[middle] / without[middle] - 2.0).abs() < 1e-9);
        let before = (shape.spike_start_minute - 1) as usize;
        assert_eq!(with[before], without[before]);
        let after =
            (shape.spike_start_minute + shape.spike_minutes + shape.spike_ramp_minutes) as usize;
        assert_eq!(with[after], without[after]);
        // The ramp climbs: a sudden doubling, but not in one minute.
        let start = shape.spike_start_minute as usize;
        assert!(with[start + 1] / without[start + 1] < with[start + 5] / without[start + 5]);
    }

    #[test]
    fn weekends_peak_higher_than_weekdays_and_nights_are_low() {
        let shape = us_week();
        let demand = shape.weekly_demand_without_spike();
        let day_peak = |day: u32| {
            // Local day `day` runs from 05:00 UTC (midnight on the US east coast).
            let start = (day * MINUTES_PER_DAY + 5 * 60) as usize;
            demand[start..start + MINUTES_PER_DAY as usize]
                .iter()
                .copied()
                .fold(0.0, f64::max)
        };
        let tuesday = day_peak(1);
        let saturday = day_peak(5);
        assert!(
            (tuesday / saturday - 0.8).abs() < 0.01,
            "{tuesday} {saturday}"
        );
        // The trough is 35% of the day's peak, twelve hours away from it.
        let tuesday_evening = (MINUTES_PER_DAY * 2 + 60) as usize; // Wed 01:00 UTC
        let tuesday_noon = tuesday_evening - 12 * 60;
        let ratio = demand[tuesday_noon] / demand[tuesday_evening];
        assert!((ratio - 0.35).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn the_generator_is_deterministic_for_a_seed_and_rounds_to_the_mean() {
        let mut first = SeededRandom::new(7);
        let mut second = SeededRandom::new(7);
        let mut other = SeededRandom::new(8);
        let a: Vec<u64> = (0..5).map(|_| first.next_u64()).collect();
        let b: Vec<u64> = (0..5).map(|_| second.next_u64()).collect();
        let c: Vec<u64> = (0..5).map(|_| other.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut random = SeededRandom::new(1);
        let total: u64 = (0..10_000).map(|_| random.round_randomly(2.25)).sum();
        assert!((22_000..=23_000).contains(&total), "{total}");
        assert_eq!(random.round_randomly(f64::NAN), 0);
        assert_eq!(random.round_randomly(-3.0), 0);
    }
}
