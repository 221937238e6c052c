//! The node's link to the matchmaker's world: join-token checks, the room directory heartbeat,
//! and drain marking.
//!
//! In the all-in-one shape the directory is in-process and the verifier holds the local
//! matchmaker's public key; in the fleet the directory is Redis and the public key comes from
//! configuration. Either way the node only ever holds a public key: it can check tokens, never
//! mint them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coil_match::{
    Heartbeat, JoinClaims, JoinRejection, LobbyStatus, ModeCapacity, NodeId, NodeState, NodeStatus,
    Nonce, Region, ReplayGuard, RoomDirectory, RoomState, RoomStatus, TokenVerifier, admit_join,
};
use coil_protocol::ErrorCode;

use crate::node::Node;

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

    /// Live reservations of `room` (seats a join without a token must leave free). A directory
    /// that does not answer quickly counts as none: the room's hard cap still holds.
    pub async fn reserved_seats(&self, room: &crate::room::RoomId) -> usize {
        match tokio::time::timeout(
            Duration::from_millis(250),
            self.directory.reserved_seats(room, now_ms()),
        )
        .await
        {
            Ok(Ok(reserved)) => reserved as usize,
            Ok(Err(error)) => {
                crate::rate_limited_warn!(cause = %error, "could not count a room's reservations");
                0
            }
            Err(_) => 0,
        }
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
pub fn heartbeat(node: &Node, link: &FleetLink) -> Option<Heartbeat> {
    let config = &node.config;
    let node_id = NodeId::parse(&config.node_id).ok()?;
    let region = Region::parse(&config.region).ok()?;
    let draining = node.is_draining();
    let mut rooms = Vec::new();
    let mut humans = 0u32;
    let mut modes: Vec<ModeCapacity> = node
        .modes
        .iter()
        .map(|entry| ModeCapacity {
            mode: entry.name.clone(),
            room_capacity: entry.max_rooms as u32,
            rooms: 0,
            humans: 0,
        })
        .collect();
    for handle in node.rooms() {
        let state = handle.stats.state();
        // An ending room is not published: it takes no one.
        if state == RoomState::Terminated {
            continue;
        }
        let Some(mode) = node.modes.get(&handle.mode) else {
            continue;
        };
        let tick_ms = mode.room.tick.as_secs_f64() * 1000.0;
        let room_humans = handle.stats.humans() as u32;
        humans += room_humans;
        if let Some(capacity) = modes.iter_mut().find(|c| c.mode == handle.mode) {
            capacity.rooms += 1;
            capacity.humans += room_humans;
        }
        rooms.push(RoomStatus {
            room_id: handle.id.clone(),
            region: region.clone(),
            node_id: node_id.clone(),
            humans: room_humans,
            bots: handle.stats.bots() as u32,
            state,
            // The room's smoothed tick time or lateness, whichever is worse, in milliseconds.
            tick_p95_ms: f64::from(handle.stats.pressure()) * tick_ms,
            // The room's own verdict (its game takes joins, it has a free seat) and the node's.
            joinable: !draining && state != RoomState::Draining && handle.stats.joinable(),
            mode: handle.mode.clone(),
            lobby: handle.stats.lobby().map(|lobby| LobbyStatus {
                map: lobby.map,
                max_players: lobby.max_players,
                players: room_humans,
                phase: handle.stats.phase().as_str().to_owned(),
                host: lobby.host_name,
                host_id: lobby.host_id,
                private: handle.origin.private,
                password: handle.origin.password,
                custom: handle.origin.rules.is_some(),
                password_hash: handle.origin.password_hash.clone(),
            }),
        });
    }
    let default = node.modes.default_mode();
    // The top-level capacity is the default mode's, for readers from before modes.
    let room_capacity = modes
        .iter()
        .find(|c| c.mode == default.name)
        .map_or(0, |c| c.room_capacity);
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
            room_capacity,
            rooms: rooms.len() as u32,
            humans,
            modes,
        },
        rooms,
    })
}

/// Publishes a heartbeat now; true if the directory stored it. Errors are logged
/// (rate-limited): the next beat retries, and if the node stays silent its entries expire,
/// which is the safe failure.
pub async fn publish(node: &Node, link: &FleetLink) -> bool {
    // Read the clock before sampling the rooms: a seat confirmed before this instant is in the
    // sample's `humans`, so the directory may stop counting it (see `RoomDirectory::heartbeat`).
    let sampled_at_ms = now_ms();
    let Some(beat) = heartbeat(node, link) else {
        crate::rate_limited_warn!("NODE_ID or REGION is not a valid directory id; not publishing");
        return false;
    };
    match link
        .directory
        .heartbeat(&beat, link.heartbeat_ttl, sampled_at_ms)
        .await
    {
        Ok(()) => {
            crate::metrics::directory_heartbeat("ok");
            true
        }
        Err(error) => {
            crate::metrics::directory_heartbeat("error");
            crate::rate_limited_warn!(cause = %error, "room heartbeat failed");
            false
        }
    }
}

/// How often a node sends its keep-alive: five per liveness window, so two lost in a row
/// (a slow scheduler, a Redis hiccup) never drop a live node from placement.
pub fn keep_alive_interval(liveness: Duration) -> Duration {
    (liveness / 5).max(Duration::from_millis(50))
}

/// Shortens the node's presence in placement to `liveness` from now (after a full heartbeat,
/// whose TTL is the rooms'), or extends it between heartbeats. Returns false when the
/// directory no longer knows the node: it expired, or the store restarted empty.
async fn keep_alive(node: &Node, link: &FleetLink) -> bool {
    let Ok(node_id) = NodeId::parse(&node.config.node_id) else {
        return true;
    };
    match link
        .directory
        .keep_alive(&node_id, node.config.node_liveness)
        .await
    {
        Ok(known) => known,
        Err(error) => {
            crate::rate_limited_warn!(cause = %error, "directory keep-alive failed");
            // Unknown: the next keep-alive or heartbeat tells.
            true
        }
    }
}

/// A full heartbeat followed by the keep-alive that sets the node's liveness.
async fn publish_all(node: &Node, link: &FleetLink) {
    if publish(node, link).await {
        keep_alive(node, link).await;
    }
}

/// Heartbeats until `stop` fires: every room each `heartbeat_interval`, a keep-alive five
/// times per `node_liveness`, and everything at once when the directory's connection comes
/// back or the directory has forgotten the node (a Redis restarted empty is refilled by the
/// next keep-alive, not the next heartbeat).
pub async fn heartbeat_loop(
    node: Arc<Node>,
    link: Arc<FleetLink>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(link.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pulse = tokio::time::interval(keep_alive_interval(node.config.node_liveness));
    pulse.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reconnected = link.directory.connection_changes();
    loop {
        tokio::select! {
            _ = ticker.tick() => publish_all(&node, &link).await,
            _ = pulse.tick() => {
                if !keep_alive(&node, &link).await {
                    tracing::info!("the directory forgot this node; publishing every room now");
                    publish_all(&node, &link).await;
                }
            }
            changed = async {
                match reconnected.as_mut() {
                    Some(changes) => changes.changed().await,
                    None => std::future::pending().await,
                }
            } => {
                if changed.is_err() {
                    // The directory is gone (shutting down): no more reconnects to wait for.
                    reconnected = None;
                    continue;
                }
                tracing::info!("directory connection restored; publishing every room now");
                publish_all(&node, &link).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Marks the node DRAINING in the directory at once (no waiting for the next beat).
pub async fn announce_drain(node: &Node, link: &FleetLink) {
    if let Ok(node_id) = NodeId::parse(&node.config.node_id)
        && let Err(error) = link.directory.mark_node_draining(&node_id, now_ms()).await
    {
        tracing::warn!(cause = %error, "could not mark the node draining in the directory");
    }
    publish(node, link).await;
}

/// Removes the node from the directory when it stops.
pub async fn withdraw(node: &Node, link: &FleetLink) {
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
    policy: &coil_match::PlacementPolicy,
) {
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
            rooms[entry.status.state.index()] += 1;
            humans += u64::from(entry.status.humans);
            reserved += u64::from(entry.reserved);
            if entry.status.state == RoomState::Warm && entry.status.joinable {
                warm += 1;
            }
        }
        let (mut active_nodes, mut draining_nodes, mut seats) = (0u64, 0u64, 0u64);
        for node in &snapshot.nodes {
            match node.state {
                NodeState::Active => {
                    active_nodes += 1;
                    for capacity in node.capacities() {
                        let soft_cap = policy.caps(&capacity.mode).map_or(0, |caps| caps.soft_cap);
                        seats += u64::from(capacity.room_capacity) * u64::from(soft_cap);
                    }
                }
                NodeState::Draining => draining_nodes += 1,
            }
        }
        crate::metrics::directory_region(
            label,
            crate::metrics::DirectoryFigures {
                rooms_by_state: rooms,
                humans,
                warm_rooms: warm,
                seats_free: seats.saturating_sub(humans + reserved),
                active_nodes,
                draining_nodes,
            },
        );
    }
}
