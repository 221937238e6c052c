//! Reads the few figures the load generator needs from a node's `/metrics` (Prometheus text
//! format): CPU-seconds, resident memory, the tick histogram and the overload counters.
//!
//! Parsing is a pure function of the text so it is unit-tested here; fetching lives in
//! [`fetch_snapshot`]. Malformed lines are skipped, never a panic: the text comes from a
//! server under load that may be any build.

use std::time::{Duration, Instant};

/// One sample line: metric name, the raw label block (without braces) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: &'a str,
    pub value: f64,
}

/// Parses one line of the text format; `None` for comments, blanks and malformed lines.
pub fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if let Some(after_brace) = rest.strip_prefix('{') {
        // Find the closing brace outside quoted label values (which may hold `}` or spaces).
        let mut in_quotes = false;
        let mut escaped = false;
        let mut close = None;
        for (index, c) in after_brace.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                '}' if !in_quotes => {
                    close = Some(index);
                    break;
                }
                _ => {}
            }
        }
        let close = close?;
        labels = &after_brace[..close];
        rest = &after_brace[close + 1..];
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of label `key` in a raw label block, unescaped only as far as we need (none of
/// the labels we read contain escapes).
pub fn label_value<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while !rest.is_empty() {
        let equals = rest.find('=')?;
        let found_key = rest[..equals].trim().trim_start_matches(',').trim();
        let after = rest[equals + 1..].strip_prefix('"')?;
        let end = after.find('"')?;
        if found_key == key {
            return Some(&after[..end]);
        }
        rest = after[end + 1..].trim_start_matches(',');
    }
    None
}

/// Sum of every sample of `name` over all label sets; `None` if the family is absent.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for sample in text.lines().filter_map(parse_line) {
        if sample.name == name {
            *total.get_or_insert(0.0) += sample.value;
        }
    }
    total
}

/// Sum of the samples of `name` whose label `key` equals `value`.
pub fn sum_with_label(text: &str, name: &str, key: &str, value: &str) -> Option<f64> {
    let mut total = None;
    for sample in text.lines().filter_map(parse_line) {
        if sample.name == name && label_value(sample.labels, key) == Some(value) {
            *total.get_or_insert(0.0) += sample.value;
        }
    }
    total
}

/// Cumulative buckets of histogram `name` as `(upper bound, count)`, ascending, summed over
/// label sets that share a bound (one node may report several label sets).
pub fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let bucket_name = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for sample in text.lines().filter_map(parse_line) {
        if sample.name != bucket_name {
            continue;
        }
        let Some(bound) = label_value(sample.labels, "le").and_then(|le| le.parse::<f64>().ok())
        else {
            continue;
        };
        match buckets.iter_mut().find(|(existing, _)| *existing == bound) {
            Some((_, count)) => *count += sample.value,
            None => buckets.push((bound, sample.value)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The `quantile` (0–1) of the observations made between two scrapes of the same cumulative
/// histogram, interpolated linearly inside the bucket like Prometheus' `histogram_quantile`.
/// `None` when nothing was observed. If the quantile falls in the `+Inf` bucket, the largest
/// finite bound is returned (the true value is at least that).
pub fn quantile_of_delta(
    before: &[(f64, f64)],
    after: &[(f64, f64)],
    quantile: f64,
) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c);
            (bound, (count - earlier).max(0.0))
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = quantile.clamp(0.0, 1.0) * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in &delta {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

/// The node's figures at one instant.
#[derive(Debug, Clone)]
pub struct ServerSnapshot {
    pub taken_at: Instant,
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<f64>,
    pub tick_buckets: Vec<(f64, f64)>,
    pub tick_overruns: f64,
    pub dropped_frames: f64,
    pub connections_open: Option<f64>,
    pub human_players: Option<f64>,
    pub bot_players: Option<f64>,
}

impl ServerSnapshot {
    pub fn from_text(text: &str, taken_at: Instant) -> ServerSnapshot {
        ServerSnapshot {
            taken_at,
            cpu_seconds: sum(text, "process_cpu_seconds_total"),
            resident_memory_bytes: sum(text, "process_resident_memory_bytes"),
            tick_buckets: histogram_buckets(text, "coil_tick_duration_seconds"),
            // Counters that were never incremented are absent: that means zero.
            tick_overruns: sum(text, "coil_tick_overruns_total").unwrap_or(0.0),
            dropped_frames: sum(text, "coil_dropped_frames_total").unwrap_or(0.0),
            connections_open: sum(text, "coil_connections_open"),
            human_players: sum_with_label(text, "coil_players", "kind", "human"),
            bot_players: sum_with_label(text, "coil_players", "kind", "bot"),
        }
    }
}

/// How the node behaved between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerDelta {
    pub seconds: f64,
    pub cpu_seconds: Option<f64>,
    pub tick_p99_seconds: Option<f64>,
    pub tick_overruns: f64,
    pub dropped_frames: f64,
}

impl ServerDelta {
    pub fn between(before: &ServerSnapshot, after: &ServerSnapshot) -> ServerDelta {
        ServerDelta {
            seconds: after
                .taken_at
                .saturating_duration_since(before.taken_at)
                .as_secs_f64(),
            cpu_seconds: match (before.cpu_seconds, after.cpu_seconds) {
                (Some(start), Some(end)) => Some((end - start).max(0.0)),
                _ => None,
            },
            tick_p99_seconds: quantile_of_delta(&before.tick_buckets, &after.tick_buckets, 0.99),
            tick_overruns: (after.tick_overruns - before.tick_overruns).max(0.0),
            dropped_frames: (after.dropped_frames - before.dropped_frames).max(0.0),
        }
    }

    /// Server CPU-seconds per wall-clock second (1.0 = one core fully busy).
    pub fn cpu_per_second(&self) -> Option<f64> {
        let cpu = self.cpu_seconds?;
        (self.seconds > 0.0).then(|| cpu / self.seconds)
    }
}

/// Longest a metrics scrape may take; a node too busy to answer in this time is reported as
/// "no figures" rather than stalling the run.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches and parses `{base}/metrics`.
pub async fn fetch_snapshot(
    client: &reqwest::Client,
    metrics_url: &str,
) -> Result<ServerSnapshot, reqwest::Error> {
    let text = client
        .get(metrics_url)
        .timeout(SCRAPE_TIMEOUT)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(ServerSnapshot::from_text(&text, Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP process_cpu_seconds_total Total user and system CPU time.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 104857600
# TYPE coil_players gauge
coil_players{kind="human"} 100
coil_players{kind="bot"} 20
coil_connections_open 100
coil_tick_duration_seconds_bucket{le="0.001"} 900
coil_tick_duration_seconds_bucket{le="0.002"} 990
coil_tick_duration_seconds_bucket{le="0.005"} 1000
coil_tick_duration_seconds_bucket{le="+Inf"} 1000
coil_tick_duration_seconds_sum 0.9
coil_tick_duration_seconds_count 1000
coil_joins_total{result="ok",note="a } brace, and spaces"} 7 1700000000000
coil_joins_total{result="room_full"} 3
garbage line without value
{broken} 1
"#;

    #[test]
    fn reads_plain_and_labelled_samples() {
        assert_eq!(sum(TEXT, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(
            sum(TEXT, "process_resident_memory_bytes"),
            Some(104_857_600.0)
        );
        assert_eq!(sum(TEXT, "coil_players"), Some(120.0));
        assert_eq!(
            sum_with_label(TEXT, "coil_players", "kind", "human"),
            Some(100.0)
        );
        assert_eq!(sum(TEXT, "coil_joins_total"), Some(10.0));
        assert_eq!(
            sum_with_label(TEXT, "coil_joins_total", "result", "room_full"),
            Some(3.0)
        );
        assert_eq!(sum(TEXT, "coil_tick_overruns_total"), None);
        // A name that is a prefix of another family does not match it.
        assert_eq!(sum(TEXT, "coil_players_x"), None);
        assert_eq!(sum(TEXT, "coil_tick_duration_seconds"), None);
    }

    #[test]
    fn label_blocks_with_quoted_braces_and_timestamps_parse() {
        let sample = parse_line(
            r#"coil_joins_total{result="ok",note="a } brace, and spaces"} 7 1700000000000"#,
        )
        .unwrap();
        assert_eq!(sample.value, 7.0);
        assert_eq!(label_value(sample.labels, "result"), Some("ok"));
        assert_eq!(
            label_value(sample.labels, "note"),
            Some("a } brace, and spaces")
        );
        assert_eq!(parse_line("# comment"), None);
        assert_eq!(parse_line("name_only"), None);
        assert_eq!(parse_line("x{unclosed=\"1\" 3"), None);
        assert_eq!(parse_line("x NaNish"), None);
        assert!(parse_line("x +Inf").unwrap().value.is_infinite());
    }

    #[test]
    fn histogram_buckets_are_sorted_with_inf_last() {
        let buckets = histogram_buckets(TEXT, "coil_tick_duration_seconds");
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[0], (0.001, 900.0));
        assert!(buckets[3].0.is_infinite());
    }

    #[test]
    fn quantile_of_a_delta_ignores_what_came_before() {
        let before = vec![
            (0.001, 900.0),
            (0.025, 900.0),
            (0.05, 900.0),
            (f64::INFINITY, 900.0),
        ];
        // 100 new ticks: 90 under 1 ms, 10 between 25 and 50 ms.
        let after = vec![
            (0.001, 990.0),
            (0.025, 990.0),
            (0.05, 1000.0),
            (f64::INFINITY, 1000.0),
        ];
        let p99 = quantile_of_delta(&before, &after, 0.99).unwrap();
        assert!((0.025..=0.05).contains(&p99), "p99 {p99}");
        let p50 = quantile_of_delta(&before, &after, 0.50).unwrap();
        assert!(p50 <= 0.001, "p50 {p50}");
        assert_eq!(quantile_of_delta(&after, &after, 0.99), None);
        assert_eq!(quantile_of_delta(&[], &[], 0.99), None);
    }

    #[test]
    fn quantile_in_the_inf_bucket_reports_the_largest_finite_bound() {
        let after = vec![(0.05, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile_of_delta(&[], &after, 0.99), Some(0.05));
    }

    #[test]
    fn delta_between_snapshots() {
        let start = Instant::now();
        let before = ServerSnapshot::from_text(TEXT, start);
        let later =
            TEXT.replace(
                "process_cpu_seconds_total 12.5",
                "process_cpu_seconds_total 14.5",
            )
            .replace(
                "coil_tick_duration_seconds_bucket{le=\"0.005\"} 1000",
                "coil_tick_duration_seconds_bucket{le=\"0.005\"} 1100",
            )
            .replace(
                "coil_tick_duration_seconds_bucket{le=\"+Inf\"} 1000",
                "coil_tick_duration_seconds_bucket{le=\"+Inf\"} 1100",
            ) + "coil_tick_overruns_total 2\n";
        let after = ServerSnapshot::from_text(&later, start + Duration::from_secs(4));
        let delta = ServerDelta::between(&before, &after);
        assert_eq!(delta.cpu_seconds, Some(2.0));
        assert_eq!(delta.cpu_per_second(), Some(0.5));
        assert_eq!(delta.tick_overruns, 2.0);
        assert_eq!(delta.dropped_frames, 0.0);
        let p99 = delta.tick_p99_seconds.unwrap();
        assert!((0.002..=0.005).contains(&p99), "p99 {p99}");
        assert_eq!(after.human_players, Some(100.0));
    }
}
