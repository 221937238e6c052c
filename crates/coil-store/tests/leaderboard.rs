//! The leaderboard suite, run twice: against a real SQLite file in a temporary directory, and
//! against a real PostgreSQL in a fresh schema per test (only when `TEST_DATABASE_URL` is set;
//! CI always sets it). Every check is written once, as an `async fn` over a [`TestDatabase`],
//! and the `on_both_backends!` macro turns each into one test per backend.

use std::collections::HashSet;

use coil_store::{Leaderboard, Recorded, ScoreEntry, ScoreRow, StoreError};
use sqlx::Connection;

#[macro_use]
#[path = "support/database.rs"]
mod database;

use database::TestDatabase;

on_both_backends!(
    reports_its_backend,
    empty_leaderboard_has_no_rows,
    connecting_twice_runs_migrations_once_and_keeps_data,
    top_orders_by_score_then_newest_first,
    top_clamps_limit_to_between_1_and_100,
    record_is_idempotent_by_run_id,
    concurrent_records_of_one_run_store_it_once,
    record_stores_the_trimmed_name,
    record_refuses_invalid_names_and_stores_nothing,
    record_refuses_invalid_fields,
    extreme_scores_and_timestamps_round_trip,
    clones_share_one_store,
);

fn entry(run_id: &str, name: &str, score: u32, recorded_at_ms: i64) -> ScoreEntry {
    ScoreEntry {
        run_id: run_id.to_owned(),
        name: name.to_owned(),
        score,
        room: "room-1".to_owned(),
        recorded_at_ms,
    }
}

fn names(rows: &[ScoreRow]) -> Vec<&str> {
    rows.iter().map(|row| row.name.as_str()).collect()
}

async fn reports_its_backend(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    assert_eq!(leaderboard.backend(), database.expected_backend);
    leaderboard.close().await;
}

async fn empty_leaderboard_has_no_rows(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    assert_eq!(leaderboard.top(10).await.unwrap(), Vec::new());
    leaderboard.close().await;
}

async fn connecting_twice_runs_migrations_once_and_keeps_data(database: &TestDatabase) {
    let first = database.leaderboard().await;
    assert_eq!(
        first.record(&entry("run-a", "ada", 5, 100)).await.unwrap(),
        Recorded::Inserted
    );
    first.close().await;

    // The second connect finds the migrations applied and must neither fail nor wipe the table.
    let second = database.leaderboard().await;
    assert_eq!(
        second.record(&entry("run-a", "ada", 5, 100)).await.unwrap(),
        Recorded::AlreadyRecorded
    );
    assert_eq!(
        second.record(&entry("run-b", "bob", 7, 200)).await.unwrap(),
        Recorded::Inserted
    );
    assert_eq!(names(&second.top(10).await.unwrap()), ["bob", "ada"]);
    second.close().await;

    // A third connect while another pool is open is also fine (several nodes starting at once).
    let third = database.leaderboard().await;
    let fourth = database.leaderboard().await;
    assert_eq!(third.top(10).await.unwrap().len(), 2);
    assert_eq!(fourth.top(10).await.unwrap().len(), 2);
    third.close().await;
    fourth.close().await;
}

async fn top_orders_by_score_then_newest_first(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    // Inserted in an order that matches none of the orderings under test.
    let entries = [
        entry("r1", "low", 10, 5_000),
        entry("r2", "tie-old", 50, 1_000),
        entry("r3", "high", 90, 1_000),
        entry("r4", "tie-new", 50, 3_000),
        entry("r5", "tie-mid", 50, 2_000),
        entry("r6", "zero", 0, 9_000),
        // Same score and same millisecond as tie-new: inserted later, so listed first.
        entry("r7", "tie-new-2", 50, 3_000),
    ];
    for score_entry in &entries {
        assert_eq!(
            leaderboard.record(score_entry).await.unwrap(),
            Recorded::Inserted
        );
    }
    let top = leaderboard.top(10).await.unwrap();
    assert_eq!(
        names(&top),
        [
            "high",
            "tie-new-2",
            "tie-new",
            "tie-mid",
            "tie-old",
            "low",
            "zero"
        ]
    );
    assert_eq!(
        top[0],
        ScoreRow {
            name: "high".to_owned(),
            score: 90,
            room: "room-1".to_owned(),
            recorded_at_ms: 1_000,
        }
    );
    // A smaller limit is a prefix of the same order.
    assert_eq!(
        names(&leaderboard.top(3).await.unwrap()),
        ["high", "tie-new-2", "tie-new"]
    );
    leaderboard.close().await;
}

async fn top_clamps_limit_to_between_1_and_100(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    for index in 0..105_u32 {
        let run_id = format!("run-{index}");
        let name = format!("p{index}");
        leaderboard
            .record(&entry(&run_id, &name, index, i64::from(index)))
            .await
            .unwrap();
    }
    let zero = leaderboard.top(0).await.unwrap();
    assert_eq!(names(&zero), ["p104"], "limit 0 is raised to 1");
    assert_eq!(leaderboard.top(1).await.unwrap().len(), 1);
    assert_eq!(leaderboard.top(7).await.unwrap().len(), 7);
    assert_eq!(leaderboard.top(100).await.unwrap().len(), 100);
    let huge = leaderboard.top(u32::MAX).await.unwrap();
    assert_eq!(huge.len(), 100, "limits above 100 are lowered to 100");
    assert_eq!(huge.first().map(|row| row.score), Some(104));
    assert_eq!(huge.last().map(|row| row.score), Some(5));
    leaderboard.close().await;
}

async fn record_is_idempotent_by_run_id(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    let original = entry("run-1", "ada", 40, 1_000);
    assert_eq!(
        leaderboard.record(&original).await.unwrap(),
        Recorded::Inserted
    );
    assert_eq!(
        leaderboard.record(&original).await.unwrap(),
        Recorded::AlreadyRecorded
    );
    // A retry carrying different values does not overwrite the stored run.
    let conflicting = entry("run-1", "mallory", 9_999, 2_000);
    assert_eq!(
        leaderboard.record(&conflicting).await.unwrap(),
        Recorded::AlreadyRecorded
    );
    let top = leaderboard.top(10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!((top[0].name.as_str(), top[0].score), ("ada", 40));
    leaderboard.close().await;
}

async fn concurrent_records_of_one_run_store_it_once(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    let mut tasks = Vec::new();
    for attempt in 0..16_u32 {
        let leaderboard = leaderboard.clone();
        tasks.push(tokio::spawn(async move {
            leaderboard
                .record(&entry("shared-run", "ada", attempt, 1_000))
                .await
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == Recorded::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 1, "exactly one concurrent record wins");
    assert_eq!(leaderboard.top(100).await.unwrap().len(), 1);
    leaderboard.close().await;
}

async fn record_stores_the_trimmed_name(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    leaderboard
        .record(&entry("run-1", "  Ada_L-1.0  ", 3, 1))
        .await
        .unwrap();
    assert_eq!(names(&leaderboard.top(1).await.unwrap()), ["Ada_L-1.0"]);
    leaderboard.close().await;
}

async fn record_refuses_invalid_names_and_stores_nothing(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    let oversized = "a".repeat(17);
    let huge = "b".repeat(100_000);
    for (index, bad_name) in [
        "",
        "   ",
        "\u{430}dmin",
        "zero\u{200b}width",
        "a\u{202e}b",
        "tab\there",
        &oversized,
        &huge,
    ]
    .into_iter()
    .enumerate()
    {
        let run_id = format!("bad-{index}");
        match leaderboard.record(&entry(&run_id, bad_name, 1, 1)).await {
            Err(StoreError::InvalidEntry {
                field: "name",
                reason,
            }) => assert!(!reason.is_empty()),
            other => panic!("name {bad_name:?} should be refused, got {other:?}"),
        }
    }
    assert_eq!(leaderboard.top(100).await.unwrap(), Vec::new());
    // Unicode names players expect are stored and read back as they were (SQL is bound, so
    // punctuation is just text).
    for (index, good_name) in ["Zoë", "名前", "🐍snake", "x;DROP TABLE"]
        .into_iter()
        .enumerate()
    {
        leaderboard
            .record(&entry(
                &format!("good-{index}"),
                good_name,
                10 + index as u32,
                1,
            ))
            .await
            .unwrap();
    }
    let top = leaderboard.top(100).await.unwrap();
    let mut stored = names(&top);
    stored.sort();
    let mut expected = vec!["Zoë", "名前", "🐍snake", "x;DROP TABLE"];
    expected.sort();
    assert_eq!(stored, expected);
    leaderboard.close().await;
}

async fn record_refuses_invalid_fields(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    let cases = [
        (
            "run_id",
            ScoreEntry {
                run_id: String::new(),
                ..entry("x", "ada", 1, 1)
            },
        ),
        (
            "run_id",
            ScoreEntry {
                run_id: "r".repeat(129),
                ..entry("x", "ada", 1, 1)
            },
        ),
        (
            "room",
            ScoreEntry {
                room: String::new(),
                ..entry("y", "ada", 1, 1)
            },
        ),
        (
            "room",
            ScoreEntry {
                room: "r".repeat(65),
                ..entry("y", "ada", 1, 1)
            },
        ),
        ("recorded_at_ms", entry("z", "ada", 1, -5)),
    ];
    for (expected_field, bad) in cases {
        match leaderboard.record(&bad).await {
            Err(StoreError::InvalidEntry { field, .. }) => assert_eq!(field, expected_field),
            other => panic!("{bad:?} should be refused on {expected_field}, got {other:?}"),
        }
    }
    assert_eq!(leaderboard.top(100).await.unwrap(), Vec::new());
    // The longest accepted values do fit the schema's constraints.
    let longest = ScoreEntry {
        run_id: "r".repeat(128),
        room: "é".repeat(64),
        ..entry("unused", "abcdefghijklmnop", 1, 1)
    };
    assert_eq!(
        leaderboard.record(&longest).await.unwrap(),
        Recorded::Inserted
    );
    assert_eq!(leaderboard.top(1).await.unwrap()[0].room, "é".repeat(64));
    leaderboard.close().await;
}

async fn extreme_scores_and_timestamps_round_trip(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    leaderboard
        .record(&entry("max", "max", u32::MAX, i64::MAX))
        .await
        .unwrap();
    leaderboard
        .record(&entry("min", "min", 0, 0))
        .await
        .unwrap();
    let top = leaderboard.top(2).await.unwrap();
    assert_eq!((top[0].score, top[0].recorded_at_ms), (u32::MAX, i64::MAX));
    assert_eq!((top[1].score, top[1].recorded_at_ms), (0, 0));
    leaderboard.close().await;
}

async fn clones_share_one_store(database: &TestDatabase) {
    let leaderboard = database.leaderboard().await;
    let clone = leaderboard.clone();
    clone.record(&entry("run-1", "ada", 1, 1)).await.unwrap();
    assert_eq!(names(&leaderboard.top(5).await.unwrap()), ["ada"]);
    leaderboard.close().await;
}

// ---- backend-specific behaviour ----

#[tokio::test]
async fn sqlite_connect_creates_the_directory_and_file_in_wal_mode() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("a").join("b").join("leaderboard.db");
    let leaderboard = Leaderboard::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    leaderboard
        .record(&entry("run-1", "ada", 1, 1))
        .await
        .unwrap();
    assert!(file.is_file());
    leaderboard.close().await;

    // WAL is a property of the file, so a fresh connection sees it.
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let (journal_mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let (index_count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'scores_top_idx'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(index_count, 1);
    connection.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_top_query_is_served_by_the_index() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("lb.db").display());
    Leaderboard::connect(&url).await.unwrap().close().await;
    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT name, score, room, recorded_at FROM scores \
         ORDER BY score DESC, recorded_at DESC, id DESC LIMIT 10",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|detail| detail.contains("scores_top_idx")),
        "{details:?}"
    );
    assert!(
        !details.iter().any(|detail| detail.contains("TEMP B-TREE")),
        "{details:?}"
    );
    connection.close().await.unwrap();
}

#[tokio::test]
async fn sqlite_in_memory_url_works() {
    let leaderboard = Leaderboard::connect("sqlite::memory:").await.unwrap();
    leaderboard
        .record(&entry("run-1", "ada", 1, 1))
        .await
        .unwrap();
    assert_eq!(leaderboard.top(1).await.unwrap().len(), 1);
    leaderboard.close().await;
}

#[tokio::test]
async fn unusable_urls_are_config_errors_that_name_the_problem() {
    for (url, expected) in [
        ("mysql://root:hunter2@localhost/db", "mysql"),
        ("data/leaderboard.db", "(none)"),
        ("", "(none)"),
        (
            "postgres://postgres@127.0.0.1:notaport/test",
            "postgres url is invalid",
        ),
        ("sqlite://%FF%FE.db", "sqlite url is invalid"),
    ] {
        match Leaderboard::connect(url).await {
            Err(StoreError::Config { problem }) => {
                assert!(problem.contains(expected), "{url:?}: {problem}");
                assert!(
                    !problem.contains("hunter2"),
                    "the password leaked: {problem}"
                );
            }
            other => panic!("{url:?} should be a config error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_postgres_is_a_database_error_not_a_hang() {
    // Port 1 on loopback refuses connections, so this fails fast with a connect error.
    let settings = coil_store::LeaderboardSettings {
        connect_timeout: std::time::Duration::from_secs(10),
        ..coil_store::LeaderboardSettings::default()
    };
    match Leaderboard::connect_with("postgres://postgres@127.0.0.1:1/test", settings).await {
        Err(StoreError::Database { operation, .. }) => assert_eq!(operation, "connect to postgres"),
        Err(StoreError::Timeout { operation, .. }) => assert_eq!(operation, "connect to postgres"),
        other => panic!("expected a connect failure, got {other:?}"),
    }
}

#[tokio::test]
async fn calls_after_close_fail_with_an_error() {
    let leaderboard = Leaderboard::connect("sqlite::memory:").await.unwrap();
    leaderboard.close().await;
    assert!(matches!(
        leaderboard.top(1).await,
        Err(StoreError::Database {
            operation: "read top scores",
            ..
        })
    ));
}

#[tokio::test]
async fn postgres_schema_isolation_keeps_tests_apart() {
    // Two fresh schemas see only their own rows, which is what lets the suite run in parallel.
    let (Some(first), Some(second)) = (
        TestDatabase::postgres().await,
        TestDatabase::postgres().await,
    ) else {
        return;
    };
    let first_board = first.leaderboard().await;
    let second_board = second.leaderboard().await;
    first_board
        .record(&entry("run-1", "ada", 1, 1))
        .await
        .unwrap();
    assert_eq!(second_board.top(10).await.unwrap(), Vec::new());
    let distinct: HashSet<_> = [first.url.clone(), second.url.clone()]
        .into_iter()
        .collect();
    assert_eq!(distinct.len(), 2);
    first_board.close().await;
    second_board.close().await;
    first.drop_postgres_schema().await;
    second.drop_postgres_schema().await;
}

#[tokio::test]
async fn score_rows_serialize_in_camel_case() {
    let row = ScoreRow {
        name: "ada".to_owned(),
        score: 3,
        room: "r".to_owned(),
        recorded_at_ms: 7,
    };
    let json = serde_json::to_value(&row).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "ada", "score": 3, "room": "r", "recordedAtMs": 7})
    );
}

fn short_deadline_settings() -> coil_store::LeaderboardSettings {
    coil_store::LeaderboardSettings {
        statement_timeout: std::time::Duration::from_millis(300),
        ..coil_store::LeaderboardSettings::default()
    }
}

#[tokio::test]
async fn sqlite_record_gives_up_while_another_writer_holds_the_lock_then_recovers() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("lb.db").display());
    let leaderboard = Leaderboard::connect_with(&url, short_deadline_settings())
        .await
        .unwrap();

    // Another process (here: another connection) takes the write lock and sits on it.
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    match leaderboard.record(&entry("run-1", "ada", 1, 1)).await {
        // Either SQLite's busy timeout or our own deadline fires first; both end the call.
        Err(StoreError::Timeout { operation, .. } | StoreError::Database { operation, .. }) => {
            assert_eq!(operation, "record score");
        }
        other => panic!("record should fail while the database is locked, got {other:?}"),
    }
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();

    // A call abandoned by our deadline may still complete inside SQLite once the lock is gone
    // (the statement already left for sqlx's worker thread), so the failed call's outcome is
    // unknown. What must hold is the reason record is idempotent: the retry succeeds either way
    // and the run is stored exactly once.
    let retry = leaderboard
        .record(&entry("run-1", "ada", 1, 1))
        .await
        .unwrap();
    assert!(matches!(
        retry,
        Recorded::Inserted | Recorded::AlreadyRecorded
    ));
    assert_eq!(names(&leaderboard.top(10).await.unwrap()), ["ada"]);
    leaderboard.close().await;
}

#[tokio::test]
async fn postgres_calls_time_out_while_the_table_is_locked_then_recover() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let leaderboard = Leaderboard::connect_with(&database.url, short_deadline_settings())
        .await
        .unwrap();

    let mut blocker = sqlx::PgConnection::connect(&database.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query("LOCK TABLE scores IN ACCESS EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    match leaderboard.top(10).await {
        Err(StoreError::Timeout { operation, after }) => {
            assert_eq!(operation, "read top scores");
            assert_eq!(after, short_deadline_settings().statement_timeout);
        }
        other => panic!("top should time out while the table is locked, got {other:?}"),
    }
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();

    assert_eq!(
        leaderboard
            .record(&entry("run-1", "ada", 1, 1))
            .await
            .unwrap(),
        Recorded::Inserted
    );
    assert_eq!(leaderboard.top(10).await.unwrap().len(), 1);
    leaderboard.close().await;
    database.drop_postgres_schema().await;
}

#[test]
fn score_rows_read_back_from_json() {
    let text = r#"[{"name":"ada","score":3,"room":"r","recordedAtMs":7}]"#;
    let rows: Vec<ScoreRow> = serde_json::from_str(text).unwrap();
    assert_eq!(rows[0].recorded_at_ms, 7);
    assert_eq!(serde_json::to_string(&rows).unwrap(), text);
}
