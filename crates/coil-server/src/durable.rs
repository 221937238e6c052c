//! The one writer loop behind every record a node must not lose (finished runs in `scores.rs`,
//! match results in `results.rs`): a bounded queue, a single task that stores the oldest
//! record first and retries it with backoff until the database takes it, and a spill file at
//! shutdown that the next start replays. Records are idempotent by their own id, so a replay
//! that repeats a stored record is harmless.
//!
//! # Nothing lost while the database is down
//! The writer retries the oldest record with backoff (`retry_min` doubling to `retry_max`) and
//! takes no new record from the queue until it is stored, so a long outage fills the queue and
//! only then are records dropped (counted by the destination). At shutdown the writer keeps
//! trying for `flush_deadline`, then writes what it could not store to the spill file.
//!
//! Nothing here blocks a runtime thread; the queue's senders never wait.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coil_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Records the writer takes from the queue at once; while it retries, they wait here.
const WRITE_BATCH: usize = 64;

/// Largest spill file read back (a full score queue is ~20 MB).
const MAX_SPILL_BYTES: u64 = 64 * 1024 * 1024;

/// Where a writer stores its records, and how it reports on them.
pub(crate) trait Destination: Send + Sync + 'static {
    /// What is queued.
    type Record: Send + 'static;
    /// A record's form in the spill file (one JSON object per line).
    type Spilled: Serialize + DeserializeOwned;
    /// What is written, for log lines ("score", "match result").
    const WHAT: &'static str;

    fn store(&self, record: &Self::Record) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Called once the record is durable.
    fn stored(&self, record: Self::Record);
    fn spilled(record: &Self::Record) -> Self::Spilled;
    fn replayed(spilled: Self::Spilled) -> Self::Record;
    /// Counts a record's end: `"ok"`, `"error"` (refused for good) or `"dropped"`.
    fn count(outcome: &'static str);
    fn count_retry();
    fn set_pending(count: usize);
}

/// Tunables of a writer task.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// First delay before retrying a record the database did not take; doubles up to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Deadline of one write attempt (on top of the store's own statement deadline).
    pub attempt_timeout: Duration,
    /// After the last sender is dropped, how long the writer keeps trying before spilling.
    pub flush_deadline: Duration,
    /// Records not stored by the flush deadline are written here and replayed at the next
    /// start. `None`: they are lost (and counted).
    pub spill_file: Option<PathBuf>,
    /// Turns true when the node stops: the flush deadline starts even if some sender is still
    /// alive (a connection that outlived the drain keeps its room, and so a sender, alive).
    pub shutdown: Option<watch::Receiver<bool>>,
}

impl Default for WriterSettings {
    fn default() -> WriterSettings {
        WriterSettings {
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(6),
            flush_deadline: Duration::from_secs(3),
            spill_file: None,
            shutdown: None,
        }
    }
}

/// Outcome of one attempt to store a record.
enum Attempt {
    Stored,
    /// The database may take it later (down, slow, restarting).
    Retry,
    /// It will never take it (an invalid record): counted and dropped.
    Refused,
}

async fn attempt<D: Destination>(destination: &D, record: &D::Record, limit: Duration) -> Attempt {
    let what = D::WHAT;
    match tokio::time::timeout(limit, destination.store(record)).await {
        Ok(Ok(())) => Attempt::Stored,
        Ok(Err(error)) if error.is_transient() => {
            // The store already fails fast while the database is known down; log the cause
            // of the first failure of a record, not every retry.
            crate::rate_limited_warn!(what, cause = %error, "failed to store a record; will retry");
            Attempt::Retry
        }
        Ok(Err(error)) => {
            crate::rate_limited_warn!(what, cause = %error, "the database refused a record");
            Attempt::Refused
        }
        Err(_) => {
            crate::rate_limited_warn!(what, "storing a record timed out; will retry");
            Attempt::Retry
        }
    }
}

/// A queued record and whether it came from the spill file.
struct Queued<R> {
    record: R,
    replayed: bool,
}

/// The writer task: replays the spill file, then stores what arrives on `queue` until every
/// sender is gone (or shutdown is signalled) and the backlog is stored or spilled.
pub(crate) async fn write<D: Destination>(
    destination: D,
    mut queue: mpsc::Receiver<D::Record>,
    settings: WriterSettings,
) {
    let mut backlog: VecDeque<Queued<D::Record>> = VecDeque::new();
    let mut replaying = 0usize;
    if let Some(path) = &settings.spill_file {
        for spilled in read_spill::<D::Spilled>(path, D::WHAT).await {
            backlog.push_back(Queued {
                record: D::replayed(spilled),
                replayed: true,
            });
        }
        replaying = backlog.len();
        if replaying > 0 {
            tracing::info!(
                what = D::WHAT,
                records = replaying,
                "replaying records spilled at the last shutdown"
            );
        }
    }
    let mut retry_delay = settings.retry_min;
    // When every sender was gone (the node is shutting down): from then on the writer has
    // `flush_deadline` to store what it holds.
    let mut closed_at: Option<Instant> = None;
    let mut shutdown = settings.shutdown.clone();
    let stopping = |shutdown: &Option<watch::Receiver<bool>>| {
        shutdown.as_ref().is_some_and(|stop| *stop.borrow())
    };
    let fresh = |record| Queued {
        record,
        replayed: false,
    };
    loop {
        D::set_pending(backlog.len() + queue.len());
        if closed_at.is_none() && (queue.is_closed() || stopping(&shutdown)) {
            closed_at = Some(Instant::now());
        }
        if backlog.is_empty() {
            if closed_at.is_some() {
                // Stopping: take what is queued, then finish.
                match queue.try_recv() {
                    Ok(record) => backlog.push_back(fresh(record)),
                    Err(_) => break,
                }
            } else {
                let next = tokio::select! {
                    next = queue.recv() => next,
                    _ = async {
                        match shutdown.as_mut() {
                            Some(stop) => {
                                let _ = stop.wait_for(|stop| *stop).await;
                            }
                            None => std::future::pending().await,
                        }
                    } => continue,
                };
                match next {
                    Some(record) => backlog.push_back(fresh(record)),
                    None => break,
                }
            }
            while backlog.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(record) => backlog.push_back(fresh(record)),
                    Err(_) => break,
                }
            }
        }
        let Some(front) = backlog.front() else {
            continue;
        };
        let limit = match closed_at {
            Some(since) => settings
                .flush_deadline
                .saturating_sub(since.elapsed())
                .min(settings.attempt_timeout),
            None => settings.attempt_timeout,
        };
        if limit.is_zero() {
            while let Ok(record) = queue.try_recv() {
                backlog.push_back(fresh(record));
            }
            spill::<D>(&settings, backlog).await;
            D::set_pending(0);
            return;
        }
        match attempt(&destination, &front.record, limit).await {
            Attempt::Stored => {
                D::count("ok");
                retry_delay = settings.retry_min;
                let stored = backlog.pop_front().expect("the front exists");
                let replayed = stored.replayed;
                destination.stored(stored.record);
                if replayed {
                    replaying -= 1;
                    if replaying == 0
                        && let Some(path) = &settings.spill_file
                    {
                        remove_spill(path, D::WHAT).await;
                    }
                }
            }
            Attempt::Refused => {
                D::count("error");
                let refused = backlog.pop_front().expect("the front exists");
                replaying -= usize::from(refused.replayed);
            }
            Attempt::Retry => {
                D::count_retry();
                // Sleep in short steps, so a shutdown that starts meanwhile is noticed at once.
                let wake_at = Instant::now() + retry_delay;
                while Instant::now() < wake_at && closed_at.is_none() {
                    let step = (wake_at - Instant::now()).min(Duration::from_millis(100));
                    tokio::time::sleep(step).await;
                    if queue.is_closed() || stopping(&shutdown) {
                        closed_at = Some(Instant::now());
                    }
                }
                retry_delay = (retry_delay * 2).min(settings.retry_max);
            }
        }
    }
    D::set_pending(0);
}

/// Writes the records the database did not take to the spill file (atomically: a temporary
/// file renamed over it, so a crash mid-write leaves the previous file).
async fn spill<D: Destination>(settings: &WriterSettings, backlog: VecDeque<Queued<D::Record>>) {
    let what = D::WHAT;
    let records = backlog.len();
    if records == 0 {
        return;
    }
    let Some(path) = &settings.spill_file else {
        for _ in 0..records {
            D::count("dropped");
        }
        tracing::error!(
            what,
            records,
            "the database is unreachable at shutdown; records lost"
        );
        return;
    };
    let mut text = String::new();
    for queued in &backlog {
        if let Ok(line) = serde_json::to_string(&D::spilled(&queued.record)) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let temporary = path.with_extension("tmp");
    let written = async {
        tokio::fs::write(&temporary, text.as_bytes()).await?;
        tokio::fs::File::open(&temporary).await?.sync_all().await?;
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    match written {
        Ok(()) => tracing::warn!(
            what,
            records,
            file = %path.display(),
            "the database is unreachable at shutdown; records kept for the next start"
        ),
        Err(error) => {
            for _ in 0..records {
                D::count("dropped");
            }
            tracing::error!(what, records, cause = %error, file = %path.display(), "could not keep unwritten records; records lost");
        }
    }
}

async fn read_spill<S: DeserializeOwned>(path: &Path, what: &'static str) -> Vec<S> {
    match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.len() > MAX_SPILL_BYTES => {
            tracing::error!(what, file = %path.display(), "the spill file is too large to replay; ignoring it");
            return Vec::new();
        }
        Ok(_) => {}
        Err(_) => return Vec::new(),
    }
    let Ok(text) = tokio::fs::read_to_string(path).await else {
        tracing::error!(what, file = %path.display(), "the spill file is unreadable; ignoring it");
        return Vec::new();
    };
    let mut records = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match serde_json::from_str::<S>(line) {
            Ok(record) => records.push(record),
            Err(_) => {
                crate::rate_limited_warn!(what, file = %path.display(), "skipping a malformed line of the spill file");
            }
        }
    }
    records
}

async fn remove_spill(path: &Path, what: &'static str) {
    if let Err(error) = tokio::fs::remove_file(path).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(what, cause = %error, file = %path.display(), "could not remove the replayed spill file");
    }
}
