//! Counters every simulated player updates and the controller reads once a second: plain
//! relaxed atomics and lock-free histograms, plus two small maps of failure reasons that are
//! touched only when something goes wrong (never per frame).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::histogram::AtomicHistogram;

/// Most distinct failure reasons kept; the rest are counted under "other". Reasons come from
/// server error frames and HTTP statuses, so a hostile server could otherwise grow the map.
const MAX_REASONS: usize = 64;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    pub fn increment(&self) {
        self.add(1);
    }

    pub fn decrement(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn raise_to(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// Reason → count, bounded.
#[derive(Debug, Default)]
pub struct ReasonCounts(Mutex<BTreeMap<String, u64>>);

impl ReasonCounts {
    pub fn add(&self, reason: &str) {
        // A poisoned lock only means another task panicked mid-insert; the counts are still
        // usable statistics.
        let mut map = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = map.get_mut(reason) {
            *count += 1;
        } else if map.len() < MAX_REASONS {
            map.insert(reason.to_owned(), 1);
        } else {
            *map.entry("other".to_owned()).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

/// Everything the players report while they run.
#[derive(Debug, Default)]
pub struct Shared {
    /// Players past their first state frame and not yet disconnected.
    pub connected: Counter,
    /// Most players connected at once.
    pub connected_peak: Counter,
    pub join_attempts: Counter,
    pub joins_succeeded: Counter,
    pub joins_failed: Counter,
    pub join_failures: ReasonCounts,
    /// Matchmakes repeated because the token's node refused the connection.
    pub replacements: Counter,
    pub disconnects: Counter,
    pub disconnect_reasons: ReasonCounts,
    /// Join latency: connect start → first state frame, microseconds.
    pub join_latency_us: AtomicHistogram,
    /// Time between consecutive state frames seen by one client, microseconds.
    pub state_interval_us: AtomicHistogram,
    /// Wire bytes received (payload + WebSocket frame header), all players, whole run.
    pub bytes_received: Counter,
    pub state_frames: Counter,
    pub inputs_sent: Counter,
    /// The most inputs one arena player sent between two state frames (1 under the tick
    /// rule; more only with an --input-hz above the tick rate).
    pub most_inputs_between_states: Counter,
    pub deaths: Counter,
    pub respawns_sent: Counter,
    pub planned_leaves: Counter,
    /// State frames per second announced by the server's init frame (0 until one arrives).
    pub tick_rate: Counter,
}

impl Shared {
    pub fn player_connected(&self) {
        self.connected.increment();
        self.connected_peak.raise_to(self.connected.get());
    }

    pub fn player_disconnected(&self, reason: &str) {
        self.connected.decrement();
        self.disconnects.increment();
        self.disconnect_reasons.add(reason);
    }

    pub fn join_failed(&self, reason: &str) {
        self.joins_failed.increment();
        self.join_failures.add(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded() {
        let reasons = ReasonCounts::default();
        for index in 0..(MAX_REASONS + 10) {
            reasons.add(&format!("reason {index}"));
        }
        reasons.add("reason 0");
        let snapshot = reasons.snapshot();
        assert_eq!(snapshot.len(), MAX_REASONS + 1);
        assert_eq!(snapshot["other"], 10);
        assert_eq!(snapshot["reason 0"], 2);
    }

    #[test]
    fn peak_follows_connections() {
        let shared = Shared::default();
        shared.player_connected();
        shared.player_connected();
        shared.player_disconnected("left");
        shared.player_connected();
        assert_eq!(shared.connected.get(), 2);
        assert_eq!(shared.connected_peak.get(), 2);
        assert_eq!(shared.disconnect_reasons.snapshot()["left"], 1);
    }
}
