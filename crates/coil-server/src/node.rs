//! The node: the registry of rooms this process runs (of every mode it runs), the drain switch,
//! and the figures that health, readiness and metrics report. Shared by HTTP handlers and
//! sessions behind an `Arc`.
//!
//! The registry lock is a short `std` mutex held only to look up or insert a handle — never
//! across an `.await` and never inside a tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coil_game::{Identity, Refusal, RoomSetup};
use coil_protocol::ErrorCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::fleet::FleetLink;
use crate::modes::{ModeEntry, Modes};
use crate::room::{
    Connection, GameMode, JoinRefusal, ROOM_EVENT_QUEUE, ReportSink, ResumeRefusal, Room,
    RoomEvent, RoomHandle, RoomId, RoomOrigin, Seated,
};
use crate::scores::ScoreSink;

/// Why a player could not be seated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatError {
    Full,
    SpectatorsFull,
    Draining,
    /// The node runs its most rooms of this mode already.
    TooManyRooms,
    /// The room exists with another mode than the join asked for.
    WrongMode,
    /// The node does not run the mode the join asked for.
    UnknownMode,
    /// The game refused, with its own code.
    Game(Refusal),
}

/// Rooms and people of one mode on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModeSummary {
    pub mode: String,
    pub rooms: usize,
    pub humans: usize,
    pub spectators: usize,
    pub bots: usize,
}

/// Node-wide counts for health and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSummary {
    pub rooms_by_state: [usize; 4],
    pub humans: usize,
    pub spectators: usize,
    pub bots: usize,
    /// Highest smoothed tick pressure of any room (tick time or lateness over budget).
    pub max_pressure_per_mille: u32,
    pub modes: Vec<ModeSummary>,
}

pub struct Node {
    pub config: NodeConfig,
    pub modes: Modes,
    pub started: Instant,
    rooms: Mutex<HashMap<RoomId, RoomHandle>>,
    scores: ScoreSink,
    reports: ReportSink,
    draining: AtomicBool,
    /// (room deadline, match deadline) once draining.
    drain_deadlines: Mutex<Option<(Instant, Instant)>>,
    /// The matchmaker's world: token checks and the directory. `None` runs a lone node that
    /// accepts only v11 joins.
    pub fleet: Option<Arc<FleetLink>>,
}

impl Node {
    pub fn new(
        config: NodeConfig,
        modes: Modes,
        scores: ScoreSink,
        reports: ReportSink,
        fleet: Option<Arc<FleetLink>>,
    ) -> Arc<Self> {
        Arc::new(Node {
            config,
            modes,
            started: Instant::now(),
            rooms: Mutex::new(HashMap::new()),
            scores,
            reports,
            draining: AtomicBool::new(false),
            drain_deadlines: Mutex::new(None),
            fleet,
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomHandle>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Ready for new players: not draining, and no room's tick is near its budget.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.summary().max_pressure_per_mille < 800
    }

    /// The room's handle, creating and starting the room (of `mode`) if it does not exist.
    fn room(
        self: &Arc<Self>,
        id: &RoomId,
        mode: &ModeEntry,
        origin: &RoomOrigin,
    ) -> Result<RoomHandle, SeatError> {
        let mut rooms = self.registry();
        if let Some(handle) = rooms.get(id) {
            if handle.mode != mode.name {
                return Err(SeatError::WrongMode);
            }
            return Ok(handle.clone());
        }
        if self.is_draining() {
            return Err(SeatError::Draining);
        }
        let of_mode = rooms
            .values()
            .filter(|handle| handle.mode == mode.name)
            .count();
        if of_mode >= mode.max_rooms {
            return Err(SeatError::TooManyRooms);
        }
        let game = mode.mode.create(&RoomSetup {
            seed: rand::random(),
            tick: mode.room.tick,
            hard_cap: mode.room.limits.hard_cap,
            spectator_cap: mode.room.limits.spectator_cap,
            rules: origin.rules.clone(),
        });
        let room = Room::new(
            id.clone(),
            game,
            mode.room.clone(),
            Some(self.scores.clone()),
            self.reports.clone(),
        );
        let (events, receiver) = tokio::sync::mpsc::channel(ROOM_EVENT_QUEUE);
        let handle = RoomHandle {
            id: id.clone(),
            mode: mode.name.clone(),
            events,
            stats: room.stats(),
            origin: Arc::new(origin.clone()),
        };
        rooms.insert(id.clone(), handle.clone());
        drop(rooms);
        let node = Arc::downgrade(self);
        let stats = handle.stats.clone();
        tokio::spawn(room.run(receiver, move |id| {
            if let Some(node) = node.upgrade() {
                let mut rooms = node.registry();
                // Remove only this room's own entry, never a successor with the same name.
                if rooms.get(id).is_some_and(|h| Arc::ptr_eq(&h.stats, &stats)) {
                    rooms.remove(id);
                }
            }
        }));
        tracing::debug!(room = %id, mode = %mode.name, "room created");
        Ok(handle)
    }

    /// Seats a player in a room of `mode` (creating it on first join). `keep_free` player
    /// seats are left for token holders (a join without a token). Returns the seat and the
    /// room handle to send its frames to.
    pub async fn seat(
        self: &Arc<Self>,
        id: &RoomId,
        mode: &GameMode,
        origin: &RoomOrigin,
        identity: Identity,
        keep_free: usize,
        connection: Connection,
    ) -> Result<(Seated, RoomHandle), SeatError> {
        let mode = self.modes.get(mode).ok_or(SeatError::UnknownMode)?;
        // A room that was being reaped as we looked it up drops our join; a second attempt
        // finds (or makes) its successor.
        for _ in 0..3 {
            let handle = self.room(id, mode, origin)?;
            let (reply, answer) = oneshot::channel();
            let event = RoomEvent::Join {
                identity: identity.clone(),
                keep_free,
                connection: connection.clone(),
                reply,
            };
            if handle.events.send(event).await.is_err() {
                tokio::task::yield_now().await;
                continue;
            }
            match answer.await {
                Ok(Ok(seated)) => return Ok((seated, handle)),
                Ok(Err(JoinRefusal::Full)) => return Err(SeatError::Full),
                Ok(Err(JoinRefusal::SpectatorsFull)) => return Err(SeatError::SpectatorsFull),
                Ok(Err(JoinRefusal::Draining)) => return Err(SeatError::Draining),
                Ok(Err(JoinRefusal::Game(refusal))) => return Err(SeatError::Game(refusal)),
                Err(_) => tokio::task::yield_now().await,
            }
        }
        Err(SeatError::Draining)
    }

    /// Takes a held seat back with its reconnect token. A room that no longer exists has
    /// expired every seat it held.
    pub async fn resume(
        &self,
        id: &RoomId,
        token: [u8; coil_protocol::envelope::RESUME_TOKEN_LEN],
        connection: Connection,
    ) -> Result<(Seated, RoomHandle), ResumeRefusal> {
        let handle = self
            .registry()
            .get(id)
            .cloned()
            .ok_or(ResumeRefusal::Expired)?;
        let (reply, answer) = oneshot::channel();
        handle
            .events
            .send(RoomEvent::Resume {
                token,
                connection,
                reply,
            })
            .await
            .map_err(|_| ResumeRefusal::Expired)?;
        match answer.await {
            Ok(Ok(seated)) => Ok((seated, handle)),
            Ok(Err(refusal)) => Err(refusal),
            Err(_) => Err(ResumeRefusal::Expired),
        }
    }

    /// Runs a game debug command (e.g. the arena's `kill`) for the players named `name` in
    /// `room`. Returns how many it did something for.
    pub async fn debug(&self, room: &RoomId, name: &str, command: &str) -> Option<usize> {
        let handle = self.registry().get(room).cloned()?;
        let (reply, answer) = oneshot::channel();
        handle
            .events
            .send(RoomEvent::Debug {
                name: name.to_string(),
                command: command.to_string(),
                reply,
            })
            .await
            .ok()?;
        answer.await.ok()
    }

    /// Ends every seat of `player_key` on this node (a ban, an ended session). Returns how many.
    pub async fn kick(&self, player_key: &str, code: ErrorCode, reason: &'static str) -> usize {
        let mut kicked = 0;
        for handle in self.rooms() {
            let (reply, answer) = oneshot::channel();
            let event = RoomEvent::Kick {
                player_key: player_key.to_owned(),
                code,
                reason,
                reply: Some(reply),
            };
            if handle.events.send(event).await.is_ok() {
                kicked += answer.await.unwrap_or(0);
            }
        }
        kicked
    }

    pub fn summary(&self) -> NodeSummary {
        let rooms = self.registry();
        let mut summary = NodeSummary {
            modes: self
                .modes
                .iter()
                .map(|entry| ModeSummary {
                    mode: entry.name.to_string(),
                    ..ModeSummary::default()
                })
                .collect(),
            ..NodeSummary::default()
        };
        for handle in rooms.values() {
            let state = handle.stats.state();
            summary.rooms_by_state[state.index()] += 1;
            let (humans, spectators, bots) = (
                handle.stats.humans(),
                handle.stats.spectators(),
                handle.stats.bots(),
            );
            summary.humans += humans;
            summary.spectators += spectators;
            summary.bots += bots;
            summary.max_pressure_per_mille = summary
                .max_pressure_per_mille
                .max((handle.stats.pressure() * 1000.0) as u32);
            if let Some(mode) = summary
                .modes
                .iter_mut()
                .find(|mode| mode.mode == handle.mode.as_str())
            {
                mode.rooms += 1;
                mode.humans += humans;
                mode.spectators += spectators;
                mode.bots += bots;
            }
        }
        summary
    }

    pub fn room_count(&self) -> usize {
        self.registry().len()
    }

    /// Rooms and their stats, for the directory heartbeat.
    pub fn rooms(&self) -> Vec<RoomHandle> {
        self.registry().values().cloned().collect()
    }

    /// Starts draining with the configured deadlines: no new rooms or joins; every room tells
    /// its players to re-matchmake and closes at `DRAIN_TIMEOUT_SECS`, or, if a match is being
    /// played there, at `MATCH_DRAIN_DEADLINE_SECS`. Returns the later deadline. Idempotent.
    pub async fn drain(&self) -> Instant {
        self.drain_with(self.config.drain_timeout, self.config.match_drain_deadline)
            .await
    }

    /// Drains with a deadline `timeout` from now (matches keep the configured match deadline),
    /// or keeps earlier deadlines already set.
    pub async fn drain_within(&self, timeout: Duration) -> Instant {
        let match_timeout = self.config.match_drain_deadline.max(timeout);
        self.drain_with(timeout, match_timeout).await
    }

    /// Evicts at once: every room closes on its next tick, matches too, and players
    /// re-matchmake.
    pub async fn evict(&self) -> Instant {
        self.drain_with(Duration::ZERO, Duration::ZERO).await
    }

    async fn drain_with(&self, timeout: Duration, match_timeout: Duration) -> Instant {
        let (deadline, match_deadline) = {
            let mut slot = self
                .drain_deadlines
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let wanted = (now + timeout, now + match_timeout);
            let deadlines = slot.map_or(wanted, |(room, matches)| {
                (room.min(wanted.0), matches.min(wanted.1))
            });
            *slot = Some(deadlines);
            deadlines
        };
        let first = !self.draining.swap(true, Ordering::Relaxed);
        for handle in self.rooms() {
            let _ = handle
                .events
                .send(RoomEvent::Drain {
                    deadline,
                    match_deadline,
                })
                .await;
        }
        if first && let Some(link) = &self.fleet {
            // Rooms turn DRAINING in the directory at once, not at the next heartbeat.
            crate::fleet::announce_drain(self, link).await;
        }
        deadline.max(match_deadline)
    }

    /// Waits until every room has ended or `deadline` (plus a short grace for the final
    /// close frames) has passed.
    pub async fn wait_until_empty(&self, deadline: Instant) {
        let give_up = deadline + Duration::from_secs(2);
        while self.room_count() > 0 && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
