//! The one clock every identity decision reads: token issue and expiry, refresh lifetimes,
//! rate-limit windows, revocation TTLs. Production uses the system's wall clock; tests and
//! benchmarks hold a [`ManualClock`] and move it by hand, so an expiry or a 15-minute window is
//! checked without waiting. Nothing else in this crate reads the time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;
}

/// The shared handle every component takes.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock. Wall time (not monotonic) because tokens and Redis keys are
/// compared across machines; NTP keeps fleet clocks within milliseconds, far inside the
/// leeway and windows used here.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
    }
}

/// The system clock as a [`SharedClock`].
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that moves only when told to. Clones share one time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn starting_at(now_ms: u64) -> ManualClock {
        ManualClock {
            now_ms: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// This clock as a [`SharedClock`] (sharing the same time).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_share_their_time() {
        let clock = ManualClock::starting_at(1_000);
        let shared = clock.shared();
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now_ms(), 3_000);
        clock.set(5);
        assert_eq!(shared.now_ms(), 5);
    }

    #[test]
    fn the_system_clock_is_after_2026() {
        assert!(SystemClock.now_ms() > 1_767_225_600_000);
    }
}
