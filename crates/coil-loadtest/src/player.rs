//! One simulated player: joins over a real WebSocket, follows the world with the reference
//! client mirror, and plays like a person at the mouse (steers toward a drifting target that
//! changes every 1–3 s, boosts part of the time, respawns after dying, sometimes leaves and
//! rejoins).
//!
//! Inputs follow the browser client's rule (`steering.rs`): one decision per state frame
//! applied (one state frame is one server tick, so the tick clock is the server's), and an
//! input only on a tick whose angle or boost changed. `--input-hz` is the worst case instead:
//! an input on every tick of a clock of that rate, changed or not (a client that coalesces
//! nothing).
//!
//! Each player is one task that owns its socket and mirror; it shares only counters
//! ([`Shared`]). It must stay cheap: no per-frame allocation beyond tungstenite's own message
//! buffer, timers re-armed in place. It never panics on what the server sends: a frame the
//! mirror cannot apply ends the connection and is counted.

use std::sync::Arc;
use std::time::Duration;

use coil_arena::client::ClientMirror;
use coil_protocol::arena::{encode_input, encode_respawn};
use coil_protocol::envelope::{Join, encode_join};
use coil_protocol::{ErrorCode, PROTOCOL_V11};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::args::Behaviour;
use crate::stats::Shared;
use crate::steering::{Hand, InputGate};

/// Longest a TCP connect plus WebSocket upgrade may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest from the join frame to the first state frame before the join counts as failed.
const FIRST_STATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before retrying after a failed join or a dropped connection, so an unreachable or
/// refusing server sees at most one attempt per player per second.
pub(crate) const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Matchmakes one join attempt may repeat when the token's node refuses the connection (a
/// node that died and is still in placement until its liveness runs out, 1.5 s by default):
/// the first at once, then after 100, 200, 400, 400 ... ms, about 3 s in all.
const MAX_REPLACEMENTS: u32 = 9;
/// How long a target point is kept: uniform in this range, per the arena-standard scenario.
const TARGET_MIN: Duration = Duration::from_secs(1);
const TARGET_MAX: Duration = Duration::from_secs(3);
/// The arena's tick rate until the server's init frame says it (`coil-arena`: 20 Hz).
const DEFAULT_TICK_RATE: u8 = 20;
/// Small read buffer: server messages are a few hundred bytes, and tungstenite's 128 KiB
/// default would cost ~1 GB at 8,000 players.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Largest server message accepted; far above any real frame, small enough to bound memory.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where and how a player joins a room. Today only directly by room name with a protocol v11
/// join; the matchmaker (POST /api/matchmake, then a v12 join carrying its token) becomes a
/// second variant without touching the player's behaviour.
#[derive(Debug, Clone)]
pub enum Joiner {
    /// `ws://host:port/api/room/<room>` and a v11 join without a token.
    Direct { ws_base: String },
    /// `POST <http_base>/api/matchmake`, then the returned wsUrl and a v12 join with the token.
    /// The room the plan names is ignored: the matchmaker places the player.
    Matchmaker {
        http_base: String,
        client: reqwest::Client,
        /// The game mode asked for (`"mode"` in the body); `None` asks for the default, the
        /// arena.
        mode: Option<&'static str>,
    },
}

/// What a player needs to open one session.
#[derive(Debug, Clone)]
pub struct JoinTicket {
    pub ws_url: String,
    pub join_frame: Vec<u8>,
    /// The room it joins: the name asked for, or the matchmaker's `roomId`.
    pub room: String,
}

impl Joiner {
    /// Whether a refused connection to the node is worth a new placement (a matchmaker may
    /// place the player on another node; a direct room URL would only fail again).
    fn replaces_on_refusal(&self) -> bool {
        matches!(self, Joiner::Matchmaker { .. })
    }

    /// Prepares one join. Errors are failure reasons as they appear in the report.
    pub async fn ticket(&self, room: &str, name: &str, skin: u8) -> Result<JoinTicket, String> {
        match self {
            Joiner::Direct { ws_base } => {
                let mut join_frame = Vec::with_capacity(8 + name.len());
                encode_join(
                    &Join {
                        version: PROTOCOL_V11,
                        name,
                        skin,
                        token: None,
                    },
                    &mut join_frame,
                );
                Ok(JoinTicket {
                    ws_url: format!("{ws_base}/api/room/{room}"),
                    join_frame,
                    room: room.to_owned(),
                })
            }
            Joiner::Matchmaker {
                http_base,
                client,
                mode,
            } => {
                let mut body = serde_json::json!({ "playerName": name, "playerId": name });
                if let Some(mode) = mode {
                    body["mode"] = (*mode).into();
                }
                let response = client
                    .post(format!("{http_base}/api/matchmake"))
                    .json(&body)
                    .timeout(std::time::Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|error| {
                        format!(
                            "matchmake: {}",
                            if error.is_timeout() {
                                "timeout"
                            } else {
                                "unreachable"
                            }
                        )
                    })?;
                let status = response.status().as_u16();
                if status != 200 {
                    return Err(format!("matchmake: HTTP {status}"));
                }
                let answer: serde_json::Value = response
                    .json()
                    .await
                    .map_err(|_| "matchmake: bad answer".to_string())?;
                let (Some(ws_url), Some(token), Some(room)) = (
                    answer["wsUrl"].as_str(),
                    answer["joinToken"].as_str(),
                    answer["roomId"].as_str(),
                ) else {
                    return Err("matchmake: bad answer".into());
                };
                let mut join_frame = Vec::with_capacity(16 + name.len() + token.len());
                encode_join(
                    &Join {
                        version: coil_protocol::PROTOCOL_V12,
                        name,
                        skin,
                        token: Some(token.as_bytes()),
                    },
                    &mut join_frame,
                );
                Ok(JoinTicket {
                    ws_url: ws_url.to_string(),
                    join_frame,
                    room: room.to_string(),
                })
            }
        }
    }
}

/// One player's part of a run.
#[derive(Debug, Clone)]
pub struct PlayerPlan {
    pub slot: usize,
    pub room: String,
    pub start_at: Instant,
    /// Bytes and connected time are attributed to this player only inside this window.
    pub window: (Instant, Instant),
    pub behaviour: Behaviour,
    pub seed: u64,
}

/// What one player measured, returned when its task ends.
#[derive(Debug, Clone, Default)]
pub struct PlayerSummary {
    pub slot: usize,
    /// Wire bytes received inside the measurement window.
    pub bytes_in_window: u64,
    /// Time connected (first state frame to disconnect) inside the measurement window.
    pub connected_in_window: Duration,
    pub sessions: u32,
}

/// WebSocket frame header size of a server→client (unmasked) message with this payload.
pub fn frame_header_bytes(payload: usize) -> u64 {
    if payload < 126 {
        2
    } else if payload < 65_536 {
        4
    } else {
        10
    }
}

pub(crate) fn overlap(start: Instant, end: Instant, window: (Instant, Instant)) -> Duration {
    let from = start.max(window.0);
    let to = end.min(window.1);
    to.saturating_duration_since(from)
}

pub(crate) enum SessionEnd {
    /// The run is over.
    Stopped,
    /// The player left on purpose and rejoins at once.
    Left,
    /// The join failed or the connection dropped: retry after [`RETRY_DELAY`].
    Retry,
}

/// Runs one player until `stop` turns true: join, play, rejoin after leaving or failing.
pub async fn run_player(
    plan: PlayerPlan,
    joiner: Arc<Joiner>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> PlayerSummary {
    let mut rng =
        StdRng::seed_from_u64(plan.seed ^ (plan.slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut summary = PlayerSummary {
        slot: plan.slot,
        ..PlayerSummary::default()
    };
    let name = format!("lt{}", plan.slot);
    let skin = (plan.slot % 8) as u8;
    if wait_or_stop(plan.start_at, &mut stop).await {
        return summary;
    }
    loop {
        if *stop.borrow() {
            return summary;
        }
        let end = session(
            &plan,
            &joiner,
            &shared,
            &mut stop,
            &mut rng,
            &name,
            skin,
            &mut summary,
        )
        .await;
        match end {
            SessionEnd::Stopped => return summary,
            SessionEnd::Left => continue,
            SessionEnd::Retry => {
                if wait_or_stop(Instant::now() + RETRY_DELAY, &mut stop).await {
                    return summary;
                }
            }
        }
    }
}

/// Sleeps until `deadline`; true if the run stopped first.
pub(crate) async fn wait_or_stop(deadline: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => *stop.borrow(),
        // An error means the controller is gone: stop as well.
        _ = stop.changed() => true,
    }
}

pub(crate) fn connect_failure(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Io(io) => format!("connect: {}", io.kind()),
        Error::Http(response) => format!("http {}", response.status().as_u16()),
        Error::Url(_) => "connect: bad url".into(),
        Error::Tls(_) => "connect: tls".into(),
        Error::Protocol(_) => "connect: websocket handshake".into(),
        _ => "connect: other".into(),
    }
}

/// What the join code needs from a client mirror: apply a server message, count the state
/// frames applied, and remember the last error frame. The arena's and breach's mirrors both
/// provide it, so both games share one join path.
pub(crate) trait FollowsServer {
    /// Applies one server message; `false` when the mirror could not (a desync).
    fn apply(&mut self, message: &[u8]) -> bool;
    fn states_applied(&self) -> u64;
    /// The code of the last error frame the server sent, if any.
    fn error_code(&self) -> Option<u16>;
    /// The state frames per second the server announced, once it did.
    fn tick_rate(&self) -> Option<u8>;
}

impl FollowsServer for ClientMirror {
    fn apply(&mut self, message: &[u8]) -> bool {
        self.apply_message(message).is_ok()
    }

    fn states_applied(&self) -> u64 {
        ClientMirror::states_applied(self)
    }

    fn error_code(&self) -> Option<u16> {
        self.last_error().map(|(code, _)| *code)
    }

    fn tick_rate(&self) -> Option<u8> {
        self.init().map(|init| init.tick_rate)
    }
}

/// The report's name for a server error code, or `otherwise` without one.
pub(crate) fn error_reason(code: Option<u16>, otherwise: &str) -> String {
    match code {
        Some(code) => match ErrorCode::from_u16(code) {
            Some(known) => format!("error {code} {known:?}"),
            None => format!("error {code}"),
        },
        None => otherwise.to_owned(),
    }
}

/// Gets a ticket from the joiner and opens its WebSocket, placing the player again at once
/// when the token's node refuses (see [`MAX_REPLACEMENTS`]). A failure is counted as a failed
/// join attempt and returned as how the session ends.
pub(crate) async fn connect_for_join(
    room: &str,
    joiner: &Joiner,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    name: &str,
    skin: u8,
) -> Result<(JoinTicket, Socket), SessionEnd> {
    let mut replacements = 0u32;
    loop {
        let ticket = match joiner.ticket(room, name, skin).await {
            Ok(ticket) => ticket,
            Err(reason) => {
                shared.join_attempts.increment();
                shared.join_failed(&reason);
                return Err(SessionEnd::Retry);
            }
        };
        let reason = match connect(&ticket.ws_url, stop).await? {
            Ok(socket) => return Ok((ticket, socket)),
            Err(reason) => reason,
        };
        // The token's node is gone (refused, reset or silent): ask the matchmaker again at
        // once instead of waiting out the retry delay with a seat on a dead node.
        if joiner.replaces_on_refusal() && replacements < MAX_REPLACEMENTS {
            if replacements > 0 {
                let backoff = Duration::from_millis(100 << (replacements - 1).min(2));
                if wait_or_stop(Instant::now() + backoff, stop).await {
                    return Err(SessionEnd::Stopped);
                }
            }
            replacements += 1;
            shared.replacements.increment();
            continue;
        }
        shared.join_attempts.increment();
        shared.join_failed(&reason);
        return Err(SessionEnd::Retry);
    }
}

/// Opens one WebSocket with the generator's small buffers: the socket, or the failure reason
/// as the report names it; `Err` when the run stopped meanwhile.
pub(crate) async fn connect(
    ws_url: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<Result<Socket, String>, SessionEnd> {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let connect = tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true);
    let connected = tokio::select! {
        result = tokio::time::timeout(CONNECT_TIMEOUT, connect) => result,
        _ = stop.changed() => return Err(SessionEnd::Stopped),
    };
    Ok(match connected {
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(error)) => Err(connect_failure(&error)),
        Err(_elapsed) => Err("connect: timeout".to_owned()),
    })
}

/// Where a joined session's bytes are counted.
pub(crate) struct Accounting<'a> {
    pub shared: &'a Shared,
    pub window: (Instant, Instant),
    /// Wire bytes received inside the window by this session.
    pub bytes_in_window: u64,
}

impl Accounting<'_> {
    /// Counts one received message; returns its arrival time.
    pub(crate) fn received(&mut self, payload: usize) -> Instant {
        let now = Instant::now();
        let wire = payload as u64 + frame_header_bytes(payload);
        self.shared.bytes_received.add(wire);
        if now >= self.window.0 && now < self.window.1 {
            self.bytes_in_window += wire;
        }
        now
    }
}

/// Sends the first frame (a join or a resume) and reads until the first state frame is
/// applied: the join succeeded (counted, with its latency from `connect_started`), and the
/// player is connected. A failure is counted as a failed join and returned as how the
/// session ends.
pub(crate) async fn await_first_state<M: FollowsServer>(
    socket: &mut Socket,
    first_frame: Vec<u8>,
    mirror: &mut M,
    accounting: &mut Accounting<'_>,
    stop: &mut watch::Receiver<bool>,
    connect_started: Instant,
) -> Result<Instant, SessionEnd> {
    let shared = accounting.shared;
    if socket
        .send(Message::Binary(first_frame.into()))
        .await
        .is_err()
    {
        shared.join_attempts.increment();
        shared.join_failed("closed before first state");
        return Err(SessionEnd::Retry);
    }
    let first_state_deadline = Instant::now() + FIRST_STATE_TIMEOUT;
    let joined_at = loop {
        let message = tokio::select! {
            message = tokio::time::timeout_at(first_state_deadline, socket.next()) => message,
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return Err(SessionEnd::Stopped);
            }
        };
        let failure = match message {
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                let now = accounting.received(bytes.len());
                if !mirror.apply(&bytes) {
                    Some("mirror desync before first state".to_owned())
                } else if mirror.states_applied() > 0 {
                    break now;
                } else {
                    None
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => Some(error_reason(
                mirror.error_code(),
                "closed before first state",
            )),
            Ok(Some(Err(_))) => Some(error_reason(
                mirror.error_code(),
                "read error before first state",
            )),
            Ok(Some(Ok(_))) => None,
            Err(_elapsed) => Some("timeout waiting for first state".to_owned()),
        };
        if let Some(reason) = failure {
            shared.join_attempts.increment();
            shared.join_failed(&reason);
            return Err(SessionEnd::Retry);
        }
    };
    shared.join_attempts.increment();
    shared.joins_succeeded.increment();
    shared
        .join_latency_us
        .record(joined_at.duration_since(connect_started).as_micros() as u64);
    shared.state_frames.add(mirror.states_applied());
    if let Some(rate) = mirror.tick_rate() {
        shared.tick_rate.raise_to(u64::from(rate));
    }
    shared.player_connected();
    Ok(joined_at)
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
async fn session(
    plan: &PlayerPlan,
    joiner: &Joiner,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    rng: &mut StdRng,
    name: &str,
    skin: u8,
    summary: &mut PlayerSummary,
) -> SessionEnd {
    let connect_started = Instant::now();
    let (ticket, mut socket) =
        match connect_for_join(&plan.room, joiner, shared, stop, name, skin).await {
            Ok(opened) => opened,
            Err(end) => return end,
        };
    summary.sessions += 1;
    let mut mirror = ClientMirror::without_bodies();
    let mut accounting = Accounting {
        shared,
        window: plan.window,
        bytes_in_window: 0,
    };
    let joined = await_first_state(
        &mut socket,
        ticket.join_frame,
        &mut mirror,
        &mut accounting,
        stop,
        connect_started,
    )
    .await;
    let joined_at = match joined {
        Ok(at) => at,
        Err(end) => {
            summary.bytes_in_window += accounting.bytes_in_window;
            return end;
        }
    };
    let mut last_state_at = joined_at;
    let mut bytes_in_window = accounting.bytes_in_window;
    let (end, reason) = play(
        plan,
        shared,
        stop,
        rng,
        &mut socket,
        &mut mirror,
        &mut last_state_at,
        &mut bytes_in_window,
    )
    .await;
    let ended_at = Instant::now();
    shared.player_disconnected(&reason);
    summary.bytes_in_window += bytes_in_window;
    summary.connected_in_window += overlap(joined_at, ended_at, plan.window);
    end
}

/// Plays one joined session until it ends; returns how and the disconnect reason.
#[allow(clippy::too_many_arguments)] // one call site, all borrowed session state
async fn play(
    plan: &PlayerPlan,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    rng: &mut StdRng,
    socket: &mut Socket,
    mirror: &mut ClientMirror,
    last_state_at: &mut Instant,
    bytes_in_window: &mut u64,
) -> (SessionEnd, String) {
    let behaviour = plan.behaviour;
    let now = Instant::now();
    // The first target is chosen at once, so the player steers from its first state on.
    let mut next_target_at = now;
    let mut respawn_at: Option<Instant> = None;
    let leave_at = next_leave(rng, behaviour.leave_per_minute).map(|after| now + after);
    let mut frame = Vec::with_capacity(8);
    let far_future = now + Duration::from_secs(86_400);
    let wake_at =
        |next_target_at: Instant, respawn_at: Option<Instant>, leave_at: Option<Instant>| {
            next_target_at
                .min(respawn_at.unwrap_or(far_future))
                .min(leave_at.unwrap_or(far_future))
        };
    let timer = tokio::time::sleep_until(wake_at(next_target_at, respawn_at, leave_at));
    tokio::pin!(timer);
    // With --input-hz the hand is read, and an input sent, on a clock of its own (the worst
    // case) instead of on the server's ticks; without it this timer never fires.
    let input_period = behaviour
        .input_hz
        .map(|hz| Duration::from_secs_f64(1.0 / f64::from(hz)));
    let mut next_input_at = input_period.map_or(far_future, |period| now + period);
    let input_timer = tokio::time::sleep_until(next_input_at);
    tokio::pin!(input_timer);
    let mut hand = Hand::new();
    let mut gate = InputGate::new();
    let mut inputs_since_state = 0u64;
    loop {
        // Set when this turn of the loop is a tick of the input clock, to its length.
        let mut input_tick: Option<f32> = None;
        tokio::select! {
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return (SessionEnd::Stopped, "run ended".into());
            }
            message = socket.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    let now = Instant::now();
                    let wire = bytes.len() as u64 + frame_header_bytes(bytes.len());
                    shared.bytes_received.add(wire);
                    if now >= plan.window.0 && now < plan.window.1 {
                        *bytes_in_window += wire;
                    }
                    let states_before = mirror.states_applied();
                    if mirror.apply_message(&bytes).is_err() {
                        let _ = socket.close(None).await;
                        return (SessionEnd::Retry, "mirror desync".into());
                    }
                    let new_states = mirror.states_applied() - states_before;
                    if new_states > 0 {
                        shared.state_frames.add(new_states);
                        shared
                            .state_interval_us
                            .record(now.duration_since(*last_state_at).as_micros() as u64);
                        *last_state_at = now;
                        inputs_since_state = 0;
                        if input_period.is_none() {
                            let rate = mirror.tick_rate().unwrap_or(DEFAULT_TICK_RATE).max(1);
                            input_tick = Some(new_states as f32 / f32::from(rate));
                        }
                    }
                    if mirror.take_death().is_some() {
                        shared.deaths.increment();
                        hand.drop_target();
                        respawn_at = Some(now + behaviour.respawn_delay);
                        timer.as_mut().reset(wake_at(next_target_at, respawn_at, leave_at));
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    return (SessionEnd::Retry, error_reason(mirror.error_code(), "server closed"));
                }
                Some(Err(_)) => {
                    return (SessionEnd::Retry, error_reason(mirror.error_code(), "read error"));
                }
                Some(Ok(_)) => {}
            },
            () = &mut input_timer => {
                let period = input_period.unwrap_or(Duration::from_secs(86_400));
                // A late timer skips the ticks it missed rather than sending them in a burst.
                next_input_at = (next_input_at + period).max(Instant::now());
                input_timer.as_mut().reset(next_input_at);
                input_tick = Some(period.as_secs_f32());
            }
            () = &mut timer => {
                let now = Instant::now();
                if leave_at.is_some_and(|at| at <= now) {
                    shared.planned_leaves.increment();
                    let _ = socket.close(None).await;
                    return (SessionEnd::Left, "left to rejoin".into());
                }
                if respawn_at.is_some_and(|at| at <= now) {
                    respawn_at = None;
                    frame.clear();
                    encode_respawn(&mut frame);
                    if socket.send(Message::Binary(frame.clone().into())).await.is_err() {
                        return (SessionEnd::Retry, "write error".into());
                    }
                    shared.respawns_sent.increment();
                    // The new snake starts a new run: its first input goes out whatever the
                    // last one was.
                    gate = InputGate::new();
                    // Steer as soon as the new snake exists (a few ticks later).
                    next_target_at = now + Duration::from_millis(300);
                }
                if next_target_at <= now {
                    next_target_at = now + rng.gen_range(TARGET_MIN..=TARGET_MAX);
                    if let Some(init) = mirror.init().filter(|_| mirror.own_snake().is_some()) {
                        hand.pick_target(init.arena_radius, behaviour.boost_fraction, rng);
                    }
                }
                timer.as_mut().reset(wake_at(next_target_at, respawn_at, leave_at));
            }
        }
        let Some(dt) = input_tick else { continue };
        let Some(head) = mirror
            .init()
            .and_then(|init| Some(mirror.own_snake()?.head_world(init)))
        else {
            continue;
        };
        let aimed = hand.aim(head, dt);
        // The tick rule sends only what changed; the --input-hz worst case sends every time.
        let to_send = match input_period {
            None => aimed.and_then(|input| gate.offer(input)),
            Some(_) => aimed,
        };
        if let Some(input) = to_send {
            frame.clear();
            encode_input(input, &mut frame);
            if socket
                .send(Message::Binary(frame.clone().into()))
                .await
                .is_err()
            {
                return (SessionEnd::Retry, "write error".into());
            }
            shared.inputs_sent.increment();
            inputs_since_state += 1;
            shared
                .most_inputs_between_states
                .raise_to(inputs_since_state);
        }
    }
}

/// Time until this player leaves, if it ever does: exponential with `per_minute` leaves per
/// player-minute, so a fraction `per_minute` of players leaves each minute on average.
pub(crate) fn next_leave(rng: &mut StdRng, per_minute: f64) -> Option<Duration> {
    if per_minute <= 0.0 {
        return None;
    }
    let uniform: f64 = rng.r#gen::<f64>();
    let minutes = -(1.0 - uniform).ln() / per_minute;
    Some(Duration::from_secs_f64((minutes * 60.0).min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_follow_the_websocket_length_encoding() {
        assert_eq!(frame_header_bytes(0), 2);
        assert_eq!(frame_header_bytes(125), 2);
        assert_eq!(frame_header_bytes(126), 4);
        assert_eq!(frame_header_bytes(65_535), 4);
        assert_eq!(frame_header_bytes(65_536), 10);
    }

    #[test]
    fn leave_times_average_to_the_rate() {
        let mut rng = StdRng::seed_from_u64(7);
        let samples = 20_000;
        let total: f64 = (0..samples)
            .map(|_| next_leave(&mut rng, 0.05).unwrap().as_secs_f64())
            .sum();
        let mean_minutes = total / samples as f64 / 60.0;
        // Mean of an exponential with rate 0.05/min is 20 minutes.
        assert!(
            (18.5..21.5).contains(&mean_minutes),
            "mean {mean_minutes} min"
        );
        assert_eq!(next_leave(&mut rng, 0.0), None);
    }

    #[test]
    fn overlap_is_clipped_to_the_window() {
        let start = Instant::now();
        let window = (
            start + Duration::from_secs(10),
            start + Duration::from_secs(20),
        );
        assert_eq!(
            overlap(start, start + Duration::from_secs(5), window),
            Duration::ZERO
        );
        assert_eq!(
            overlap(start, start + Duration::from_secs(15), window),
            Duration::from_secs(5)
        );
        assert_eq!(
            overlap(
                start + Duration::from_secs(12),
                start + Duration::from_secs(30),
                window
            ),
            Duration::from_secs(8)
        );
    }
}
