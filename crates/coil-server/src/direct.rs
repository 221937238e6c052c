//! Direct writes: the room hands a player's message straight to that player's WebSocket,
//! without a channel hop and a wake-up of the session task, whenever that cannot wait.
//!
//! The session splits its socket: it keeps the read half and shares the write half behind
//! an async mutex. Each tick the room *tries* the write half (`try_lock`, then one poll with a
//! no-op waker). Whatever cannot be done at once goes the old way, through the player's
//! bounded outbound queue, which the session drains with real wake-ups and the slow-client
//! timeout. So a room still never waits on a socket, and a stalled client still fills its
//! bounded queue, is resynced and then evicted.
//!
//! Order is kept by one rule: the room writes directly only while nothing it queued for the
//! player is still unwritten (`backlog` = messages and flushes queued and not yet finished
//! by the session, counted under the write lock).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::Sink;
use futures_util::stream::SplitSink;

/// The write half of a player's WebSocket.
pub type WsSink = SplitSink<WebSocket, Message>;

/// What became of a message the room tried to write directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectWrite {
    /// Handed to the socket in full.
    Written,
    /// Accepted (it will be sent after everything before it), but not all written yet: someone
    /// with a real waker must flush it (the session, told by `Outbound::Flush`).
    NeedsFlush,
    /// Not taken: the write half is busy or still blocked. Queue the message instead.
    Busy(Bytes),
    /// The connection is broken (the message is lost with it). The session finds out on its
    /// next write or read and leaves.
    Failed,
}

/// A socket the room can try to write to without waiting.
pub trait TryWrite: Send + Sync + 'static {
    /// Takes the message by value: cloning a `Bytes` made from a `Vec` would allocate.
    fn try_write(&self, message: Bytes) -> DirectWrite;
}

/// The room's side of a player's direct link.
#[derive(Clone)]
pub struct Direct {
    pub writer: Arc<dyn TryWrite>,
    /// Outbound items (messages, flushes) queued by the room and not yet finished by the
    /// session. The room writes directly only while this is zero.
    pub backlog: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("backlog", &self.backlog.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Direct {
    pub fn new(writer: Arc<dyn TryWrite>) -> Direct {
        Direct {
            writer,
            backlog: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// True when nothing queued earlier is still waiting to be written.
    pub fn is_clear(&self) -> bool {
        self.backlog.load(Ordering::Acquire) == 0
    }

    /// The room queued one more item for the session.
    pub fn queued(&self) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
    }

    /// The session finished one queued item (called while it still holds the write lock, so
    /// everything written before is ahead of anything the room writes next).
    pub fn finished(&self) {
        self.backlog.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The write half of a real WebSocket, shared by the session (which may wait on it) and the
/// room (which never does).
pub struct SharedSink {
    pub sink: tokio::sync::Mutex<WsSink>,
}

impl SharedSink {
    pub fn new(sink: WsSink) -> SharedSink {
        SharedSink {
            sink: tokio::sync::Mutex::new(sink),
        }
    }
}

impl TryWrite for SharedSink {
    fn try_write(&self, message: Bytes) -> DirectWrite {
        let Ok(mut sink) = self.sink.try_lock() else {
            return DirectWrite::Busy(message);
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = Pin::new(&mut *sink);
        match sink.as_mut().poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return DirectWrite::Failed,
            Poll::Pending => return DirectWrite::Busy(message),
        }
        if sink.as_mut().start_send(Message::Binary(message)).is_err() {
            return DirectWrite::Failed;
        }
        match sink.as_mut().poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => DirectWrite::Written,
            // Taken, but the socket is broken.
            Poll::Ready(Err(_)) => DirectWrite::Failed,
            Poll::Pending => DirectWrite::NeedsFlush,
        }
    }
}
