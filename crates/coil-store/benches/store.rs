//! What a score costs: issuing and verifying a receipt (CPU only), and recording a run and
//! reading the top 100 on a real SQLite file holding 10,000 runs.
//!
//! Run with `cargo bench -p coil-store`. PostgreSQL is not benchmarked here because its cost is
//! dominated by the network round trip of the deployment, not by this crate.

use std::sync::atomic::{AtomicU64, Ordering};

use coil_store::{Leaderboard, ReceiptKey, ScoreEntry};

fn main() {
    divan::main();
}

fn sample_entry(run_number: u64) -> ScoreEntry {
    ScoreEntry {
        run_id: format!("run-{run_number:016x}"),
        name: "Ada Lovelace".to_owned(),
        score: u32::try_from(run_number % 100_000).unwrap_or(0),
        room: "eu-central-1/room-0042".to_owned(),
        recorded_at_ms: 1_763_700_000_000 + i64::try_from(run_number).unwrap_or(0),
    }
}

#[divan::bench]
fn receipt_issue(bencher: divan::Bencher) {
    let key = ReceiptKey::from_secret(&[3_u8; 32]).unwrap();
    let entry = sample_entry(1);
    bencher
        .counter(divan::counter::BytesCount::of_str(&key.issue(&entry)))
        .bench(|| key.issue(divan::black_box(&entry)));
}

#[divan::bench]
fn receipt_verify(bencher: divan::Bencher) {
    let key = ReceiptKey::from_secret(&[3_u8; 32]).unwrap();
    let receipt = key.issue(&sample_entry(1));
    bencher
        .counter(divan::counter::BytesCount::of_str(&receipt))
        .bench(|| key.verify(divan::black_box(&receipt)).unwrap());
}

/// A SQLite leaderboard with 10,000 runs in a temp dir, plus the runtime that drives it.
struct SqliteFixture {
    runtime: tokio::runtime::Runtime,
    leaderboard: Leaderboard,
    _directory: tempfile::TempDir,
}

fn sqlite_fixture() -> SqliteFixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let directory = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", directory.path().join("bench.db").display());
    let leaderboard = runtime.block_on(async {
        let leaderboard = Leaderboard::connect(&url).await.unwrap();
        for run_number in 0..10_000 {
            leaderboard.record(&sample_entry(run_number)).await.unwrap();
        }
        leaderboard
    });
    SqliteFixture {
        runtime,
        leaderboard,
        _directory: directory,
    }
}

#[divan::bench(sample_count = 30)]
fn sqlite_top_100_of_10k(bencher: divan::Bencher) {
    let fixture = sqlite_fixture();
    bencher.bench_local(|| {
        fixture
            .runtime
            .block_on(fixture.leaderboard.top(100))
            .unwrap()
    });
}

#[divan::bench(sample_count = 30)]
fn sqlite_record_new_run(bencher: divan::Bencher) {
    let fixture = sqlite_fixture();
    let next_run = AtomicU64::new(1_000_000);
    bencher.bench_local(|| {
        let entry = sample_entry(next_run.fetch_add(1, Ordering::Relaxed));
        fixture
            .runtime
            .block_on(fixture.leaderboard.record(&entry))
            .unwrap()
    });
}
