//! Finished matches that last: the `matches` and `match_players` tables, written once per
//! match by the node that ran it and read by the match-history routes.
//!
//! A [`MatchRecord`] is what the game's match-result event said, in plain values (this crate
//! knows no game). [`MatchStore::record`] inserts the match and its players in one transaction,
//! keyed by `match_id`: a replayed result (a retry after a timeout, a spill file read back)
//! inserts nothing and answers [`Recorded::AlreadyRecorded`]. Reads: one match by id, and an
//! account's matches newest first, paged by a cursor (never an offset, so a page costs one
//! index walk however deep it is).

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{AccountId, with_pool};
use crate::error::StoreError;
use crate::leaderboard::{Pool, Recorded};

/// Seats one match may record (breach has 8 players; the limit only refuses nonsense).
pub const MAX_MATCH_PLAYERS: usize = 64;
/// Matches one history page holds at most.
pub const MAX_HISTORY_PAGE: u32 = 100;

/// A finished match as its game reported it. Never built from a client's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRecord {
    /// Unique across the fleet and across restarts of a room of the same name (1..=128
    /// printable ASCII characters).
    pub match_id: String,
    /// The game mode, e.g. `breach` (1..=32 characters).
    pub mode: String,
    pub room: String,
    /// The winning team; `None` for a draw.
    pub winner: Option<u8>,
    /// Why it ended, e.g. `kill_limit`, `time_limit`, `forfeit` (1..=32 characters).
    pub reason: String,
    pub team_scores: Vec<u32>,
    pub duration_ms: u64,
    /// Unix time in milliseconds when the match ended.
    pub ended_at_ms: i64,
    /// The game's own data kept with the result (map, rules), as name/value pairs: stored as a
    /// JSON object, so read back sorted by name, one value per name.
    pub details: Vec<(String, String)>,
    /// One line per seat, in seat order (at most [`MAX_MATCH_PLAYERS`]).
    pub players: Vec<MatchPlayer>,
}

/// One seat's line in a finished match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchPlayer {
    /// The player's account when the node verified it from a join token.
    #[serde(default, with = "optional_account")]
    pub account: Option<AccountId>,
    /// The game's key for the seat: the account id, a guest's or anonymous player's id, or a
    /// bot's name (1..=64 characters).
    pub player_key: String,
    pub display_name: String,
    pub team: u8,
    pub kills: u32,
    pub deaths: u32,
    pub assists: u32,
    pub score: i64,
    pub left_early: bool,
    pub bot: bool,
}

/// One match of an account's history: the match and that account's own line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub match_id: String,
    pub mode: String,
    pub winner: Option<u8>,
    pub reason: String,
    pub team_scores: Vec<u32>,
    pub duration_ms: u64,
    pub ended_at_ms: i64,
    pub player: MatchPlayer,
}

/// Where a history page starts: strictly older than this match (the last entry of the
/// previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    pub ended_at_ms: i64,
    pub match_id: String,
}

/// An account's rating in one mode as stored: the model's two numbers (coil-match's Weng-Lin
/// mean and uncertainty) and how many rated matches made it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredRating {
    pub mean: f64,
    pub uncertainty: f64,
    pub matches: u32,
}

/// One account of a rated match, as [`MatchStore::record_rated`] hands it to the rating
/// function: its current rating in the match's mode (`None`: never rated).
#[derive(Debug, Clone, PartialEq)]
pub struct RatedSeat {
    pub account: AccountId,
    pub current: Option<StoredRating>,
}

/// One seat's rating after a match, as the rating function computed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewRating {
    pub mean: f64,
    pub uncertainty: f64,
    /// What the ranked leaderboard ranks by (the model's displayed value); `None` while the
    /// account is calibrating, which keeps it off the leaderboard.
    pub displayed: Option<f64>,
}

/// New ratings per seat, in the shape of the teams given.
pub type NewRatings = Vec<Vec<NewRating>>;

/// One line of a mode's ranked leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedEntry {
    pub account_id: String,
    pub display_name: String,
    pub displayed: f64,
    pub matches: u32,
}

/// Where a ranked leaderboard page ends: the last line's value and account.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedCursor {
    pub displayed: f64,
    pub account_id: String,
}

/// One rated match's change to one account.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingChange {
    pub match_id: String,
    /// (mean, uncertainty) before the match; `None` for the account's first rated match.
    pub before: Option<(f64, f64)>,
    pub after: (f64, f64),
    pub ended_at_ms: i64,
}

/// The match tables of the leaderboard's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MatchStore {
    pool: Pool,
    statement_timeout: Duration,
}

/// `ratings`' mean, uncertainty and matches.
type RatingRow = (f64, f64, i64);
type RatingChangeRow = (String, Option<f64>, Option<f64>, f64, f64, i64);
type MatchRow = (
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    String,
    i64,
    i64,
);
type PlayerRow = (
    i64,
    Option<String>,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
    bool,
);
/// sqlx reads tuples of up to 16 columns: the account id is the query's own, not read back.
type HistoryRow = (
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    bool,
    bool,
);

const INSERT_MATCH_SQL: &str = "INSERT INTO matches (match_id, mode, room, winner, reason, \
     team_scores, details, duration_ms, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (match_id) DO NOTHING";
const INSERT_PLAYER_SQL: &str = "INSERT INTO match_players (match_id, slot, account_id, \
     player_key, display_name, team, kills, deaths, assists, score, left_early, bot, ended_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
const SELECT_RATING_SQL: &str =
    "SELECT mean, uncertainty, matches FROM ratings WHERE account_id = $1 AND mode = $2";
const UPSERT_RATING_SQL: &str = "INSERT INTO ratings (account_id, mode, mean, uncertainty, \
     matches, updated_at, displayed) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (account_id, mode) DO UPDATE SET mean = excluded.mean, \
     uncertainty = excluded.uncertainty, matches = excluded.matches, \
     updated_at = excluded.updated_at, displayed = excluded.displayed";
/// Walks `ratings_leaderboard_idx` from the cursor: `$2`/`$3` are the last line's value and
/// account (`+inf` and `''` for the first page).
const SELECT_RANKED_SQL: &str = "SELECT r.account_id, a.display_name, r.displayed, r.matches \
     FROM ratings r JOIN accounts a ON a.id = r.account_id \
     WHERE r.mode = $1 AND r.displayed IS NOT NULL \
     AND (r.displayed < $2 OR (r.displayed = $2 AND r.account_id > $3)) \
     ORDER BY r.displayed DESC, r.account_id LIMIT $4";
const INSERT_RATING_CHANGE_SQL: &str = "INSERT INTO rating_changes (match_id, account_id, mode, \
     mean_before, uncertainty_before, mean_after, uncertainty_after, ended_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const SELECT_RATING_CHANGES_SQL: &str = "SELECT match_id, mean_before, uncertainty_before, \
     mean_after, uncertainty_after, ended_at FROM rating_changes \
     WHERE account_id = $1 AND mode = $2 ORDER BY ended_at DESC, match_id DESC LIMIT $3";
const SELECT_MATCH_SQL: &str = "SELECT match_id, mode, room, winner, reason, team_scores, \
     details, duration_ms, ended_at FROM matches WHERE match_id = $1";
const SELECT_PLAYERS_SQL: &str = "SELECT slot, account_id, player_key, display_name, team, \
     kills, deaths, assists, score, left_early, bot FROM match_players WHERE match_id = $1 \
     ORDER BY slot";
/// Walks `match_players_account_idx` from the cursor down; `$2`/`$3` are the cursor, or
/// `i64::MAX` and `''` for the first page (no match id sorts after every real one, so the
/// first page uses `ended_at < MAX OR (= MAX AND id < '')`, which is just `ended_at < MAX`).
const SELECT_HISTORY_SQL: &str = "SELECT p.match_id, m.mode, m.winner, m.reason, \
     m.team_scores, m.duration_ms, p.ended_at, p.player_key, p.display_name, \
     p.team, p.kills, p.deaths, p.assists, p.score, p.left_early, p.bot \
     FROM match_players p JOIN matches m ON m.match_id = p.match_id \
     WHERE p.account_id = $1 AND (p.ended_at < $2 OR (p.ended_at = $2 AND p.match_id < $3)) \
     ORDER BY p.ended_at DESC, p.match_id DESC LIMIT $4";

impl MatchStore {
    pub(crate) fn from_pool(pool: Pool, statement_timeout: Duration) -> MatchStore {
        MatchStore {
            pool,
            statement_timeout,
        }
    }

    /// Stores a finished match and its players once. After [`StoreError::Timeout`] the write
    /// may or may not have happened; retrying with the same `match_id` is always safe.
    pub async fn record(&self, record: &MatchRecord) -> Result<Recorded, StoreError> {
        self.record_with(
            record,
            None::<(fn(&[Vec<RatedSeat>]) -> Option<NewRatings>, _)>,
        )
        .await
    }

    /// Like [`MatchStore::record`], and rates the match in the same transaction: `rate` gets
    /// each team's seats (teams in index order, seats in seat order) with their current rating
    /// in the match's mode and answers the new ratings in the same shape, or `None` to leave the
    /// match unrated. It runs only when the match is new, so a replayed result changes no
    /// rating. Every seat must carry an account ([`StoreError::InvalidEntry`] otherwise).
    ///
    /// On PostgreSQL the seats' rating rows are locked for the transaction, so two matches
    /// finishing at once never lose one's update; SQLite serializes writers anyway.
    pub async fn record_rated(
        &self,
        record: &MatchRecord,
        rate: impl FnOnce(&[Vec<RatedSeat>]) -> Option<NewRatings> + Send,
    ) -> Result<Recorded, StoreError> {
        // Teams in index order, each its seats' accounts in seat order.
        let mut teams: Vec<(u8, Vec<AccountId>)> = Vec::new();
        for player in &record.players {
            let Some(account) = player.account.clone() else {
                return Err(invalid(
                    "players",
                    "a rated match has an account on every seat",
                ));
            };
            match teams.iter_mut().find(|(team, _)| *team == player.team) {
                Some((_, seats)) => seats.push(account),
                None => teams.push((player.team, vec![account])),
            }
        }
        teams.sort_by_key(|(team, _)| *team);
        let teams = teams.into_iter().map(|(_, seats)| seats).collect();
        self.record_with(record, Some((rate, teams))).await
    }

    /// Stores the match, and when `rating` is given (the rule and the teams' accounts) rates
    /// it in the same transaction.
    async fn record_with(
        &self,
        record: &MatchRecord,
        rating: Option<(
            impl FnOnce(&[Vec<RatedSeat>]) -> Option<NewRatings> + Send,
            Vec<Vec<AccountId>>,
        )>,
    ) -> Result<Recorded, StoreError> {
        validate(record)?;
        let operation = "record a match";
        let team_scores = serde_json::to_string(&record.team_scores).map_err(|error| {
            StoreError::InvalidEntry {
                field: "team_scores",
                reason: error.to_string(),
            }
        })?;
        let details: serde_json::Map<String, serde_json::Value> = record
            .details
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect();
        let details = serde_json::Value::Object(details).to_string();
        let duration_ms = i64::try_from(record.duration_ms).unwrap_or(i64::MAX);
        let lock_rows = self.row_lock();
        self.within_deadline(operation, async {
            with_pool!(self, |pool, begin| {
                let mut tx = pool.begin_with(begin).await?;
                let inserted = sqlx::query(INSERT_MATCH_SQL)
                    .bind(&record.match_id)
                    .bind(&record.mode)
                    .bind(&record.room)
                    .bind(record.winner.map(i64::from))
                    .bind(&record.reason)
                    .bind(&team_scores)
                    .bind(&details)
                    .bind(duration_ms)
                    .bind(record.ended_at_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(Ok(Recorded::AlreadyRecorded));
                }
                for (slot, player) in record.players.iter().enumerate() {
                    sqlx::query(INSERT_PLAYER_SQL)
                        .bind(&record.match_id)
                        .bind(i64::try_from(slot).unwrap_or(i64::MAX))
                        .bind(player.account.as_ref().map(AccountId::as_str))
                        .bind(&player.player_key)
                        .bind(&player.display_name)
                        .bind(i64::from(player.team))
                        .bind(i64::from(player.kills))
                        .bind(i64::from(player.deaths))
                        .bind(i64::from(player.assists))
                        .bind(player.score)
                        .bind(player.left_early)
                        .bind(player.bot)
                        .bind(record.ended_at_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                if let Some((rate, teams)) = rating {
                    let select = format!("{SELECT_RATING_SQL}{lock_rows}");
                    let mut seats: Vec<Vec<RatedSeat>> = Vec::with_capacity(teams.len());
                    for accounts in teams {
                        let mut team = Vec::with_capacity(accounts.len());
                        for account in accounts {
                            let row: Option<RatingRow> = sqlx::query_as(&select)
                                .bind(account.as_str())
                                .bind(&record.mode)
                                .fetch_optional(&mut *tx)
                                .await?;
                            let current = row.map(stored_rating);
                            team.push(RatedSeat { account, current });
                        }
                        seats.push(team);
                    }
                    if let Some(ratings) = rate(&seats) {
                        if let Err(problem) = check_ratings(&seats, &ratings) {
                            tx.rollback().await?;
                            return Ok(Err(problem));
                        }
                        for (team, new) in seats.iter().zip(&ratings) {
                            for (seat, rating) in team.iter().zip(new) {
                                let NewRating {
                                    mean,
                                    uncertainty,
                                    displayed,
                                } = *rating;
                                let played = seat.current.map_or(0, |r| i64::from(r.matches));
                                sqlx::query(UPSERT_RATING_SQL)
                                    .bind(seat.account.as_str())
                                    .bind(&record.mode)
                                    .bind(mean)
                                    .bind(uncertainty)
                                    .bind(played + 1)
                                    .bind(record.ended_at_ms)
                                    .bind(displayed)
                                    .execute(&mut *tx)
                                    .await?;
                                sqlx::query(INSERT_RATING_CHANGE_SQL)
                                    .bind(&record.match_id)
                                    .bind(seat.account.as_str())
                                    .bind(&record.mode)
                                    .bind(seat.current.map(|r| r.mean))
                                    .bind(seat.current.map(|r| r.uncertainty))
                                    .bind(mean)
                                    .bind(uncertainty)
                                    .bind(record.ended_at_ms)
                                    .execute(&mut *tx)
                                    .await?;
                            }
                        }
                    }
                }
                tx.commit().await?;
                Ok(Ok(Recorded::Inserted))
            })
        })
        .await?
    }

    /// One page of `mode`'s ranked leaderboard: calibrated accounts by displayed value, best
    /// first (ties by account id), after `after`; at most `limit` (1..=[`MAX_HISTORY_PAGE`]).
    pub async fn ranked_leaderboard(
        &self,
        mode: &str,
        after: Option<&RankedCursor>,
        limit: u32,
    ) -> Result<Vec<RankedEntry>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_HISTORY_PAGE));
        let (value, account) = after.map_or((f64::INFINITY, ""), |cursor| {
            (cursor.displayed, cursor.account_id.as_str())
        });
        let rows: Vec<(String, String, f64, i64)> = self
            .within_deadline("read the ranked leaderboard", async {
                with_pool!(self, |pool, begin| {
                    sqlx::query_as(SELECT_RANKED_SQL)
                        .bind(mode)
                        .bind(value)
                        .bind(account)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(account_id, display_name, displayed, matches)| RankedEntry {
                    account_id,
                    display_name,
                    displayed,
                    matches: u32::try_from(matches).unwrap_or(u32::MAX),
                },
            )
            .collect())
    }

    /// Every mode `account` has a rating in, by mode name.
    pub async fn ratings_of(
        &self,
        account: &AccountId,
    ) -> Result<Vec<(String, StoredRating)>, StoreError> {
        let rows: Vec<(String, f64, f64, i64)> = self
            .within_deadline("read an account's ratings", async {
                with_pool!(self, |pool, begin| {
                    sqlx::query_as(
                        "SELECT mode, mean, uncertainty, matches FROM ratings \
                         WHERE account_id = $1 ORDER BY mode",
                    )
                    .bind(account.as_str())
                    .fetch_all(pool)
                    .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(mode, mean, uncertainty, matches)| {
                (mode, stored_rating((mean, uncertainty, matches)))
            })
            .collect())
    }

    /// Current ratings of `account` in `mode`, or `None` if it never played a rated match.
    pub async fn rating(
        &self,
        account: &AccountId,
        mode: &str,
    ) -> Result<Option<StoredRating>, StoreError> {
        let row: Option<RatingRow> = self
            .within_deadline("read a rating", async {
                with_pool!(self, |pool, begin| {
                    sqlx::query_as(SELECT_RATING_SQL)
                        .bind(account.as_str())
                        .bind(mode)
                        .fetch_optional(pool)
                        .await
                })
            })
            .await?;
        Ok(row.map(stored_rating))
    }

    /// `account`'s rating changes in `mode`, newest first (at most `limit`, clamped to
    /// 1..=[`MAX_HISTORY_PAGE`]).
    pub async fn rating_changes(
        &self,
        account: &AccountId,
        mode: &str,
        limit: u32,
    ) -> Result<Vec<RatingChange>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_HISTORY_PAGE));
        let rows: Vec<RatingChangeRow> = self
            .within_deadline("read rating changes", async {
                with_pool!(self, |pool, begin| {
                    sqlx::query_as(SELECT_RATING_CHANGES_SQL)
                        .bind(account.as_str())
                        .bind(mode)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    match_id,
                    mean_before,
                    uncertainty_before,
                    mean_after,
                    uncertainty_after,
                    ended,
                )| {
                    RatingChange {
                        match_id,
                        before: mean_before.zip(uncertainty_before),
                        after: (mean_after, uncertainty_after),
                        ended_at_ms: ended,
                    }
                },
            )
            .collect())
    }

    /// `FOR UPDATE` on PostgreSQL (SQLite has no row locks: its writers are serialized).
    fn row_lock(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "",
            Pool::Postgres(_) => " FOR UPDATE",
        }
    }

    /// One match with its players, or `None` for an unknown id.
    pub async fn get(&self, match_id: &str) -> Result<Option<MatchRecord>, StoreError> {
        let operation = "read a match";
        let rows: Option<(MatchRow, Vec<PlayerRow>)> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    let head: Option<MatchRow> = sqlx::query_as(SELECT_MATCH_SQL)
                        .bind(match_id)
                        .fetch_optional(pool)
                        .await?;
                    let Some(head) = head else {
                        return Ok(None);
                    };
                    let players: Vec<PlayerRow> = sqlx::query_as(SELECT_PLAYERS_SQL)
                        .bind(match_id)
                        .fetch_all(pool)
                        .await?;
                    Ok(Some((head, players)))
                })
            })
            .await?;
        let Some((head, players)) = rows else {
            return Ok(None);
        };
        let (match_id, mode, room, winner, reason, team_scores, details, duration_ms, ended_at) =
            head;
        let players = players
            .into_iter()
            .map(
                |(_slot, account, key, name, team, kills, deaths, assists, score, left, bot)| {
                    player_from_row(
                        account, key, name, team, kills, deaths, assists, score, left, bot,
                    )
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(MatchRecord {
            match_id,
            mode,
            room,
            winner: winner
                .map(|team| small("matches.winner", team))
                .transpose()?,
            reason,
            team_scores: parse_team_scores(&team_scores)?,
            duration_ms: u64::try_from(duration_ms).unwrap_or(0),
            ended_at_ms: ended_at,
            details: parse_details(&details)?,
            players,
        }))
    }

    /// `account`'s matches, newest first: at most `limit` (clamped to 1..=[`MAX_HISTORY_PAGE`])
    /// older than `after` (the previous page's last entry), or the newest without one.
    pub async fn history(
        &self,
        account: &AccountId,
        after: Option<&HistoryCursor>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let operation = "read a match history";
        let limit = i64::from(limit.clamp(1, MAX_HISTORY_PAGE));
        let (before_ms, before_id) = match after {
            Some(cursor) => (cursor.ended_at_ms, cursor.match_id.as_str()),
            None => (i64::MAX, ""),
        };
        let rows: Vec<HistoryRow> = self
            .within_deadline(operation, async {
                with_pool!(self, |pool, begin| {
                    sqlx::query_as(SELECT_HISTORY_SQL)
                        .bind(account.as_str())
                        .bind(before_ms)
                        .bind(before_id)
                        .bind(limit)
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        rows.into_iter()
            .map(|row| {
                let (match_id, mode, winner, reason, team_scores, duration_ms, ended_at) =
                    (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
                Ok(HistoryEntry {
                    match_id,
                    mode,
                    winner: winner
                        .map(|team| small("matches.winner", team))
                        .transpose()?,
                    reason,
                    team_scores: parse_team_scores(&team_scores)?,
                    duration_ms: u64::try_from(duration_ms).unwrap_or(0),
                    ended_at_ms: ended_at,
                    player: player_from_row(
                        Some(account.as_str().to_owned()),
                        row.7,
                        row.8,
                        row.9,
                        row.10,
                        row.11,
                        row.12,
                        row.13,
                        row.14,
                        row.15,
                    )?,
                })
            })
            .collect()
    }

    async fn within_deadline<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.statement_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(StoreError::Database { operation, source }),
            Err(_elapsed) => Err(StoreError::Timeout {
                operation,
                after: self.statement_timeout,
            }),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn player_from_row(
    account: Option<String>,
    player_key: String,
    display_name: String,
    team: i64,
    kills: i64,
    deaths: i64,
    assists: i64,
    score: i64,
    left_early: bool,
    bot: bool,
) -> Result<MatchPlayer, StoreError> {
    let account = account
        .map(|text| {
            AccountId::parse(&text).map_err(|_| StoreError::CorruptRow {
                reason: format!("match_players.account_id {text:?} is not an account id"),
            })
        })
        .transpose()?;
    Ok(MatchPlayer {
        account,
        player_key,
        display_name,
        team: small("match_players.team", team)?,
        kills: count("match_players.kills", kills)?,
        deaths: count("match_players.deaths", deaths)?,
        assists: count("match_players.assists", assists)?,
        score,
        left_early,
        bot,
    })
}

fn small(column: &str, value: i64) -> Result<u8, StoreError> {
    u8::try_from(value).map_err(|_| StoreError::CorruptRow {
        reason: format!("{column} {value} does not fit in u8"),
    })
}

fn count(column: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::CorruptRow {
        reason: format!("{column} {value} does not fit in u32"),
    })
}

fn parse_team_scores(text: &str) -> Result<Vec<u32>, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::CorruptRow {
        reason: format!("matches.team_scores is not a list of scores: {error}"),
    })
}

fn parse_details(text: &str) -> Result<Vec<(String, String)>, StoreError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|error| StoreError::CorruptRow {
            reason: format!("matches.details is not a JSON object: {error}"),
        })?;
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(value) => Ok((name, value)),
            other => Err(StoreError::CorruptRow {
                reason: format!("matches.details.{name} is {other}, not a string"),
            }),
        })
        .collect()
}

fn stored_rating((mean, uncertainty, matches): RatingRow) -> StoredRating {
    StoredRating {
        mean,
        uncertainty,
        matches: u32::try_from(matches).unwrap_or(u32::MAX),
    }
}

/// The rating function's answer has the teams' shape and finite numbers.
fn check_ratings(seats: &[Vec<RatedSeat>], ratings: &NewRatings) -> Result<(), StoreError> {
    let shaped = ratings.len() == seats.len()
        && seats
            .iter()
            .zip(ratings)
            .all(|(team, new)| team.len() == new.len());
    if !shaped {
        return Err(invalid("ratings", "not one new rating per seat"));
    }
    if ratings.iter().flatten().any(|rating| {
        !rating.mean.is_finite()
            || !rating.uncertainty.is_finite()
            || rating.uncertainty < 0.0
            || rating.displayed.is_some_and(|value| !value.is_finite())
    }) {
        return Err(invalid("ratings", "a new rating is not finite"));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidEntry {
        field,
        reason: reason.into(),
    }
}

fn check_text(field: &'static str, text: &str, max_chars: usize) -> Result<(), StoreError> {
    let chars = text.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(invalid(
            field,
            format!("must be 1..={max_chars} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// The rules the tables' CHECK constraints hold, checked first so a bad record is refused
/// with a reason (and is never retried: see [`StoreError::is_transient`]).
fn validate(record: &MatchRecord) -> Result<(), StoreError> {
    if record.match_id.is_empty()
        || record.match_id.len() > 128
        || !record.match_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(invalid(
            "match_id",
            "must be 1..=128 printable ASCII characters",
        ));
    }
    check_text("mode", &record.mode, 32)?;
    check_text("room", &record.room, 64)?;
    check_text("reason", &record.reason, 32)?;
    if record.ended_at_ms < 0 {
        return Err(invalid("ended_at_ms", "must not be before 1970"));
    }
    if record.players.len() > MAX_MATCH_PLAYERS {
        return Err(invalid(
            "players",
            format!("at most {MAX_MATCH_PLAYERS} seats per match"),
        ));
    }
    for player in &record.players {
        check_text("player_key", &player.player_key, 64)?;
        check_text("display_name", &player.display_name, 32)?;
    }
    Ok(())
}

/// `Option<AccountId>` as an optional string in JSON (spill files).
mod optional_account {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::accounts::AccountId;

    pub fn serialize<S: Serializer>(
        account: &Option<AccountId>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match account {
            Some(account) => serializer.serialize_some(account.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<AccountId>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|text| AccountId::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}
