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
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
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
    /// Takes the message by value: cloning a `Bytes` made from a `Vec` would allocate. With
    /// `ping`, a WebSocket Ping carrying that sequence number follows the message in the same
    /// write (the liveness probe, see `crate::room`).
    fn try_write(&self, message: Bytes, ping: Option<u32>) -> DirectWrite;
}

/// What the room and the session share about a connection's liveness probes: which ping the
/// socket actually took (set by whoever wrote it), and which one the client answered (set by
/// the session's reader on a Pong). The room times the gap between the two on its own clock.
///
/// A Pong counts only if it echoes a ping this connection really sent: the payload carries a
/// random per-connection tag besides the sequence number, so a client cannot keep its seat
/// without reading by sending Pongs it made up (RFC 6455 allows unsolicited Pongs, and a
/// sequence number alone is easy to guess).
#[derive(Debug)]
pub struct Liveness {
    sent: AtomicU32,
    answered: AtomicU32,
    tag: u64,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            sent: AtomicU32::new(0),
            answered: AtomicU32::new(0),
            tag: rand::random(),
        }
    }
}

/// Length of a liveness Ping's payload: the sequence number (`u32`) and the connection's tag
/// (`u64`), little-endian.
pub const PING_PAYLOAD_LEN: usize = 12;

impl Liveness {
    /// The socket took ping `sequence`.
    pub fn mark_sent(&self, sequence: u32) {
        self.sent.fetch_max(sequence, Ordering::AcqRel);
    }

    /// The payload of liveness Ping `sequence`; the client's Pong echoes it.
    pub fn ping_payload(&self, sequence: u32) -> Bytes {
        let mut payload = [0u8; PING_PAYLOAD_LEN];
        payload[..4].copy_from_slice(&sequence.to_le_bytes());
        payload[4..].copy_from_slice(&self.tag.to_le_bytes());
        Bytes::copy_from_slice(&payload)
    }

    /// Records a Pong from the client. It answers a ping (and, the stream being ordered, every
    /// one before) only if it echoes the payload of one the socket took; anything else is an
    /// unsolicited Pong and changes nothing. Returns whether it was an answer.
    pub fn record_pong(&self, payload: &[u8]) -> bool {
        let Ok(payload) = <[u8; PING_PAYLOAD_LEN]>::try_from(payload) else {
            return false;
        };
        let sequence = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
        let tag = u64::from_le_bytes([
            payload[4],
            payload[5],
            payload[6],
            payload[7],
            payload[8],
            payload[9],
            payload[10],
            payload[11],
        ]);
        if tag != self.tag || sequence == 0 || sequence > self.sent() {
            return false;
        }
        self.answered.fetch_max(sequence, Ordering::AcqRel);
        true
    }

    pub fn sent(&self) -> u32 {
        self.sent.load(Ordering::Acquire)
    }

    pub fn answered(&self) -> u32 {
        self.answered.load(Ordering::Acquire)
    }
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
    pub liveness: Arc<Liveness>,
}

impl SharedSink {
    pub fn new(sink: WsSink, liveness: Arc<Liveness>) -> SharedSink {
        SharedSink {
            sink: tokio::sync::Mutex::new(sink),
            liveness,
        }
    }
}

impl TryWrite for SharedSink {
    fn try_write(&self, message: Bytes, ping: Option<u32>) -> DirectWrite {
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
        // tungstenite buffers frames until the flush below: the ping costs no extra syscall.
        // A sink not ready for a second frame skips the ping; the room sends another later.
        if let Some(sequence) = ping
            && matches!(sink.as_mut().poll_ready(&mut cx), Poll::Ready(Ok(())))
        {
            // Marked before it can reach the client: the session's reader accepts an answer
            // only to a ping marked sent (a failed send ends the connection anyway).
            self.liveness.mark_sent(sequence);
            if sink
                .as_mut()
                .start_send(Message::Ping(self.liveness.ping_payload(sequence)))
                .is_err()
            {
                return DirectWrite::Failed;
            }
        }
        match sink.as_mut().poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => DirectWrite::Written,
            // Taken, but the socket is broken.
            Poll::Ready(Err(_)) => DirectWrite::Failed,
            Poll::Pending => DirectWrite::NeedsFlush,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_echo_of_a_ping_the_socket_took_is_an_answer() {
        let liveness = Liveness::default();
        let first = liveness.ping_payload(1);
        // Not taken by the socket yet: the client cannot have read it.
        assert!(!liveness.record_pong(&first));
        liveness.mark_sent(1);
        assert!(liveness.record_pong(&first));
        assert_eq!(liveness.answered(), 1);

        // Made-up Pongs: a guessed sequence with the wrong tag, a later sequence with the
        // right tag (a ping not sent yet), the bare sequence, an empty payload.
        liveness.mark_sent(2);
        let mut forged = liveness.ping_payload(2).to_vec();
        forged[11] ^= 1;
        let ahead = liveness.ping_payload(u32::MAX);
        for payload in [&forged[..], &ahead[..], &2u32.to_le_bytes()[..], &[][..]] {
            assert!(!liveness.record_pong(payload), "{payload:?}");
        }
        assert_eq!(liveness.answered(), 1);
        // Another connection's echo is not this one's.
        assert!(!Liveness::default().record_pong(&liveness.ping_payload(1)));
    }
}
