//! Match history over HTTP: `GET /api/matches/{id}` (one finished match with every seat),
//! `GET /api/players/{id}/matches` (an account's matches, newest first, paged by an opaque
//! cursor) and `GET /api/players/{id}/ratings` (its rating per mode, hidden until calibrated). Read from the node's database, where `results.rs` stores each match once; in a
//! fleet every node reads the shared PostgreSQL, so any node answers for any match.
//!
//! Public like the leaderboard: a line shows an account's id and display name, never an
//! anonymous player's game key (a bot shows its name only).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coil_api::openapi::ErrorBody;
use coil_match::{DisplayedRating, Rating, RatingSettings};
use coil_store::{
    AccountId, HistoryCursor, HistoryEntry, MAX_HISTORY_PAGE, MatchPlayer, RankedCursor,
    RankedEntry,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::http::{AppError, AppState, store_error};

/// History entries per page when the query names no limit.
const DEFAULT_PAGE: u32 = 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/matches/{id}", get(match_by_id))
        .route("/api/players/{id}/matches", get(player_matches))
        .route("/api/players/{id}/ratings", get(player_ratings))
        .route("/api/leaderboard/ranked", get(ranked_leaderboard))
}

#[derive(OpenApi)]
#[openapi(
    paths(match_by_id, player_matches, player_ratings, ranked_leaderboard),
    components(schemas(ErrorBody)),
    tags((name = "matches", description = "Finished matches and players' match histories."))
)]
pub(crate) struct HistoryApi;

/// One seat of a finished match.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SeatLine {
    /// The player's account (32 hex characters), when the node verified it; `null` for bots
    /// and anonymous players.
    account_id: Option<String>,
    display_name: String,
    team: u8,
    kills: u32,
    deaths: u32,
    assists: u32,
    score: i64,
    /// Left before the match ended.
    left_early: bool,
    bot: bool,
}

impl From<MatchPlayer> for SeatLine {
    fn from(player: MatchPlayer) -> SeatLine {
        SeatLine {
            account_id: player.account.map(|id| id.as_str().to_owned()),
            display_name: player.display_name,
            team: player.team,
            kills: player.kills,
            deaths: player.deaths,
            assists: player.assists,
            score: player.score,
            left_early: player.left_early,
            bot: player.bot,
        }
    }
}

/// `GET /api/matches/{id}`'s body.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MatchBody {
    match_id: String,
    mode: String,
    room: String,
    /// The winning team; `null` for a draw.
    winner: Option<u8>,
    /// `kill_limit`, `time_limit`, `forfeit` or `abandoned`.
    reason: String,
    /// Final score per team, indexed by team.
    team_scores: Vec<u32>,
    duration_ms: u64,
    /// Unix milliseconds when the match ended.
    ended_at_ms: i64,
    /// The game's own data (map, rules), as strings.
    details: BTreeMap<String, String>,
    /// Every seat, in seat order.
    players: Vec<SeatLine>,
}

/// One match of a player's history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HistoryLine {
    match_id: String,
    mode: String,
    winner: Option<u8>,
    reason: String,
    team_scores: Vec<u32>,
    duration_ms: u64,
    ended_at_ms: i64,
    /// The player's own line in that match.
    player: SeatLine,
}

/// `GET /api/players/{id}/matches`'s body.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HistoryPage {
    /// Newest first.
    matches: Vec<HistoryLine>,
    /// Pass as `before` for the next page; `null` when this page is the last.
    next: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Matches per page, 1-100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The previous page's `next`: matches older than its last entry.
    #[param(max_length = 256, pattern = "^[A-Za-z0-9_-]{1,256}$")]
    before: Option<String>,
}

/// One mode's rating of an account, as players see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ModeRating {
    mode: String,
    /// Rated matches played in this mode.
    matches: u32,
    /// Matches still to play before a rating is shown (0 once calibrated).
    matches_left: u32,
    /// The conservative value (mean − 3σ of the Weng-Lin model); `null` while calibrating.
    rating: Option<f64>,
}

/// `GET /api/players/{id}/ratings`'s body.
#[derive(Serialize, ToSchema)]
struct RatingsBody {
    /// One entry per mode the account has played rated matches in, by mode name.
    ratings: Vec<ModeRating>,
}

/// Match ids are what rooms make: `<room>:<8 hex>:<n>`, room ids being letters, digits, `-`
/// and `_`.
fn valid_match_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// A finished match and every seat's line.
#[utoipa::path(get, path = "/api/matches/{id}", tag = "matches",
    params(("id" = String, Path, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_:-]{1,128}$",
        description = "The match id (from a match result or a player's history).")),
    responses(
        (status = 200, description = "The match.", body = MatchBody),
        (status = 400, description = "`bad_request`: not a match id.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such match.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn match_by_id(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if !valid_match_id(&id) {
        return Err(AppError::BadRequest(
            "a match id is 1-128 letters, digits, '-', '_' or ':'".into(),
        ));
    }
    let Some(record) = state
        .leaderboard
        .matches()
        .get(&id)
        .await
        .map_err(store_error)?
    else {
        return Err(AppError::NotFound("no such match"));
    };
    let details = record.details.into_iter().collect();
    Ok(Json(MatchBody {
        match_id: record.match_id,
        mode: record.mode,
        room: record.room,
        winner: record.winner,
        reason: record.reason,
        team_scores: record.team_scores,
        duration_ms: record.duration_ms,
        ended_at_ms: record.ended_at_ms,
        details,
        players: record.players.into_iter().map(SeatLine::from).collect(),
    })
    .into_response())
}

/// An account's finished matches, newest first.
#[utoipa::path(get, path = "/api/players/{id}/matches", tag = "matches",
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The account id."),
        HistoryQuery),
    responses(
        (status = 200, description = "One page of the account's matches (empty for an account with none).", body = HistoryPage),
        (status = 400, description = "`bad_request`: not an account id, limit out of range, or a malformed cursor.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn player_matches(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let account = account_param(&id)?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}"
        )));
    }
    let before = query
        .before
        .as_deref()
        .map(decode_cursor)
        .transpose()
        .map_err(|()| AppError::BadRequest("before is not a cursor this API made".into()))?;
    let entries = state
        .leaderboard
        .matches()
        .history(&account, before.as_ref(), limit)
        .await
        .map_err(store_error)?;
    // A full page may have more behind it; a short one is the last.
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(encode_cursor))
        .flatten();
    let matches = entries.into_iter().map(history_line).collect();
    Ok(Json(HistoryPage { matches, next }).into_response())
}

/// An account's rating in each mode it played rated matches in; a number only once calibrated.
#[utoipa::path(get, path = "/api/players/{id}/ratings", tag = "matches",
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The account id.")),
    responses(
        (status = 200, description = "The account's ratings (empty for an account never rated).", body = RatingsBody),
        (status = 400, description = "`bad_request`: not an account id.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn player_ratings(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let account = account_param(&id)?;
    let stored = state
        .leaderboard
        .matches()
        .ratings_of(&account)
        .await
        .map_err(store_error)?;
    let settings = RatingSettings::default();
    let ratings = stored
        .into_iter()
        .map(|(mode, stored)| {
            let rating = Rating {
                mean: stored.mean,
                uncertainty: stored.uncertainty,
            };
            let (matches_left, rating) = match settings.displayed(rating, stored.matches) {
                DisplayedRating::Calibrating { matches_left } => (matches_left, None),
                DisplayedRating::Rated { value } => (0, Some(value)),
            };
            ModeRating {
                mode,
                matches: stored.matches,
                matches_left,
                rating,
            }
        })
        .collect();
    Ok(Json(RatingsBody { ratings }).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct RankedQuery {
    /// The mode (`breach` when absent).
    #[param(pattern = "^[a-z0-9-]{1,16}$")]
    mode: Option<String>,
    /// 1-100, 20 when absent.
    limit: Option<u32>,
    /// `next` of the previous page.
    after: Option<String>,
}

/// One line of a ranked leaderboard.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RankedLine {
    /// 1 for the best, counted from the first page.
    rank: u64,
    account_id: String,
    display_name: String,
    /// The displayed rating (the conservative mean - 3 sigma).
    rating: f64,
    /// Rated matches played.
    matches: u32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RankedPage {
    mode: String,
    entries: Vec<RankedLine>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

/// A mode's ranked leaderboard: calibrated accounts by displayed rating, best first.
#[utoipa::path(get, path = "/api/leaderboard/ranked", tag = "matches", params(RankedQuery),
    responses(
        (status = 200, description = "One page of the ranked leaderboard.", body = RankedPage),
        (status = 400, description = "`bad_request`: mode, limit or cursor malformed.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn ranked_leaderboard(
    State(state): State<Arc<AppState>>,
    query: Result<Query<RankedQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let mode = query.mode.unwrap_or_else(|| "breach".to_owned());
    if !coil_game::valid_mode_name(&mode) {
        return Err(AppError::BadRequest(
            "mode is 1-16 lowercase letters, digits or '-'".into(),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}"
        )));
    }
    let after = query
        .after
        .as_deref()
        .map(decode_ranked_cursor)
        .transpose()
        .map_err(|()| AppError::BadRequest("after is not a cursor this API made".into()))?;
    let entries = state
        .leaderboard
        .matches()
        .ranked_leaderboard(&mode, after.as_ref().map(|(cursor, _)| cursor), limit)
        .await
        .map_err(store_error)?;
    let first_rank = after.as_ref().map_or(1, |(_, rank)| rank + 1);
    let next = (entries.len() == limit as usize)
        .then(|| {
            entries
                .last()
                .map(|last| encode_ranked_cursor(last, first_rank + entries.len() as u64 - 1))
        })
        .flatten();
    let entries = entries
        .into_iter()
        .zip(first_rank..)
        .map(|(entry, rank)| RankedLine {
            rank,
            account_id: entry.account_id,
            display_name: entry.display_name,
            rating: entry.displayed,
            matches: entry.matches,
        })
        .collect();
    Ok(Json(RankedPage {
        mode,
        entries,
        next,
    })
    .into_response())
}

/// `<displayed as f64 bits in hex>:<account id>:<rank of that line>` in unpadded base64url.
fn encode_ranked_cursor(entry: &RankedEntry, rank: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{:016x}:{}:{rank}",
        entry.displayed.to_bits(),
        entry.account_id
    ))
}

fn decode_ranked_cursor(text: &str) -> Result<(RankedCursor, u64), ()> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let mut parts = text.splitn(3, ':');
    let (Some(bits), Some(account), Some(rank)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(());
    };
    let displayed = f64::from_bits(u64::from_str_radix(bits, 16).map_err(|_| ())?);
    if !displayed.is_finite() || AccountId::parse(account).is_err() {
        return Err(());
    }
    let rank = rank.parse().map_err(|_| ())?;
    Ok((
        RankedCursor {
            displayed,
            account_id: account.to_owned(),
        },
        rank,
    ))
}

/// The `{id}` of the player routes.
fn account_param(id: &str) -> Result<AccountId, AppError> {
    AccountId::parse(id)
        .map_err(|_| AppError::BadRequest("an account id is 32 lowercase hex characters".into()))
}

fn history_line(entry: HistoryEntry) -> HistoryLine {
    HistoryLine {
        match_id: entry.match_id,
        mode: entry.mode,
        winner: entry.winner,
        reason: entry.reason,
        team_scores: entry.team_scores,
        duration_ms: entry.duration_ms,
        ended_at_ms: entry.ended_at_ms,
        player: entry.player.into(),
    }
}

/// A cursor is `<ended_at_ms>:<match_id>` in unpadded base64url: opaque to clients, and a
/// page boundary that stays right when new matches arrive (unlike an offset).
fn encode_cursor(entry: &HistoryEntry) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", entry.ended_at_ms, entry.match_id))
}

fn decode_cursor(text: &str) -> Result<HistoryCursor, ()> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let (ended_at, match_id) = text.split_once(':').ok_or(())?;
    let ended_at_ms: i64 = ended_at.parse().map_err(|_| ())?;
    if ended_at_ms < 0 || !valid_match_id(match_id) {
        return Err(());
    }
    Ok(HistoryCursor {
        ended_at_ms,
        match_id: match_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ended_at_ms: i64, match_id: &str) -> HistoryEntry {
        HistoryEntry {
            match_id: match_id.to_owned(),
            mode: "breach".into(),
            winner: None,
            reason: "forfeit".into(),
            team_scores: vec![],
            duration_ms: 0,
            ended_at_ms,
            player: MatchPlayer {
                account: None,
                player_key: "k".into(),
                display_name: "n".into(),
                team: 0,
                kills: 0,
                deaths: 0,
                assists: 0,
                score: 0,
                left_early: false,
                bot: false,
            },
        }
    }

    #[test]
    fn ranked_cursors_round_trip_and_junk_is_refused() {
        let entry = RankedEntry {
            account_id: "0123456789abcdef0123456789abcdef".to_owned(),
            display_name: "Ann".to_owned(),
            displayed: 31.25,
            matches: 12,
        };
        let (cursor, rank) = decode_ranked_cursor(&encode_ranked_cursor(&entry, 7)).unwrap();
        assert_eq!(
            (cursor.displayed, cursor.account_id.as_str(), rank),
            (31.25, entry.account_id.as_str(), 7)
        );
        for junk in [
            "",
            "!!",
            "eA",
            &URL_SAFE_NO_PAD.encode("7ff8000000000000:0123456789abcdef0123456789abcdef:1"),
            &URL_SAFE_NO_PAD.encode("00:nope:1"),
        ] {
            assert!(decode_ranked_cursor(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = encode_cursor(&entry(1_700_000_000_123, "eu-abc:0a1b2c3d:7"));
        assert_eq!(
            decode_cursor(&cursor),
            Ok(HistoryCursor {
                ended_at_ms: 1_700_000_000_123,
                match_id: "eu-abc:0a1b2c3d:7".into()
            })
        );
        for junk in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("no-colon"),
            &URL_SAFE_NO_PAD.encode("-5:m"),
            &URL_SAFE_NO_PAD.encode("12:"),
            &URL_SAFE_NO_PAD.encode("x:m"),
            &URL_SAFE_NO_PAD.encode("12:has space"),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ] {
            assert_eq!(decode_cursor(junk), Err(()), "{junk:?}");
        }
    }
}
