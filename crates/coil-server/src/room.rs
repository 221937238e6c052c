//! The room runtime: one tokio task per room drives a [`Game`] at a fixed tick rate.
//!
//! The task owns the game state outright (no lock around it) and reads a closed enum of
//! [`RoomEvent`]s. Each tick it measures the real elapsed time, advances the game, and sends
//! every player exactly one message: written straight to the player's socket when that cannot
//! wait (see [`crate::direct`]), otherwise through that player's bounded outbound queue. It
//! never waits on a socket or a database inside a tick: a full queue means the frame is dropped
//! (and the player's view re-sent in full later), scores go to the leaderboard writer through
//! a bounded channel.
//!
//! Lifecycle: WARM (no humans) → ACTIVE (humans present) → DRAINING (no new joins; players
//! told to re-matchmake before a deadline) → TERMINATED (task ended, removed from the
//! registry). An empty room is reaped after the idle grace window.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use coil_game::{Game, GameEvent, JoinInfo, PlayerId};
use coil_protocol::envelope::{NoticeKind, write_error, write_notice, write_score_receipt};
use coil_protocol::{ErrorCode, Writer};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::direct::{Direct, DirectWrite};
use crate::metrics as m;
use crate::scores::ScoreSink;

/// A validated room name: 1–32 characters of `A-Z a-z 0-9 - _`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

impl RoomId {
    pub const MAX_LEN: usize = 32;

    pub fn parse(name: &str) -> Result<RoomId, &'static str> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err("room names are 1 to 32 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("room names use only letters, digits, '-' and '_'");
        }
        Ok(RoomId(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lifecycle state of a room, as published in health, metrics and the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RoomState {
    Warm = 0,
    Active = 1,
    Draining = 2,
    Terminated = 3,
}

impl RoomState {
    pub const ALL: [RoomState; 4] = [
        RoomState::Warm,
        RoomState::Active,
        RoomState::Draining,
        RoomState::Terminated,
    ];

    fn from_u8(value: u8) -> RoomState {
        match value {
            0 => RoomState::Warm,
            1 => RoomState::Active,
            2 => RoomState::Draining,
            _ => RoomState::Terminated,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Warm => "warm",
            RoomState::Active => "active",
            RoomState::Draining => "draining",
            RoomState::Terminated => "terminated",
        }
    }
}

/// Figures a room publishes for readers outside its task (health, metrics, directory),
/// updated once per tick with relaxed atomics: readers never message the room.
#[derive(Debug, Default)]
pub struct RoomStats {
    state: AtomicU8,
    humans: AtomicU32,
    bots: AtomicU32,
    /// Last tick's duration in microseconds.
    last_tick_micros: AtomicU32,
    /// Smoothed tick utilisation (tick time or lateness over budget), per mille.
    pressure_per_mille: AtomicU32,
    ticks: AtomicU64,
}

impl RoomStats {
    pub fn state(&self) -> RoomState {
        RoomState::from_u8(self.state.load(Ordering::Relaxed))
    }
    pub fn humans(&self) -> usize {
        self.humans.load(Ordering::Relaxed) as usize
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
}

/// What a session hands the room to receive its messages.
#[derive(Debug)]
pub enum Outbound {
    /// One WebSocket binary message (all of this tick's frames for the player).
    Message(Bytes),
    /// Finish writing a message the room handed to the socket directly but could not write in
    /// full without waiting.
    Flush,
    /// Send an error frame with this code, then close.
    Close(ErrorCode, &'static str),
}

/// Capacity of a player's outbound queue, in messages (ticks). Eight ticks = 400 ms at 20 Hz:
/// enough to ride out a scheduling hiccup, small enough that a stalled client costs at most a
/// few kilobytes before its frames are dropped instead of queued.
pub const OUTBOUND_QUEUE: usize = 8;

/// Capacity of a room's event channel. Inputs beyond it are dropped (they are coalesced per
/// tick anyway); joins and leaves wait for space.
pub const ROOM_EVENT_QUEUE: usize = 2048;

/// Why a join was refused by the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    Full,
    Draining,
}

/// Why a player left, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    ClientClosed,
    ProtocolError,
    SlowClient,
}

#[derive(Debug)]
pub enum RoomEvent {
    Join {
        info: JoinInfo,
        outbound: mpsc::Sender<Outbound>,
        /// The player's socket, for writes that need not wait (`None`: queue only).
        direct: Option<Direct>,
        reply: oneshot::Sender<Result<PlayerId, JoinRefusal>>,
    },
    Leave {
        player: PlayerId,
        reason: LeaveReason,
    },
    /// A game-level frame from a player (input, respawn, …).
    Game { player: PlayerId, frame: Bytes },
    /// Debug/admin: end the runs of players with this name.
    Kill {
        name: String,
        reply: oneshot::Sender<usize>,
    },
    /// Stop taking joins; tell players; close what is left at `deadline`.
    Drain { deadline: tokio::time::Instant },
}

/// Settings every room of a node shares.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    pub tick: Duration,
    pub hard_cap: usize,
    pub population_target: usize,
    pub idle_grace: Duration,
    pub slow_client_timeout: Duration,
}

/// The sender side of a room, held by the registry and by sessions.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    pub id: RoomId,
    pub events: mpsc::Sender<RoomEvent>,
    pub stats: Arc<RoomStats>,
}

struct Session {
    name: String,
    outbound: mpsc::Sender<Outbound>,
    /// Runtime frames (receipts, notices) to append to the next message.
    pending: Vec<u8>,
    /// Direct writes to the player's socket.
    direct: Option<Direct>,
    /// A direct write failed: from then on everything goes through the queue.
    direct_failed: bool,
    /// The first message always goes through the queue (the session times the join by it).
    sent_first: bool,
    /// Consecutive ticks whose frame could not be queued.
    stalled_ticks: u32,
    needs_resync: bool,
}

impl Session {
    /// Hands one message to the player without waiting: straight to the socket when nothing
    /// queued earlier is still unwritten and the socket takes it, else through the queue (the
    /// caller checked that it has room).
    fn deliver(&mut self, mut message: Bytes) {
        if let Some(direct) = self.direct.as_ref()
            && self.sent_first
            && !self.direct_failed
            && direct.is_clear()
        {
            match direct.writer.try_write(message) {
                DirectWrite::Written => return,
                outcome @ (DirectWrite::NeedsFlush | DirectWrite::Failed) => {
                    // A failed socket gets the queue from now on; the flush makes the session
                    // find out at once (its write fails) and leave.
                    self.direct_failed = outcome == DirectWrite::Failed;
                    direct.queued();
                    if self.outbound.try_send(Outbound::Flush).is_err() {
                        direct.finished();
                    }
                    return;
                }
                DirectWrite::Busy(returned) => message = returned,
            }
        }
        self.sent_first = true;
        let direct = self.direct.as_ref();
        if let Some(direct) = direct {
            direct.queued();
        }
        if self.outbound.try_send(Outbound::Message(message)).is_err()
            && let Some(direct) = direct
        {
            direct.finished();
        }
    }
}

/// Everything the room task owns. Generic over the game so a 4v4 mode reuses the runtime.
pub struct Room<G: Game> {
    id: RoomId,
    game: G,
    settings: RoomSettings,
    stats: Arc<RoomStats>,
    sessions: HashMap<PlayerId, Session>,
    next_player: u32,
    scores: ScoreSink,
    state: RoomState,
    drain_deadline: Option<tokio::time::Instant>,
    empty_since: Option<Instant>,
    last_tick: Instant,
    events: Vec<GameEvent>,
    evictions: Vec<PlayerId>,
    /// Reused for every player's message: each message is then one exact-size allocation.
    scratch: Vec<u8>,
    /// Bots are shed when the room's smoothed pressure passes 0.5 and restored below 0.3.
    shedding: bool,
    pressure: f32,
}

impl<G: Game> Room<G> {
    pub fn new(id: RoomId, game: G, settings: RoomSettings, scores: ScoreSink) -> Room<G> {
        Room {
            id,
            game,
            settings,
            stats: Arc::new(RoomStats::default()),
            sessions: HashMap::new(),
            next_player: 1,
            scores,
            state: RoomState::Warm,
            drain_deadline: None,
            empty_since: Some(Instant::now()),
            last_tick: Instant::now(),
            events: Vec::new(),
            evictions: Vec::new(),
            scratch: Vec::new(),
            shedding: false,
            pressure: 0.0,
        }
    }

    pub fn stats(&self) -> Arc<RoomStats> {
        self.stats.clone()
    }

    /// Runs the room until it is reaped, drained or its channel closes. `on_exit` runs after
    /// the room stopped accepting events, so the registry entry can be removed.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<RoomEvent>,
        on_exit: impl FnOnce(&RoomId),
    ) {
        let mut ticker = tokio::time::interval(self.settings.tick);
        // A late tick is not replayed back-to-back: the game takes the real elapsed time.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.publish_stats();
        loop {
            tokio::select! {
                biased;
                _ = ticker.tick() => {
                    if !self.tick() {
                        break;
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
            }
        }
        // Stop taking events first: joins still queued see their reply dropped and retry on
        // a fresh room.
        events.close();
        on_exit(&self.id);
        while let Ok(event) = events.try_recv() {
            drop(event);
        }
        self.terminate();
    }

    fn handle(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::Join {
                info,
                outbound,
                direct,
                reply,
            } => {
                let result = self.join(info, outbound, direct);
                let _ = reply.send(result);
            }
            RoomEvent::Leave { player, reason } => self.leave(player, reason),
            RoomEvent::Game { player, frame } => {
                if self.sessions.contains_key(&player)
                    && let Err(rejected) = self.game.handle_message(player, &frame)
                {
                    if let Some(session) = self.sessions.get(&player) {
                        let _ = session
                            .outbound
                            .try_send(Outbound::Close(rejected.code, rejected.reason));
                    }
                    self.leave(player, LeaveReason::ProtocolError);
                }
            }
            RoomEvent::Kill { name, reply } => {
                let players: Vec<PlayerId> = self
                    .sessions
                    .iter()
                    .filter(|(_, session)| session.name == name)
                    .map(|(id, _)| *id)
                    .collect();
                let killed = players
                    .into_iter()
                    .filter(|player| self.game.kill(*player))
                    .count();
                let _ = reply.send(killed);
            }
            RoomEvent::Drain { deadline } => self.start_drain(deadline),
        }
    }

    fn join(
        &mut self,
        info: JoinInfo,
        outbound: mpsc::Sender<Outbound>,
        direct: Option<Direct>,
    ) -> Result<PlayerId, JoinRefusal> {
        if self.state == RoomState::Draining {
            return Err(JoinRefusal::Draining);
        }
        if self.sessions.len() >= self.settings.hard_cap {
            return Err(JoinRefusal::Full);
        }
        let player = PlayerId(self.next_player);
        self.next_player += 1;
        self.game.add_player(player, &info);
        self.sessions.insert(
            player,
            Session {
                name: info.name,
                outbound,
                pending: Vec::new(),
                direct,
                direct_failed: false,
                sent_first: false,
                stalled_ticks: 0,
                needs_resync: false,
            },
        );
        // Make room for the human at once: bots never hold a human's seat.
        self.game.set_bot_target(self.bot_target());
        self.empty_since = None;
        self.set_state(RoomState::Active);
        self.publish_stats();
        Ok(player)
    }

    fn leave(&mut self, player: PlayerId, reason: LeaveReason) {
        let Some(session) = self.sessions.remove(&player) else {
            return;
        };
        if let Some(score) = self.game.remove_player(player) {
            self.scores.record(&self.id, &session.name, score);
        }
        m::disconnect(match reason {
            LeaveReason::ClientClosed => "client_closed",
            LeaveReason::ProtocolError => "protocol_error",
            LeaveReason::SlowClient => "slow_client",
        });
        if self.sessions.is_empty() {
            self.empty_since = Some(Instant::now());
            if self.state == RoomState::Active {
                self.set_state(RoomState::Warm);
            }
        }
        self.game.set_bot_target(self.bot_target());
        self.publish_stats();
    }

    fn start_drain(&mut self, deadline: tokio::time::Instant) {
        if self.state == RoomState::Draining {
            // An earlier deadline (an eviction) replaces a later one; never the reverse.
            self.drain_deadline = Some(
                self.drain_deadline
                    .map_or(deadline, |current| current.min(deadline)),
            );
            return;
        }
        self.set_state(RoomState::Draining);
        self.drain_deadline = Some(deadline);
        let deadline_ms = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_millis();
        let deadline_ms = u32::try_from(deadline_ms).unwrap_or(u32::MAX);
        for session in self.sessions.values_mut() {
            write_notice(
                &mut Writer::new(&mut session.pending),
                NoticeKind::Draining,
                deadline_ms,
            );
        }
    }

    fn bot_target(&self) -> usize {
        let humans = self.sessions.len();
        let wanted = self.settings.population_target.saturating_sub(humans);
        let under_cap = self.settings.hard_cap.saturating_sub(humans);
        let wanted = wanted.min(under_cap);
        if self.shedding || self.state == RoomState::Draining {
            0
        } else {
            wanted
        }
    }

    /// One tick. Returns false when the room should end.
    fn tick(&mut self) -> bool {
        let started = Instant::now();
        let elapsed = started.duration_since(self.last_tick);
        self.last_tick = started;
        // The first tick and any stall are clamped: the game never integrates a huge step.
        let dt = elapsed.min(self.settings.tick * 5).as_secs_f32();
        let lateness = elapsed.saturating_sub(self.settings.tick);

        self.game.set_bot_target(self.bot_target());
        self.game.tick(dt, &mut self.events);
        for event in self.events.drain(..) {
            match event {
                GameEvent::PlayerDied {
                    player,
                    name,
                    score,
                } => {
                    let receipt = self.scores.record(&self.id, &name, score);
                    if let (Some(session), Some(receipt)) =
                        (self.sessions.get_mut(&player), receipt)
                    {
                        write_score_receipt(&mut Writer::new(&mut session.pending), &receipt);
                    }
                }
            }
        }

        let encode_started = Instant::now();
        let stall_limit = self.stall_limit_ticks();
        let mut bytes_sent = 0u64;
        let mut dropped = 0u64;
        for (player, session) in self.sessions.iter_mut() {
            if session.outbound.capacity() == 0 {
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
            if message.is_empty() {
                continue;
            }
            bytes_sent += message.len() as u64;
            // Capacity was checked above and only this task sends data frames.
            session.deliver(Bytes::copy_from_slice(message));
        }
        let encode_time = encode_started.elapsed();

        for player in std::mem::take(&mut self.evictions) {
            if let Some(session) = self.sessions.get(&player) {
                let _ = session.outbound.try_send(Outbound::Close(
                    ErrorCode::SlowClient,
                    "client stopped reading",
                ));
            }
            tracing::info!(room = %self.id, player = player.0, "disconnecting a client that stopped reading");
            self.leave(player, LeaveReason::SlowClient);
        }

        let tick_time = started.elapsed();
        let utilisation = tick_time.max(lateness).as_secs_f32() / self.settings.tick.as_secs_f32();
        self.pressure = 0.9 * self.pressure + 0.1 * utilisation;
        if !self.shedding && self.pressure > 0.5 {
            self.shedding = true;
            tracing::warn!(room = %self.id, pressure = self.pressure, "tick near budget: shedding bots");
        } else if self.shedding && self.pressure < 0.3 {
            self.shedding = false;
        }
        m::tick_finished(
            tick_time,
            encode_time,
            tick_time > self.settings.tick,
            bytes_sent,
            dropped,
        );
        self.stats.ticks.fetch_add(1, Ordering::Relaxed);
        self.stats.last_tick_micros.store(
            tick_time.as_micros().min(u32::MAX as u128) as u32,
            Ordering::Relaxed,
        );
        self.stats
            .pressure_per_mille
            .store((self.pressure * 1000.0) as u32, Ordering::Relaxed);
        self.publish_stats();

        self.keep_running()
    }

    fn stall_limit_ticks(&self) -> u32 {
        let ticks =
            self.settings.slow_client_timeout.as_millis() / self.settings.tick.as_millis().max(1);
        u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
    }

    fn keep_running(&mut self) -> bool {
        if self.state == RoomState::Draining {
            if self.sessions.is_empty() {
                return false;
            }
            if self
                .drain_deadline
                .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
            {
                let players: Vec<PlayerId> = self.sessions.keys().copied().collect();
                for player in players {
                    if let Some(session) = self.sessions.remove(&player) {
                        let _ = session
                            .outbound
                            .try_send(Outbound::Close(ErrorCode::RoomDraining, "room closed"));
                        if let Some(score) = self.game.remove_player(player) {
                            self.scores.record(&self.id, &session.name, score);
                        }
                        m::disconnect("drain");
                    }
                }
                return false;
            }
            return true;
        }
        self.empty_since
            .is_none_or(|since| since.elapsed() < self.settings.idle_grace)
    }

    fn set_state(&mut self, state: RoomState) {
        self.state = state;
    }

    fn publish_stats(&self) {
        let population = self.game.population();
        self.stats.state.store(self.state as u8, Ordering::Relaxed);
        self.stats
            .humans
            .store(self.sessions.len() as u32, Ordering::Relaxed);
        self.stats
            .bots
            .store(population.bots as u32, Ordering::Relaxed);
    }

    fn terminate(&mut self) {
        for (player, session) in std::mem::take(&mut self.sessions) {
            if let Some(score) = self.game.remove_player(player) {
                self.scores.record(&self.id, &session.name, score);
            }
            let _ = session
                .outbound
                .try_send(Outbound::Close(ErrorCode::RoomDraining, "room closed"));
            m::disconnect("server_shutdown");
        }
        self.set_state(RoomState::Terminated);
        self.stats.humans.store(0, Ordering::Relaxed);
        self.stats.bots.store(0, Ordering::Relaxed);
        tracing::debug!(room = %self.id, "room terminated");
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
pub fn error_message(code: ErrorCode, reason: &str) -> Bytes {
    let mut out = Vec::with_capacity(8 + reason.len());
    write_error(&mut Writer::new(&mut out), code, reason);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coil_game::arena::{Arena, ArenaSettings};
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
            tick: Duration::from_millis(50),
            hard_cap: 10,
            population_target: 8,
            idle_grace: Duration::from_secs(3600),
            slow_client_timeout,
        };
        let game = Arena::new(ArenaSettings {
            seed: 42,
            ..ArenaSettings::default()
        });
        let room = Room::new(RoomId::parse("unit").unwrap(), game, settings, sink);
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
        let info = JoinInfo {
            name: name.into(),
            skin: 0,
        };
        room.events
            .send(RoomEvent::Join {
                info,
                outbound,
                direct,
                reply,
            })
            .await
            .unwrap();
        (answer.await.unwrap(), inbound)
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
        fn try_write(&self, message: Bytes) -> DirectWrite {
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
            assert!(matches!(message, Outbound::Message(_)));
            queued += 1;
        }
        assert!(queued >= 3);
        assert_eq!(socket.taken(), 0);
        // The socket is free again, but what was queued is not written yet: still queued.
        socket.answer(Answer::Written);
        ticks(2).await;
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message(_))));
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
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message(_))));
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
                Some(Outbound::Message(_))
            ));
        }
        assert_eq!(room.stats.humans(), 1, "the stalled client was removed");
        let mut queued = 0;
        while let Ok(message) = stalled_inbox.try_recv() {
            assert!(matches!(message, Outbound::Message(_)));
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
        assert!(matches!(inbox.try_recv(), Ok(Outbound::Message(_))));
        assert_eq!(socket.taken(), 0, "a failed socket is not tried again");
    }

    fn has_init(message: &Outbound) -> bool {
        match message {
            Outbound::Message(bytes) => {
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
            assert!(matches!(message, Outbound::Message(_)));
        }
        // After the 1 s stall limit (20 ticks) the stalled client was removed.
        assert_eq!(room.stats.humans(), 1);
        // It never had more than its queue's worth of messages waiting for it.
        let mut queued = 0;
        while let Ok(message) = stalled_inbox.try_recv() {
            assert!(matches!(message, Outbound::Message(_)));
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
