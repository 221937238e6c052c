//! Placement: which room a player should go to, as a pure function of a directory snapshot.
//!
//! Owns the rules of the issue text, in order: a room override if that room can take the player
//! (else a conflict with a suggestion); otherwise, region by region (preferred, then the nearest
//! others), the fullest joinable room below the soft cap, else an empty (WARM) room, else a new
//! room on the least-loaded node with a free room slot; a region hands out no more than
//! `1 - spare_fraction` of its seats; DRAINING rooms and nodes receive no one. Also owns why a
//! player got its region ([`RegionReason`]: preferred, neighbour, fallback, room). A node that
//! stopped beating is not in the snapshot at all: the directory drops it after its liveness.
//!
//! Must not do IO, read the clock or draw random numbers: the directory gathers the snapshot,
//! makes the room id and reserves the seat atomically, re-running placement if it lost a race.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::directory::{NodeState, RoomState};
use crate::ids::{GameMode, NodeId, Region, RoomId};

/// Tunables of placement and seat reservation. Every timeout is configurable on purpose
/// (GameLift's fixed 60 s reservation is a standing complaint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementPolicy {
    /// The matchmaker stops placing players in a room at this many humans (+ reservations).
    pub soft_cap: u32,
    /// Nothing ever puts more than this many humans (+ reservations) in a room; room overrides
    /// (parties, reconnects) may fill up to here.
    pub hard_cap: u32,
    /// Share of a region's seats never handed to fresh players, kept for reconnect storms and
    /// parties while the autoscaler adds nodes.
    pub spare_fraction: f64,
    /// Used when a request names no region or a malformed one.
    pub default_region: Region,
    /// For each region, the others in order of distance; placement tries them after the preferred.
    pub nearest_regions: BTreeMap<Region, Vec<Region>>,
    /// A room whose tick p95 is above this gets no fresh players (its node is struggling).
    pub max_tick_p95_ms: f64,
    /// `Retry-After` of a 503 when no region has capacity.
    pub retry_after_s: u32,
    /// How long a seat stays reserved when the player never shows up. Must outlive the join token.
    pub seat_reservation_ttl_ms: u64,
    /// How many rooms/nodes per region and kind the directory reads for one placement.
    pub candidates_per_region: usize,
    /// Placement + reservation attempts before a matchmake gives up on a race.
    pub max_attempts: u32,
    /// Caps of modes other than the arena (whose caps are `soft_cap` and `hard_cap`). A mode
    /// neither here nor the arena is unknown to this matchmaker: it places no one into it.
    #[serde(default)]
    pub modes: BTreeMap<GameMode, ModeCaps>,
}

/// A mode's room caps, as placement applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeCaps {
    pub soft_cap: u32,
    pub hard_cap: u32,
}

impl Default for PlacementPolicy {
    fn default() -> PlacementPolicy {
        PlacementPolicy {
            soft_cap: 120,
            hard_cap: 140,
            spare_fraction: 0.15,
            default_region: Region::parse("local").unwrap_or_else(|_| unreachable!()),
            nearest_regions: BTreeMap::new(),
            max_tick_p95_ms: 40.0,
            retry_after_s: 5,
            seat_reservation_ttl_ms: 30_000,
            candidates_per_region: 4,
            max_attempts: 8,
            modes: BTreeMap::new(),
        }
    }
}

impl PlacementPolicy {
    /// The caps of `mode`, or `None` for a mode this matchmaker does not place.
    pub fn caps(&self, mode: &GameMode) -> Option<ModeCaps> {
        match self.modes.get(mode) {
            Some(caps) => Some(*caps),
            None if mode.as_str() == GameMode::DEFAULT => Some(ModeCaps {
                soft_cap: self.soft_cap,
                hard_cap: self.hard_cap,
            }),
            None => None,
        }
    }

    /// Every mode this matchmaker places, the arena first.
    pub fn known_modes(&self) -> Vec<GameMode> {
        let mut modes = vec![GameMode::arena()];
        modes.extend(
            self.modes
                .keys()
                .filter(|m| m.as_str() != GameMode::DEFAULT)
                .cloned(),
        );
        modes
    }

    /// The caps placement applies to a request (a request for an unknown mode is refused by
    /// the matchmaker before placement; here it gets the arena's).
    fn caps_for(&self, request: &PlacementRequest) -> ModeCaps {
        self.caps(&request.mode).unwrap_or(ModeCaps {
            soft_cap: self.soft_cap,
            hard_cap: self.hard_cap,
        })
    }

    /// Regions in the order placement tries them: preferred (or default), then its neighbours.
    ///
    /// A region this policy does not know (neither the default nor a key of `nearest_regions`)
    /// counts as no preference: a client asking for `"mars"`, or for `"us-east"` from an
    /// all-in-one server whose only region is `"local"`, is still placed.
    pub fn region_order(&self, preferred: Option<&Region>) -> Vec<Region> {
        let known = |region: &&Region| {
            **region == self.default_region || self.nearest_regions.contains_key(*region)
        };
        let first = preferred
            .filter(known)
            .unwrap_or(&self.default_region)
            .clone();
        let mut order = vec![first.clone()];
        for region in self.nearest_regions.get(&first).into_iter().flatten() {
            if !order.contains(region) {
                order.push(region.clone());
            }
        }
        order
    }

    /// Why a player placed in `placed` got that region (the matchmake answer's `regionReason`).
    /// A region this policy does not serve counts as no preference, as in [`Self::region_order`].
    pub fn region_reason(
        &self,
        preferred: Option<&Region>,
        room_override: bool,
        placed: &Region,
    ) -> RegionReason {
        if room_override {
            return RegionReason::Room;
        }
        let known = preferred.filter(|region| {
            **region == self.default_region || self.nearest_regions.contains_key(*region)
        });
        match known {
            Some(region) if region == placed => RegionReason::Preferred,
            Some(_) => RegionReason::Neighbour,
            None => RegionReason::Fallback,
        }
    }

    /// Seats a region may hand to fresh players: `capacity × (1 − spare)`, rounded down.
    pub fn placeable_seats(&self, seat_capacity: u64) -> u64 {
        let spare = self.spare_fraction.clamp(0.0, 1.0);
        (seat_capacity as f64 * (1.0 - spare)).floor() as u64
    }
}

/// Why a player got the region it got. Wire form: `"preferred"`, `"neighbour"`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RegionReason {
    /// The region the player asked for.
    Preferred,
    /// The player asked for a region this matchmaker serves, which had no room for it (full,
    /// or every node there gone); it got one of that region's neighbours.
    Neighbour,
    /// The player asked for no region, or one this matchmaker does not serve: it got the
    /// default region (or one of the default's neighbours).
    Fallback,
    /// The player asked for a room (`roomOverride`): the region is that room's.
    Room,
}

impl RegionReason {
    /// The wire form, also used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionReason::Preferred => "preferred",
            RegionReason::Neighbour => "neighbour",
            RegionReason::Fallback => "fallback",
            RegionReason::Room => "room",
        }
    }
}

/// One room as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomCandidate {
    pub room_id: RoomId,
    pub node_id: NodeId,
    pub region: Region,
    pub state: RoomState,
    pub joinable: bool,
    pub humans: u32,
    /// Live (unexpired, still counting) seat reservations.
    pub reserved: u32,
    pub tick_p95_ms: f64,
    pub node_state: NodeState,
    pub mode: GameMode,
    /// A private lobby: only a `room_override` (a lobby join the API allowed) gets in.
    pub private: bool,
}

impl RoomCandidate {
    /// Seats taken: humans plus reservations.
    pub fn occupancy(&self) -> u32 {
        self.humans.saturating_add(self.reserved)
    }

    fn open_for_anyone(&self) -> bool {
        matches!(self.state, RoomState::Warm | RoomState::Active)
            && self.node_state == NodeState::Active
    }

    fn open_for_fresh_players(&self, policy: &PlacementPolicy, caps: ModeCaps) -> bool {
        self.open_for_anyone()
            && self.joinable
            && !self.private
            && self.tick_p95_ms <= policy.max_tick_p95_ms
            && self.occupancy() < caps.soft_cap
    }
}

/// One node as placement sees it (for opening a new room of the request's mode).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCandidate {
    pub node_id: NodeId,
    pub state: NodeState,
    /// Rooms of the request's mode the node may run.
    pub room_capacity: u32,
    /// Rooms of that mode the node runs plus those the matchmaker opened there that it has not
    /// reported yet.
    pub rooms: u32,
    /// Humans on the whole node (every mode): new rooms go to the least-loaded node.
    pub humans: u32,
}

/// What the directory read about one region, for the request's mode: its rooms of that mode,
/// and its nodes with their room capacity for that mode. `rooms` and `nodes` may be only the top
/// candidates (the directory is indexed); the seat totals cover the whole region and mode.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    pub region: Region,
    pub rooms: Vec<RoomCandidate>,
    pub nodes: Vec<NodeCandidate>,
    /// Σ over ACTIVE nodes of `room_capacity (of the mode) × soft_cap (of the mode)`.
    pub seat_capacity: u64,
    /// Σ over rooms on ACTIVE nodes of humans + reservations.
    pub seats_committed: u64,
}

/// Everything placement needs, gathered by the directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlacementSnapshot {
    pub regions: Vec<RegionView>,
    /// The room named by `room_override`, wherever it is; `None` if it does not exist.
    pub override_room: Option<RoomCandidate>,
}

/// What the player asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlacementRequest {
    pub preferred_region: Option<Region>,
    pub room_override: Option<RoomId>,
    /// Only rooms of this mode are candidates; a new room is opened in this mode.
    pub mode: GameMode,
    /// Open a new room, never an existing one (creating a custom lobby).
    pub fresh_room: bool,
    /// The new room is a private lobby: quick play never fills it, not even in the second
    /// before its node first reports it.
    pub private: bool,
}

/// Why an override could not be honoured (all answered with 409 and a suggestion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConflictReason {
    /// At the hard cap (humans + reservations).
    Full,
    /// The room or its node is DRAINING (or the room is TERMINATED).
    Draining,
    /// The node says the room takes no joins right now.
    NotJoinable,
    /// No such room in the directory (never existed, or expired).
    Unknown,
}

/// Placement's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    ExistingRoom {
        room_id: RoomId,
        node_id: NodeId,
        region: Region,
    },
    /// A new room of the request's mode.
    NewRoom { node_id: NodeId, region: Region },
    /// 409: the override room cannot take the player; `suggested` is where automatic placement
    /// would go (`None`: matchmake without an override, a new room would be opened).
    OverrideConflict {
        requested: RoomId,
        reason: ConflictReason,
        suggested: Option<RoomId>,
    },
    /// 503 with `Retry-After`.
    NoCapacity { retry_after_s: u32 },
}

/// The placement rules. Pure: same snapshot, same answer.
pub fn place(
    snapshot: &PlacementSnapshot,
    request: &PlacementRequest,
    policy: &PlacementPolicy,
) -> Decision {
    if let Some(requested) = &request.room_override {
        return place_override(snapshot, request, requested, policy);
    }
    place_automatically(snapshot, request, policy)
}

fn place_override(
    snapshot: &PlacementSnapshot,
    request: &PlacementRequest,
    requested: &RoomId,
    policy: &PlacementPolicy,
) -> Decision {
    let room = snapshot
        .override_room
        .as_ref()
        .filter(|room| &room.room_id == requested);
    let caps = policy.caps_for(request);
    let reason = match room {
        None => ConflictReason::Unknown,
        // A room of another mode is, for this request, not a room it can join.
        Some(room) if room.mode != request.mode => ConflictReason::NotJoinable,
        Some(room) if !room.open_for_anyone() => ConflictReason::Draining,
        Some(room) if !room.joinable => ConflictReason::NotJoinable,
        Some(room) if room.occupancy() >= caps.hard_cap => ConflictReason::Full,
        // Parties and reconnects may use the spare: no soft cap, no regional buffer.
        Some(room) => {
            return Decision::ExistingRoom {
                room_id: room.room_id.clone(),
                node_id: room.node_id.clone(),
                region: room.region.clone(),
            };
        }
    };
    let suggested = match place_automatically(snapshot, request, policy) {
        Decision::ExistingRoom { room_id, .. } if &room_id != requested => Some(room_id),
        _ => None,
    };
    Decision::OverrideConflict {
        requested: requested.clone(),
        reason,
        suggested,
    }
}

fn place_automatically(
    snapshot: &PlacementSnapshot,
    request: &PlacementRequest,
    policy: &PlacementPolicy,
) -> Decision {
    for region in policy.region_order(request.preferred_region.as_ref()) {
        let Some(view) = snapshot.regions.iter().find(|view| view.region == region) else {
            continue;
        };
        if view.seats_committed >= policy.placeable_seats(view.seat_capacity) {
            continue;
        }
        if let Some(decision) = place_in_region(view, request, policy) {
            return decision;
        }
    }
    Decision::NoCapacity {
        retry_after_s: policy.retry_after_s,
    }
}

fn place_in_region(
    view: &RegionView,
    request: &PlacementRequest,
    policy: &PlacementPolicy,
) -> Option<Decision> {
    let caps = policy.caps_for(request);
    let open_rooms = view.rooms.iter().filter(|room| {
        !request.fresh_room
            && room.region == view.region
            && room.mode == request.mode
            && room.open_for_fresh_players(policy, caps)
    });
    // Fullest first so rooms fill and empty ones can be reaped; ties go to the healthier tick,
    // then the smaller id, so the answer never depends on the snapshot's order.
    let best_room = |rooms: &mut dyn Iterator<Item = &RoomCandidate>| {
        rooms
            .min_by(|a, b| {
                b.occupancy()
                    .cmp(&a.occupancy())
                    .then(a.tick_p95_ms.total_cmp(&b.tick_p95_ms))
                    .then(a.room_id.cmp(&b.room_id))
            })
            .cloned()
    };
    let occupied = best_room(&mut open_rooms.clone().filter(|room| room.occupancy() > 0));
    // Among empty rooms, WARM ones (ready, never used) before ACTIVE ones that emptied out.
    let empty = best_room(
        &mut open_rooms
            .clone()
            .filter(|room| room.occupancy() == 0 && room.state == RoomState::Warm),
    )
    .or_else(|| best_room(&mut open_rooms.filter(|room| room.occupancy() == 0)));
    if let Some(room) = occupied.or(empty) {
        return Some(Decision::ExistingRoom {
            room_id: room.room_id,
            node_id: room.node_id,
            region: room.region,
        });
    }
    view.nodes
        .iter()
        .filter(|node| node.state == NodeState::Active && node.rooms < node.room_capacity)
        .min_by(|a, b| {
            a.humans
                .cmp(&b.humans)
                .then(a.rooms.cmp(&b.rooms))
                .then(a.node_id.cmp(&b.node_id))
        })
        .map(|node| Decision::NewRoom {
            node_id: node.node_id.clone(),
            region: view.region.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn room(id: &str, humans: u32) -> RoomCandidate {
        RoomCandidate {
            room_id: RoomId::parse(id).unwrap(),
            node_id: NodeId::parse("node-a").unwrap(),
            region: region("us-east"),
            state: if humans == 0 {
                RoomState::Warm
            } else {
                RoomState::Active
            },
            joinable: true,
            humans,
            reserved: 0,
            tick_p95_ms: 10.0,
            node_state: NodeState::Active,
            mode: GameMode::arena(),
            private: false,
        }
    }

    fn node(id: &str, rooms: u32, humans: u32) -> NodeCandidate {
        NodeCandidate {
            node_id: NodeId::parse(id).unwrap(),
            state: NodeState::Active,
            room_capacity: 10,
            rooms,
            humans,
        }
    }

    /// A region with plenty of seats left so the spare rule stays out of the way.
    fn view(name: &str, rooms: Vec<RoomCandidate>, nodes: Vec<NodeCandidate>) -> RegionView {
        let rooms = rooms
            .into_iter()
            .map(|room| RoomCandidate {
                region: region(name),
                ..room
            })
            .collect();
        RegionView {
            region: region(name),
            rooms,
            nodes,
            seat_capacity: 10_000,
            seats_committed: 0,
        }
    }

    fn policy() -> PlacementPolicy {
        let mut nearest = BTreeMap::new();
        nearest.insert(
            region("us-east"),
            vec![region("us-west"), region("eu-central")],
        );
        PlacementPolicy {
            default_region: region("us-east"),
            nearest_regions: nearest,
            ..PlacementPolicy::default()
        }
    }

    fn request() -> PlacementRequest {
        PlacementRequest {
            preferred_region: Some(region("us-east")),
            room_override: None,
            mode: GameMode::arena(),
            ..PlacementRequest::default()
        }
    }

    fn snapshot(regions: Vec<RegionView>) -> PlacementSnapshot {
        PlacementSnapshot {
            regions,
            override_room: None,
        }
    }

    fn existing(id: &str) -> impl Fn(&Decision) -> bool + '_ {
        move |decision| matches!(decision, Decision::ExistingRoom { room_id, .. } if room_id.as_str() == id)
    }

    #[test]
    fn fullest_room_below_the_soft_cap_wins() {
        let rooms = vec![
            room("r-10", 10),
            room("r-119", 119),
            room("r-60", 60),
            room("r-0", 0),
        ];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![])]),
            &request(),
            &policy(),
        );
        assert!(existing("r-119")(&decision), "{decision:?}");
    }

    #[test]
    fn reservations_count_toward_fullness_and_the_soft_cap() {
        let mut almost_full = room("r-almost", 100);
        almost_full.reserved = 20; // 120 seats taken: at the soft cap, no more fresh players.
        let mut reserved_more = room("r-reserved", 50);
        reserved_more.reserved = 40; // 90 seats taken beats 80 humans.
        let rooms = vec![almost_full, reserved_more, room("r-80", 80)];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![])]),
            &request(),
            &policy(),
        );
        assert!(existing("r-reserved")(&decision), "{decision:?}");
    }

    #[test]
    fn rooms_at_or_above_the_soft_cap_get_no_fresh_players() {
        let rooms = vec![room("r-120", 120), room("r-135", 135)];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![node("node-a", 2, 255)])]),
            &request(),
            &policy(),
        );
        assert_eq!(
            decision,
            Decision::NewRoom {
                node_id: NodeId::parse("node-a").unwrap(),
                region: region("us-east")
            }
        );
    }

    #[test]
    fn an_empty_warm_room_is_used_before_opening_a_new_room() {
        let rooms = vec![room("r-full", 120), room("r-warm", 0)];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![node("node-b", 0, 0)])]),
            &request(),
            &policy(),
        );
        assert!(existing("r-warm")(&decision), "{decision:?}");
    }

    #[test]
    fn warm_rooms_are_preferred_over_emptied_active_rooms_and_occupied_rooms_over_both() {
        let mut emptied = room("r-emptied", 0);
        emptied.state = RoomState::Active;
        let rooms = vec![emptied.clone(), room("r-warm", 0)];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![])]),
            &request(),
            &policy(),
        );
        assert!(existing("r-warm")(&decision), "{decision:?}");
        let rooms = vec![emptied, room("r-warm", 0), room("r-one", 1)];
        let decision = place(
            &snapshot(vec![view("us-east", rooms, vec![])]),
            &request(),
            &policy(),
        );
        assert!(existing("r-one")(&decision), "{decision:?}");
    }

    #[test]
    fn new_room_goes_to_the_least_loaded_node_with_a_free_room_slot() {
        let mut full_but_idle = node("node-idle-full", 10, 0);
        full_but_idle.room_capacity = 10;
        let nodes = vec![
            node("node-busy", 3, 300),
            full_but_idle,
            node("node-light", 5, 40),
            node("node-mid", 1, 100),
        ];
        let decision = place(
            &snapshot(vec![view("us-east", vec![], nodes)]),
            &request(),
            &policy(),
        );
        assert_eq!(
            decision,
            Decision::NewRoom {
                node_id: NodeId::parse("node-light").unwrap(),
                region: region("us-east")
            }
        );
    }

    #[test]
    fn draining_rooms_and_rooms_on_draining_nodes_receive_no_one() {
        let mut draining_room = room("r-draining", 100);
        draining_room.state = RoomState::Draining;
        let mut on_draining_node = room("r-node-draining", 90);
        on_draining_node.node_state = NodeState::Draining;
        let mut terminated = room("r-terminated", 80);
        terminated.state = RoomState::Terminated;
        let mut draining_node = node("node-draining", 0, 0);
        draining_node.state = NodeState::Draining;
        let decision = place(
            &snapshot(vec![view(
                "us-east",
                vec![draining_room, on_draining_node, terminated, room("r-5", 5)],
                vec![draining_node.clone()],
            )]),
            &request(),
            &policy(),
        );
        assert!(existing("r-5")(&decision), "{decision:?}");
        // With only draining things left, there is no capacity at all.
        let decision = place(
            &snapshot(vec![view("us-east", vec![], vec![draining_node])]),
            &request(),
            &policy(),
        );
        assert_eq!(decision, Decision::NoCapacity { retry_after_s: 5 });
    }

    #[test]
    fn unjoinable_and_overloaded_rooms_get_no_fresh_players() {
        let mut unjoinable = room("r-unjoinable", 100);
        unjoinable.joinable = false;
        let mut overloaded = room("r-slow", 90);
        overloaded.tick_p95_ms = 48.0;
        let decision = place(
            &snapshot(vec![view(
                "us-east",
                vec![unjoinable, overloaded, room("r-3", 3)],
                vec![],
            )]),
            &request(),
            &policy(),
        );
        assert!(existing("r-3")(&decision), "{decision:?}");
    }

    #[test]
    fn the_preferred_region_comes_first_then_the_nearest_others_in_order() {
        let east = view("us-east", vec![room("r-east", 5)], vec![]);
        let west = view("us-west", vec![room("r-west", 100)], vec![]);
        let europe = view("eu-central", vec![room("r-eu", 110)], vec![]);
        let all = snapshot(vec![europe.clone(), west.clone(), east]);
        assert!(existing("r-east")(&place(&all, &request(), &policy())));
        let east_full = view("us-east", vec![room("r-east", 120)], vec![]);
        let spill = snapshot(vec![europe.clone(), west, east_full.clone()]);
        assert!(existing("r-west")(&place(&spill, &request(), &policy())));
        let west_full = view("us-west", vec![], vec![]);
        let far_spill = snapshot(vec![europe, west_full, east_full]);
        assert!(existing("r-eu")(&place(&far_spill, &request(), &policy())));
    }

    #[test]
    fn a_new_room_in_the_preferred_region_beats_an_existing_room_elsewhere() {
        let east = view(
            "us-east",
            vec![room("r-east-full", 120)],
            vec![node("node-east", 1, 120)],
        );
        let west = view("us-west", vec![room("r-west", 10)], vec![]);
        let decision = place(&snapshot(vec![west, east]), &request(), &policy());
        assert_eq!(
            decision,
            Decision::NewRoom {
                node_id: NodeId::parse("node-east").unwrap(),
                region: region("us-east")
            }
        );
    }

    #[test]
    fn no_region_named_uses_the_default_region() {
        let east = view("us-east", vec![room("r-east", 5)], vec![]);
        let other = view("ap-south", vec![room("r-ap", 50)], vec![]);
        let decision = place(
            &snapshot(vec![other, east]),
            &PlacementRequest::default(),
            &policy(),
        );
        assert!(existing("r-east")(&decision), "{decision:?}");
    }

    #[test]
    fn regions_outside_the_nearest_table_are_never_used() {
        let other = view(
            "ap-south",
            vec![room("r-ap", 50)],
            vec![node("node-ap", 0, 0)],
        );
        let decision = place(&snapshot(vec![other]), &request(), &policy());
        assert_eq!(decision, Decision::NoCapacity { retry_after_s: 5 });
    }

    #[test]
    fn the_spare_fraction_of_a_region_is_not_handed_to_fresh_players() {
        // 1,000 seats, 15% spare: 850 placeable. At 849 committed there is one seat left to give.
        let mut east = view("us-east", vec![room("r-east", 50)], vec![]);
        east.seat_capacity = 1_000;
        east.seats_committed = 849;
        assert!(existing("r-east")(&place(
            &snapshot(vec![east.clone()]),
            &request(),
            &policy()
        )));
        east.seats_committed = 850;
        let west = view("us-west", vec![room("r-west", 50)], vec![]);
        assert!(existing("r-west")(&place(
            &snapshot(vec![east.clone(), west]),
            &request(),
            &policy()
        )));
        assert_eq!(
            place(&snapshot(vec![east.clone()]), &request(), &policy()),
            Decision::NoCapacity { retry_after_s: 5 }
        );
        // With no spare required, the same region still places.
        let no_spare = PlacementPolicy {
            spare_fraction: 0.0,
            ..policy()
        };
        assert!(existing("r-east")(&place(
            &snapshot(vec![east]),
            &request(),
            &no_spare
        )));
    }

    #[test]
    fn placeable_seats_rounds_down_and_clamps_silly_fractions() {
        let policy = policy();
        assert_eq!(policy.placeable_seats(120), 102);
        assert_eq!(policy.placeable_seats(0), 0);
        assert_eq!(
            PlacementPolicy {
                spare_fraction: -1.0,
                ..policy.clone()
            }
            .placeable_seats(100),
            100
        );
        assert_eq!(
            PlacementPolicy {
                spare_fraction: 7.0,
                ..policy
            }
            .placeable_seats(100),
            0
        );
    }

    #[test]
    fn no_capacity_anywhere_answers_retry_after() {
        let east = view(
            "us-east",
            vec![room("r-east", 120)],
            vec![node("node-full", 10, 1200)],
        );
        let decision = place(&snapshot(vec![east]), &request(), &policy());
        assert_eq!(decision, Decision::NoCapacity { retry_after_s: 5 });
        assert_eq!(
            place(&snapshot(vec![]), &request(), &policy()),
            Decision::NoCapacity { retry_after_s: 5 }
        );
    }

    fn override_request(id: &str) -> PlacementRequest {
        PlacementRequest {
            room_override: Some(RoomId::parse(id).unwrap()),
            ..request()
        }
    }

    #[test]
    fn override_places_into_a_joinable_room_even_above_the_soft_cap_and_spare() {
        let mut party_room = room("r-party", 130);
        party_room.region = region("eu-central");
        let mut east = view("us-east", vec![room("r-east", 10)], vec![]);
        east.seat_capacity = 100;
        east.seats_committed = 100;
        let snapshot = PlacementSnapshot {
            regions: vec![east],
            override_room: Some(party_room),
        };
        let decision = place(&snapshot, &override_request("r-party"), &policy());
        assert_eq!(
            decision,
            Decision::ExistingRoom {
                room_id: RoomId::parse("r-party").unwrap(),
                node_id: NodeId::parse("node-a").unwrap(),
                region: region("eu-central"),
            }
        );
    }

    #[test]
    fn override_into_a_full_room_conflicts_with_a_suggested_alternative() {
        let mut full = room("r-party", 130);
        full.reserved = 10;
        let snapshot = PlacementSnapshot {
            regions: vec![view(
                "us-east",
                vec![full.clone(), room("r-other", 30)],
                vec![],
            )],
            override_room: Some(full),
        };
        assert_eq!(
            place(&snapshot, &override_request("r-party"), &policy()),
            Decision::OverrideConflict {
                requested: RoomId::parse("r-party").unwrap(),
                reason: ConflictReason::Full,
                suggested: Some(RoomId::parse("r-other").unwrap()),
            }
        );
    }

    #[test]
    fn override_into_draining_unjoinable_or_unknown_rooms_conflicts_with_its_reason() {
        let mut draining = room("r-party", 10);
        draining.state = RoomState::Draining;
        let mut node_draining = room("r-party", 10);
        node_draining.node_state = NodeState::Draining;
        let mut unjoinable = room("r-party", 10);
        unjoinable.joinable = false;
        let cases = [
            (Some(draining), ConflictReason::Draining),
            (Some(node_draining), ConflictReason::Draining),
            (Some(unjoinable), ConflictReason::NotJoinable),
            (None, ConflictReason::Unknown),
            // A snapshot holding some other room than the one requested is treated as unknown.
            (Some(room("r-elsewhere", 1)), ConflictReason::Unknown),
        ];
        for (override_room, expected) in cases {
            let snapshot = PlacementSnapshot {
                regions: vec![view("us-east", vec![], vec![node("node-b", 0, 0)])],
                override_room,
            };
            match place(&snapshot, &override_request("r-party"), &policy()) {
                // The alternative would be a new room, which has no id yet: no suggestion.
                Decision::OverrideConflict {
                    reason,
                    suggested: None,
                    ..
                } => assert_eq!(reason, expected),
                other => panic!("expected a conflict for {expected:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn override_never_suggests_the_room_it_refused() {
        let mut refused = room("r-party", 100);
        refused.joinable = false;
        // Automatic placement would also skip it (unjoinable), and there is nothing else.
        let snapshot = PlacementSnapshot {
            regions: vec![view("us-east", vec![refused.clone()], vec![])],
            override_room: Some(refused),
        };
        assert!(matches!(
            place(&snapshot, &override_request("r-party"), &policy()),
            Decision::OverrideConflict {
                suggested: None,
                reason: ConflictReason::NotJoinable,
                ..
            }
        ));
    }

    #[test]
    fn placement_does_not_depend_on_snapshot_order() {
        let rooms = vec![room("r-b", 50), room("r-a", 50), room("r-c", 49)];
        let mut reversed = rooms.clone();
        reversed.reverse();
        let first = place(
            &snapshot(vec![view("us-east", rooms, vec![])]),
            &request(),
            &policy(),
        );
        let second = place(
            &snapshot(vec![view("us-east", reversed, vec![])]),
            &request(),
            &policy(),
        );
        assert_eq!(first, second);
        assert!(existing("r-a")(&first));
    }

    #[test]
    fn unknown_preferred_regions_count_as_no_preference() {
        let policy = policy();
        let east_first = vec![region("us-east"), region("us-west"), region("eu-central")];
        assert_eq!(policy.region_order(Some(&region("mars"))), east_first);
        assert_eq!(policy.region_order(None), east_first);
        let all_in_one = PlacementPolicy::default();
        assert_eq!(
            all_in_one.region_order(Some(&region("us-east"))),
            vec![region("local")]
        );
        let east = view("us-east", vec![room("r-east", 5)], vec![]);
        let request = PlacementRequest {
            preferred_region: Some(region("mars")),
            ..request()
        };
        assert!(existing("r-east")(&place(
            &snapshot(vec![east]),
            &request,
            &policy
        )));
    }

    #[test]
    fn the_region_reason_says_preferred_neighbour_fallback_or_room() {
        let policy = policy();
        let (east, west) = (region("us-east"), region("us-west"));
        assert_eq!(
            policy.region_reason(Some(&east), false, &east),
            RegionReason::Preferred
        );
        assert_eq!(
            policy.region_reason(Some(&east), false, &west),
            RegionReason::Neighbour
        );
        // Asking for the default region counts as asking, even when it is the default.
        let policy_with_default_only = PlacementPolicy {
            default_region: west.clone(),
            ..policy.clone()
        };
        assert_eq!(
            policy_with_default_only.region_reason(Some(&west), false, &west),
            RegionReason::Preferred
        );
        // Unknown or no region: the matchmaker chose.
        assert_eq!(
            policy.region_reason(Some(&region("mars")), false, &east),
            RegionReason::Fallback
        );
        assert_eq!(
            policy.region_reason(None, false, &west),
            RegionReason::Fallback
        );
        assert_eq!(
            policy.region_reason(Some(&east), true, &west),
            RegionReason::Room
        );
        assert_eq!(
            serde_json::to_string(&RegionReason::Neighbour).unwrap(),
            "\"neighbour\""
        );
        assert_eq!(RegionReason::Fallback.as_str(), "fallback");
    }

    #[test]
    fn region_order_has_no_duplicates() {
        let mut policy = policy();
        policy.nearest_regions.insert(
            region("us-west"),
            vec![region("us-west"), region("us-east"), region("us-east")],
        );
        assert_eq!(
            policy.region_order(Some(&region("us-west"))),
            vec![region("us-west"), region("us-east")]
        );
    }

    #[test]
    fn private_lobbies_get_no_fresh_players_but_a_lobby_join_gets_in() {
        let private = RoomCandidate {
            private: true,
            ..room("lobby", 3)
        };
        let snapshot = snapshot(vec![view(
            "us-east",
            vec![private.clone()],
            vec![node("node-a", 1, 3)],
        )]);
        let quick = place(&snapshot, &request(), &policy());
        assert!(!existing("lobby")(&quick), "{quick:?}");
        let join = PlacementRequest {
            room_override: Some(private.room_id.clone()),
            ..request()
        };
        let with_override = PlacementSnapshot {
            override_room: Some(private),
            ..snapshot
        };
        assert!(existing("lobby")(&place(&with_override, &join, &policy())));
    }

    #[test]
    fn a_fresh_room_request_opens_a_room_even_when_one_has_seats() {
        let snapshot = snapshot(vec![view(
            "us-east",
            vec![room("open", 3)],
            vec![node("node-a", 1, 3)],
        )]);
        let fresh = PlacementRequest {
            fresh_room: true,
            ..request()
        };
        assert!(matches!(
            place(&snapshot, &fresh, &policy()),
            Decision::NewRoom { .. }
        ));
        assert!(existing("open")(&place(&snapshot, &request(), &policy())));
    }
}
