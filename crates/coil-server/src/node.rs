//! The node: the registry of rooms this process runs, the drain switch, and the figures that
//! health, readiness and metrics report. Shared by HTTP handlers and sessions behind an `Arc`.
//!
//! The registry lock is a short `std` mutex held only to look up or insert a handle — never
//! across an `.await` and never inside a tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use coil_game::{Game, JoinInfo, PlayerId};
use tokio::sync::{mpsc, oneshot};

use crate::config::NodeConfig;
use crate::direct::Direct;
use crate::fleet::FleetLink;
use crate::room::{
    JoinRefusal, Outbound, ROOM_EVENT_QUEUE, Room, RoomEvent, RoomHandle, RoomId, RoomSettings,
    RoomState,
};
use crate::scores::ScoreSink;

/// Builds the game for a new room from a seed.
pub type GameFactory<G> = Arc<dyn Fn(u64) -> G + Send + Sync>;

/// Why a player could not be seated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatError {
    Full,
    Draining,
    /// The node runs `MAX_ROOMS` rooms already.
    TooManyRooms,
}

/// Node-wide counts for health and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeSummary {
    pub rooms_by_state: [usize; 4],
    pub humans: usize,
    pub bots: usize,
    /// Highest smoothed tick pressure of any room (tick time or lateness over budget).
    pub max_pressure_per_mille: u32,
}

pub struct Node<G: Game> {
    pub config: NodeConfig,
    pub started: Instant,
    rooms: Mutex<HashMap<RoomId, RoomHandle>>,
    factory: GameFactory<G>,
    scores: ScoreSink,
    draining: AtomicBool,
    drain_deadline: Mutex<Option<tokio::time::Instant>>,
    /// The matchmaker's world: token checks and the directory. `None` runs a lone node that
    /// accepts only v11 joins.
    pub fleet: Option<Arc<FleetLink>>,
}

impl<G: Game> Node<G> {
    pub fn new(
        config: NodeConfig,
        factory: GameFactory<G>,
        scores: ScoreSink,
        fleet: Option<Arc<FleetLink>>,
    ) -> Arc<Self> {
        Arc::new(Node {
            config,
            started: Instant::now(),
            rooms: Mutex::new(HashMap::new()),
            factory,
            scores,
            draining: AtomicBool::new(false),
            drain_deadline: Mutex::new(None),
            fleet,
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Ready for new players: not draining, and no room's tick is near its budget.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.summary().max_pressure_per_mille < 800
    }

    fn room_settings(&self) -> RoomSettings {
        RoomSettings {
            tick: self.config.tick,
            hard_cap: self.config.room_hard_cap,
            population_target: self.config.room_population_target,
            idle_grace: self.config.room_idle,
            slow_client_timeout: self.config.slow_client_timeout,
        }
    }

    /// The room's handle, creating and starting the room if it does not exist.
    fn room(self: &Arc<Self>, id: &RoomId) -> Result<RoomHandle, SeatError> {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = rooms.get(id) {
            return Ok(handle.clone());
        }
        if self.is_draining() {
            return Err(SeatError::Draining);
        }
        if rooms.len() >= self.config.max_rooms {
            return Err(SeatError::TooManyRooms);
        }
        let game = (self.factory)(rand::random());
        let room = Room::new(id.clone(), game, self.room_settings(), self.scores.clone());
        let (events, receiver) = mpsc::channel(ROOM_EVENT_QUEUE);
        let handle = RoomHandle {
            id: id.clone(),
            events,
            stats: room.stats(),
        };
        rooms.insert(id.clone(), handle.clone());
        drop(rooms);
        let node = Arc::downgrade(self);
        let stats = handle.stats.clone();
        tokio::spawn(room.run(receiver, move |id| {
            if let Some(node) = node.upgrade() {
                let mut rooms = node
                    .rooms
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // Remove only this room's own entry, never a successor with the same name.
                if rooms.get(id).is_some_and(|h| Arc::ptr_eq(&h.stats, &stats)) {
                    rooms.remove(id);
                }
            }
        }));
        tracing::debug!(room = %id, "room created");
        Ok(handle)
    }

    /// Seats a player in a room (creating it on first join). Returns the player's id and the
    /// room handle to send its frames to.
    pub async fn seat(
        self: &Arc<Self>,
        id: &RoomId,
        info: JoinInfo,
        outbound: mpsc::Sender<Outbound>,
        direct: Option<Direct>,
    ) -> Result<(PlayerId, RoomHandle), SeatError> {
        // A room that was being reaped as we looked it up drops our join; a second attempt
        // finds (or makes) its successor.
        for _ in 0..3 {
            let handle = self.room(id)?;
            let (reply, answer) = oneshot::channel();
            let event = RoomEvent::Join {
                info: info.clone(),
                outbound: outbound.clone(),
                direct: direct.clone(),
                reply,
            };
            if handle.events.send(event).await.is_err() {
                tokio::task::yield_now().await;
                continue;
            }
            match answer.await {
                Ok(Ok(player)) => return Ok((player, handle)),
                Ok(Err(JoinRefusal::Full)) => return Err(SeatError::Full),
                Ok(Err(JoinRefusal::Draining)) => return Err(SeatError::Draining),
                Err(_) => tokio::task::yield_now().await,
            }
        }
        Err(SeatError::Draining)
    }

    /// Ends the runs of players named `name` in `room` (debug command). Returns how many.
    pub async fn kill(&self, room: &RoomId, name: &str) -> Option<usize> {
        let handle = self
            .rooms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room)
            .cloned()?;
        let (reply, answer) = oneshot::channel();
        handle
            .events
            .send(RoomEvent::Kill {
                name: name.to_string(),
                reply,
            })
            .await
            .ok()?;
        answer.await.ok()
    }

    pub fn summary(&self) -> NodeSummary {
        let rooms = self
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut summary = NodeSummary::default();
        for handle in rooms.values() {
            let state = handle.stats.state();
            summary.rooms_by_state[state as usize] += 1;
            summary.humans += handle.stats.humans();
            summary.bots += handle.stats.bots();
            summary.max_pressure_per_mille = summary
                .max_pressure_per_mille
                .max((handle.stats.pressure() * 1000.0) as u32);
        }
        summary
    }

    pub fn room_count(&self) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Rooms and their stats, for the directory heartbeat.
    pub fn rooms(&self) -> Vec<RoomHandle> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Starts draining with the configured deadline: no new rooms or joins; every room tells
    /// its players to re-matchmake and closes at the deadline. Returns the deadline. Idempotent.
    pub async fn drain(&self) -> tokio::time::Instant {
        self.drain_within(self.config.drain_timeout).await
    }

    /// Drains with a deadline `timeout` from now, or keeps an earlier one already set. A zero
    /// timeout evicts at once: the rooms close on their next tick and players re-matchmake.
    pub async fn drain_within(&self, timeout: std::time::Duration) -> tokio::time::Instant {
        let deadline = {
            let mut slot = self
                .drain_deadline
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let wanted = tokio::time::Instant::now() + timeout;
            let deadline = slot.map_or(wanted, |existing| existing.min(wanted));
            *slot = Some(deadline);
            deadline
        };
        let first = !self.draining.swap(true, Ordering::Relaxed);
        for handle in self.rooms() {
            let _ = handle.events.send(RoomEvent::Drain { deadline }).await;
        }
        if first && let Some(link) = &self.fleet {
            // Rooms turn DRAINING in the directory at once, not at the next heartbeat.
            crate::fleet::announce_drain(self, link).await;
        }
        deadline
    }

    /// Waits until every room has ended or `deadline` (plus a short grace for the final
    /// close frames) has passed.
    pub async fn wait_until_empty(&self, deadline: tokio::time::Instant) {
        let give_up = deadline + std::time::Duration::from_secs(2);
        while self.room_count() > 0 && tokio::time::Instant::now() < give_up {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl RoomState {
    pub fn index(self) -> usize {
        self as usize
    }
}
