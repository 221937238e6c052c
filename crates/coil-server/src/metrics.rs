//! Every metric the game node exports, declared in one place (names follow Prometheus
//! conventions; label values are bounded: no per-player or per-room labels).
//!
//! Gauges that describe the whole node (rooms by state, players) are computed from the room
//! registry at scrape time rather than kept as running deltas, so they cannot drift.

use std::sync::Once;
use std::time::Duration;

use coil_match::RoomState;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusHandle;

static DESCRIBED: Once = Once::new();

/// Installs the process-wide Prometheus recorder (`coil_service::metrics`) and describes the
/// node's metrics once; returns the handle `/metrics` renders. Several nodes in one test
/// process share it.
pub fn install() -> PrometheusHandle {
    let handle = coil_service::metrics::install();
    DESCRIBED.call_once(describe);
    handle
}

fn describe() {
    describe_histogram!(
        "coil_tick_duration_seconds",
        metrics::Unit::Seconds,
        "One room tick, encode included."
    );
    describe_counter!(
        "coil_tick_overruns_total",
        "Room ticks that took longer than the tick budget."
    );
    describe_histogram!(
        "coil_encode_duration_seconds",
        metrics::Unit::Seconds,
        "Encoding all players' frames for one room tick."
    );
    describe_gauge!("coil_rooms", "Rooms on this node by lifecycle state.");
    describe_gauge!("coil_players", "Snakes on this node by kind (human, bot).");
    describe_gauge!(
        "coil_connections_open",
        "Open player WebSocket connections."
    );
    describe_counter!(
        "coil_ws_bytes_sent_total",
        metrics::Unit::Bytes,
        "WebSocket payload bytes sent to players."
    );
    describe_counter!(
        "coil_ws_bytes_received_total",
        metrics::Unit::Bytes,
        "WebSocket payload bytes received from players."
    );
    describe_counter!("coil_joins_total", "Join attempts by result.");
    describe_histogram!(
        "coil_join_latency_seconds",
        metrics::Unit::Seconds,
        "WebSocket upgrade to the first state frame sent."
    );
    describe_counter!(
        "coil_dropped_frames_total",
        "Frames not sent because a client's queue was full."
    );
    describe_counter!("coil_disconnects_total", "Player disconnects by reason.");
    describe_gauge!("coil_node_draining", "1 while the node drains.");
    describe_gauge!("coil_node_ready", "1 while the node takes new players.");
    describe_counter!("coil_leaderboard_writes_total", "Score writes by result.");
    describe_counter!(
        "coil_agones_sdk_requests_total",
        "Calls to the Agones SDK server (AGONES=1) by call and result (ok, error)."
    );
    describe_counter!(
        "coil_reconnects_total",
        "Seats held for a reconnect, resumed, or expired after the grace."
    );
    describe_counter!(
        "coil_room_reports_total",
        "Match results and flags rooms reported, by kind and what became of them."
    );
    describe_counter!(
        "coil_matches_total",
        "Matches finished, by mode and reason."
    );
    describe_counter!(
        "coil_game_events_total",
        "A game's own counters (inputs refused, shots, kills, …), by mode and event."
    );
    describe_counter!(
        "coil_flags_total",
        "Flags games raised for review, by mode and kind."
    );
    describe_gauge!(
        "coil_leaderboard_pending_scores",
        "Finished runs waiting to be written (queued or being retried)."
    );
    describe_counter!(
        "coil_leaderboard_write_retries_total",
        "Score writes retried after the database failed or timed out."
    );
    describe_counter!(
        "coil_match_result_writes_total",
        "Match results by how their write ended (ok, error: refused for good, dropped)."
    );
    describe_gauge!(
        "coil_match_results_pending",
        "Match results waiting to be written (queued or being retried)."
    );
    describe_counter!(
        "coil_match_result_write_retries_total",
        "Match-result writes retried after the database failed or timed out."
    );
    describe_counter!(
        "coil_directory_heartbeats_total",
        "Full room-directory heartbeats by result (ok, error)."
    );
    describe_counter!(
        "coil_matchmake_requests_total",
        "Matchmake requests by result (ok, bad_request, no_capacity, override_conflict, \
         contended, shed, error)."
    );
    describe_counter!(
        "coil_matchmake_placements_total",
        "Seats handed out by why the player got its region (preferred, neighbour, fallback, room)."
    );
    coil_match::metrics::describe();
}

/// Creates every series a node exports before anything happens, so a scrape of a fresh node
/// already shows them at zero (dashboards and absent-metric alerts need them), one per mode
/// where the series has a mode label.
pub fn register_at_zero(modes: &[&str]) {
    for mode in modes {
        let mode = mode.to_string();
        let _ = histogram!("coil_tick_duration_seconds", "mode" => mode.clone());
        let _ = histogram!("coil_encode_duration_seconds", "mode" => mode.clone());
        counter!("coil_tick_overruns_total", "mode" => mode.clone()).absolute(0);
        counter!("coil_ws_bytes_sent_total", "mode" => mode.clone()).absolute(0);
        counter!("coil_dropped_frames_total", "mode" => mode).absolute(0);
    }
    counter!("coil_ws_bytes_received_total").absolute(0);
    gauge!("coil_connections_open").increment(0.0);
    let _ = histogram!("coil_join_latency_seconds");
    for result in ["ok", "room_full", "draining"] {
        counter!("coil_joins_total", "result" => result).absolute(0);
    }
}

pub fn tick_finished(
    mode: &str,
    tick: Duration,
    encode: Duration,
    overrun: bool,
    bytes_sent: u64,
    dropped: u64,
) {
    // Mode names come from the node's configuration: a bounded label set.
    let mode = mode.to_owned();
    histogram!("coil_tick_duration_seconds", "mode" => mode.clone()).record(tick.as_secs_f64());
    histogram!("coil_encode_duration_seconds", "mode" => mode.clone()).record(encode.as_secs_f64());
    if overrun {
        counter!("coil_tick_overruns_total", "mode" => mode.clone()).increment(1);
    }
    counter!("coil_ws_bytes_sent_total", "mode" => mode.clone()).increment(bytes_sent);
    if dropped > 0 {
        counter!("coil_dropped_frames_total", "mode" => mode).increment(dropped);
    }
}

/// `outcome`: held, resumed, expired, refused.
pub fn reconnect(outcome: &'static str) {
    counter!("coil_reconnects_total", "outcome" => outcome).increment(1);
}

/// `kind`: match_result, flag; `outcome`: queued, dropped, discarded.
pub fn report(kind: &'static str, outcome: &'static str) {
    counter!("coil_room_reports_total", "kind" => kind, "outcome" => outcome).increment(1);
}

/// A game's own counter grew by `delta` (`event` names come from the game's fixed set).
pub fn game_events(mode: &str, event: &'static str, delta: u64) {
    counter!("coil_game_events_total", "mode" => mode.to_owned(), "event" => event)
        .increment(delta);
}

pub fn match_finished(mode: &str, reason: &'static str) {
    counter!("coil_matches_total", "mode" => mode.to_owned(), "reason" => reason).increment(1);
}

pub fn flag(mode: &str, kind: &'static str) {
    counter!("coil_flags_total", "mode" => mode.to_owned(), "kind" => kind).increment(1);
}

pub fn bytes_received(bytes: usize) {
    counter!("coil_ws_bytes_received_total").increment(bytes as u64);
}

/// `result` is one of the bounded values listed in docs (ok, room_full, draining, …).
pub fn join(result: &'static str) {
    counter!("coil_joins_total", "result" => result).increment(1);
}

pub fn join_latency(latency: Duration) {
    histogram!("coil_join_latency_seconds").record(latency.as_secs_f64());
}

pub fn disconnect(reason: &'static str) {
    counter!("coil_disconnects_total", "reason" => reason).increment(1);
}

pub fn leaderboard_write(result: &'static str) {
    counter!("coil_leaderboard_writes_total", "result" => result).increment(1);
}

/// `call` is one of ready, health, allocate, shutdown, counter, gameserver.
pub fn agones_sdk_request(call: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    counter!("coil_agones_sdk_requests_total", "call" => call, "result" => result).increment(1);
}

pub fn leaderboard_pending(count: usize) {
    gauge!("coil_leaderboard_pending_scores").set(count as f64);
}

pub fn leaderboard_write_retry() {
    counter!("coil_leaderboard_write_retries_total").increment(1);
}

/// `result`: ok, error (the database refused it for good), dropped (queue full or lost at
/// shutdown).
pub fn match_result_write(result: &'static str) {
    counter!("coil_match_result_writes_total", "result" => result).increment(1);
}

pub fn match_results_pending(count: usize) {
    gauge!("coil_match_results_pending").set(count as f64);
}

pub fn match_result_write_retry() {
    counter!("coil_match_result_write_retries_total").increment(1);
}

pub fn directory_heartbeat(result: &'static str) {
    counter!("coil_directory_heartbeats_total", "result" => result).increment(1);
}

pub fn connections_open(delta: f64) {
    gauge!("coil_connections_open").increment(delta);
}

/// Node-wide gauges, set from the registry just before each scrape.
pub fn set_node_gauges(
    rooms_by_state: [usize; 4],
    humans: usize,
    bots: usize,
    draining: bool,
    ready: bool,
) {
    for (state, count) in crate::room::RoomState::ALL.iter().zip(rooms_by_state) {
        if *state != crate::room::RoomState::Terminated {
            gauge!("coil_rooms", "state" => state.as_str()).set(count as f64);
        }
    }
    gauge!("coil_players", "kind" => "human").set(humans as f64);
    gauge!("coil_players", "kind" => "bot").set(bots as f64);
    gauge!("coil_node_draining").set(if draining { 1.0 } else { 0.0 });
    gauge!("coil_node_ready").set(if ready { 1.0 } else { 0.0 });
}

/// A warning that logs at most once per second per call site, so a storm of failing
/// connections cannot flood the logs. Suppressed events are counted in the next line.
#[macro_export]
macro_rules! rate_limited_warn {
    ($($arg:tt)+) => {{
        static LIMITER: $crate::metrics::LogLimiter = $crate::metrics::LogLimiter::new();
        if let Some(suppressed) = LIMITER.allow() {
            tracing::warn!(suppressed, $($arg)+);
        }
    }};
}

/// Per-call-site state of [`rate_limited_warn!`].
pub struct LogLimiter {
    last_second: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LogLimiter {
    pub const fn new() -> Self {
        Self {
            last_second: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Returns how many events were suppressed since the last allowed one, or `None` when
    /// this event should be suppressed.
    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_second.load(Ordering::Relaxed);
        if now != last
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limiter_allows_one_per_second() {
        let limiter = LogLimiter::new();
        assert_eq!(limiter.allow(), Some(0));
        // The same second: suppressed and counted.
        let second = limiter.allow();
        let third = limiter.allow();
        // Unless the clock crossed a second boundary between calls, both are suppressed.
        assert!(second.is_none() || third.is_none());
    }
}

/// One `POST /api/matchmake`: its result label, and how long it took (`None` when it was
/// refused before any placement work, e.g. by a rate limit).
pub fn matchmake_request(result: &'static str, took: Option<Duration>) {
    counter!("coil_matchmake_requests_total", "result" => result).increment(1);
    if let Some(took) = took {
        histogram!("coil_matchmake_duration_seconds").record(took.as_secs_f64());
    }
}

/// A matchmake that placed a player, by why it got its region.
pub fn matchmake_placement(region_reason: &'static str) {
    counter!("coil_matchmake_placements_total", "region_reason" => region_reason).increment(1);
}

/// A region's figures from one directory snapshot (scrape time).
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectoryFigures {
    /// Rooms by state, indexed by `RoomState::index` (terminated rooms are not exported).
    pub rooms_by_state: [u64; 4],
    pub humans: u64,
    pub warm_rooms: u64,
    pub seats_free: u64,
    pub active_nodes: u64,
    pub draining_nodes: u64,
}

/// Sets the `coil_directory_*` gauges of `region`.
pub fn directory_region(region: String, figures: DirectoryFigures) {
    for state in [RoomState::Warm, RoomState::Active, RoomState::Draining] {
        gauge!("coil_directory_rooms", "region" => region.clone(), "state" => state.as_str())
            .set(figures.rooms_by_state[state.index()] as f64);
    }
    gauge!("coil_directory_humans", "region" => region.clone()).set(figures.humans as f64);
    gauge!("coil_directory_warm_rooms", "region" => region.clone()).set(figures.warm_rooms as f64);
    gauge!("coil_directory_seats_free", "region" => region.clone()).set(figures.seats_free as f64);
    gauge!("coil_directory_nodes", "region" => region.clone(), "state" => "active")
        .set(figures.active_nodes as f64);
    gauge!("coil_directory_nodes", "region" => region, "state" => "draining")
        .set(figures.draining_nodes as f64);
}
