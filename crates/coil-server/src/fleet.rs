//! The node's link to the matchmaker's world: join-token checks, the room directory heartbeat,
//! and drain marking.
//!
//! In the all-in-one shape the directory is in-process and the verifier holds the local
//! matchmaker's public key; in the fleet the directory is Redis and the public key comes from
//! configuration. Either way the node only ever holds a public key: it can check tokens, never
//! mint them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coil_game::Game;
use coil_match::{
    Heartbeat, JoinClaims, JoinRejection, NodeId, NodeState, NodeStatus, Nonce, Region,
    ReplayGuard, RoomDirectory, RoomState as DirectoryRoomState, RoomStatus, TokenVerifier,
    admit_join,
};
use coil_protocol::ErrorCode;

use crate::node::Node;
use crate::room::RoomState;

/// Most unexpired nonces a node remembers. A token lives 15–30 s, so this is ~1,500 joins per
/// second sustained, far above what one node seats.
const REPLAY_GUARD_CAPACITY: usize = 50_000;

/// How the node reaches the directory and checks tokens.
pub struct FleetLink {
    pub directory: Arc<dyn RoomDirectory>,
    pub verifier: TokenVerifier,
    pub replay: ReplayGuard,
    /// What players connect to, e.g. `wss://n1.example.com` (published in heartbeats).
    pub public_url: String,
    pub heartbeat_interval: Duration,
    pub heartbeat_ttl: Duration,
}

impl FleetLink {
    pub fn new(
        directory: Arc<dyn RoomDirectory>,
        verifier: TokenVerifier,
        public_url: String,
        heartbeat_interval: Duration,
        heartbeat_ttl: Duration,
    ) -> FleetLink {
        FleetLink {
            directory,
            verifier,
            replay: ReplayGuard::new(REPLAY_GUARD_CAPACITY),
            public_url,
            heartbeat_interval,
            heartbeat_ttl,
        }
    }

    /// Verifies a v12 join token for this room on this node and burns its nonce.
    pub fn admit(
        &self,
        token: &[u8],
        room: &str,
        node: &str,
    ) -> Result<JoinClaims, (ErrorCode, &'static str)> {
        admit_join(&self.verifier, &self.replay, token, room, node, now_ms()).map_err(|rejection| {
            match rejection {
                JoinRejection::Token(coil_match::TokenError::Expired) => {
                    (ErrorCode::TokenExpired, "join token expired")
                }
                JoinRejection::Token(coil_match::TokenError::WrongRoom) => {
                    (ErrorCode::TokenWrongRoom, "join token is for another room")
                }
                JoinRejection::Token(coil_match::TokenError::Invalid) => {
                    (ErrorCode::TokenInvalid, "join token is invalid")
                }
                JoinRejection::Replay(coil_match::ReplayError::Replayed) => {
                    (ErrorCode::TokenReplayed, "join token was already used")
                }
                JoinRejection::Replay(coil_match::ReplayError::GuardFull) => {
                    (ErrorCode::Internal, "node is overloaded")
                }
            }
        })
    }

    /// Tells the directory the seat was taken, off the join path (a slow directory must not
    /// delay the player's first frames; an unconfirmed seat simply expires).
    pub fn confirm_seat(self: &Arc<Self>, room: &str, nonce: Nonce) {
        let link = self.clone();
        let Ok(room) = coil_match::RoomId::parse(room) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = link.directory.confirm_seat(&room, &nonce, now_ms()).await {
                crate::rate_limited_warn!(cause = %error, "failed to confirm a seat in the directory");
            }
        });
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The node and its rooms as the directory sees them.
pub fn heartbeat<G: Game>(node: &Node<G>, link: &FleetLink) -> Option<Heartbeat> {
    let config = &node.config;
    let node_id = NodeId::parse(&config.node_id).ok()?;
    let region = Region::parse(&config.region).ok()?;
    let draining = node.is_draining();
    let tick_ms = config.tick.as_secs_f64() * 1000.0;
    let mut rooms = Vec::new();
    let mut humans = 0u32;
    for handle in node.rooms() {
        let state = match handle.stats.state() {
            RoomState::Warm => DirectoryRoomState::Warm,
            RoomState::Active => DirectoryRoomState::Active,
            RoomState::Draining => DirectoryRoomState::Draining,
            // An ending room is not published: it takes no one.
            RoomState::Terminated => continue,
        };
        let Ok(room_id) = coil_match::RoomId::parse(handle.id.as_str()) else {
            continue;
        };
        let room_humans = handle.stats.humans() as u32;
        humans += room_humans;
        rooms.push(RoomStatus {
            room_id,
            region: region.clone(),
            node_id: node_id.clone(),
            humans: room_humans,
            bots: handle.stats.bots() as u32,
            state,
            // The room's smoothed tick time or lateness, whichever is worse, in milliseconds.
            tick_p95_ms: f64::from(handle.stats.pressure()) * tick_ms,
            joinable: !draining
                && state != DirectoryRoomState::Draining
                && (room_humans as usize) < config.room_hard_cap,
        });
    }
    Some(Heartbeat {
        node: NodeStatus {
            node_id,
            region,
            public_url: link.public_url.clone(),
            state: if draining {
                NodeState::Draining
            } else {
                NodeState::Active
            },
            room_capacity: config.max_rooms as u32,
            rooms: rooms.len() as u32,
            humans,
        },
        rooms,
    })
}

/// Publishes a heartbeat now. Errors are logged (rate-limited): the next beat retries, and if
/// the node stays silent its entries expire, which is the safe failure.
pub async fn publish<G: Game>(node: &Node<G>, link: &FleetLink) {
    // Read the clock before sampling the rooms: a seat confirmed before this instant is in the
    // sample's `humans`, so the directory may stop counting it (see `RoomDirectory::heartbeat`).
    let sampled_at_ms = now_ms();
    let Some(beat) = heartbeat(node, link) else {
        crate::rate_limited_warn!("NODE_ID or REGION is not a valid directory id; not publishing");
        return;
    };
    if let Err(error) = link
        .directory
        .heartbeat(&beat, link.heartbeat_ttl, sampled_at_ms)
        .await
    {
        crate::rate_limited_warn!(cause = %error, "room heartbeat failed");
    }
}

/// Heartbeats until `stop` fires.
pub async fn heartbeat_loop<G: Game>(
    node: Arc<Node<G>>,
    link: Arc<FleetLink>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(link.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => publish(&node, &link).await,
            _ = stop.changed() => return,
        }
    }
}

/// Marks the node DRAINING in the directory at once (no waiting for the next beat).
pub async fn announce_drain<G: Game>(node: &Node<G>, link: &FleetLink) {
    if let Ok(node_id) = NodeId::parse(&node.config.node_id)
        && let Err(error) = link.directory.mark_node_draining(&node_id, now_ms()).await
    {
        tracing::warn!(cause = %error, "could not mark the node draining in the directory");
    }
    publish(node, link).await;
}

/// Removes the node from the directory when it stops.
pub async fn withdraw<G: Game>(node: &Node<G>, link: &FleetLink) {
    if let Ok(node_id) = NodeId::parse(&node.config.node_id)
        && let Err(error) = link.directory.remove_node(&node_id).await
    {
        tracing::warn!(cause = %error, "could not remove the node from the directory");
    }
}

/// Sets the `coil_directory_*` gauges of each region from the directory (scrape time; one
/// region snapshot per region, never per request). Free seats count every active node's room
/// slots at the soft cap, minus humans and live reservations.
pub async fn export_directory_gauges(
    directory: &dyn RoomDirectory,
    regions: &[Region],
    soft_cap: u32,
) {
    use metrics::gauge;
    for region in regions {
        let snapshot = match tokio::time::timeout(
            Duration::from_secs(1),
            directory.region_snapshot(region, now_ms()),
        )
        .await
        {
            Ok(Ok(snapshot)) => snapshot,
            _ => continue,
        };
        let label = region.to_string();
        let mut rooms = [0u64; 4];
        let (mut humans, mut reserved, mut warm) = (0u64, 0u64, 0u64);
        for entry in &snapshot.rooms {
            let index = match entry.status.state {
                DirectoryRoomState::Warm => 0,
                DirectoryRoomState::Active => 1,
                DirectoryRoomState::Draining => 2,
                DirectoryRoomState::Terminated => 3,
            };
            rooms[index] += 1;
            humans += u64::from(entry.status.humans);
            reserved += u64::from(entry.reserved);
            if entry.status.state == DirectoryRoomState::Warm && entry.status.joinable {
                warm += 1;
            }
        }
        let (mut active_nodes, mut draining_nodes, mut seats) = (0u64, 0u64, 0u64);
        for node in &snapshot.nodes {
            match node.state {
                NodeState::Active => {
                    active_nodes += 1;
                    seats += u64::from(node.room_capacity) * u64::from(soft_cap);
                }
                NodeState::Draining => draining_nodes += 1,
            }
        }
        for (state, count) in ["warm", "active", "draining"].iter().zip(rooms) {
            gauge!("coil_directory_rooms", "region" => label.clone(), "state" => *state)
                .set(count as f64);
        }
        gauge!("coil_directory_humans", "region" => label.clone()).set(humans as f64);
        gauge!("coil_directory_warm_rooms", "region" => label.clone()).set(warm as f64);
        gauge!("coil_directory_seats_free", "region" => label.clone())
            .set(seats.saturating_sub(humans + reserved) as f64);
        gauge!("coil_directory_nodes", "region" => label.clone(), "state" => "active")
            .set(active_nodes as f64);
        gauge!("coil_directory_nodes", "region" => label, "state" => "draining")
            .set(draining_nodes as f64);
    }
}
