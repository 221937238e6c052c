//! The `scores` table: connecting (SQLite or PostgreSQL), embedded migrations, recording a
//! finished run, and reading the top N.
//!
//! # Why two typed pools behind an enum, not `sqlx::Any`
//! Each backend needs settings the `Any` driver cannot express: SQLite needs `create_if_missing`,
//! WAL and a busy timeout; PostgreSQL needs its own pool and (in tests and shared clusters) a
//! `search_path`. `Any` would also make every value round-trip through its lowest-common-
//! denominator type system and requires installing drivers at runtime. The enum costs one
//! `match` per query; the SQL text itself is a single constant shared by both arms (both
//! backends accept `$N` placeholders and `ON CONFLICT … DO NOTHING`), so the two stores cannot
//! drift apart. Only the migrations differ (`migrations/sqlite`, `migrations/postgres`), because
//! the DDL for identity columns and integer widths differs.
//!
//! # When the database is down
//! A call that finds no database (connection refused or lost, pool timeout, server shutting
//! down) fails, and so does every call in the next `fail_fast_for` at once
//! ([`StoreError::Unavailable`]); after that one call at a time probes until the database
//! answers. An outage then costs requests a quick 503, not a deadline each. Nothing here
//! retries: the node's score writer (`coil-server/src/scores.rs`) queues and retries rows.
//!
//! # What this module must not do
//! Accept a score from anywhere but the game server's own bookkeeping, or wait on the database
//! without a deadline: every call below is wrapped in [`tokio::time::timeout`].

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{StoreError, database_unreachable};
use crate::name::validate_player_name;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// One statement for both backends. `ON CONFLICT (run_id) DO NOTHING` makes recording
/// idempotent without a read-then-write race: the UNIQUE index decides, and `rows_affected`
/// tells us which call won.
const INSERT_SCORE_SQL: &str = "INSERT INTO scores (run_id, name, score, room, recorded_at, account_id) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING";

/// Matches `scores_top_idx` column for column so the database reads the index in order and stops
/// after `LIMIT` rows. `id DESC` breaks exact ties (same score, same millisecond) in favour of
/// the row inserted last, so the order is total and "newest first" holds even then.
const SELECT_TOP_SQL: &str = "SELECT name, score, room, recorded_at FROM scores \
     ORDER BY score DESC, recorded_at DESC, id DESC LIMIT $1";

/// Longest accepted `run_id`, in characters (matches the schema's CHECK constraint).
const MAX_RUN_ID_CHARS: usize = 128;
/// Longest accepted `room`, in characters (matches the schema's CHECK constraint).
const MAX_ROOM_CHARS: usize = 64;
/// `top` never returns more than this many rows, whatever the caller asks for.
const MAX_TOP_LIMIT: u32 = 100;

/// Tunables for [`Leaderboard::connect_with`]. [`Default`] is what [`Leaderboard::connect`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderboardSettings {
    /// Deadline for each SQL call, including waiting for a pooled connection. SQLite's busy
    /// timeout is set to 3/4 of it, so a writer waiting on a lock gives up before the call is
    /// abandoned. Must be > 0.
    pub statement_timeout: Duration,
    /// Deadline for opening the first connection and running the migrations. Must be > 0.
    pub connect_timeout: Duration,
    /// Largest number of pooled connections. Must be ≥ 1.
    pub max_connections: u32,
    /// Longest wait for a pooled connection, connecting included; at most `statement_timeout`.
    /// With the database down, a call fails after this long (and the next ones at once), not
    /// after the whole statement deadline.
    pub acquire_timeout: Duration,
    /// After a call found no database, how long further calls fail at once before one probes.
    pub fail_fast_for: Duration,
}

impl Default for LeaderboardSettings {
    fn default() -> Self {
        LeaderboardSettings {
            statement_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(1),
            fail_fast_for: Duration::from_secs(1),
        }
    }
}

/// A finished run, as the game server saw it. Never built from a client's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreEntry {
    /// Unique per run (per snake life); recording the same run twice stores it once.
    pub run_id: String,
    pub name: String,
    pub score: u32,
    pub room: String,
    /// Unix time in milliseconds when the run ended.
    pub recorded_at_ms: i64,
}

/// One leaderboard line, as served to clients (JSON: `name`, `score`, `room`, `recordedAtMs`).
/// `Deserialize` is there for HTTP clients and tests that read the served list back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreRow {
    pub name: String,
    pub score: u32,
    pub room: String,
    pub recorded_at_ms: i64,
}

/// What [`Leaderboard::record`] (or [`crate::MatchStore::record`]) did. Both are success: a
/// retried record is an expected event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// This call stored the run.
    Inserted,
    /// A run with this `run_id` was already stored; the stored row was left unchanged, even if
    /// this entry's other fields differ.
    AlreadyRecorded,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The leaderboard, backed by SQLite or PostgreSQL. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct Leaderboard {
    pool: Pool,
    statement_timeout: Duration,
    availability: Arc<Availability>,
}

/// Whether the database answered lately: a small circuit breaker shared by every clone.
#[derive(Debug)]
struct Availability {
    epoch: Instant,
    /// Calls fail at once until this many milliseconds after `epoch` (0: the database is up).
    failing_until_ms: AtomicU64,
    /// One call is finding out whether the database is back.
    probing: AtomicBool,
    fail_fast_for: Duration,
}

/// A call let through while the database was failing; ends the probe however the call ends
/// (even if its future is dropped).
struct Probe<'a>(Option<&'a Availability>);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if let Some(availability) = self.0 {
            availability.probing.store(false, Ordering::Release);
        }
    }
}

impl Availability {
    fn new(fail_fast_for: Duration) -> Availability {
        Availability {
            epoch: Instant::now(),
            failing_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            fail_fast_for,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// `None`: fail at once. Otherwise the call may go, as a probe if the database was failing.
    fn admit(&self) -> Option<Probe<'_>> {
        self.admit_at(self.now_ms())
    }

    fn admit_at(&self, now_ms: u64) -> Option<Probe<'_>> {
        let until = self.failing_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Some(Probe(None));
        }
        if now_ms < until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Probe(Some(self)))
    }

    fn answered(&self) {
        self.failing_until_ms.store(0, Ordering::Release);
    }

    fn unreachable(&self) {
        self.unreachable_at(self.now_ms());
    }

    /// Failing until `fail_fast_for` after `now_ms` (never 0, which means "up").
    fn unreachable_at(&self, now_ms: u64) {
        let until = now_ms
            .saturating_add(u64::try_from(self.fail_fast_for.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        self.failing_until_ms.store(until, Ordering::Release);
    }
}

/// The database when `DATABASE_URL` is unset: SQLite inside the data directory
/// (`sqlite://<data_dir>/leaderboard.db`), so one `DATA_DIR` holds all of a node's state and
/// `coil admin` finds the same file `coil serve` made.
pub fn default_database_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("leaderboard.db").display())
}

impl Leaderboard {
    /// Connects with [`LeaderboardSettings::default`] and runs the migrations.
    ///
    /// `postgres://…` and `postgresql://…` select PostgreSQL; `sqlite:…` (for example
    /// `sqlite://data/leaderboard.db`, relative to the working directory) selects SQLite, creating
    /// the file and its parent directory if needed. Anything else is [`StoreError::Config`].
    pub async fn connect(url: &str) -> Result<Leaderboard, StoreError> {
        Leaderboard::connect_with(url, LeaderboardSettings::default()).await
    }

    /// Like [`Leaderboard::connect`], with explicit timeouts and pool size.
    pub async fn connect_with(
        url: &str,
        settings: LeaderboardSettings,
    ) -> Result<Leaderboard, StoreError> {
        validate_settings(&settings)?;
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(connect_postgres(url, &settings).await?)
        } else if url.starts_with("sqlite:") {
            Pool::Sqlite(connect_sqlite(url, &settings).await?)
        } else {
            return Err(StoreError::Config {
                problem: format!(
                    "database url scheme {:?} is not supported; expected sqlite://, postgres:// or postgresql://",
                    url_scheme(url)
                ),
            });
        };
        let leaderboard = Leaderboard {
            pool,
            statement_timeout: settings.statement_timeout,
            availability: Arc::new(Availability::new(settings.fail_fast_for)),
        };
        leaderboard.run_migrations(settings.connect_timeout).await?;
        tracing::info!(backend = leaderboard.backend(), "leaderboard store ready");
        Ok(leaderboard)
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Stores a finished run once. After [`StoreError::Timeout`] the write may or may not have
    /// happened (the database can finish a statement the caller stopped waiting for); retrying
    /// with the same `run_id` is always safe and stores the run at most once. The name is validated with [`validate_player_name`] and
    /// stored trimmed; `run_id` must be 1..=128 printable ASCII characters, `room` 1..=64
    /// characters without control characters, and `recorded_at_ms` ≥ 0.
    pub async fn record(&self, entry: &ScoreEntry) -> Result<Recorded, StoreError> {
        self.record_for_account(entry, None).await
    }

    /// Like [`Leaderboard::record`], and the row carries the player's account (the join token's
    /// account id) when there is one; `None` is an anonymous arena player.
    pub async fn record_for_account(
        &self,
        entry: &ScoreEntry,
        account: Option<&crate::AccountId>,
    ) -> Result<Recorded, StoreError> {
        let account_id = account.map(crate::AccountId::as_str);
        let name = validate_entry(entry)?;
        let score = i64::from(entry.score);
        let operation = "record score";
        let rows_affected = match &self.pool {
            Pool::Sqlite(pool) => {
                let query = sqlx::query(INSERT_SCORE_SQL)
                    .bind(&entry.run_id)
                    .bind(&name)
                    .bind(score)
                    .bind(&entry.room)
                    .bind(entry.recorded_at_ms)
                    .bind(account_id);
                self.within_deadline(operation, query.execute(pool))
                    .await?
                    .rows_affected()
            }
            Pool::Postgres(pool) => {
                let query = sqlx::query(INSERT_SCORE_SQL)
                    .bind(&entry.run_id)
                    .bind(&name)
                    .bind(score)
                    .bind(&entry.room)
                    .bind(entry.recorded_at_ms)
                    .bind(account_id);
                self.within_deadline(operation, query.execute(pool))
                    .await?
                    .rows_affected()
            }
        };
        Ok(if rows_affected == 0 {
            Recorded::AlreadyRecorded
        } else {
            Recorded::Inserted
        })
    }

    /// The best `limit` runs: highest score first, newest first among equal scores. `limit` is
    /// clamped to 1..=100.
    pub async fn top(&self, limit: u32) -> Result<Vec<ScoreRow>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_TOP_LIMIT));
        let operation = "read top scores";
        let rows: Vec<(String, i64, String, i64)> = match &self.pool {
            Pool::Sqlite(pool) => {
                let query = sqlx::query_as(SELECT_TOP_SQL).bind(limit);
                self.within_deadline(operation, query.fetch_all(pool))
                    .await?
            }
            Pool::Postgres(pool) => {
                let query = sqlx::query_as(SELECT_TOP_SQL).bind(limit);
                self.within_deadline(operation, query.fetch_all(pool))
                    .await?
            }
        };
        rows.into_iter()
            .map(|(name, score, room, recorded_at_ms)| {
                let score = u32::try_from(score).map_err(|_| StoreError::CorruptRow {
                    reason: format!("score {score} does not fit in u32"),
                })?;
                Ok(ScoreRow {
                    name,
                    score,
                    room,
                    recorded_at_ms,
                })
            })
            .collect()
    }

    /// The account tables of the same database, sharing this pool (the migrations that made the
    /// leaderboard also made them).
    pub fn accounts(&self) -> crate::AccountStore {
        crate::AccountStore::from_pool(self.pool.clone(), self.statement_timeout)
    }

    /// The match tables of the same database, sharing this pool.
    pub fn matches(&self) -> crate::MatchStore {
        crate::MatchStore::from_pool(self.pool.clone(), self.statement_timeout)
    }

    /// The account of a stored run (`None` for anonymous play or an unknown run id).
    pub async fn account_of_run(
        &self,
        run_id: &str,
    ) -> Result<Option<crate::AccountId>, StoreError> {
        let operation = "read the account of a run";
        let sql = "SELECT account_id FROM scores WHERE run_id = $1";
        let row: Option<(Option<String>,)> = match &self.pool {
            Pool::Sqlite(pool) => {
                self.within_deadline(
                    operation,
                    sqlx::query_as(sql).bind(run_id).fetch_optional(pool),
                )
                .await?
            }
            Pool::Postgres(pool) => {
                self.within_deadline(
                    operation,
                    sqlx::query_as(sql).bind(run_id).fetch_optional(pool),
                )
                .await?
            }
        };
        row.and_then(|(account,)| account)
            .map(|text| {
                crate::AccountId::parse(&text).map_err(|_| StoreError::CorruptRow {
                    reason: format!("scores.account_id {text:?} is not an account id"),
                })
            })
            .transpose()
    }

    /// Closes every pooled connection, waiting for calls in flight. Part of the shutdown path;
    /// calls made afterwards fail with [`StoreError::Database`].
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    async fn run_migrations(&self, deadline: Duration) -> Result<(), StoreError> {
        let backend = self.backend();
        let migration = async {
            match &self.pool {
                Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
                Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
            }
        };
        match tokio::time::timeout(deadline, migration).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(StoreError::Migration { backend, source }),
            Err(_elapsed) => Err(StoreError::Timeout {
                operation: "run migrations",
                after: deadline,
            }),
        }
    }

    /// True unless a recent call found no database (calls fail fast until one probe succeeds).
    pub fn is_available(&self) -> bool {
        self.availability.failing_until_ms.load(Ordering::Acquire) == 0
    }

    async fn within_deadline<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let Some(_probe) = self.availability.admit() else {
            return Err(StoreError::Unavailable { operation });
        };
        match tokio::time::timeout(self.statement_timeout, call).await {
            Ok(Ok(value)) => {
                self.availability.answered();
                Ok(value)
            }
            Ok(Err(source)) => {
                if database_unreachable(&source) {
                    self.availability.unreachable();
                } else {
                    self.availability.answered();
                }
                Err(StoreError::Database { operation, source })
            }
            // A statement past its deadline is a slow database (a lock, a long query), not a
            // missing one: a missing database shows as a pool timeout, well before this.
            Err(_elapsed) => Err(StoreError::Timeout {
                operation,
                after: self.statement_timeout,
            }),
        }
    }
}

fn validate_settings(settings: &LeaderboardSettings) -> Result<(), StoreError> {
    let problem = if settings.statement_timeout.is_zero() {
        "statement_timeout must be greater than zero"
    } else if settings.connect_timeout.is_zero() {
        "connect_timeout must be greater than zero"
    } else if settings.max_connections == 0 {
        "max_connections must be at least 1"
    } else if settings.acquire_timeout.is_zero() {
        "acquire_timeout must be greater than zero"
    } else if settings.fail_fast_for > settings.statement_timeout * 10 {
        "fail_fast_for must be at most ten statement timeouts"
    } else {
        return Ok(());
    };
    Err(StoreError::Config {
        problem: problem.to_owned(),
    })
}

/// The scheme part of a URL, for error messages. Only the scheme is echoed, because the rest of
/// a database URL may hold a password.
fn url_scheme(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) if !scheme.is_empty() => scheme.chars().take(32).collect(),
        _ => "(none)".to_owned(),
    }
}

async fn connect_sqlite(
    url: &str,
    settings: &LeaderboardSettings,
) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::Config {
            problem: format!("sqlite url is invalid: {error}"),
        })?
        .create_if_missing(true)
        // WAL lets readers (`top`) proceed while a writer (`record`) holds the lock, and NORMAL
        // sync is durable against process crashes in WAL mode (only an OS crash can lose the
        // last commits), which is the right trade for a game leaderboard.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        // SQLite's own lock wait ends a little before our deadline, so a call blocked on a lock
        // usually fails cleanly (SQLITE_BUSY, nothing written) instead of being abandoned by the
        // timeout while the statement may still complete on sqlx's worker thread.
        .busy_timeout(settings.statement_timeout.mul_f64(0.75));

    if !is_in_memory_sqlite(url, options.get_filename()) {
        create_parent_directory(options.get_filename()).await?;
    }

    let connecting = SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout.min(settings.statement_timeout))
        .connect_with(options);
    match tokio::time::timeout(settings.connect_timeout, connecting).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(source)) => Err(StoreError::Database {
            operation: "open sqlite database",
            source,
        }),
        Err(_elapsed) => Err(StoreError::Timeout {
            operation: "open sqlite database",
            after: settings.connect_timeout,
        }),
    }
}

fn is_in_memory_sqlite(url: &str, filename: &Path) -> bool {
    // sqlx rewrites `sqlite::memory:` to a shared-cache URI named `file:sqlx-in-memory-N`;
    // `mode=memory` is the SQLite URI spelling of the same thing. Neither has a directory.
    url.contains("mode=memory")
        || filename
            .to_str()
            .is_some_and(|name| name == ":memory:" || name.starts_with("file:sqlx-in-memory-"))
}

async fn create_parent_directory(database_file: &Path) -> Result<(), StoreError> {
    let Some(parent) = database_file.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|source| StoreError::DataDirectory {
            path: parent.to_path_buf(),
            source,
        })
}

async fn connect_postgres(url: &str, settings: &LeaderboardSettings) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|error| StoreError::Config {
        problem: format!("postgres url is invalid: {error}"),
    })?;
    let connecting = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout.min(settings.statement_timeout))
        .connect_with(options);
    match tokio::time::timeout(settings.connect_timeout, connecting).await {
        Ok(Ok(pool)) => Ok(pool),
        Ok(Err(source)) => Err(StoreError::Database {
            operation: "connect to postgres",
            source,
        }),
        Err(_elapsed) => Err(StoreError::Timeout {
            operation: "connect to postgres",
            after: settings.connect_timeout,
        }),
    }
}

/// Checks every field against the schema's rules before any SQL runs, so a bad entry is a
/// clear [`StoreError::InvalidEntry`] instead of a backend-specific constraint error. Returns
/// the trimmed name to store.
fn validate_entry(entry: &ScoreEntry) -> Result<String, StoreError> {
    let name = validate_player_name(&entry.name).map_err(|error| StoreError::InvalidEntry {
        field: "name",
        reason: error.to_string(),
    })?;
    let run_id_length = entry.run_id.chars().count();
    if run_id_length == 0 || run_id_length > MAX_RUN_ID_CHARS {
        return Err(StoreError::InvalidEntry {
            field: "run_id",
            reason: format!("must be 1 to {MAX_RUN_ID_CHARS} characters, got {run_id_length}"),
        });
    }
    if !entry
        .run_id
        .chars()
        .all(|character| character.is_ascii_graphic())
    {
        return Err(StoreError::InvalidEntry {
            field: "run_id",
            reason: "must be printable ASCII without spaces".to_owned(),
        });
    }
    let room_length = entry.room.chars().count();
    if room_length == 0 || room_length > MAX_ROOM_CHARS {
        return Err(StoreError::InvalidEntry {
            field: "room",
            reason: format!("must be 1 to {MAX_ROOM_CHARS} characters, got {room_length}"),
        });
    }
    if entry.room.chars().any(char::is_control) {
        return Err(StoreError::InvalidEntry {
            field: "room",
            reason: "must not contain control characters".to_owned(),
        });
    }
    if entry.recorded_at_ms < 0 {
        return Err(StoreError::InvalidEntry {
            field: "recorded_at_ms",
            reason: format!("must not be negative, got {}", entry.recorded_at_ms),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ScoreEntry {
        ScoreEntry {
            run_id: "run-1".to_owned(),
            name: "ada".to_owned(),
            score: 10,
            room: "room-a".to_owned(),
            recorded_at_ms: 1,
        }
    }

    #[test]
    fn url_scheme_never_echoes_credentials() {
        assert_eq!(url_scheme("mysql://root:hunter2@db/x"), "mysql");
        assert_eq!(url_scheme("data/leaderboard.db"), "(none)");
        assert_eq!(url_scheme(""), "(none)");
    }

    #[test]
    fn entries_are_checked_field_by_field() {
        assert_eq!(validate_entry(&entry()).unwrap(), "ada");
        let cases = [
            (
                "run_id",
                ScoreEntry {
                    run_id: String::new(),
                    ..entry()
                },
            ),
            (
                "run_id",
                ScoreEntry {
                    run_id: "r".repeat(129),
                    ..entry()
                },
            ),
            (
                "run_id",
                ScoreEntry {
                    run_id: "has space".to_owned(),
                    ..entry()
                },
            ),
            (
                "name",
                ScoreEntry {
                    name: "Zo\u{200b}ë".to_owned(),
                    ..entry()
                },
            ),
            (
                "room",
                ScoreEntry {
                    room: String::new(),
                    ..entry()
                },
            ),
            (
                "room",
                ScoreEntry {
                    room: "x".repeat(65),
                    ..entry()
                },
            ),
            (
                "room",
                ScoreEntry {
                    room: "a\nb".to_owned(),
                    ..entry()
                },
            ),
            (
                "recorded_at_ms",
                ScoreEntry {
                    recorded_at_ms: -1,
                    ..entry()
                },
            ),
        ];
        for (expected_field, bad) in cases {
            match validate_entry(&bad) {
                Err(StoreError::InvalidEntry { field, .. }) => {
                    assert_eq!(field, expected_field, "{bad:?}");
                }
                other => panic!("{bad:?} should be refused on {expected_field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn after_an_unreachable_database_calls_fail_fast_then_one_probe_goes_through() {
        let availability = Availability::new(Duration::from_millis(1000));
        assert!(
            availability
                .admit_at(10)
                .is_some_and(|probe| probe.0.is_none())
        );
        availability.unreachable_at(10);
        assert!(availability.admit_at(10).is_none());
        assert!(availability.admit_at(1009).is_none());
        // After the window the next call is the probe, and only it.
        let probe = availability.admit_at(1010).expect("a probe");
        assert!(probe.0.is_some());
        assert!(availability.admit_at(1010).is_none());
        // A probe whose call was dropped (cancelled) ends the probe all the same.
        drop(probe);
        let probe = availability.admit_at(1011).expect("a new probe");
        availability.answered();
        drop(probe);
        assert!(
            availability
                .admit_at(1012)
                .is_some_and(|probe| probe.0.is_none())
        );
        // "Failing until 0" would read as "up": the earliest instant still fails.
        availability.unreachable_at(0);
        assert!(availability.admit_at(0).is_none());
    }

    #[test]
    fn settings_must_be_usable() {
        assert!(validate_settings(&LeaderboardSettings::default()).is_ok());
        let zero_timeout = LeaderboardSettings {
            statement_timeout: Duration::ZERO,
            ..LeaderboardSettings::default()
        };
        assert!(matches!(
            validate_settings(&zero_timeout),
            Err(StoreError::Config { .. })
        ));
        let no_connections = LeaderboardSettings {
            max_connections: 0,
            ..LeaderboardSettings::default()
        };
        assert!(matches!(
            validate_settings(&no_connections),
            Err(StoreError::Config { .. })
        ));
    }
}
