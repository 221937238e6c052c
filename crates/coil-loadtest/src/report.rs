//! The final report: one serialisable [`Report`] written as JSON (`--json FILE`) and rendered
//! as a readable table on stdout. Pure data and formatting; the figures are computed in
//! [`crate::run`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::Scenario;
use crate::histogram::Histogram;

/// p50/p95/p99/max of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn millis_from_micros(histogram: &Histogram) -> Percentiles {
        let millis = |value: Option<u64>| value.map(|us| us as f64 / 1_000.0);
        Percentiles {
            count: histogram.count(),
            p50: millis(histogram.percentile(50.0)),
            p95: millis(histogram.percentile(95.0)),
            p99: millis(histogram.percentile(99.0)),
            max: millis(histogram.max()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct JoinReport {
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// succeeded / attempts (1.0 when nothing was attempted is not claimed: `None`).
    pub success_rate: Option<f64>,
    /// Error frames ("error 10 RoomFull"), HTTP statuses ("http 503"), connect errors
    /// ("connect: connection refused"), timeouts.
    pub failures_by_reason: BTreeMap<String, u64>,
    /// Connect start → first state frame, milliseconds.
    pub latency_ms: Percentiles,
    /// Matchmakes repeated because the node of a token refused the connection (a dead node
    /// still in placement); part of one join attempt, not extra attempts.
    #[serde(default)]
    pub replacements: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TrafficReport {
    /// Length of the measurement window, seconds.
    pub window_seconds: f64,
    /// Players whose rate was measured (connected ≥ 1 s inside the window).
    pub players_measured: usize,
    /// Server → client wire bytes (payload + WebSocket header) per player per second, over
    /// players, inside the window.
    pub bytes_per_player_per_second_p50: Option<f64>,
    pub bytes_per_player_per_second_p95: Option<f64>,
    pub bytes_per_player_per_second_mean: Option<f64>,
    /// Whole run, all players.
    pub bytes_received_total: u64,
    pub state_frames_total: u64,
    /// Time between consecutive state frames seen by a client, inside the window (tick lag).
    pub state_interval_ms: Percentiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BehaviourReport {
    pub inputs_sent: u64,
    /// When an arena player's input goes out: "server tick" (the browser client's rule: at
    /// most one per tick, when the aim changed) or "<N> Hz" (--input-hz).
    pub input_clock: String,
    /// Arena inputs sent inside the window (a capacity run: over its held steps), and per
    /// connected player-second there.
    pub inputs_in_window: u64,
    pub inputs_per_player_second: Option<f64>,
    /// The most inputs one arena player sent between two state frames, whole run.
    pub most_inputs_between_states: u64,
    pub deaths: u64,
    pub respawns_sent: u64,
    pub planned_leaves: u64,
}

/// The node's own figures over the measurement window, from its /metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerReport {
    pub window_seconds: f64,
    /// Delta of process_cpu_seconds_total over the window.
    pub cpu_seconds: Option<f64>,
    pub cpu_seconds_per_second: Option<f64>,
    /// Player-seconds connected over the window (from the players' own accounting).
    pub player_seconds: f64,
    pub cpu_seconds_per_player_second: Option<f64>,
    /// 1 / cpu_seconds_per_player_second: players one fully busy core carries at this load.
    pub players_per_core: Option<f64>,
    /// RSS before the first player joined, and at the start and end of the window.
    pub rss_before_bytes: Option<f64>,
    pub rss_window_start_bytes: Option<f64>,
    pub rss_window_end_bytes: Option<f64>,
    /// RSS at the end of the window / players connected then.
    pub rss_per_player_bytes: Option<f64>,
    /// (RSS at the end − RSS before the first join) / players connected at the end (bots and
    /// rooms included: it is what a player costs, all in).
    pub rss_delta_per_player_bytes: Option<f64>,
    /// Tick duration p99 over the window, from the histogram's bucket deltas (interpolated).
    pub tick_p99_ms: Option<f64>,
    pub tick_overruns: f64,
    pub dropped_frames: f64,
    pub humans_at_end: Option<f64>,
    pub bots_at_end: Option<f64>,
}

/// The load generator's own health: if it fell behind, the server figures are a lower bound.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorReport {
    /// CPU-seconds this process used over the whole run (None off Linux).
    pub cpu_seconds: Option<f64>,
    /// How late a 20 ms timer fired in the generator, over the window (scheduler lag).
    pub timer_lag_ms: Percentiles,
    pub fell_behind: bool,
}

/// One step of --find-capacity.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityStep {
    pub step: usize,
    pub rooms: usize,
    pub players_target: usize,
    pub players_connected: u64,
    pub window_seconds: f64,
    pub player_seconds: f64,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_per_second: Option<f64>,
    pub tick_p99_ms: Option<f64>,
    pub tick_overruns: f64,
    pub dropped_frames: f64,
    pub client_state_interval_p99_ms: Option<f64>,
    pub generator_timer_lag_p99_ms: Option<f64>,
    /// The load generator's own CPU-seconds per second over the step (its own process, apart
    /// from the server's).
    pub generator_cpu_per_second: Option<f64>,
    /// Arena inputs sent over the step per connected player-second.
    pub inputs_per_player_second: Option<f64>,
    pub rss_bytes: Option<f64>,
    /// None when the step held; else why it broke.
    pub broke: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CapacityReport {
    pub server_cores: f64,
    pub steps: Vec<CapacityStep>,
    /// Players connected in the last step that held.
    pub largest_ccu_held: u64,
    /// Player-seconds / server CPU-seconds over the held steps.
    pub players_per_server_core: Option<f64>,
    pub server_cpu_seconds_per_player_second: Option<f64>,
    /// Inputs per player-second over the held steps: the load the figure was measured at.
    pub inputs_per_player_second: Option<f64>,
    /// The load generator's own CPU-seconds per player-second over the held steps (not in the
    /// server's figure), and its CPU-seconds per second in the last held step.
    pub generator_cpu_seconds_per_player_second: Option<f64>,
    pub generator_cpu_per_second_at_largest: Option<f64>,
    /// players_per_server_core / 8 (breach only: matches one fully busy core carries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches_per_server_core: Option<f64>,
    pub stop_reason: String,
    /// True when the load generator or the node's room limit (MAX_ROOMS), not the server's CPU
    /// or tick budget, ended the run: the capacity is at least what is reported.
    pub lower_bound: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub url: String,
    pub started_at_unix_seconds: u64,
    pub players_requested: usize,
    pub rooms: usize,
    pub ramp_seconds: f64,
    pub warmup_seconds: f64,
    pub duration_seconds: f64,
    pub seed: u64,
    /// Most players connected at once.
    pub ccu_peak: u64,
    /// Players connected when measuring ended.
    pub ccu_at_end: u64,
    pub joins: JoinReport,
    pub traffic: TrafficReport,
    pub disconnects_by_reason: BTreeMap<String, u64>,
    pub behaviour: BehaviourReport,
    /// None when the node's /metrics could not be read.
    pub server: Option<ServerReport>,
    pub generator: GeneratorReport,
    pub capacity: Option<CapacityReport>,
    pub burst: Option<crate::burst::BurstReport>,
    /// The breach scenarios' match and input figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breach: Option<BreachReport>,
}

/// Matches as the clients saw them, and results as the node counted them (deltas of its
/// /metrics from before the first join to after the last player closed).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MatchesReport {
    /// Distinct matches (room, match generation) a client saw in progress.
    pub started: u64,
    /// Of those, matches a client saw reach the scoreboard.
    pub completed: u64,
    /// Started and still being played when the run stopped (not counted as incomplete).
    pub in_progress_at_end: u64,
    /// Started, never ended, and every client gone before the end: the failures.
    pub abandoned: u64,
    /// Distinct matches whose scoreboard a client saw.
    pub results_seen: u64,
    /// completed / (started − in progress at the end).
    pub completion_rate: Option<f64>,
    /// Scoreboards a client received twice for one match without an Init in between.
    pub duplicate_results_seen: u64,
    /// `coil_matches_total{mode="breach"}` delta, and by reason.
    pub server_results: Option<f64>,
    pub server_results_kill_limit: Option<f64>,
    pub server_results_time_limit: Option<f64>,
    pub server_results_forfeit: Option<f64>,
    /// `coil_room_reports_total{kind="match_result"}` delta (results handed to the sink).
    pub server_result_reports: Option<f64>,
    /// The game's own `results_emitted` delta.
    pub server_results_emitted: Option<f64>,
    /// The three server counts agree, none is below the results the clients saw, none above
    /// those plus the matches still in progress at the end, and no client saw one twice.
    pub results_counted_once: Option<bool>,
}

/// What the breach players sent, and what the node made of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BreachInputsReport {
    pub sent_in_window: u64,
    /// Inputs per connected player-second inside the window (30 = one per tick).
    pub per_player_second_in_window: Option<f64>,
    /// Ticks in which a player wanted to move, and inputs sent in those (equal by design).
    pub moving_ticks: u64,
    pub sent_in_moving_ticks: u64,
    /// The most inputs one player sent between two state frames (never above 1).
    pub most_in_one_tick: u64,
    pub fire_ticks: u64,
    pub reloads: u64,
    pub speed_changes: u64,
    pub votes_sent: u64,
    /// The node's `inputs_applied` delta: one per seated human per tick in play, held
    /// intents included (ticks played, not frames received).
    pub server_applied: Option<f64>,
    /// The node's refused (stale sequence, jump, flood) and malformed input deltas.
    pub server_refused: Option<f64>,
    pub server_malformed: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BreachReport {
    pub matches: MatchesReport,
    pub inputs: BreachInputsReport,
    /// Server messages the reference mirror could not decode or apply.
    pub decode_errors: u64,
    pub resumes_attempted: u64,
    pub resumes_refused: u64,
}

fn number(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:.decimals$}"),
        _ => "-".into(),
    }
}

fn mib(value: Option<f64>) -> String {
    number(value.map(|bytes| bytes / (1024.0 * 1024.0)), 1)
}

fn kib(value: Option<f64>) -> String {
    number(value.map(|bytes| bytes / 1024.0), 1)
}

fn percentiles_ms(p: &Percentiles) -> String {
    format!(
        "p50 {} / p95 {} / p99 {} / max {} ms (n={})",
        number(p.p50, 1),
        number(p.p95, 1),
        number(p.p99, 1),
        number(p.max, 1),
        p.count
    )
}

fn reasons(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(reason, count)| format!("{reason}: {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// The human-readable table printed at the end of a run.
    pub fn to_table(&self) -> String {
        if let Some(burst) = &self.burst {
            return burst_table(self, burst);
        }
        let mut out = String::new();
        let mut row = |label: &str, value: String| {
            let _ = writeln!(out, "  {label:<34} {value}");
        };
        row(
            "scenario",
            format!(
                "{:?} against {} (seed {})",
                self.scenario, self.url, self.seed
            ),
        );
        let plan = match &self.capacity {
            Some(_) => format!(
                "{} players added in {} rooms, ramp {} s per step, each step held {} s",
                self.players_requested, self.rooms, self.ramp_seconds, self.duration_seconds
            ),
            None => format!(
                "{} players, {} rooms, ramp {} s, warm-up {} s, measure {} s",
                self.players_requested,
                self.rooms,
                self.ramp_seconds,
                self.warmup_seconds,
                self.duration_seconds
            ),
        };
        row("plan", plan);
        row(
            "CCU peak / at end",
            format!("{} / {}", self.ccu_peak, self.ccu_at_end),
        );
        let joins = &self.joins;
        row(
            "joins ok / attempted",
            format!(
                "{} / {} ({}%)",
                joins.succeeded,
                joins.attempts,
                number(joins.success_rate.map(|rate| rate * 100.0), 2)
            ),
        );
        row("join failures", reasons(&joins.failures_by_reason));
        if joins.replacements > 0 {
            row("re-placed (node refused)", joins.replacements.to_string());
        }
        row("join latency", percentiles_ms(&joins.latency_ms));
        let traffic = &self.traffic;
        row(
            "bytes/player/s (window)",
            format!(
                "p50 {} / p95 {} / mean {} B/s over {} players",
                number(traffic.bytes_per_player_per_second_p50, 0),
                number(traffic.bytes_per_player_per_second_p95, 0),
                number(traffic.bytes_per_player_per_second_mean, 0),
                traffic.players_measured
            ),
        );
        row(
            "state interval (window)",
            percentiles_ms(&traffic.state_interval_ms),
        );
        row(
            "received (whole run)",
            format!(
                "{} MiB, {} state frames",
                mib(Some(traffic.bytes_received_total as f64)),
                traffic.state_frames_total
            ),
        );
        row("disconnects", reasons(&self.disconnects_by_reason));
        let behaviour = &self.behaviour;
        row(
            "behaviour",
            format!(
                "{} inputs, {} deaths, {} respawns, {} leave+rejoin",
                behaviour.inputs_sent,
                behaviour.deaths,
                behaviour.respawns_sent,
                behaviour.planned_leaves
            ),
        );
        if self.breach.is_none() {
            row(
                "inputs (window)",
                format!(
                    "{} sent, {} per player-second, at most {} between two state frames (clock: {})",
                    behaviour.inputs_in_window,
                    number(behaviour.inputs_per_player_second, 2),
                    behaviour.most_inputs_between_states,
                    behaviour.input_clock
                ),
            );
        }
        match &self.server {
            Some(server) => {
                row(
                    "server CPU (window)",
                    format!(
                        "{} s over {} s = {} cores busy",
                        number(server.cpu_seconds, 2),
                        number(Some(server.window_seconds), 1),
                        number(server.cpu_seconds_per_second, 3)
                    ),
                );
                row(
                    "server CPU-s per player-s",
                    format!(
                        "{} ({} players per core)",
                        number(server.cpu_seconds_per_player_second.map(|v| v * 1e6), 1) + " µs",
                        number(server.players_per_core, 0)
                    ),
                );
                row(
                    "server RSS before/start/end",
                    format!(
                        "{} / {} / {} MiB",
                        mib(server.rss_before_bytes),
                        mib(server.rss_window_start_bytes),
                        mib(server.rss_window_end_bytes)
                    ),
                );
                row(
                    "server RSS per player",
                    format!(
                        "{} KiB all-in, {} KiB above idle",
                        kib(server.rss_per_player_bytes),
                        kib(server.rss_delta_per_player_bytes)
                    ),
                );
                row(
                    "server tick (window)",
                    format!(
                        "p99 {} ms, {} overruns, {} dropped frames",
                        number(server.tick_p99_ms, 2),
                        server.tick_overruns,
                        server.dropped_frames
                    ),
                );
                row(
                    "server players at end",
                    format!(
                        "{} humans, {} bots",
                        number(server.humans_at_end, 0),
                        number(server.bots_at_end, 0)
                    ),
                );
            }
            None => row("server", "no /metrics figures".into()),
        }
        row(
            "generator",
            format!(
                "{} CPU-s, timer lag {}{}",
                number(self.generator.cpu_seconds, 1),
                percentiles_ms(&self.generator.timer_lag_ms),
                if self.generator.fell_behind {
                    " — FELL BEHIND: figures are a lower bound"
                } else {
                    ""
                }
            ),
        );
        if let Some(breach) = &self.breach {
            breach_rows(&mut out, breach);
        }
        if let Some(capacity) = &self.capacity {
            let _ = writeln!(
                out,
                "\n  capacity steps (server cores allowed: {})",
                capacity.server_cores
            );
            let _ = writeln!(
                out,
                "  {:>4} {:>6} {:>7} {:>9} {:>8} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8}  verdict",
                "step",
                "rooms",
                "CCU",
                "cpu/s",
                "tick p99",
                "overruns",
                "dropped",
                "client p99",
                "lag p99",
                "gen cpu/s",
                "in/pl-s"
            );
            for step in &capacity.steps {
                let _ = writeln!(
                    out,
                    "  {:>4} {:>6} {:>7} {:>9} {:>8} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8}  {}",
                    step.step,
                    step.rooms,
                    step.players_connected,
                    number(step.server_cpu_per_second, 3),
                    number(step.tick_p99_ms, 2),
                    step.tick_overruns,
                    step.dropped_frames,
                    number(step.client_state_interval_p99_ms, 1),
                    number(step.generator_timer_lag_p99_ms, 1),
                    number(step.generator_cpu_per_second, 3),
                    number(step.inputs_per_player_second, 2),
                    step.broke.as_deref().unwrap_or("held")
                );
            }
            let _ = writeln!(
                out,
                "  largest CCU held {}; players per server core {}; server CPU-s per player-s {} µs; stopped: {}{}",
                capacity.largest_ccu_held,
                number(capacity.players_per_server_core, 0),
                number(
                    capacity
                        .server_cpu_seconds_per_player_second
                        .map(|v| v * 1e6),
                    1
                ),
                capacity.stop_reason,
                match capacity.matches_per_server_core {
                    Some(matches) => format!("; {matches:.0} matches per server core"),
                    None => String::new(),
                } + if capacity.lower_bound {
                    " (a lower bound: the generator or the room limit ended the run, not the node)"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                out,
                "  measured at {} inputs per player-second; the generator's own CPU (not in the figure): {} µs per player-second, {} cores at the largest held step",
                number(capacity.inputs_per_player_second, 2),
                number(
                    capacity
                        .generator_cpu_seconds_per_player_second
                        .map(|v| v * 1e6),
                    1
                ),
                number(capacity.generator_cpu_per_second_at_largest, 3)
            );
        }
        out
    }
}

/// The breach rows of the table.
fn breach_rows(out: &mut String, breach: &BreachReport) {
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<34} {value}");
    };
    let matches = &breach.matches;
    row(
        "matches (as clients saw them)",
        format!(
            "{} started, {} completed, {} in progress at the end, {} abandoned = {}% completion",
            matches.started,
            matches.completed,
            matches.in_progress_at_end,
            matches.abandoned,
            number(matches.completion_rate.map(|rate| rate * 100.0), 1)
        ),
    );
    row(
        "results (node: matches/reports/game)",
        format!(
            "{} / {} / {} ({} kill limit, {} time limit, {} forfeit); {} seen by clients, {} seen twice; counted once: {}",
            number(matches.server_results, 0),
            number(matches.server_result_reports, 0),
            number(matches.server_results_emitted, 0),
            number(matches.server_results_kill_limit, 0),
            number(matches.server_results_time_limit, 0),
            number(matches.server_results_forfeit, 0),
            matches.results_seen,
            matches.duplicate_results_seen,
            match matches.results_counted_once {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        ),
    );
    let inputs = &breach.inputs;
    row(
        "inputs (window)",
        format!(
            "{} sent = {} per player-s; {} of {} moving ticks; at most {} per tick",
            inputs.sent_in_window,
            number(inputs.per_player_second_in_window, 1),
            inputs.sent_in_moving_ticks,
            inputs.moving_ticks,
            inputs.most_in_one_tick
        ),
    );
    row(
        "inputs at the node (whole run)",
        format!(
            "{} seat-ticks applied, {} refused, {} malformed",
            number(inputs.server_applied, 0),
            number(inputs.server_refused, 0),
            number(inputs.server_malformed, 0)
        ),
    );
    row(
        "play",
        format!(
            "{} firing ticks, {} reloads, {} speed changes, {} stay votes, {} resumes ({} refused)",
            inputs.fire_ticks,
            inputs.reloads,
            inputs.speed_changes,
            inputs.votes_sent,
            breach.resumes_attempted,
            breach.resumes_refused
        ),
    );
    row("decode errors", breach.decode_errors.to_string());
}

/// The table of a matchmake-burst run.
fn burst_table(report: &Report, burst: &crate::burst::BurstReport) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<34} {value}");
    };
    row(
        "scenario",
        format!("{:?} against {}", report.scenario, report.url),
    );
    row(
        "offered",
        format!(
            "{} placements, {} per second, at most {} in flight",
            burst.placements_requested,
            number(burst.offered_per_second, 0),
            burst.concurrency
        ),
    );
    row(
        "sent",
        format!(
            "{} ({} not sent: generator at its concurrency limit)",
            burst.sent, burst.not_sent_generator_busy
        ),
    );
    row(
        "placed",
        format!(
            "{} in {:.2} s = {:.0} placements per second",
            burst.placed, burst.elapsed_seconds, burst.placed_per_second
        ),
    );
    row("refused", reasons(&burst.refused_by_reason));
    row(
        "placement latency",
        percentiles_ms(&burst.placement_latency_ms),
    );
    if burst.refusal_latency_ms.count > 0 {
        row("refusal latency", percentiles_ms(&burst.refusal_latency_ms));
    }
    if let Some(joins) = &burst.joins {
        row(
            "joins ok",
            format!("{}/{} (then left)", joins.succeeded, joins.attempts),
        );
        if joins.failed > 0 {
            row("join failures", reasons(&joins.failures_by_reason));
        }
        row("matchmake → first frame", percentiles_ms(&joins.latency_ms));
    }
    row(
        "generator CPU",
        format!("{} s", number(burst.generator_cpu_seconds, 2)),
    );
    out
}
