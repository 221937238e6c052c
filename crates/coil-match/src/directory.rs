//! The room directory: which rooms exist where, how full they are, and seat reservations.
//!
//! Owns the heartbeat payload (the `/internal/room-heartbeat` JSON body), the [`RoomDirectory`]
//! trait that both implementations share, and the matchmake result types.
//!
//! Must not be scanned whole to place one player (both implementations keep per-region indexes
//! and read only the top candidates), must not keep an entry alive without heartbeats (TTL), and
//! must not let concurrent matchmakes overfill a room (reservation is one atomic step).
//! It never reads the clock: every call takes `now_ms` (Unix milliseconds) from the caller.
//!
//! Seat life cycle: `matchmake` reserves a seat (it counts toward the caps at once, even in a
//! room the node has not created yet); the node, once the player joined, calls `confirm_seat`
//! with the join time. The room's next heartbeat sampled at or after that time counts the
//! player in `humans`, so it ends the seat: a joined player is counted once, not twice. Until
//! such a heartbeat arrives the seat keeps counting, at most `confirmed_seat_hold_ms` (if
//! heartbeats stop, the hold bounds it); a reservation nobody confirms simply expires.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{GameMode, NodeId, Region, RoomId};
use crate::placement::{ConflictReason, PlacementPolicy, PlacementRequest};
use crate::token::{JoinClaims, Nonce};

/// Lifecycle of a room (see `docs` "Room lifecycle"). Wire form: `"WARM"`, `"ACTIVE"`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoomState {
    Warm,
    Active,
    Draining,
    Terminated,
}

impl RoomState {
    pub const ALL: [RoomState; 4] = [
        RoomState::Warm,
        RoomState::Active,
        RoomState::Draining,
        RoomState::Terminated,
    ];

    /// Lowercase name for metrics labels and health (`warm`, `active`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RoomState::Warm => "warm",
            RoomState::Active => "active",
            RoomState::Draining => "draining",
            RoomState::Terminated => "terminated",
        }
    }

    /// Position in [`RoomState::ALL`] (compact storage in an atomic).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(index: usize) -> RoomState {
        RoomState::ALL
            .get(index)
            .copied()
            .unwrap_or(RoomState::Terminated)
    }
}

/// Whether a node takes new rooms and players. Wire form: `"ACTIVE"`, `"DRAINING"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    Active,
    Draining,
}

/// One room as its node reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStatus {
    pub room_id: RoomId,
    pub region: Region,
    #[serde(alias = "instanceId")]
    pub node_id: NodeId,
    #[serde(alias = "humanPlayers")]
    pub humans: u32,
    #[serde(alias = "botPlayers")]
    pub bots: u32,
    pub state: RoomState,
    #[serde(alias = "tickLagMs")]
    pub tick_p95_ms: f64,
    pub joinable: bool,
    /// The room's game mode (`arena` when a node from before modes leaves it out).
    #[serde(default)]
    pub mode: GameMode,
    /// A match room's lobby (the lobby browser lists it); absent for io rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lobby: Option<LobbyStatus>,
}

impl RoomStatus {
    /// A private lobby: out of quick play, joined only through `POST /api/lobbies/{id}/join`.
    pub fn is_private(&self) -> bool {
        self.lobby.as_ref().is_some_and(|lobby| lobby.private)
    }
}

/// A match room's lobby as its node reports it (`crate::lobby` lists these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyStatus {
    /// The map the next (or current) match plays.
    pub map: String,
    /// Most players the lobby seats.
    pub max_players: u32,
    /// Players seated now (connected or holding a seat), spectators apart.
    pub players: u32,
    /// `waiting`, `starting`, `in_progress`, `ending` (`coil_game::Phase::as_str`).
    pub phase: String,
    /// The host's display name, and its player id (an account id for signed-in hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Created as a private lobby (a password or an invite gets in; quick play never).
    pub private: bool,
    /// A password is set (checked by the API, never known to the node).
    pub password: bool,
    /// A custom lobby (rules set by its creator), not a quick-play room.
    pub custom: bool,
    /// The password's Argon2id hash, for the API replicas that check joins. Internal: the
    /// lobby routes never return it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

impl LobbyStatus {
    const MAX_TEXT: usize = 64;

    fn validate(&self) -> Result<(), &'static str> {
        let texts = [
            Some(&self.map),
            Some(&self.phase),
            self.host.as_ref(),
            self.host_id.as_ref(),
        ];
        if self
            .password_hash
            .as_ref()
            .is_some_and(|hash| hash.len() > 256)
        {
            return Err("a lobby password hash must be at most 256 bytes");
        }
        if texts
            .into_iter()
            .flatten()
            .any(|text| text.len() > Self::MAX_TEXT || text.chars().any(char::is_control))
        {
            return Err("lobby texts must be at most 64 bytes without control characters");
        }
        if self.max_players > 1_000 || self.players > 1_000 {
            return Err("lobby sizes must be at most 1,000");
        }
        Ok(())
    }

    /// Seats left for players.
    pub fn is_full(&self) -> bool {
        self.players >= self.max_players
    }

    /// Still in its lobby phase (no match under way).
    pub fn is_waiting(&self) -> bool {
        self.phase == "waiting"
    }
}

/// One node as it reports itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub region: Region,
    /// Base URL players connect to, e.g. `ws://127.0.0.1:9001` or `wss://n1.example.com`.
    pub public_url: String,
    pub state: NodeState,
    /// Most rooms this node will run (of its first mode, when `modes` lists several).
    pub room_capacity: u32,
    pub rooms: u32,
    pub humans: u32,
    /// Room capacity per game mode the node runs. Empty (a node from before modes): the node
    /// runs only the arena, with `room_capacity` and `rooms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<ModeCapacity>,
}

/// How many rooms of one mode a node runs and may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeCapacity {
    pub mode: GameMode,
    pub room_capacity: u32,
    pub rooms: u32,
    /// Humans in this node's rooms of the mode (the pool's seat count).
    #[serde(default)]
    pub humans: u32,
}

impl NodeStatus {
    /// Most modes one node may list.
    pub const MAX_MODES: usize = 16;

    /// The node's capacity per mode, with the pre-modes reading of an empty list.
    pub fn capacities(&self) -> Vec<ModeCapacity> {
        if self.modes.is_empty() {
            vec![ModeCapacity {
                mode: GameMode::arena(),
                room_capacity: self.room_capacity,
                rooms: self.rooms,
                humans: self.humans,
            }]
        } else {
            self.modes.clone()
        }
    }

    /// The capacity of one mode (`None`: the node does not run it).
    pub fn capacity_of(&self, mode: &GameMode) -> Option<ModeCapacity> {
        self.capacities()
            .into_iter()
            .find(|capacity| &capacity.mode == mode)
    }
}

/// The `/internal/room-heartbeat` body: a node and all of its rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub node: NodeStatus,
    pub rooms: Vec<RoomStatus>,
}

impl Heartbeat {
    /// The node's status with every room count at least the number of rooms it lists (of that
    /// mode): a node never runs fewer rooms than it lists, whatever its counters say.
    pub fn node_with_listed_rooms(&self) -> NodeStatus {
        let mut node = self.node.clone();
        let listed = u32::try_from(self.rooms.len()).unwrap_or(u32::MAX);
        node.rooms = node.rooms.max(listed);
        for capacity in &mut node.modes {
            let of_mode = self
                .rooms
                .iter()
                .filter(|room| room.mode == capacity.mode)
                .count();
            capacity.rooms = capacity
                .rooms
                .max(u32::try_from(of_mode).unwrap_or(u32::MAX));
        }
        node
    }

    /// Most rooms one heartbeat may carry.
    pub const MAX_ROOMS: usize = 4_096;
    const MAX_URL_LEN: usize = 256;

    /// Refuses payloads that would corrupt the directory: rooms of another node or region,
    /// duplicate rooms, silly sizes, URLs that are not ws(s)/http(s).
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let invalid = |reason: &str| Err(DirectoryError::InvalidHeartbeat(reason.to_owned()));
        let url = &self.node.public_url;
        let scheme_ok = ["ws://", "wss://", "http://", "https://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !scheme_ok || url.len() > Self::MAX_URL_LEN || url.chars().any(char::is_whitespace) {
            return invalid("publicUrl must be a ws://, wss://, http:// or https:// URL");
        }
        if self.rooms.len() > Self::MAX_ROOMS {
            return invalid("too many rooms in one heartbeat");
        }
        if self.node.modes.len() > NodeStatus::MAX_MODES {
            return invalid("too many modes in one heartbeat");
        }
        let mut modes = std::collections::HashSet::new();
        for capacity in &self.node.modes {
            if !modes.insert(&capacity.mode) {
                return invalid("duplicate mode");
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(self.rooms.len());
        for room in &self.rooms {
            if room.node_id != self.node.node_id || room.region != self.node.region {
                return invalid("every room must belong to the reporting node and its region");
            }
            if !seen.insert(&room.room_id) {
                return invalid("duplicate roomId");
            }
            if !room.tick_p95_ms.is_finite() || room.tick_p95_ms < 0.0 {
                return invalid("tickP95Ms must be a finite, non-negative number");
            }
            if self.node.capacity_of(&room.mode).is_none() {
                return invalid("a room's mode must be one the node lists");
            }
            if let Some(Err(reason)) = room.lobby.as_ref().map(LobbyStatus::validate) {
                return invalid(reason);
            }
        }
        Ok(())
    }
}

/// A reserved seat: where the player goes, and the reservation that holds the seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub room_id: RoomId,
    pub mode: GameMode,
    pub node_id: NodeId,
    pub region: Region,
    pub public_url: String,
    /// The reservation id; sign it into the join token as its nonce.
    pub reservation: Nonce,
    pub reservation_expires_at_ms: u64,
    /// True when the matchmaker opened this room; the node creates it on the first valid join.
    pub new_room: bool,
}

impl Placement {
    /// `<public_url>/api/room/<room_id>`.
    pub fn ws_url(&self) -> String {
        format!(
            "{}/api/room/{}",
            self.public_url.trim_end_matches('/'),
            self.room_id
        )
    }

    /// Claims for this seat's join token. The token never outlives the reservation.
    pub fn join_claims(
        &self,
        player_id: &str,
        player_name: &str,
        token_ttl: Duration,
        now_ms: u64,
    ) -> JoinClaims {
        let token_expiry = now_ms.saturating_add(duration_ms(token_ttl));
        JoinClaims {
            player_id: player_id.to_owned(),
            player_name: player_name.to_owned(),
            room_id: self.room_id.to_string(),
            node_id: self.node_id.to_string(),
            expires_at_ms: token_expiry.min(self.reservation_expires_at_ms),
            nonce: self.reservation,
            mode: self.mode.to_string(),
            role: 0,
            team: None,
            party: None,
            cosmetics: Vec::new(),
            account: false,
            host: false,
            private: false,
            rules: None,
            password: false,
            password_hash: None,
        }
    }
}

/// A room in a region listing, with its live reservations.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEntry {
    pub status: RoomStatus,
    pub reserved: u32,
    /// Opened by the matchmaker, not yet reported by its node.
    pub pending: bool,
}

/// Everything the directory holds about one region (metrics, admin, the autoscaler). Reads the
/// whole region: never call it per matchmake.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionSnapshot {
    pub region: Region,
    /// Nodes with their effective state (DRAINING if the node or the matchmaker says so).
    pub nodes: Vec<NodeStatus>,
    pub rooms: Vec<RoomEntry>,
}

impl RegionSnapshot {
    pub fn room(&self, room_id: &RoomId) -> Option<&RoomEntry> {
        self.rooms
            .iter()
            .find(|entry| &entry.status.room_id == room_id)
    }
}

/// Directory failures (infrastructure or bad input), as opposed to placement outcomes.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid heartbeat: {0}")]
    InvalidHeartbeat(String),
    #[error("directory store timed out during {operation}")]
    Timeout { operation: &'static str },
    #[error("directory store failed during {operation}: {source}")]
    Store {
        operation: &'static str,
        #[source]
        source: redis::RedisError,
    },
    #[error("directory store returned an unexpected reply during {operation}")]
    UnexpectedReply { operation: &'static str },
    /// The call was not sent: no connection (reconnecting), the circuit breaker is open, or too
    /// many calls are in flight. Answered at once so callers shed load instead of queueing.
    #[error("directory store unavailable during {operation}: {reason}")]
    Unavailable {
        operation: &'static str,
        reason: &'static str,
    },
}

/// Why a matchmake did not produce a seat. Map: conflict → 409, no capacity/contended → 503.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("room {requested} cannot take the player ({reason:?})")]
    OverrideConflict {
        requested: RoomId,
        reason: ConflictReason,
        suggested: Option<RoomId>,
    },
    #[error("no capacity in any acceptable region")]
    NoCapacity { retry_after_s: u32 },
    /// Every attempt lost its reservation race (extreme contention); retry shortly.
    #[error("lost the seat race {attempts} times")]
    Contended { attempts: u32 },
    /// The request named a game mode this matchmaker does not place.
    #[error("unknown game mode")]
    UnknownMode,
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl MatchError {
    /// Stable code for the HTTP error body and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            MatchError::OverrideConflict {
                reason: ConflictReason::Full,
                ..
            } => "room_full",
            MatchError::OverrideConflict {
                reason: ConflictReason::Draining,
                ..
            } => "room_draining",
            MatchError::OverrideConflict {
                reason: ConflictReason::NotJoinable,
                ..
            } => "room_not_joinable",
            MatchError::OverrideConflict {
                reason: ConflictReason::Unknown,
                ..
            } => "room_unknown",
            MatchError::NoCapacity { .. } => "no_capacity",
            MatchError::Contended { .. } => "contended",
            MatchError::UnknownMode => "unknown_mode",
            MatchError::Directory(_) => "directory_unavailable",
        }
    }

    /// HTTP status: 409 for override conflicts (with `suggested`), 400 for an unknown mode,
    /// 503 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            MatchError::OverrideConflict { .. } => 409,
            MatchError::UnknownMode => 400,
            _ => 503,
        }
    }

    /// `Retry-After` seconds for the 503s (1 s after a lost race or a directory fault).
    pub fn retry_after_s(&self) -> Option<u32> {
        match self {
            MatchError::OverrideConflict { .. } | MatchError::UnknownMode => None,
            MatchError::NoCapacity { retry_after_s } => Some(*retry_after_s),
            MatchError::Contended { .. } | MatchError::Directory(_) => Some(1),
        }
    }
}

/// What a matchmake asks for (the body of `POST /api/matchmake`, minus player identity).
pub type MatchRequest = PlacementRequest;

/// Settings of a directory instance (not of placement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// How long a confirmed seat keeps counting; at least two heartbeat intervals.
    pub confirmed_seat_hold_ms: u64,
}

impl Default for DirectoryOptions {
    fn default() -> DirectoryOptions {
        DirectoryOptions {
            confirmed_seat_hold_ms: 5_000,
        }
    }
}

/// A boxed, `Send` future: what the trait's methods return, so `Arc<dyn RoomDirectory>` works
/// from axum handlers.
pub type DirectoryFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The room directory, in-process ([`crate::InMemoryDirectory`]) or on Redis
/// ([`crate::RedisDirectory`]). Every method takes the caller's clock as `now_ms`.
pub trait RoomDirectory: Send + Sync {
    /// Publishes a node and all its rooms; everything expires `ttl` after this heartbeat unless
    /// the next one arrives. Rooms the node no longer lists are removed at once. `now_ms` must
    /// be read before the rooms were sampled: seats confirmed at or before it stop counting,
    /// because the sample's `humans` includes their players.
    fn heartbeat<'a>(
        &'a self,
        heartbeat: &'a Heartbeat,
        ttl: Duration,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>>;

    /// No new rooms or players on this node from now on, whatever its heartbeats say, until it is
    /// removed or expires. `false` if the node is unknown.
    fn mark_node_draining<'a>(
        &'a self,
        node_id: &'a NodeId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>>;

    /// Places the player and reserves the seat, as one atomic step with respect to other
    /// matchmakes: a room never gets more than the hard cap of humans + reservations.
    fn matchmake<'a>(
        &'a self,
        request: &'a MatchRequest,
        policy: &'a PlacementPolicy,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Placement, MatchError>>;

    /// The node saw the player join at `now_ms`: the seat keeps counting only until a heartbeat
    /// sampled at or after `now_ms` (which includes the player in `humans`), and at most
    /// `confirmed_seat_hold_ms`. `false` if the reservation is unknown or already expired.
    fn confirm_seat<'a>(
        &'a self,
        room_id: &'a RoomId,
        reservation: &'a Nonce,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>>;

    /// Live reservations of one room (seats the matchmaker promised to token holders who have
    /// not joined yet). A node asks before seating a player without a token.
    fn reserved_seats<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<u32, DirectoryError>>;

    /// The whole region, for metrics and admin. O(region): never per matchmake.
    fn region_snapshot<'a>(
        &'a self,
        region: &'a Region,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<RegionSnapshot, DirectoryError>>;

    /// Up to `count` lobbies (rooms whose status has a lobby) of one pool, in room id order,
    /// after `after` (exclusive): the lobby browser's page primitive (`crate::lobby`). Reads
    /// the pool's lobby index, never every room.
    fn lobby_rooms<'a>(
        &'a self,
        region: &'a Region,
        mode: &'a GameMode,
        after: Option<&'a RoomId>,
        count: usize,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Vec<RoomStatus>, DirectoryError>>;

    /// One room's last reported status (`None`: unknown or expired; a room the matchmaker
    /// opened that its node has not reported yet has no lobby yet).
    fn room_status<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Option<RoomStatus>, DirectoryError>>;

    /// Forgets a node and its rooms now (clean shutdown, or the autoscaler deleted it).
    fn remove_node<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>>;

    /// A cheap beat between full heartbeats: the node stays in placement for `liveness` more
    /// (its rooms keep the heartbeat TTL), so a node that stops beating leaves placement after
    /// `liveness`, not after the TTL. `Ok(false)` when the directory does not know the node (it
    /// expired, or the store restarted empty): the caller should publish a full heartbeat now.
    /// The in-process directory lives in the node's own process and ignores it.
    fn keep_alive<'a>(
        &'a self,
        _node_id: &'a NodeId,
        _liveness: Duration,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async { Ok(true) })
    }

    /// Changes each time the directory's store connection is established again after a loss
    /// (the store may have restarted empty): nodes re-publish everything at once when it does.
    /// `None` for a directory without a connection (in-process).
    fn connection_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat_json() -> &'static str {
        r#"{"node":{"nodeId":"node-a","region":"us-east","publicUrl":"ws://127.0.0.1:9001",
            "state":"ACTIVE","roomCapacity":8,"rooms":1,"humans":3},
            "rooms":[{"roomId":"us-east-1","region":"us-east","nodeId":"node-a","humans":3,
            "bots":20,"state":"ACTIVE","tickP95Ms":4.5,"joinable":true}]}"#
    }

    #[test]
    fn heartbeat_json_is_camel_case_with_upper_case_states() {
        let heartbeat: Heartbeat = serde_json::from_str(heartbeat_json()).unwrap();
        assert_eq!(heartbeat.rooms[0].state, RoomState::Active);
        assert_eq!(heartbeat.node.room_capacity, 8);
        heartbeat.validate().unwrap();
        let text = serde_json::to_string(&heartbeat).unwrap();
        assert!(
            text.contains("\"tickP95Ms\":4.5") && text.contains("\"state\":\"ACTIVE\""),
            "{text}"
        );
    }

    #[test]
    fn planning_document_field_names_are_accepted() {
        let room: RoomStatus = serde_json::from_str(
            r#"{"roomId":"r1","region":"us-east","instanceId":"n1","humanPlayers":2,
                "botPlayers":1,"state":"WARM","tickLagMs":3.0,"joinable":false}"#,
        )
        .unwrap();
        assert_eq!(
            (room.humans, room.bots, room.state),
            (2, 1, RoomState::Warm)
        );
    }

    #[test]
    fn malformed_heartbeats_are_refused() {
        let good: Heartbeat = serde_json::from_str(heartbeat_json()).unwrap();
        let mut foreign_room = good.clone();
        foreign_room.rooms[0].node_id = NodeId::parse("node-b").unwrap();
        let mut duplicate = good.clone();
        duplicate.rooms.push(duplicate.rooms[0].clone());
        let mut bad_url = good.clone();
        bad_url.node.public_url = "javascript:alert(1)".into();
        let mut nan_tick = good.clone();
        nan_tick.rooms[0].tick_p95_ms = f64::NAN;
        for bad in [foreign_room, duplicate, bad_url, nan_tick] {
            assert!(
                matches!(bad.validate(), Err(DirectoryError::InvalidHeartbeat(_))),
                "{bad:?}"
            );
        }
        assert!(
            serde_json::from_str::<Heartbeat>(&heartbeat_json().replace("us-east-1", "bad id"))
                .is_err()
        );
    }

    #[test]
    fn placement_urls_and_claims() {
        let placement = Placement {
            room_id: RoomId::parse("us-east-1").unwrap(),
            node_id: NodeId::parse("node-a").unwrap(),
            region: Region::parse("us-east").unwrap(),
            public_url: "wss://n1.example.com/".into(),
            mode: GameMode::arena(),
            reservation: Nonce([7; 16]),
            reservation_expires_at_ms: 10_000,
            new_room: false,
        };
        assert_eq!(
            placement.ws_url(),
            "wss://n1.example.com/api/room/us-east-1"
        );
        let claims = placement.join_claims("p1", "Ann", Duration::from_secs(20), 1_000);
        assert_eq!(
            claims.expires_at_ms, 10_000,
            "never outlives the reservation"
        );
        assert_eq!(claims.nonce, placement.reservation);
        let claims = placement.join_claims("p1", "Ann", Duration::from_secs(2), 1_000);
        assert_eq!(claims.expires_at_ms, 3_000);
    }
}
