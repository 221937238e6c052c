//! The controller: spawns the players, keeps time (ramp, warm-up, measurement window or
//! capacity steps), prints progress once a second on stderr, scrapes the node's /metrics at
//! window edges, and assembles the [`Report`].
//!
//! It owns every task it starts and stops them all before returning (the players through a
//! watch channel, the sampler and the progress printer by abort), so a run never outlives its
//! bounds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::args::{Game, LoadtestArgs, MAX_RUN, Mode, Plan};
use crate::breach::{BreachShared, MatchTally};
use crate::histogram::{AtomicHistogram, Histogram, percentile_of_sorted};
use crate::player::{Joiner, PlayerPlan, PlayerSummary, run_player};
use crate::prometheus::{ServerDelta, ServerSnapshot, fetch_snapshot};
use crate::report::{
    BehaviourReport, BreachInputsReport, BreachReport, CapacityReport, CapacityStep,
    GeneratorReport, JoinReport, MatchesReport, Percentiles, Report, ServerReport, TrafficReport,
};
use crate::stats::{Counter, Shared};

/// Tick p99 above this fraction of the mode's tick breaks the tick budget (25 ms of the
/// arena's 50 ms, 16.7 ms of breach's 33.3 ms).
const TICK_P99_BUDGET_FRACTION: f64 = 0.5;
/// Fraction of the allowed cores at which the server counts as out of CPU.
const CPU_EXHAUSTED_FRACTION: f64 = 0.95;
/// The generator counts as falling behind when its 20 ms timer fires this late at p99.
const GENERATOR_LAG_LIMIT_MS: f64 = 25.0;
/// Period of the generator's own lag probe and player-seconds integration.
const SAMPLER_PERIOD: Duration = Duration::from_millis(20);
/// Pause after a capacity step's ramp before measuring, so joins and room creation settle.
const STEP_SETTLE: Duration = Duration::from_secs(2);
/// Longest the players get to close their sockets after the run stops.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// A room exports its game's own counters (`coil_game_events_total`, breach's
/// `results_emitted` among them) once a second of ticks: the final scrape waits this long
/// after the players stopped so a result of the last second is in all three counts.
const GAME_COUNTER_EXPORT_WAIT: Duration = Duration::from_millis(1_500);
/// A player's bytes/s counts only if it was connected this long inside the window.
const MIN_CONNECTED_FOR_RATE: Duration = Duration::from_secs(1);

/// The join failure of a node that will not open another room (at MAX_ROOMS, or draining).
const ROOM_REFUSED: &str = "error 11 RoomDraining";
/// The matchmaker's answer when no node has a room left for the mode (breach rooms are
/// placed by the matchmaker, so a node at its MODE_MAX_ROOMS shows up here).
const NO_CAPACITY: &str = "matchmake: HTTP 503";

/// Runs a load test as the flags say; prints progress and the final table; writes `--json`.
pub async fn run(args: LoadtestArgs) -> anyhow::Result<Report> {
    let plan = args.plan()?;
    let mut harness = Harness::start(&plan);
    // Match results are counted by the node from before the first join to after the last
    // player closed (breach only: the arena plays no matches).
    let matches_before = match plan.game {
        Game::Breach => harness.scrape().await,
        Game::Arena => None,
    };
    let result = match plan.mode.clone() {
        Mode::Standard {
            players,
            rooms,
            ramp,
            warmup,
            duration,
        } => run_standard(&plan, &mut harness, players, rooms, ramp, warmup, duration).await,
        Mode::Capacity {
            room_size,
            rooms_per_step,
            ramp,
            step,
            max_players,
            server_cores,
        } => {
            run_capacity(
                &plan,
                &mut harness,
                room_size,
                rooms_per_step,
                ramp,
                step,
                max_players,
                server_cores,
            )
            .await
        }
        Mode::Burst {
            placements,
            over,
            join,
            concurrency,
        } => {
            let burst = crate::burst::run(
                harness.joiner.clone(),
                crate::burst::BurstPlan {
                    placements,
                    over,
                    join,
                    concurrency,
                    quiet: plan.quiet,
                },
            )
            .await;
            let mut report = harness.base_report(&plan);
            report.url = plan.matchmaker.clone().unwrap_or_default();
            report.burst = Some(burst);
            Ok(report)
        }
    };
    // Which matches were still being played is read while the players still follow them.
    let tally = harness.breach.book.tally();
    // Whatever happened, no task of ours keeps running.
    let summaries = harness.stop().await;
    let mut report = result?;
    finish_traffic(&mut report, &summaries);
    if plan.game == Game::Breach {
        tokio::time::sleep(GAME_COUNTER_EXPORT_WAIT).await;
        let matches_after = harness.scrape().await;
        report.breach = Some(breach_report(
            &harness.breach,
            tally,
            matches_before.as_ref(),
            matches_after.as_ref(),
            report.server.as_ref().map(|server| server.player_seconds),
        ));
    }
    // Read after the stop so the run's own closes are counted too.
    report.disconnects_by_reason = harness.shared.disconnect_reasons.snapshot();
    println!("{}", report.to_table());
    if let Some(path) = &plan.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
    }
    Ok(report)
}

/// Lag probe and player-seconds integrator, run every [`SAMPLER_PERIOD`].
#[derive(Debug, Default)]
struct Sampler {
    timer_lag_us: AtomicHistogram,
    /// Integral of connected players over time, in player-microseconds.
    player_micros: Counter,
}

impl Sampler {
    fn player_seconds(&self) -> f64 {
        self.player_micros.get() as f64 / 1e6
    }
}

/// Everything a run starts, so that it can all be stopped.
struct Harness {
    game: Game,
    shared: Arc<Shared>,
    breach: Arc<BreachShared>,
    sampler: Arc<Sampler>,
    joiner: Arc<Joiner>,
    stop_sender: watch::Sender<bool>,
    players: Vec<JoinHandle<PlayerSummary>>,
    background: Vec<JoinHandle<()>>,
    phase: Arc<Mutex<String>>,
    http: reqwest::Client,
    metrics_url: String,
    server_pid: Option<u32>,
    started_unix: u64,
}

impl Harness {
    fn start(plan: &Plan) -> Harness {
        let shared = Arc::new(Shared::default());
        let sampler = Arc::new(Sampler::default());
        let phase = Arc::new(Mutex::new("starting".to_owned()));
        let (stop_sender, _) = watch::channel(false);
        let mut background = vec![tokio::spawn(sample(shared.clone(), sampler.clone()))];
        // A burst prints its own progress; the players' counters stay at zero there.
        if !plan.quiet && !matches!(plan.mode, Mode::Burst { .. }) {
            background.push(tokio::spawn(progress(shared.clone(), phase.clone())));
        }
        Harness {
            game: plan.game,
            shared,
            breach: Arc::default(),
            sampler,
            joiner: Arc::new(match &plan.matchmaker {
                Some(http_base) => Joiner::Matchmaker {
                    http_base: http_base.clone(),
                    client: reqwest::Client::new(),
                    // The arena is the matchmaker's default: its body stays as it always was.
                    mode: match plan.game {
                        Game::Arena => None,
                        Game::Breach => Some(Game::Breach.mode_name()),
                    },
                },
                None => Joiner::Direct {
                    ws_base: plan.ws_base.clone(),
                },
            }),
            stop_sender,
            players: Vec::new(),
            background,
            phase,
            http: reqwest::Client::new(),
            metrics_url: format!("{}/metrics", plan.http_base),
            server_pid: plan.server_pid,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs()),
        }
    }

    fn set_phase(&self, phase: impl Into<String>) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase.into();
    }

    fn spawn_player(&mut self, plan: PlayerPlan) {
        let (joiner, shared, stop) = (
            self.joiner.clone(),
            self.shared.clone(),
            self.stop_sender.subscribe(),
        );
        self.players.push(match self.game {
            Game::Arena => tokio::spawn(run_player(plan, joiner, shared, stop)),
            Game::Breach => tokio::spawn(crate::breach::run_player(
                plan,
                joiner,
                shared,
                self.breach.clone(),
                stop,
            )),
        });
    }

    async fn scrape(&self) -> Option<ServerSnapshot> {
        match fetch_snapshot(&self.http, &self.metrics_url, Some(self.game.mode_name())).await {
            Ok(mut snapshot) => {
                if let Some(pid) = self.server_pid {
                    // Exact figures straight from the kernel; the exported counter has
                    // whole-second resolution.
                    snapshot.cpu_seconds = crate::procstat::cpu_seconds(pid);
                    snapshot.resident_memory_bytes = crate::procstat::resident_bytes(pid);
                }
                Some(snapshot)
            }
            Err(error) => {
                tracing::warn!(url = %self.metrics_url, cause = %error, "could not read the node's metrics");
                None
            }
        }
    }

    /// Stops every player (bounded wait) and background task; returns the players' summaries.
    async fn stop(&mut self) -> Vec<PlayerSummary> {
        let _ = self.stop_sender.send(true);
        let deadline = Instant::now() + STOP_GRACE;
        let mut summaries = Vec::with_capacity(self.players.len());
        for mut handle in self.players.drain(..) {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(summary)) => summaries.push(summary),
                Ok(Err(_join_error)) => {}
                Err(_elapsed) => handle.abort(),
            }
        }
        for handle in self.background.drain(..) {
            handle.abort();
        }
        summaries
    }

    fn base_report(&self, plan: &Plan) -> Report {
        let (players, rooms, ramp, warmup, duration) = match &plan.mode {
            Mode::Standard {
                players,
                rooms,
                ramp,
                warmup,
                duration,
            } => (*players, *rooms, *ramp, *warmup, *duration),
            Mode::Capacity { ramp, .. } => (0, 0, *ramp, Duration::ZERO, Duration::ZERO),
            Mode::Burst {
                placements, over, ..
            } => (*placements, 0, *over, Duration::ZERO, Duration::ZERO),
        };
        let shared = &self.shared;
        let attempts = shared.join_attempts.get();
        let succeeded = shared.joins_succeeded.get();
        Report {
            scenario: plan.scenario,
            url: plan.http_base.clone(),
            started_at_unix_seconds: self.started_unix,
            players_requested: players,
            rooms,
            ramp_seconds: ramp.as_secs_f64(),
            warmup_seconds: warmup.as_secs_f64(),
            duration_seconds: duration.as_secs_f64(),
            seed: plan.seed,
            ccu_peak: shared.connected_peak.get(),
            ccu_at_end: shared.connected.get(),
            joins: JoinReport {
                attempts,
                succeeded,
                failed: shared.joins_failed.get(),
                success_rate: (attempts > 0).then(|| succeeded as f64 / attempts as f64),
                failures_by_reason: shared.join_failures.snapshot(),
                latency_ms: Percentiles::millis_from_micros(&shared.join_latency_us.take()),
                replacements: shared.replacements.get(),
            },
            traffic: TrafficReport {
                bytes_received_total: shared.bytes_received.get(),
                state_frames_total: shared.state_frames.get(),
                ..TrafficReport::default()
            },
            disconnects_by_reason: shared.disconnect_reasons.snapshot(),
            behaviour: BehaviourReport {
                inputs_sent: shared.inputs_sent.get(),
                input_clock: match plan.behaviour.input_hz {
                    Some(hz) => format!("{hz} Hz"),
                    None => "server tick".into(),
                },
                inputs_in_window: 0,
                inputs_per_player_second: None,
                most_inputs_between_states: shared.most_inputs_between_states.get(),
                deaths: shared.deaths.get(),
                respawns_sent: shared.respawns_sent.get(),
                planned_leaves: shared.planned_leaves.get(),
            },
            server: None,
            generator: GeneratorReport {
                cpu_seconds: own_cpu_seconds(),
                ..GeneratorReport::default()
            },
            capacity: None,
            burst: None,
            breach: None,
        }
    }
}

/// Measures timer lag and integrates connected players over time.
async fn sample(shared: Arc<Shared>, sampler: Arc<Sampler>) {
    let mut last = Instant::now();
    loop {
        let asked = Instant::now();
        tokio::time::sleep(SAMPLER_PERIOD).await;
        let now = Instant::now();
        let late = now.duration_since(asked).saturating_sub(SAMPLER_PERIOD);
        sampler.timer_lag_us.record(late.as_micros() as u64);
        let elapsed = now.duration_since(last).as_micros() as u64;
        sampler
            .player_micros
            .add(shared.connected.get().saturating_mul(elapsed));
        last = now;
    }
}

/// One progress line per second on stderr.
async fn progress(shared: Arc<Shared>, phase: Arc<Mutex<String>>) {
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    let mut last_joins = 0;
    let mut last_bytes = 0;
    let mut last_at = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let seconds = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let joins = shared.joins_succeeded.get();
        let bytes = shared.bytes_received.get();
        let phase = phase.lock().unwrap_or_else(|p| p.into_inner()).clone();
        eprintln!(
            "[{:>5.0}s] {:<16} connected {:>6}  joins/s {:>6.1}  join failures {:>5}  disconnects {:>5}  rx {:>7.2} MB/s",
            now.duration_since(started).as_secs_f64(),
            phase,
            shared.connected.get(),
            (joins - last_joins) as f64 / seconds,
            shared.joins_failed.get(),
            shared.disconnects.get(),
            (bytes - last_bytes) as f64 / seconds / 1e6,
        );
        last_joins = joins;
        last_bytes = bytes;
        last_at = now;
    }
}

fn own_cpu_seconds() -> Option<f64> {
    crate::procstat::cpu_seconds(std::process::id())
}

fn millis(histogram: &Histogram, percent: f64) -> Option<f64> {
    histogram
        .percentile(percent)
        .map(|micros| micros as f64 / 1_000.0)
}

#[allow(clippy::too_many_arguments)] // the fields of Mode::Standard
async fn run_standard(
    plan: &Plan,
    harness: &mut Harness,
    players: usize,
    rooms: usize,
    ramp: Duration,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Report> {
    let before = harness.scrape().await;
    let start = Instant::now();
    let window_start = start + ramp + warmup;
    let window_end = window_start + duration;
    for slot in 0..players {
        let offset = ramp.mul_f64(slot as f64 / players as f64);
        harness.spawn_player(PlayerPlan {
            slot,
            room: format!("{}-{}", plan.room_prefix, slot % rooms + 1),
            start_at: start + offset,
            window: (window_start, window_end),
            behaviour: plan.behaviour,
            seed: plan.seed,
        });
    }
    harness.set_phase("ramp");
    tokio::time::sleep_until(start + ramp).await;
    harness.set_phase("warm-up");
    tokio::time::sleep_until(window_start).await;
    let window_first = harness.scrape().await;
    let sampled_start = harness.sampler.player_seconds();
    let inputs_start = harness.shared.inputs_sent.get();
    harness.shared.state_interval_us.take();
    harness.sampler.timer_lag_us.take();
    harness.set_phase("measure");
    tokio::time::sleep_until(window_end).await;
    let window_last = harness.scrape().await;
    let player_seconds = harness.sampler.player_seconds() - sampled_start;
    let inputs_in_window = harness.shared.inputs_sent.get() - inputs_start;
    let state_interval = harness.shared.state_interval_us.take();
    let timer_lag = harness.sampler.timer_lag_us.take();
    harness.set_phase("stopping");

    let mut report = harness.base_report(plan);
    report.behaviour.inputs_in_window = inputs_in_window;
    report.behaviour.inputs_per_player_second =
        (player_seconds > 0.0).then(|| inputs_in_window as f64 / player_seconds);
    report.traffic.window_seconds = duration.as_secs_f64();
    report.traffic.state_interval_ms = Percentiles::millis_from_micros(&state_interval);
    report.generator.timer_lag_ms = Percentiles::millis_from_micros(&timer_lag);
    report.generator.fell_behind =
        millis(&timer_lag, 99.0).is_some_and(|lag| lag > GENERATOR_LAG_LIMIT_MS);
    if let (Some(first), Some(last)) = (&window_first, &window_last) {
        report.server = Some(server_report(
            before.as_ref(),
            first,
            last,
            player_seconds,
            report.ccu_at_end,
        ));
    }
    Ok(report)
}

fn server_report(
    before_any_join: Option<&ServerSnapshot>,
    first: &ServerSnapshot,
    last: &ServerSnapshot,
    player_seconds: f64,
    players_at_end: u64,
) -> ServerReport {
    let delta = ServerDelta::between(first, last);
    let per_player_second = delta
        .cpu_seconds
        .filter(|_| player_seconds > 0.0)
        .map(|cpu| cpu / player_seconds);
    let players = players_at_end as f64;
    let rss_before = before_any_join.and_then(|s| s.resident_memory_bytes);
    let rss_end = last.resident_memory_bytes;
    ServerReport {
        window_seconds: delta.seconds,
        cpu_seconds: delta.cpu_seconds,
        cpu_seconds_per_second: delta.cpu_per_second(),
        player_seconds,
        cpu_seconds_per_player_second: per_player_second,
        players_per_core: per_player_second.filter(|v| *v > 0.0).map(|v| 1.0 / v),
        rss_before_bytes: rss_before,
        rss_window_start_bytes: first.resident_memory_bytes,
        rss_window_end_bytes: rss_end,
        rss_per_player_bytes: rss_end.filter(|_| players > 0.0).map(|rss| rss / players),
        rss_delta_per_player_bytes: match (rss_before, rss_end) {
            (Some(before), Some(end)) if players > 0.0 => Some((end - before) / players),
            _ => None,
        },
        tick_p99_ms: delta.tick_p99_seconds.map(|s| s * 1_000.0),
        tick_overruns: delta.tick_overruns,
        dropped_frames: delta.dropped_frames,
        humans_at_end: last.human_players,
        bots_at_end: last.bot_players,
    }
}

/// Per-player byte rates from the players' own window accounting.
fn finish_traffic(report: &mut Report, summaries: &[PlayerSummary]) {
    let mut rates: Vec<f64> = summaries
        .iter()
        .filter(|s| s.connected_in_window >= MIN_CONNECTED_FOR_RATE)
        .map(|s| s.bytes_in_window as f64 / s.connected_in_window.as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    let traffic = &mut report.traffic;
    traffic.players_measured = rates.len();
    traffic.bytes_per_player_per_second_p50 = percentile_of_sorted(&rates, 50.0);
    traffic.bytes_per_player_per_second_p95 = percentile_of_sorted(&rates, 95.0);
    traffic.bytes_per_player_per_second_mean =
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64);
}

#[allow(clippy::too_many_arguments)] // the fields of Mode::Capacity
async fn run_capacity(
    plan: &Plan,
    harness: &mut Harness,
    room_size: usize,
    rooms_per_step: usize,
    ramp: Duration,
    step_hold: Duration,
    max_players: usize,
    server_cores: f64,
) -> anyhow::Result<Report> {
    let baseline = harness
        .scrape()
        .await
        .context("--find-capacity needs the node's /metrics; is the node running?")?;
    let start = Instant::now();
    let run_deadline = start + MAX_RUN;
    let mut capacity = CapacityReport {
        server_cores,
        ..CapacityReport::default()
    };
    let mut held_player_seconds = 0.0;
    let mut held_cpu_seconds = 0.0;
    let mut held_inputs = 0u64;
    let mut held_generator_cpu_seconds = 0.0;
    let mut generator_cpu_complete = true;
    let mut players_spawned = 0;
    let mut last_snapshot = baseline.clone();
    let mut step = 0;
    let players_per_step = room_size * rooms_per_step;
    let tick_budget = plan.game.tick().as_secs_f64() * TICK_P99_BUDGET_FRACTION;
    // Client state intervals and generator lag over every step's window, for the summary.
    let mut all_intervals = Histogram::new();
    let mut all_lag = Histogram::new();
    loop {
        if players_spawned + players_per_step > max_players {
            capacity.stop_reason = format!("reached --max-players {max_players}");
            break;
        }
        if Instant::now() + ramp + STEP_SETTLE + step_hold > run_deadline {
            capacity.stop_reason = "reached the one-hour limit".into();
            break;
        }
        step += 1;
        let step_start = Instant::now();
        for index in 0..players_per_step {
            // Arena rooms are named (one per step); breach players are placed by the
            // matchmaker, which fills rooms of 8 in the order the players arrive.
            let room = (players_spawned / room_size) + index / room_size + 1;
            harness.spawn_player(PlayerPlan {
                slot: players_spawned + index,
                room: format!("{}-{room}", plan.room_prefix),
                start_at: step_start + ramp.mul_f64(index as f64 / players_per_step as f64),
                window: (start, run_deadline),
                behaviour: plan.behaviour,
                seed: plan.seed,
            });
        }
        players_spawned += players_per_step;
        harness.set_phase(format!("step {step} ramp"));
        tokio::time::sleep_until(step_start + ramp + STEP_SETTLE).await;
        let Some(before) = harness.scrape().await else {
            capacity.stop_reason = "the node's /metrics did not answer".into();
            break;
        };
        let sampled_start = harness.sampler.player_seconds();
        let inputs_start = harness.shared.inputs_sent.get();
        let generator_start = own_cpu_seconds();
        harness.shared.state_interval_us.take();
        harness.sampler.timer_lag_us.take();
        harness.set_phase(format!("step {step} hold"));
        tokio::time::sleep(step_hold).await;
        let after = harness.scrape().await;
        let player_seconds = harness.sampler.player_seconds() - sampled_start;
        let step_inputs = harness.shared.inputs_sent.get() - inputs_start;
        // The generator's own CPU over the same hold, from /proc/self (the scrapes included:
        // they are the generator's work too).
        let generator_cpu = match (generator_start, own_cpu_seconds()) {
            (Some(start), Some(end)) => Some(end - start),
            _ => None,
        };
        let client_interval = harness.shared.state_interval_us.take();
        let timer_lag = harness.sampler.timer_lag_us.take();
        let connected = harness.shared.connected.get();
        all_intervals.merge(&client_interval);
        all_lag.merge(&timer_lag);
        let Some(after) = after else {
            capacity.stop_reason = "the node's /metrics did not answer (too busy?)".into();
            break;
        };
        let delta = ServerDelta::between(&before, &after);
        let lag_p99 = millis(&timer_lag, 99.0);
        let mut server_breaks = Vec::new();
        let mut room_limit = false;
        if (connected as f64) < players_spawned as f64 * 0.98 {
            // A node at its MAX_ROOMS refuses the new room with RoomDraining: that is a room
            // limit, not the node breaking, so the capacity found is a lower bound.
            let failures = harness.shared.join_failures.snapshot();
            let refusal = [ROOM_REFUSED, NO_CAPACITY]
                .into_iter()
                .find(|reason| failures.contains_key(*reason));
            room_limit = refusal.is_some();
            server_breaks.push(if let Some(refusal) = refusal {
                format!(
                    "only {connected} of {players_spawned} players connected: the node refused \
                     the rooms of step {step} ({refusal}; its MAX_ROOMS or MODE_MAX_ROOMS is \
                     reached — raise it for a CPU ceiling)"
                )
            } else {
                format!("only {connected} of {players_spawned} players connected")
            });
        }
        if delta.tick_overruns > 0.0 {
            server_breaks.push(format!(
                "{} ticks over {:.0} ms",
                delta.tick_overruns,
                plan.game.tick().as_secs_f64() * 1_000.0
            ));
        }
        if let Some(p99) = delta.tick_p99_seconds.filter(|p| *p > tick_budget) {
            server_breaks.push(format!(
                "tick p99 {:.1} ms > {:.1} ms",
                p99 * 1_000.0,
                tick_budget * 1_000.0
            ));
        }
        if delta.dropped_frames > 0.0 {
            server_breaks.push(format!("{} frames dropped", delta.dropped_frames));
        }
        if let Some(cpu) = delta
            .cpu_per_second()
            .filter(|cpu| *cpu >= CPU_EXHAUSTED_FRACTION * server_cores)
        {
            server_breaks.push(format!("server CPU {cpu:.2} of {server_cores} cores"));
        }
        let generator_behind = lag_p99.is_some_and(|lag| lag > GENERATOR_LAG_LIMIT_MS);
        let broke = if !server_breaks.is_empty() {
            capacity.lower_bound |= room_limit && server_breaks.len() == 1;
            Some(server_breaks.join("; "))
        } else if generator_behind {
            capacity.lower_bound = true;
            Some(format!(
                "load generator fell behind (timer lag p99 {:.0} ms)",
                lag_p99.unwrap_or_default()
            ))
        } else {
            None
        };
        capacity.steps.push(CapacityStep {
            step,
            rooms: step * rooms_per_step,
            players_target: players_spawned,
            players_connected: connected,
            window_seconds: delta.seconds,
            player_seconds,
            server_cpu_seconds: delta.cpu_seconds,
            server_cpu_per_second: delta.cpu_per_second(),
            tick_p99_ms: delta.tick_p99_seconds.map(|s| s * 1_000.0),
            tick_overruns: delta.tick_overruns,
            dropped_frames: delta.dropped_frames,
            client_state_interval_p99_ms: millis(&client_interval, 99.0),
            generator_timer_lag_p99_ms: lag_p99,
            generator_cpu_per_second: generator_cpu
                .filter(|_| delta.seconds > 0.0)
                .map(|cpu| cpu / delta.seconds),
            inputs_per_player_second: (player_seconds > 0.0)
                .then(|| step_inputs as f64 / player_seconds),
            rss_bytes: after.resident_memory_bytes,
            broke: broke.clone(),
        });
        last_snapshot = after;
        if let Some(reason) = broke {
            capacity.stop_reason = reason;
            break;
        }
        held_player_seconds += player_seconds;
        held_cpu_seconds += delta.cpu_seconds.unwrap_or(0.0);
        held_inputs += step_inputs;
        match generator_cpu {
            Some(cpu) => held_generator_cpu_seconds += cpu,
            None => generator_cpu_complete = false,
        }
        capacity.generator_cpu_per_second_at_largest = capacity
            .steps
            .last()
            .and_then(|step| step.generator_cpu_per_second);
        capacity.largest_ccu_held = connected;
    }
    harness.set_phase("stopping");
    if held_player_seconds > 0.0 && held_cpu_seconds > 0.0 {
        capacity.players_per_server_core = Some(held_player_seconds / held_cpu_seconds);
        if plan.game == Game::Breach {
            capacity.matches_per_server_core =
                Some(held_player_seconds / held_cpu_seconds / room_size as f64);
        }
        capacity.server_cpu_seconds_per_player_second =
            Some(held_cpu_seconds / held_player_seconds);
    }
    if held_player_seconds > 0.0 {
        capacity.inputs_per_player_second = Some(held_inputs as f64 / held_player_seconds);
        capacity.generator_cpu_seconds_per_player_second =
            generator_cpu_complete.then(|| held_generator_cpu_seconds / held_player_seconds);
    }
    let mut report = harness.base_report(plan);
    report.behaviour.inputs_in_window = held_inputs;
    report.behaviour.inputs_per_player_second = capacity.inputs_per_player_second;
    report.players_requested = players_spawned;
    report.rooms = step * rooms_per_step;
    report.duration_seconds = step_hold.as_secs_f64();
    report.traffic.window_seconds = start.elapsed().as_secs_f64();
    report.generator.timer_lag_ms =
        Percentiles::millis_from_micros(&harness.sampler.timer_lag_us.take());
    report.generator.fell_behind = capacity.lower_bound;
    report.server = Some(server_report(
        Some(&baseline),
        &baseline,
        &last_snapshot,
        harness.sampler.player_seconds(),
        report.ccu_at_end,
    ));
    report.capacity = Some(capacity);
    Ok(report)
}

/// The breach figures: matches as the clients saw them against what the node counted, and
/// the inputs the players sent against what the node applied.
fn breach_report(
    breach: &BreachShared,
    tally: MatchTally,
    before: Option<&ServerSnapshot>,
    after: Option<&ServerSnapshot>,
    window_player_seconds: Option<f64>,
) -> BreachReport {
    let server = match (before, after) {
        (Some(before), Some(after)) => Some(after.matches.since(&before.matches)),
        _ => None,
    };
    let finished_matches = tally.started - tally.in_progress;
    let duplicate_results_seen = breach.duplicate_results.get();
    // Every result counted once: the node's three counts agree with each other, each match a
    // client saw end was counted (no fewer), and no more were counted than could have ended
    // (those the clients saw end, plus those still being played when the run stopped).
    let results_counted_once = server.map(|server| {
        let seen = tally.results_seen as f64;
        server.finished == server.reports
            && server.finished == server.results_emitted
            && server.finished >= seen
            && server.finished <= seen + tally.in_progress as f64
            && duplicate_results_seen == 0
    });
    let inputs_in_window = breach.inputs_in_window.get();
    let moving_ticks = breach.moving_ticks.get();
    BreachReport {
        matches: MatchesReport {
            started: tally.started,
            completed: tally.completed,
            in_progress_at_end: tally.in_progress,
            abandoned: tally.abandoned,
            results_seen: tally.results_seen,
            completion_rate: (finished_matches > 0)
                .then(|| tally.completed as f64 / finished_matches as f64),
            duplicate_results_seen,
            server_results: server.map(|s| s.finished),
            server_results_kill_limit: server.map(|s| s.by_kill_limit),
            server_results_time_limit: server.map(|s| s.by_time_limit),
            server_results_forfeit: server.map(|s| s.by_forfeit),
            server_result_reports: server.map(|s| s.reports),
            server_results_emitted: server.map(|s| s.results_emitted),
            results_counted_once,
        },
        inputs: BreachInputsReport {
            sent_in_window: inputs_in_window,
            per_player_second_in_window: window_player_seconds
                .filter(|seconds| *seconds > 0.0)
                .map(|seconds| inputs_in_window as f64 / seconds),
            moving_ticks,
            sent_in_moving_ticks: breach.inputs_in_moving_ticks.get(),
            most_in_one_tick: breach.most_inputs_in_one_tick.get(),
            fire_ticks: breach.fire_ticks.get(),
            reloads: breach.reloads.get(),
            speed_changes: breach.speed_changes.get(),
            votes_sent: breach.votes_sent.get(),
            server_applied: server.map(|s| s.inputs_applied),
            server_refused: server.map(|s| s.inputs_refused),
            server_malformed: server.map(|s| s.inputs_malformed),
        },
        decode_errors: breach.decode_errors.get(),
        resumes_attempted: breach.resumes_attempted.get(),
        resumes_refused: breach.resumes_refused.get(),
    }
}
