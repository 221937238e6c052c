//! In-process room directory: the all-in-one default.
//!
//! Owns a mutex-guarded copy of the same data model as the Redis directory: entries with expiry
//! times and, per *pool* (a region and a game mode), a fill index of placeable rooms (ordered by
//! occupancy), an index of nodes with a free room slot for that mode (ordered by load), and
//! running totals. A room belongs to the pool of its region and mode; a node to one pool per
//! mode it runs. A matchmake reads
//! only the top candidates of these indexes, places, and reserves, all under one short lock, so it
//! is atomic and never loses a race. Must not hold the lock across an `.await` (there is none)
//! and must not scan all rooms per matchmake; a full sweep of expired entries runs at most once
//! per second, from heartbeats.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::directory::{
    DirectoryError, DirectoryFuture, DirectoryOptions, Heartbeat, MatchError, MatchRequest,
    NodeState, NodeStatus, Placement, RegionSnapshot, RoomDirectory, RoomEntry, RoomState,
    RoomStatus, duration_ms,
};
use crate::ids::{GameMode, NodeId, Region, RoomId};
use crate::placement::{
    Decision, NodeCandidate, PlacementPolicy, PlacementSnapshot, RegionView, RoomCandidate, place,
};
use crate::token::Nonce;

const SWEEP_INTERVAL_MS: u64 = 1_000;

/// The smallest valid room id (`-` sorts before digits and letters): `(cap, smallest)` is an
/// exclusive upper bound for "occupancy below cap" in the fill index.
fn smallest_room_id() -> RoomId {
    RoomId::parse("-").unwrap_or_else(|_| unreachable!("'-' is a valid room id"))
}

/// The in-process [`RoomDirectory`].
#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    options: DirectoryOptions,
    state: Mutex<State>,
    /// Room entries examined by matchmakes since creation (tests assert placement is indexed).
    rooms_examined: AtomicU64,
}

/// Expiring members, ordered by expiry for cheap pruning.
#[derive(Debug)]
struct ExpiringSet<K> {
    expiry_by_member: HashMap<K, u64>,
    by_expiry: BTreeSet<(u64, K)>,
}

impl<K> Default for ExpiringSet<K> {
    fn default() -> ExpiringSet<K> {
        ExpiringSet {
            expiry_by_member: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Ord + std::hash::Hash> ExpiringSet<K> {
    /// Drops members whose expiry is at or before `now_ms`, returning them.
    fn prune(&mut self, now_ms: u64) -> Vec<K> {
        let mut expired = Vec::new();
        while let Some((expires_at_ms, _)) = self.by_expiry.first() {
            if *expires_at_ms > now_ms {
                break;
            }
            if let Some((_, member)) = self.by_expiry.pop_first() {
                self.expiry_by_member.remove(&member);
                expired.push(member);
            }
        }
        expired
    }

    fn live(&mut self, now_ms: u64) -> u32 {
        self.prune(now_ms);
        u32::try_from(self.expiry_by_member.len()).unwrap_or(u32::MAX)
    }

    fn insert(&mut self, member: K, expires_at_ms: u64) {
        self.remove(&member);
        self.expiry_by_member.insert(member.clone(), expires_at_ms);
        self.by_expiry.insert((expires_at_ms, member));
    }

    fn remove(&mut self, member: &K) -> Option<u64> {
        let expires_at_ms = self.expiry_by_member.remove(member)?;
        self.by_expiry.remove(&(expires_at_ms, member.clone()));
        Some(expires_at_ms)
    }

    fn shorten(&mut self, member: &K, expires_at_ms: u64) -> bool {
        match self.expiry_by_member.get(member) {
            Some(&current) => {
                self.insert(member.clone(), current.min(expires_at_ms));
                true
            }
            None => false,
        }
    }
}

#[derive(Debug)]
struct NodeRecord {
    status: NodeStatus,
    expires_at_ms: u64,
    /// Set by `mark_node_draining`; wins over what heartbeats say.
    drain_requested: bool,
    reported_rooms: BTreeSet<RoomId>,
    /// Rooms the matchmaker opened here that the node has not reported yet, with their expiry
    /// and mode.
    pending_rooms: BTreeMap<RoomId, (u64, GameMode)>,
}

impl NodeRecord {
    fn effective_state(&self) -> NodeState {
        if self.drain_requested {
            NodeState::Draining
        } else {
            self.status.state
        }
    }

    fn live_pending(&mut self, mode: &GameMode, now_ms: u64) -> u32 {
        self.pending_rooms
            .retain(|_, (expires_at_ms, _)| *expires_at_ms > now_ms);
        let pending = self
            .pending_rooms
            .values()
            .filter(|(_, pending_mode)| pending_mode == mode)
            .count();
        u32::try_from(pending).unwrap_or(u32::MAX)
    }
}

#[derive(Debug)]
struct RoomRecord {
    status: RoomStatus,
    expires_at_ms: u64,
    reservations: ExpiringSet<Nonce>,
    /// Confirmed reservations and when their player joined: the room's first heartbeat sampled
    /// after that counts the player in `humans`, and ends the seat.
    joined: Vec<(Nonce, u64)>,
    pending: bool,
    /// A private lobby (from its node's report, or from the matchmake that opened it): never
    /// in the fill index, so only a lobby join's override reaches it.
    private: bool,
}

/// A region and a game mode: rooms are placed, and capacity is counted, per pool.
type Pool = (Region, GameMode);

#[derive(Debug, Default)]
struct PoolIndex {
    /// Placeable rooms by (occupancy at last update, id).
    fill: BTreeSet<(u32, RoomId)>,
    /// Active nodes with a free room slot of this mode, by (humans, id).
    open_nodes: BTreeSet<(u32, NodeId)>,
    /// Per node: (expiry, room capacity of this mode if active else 0, humans in its rooms of
    /// this mode if active else 0).
    node_totals: HashMap<NodeId, (u64, u32, u32)>,
    /// Every reservation of the pool. When one expires its room is re-ranked, so a room never
    /// stays out of the fill index because of seats that are free again.
    reservations: ExpiringSet<(RoomId, Nonce)>,
    /// Rooms whose status has a lobby, by id: the lobby browser pages through this.
    lobbies: BTreeSet<RoomId>,
}

/// Where a node sits in one pool: it has totals there, and maybe an open-index entry.
#[derive(Debug)]
struct NodePoolKey {
    pool: Pool,
    open_humans: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    nodes: HashMap<NodeId, NodeRecord>,
    rooms: HashMap<RoomId, RoomRecord>,
    pools: HashMap<Pool, PoolIndex>,
    /// Where each room sits in its pool's fill index, so updates are O(log n).
    fill_keys: HashMap<RoomId, (Pool, u32)>,
    node_keys: HashMap<NodeId, Vec<NodePoolKey>>,
    last_sweep_ms: u64,
}

fn pool_of(status: &RoomStatus) -> Pool {
    (status.region.clone(), status.mode.clone())
}

impl InMemoryDirectory {
    pub fn new(options: DirectoryOptions) -> InMemoryDirectory {
        InMemoryDirectory {
            options,
            ..InMemoryDirectory::default()
        }
    }

    /// Room entries matchmakes have examined so far (a test and metrics hook).
    pub fn rooms_examined(&self) -> u64 {
        self.rooms_examined.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn heartbeat_now(
        &self,
        heartbeat: &Heartbeat,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<(), DirectoryError> {
        heartbeat.validate()?;
        let expires_at_ms = now_ms.saturating_add(duration_ms(ttl));
        let mut state = self.lock();
        if now_ms.saturating_sub(state.last_sweep_ms) >= SWEEP_INTERVAL_MS {
            state.sweep(now_ms);
            state.last_sweep_ms = now_ms;
        }
        let node_id = heartbeat.node.node_id.clone();
        let reported: BTreeSet<RoomId> = heartbeat
            .rooms
            .iter()
            .map(|room| room.room_id.clone())
            .collect();
        // A node that moved region (re-provisioned under the same id) starts from scratch.
        if state
            .nodes
            .get(&node_id)
            .is_some_and(|node| node.status.region != heartbeat.node.region)
        {
            state.remove_node(&node_id);
        }
        // A node never runs fewer rooms than it lists, whatever its counters say.
        let node_status = heartbeat.node_with_listed_rooms();
        let previously_reported = match state.nodes.get_mut(&node_id) {
            Some(node) => {
                node.status = node_status;
                node.expires_at_ms = expires_at_ms;
                for room_id in &reported {
                    node.pending_rooms.remove(room_id);
                }
                std::mem::replace(&mut node.reported_rooms, reported.clone())
            }
            None => {
                state.nodes.insert(
                    node_id.clone(),
                    NodeRecord {
                        status: node_status,
                        expires_at_ms,
                        drain_requested: false,
                        reported_rooms: reported.clone(),
                        pending_rooms: BTreeMap::new(),
                    },
                );
                BTreeSet::new()
            }
        };
        for gone in previously_reported.difference(&reported) {
            if state
                .rooms
                .get(gone)
                .is_some_and(|room| room.status.node_id == node_id)
            {
                state.remove_room(gone);
            }
        }
        for room in &heartbeat.rooms {
            // A room id another node owns stays with that node until it stops reporting it.
            let owned_elsewhere = state.rooms.get(&room.room_id).is_some_and(|record| {
                record.status.node_id != node_id && record.expires_at_ms > now_ms
            });
            if owned_elsewhere {
                continue;
            }
            let record = state
                .rooms
                .entry(room.room_id.clone())
                .or_insert_with(|| RoomRecord {
                    status: room.clone(),
                    expires_at_ms,
                    reservations: ExpiringSet::default(),
                    joined: Vec::new(),
                    pending: false,
                    private: false,
                });
            record.status = room.clone();
            record.expires_at_ms = expires_at_ms;
            record.pending = false;
            record.private = room.is_private();
            // Players who joined before this sample are in `humans` now: their seats end.
            let mut counted = Vec::new();
            record.joined.retain(|&(nonce, joined_at_ms)| {
                let in_sample = joined_at_ms <= now_ms;
                if in_sample {
                    counted.push(nonce);
                }
                !in_sample
            });
            for nonce in &counted {
                record.reservations.remove(nonce);
            }
            let index = state.pools.entry(pool_of(room)).or_default();
            for nonce in counted {
                index.reservations.remove(&(room.room_id.clone(), nonce));
            }
            if room.lobby.is_some() {
                index.lobbies.insert(room.room_id.clone());
            } else {
                index.lobbies.remove(&room.room_id);
            }
            state.reindex_room(&room.room_id, now_ms);
        }
        state.reindex_node(&node_id, now_ms);
        Ok(())
    }

    fn matchmake_now(
        &self,
        request: &MatchRequest,
        policy: &PlacementPolicy,
        now_ms: u64,
    ) -> Result<Placement, MatchError> {
        let caps = policy.caps(&request.mode).ok_or(MatchError::UnknownMode)?;
        let mut state = self.lock();
        let mut examined = 0u64;
        // Like the Redis directory: the preferred region first, the others only if it has nothing.
        let order = policy.region_order(request.preferred_region.as_ref());
        let mut snapshot = state.gather(&order[..1], request, policy, now_ms, &mut examined);
        let mut decision = place(&snapshot, request, policy);
        let preferred_has_nothing = match &decision {
            Decision::NoCapacity { .. } => true,
            Decision::OverrideConflict { suggested, .. } => suggested.is_none(),
            _ => false,
        };
        if preferred_has_nothing && order.len() > 1 {
            snapshot = state.gather(&order, request, policy, now_ms, &mut examined);
            decision = place(&snapshot, request, policy);
        }
        self.rooms_examined.fetch_add(examined, Ordering::Relaxed);
        let reservation = Nonce::random();
        let reservation_expires_at_ms = now_ms.saturating_add(policy.seat_reservation_ttl_ms);
        match decision {
            Decision::ExistingRoom { room_id, .. } => {
                let cap = if request.room_override.is_some() {
                    caps.hard_cap
                } else {
                    caps.soft_cap
                };
                // Under the same lock as `gather`, so this cannot fail unless placement erred.
                state
                    .reserve_existing(
                        &room_id,
                        cap,
                        reservation,
                        reservation_expires_at_ms,
                        now_ms,
                    )
                    .ok_or(MatchError::Contended { attempts: 1 })
            }
            Decision::NewRoom { node_id, region } => {
                let mut room_id = RoomId::generate(&region);
                while state.rooms.contains_key(&room_id) {
                    room_id = RoomId::generate(&region);
                }
                state
                    .reserve_new_room(
                        &node_id,
                        room_id,
                        request,
                        reservation,
                        reservation_expires_at_ms,
                        now_ms,
                    )
                    .ok_or(MatchError::Contended { attempts: 1 })
            }
            Decision::OverrideConflict {
                requested,
                reason,
                suggested,
            } => Err(MatchError::OverrideConflict {
                requested,
                reason,
                suggested,
            }),
            Decision::NoCapacity { retry_after_s } => Err(MatchError::NoCapacity { retry_after_s }),
        }
    }

    fn confirm_now(&self, room_id: &RoomId, reservation: &Nonce, now_ms: u64) -> bool {
        let hold_until = now_ms.saturating_add(self.options.confirmed_seat_hold_ms);
        let mut state = self.lock();
        let Some(room) = state
            .rooms
            .get_mut(room_id)
            .filter(|room| room.expires_at_ms > now_ms)
        else {
            return false;
        };
        room.reservations.prune(now_ms);
        if !room.reservations.shorten(reservation, hold_until) {
            return false;
        }
        let hold_ms = self.options.confirmed_seat_hold_ms;
        room.joined
            .retain(|(_, joined_at_ms)| joined_at_ms.saturating_add(hold_ms) > now_ms);
        room.joined.push((*reservation, now_ms));
        let pool = pool_of(&room.status);
        if let Some(index) = state.pools.get_mut(&pool) {
            index
                .reservations
                .shorten(&(room_id.clone(), *reservation), hold_until);
        }
        true
    }

    fn snapshot_now(&self, region: &Region, now_ms: u64) -> RegionSnapshot {
        let mut state = self.lock();
        let mut snapshot = RegionSnapshot {
            region: region.clone(),
            nodes: Vec::new(),
            rooms: Vec::new(),
        };
        let mut room_ids = Vec::new();
        for node in state.nodes.values() {
            if node.status.region != *region || node.expires_at_ms <= now_ms {
                continue;
            }
            snapshot.nodes.push(NodeStatus {
                state: node.effective_state(),
                ..node.status.clone()
            });
            room_ids.extend(node.reported_rooms.iter().cloned());
            room_ids.extend(
                node.pending_rooms
                    .iter()
                    .filter(|(_, (expiry, _))| *expiry > now_ms)
                    .map(|(id, _)| id.clone()),
            );
        }
        for room_id in room_ids {
            if let Some(room) = state
                .rooms
                .get_mut(&room_id)
                .filter(|room| room.expires_at_ms > now_ms)
            {
                let reserved = room.reservations.live(now_ms);
                snapshot.rooms.push(RoomEntry {
                    status: room.status.clone(),
                    reserved,
                    pending: room.pending,
                });
            }
        }
        snapshot.nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        snapshot
            .rooms
            .sort_by(|a, b| a.status.room_id.cmp(&b.status.room_id));
        snapshot
    }
}

impl State {
    fn live_node(&self, node_id: &NodeId, now_ms: u64) -> Option<&NodeRecord> {
        self.nodes
            .get(node_id)
            .filter(|node| node.expires_at_ms > now_ms)
    }

    /// Puts a room in (or takes it out of) its pool's fill index, with fresh occupancy.
    fn reindex_room(&mut self, room_id: &RoomId, now_ms: u64) {
        if let Some((pool, occupancy)) = self.fill_keys.remove(room_id) {
            if let Some(index) = self.pools.get_mut(&pool) {
                index.fill.remove(&(occupancy, room_id.clone()));
            }
        }
        let Some(room) = self.rooms.get_mut(room_id) else {
            return;
        };
        let occupancy = room
            .status
            .humans
            .saturating_add(room.reservations.live(now_ms));
        let room_open = room.status.joinable
            && !room.private
            && matches!(room.status.state, RoomState::Warm | RoomState::Active)
            && room.expires_at_ms > now_ms;
        let pool = pool_of(&room.status);
        let node_open = self.nodes.get(&room.status.node_id).is_some_and(|node| {
            node.expires_at_ms > now_ms && node.effective_state() == NodeState::Active
        });
        if room_open && node_open {
            self.pools
                .entry(pool.clone())
                .or_default()
                .fill
                .insert((occupancy, room_id.clone()));
            self.fill_keys.insert(room_id.clone(), (pool, occupancy));
        }
    }

    /// Takes a node out of every pool it was indexed in.
    fn unindex_node(&mut self, node_id: &NodeId) {
        for key in self.node_keys.remove(node_id).unwrap_or_default() {
            if let Some(index) = self.pools.get_mut(&key.pool) {
                index.node_totals.remove(node_id);
                if let Some(humans) = key.open_humans {
                    index.open_nodes.remove(&(humans, node_id.clone()));
                }
            }
        }
    }

    /// Refreshes a node's totals and its place in the open-nodes index of each mode it runs.
    fn reindex_node(&mut self, node_id: &NodeId, now_ms: u64) {
        self.unindex_node(node_id);
        let Some(node) = self.nodes.get_mut(node_id) else {
            return;
        };
        let active = node.effective_state() == NodeState::Active;
        let region = node.status.region.clone();
        let humans = node.status.humans;
        let expires_at_ms = node.expires_at_ms;
        let mut keys = Vec::new();
        for capacity in node.status.capacities() {
            let pending = node.live_pending(&capacity.mode, now_ms);
            let has_free_slot = capacity.rooms.saturating_add(pending) < capacity.room_capacity;
            let pool = (region.clone(), capacity.mode);
            let index = self.pools.entry(pool.clone()).or_default();
            let totals = if active {
                (expires_at_ms, capacity.room_capacity, capacity.humans)
            } else {
                (expires_at_ms, 0, 0)
            };
            index.node_totals.insert(node_id.clone(), totals);
            let open = active && has_free_slot && expires_at_ms > now_ms;
            if open {
                index.open_nodes.insert((humans, node_id.clone()));
            }
            keys.push(NodePoolKey {
                pool,
                open_humans: open.then_some(humans),
            });
        }
        self.node_keys.insert(node_id.clone(), keys);
    }

    fn remove_room(&mut self, room_id: &RoomId) {
        if let Some((pool, occupancy)) = self.fill_keys.remove(room_id) {
            if let Some(index) = self.pools.get_mut(&pool) {
                index.fill.remove(&(occupancy, room_id.clone()));
            }
        }
        if let Some(room) = self.rooms.remove(room_id) {
            if let Some(index) = self.pools.get_mut(&pool_of(&room.status)) {
                for nonce in room.reservations.expiry_by_member.keys() {
                    index.reservations.remove(&(room_id.clone(), *nonce));
                }
                index.lobbies.remove(room_id);
            }
        }
    }

    fn remove_node(&mut self, node_id: &NodeId) {
        self.unindex_node(node_id);
        let Some(node) = self.nodes.remove(node_id) else {
            return;
        };
        for room_id in node.reported_rooms.iter().chain(node.pending_rooms.keys()) {
            if self
                .rooms
                .get(room_id)
                .is_some_and(|room| &room.status.node_id == node_id)
            {
                self.remove_room(room_id);
            }
        }
    }

    /// Drops everything whose heartbeat (or reservation) ran out. O(entries), once a second.
    fn sweep(&mut self, now_ms: u64) {
        let dead_nodes: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, node)| node.expires_at_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for node_id in dead_nodes {
            self.remove_node(&node_id);
        }
        let dead_rooms: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, room)| room.expires_at_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for room_id in dead_rooms {
            self.remove_room(&room_id);
        }
        for index in self.pools.values_mut() {
            index
                .node_totals
                .retain(|_, (expires_at_ms, _, _)| *expires_at_ms > now_ms);
            index.reservations.prune(now_ms);
        }
    }

    fn room_candidate(&mut self, room_id: &RoomId, now_ms: u64) -> Option<RoomCandidate> {
        let node_state = self
            .live_node(&self.rooms.get(room_id)?.status.node_id.clone(), now_ms)?
            .effective_state();
        let room = self
            .rooms
            .get_mut(room_id)
            .filter(|room| room.expires_at_ms > now_ms)?;
        let reserved = room.reservations.live(now_ms);
        Some(RoomCandidate {
            room_id: room_id.clone(),
            node_id: room.status.node_id.clone(),
            region: room.status.region.clone(),
            state: room.status.state,
            joinable: room.status.joinable,
            humans: room.status.humans,
            reserved,
            tick_p95_ms: room.status.tick_p95_ms,
            node_state,
            mode: room.status.mode.clone(),
            private: room.private,
        })
    }

    /// Reads the top candidates of each region placement may use, fixing stale index entries
    /// on the way. Touches O(regions × candidates_per_region) rooms, never the whole directory.
    fn gather(
        &mut self,
        regions: &[Region],
        request: &MatchRequest,
        policy: &PlacementPolicy,
        now_ms: u64,
        examined: &mut u64,
    ) -> PlacementSnapshot {
        let limit = policy.candidates_per_region.max(1);
        let mut snapshot = PlacementSnapshot::default();
        let Some(caps) = policy.caps(&request.mode) else {
            return snapshot;
        };
        if let Some(requested) = &request.room_override {
            *examined += 1;
            snapshot.override_room = self.room_candidate(requested, now_ms);
        }
        for region in regions {
            let region = region.clone();
            let pool = (region.clone(), request.mode.clone());
            let Some(index) = self.pools.get_mut(&pool) else {
                continue;
            };
            // Seats whose reservation ran out are free again: re-rank those rooms first.
            for (room_id, _) in index.reservations.prune(now_ms) {
                *examined += 1;
                self.reindex_room(&room_id, now_ms);
            }
            let Some(index) = self.pools.get(&pool) else {
                continue;
            };
            let fullest: Vec<RoomId> = index
                .fill
                .range(..(caps.soft_cap, smallest_room_id()))
                .rev()
                .take_while(|(occupancy, _)| *occupancy > 0)
                .take(limit)
                .map(|(_, id)| id.clone())
                .collect();
            let empty: Vec<RoomId> = index
                .fill
                .iter()
                .take_while(|(occupancy, _)| *occupancy == 0)
                .take(limit)
                .map(|(_, id)| id.clone())
                .collect();
            let open_nodes: Vec<NodeId> = index
                .open_nodes
                .iter()
                .take(limit)
                .map(|(_, id)| id.clone())
                .collect();
            let mut view = RegionView {
                region: region.clone(),
                rooms: Vec::new(),
                nodes: Vec::new(),
                seat_capacity: 0,
                seats_committed: 0,
            };
            for room_id in fullest.iter().chain(&empty) {
                *examined += 1;
                match self.room_candidate(room_id, now_ms) {
                    Some(candidate) => view.rooms.push(candidate),
                    None => self.remove_room(room_id),
                }
                // Occupancy may have dropped since indexing (expired reservations): re-rank.
                self.reindex_room(room_id, now_ms);
            }
            for node_id in open_nodes {
                match self
                    .nodes
                    .get_mut(&node_id)
                    .filter(|node| node.expires_at_ms > now_ms)
                {
                    Some(node) => {
                        let pending = node.live_pending(&request.mode, now_ms);
                        let capacity = node.status.capacity_of(&request.mode);
                        view.nodes.push(NodeCandidate {
                            node_id: node_id.clone(),
                            state: node.effective_state(),
                            room_capacity: capacity.as_ref().map_or(0, |c| c.room_capacity),
                            rooms: capacity
                                .as_ref()
                                .map_or(0, |c| c.rooms)
                                .saturating_add(pending),
                            humans: node.status.humans,
                        });
                    }
                    None => self.remove_node(&node_id),
                }
            }
            if let Some(index) = self.pools.get_mut(&pool) {
                let (mut capacity_rooms, mut humans) = (0u64, 0u64);
                for &(expires_at_ms, capacity, node_humans) in index.node_totals.values() {
                    if expires_at_ms > now_ms {
                        capacity_rooms += u64::from(capacity);
                        humans += u64::from(node_humans);
                    }
                }
                view.seat_capacity = capacity_rooms * u64::from(caps.soft_cap);
                view.seats_committed = humans + u64::from(index.reservations.live(now_ms));
            }
            snapshot.regions.push(view);
        }
        snapshot
    }

    fn reserve_existing(
        &mut self,
        room_id: &RoomId,
        cap: u32,
        reservation: Nonce,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Option<Placement> {
        let candidate = self.room_candidate(room_id, now_ms)?;
        let open = candidate.joinable
            && candidate.node_state == NodeState::Active
            && matches!(candidate.state, RoomState::Warm | RoomState::Active);
        if !open || candidate.occupancy() >= cap {
            return None;
        }
        let public_url = self
            .live_node(&candidate.node_id, now_ms)?
            .status
            .public_url
            .clone();
        let room = self.rooms.get_mut(room_id)?;
        room.reservations.insert(reservation, expires_at_ms);
        // A room its node has not reported yet lives as long as its reservations; a reported
        // room lives by its node's heartbeats alone (a dead node's rooms must vanish).
        if room.pending {
            room.expires_at_ms = room.expires_at_ms.max(expires_at_ms);
            if let Some(node) = self.nodes.get_mut(&candidate.node_id) {
                if let Some((pending_expiry, _)) = node.pending_rooms.get_mut(room_id) {
                    *pending_expiry = (*pending_expiry).max(expires_at_ms);
                }
            }
        }
        self.pools
            .entry((candidate.region.clone(), candidate.mode.clone()))
            .or_default()
            .reservations
            .insert((room_id.clone(), reservation), expires_at_ms);
        self.reindex_room(room_id, now_ms);
        Some(Placement {
            room_id: room_id.clone(),
            mode: candidate.mode,
            node_id: candidate.node_id,
            region: candidate.region,
            public_url,
            reservation,
            reservation_expires_at_ms: expires_at_ms,
            new_room: false,
        })
    }

    fn reserve_new_room(
        &mut self,
        node_id: &NodeId,
        room_id: RoomId,
        request: &MatchRequest,
        reservation: Nonce,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Option<Placement> {
        let (mode, private) = (&request.mode, request.private);
        let node = self
            .nodes
            .get_mut(node_id)
            .filter(|node| node.expires_at_ms > now_ms)?;
        let pending = node.live_pending(mode, now_ms);
        let capacity = node.status.capacity_of(mode)?;
        if node.effective_state() != NodeState::Active
            || capacity.rooms.saturating_add(pending) >= capacity.room_capacity
        {
            return None;
        }
        node.pending_rooms
            .insert(room_id.clone(), (expires_at_ms, mode.clone()));
        let region = node.status.region.clone();
        let public_url = node.status.public_url.clone();
        let mut reservations = ExpiringSet::default();
        reservations.insert(reservation, expires_at_ms);
        // The room exists for placement at once, so the next players fill it before it is born.
        let status = RoomStatus {
            room_id: room_id.clone(),
            region: region.clone(),
            node_id: node_id.clone(),
            humans: 0,
            bots: 0,
            state: RoomState::Warm,
            tick_p95_ms: 0.0,
            joinable: true,
            mode: mode.clone(),
            lobby: None,
        };
        self.rooms.insert(
            room_id.clone(),
            RoomRecord {
                status,
                expires_at_ms,
                reservations,
                joined: Vec::new(),
                pending: true,
                private,
            },
        );
        self.pools
            .entry((region.clone(), mode.clone()))
            .or_default()
            .reservations
            .insert((room_id.clone(), reservation), expires_at_ms);
        self.reindex_room(&room_id, now_ms);
        self.reindex_node(node_id, now_ms);
        Some(Placement {
            room_id,
            mode: mode.clone(),
            node_id: node_id.clone(),
            region,
            public_url,
            reservation,
            reservation_expires_at_ms: expires_at_ms,
            new_room: true,
        })
    }
}

impl RoomDirectory for InMemoryDirectory {
    fn heartbeat<'a>(
        &'a self,
        heartbeat: &'a Heartbeat,
        ttl: Duration,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>> {
        Box::pin(async move { self.heartbeat_now(heartbeat, ttl, now_ms) })
    }

    fn mark_node_draining<'a>(
        &'a self,
        node_id: &'a NodeId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let Some(node) = state
                .nodes
                .get_mut(node_id)
                .filter(|node| node.expires_at_ms > now_ms)
            else {
                return Ok(false);
            };
            node.drain_requested = true;
            let rooms: Vec<RoomId> = node
                .reported_rooms
                .iter()
                .chain(node.pending_rooms.keys())
                .cloned()
                .collect();
            for room_id in rooms {
                state.reindex_room(&room_id, now_ms);
            }
            state.reindex_node(node_id, now_ms);
            Ok(true)
        })
    }

    fn matchmake<'a>(
        &'a self,
        request: &'a MatchRequest,
        policy: &'a PlacementPolicy,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Placement, MatchError>> {
        Box::pin(async move { self.matchmake_now(request, policy, now_ms) })
    }

    fn confirm_seat<'a>(
        &'a self,
        room_id: &'a RoomId,
        reservation: &'a Nonce,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move { Ok(self.confirm_now(room_id, reservation, now_ms)) })
    }

    fn reserved_seats<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<u32, DirectoryError>> {
        Box::pin(async move {
            let mut state = self.lock();
            Ok(state
                .rooms
                .get_mut(room_id)
                .filter(|room| room.expires_at_ms > now_ms)
                .map_or(0, |room| room.reservations.live(now_ms)))
        })
    }

    fn region_snapshot<'a>(
        &'a self,
        region: &'a Region,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<RegionSnapshot, DirectoryError>> {
        Box::pin(async move { Ok(self.snapshot_now(region, now_ms)) })
    }

    fn lobby_rooms<'a>(
        &'a self,
        region: &'a Region,
        mode: &'a GameMode,
        after: Option<&'a RoomId>,
        count: usize,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Vec<RoomStatus>, DirectoryError>> {
        Box::pin(async move {
            use std::ops::Bound;
            let state = self.lock();
            let Some(index) = state.pools.get(&(region.clone(), mode.clone())) else {
                return Ok(Vec::new());
            };
            let from = after.map_or(Bound::Unbounded, |id| Bound::Excluded(id.clone()));
            // Expired rooms stay in the index until the next sweep: skipped, not counted.
            Ok(index
                .lobbies
                .range((from, Bound::Unbounded))
                .filter_map(|id| state.rooms.get(id))
                .filter(|room| room.expires_at_ms > now_ms && room.status.lobby.is_some())
                .take(count)
                .map(|room| room.status.clone())
                .collect())
        })
    }

    fn room_status<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Option<RoomStatus>, DirectoryError>> {
        Box::pin(async move {
            Ok(self
                .lock()
                .rooms
                .get(room_id)
                .filter(|room| room.expires_at_ms > now_ms && !room.pending)
                .map(|room| room.status.clone()))
        })
    }

    fn remove_node<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>> {
        Box::pin(async move {
            self.lock().remove_node(node_id);
            Ok(())
        })
    }
}
