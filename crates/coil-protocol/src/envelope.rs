//! Frames the room runtime owns for every game: join, resume, ping/pong, error, notice, score
//! receipt and session (the reconnect token). Game-specific frames (types `0x10..=0x7f` from clients, `0x90..=0xff` from the
//! server) are passed through untouched to the game.

use crate::codec::{DecodeError, Reader, Writer};
use crate::{MAX_CLIENT_MESSAGE, PROTOCOL_V11, PROTOCOL_V12};

/// Client → server frame types owned by the runtime.
pub mod client_type {
    pub const JOIN: u8 = 0x01;
    pub const PING: u8 = 0x02;
    /// Take a held seat back after a dropped connection (instead of a join).
    pub const RESUME: u8 = 0x03;
    /// First frame type that belongs to the game.
    pub const GAME_FIRST: u8 = 0x10;
    pub const GAME_LAST: u8 = 0x7f;
}

/// Server → client frame types owned by the runtime.
pub mod server_type {
    pub const PONG: u8 = 0x81;
    pub const ERROR: u8 = 0x82;
    pub const NOTICE: u8 = 0x83;
    pub const SCORE_RECEIPT: u8 = 0x84;
    /// The seat's reconnect token and grace (modes that hold seats for a reconnect).
    pub const SESSION: u8 = 0x85;
    /// Last runtime frame type this version knows; `SESSION + 1 ..= 0x8f` are skipped.
    pub const LAST_KNOWN: u8 = SESSION;
    /// First frame type that belongs to the game.
    pub const GAME_FIRST: u8 = 0x90;
}

/// The longest join token accepted, in bytes.
pub const MAX_JOIN_TOKEN: usize = 512;

/// Length of a reconnect token, in bytes.
pub const RESUME_TOKEN_LEN: usize = 16;

/// A client's join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join<'a> {
    /// [`PROTOCOL_V11`] or [`PROTOCOL_V12`].
    pub version: u8,
    /// Display name as sent; the runtime validates it.
    pub name: &'a str,
    pub skin: u8,
    /// The matchmaker's join token (v12 only).
    pub token: Option<&'a [u8]>,
}

/// One decoded client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEnvelope<'a> {
    Join(Join<'a>),
    Ping {
        nonce: u32,
    },
    /// Resume a held seat with the token of the last Session frame. `version` is the protocol
    /// version (12); the token is [`RESUME_TOKEN_LEN`] bytes.
    Resume {
        version: u8,
        token: [u8; RESUME_TOKEN_LEN],
    },
    /// A frame the game decodes: the whole frame, type byte included.
    Game(&'a [u8]),
}

/// Decodes one client WebSocket message.
pub fn decode_client(message: &[u8]) -> Result<ClientEnvelope<'_>, DecodeError> {
    if message.len() > MAX_CLIENT_MESSAGE {
        return Err(DecodeError::Oversized);
    }
    let mut reader = Reader::new(message);
    let frame_type = reader.u8().map_err(|_| DecodeError::Empty)?;
    let envelope = match frame_type {
        client_type::JOIN => {
            let version = reader.u8()?;
            // Unknown versions are reported by the runtime with their own code, so the rest
            // of the frame is not interpreted (its layout is another version's).
            if version != PROTOCOL_V11 && version != PROTOCOL_V12 {
                return Ok(ClientEnvelope::Join(Join {
                    version,
                    name: "",
                    skin: 0,
                    token: None,
                }));
            }
            let name = reader.short_str()?;
            let skin = reader.u8()?;
            let token = match version {
                PROTOCOL_V12 => Some(reader.long_bytes(MAX_JOIN_TOKEN)?),
                _ => None,
            };
            ClientEnvelope::Join(Join {
                version,
                name,
                skin,
                token,
            })
        }
        client_type::PING => ClientEnvelope::Ping {
            nonce: reader.u32()?,
        },
        client_type::RESUME => {
            let version = reader.u8()?;
            if version != PROTOCOL_V12 {
                return Ok(ClientEnvelope::Resume {
                    version,
                    token: [0; RESUME_TOKEN_LEN],
                });
            }
            let bytes = reader.long_bytes(RESUME_TOKEN_LEN)?;
            let token =
                <[u8; RESUME_TOKEN_LEN]>::try_from(bytes).map_err(|_| DecodeError::OutOfRange)?;
            ClientEnvelope::Resume { version, token }
        }
        client_type::GAME_FIRST..=client_type::GAME_LAST => {
            return Ok(ClientEnvelope::Game(message));
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    reader.finish()?;
    Ok(envelope)
}

/// Encodes a join frame (used by clients: the load generator, tests, and as a reference).
pub fn encode_join(join: &Join<'_>, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(client_type::JOIN);
    writer.u8(join.version);
    writer.short_str(join.name);
    writer.u8(join.skin);
    if join.version == PROTOCOL_V12 {
        writer.long_bytes(join.token.unwrap_or_default());
    }
}

/// Encodes a resume frame (client side).
pub fn encode_resume(token: &[u8; RESUME_TOKEN_LEN], out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(client_type::RESUME);
    writer.u8(PROTOCOL_V12);
    writer.long_bytes(token);
}

/// Encodes a ping frame (client side).
pub fn encode_ping(nonce: u32, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(client_type::PING);
    writer.u32(nonce);
}

/// Stable error codes sent in error frames. Numbers never change meaning; new codes are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// Garbled frame: unknown type, bad varint, bad UTF-8, out-of-range field.
    BadFrame = 1,
    /// The frame ended before its fields did, or had bytes left over.
    Truncated = 2,
    /// A message larger than the protocol allows.
    Oversized = 3,
    /// A frame that is valid but not now: input before join, a second join.
    OutOfOrder = 4,
    /// The join named a protocol version this server does not speak.
    UnsupportedVersion = 5,
    /// The name is empty, too long, or has characters that are not allowed.
    BadName = 6,
    /// The room holds its hard cap of humans.
    RoomFull = 10,
    /// The room or the node is draining and takes no new players.
    RoomDraining = 11,
    /// The room ended (its game completed, or it closed): re-matchmake.
    RoomClosed = 12,
    /// The room holds its cap of spectators.
    SpectatorsFull = 13,
    /// A v11 join (no token) while the compatibility switch is off.
    TokenRequired = 20,
    /// The join token's expiry has passed.
    TokenExpired = 21,
    /// The join token's signature does not verify, or it cannot be parsed.
    TokenInvalid = 22,
    /// The join token was already used.
    TokenReplayed = 23,
    /// The join token names another room or node.
    TokenWrongRoom = 24,
    /// The held seat's reconnect grace ran out (or its room ended): re-matchmake.
    ReconnectExpired = 25,
    /// The reconnect token is unknown or was already used (tokens rotate on every resume).
    ReconnectRefused = 26,
    /// The client stopped reading; its queue overflowed and it was disconnected.
    SlowClient = 30,
    /// The client sent frames faster than allowed.
    RateLimited = 31,
    /// A newer connection resumed this seat; this one is closed.
    Replaced = 32,
    /// The account was banned or its session ended.
    Kicked = 33,
    /// The server failed; the client may retry.
    Internal = 99,
}

impl ErrorCode {
    pub fn from_u16(value: u16) -> Option<Self> {
        use ErrorCode::*;
        Some(match value {
            1 => BadFrame,
            2 => Truncated,
            3 => Oversized,
            4 => OutOfOrder,
            5 => UnsupportedVersion,
            6 => BadName,
            10 => RoomFull,
            11 => RoomDraining,
            12 => RoomClosed,
            13 => SpectatorsFull,
            20 => TokenRequired,
            21 => TokenExpired,
            22 => TokenInvalid,
            23 => TokenReplayed,
            24 => TokenWrongRoom,
            25 => ReconnectExpired,
            26 => ReconnectRefused,
            30 => SlowClient,
            31 => RateLimited,
            32 => Replaced,
            33 => Kicked,
            99 => Internal,
            _ => return None,
        })
    }

    /// The code a decode failure is reported with.
    pub fn for_decode_error(error: DecodeError) -> Self {
        match error {
            DecodeError::Truncated | DecodeError::TrailingBytes(_) | DecodeError::Empty => {
                ErrorCode::Truncated
            }
            DecodeError::Oversized => ErrorCode::Oversized,
            DecodeError::UnknownType(_)
            | DecodeError::BadVarint
            | DecodeError::BadUtf8
            | DecodeError::OutOfRange => ErrorCode::BadFrame,
        }
    }
}

/// Why the server sends a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NoticeKind {
    /// The room is draining: finish up, and re-matchmake before `deadline_ms` passes.
    Draining = 1,
}

/// A decoded server frame owned by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEnvelope<'a> {
    Pong {
        nonce: u32,
    },
    Error {
        code: u16,
        reason: &'a str,
    },
    Notice {
        kind: u8,
        deadline_ms: u32,
    },
    ScoreReceipt {
        receipt: &'a str,
    },
    Session {
        token: [u8; RESUME_TOKEN_LEN],
        grace_ms: u32,
    },
}

pub fn write_pong(writer: &mut Writer<'_>, nonce: u32) {
    writer.frame(server_type::PONG, |w| w.u32(nonce));
}

pub fn write_error(writer: &mut Writer<'_>, code: ErrorCode, reason: &str) {
    write_error_code(writer, code as u16, reason);
}

/// An error frame with any code: a runtime [`ErrorCode`] or a game's own (`1000..=1999`).
pub fn write_error_code(writer: &mut Writer<'_>, code: u16, reason: &str) {
    writer.frame(server_type::ERROR, |w| {
        w.u16(code);
        w.short_str(reason);
    });
}

/// The seat's reconnect token: present it in a Resume frame within `grace_ms` of a drop.
pub fn write_session(writer: &mut Writer<'_>, token: &[u8; RESUME_TOKEN_LEN], grace_ms: u32) {
    writer.frame(server_type::SESSION, |w| {
        w.long_bytes(token);
        w.u32(grace_ms);
    });
}

pub fn write_notice(writer: &mut Writer<'_>, kind: NoticeKind, deadline_ms: u32) {
    writer.frame(server_type::NOTICE, |w| {
        w.u8(kind as u8);
        w.u32(deadline_ms);
    });
}

pub fn write_score_receipt(writer: &mut Writer<'_>, receipt: &str) {
    writer.frame(server_type::SCORE_RECEIPT, |w| {
        w.long_bytes(receipt.as_bytes())
    });
}

/// Decodes the payload of a runtime-owned server frame. Returns `Ok(None)` for game frames and
/// for runtime frame types this version does not know (`0x85..=0x8f`): skip those. Types below
/// `0x81` are not server frames and are errors.
pub fn decode_server_envelope(
    frame_type: u8,
    payload: &[u8],
) -> Result<Option<ServerEnvelope<'_>>, DecodeError> {
    let mut reader = Reader::new(payload);
    let envelope = match frame_type {
        server_type::PONG => ServerEnvelope::Pong {
            nonce: reader.u32()?,
        },
        server_type::ERROR => ServerEnvelope::Error {
            code: reader.u16()?,
            reason: reader.short_str()?,
        },
        server_type::NOTICE => ServerEnvelope::Notice {
            kind: reader.u8()?,
            deadline_ms: reader.u32()?,
        },
        server_type::SCORE_RECEIPT => {
            let bytes = reader.long_bytes(4096)?;
            ServerEnvelope::ScoreReceipt {
                receipt: std::str::from_utf8(bytes).map_err(|_| DecodeError::BadUtf8)?,
            }
        }
        server_type::SESSION => {
            let bytes = reader.long_bytes(RESUME_TOKEN_LEN)?;
            let token =
                <[u8; RESUME_TOKEN_LEN]>::try_from(bytes).map_err(|_| DecodeError::OutOfRange)?;
            ServerEnvelope::Session {
                token,
                grace_ms: reader.u32()?,
            }
        }
        t if t >= server_type::GAME_FIRST => return Ok(None),
        // Runtime frames of a newer server: a client skips what it does not know (the frame
        // length lets it), so old clients survive a server upgrade.
        t if t > server_type::LAST_KNOWN => return Ok(None),
        other => return Err(DecodeError::UnknownType(other)),
    };
    reader.finish()?;
    Ok(Some(envelope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::server_frames;
    use proptest::prelude::*;

    #[test]
    fn unknown_runtime_frames_from_a_newer_server_are_skipped() {
        for frame_type in 0x86..=0x8f {
            assert_eq!(decode_server_envelope(frame_type, &[1, 2, 3]), Ok(None));
        }
        assert_eq!(
            decode_server_envelope(0x80, &[]),
            Err(DecodeError::UnknownType(0x80))
        );
        assert_eq!(
            decode_server_envelope(0x05, &[]),
            Err(DecodeError::UnknownType(0x05))
        );
    }

    proptest! {
        #[test]
        fn join_round_trips(v12 in any::<bool>(), name in "[a-zA-Z0-9 _-]{0,16}", skin in any::<u8>(), token in proptest::collection::vec(any::<u8>(), 0..MAX_JOIN_TOKEN)) {
            let join = Join {
                version: if v12 { PROTOCOL_V12 } else { PROTOCOL_V11 },
                name: &name,
                skin,
                token: v12.then_some(token.as_slice()),
            };
            let mut out = Vec::new();
            encode_join(&join, &mut out);
            prop_assert_eq!(decode_client(&out).unwrap(), ClientEnvelope::Join(join));
        }

        #[test]
        fn decode_client_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_client(&bytes);
        }

        #[test]
        fn server_envelopes_round_trip(nonce in any::<u32>(), code in 1u16..100, reason in "[ -~]{0,40}", receipt in "[A-Za-z0-9._-]{0,300}") {
            let mut out = Vec::new();
            let mut writer = Writer::new(&mut out);
            write_pong(&mut writer, nonce);
            let error_code = ErrorCode::from_u16(code).unwrap_or(ErrorCode::Internal);
            write_error(&mut writer, error_code, &reason);
            write_notice(&mut writer, NoticeKind::Draining, nonce);
            write_score_receipt(&mut writer, &receipt);
            write_session(&mut writer, &[nonce as u8; RESUME_TOKEN_LEN], nonce);
            let frames: Vec<_> = server_frames(&out).map(|f| f.unwrap()).collect();
            let decoded: Vec<_> = frames.iter().map(|(t, p)| decode_server_envelope(*t, p).unwrap().unwrap()).collect();
            prop_assert_eq!(decoded, vec![
                ServerEnvelope::Pong { nonce },
                ServerEnvelope::Error { code: error_code as u16, reason: &reason },
                ServerEnvelope::Notice { kind: NoticeKind::Draining as u8, deadline_ms: nonce },
                ServerEnvelope::ScoreReceipt { receipt: &receipt },
                ServerEnvelope::Session { token: [nonce as u8; RESUME_TOKEN_LEN], grace_ms: nonce },
            ]);
        }

        #[test]
        fn resume_round_trips(token in any::<[u8; RESUME_TOKEN_LEN]>()) {
            let mut out = Vec::new();
            encode_resume(&token, &mut out);
            prop_assert_eq!(decode_client(&out).unwrap(), ClientEnvelope::Resume { version: PROTOCOL_V12, token });
        }
    }

    #[test]
    fn an_unknown_join_version_is_reported_as_such_whatever_follows() {
        for frame in [
            &[client_type::JOIN, 13][..],
            &[client_type::JOIN, 13, 200, 1],
        ] {
            assert!(matches!(
                decode_client(frame),
                Ok(ClientEnvelope::Join(Join { version: 13, .. }))
            ));
        }
        assert!(matches!(
            decode_client(&[client_type::RESUME, 9]),
            Ok(ClientEnvelope::Resume { version: 9, .. })
        ));
        // A resume token of the wrong length is out of range, not a seat.
        assert_eq!(
            decode_client(&[client_type::RESUME, PROTOCOL_V12, 2, 1, 2]),
            Err(DecodeError::OutOfRange)
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 0..200u16 {
            if let Some(known) = ErrorCode::from_u16(code) {
                assert_eq!(known as u16, code);
            }
        }
    }

    #[test]
    fn game_frames_pass_through_and_unknown_types_fail() {
        assert_eq!(
            decode_client(&[0x10, 1, 2]),
            Ok(ClientEnvelope::Game(&[0x10, 1, 2]))
        );
        assert_eq!(decode_client(&[0x05]), Err(DecodeError::UnknownType(0x05)));
        assert_eq!(decode_client(&[]), Err(DecodeError::Empty));
        assert_eq!(
            decode_client(&[client_type::PING, 1, 2]),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_client(&vec![0x10; MAX_CLIENT_MESSAGE + 1]),
            Err(DecodeError::Oversized)
        );
    }
}
