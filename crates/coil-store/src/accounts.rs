//! Accounts and everything stored about them: credentials (Argon2id PHC strings, guest device
//! secrets as SHA-256), sessions and their refresh-token families, roles and bans, on SQLite or
//! PostgreSQL through the same pool as the leaderboard.
//!
//! # What this module owns
//! The tables of `migrations/*/0002_create_accounts.sql` and every statement that reads or
//! writes them. Each operation that must be atomic (register, refresh rotation, a takeover, a
//! ban) is one transaction, and races are settled by the database (UNIQUE keys, conditional
//! `UPDATE … WHERE used_at IS NULL`), never by a read-then-write in Rust.
//!
//! # What it must not do
//! Hash a password, compute a confusable skeleton, sign a token or read the clock: the caller
//! (`coil-auth`, `coil-api`) passes hashes, name keys and `now_ms` in, so this module stays a
//! plain store that tests drive with any time they like. It never stores a secret in clear:
//! only hashes of refresh tokens and device secrets reach it. Every call runs under the
//! statement deadline.
//!
//! # Why the SQL is written once for two backends
//! The `with_pool!` macro expands one body for each backend's pool type, as `leaderboard.rs`
//! does by hand; both accept `$N` placeholders, `RETURNING` and `ON CONFLICT`. SQLite
//! transactions begin `IMMEDIATE` so a transaction that reads and then writes takes the write
//! lock up front instead of failing with `SQLITE_BUSY` when it tries to upgrade.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use rand::RngCore;
use rand::rngs::OsRng;

use crate::error::StoreError;
use crate::leaderboard::Pool;

macro_rules! with_pool {
    ($store:expr, |$pool:ident, $begin:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $begin = "BEGIN IMMEDIATE";
                $body
            }
            Pool::Postgres($pool) => {
                #[allow(unused_variables)]
                let $begin = "BEGIN";
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// Ends one session and deletes its refresh tokens inside an open transaction (a macro for
/// the same reason as `with_pool!`: one text, two backend types).
macro_rules! end_session_in {
    ($tx:expr, $session:expr, $reason:expr, $now_ms:expr) => {
        async {
            sqlx::query(
                "UPDATE sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL",
            )
            .bind($session)
            .bind($now_ms)
            .bind($reason.as_str())
            .execute(&mut *$tx)
            .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                .bind($session)
                .execute(&mut *$tx)
                .await?;
            Ok::<(), sqlx::Error>(())
        }
    };
}

/// Generates a 32-character lowercase hex id from 128 random bits.
fn random_hex_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A malformed id (not 32 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} id must be 32 lowercase hex characters")]
pub struct IdError {
    kind: &'static str,
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id (128 bits from the operating system).
            pub fn generate() -> $name {
                $name(random_hex_id())
            }

            /// Accepts exactly the form [`Self::generate`] produces.
            pub fn parse(text: &str) -> Result<$name, IdError> {
                if is_hex_id(text) {
                    Ok($name(text.to_owned()))
                } else {
                    Err(IdError { kind: $kind })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

hex_id!(
    /// An account: registered or guest. Random, so ids reveal neither order nor count.
    AccountId,
    "account"
);
hex_id!(
    /// A session, which is also its refresh-token family: every token rotated from one login
    /// shares it, and the access tokens of the session carry it (`sid`).
    SessionId,
    "session"
);

/// Registered accounts log in with a username and password; guests with a device secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    Guest,
    Registered,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Guest => "guest",
            AccountKind::Registered => "registered",
        }
    }

    fn parse(text: &str) -> Result<AccountKind, StoreError> {
        match text {
            "guest" => Ok(AccountKind::Guest),
            "registered" => Ok(AccountKind::Registered),
            other => Err(corrupt(format!("accounts.kind {other:?}"))),
        }
    }
}

/// What an account may do. Every account is a `Player`; `Admin` runs the platform; `Server`
/// is for community servers (a later issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Player,
    Admin,
    Server,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Player, Role::Admin, Role::Server];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Admin => "admin",
            Role::Server => "server",
        }
    }

    /// The stored and wire spelling: `player`, `admin` or `server`.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as the platform sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// `None` for a guest.
    pub username: Option<String>,
    pub display_name: String,
    pub kind: AccountKind,
    /// Sorted, always containing [`Role::Player`].
    pub roles: Vec<Role>,
    pub preferred_region: Option<String>,
    /// A new login ends the account's other sessions.
    pub single_session: bool,
    pub created_at_ms: i64,
}

/// A username prepared by the caller: the name as typed (already validated and trimmed), its
/// lower-cased form for lookups, and every key under which it must be unique (case-folded and
/// confusable skeletons). Two accounts never share a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameKeys {
    pub username: String,
    pub folded: String,
    pub keys: Vec<String>,
}

/// Where and how a session starts. `refresh_token_hash` is the SHA-256 (hex) of its first
/// refresh token; the token itself never reaches the store.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub refresh_token_hash: String,
    pub expires_at_ms: i64,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

/// A live session, for `GET /api/sessions` and token issuing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub account_id: AccountId,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
    pub expires_at_ms: i64,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

/// Why a session ended (stored in `sessions.end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEndReason {
    /// The player logged out of this session.
    Logout,
    /// The player ended it from the session list, or ended all sessions.
    Revoked,
    /// A new login of a single-session account.
    Takeover,
    /// The password changed; every other session ends.
    PasswordChanged,
    /// The account was banned.
    Banned,
    /// A refresh token of this family was presented after it had been rotated.
    RefreshReplayed,
}

impl SessionEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEndReason::Logout => "logout",
            SessionEndReason::Revoked => "revoked",
            SessionEndReason::Takeover => "takeover",
            SessionEndReason::PasswordChanged => "password_changed",
            SessionEndReason::Banned => "banned",
            SessionEndReason::RefreshReplayed => "refresh_replayed",
        }
    }
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub reason: String,
    pub banned_at_ms: i64,
    /// `None`: forever.
    pub until_ms: Option<i64>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now used, the new hash is current, the session extended.
    Rotated { account: Account, session: Session },
    /// The token had already been rotated: the whole family (session) was ended just now.
    Replayed {
        account_id: AccountId,
        session_id: SessionId,
    },
    /// The token was current but its session has ended or expired.
    SessionEnded,
    /// The token was current but the account is banned (the session was ended).
    Banned {
        account_id: AccountId,
        session_id: SessionId,
        ban: Ban,
    },
    /// No such token (never issued, or its session ended and its tokens were deleted).
    Unknown,
}

/// Errors of the account store: the expected refusals are their own variants.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account holds the username or one of its case/confusable keys.
    #[error("username is taken")]
    UsernameTaken,
    /// Only a guest can be upgraded.
    #[error("account is not a guest")]
    NotAGuest,
    #[error("no such account")]
    NoSuchAccount,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn corrupt(reason: String) -> StoreError {
    StoreError::CorruptRow { reason }
}

fn database(operation: &'static str) -> impl Fn(sqlx::Error) -> AccountError {
    move |source| AccountError::Store(StoreError::Database { operation, source })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(inner) if inner.is_unique_violation())
}

/// One row of `accounts` as read back.
type AccountRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    bool,
    i64,
);
type SessionRow = (
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

const ACCOUNT_COLUMNS: &str =
    "id, username, display_name, kind, preferred_region, single_session, created_at";
const SESSION_COLUMNS: &str =
    "id, account_id, created_at, last_used_at, expires_at, user_agent, client_ip";
const ACTIVE_BAN_SQL: &str = "SELECT reason, banned_at, until_at FROM bans \
     WHERE account_id = $1 AND lifted_at IS NULL AND (until_at IS NULL OR until_at > $2) \
     ORDER BY until_at IS NULL DESC, until_at DESC LIMIT 1";

fn session_from_row(row: SessionRow) -> Result<Session, StoreError> {
    let (id, account_id, created_at_ms, last_used_at_ms, expires_at_ms, user_agent, client_ip) =
        row;
    Ok(Session {
        id: SessionId::parse(&id).map_err(|_| corrupt(format!("sessions.id {id:?}")))?,
        account_id: AccountId::parse(&account_id)
            .map_err(|_| corrupt(format!("sessions.account_id {account_id:?}")))?,
        created_at_ms,
        last_used_at_ms,
        expires_at_ms,
        user_agent,
        client_ip,
    })
}

fn account_from_row(row: AccountRow, role_names: Vec<(String,)>) -> Result<Account, StoreError> {
    let (id, username, display_name, kind, preferred_region, single_session, created_at_ms) = row;
    let mut roles = vec![Role::Player];
    for (name,) in role_names {
        let role =
            Role::parse(&name).ok_or_else(|| corrupt(format!("account_roles.role {name:?}")))?;
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    Ok(Account {
        id: AccountId::parse(&id).map_err(|_| corrupt(format!("accounts.id {id:?}")))?,
        username,
        display_name,
        kind: AccountKind::parse(&kind)?,
        roles,
        preferred_region,
        single_session,
        created_at_ms,
    })
}

/// The account tables. Cheap to clone: clones share the pool. Built by
/// [`crate::Leaderboard::accounts`] (the same database and migrations) or [`AccountStore::connect`].
#[derive(Debug, Clone)]
pub struct AccountStore {
    pool: Pool,
    statement_timeout: Duration,
}

/// Sessions of one account listed at most (`GET /api/sessions`); older ones are still ended by
/// "end all".
pub const MAX_LISTED_SESSIONS: i64 = 100;

impl AccountStore {
    pub(crate) fn from_pool(pool: Pool, statement_timeout: Duration) -> AccountStore {
        AccountStore {
            pool,
            statement_timeout,
        }
    }

    /// Connects (SQLite or PostgreSQL, like [`crate::Leaderboard::connect`]) and runs the
    /// migrations.
    pub async fn connect(url: &str) -> Result<AccountStore, StoreError> {
        Ok(crate::Leaderboard::connect(url).await?.accounts())
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    async fn within_deadline<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, AccountError>>,
    ) -> Result<T, AccountError> {
        match tokio::time::timeout(self.statement_timeout, call).await {
            Ok(result) => result,
            Err(_elapsed) => Err(AccountError::Store(StoreError::Timeout {
                operation,
                after: self.statement_timeout,
            })),
        }
    }

    /// Creates a registered account with its password hash. Refused with
    /// [`AccountError::UsernameTaken`] when any of `name.keys` (or the folded name) is held.
    pub async fn create_registered(
        &self,
        name: &UsernameKeys,
        password_hash: &str,
        preferred_region: Option<&str>,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        let operation = "create account";
        let id = AccountId::generate();
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                let inserted = sqlx::query(
                    "INSERT INTO accounts (id, username, username_folded, display_name, kind, \
                     password_hash, preferred_region, single_session, created_at, updated_at) \
                     VALUES ($1, $2, $3, $2, 'registered', $4, $5, FALSE, $6, $6)",
                )
                .bind(id.as_str())
                .bind(&name.username)
                .bind(&name.folded)
                .bind(password_hash)
                .bind(preferred_region)
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(error) if is_unique_violation(&error) => {
                        return Err(AccountError::UsernameTaken);
                    }
                    other => other.map_err(database(operation))?,
                };
                for key in &name.keys {
                    let inserted = sqlx::query(
                        "INSERT INTO account_name_keys (name_key, account_id) VALUES ($1, $2) \
                         ON CONFLICT (name_key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    // Another key of this same name may equal this one; a key held by another
                    // account is the refusal.
                    if inserted.rows_affected() == 0 {
                        let (holder,): (String,) = sqlx::query_as(
                            "SELECT account_id FROM account_name_keys WHERE name_key = $1",
                        )
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(database(operation))?;
                        if holder != id.as_str() {
                            return Err(AccountError::UsernameTaken);
                        }
                    }
                }
                tx.commit().await.map_err(database(operation))?;
                Ok(())
            })
        })
        .await?;
        self.account(&id).await?.ok_or(AccountError::NoSuchAccount)
    }

    /// The guest account holding this device secret (by its SHA-256), created with
    /// `display_name` if there is none. Returns the account and whether it was created now.
    pub async fn guest_for_device(
        &self,
        secret_hash: &str,
        display_name: &str,
        preferred_region: Option<&str>,
        now_ms: i64,
    ) -> Result<(Account, bool), AccountError> {
        if let Some(account) = self.guest_by_secret(secret_hash).await? {
            return Ok((account, false));
        }
        let operation = "create guest account";
        let id = AccountId::generate();
        let created = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                    sqlx::query(
                        "INSERT INTO accounts (id, username, username_folded, display_name, kind, \
                         password_hash, preferred_region, single_session, created_at, updated_at) \
                         VALUES ($1, NULL, NULL, $2, 'guest', NULL, $3, FALSE, $4, $4)",
                    )
                    .bind(id.as_str())
                    .bind(display_name)
                    .bind(preferred_region)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    let inserted = sqlx::query(
                        "INSERT INTO guest_credentials (secret_hash, account_id, created_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (secret_hash) DO NOTHING",
                    )
                    .bind(secret_hash)
                    .bind(id.as_str())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    if inserted.rows_affected() == 0 {
                        // Two first calls with one secret raced; the other one's account wins
                        // and this transaction (with its account row) is rolled back.
                        return Ok(false);
                    }
                    tx.commit().await.map_err(database(operation))?;
                    Ok(true)
                })
            })
            .await?;
        if created {
            let account = self
                .account(&id)
                .await?
                .ok_or(AccountError::NoSuchAccount)?;
            return Ok((account, true));
        }
        let account = self
            .guest_by_secret(secret_hash)
            .await?
            .ok_or(AccountError::NoSuchAccount)?;
        Ok((account, false))
    }

    async fn guest_by_secret(&self, secret_hash: &str) -> Result<Option<Account>, AccountError> {
        let operation = "find guest";
        let row: Option<(String,)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT account_id FROM guest_credentials WHERE secret_hash = $1"
                )
                .bind(secret_hash)
                .fetch_optional(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        match row {
            None => Ok(None),
            Some((id,)) => {
                let id = AccountId::parse(&id)
                    .map_err(|_| corrupt(format!("guest_credentials.account_id {id:?}")))?;
                self.account(&id).await
            }
        }
    }

    /// One account with its roles.
    pub async fn account(&self, id: &AccountId) -> Result<Option<Account>, AccountError> {
        let operation = "read account";
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
        let found: Option<(AccountRow, Vec<(String,)>)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let row: Option<AccountRow> = sqlx::query_as(&sql)
                        .bind(id.as_str())
                        .fetch_optional(pool)
                        .await
                        .map_err(database(operation))?;
                    match row {
                        None => Ok(None),
                        Some(row) => {
                            let roles: Vec<(String,)> = sqlx::query_as(
                                "SELECT role FROM account_roles WHERE account_id = $1",
                            )
                            .bind(id.as_str())
                            .fetch_all(pool)
                            .await
                            .map_err(database(operation))?;
                            Ok(Some((row, roles)))
                        }
                    }
                })
            })
            .await?;
        found
            .map(|(row, roles)| account_from_row(row, roles).map_err(AccountError::from))
            .transpose()
    }

    /// A registered account and its password hash, by lower-cased username.
    pub async fn login_lookup(
        &self,
        folded_username: &str,
    ) -> Result<Option<(Account, String)>, AccountError> {
        let operation = "find account by username";
        let row: Option<(String, Option<String>)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT id, password_hash FROM accounts WHERE username_folded = $1"
                )
                .bind(folded_username)
                .fetch_optional(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        let Some((id, Some(hash))) = row else {
            return Ok(None);
        };
        let id = AccountId::parse(&id).map_err(|_| corrupt(format!("accounts.id {id:?}")))?;
        Ok(self.account(&id).await?.map(|account| (account, hash)))
    }

    /// An account by id or by username (case-insensitive), for the command line.
    pub async fn find(&self, id_or_username: &str) -> Result<Option<Account>, AccountError> {
        if let Ok(id) = AccountId::parse(id_or_username) {
            if let Some(account) = self.account(&id).await? {
                return Ok(Some(account));
            }
        }
        let operation = "find account";
        let folded = id_or_username.trim().to_ascii_lowercase();
        let row: Option<(String,)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT id FROM accounts WHERE username_folded = $1"
                )
                .bind(&folded)
                .fetch_optional(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        match row {
            None => Ok(None),
            Some((id,)) => {
                let id =
                    AccountId::parse(&id).map_err(|_| corrupt(format!("accounts.id {id:?}")))?;
                self.account(&id).await
            }
        }
    }

    /// The password hash of a registered account (`None` for a guest or an unknown id).
    pub async fn password_hash(&self, id: &AccountId) -> Result<Option<String>, AccountError> {
        let operation = "read password hash";
        let row: Option<(Option<String>,)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT password_hash FROM accounts WHERE id = $1"
                )
                .bind(id.as_str())
                .fetch_optional(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        Ok(row.and_then(|(hash,)| hash))
    }

    /// Turns a guest into a registered account: same id, same everything else; the device
    /// secret stops working (the password is the credential now).
    pub async fn upgrade_guest(
        &self,
        id: &AccountId,
        name: &UsernameKeys,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        let operation = "upgrade guest";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                let updated = sqlx::query(
                    "UPDATE accounts SET kind = 'registered', username = $2, username_folded = $3, \
                     display_name = $2, password_hash = $4, updated_at = $5 \
                     WHERE id = $1 AND kind = 'guest'",
                )
                .bind(id.as_str())
                .bind(&name.username)
                .bind(&name.folded)
                .bind(password_hash)
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                let updated = match updated {
                    Err(error) if is_unique_violation(&error) => {
                        return Err(AccountError::UsernameTaken);
                    }
                    other => other.map_err(database(operation))?,
                };
                if updated.rows_affected() == 0 {
                    let exists: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM accounts WHERE id = $1")
                            .bind(id.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(database(operation))?;
                    return Err(if exists.is_some() {
                        AccountError::NotAGuest
                    } else {
                        AccountError::NoSuchAccount
                    });
                }
                for key in &name.keys {
                    let inserted = sqlx::query(
                        "INSERT INTO account_name_keys (name_key, account_id) VALUES ($1, $2) \
                         ON CONFLICT (name_key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    if inserted.rows_affected() == 0 {
                        let (holder,): (String,) = sqlx::query_as(
                            "SELECT account_id FROM account_name_keys WHERE name_key = $1",
                        )
                        .bind(key)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(database(operation))?;
                        if holder != id.as_str() {
                            return Err(AccountError::UsernameTaken);
                        }
                    }
                }
                sqlx::query("DELETE FROM guest_credentials WHERE account_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                tx.commit().await.map_err(database(operation))?;
                Ok(())
            })
        })
        .await?;
        self.account(id).await?.ok_or(AccountError::NoSuchAccount)
    }

    /// Stores a new password hash and ends every other live session of the account (all of
    /// them when `keep` is `None`). Returns the sessions it ended.
    pub async fn change_password(
        &self,
        id: &AccountId,
        password_hash: &str,
        keep: Option<&SessionId>,
        now_ms: i64,
    ) -> Result<Vec<SessionId>, AccountError> {
        let operation = "change password";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                let updated = sqlx::query(
                    "UPDATE accounts SET password_hash = $2, updated_at = $3 \
                     WHERE id = $1 AND kind = 'registered'",
                )
                .bind(id.as_str())
                .bind(password_hash)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(database(operation))?;
                if updated.rows_affected() == 0 {
                    return Err(AccountError::NoSuchAccount);
                }
                let ended: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET ended_at = $2, end_reason = $3 \
                     WHERE account_id = $1 AND ended_at IS NULL AND id <> $4 RETURNING id",
                )
                .bind(id.as_str())
                .bind(now_ms)
                .bind(SessionEndReason::PasswordChanged.as_str())
                .bind(keep.map_or("", SessionId::as_str))
                .fetch_all(&mut *tx)
                .await
                .map_err(database(operation))?;
                let ended = parse_session_ids(ended)?;
                for session in &ended {
                    sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                        .bind(session.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(database(operation))?;
                }
                tx.commit().await.map_err(database(operation))?;
                Ok(ended)
            })
        })
        .await
    }

    /// Replaces a password hash without touching sessions (re-hashing with new Argon2
    /// parameters after a successful login).
    pub async fn rehash_password(
        &self,
        id: &AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> Result<bool, AccountError> {
        let operation = "rehash password";
        let done = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2"
                )
                .bind(id.as_str())
                .bind(old_hash)
                .bind(new_hash)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(database(operation)))
            })
            .await?;
        Ok(done == 1)
    }

    /// Turns single-session mode on or off for an account.
    pub async fn set_single_session(
        &self,
        id: &AccountId,
        enabled: bool,
        now_ms: i64,
    ) -> Result<(), AccountError> {
        let operation = "set single-session mode";
        let done = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "UPDATE accounts SET single_session = $2, updated_at = $3 WHERE id = $1"
                )
                .bind(id.as_str())
                .bind(enabled)
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(database(operation)))
            })
            .await?;
        if done == 0 {
            return Err(AccountError::NoSuchAccount);
        }
        Ok(())
    }

    /// Sets (or clears) the region the account's tokens name as preferred.
    pub async fn set_preferred_region(
        &self,
        id: &AccountId,
        region: Option<&str>,
        now_ms: i64,
    ) -> Result<(), AccountError> {
        let operation = "set preferred region";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| sqlx::query(
                "UPDATE accounts SET preferred_region = $2, updated_at = $3 WHERE id = $1"
            )
            .bind(id.as_str())
            .bind(region)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(database(operation)))
        })
        .await?;
        Ok(())
    }

    /// Starts a session (a new refresh-token family). When the account is in single-session
    /// mode, every other live session ends in the same transaction (reason `takeover`); those
    /// are returned so the caller can revoke them and tell the game nodes.
    pub async fn start_session(
        &self,
        account: &AccountId,
        new: &NewSession,
        now_ms: i64,
    ) -> Result<(Session, Vec<SessionId>), AccountError> {
        let operation = "start session";
        let id = SessionId::generate();
        let ended = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                    let single: Option<(bool,)> =
                        sqlx::query_as("SELECT single_session FROM accounts WHERE id = $1")
                            .bind(account.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(database(operation))?;
                    let Some((single,)) = single else {
                        return Err(AccountError::NoSuchAccount);
                    };
                    let mut ended = Vec::new();
                    if single {
                        let rows: Vec<(String,)> = sqlx::query_as(
                            "UPDATE sessions SET ended_at = $2, end_reason = $3 \
                             WHERE account_id = $1 AND ended_at IS NULL RETURNING id",
                        )
                        .bind(account.as_str())
                        .bind(now_ms)
                        .bind(SessionEndReason::Takeover.as_str())
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(database(operation))?;
                        ended = parse_session_ids(rows)?;
                        for session in &ended {
                            sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                                .bind(session.as_str())
                                .execute(&mut *tx)
                                .await
                                .map_err(database(operation))?;
                        }
                    }
                    sqlx::query(
                        "INSERT INTO sessions (id, account_id, created_at, last_used_at, \
                         expires_at, ended_at, end_reason, user_agent, client_ip) \
                         VALUES ($1, $2, $3, $3, $4, NULL, NULL, $5, $6)",
                    )
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .bind(now_ms)
                    .bind(new.expires_at_ms)
                    .bind(new.user_agent.as_deref())
                    .bind(new.client_ip.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, used_at) \
                         VALUES ($1, $2, $3, NULL)",
                    )
                    .bind(&new.refresh_token_hash)
                    .bind(id.as_str())
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    tx.commit().await.map_err(database(operation))?;
                    Ok(ended)
                })
            })
            .await?;
        let session = Session {
            id,
            account_id: account.clone(),
            created_at_ms: now_ms,
            last_used_at_ms: now_ms,
            expires_at_ms: new.expires_at_ms,
            user_agent: new.user_agent.clone(),
            client_ip: new.client_ip.clone(),
        };
        Ok((session, ended))
    }

    /// Presents a refresh token (by hash). If it is the family's current token it is used up,
    /// `new_hash` becomes current and the session's expiry moves to `new_expires_at_ms`. If it
    /// was already used, the family is ended ([`RefreshOutcome::Replayed`]): whoever holds
    /// the newer token (the real owner or a thief) must log in again.
    pub async fn rotate_refresh(
        &self,
        presented_hash: &str,
        new_hash: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<RefreshOutcome, AccountError> {
        let operation = "rotate refresh token";
        enum Step {
            Rotated(SessionRow),
            Replayed(String, String),
            SessionEnded,
            Banned(String, String, Ban),
            Unknown,
        }
        let step = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                    // Lock the family first (a no-op UPDATE of its session row takes the row
                    // lock on PostgreSQL; SQLite is already serialized by BEGIN IMMEDIATE).
                    // Every path that ends a session or touches its tokens updates the session
                    // row before the token rows, so concurrent presenters queue here in one
                    // order instead of deadlocking across the two tables.
                    sqlx::query(
                        "UPDATE sessions SET last_used_at = last_used_at WHERE id = \
                         (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)",
                    )
                    .bind(presented_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    // The conditional UPDATE is the race arbiter: of two requests presenting
                    // one token, exactly one sees `used_at IS NULL`.
                    let claimed: Option<(String,)> = sqlx::query_as(
                        "UPDATE refresh_tokens SET used_at = $2 \
                         WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id",
                    )
                    .bind(presented_hash)
                    .bind(now_ms)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    let step = match claimed {
                        None => {
                            let known: Option<(String, String)> = sqlx::query_as(
                                "SELECT s.id, s.account_id FROM refresh_tokens t \
                                 JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
                            )
                            .bind(presented_hash)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(database(operation))?;
                            match known {
                                None => Step::Unknown,
                                Some((session, account)) => {
                                    end_session_in!(
                                        tx,
                                        &session,
                                        SessionEndReason::RefreshReplayed,
                                        now_ms
                                    )
                                    .await
                                    .map_err(database(operation))?;
                                    Step::Replayed(session, account)
                                }
                            }
                        }
                        Some((session_id,)) => {
                            let sql = format!(
                                "SELECT {SESSION_COLUMNS} FROM sessions \
                                 WHERE id = $1 AND ended_at IS NULL AND expires_at > $2"
                            );
                            let session: Option<SessionRow> = sqlx::query_as(&sql)
                                .bind(&session_id)
                                .bind(now_ms)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(database(operation))?;
                            match session {
                                None => Step::SessionEnded,
                                Some(row) => {
                                    let ban: Option<(String, i64, Option<i64>)> =
                                        sqlx::query_as(ACTIVE_BAN_SQL)
                                            .bind(&row.1)
                                            .bind(now_ms)
                                            .fetch_optional(&mut *tx)
                                            .await
                                            .map_err(database(operation))?;
                                    if let Some((reason, banned_at_ms, until_ms)) = ban {
                                        end_session_in!(
                                            tx,
                                            &session_id,
                                            SessionEndReason::Banned,
                                            now_ms
                                        )
                                        .await
                                        .map_err(database(operation))?;
                                        Step::Banned(
                                            session_id,
                                            row.1,
                                            Ban {
                                                reason,
                                                banned_at_ms,
                                                until_ms,
                                            },
                                        )
                                    } else {
                                        sqlx::query(
                                            "INSERT INTO refresh_tokens \
                                             (token_hash, session_id, issued_at, used_at) \
                                             VALUES ($1, $2, $3, NULL)",
                                        )
                                        .bind(new_hash)
                                        .bind(&session_id)
                                        .bind(now_ms)
                                        .execute(&mut *tx)
                                        .await
                                        .map_err(database(operation))?;
                                        sqlx::query(
                                            "UPDATE sessions SET last_used_at = $2, expires_at = $3 \
                                             WHERE id = $1",
                                        )
                                        .bind(&session_id)
                                        .bind(now_ms)
                                        .bind(new_expires_at_ms)
                                        .execute(&mut *tx)
                                        .await
                                        .map_err(database(operation))?;
                                        let (id, account, created, _, _, agent, ip) = row;
                                        Step::Rotated((
                                            id,
                                            account,
                                            created,
                                            now_ms,
                                            new_expires_at_ms,
                                            agent,
                                            ip,
                                        ))
                                    }
                                }
                            }
                        }
                    };
                    tx.commit().await.map_err(database(operation))?;
                    Ok(step)
                })
            })
            .await?;
        let parse_ids =
            |session: &str, account: &str| -> Result<(SessionId, AccountId), StoreError> {
                Ok((
                    SessionId::parse(session)
                        .map_err(|_| corrupt(format!("sessions.id {session:?}")))?,
                    AccountId::parse(account)
                        .map_err(|_| corrupt(format!("sessions.account_id {account:?}")))?,
                ))
            };
        Ok(match step {
            Step::Unknown => RefreshOutcome::Unknown,
            Step::SessionEnded => RefreshOutcome::SessionEnded,
            Step::Replayed(session, account) => {
                let (session_id, account_id) = parse_ids(&session, &account)?;
                RefreshOutcome::Replayed {
                    account_id,
                    session_id,
                }
            }
            Step::Banned(session, account, ban) => {
                let (session_id, account_id) = parse_ids(&session, &account)?;
                RefreshOutcome::Banned {
                    account_id,
                    session_id,
                    ban,
                }
            }
            Step::Rotated(row) => {
                let session = session_from_row(row)?;
                let account = self
                    .account(&session.account_id)
                    .await?
                    .ok_or(AccountError::NoSuchAccount)?;
                RefreshOutcome::Rotated { account, session }
            }
        })
    }

    /// Makes `new_hash` the only current refresh token of a live session (the old ones count
    /// as used, so presenting one of them is a replay). Used when the server issues fresh
    /// tokens without a refresh (a guest upgrade). `false` if the session is not live.
    pub async fn replace_refresh(
        &self,
        session: &SessionId,
        new_hash: &str,
        now_ms: i64,
    ) -> Result<bool, AccountError> {
        let operation = "replace refresh token";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                // Updating the session row first takes its lock, in the same order as
                // `rotate_refresh` (session row, then token rows).
                let live: Option<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET last_used_at = $2 \
                     WHERE id = $1 AND ended_at IS NULL AND expires_at > $2 RETURNING id",
                )
                .bind(session.as_str())
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err(database(operation))?;
                if live.is_none() {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE session_id = $1 AND used_at IS NULL",
                )
                .bind(session.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(database(operation))?;
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, used_at) \
                     VALUES ($1, $2, $3, NULL)",
                )
                .bind(new_hash)
                .bind(session.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(database(operation))?;
                tx.commit().await.map_err(database(operation))?;
                Ok(true)
            })
        })
        .await
    }

    /// A live session (not ended, not expired at `now_ms`).
    pub async fn live_session(
        &self,
        id: &SessionId,
        now_ms: i64,
    ) -> Result<Option<Session>, AccountError> {
        let operation = "read session";
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE id = $1 AND ended_at IS NULL AND expires_at > $2"
        );
        let row: Option<SessionRow> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(&sql)
                    .bind(id.as_str())
                    .bind(now_ms)
                    .fetch_optional(pool)
                    .await
                    .map_err(database(operation)))
            })
            .await?;
        Ok(row.map(session_from_row).transpose()?)
    }

    /// The account's live sessions, newest first (at most [`MAX_LISTED_SESSIONS`]).
    pub async fn live_sessions(
        &self,
        account: &AccountId,
        now_ms: i64,
    ) -> Result<Vec<Session>, AccountError> {
        let operation = "list sessions";
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE account_id = $1 AND ended_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        let rows: Vec<SessionRow> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(&sql)
                    .bind(account.as_str())
                    .bind(now_ms)
                    .bind(MAX_LISTED_SESSIONS)
                    .fetch_all(pool)
                    .await
                    .map_err(database(operation)))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Ends one live session of `account`. `false` if it is not the account's or not live.
    pub async fn end_session(
        &self,
        account: &AccountId,
        session: &SessionId,
        reason: SessionEndReason,
        now_ms: i64,
    ) -> Result<bool, AccountError> {
        let operation = "end session";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                let ended = sqlx::query(
                    "UPDATE sessions SET ended_at = $3, end_reason = $4 \
                     WHERE id = $1 AND account_id = $2 AND ended_at IS NULL",
                )
                .bind(session.as_str())
                .bind(account.as_str())
                .bind(now_ms)
                .bind(reason.as_str())
                .execute(&mut *tx)
                .await
                .map_err(database(operation))?;
                sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                    .bind(session.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                tx.commit().await.map_err(database(operation))?;
                Ok(ended.rows_affected() == 1)
            })
        })
        .await
    }

    /// Ends the session a refresh token belongs to (logout with only the refresh token).
    pub async fn end_session_by_refresh(
        &self,
        token_hash: &str,
        reason: SessionEndReason,
        now_ms: i64,
    ) -> Result<Option<(AccountId, SessionId)>, AccountError> {
        let operation = "end session by refresh token";
        let found: Option<(String, String)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT s.account_id, s.id FROM refresh_tokens t \
                     JOIN sessions s ON s.id = t.session_id \
                     WHERE t.token_hash = $1 AND s.ended_at IS NULL"
                )
                .bind(token_hash)
                .fetch_optional(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        let Some((account, session)) = found else {
            return Ok(None);
        };
        let account = AccountId::parse(&account)
            .map_err(|_| corrupt(format!("sessions.account_id {account:?}")))?;
        let session =
            SessionId::parse(&session).map_err(|_| corrupt(format!("sessions.id {session:?}")))?;
        let ended = self.end_session(&account, &session, reason, now_ms).await?;
        Ok(ended.then_some((account, session)))
    }

    /// Ends every live session of the account except `keep`. Returns the sessions ended.
    pub async fn end_all_sessions(
        &self,
        account: &AccountId,
        reason: SessionEndReason,
        keep: Option<&SessionId>,
        now_ms: i64,
    ) -> Result<Vec<SessionId>, AccountError> {
        let operation = "end all sessions";
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                let rows: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET ended_at = $2, end_reason = $3 \
                     WHERE account_id = $1 AND ended_at IS NULL AND id <> $4 RETURNING id",
                )
                .bind(account.as_str())
                .bind(now_ms)
                .bind(reason.as_str())
                .bind(keep.map_or("", SessionId::as_str))
                .fetch_all(&mut *tx)
                .await
                .map_err(database(operation))?;
                let ended = parse_session_ids(rows)?;
                for session in &ended {
                    sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                        .bind(session.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(database(operation))?;
                }
                tx.commit().await.map_err(database(operation))?;
                Ok(ended)
            })
        })
        .await
    }

    /// Grants a role. `true` if the account did not have it. [`Role::Player`] is implicit
    /// and never stored.
    pub async fn grant_role(
        &self,
        account: &AccountId,
        role: Role,
        now_ms: i64,
    ) -> Result<bool, AccountError> {
        if role == Role::Player {
            return Ok(false);
        }
        let operation = "grant role";
        let result = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "INSERT INTO account_roles (account_id, role, granted_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id, role) DO NOTHING"
                )
                .bind(account.as_str())
                .bind(role.as_str())
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(|error| {
                    if matches!(&error, sqlx::Error::Database(inner) if inner.is_foreign_key_violation()) {
                        AccountError::NoSuchAccount
                    } else {
                        database(operation)(error)
                    }
                }))
            })
            .await?;
        Ok(result == 1)
    }

    /// Revokes a role. `true` if the account had it.
    pub async fn revoke_role(&self, account: &AccountId, role: Role) -> Result<bool, AccountError> {
        let operation = "revoke role";
        let result = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "DELETE FROM account_roles WHERE account_id = $1 AND role = $2"
                )
                .bind(account.as_str())
                .bind(role.as_str())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(database(operation)))
            })
            .await?;
        Ok(result == 1)
    }

    /// Bans an account (until `until_ms`, or forever) and ends every live session in the same
    /// transaction. Returns the ban and the sessions it ended.
    pub async fn ban(
        &self,
        account: &AccountId,
        reason: &str,
        until_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(Ban, Vec<SessionId>), AccountError> {
        let operation = "ban account";
        let reason: String = reason.trim().chars().take(500).collect();
        let reason = if reason.is_empty() {
            "no reason given".to_owned()
        } else {
            reason
        };
        let ended = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let mut tx = pool.begin_with(begin).await.map_err(database(operation))?;
                    let exists: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM accounts WHERE id = $1")
                            .bind(account.as_str())
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(database(operation))?;
                    if exists.is_none() {
                        return Err(AccountError::NoSuchAccount);
                    }
                    sqlx::query(
                        "INSERT INTO bans (account_id, reason, banned_at, until_at, lifted_at) \
                         VALUES ($1, $2, $3, $4, NULL)",
                    )
                    .bind(account.as_str())
                    .bind(&reason)
                    .bind(now_ms)
                    .bind(until_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    let rows: Vec<(String,)> = sqlx::query_as(
                        "UPDATE sessions SET ended_at = $2, end_reason = $3 \
                         WHERE account_id = $1 AND ended_at IS NULL RETURNING id",
                    )
                    .bind(account.as_str())
                    .bind(now_ms)
                    .bind(SessionEndReason::Banned.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(database(operation))?;
                    let ended = parse_session_ids(rows)?;
                    for session in &ended {
                        sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1")
                            .bind(session.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(database(operation))?;
                    }
                    tx.commit().await.map_err(database(operation))?;
                    Ok(ended)
                })
            })
            .await?;
        let ban = Ban {
            reason,
            banned_at_ms: now_ms,
            until_ms,
        };
        Ok((ban, ended))
    }

    /// Lifts every ban in force. Returns how many were lifted.
    pub async fn lift_bans(&self, account: &AccountId, now_ms: i64) -> Result<u64, AccountError> {
        let operation = "lift bans";
        let result = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "UPDATE bans SET lifted_at = $2 WHERE account_id = $1 AND lifted_at IS NULL \
                     AND (until_at IS NULL OR until_at > $2)"
                )
                .bind(account.as_str())
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(database(operation)))
            })
            .await?;
        Ok(result)
    }

    /// The ban in force at `now_ms` (the longest one, when there are several).
    pub async fn active_ban(
        &self,
        account: &AccountId,
        now_ms: i64,
    ) -> Result<Option<Ban>, AccountError> {
        let operation = "read ban";
        let row: Option<(String, i64, Option<i64>)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(ACTIVE_BAN_SQL)
                    .bind(account.as_str())
                    .bind(now_ms)
                    .fetch_optional(pool)
                    .await
                    .map_err(database(operation)))
            })
            .await?;
        Ok(row.map(|(reason, banned_at_ms, until_ms)| Ban {
            reason,
            banned_at_ms,
            until_ms,
        }))
    }

    /// Deletes what no request can reach any more: sessions that ended or expired before
    /// `before_ms`, with their refresh tokens. Returns the number of sessions deleted.
    pub async fn prune_sessions(&self, before_ms: i64) -> Result<u64, AccountError> {
        let operation = "prune sessions";
        let result = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query(
                    "DELETE FROM sessions WHERE (ended_at IS NOT NULL AND ended_at < $1) \
                     OR expires_at < $1"
                )
                .bind(before_ms)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(database(operation)))
            })
            .await?;
        Ok(result)
    }

    /// Refresh-token rows of a session (tests and operators: shows that ended families keep
    /// no tokens).
    pub async fn refresh_token_count(&self, session: &SessionId) -> Result<i64, AccountError> {
        let operation = "count refresh tokens";
        let (count,): (i64,) = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| sqlx::query_as(
                    "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1"
                )
                .bind(session.as_str())
                .fetch_one(pool)
                .await
                .map_err(database(operation)))
            })
            .await?;
        Ok(count)
    }
}

fn parse_session_ids(rows: Vec<(String,)>) -> Result<Vec<SessionId>, StoreError> {
    rows.into_iter()
        .map(|(id,)| SessionId::parse(&id).map_err(|_| corrupt(format!("sessions.id {id:?}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex_and_random() {
        let a = AccountId::generate();
        let b = AccountId::generate();
        assert_ne!(a, b);
        assert!(is_hex_id(a.as_str()));
        assert_eq!(AccountId::parse(a.as_str()), Ok(a.clone()));
        assert!(AccountId::parse(&a.as_str().to_uppercase()).is_err());
        assert!(AccountId::parse("").is_err());
        assert!(SessionId::parse(&"g".repeat(32)).is_err());
        assert!(SessionId::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
    }
}
