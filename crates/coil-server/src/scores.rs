//! Server-side score recording: the room hands a finished run to [`ScoreSink`], which issues a
//! signed receipt at once and queues the row for a single writer task. A room never waits on
//! the database; when the queue is full the score is counted as dropped and logged.

use std::sync::Arc;
use std::time::Duration;

use coil_store::{Leaderboard, ReceiptKey, ScoreEntry};
use tokio::sync::mpsc;

use crate::metrics as m;
use crate::room::{RoomId, unix_millis};

/// Scores waiting for the writer. At a few hundred deaths per second per node this is
/// seconds of buffer; beyond it the database is down and the count of drops says so.
const SCORE_QUEUE: usize = 10_000;

/// Cheap to clone; one per room.
#[derive(Clone)]
pub struct ScoreSink {
    queue: mpsc::Sender<ScoreEntry>,
    receipts: Arc<ReceiptKey>,
    node_id: Arc<str>,
}

impl ScoreSink {
    /// A sink feeding `queue` directly (the writer task, or a test that reads the queue).
    pub fn new(
        queue: mpsc::Sender<ScoreEntry>,
        receipts: Arc<ReceiptKey>,
        node_id: &str,
    ) -> ScoreSink {
        ScoreSink {
            queue,
            receipts,
            node_id: node_id.into(),
        }
    }

    /// Records a finished run and returns its receipt (none for an empty score).
    pub fn record(&self, room: &RoomId, name: &str, score: u32) -> Option<String> {
        if score == 0 {
            return None;
        }
        let entry = ScoreEntry {
            run_id: format!("{}-{:032x}", self.node_id, rand::random::<u128>()),
            name: name.to_string(),
            score,
            room: room.to_string(),
            recorded_at_ms: unix_millis(),
        };
        let receipt = self.receipts.issue(&entry);
        if self.queue.try_send(entry).is_err() {
            m::leaderboard_write("dropped");
            crate::rate_limited_warn!("leaderboard queue full: dropping a score");
        }
        Some(receipt)
    }
}

/// Starts the writer task. It ends when every sink is dropped and the queue is empty.
pub fn start_writer(
    leaderboard: Leaderboard,
    receipts: Arc<ReceiptKey>,
    node_id: &str,
) -> (ScoreSink, tokio::task::JoinHandle<()>) {
    let (queue, mut pending) = mpsc::channel::<ScoreEntry>(SCORE_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(entry) = pending.recv().await {
            match tokio::time::timeout(Duration::from_secs(5), leaderboard.record(&entry)).await {
                Ok(Ok(_)) => m::leaderboard_write("ok"),
                Ok(Err(error)) => {
                    m::leaderboard_write("error");
                    crate::rate_limited_warn!(cause = %error, "failed to record a score");
                }
                Err(_) => {
                    m::leaderboard_write("error");
                    crate::rate_limited_warn!("recording a score timed out");
                }
            }
        }
    });
    (
        ScoreSink {
            queue,
            receipts,
            node_id: node_id.into(),
        },
        writer,
    )
}
