//! The leaderboard while PostgreSQL is unreachable and after it returns, through a proxy the
//! test cuts and restores (the shared PostgreSQL of other tests is never stopped). Runs when
//! `TEST_DATABASE_URL` is set (CI sets it).

#[path = "support/outage_proxy.rs"]
mod outage_proxy;

use std::time::{Duration, Instant};

use coil_store::{Leaderboard, LeaderboardSettings, ScoreEntry, StoreError};
use outage_proxy::{OutageProxy, postgres_address};
use sqlx::Connection;

fn entry(run: u32) -> ScoreEntry {
    ScoreEntry {
        run_id: format!("outage-run-{run}"),
        name: "ada".into(),
        score: run + 1,
        room: "room-a".into(),
        recorded_at_ms: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_fast_and_is_used_again_once_it_returns() {
    let Ok(base_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let schema = format!("outage_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let proxy = OutageProxy::start(postgres_address(&base_url)).await;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options[search_path]={schema}",
        proxy.rewrite_url(&base_url)
    );
    let settings = LeaderboardSettings {
        statement_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_millis(300),
        fail_fast_for: Duration::from_millis(500),
        ..LeaderboardSettings::default()
    };
    let leaderboard = Leaderboard::connect_with(&url, settings).await.unwrap();
    leaderboard.record(&entry(0)).await.unwrap();

    proxy.cut();
    let started = Instant::now();
    let failure = leaderboard.record(&entry(1)).await.unwrap_err();
    let first_failure = started.elapsed();
    assert!(failure.is_transient(), "{failure:?}");
    // Refused connections are retried by the pool until the acquire deadline, no longer.
    assert!(
        first_failure < Duration::from_millis(1500),
        "{first_failure:?}"
    );
    assert!(!leaderboard.is_available());
    // Meanwhile every other call fails at once instead of waiting out its own deadline.
    let started = Instant::now();
    for _ in 0..100 {
        match leaderboard.top(5).await {
            Err(StoreError::Unavailable { operation }) => assert_eq!(operation, "read top scores"),
            other => panic!("expected a fast failure, got {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );

    proxy.restore();
    let restored = Instant::now();
    loop {
        match leaderboard.record(&entry(1)).await {
            Ok(_) => break,
            Err(error) => assert!(error.is_transient(), "{error:?}"),
        }
        assert!(
            restored.elapsed() < Duration::from_secs(3),
            "the database was not used again within 3 s of its return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "first failure after {first_failure:?}; used again {:?} after the database returned",
        restored.elapsed()
    );
    assert!(leaderboard.is_available());
    let scores: Vec<u32> = leaderboard
        .top(10)
        .await
        .unwrap()
        .iter()
        .map(|row| row.score)
        .collect();
    assert_eq!(scores, [2, 1]);
    leaderboard.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}
