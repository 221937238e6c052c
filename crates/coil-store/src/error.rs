//! The error type of the storage crate. Messages name the operation and never contain a
//! database password or a secret key.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while talking to the leaderboard database or the receipt key file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL or a setting is unusable; `problem` says which part and why.
    #[error("invalid leaderboard configuration: {problem}")]
    Config { problem: String },

    /// The directory that should hold the SQLite file could not be created.
    #[error("failed to create the database directory {path}")]
    DataDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A score entry was refused before it reached the database.
    #[error("invalid score entry: {field} {reason}")]
    InvalidEntry { field: &'static str, reason: String },

    /// Running the embedded migrations failed.
    #[error("failed to migrate the {backend} leaderboard schema")]
    Migration {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// The database returned an error for `operation`.
    #[error("leaderboard {operation} failed")]
    Database {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// `operation` did not finish within its deadline; the call was abandoned.
    #[error("leaderboard {operation} timed out after {after:?}")]
    Timeout {
        operation: &'static str,
        after: Duration,
    },

    /// The call was not sent: a call shortly before failed for lack of a database, and another
    /// call is already probing whether it is back. Answered at once, so an outage turns into
    /// quick errors instead of requests that each wait out the deadline.
    #[error("leaderboard {operation} failed fast: the database was unreachable moments ago")]
    Unavailable { operation: &'static str },

    /// A stored row holds a value the Rust types cannot represent (someone wrote to the table
    /// behind our back, since the schema's CHECK constraints forbid it).
    #[error("leaderboard row is corrupt: {reason}")]
    CorruptRow { reason: String },

    /// The receipt key file could not be read or written.
    #[error("receipt key file {path}: {action} failed")]
    KeyFile {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The receipt secret is unusable (too short).
    #[error("invalid receipt key: {reason}")]
    InvalidKey { reason: String },
}

impl StoreError {
    /// True for failures that say nothing about the entry and may pass on a retry: a timeout,
    /// an unreachable database, a connection lost mid-call. False for refusals that will repeat
    /// (an invalid entry, a constraint, a bad configuration).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Timeout { .. } | StoreError::Unavailable { .. } => true,
            StoreError::Database { source, .. } => database_unreachable(source),
            _ => false,
        }
    }
}

/// Errors meaning "no database answered", as opposed to the database refusing the statement.
pub(crate) fn database_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P (operator intervention: the server
        // is shutting down, restarting or not yet accepting connections).
        sqlx::Error::Database(database) => database
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}
