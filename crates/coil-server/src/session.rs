//! One player's WebSocket connection: the join (or resume) handshake, then a single task that
//! reads the player's frames (forwarding game frames to the room) and writes what the room
//! queued.
//!
//! A session never blocks a room: the room writes to the socket itself only when that cannot
//! wait (see [`crate::direct`]); everything else goes through a bounded queue that the session
//! drains. A write that cannot complete within the slow-client timeout ends the connection.
//! Bad frames get an error frame and a close; they never panic and never reach the game as
//! garbage. WebSocket control frames (Ping, Pong) are allowed at any time, the handshake
//! included (RFC 6455 §5.5); a Pong answering one of the room's liveness pings is recorded.
//!
//! Identity: with a v12 join token, the player's id, display name, mode, role, team, party and
//! cosmetics come from the signed token; the join frame's name is ignored. A v11 join (while the
//! compatibility switch is on) is an anonymous player of the node's default mode, who may not
//! take seats the matchmaker reserved for token holders.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use coil_game::{Identity, RefusalCode, Role};
use coil_protocol::envelope::{ClientEnvelope, Join, RESUME_TOKEN_LEN, decode_client, write_pong};
use coil_protocol::{ErrorCode, PROTOCOL_V11, PROTOCOL_V12, Writer};
use futures_util::stream::SplitStream;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::direct::{Direct, Liveness, SharedSink};
use crate::metrics as m;
use crate::node::{Node, SeatError};
use crate::room::{
    Connection, GameMode, LeaveReason, OUTBOUND_QUEUE, Outbound, ResumeRefusal, RoomEvent,
    RoomHandle, RoomId, RoomOrigin, Seated, error_message,
};

/// How long a client has to send its join frame after the upgrade.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Control frames a client may send before its join (a client library's keep-alive); more is
/// not a client trying to join.
const CONTROL_FRAMES_BEFORE_JOIN: usize = 16;

/// Game frames a client may send: a sustained rate and a burst. A client sends at most one
/// input per tick (20–30 Hz); four times that is generous, more is abuse.
const FRAMES_PER_SECOND: f64 = 120.0;
const FRAME_BURST: f64 = 240.0;

/// Counts an open connection for as long as it lives.
struct ConnectionGauge;

impl ConnectionGauge {
    fn open() -> Self {
        m::connections_open(1.0);
        ConnectionGauge
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        m::connections_open(-1.0);
    }
}

/// Token bucket over client frames, on the runtime's clock.
struct FrameBudget {
    tokens: f64,
    refilled: Instant,
}

impl FrameBudget {
    fn new() -> Self {
        FrameBudget {
            tokens: FRAME_BURST,
            refilled: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * FRAMES_PER_SECOND;
        self.tokens = (self.tokens + earned).min(FRAME_BURST);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Runs one connection to the end.
pub async fn run(node: Arc<Node>, room_id: RoomId, socket: WebSocket, upgraded_at: Instant) {
    let _gauge = ConnectionGauge::open();
    let Some(mut joined) = handshake(&node, &room_id, socket).await else {
        return;
    };
    let reason = play(&node, &mut joined, upgraded_at).await;
    let _ = joined
        .room
        .events
        .send(RoomEvent::Disconnected {
            seated: joined.seated,
            reason,
        })
        .await;
}

/// A seated player's connection: the socket split into the read half (this task's) and the
/// write half (shared with the room for direct writes).
struct Joined {
    seated: Seated,
    room: RoomHandle,
    outbound: mpsc::Receiver<Outbound>,
    stream: SplitStream<WebSocket>,
    sink: Arc<SharedSink>,
    direct: Direct,
}

/// What the client asked for in its first frame.
enum Request {
    Join {
        mode: GameMode,
        identity: Identity,
        keep_free: usize,
        /// The token's seat reservation, confirmed to the directory once seated.
        reservation: Option<coil_match::Nonce>,
        /// The lobby the token describes (used if this join creates the room).
        origin: RoomOrigin,
    },
    Resume([u8; RESUME_TOKEN_LEN]),
}

/// A refusal before the player is seated: the join result label, the code and the reason.
type Refused = (&'static str, RefusalCode, &'static str);

fn refused(result: &'static str, code: ErrorCode, reason: &'static str) -> Refused {
    (result, code.into(), reason)
}

/// Waits for the first frame, skipping control frames. `Err` carries what to tell the client
/// (`None`: the connection is gone, nothing to tell).
async fn first_frame(socket: &mut WebSocket) -> Result<Bytes, Option<Refused>> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    for _ in 0..=CONTROL_FRAMES_BEFORE_JOIN {
        let message = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) if is_oversized(&error) => {
                return Err(Some(refused(
                    "bad_frame",
                    ErrorCode::Oversized,
                    "message too large",
                )));
            }
            // Timed out, closed or broken before joining: nothing to tell.
            _ => return Err(None),
        };
        match message {
            Message::Binary(bytes) => return Ok(bytes),
            // RFC 6455 allows control frames at any time; axum answers pings itself.
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return Err(None),
            Message::Text(_) => {
                return Err(Some(refused(
                    "bad_frame",
                    ErrorCode::BadFrame,
                    "expected a binary join frame",
                )));
            }
        }
    }
    Err(Some(refused(
        "bad_frame",
        ErrorCode::OutOfOrder,
        "expected a join frame",
    )))
}

fn is_oversized(error: &axum::Error) -> bool {
    // The WebSocket layer reports a message over the limit as a capacity error.
    let text = error.to_string();
    text.contains("too long") || text.contains("Space limit") || text.contains("capacity")
}

/// Turns the first frame into a request, or a refusal.
async fn request(node: &Node, room_id: &RoomId, bytes: &[u8]) -> Result<Request, Refused> {
    m::bytes_received(bytes.len());
    match decode_client(bytes) {
        Ok(ClientEnvelope::Join(join)) => join_request(node, room_id, join).await,
        Ok(ClientEnvelope::Resume { version, token }) => {
            if version != PROTOCOL_V12 {
                return Err(refused(
                    "unsupported_version",
                    ErrorCode::UnsupportedVersion,
                    "unsupported protocol version",
                ));
            }
            Ok(Request::Resume(token))
        }
        Ok(_) => Err(refused(
            "bad_frame",
            ErrorCode::OutOfOrder,
            "the first frame must be a join",
        )),
        Err(error) => Err(refused(
            "bad_frame",
            ErrorCode::for_decode_error(error),
            "join frame could not be decoded",
        )),
    }
}

async fn join_request(node: &Node, room_id: &RoomId, join: Join<'_>) -> Result<Request, Refused> {
    match join.version {
        PROTOCOL_V11 if node.config.allow_protocol_v11 => {
            let name = coil_store::validate_player_name(join.name).map_err(|_| {
                refused(
                    "bad_name",
                    ErrorCode::BadName,
                    "names are 1-16 letters, digits, marks, punctuation, symbols and spaces",
                )
            })?;
            // Token holders' seats are theirs: a join without a token leaves them free.
            let keep_free = match &node.fleet {
                Some(link) => link.reserved_seats(room_id).await,
                None => 0,
            };
            let mut identity =
                Identity::guest(format!("anon-{:016x}", rand::random::<u64>()), name);
            identity.skin = join.skin;
            Ok(Request::Join {
                mode: node.modes.default_mode().name.clone(),
                identity,
                keep_free,
                reservation: None,
                origin: RoomOrigin::default(),
            })
        }
        PROTOCOL_V11 => Err(refused(
            "token_required",
            ErrorCode::TokenRequired,
            "this server requires a join token (v12)",
        )),
        PROTOCOL_V12 => {
            let Some(link) = &node.fleet else {
                return Err(refused(
                    "token_invalid",
                    ErrorCode::TokenInvalid,
                    "this node has no matchmaker key",
                ));
            };
            let claims = link
                .admit(
                    join.token.unwrap_or_default(),
                    room_id.as_str(),
                    &node.config.node_id,
                )
                .map_err(|(code, reason)| (token_result(code), code.into(), reason))?;
            // The token's name was validated by the matchmaker that signed it; checking again
            // costs nothing and keeps a misconfigured matchmaker from reaching the game.
            let display_name =
                coil_store::validate_player_name(&claims.player_name).map_err(|_| {
                    refused(
                        "bad_name",
                        ErrorCode::BadName,
                        "the token's name is not valid",
                    )
                })?;
            let mode = GameMode::parse(&claims.mode).map_err(|_| {
                refused(
                    "token_invalid",
                    ErrorCode::TokenInvalid,
                    "the token names no valid mode",
                )
            })?;
            let identity = Identity {
                player_key: claims.player_id,
                display_name,
                verified: true,
                party: claims.party,
                team: claims.team,
                role: Role::from_u8(claims.role).unwrap_or(Role::Player),
                cosmetics: claims.cosmetics,
                skin: join.skin,
                host: claims.host,
            };
            let origin = RoomOrigin {
                rules: claims.rules,
                private: claims.private,
                password: claims.password,
                password_hash: claims.password_hash,
            };
            Ok(Request::Join {
                mode,
                identity,
                keep_free: 0,
                reservation: Some(claims.nonce),
                origin,
            })
        }
        _ => Err(refused(
            "unsupported_version",
            ErrorCode::UnsupportedVersion,
            "unsupported protocol version",
        )),
    }
}

/// Waits for the join (or resume) frame and seats the player. On failure the client has been
/// sent an error frame and the socket closed.
async fn handshake(node: &Arc<Node>, room_id: &RoomId, mut ws: WebSocket) -> Option<Joined> {
    let bytes = match first_frame(&mut ws).await {
        Ok(bytes) => bytes,
        Err(None) => return None,
        Err(Some((result, code, reason))) => {
            refuse(&mut ws, result, code, reason).await;
            return None;
        }
    };
    let request = match request(node, room_id, &bytes).await {
        Ok(request) => request,
        Err((result, code, reason)) => {
            refuse(&mut ws, result, code, reason).await;
            return None;
        }
    };
    let (sender, outbound) = mpsc::channel(OUTBOUND_QUEUE);
    let (sink, stream) = ws.split();
    let liveness = Arc::new(Liveness::default());
    let sink = Arc::new(SharedSink::new(sink, liveness.clone()));
    let direct = Direct::new(sink.clone());
    let connection = Connection {
        outbound: sender,
        direct: Some(direct.clone()),
        liveness,
    };
    let outcome = match request {
        Request::Join {
            mode,
            identity,
            keep_free,
            reservation,
            origin,
        } => match node
            .seat(room_id, &mode, &origin, identity, keep_free, connection)
            .await
        {
            Ok(seated) => {
                m::join("ok");
                if let (Some(link), Some(nonce)) = (&node.fleet, reservation) {
                    link.confirm_seat(room_id.as_str(), nonce);
                }
                Ok(seated)
            }
            Err(error) => Err(seat_refusal(error)),
        },
        Request::Resume(token) => match node.resume(room_id, token, connection).await {
            Ok(seated) => {
                m::join("resumed");
                Ok(seated)
            }
            Err(ResumeRefusal::Expired) => {
                m::reconnect("refused");
                Err(refused(
                    "resume_expired",
                    ErrorCode::ReconnectExpired,
                    "the seat is no longer held; ask the matchmaker for a room",
                ))
            }
            Err(ResumeRefusal::Refused) => {
                m::reconnect("refused");
                Err(refused(
                    "resume_refused",
                    ErrorCode::ReconnectRefused,
                    "unknown or already used reconnect token",
                ))
            }
        },
    };
    match outcome {
        Ok((seated, room)) => Some(Joined {
            seated,
            room,
            outbound,
            stream,
            sink,
            direct,
        }),
        Err((result, code, reason)) => {
            refuse(&mut *sink.sink.lock().await, result, code, reason).await;
            None
        }
    }
}

fn seat_refusal(error: SeatError) -> Refused {
    match error {
        SeatError::Full => refused("room_full", ErrorCode::RoomFull, "room is full"),
        SeatError::SpectatorsFull => refused(
            "room_full",
            ErrorCode::SpectatorsFull,
            "room has no spectator seat left",
        ),
        SeatError::Draining | SeatError::TooManyRooms => refused(
            "draining",
            ErrorCode::RoomDraining,
            "room is not taking players",
        ),
        SeatError::WrongMode | SeatError::UnknownMode => refused(
            "token_wrong_room",
            ErrorCode::TokenWrongRoom,
            "this room runs another game mode",
        ),
        SeatError::Game(refusal) => ("game_refused", refusal.code, refusal.reason),
    }
}

/// The `coil_joins_total` result label of a token refusal.
fn token_result(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::TokenExpired => "token_expired",
        ErrorCode::TokenWrongRoom => "token_wrong_room",
        ErrorCode::TokenReplayed => "token_replayed",
        ErrorCode::TokenInvalid => "token_invalid",
        _ => "error",
    }
}

async fn refuse<S: Sink<Message> + Unpin>(
    socket: &mut S,
    result: &'static str,
    code: RefusalCode,
    reason: &'static str,
) {
    m::join(result);
    close_with(socket, code, reason).await;
}

async fn close_with<S: Sink<Message> + Unpin>(
    socket: &mut S,
    code: RefusalCode,
    reason: &'static str,
) {
    let farewell = async {
        SinkExt::send(socket, Message::Binary(error_message(code, reason))).await?;
        SinkExt::send(
            socket,
            Message::Close(Some(CloseFrame {
                code: close_code(code),
                reason: reason.into(),
            })),
        )
        .await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), farewell).await;
}

/// Sends the error frame and the close through the shared write half.
async fn close_shared(sink: &SharedSink, code: impl Into<RefusalCode>, reason: &'static str) {
    let code = code.into();
    // The room never holds the lock across a wait; bound it all the same.
    if let Ok(mut sink) = tokio::time::timeout(Duration::from_secs(1), sink.sink.lock()).await {
        close_with(&mut *sink, code, reason).await;
    }
}

/// WebSocket close codes: 1008 (policy) for refusals, 1002 (protocol) for bad frames,
/// 1013 (try again later) for full/draining rooms and slow clients, 1011 for server errors,
/// 1000 when a game ended or a seat moved to another connection.
fn close_code(code: RefusalCode) -> u16 {
    match ErrorCode::from_u16(code.get()) {
        Some(
            ErrorCode::BadFrame
            | ErrorCode::Truncated
            | ErrorCode::Oversized
            | ErrorCode::OutOfOrder,
        ) => 1002,
        Some(
            ErrorCode::RoomFull
            | ErrorCode::SpectatorsFull
            | ErrorCode::RoomDraining
            | ErrorCode::SlowClient
            | ErrorCode::RateLimited,
        ) => 1013,
        Some(ErrorCode::RoomClosed | ErrorCode::Replaced) => 1000,
        Some(ErrorCode::Internal) => 1011,
        _ => 1008,
    }
}

/// The leave reason a close code means for the room.
fn leave_reason(code: RefusalCode) -> LeaveReason {
    match ErrorCode::from_u16(code.get()) {
        Some(ErrorCode::SlowClient) => LeaveReason::SlowClient,
        Some(ErrorCode::RoomDraining | ErrorCode::RoomClosed | ErrorCode::Replaced) => {
            LeaveReason::ClientClosed
        }
        _ => LeaveReason::ProtocolError,
    }
}

async fn play(node: &Arc<Node>, joined: &mut Joined, upgraded_at: Instant) -> LeaveReason {
    let Joined {
        seated,
        room,
        outbound,
        stream,
        sink,
        direct,
    } = joined;
    let seated = *seated;
    let mut budget = FrameBudget::new();
    let mut first_frame_sent = false;
    let write_timeout = node.config.slow_client_timeout;
    loop {
        tokio::select! {
            message = outbound.recv() => match message {
                Some(item @ (Outbound::Message { .. } | Outbound::Flush)) => {
                    // Under the write lock, so that the room's next direct write comes after it.
                    let written = tokio::time::timeout(write_timeout, async {
                        let mut guard = sink.sink.lock().await;
                        let result = match item {
                            Outbound::Message { message, ping } => {
                                match guard.feed(Message::Binary(message)).await {
                                    Ok(()) => match ping {
                                        Some(sequence) => match guard
                                            .feed(Message::Ping(sink.liveness.ping_payload(sequence)))
                                            .await
                                        {
                                            Ok(()) => {
                                                sink.liveness.mark_sent(sequence);
                                                guard.flush().await
                                            }
                                            Err(error) => Err(error),
                                        },
                                        None => guard.flush().await,
                                    },
                                    Err(error) => Err(error),
                                }
                            }
                            _ => guard.flush().await,
                        };
                        direct.finished();
                        result
                    })
                    .await;
                    match written {
                        Ok(Ok(())) => {
                            if !first_frame_sent {
                                first_frame_sent = true;
                                m::join_latency(upgraded_at.elapsed());
                            }
                        }
                        Ok(Err(_)) => return LeaveReason::ClientClosed,
                        Err(_) => {
                            crate::rate_limited_warn!(player = seated.player.0, "write timed out: closing a slow client");
                            return LeaveReason::SlowClient;
                        }
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    close_shared(sink, code, reason).await;
                    return leave_reason(code);
                }
                // The room ended or removed us without a word: it was stalled past its limit.
                None => {
                    close_shared(sink, ErrorCode::SlowClient, "removed from the room").await;
                    return LeaveReason::SlowClient;
                }
            },
            incoming = stream.next() => {
                let bytes = match incoming {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Pong(payload))) => {
                        sink.liveness.record_pong(&payload);
                        continue;
                    }
                    Some(Ok(Message::Ping(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        close_shared(sink, ErrorCode::BadFrame, "text frames are not part of the protocol").await;
                        return LeaveReason::ProtocolError;
                    }
                    Some(Ok(Message::Close(_))) | None => return LeaveReason::ClientClosed,
                    Some(Err(error)) => {
                        if is_oversized(&error) {
                            close_shared(sink, ErrorCode::Oversized, "message too large").await;
                            return LeaveReason::ProtocolError;
                        }
                        return LeaveReason::ClientClosed;
                    }
                };
                m::bytes_received(bytes.len());
                if !budget.take() {
                    close_shared(sink, ErrorCode::RateLimited, "too many frames").await;
                    return LeaveReason::ProtocolError;
                }
                match decode_client(&bytes) {
                    Ok(ClientEnvelope::Game(_)) => {
                        // Inputs are coalesced per tick, so one dropped under a full room queue
                        // is superseded by the next.
                        let frame = Bytes::clone(&bytes);
                        let _ = room.events.try_send(RoomEvent::Game { seated, frame });
                    }
                    Ok(ClientEnvelope::Ping { nonce }) => {
                        let mut pong = Vec::with_capacity(8);
                        write_pong(&mut Writer::new(&mut pong), nonce);
                        let sent = tokio::time::timeout(write_timeout, async {
                            sink.sink.lock().await.send(Message::Binary(Bytes::from(pong))).await
                        })
                        .await;
                        match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return LeaveReason::ClientClosed,
                            Err(_) => return LeaveReason::SlowClient,
                        }
                    }
                    Ok(ClientEnvelope::Join(_) | ClientEnvelope::Resume { .. }) => {
                        close_shared(sink, ErrorCode::OutOfOrder, "already joined").await;
                        return LeaveReason::ProtocolError;
                    }
                    Err(error) => {
                        close_shared(sink, ErrorCode::for_decode_error(error), "frame could not be decoded").await;
                        return LeaveReason::ProtocolError;
                    }
                }
            }
        }
    }
}
