//! One player's WebSocket connection: the join handshake, then a single task that reads the
//! player's frames (forwarding game frames to the room) and writes the room's messages.
//!
//! A session never blocks a room: the room fills a bounded queue and the session drains it.
//! A write that cannot complete within the slow-client timeout ends the connection. Bad frames
//! get an error frame and a close; they never panic and never reach the game as garbage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use coil_game::{Game, JoinInfo, PlayerId};
use coil_protocol::envelope::{ClientEnvelope, decode_client, write_pong};
use coil_protocol::{ErrorCode, PROTOCOL_V11, PROTOCOL_V12, Writer};
use tokio::sync::mpsc;

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
    mut socket: WebSocket,
    upgraded_at: Instant,
) {
    let _gauge = ConnectionGauge::open();
    let Some((player, room, mut outbound)) = handshake(&node, &room_id, &mut socket).await else {
        return;
    };
    let reason = play(
        &node,
        player,
        &room,
        &mut outbound,
        &mut socket,
        upgraded_at,
    )
    .await;
    let _ = room.events.send(RoomEvent::Leave { player, reason }).await;
}

/// Waits for the join frame and seats the player. On failure the client has been sent an
/// error frame and the socket closed.
async fn handshake<G: Game>(
    node: &Arc<Node<G>>,
    room_id: &RoomId,
    socket: &mut WebSocket,
) -> Option<(PlayerId, RoomHandle, mpsc::Receiver<Outbound>)> {
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
    match node.seat(room_id, info, sender).await {
        Ok((player, room)) => {
            m::join("ok");
            if let (Some(link), Some(nonce)) = (&node.fleet, reservation) {
                link.confirm_seat(room_id.as_str(), nonce);
            }
            Some((player, room, outbound))
        }
        Err(SeatError::Full) => {
            refuse(socket, "room_full", ErrorCode::RoomFull, "room is full").await;
            None
        }
        Err(SeatError::Draining | SeatError::TooManyRooms) => {
            refuse(
                socket,
                "draining",
                ErrorCode::RoomDraining,
                "room is not taking players",
            )
            .await;
            None
        }
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

async fn refuse(
    socket: &mut WebSocket,
    result: &'static str,
    code: ErrorCode,
    reason: &'static str,
) {
    m::join(result);
    close_with(socket, code, reason).await;
}

async fn close_with(socket: &mut WebSocket, code: ErrorCode, reason: &'static str) {
    let farewell = async {
        socket
            .send(Message::Binary(error_message(code, reason)))
            .await?;
        socket
            .send(Message::Close(Some(CloseFrame {
                code: close_code(code),
                reason: reason.into(),
            })))
            .await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), farewell).await;
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
    player: PlayerId,
    room: &RoomHandle,
    outbound: &mut mpsc::Receiver<Outbound>,
    socket: &mut WebSocket,
    upgraded_at: Instant,
) -> LeaveReason {
    let mut budget = FrameBudget::new();
    let mut first_frame_sent = false;
    let write_timeout = node.config.slow_client_timeout;
    loop {
        tokio::select! {
            message = outbound.recv() => match message {
                Some(Outbound::Message(bytes)) => {
                    let written = tokio::time::timeout(write_timeout, socket.send(Message::Binary(bytes))).await;
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
                    close_with(socket, code, reason).await;
                    return match code {
                        ErrorCode::SlowClient => LeaveReason::SlowClient,
                        ErrorCode::RoomDraining => LeaveReason::ClientClosed,
                        _ => LeaveReason::ProtocolError,
                    };
                }
                // The room ended or removed us without a word: it was stalled past its limit.
                None => {
                    close_with(socket, ErrorCode::SlowClient, "removed from the room").await;
                    return LeaveReason::SlowClient;
                }
            },
            incoming = socket.recv() => {
                let bytes = match incoming {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        close_with(socket, ErrorCode::BadFrame, "text frames are not part of the protocol").await;
                        return LeaveReason::ProtocolError;
                    }
                    Some(Ok(Message::Close(_))) | None => return LeaveReason::ClientClosed,
                    Some(Err(error)) => {
                        // Oversized messages surface here as capacity errors from the WebSocket layer.
                        let oversized = error.to_string().contains("too long") || error.to_string().contains("Space limit");
                        if oversized {
                            close_with(socket, ErrorCode::Oversized, "message too large").await;
                            return LeaveReason::ProtocolError;
                        }
                        return LeaveReason::ClientClosed;
                    }
                };
                m::bytes_received(bytes.len());
                if !budget.take() {
                    close_with(socket, ErrorCode::RateLimited, "too many frames").await;
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
                        if socket.send(Message::Binary(Bytes::from(pong))).await.is_err() {
                            return LeaveReason::ClientClosed;
                        }
                    }
                    Ok(ClientEnvelope::Join(_)) => {
                        close_with(socket, ErrorCode::OutOfOrder, "already joined").await;
                        return LeaveReason::ProtocolError;
                    }
                    Err(error) => {
                        close_with(socket, ErrorCode::for_decode_error(error), "frame could not be decoded").await;
                        return LeaveReason::ProtocolError;
                    }
                }
            }
        }
    }
}
