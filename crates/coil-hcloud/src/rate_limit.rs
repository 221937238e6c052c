//! Hetzner's request budget as seen in the `RateLimit-*` response headers, and the arithmetic
//! the client's budget guard uses between responses.
//!
//! Published semantics (docs.hetzner.cloud, "Rate Limiting"): `RateLimit-Limit` is the number of
//! requests per hour (3600 by default, per project), `RateLimit-Remaining` what is left now, and
//! `RateLimit-Reset` the UNIX timestamp at which the budget will be full again; the remaining
//! count refills gradually (1 per second at 3600/hour). Everything here is a pure function of a
//! snapshot and a caller-supplied `now`; this module reads no clock and does no IO.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// Header names as Hetzner sends them (HTTP header names are case-insensitive).
pub const RATE_LIMIT_LIMIT_HEADER: &str = "ratelimit-limit";
pub const RATE_LIMIT_REMAINING_HEADER: &str = "ratelimit-remaining";
pub const RATE_LIMIT_RESET_HEADER: &str = "ratelimit-reset";

/// One response's view of the request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    /// Requests per hour.
    pub limit: u32,
    /// Requests left when the response was produced.
    pub remaining: u32,
    /// UNIX seconds at which `remaining` is back to `limit`.
    pub reset_at_unix_seconds: u64,
    /// When the client received the response.
    pub observed_at: SystemTime,
}

impl RateLimitSnapshot {
    /// Reads the three headers; `None` unless all three are present and numeric.
    pub fn from_headers(headers: &HeaderMap, observed_at: SystemTime) -> Option<Self> {
        let read =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let limit = u32::try_from(read(RATE_LIMIT_LIMIT_HEADER)?).ok()?;
        let remaining = u32::try_from(read(RATE_LIMIT_REMAINING_HEADER)?).ok()?;
        let reset_at_unix_seconds = read(RATE_LIMIT_RESET_HEADER)?;
        Some(Self {
            limit,
            remaining: remaining.min(limit),
            reset_at_unix_seconds,
            observed_at,
        })
    }

    /// The moment the budget is full again.
    pub fn reset_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.reset_at_unix_seconds)
    }

    /// Requests regained per second.
    ///
    /// Derived from the headers themselves (missing requests / seconds until reset) so that a
    /// project with a raised limit, or the stand-in with a test refill rate, is estimated
    /// correctly; falls back to the documented `limit / 3600` when the headers cannot tell.
    pub fn refill_per_second(&self) -> f64 {
        let missing = f64::from(self.limit.saturating_sub(self.remaining));
        let seconds_to_reset = self
            .reset_at()
            .duration_since(self.observed_at)
            .map(|duration| duration.as_secs_f64())
            .unwrap_or(0.0);
        if missing >= 1.0 && seconds_to_reset >= 1.0 {
            missing / seconds_to_reset
        } else {
            f64::from(self.limit) / 3600.0
        }
    }

    /// Requests expected to be available at `now`, ignoring requests sent since the snapshot.
    pub fn estimated_remaining_at(&self, now: SystemTime) -> u32 {
        if now >= self.reset_at() {
            return self.limit;
        }
        let elapsed = now
            .duration_since(self.observed_at)
            .map(|duration| duration.as_secs_f64())
            .unwrap_or(0.0);
        let regained = (elapsed * self.refill_per_second()).floor();
        let estimate = f64::from(self.remaining) + regained;
        if estimate >= f64::from(self.limit) {
            self.limit
        } else {
            // In range 0..limit, so the cast cannot truncate.
            estimate as u32
        }
    }

    /// When `requests` requests are expected to be available (`observed_at` if they are now).
    pub fn available_at(&self, requests: u32) -> SystemTime {
        if requests <= self.remaining {
            return self.observed_at;
        }
        if requests > self.limit {
            return self.reset_at();
        }
        let missing = f64::from(requests - self.remaining);
        let rate = self.refill_per_second();
        if rate <= 0.0 || !rate.is_finite() {
            return self.reset_at();
        }
        let wait = Duration::from_secs_f64((missing / rate).min(365.0 * 86_400.0));
        (self.observed_at + wait).min(self.reset_at().max(self.observed_at))
    }
}

/// Why the budget guard said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("wanted {wanted} hetzner api requests, about {available_now} available now")]
pub struct BudgetShortfall {
    pub wanted: u32,
    pub available_now: u32,
    /// When enough requests are expected to have refilled.
    pub enough_at: SystemTime,
}

/// The guard behind `HcloudClient::check_budget`: the last snapshot, minus requests sent but not
/// yet answered, decides whether `wanted` more requests fit. With no snapshot yet the answer is
/// yes: the first response will tell.
pub fn check_budget(
    snapshot: Option<&RateLimitSnapshot>,
    requests_in_flight: u32,
    wanted: u32,
    now: SystemTime,
) -> Result<(), BudgetShortfall> {
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    let available_now = snapshot
        .estimated_remaining_at(now)
        .saturating_sub(requests_in_flight);
    if available_now >= wanted {
        return Ok(());
    }
    Err(BudgetShortfall {
        wanted,
        available_now,
        enough_at: snapshot
            .available_at(wanted.saturating_add(requests_in_flight))
            .max(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(limit: u32, remaining: u32, seconds_to_reset: u64) -> RateLimitSnapshot {
        let observed_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        RateLimitSnapshot {
            limit,
            remaining,
            reset_at_unix_seconds: 1_800_000_000 + seconds_to_reset,
            observed_at,
        }
    }

    #[test]
    fn headers_are_read_case_insensitively_and_all_three_are_required() {
        let mut headers = HeaderMap::new();
        headers.insert("RateLimit-Limit", "3600".parse().unwrap());
        headers.insert("RateLimit-Remaining", "3598".parse().unwrap());
        assert_eq!(RateLimitSnapshot::from_headers(&headers, UNIX_EPOCH), None);
        headers.insert("RateLimit-Reset", "1800000002".parse().unwrap());
        let parsed = RateLimitSnapshot::from_headers(&headers, UNIX_EPOCH).unwrap();
        assert_eq!(parsed.limit, 3600);
        assert_eq!(parsed.remaining, 3598);
        assert_eq!(parsed.reset_at_unix_seconds, 1_800_000_002);
        headers.insert("RateLimit-Remaining", "many".parse().unwrap());
        assert_eq!(RateLimitSnapshot::from_headers(&headers, UNIX_EPOCH), None);
    }

    #[test]
    fn the_default_budget_refills_one_request_per_second() {
        // 100 missing requests, full again in 100 s: 1 per second, as documented.
        let snap = snapshot(3600, 3500, 100);
        assert!((snap.refill_per_second() - 1.0).abs() < 1e-9);
        assert_eq!(
            snap.estimated_remaining_at(snap.observed_at + Duration::from_secs(10)),
            3510
        );
        assert_eq!(
            snap.estimated_remaining_at(snap.observed_at + Duration::from_secs(1000)),
            3600
        );
    }

    #[test]
    fn an_empty_budget_is_available_again_after_one_refill_step() {
        let snap = snapshot(3600, 0, 3600);
        assert_eq!(
            snap.available_at(1),
            snap.observed_at + Duration::from_secs(1)
        );
        assert_eq!(snap.available_at(0), snap.observed_at);
        assert_eq!(snap.available_at(5000), snap.reset_at());
    }

    #[test]
    fn the_guard_subtracts_requests_in_flight() {
        let snap = snapshot(3600, 10, 3590);
        let now = snap.observed_at;
        assert!(check_budget(Some(&snap), 0, 10, now).is_ok());
        let shortfall = check_budget(Some(&snap), 3, 10, now).unwrap_err();
        assert_eq!(shortfall.available_now, 7);
        assert_eq!(shortfall.wanted, 10);
        assert!(shortfall.enough_at > now);
        assert!(check_budget(None, 100, 1000, now).is_ok());
    }
}
