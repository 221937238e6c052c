//! Rate limits: per client address and per account, with the wait returned for `Retry-After`.
//!
//! A [`RateRule`] allows `burst` requests at once and refills them evenly over `period` (GCRA,
//! the generic cell rate algorithm: a token bucket that stores one timestamp per key). Two
//! implementations of [`RateLimiter`] apply the same rule the same way:
//! - [`MemoryRateLimiter`]: `governor`'s keyed GCRA limiters (the ecosystem's standard,
//!   lock-free), one per rule, driven by our [`crate::clock::Clock`] so tests step time by hand;
//!   idle keys are swept as it is used, so memory follows the active keys.
//! - [`RedisRateLimiter`]: the same GCRA in one Lua script per check (`GET` the theoretical
//!   arrival time, decide, `SET … PX`), atomic on the Redis server, so any number of API
//!   replicas share one budget per key. A script rather than a crate: the Redis-backed limiter
//!   crates on crates.io are small single-author projects, and the one production-grade Redis
//!   limiter (redis-cell) is a server module that managed Redis services do not load; the
//!   script is the algorithm of go-redis/redis_rate (itself from rwz/redis-gcra), 20 lines.
//!   Time comes from the caller's clock (wall clock; fleet clocks agree within NTP error).
//!
//! A limiter that cannot reach Redis lets the request through (and counts
//! `coil_rate_limit_errors_total`): a Redis outage must not lock every player out of login;
//! the password hashing pool still bounds what an attacker can do meanwhile.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as GovernorLimiter};
use redis::Script;

use crate::BoxFuture;
use crate::clock::SharedClock;
use crate::metrics as m;
use crate::redis_link::RedisLink;
use crate::secrets::secret_hash;

/// `burst` requests at once, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    /// Stable name: part of the Redis key and the metrics label.
    pub name: &'static str,
    pub burst: u32,
    pub period: Duration,
}

impl RateRule {
    /// Parses `N/DURATION` (`30/60s`, `20/15m`, `1000/1h`) or `off` (returns `None`).
    pub fn parse(name: &'static str, text: &str) -> Result<Option<RateRule>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not N/DURATION (like 30/60s) or off"))?;
        let burst: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|count| (1..=1_000_000).contains(count))
            .ok_or_else(|| format!("{count:?} is not a count between 1 and 1000000"))?;
        let period = parse_duration(period.trim())
            .filter(|period| {
                (Duration::from_millis(1)..=Duration::from_secs(7 * 24 * 3600)).contains(period)
            })
            .ok_or_else(|| format!("{period:?} is not a duration like 500ms, 60s, 15m or 1h"))?;
        Ok(Some(RateRule {
            name,
            burst,
            period,
        }))
    }

    /// The time one request's share of the budget takes to come back.
    pub fn emission_interval(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(number.checked_mul(unit_ms)?))
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Refused; the earliest time a retry can succeed.
    Limited {
        retry_after: Duration,
    },
}

impl RateDecision {
    pub fn is_allowed(self) -> bool {
        matches!(self, RateDecision::Allowed)
    }
}

/// Shared limiter. A check consumes one request of `key`'s budget under `rule` if allowed.
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    fn check<'a>(&'a self, rule: &'a RateRule, key: &'a str) -> BoxFuture<'a, RateDecision>;
}

/// Keys longer than this are hashed (they may contain a user-typed name).
const MAX_PLAIN_KEY: usize = 96;

fn bounded_key(key: &str) -> String {
    if key.len() <= MAX_PLAIN_KEY && key.bytes().all(|b| b.is_ascii_graphic()) {
        key.to_owned()
    } else {
        format!("h:{}", secret_hash(key))
    }
}

/// Adapts our clock to governor's.
#[derive(Debug, Clone)]
struct GovernorClock(SharedClock);

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.now_ms().saturating_mul(1_000_000))
    }
}

type KeyedLimiter = GovernorLimiter<
    String,
    DefaultKeyedStateStore<String>,
    GovernorClock,
    governor::middleware::NoOpMiddleware<Nanos>,
>;

/// Checks between two sweeps of idle keys, per rule.
const SWEEP_EVERY: u64 = 1024;

struct RuleLimiter {
    limiter: KeyedLimiter,
    checks: AtomicU64,
}

/// A rule's identity: its name and its numbers (a rule reconfigured in a test gets its own
/// limiter).
type RuleKey = (&'static str, u32, Duration);

/// In-process limits (all-in-one).
pub struct MemoryRateLimiter {
    clock: SharedClock,
    rules: Mutex<HashMap<RuleKey, Arc<RuleLimiter>>>,
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter").finish_non_exhaustive()
    }
}

impl MemoryRateLimiter {
    pub fn new(clock: SharedClock) -> MemoryRateLimiter {
        MemoryRateLimiter {
            clock,
            rules: Mutex::new(HashMap::new()),
        }
    }

    fn limiter_for(&self, rule: &RateRule) -> Arc<RuleLimiter> {
        let mut rules = self
            .rules
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        rules
            .entry((rule.name, rule.burst, rule.period))
            .or_insert_with(|| {
                let burst = NonZeroU32::new(rule.burst.max(1)).unwrap_or(NonZeroU32::MIN);
                let quota =
                    Quota::with_period(rule.emission_interval().max(Duration::from_nanos(1)))
                        .unwrap_or_else(|| Quota::per_second(burst))
                        .allow_burst(burst);
                Arc::new(RuleLimiter {
                    limiter: GovernorLimiter::new(
                        quota,
                        DefaultKeyedStateStore::default(),
                        GovernorClock(self.clock.clone()),
                    ),
                    checks: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Keys currently tracked under `rule` (tests: idle keys are swept).
    pub fn tracked_keys(&self, rule: &RateRule) -> usize {
        self.limiter_for(rule).limiter.len()
    }
}

impl RateLimiter for MemoryRateLimiter {
    fn check<'a>(&'a self, rule: &'a RateRule, key: &'a str) -> BoxFuture<'a, RateDecision> {
        let rule_limiter = self.limiter_for(rule);
        if rule_limiter.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            rule_limiter.limiter.retain_recent();
            rule_limiter.limiter.shrink_to_fit();
        }
        let decision = match rule_limiter.limiter.check_key(&bounded_key(key)) {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => {
                let now = GovernorClock(self.clock.clone()).now();
                RateDecision::Limited {
                    retry_after: not_until.wait_time_from(now),
                }
            }
        };
        m::rate_limit_decision(rule.name, decision.is_allowed());
        Box::pin(async move { decision })
    }
}

/// GCRA in one atomic step. KEYS[1]: the bucket. ARGV: burst, emission interval (ms, may be
/// fractional), now (ms). The stored value is the theoretical arrival time (TAT) in ms.
/// Returns {1, 0} when allowed, {0, retry_after_ms} when not.
const GCRA_LUA: &str = r#"
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, 0}
"#;

/// Limits shared by every replica on one Redis (fleet).
#[derive(Clone)]
pub struct RedisRateLimiter {
    link: RedisLink,
    clock: SharedClock,
    script: Arc<Script>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    pub fn new(link: RedisLink, clock: SharedClock) -> RedisRateLimiter {
        RedisRateLimiter {
            link,
            clock,
            script: Arc::new(Script::new(GCRA_LUA)),
        }
    }
}

impl RateLimiter for RedisRateLimiter {
    fn check<'a>(&'a self, rule: &'a RateRule, key: &'a str) -> BoxFuture<'a, RateDecision> {
        Box::pin(async move {
            let bucket = self.link.key(&["rl", rule.name, &bounded_key(key)]);
            let interval_ms = rule.emission_interval().as_secs_f64() * 1000.0;
            let mut invocation = self.script.key(bucket);
            invocation
                .arg(rule.burst)
                .arg(interval_ms)
                .arg(self.clock.now_ms());
            let mut connection = self.link.connection.clone();
            let result: Result<(i64, i64), _> = self
                .link
                .run("rate limit", invocation.invoke_async(&mut connection))
                .await;
            let decision = match result {
                Ok((1, _)) => RateDecision::Allowed,
                Ok((_, retry_after_ms)) => RateDecision::Limited {
                    retry_after: Duration::from_millis(retry_after_ms.max(1) as u64),
                },
                Err(error) => {
                    m::rate_limit_error();
                    tracing::warn!(cause = %error, rule = rule.name, "rate limit check failed; allowing");
                    RateDecision::Allowed
                }
            };
            m::rate_limit_decision(rule.name, decision.is_allowed());
            decision
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const RULE: RateRule = RateRule {
        name: "test",
        burst: 3,
        period: Duration::from_secs(60),
    };

    #[test]
    fn rules_parse_with_units_and_off() {
        assert_eq!(
            RateRule::parse("login", "30/60s").unwrap(),
            Some(RateRule {
                name: "login",
                burst: 30,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(
            RateRule::parse("x", " 20/15m ").unwrap().unwrap().period,
            Duration::from_secs(900)
        );
        assert_eq!(RateRule::parse("x", "OFF").unwrap(), None);
        for bad in [
            "", "30", "0/60s", "30/60", "30/60d", "x/1s", "30/0s", "5/9999h",
        ] {
            assert!(RateRule::parse("x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(RULE.emission_interval(), Duration::from_secs(20));
    }

    #[tokio::test]
    async fn memory_limiter_allows_the_burst_then_tells_when_to_retry() {
        let clock = ManualClock::starting_at(1_000_000);
        let limiter = MemoryRateLimiter::new(clock.shared());
        for _ in 0..3 {
            assert_eq!(limiter.check(&RULE, "ip:1").await, RateDecision::Allowed);
        }
        assert_eq!(
            limiter.check(&RULE, "ip:1").await,
            RateDecision::Limited {
                retry_after: Duration::from_secs(20)
            }
        );
        assert_eq!(
            limiter.check(&RULE, "ip:2").await,
            RateDecision::Allowed,
            "keys are separate"
        );
        clock.advance(Duration::from_secs(20));
        assert_eq!(limiter.check(&RULE, "ip:1").await, RateDecision::Allowed);
        assert!(!limiter.check(&RULE, "ip:1").await.is_allowed());
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(
                limiter.check(&RULE, "ip:1").await.is_allowed(),
                "full burst after a period"
            );
        }
    }

    #[tokio::test]
    async fn memory_limiter_forgets_idle_keys() {
        let clock = ManualClock::starting_at(0);
        let limiter = MemoryRateLimiter::new(clock.shared());
        for index in 0..SWEEP_EVERY - 1 {
            limiter.check(&RULE, &format!("k{index}")).await;
        }
        assert_eq!(limiter.tracked_keys(&RULE), (SWEEP_EVERY - 1) as usize);
        clock.advance(Duration::from_secs(3600));
        limiter.check(&RULE, "fresh").await;
        assert!(
            limiter.tracked_keys(&RULE) <= 1,
            "{}",
            limiter.tracked_keys(&RULE)
        );
    }

    #[test]
    fn long_or_odd_keys_are_hashed() {
        assert_eq!(bounded_key("ip:1.2.3.4"), "ip:1.2.3.4");
        assert!(bounded_key(&"x".repeat(200)).starts_with("h:"));
        assert!(bounded_key("acct:with space").starts_with("h:"));
    }
}
