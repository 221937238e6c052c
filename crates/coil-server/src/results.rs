//! Match results that last: a room's match-result report becomes a [`MatchRecord`] and goes to
//! one writer task per node, which stores it in the node's database (`coil_store::MatchStore`,
//! the shared PostgreSQL in a fleet) once by its match id. The writer is the scores' one
//! (`durable.rs`): a bounded queue that never makes a room wait, retries with backoff while the
//! database is down, and a spill file at shutdown that the next start replays.
//!
//! A player's line carries its account only when the node verified the player from a signed
//! join token; bots and anonymous players are stored by their game key alone.
//!
//! Ratings: a match of two teams whose every seat is a verified account (no bots) updates
//! each account's Weng-Lin rating in the match's mode, in the same transaction as the match,
//! so a replayed result changes nothing. Matches with bots or anonymous seats are stored
//! unrated.

use std::path::PathBuf;

use coil_game::{MatchResult, ResultReason};
use coil_match::{MatchOutcome, Rating, RatingSettings, update_match};
use coil_store::{
    AccountId, MatchPlayer, MatchRecord, MatchStore, NewRating, NewRatings, RatedSeat, StoreError,
};
use tokio::sync::mpsc;

use crate::durable::{self, Destination, WriterSettings};
use crate::metrics as m;

/// Results waiting for the writer. A node finishes a few matches per second at most, so this
/// rides out an hour of database outage; a record is ~1 KB. Overflow: the newest is dropped and
/// counted (`coil_match_result_writes_total{result="dropped"}`).
pub const RESULT_QUEUE: usize = 10_000;

/// The spill file in a node's data directory.
pub fn spill_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("results-pending.jsonl")
}

/// The match result as the store keeps it. `ended_at_ms` is the node's clock when the game
/// reported it.
pub fn record_of(
    room: &str,
    mode: &str,
    match_id: &str,
    result: &MatchResult,
    ended_at_ms: i64,
) -> MatchRecord {
    let tick_rate = u64::from(result.tick_rate.max(1));
    MatchRecord {
        match_id: match_id.to_owned(),
        mode: mode.to_owned(),
        room: room.to_owned(),
        winner: result.winner,
        reason: result.reason.as_str().to_owned(),
        team_scores: result.team_scores.clone(),
        duration_ms: result.duration_ticks.saturating_mul(1000) / tick_rate,
        ended_at_ms,
        details: result
            .details
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
        players: result
            .players
            .iter()
            .map(|line| MatchPlayer {
                account: (line.verified && !line.bot)
                    .then(|| AccountId::parse(&line.player_key).ok())
                    .flatten(),
                player_key: line.player_key.clone(),
                display_name: line.display_name.clone(),
                team: line.team,
                kills: line.kills,
                deaths: line.deaths,
                assists: line.assists,
                score: line.score,
                left_early: line.left_early,
                bot: line.bot,
            })
            .collect(),
    }
}

/// Whether a match changes ratings, and its outcome for the first-listed (lower-index) team:
/// two teams, every seat a verified account (no bots, no anonymous players: a match against
/// bots says little about the humans), and a real end (not abandoned).
fn rated_outcome(record: &MatchRecord) -> Option<MatchOutcome> {
    if record.reason == ResultReason::Abandoned.as_str()
        || record.players.is_empty()
        || record
            .players
            .iter()
            .any(|player| player.bot || player.account.is_none())
    {
        return None;
    }
    let mut teams: Vec<u8> = record.players.iter().map(|player| player.team).collect();
    teams.sort_unstable();
    teams.dedup();
    let [first, second] = teams[..] else {
        return None;
    };
    match record.winner {
        None => Some(MatchOutcome::Draw),
        Some(team) if team == first => Some(MatchOutcome::FirstTeamWon),
        Some(team) if team == second => Some(MatchOutcome::SecondTeamWon),
        Some(_) => None,
    }
}

/// The Weng-Lin update (`coil_match::update_match`) over the stored ratings; a seat never
/// rated starts from the model's new-account rating.
fn rate(teams: &[Vec<RatedSeat>], outcome: MatchOutcome) -> Option<NewRatings> {
    let current: Vec<Vec<Rating>> = teams
        .iter()
        .map(|team| {
            team.iter()
                .map(|seat| {
                    seat.current.map_or(Rating::NEW_ACCOUNT, |stored| Rating {
                        mean: stored.mean,
                        uncertainty: stored.uncertainty,
                    })
                })
                .collect()
        })
        .collect();
    let settings = RatingSettings::default();
    match update_match(&current, outcome, &settings) {
        Ok(new) => Some(
            new.into_iter()
                .zip(teams)
                .map(|(team, seats)| {
                    team.into_iter()
                        .zip(seats)
                        .map(|(rating, seat)| {
                            let played = seat.current.map_or(0, |stored| stored.matches) + 1;
                            NewRating {
                                mean: rating.mean,
                                uncertainty: rating.uncertainty,
                                displayed: settings
                                    .is_calibrated(played)
                                    .then(|| settings.conservative(rating)),
                            }
                        })
                        .collect()
                })
                .collect(),
        ),
        Err(error) => {
            crate::rate_limited_warn!(cause = %error, "a match could not be rated; stored unrated");
            None
        }
    }
}

/// Starts the writer task over `store`; first replays `settings.spill_file`, if any. Results go
/// in through the returned sender (`ReportSink::storing`); the task ends when every sender is
/// dropped and the queue is stored or spilled.
pub fn start_writer(
    store: MatchStore,
    settings: WriterSettings,
) -> (mpsc::Sender<MatchRecord>, tokio::task::JoinHandle<()>) {
    let (queue, pending) = mpsc::channel(RESULT_QUEUE);
    let writer = tokio::spawn(durable::write(ResultTable(store), pending, settings));
    (queue, writer)
}

struct ResultTable(MatchStore);

impl Destination for ResultTable {
    type Record = MatchRecord;
    type Spilled = MatchRecord;
    const WHAT: &'static str = "match result";

    async fn store(&self, record: &MatchRecord) -> Result<(), StoreError> {
        match rated_outcome(record) {
            Some(outcome) => self
                .0
                .record_rated(record, move |teams| rate(teams, outcome))
                .await
                .map(|_| ()),
            None => self.0.record(record).await.map(|_| ()),
        }
    }

    fn stored(&self, _record: MatchRecord) {}

    fn spilled(record: &MatchRecord) -> MatchRecord {
        record.clone()
    }

    fn replayed(record: MatchRecord) -> MatchRecord {
        record
    }

    fn count(outcome: &'static str) {
        m::match_result_write(outcome);
    }

    fn count_retry() {
        m::match_result_write_retry();
    }

    fn set_pending(count: usize) {
        m::match_results_pending(count);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use coil_game::PlayerResult;
    use coil_store::Leaderboard;

    use super::*;

    fn result(verified: bool) -> MatchResult {
        let account = AccountId::generate();
        MatchResult {
            ordinal: 3,
            winner: Some(0),
            reason: ResultReason::TimeLimit,
            team_scores: vec![12, 9],
            players: vec![
                PlayerResult {
                    player_key: account.as_str().to_owned(),
                    display_name: "Ann".into(),
                    team: 0,
                    kills: 12,
                    deaths: 4,
                    assists: 2,
                    score: 12,
                    left_early: false,
                    bot: false,
                    verified,
                },
                PlayerResult {
                    player_key: "bot-1".into(),
                    display_name: "Bot 1".into(),
                    team: 1,
                    kills: 9,
                    deaths: 12,
                    assists: 0,
                    score: 9,
                    left_early: false,
                    bot: true,
                    verified: false,
                },
            ],
            duration_ticks: 9_000,
            tick_rate: 30,
            details: vec![("map", "foundry".into())],
        }
    }

    #[test]
    fn a_record_carries_the_account_only_for_verified_humans() {
        let verified = record_of("room-a", "breach", "room-a:00000001:3", &result(true), 5);
        assert_eq!(verified.duration_ms, 300_000);
        assert_eq!(verified.reason, "time_limit");
        assert_eq!(
            verified.players[0].account.as_ref().map(AccountId::as_str),
            Some(verified.players[0].player_key.as_str())
        );
        assert_eq!(verified.players[1].account, None);
        assert_eq!(verified.details, [("map".to_owned(), "foundry".to_owned())]);
        // The same key from an unverified join is not taken for an account.
        let unverified = record_of("room-a", "breach", "room-a:00000001:3", &result(false), 5);
        assert_eq!(unverified.players[0].account, None);
    }

    #[tokio::test]
    async fn results_the_database_cannot_take_at_shutdown_are_spilled_and_replayed_once() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", directory.path().join("lb.db").display());
        let settings = WriterSettings {
            retry_min: Duration::from_millis(1),
            retry_max: Duration::from_millis(5),
            flush_deadline: Duration::from_millis(50),
            spill_file: Some(spill_file(directory.path())),
            ..WriterSettings::default()
        };
        let closed = Leaderboard::connect(&url).await.unwrap();
        closed.close().await;
        let (queue, writer) = start_writer(closed.matches(), settings.clone());
        let record = record_of("room-a", "breach", "room-a:00000001:3", &result(true), 5);
        queue.try_send(record.clone()).unwrap();
        // The same result twice (a replay) is stored once.
        queue.try_send(record.clone()).unwrap();
        drop(queue);
        writer.await.unwrap();
        let spilled = std::fs::read_to_string(spill_file(directory.path())).unwrap();
        assert_eq!(spilled.lines().count(), 2, "{spilled}");

        let leaderboard = Leaderboard::connect(&url).await.unwrap();
        let (queue, writer) = start_writer(leaderboard.matches(), settings);
        drop(queue);
        writer.await.unwrap();
        let store = leaderboard.matches();
        assert_eq!(store.get(&record.match_id).await.unwrap(), Some(record));
        assert!(!spill_file(directory.path()).exists());
    }

    fn all_accounts(winner: Option<u8>) -> (MatchRecord, Vec<AccountId>) {
        let accounts: Vec<AccountId> = (0..4).map(|_| AccountId::generate()).collect();
        let players = accounts
            .iter()
            .enumerate()
            .map(|(index, account)| PlayerResult {
                player_key: account.as_str().to_owned(),
                display_name: format!("p{index}"),
                team: u8::try_from(index % 2).unwrap(),
                kills: 1,
                deaths: 1,
                assists: 0,
                score: 1,
                left_early: false,
                bot: false,
                verified: true,
            })
            .collect();
        let result = MatchResult {
            winner,
            players,
            ..result(true)
        };
        (
            record_of("room-r", "breach", "room-r:00000002:1", &result, 9),
            accounts,
        )
    }

    #[tokio::test]
    async fn a_match_of_accounts_moves_ratings_once_and_one_with_bots_moves_none() {
        let directory = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", directory.path().join("lb.db").display());
        let leaderboard = Leaderboard::connect(&url).await.unwrap();
        let store = leaderboard.matches();
        let (queue, writer) = start_writer(leaderboard.matches(), WriterSettings::default());
        let (rated, accounts) = all_accounts(Some(1));
        queue.try_send(rated.clone()).unwrap();
        // A replay of the same result changes no rating.
        queue.try_send(rated).unwrap();
        // The bot match of `result(true)`: stored, rated for nobody.
        let with_bots = record_of("room-b", "breach", "room-b:00000003:1", &result(true), 9);
        let human = with_bots.players[0].account.clone().unwrap();
        queue.try_send(with_bots).unwrap();
        drop(queue);
        writer.await.unwrap();
        for (index, account) in accounts.iter().enumerate() {
            let rating = store.rating(account, "breach").await.unwrap().unwrap();
            assert_eq!(rating.matches, 1, "rated once");
            // Team 1 (odd seats) won.
            if index % 2 == 1 {
                assert!(rating.mean > Rating::NEW_ACCOUNT.mean, "{rating:?}");
            } else {
                assert!(rating.mean < Rating::NEW_ACCOUNT.mean, "{rating:?}");
            }
            assert!(rating.uncertainty < Rating::NEW_ACCOUNT.uncertainty);
            let changes = store.rating_changes(account, "breach", 10).await.unwrap();
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].before, None, "the first rated match");
        }
        assert_eq!(store.rating(&human, "breach").await.unwrap(), None);
        assert!(store.get("room-b:00000003:1").await.unwrap().is_some());
    }

    #[test]
    fn only_two_team_matches_of_accounts_that_ended_are_rated() {
        let (rated, _) = all_accounts(None);
        assert_eq!(rated_outcome(&rated), Some(MatchOutcome::Draw));
        let (won, _) = all_accounts(Some(0));
        assert_eq!(rated_outcome(&won), Some(MatchOutcome::FirstTeamWon));
        let mut no_such_winner = won.clone();
        no_such_winner.winner = Some(7);
        assert_eq!(rated_outcome(&no_such_winner), None);
        let mut abandoned = won.clone();
        abandoned.reason = "abandoned".into();
        assert_eq!(rated_outcome(&abandoned), None);
        let mut one_team = won.clone();
        for player in &mut one_team.players {
            player.team = 0;
        }
        assert_eq!(rated_outcome(&one_team), None);
        let mut anonymous = won;
        anonymous.players[2].account = None;
        assert_eq!(rated_outcome(&anonymous), None);
        assert_eq!(
            rated_outcome(&record_of("r", "breach", "r:1:1", &result(true), 0)),
            None,
            "a match with bots"
        );
    }
}
