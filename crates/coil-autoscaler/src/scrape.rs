//! Reads a game node's `GET /metrics` (Prometheus text format) into the load figures the policy
//! wants, turning counters into rates between two scrapes of the same node.
//!
//! Owns the figures read (the text format is `coil_service::prometheus`, the parser every
//! process shares) and the per-node history of the previous scrape. It must not fail the controller: a node that does not answer, answers
//! garbage, or restarted (counters went backwards) yields zeros for what it cannot tell, which
//! the policy reads as "no pressure" (the buffer rule still protects players).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use coil_autoscale::NodeId;
use coil_service::prometheus::{Sample, label_value, parse_line, quantile_of_delta};

/// The raw figures of one scrape (counters as totals, not rates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawNodeMetrics {
    pub cpu_seconds_total: f64,
    pub resident_memory_bytes: f64,
    pub connections_open: f64,
    pub ws_bytes_sent_total: f64,
    pub tick_overruns_total: f64,
    pub tick_count_total: f64,
    /// Cumulative `coil_tick_duration_seconds_bucket` counts by upper bound (seconds), sorted.
    pub tick_buckets: Vec<(f64, f64)>,
}

/// Parses the figures the autoscaler needs out of a node's metrics text. Families that are
/// missing stay zero; families with several label sets are summed.
pub fn parse_node_metrics(text: &str) -> RawNodeMetrics {
    let mut raw = RawNodeMetrics::default();
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for Sample {
        name,
        labels,
        value,
    } in text.lines().filter_map(parse_line)
    {
        if !value.is_finite() {
            continue;
        }
        match name {
            "process_cpu_seconds_total" => raw.cpu_seconds_total += value,
            "process_resident_memory_bytes" => raw.resident_memory_bytes += value,
            "coil_connections_open" => raw.connections_open += value,
            "coil_ws_bytes_sent_total" => raw.ws_bytes_sent_total += value,
            "coil_tick_overruns_total" => raw.tick_overruns_total += value,
            "coil_tick_duration_seconds_count" => raw.tick_count_total += value,
            "coil_tick_duration_seconds_bucket" => {
                let Some(bound) = label_value(labels, "le") else {
                    continue;
                };
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    match bound.parse::<f64>() {
                        Ok(bound) if bound >= 0.0 => bound,
                        _ => continue,
                    }
                };
                // Bucket bounds as ordered keys: the bit pattern of a non-negative f64 sorts
                // like the number.
                let entry = buckets.entry(bound.to_bits()).or_insert((bound, 0.0));
                entry.1 += value;
            }
            _ => {}
        }
    }
    raw.tick_buckets = buckets.into_values().collect();
    raw
}

/// Load figures of one node over the interval between two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLoad {
    pub cpu_utilization: f64,
    pub memory_utilization: f64,
    pub open_connections: u32,
    pub egress_bytes_per_second: f64,
    pub tick_p95_ms: f64,
    pub tick_p99_ms: f64,
    pub tick_overrun_rate: f64,
}

/// What the machine a node runs on has, for turning process figures into shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MachineSize {
    pub cores: u32,
    pub memory_bytes: u64,
}

fn delta(now: f64, before: f64) -> f64 {
    // A counter that went backwards means the process restarted: count nothing this round.
    if now >= before { now - before } else { 0.0 }
}

/// Quantile `quantile` (ms) of the ticks observed between two scrapes, interpolated inside its
/// bucket like Prometheus' `histogram_quantile` (a bucket's upper bound alone would report
/// every 11 ms tick as 25 ms); 0 when no tick was observed. Ticks beyond the last finite bucket
/// report that bound.
fn quantile_ms(now: &[(f64, f64)], before: &[(f64, f64)], quantile: f64) -> f64 {
    quantile_of_delta(before, now, quantile).map_or(0.0, |seconds| seconds * 1000.0)
}

/// Turns two scrapes `elapsed` apart into load figures.
pub fn node_load(
    now: &RawNodeMetrics,
    before: Option<&RawNodeMetrics>,
    elapsed: Duration,
    machine: MachineSize,
) -> NodeLoad {
    let memory_utilization = if machine.memory_bytes > 0 {
        now.resident_memory_bytes / machine.memory_bytes as f64
    } else {
        0.0
    };
    let open_connections = if now.connections_open.is_finite() && now.connections_open > 0.0 {
        now.connections_open.min(f64::from(u32::MAX)) as u32
    } else {
        0
    };
    let mut load = NodeLoad {
        memory_utilization,
        open_connections,
        ..NodeLoad::default()
    };
    let Some(before) = before else {
        return load;
    };
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return load;
    }
    let cores = f64::from(machine.cores.max(1));
    load.cpu_utilization = delta(now.cpu_seconds_total, before.cpu_seconds_total) / seconds / cores;
    load.egress_bytes_per_second =
        delta(now.ws_bytes_sent_total, before.ws_bytes_sent_total) / seconds;
    let ticks = delta(now.tick_count_total, before.tick_count_total);
    if ticks > 0.0 {
        load.tick_overrun_rate =
            (delta(now.tick_overruns_total, before.tick_overruns_total) / ticks).min(1.0);
    }
    load.tick_p95_ms = quantile_ms(&now.tick_buckets, &before.tick_buckets, 0.95);
    load.tick_p99_ms = quantile_ms(&now.tick_buckets, &before.tick_buckets, 0.99);
    load
}

/// The previous scrape of every node, for rates.
#[derive(Debug, Default)]
pub struct ScrapeHistory {
    previous: BTreeMap<NodeId, (Instant, RawNodeMetrics)>,
}

impl ScrapeHistory {
    /// Records a fresh scrape and returns the load since the previous one.
    pub fn record(
        &mut self,
        node: &NodeId,
        raw: RawNodeMetrics,
        at: Instant,
        machine: MachineSize,
    ) -> NodeLoad {
        let before = self.previous.get(node);
        let load = node_load(
            &raw,
            before.map(|(_, raw)| raw),
            before.map_or(Duration::ZERO, |(then, _)| {
                at.saturating_duration_since(*then)
            }),
            machine,
        );
        self.previous.insert(node.clone(), (at, raw));
        load
    }

    /// Forgets nodes that are gone, so the history cannot grow without bound.
    pub fn retain(&mut self, keep: impl Fn(&NodeId) -> bool) {
        self.previous.retain(|node, _| keep(node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
# HELP process_cpu_seconds_total CPU
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 10.5
process_resident_memory_bytes 1073741824
coil_connections_open 42
coil_ws_bytes_sent_total 1000000
coil_tick_overruns_total 2
coil_tick_duration_seconds_bucket{le="0.001"} 50
coil_tick_duration_seconds_bucket{le="0.005"} 90
coil_tick_duration_seconds_bucket{le="0.05"} 99
coil_tick_duration_seconds_bucket{le="+Inf"} 100
coil_tick_duration_seconds_sum 0.3
coil_tick_duration_seconds_count 100
garbage line without value
coil_connections_open{x="y"} NaN
"#;

    #[test]
    fn parses_the_families_the_policy_needs_and_skips_garbage() {
        let raw = parse_node_metrics(SAMPLE);
        assert_eq!(raw.cpu_seconds_total, 10.5);
        assert_eq!(raw.connections_open, 42.0);
        assert_eq!(raw.tick_count_total, 100.0);
        assert_eq!(raw.tick_buckets.len(), 4);
        assert_eq!(raw.tick_buckets[0], (0.001, 50.0));
        assert!(raw.tick_buckets[3].0.is_infinite());
        assert_eq!(
            parse_node_metrics("not metrics at all {{{"),
            RawNodeMetrics::default()
        );
    }

    #[test]
    fn a_brace_inside_a_quoted_label_value_does_not_end_the_labels() {
        let raw = parse_node_metrics(
            "coil_tick_duration_seconds_bucket{mode=\"a}b\",le=\"0.001\"} 5\n\
             coil_tick_duration_seconds_bucket{mode=\"a}b\",le=\"+Inf\"} 7\n\
             coil_tick_duration_seconds_count{mode=\"a}b\"} 7\n",
        );
        assert_eq!(raw.tick_count_total, 7.0);
        assert_eq!(raw.tick_buckets, vec![(0.001, 5.0), (f64::INFINITY, 7.0)]);
    }

    #[test]
    fn rates_come_from_the_difference_between_two_scrapes() {
        let before = parse_node_metrics(SAMPLE);
        let mut now = before.clone();
        now.cpu_seconds_total += 20.0;
        now.ws_bytes_sent_total += 5_000_000.0;
        now.tick_count_total += 200.0;
        now.tick_overruns_total += 4.0;
        // 200 more ticks: 100 under 1 ms, 90 more under 5 ms, 10 more under 50 ms.
        now.tick_buckets = vec![
            (0.001, 150.0),
            (0.005, 280.0),
            (0.05, 299.0),
            (f64::INFINITY, 300.0),
        ];
        let machine = MachineSize {
            cores: 4,
            memory_bytes: 4 * 1_073_741_824,
        };
        let load = node_load(&now, Some(&before), Duration::from_secs(10), machine);
        assert!((load.cpu_utilization - 0.5).abs() < 1e-9);
        assert!((load.egress_bytes_per_second - 500_000.0).abs() < 1e-6);
        assert!((load.tick_overrun_rate - 0.02).abs() < 1e-9);
        assert!((load.memory_utilization - 0.25).abs() < 1e-9);
        assert_eq!(load.open_connections, 42);
        // p95 = the 190th of 200 ticks: the last one of the 1–5 ms bucket. p99 = the 198th:
        // 8 of the 10 ticks into the 5–50 ms bucket.
        assert!(
            (load.tick_p95_ms - 5.0).abs() < 1e-9,
            "{}",
            load.tick_p95_ms
        );
        assert!(
            (load.tick_p99_ms - 41.0).abs() < 1e-9,
            "{}",
            load.tick_p99_ms
        );
    }

    #[test]
    fn a_first_scrape_or_a_restarted_node_reports_no_pressure() {
        let raw = parse_node_metrics(SAMPLE);
        let machine = MachineSize {
            cores: 2,
            memory_bytes: 0,
        };
        let first = node_load(&raw, None, Duration::ZERO, machine);
        assert_eq!(first.cpu_utilization, 0.0);
        assert_eq!(first.memory_utilization, 0.0);
        let restarted = RawNodeMetrics::default();
        let load = node_load(&restarted, Some(&raw), Duration::from_secs(5), machine);
        assert_eq!(load.cpu_utilization, 0.0);
        assert_eq!(load.tick_p95_ms, 0.0);
        assert_eq!(load.tick_overrun_rate, 0.0);
    }
}
