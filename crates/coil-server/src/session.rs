//! One player's WebSocket connection: the join handshake, then a single task that reads the
//! player's frames (forwarding game frames to the room) and writes what the room queued.
//!
//! A session never blocks a room: the room writes to the socket itself only when that cannot
//! wait (see [`crate::direct`]); everything else goes through a bounded queue that the session
//! drains. A write that cannot complete within the slow-client timeout ends the connection. Bad
//! frames get an error frame and a close; they never panic and never reach the game as garbage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use coil_game::{Game, JoinInfo, PlayerId};
use coil_protocol::envelope::{ClientEnvelope, decode_client, write_pong};
use coil_protocol::{ErrorCode, PROTOCOL_V11, PROTOCOL_V12, Writer};
use futures_util::stream::SplitStream;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::direct::{Direct, SharedSink};
use crate::metrics as m;
use crate::node::{Node, SeatError};
use crate::room::{
    LeaveReason, OUTBOUND_QUEUE, Outbound, RoomEvent, RoomHandle, RoomId, error_message,
};

/// How long a client has to send its join frame after the upgrade.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Game frames a client may send: a sustained rate and a burst. A browser coalesces input per
/// animation frame (60 Hz); twice that is generous, ten times that is abuse.
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

/// Token bucket over client frames.
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
pub async fn run<G: Game>(
    node: Arc<Node<G>>,
    room_id: RoomId,
    socket: WebSocket,
    upgraded_at: Instant,
) {
    let _gauge = ConnectionGauge::open();
    let Some(mut joined) = handshake(&node, &room_id, socket).await else {
        return;
    };
    let reason = play(&node, &mut joined, upgraded_at).await;
    let _ = joined
        .room
        .events
        .send(RoomEvent::Leave {
            player: joined.player,
            reason,
        })
        .await;
}

/// A seated player's connection: the socket split into the read half (this task's) and the
/// write half (shared with the room for direct writes).
struct Joined {
    player: PlayerId,
    room: RoomHandle,
    outbound: mpsc::Receiver<Outbound>,
    stream: SplitStream<WebSocket>,
    sink: Arc<SharedSink>,
    direct: Direct,
}

/// Waits for the join frame and seats the player. On failure the client has been sent an
/// error frame and the socket closed.
async fn handshake<G: Game>(
    node: &Arc<Node<G>>,
    room_id: &RoomId,
    mut ws: WebSocket,
) -> Option<Joined> {
    let socket = &mut ws;
    let first = match tokio::time::timeout(JOIN_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(message))) => message,
        // Timed out, closed or broken before joining: nothing to tell.
        _ => return None,
    };
    let bytes = match first {
        Message::Binary(bytes) => bytes,
        Message::Close(_) => return None,
        _ => {
            refuse(
                socket,
                "bad_frame",
                ErrorCode::BadFrame,
                "expected a binary join frame",
            )
            .await;
            return None;
        }
    };
    m::bytes_received(bytes.len());
    let join = match decode_client(&bytes) {
        Ok(ClientEnvelope::Join(join)) => join,
        Ok(_) => {
            refuse(
                socket,
                "bad_frame",
                ErrorCode::OutOfOrder,
                "the first frame must be a join",
            )
            .await;
            return None;
        }
        Err(error) => {
            refuse(
                socket,
                "bad_frame",
                ErrorCode::for_decode_error(error),
                "join frame could not be decoded",
            )
            .await;
            return None;
        }
    };
    let mut reservation = None;
    match join.version {
        PROTOCOL_V11 if node.config.allow_protocol_v11 => {}
        PROTOCOL_V11 => {
            refuse(
                socket,
                "token_required",
                ErrorCode::TokenRequired,
                "this server requires a join token (v12)",
            )
            .await;
            return None;
        }
        PROTOCOL_V12 => {
            let Some(link) = &node.fleet else {
                refuse(
                    socket,
                    "token_invalid",
                    ErrorCode::TokenInvalid,
                    "this node has no matchmaker key",
                )
                .await;
                return None;
            };
            match link.admit(
                join.token.unwrap_or_default(),
                room_id.as_str(),
                &node.config.node_id,
            ) {
                Ok(claims) => reservation = Some(claims.nonce),
                Err((code, reason)) => {
                    refuse(socket, token_result(code), code, reason).await;
                    return None;
                }
            }
        }
        _ => {
            refuse(
                socket,
                "unsupported_version",
                ErrorCode::UnsupportedVersion,
                "unsupported protocol version",
            )
            .await;
            return None;
        }
    }
    let name = match coil_store::validate_player_name(join.name) {
        Ok(name) => name,
        Err(_) => {
            refuse(
                socket,
                "bad_name",
                ErrorCode::BadName,
                "names are 1-16 letters, digits, space, _ - .",
            )
            .await;
            return None;
        }
    };
    let info = JoinInfo {
        name,
        skin: join.skin,
    };
    let (sender, outbound) = mpsc::channel(OUTBOUND_QUEUE);
    let (sink, stream) = ws.split();
    let sink = Arc::new(SharedSink::new(sink));
    let direct = Direct::new(sink.clone());
    let seated = node.seat(room_id, info, sender, Some(direct.clone())).await;
    let refusal = match seated {
        Ok((player, room)) => {
            m::join("ok");
            if let (Some(link), Some(nonce)) = (&node.fleet, reservation) {
                link.confirm_seat(room_id.as_str(), nonce);
            }
            return Some(Joined {
                player,
                room,
                outbound,
                stream,
                sink,
                direct,
            });
        }
        Err(SeatError::Full) => ("room_full", ErrorCode::RoomFull, "room is full"),
        Err(SeatError::Draining | SeatError::TooManyRooms) => (
            "draining",
            ErrorCode::RoomDraining,
            "room is not taking players",
        ),
    };
    let (result, code, reason) = refusal;
    refuse(&mut *sink.sink.lock().await, result, code, reason).await;
    None
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
    code: ErrorCode,
    reason: &'static str,
) {
    m::join(result);
    close_with(socket, code, reason).await;
}

async fn close_with<S: Sink<Message> + Unpin>(
    socket: &mut S,
    code: ErrorCode,
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
async fn close_shared(sink: &SharedSink, code: ErrorCode, reason: &'static str) {
    // The room never holds the lock across a wait; bound it all the same.
    if let Ok(mut sink) = tokio::time::timeout(Duration::from_secs(1), sink.sink.lock()).await {
        close_with(&mut *sink, code, reason).await;
    }
}

/// WebSocket close codes: 1008 (policy) for refusals, 1002 (protocol) for bad frames,
/// 1013 (try again later) for full/draining rooms and slow clients, 1011 for server errors.
fn close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::BadFrame
        | ErrorCode::Truncated
        | ErrorCode::Oversized
        | ErrorCode::OutOfOrder => 1002,
        ErrorCode::RoomFull
        | ErrorCode::RoomDraining
        | ErrorCode::SlowClient
        | ErrorCode::RateLimited => 1013,
        ErrorCode::Internal => 1011,
        _ => 1008,
    }
}

async fn play<G: Game>(
    node: &Arc<Node<G>>,
    joined: &mut Joined,
    upgraded_at: Instant,
) -> LeaveReason {
    let Joined {
        player,
        room,
        outbound,
        stream,
        sink,
        direct,
    } = joined;
    let player = *player;
    let mut budget = FrameBudget::new();
    let mut first_frame_sent = false;
    let write_timeout = node.config.slow_client_timeout;
    loop {
        tokio::select! {
            message = outbound.recv() => match message {
                Some(item @ (Outbound::Message(_) | Outbound::Flush)) => {
                    // Under the write lock, so that the room's next direct write comes after it.
                    let written = tokio::time::timeout(write_timeout, async {
                        let mut sink = sink.sink.lock().await;
                        let result = match item {
                            Outbound::Message(bytes) => sink.send(Message::Binary(bytes)).await,
                            _ => sink.flush().await,
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
                            crate::rate_limited_warn!(player = player.0, "write timed out: closing a slow client");
                            return LeaveReason::SlowClient;
                        }
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    close_shared(sink, code, reason).await;
                    return match code {
                        ErrorCode::SlowClient => LeaveReason::SlowClient,
                        ErrorCode::RoomDraining => LeaveReason::ClientClosed,
                        _ => LeaveReason::ProtocolError,
                    };
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
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        close_shared(sink, ErrorCode::BadFrame, "text frames are not part of the protocol").await;
                        return LeaveReason::ProtocolError;
                    }
                    Some(Ok(Message::Close(_))) | None => return LeaveReason::ClientClosed,
                    Some(Err(error)) => {
                        // Oversized messages surface here as capacity errors from the WebSocket layer.
                        let oversized = error.to_string().contains("too long") || error.to_string().contains("Space limit");
                        if oversized {
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
                        let _ = room.events.try_send(RoomEvent::Game { player, frame });
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
                    Ok(ClientEnvelope::Join(_)) => {
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
