//! Server-side score recording: a room hands a finished run to [`ScoreSink`], which queues the
//! row for a single writer task; the writer retries a row until the database has it, and hands
//! its receipt back to the room once the row is durable.
//!
//! # Receipts after durability
//! A score receipt is proof that the leaderboard holds a row, so it is released only after the
//! row committed: [`ScoreSink::record_durable`] queues the run, and the room picks the receipts
//! that became durable up with [`ScoreSink::take_durable_receipts`] (no waiting: a short lock on
//! a per-room list the writer fills), and writes each into its player's next message. A crash
//! between the death and the commit loses the run and no receipt was handed out for it.
//!
//! # Nothing lost while the database is down
//! The queue holds [`SCORE_QUEUE`] runs (minutes of deaths for a node); the writer
//! (`durable.rs`) retries the oldest run with backoff (100 ms doubling to 5 s) and takes no new
//! run from the queue until it is stored, so a long outage fills the queue and only then are
//! runs dropped (counted in `coil_leaderboard_writes_total{result="dropped"}`). At shutdown the
//! writer keeps trying for `flush_deadline`, then writes the runs it could not store to the
//! spill file, which the next start replays (recording is idempotent by run id).
//!
//! A room never waits on the database; nothing here blocks a runtime thread.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use coil_game::PlayerId;
use coil_store::{AccountId, Leaderboard, ReceiptKey, ScoreEntry, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use crate::durable::WriterSettings;
use crate::durable::{self, Destination};
use crate::metrics as m;
use crate::room::{RoomId, unix_millis};

/// Runs waiting for the writer. A node records a few hundred deaths per second at most, so this
/// rides out minutes of database outage; an entry is ~200 bytes, 20 MB when full. Overflow
/// policy: the newest run is dropped and counted.
pub const SCORE_QUEUE: usize = 100_000;

/// A receipt whose row is durable, for the room to send to `player`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableReceipt {
    pub player: PlayerId,
    pub receipt: String,
}

/// Receipts of one room that became durable since the room last looked.
#[derive(Debug, Default)]
struct ReceiptInbox {
    ready: Mutex<Vec<DurableReceipt>>,
}

/// A receipt waiting for its row to commit.
struct PendingReceipt {
    inbox: Weak<ReceiptInbox>,
    player: PlayerId,
    receipt: String,
}

/// One run on its way to the database.
struct Pending {
    entry: ScoreEntry,
    /// The player's account (an account or guest id from the join token), if it has one.
    account: Option<AccountId>,
    receipt: Option<PendingReceipt>,
}

/// Where a room records finished runs. Cheap to clone; give each room its own with
/// [`ScoreSink::for_room`] (clones share the receipt inbox, so two rooms on one clone would see
/// each other's receipts).
#[derive(Clone)]
pub struct ScoreSink {
    queue: Queue,
    receipts: Arc<ReceiptKey>,
    node_id: Arc<str>,
    inbox: Arc<ReceiptInbox>,
}

/// Where queued runs go.
#[derive(Clone)]
enum Queue {
    /// The writer task.
    Writer(mpsc::Sender<Pending>),
    /// A test reading the entries itself; no receipt ever becomes durable.
    Entries(mpsc::Sender<ScoreEntry>),
}

impl ScoreSink {
    /// A sink feeding `queue` directly (a test that reads the queue instead of a writer task;
    /// receipts from [`ScoreSink::record_durable`] are then never released).
    pub fn new(
        queue: mpsc::Sender<ScoreEntry>,
        receipts: Arc<ReceiptKey>,
        node_id: &str,
    ) -> ScoreSink {
        ScoreSink {
            queue: Queue::Entries(queue),
            receipts,
            node_id: node_id.into(),
            inbox: Arc::default(),
        }
    }

    fn with_writer(
        queue: mpsc::Sender<Pending>,
        receipts: Arc<ReceiptKey>,
        node_id: &str,
    ) -> ScoreSink {
        ScoreSink {
            queue: Queue::Writer(queue),
            receipts,
            node_id: node_id.into(),
            inbox: Arc::default(),
        }
    }

    /// The same writer, with a receipt inbox of its own: one per room.
    pub fn for_room(&self) -> ScoreSink {
        ScoreSink {
            inbox: Arc::default(),
            ..self.clone()
        }
    }

    fn entry(&self, room: &RoomId, name: &str, score: u32) -> ScoreEntry {
        ScoreEntry {
            run_id: format!("{}-{:032x}", self.node_id, rand::random::<u128>()),
            name: name.to_string(),
            score,
            room: room.to_string(),
            recorded_at_ms: unix_millis(),
        }
    }

    fn enqueue(&self, pending: Pending) -> bool {
        let queued = match &self.queue {
            Queue::Writer(queue) => queue.try_send(pending).is_ok(),
            Queue::Entries(queue) => queue.try_send(pending.entry).is_ok(),
        };
        if !queued {
            m::leaderboard_write("dropped");
            crate::rate_limited_warn!("leaderboard queue full: dropping a score");
            return false;
        }
        true
    }

    /// Records a finished run of `player`; its receipt comes back through
    /// [`ScoreSink::take_durable_receipts`] once the row is durable. The row carries `account`
    /// (a join token's account or guest id; anything that is not a valid account id is
    /// recorded without one). False if nothing was queued (an empty score, or the queue is
    /// full).
    pub fn record_durable(
        &self,
        room: &RoomId,
        player: PlayerId,
        name: &str,
        account: Option<&str>,
        score: u32,
    ) -> bool {
        if score == 0 {
            return false;
        }
        let entry = self.entry(room, name, score);
        let receipt = PendingReceipt {
            inbox: Arc::downgrade(&self.inbox),
            player,
            receipt: self.receipts.issue(&entry),
        };
        self.enqueue(Pending {
            entry,
            account: account.and_then(|id| AccountId::parse(id).ok()),
            receipt: Some(receipt),
        })
    }

    /// Moves the receipts that became durable since the last call into `out`. Never waits on
    /// the database: it takes a lock the writer holds only to push one receipt.
    pub fn take_durable_receipts(&self, out: &mut Vec<DurableReceipt>) {
        let mut ready = self
            .inbox
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        out.append(&mut ready);
    }
}

/// Starts the writer task with [`WriterSettings::default`] (no spill file). It ends when every
/// sink is dropped and the queue is empty (or the flush deadline passed).
pub fn start_writer(
    leaderboard: Leaderboard,
    receipts: Arc<ReceiptKey>,
    node_id: &str,
) -> (ScoreSink, tokio::task::JoinHandle<()>) {
    start_writer_with(leaderboard, receipts, node_id, WriterSettings::default())
}

/// Starts the writer task; first replays the spill file, if there is one.
pub fn start_writer_with(
    leaderboard: Leaderboard,
    receipts: Arc<ReceiptKey>,
    node_id: &str,
    settings: WriterSettings,
) -> (ScoreSink, tokio::task::JoinHandle<()>) {
    let (queue, pending) = mpsc::channel::<Pending>(SCORE_QUEUE);
    let writer = tokio::spawn(durable::write(ScoreTable(leaderboard), pending, settings));
    (ScoreSink::with_writer(queue, receipts, node_id), writer)
}

/// The leaderboard as the writer's destination: a stored run releases its receipt.
struct ScoreTable(Leaderboard);

impl Destination for ScoreTable {
    type Record = Pending;
    type Spilled = SpilledRun;
    const WHAT: &'static str = "score";

    async fn store(&self, pending: &Pending) -> Result<(), StoreError> {
        self.0
            .record_for_account(&pending.entry, pending.account.as_ref())
            .await
            .map(|_| ())
    }

    fn stored(&self, pending: Pending) {
        if let Some(receipt) = pending.receipt
            && let Some(inbox) = receipt.inbox.upgrade()
        {
            inbox
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(DurableReceipt {
                    player: receipt.player,
                    receipt: receipt.receipt,
                });
        }
    }

    fn spilled(pending: &Pending) -> SpilledRun {
        let entry = &pending.entry;
        SpilledRun {
            run_id: entry.run_id.clone(),
            name: entry.name.clone(),
            score: entry.score,
            room: entry.room.clone(),
            recorded_at_ms: entry.recorded_at_ms,
            account: pending.account.as_ref().map(|id| id.as_str().to_owned()),
        }
    }

    fn replayed(run: SpilledRun) -> Pending {
        Pending {
            entry: ScoreEntry {
                run_id: run.run_id,
                name: run.name,
                score: run.score,
                room: run.room,
                recorded_at_ms: run.recorded_at_ms,
            },
            account: run.account.and_then(|id| AccountId::parse(&id).ok()),
            receipt: None,
        }
    }

    fn count(outcome: &'static str) {
        m::leaderboard_write(outcome);
    }

    fn count_retry() {
        m::leaderboard_write_retry();
    }

    fn set_pending(count: usize) {
        m::leaderboard_pending(count);
    }
}

/// A spilled run, one JSON object per line.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpilledRun {
    run_id: String,
    name: String,
    score: u32,
    room: String,
    recorded_at_ms: i64,
    #[serde(default)]
    account: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key() -> Arc<ReceiptKey> {
        Arc::new(ReceiptKey::from_secret(&[7u8; 32]).unwrap())
    }

    async fn sqlite(directory: &tempfile::TempDir) -> Leaderboard {
        let url = format!("sqlite://{}", directory.path().join("lb.db").display());
        Leaderboard::connect(&url).await.unwrap()
    }

    fn room() -> RoomId {
        RoomId::parse("room-a").unwrap()
    }

    /// Waits (paused-clock friendly: each wait lets the writer run) until `count` receipts are in.
    async fn receipts(sink: &ScoreSink, count: usize) -> Vec<DurableReceipt> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            sink.take_durable_receipts(&mut out);
            if out.len() >= count {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("only {} of {count} receipts became durable", out.len());
    }

    #[tokio::test]
    async fn a_receipt_is_released_once_its_row_is_stored_and_only_to_its_room() {
        let directory = tempfile::tempdir().unwrap();
        let leaderboard = sqlite(&directory).await;
        let (sink, writer) = start_writer(leaderboard.clone(), key(), "node-a");
        let (first_room, second_room) = (sink.for_room(), sink.for_room());
        assert!(first_room.record_durable(&room(), PlayerId(1), "ann", None, 30));
        assert!(second_room.record_durable(&room(), PlayerId(1), "bob", None, 20));
        assert!(!first_room.record_durable(&room(), PlayerId(2), "cid", None, 0));
        let first = receipts(&first_room, 1).await;
        let second = receipts(&second_room, 1).await;
        assert_eq!((first.len(), second.len()), (1, 1));
        assert_eq!(first[0].player, PlayerId(1));
        // The receipt names the row the leaderboard holds.
        let claimed = key().verify(&first[0].receipt).unwrap();
        assert_eq!((claimed.name.as_str(), claimed.score), ("ann", 30));
        let top = leaderboard.top(10).await.unwrap();
        assert_eq!(top.len(), 2);
        drop((sink, first_room, second_room));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn runs_the_database_cannot_take_at_shutdown_are_spilled_and_replayed() {
        let directory = tempfile::tempdir().unwrap();
        let leaderboard = sqlite(&directory).await;
        let spill_file = directory.path().join("scores-pending.jsonl");
        let settings = WriterSettings {
            retry_min: Duration::from_millis(1),
            retry_max: Duration::from_millis(5),
            flush_deadline: Duration::from_millis(50),
            spill_file: Some(spill_file.clone()),
            ..WriterSettings::default()
        };
        // A closed pool stands for a database that is gone for good at shutdown.
        leaderboard.close().await;
        let (sink, writer) = start_writer_with(leaderboard, key(), "node-a", settings.clone());
        for score in 1..=3 {
            assert!(sink.record_durable(&room(), PlayerId(score), "ann", None, score));
        }
        drop(sink);
        writer.await.unwrap();
        let spilled = std::fs::read_to_string(&spill_file).unwrap();
        assert_eq!(spilled.lines().count(), 3, "{spilled}");

        // The next start replays them into a working database, then removes the file.
        let leaderboard = sqlite(&directory).await;
        let (sink, writer) = start_writer_with(leaderboard.clone(), key(), "node-a", settings);
        drop(sink);
        writer.await.unwrap();
        let mut scores: Vec<u32> = leaderboard
            .top(10)
            .await
            .unwrap()
            .iter()
            .map(|row| row.score)
            .collect();
        scores.sort_unstable();
        assert_eq!(scores, [1, 2, 3]);
        assert!(!spill_file.exists());
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_newest_run_and_says_so() {
        let (queue, mut reader) = mpsc::channel(1);
        let sink = ScoreSink::new(queue, key(), "node-a");
        assert!(sink.record_durable(&room(), PlayerId(1), "ann", None, 5));
        assert!(!sink.record_durable(&room(), PlayerId(2), "bob", None, 6));
        assert_eq!(reader.recv().await.unwrap().name, "ann");
    }
}
