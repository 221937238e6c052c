//! The Redis directory's connection: one multiplexed connection, a supervisor task that
//! reconnects it with bounded backoff, a circuit breaker, and a bounded number of calls in
//! flight.
//!
//! # Why not redis-rs's `ConnectionManager`
//! `ConnectionManager` (redis 0.32) reconnects through `backon`'s `ExponentialBuilder`, and hands
//! its `factor` setting (default 100, documented as "a multiplicative factor applied to the
//! delay") to backon as the *growth* factor, on top of backon's 1 s minimum delay and 60 s
//! maximum, with jitter of up to 100%. A reconnect that starts while Redis is down therefore
//! tries once after 1–2 s and then sleeps 60–120 s before the next try; every command issued
//! meanwhile awaits that sleeping future (and times out). That is the 100–117 s a node stayed
//! off the directory after a Redis restart while the matchmaker, which happened to issue no
//! command during the outage, reconnected at once. A command that times out on a dead
//! socket (a host that vanished without a reset) is not a "connection dropped" error to it
//! either (`RetryMethod::RetryImmediately`), so such a connection is never replaced at all.
//!
//! # What this module does instead
//! - A call never waits for a connection: without one it fails at once
//!   ([`DirectoryError::Unavailable`]), and the supervisor, already reconnecting, retries every
//!   50 ms doubling to 1 s (jittered), so Redis is used again within about a second of its return.
//! - Every call has its own deadline (`command_timeout`); calls share one multiplexed
//!   connection, so a slow call never delays another.
//! - A connection that returns I/O errors, or whose calls time out `breaker_failures` times in a
//!   row, is replaced.
//! - After `breaker_failures` consecutive failures the breaker opens: calls fail at once for
//!   `breaker_cooldown`, then one probe call is let through; its success closes the breaker.
//! - At most `max_in_flight` calls wait on Redis at once; the rest fail at once.
//!
//! Must not: hold a lock across `.await`, retry a call (callers decide; every directory script
//! is safe to fail), or let any call wait longer than its deadline.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;

use crate::directory::DirectoryError;
use crate::metrics as m;

/// Connection and shedding settings of the Redis directory (part of
/// [`crate::RedisDirectoryConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisLinkSettings {
    /// Deadline of one connection attempt (TCP connect plus the setup round trip).
    pub connect_timeout: Duration,
    /// First delay between failed connection attempts; doubles up to `reconnect_max_delay`.
    pub reconnect_min_delay: Duration,
    /// Longest delay between connection attempts: the worst time from Redis returning to the
    /// directory using it again.
    pub reconnect_max_delay: Duration,
    /// Consecutive failed calls (timeouts or I/O errors) that open the breaker and replace the
    /// connection.
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before letting one probe through.
    pub breaker_cooldown: Duration,
    /// Calls allowed to wait on Redis at once; more fail at once.
    pub max_in_flight: usize,
    /// How often an idle connection is checked with a PING, so a lost one is replaced before
    /// the next request needs it (a matchmaker with no traffic during an outage).
    pub health_check_interval: Duration,
}

impl Default for RedisLinkSettings {
    fn default() -> RedisLinkSettings {
        RedisLinkSettings {
            connect_timeout: Duration::from_millis(500),
            reconnect_min_delay: Duration::from_millis(50),
            reconnect_max_delay: Duration::from_secs(1),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_millis(250),
            max_in_flight: 1024,
            health_check_interval: Duration::from_secs(1),
        }
    }
}

/// Whether calls may reach Redis. Pure: the caller passes the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe call is out; everyone else fails at once until it returns.
    Probing,
}

/// The circuit breaker's state machine.
#[derive(Debug)]
struct Breaker {
    gate: Gate,
    consecutive_failures: u32,
    failures_to_open: u32,
    cooldown: Duration,
}

/// What the breaker decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    Normal,
    Probe,
}

/// How a call that reached Redis ended, as far as the connection is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Redis answered (even with an error reply: the link works).
    Answered,
    /// No answer in time, or the connection failed.
    LinkFailed,
}

impl Breaker {
    fn new(failures_to_open: u32, cooldown: Duration) -> Breaker {
        Breaker {
            gate: Gate::Closed,
            consecutive_failures: 0,
            failures_to_open: failures_to_open.max(1),
            cooldown,
        }
    }

    fn admit(&mut self, now: Instant) -> Option<Admission> {
        match self.gate {
            Gate::Closed => Some(Admission::Normal),
            Gate::Open { until } if now >= until => {
                self.gate = Gate::Probing;
                Some(Admission::Probe)
            }
            Gate::Open { .. } | Gate::Probing => None,
        }
    }

    /// Records a finished call; returns true when the connection should be replaced.
    fn report(&mut self, admission: Admission, outcome: Outcome, now: Instant) -> bool {
        match outcome {
            Outcome::Answered => {
                self.consecutive_failures = 0;
                if admission == Admission::Probe || self.gate != Gate::Probing {
                    self.gate = Gate::Closed;
                }
                false
            }
            Outcome::LinkFailed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let open = admission == Admission::Probe
                    || self.consecutive_failures >= self.failures_to_open;
                if open {
                    self.gate = Gate::Open {
                        until: now + self.cooldown,
                    };
                }
                // Replace the connection exactly when the run of failures reaches the limit (a
                // probe failing on a connection already replaced changes nothing).
                self.consecutive_failures == self.failures_to_open
            }
        }
    }

    /// A fresh connection starts with a closed breaker.
    fn reset(&mut self) {
        self.gate = Gate::Closed;
        self.consecutive_failures = 0;
    }
}

struct LinkState {
    /// The connection and its generation (bumped on every new connection).
    connection: Option<(u64, MultiplexedConnection)>,
    breaker: Breaker,
    /// When the current outage began (for the "restored after" log line).
    down_since: Option<Instant>,
}

/// The shared connection of one [`crate::RedisDirectory`].
pub(crate) struct RedisLink {
    client: redis::Client,
    settings: RedisLinkSettings,
    command_timeout: Duration,
    state: Mutex<LinkState>,
    in_flight: Semaphore,
    /// Wakes the supervisor when the connection was dropped.
    lost: Notify,
    /// The generation of the connection in use; a change means "connected again".
    generation: watch::Sender<u64>,
}

/// Aborts the supervisor when the directory is dropped.
pub(crate) struct Supervisor(tokio::task::JoinHandle<()>);

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RedisLink {
    /// Starts the supervisor and waits (within `connect_timeout`) for the first connection.
    pub(crate) async fn connect(
        url: &str,
        command_timeout: Duration,
        settings: RedisLinkSettings,
    ) -> Result<(Arc<RedisLink>, Supervisor), DirectoryError> {
        let client = redis::Client::open(url).map_err(|source| DirectoryError::Store {
            operation: "connect",
            source,
        })?;
        // The first connection is made here, so a wrong URL or an unreachable Redis at start
        // is the caller's error, not a silent retry loop.
        let first = open_connection(&client, settings.connect_timeout).await?;
        let link = Arc::new(RedisLink {
            client,
            state: Mutex::new(LinkState {
                connection: None,
                breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
                down_since: None,
            }),
            in_flight: Semaphore::new(settings.max_in_flight.max(1)),
            settings,
            command_timeout,
            lost: Notify::new(),
            generation: watch::Sender::new(0),
        });
        link.install(first);
        let supervisor = Supervisor(tokio::spawn(supervise(link.clone())));
        Ok((link, supervisor))
    }

    /// Changes each time a new connection is in use: a subscriber may re-publish what a
    /// restarted (possibly empty) Redis lost.
    pub(crate) fn generations(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// True while a connection is in use (it may still turn out dead).
    pub(crate) fn is_connected(&self) -> bool {
        self.lock().connection.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn install(&self, connection: MultiplexedConnection) {
        let generation = *self.generation.borrow() + 1;
        let outage = {
            let mut state = self.lock();
            state.connection = Some((generation, connection));
            state.breaker.reset();
            state.down_since.take()
        };
        m::directory_store_up(true);
        if let Some(since) = outage {
            m::directory_reconnect();
            tracing::info!(
                down_ms = since.elapsed().as_millis() as u64,
                "directory store connection restored"
            );
        }
        self.generation.send_replace(generation);
    }

    /// Forgets `generation`'s connection (if still current) and wakes the supervisor.
    fn drop_connection(&self, generation: u64, why: &'static str) {
        let dropped = {
            let mut state = self.lock();
            if state
                .connection
                .as_ref()
                .is_some_and(|(current, _)| *current == generation)
            {
                state.connection = None;
                state.down_since.get_or_insert_with(Instant::now);
                true
            } else {
                false
            }
        };
        if dropped {
            m::directory_store_up(false);
            tracing::warn!(
                reason = why,
                "directory store connection lost; reconnecting"
            );
            self.lost.notify_one();
        }
    }

    /// Runs one call on the shared connection within the command deadline, or fails at once
    /// when there is no connection, the breaker is open or too many calls are in flight.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<T, DirectoryError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            m::directory_call_shed("overloaded");
            return Err(DirectoryError::Unavailable {
                operation,
                reason: "too many calls in flight",
            });
        };
        let now = Instant::now();
        let (generation, connection, admission) = {
            let mut state = self.lock();
            let Some((generation, connection)) = state.connection.clone() else {
                drop(state);
                m::directory_call_shed("not_connected");
                return Err(DirectoryError::Unavailable {
                    operation,
                    reason: "not connected",
                });
            };
            let Some(admission) = state.breaker.admit(now) else {
                drop(state);
                m::directory_call_shed("breaker_open");
                return Err(DirectoryError::Unavailable {
                    operation,
                    reason: "circuit open after repeated failures",
                });
            };
            (generation, connection, admission)
        };
        let result = tokio::time::timeout(self.command_timeout, call(connection)).await;
        let (outcome, fatal) = match &result {
            Ok(Ok(_)) => (Outcome::Answered, false),
            Ok(Err(error)) if link_failed(error) => {
                m::directory_call_failure("io");
                (Outcome::LinkFailed, !error.is_timeout())
            }
            Ok(Err(_)) => (Outcome::Answered, false),
            Err(_) => {
                m::directory_call_failure("timeout");
                (Outcome::LinkFailed, false)
            }
        };
        let replace = self
            .lock()
            .breaker
            .report(admission, outcome, Instant::now());
        if fatal {
            self.drop_connection(generation, "connection failed");
        } else if replace {
            // Calls keep timing out: a silent socket (the server host vanished, or Redis is
            // frozen) never reports an error, so a new connection is the only way to find out.
            self.drop_connection(generation, "calls keep timing out");
        }
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(DirectoryError::Store { operation, source }),
            Err(_) => Err(DirectoryError::Timeout { operation }),
        }
    }
}

/// I/O failures and server states that mean "this connection cannot serve calls now", as
/// opposed to an error reply about one call.
fn link_failed(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_unrecoverable_error()
        || matches!(error.kind(), redis::ErrorKind::BusyLoadingError)
}

async fn open_connection(
    client: &redis::Client,
    limit: Duration,
) -> Result<MultiplexedConnection, DirectoryError> {
    let config = AsyncConnectionConfig::new().set_connection_timeout(limit);
    match tokio::time::timeout(
        limit,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(source)) => Err(DirectoryError::Store {
            operation: "connect",
            source,
        }),
        Err(_) => Err(DirectoryError::Timeout {
            operation: "connect",
        }),
    }
}

/// The delay after `attempts` failed connection attempts in a row: `min × 2^attempts`, at most
/// `max`, jittered down by up to half so a fleet does not reconnect in lockstep.
fn reconnect_delay(settings: &RedisLinkSettings, attempts: u32, jitter: f64) -> Duration {
    let doubled = settings
        .reconnect_min_delay
        .saturating_mul(1u32.checked_shl(attempts.min(20)).unwrap_or(u32::MAX));
    let capped = doubled.min(settings.reconnect_max_delay);
    capped.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// Keeps a connection in place: checks it with a PING every `health_check_interval`, and once
/// it is lost reconnects with bounded backoff.
async fn supervise(link: Arc<RedisLink>) {
    let mut failed_attempts = 0u32;
    loop {
        if link.is_connected() {
            failed_attempts = 0;
            tokio::select! {
                _ = link.lost.notified() => {}
                _ = tokio::time::sleep(link.settings.health_check_interval) => {
                    // A failure is handled inside `call` (replace the connection, breaker).
                    let _ = link
                        .call("health check", |mut connection| async move {
                            redis::cmd("PING").query_async::<()>(&mut connection).await
                        })
                        .await;
                }
            }
            continue;
        }
        match open_connection(&link.client, link.settings.connect_timeout).await {
            Ok(connection) => link.install(connection),
            Err(error) => {
                if failed_attempts == 0 {
                    tracing::warn!(cause = %error, "directory store unreachable; retrying");
                }
                let delay = reconnect_delay(&link.settings, failed_attempts, rand::random());
                failed_attempts = failed_attempts.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_double_from_fifty_milliseconds_and_stop_at_one_second() {
        let settings = RedisLinkSettings::default();
        let delays: Vec<u128> = (0..8)
            .map(|attempt| reconnect_delay(&settings, attempt, 0.0).as_millis())
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(reconnect_delay(&settings, u32::MAX, 0.0).as_millis(), 1000);
        // Full jitter halves the delay, never more.
        assert_eq!(reconnect_delay(&settings, 5, 1.0).as_millis(), 500);
        assert_eq!(reconnect_delay(&settings, 5, 7.0).as_millis(), 500);
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_one_probe_closes_it() {
        let start = Instant::now();
        let cooldown = Duration::from_millis(250);
        let mut breaker = Breaker::new(3, cooldown);
        let failed = Outcome::LinkFailed;
        assert_eq!(breaker.admit(start), Some(Admission::Normal));
        assert!(!breaker.report(Admission::Normal, failed, start));
        assert!(!breaker.report(Admission::Normal, failed, start));
        // An answer in between resets the run.
        assert!(!breaker.report(Admission::Normal, Outcome::Answered, start));
        assert!(!breaker.report(Admission::Normal, failed, start));
        assert!(!breaker.report(Admission::Normal, failed, start));
        assert_eq!(breaker.admit(start), Some(Admission::Normal));
        // The third failure in a row opens it and asks for a new connection.
        assert!(breaker.report(Admission::Normal, failed, start));
        assert_eq!(breaker.admit(start), None);
        assert_eq!(breaker.admit(start + cooldown / 2), None);
        // After the cooldown exactly one probe goes through.
        let later = start + cooldown;
        assert_eq!(breaker.admit(later), Some(Admission::Probe));
        assert_eq!(breaker.admit(later), None);
        // A failed probe opens it again (without asking for yet another connection).
        assert!(!breaker.report(Admission::Probe, failed, later));
        assert_eq!(breaker.admit(later), None);
        let again = later + cooldown;
        assert_eq!(breaker.admit(again), Some(Admission::Probe));
        // A late answer to a call admitted before the breaker opened does not close it while
        // the probe is out; the probe's answer does.
        assert!(!breaker.report(Admission::Normal, Outcome::Answered, again));
        assert_eq!(breaker.admit(again), None);
        assert!(!breaker.report(Admission::Probe, Outcome::Answered, again));
        assert_eq!(breaker.admit(again), Some(Admission::Normal));
    }

    #[test]
    fn a_fresh_connection_closes_the_breaker() {
        let start = Instant::now();
        let mut breaker = Breaker::new(1, Duration::from_secs(60));
        assert!(breaker.report(Admission::Normal, Outcome::LinkFailed, start));
        assert_eq!(breaker.admit(start), None);
        breaker.reset();
        assert_eq!(breaker.admit(start), Some(Admission::Normal));
    }
}
