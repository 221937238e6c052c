//! The match tables, run on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL: a match and its
//! players round-trip, a replayed result is stored once, concurrent replays too, bad records
//! are refused with a reason, an account's history pages newest first without gaps or
//! repeats, and a rated match moves its accounts' ratings once, in its own transaction.

#[macro_use]
#[path = "support/database.rs"]
mod database;

use std::sync::atomic::{AtomicUsize, Ordering};

use coil_store::{
    AccountId, HistoryCursor, MatchPlayer, MatchRecord, NewRating, NewRatings, RankedCursor,
    RatedSeat, Recorded, StoreError,
};
use database::TestDatabase;

on_both_backends!(
    a_match_and_its_players_round_trip,
    a_replayed_result_is_stored_once,
    concurrent_replays_store_one_match,
    bad_records_are_refused_with_the_field,
    history_pages_newest_first_without_gaps_or_repeats,
    history_lists_only_the_accounts_own_matches,
    a_rated_match_moves_ratings_once_with_its_history,
    a_rated_match_needs_accounts_and_one_rating_per_seat,
    the_ranked_leaderboard_lists_calibrated_accounts_best_first_in_pages,
);

fn player(account: Option<&AccountId>, key: &str, team: u8, kills: u32) -> MatchPlayer {
    MatchPlayer {
        account: account.cloned(),
        player_key: key.to_owned(),
        display_name: format!("Pläyer {}", &key[..key.len().min(8)]),
        team,
        kills,
        deaths: 2,
        assists: 1,
        score: i64::from(kills) * 100 - 7,
        left_early: false,
        bot: account.is_none(),
    }
}

fn record(match_id: &str, ended_at_ms: i64, players: Vec<MatchPlayer>) -> MatchRecord {
    MatchRecord {
        match_id: match_id.to_owned(),
        mode: "breach".to_owned(),
        room: "eu-abc".to_owned(),
        winner: Some(1),
        reason: "kill_limit".to_owned(),
        team_scores: vec![47, 50],
        duration_ms: 612_000,
        ended_at_ms,
        details: vec![
            ("map".to_owned(), "foundry".to_owned()),
            ("friendlyFire".to_owned(), "off".to_owned()),
        ],
        players,
    }
}

async fn a_match_and_its_players_round_trip(database: &TestDatabase) {
    let store = database.matches().await;
    let account = AccountId::generate();
    let mut written = record(
        "eu-abc:1f2e3d4c:1",
        1_700_000_000_000,
        vec![
            player(Some(&account), account.as_str(), 0, 9),
            player(None, "bot-3", 1, 4),
        ],
    );
    written.players[1].left_early = true;
    assert_eq!(store.record(&written).await.unwrap(), Recorded::Inserted);
    let read = store.get(&written.match_id).await.unwrap().expect("stored");
    // Details are a map: they come back sorted by name.
    written.details.sort();
    assert_eq!(read, written);
    // A draw has no winner.
    let mut draw = record("eu-abc:1f2e3d4c:2", 1_700_000_100_000, Vec::new());
    draw.winner = None;
    store.record(&draw).await.unwrap();
    assert_eq!(
        store.get(&draw.match_id).await.unwrap().unwrap().winner,
        None
    );
    assert_eq!(store.get("eu-abc:nope:1").await.unwrap(), None);
}

async fn a_replayed_result_is_stored_once(database: &TestDatabase) {
    let store = database.matches().await;
    let account = AccountId::generate();
    let first = record(
        "m-replayed",
        10,
        vec![player(Some(&account), account.as_str(), 0, 3)],
    );
    assert_eq!(store.record(&first).await.unwrap(), Recorded::Inserted);
    // The same id with other contents (a buggy replay) changes nothing.
    let mut replay = first.clone();
    replay.team_scores = vec![0, 0];
    replay.players.push(player(None, "bot-1", 1, 99));
    assert_eq!(
        store.record(&replay).await.unwrap(),
        Recorded::AlreadyRecorded
    );
    let mut expected = first.clone();
    expected.details.sort();
    assert_eq!(store.get("m-replayed").await.unwrap().unwrap(), expected);
    let history = store.history(&account, None, 10).await.unwrap();
    assert_eq!(history.len(), 1);
}

async fn concurrent_replays_store_one_match(database: &TestDatabase) {
    let store = database.matches().await;
    let account = AccountId::generate();
    let result = record(
        "m-concurrent",
        20,
        vec![
            player(Some(&account), account.as_str(), 0, 5),
            player(None, "bot-2", 1, 1),
        ],
    );
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, result) = (store.clone(), result.clone());
        writers.spawn(async move { store.record(&result).await });
    }
    let mut inserted = 0;
    while let Some(outcome) = writers.join_next().await {
        match outcome.unwrap() {
            Ok(Recorded::Inserted) => inserted += 1,
            Ok(Recorded::AlreadyRecorded) => {}
            // SQLite may report a busy writer: a transient failure the node's writer retries.
            Err(error) => assert!(error.is_transient(), "{error}"),
        }
    }
    assert_eq!(inserted, 1);
    let stored = store.get("m-concurrent").await.unwrap().unwrap();
    assert_eq!(stored.players.len(), 2);
}

/// One way to make a good record bad.
type Spoil = Box<dyn Fn(&mut MatchRecord)>;

async fn bad_records_are_refused_with_the_field(database: &TestDatabase) {
    let store = database.matches().await;
    let good = record("m-good", 30, vec![player(None, "bot-1", 0, 1)]);
    let cases: Vec<(&str, Spoil)> = vec![
        ("match_id", Box::new(|r| r.match_id = String::new())),
        ("match_id", Box::new(|r| r.match_id = "has space".into())),
        ("match_id", Box::new(|r| r.match_id = "x".repeat(129))),
        ("mode", Box::new(|r| r.mode = "m".repeat(33))),
        ("room", Box::new(|r| r.room = "a\u{7}b".into())),
        ("reason", Box::new(|r| r.reason = String::new())),
        ("ended_at_ms", Box::new(|r| r.ended_at_ms = -1)),
        (
            "players",
            Box::new(|r| r.players = vec![r.players[0].clone(); 65]),
        ),
        (
            "player_key",
            Box::new(|r| r.players[0].player_key = String::new()),
        ),
        (
            "display_name",
            Box::new(|r| r.players[0].display_name = "n".repeat(33)),
        ),
    ];
    for (field, spoil) in cases {
        let mut bad = good.clone();
        spoil(&mut bad);
        match store.record(&bad).await {
            Err(error @ StoreError::InvalidEntry { field: got, .. }) => {
                assert_eq!(got, field, "{error}");
                assert!(!error.is_transient(), "a bad record must not be retried");
            }
            other => panic!("{field}: expected a refusal, got {other:?}"),
        }
        assert_eq!(store.get(&bad.match_id).await.unwrap(), None);
    }
    assert_eq!(store.record(&good).await.unwrap(), Recorded::Inserted);
}

async fn history_pages_newest_first_without_gaps_or_repeats(database: &TestDatabase) {
    let store = database.matches().await;
    let account = AccountId::generate();
    // 25 matches; pairs share an end time so the cursor's tie-break on the id is exercised.
    let mut expected = Vec::new();
    for index in 0..25_i64 {
        let id = format!("m-{index:02}");
        let ended = 1_000 + index / 2;
        store
            .record(&record(
                &id,
                ended,
                vec![player(Some(&account), account.as_str(), 0, 1)],
            ))
            .await
            .unwrap();
        expected.push((ended, id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let mut seen = Vec::new();
    let mut cursor: Option<HistoryCursor> = None;
    loop {
        let page = store.history(&account, cursor.as_ref(), 7).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        cursor = Some(HistoryCursor {
            ended_at_ms: last.ended_at_ms,
            match_id: last.match_id.clone(),
        });
        seen.extend(
            page.iter()
                .map(|entry| (entry.ended_at_ms, entry.match_id.clone())),
        );
    }
    assert_eq!(seen, expected);
    // The limit is clamped: 0 reads one entry, a huge one at most 100.
    assert_eq!(store.history(&account, None, 0).await.unwrap().len(), 1);
    assert_eq!(
        store.history(&account, None, 10_000).await.unwrap().len(),
        25
    );
}

async fn history_lists_only_the_accounts_own_matches(database: &TestDatabase) {
    let store = database.matches().await;
    let (ann, bob) = (AccountId::generate(), AccountId::generate());
    store
        .record(&record(
            "m-both",
            50,
            vec![
                player(Some(&ann), ann.as_str(), 0, 7),
                player(Some(&bob), bob.as_str(), 1, 2),
            ],
        ))
        .await
        .unwrap();
    store
        .record(&record(
            "m-bob",
            60,
            vec![player(Some(&bob), bob.as_str(), 1, 4)],
        ))
        .await
        .unwrap();
    let anns = store.history(&ann, None, 10).await.unwrap();
    assert_eq!(anns.len(), 1);
    assert_eq!(anns[0].match_id, "m-both");
    assert_eq!(anns[0].player.kills, 7, "the account's own line");
    assert_eq!(anns[0].team_scores, vec![47, 50]);
    let bobs: Vec<String> = store
        .history(&bob, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.match_id)
        .collect();
    assert_eq!(bobs, ["m-bob", "m-both"]);
    assert!(
        store
            .history(&AccountId::generate(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn rating(mean: f64, uncertainty: f64) -> NewRating {
    NewRating {
        mean,
        uncertainty,
        displayed: None,
    }
}

/// A stand-in rating rule (the model lives in coil-match): winners +1, losers −1, from 25.
fn plus_minus_one(teams: &[Vec<RatedSeat>], winner: usize) -> Option<NewRatings> {
    Some(
        teams
            .iter()
            .enumerate()
            .map(|(index, team)| {
                team.iter()
                    .map(|seat| {
                        let mean = seat.current.map_or(25.0, |r| r.mean);
                        let step = if index == winner { 1.0 } else { -1.0 };
                        let played = seat.current.map_or(0, |r| r.matches) + 1;
                        NewRating {
                            mean: mean + step,
                            uncertainty: 8.0 - f64::from(played - 1),
                            // Calibrated after two matches, ranked by the mean.
                            displayed: (played >= 2).then_some(mean + step),
                        }
                    })
                    .collect()
            })
            .collect(),
    )
}

fn two_v_two(match_id: &str, ended_at_ms: i64, accounts: &[AccountId]) -> MatchRecord {
    let players = accounts
        .iter()
        .enumerate()
        .map(|(index, account)| {
            let mut line = player(Some(account), account.as_str(), (index % 2) as u8, 1);
            line.bot = false;
            line
        })
        .collect();
    record(match_id, ended_at_ms, players)
}

async fn a_rated_match_moves_ratings_once_with_its_history(database: &TestDatabase) {
    let store = database.matches().await;
    let accounts: Vec<AccountId> = (0..4).map(|_| AccountId::generate()).collect();
    let calls = AtomicUsize::new(0);
    let first = two_v_two("m-r1", 100, &accounts);
    let rate = |teams: &[Vec<RatedSeat>]| {
        calls.fetch_add(1, Ordering::SeqCst);
        // Teams arrive in index order, seats in seat order, never rated yet.
        assert_eq!(teams.len(), 2);
        assert!(teams.iter().flatten().all(|seat| seat.current.is_none()));
        plus_minus_one(teams, 1)
    };
    assert_eq!(
        store.record_rated(&first, rate).await.unwrap(),
        Recorded::Inserted
    );
    // A replay stores nothing and never asks for ratings.
    assert_eq!(
        store
            .record_rated(&first, |_: &[Vec<RatedSeat>]| panic!(
                "a replay is not rated"
            ))
            .await
            .unwrap(),
        Recorded::AlreadyRecorded
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let second = two_v_two("m-r2", 200, &accounts);
    store
        .record_rated(&second, |teams: &[Vec<RatedSeat>]| {
            assert!(teams.iter().flatten().all(|seat| seat.current.is_some()));
            plus_minus_one(teams, 1)
        })
        .await
        .unwrap();
    for (index, account) in accounts.iter().enumerate() {
        let rating = store.rating(account, "breach").await.unwrap().unwrap();
        let expected = if index % 2 == 1 { 27.0 } else { 23.0 };
        assert_eq!(
            (rating.mean, rating.uncertainty, rating.matches),
            (expected, 7.0, 2)
        );
        let changes = store.rating_changes(account, "breach", 10).await.unwrap();
        let ids: Vec<&str> = changes.iter().map(|c| c.match_id.as_str()).collect();
        assert_eq!(ids, ["m-r2", "m-r1"], "newest first");
        assert_eq!(changes[1].before, None);
        assert_eq!(changes[0].before, Some(changes[1].after));
        assert_eq!(changes[0].after, (expected, 7.0));
    }
    // Another mode's rating is its own.
    assert_eq!(store.rating(&accounts[0], "arena").await.unwrap(), None);
}

async fn a_rated_match_needs_accounts_and_one_rating_per_seat(database: &TestDatabase) {
    let store = database.matches().await;
    let accounts: Vec<AccountId> = (0..4).map(|_| AccountId::generate()).collect();
    let mut anonymous = two_v_two("m-anon", 300, &accounts);
    anonymous.players[3].account = None;
    match store
        .record_rated(&anonymous, |teams: &[Vec<RatedSeat>]| {
            plus_minus_one(teams, 0)
        })
        .await
    {
        Err(StoreError::InvalidEntry { field, .. }) => assert_eq!(field, "players"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let short = two_v_two("m-short", 300, &accounts);
    let refused = store
        .record_rated(&short, |_: &[Vec<RatedSeat>]| {
            Some(vec![vec![rating(25.0, 8.0)]])
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::InvalidEntry {
                field: "ratings",
                ..
            })
        ),
        "{refused:?}"
    );
    let not_finite = two_v_two("m-nan", 300, &accounts);
    let refused = store
        .record_rated(&not_finite, |_: &[Vec<RatedSeat>]| {
            Some(vec![vec![rating(f64::NAN, 1.0); 2]; 2])
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidEntry { .. })),
        "{refused:?}"
    );
    // Refused in the transaction: neither the match nor any rating was kept.
    for id in ["m-anon", "m-short", "m-nan"] {
        assert_eq!(store.get(id).await.unwrap(), None, "{id}");
    }
    assert_eq!(store.rating(&accounts[0], "breach").await.unwrap(), None);
    // Unrated (the rating function declines): the match is stored, no rating moves.
    store
        .record_rated(
            &two_v_two("m-unrated", 400, &accounts),
            |_: &[Vec<RatedSeat>]| None,
        )
        .await
        .unwrap();
    assert!(store.get("m-unrated").await.unwrap().is_some());
    assert_eq!(store.rating(&accounts[0], "breach").await.unwrap(), None);
}

async fn the_ranked_leaderboard_lists_calibrated_accounts_best_first_in_pages(
    database: &TestDatabase,
) {
    let accounts_store = database.accounts().await;
    let mut accounts = Vec::new();
    for index in 0..4 {
        let (account, _) = accounts_store
            .guest_for_device(&format!("{index:064}"), &format!("Guest {index}"), None, 1)
            .await
            .unwrap();
        accounts.push(account.id);
    }
    let store = database.matches().await;
    // One match: nobody is calibrated yet (the stand-in rule calibrates after two).
    store
        .record_rated(
            &two_v_two("m-l1", 100, &accounts),
            |teams: &[Vec<RatedSeat>]| plus_minus_one(teams, 1),
        )
        .await
        .unwrap();
    assert!(
        store
            .ranked_leaderboard("breach", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Two more: team 1 (seats 1 and 3) won both, then team 0 won one.
    store
        .record_rated(
            &two_v_two("m-l2", 200, &accounts),
            |teams: &[Vec<RatedSeat>]| plus_minus_one(teams, 1),
        )
        .await
        .unwrap();
    let board = store.ranked_leaderboard("breach", None, 10).await.unwrap();
    let order: Vec<(&str, f64)> = board
        .iter()
        .map(|entry| (entry.account_id.as_str(), entry.displayed))
        .collect();
    let mut winners = [accounts[1].as_str(), accounts[3].as_str()];
    winners.sort();
    let mut losers = [accounts[0].as_str(), accounts[2].as_str()];
    losers.sort();
    assert_eq!(
        order,
        [
            (winners[0], 27.0),
            (winners[1], 27.0),
            (losers[0], 23.0),
            (losers[1], 23.0)
        ],
        "best first, ties by account id"
    );
    assert!(board.iter().all(|entry| entry.matches == 2));
    assert!(board[0].display_name.starts_with("Guest "));
    // Pages of one, following the cursor, give the same order without repeats.
    let mut paged = Vec::new();
    let mut cursor: Option<RankedCursor> = None;
    loop {
        let page = store
            .ranked_leaderboard("breach", cursor.as_ref(), 1)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some(RankedCursor {
            displayed: last.displayed,
            account_id: last.account_id.clone(),
        });
        paged.extend(page.iter().map(|entry| entry.account_id.clone()));
        assert!(paged.len() <= 4, "{paged:?}");
    }
    let listed: Vec<String> = board.iter().map(|e| e.account_id.clone()).collect();
    assert_eq!(paged, listed);
    // Another mode has its own (empty) board.
    assert!(
        store
            .ranked_leaderboard("arena", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
