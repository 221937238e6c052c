//! Coil's binary wire protocol: frame types, versions, encode and decode.
//!
//! Owns every byte that crosses a player's WebSocket; `docs/protocol.md` describes the same
//! format for client authors and must change together with this crate. This crate does no IO,
//! reads no clock and never panics on untrusted bytes: every decoder returns
//! [`DecodeError`] instead (property tests and `fuzz/` targets hold it to that).
//!
//! Layout:
//! - [`codec`]: the byte reader/writer with varints that every frame uses;
//! - [`envelope`]: frames the room runtime owns for every game (join, ping/pong, error,
//!   notice, score receipt);
//! - [`arena`]: frames of the snake arena (input, respawn, init, state, meta, death).
//!
//! Framing: a client sends exactly one frame per WebSocket binary message, `[type u8][payload]`.
//! The server sends one WebSocket message per player per tick holding one or more frames, each
//! `[type u8][payload length varint][payload]`, so a client can skip frame types it does not know.

pub mod arena;
pub mod codec;
pub mod envelope;

pub use codec::{DecodeError, Reader, Writer};
pub use envelope::{ClientEnvelope, ErrorCode, Join, NoticeKind};

/// Protocol version of clients that join without a token (accepted only while the server's
/// compatibility switch is on).
pub const PROTOCOL_V11: u8 = 11;
/// Protocol version that carries a matchmaker-signed join token in the join frame.
pub const PROTOCOL_V12: u8 = 12;

/// Largest client message the server accepts, in bytes. A join with a token is the largest
/// legitimate client frame (well under 512 bytes); anything bigger is hostile or broken.
pub const MAX_CLIENT_MESSAGE: usize = 1024;
