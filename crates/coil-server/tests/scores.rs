//! The score writer under faults: receipts are released only after their row is durable (a
//! SIGKILLed process never leaves a player holding a receipt for a missing row), and runs
//! recorded while PostgreSQL is unreachable are all stored once it returns.

#[path = "../../coil-store/tests/support/outage_proxy.rs"]
mod outage_proxy;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coil_game::PlayerId;
use coil_server::room::RoomId;
use coil_server::scores::{DurableReceipt, WriterSettings, start_writer_with};
use coil_store::{Leaderboard, LeaderboardSettings, ReceiptKey, Recorded};
use outage_proxy::{OutageProxy, postgres_address};

const CHILD_DATABASE: &str = "COIL_SCORES_TEST_CHILD_DATABASE";

fn key() -> Arc<ReceiptKey> {
    Arc::new(ReceiptKey::from_secret(&[9u8; 32]).unwrap())
}

/// True when `entry`'s row is stored (recording it again finds it there).
async fn stored(leaderboard: &Leaderboard, receipt: &str) -> bool {
    let entry = key().verify(receipt).expect("a receipt we issued");
    leaderboard.record(&entry).await.unwrap() == Recorded::AlreadyRecorded
}

/// The child's part: a burst of 500 deaths in one tick (a big room's worst case), then it
/// prints each receipt the moment the writer releases it, until it is killed.
async fn record_until_killed(database: &str) -> ! {
    let leaderboard = Leaderboard::connect(database).await.unwrap();
    let (sink, _writer) = start_writer_with(leaderboard, key(), "child", WriterSettings::default());
    let room = RoomId::parse("room-a").unwrap();
    for player in 1..=500 {
        sink.record_durable(&room, PlayerId(player), "ann", None, player);
    }
    let mut ready = Vec::new();
    loop {
        sink.take_durable_receipts(&mut ready);
        for DurableReceipt { receipt, .. } in ready.drain(..) {
            println!("RECEIPT {receipt}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One test, two roles: run normally it starts itself again as the child (the same test, with
/// the database in an environment variable), reads receipts from it, SIGKILLs it mid-stream and
/// checks every receipt it read names a stored row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_handed_out_before_a_sigkill_always_names_a_stored_row() {
    if let Ok(database) = std::env::var(CHILD_DATABASE) {
        record_until_killed(&database).await;
    }
    let directory = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", directory.path().join("lb.db").display());
    // Create the schema first, so the child starts writing at once.
    Leaderboard::connect(&database).await.unwrap().close().await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_receipt_handed_out_before_a_sigkill_always_names_a_stored_row",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, &database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut receipts = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(receipt) = line.strip_prefix("RECEIPT ") {
                receipts.push(receipt.to_string());
                if receipts.len() == 50 {
                    break;
                }
            }
        }
        receipts
    });
    let receipts = reader.join().unwrap();
    // SIGKILL right after the 50th receipt: most of the burst is still on its way to the disk.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(receipts.len(), 50, "the child stopped early");
    let leaderboard = Leaderboard::connect(&database).await.unwrap();
    let mut missing = 0;
    for receipt in &receipts {
        if !stored(&leaderboard, receipt).await {
            missing += 1;
        }
    }
    assert_eq!(missing, 0, "{missing} of 50 receipts name no stored row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_recorded_while_postgres_is_unreachable_are_all_stored_when_it_returns() {
    let Ok(base_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    // A fresh schema through a proxy this test cuts; the shared server keeps running.
    let schema = format!("scores_{:016x}", rand_u64());
    let proxy = OutageProxy::start(postgres_address(&base_url)).await;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let create = format!("{base_url}{separator}options[search_path]={schema}");
    create_schema(&base_url, &schema).await;
    let url = proxy.rewrite_url(&create);
    let settings = LeaderboardSettings {
        acquire_timeout: Duration::from_millis(200),
        fail_fast_for: Duration::from_millis(200),
        ..LeaderboardSettings::default()
    };
    let leaderboard = Leaderboard::connect_with(&url, settings).await.unwrap();
    let writer_settings = WriterSettings {
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..WriterSettings::default()
    };
    let (sink, writer) = start_writer_with(leaderboard.clone(), key(), "node-a", writer_settings);
    let room_sink = sink.for_room();
    let room = RoomId::parse("room-a").unwrap();

    proxy.cut();
    for player in 1..=100 {
        assert!(room_sink.record_durable(&room, PlayerId(player), "ann", None, player));
    }
    // While the database is away no receipt is released: none of those rows exists.
    let mut ready = Vec::new();
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_millis(500) {
        room_sink.take_durable_receipts(&mut ready);
        assert!(ready.is_empty(), "a receipt before its row was stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.restore();
    let restored = Instant::now();
    while ready.len() < 100 {
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "only {} of 100 runs stored 10 s after the database returned",
            ready.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        room_sink.take_durable_receipts(&mut ready);
    }
    eprintln!(
        "100 runs queued during the outage stored {:?} after the database returned",
        restored.elapsed()
    );
    let mut players: Vec<u32> = ready.iter().map(|ready| ready.player.0).collect();
    players.sort_unstable();
    assert_eq!(players, (1..=100).collect::<Vec<_>>());
    for ready in &ready {
        assert!(stored(&leaderboard, &ready.receipt).await);
    }
    assert_eq!(leaderboard.top(100).await.unwrap().len(), 100);
    drop((sink, room_sink));
    writer.await.unwrap();
    drop_schema(&base_url, &schema).await;
}

async fn create_schema(base_url: &str, schema: &str) {
    run_sql(base_url, &format!("CREATE SCHEMA {schema}")).await;
}

async fn drop_schema(base_url: &str, schema: &str) {
    run_sql(base_url, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

async fn run_sql(base_url: &str, statement: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(base_url).await.unwrap();
    sqlx::query(statement).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}
