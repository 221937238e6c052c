//! The room runtime: one tokio task per room drives a [`Game`] at its mode's tick rate.
//!
//! The task owns the game outright (no lock around it) and reads a closed enum of
//! [`RoomEvent`]s. The room's decisions — seats and caps, reconnect grace, lifecycle, idle
//! reaping, drain deadlines — are made by the sans-IO [`core::RoomCore`]; this task only moves
//! bytes and time into it and does what it decides. All time comes from one clock, tokio's
//! (so paused time drives the whole room in tests), turned into "time since the room began"
//! for the core.
//!
//! Each tick it advances the game, acts on the game's events (runs for the leaderboard if the
//! mode opted in, match results and flags to the node's report sink), and sends every
//! connected player exactly one message: written straight to the player's socket when that
//! cannot wait (see [`crate::direct`]), otherwise through that player's bounded outbound queue.
//! It never waits on a socket or a database inside a tick: a full queue means the frame is
//! dropped (and the player's view re-sent in full later); a client that does not answer the
//! liveness ping (or whose queue stays full) for the slow-client timeout is cut.
//!
//! Lifecycle: WARM (no seats) → ACTIVE (seats) → DRAINING (no new joins; players told to
//! re-matchmake before a deadline; a match in progress may run to the match drain deadline) →
//! TERMINATED (task ended, removed from the registry). An empty room is reaped after the idle
//! grace; a room whose game completed closes at once.

pub mod core;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use coil_game::{
    Conditions, Game, GameEvent, Identity, MatchResult, Phase, PlayerId, Refusal, RefusalCode,
    Role, TickContext,
};
use coil_protocol::envelope::{
    NoticeKind, RESUME_TOKEN_LEN, write_notice, write_score_receipt, write_session,
};
use coil_protocol::{ErrorCode, Writer};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

pub use coil_match::{GameMode, RoomId, RoomState};

use crate::direct::{Direct, DirectWrite, Liveness};
use crate::metrics as m;
use crate::scores::ScoreSink;
use core::{AdmitError, Dropped, EndReason, ResumeError, ResumeToken, RoomCore, SeatLimits};

/// Figures a room publishes for readers outside its task (health, metrics, directory),
/// updated once per tick with relaxed atomics: readers never message the room.
#[derive(Debug, Default)]
pub struct RoomStats {
    state: AtomicU8,
    phase: AtomicU8,
    joinable: AtomicBool,
    /// Players holding a seat: connected or held for a reconnect.
    players: AtomicU32,
    spectators: AtomicU32,
    bots: AtomicU32,
    /// Last tick's duration in microseconds.
    last_tick_micros: AtomicU32,
    /// Smoothed tick utilisation (tick time or lateness over budget), per mille.
    pressure_per_mille: AtomicU32,
    ticks: AtomicU64,
    /// Written by the room task every [`LOBBY_PUBLISH_TICKS`] and on joins and leaves; read by
    /// the heartbeat once a second. Uncontended.
    lobby: std::sync::Mutex<Option<LobbySnapshot>>,
}

impl RoomStats {
    pub fn state(&self) -> RoomState {
        RoomState::from_index(usize::from(self.state.load(Ordering::Relaxed)))
    }
    pub fn phase(&self) -> Phase {
        Phase::ALL
            .get(usize::from(self.phase.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or_default()
    }
    /// Whether the room takes new players (its game says so, it has a free seat, not draining).
    pub fn joinable(&self) -> bool {
        self.joinable.load(Ordering::Relaxed)
    }
    /// Players holding a seat (connected or held for a reconnect): what the caps count.
    pub fn humans(&self) -> usize {
        self.players.load(Ordering::Relaxed) as usize
    }
    pub fn spectators(&self) -> usize {
        self.spectators.load(Ordering::Relaxed) as usize
    }
    pub fn bots(&self) -> usize {
        self.bots.load(Ordering::Relaxed) as usize
    }
    pub fn last_tick(&self) -> Duration {
        Duration::from_micros(u64::from(self.last_tick_micros.load(Ordering::Relaxed)))
    }
    pub fn pressure(&self) -> f32 {
        self.pressure_per_mille.load(Ordering::Relaxed) as f32 / 1000.0
    }
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
    /// The room's lobby as last published (`None`: an io room).
    pub fn lobby(&self) -> Option<LobbySnapshot> {
        self.lobby
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A match room's lobby for the directory: the game's [`coil_game::LobbyView`] with the host
/// seat resolved to who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbySnapshot {
    pub map: String,
    pub max_players: u32,
    pub host_name: Option<String>,
    pub host_id: Option<String>,
}

/// Ticks between two lobby publications when nobody joined or left (the heartbeat reads it
/// once a second; a join or leave publishes at once).
const LOBBY_PUBLISH_TICKS: u64 = 16;

/// What a session hands the room to receive its messages.
#[derive(Debug)]
pub enum Outbound {
    /// One WebSocket binary message (all of this tick's frames for the player), followed by a
    /// liveness Ping with this sequence number if `ping` is set.
    Message { message: Bytes, ping: Option<u32> },
    /// Finish writing a message the room handed to the socket directly but could not write in
    /// full without waiting.
    Flush,
    /// Send an error frame with this code, then close.
    Close(RefusalCode, &'static str),
}

/// Capacity of a player's outbound queue, in messages (ticks). Eight ticks = 400 ms at 20 Hz:
/// enough to ride out a scheduling hiccup, small enough that a stalled client costs at most a
/// few kilobytes before its frames are dropped instead of queued.
pub const OUTBOUND_QUEUE: usize = 8;

/// Capacity of a room's event channel. Inputs beyond it are dropped (they are coalesced per
/// tick anyway); joins and leaves wait for space.
pub const ROOM_EVENT_QUEUE: usize = 2048;

/// How often the room sends each connected player a liveness Ping.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    Full,
    SpectatorsFull,
    Draining,
    /// The game refused, with its own code.
    Game(Refusal),
}

/// Why a resume was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefusal {
    Expired,
    Refused,
}

/// Why a player's connection ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    ClientClosed,
    ProtocolError,
    SlowClient,
}

impl LeaveReason {
    fn label(self) -> &'static str {
        match self {
            LeaveReason::ClientClosed => "client_closed",
            LeaveReason::ProtocolError => "protocol_error",
            LeaveReason::SlowClient => "slow_client",
        }
    }
}

/// One player connection's channels to its client.
#[derive(Debug, Clone)]
pub struct Connection {
    pub outbound: mpsc::Sender<Outbound>,
    /// The player's socket, for writes that need not wait (`None`: queue only).
    pub direct: Option<Direct>,
    /// Shared with the session: which pings went out and which were answered.
    pub liveness: Arc<Liveness>,
}

/// A connection the room seated: its player, and the serial that tells this connection's later
/// events from those of an older one for the same seat (after a resume took it over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seated {
    pub player: PlayerId,
    pub connection: u64,
}

#[derive(Debug)]
pub enum RoomEvent {
    Join {
        identity: Identity,
        /// Seats this join must leave free (player seats reserved by the matchmaker for token
        /// holders, when the join itself has no token).
        keep_free: usize,
        connection: Connection,
        reply: oneshot::Sender<Result<Seated, JoinRefusal>>,
    },
    /// A dropped player presents its reconnect token on a new connection.
    Resume {
        token: [u8; RESUME_TOKEN_LEN],
        connection: Connection,
        reply: oneshot::Sender<Result<Seated, ResumeRefusal>>,
    },
    /// The connection ended; the room decides whether the seat is held or gone.
    Disconnected { seated: Seated, reason: LeaveReason },
    /// A game-level frame from a player (input, respawn, …).
    Game { seated: Seated, frame: Bytes },
    /// Debug/admin: a game command for the players with this display name.
    Debug {
        name: String,
        command: String,
        reply: oneshot::Sender<usize>,
    },
    /// End the seats of this player key (a ban, an admin kick, a session ended elsewhere).
    Kick {
        player_key: String,
        code: ErrorCode,
        reason: &'static str,
        reply: Option<oneshot::Sender<usize>>,
    },
    /// Stop taking joins; tell players; close at `deadline`, or a running match at
    /// `match_deadline`.
    Drain {
        deadline: Instant,
        match_deadline: Instant,
    },
}

/// What a room reports for the world outside the node (results, flags).
#[derive(Debug, Clone, PartialEq)]
pub enum RoomReport {
    MatchResult {
        room: RoomId,
        mode: GameMode,
        /// `<room>:<ordinal>`, unique across the fleet for the room's lifetime.
        match_id: String,
        result: MatchResult,
    },
    Flag {
        room: RoomId,
        mode: GameMode,
        player_key: String,
        display_name: String,
        flag: coil_game::Flag,
    },
}

/// Where rooms send their reports: a bounded queue to whoever stores them. A full queue drops
/// the report (counted and logged): a room never waits on a store.
#[derive(Debug, Clone)]
pub struct ReportSink {
    target: ReportTarget,
}

#[derive(Debug, Clone)]
enum ReportTarget {
    /// Logged and dropped.
    Discard,
    /// Every report, to whoever reads the queue (tests, a custom store).
    Queue(mpsc::Sender<RoomReport>),
    /// Match results to the node's result writer (`results.rs`); flags are logged.
    Results(mpsc::Sender<coil_store::MatchRecord>),
}

impl ReportSink {
    /// Reports are logged and dropped (nothing stores them).
    pub fn discard() -> ReportSink {
        ReportSink {
            target: ReportTarget::Discard,
        }
    }

    pub fn new(queue: mpsc::Sender<RoomReport>) -> ReportSink {
        ReportSink {
            target: ReportTarget::Queue(queue),
        }
    }

    /// Match results go to the result writer's queue ([`crate::results::start_writer`]).
    pub fn storing(results: mpsc::Sender<coil_store::MatchRecord>) -> ReportSink {
        ReportSink {
            target: ReportTarget::Results(results),
        }
    }

    fn send(&self, report: RoomReport) {
        let kind = match &report {
            RoomReport::MatchResult { .. } => "match_result",
            RoomReport::Flag { .. } => "flag",
        };
        let queued = match (&self.target, report) {
            (ReportTarget::Queue(queue), report) => queue.try_send(report).is_ok(),
            (
                ReportTarget::Results(results),
                RoomReport::MatchResult {
                    room,
                    mode,
                    match_id,
                    result,
                },
            ) => {
                let record = crate::results::record_of(
                    room.as_str(),
                    mode.as_str(),
                    &match_id,
                    &result,
                    unix_millis(),
                );
                results.try_send(record).is_ok()
            }
            (_, report) => {
                tracing::info!(?report, "room report (no store configured)");
                m::report(kind, "discarded");
                return;
            }
        };
        if queued {
            m::report(kind, "queued");
        } else {
            m::report(kind, "dropped");
            if kind == "match_result" {
                m::match_result_write("dropped");
            }
            crate::rate_limited_warn!(kind, "room report queue full: dropping a report");
        }
    }
}

/// Settings of the rooms of one mode on a node.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub mode: GameMode,
    pub tick: Duration,
    pub limits: SeatLimits,
    pub slow_client_timeout: Duration,
    /// Runs are recorded on the leaderboard with receipts.
    pub leaderboard: bool,
}

/// The sender side of a room, held by the registry and by sessions.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    pub id: RoomId,
    pub mode: GameMode,
    pub events: mpsc::Sender<RoomEvent>,
    pub stats: Arc<RoomStats>,
    /// What the token that created the room said about its lobby.
    pub origin: Arc<RoomOrigin>,
}

/// What a custom lobby's join token says about the room it creates (quick play: the default).
/// Every token for the room carries the same, so whichever arrives first creates it right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomOrigin {
    /// The mode's normalized lobby rules ([`coil_game::RoomSetup::rules`]).
    pub rules: Option<String>,
    /// Quick play never fills the room.
    pub private: bool,
    /// The API checks a password before it signs a token for the room.
    pub password: bool,
    /// That password's Argon2id hash, published to the directory for the API to check.
    pub password_hash: Option<String>,
}

/// A connected seat's channels and per-connection state.
struct Session {
    connection: Connection,
    serial: u64,
    /// Runtime frames (receipts, notices, session tokens) to append to the next message.
    pending: Vec<u8>,
    /// A direct write failed: from then on everything goes through the queue.
    direct_failed: bool,
    /// The first message always goes through the queue (the session times the join by it).
    sent_first: bool,
    /// Consecutive ticks whose frame could not be queued.
    stalled_ticks: u32,
    needs_resync: bool,
    /// The liveness ping in flight: its sequence, when it was asked for, and when the room
    /// first saw the socket take it.
    ping: Option<PendingPing>,
    last_ping_at: Duration,
}

#[derive(Debug, Clone, Copy)]
struct PendingPing {
    sequence: u32,
    sent_at: Option<Duration>,
}

impl Session {
    fn new(connection: Connection, serial: u64, now: Duration) -> Session {
        Session {
            connection,
            serial,
            pending: Vec::new(),
            direct_failed: false,
            sent_first: false,
            stalled_ticks: 0,
            needs_resync: false,
            ping: None,
            last_ping_at: now,
        }
    }

    fn close(&self, code: impl Into<RefusalCode>, reason: &'static str) {
        let _ = self
            .connection
            .outbound
            .try_send(Outbound::Close(code.into(), reason));
    }

    /// Hands one message to the player without waiting: straight to the socket when nothing
    /// queued earlier is still unwritten and the socket takes it, else through the queue (the
    /// caller checked that it has room).
    fn deliver(&mut self, mut message: Bytes, ping: Option<u32>) {
        if let Some(direct) = self.connection.direct.as_ref()
            && self.sent_first
            && !self.direct_failed
            && direct.is_clear()
        {
            match direct.writer.try_write(message, ping) {
                DirectWrite::Written => return,
                outcome @ (DirectWrite::NeedsFlush | DirectWrite::Failed) => {
                    // A failed socket gets the queue from now on; the flush makes the session
                    // find out at once (its write fails) and leave.
                    self.direct_failed = outcome == DirectWrite::Failed;
                    direct.queued();
                    if self.connection.outbound.try_send(Outbound::Flush).is_err() {
                        direct.finished();
                    }
                    return;
                }
                DirectWrite::Busy(returned) => message = returned,
            }
        }
        self.sent_first = true;
        let direct = self.connection.direct.as_ref();
        if let Some(direct) = direct {
            direct.queued();
        }
        if self
            .connection
            .outbound
            .try_send(Outbound::Message { message, ping })
            .is_err()
            && let Some(direct) = direct
        {
            direct.finished();
        }
    }

    /// The ping to send with this tick's message, if one is due, and whether the client has
    /// left the last one unanswered for longer than `timeout`.
    fn liveness(&mut self, now: Duration, timeout: Duration) -> (Option<u32>, bool) {
        let liveness = &self.connection.liveness;
        if let Some(ping) = &mut self.ping {
            if liveness.answered() >= ping.sequence {
                self.ping = None;
            } else if ping.sent_at.is_none() && liveness.sent() >= ping.sequence {
                ping.sent_at = Some(now);
            }
        }
        match self.ping {
            Some(PendingPing {
                sent_at: Some(sent_at),
                ..
            }) => (None, now.saturating_sub(sent_at) > timeout),
            // Asked for but not taken by the socket yet: ask again with the same number.
            Some(PendingPing {
                sequence,
                sent_at: None,
            }) => (Some(sequence), false),
            None if now.saturating_sub(self.last_ping_at) >= PING_INTERVAL => {
                let sequence = liveness.sent().max(liveness.answered()).saturating_add(1);
                self.ping = Some(PendingPing {
                    sequence,
                    sent_at: None,
                });
                self.last_ping_at = now;
                (Some(sequence), false)
            }
            None => (None, false),
        }
    }
}

/// A random reconnect token (the room core is sans-IO; randomness comes from here).
fn fresh_token() -> ResumeToken {
    ResumeToken(rand::random())
}

/// Everything the room task owns.
pub struct Room {
    id: RoomId,
    /// Random per room task: a room of the same name made again later (a named room reaped
    /// and reopened) numbers its matches from 1 again, and the match ids must still differ.
    incarnation: u32,
    game: Box<dyn Game>,
    settings: RoomSettings,
    core: RoomCore,
    /// The room's epoch on the one clock: the core's `now` is the time since it.
    epoch: Instant,
    stats: Arc<RoomStats>,
    /// Connected seats (held seats have no session).
    sessions: HashMap<PlayerId, Session>,
    identities: HashMap<PlayerId, Identity>,
    next_serial: u64,
    scores: Option<ScoreSink>,
    reports: ReportSink,
    events: Vec<GameEvent>,
    /// Reused to collect durable receipts each tick.
    receipts: Vec<crate::scores::DurableReceipt>,
    /// Seats the game let go of this tick.
    releases: Vec<PlayerId>,
    evictions: Vec<PlayerId>,
    /// Reused for every player's message: each message is then one exact-size allocation.
    scratch: Vec<u8>,
    conditions: Conditions,
    pressure: f32,
    last_tick: Instant,
    ticks: u64,
    /// The game's counters as last exported, to export their growth.
    game_counters: HashMap<&'static str, u64>,
    /// Seated players at the last lobby publication.
    lobby_published_at: usize,
    counter_scratch: Vec<(&'static str, u64)>,
}

impl Room {
    pub fn new(
        id: RoomId,
        game: Box<dyn Game>,
        settings: RoomSettings,
        scores: Option<ScoreSink>,
        reports: ReportSink,
    ) -> Room {
        let epoch = Instant::now();
        // Each room gets its own receipt inbox on the shared writer.
        let scores = scores
            .filter(|_| settings.leaderboard)
            .map(|sink| sink.for_room());
        Room {
            id,
            incarnation: rand::random(),
            game,
            core: RoomCore::new(settings.limits.clone(), Duration::ZERO),
            settings,
            epoch,
            stats: Arc::new(RoomStats::default()),
            sessions: HashMap::new(),
            identities: HashMap::new(),
            next_serial: 1,
            scores,
            reports,
            events: Vec::new(),
            receipts: Vec::new(),
            releases: Vec::new(),
            evictions: Vec::new(),
            scratch: Vec::new(),
            conditions: Conditions::default(),
            pressure: 0.0,
            last_tick: epoch,
            ticks: 0,
            game_counters: HashMap::new(),
            counter_scratch: Vec::new(),
            lobby_published_at: usize::MAX,
        }
    }

    pub fn stats(&self) -> Arc<RoomStats> {
        self.stats.clone()
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    fn since_epoch(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.epoch)
    }

    /// Runs the room until it ends or its channel closes. `on_exit` runs after the room
    /// stopped accepting events, so the registry entry can be removed.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<RoomEvent>,
        on_exit: impl FnOnce(&RoomId),
    ) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        // A late tick is not replayed back-to-back: the game takes the real elapsed time.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.publish_stats();
        let reason = loop {
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    if let Some(reason) = self.tick() {
                        break reason;
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break EndReason::Drained,
                },
            }
        };
        // Stop taking events first: joins still queued see their reply dropped and retry on
        // a fresh room.
        events.close();
        on_exit(&self.id);
        while let Ok(event) = events.try_recv() {
            drop(event);
        }
        self.terminate(reason);
    }

    fn handle(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::Join {
                identity,
                keep_free,
                connection,
                reply,
            } => {
                let result = self.join(identity, keep_free, connection);
                let _ = reply.send(result);
            }
            RoomEvent::Resume {
                token,
                connection,
                reply,
            } => {
                let result = self.resume(ResumeToken(token), connection);
                let _ = reply.send(result);
            }
            RoomEvent::Disconnected { seated, reason } => self.disconnected(seated, reason),
            RoomEvent::Game { seated, frame } => {
                if !self.is_current(seated) {
                    return;
                }
                if self.core.role(seated.player) == Some(Role::Spectator) {
                    // Spectators watch; whatever they send is ignored, never applied.
                    return;
                }
                if let Err(refusal) = self.game.handle_message(seated.player, &frame) {
                    if let Some(session) = self.sessions.get(&seated.player) {
                        session.close(refusal.code, refusal.reason);
                    }
                    self.leave(seated.player, "protocol_error");
                }
            }
            RoomEvent::Debug {
                name,
                command,
                reply,
            } => {
                let players: Vec<PlayerId> = self
                    .identities
                    .iter()
                    .filter(|(_, identity)| identity.display_name == name)
                    .map(|(player, _)| *player)
                    .collect();
                let done = players
                    .into_iter()
                    .filter(|player| self.game.debug_command(*player, &command))
                    .count();
                let _ = reply.send(done);
            }
            RoomEvent::Kick {
                player_key,
                code,
                reason,
                reply,
            } => {
                let players: Vec<PlayerId> = self
                    .identities
                    .iter()
                    .filter(|(_, identity)| identity.player_key == player_key)
                    .map(|(player, _)| *player)
                    .collect();
                for player in &players {
                    if let Some(session) = self.sessions.get(player) {
                        session.close(code, reason);
                    }
                    self.leave(*player, "kicked");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(players.len());
                }
            }
            RoomEvent::Drain {
                deadline,
                match_deadline,
            } => self.start_drain(deadline, match_deadline),
        }
    }

    fn is_current(&self, seated: Seated) -> bool {
        self.sessions
            .get(&seated.player)
            .is_some_and(|session| session.serial == seated.connection)
    }

    fn next_serial(&mut self) -> u64 {
        let serial = self.next_serial;
        self.next_serial += 1;
        serial
    }

    fn join(
        &mut self,
        identity: Identity,
        keep_free: usize,
        connection: Connection,
    ) -> Result<Seated, JoinRefusal> {
        let now = self.now();
        if identity.role == Role::Player
            && keep_free > 0
            && self.core.counts().players() + keep_free >= self.settings.limits.hard_cap
        {
            return Err(JoinRefusal::Full);
        }
        let player = self
            .core
            .admit(identity.role, now)
            .map_err(|error| match error {
                AdmitError::Full => JoinRefusal::Full,
                AdmitError::SpectatorsFull => JoinRefusal::SpectatorsFull,
                AdmitError::Draining => JoinRefusal::Draining,
            })?;
        if let Err(refusal) = self.game.join(player, &identity) {
            self.core.cancel(player, now);
            return Err(JoinRefusal::Game(refusal));
        }
        let serial = self.next_serial();
        let mut session = Session::new(connection, serial, now);
        if self.core.reconnects() && identity.role == Role::Player {
            self.issue_token(player, &mut session);
        }
        self.sessions.insert(player, session);
        self.identities.insert(player, identity);
        self.publish_stats();
        Ok(Seated {
            player,
            connection: serial,
        })
    }

    /// Gives the seat a fresh reconnect token and queues the Session frame that carries it.
    fn issue_token(&mut self, player: PlayerId, session: &mut Session) {
        let token = fresh_token();
        self.core.set_token(player, token);
        let grace_ms =
            u32::try_from(self.settings.limits.reconnect_grace.as_millis()).unwrap_or(u32::MAX);
        write_session(&mut Writer::new(&mut session.pending), &token.0, grace_ms);
    }

    fn resume(
        &mut self,
        token: ResumeToken,
        connection: Connection,
    ) -> Result<Seated, ResumeRefusal> {
        let now = self.now();
        let resumed = self.core.resume(&token, now).map_err(|error| match error {
            ResumeError::Expired => ResumeRefusal::Expired,
            ResumeError::Refused => ResumeRefusal::Refused,
        });
        let resumed = match resumed {
            Ok(resumed) => resumed,
            Err(refusal) => {
                // A seat that expired inside `resume` is a leave for the game too.
                self.forget_unseated();
                return Err(refusal);
            }
        };
        let player = resumed.player;
        if let Some(old) = self.sessions.remove(&player) {
            // The old connection had not noticed the drop: it is replaced by this one.
            old.close(ErrorCode::Replaced, "another connection resumed this seat");
            m::disconnect("replaced");
        }
        let serial = self.next_serial();
        let mut session = Session::new(connection, serial, now);
        self.issue_token(player, &mut session);
        self.sessions.insert(player, session);
        self.game.resumed(player);
        m::reconnect("resumed");
        self.publish_stats();
        Ok(Seated {
            player,
            connection: serial,
        })
    }

    fn disconnected(&mut self, seated: Seated, reason: LeaveReason) {
        if !self.is_current(seated) {
            // An older connection of a seat that was resumed elsewhere: nothing to do.
            return;
        }
        let player = seated.player;
        self.sessions.remove(&player);
        m::disconnect(reason.label());
        // A protocol error or a stalled client is not a dropped network: no seat is held.
        let held = reason == LeaveReason::ClientClosed
            && matches!(self.core.dropped(player, self.now()), Dropped::Held { .. });
        if held {
            self.game.disconnected(player);
            m::reconnect("held");
        } else {
            self.core.leave(player, self.now());
            self.game_leave(player);
        }
        self.publish_stats();
    }

    /// Ends a seat for good (kick, protocol error, eviction).
    fn leave(&mut self, player: PlayerId, label: &'static str) {
        if self.sessions.remove(&player).is_some() {
            m::disconnect(label);
        }
        if self.core.leave(player, self.now()) {
            self.game_leave(player);
        }
        self.publish_stats();
    }

    /// The game let `player` go: close its connection and forget the seat without a `leave`.
    fn release(&mut self, player: PlayerId) {
        if let Some(session) = self.sessions.remove(&player) {
            session.close(ErrorCode::RoomClosed, "the game is over for this player");
            m::disconnect("released");
        }
        self.core.leave(player, self.now());
        self.identities.remove(&player);
    }

    /// Tells the game a seat is gone and settles what that reported.
    fn game_leave(&mut self, player: PlayerId) {
        let mut events = std::mem::take(&mut self.events);
        self.game.leave(player, &mut events);
        self.settle(&mut events);
        self.identities.remove(&player);
        self.events = events;
    }

    /// Seats the core freed on its own (a resume found the grace over) leave the game too.
    fn forget_unseated(&mut self) {
        let gone: Vec<PlayerId> = self
            .identities
            .keys()
            .filter(|player| !self.core.is_seated(**player))
            .copied()
            .collect();
        for player in gone {
            self.sessions.remove(&player);
            self.game_leave(player);
        }
    }

    fn start_drain(&mut self, deadline: Instant, match_deadline: Instant) {
        let first = self.core.state() != RoomState::Draining;
        self.core
            .drain(self.since_epoch(deadline), self.since_epoch(match_deadline));
        self.set_conditions(Conditions {
            draining: true,
            ..self.conditions
        });
        if first {
            let remaining = self
                .core
                .drain_deadline()
                .map_or(Duration::ZERO, |at| at.saturating_sub(self.now()));
            let deadline_ms = u32::try_from(remaining.as_millis()).unwrap_or(u32::MAX);
            for session in self.sessions.values_mut() {
                write_notice(
                    &mut Writer::new(&mut session.pending),
                    NoticeKind::Draining,
                    deadline_ms,
                );
            }
        }
        self.publish_stats();
    }

    fn set_conditions(&mut self, conditions: Conditions) {
        if conditions != self.conditions {
            self.conditions = conditions;
            self.game.set_conditions(conditions);
        }
    }

    /// Acts on what the game reported.
    fn settle(&mut self, events: &mut Vec<GameEvent>) {
        for event in events.drain(..) {
            match event {
                GameEvent::RunEnded(run) => {
                    let (Some(scores), Some(identity)) =
                        (&self.scores, self.identities.get(&run.player))
                    else {
                        continue;
                    };
                    // The receipt is sent once the row is durable (see `deliver_receipts`).
                    let account = identity.verified.then_some(identity.player_key.as_str());
                    scores.record_durable(
                        &self.id,
                        run.player,
                        &identity.display_name,
                        account,
                        run.score,
                    );
                }
                GameEvent::MatchResult(result) => {
                    m::match_finished(self.settings.mode.as_str(), result.reason.as_str());
                    self.reports.send(RoomReport::MatchResult {
                        room: self.id.clone(),
                        mode: self.settings.mode.clone(),
                        match_id: format!(
                            "{}:{:08x}:{}",
                            self.id, self.incarnation, result.ordinal
                        ),
                        result,
                    });
                }
                GameEvent::Release(player) => self.releases.push(player),
                GameEvent::Flag(flag) => {
                    let Some(identity) = self.identities.get(&flag.player) else {
                        continue;
                    };
                    m::flag(self.settings.mode.as_str(), flag.kind);
                    self.reports.send(RoomReport::Flag {
                        room: self.id.clone(),
                        mode: self.settings.mode.clone(),
                        player_key: identity.player_key.clone(),
                        display_name: identity.display_name.clone(),
                        flag,
                    });
                }
            }
        }
    }

    /// Writes the receipts of runs whose rows became durable into their players' next messages
    /// (a player who left meanwhile gets none: the row is stored all the same).
    fn deliver_receipts(&mut self) {
        let Some(scores) = &self.scores else {
            return;
        };
        let mut receipts = std::mem::take(&mut self.receipts);
        scores.take_durable_receipts(&mut receipts);
        for durable in receipts.drain(..) {
            if let Some(session) = self.sessions.get_mut(&durable.player) {
                write_score_receipt(&mut Writer::new(&mut session.pending), &durable.receipt);
            }
        }
        self.receipts = receipts;
    }

    /// One tick. Returns why the room ends, if it does.
    fn tick(&mut self) -> Option<EndReason> {
        let started = Instant::now();
        let elapsed = started.duration_since(self.last_tick);
        self.last_tick = started;
        let now = self.since_epoch(started);
        // The first tick and any stall are clamped: the game never integrates a huge step.
        let dt = elapsed.min(self.settings.tick * 5).as_secs_f32();
        let lateness = elapsed.saturating_sub(self.settings.tick);

        let mut events = std::mem::take(&mut self.events);
        self.game.tick(
            TickContext {
                dt,
                tick: self.ticks,
            },
            &mut events,
        );
        self.ticks += 1;
        self.settle(&mut events);
        self.events = events;
        self.deliver_receipts();
        let status = self.game.status();
        self.core.observe_phase(status.phase);

        let encode_started = Instant::now();
        let (bytes_sent, dropped) = self.send_updates(now);
        let encode_time = encode_started.elapsed();

        for player in std::mem::take(&mut self.releases) {
            self.release(player);
        }
        for player in std::mem::take(&mut self.evictions) {
            if let Some(session) = self.sessions.get(&player) {
                session.close(ErrorCode::SlowClient, "client stopped reading");
            }
            tracing::info!(room = %self.id, player = player.0, "disconnecting a client that stopped reading");
            self.leave(player, "slow_client");
        }

        let outcome = self.core.tick(now);
        for player in outcome.expired {
            // The reconnect grace ran out: the held seat is a real leave now.
            m::reconnect("expired");
            self.game_leave(player);
        }

        let tick_time = started.elapsed();
        let utilisation = tick_time.max(lateness).as_secs_f32() / self.settings.tick.as_secs_f32();
        self.pressure = 0.9 * self.pressure + 0.1 * utilisation;
        // Optional work (the arena's bots) is shed when the smoothed pressure passes 0.5 and
        // restored below 0.3.
        let overloaded = if self.conditions.overloaded {
            self.pressure >= 0.3
        } else {
            self.pressure > 0.5
        };
        if overloaded && !self.conditions.overloaded {
            tracing::warn!(room = %self.id, pressure = self.pressure, "tick near budget: shedding optional work");
        }
        self.set_conditions(Conditions {
            overloaded,
            ..self.conditions
        });
        m::tick_finished(
            self.settings.mode.as_str(),
            tick_time,
            encode_time,
            tick_time > self.settings.tick,
            bytes_sent,
            dropped,
        );
        if self.ticks % self.ticks_per_second() == 0 {
            self.export_game_counters();
        }
        self.stats.ticks.fetch_add(1, Ordering::Relaxed);
        self.stats.last_tick_micros.store(
            tick_time.as_micros().min(u32::MAX as u128) as u32,
            Ordering::Relaxed,
        );
        self.stats
            .pressure_per_mille
            .store((self.pressure * 1000.0) as u32, Ordering::Relaxed);
        self.publish_stats();
        outcome.end
    }

    /// Encodes and hands every connected player its message. Returns (bytes sent, dropped).
    fn send_updates(&mut self, now: Duration) -> (u64, u64) {
        let stall_limit = self.stall_limit_ticks();
        let timeout = self.settings.slow_client_timeout;
        let mut bytes_sent = 0u64;
        let mut dropped = 0u64;
        for (player, session) in self.sessions.iter_mut() {
            let (ping, unanswered) = session.liveness(now, timeout);
            if unanswered {
                // The client has not read our ping for the whole timeout: it is not reading.
                self.evictions.push(*player);
                continue;
            }
            if session.connection.outbound.capacity() == 0 {
                // The client is not reading: skip encoding (saves the CPU too) and re-send the
                // full view once it catches up.
                dropped += 1;
                session.needs_resync = true;
                session.stalled_ticks += 1;
                if session.stalled_ticks >= stall_limit {
                    self.evictions.push(*player);
                }
                continue;
            }
            session.stalled_ticks = 0;
            if session.needs_resync {
                self.game.resync(*player);
                session.needs_resync = false;
            }
            let message = &mut self.scratch;
            message.clear();
            self.game.write_update(*player, message);
            message.extend_from_slice(&session.pending);
            session.pending.clear();
            if message.is_empty() && ping.is_none() {
                continue;
            }
            bytes_sent += message.len() as u64;
            // Capacity was checked above and only this task sends data frames.
            session.deliver(Bytes::copy_from_slice(message), ping);
        }
        (bytes_sent, dropped)
    }

    fn ticks_per_second(&self) -> u64 {
        (1000 / self.settings.tick.as_millis().max(1)).max(1) as u64
    }

    /// Exports how much the game's own counters grew since the last export (about once a
    /// second: a counter per tick would cost more than the tick).
    fn export_game_counters(&mut self) {
        self.counter_scratch.clear();
        self.game.counters(&mut self.counter_scratch);
        for &(name, total) in &self.counter_scratch {
            let last = self.game_counters.insert(name, total).unwrap_or(0);
            if total > last {
                m::game_events(self.settings.mode.as_str(), name, total - last);
            }
        }
    }

    fn stall_limit_ticks(&self) -> u32 {
        let ticks =
            self.settings.slow_client_timeout.as_millis() / self.settings.tick.as_millis().max(1);
        u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
    }

    fn publish_stats(&mut self) {
        let counts = self.core.counts();
        let status = self.game.status();
        let state = self.core.state();
        self.stats
            .state
            .store(state.index() as u8, Ordering::Relaxed);
        self.stats.phase.store(
            Phase::ALL
                .iter()
                .position(|p| *p == status.phase)
                .unwrap_or(0) as u8,
            Ordering::Relaxed,
        );
        self.stats.joinable.store(
            status.joinable && self.core.has_player_seat(),
            Ordering::Relaxed,
        );
        self.stats
            .players
            .store(counts.players() as u32, Ordering::Relaxed);
        self.stats
            .spectators
            .store(counts.spectators as u32, Ordering::Relaxed);
        self.stats.bots.store(status.bots, Ordering::Relaxed);
        let seated = counts.players();
        if self.ticks % LOBBY_PUBLISH_TICKS == 0 || seated != self.lobby_published_at {
            self.lobby_published_at = seated;
            self.publish_lobby();
        }
    }

    fn publish_lobby(&self) {
        let snapshot = self.game.lobby().map(|view| {
            let host = view.host.and_then(|seat| self.identities.get(&seat));
            LobbySnapshot {
                map: view.map,
                max_players: view.max_players,
                host_name: host.map(|identity| identity.display_name.clone()),
                host_id: host.map(|identity| identity.player_key.clone()),
            }
        });
        *self
            .stats
            .lobby
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot;
    }

    fn terminate(&mut self, reason: EndReason) {
        let (code, text, label) = match reason {
            EndReason::Completed => (ErrorCode::RoomClosed, "the game is over", "room_completed"),
            EndReason::Idle | EndReason::Drained | EndReason::DeadlinePassed => {
                (ErrorCode::RoomDraining, "room closed", "drain")
            }
        };
        for player in self.core.seated() {
            if let Some(session) = self.sessions.remove(&player) {
                session.close(code, text);
                m::disconnect(label);
            }
            self.core.leave(player, self.now());
            self.game_leave(player);
        }
        self.stats
            .state
            .store(RoomState::Terminated.index() as u8, Ordering::Relaxed);
        self.stats.players.store(0, Ordering::Relaxed);
        self.stats.spectators.store(0, Ordering::Relaxed);
        self.stats.bots.store(0, Ordering::Relaxed);
        tracing::debug!(room = %self.id, ?reason, "room terminated");
    }
}

/// Milliseconds since the Unix epoch (for score records).
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Writes an error frame into a fresh message (for sessions closing before or outside a room).
pub fn error_message(code: impl Into<RefusalCode>, reason: &str) -> Bytes {
    let mut out = Vec::with_capacity(8 + reason.len());
    coil_protocol::envelope::write_error_code(
        &mut Writer::new(&mut out),
        code.into().get(),
        reason,
    );
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coil_arena::{Arena, ArenaSettings, BotFill};
    use coil_protocol::codec::server_frames;

    const INIT_FRAME: u8 = 0x90;

    struct TestRoom {
        events: mpsc::Sender<RoomEvent>,
        stats: Arc<RoomStats>,
        _scores: mpsc::Receiver<coil_store::ScoreEntry>,
    }

    fn start_room(slow_client_timeout: Duration) -> TestRoom {
        let (queue, scores) = mpsc::channel(64);
        let receipts = Arc::new(coil_store::ReceiptKey::from_secret(&[7; 32]).unwrap());
        let sink = ScoreSink::new(queue, receipts, "test");
        let settings = RoomSettings {
            mode: GameMode::arena(),
            tick: Duration::from_millis(50),
            limits: SeatLimits {
                hard_cap: 10,
                spectator_cap: 0,
                reconnect_grace: Duration::ZERO,
                idle_grace: Duration::from_secs(3600),
                matches: false,
            },
            slow_client_timeout,
            leaderboard: true,
        };
        let game = Arena::new(ArenaSettings {
            seed: 42,
            bots: BotFill::TopUp {
                population_target: 8,
                hard_cap: 10,
            },
            ..ArenaSettings::default()
        });
        let room = Room::new(
            RoomId::parse("unit").unwrap(),
            Box::new(game),
            settings,
            Some(sink),
            ReportSink::discard(),
        );
        let stats = room.stats();
        let (events, receiver) = mpsc::channel(ROOM_EVENT_QUEUE);
        tokio::spawn(room.run(receiver, |_| {}));
        TestRoom {
            events,
            stats,
            _scores: scores,
        }
    }

    async fn join(room: &TestRoom, name: &str) -> (PlayerId, mpsc::Receiver<Outbound>) {
        let (answer, inbound) = try_join(room, name, None).await;
        (answer.unwrap(), inbound)
    }

    async fn try_join(
        room: &TestRoom,
        name: &str,
        direct: Option<Direct>,
    ) -> (Result<PlayerId, JoinRefusal>, mpsc::Receiver<Outbound>) {
        let (outbound, inbound) = mpsc::channel(OUTBOUND_QUEUE);
        let (reply, answer) = oneshot::channel();
        let connection = Connection {
            outbound,
            direct,
            liveness: Arc::new(Liveness::default()),
        };
        room.events
            .send(RoomEvent::Join {
                identity: Identity::guest(name, name),
                keep_free: 0,
                connection,
                reply,
            })
            .await
            .unwrap();
        (answer.await.unwrap().map(|seated| seated.player), inbound)
    }

    /// A socket for direct writes that answers as told and records what it took.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Answer {
        Written,
        NeedsFlush,
        Busy,
        Failed,
    }

    struct FakeSocket {
        answer: std::sync::Mutex<Answer>,
        taken: std::sync::Mutex<Vec<Bytes>>,
    }

    impl FakeSocket {
        fn new(answer: Answer) -> Arc<FakeSocket> {
            Arc::new(FakeSocket {
                answer: std::sync::Mutex::new(answer),
                taken: std::sync::Mutex::new(Vec::new()),
            })
        }
        fn answer(&self, answer: Answer) {
            *self.answer.lock().unwrap() = answer;
        }
        fn taken(&self) -> usize {
            self.taken.lock().unwrap().len()
        }
    }

    impl crate::direct::TryWrite for FakeSocket {
        fn try_write(&self, message: Bytes, _ping: Option<u32>) -> DirectWrite {
            let answer = *self.answer.lock().unwrap();
            match answer {
                Answer::Written | Answer::NeedsFlush => self.taken.lock().unwrap().push(message),
                Answer::Busy => return DirectWrite::Busy(message),
                Answer::Failed => {}
            }
            match answer {
                Answer::Written => DirectWrite::Written,
                Answer::NeedsFlush => DirectWrite::NeedsFlush,
                _ => DirectWrite::Failed,
            }
        }
    }

    async fn join_direct(
        room: &TestRoom,
        name: &str,
        socket: &Arc<FakeSocket>,
    ) -> (PlayerId, mpsc::Receiver<Outbound>, Direct) {
        let direct = Direct::new(socket.clone());
        let (answer, inbound) = try_join(room, name, Some(direct.clone())).await;
        (answer.unwrap(), inbound, direct)
    }

    /// Ticks of 50 ms pass (paused time).
    /// (10 ms more, so that the room's tick at the end has run).
    async fn ticks(count: u64) {
        tokio::time::sleep(Duration::from_millis(50 * count + 10)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_message_the_room_writes_to_the_socket_not_the_queue() {
        let room = start_room(Duration::from_secs(1));
        let socket = FakeSocket::new(Answer::Written);
        let (_player, mut inbox, direct) = join_direct(&room, "direct", &socket).await;
        let first = inbox.recv().await.unwrap();
        assert!(
            has_init(&first),
            "the first message is queued and carries init"
        );
        direct.finished();
        ticks(40).await;
        assert!(inbox.try_recv().is_err(), "nothing else was queued");
        assert!(socket.taken() >= 38, "took {}", socket.taken());
        assert!(
            socket
                .taken
                .lock()
                .unwrap()
                .iter()
                .all(|m| !server_frames(m).any(|f| f.is_ok_and(|(t, _)| t == INIT_FRAME))),
            "written frames are plain deltas"
        );
        // An empty queue with a socket that keeps up is not a stall.
        assert_eq!(room.stats.humans(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_socket_falls_back_to_the_queue_and_direct_writes_wait_for_it() {
        let room = start_room(Duration::from_secs(5));
        let socket = FakeSocket::new(Answer::Busy);
        let (_player, mut inbox, direct) = join_direct(&room, "busy", &socket).await;
        ticks(3).await;
        // Busy: every message went through the queue, none to the socket.
        let mut queued = 0;
        while let Ok(message) = inbox.try_recv() {
            assert!(matches!(message, Outbound::Message { .. }));
            queued += 1;
        }
        assert!(queued >= 3);
        assert_eq!(socket.taken(), 0);
        // The socket is free again, but what was queued is not written yet: still queued.
        socket.answer(Answer::Written);
        ticks(2).await;
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message { .. })));
        assert_eq!(socket.taken(), 0, "never ahead of queued messages");
        // The session wrote everything it was given: the room writes directly again.
        while inbox.try_recv().is_ok() {}
        direct
            .backlog
            .store(0, std::sync::atomic::Ordering::Release);
        ticks(5).await;
        assert!(inbox.try_recv().is_err());
        assert!(socket.taken() >= 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_write_asks_the_session_to_flush_and_holds_later_writes() {
        let room = start_room(Duration::from_secs(5));
        let socket = FakeSocket::new(Answer::NeedsFlush);
        let (_player, mut inbox, direct) = join_direct(&room, "partial", &socket).await;
        assert!(has_init(&inbox.recv().await.unwrap()));
        direct.finished();
        ticks(1).await;
        assert_eq!(socket.taken(), 1, "the socket took the message");
        assert!(matches!(inbox.recv().await, Some(Outbound::Flush)));
        // Until that flush is done, later messages queue behind it.
        socket.answer(Answer::Written);
        ticks(2).await;
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message { .. })));
        assert_eq!(socket.taken(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_direct_client_is_still_bounded_resynced_and_evicted() {
        let room = start_room(Duration::from_secs(1));
        let socket = FakeSocket::new(Answer::Busy);
        let (_reader, mut reader_inbox) = join(&room, "reader").await;
        let (_stalled, mut stalled_inbox, _direct) = join_direct(&room, "stalled", &socket).await;
        for _ in 0..40 {
            assert!(matches!(
                reader_inbox.recv().await,
                Some(Outbound::Message { .. })
            ));
        }
        assert_eq!(room.stats.humans(), 1, "the stalled client was removed");
        let mut queued = 0;
        while let Ok(message) = stalled_inbox.try_recv() {
            assert!(matches!(message, Outbound::Message { .. }));
            queued += 1;
        }
        assert_eq!(queued, OUTBOUND_QUEUE);
        assert!(stalled_inbox.recv().await.is_none());
        assert_eq!(socket.taken(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_socket_sends_everything_through_the_queue_from_then_on() {
        let room = start_room(Duration::from_secs(5));
        let socket = FakeSocket::new(Answer::Failed);
        let (_player, mut inbox, direct) = join_direct(&room, "broken", &socket).await;
        assert!(has_init(&inbox.recv().await.unwrap()));
        direct.finished();
        ticks(1).await;
        // The session is told to flush, and so finds the broken socket.
        assert!(matches!(inbox.recv().await, Some(Outbound::Flush)));
        direct.finished();
        socket.answer(Answer::Written);
        ticks(3).await;
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message { .. })));
        assert_eq!(socket.taken(), 0, "a failed socket is not tried again");
    }

    fn has_init(message: &Outbound) -> bool {
        match message {
            Outbound::Message { message: bytes, .. } => {
                server_frames(bytes).any(|f| f.is_ok_and(|(t, _)| t == INIT_FRAME))
            }
            Outbound::Flush | Outbound::Close(..) => false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_bounded_then_dropped_and_others_are_untouched() {
        let room = start_room(Duration::from_secs(1));
        let (_reader, mut reader_inbox) = join(&room, "reader").await;
        let (_stalled, mut stalled_inbox) = join(&room, "stalled").await;
        assert_eq!(room.stats.humans(), 2);
        // Two seconds of ticks (paused time advances as the room waits).
        for _ in 0..40 {
            let message = reader_inbox
                .recv()
                .await
                .expect("the reader keeps receiving");
            assert!(matches!(message, Outbound::Message { .. }));
        }
        // After the 1 s stall limit (20 ticks) the stalled client was removed.
        assert_eq!(room.stats.humans(), 1);
        // It never had more than its queue's worth of messages waiting for it.
        let mut queued = 0;
        while let Ok(message) = stalled_inbox.try_recv() {
            assert!(matches!(message, Outbound::Message { .. }));
            queued += 1;
        }
        assert_eq!(queued, OUTBOUND_QUEUE);
        // The room dropped its sender: the session sees the end of the queue.
        assert!(stalled_inbox.recv().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_falls_behind_gets_a_full_resend_not_a_broken_delta() {
        let room = start_room(Duration::from_secs(5));
        let (_player, mut inbox) = join(&room, "laggy").await;
        let first = inbox.recv().await.unwrap();
        assert!(has_init(&first), "the first message carries init");
        // Stop reading long enough for frames to be dropped (the queue holds 8 ticks).
        tokio::time::sleep(Duration::from_millis(50 * 20)).await;
        let mut backlog = Vec::new();
        while let Ok(message) = inbox.try_recv() {
            backlog.push(message);
        }
        assert_eq!(backlog.len(), OUTBOUND_QUEUE);
        assert!(
            backlog.iter().all(|m| !has_init(m)),
            "queued deltas are plain state"
        );
        // The next message after the drop starts the client over.
        let next = inbox.recv().await.unwrap();
        assert!(
            has_init(&next),
            "after dropped frames the client is resynchronised in full"
        );
        assert_eq!(room.stats.humans(), 1, "a short stall is not a disconnect");
    }

    #[tokio::test(start_paused = true)]
    async fn bots_make_room_for_humans_and_never_exceed_the_cap() {
        let room = start_room(Duration::from_secs(5));
        let mut inboxes = Vec::new();
        for index in 0..10 {
            let (_, inbox) = join(&room, &format!("h{index}")).await;
            inboxes.push(inbox);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let humans = room.stats.humans();
            assert!(
                humans + room.stats.bots() <= 10,
                "humans {humans} + bots {} > cap",
                room.stats.bots()
            );
            for inbox in &mut inboxes {
                while inbox.try_recv().is_ok() {}
            }
        }
        let (answer, _inbox) = try_join(&room, "late", None).await;
        assert_eq!(answer, Err(JoinRefusal::Full));
    }

    #[test]
    fn room_names_are_validated() {
        assert!(RoomId::parse("main-0421").is_ok());
        assert!(RoomId::parse("a_B-9").is_ok());
        assert!(RoomId::parse("").is_err());
        assert!(RoomId::parse(&"x".repeat(33)).is_err());
        assert!(RoomId::parse("has space").is_err());
        assert!(RoomId::parse("../etc").is_err());
        assert!(RoomId::parse("ünïcode").is_err());
    }
}
