//! Redis room directory: the fleet's shared directory.
//!
//! Owns the translation between Rust types and the scripts of `redis_lua.rs` (the connection,
//! its reconnects, per-call deadlines and load shedding are `redis_link.rs`), which hold the data
//! model and do every multi-key step atomically. A matchmake is: read the top candidates of the
//! preferred region (one script), place (pure), reserve (one script that re-checks the caps,
//! and for a new room that no other room was opened since the read);
//! if the reservation lost a race, read again, up to `max_attempts`. Other regions are read only
//! when the preferred one has nothing.
//!
//! Must not read whole regions per matchmake, must not wait on Redis without a timeout, and must
//! not trust the store's replies blindly (malformed replies become errors, never panics).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::{FromRedisValue, Script};
use serde::Deserialize;

use crate::directory::{
    DirectoryError, DirectoryFuture, DirectoryOptions, Heartbeat, MatchError, MatchRequest,
    NodeState, NodeStatus, Placement, RegionSnapshot, RoomDirectory, RoomEntry, RoomState,
    RoomStatus, duration_ms,
};
use crate::ids::{GameMode, NodeId, Region, RoomId};
use crate::placement::{
    Decision, NodeCandidate, PlacementPolicy, PlacementSnapshot, RegionView, RoomCandidate, place,
};
use crate::redis_link::{RedisLink, RedisLinkSettings, Supervisor};
use crate::redis_lua;
use crate::token::Nonce;

/// Settings of the Redis directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisDirectoryConfig {
    /// Prepended to every key, e.g. `coil:dir:`; tests use a random one each.
    pub key_prefix: String,
    /// Upper bound on every Redis call. Matchmakes and heartbeats are request paths: keep it
    /// well under a second (a healthy Redis answers in about a millisecond).
    pub command_timeout: Duration,
    pub options: DirectoryOptions,
    /// Reconnects, circuit breaker and the bound on calls in flight.
    pub link: RedisLinkSettings,
}

impl Default for RedisDirectoryConfig {
    fn default() -> RedisDirectoryConfig {
        RedisDirectoryConfig {
            key_prefix: "coil:dir:".to_owned(),
            command_timeout: Duration::from_millis(250),
            options: DirectoryOptions::default(),
            link: RedisLinkSettings::default(),
        }
    }
}

struct Scripts {
    heartbeat: Script,
    candidates: Script,
    reserve_existing: Script,
    reserve_new_room: Script,
    confirm: Script,
    drain_node: Script,
    remove_node: Script,
    region_snapshot: Script,
    reserved: Script,
    lobby_rooms: Script,
    room_status: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_prelude = |body: &str| Script::new(&format!("{}\n{body}", redis_lua::PRELUDE));
        Scripts {
            heartbeat: with_prelude(redis_lua::HEARTBEAT),
            candidates: with_prelude(redis_lua::CANDIDATES),
            reserve_existing: with_prelude(redis_lua::RESERVE_EXISTING),
            reserve_new_room: with_prelude(redis_lua::RESERVE_NEW_ROOM),
            confirm: with_prelude(redis_lua::CONFIRM),
            drain_node: with_prelude(redis_lua::DRAIN_NODE),
            remove_node: with_prelude(redis_lua::REMOVE_NODE),
            region_snapshot: with_prelude(redis_lua::REGION_SNAPSHOT),
            reserved: with_prelude(redis_lua::RESERVED),
            lobby_rooms: with_prelude(&redis_lua::lobby_rooms_script()),
            room_status: with_prelude(&redis_lua::room_status_script()),
        }
    }
}

/// The Redis [`RoomDirectory`].
pub struct RedisDirectory {
    link: Arc<RedisLink>,
    /// Reconnects `link` when it is lost; stopped when the directory is dropped.
    _supervisor: Supervisor,
    config: RedisDirectoryConfig,
    scripts: Scripts,
    /// Redis commands run by matchmake scripts so far (tests assert a matchmake's work does not
    /// grow with the directory).
    matchmake_commands: AtomicU64,
    /// Candidate reads in flight, by region: an automatic matchmake that starts while one is
    /// running waits for it and shares its snapshot instead of running its own (the reserve
    /// scripts settle whatever race a shared snapshot causes). At thousands of matchmakes per
    /// second this turns most reads into one.
    reads_in_flight: Mutex<HashMap<(Region, GameMode), Arc<SharedRead>>>,
    /// Candidate reads actually run against Redis (the rest were shared).
    candidate_reads: AtomicU64,
}

/// A candidates read shared by concurrent matchmakes. A failed read is shared too: every waiter
/// gets its failure at once, instead of each retrying in turn behind the others' deadlines
/// (which queued matchmakes up during a Redis outage).
type SharedRead = tokio::sync::OnceCell<Result<Arc<Gathered>, Arc<DirectoryError>>>;

impl std::fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDirectory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RedisDirectory {
    /// Connects (within `link.connect_timeout`) to `url`, e.g. `redis://127.0.0.1:6379`. Once
    /// connected, a lost connection is re-established in the background; calls made meanwhile
    /// fail at once with [`DirectoryError::Unavailable`].
    pub async fn connect(
        url: &str,
        config: RedisDirectoryConfig,
    ) -> Result<RedisDirectory, DirectoryError> {
        let (link, supervisor) =
            RedisLink::connect(url, config.command_timeout, config.link.clone()).await?;
        Ok(RedisDirectory {
            link,
            _supervisor: supervisor,
            config,
            scripts: Scripts::new(),
            matchmake_commands: AtomicU64::new(0),
            reads_in_flight: Mutex::new(HashMap::new()),
            candidate_reads: AtomicU64::new(0),
        })
    }

    /// True while a connection to Redis is in use.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// Redis commands the matchmake scripts have run so far.
    pub fn matchmake_commands(&self) -> u64 {
        self.matchmake_commands.load(Ordering::Relaxed)
    }

    /// Candidate reads run against Redis so far (concurrent automatic matchmakes share one).
    pub fn candidate_reads(&self) -> u64 {
        self.candidate_reads.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &RedisDirectoryConfig {
        &self.config
    }

    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        script: &Script,
        now_ms: u64,
        args: &[String],
    ) -> Result<T, DirectoryError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.config.key_prefix).arg(now_ms);
        for arg in args {
            invocation.arg(arg);
        }
        self.link
            .call(operation, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await
    }

    async fn run_json<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        script: &Script,
        now_ms: u64,
        args: &[String],
    ) -> Result<T, DirectoryError> {
        let text: String = self.run(operation, script, now_ms, args).await?;
        serde_json::from_str(&text).map_err(|_| DirectoryError::UnexpectedReply { operation })
    }

    async fn gather(
        &self,
        regions: &[Region],
        request: &MatchRequest,
        policy: &PlacementPolicy,
        now_ms: u64,
    ) -> Result<Gathered, DirectoryError> {
        let caps = policy
            .caps(&request.mode)
            .ok_or(DirectoryError::UnexpectedReply {
                operation: "read candidates of an unknown mode",
            })?;
        let mut args = vec![
            caps.soft_cap.to_string(),
            policy.candidates_per_region.max(1).to_string(),
            policy.max_tick_p95_ms.to_string(),
            request
                .room_override
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            request.mode.to_string(),
            flag(request.fresh_room).to_owned(),
        ];
        args.extend(regions.iter().map(ToString::to_string));
        self.candidate_reads.fetch_add(1, Ordering::Relaxed);
        let reply: CandidatesReply = self
            .run_json("read candidates", &self.scripts.candidates, now_ms, &args)
            .await?;
        self.matchmake_commands
            .fetch_add(reply.touched, Ordering::Relaxed);
        let opened = reply
            .regions
            .iter()
            .map(|region| (region.region.clone(), region.opened))
            .collect();
        let snapshot =
            reply
                .into_snapshot(caps.soft_cap)
                .ok_or(DirectoryError::UnexpectedReply {
                    operation: "read candidates",
                })?;
        Ok(Gathered { snapshot, opened })
    }

    /// The first read of an automatic matchmake in its preferred region and mode: joins the read
    /// in flight for that pool if there is one, else runs one that later arrivals may join.
    async fn gather_shared(
        &self,
        region: &Region,
        request: &MatchRequest,
        policy: &PlacementPolicy,
        now_ms: u64,
    ) -> Result<Arc<Gathered>, DirectoryError> {
        let pool = (region.clone(), request.mode.clone());
        let read = self
            .reads_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(pool.clone())
            .or_default()
            .clone();
        let result = read
            .get_or_init(|| async {
                let regions = std::slice::from_ref(region);
                self.gather(regions, request, policy, now_ms)
                    .await
                    .map(Arc::new)
                    .map_err(Arc::new)
            })
            .await
            .clone()
            .map_err(|failure| shared_failure(&failure));
        // A finished read is not reused: whoever sees it done first retires it.
        let mut reads = self
            .reads_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if reads
            .get(&pool)
            .is_some_and(|current| Arc::ptr_eq(current, &read) && current.initialized())
        {
            reads.remove(&pool);
        }
        result
    }

    async fn matchmake_now(
        &self,
        request: &MatchRequest,
        policy: &PlacementPolicy,
        now_ms: u64,
    ) -> Result<Placement, MatchError> {
        let caps = policy.caps(&request.mode).ok_or(MatchError::UnknownMode)?;
        let order = policy.region_order(request.preferred_region.as_ref());
        let attempts = policy.max_attempts.max(1);
        for attempt in 0..attempts {
            // Only a first, automatic read is shared: a retry needs a read newer than the race
            // it lost, and an override's read names its room.
            let mut gathered = if attempt == 0 && request.room_override.is_none() {
                self.gather_shared(&order[0], request, policy, now_ms)
                    .await?
            } else {
                Arc::new(self.gather(&order[..1], request, policy, now_ms).await?)
            };
            let mut decision = place(&gathered.snapshot, request, policy);
            let preferred_has_nothing = match &decision {
                Decision::NoCapacity { .. } => true,
                Decision::OverrideConflict { suggested, .. } => suggested.is_none(),
                _ => false,
            };
            if preferred_has_nothing && order.len() > 1 {
                gathered = Arc::new(self.gather(&order, request, policy, now_ms).await?);
                decision = place(&gathered.snapshot, request, policy);
            }
            let reservation = Nonce::random();
            let expires_at_ms = now_ms.saturating_add(policy.seat_reservation_ttl_ms);
            // An automatic placement that lost its race is placed again inside the reserve
            // script: fullest open room, else a new room with this id on the least-loaded node.
            let automatic = request.room_override.is_none();
            let race_args = |region: &Region| {
                let spare_room = RoomId::generate(region);
                let args = [
                    caps.soft_cap.to_string(),
                    policy.max_tick_p95_ms.to_string(),
                    spare_room.to_string(),
                ];
                (spare_room, args)
            };
            let (reply, room_id, spare_room) = match decision {
                Decision::ExistingRoom {
                    room_id, region, ..
                } => {
                    let cap = if automatic {
                        caps.soft_cap
                    } else {
                        caps.hard_cap
                    };
                    let (spare_room, race) = race_args(&region);
                    // An override must get the room it named: no second placement.
                    let race = if automatic { race } else { Default::default() };
                    let mut args = vec![
                        room_id.to_string(),
                        cap.to_string(),
                        reservation.to_hex(),
                        expires_at_ms.to_string(),
                    ];
                    args.extend(race);
                    let reply: ReserveReply = self
                        .run_json(
                            "reserve seat",
                            &self.scripts.reserve_existing,
                            now_ms,
                            &args,
                        )
                        .await?;
                    (reply, room_id, spare_room)
                }
                Decision::NewRoom { node_id, region } => {
                    let opened = gathered
                        .opened
                        .iter()
                        .find(|(name, _)| name.as_str() == region.as_str())
                        .map_or(0, |(_, opened)| *opened);
                    let (room_id, [soft_cap, max_tick, _]) = race_args(&region);
                    let args = [
                        region.to_string(),
                        request.mode.to_string(),
                        node_id.to_string(),
                        room_id.to_string(),
                        reservation.to_hex(),
                        expires_at_ms.to_string(),
                        opened.to_string(),
                        soft_cap,
                        max_tick,
                        flag(request.private).to_owned(),
                        flag(request.fresh_room).to_owned(),
                    ];
                    let reply: ReserveReply = self
                        .run_json(
                            "reserve seat in new room",
                            &self.scripts.reserve_new_room,
                            now_ms,
                            &args,
                        )
                        .await?;
                    (reply, room_id.clone(), room_id)
                }
                Decision::OverrideConflict {
                    requested,
                    reason,
                    suggested,
                } => {
                    return Err(MatchError::OverrideConflict {
                        requested,
                        reason,
                        suggested,
                    });
                }
                Decision::NoCapacity { retry_after_s } => {
                    return Err(MatchError::NoCapacity { retry_after_s });
                }
            };
            self.matchmake_commands
                .fetch_add(reply.touched, Ordering::Relaxed);
            if reply.status != "ok" {
                tracing::debug!(room = %room_id, status = %reply.status, "seat reservation lost a race, placing again");
                continue;
            }
            let (Some(seat_room), Some(node), Some(region), Some(url)) =
                (reply.room, reply.node, reply.region, reply.url)
            else {
                return Err(DirectoryError::UnexpectedReply {
                    operation: "reserve seat",
                }
                .into());
            };
            let (Ok(seat_room), Ok(node_id), Ok(region)) = (
                RoomId::parse(&seat_room),
                NodeId::parse(&node),
                Region::parse(&region),
            ) else {
                return Err(DirectoryError::UnexpectedReply {
                    operation: "reserve seat",
                }
                .into());
            };
            // The script may have seated the player in another room than the one decided, and
            // opened the spare room for an automatic placement that lost its room.
            let new_room = seat_room == spare_room;
            let room_id = seat_room;
            let mode = match reply.mode.as_deref().map(GameMode::parse) {
                Some(Ok(mode)) => mode,
                _ => request.mode.clone(),
            };
            return Ok(Placement {
                room_id,
                mode,
                node_id,
                region,
                public_url: url,
                reservation,
                reservation_expires_at_ms: expires_at_ms,
                new_room,
            });
        }
        Err(MatchError::Contended { attempts })
    }
}

/// Each waiter's own copy of a shared read's failure (a Redis error itself is not `Clone`).
fn shared_failure(failure: &DirectoryError) -> DirectoryError {
    match failure {
        DirectoryError::InvalidHeartbeat(reason) => {
            DirectoryError::InvalidHeartbeat(reason.clone())
        }
        DirectoryError::Timeout { operation } => DirectoryError::Timeout { operation },
        DirectoryError::UnexpectedReply { operation } => {
            DirectoryError::UnexpectedReply { operation }
        }
        DirectoryError::Unavailable { operation, reason } => {
            DirectoryError::Unavailable { operation, reason }
        }
        DirectoryError::Store { operation, .. } => DirectoryError::Unavailable {
            operation,
            reason: "the shared read failed",
        },
    }
}

/// Lua's cjson writes an empty table as `{}`; read that as an empty list.
fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| serde_json::from_value(item).map_err(serde::de::Error::custom))
            .collect(),
        serde_json::Value::Object(map) if map.is_empty() => Ok(Vec::new()),
        _ => Err(serde::de::Error::custom("expected a list")),
    }
}

/// What one candidates read returned: the snapshot for placement, and each region's count of
/// rooms opened so far (the optimistic check of `RESERVE_NEW_ROOM`).
struct Gathered {
    snapshot: PlacementSnapshot,
    opened: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct ReserveReply {
    status: String,
    #[serde(default)]
    touched: u64,
    room: Option<String>,
    node: Option<String>,
    region: Option<String>,
    mode: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct CandidateRoom {
    id: String,
    node: String,
    region: String,
    state: String,
    joinable: bool,
    humans: u32,
    res: u32,
    tick: f64,
    nstate: String,
    mode: String,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
struct CandidateNode {
    id: String,
    state: String,
    cap: u32,
    rooms: u32,
    humans: u32,
}

#[derive(Deserialize)]
struct CandidateRegion {
    region: String,
    #[serde(deserialize_with = "lenient_list")]
    rooms: Vec<CandidateRoom>,
    #[serde(deserialize_with = "lenient_list")]
    nodes: Vec<CandidateNode>,
    #[serde(rename = "capRooms")]
    cap_rooms: u64,
    humans: u64,
    reserved: u64,
    opened: u64,
}

#[derive(Deserialize)]
struct CandidatesReply {
    #[serde(deserialize_with = "lenient_list")]
    regions: Vec<CandidateRegion>,
    #[serde(rename = "override")]
    override_room: Option<CandidateRoom>,
    touched: u64,
}

/// A boolean as the scripts read it.
fn flag(set: bool) -> &'static str {
    if set { "1" } else { "0" }
}

fn room_state(text: &str) -> Option<RoomState> {
    match text {
        "WARM" => Some(RoomState::Warm),
        "ACTIVE" => Some(RoomState::Active),
        "DRAINING" => Some(RoomState::Draining),
        "TERMINATED" => Some(RoomState::Terminated),
        _ => None,
    }
}

fn node_state(text: &str) -> Option<NodeState> {
    match text {
        "ACTIVE" => Some(NodeState::Active),
        "DRAINING" => Some(NodeState::Draining),
        _ => None,
    }
}

impl CandidateRoom {
    fn into_candidate(self) -> Option<RoomCandidate> {
        Some(RoomCandidate {
            room_id: RoomId::parse(&self.id).ok()?,
            node_id: NodeId::parse(&self.node).ok()?,
            region: Region::parse(&self.region).ok()?,
            state: room_state(&self.state)?,
            joinable: self.joinable,
            humans: self.humans,
            reserved: self.res,
            tick_p95_ms: self.tick,
            node_state: node_state(&self.nstate)?,
            mode: GameMode::parse(&self.mode).ok()?,
            private: self.private,
        })
    }
}

impl CandidatesReply {
    fn into_snapshot(self, soft_cap: u32) -> Option<PlacementSnapshot> {
        let override_room = match self.override_room {
            Some(room) => Some(room.into_candidate()?),
            None => None,
        };
        let mut regions = Vec::with_capacity(self.regions.len());
        for region in self.regions {
            let rooms = region
                .rooms
                .into_iter()
                .map(CandidateRoom::into_candidate)
                .collect::<Option<Vec<_>>>()?;
            let nodes = region
                .nodes
                .into_iter()
                .map(|node| {
                    Some(NodeCandidate {
                        node_id: NodeId::parse(&node.id).ok()?,
                        state: node_state(&node.state)?,
                        room_capacity: node.cap,
                        rooms: node.rooms,
                        humans: node.humans,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            regions.push(RegionView {
                region: Region::parse(&region.region).ok()?,
                rooms,
                nodes,
                seat_capacity: region.cap_rooms.saturating_mul(u64::from(soft_cap)),
                seats_committed: region.humans.saturating_add(region.reserved),
            });
        }
        Some(PlacementSnapshot {
            regions,
            override_room,
        })
    }
}

#[derive(Deserialize)]
struct SnapshotRoom {
    id: String,
    region: String,
    node: String,
    humans: u32,
    bots: u32,
    state: String,
    tick: f64,
    joinable: bool,
    pending: bool,
    res: u32,
    mode: String,
}

#[derive(Deserialize)]
struct SnapshotReply {
    #[serde(deserialize_with = "lenient_list")]
    nodes: Vec<NodeStatus>,
    #[serde(deserialize_with = "lenient_list")]
    rooms: Vec<SnapshotRoom>,
}

impl SnapshotReply {
    fn into_snapshot(self, region: &Region) -> Option<RegionSnapshot> {
        let mut rooms = Vec::with_capacity(self.rooms.len());
        for room in self.rooms {
            rooms.push(RoomEntry {
                status: RoomStatus {
                    room_id: RoomId::parse(&room.id).ok()?,
                    region: Region::parse(&room.region).ok()?,
                    node_id: NodeId::parse(&room.node).ok()?,
                    humans: room.humans,
                    bots: room.bots,
                    state: room_state(&room.state)?,
                    tick_p95_ms: room.tick,
                    joinable: room.joinable,
                    mode: GameMode::parse(&room.mode).ok()?,
                    lobby: None,
                },
                reserved: room.res,
                pending: room.pending,
            });
        }
        let mut nodes = self.nodes;
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        rooms.sort_by(|a, b| a.status.room_id.cmp(&b.status.room_id));
        rooms.dedup_by(|a, b| a.status.room_id == b.status.room_id);
        Some(RegionSnapshot {
            region: region.clone(),
            nodes,
            rooms,
        })
    }
}

impl RoomDirectory for RedisDirectory {
    fn heartbeat<'a>(
        &'a self,
        heartbeat: &'a Heartbeat,
        ttl: Duration,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>> {
        Box::pin(async move {
            heartbeat.validate()?;
            let encode_error = |_| DirectoryError::InvalidHeartbeat("not serializable".to_owned());
            // The scripts read the capacity per mode; a node from before modes runs the arena.
            let mut node = heartbeat.node_with_listed_rooms();
            node.modes = node.capacities();
            let args = [
                duration_ms(ttl).max(1).to_string(),
                serde_json::to_string(&node).map_err(encode_error)?,
                serde_json::to_string(&heartbeat.rooms).map_err(encode_error)?,
            ];
            let _: u64 = self
                .run("heartbeat", &self.scripts.heartbeat, now_ms, &args)
                .await?;
            Ok(())
        })
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
            let args = [
                format!("{region}/{mode}"),
                after.map(ToString::to_string).unwrap_or_default(),
                count.max(1).to_string(),
            ];
            self.run_json("list lobbies", &self.scripts.lobby_rooms, now_ms, &args)
                .await
        })
    }

    fn room_status<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Option<RoomStatus>, DirectoryError>> {
        Box::pin(async move {
            let args = [room_id.to_string()];
            self.run_json("read room", &self.scripts.room_status, now_ms, &args)
                .await
        })
    }

    fn mark_node_draining<'a>(
        &'a self,
        node_id: &'a NodeId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            let found: u64 = self
                .run(
                    "mark node draining",
                    &self.scripts.drain_node,
                    now_ms,
                    &[node_id.to_string()],
                )
                .await?;
            Ok(found == 1)
        })
    }

    fn matchmake<'a>(
        &'a self,
        request: &'a MatchRequest,
        policy: &'a PlacementPolicy,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<Placement, MatchError>> {
        Box::pin(self.matchmake_now(request, policy, now_ms))
    }

    fn confirm_seat<'a>(
        &'a self,
        room_id: &'a RoomId,
        reservation: &'a Nonce,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            let hold_until = now_ms.saturating_add(self.config.options.confirmed_seat_hold_ms);
            let args = [
                room_id.to_string(),
                reservation.to_hex(),
                hold_until.to_string(),
            ];
            let confirmed: u64 = self
                .run("confirm seat", &self.scripts.confirm, now_ms, &args)
                .await?;
            Ok(confirmed == 1)
        })
    }

    fn reserved_seats<'a>(
        &'a self,
        room_id: &'a RoomId,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<u32, DirectoryError>> {
        Box::pin(async move {
            self.run(
                "count reservations",
                &self.scripts.reserved,
                now_ms,
                &[room_id.to_string()],
            )
            .await
        })
    }

    fn region_snapshot<'a>(
        &'a self,
        region: &'a Region,
        now_ms: u64,
    ) -> DirectoryFuture<'a, Result<RegionSnapshot, DirectoryError>> {
        Box::pin(async move {
            let reply: SnapshotReply = self
                .run_json(
                    "region snapshot",
                    &self.scripts.region_snapshot,
                    now_ms,
                    &[region.to_string()],
                )
                .await?;
            reply
                .into_snapshot(region)
                .ok_or(DirectoryError::UnexpectedReply {
                    operation: "region snapshot",
                })
        })
    }

    fn remove_node<'a>(
        &'a self,
        node_id: &'a NodeId,
    ) -> DirectoryFuture<'a, Result<(), DirectoryError>> {
        Box::pin(async move {
            let _: u64 = self
                .run(
                    "remove node",
                    &self.scripts.remove_node,
                    0,
                    &[node_id.to_string()],
                )
                .await?;
            Ok(())
        })
    }

    fn keep_alive<'a>(
        &'a self,
        node_id: &'a NodeId,
        liveness: Duration,
    ) -> DirectoryFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            // Placement (the scripts' `load_node`) sees a node only while its hash exists, so
            // its expiry is the node's liveness; the rooms keep the heartbeat TTL. The key name
            // is `node_key` of `redis_lua::PRELUDE`.
            let key = format!("{}node:{node_id}", self.config.key_prefix);
            let liveness_ms = duration_ms(liveness).max(1);
            let known: u64 = self
                .link
                .call("keep alive", |mut connection| async move {
                    redis::cmd("PEXPIRE")
                        .arg(&key)
                        .arg(liveness_ms)
                        .query_async(&mut connection)
                        .await
                })
                .await?;
            Ok(known == 1)
        })
    }

    fn connection_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.link.generations())
    }
}
