//! Coil's leaderboard storage and signed score receipts.
//!
//! # What this crate owns
//! - [`Leaderboard`]: the `scores` table on SQLite (all-in-one shape, `sqlite://data/leaderboard.db`)
//!   or PostgreSQL (fleet shape, `postgres://…`), its embedded migrations, and the two queries the
//!   game needs: record a finished run idempotently, and read the top N.
//! - [`validate_player_name`]: the one rule for what a display name may contain.
//! - [`ReceiptKey`]: HMAC-SHA256 receipts that let the server hand a player proof of a score
//!   it recorded, and later check that proof without a database round trip.
//!
//! - [`MatchStore`]: finished matches and each seat's line (`matches`, `match_players`),
//!   recorded once per match id, read by id and as an account's history; ratings per account
//!   and mode with each rated match's change (`ratings`, `rating_changes`), written in the
//!   match's own transaction.
//! - [`AccountStore`]: accounts, credentials (hashes only), sessions with their refresh-token
//!   families, roles and bans, in the same database and migration set as the leaderboard.
//!
//! # What it must not do
//! - Trust a score a client made up: the only way in is [`Leaderboard::record`], which the game
//!   server calls itself when a snake dies or its player leaves. Nothing here parses a score out
//!   of a client message.
//! - Know about rooms, sockets, the simulation or the wire protocol; it stores plain values.
//! - Wait on the database without a deadline: every SQL call runs under a timeout.
//!
//! # Layout
//! - `leaderboard.rs`: connection, migrations, `record`, `top`.
//! - `accounts.rs`: the account tables and their transactions.
//! - `matches.rs`: the match tables.
//! - `name.rs`: player name validation.
//! - `receipt.rs`: receipt key file, issuing and verifying receipts.
//! - `error.rs`: [`StoreError`].

mod accounts;
mod error;
mod leaderboard;
mod matches;
mod name;
mod receipt;

pub use accounts::{
    Account, AccountError, AccountId, AccountKind, AccountStore, Ban, IdError, MAX_LISTED_SESSIONS,
    NewSession, RefreshOutcome, Role, Session, SessionEndReason, SessionId, UsernameKeys,
};
pub use error::StoreError;
pub use leaderboard::{
    Leaderboard, LeaderboardSettings, Recorded, ScoreEntry, ScoreRow, default_database_url,
};
pub use matches::{
    HistoryCursor, HistoryEntry, MAX_HISTORY_PAGE, MAX_MATCH_PLAYERS, MatchPlayer, MatchRecord,
    MatchStore, NewRating, NewRatings, RankedCursor, RankedEntry, RatedSeat, RatingChange,
    StoredRating,
};
pub use name::{MAX_PLAYER_NAME_CHARS, NameError, validate_ascii_name, validate_player_name};
pub use receipt::{MIN_RECEIPT_SECRET_BYTES, ReceiptError, ReceiptKey};
