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

use crate::ids::{NodeId, Region, RoomId};
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
    /// Most rooms this node will run.
    pub room_capacity: u32,
    pub rooms: u32,
    pub humans: u32,
}

/// The `/internal/room-heartbeat` body: a node and all of its rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub node: NodeStatus,
    pub rooms: Vec<RoomStatus>,
}

impl Heartbeat {
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
        }
        Ok(())
    }
}

/// A reserved seat: where the player goes, and the reservation that holds the seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub room_id: RoomId,
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
            MatchError::Directory(_) => "directory_unavailable",
        }
    }

    /// HTTP status: 409 for override conflicts (with `suggested`), 503 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            MatchError::OverrideConflict { .. } => 409,
            _ => 503,
        }
    }

    /// `Retry-After` seconds for the 503s (1 s after a lost race or a directory fault).
    pub fn retry_after_s(&self) -> Option<u32> {
        match self {
            MatchError::OverrideConflict { .. } => None,
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

    /// The whole region, for metrics and admin. O(region): never per matchmake.
    fn region_snapshot<'a>(
        &'a self,
        region: &'a Region,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<RegionSnapshot, DirectoryError>>;

    /// Forgets a node and its rooms now (clean shutdown, or the autoscaler deleted it).
    fn remove_node<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>>;
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
