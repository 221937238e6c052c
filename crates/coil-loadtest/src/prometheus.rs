//! Reads the few figures the load generator needs from a node's `/metrics`: CPU-seconds,
//! resident memory, the tick histogram, the overload counters and one mode's match counters.
//! The text format itself is `coil_service::prometheus` (one parser for every process that
//! reads `/metrics`); fetching lives in [`fetch_snapshot`].

use std::time::{Duration, Instant};

pub use coil_service::prometheus::{
    Sample, histogram_buckets, histogram_buckets_where, label_value, parse_line, quantile_of_delta,
    sum, sum_with_label, sum_with_labels,
};

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
    /// The match counters of the mode the snapshot was taken for (zero where absent).
    pub matches: MatchCounters,
}

/// What a node counted about matches and inputs of one mode: results by three independent
/// paths (the runtime's `coil_matches_total`, the reports it handed to its sink, and the
/// game's own `results_emitted`), and the game's input counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MatchCounters {
    /// `coil_matches_total{mode}`, every reason.
    pub finished: f64,
    /// The same by reason: the kill limit reached, on time, by forfeit (a team emptied).
    pub by_kill_limit: f64,
    pub by_time_limit: f64,
    pub by_forfeit: f64,
    /// `coil_room_reports_total{kind="match_result"}`, every outcome (all modes: only games
    /// that play matches report results).
    pub reports: f64,
    /// `coil_game_events_total{mode, event="results_emitted"}`.
    pub results_emitted: f64,
    /// The game's `inputs_applied`: one per seated human per tick in play (a held intent
    /// counts too), so it measures ticks played, not frames received.
    pub inputs_applied: f64,
    /// Stale or jumping sequence numbers and floods (`inputs_stale_sequence`,
    /// `inputs_sequence_jump`, `inputs_flood`).
    pub inputs_refused: f64,
    pub inputs_malformed: f64,
}

impl MatchCounters {
    pub fn from_text(text: &str, mode: &str) -> MatchCounters {
        let event = |name: &str| {
            sum_with_labels(
                text,
                "coil_game_events_total",
                &[("mode", mode), ("event", name)],
            )
            .unwrap_or(0.0)
        };
        let finished = |reason: &str| {
            sum_with_labels(
                text,
                "coil_matches_total",
                &[("mode", mode), ("reason", reason)],
            )
            .unwrap_or(0.0)
        };
        MatchCounters {
            finished: sum_with_label(text, "coil_matches_total", "mode", mode).unwrap_or(0.0),
            by_kill_limit: finished("kill_limit"),
            by_time_limit: finished("time_limit"),
            by_forfeit: finished("forfeit"),
            reports: sum_with_label(text, "coil_room_reports_total", "kind", "match_result")
                .unwrap_or(0.0),
            results_emitted: event("results_emitted"),
            inputs_applied: event("inputs_applied"),
            inputs_refused: event("inputs_stale_sequence")
                + event("inputs_sequence_jump")
                + event("inputs_flood"),
            inputs_malformed: event("inputs_malformed"),
        }
    }

    /// Growth from `before` to `self` (counters never shrink; a restarted node reads as 0).
    pub fn since(&self, before: &MatchCounters) -> MatchCounters {
        let grown = |after: f64, before: f64| (after - before).max(0.0);
        MatchCounters {
            finished: grown(self.finished, before.finished),
            by_kill_limit: grown(self.by_kill_limit, before.by_kill_limit),
            by_time_limit: grown(self.by_time_limit, before.by_time_limit),
            by_forfeit: grown(self.by_forfeit, before.by_forfeit),
            reports: grown(self.reports, before.reports),
            results_emitted: grown(self.results_emitted, before.results_emitted),
            inputs_applied: grown(self.inputs_applied, before.inputs_applied),
            inputs_refused: grown(self.inputs_refused, before.inputs_refused),
            inputs_malformed: grown(self.inputs_malformed, before.inputs_malformed),
        }
    }
}

impl ServerSnapshot {
    /// Every mode's figures together (the tick histogram of all rooms).
    pub fn from_text(text: &str, taken_at: Instant) -> ServerSnapshot {
        ServerSnapshot::from_text_for(text, taken_at, None)
    }

    /// With `mode`, the tick histogram, overruns, drops and match counters of that mode only
    /// (the node labels them by mode); node-wide figures (CPU, memory, players) stay whole.
    pub fn from_text_for(text: &str, taken_at: Instant, mode: Option<&str>) -> ServerSnapshot {
        let by_mode = |name: &str| match mode {
            Some(mode) => sum_with_label(text, name, "mode", mode),
            None => sum(text, name),
        };
        ServerSnapshot {
            taken_at,
            cpu_seconds: sum(text, "process_cpu_seconds_total"),
            resident_memory_bytes: sum(text, "process_resident_memory_bytes"),
            tick_buckets: histogram_buckets_where(
                text,
                "coil_tick_duration_seconds",
                mode.map(|mode| ("mode", mode)),
            ),
            // Counters that were never incremented are absent: that means zero.
            tick_overruns: by_mode("coil_tick_overruns_total").unwrap_or(0.0),
            dropped_frames: by_mode("coil_dropped_frames_total").unwrap_or(0.0),
            connections_open: sum(text, "coil_connections_open"),
            human_players: sum_with_label(text, "coil_players", "kind", "human"),
            bot_players: sum_with_label(text, "coil_players", "kind", "bot"),
            matches: mode.map_or_else(MatchCounters::default, |mode| {
                MatchCounters::from_text(text, mode)
            }),
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

/// Fetches and parses `{base}/metrics`, for one mode's tick and match figures with `mode`.
pub async fn fetch_snapshot(
    client: &reqwest::Client,
    metrics_url: &str,
    mode: Option<&str>,
) -> Result<ServerSnapshot, reqwest::Error> {
    let text = client
        .get(metrics_url)
        .timeout(SCRAPE_TIMEOUT)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(ServerSnapshot::from_text_for(&text, Instant::now(), mode))
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
    fn one_modes_ticks_and_match_counters_are_read_apart() {
        let text = r#"coil_tick_duration_seconds_bucket{mode="arena",le="0.001"} 10
coil_tick_duration_seconds_bucket{mode="arena",le="+Inf"} 10
coil_tick_duration_seconds_bucket{mode="breach",le="0.001"} 3
coil_tick_duration_seconds_bucket{mode="breach",le="+Inf"} 4
coil_tick_overruns_total{mode="arena"} 5
coil_tick_overruns_total{mode="breach"} 1
coil_matches_total{mode="breach",reason="kill_limit"} 6
coil_matches_total{mode="breach",reason="forfeit"} 1
coil_room_reports_total{kind="match_result",outcome="queued"} 7
coil_room_reports_total{kind="flag",outcome="queued"} 2
coil_game_events_total{mode="breach",event="results_emitted"} 7
coil_game_events_total{mode="breach",event="inputs_applied"} 900
coil_game_events_total{mode="breach",event="inputs_flood"} 2
coil_game_events_total{mode="breach",event="inputs_stale_sequence"} 1
coil_game_events_total{mode="arena",event="inputs_flood"} 50
"#;
        let now = Instant::now();
        let breach = ServerSnapshot::from_text_for(text, now, Some("breach"));
        assert_eq!(
            breach.tick_buckets,
            vec![(0.001, 3.0), (f64::INFINITY, 4.0)]
        );
        assert_eq!(breach.tick_overruns, 1.0);
        assert_eq!(
            breach.matches,
            MatchCounters {
                finished: 7.0,
                by_kill_limit: 6.0,
                by_time_limit: 0.0,
                by_forfeit: 1.0,
                reports: 7.0,
                results_emitted: 7.0,
                inputs_applied: 900.0,
                inputs_refused: 3.0,
                inputs_malformed: 0.0,
            }
        );
        let all = ServerSnapshot::from_text(text, now);
        assert_eq!(all.tick_buckets[0], (0.001, 13.0));
        assert_eq!(all.tick_overruns, 6.0);
        assert_eq!(all.matches, MatchCounters::default());
        let grown = breach.matches.since(&MatchCounters {
            finished: 2.0,
            ..MatchCounters::default()
        });
        assert_eq!(grown.finished, 5.0);
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
