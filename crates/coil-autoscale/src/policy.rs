//! The policy: every knob of the autoscaler, its defaults, and `Policy::validate`.
//!
//! Owns the configuration types and the schedule arithmetic (which floor applies at `now`).
//! It must not read files or the environment: the controller loads a `Policy` with serde from
//! its config and calls `validate` before the first decision. `decide` never panics on an
//! invalid policy (it clamps), but only a validated policy gives the documented behaviour.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::snapshot::RegionId;

const MINUTES_PER_DAY: u64 = 24 * 60;
const MINUTES_PER_WEEK: u64 = 7 * MINUTES_PER_DAY;
const MS_PER_MINUTE: u64 = 60_000;

/// All tunables of the autoscaling policy. Durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Decide and report, but `Decision::actions_to_execute` stays empty and no action is
    /// remembered as done.
    pub dry_run: bool,
    /// Share of seats that must stay free in a region (Agones' buffer, GameLift's
    /// PercentAvailableGameSessions target). Spare below this scales out at once.
    pub spare_seat_buffer: f64,
    /// Extra spare share a region must keep *after* a removal before a node is retired, so
    /// that retiring one node cannot by itself push the region back under the buffer.
    pub scale_in_buffer_margin: f64,
    /// Human seats one node serves, measured by the load generator for the node's server type.
    pub seats_per_node: u32,
    /// How long at least `min_pressure_signals` signals must press before a scale-out.
    pub scale_out_window_ms: u64,
    /// How many distinct signals must be sustained together (one noisy metric is not enough).
    pub min_pressure_signals: u32,
    /// Minimum time between two pressure-driven scale-outs. Buffer and floor scale-outs are
    /// not held back: they count booting nodes, so they cannot add twice for the same need.
    pub scale_out_cooldown_ms: u64,
    /// How long use must stay low before a node is retired (the scale-down delay Agones users
    /// ask for in issue #3826).
    pub scale_in_window_ms: u64,
    /// No retirement starts within this time after any scale-out.
    pub scale_in_delay_after_scale_out_ms: u64,
    /// Minimum time between the end of one retirement and the start of the next.
    pub scale_in_cooldown_ms: u64,
    /// Use counts as low when every load signal, spread over one node fewer, stays below this
    /// share of its scale-out threshold (the hysteresis band between scale-out and scale-in).
    pub low_use_signal_fraction: f64,
    /// How long a DRAINING node keeps its players before they are told to re-matchmake.
    pub drain_deadline_ms: u64,
    /// After EvictPlayers, how long clients get to leave before the server is deleted anyway.
    pub eviction_grace_ms: u64,
    /// A MarkDraining or DeleteNode that did not take effect is issued again after this long.
    pub action_retry_ms: u64,
    /// A node still booting after this long is retired (a failed boot is billed like a good one).
    pub boot_timeout_ms: u64,
    /// Requested nodes not yet listed as booting count as capacity for this long.
    pub pending_create_timeout_ms: u64,
    /// A gap between two evaluations longer than this restarts every sustained window: the
    /// policy only trusts a window it watched.
    pub stale_history_after_ms: u64,
    /// Scheduled floors take effect this long before their window opens (boot and warm-up).
    pub schedule_lead_ms: u64,
    pub thresholds: PressureThresholds,
    /// Limits for regions without their own entry in `regions`.
    pub default_limits: RegionLimits,
    pub regions: BTreeMap<RegionId, RegionLimits>,
    /// Ceiling over all regions (the Hetzner project's server limit, a budget).
    pub max_total_nodes: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            dry_run: false,
            spare_seat_buffer: 0.15,
            scale_in_buffer_margin: 0.05,
            seats_per_node: 480,
            scale_out_window_ms: 2 * 60_000,
            min_pressure_signals: 2,
            scale_out_cooldown_ms: 3 * 60_000,
            scale_in_window_ms: 10 * 60_000,
            scale_in_delay_after_scale_out_ms: 15 * 60_000,
            scale_in_cooldown_ms: 2 * 60_000,
            low_use_signal_fraction: 0.6,
            // A match mode's drain deadline (MATCH_DRAIN_DEADLINE_SECS, 20 minutes): players in a
            // match in progress are not evicted before the node itself would close the match.
            drain_deadline_ms: 20 * 60_000,
            eviction_grace_ms: 30_000,
            action_retry_ms: 60_000,
            boot_timeout_ms: 10 * 60_000,
            pending_create_timeout_ms: 2 * 60_000,
            stale_history_after_ms: 2 * 60_000,
            schedule_lead_ms: 15 * 60_000,
            thresholds: PressureThresholds::default(),
            default_limits: RegionLimits::default(),
            regions: BTreeMap::new(),
            max_total_nodes: None,
        }
    }
}

/// Where each pressure signal starts pressing. A threshold of zero switches that signal off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PressureThresholds {
    /// Mean CPU share over active nodes.
    pub cpu_utilization: f64,
    /// Mean memory share over active nodes.
    pub memory_utilization: f64,
    /// Mean tick p95 (ms); 20 Hz gives a 50 ms budget.
    pub tick_p95_ms: f64,
    /// Mean tick p99 (ms).
    pub tick_p99_ms: f64,
    /// Mean share of ticks that overran.
    pub tick_overrun_rate: f64,
    /// Connections a node is sized for; the signal presses at `near_limit_fraction` of it.
    pub node_connection_limit: u32,
    /// Egress a node is sized for (bytes/s); presses at `near_limit_fraction` of it.
    pub node_egress_limit_bytes_per_second: f64,
    pub near_limit_fraction: f64,
    /// Share of active rooms that are above the soft cap (full rooms: parties and overrides).
    pub rooms_above_soft_cap_fraction: f64,
}

impl Default for PressureThresholds {
    fn default() -> Self {
        Self {
            cpu_utilization: 0.75,
            memory_utilization: 0.85,
            tick_p95_ms: 30.0,
            tick_p99_ms: 40.0,
            tick_overrun_rate: 0.01,
            node_connection_limit: 10_000,
            node_egress_limit_bytes_per_second: 125_000_000.0,
            near_limit_fraction: 0.8,
            rooms_above_soft_cap_fraction: 0.2,
        }
    }
}

/// Per-region bounds on the fleet size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionLimits {
    /// Nodes kept even when idle; zero allows scaling the region to nothing.
    pub min_nodes: u32,
    /// Every server counts toward this, booting and draining ones too: they are all billed.
    pub max_nodes: u32,
    /// Floors raised ahead of known peaks.
    pub schedule: Vec<ScheduledFloor>,
}

impl Default for RegionLimits {
    fn default() -> Self {
        Self {
            min_nodes: 1,
            max_nodes: 20,
            schedule: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    fn index_from_monday(self) -> u64 {
        match self {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        }
    }
}

/// A floor that applies during a known window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduledFloor {
    /// Every listed weekday (all days when empty) from `start_minute_utc` to `end_minute_utc`
    /// (minutes after midnight UTC). An end before the start runs past midnight.
    Weekly {
        #[serde(default)]
        weekdays: Vec<Weekday>,
        start_minute_utc: u32,
        end_minute_utc: u32,
        min_nodes: u32,
    },
    /// A one-off event such as a launch, `[from_ms, until_ms)`.
    Once {
        from_ms: u64,
        until_ms: u64,
        min_nodes: u32,
    },
}

impl ScheduledFloor {
    fn min_nodes(&self) -> u32 {
        match self {
            ScheduledFloor::Weekly { min_nodes, .. } | ScheduledFloor::Once { min_nodes, .. } => {
                *min_nodes
            }
        }
    }

    /// True when the floor applies at `now_ms`, counting `lead_ms` before its start.
    fn applies_at(&self, now_ms: u64, lead_ms: u64) -> bool {
        match self {
            ScheduledFloor::Once {
                from_ms, until_ms, ..
            } => now_ms.saturating_add(lead_ms) >= *from_ms && now_ms < *until_ms,
            ScheduledFloor::Weekly {
                weekdays,
                start_minute_utc,
                end_minute_utc,
                ..
            } => {
                let start = u64::from(*start_minute_utc) % MINUTES_PER_DAY;
                let end = u64::from(*end_minute_utc) % MINUTES_PER_DAY;
                // Equal start and end means the whole day.
                let length = if end > start {
                    end - start
                } else {
                    end + MINUTES_PER_DAY - start
                };
                let lead_minutes = lead_ms.div_ceil(MS_PER_MINUTE).min(MINUTES_PER_WEEK);
                let now_minute = minute_of_week(now_ms);
                let days: &[Weekday] = if weekdays.is_empty() {
                    &ALL_WEEKDAYS
                } else {
                    weekdays
                };
                days.iter().any(|day| {
                    let window_start = day.index_from_monday() * MINUTES_PER_DAY + start;
                    let lead_start =
                        (window_start + MINUTES_PER_WEEK - lead_minutes) % MINUTES_PER_WEEK;
                    let since_lead_start =
                        (now_minute + MINUTES_PER_WEEK - lead_start) % MINUTES_PER_WEEK;
                    since_lead_start < (length + lead_minutes).min(MINUTES_PER_WEEK)
                })
            }
        }
    }
}

const ALL_WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// Minutes since Monday 00:00 UTC. The Unix epoch fell on a Thursday (index 3 from Monday).
fn minute_of_week(now_ms: u64) -> u64 {
    let minutes_since_epoch = now_ms / MS_PER_MINUTE;
    (minutes_since_epoch + 3 * MINUTES_PER_DAY) % MINUTES_PER_WEEK
}

impl RegionLimits {
    /// The floor at `now_ms`: the larger of `min_nodes` and every scheduled floor that
    /// applies, never above `max_nodes`. The flag says whether a schedule raised it.
    pub fn floor_at(&self, now_ms: u64, lead_ms: u64) -> (u32, bool) {
        let scheduled = self
            .schedule
            .iter()
            .filter(|floor| floor.applies_at(now_ms, lead_ms))
            .map(ScheduledFloor::min_nodes)
            .max()
            .unwrap_or(0);
        let floor = self.min_nodes.max(scheduled).min(self.max_nodes);
        (floor, scheduled > self.min_nodes && floor > self.min_nodes)
    }
}

impl Policy {
    /// Limits for `region`: its own entry, else `default_limits`.
    pub fn limits_for(&self, region: &RegionId) -> &RegionLimits {
        self.regions.get(region).unwrap_or(&self.default_limits)
    }

    /// Every problem with this policy, or `Ok` when it is usable.
    pub fn validate(&self) -> Result<(), Vec<PolicyError>> {
        let mut errors = Vec::new();
        let buffer = self.spare_seat_buffer;
        if !(buffer.is_finite() && (0.0..1.0).contains(&buffer)) {
            errors.push(PolicyError::SpareSeatBufferOutOfRange(buffer));
        }
        let margin = self.scale_in_buffer_margin;
        if !(margin.is_finite() && margin >= 0.0 && buffer + margin < 1.0) {
            errors.push(PolicyError::ScaleInMarginOutOfRange(margin));
        }
        if self.seats_per_node == 0 {
            errors.push(PolicyError::ZeroSeatsPerNode);
        }
        if self.min_pressure_signals == 0
            || self.min_pressure_signals as usize > crate::PressureSignal::ALL.len()
        {
            errors.push(PolicyError::MinPressureSignalsOutOfRange(
                self.min_pressure_signals,
            ));
        }
        let fraction = self.low_use_signal_fraction;
        if !(fraction.is_finite() && fraction > 0.0 && fraction < 1.0) {
            errors.push(PolicyError::LowUseFractionOutOfRange(fraction));
        }
        for (name, value) in [
            ("drain_deadline_ms", self.drain_deadline_ms),
            ("action_retry_ms", self.action_retry_ms),
            ("boot_timeout_ms", self.boot_timeout_ms),
            ("pending_create_timeout_ms", self.pending_create_timeout_ms),
            ("stale_history_after_ms", self.stale_history_after_ms),
        ] {
            if value == 0 {
                errors.push(PolicyError::ZeroDuration(name));
            }
        }
        let thresholds = &self.thresholds;
        for (name, value) in [
            ("cpu_utilization", thresholds.cpu_utilization),
            ("memory_utilization", thresholds.memory_utilization),
            ("tick_p95_ms", thresholds.tick_p95_ms),
            ("tick_p99_ms", thresholds.tick_p99_ms),
            ("tick_overrun_rate", thresholds.tick_overrun_rate),
            (
                "node_egress_limit_bytes_per_second",
                thresholds.node_egress_limit_bytes_per_second,
            ),
            (
                "rooms_above_soft_cap_fraction",
                thresholds.rooms_above_soft_cap_fraction,
            ),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                errors.push(PolicyError::ThresholdInvalid { name, value });
            }
        }
        for (name, value) in [
            ("cpu_utilization", thresholds.cpu_utilization),
            ("memory_utilization", thresholds.memory_utilization),
            ("tick_overrun_rate", thresholds.tick_overrun_rate),
        ] {
            if value > 1.0 {
                errors.push(PolicyError::ThresholdInvalid { name, value });
            }
        }
        let near = thresholds.near_limit_fraction;
        if !(near.is_finite() && near > 0.0 && near <= 1.0) {
            errors.push(PolicyError::ThresholdInvalid {
                name: "near_limit_fraction",
                value: near,
            });
        }
        let mut minimum_total: u64 = 0;
        let default_region = RegionId::new("(default)");
        let all_limits =
            std::iter::once((&default_region, &self.default_limits)).chain(self.regions.iter());
        for (region, limits) in all_limits {
            if limits.max_nodes < limits.min_nodes {
                errors.push(PolicyError::MaxBelowMin {
                    region: region.clone(),
                    min_nodes: limits.min_nodes,
                    max_nodes: limits.max_nodes,
                });
            }
            for floor in &limits.schedule {
                if floor.min_nodes() > limits.max_nodes {
                    errors.push(PolicyError::ScheduledFloorAboveMax {
                        region: region.clone(),
                        floor: floor.min_nodes(),
                        max_nodes: limits.max_nodes,
                    });
                }
                match floor {
                    ScheduledFloor::Weekly {
                        start_minute_utc,
                        end_minute_utc,
                        ..
                    } => {
                        for minute in [*start_minute_utc, *end_minute_utc] {
                            if u64::from(minute) >= MINUTES_PER_DAY {
                                errors.push(PolicyError::ScheduleMinuteOutOfRange {
                                    region: region.clone(),
                                    minute,
                                });
                            }
                        }
                    }
                    ScheduledFloor::Once {
                        from_ms, until_ms, ..
                    } => {
                        if until_ms <= from_ms {
                            errors.push(PolicyError::ScheduleWindowEmpty {
                                region: region.clone(),
                            });
                        }
                    }
                }
            }
            if region != &default_region {
                minimum_total += u64::from(limits.min_nodes);
            }
        }
        if let Some(max_total) = self.max_total_nodes
            && minimum_total > u64::from(max_total)
        {
            errors.push(PolicyError::TotalMaxBelowRegionMinimums {
                max_total_nodes: max_total,
                sum_of_minimums: minimum_total,
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One problem found by `Policy::validate`; the message names the setting.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum PolicyError {
    #[error("spare_seat_buffer must be in 0..1, got {0}")]
    SpareSeatBufferOutOfRange(f64),
    #[error("scale_in_buffer_margin must be >= 0 with spare_seat_buffer + margin < 1, got {0}")]
    ScaleInMarginOutOfRange(f64),
    #[error("seats_per_node must be at least 1")]
    ZeroSeatsPerNode,
    #[error("min_pressure_signals must be between 1 and the number of signals, got {0}")]
    MinPressureSignalsOutOfRange(u32),
    #[error("low_use_signal_fraction must be strictly between 0 and 1, got {0}")]
    LowUseFractionOutOfRange(f64),
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    #[error("threshold {name} is out of range: {value}")]
    ThresholdInvalid { name: &'static str, value: f64 },
    #[error("region {region}: max_nodes {max_nodes} is below min_nodes {min_nodes}")]
    MaxBelowMin {
        region: RegionId,
        min_nodes: u32,
        max_nodes: u32,
    },
    #[error("region {region}: scheduled floor {floor} is above max_nodes {max_nodes}")]
    ScheduledFloorAboveMax {
        region: RegionId,
        floor: u32,
        max_nodes: u32,
    },
    #[error("region {region}: schedule minute {minute} is not a minute of the day (0..1440)")]
    ScheduleMinuteOutOfRange { region: RegionId, minute: u32 },
    #[error("region {region}: a one-off scheduled floor ends before it starts")]
    ScheduleWindowEmpty { region: RegionId },
    #[error(
        "max_total_nodes {max_total_nodes} is below the sum of region minimums {sum_of_minimums}"
    )]
    TotalMaxBelowRegionMinimums {
        max_total_nodes: u32,
        sum_of_minimums: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid() {
        assert_eq!(Policy::default().validate(), Ok(()));
    }

    #[test]
    fn nonsense_is_reported_with_the_setting_named() {
        type Breaker = fn(&mut Policy);
        type Expectation = fn(&PolicyError) -> bool;
        let cases: [(&str, Breaker, Expectation); 14] = [
            (
                "buffer above 1",
                |policy| policy.spare_seat_buffer = 1.5,
                |error| matches!(error, PolicyError::SpareSeatBufferOutOfRange(_)),
            ),
            (
                "buffer of exactly 1",
                |policy| policy.spare_seat_buffer = 1.0,
                |error| matches!(error, PolicyError::SpareSeatBufferOutOfRange(_)),
            ),
            (
                "negative buffer",
                |policy| policy.spare_seat_buffer = -0.1,
                |error| matches!(error, PolicyError::SpareSeatBufferOutOfRange(_)),
            ),
            (
                "NaN buffer",
                |policy| policy.spare_seat_buffer = f64::NAN,
                |error| matches!(error, PolicyError::SpareSeatBufferOutOfRange(_)),
            ),
            (
                "max below min",
                |policy| {
                    policy.default_limits.min_nodes = 5;
                    policy.default_limits.max_nodes = 2;
                },
                |error| matches!(error, PolicyError::MaxBelowMin { .. }),
            ),
            (
                "region max below min",
                |policy| {
                    policy.regions.insert(
                        RegionId::new("ash"),
                        RegionLimits {
                            min_nodes: 3,
                            max_nodes: 1,
                            schedule: Vec::new(),
                        },
                    );
                },
                |error| matches!(error, PolicyError::MaxBelowMin { region, .. } if region.0 == "ash"),
            ),
            (
                "zero seats",
                |policy| policy.seats_per_node = 0,
                |error| matches!(error, PolicyError::ZeroSeatsPerNode),
            ),
            (
                "zero signals",
                |policy| policy.min_pressure_signals = 0,
                |error| matches!(error, PolicyError::MinPressureSignalsOutOfRange(0)),
            ),
            (
                "more signals than exist",
                |policy| policy.min_pressure_signals = 8,
                |error| matches!(error, PolicyError::MinPressureSignalsOutOfRange(8)),
            ),
            (
                "margin pushing the buffer to 100%",
                |policy| policy.scale_in_buffer_margin = 0.9,
                |error| matches!(error, PolicyError::ScaleInMarginOutOfRange(_)),
            ),
            (
                "zero drain deadline",
                |policy| policy.drain_deadline_ms = 0,
                |error| matches!(error, PolicyError::ZeroDuration("drain_deadline_ms")),
            ),
            (
                "cpu threshold above 100%",
                |policy| policy.thresholds.cpu_utilization = 1.2,
                |error| {
                    matches!(
                        error,
                        PolicyError::ThresholdInvalid {
                            name: "cpu_utilization",
                            ..
                        }
                    )
                },
            ),
            (
                "scheduled floor above max",
                |policy| {
                    policy.default_limits.schedule = vec![ScheduledFloor::Once {
                        from_ms: 0,
                        until_ms: 10,
                        min_nodes: 99,
                    }];
                },
                |error| matches!(error, PolicyError::ScheduledFloorAboveMax { floor: 99, .. }),
            ),
            (
                "fleet max below the region minimums",
                |policy| {
                    policy.max_total_nodes = Some(3);
                    for name in ["ash", "hil"] {
                        policy.regions.insert(
                            RegionId::new(name),
                            RegionLimits {
                                min_nodes: 2,
                                max_nodes: 5,
                                schedule: Vec::new(),
                            },
                        );
                    }
                },
                |error| {
                    matches!(
                        error,
                        PolicyError::TotalMaxBelowRegionMinimums {
                            sum_of_minimums: 4,
                            ..
                        }
                    )
                },
            ),
        ];
        for (name, breaker, expected) in cases {
            let mut policy = Policy::default();
            breaker(&mut policy);
            let errors = policy.validate().expect_err(name);
            assert!(errors.iter().any(expected), "{name}: {errors:?}");
            assert!(errors.iter().all(|error| !error.to_string().is_empty()));
        }
    }

    #[test]
    fn schedule_mistakes_are_reported() {
        let mut policy = Policy::default();
        policy.default_limits.schedule = vec![
            ScheduledFloor::Weekly {
                weekdays: Vec::new(),
                start_minute_utc: 1_440,
                end_minute_utc: 60,
                min_nodes: 2,
            },
            ScheduledFloor::Once {
                from_ms: 10,
                until_ms: 10,
                min_nodes: 2,
            },
        ];
        let errors = policy.validate().expect_err("two mistakes");
        assert!(errors.iter().any(|error| matches!(
            error,
            PolicyError::ScheduleMinuteOutOfRange { minute: 1_440, .. }
        )));
        assert!(
            errors
                .iter()
                .any(|error| matches!(error, PolicyError::ScheduleWindowEmpty { .. }))
        );
    }

    #[test]
    fn min_nodes_zero_is_valid() {
        let mut policy = Policy::default();
        policy.default_limits.min_nodes = 0;
        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn config_loads_with_defaults_and_rejects_unknown_keys() {
        let text = r#"{
            "spare_seat_buffer": 0.2,
            "seats_per_node": 600,
            "default_limits": { "min_nodes": 0, "max_nodes": 40 },
            "regions": { "ash": { "min_nodes": 2, "max_nodes": 60, "schedule": [
                { "kind": "weekly", "weekdays": ["friday", "saturday"],
                  "start_minute_utc": 1080, "end_minute_utc": 60, "min_nodes": 20 }
            ] } },
            "thresholds": { "cpu_utilization": 0.7 }
        }"#;
        let policy: Policy = serde_json::from_str(text).expect("valid config");
        assert_eq!(policy.seats_per_node, 600);
        assert_eq!(policy.spare_seat_buffer, 0.2);
        assert_eq!(policy.thresholds.cpu_utilization, 0.7);
        assert_eq!(
            policy.thresholds.tick_p99_ms,
            PressureThresholds::default().tick_p99_ms
        );
        assert_eq!(
            policy.scale_out_window_ms,
            Policy::default().scale_out_window_ms
        );
        assert_eq!(policy.limits_for(&RegionId::new("ash")).max_nodes, 60);
        assert_eq!(policy.limits_for(&RegionId::new("fsn1")).max_nodes, 40);
        assert_eq!(policy.validate(), Ok(()));

        let typo = r#"{ "spare_seat_bufer": 0.2 }"#;
        assert!(serde_json::from_str::<Policy>(typo).is_err());
    }
}
