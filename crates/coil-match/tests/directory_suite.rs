//! The same directory test suite against `InMemoryDirectory` and `RedisDirectory`.
//!
//! Redis runs when `TEST_REDIS_URL` is set (CI always sets it); each test uses a random key prefix
//! and deletes its keys at the end. Time is the caller's `now_ms`: tests jump it forward instead of
//! sleeping, except the TTL test, which needs Redis's own clock to run out and polls with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use coil_match::{
    ConflictReason, DirectoryOptions, GameMode, Heartbeat, InMemoryDirectory, LobbyCursor,
    LobbyPage, LobbyQuery, LobbyStatus, MatchError, MatchRequest, ModeCapacity, ModeCaps, NodeId,
    NodeState, NodeStatus, Placement, PlacementPolicy, RedisDirectory, RedisDirectoryConfig,
    Region, RoomDirectory, RoomId, RoomState, RoomStatus, TokenSigner, list_lobbies,
};

const LONG_TTL: Duration = Duration::from_secs(60);

fn wall_clock_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn room_id(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

fn node_id(name: &str) -> NodeId {
    NodeId::parse(name).unwrap()
}

/// A heartbeat of `node` in `region` with `room_capacity` slots and the given rooms.
fn heartbeat(
    node: &str,
    region_name: &str,
    room_capacity: u32,
    rooms: &[(&str, u32, RoomState)],
) -> Heartbeat {
    let rooms: Vec<RoomStatus> = rooms
        .iter()
        .map(|&(id, humans, state)| RoomStatus {
            room_id: room_id(id),
            region: region(region_name),
            node_id: node_id(node),
            humans,
            bots: 10,
            state,
            tick_p95_ms: 5.0,
            joinable: true,
            mode: GameMode::arena(),
            lobby: None,
        })
        .collect();
    Heartbeat {
        node: NodeStatus {
            node_id: node_id(node),
            region: region(region_name),
            public_url: format!("ws://127.0.0.1:9{:03}", node.len()),
            state: NodeState::Active,
            room_capacity,
            rooms: u32::try_from(rooms.len()).unwrap(),
            humans: rooms.iter().map(|room| room.humans).sum(),
            modes: Vec::new(),
        },
        rooms,
    }
}

fn mode(name: &str) -> GameMode {
    GameMode::parse(name).unwrap()
}

fn policy() -> PlacementPolicy {
    let mut policy = PlacementPolicy {
        default_region: region("us-east"),
        // Most tests are about rooms, not the regional buffer.
        spare_fraction: 0.0,
        seat_reservation_ttl_ms: 5_000,
        ..PlacementPolicy::default()
    };
    policy
        .nearest_regions
        .insert(region("us-east"), vec![region("us-west")]);
    policy
        .nearest_regions
        .insert(region("us-west"), vec![region("us-east")]);
    policy.modes.insert(
        mode("duel"),
        ModeCaps {
            soft_cap: 2,
            hard_cap: 2,
        },
    );
    policy
}

fn request() -> MatchRequest {
    MatchRequest {
        preferred_region: Some(region("us-east")),
        room_override: None,
        mode: GameMode::arena(),
        ..MatchRequest::default()
    }
}

fn override_request(id: &str) -> MatchRequest {
    MatchRequest {
        room_override: Some(room_id(id)),
        ..request()
    }
}

enum Backend {
    Memory(Arc<InMemoryDirectory>),
    Redis {
        directory: Arc<RedisDirectory>,
        url: String,
        prefix: String,
    },
}

struct Harness {
    directory: Arc<dyn RoomDirectory>,
    backend: Backend,
}

impl Harness {
    fn in_memory() -> Harness {
        let memory = Arc::new(InMemoryDirectory::new(DirectoryOptions::default()));
        Harness {
            directory: memory.clone(),
            backend: Backend::Memory(memory),
        }
    }

    async fn redis() -> Option<Harness> {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            eprintln!("TEST_REDIS_URL is not set: skipping the Redis half of this test");
            return None;
        };
        let prefix = format!("coil-match-test:{}:", coil_match::Nonce::random().to_hex());
        let config = RedisDirectoryConfig {
            key_prefix: prefix.clone(),
            // Generous: 500 concurrent matchmakes on a shared 2-core machine queue up.
            command_timeout: Duration::from_secs(10),
            options: DirectoryOptions::default(),
            ..RedisDirectoryConfig::default()
        };
        let directory = Arc::new(
            RedisDirectory::connect(&url, config)
                .await
                .expect("connect to TEST_REDIS_URL"),
        );
        Some(Harness {
            directory: directory.clone(),
            backend: Backend::Redis {
                directory,
                url,
                prefix,
            },
        })
    }

    /// Work done by matchmakes so far: rooms examined (memory) or Redis commands run (Redis).
    fn matchmake_work(&self) -> u64 {
        match &self.backend {
            Backend::Memory(memory) => memory.rooms_examined(),
            Backend::Redis { directory, .. } => directory.matchmake_commands(),
        }
    }

    async fn cleanup(&self) {
        if let Backend::Redis { url, prefix, .. } = &self.backend {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut connection)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }

    async fn beat(&self, heartbeat: &Heartbeat, now_ms: u64) {
        self.directory
            .heartbeat(heartbeat, LONG_TTL, now_ms)
            .await
            .unwrap();
    }

    async fn matchmake(
        &self,
        request: &MatchRequest,
        now_ms: u64,
    ) -> Result<Placement, MatchError> {
        self.directory.matchmake(request, &policy(), now_ms).await
    }
}

macro_rules! directory_suite {
    ($($scenario:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(&super::Harness::in_memory()).await;
                }
            )*
        }
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(harness) = super::Harness::redis().await {
                        // Run in a task so the keys are deleted even when the scenario panics.
                        let harness = std::sync::Arc::new(harness);
                        let scenario = tokio::spawn({
                            let harness = harness.clone();
                            async move { super::$scenario(&harness).await }
                        });
                        let outcome = scenario.await;
                        harness.cleanup().await;
                        if let Err(error) = outcome {
                            std::panic::resume_unwind(error.into_panic());
                        }
                    }
                }
            )*
        }
    };
}

directory_suite!(
    heartbeat_makes_node_and_rooms_visible,
    rooms_vanish_when_heartbeats_stop,
    matchmake_fills_the_fullest_room_and_reservations_count,
    new_room_counts_at_once_and_fills_before_its_node_reports_it,
    draining_nodes_and_rooms_receive_no_one,
    room_override_places_up_to_the_hard_cap_and_conflicts_beyond,
    concurrent_overrides_never_exceed_the_hard_cap,
    concurrent_automatic_matchmakes_never_exceed_the_soft_cap,
    reservations_expire_and_free_their_seats,
    confirmed_seat_keeps_counting_until_the_hold_ends,
    removed_node_takes_its_rooms_along,
    full_preferred_region_spills_to_the_nearest_other,
    spare_fraction_is_kept_across_the_region,
    matchmake_work_does_not_grow_with_the_directory,
    placement_signs_into_a_token_the_node_accepts,
    invalid_heartbeat_is_refused_and_changes_nothing,
    a_burst_between_heartbeats_spreads_new_rooms_over_nodes,
    concurrent_matchmakes_into_an_empty_region_open_one_room,
    a_concurrent_burst_fills_rooms_one_after_another_across_nodes,
    a_heartbeat_sampled_after_the_join_ends_the_confirmed_seat,
    rooms_of_one_mode_are_placed_only_with_players_of_that_mode,
    lobbies_are_listed_by_pool_filtered_and_paged,
    a_private_lobby_is_never_filled_by_quick_play_but_takes_lobby_joins,
);

fn lobby(map: &str, players: u32, phase: &str, private: bool, password: bool) -> LobbyStatus {
    LobbyStatus {
        map: map.to_owned(),
        max_players: 8,
        players,
        phase: phase.to_owned(),
        host: Some("host".to_owned()),
        host_id: Some("acc-host".to_owned()),
        private,
        password,
        custom: true,
        password_hash: password.then(|| "$argon2id$v=19$stand-in".to_owned()),
    }
}

/// A node running the arena and `duel`, with duel rooms that have the given lobbies.
fn lobby_heartbeat(node: &str, region_name: &str, lobbies: &[(&str, LobbyStatus)]) -> Heartbeat {
    let rooms: Vec<(&str, u32, RoomState)> = lobbies
        .iter()
        .map(|(id, lobby)| (*id, lobby.players, RoomState::Active))
        .collect();
    let mut beat = heartbeat(node, region_name, 1, &rooms);
    for (room, (_, lobby)) in beat.rooms.iter_mut().zip(lobbies) {
        room.mode = mode("duel");
        room.bots = 0;
        room.lobby = Some(lobby.clone());
    }
    beat.node.modes = vec![
        ModeCapacity {
            mode: GameMode::arena(),
            room_capacity: 1,
            rooms: 0,
            humans: 0,
        },
        ModeCapacity {
            mode: mode("duel"),
            room_capacity: 16,
            rooms: u32::try_from(lobbies.len()).unwrap(),
            humans: 0,
        },
    ];
    beat
}

async fn lobbies_are_listed_by_pool_filtered_and_paged(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &lobby_heartbeat(
                "node-a",
                "us-east",
                &[
                    ("l-1", lobby("foundry", 2, "waiting", false, false)),
                    ("l-2", lobby("docks", 8, "waiting", false, false)),
                    ("l-3", lobby("foundry", 4, "in_progress", false, false)),
                    ("l-4", lobby("foundry", 1, "waiting", true, true)),
                    ("l-5", lobby("foundry", 3, "waiting", false, false)),
                ],
            ),
            now,
        )
        .await;
    harness
        .beat(
            &lobby_heartbeat(
                "node-w",
                "us-west",
                &[("w-1", lobby("foundry", 1, "waiting", false, false))],
            ),
            now,
        )
        .await;
    // An arena room has no lobby: never listed.
    harness
        .beat(
            &heartbeat("node-r", "us-east", 1, &[("arena-1", 5, RoomState::Active)]),
            now,
        )
        .await;
    let query = |regions: &[&str]| LobbyQuery {
        mode: mode("duel"),
        regions: regions.iter().map(|name| region(name)).collect(),
        map: None,
        not_full: false,
        not_started: false,
        no_password: false,
        limit: 10,
        after: None,
    };
    let ids = |page: &LobbyPage| -> Vec<String> {
        page.lobbies
            .iter()
            .map(|room| room.room_id.to_string())
            .collect()
    };
    let all = list_lobbies(harness.directory.as_ref(), &query(&["us-east"]), now)
        .await
        .unwrap();
    assert_eq!(ids(&all), ["l-1", "l-2", "l-3", "l-4", "l-5"]);
    assert_eq!(all.next, None);
    assert_eq!(
        all.lobbies[3].lobby,
        Some(lobby("foundry", 1, "waiting", true, true))
    );
    // Filters: the map, not full, not started, no password.
    let open = LobbyQuery {
        map: Some("foundry".to_owned()),
        not_full: true,
        not_started: true,
        no_password: true,
        ..query(&["us-east"])
    };
    let page = list_lobbies(harness.directory.as_ref(), &open, now)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["l-1", "l-5"]);
    // Paging: two at a time, across both regions in the order asked, nothing twice.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let page_query = LobbyQuery {
            limit: 2,
            after: after.clone(),
            ..query(&["us-east", "us-west"])
        };
        let page = list_lobbies(harness.directory.as_ref(), &page_query, now)
            .await
            .unwrap();
        assert!(page.lobbies.len() <= 2);
        seen.extend(ids(&page));
        match page.next {
            Some(cursor) => {
                let text = cursor.encode();
                after = Some(LobbyCursor::parse(&text).unwrap());
            }
            None => break,
        }
    }
    assert_eq!(seen, ["l-1", "l-2", "l-3", "l-4", "l-5", "w-1"]);
    // A room whose node stops reporting it leaves the listing with the next heartbeat.
    harness
        .beat(
            &lobby_heartbeat(
                "node-a",
                "us-east",
                &[("l-2", lobby("docks", 8, "waiting", false, false))],
            ),
            now + 1,
        )
        .await;
    let after_leave = list_lobbies(harness.directory.as_ref(), &query(&["us-east"]), now + 1)
        .await
        .unwrap();
    assert_eq!(ids(&after_leave), ["l-2"]);
    let status = harness
        .directory
        .room_status(&room_id("l-2"), now + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.lobby.unwrap().map, "docks");
    assert_eq!(
        harness
            .directory
            .room_status(&room_id("l-1"), now + 1)
            .await
            .unwrap(),
        None
    );
}

async fn a_private_lobby_is_never_filled_by_quick_play_but_takes_lobby_joins(harness: &Harness) {
    let now = wall_clock_ms();
    let mut beat = lobby_heartbeat("node-a", "us-east", &[]);
    beat.node.modes[1].room_capacity = 2;
    harness.beat(&beat, now).await;
    let create = MatchRequest {
        mode: mode("duel"),
        fresh_room: true,
        private: true,
        ..request()
    };
    let created = harness.matchmake(&create, now).await.unwrap();
    assert!(created.new_room);
    // Before its node reports it, quick play does not land in the new private room.
    let quick = MatchRequest {
        mode: mode("duel"),
        ..request()
    };
    let quick_seat = harness.matchmake(&quick, now).await.unwrap();
    assert_ne!(quick_seat.room_id, created.room_id);
    // Its node reports it as a private lobby (joinable: the game takes players).
    let mut beat = lobby_heartbeat(
        "node-a",
        "us-east",
        &[
            (
                created.room_id.as_str(),
                // The creator holds its reservation and has not joined yet.
                lobby("foundry", 0, "waiting", true, false),
            ),
            (
                quick_seat.room_id.as_str(),
                LobbyStatus {
                    custom: false,
                    ..lobby("foundry", 1, "waiting", false, false)
                },
            ),
        ],
    );
    beat.node.modes[1].room_capacity = 2;
    harness.beat(&beat, now + 1).await;
    for _ in 0..3 {
        let seat = harness.matchmake(&quick, now + 1).await;
        assert!(
            seat.as_ref()
                .map_or(true, |seat| seat.room_id != created.room_id),
            "{seat:?}"
        );
    }
    // A lobby join (the API checked the password or invite) names the room and gets in.
    let join = MatchRequest {
        mode: mode("duel"),
        room_override: Some(created.room_id.clone()),
        ..request()
    };
    let joined = harness.matchmake(&join, now + 1).await.unwrap();
    assert_eq!(joined.room_id, created.room_id);
}

#[tokio::test]
async fn unreachable_redis_is_an_error_within_the_timeout_not_a_hang() {
    let config = RedisDirectoryConfig {
        command_timeout: Duration::from_millis(300),
        ..RedisDirectoryConfig::default()
    };
    // Port 1 on loopback: nothing listens there.
    let result = RedisDirectory::connect("redis://127.0.0.1:1", config).await;
    assert!(
        matches!(
            result,
            Err(coil_match::DirectoryError::Timeout { .. }
                | coil_match::DirectoryError::Store { .. })
        ),
        "{result:?}"
    );
}

async fn invalid_heartbeat_is_refused_and_changes_nothing(harness: &Harness) {
    let now = wall_clock_ms();
    let mut foreign = heartbeat("node-a", "us-east", 2, &[("r-1", 5, RoomState::Active)]);
    foreign.rooms[0].node_id = node_id("node-b");
    let result = harness.directory.heartbeat(&foreign, LONG_TTL, now).await;
    assert!(
        matches!(result, Err(coil_match::DirectoryError::InvalidHeartbeat(_))),
        "{result:?}"
    );
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    assert!(snapshot.nodes.is_empty() && snapshot.rooms.is_empty());
}

async fn heartbeat_makes_node_and_rooms_visible(harness: &Harness) {
    let now = wall_clock_ms();
    let east = region("us-east");
    harness
        .beat(
            &heartbeat(
                "node-a",
                "us-east",
                4,
                &[("r-1", 3, RoomState::Active), ("r-2", 0, RoomState::Warm)],
            ),
            now,
        )
        .await;
    let snapshot = harness.directory.region_snapshot(&east, now).await.unwrap();
    assert_eq!(snapshot.nodes.len(), 1);
    assert_eq!(snapshot.nodes[0].public_url, "ws://127.0.0.1:9006");
    assert_eq!(snapshot.nodes[0].room_capacity, 4);
    let ids: Vec<&str> = snapshot
        .rooms
        .iter()
        .map(|room| room.status.room_id.as_str())
        .collect();
    assert_eq!(ids, ["r-1", "r-2"]);
    let first = snapshot.room(&room_id("r-1")).unwrap();
    assert_eq!(
        (first.status.humans, first.status.bots, first.status.state),
        (3, 10, RoomState::Active)
    );
    assert_eq!((first.reserved, first.pending), (0, false));
    // Another region sees nothing.
    assert!(
        harness
            .directory
            .region_snapshot(&region("us-west"), now)
            .await
            .unwrap()
            .rooms
            .is_empty()
    );
    // A room the node stops reporting is gone at once, and updates are applied.
    harness
        .beat(
            &heartbeat("node-a", "us-east", 4, &[("r-1", 7, RoomState::Active)]),
            now + 1_000,
        )
        .await;
    let snapshot = harness
        .directory
        .region_snapshot(&east, now + 1_000)
        .await
        .unwrap();
    assert_eq!(snapshot.rooms.len(), 1);
    assert_eq!(snapshot.rooms[0].status.humans, 7);
}

async fn rooms_vanish_when_heartbeats_stop(harness: &Harness) {
    let east = region("us-east");
    let beat = heartbeat("node-a", "us-east", 4, &[("r-1", 3, RoomState::Active)]);
    harness
        .directory
        .heartbeat(&beat, Duration::from_millis(1_000), wall_clock_ms())
        .await
        .unwrap();
    assert_eq!(
        harness
            .directory
            .region_snapshot(&east, wall_clock_ms())
            .await
            .unwrap()
            .rooms
            .len(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = harness
            .directory
            .region_snapshot(&east, wall_clock_ms())
            .await
            .unwrap();
        if snapshot.rooms.is_empty() && snapshot.nodes.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rooms of a silent node are still listed: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And nobody is placed on the dead node.
    assert!(matches!(
        harness.matchmake(&request(), wall_clock_ms()).await,
        Err(MatchError::NoCapacity { .. })
    ));
}

async fn matchmake_fills_the_fullest_room_and_reservations_count(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat(
                "node-a",
                "us-east",
                3,
                &[
                    ("r-10", 10, RoomState::Active),
                    ("r-50", 50, RoomState::Active),
                    ("r-118", 118, RoomState::Active),
                ],
            ),
            now,
        )
        .await;
    let mut rooms = Vec::new();
    for _ in 0..4 {
        rooms.push(
            harness
                .matchmake(&request(), now)
                .await
                .unwrap()
                .room_id
                .to_string(),
        );
    }
    // 118 + 2 reservations reaches the soft cap; then the next fullest.
    assert_eq!(rooms, ["r-118", "r-118", "r-50", "r-50"]);
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    assert_eq!(snapshot.room(&room_id("r-118")).unwrap().reserved, 2);
    assert_eq!(snapshot.room(&room_id("r-50")).unwrap().reserved, 2);
}

async fn new_room_counts_at_once_and_fills_before_its_node_reports_it(harness: &Harness) {
    let now = wall_clock_ms();
    // One room slot taken by a room that takes no one: the matchmaker must open a room.
    let mut closed = heartbeat(
        "node-a",
        "us-east",
        2,
        &[("r-closed", 0, RoomState::Active)],
    );
    closed.rooms[0].joinable = false;
    harness.beat(&closed, now).await;
    let first = harness.matchmake(&request(), now).await.unwrap();
    assert!(first.new_room);
    assert_eq!(first.node_id, node_id("node-a"));
    assert!(
        first.room_id.as_str().starts_with("us-east-"),
        "{}",
        first.room_id
    );
    assert_eq!(
        first.ws_url(),
        format!("ws://127.0.0.1:9006/api/room/{}", first.room_id)
    );
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    let pending = snapshot
        .room(&first.room_id)
        .expect("the new room is listed before its node reports it");
    assert!(pending.pending);
    assert_eq!(pending.reserved, 1);
    // The next player goes into the pending room, not another new one.
    let second = harness.matchmake(&request(), now).await.unwrap();
    assert_eq!(second.room_id, first.room_id);
    assert!(!second.new_room);
    // The node is now at its 2 room slots (1 reported + 1 pending): no third room.
    let mut full = closed.clone();
    harness.beat(&full, now + 10).await;
    let policy = PlacementPolicy {
        soft_cap: 2,
        ..policy()
    };
    assert!(matches!(
        harness
            .directory
            .matchmake(&request(), &policy, now + 10)
            .await,
        Err(MatchError::NoCapacity { .. })
    ));
    // Once the node reports the room, it is an ordinary room holding its reservations.
    full.rooms.push(RoomStatus {
        room_id: first.room_id.clone(),
        humans: 0,
        ..full.rooms[0].clone()
    });
    full.node.rooms = 2;
    harness.beat(&full, now + 20).await;
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now + 20)
        .await
        .unwrap();
    let reported = snapshot.room(&first.room_id).unwrap();
    assert_eq!((reported.pending, reported.reserved), (false, 2));
}

async fn draining_nodes_and_rooms_receive_no_one(harness: &Harness) {
    let now = wall_clock_ms();
    let mut draining_room = heartbeat("node-a", "us-east", 2, &[("r-a", 50, RoomState::Draining)]);
    harness.beat(&draining_room, now).await;
    harness
        .beat(
            &heartbeat("node-b", "us-east", 1, &[("r-b", 60, RoomState::Active)]),
            now,
        )
        .await;
    // r-a is DRAINING; r-b is the only room open; node-a may still open a new room.
    assert_eq!(
        harness.matchmake(&request(), now).await.unwrap().room_id,
        room_id("r-b")
    );
    assert!(
        harness
            .directory
            .mark_node_draining(&node_id("node-b"), now)
            .await
            .unwrap()
    );
    assert!(
        !harness
            .directory
            .mark_node_draining(&node_id("node-unknown"), now)
            .await
            .unwrap()
    );
    // node-b drains: its room is closed; the only option is a new room on node-a.
    let placed = harness.matchmake(&request(), now).await.unwrap();
    assert!(placed.new_room);
    assert_eq!(placed.node_id, node_id("node-a"));
    // The drain mark survives the node's own "ACTIVE" heartbeats.
    harness
        .beat(
            &heartbeat("node-b", "us-east", 1, &[("r-b", 60, RoomState::Active)]),
            now + 10,
        )
        .await;
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now + 10)
        .await
        .unwrap();
    let node_b = snapshot
        .nodes
        .iter()
        .find(|node| node.node_id == node_id("node-b"))
        .unwrap();
    assert_eq!(node_b.state, NodeState::Draining);
    // Now node-a drains by its own heartbeat: nothing is left.
    draining_room.node.state = NodeState::Draining;
    harness.beat(&draining_room, now + 10).await;
    assert!(matches!(
        harness.matchmake(&request(), now + 10).await,
        Err(MatchError::NoCapacity { .. })
    ));
    // Overrides into draining rooms conflict.
    match harness.matchmake(&override_request("r-b"), now + 10).await {
        Err(MatchError::OverrideConflict {
            reason: ConflictReason::Draining,
            ..
        }) => {}
        other => panic!("expected a draining conflict, got {other:?}"),
    }
}

async fn room_override_places_up_to_the_hard_cap_and_conflicts_beyond(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat(
                "node-a",
                "us-east",
                2,
                &[
                    ("r-party", 138, RoomState::Active),
                    ("r-open", 20, RoomState::Active),
                ],
            ),
            now,
        )
        .await;
    for _ in 0..2 {
        assert_eq!(
            harness
                .matchmake(&override_request("r-party"), now)
                .await
                .unwrap()
                .room_id,
            room_id("r-party")
        );
    }
    match harness.matchmake(&override_request("r-party"), now).await {
        Err(MatchError::OverrideConflict {
            reason: ConflictReason::Full,
            suggested,
            ..
        }) => {
            assert_eq!(suggested, Some(room_id("r-open")));
        }
        other => panic!("expected a full conflict, got {other:?}"),
    }
    match harness.matchmake(&override_request("r-nowhere"), now).await {
        Err(MatchError::OverrideConflict {
            reason: ConflictReason::Unknown,
            suggested,
            ..
        }) => {
            assert_eq!(suggested, Some(room_id("r-open")));
        }
        other => panic!("expected an unknown-room conflict, got {other:?}"),
    }
}

async fn run_concurrently(
    harness: &Harness,
    request: MatchRequest,
    count: usize,
    now: u64,
) -> Vec<Result<Placement, MatchError>> {
    run_concurrently_with(harness, request, policy(), count, now).await
}

async fn run_concurrently_with(
    harness: &Harness,
    request: MatchRequest,
    policy: PlacementPolicy,
    count: usize,
    now: u64,
) -> Vec<Result<Placement, MatchError>> {
    let policy = Arc::new(policy);
    let request = Arc::new(request);
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let directory = harness.directory.clone();
            let (policy, request) = (policy.clone(), request.clone());
            tokio::spawn(async move { directory.matchmake(&request, &policy, now).await })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn concurrent_overrides_never_exceed_the_hard_cap(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat(
                "node-a",
                "us-east",
                1,
                &[("r-party", 100, RoomState::Active)],
            ),
            now,
        )
        .await;
    let results = run_concurrently(harness, override_request("r-party"), 500, now).await;
    let placed = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(
        placed,
        140 - 100,
        "exactly the free seats up to the hard cap are handed out"
    );
    for result in &results {
        match result {
            Ok(placement) => assert_eq!(placement.room_id, room_id("r-party")),
            Err(MatchError::OverrideConflict {
                reason: ConflictReason::Full,
                ..
            }) => {}
            Err(other) => panic!("unexpected failure: {other:?}"),
        }
    }
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    let room = snapshot.room(&room_id("r-party")).unwrap();
    assert_eq!(room.status.humans + room.reserved, 140);
}

async fn concurrent_automatic_matchmakes_never_exceed_the_soft_cap(harness: &Harness) {
    let now = wall_clock_ms();
    // One node, one room slot, already used: every seat comes from r-only.
    harness
        .beat(
            &heartbeat(
                "node-a",
                "us-east",
                1,
                &[("r-only", 100, RoomState::Active)],
            ),
            now,
        )
        .await;
    let results = run_concurrently(harness, request(), 500, now).await;
    let placed = results.iter().filter(|result| result.is_ok()).count();
    // A reservation only fails once the room is full, so exactly the free seats are handed out.
    assert_eq!(placed, 120 - 100);
    for result in &results {
        assert!(
            matches!(result, Ok(_) | Err(MatchError::NoCapacity { .. })),
            "{result:?}"
        );
    }
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    let room = snapshot.room(&room_id("r-only")).unwrap();
    assert_eq!(u64::from(room.reserved), u64::try_from(placed).unwrap());
    assert_eq!(room.status.humans + room.reserved, 120);
}

async fn reservations_expire_and_free_their_seats(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat("node-a", "us-east", 1, &[("r-1", 119, RoomState::Active)]),
            now,
        )
        .await;
    let placement = harness.matchmake(&request(), now).await.unwrap();
    assert_eq!(placement.reservation_expires_at_ms, now + 5_000);
    assert!(matches!(
        harness.matchmake(&request(), now + 4_999).await,
        Err(MatchError::NoCapacity { .. })
    ));
    // The player never showed up: at expiry the seat is free again.
    let later = harness.matchmake(&request(), now + 5_000).await.unwrap();
    assert_eq!(later.room_id, room_id("r-1"));
    assert_ne!(later.reservation, placement.reservation);
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now + 5_000)
        .await
        .unwrap();
    assert_eq!(snapshot.room(&room_id("r-1")).unwrap().reserved, 1);
}

async fn confirmed_seat_keeps_counting_until_the_hold_ends(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat("node-a", "us-east", 1, &[("r-1", 119, RoomState::Active)]),
            now,
        )
        .await;
    let policy = PlacementPolicy {
        seat_reservation_ttl_ms: 30_000,
        ..policy()
    };
    let placement = harness
        .directory
        .matchmake(&request(), &policy, now)
        .await
        .unwrap();
    let hold = DirectoryOptions::default().confirmed_seat_hold_ms;
    // Joined 1 s later: the reservation now ends at now + 1 s + hold, sooner than its TTL would.
    let joined = now + 1_000;
    assert!(
        harness
            .directory
            .confirm_seat(&placement.room_id, &placement.reservation, joined)
            .await
            .unwrap()
    );
    let reserved_at = |at| {
        let directory = harness.directory.clone();
        async move {
            directory
                .region_snapshot(&region("us-east"), at)
                .await
                .unwrap()
                .room(&room_id("r-1"))
                .unwrap()
                .reserved
        }
    };
    assert_eq!(reserved_at(joined + hold - 1).await, 1);
    assert_eq!(reserved_at(joined + hold).await, 0);
    assert!(
        joined + hold < placement.reservation_expires_at_ms,
        "the hold is shorter than the TTL"
    );
    // Unknown or expired reservations are not confirmed.
    assert!(
        !harness
            .directory
            .confirm_seat(&placement.room_id, &coil_match::Nonce::random(), joined)
            .await
            .unwrap()
    );
    assert!(
        !harness
            .directory
            .confirm_seat(&placement.room_id, &placement.reservation, joined + hold)
            .await
            .unwrap()
    );
}

async fn removed_node_takes_its_rooms_along(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat("node-a", "us-east", 2, &[("r-1", 5, RoomState::Active)]),
            now,
        )
        .await;
    harness
        .beat(
            &heartbeat("node-b", "us-east", 2, &[("r-2", 5, RoomState::Active)]),
            now,
        )
        .await;
    harness
        .directory
        .remove_node(&node_id("node-a"))
        .await
        .unwrap();
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    assert_eq!(snapshot.nodes.len(), 1);
    assert!(snapshot.room(&room_id("r-1")).is_none());
    for _ in 0..5 {
        let placement = harness.matchmake(&request(), now).await.unwrap();
        assert_eq!(placement.node_id, node_id("node-b"));
    }
}

async fn full_preferred_region_spills_to_the_nearest_other(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat(
                "node-east",
                "us-east",
                1,
                &[("r-east", 120, RoomState::Active)],
            ),
            now,
        )
        .await;
    harness
        .beat(
            &heartbeat(
                "node-west",
                "us-west",
                1,
                &[("r-west", 40, RoomState::Active)],
            ),
            now,
        )
        .await;
    harness
        .beat(
            &heartbeat(
                "node-eu",
                "eu-central",
                1,
                &[("r-eu", 80, RoomState::Active)],
            ),
            now,
        )
        .await;
    let placement = harness.matchmake(&request(), now).await.unwrap();
    assert_eq!(
        (placement.room_id, placement.region),
        (room_id("r-west"), region("us-west"))
    );
    // eu-central is not a neighbour of us-east: never used, even when us-west fills.
    harness
        .beat(
            &heartbeat(
                "node-west",
                "us-west",
                1,
                &[("r-west", 120, RoomState::Active)],
            ),
            now,
        )
        .await;
    assert!(matches!(
        harness.matchmake(&request(), now).await,
        Err(MatchError::NoCapacity { retry_after_s: 5 })
    ));
    // A room slot free in us-west: the spilled player opens a room there, named for its region.
    harness
        .beat(
            &heartbeat(
                "node-west",
                "us-west",
                2,
                &[("r-west", 120, RoomState::Active)],
            ),
            now,
        )
        .await;
    let opened = harness.matchmake(&request(), now).await.unwrap();
    assert!(opened.new_room);
    assert_eq!(opened.region, region("us-west"));
    assert!(
        opened.room_id.as_str().starts_with("us-west-"),
        "{}",
        opened.room_id
    );
}

async fn spare_fraction_is_kept_across_the_region(harness: &Harness) {
    let now = wall_clock_ms();
    // 2 nodes × 1 room slot × 120 = 240 seats; 15% spare leaves 204 placeable; 203 are taken.
    harness
        .beat(
            &heartbeat("node-a", "us-east", 1, &[("r-a", 110, RoomState::Active)]),
            now,
        )
        .await;
    harness
        .beat(
            &heartbeat("node-b", "us-east", 1, &[("r-b", 93, RoomState::Active)]),
            now,
        )
        .await;
    let policy = PlacementPolicy {
        spare_fraction: 0.15,
        ..policy()
    };
    let placed = harness
        .directory
        .matchmake(&request(), &policy, now)
        .await
        .unwrap();
    assert_eq!(placed.room_id, room_id("r-a"));
    // 204 committed: the rest of us-east is spare, kept for parties and reconnects.
    assert!(matches!(
        harness.directory.matchmake(&request(), &policy, now).await,
        Err(MatchError::NoCapacity { .. })
    ));
    assert_eq!(
        harness
            .directory
            .matchmake(&override_request("r-b"), &policy, now)
            .await
            .unwrap()
            .room_id,
        room_id("r-b")
    );
}

async fn matchmake_work_does_not_grow_with_the_directory(harness: &Harness) {
    let now = wall_clock_ms();
    // Beats `nodes` nodes of 20 rooms each into `region_name`.
    let fill_region = |region_name: &'static str, nodes: u32| async move {
        for node in 0..nodes {
            let ids: Vec<(String, u32)> = (0..20)
                .map(|index| {
                    (
                        format!("{region_name}-{node}-{index}"),
                        10 + (node + index) % 100,
                    )
                })
                .collect();
            let rooms: Vec<(&str, u32, RoomState)> = ids
                .iter()
                .map(|(id, humans)| (id.as_str(), *humans, RoomState::Active))
                .collect();
            harness
                .beat(
                    &heartbeat(&format!("{region_name}-n{node}"), region_name, 30, &rooms),
                    now,
                )
                .await;
        }
    };
    let measure = |preferred: &'static str| async move {
        let before = harness.matchmake_work();
        let request = MatchRequest {
            preferred_region: Some(region(preferred)),
            ..request()
        };
        let placement = harness.matchmake(&request, now).await.unwrap();
        assert_eq!(placement.region, region(preferred));
        harness.matchmake_work() - before
    };
    // 200 rooms on 10 nodes, then 2,000 rooms on 100 nodes: both have more rooms and nodes than
    // placement reads, so any growth would come from scanning.
    fill_region("us-west", 10).await;
    fill_region("us-east", 100).await;
    assert_eq!(
        harness
            .directory
            .region_snapshot(&region("us-east"), now)
            .await
            .unwrap()
            .rooms
            .len(),
        2_000
    );
    let small_work = measure("us-west").await;
    let large_work = measure("us-east").await;
    eprintln!("matchmake work: {small_work} with 200 rooms, {large_work} with 2,000 rooms");
    assert!(large_work <= small_work + 5, "{large_work} vs {small_work}");
    assert!(large_work <= 80, "{large_work}");
}

async fn placement_signs_into_a_token_the_node_accepts(harness: &Harness) {
    let now = wall_clock_ms();
    harness
        .beat(
            &heartbeat("node-a", "us-east", 1, &[("r-1", 10, RoomState::Active)]),
            now,
        )
        .await;
    let placement = harness.matchmake(&request(), now).await.unwrap();
    let signer = TokenSigner::generate();
    let claims = placement.join_claims("player-1", "Ann", Duration::from_secs(20), now);
    let token = signer.sign(&claims).unwrap();
    let guard = coil_match::ReplayGuard::default();
    let verifier =
        coil_match::TokenVerifier::from_public_key_base64(&signer.public_key_base64()).unwrap();
    let admitted = coil_match::admit_join(
        &verifier,
        &guard,
        token.as_bytes(),
        "r-1",
        "node-a",
        now + 100,
    )
    .unwrap();
    // The node confirms the seat with the nonce the token carried.
    assert!(
        harness
            .directory
            .confirm_seat(&room_id(&admitted.room_id), &admitted.nonce, now + 100)
            .await
            .unwrap()
    );
    assert!(
        coil_match::admit_join(
            &verifier,
            &guard,
            token.as_bytes(),
            "r-1",
            "node-a",
            now + 200
        )
        .is_err()
    );
}

/// Runs a Redis-only scenario with cleanup even on panic (skipped without `TEST_REDIS_URL`).
async fn with_redis<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<Harness>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(harness) = Harness::redis().await else {
        return;
    };
    let harness = Arc::new(harness);
    let outcome = tokio::spawn(scenario(harness.clone())).await;
    harness.cleanup().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn redis_connection(harness: &Harness) -> (redis::aio::MultiplexedConnection, String) {
    let Backend::Redis { url, prefix, .. } = &harness.backend else {
        unreachable!("a Redis harness")
    };
    let client = redis::Client::open(url.as_str()).unwrap();
    (
        client.get_multiplexed_async_connection().await.unwrap(),
        prefix.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_index_entries_are_cleaned_once_their_keys_expire() {
    with_redis(|harness| async move {
        let beat = heartbeat(
            "node-a",
            "us-east",
            4,
            &[("r-1", 3, RoomState::Active), ("r-2", 0, RoomState::Warm)],
        );
        harness
            .directory
            .heartbeat(&beat, Duration::from_millis(1_000), wall_clock_ms())
            .await
            .unwrap();
        let (mut connection, prefix) = redis_connection(&harness).await;
        let fill_key = format!("{prefix}pool:us-east/arena:fill");
        let fill: u64 = redis::cmd("ZCARD")
            .arg(&fill_key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(fill, 2);
        // Wait for Redis to expire the node and room keys (its own clock, hence the polling).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let exists: u64 = redis::cmd("EXISTS")
                .arg(format!("{prefix}node:node-a"))
                .arg(format!("{prefix}room:r-1"))
                .arg(format!("{prefix}room:r-2"))
                .query_async(&mut connection)
                .await
                .unwrap();
            if exists == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "keys outlived their TTL");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The next read finds the dangling index entries and removes them.
        assert!(matches!(
            harness.matchmake(&request(), wall_clock_ms()).await,
            Err(MatchError::NoCapacity { .. })
        ));
        for (command, key) in [
            ("ZCARD", fill_key.clone()),
            ("ZCARD", format!("{prefix}pool:us-east/arena:open")),
            ("HLEN", format!("{prefix}pool:us-east/arena:nodes")),
        ] {
            let left: u64 = redis::cmd(command)
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            assert_eq!(left, 0, "{key} still has entries");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matchmakers_on_one_redis_never_overfill_a_room() {
    with_redis(|harness| async move {
        let now = wall_clock_ms();
        harness
            .beat(
                &heartbeat(
                    "node-a",
                    "us-east",
                    1,
                    &[("r-party", 100, RoomState::Active)],
                ),
                now,
            )
            .await;
        // A second matchmaker process: its own connection, the same keys.
        let Backend::Redis { url, prefix, .. } = &harness.backend else {
            unreachable!("a Redis harness")
        };
        let config = RedisDirectoryConfig {
            key_prefix: prefix.clone(),
            command_timeout: Duration::from_secs(10),
            options: DirectoryOptions::default(),
            ..RedisDirectoryConfig::default()
        };
        let second: Arc<dyn RoomDirectory> =
            Arc::new(RedisDirectory::connect(url, config).await.unwrap());
        let policy = Arc::new(policy());
        let request = Arc::new(override_request("r-party"));
        let tasks: Vec<_> = (0..300)
            .map(|index| {
                let directory = if index % 2 == 0 {
                    harness.directory.clone()
                } else {
                    second.clone()
                };
                let (policy, request) = (policy.clone(), request.clone());
                tokio::spawn(async move { directory.matchmake(&request, &policy, now).await })
            })
            .collect();
        let mut placed = 0;
        for task in tasks {
            if task.await.unwrap().is_ok() {
                placed += 1;
            }
        }
        assert_eq!(placed, 40);
        let snapshot = second
            .region_snapshot(&region("us-east"), now)
            .await
            .unwrap();
        assert_eq!(snapshot.room(&room_id("r-party")).unwrap().reserved, 40);
    })
    .await;
}

/// A burst that fits inside one heartbeat interval: no node has reported any player yet, so
/// new rooms must go by the rooms the matchmaker itself opened, one node after another.
async fn a_burst_between_heartbeats_spreads_new_rooms_over_nodes(harness: &Harness) {
    let now = wall_clock_ms();
    for node in ["node-a", "node-b", "node-c"] {
        harness.beat(&heartbeat(node, "us-east", 4, &[]), now).await;
    }
    let policy = PlacementPolicy {
        soft_cap: 4,
        ..policy()
    };
    let mut rooms_per_node = BTreeMap::<String, BTreeSet<String>>::new();
    for step in 0..36 {
        let placement = harness
            .directory
            .matchmake(&request(), &policy, now + step)
            .await
            .unwrap();
        rooms_per_node
            .entry(placement.node_id.to_string())
            .or_default()
            .insert(placement.room_id.to_string());
    }
    let counts: Vec<usize> = rooms_per_node.values().map(|rooms| rooms.len()).collect();
    assert_eq!(counts, vec![3, 3, 3], "{rooms_per_node:?}");
}

/// Fifty players at once into a region with no room: each of them reads "no room, open one",
/// but only one room may be opened (the others must see it and join it), or a burst would
/// scatter into one half-empty room per concurrent request, all on the same node.
async fn concurrent_matchmakes_into_an_empty_region_open_one_room(harness: &Harness) {
    let now = wall_clock_ms();
    for node in ["node-a", "node-b", "node-c"] {
        harness
            .beat(&heartbeat(node, "us-east", 16, &[]), now)
            .await;
    }
    let placements = run_concurrently(harness, request(), 50, now).await;
    let rooms: BTreeSet<String> = placements
        .iter()
        .map(|placement| placement.as_ref().unwrap().room_id.to_string())
        .collect();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    assert_eq!(snapshot.rooms.len(), 1);
    assert_eq!(snapshot.rooms[0].reserved, 50);
}

/// A joined player is counted once: by the reservation until the node's heartbeat includes
/// them in `humans`, then by `humans` alone.
async fn a_heartbeat_sampled_after_the_join_ends_the_confirmed_seat(harness: &Harness) {
    let now = wall_clock_ms();
    let beat = |humans| {
        heartbeat(
            "node-a",
            "us-east",
            1,
            &[("r-1", humans, RoomState::Active)],
        )
    };
    harness.beat(&beat(10), now).await;
    let first = harness.matchmake(&request(), now).await.unwrap();
    let second = harness.matchmake(&request(), now).await.unwrap();
    let reserved_at = |at| {
        let directory = harness.directory.clone();
        async move {
            directory
                .region_snapshot(&region("us-east"), at)
                .await
                .unwrap()
                .room(&room_id("r-1"))
                .unwrap()
                .reserved
        }
    };
    assert_eq!(reserved_at(now).await, 2);
    let joined = now + 1_000;
    for placement in [&first, &second] {
        assert!(
            harness
                .directory
                .confirm_seat(&placement.room_id, &placement.reservation, joined)
                .await
                .unwrap()
        );
    }
    // A heartbeat sampled before the join does not count the players yet: the seats stay.
    harness.beat(&beat(10), joined - 1).await;
    assert_eq!(reserved_at(joined).await, 2);
    // The first heartbeat sampled after the join counts them in humans and ends the seats.
    harness.beat(&beat(12), joined + 400).await;
    assert_eq!(reserved_at(joined + 400).await, 0);
    // Unconfirmed reservations are untouched by heartbeats.
    let third = harness.matchmake(&request(), joined + 500).await.unwrap();
    harness.beat(&beat(12), joined + 900).await;
    assert_eq!(reserved_at(joined + 900).await, 1);
    assert_eq!(third.room_id, room_id("r-1"));
}

/// Sixty concurrent players, rooms of ten: six full rooms, two per node, however the races go.
async fn a_concurrent_burst_fills_rooms_one_after_another_across_nodes(harness: &Harness) {
    let now = wall_clock_ms();
    for node in ["node-a", "node-b", "node-c"] {
        harness
            .beat(&heartbeat(node, "us-east", 16, &[]), now)
            .await;
    }
    let policy = PlacementPolicy {
        soft_cap: 10,
        ..policy()
    };
    let mut per_room = BTreeMap::<String, (String, usize)>::new();
    for placement in run_concurrently_with(harness, request(), policy, 60, now).await {
        let placement = placement.unwrap();
        per_room
            .entry(placement.room_id.to_string())
            .or_insert((placement.node_id.to_string(), 0))
            .1 += 1;
    }
    let sizes: Vec<usize> = per_room.values().map(|(_, players)| *players).collect();
    assert_eq!(sizes, vec![10; 6], "{per_room:?}");
    let mut rooms_per_node = BTreeMap::<&str, usize>::new();
    for (node, _) in per_room.values() {
        *rooms_per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        rooms_per_node.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per_room:?}"
    );
}

/// Automatic matchmakes that arrive together share one candidates read, and the shared
/// snapshot never overfills a room: the reserve scripts settle the races it causes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_matchmakes_share_candidate_reads() {
    with_redis(|harness| async move {
        let now = wall_clock_ms();
        for node in ["node-a", "node-b"] {
            harness
                .beat(&heartbeat(node, "us-east", 16, &[]), now)
                .await;
        }
        let Backend::Redis { directory, .. } = &harness.backend else {
            unreachable!("a Redis harness")
        };
        let reads_before = directory.candidate_reads();
        let policy = PlacementPolicy {
            soft_cap: 7,
            ..policy()
        };
        let mut per_room = BTreeMap::<String, u32>::new();
        for placement in run_concurrently_with(&harness, request(), policy, 200, now).await {
            *per_room
                .entry(placement.unwrap().room_id.to_string())
                .or_default() += 1;
        }
        let reads = directory.candidate_reads() - reads_before;
        assert!(reads < 200, "{reads} reads for 200 concurrent matchmakes");
        assert!(
            per_room.values().all(|&players| players <= 7),
            "{per_room:?}"
        );
        assert_eq!(per_room.len(), 200usize.div_ceil(7), "{per_room:?}");
    })
    .await;
}

/// Two modes on one node: each placed only into its own rooms, with its own caps and room slots.
async fn rooms_of_one_mode_are_placed_only_with_players_of_that_mode(harness: &Harness) {
    let now = wall_clock_ms();
    let mut beat = heartbeat("node-a", "us-east", 1, &[("r-arena", 3, RoomState::Active)]);
    beat.node.modes = vec![
        ModeCapacity {
            mode: GameMode::arena(),
            room_capacity: 1,
            rooms: 1,
            humans: 3,
        },
        ModeCapacity {
            mode: mode("duel"),
            room_capacity: 2,
            rooms: 0,
            humans: 0,
        },
    ];
    harness.beat(&beat, now).await;
    let duel = MatchRequest {
        mode: mode("duel"),
        ..request()
    };
    // The arena room has seats, but a duel player never goes there: a new duel room opens.
    let first = harness.matchmake(&duel, now).await.unwrap();
    assert!(first.new_room);
    assert_eq!(first.mode, mode("duel"));
    assert_ne!(first.room_id, room_id("r-arena"));
    let second = harness.matchmake(&duel, now).await.unwrap();
    assert_eq!(second.room_id, first.room_id, "fills the open duel room");
    // The duel room is at its soft cap of 2: the next duel opens the node's second duel slot.
    let third = harness.matchmake(&duel, now).await.unwrap();
    assert!(third.new_room);
    assert_ne!(third.room_id, first.room_id);
    // Arena players go to the arena room only, never into a duel room.
    for _ in 0..3 {
        let arena = harness.matchmake(&request(), now).await.unwrap();
        assert_eq!(arena.room_id, room_id("r-arena"));
        assert_eq!(arena.mode, GameMode::arena());
    }
    // An arena player naming a duel room is refused, with no seat taken.
    let crossed = harness
        .matchmake(&override_request(first.room_id.as_str()), now)
        .await;
    assert!(
        matches!(
            crossed,
            Err(MatchError::OverrideConflict {
                reason: ConflictReason::NotJoinable,
                ..
            })
        ),
        "{crossed:?}"
    );
    // A mode this matchmaker does not know is an error, not a placement.
    let unknown = MatchRequest {
        mode: mode("chess"),
        ..request()
    };
    assert!(matches!(
        harness.matchmake(&unknown, now).await,
        Err(MatchError::UnknownMode)
    ));
    // The snapshot lists each room with its mode.
    let snapshot = harness
        .directory
        .region_snapshot(&region("us-east"), now)
        .await
        .unwrap();
    let modes: BTreeSet<(String, String)> = snapshot
        .rooms
        .iter()
        .map(|entry| {
            (
                entry.status.room_id.to_string(),
                entry.status.mode.to_string(),
            )
        })
        .collect();
    assert!(modes.contains(&(first.room_id.to_string(), "duel".to_owned())));
    assert!(modes.contains(&("r-arena".to_owned(), "arena".to_owned())));
    assert_eq!(
        snapshot.nodes[0]
            .capacity_of(&mode("duel"))
            .unwrap()
            .room_capacity,
        2
    );
    // The node stops running duels: its duel slots are gone at once.
    let mut arena_only = beat.clone();
    arena_only.node.modes.truncate(1);
    harness.beat(&arena_only, now + 10).await;
    let after = harness.matchmake(&duel, now + 10).await;
    assert!(
        matches!(after, Err(MatchError::NoCapacity { .. })),
        "{after:?}"
    );
}
