//! The Prometheus text format (version 0.0.4), read: sample lines, label values, sums over
//! label sets, histogram buckets and quantiles of the observations between two scrapes.
//!
//! Pure functions of the text, so they are unit-tested here. Malformed lines are skipped,
//! never a panic: the text comes from another process under load that may be any build.

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

/// Sum of the samples of `name` whose labels include every `(key, value)` pair.
pub fn sum_with_labels(text: &str, name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for sample in text.lines().filter_map(parse_line) {
        if sample.name == name
            && wanted
                .iter()
                .all(|(key, value)| label_value(sample.labels, key) == Some(*value))
        {
            *total.get_or_insert(0.0) += sample.value;
        }
    }
    total
}

/// Cumulative buckets of histogram `name` as `(upper bound, count)`, ascending, summed over
/// label sets that share a bound (one node may report several label sets).
pub fn histogram_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    histogram_buckets_where(text, name, None)
}

/// [`histogram_buckets`] over the label sets whose `key` is `value` only (with `None`, all).
pub fn histogram_buckets_where(
    text: &str,
    name: &str,
    label: Option<(&str, &str)>,
) -> Vec<(f64, f64)> {
    let bucket_name = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for sample in text.lines().filter_map(parse_line) {
        if sample.name != bucket_name {
            continue;
        }
        if let Some((key, value)) = label
            && label_value(sample.labels, key) != Some(value)
        {
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
}
