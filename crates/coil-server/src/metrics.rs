//! Every metric the game node exports, declared in one place (names follow Prometheus
//! conventions; label values are bounded: no per-player or per-room labels).
//!
//! Gauges that describe the whole node (rooms by state, players) are computed from the room
//! registry at scrape time rather than kept as running deltas, so they cannot drift.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const TIME_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
const JOIN_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle. Several nodes
/// in one test process share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), TIME_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("coil_join_latency_seconds".into()),
                        JOIN_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // A recorder may already be installed by an embedding application; then our
            // handle simply renders nothing of theirs.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
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
}

pub fn tick_finished(
    tick: Duration,
    encode: Duration,
    overrun: bool,
    bytes_sent: u64,
    dropped: u64,
) {
    histogram!("coil_tick_duration_seconds").record(tick.as_secs_f64());
    histogram!("coil_encode_duration_seconds").record(encode.as_secs_f64());
    if overrun {
        counter!("coil_tick_overruns_total").increment(1);
    }
    counter!("coil_ws_bytes_sent_total").increment(bytes_sent);
    if dropped > 0 {
        counter!("coil_dropped_frames_total").increment(dropped);
    }
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
