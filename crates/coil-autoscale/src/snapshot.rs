//! The fleet snapshot: what the controller observed, handed to `decide` as a plain value.
//!
//! Owns the input types (`FleetSnapshot`, `RegionSnapshot`, `NodeSnapshot`) and the id
//! newtypes. It must not fetch anything: the live controller fills it from Redis, Prometheus
//! and the server list, the fleet simulation fills it from its model. Every number here is
//! untrusted (a scrape can fail, a node can lie), so the policy sanitizes before use: a
//! non-finite or negative reading counts as zero, which never triggers a scale-out on its own.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one game node (a Hetzner server name or a local process name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl NodeId {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Identifies one region pool (for example `ash` or `fsn1`). The policy decides per region.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(pub String);

impl RegionId {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Where a node is in its life as far as the controller can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// The server exists (create answered) but the node has not heartbeated yet.
    Booting,
    /// Heartbeating and accepting placements.
    Active,
    /// Marked DRAINING: the matchmaker places no one here; players finish or get evicted.
    Draining,
}

/// Rooms on one node, by lifecycle state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomCounts {
    pub warm: u32,
    pub active: u32,
    pub draining: u32,
}

impl RoomCounts {
    pub fn total(&self) -> u32 {
        self.warm
            .saturating_add(self.active)
            .saturating_add(self.draining)
    }
}

/// One node as observed now. Load fields default to zero so a booting node (no metrics yet)
/// can be written as just `{ node, state, created_at_ms }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub node: NodeId,
    pub state: NodeState,
    /// When the server was created (ms since the Unix epoch); drives the boot timeout.
    #[serde(default)]
    pub created_at_ms: u64,
    /// The drain deadline if the node is DRAINING and the controller knows it (for example
    /// after a controller restart, from the directory). `None` lets the policy adopt the node
    /// with a fresh deadline.
    #[serde(default)]
    pub drain_deadline_ms: Option<u64>,
    /// Seats this node offers when it differs from `Policy::seats_per_node` (a fallback server
    /// type after a refused create, say).
    #[serde(default)]
    pub seat_capacity: Option<u32>,
    /// Share of all cores busy, 0..=1.
    #[serde(default)]
    pub cpu_utilization: f64,
    /// Share of memory in use, 0..=1.
    #[serde(default)]
    pub memory_utilization: f64,
    #[serde(default)]
    pub open_connections: u32,
    #[serde(default)]
    pub egress_bytes_per_second: f64,
    #[serde(default)]
    pub tick_p95_ms: f64,
    #[serde(default)]
    pub tick_p99_ms: f64,
    /// Share of ticks that overran the tick budget over the last scrape interval, 0..=1.
    #[serde(default)]
    pub tick_overrun_rate: f64,
    #[serde(default)]
    pub rooms: RoomCounts,
    /// How many rooms this node may hold; 0 means "not reported".
    #[serde(default)]
    pub room_capacity: u32,
    #[serde(default)]
    pub humans: u32,
    #[serde(default)]
    pub bots: u32,
    /// Seats reserved by the matchmaker and not yet used (they count toward the caps).
    #[serde(default)]
    pub seats_reserved: u32,
}

impl NodeSnapshot {
    /// A node with no load at all; tests and simulations fill in what they need.
    pub fn new(node: NodeId, state: NodeState) -> Self {
        Self {
            node,
            state,
            created_at_ms: 0,
            drain_deadline_ms: None,
            seat_capacity: None,
            cpu_utilization: 0.0,
            memory_utilization: 0.0,
            open_connections: 0,
            egress_bytes_per_second: 0.0,
            tick_p95_ms: 0.0,
            tick_p99_ms: 0.0,
            tick_overrun_rate: 0.0,
            rooms: RoomCounts::default(),
            room_capacity: 0,
            humans: 0,
            bots: 0,
            seats_reserved: 0,
        }
    }

    /// People who hold or are about to hold a seat here. Bots are not players: they live in
    /// the room task and vanish with it.
    pub fn players(&self) -> u32 {
        self.humans.saturating_add(self.seats_reserved)
    }

    /// True when deleting the server cannot cut anyone off: no humans, no reserved seats and
    /// no open WebSocket (a connection that has not joined yet still belongs to a person).
    pub fn is_empty_of_players(&self) -> bool {
        self.humans == 0 && self.seats_reserved == 0 && self.open_connections == 0
    }
}

/// One region as observed now. Region totals come from the room directory; when they are
/// missing (zero) the policy falls back to the sum over nodes, and it always uses the larger
/// of the two so a stale aggregate cannot hide players.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionSnapshot {
    pub region: RegionId,
    #[serde(default)]
    pub humans: u32,
    #[serde(default)]
    pub bots: u32,
    #[serde(default)]
    pub rooms_above_soft_cap: u32,
    #[serde(default)]
    pub warm_rooms: u32,
    #[serde(default)]
    pub seats_reserved: u32,
    /// Matchmake requests answered "no capacity" since the last snapshot. This is the only
    /// demand signal a region scaled to zero has (Agones issue #4053: with nothing running
    /// there is nothing to buffer against, so the signal must come from outside the fleet).
    #[serde(default)]
    pub unplaced_requests: u32,
    #[serde(default)]
    pub nodes: Vec<NodeSnapshot>,
}

impl RegionSnapshot {
    pub fn new(region: RegionId) -> Self {
        Self {
            region,
            humans: 0,
            bots: 0,
            rooms_above_soft_cap: 0,
            warm_rooms: 0,
            seats_reserved: 0,
            unplaced_requests: 0,
            nodes: Vec::new(),
        }
    }
}

/// Everything the policy sees in one evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetSnapshot {
    #[serde(default)]
    pub regions: Vec<RegionSnapshot>,
}

/// A reading that is negative, NaN or infinite counts as zero: a broken scrape must not look
/// like pressure.
pub(crate) fn sanitized(reading: f64) -> f64 {
    if reading.is_finite() && reading > 0.0 {
        reading
    } else {
        0.0
    }
}
