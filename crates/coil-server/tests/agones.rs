//! The node under Agones (`AGONES=1`), end to end on 127.0.0.1: a real node with real
//! WebSocket players, talking to a local stand-in of the Agones SDK server's REST API
//! (`support/agones_sdk.rs`). Ready after the listener serves, the published address from the
//! GameServer, counters and Allocate that follow players, Ready again when empty, Shutdown after
//! a drain (SIGTERM or `/internal/drain`), and an SDK outage that the game does not notice.

#[path = "support/agones_sdk.rs"]
mod agones_sdk;
mod support;

use std::time::Duration;

use agones_sdk::{Call, Event, GameServer, Mode, StandIn};
use coil_server::agones::{AgonesConfig, PublishedUrl};
use serde_json::json;
use support::{Player, TestNode, metric_sum};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(15);

/// A port nothing listens on right now (bound, read, released), for a listener that must be
/// known before it exists: the node's own port in the GameServer status, or an SDK server
/// that starts later.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn counter_is(events: &[Event], name: &str, count: i64) -> bool {
    events.iter().rev().find_map(|event| match &event.call {
        Call::Counter { name: n, count, .. } if n == name => Some(*count),
        _ => None,
    }) == Some(count)
}

fn position(events: &[Event], wanted: impl Fn(&Call) -> bool) -> Option<usize> {
    events.iter().position(|event| wanted(&event.call))
}

fn count_of(events: &[Event], wanted: impl Fn(&Call) -> bool) -> usize {
    events.iter().filter(|event| wanted(&event.call)).count()
}

/// A node whose published URL comes from the stand-in's GameServer, on the port that status
/// names, so the URL the matchmaker hands out really reaches it.
async fn node_under_agones(
    adjust: impl FnOnce(&mut coil_server::NodeConfig),
) -> (TestNode, StandIn) {
    let node_port = free_port();
    let sdk = StandIn::start(0, GameServer::scheduled("127.0.0.1", node_port)).await;
    sdk.probe_on_ready(format!("http://127.0.0.1:{node_port}/api/health"));
    let sdk_port = sdk.port;
    let node = TestNode::start(move |config| {
        config.listen.set_port(node_port);
        let mut agones = AgonesConfig::for_tests(sdk_port);
        agones.published_url = PublishedUrl::Template("ws://{address}:{port}".into());
        config.agones = Some(agones);
        adjust(config);
    })
    .await;
    (node, sdk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_once_serving_and_the_matchmaker_hands_out_the_gameserver_address() {
    let (node, sdk) = node_under_agones(|_| {}).await;
    sdk.wait_for("Ready", WAIT, |events, game_server| {
        game_server.state == "Ready"
            && counter_is(events, "players", 0)
            && counter_is(events, "rooms", 0)
    })
    .await;
    let events = sdk.events();
    let asked = position(&events, |call| *call == Call::GetGameServer).unwrap();
    let ready = position(&events, |call| matches!(call, Call::Ready { .. })).unwrap();
    assert!(asked < ready, "the address is learnt before Ready");
    assert_eq!(
        events[ready].call,
        Call::Ready {
            probe_status: Some(200)
        },
        "the node answered HTTP when it said Ready"
    );
    // Capacities come from the node's own settings, summed over its modes: each mode's room
    // limit times its soft cap (the arena's MAX_ROOMS x ROOM_SOFT_CAP, breach's rooms x 8).
    let game_server = sdk.game_server();
    let config = coil_server::NodeConfig::for_tests("unused");
    let modes = coil_server::modes::configured(&config).unwrap();
    let seats: usize = modes
        .iter()
        .map(|mode| mode.max_rooms * mode.soft_cap)
        .sum();
    let rooms: usize = modes.iter().map(|mode| mode.max_rooms).sum();
    assert!(
        seats > node_config_max_rooms() * 120,
        "breach seats count too"
    );
    assert_eq!(game_server.counters["players"], (0, seats as i64));
    assert_eq!(game_server.counters["rooms"], (0, rooms as i64));

    let response = reqwest::Client::new()
        .post(node.url("/api/matchmake"))
        .json(&json!({"playerName": "agnes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let room = answer["roomId"].as_str().unwrap();
    let ws_url = answer["wsUrl"].as_str().unwrap();
    let port = game_server.ports[0].1;
    assert_eq!(ws_url, format!("ws://127.0.0.1:{port}/api/room/{room}"));
    // The URL built from the GameServer status upgrades to the node's WebSocket.
    let (socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    drop(socket);
    // Health pings go on by themselves.
    sdk.wait_for("three health pings", WAIT, |events, _| {
        count_of(events, |call| *call == Call::Health) >= 3
    })
    .await;
}

/// `NodeConfig::for_tests` runs 100 rooms at most.
fn node_config_max_rooms() -> usize {
    coil_server::NodeConfig::for_tests("unused").max_rooms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_allocate_the_gameserver_and_move_the_counters_and_an_empty_node_is_ready_again() {
    let (node, sdk) = node_under_agones(|config| {
        config.room_population_target = 0;
        config.room_idle = Duration::from_millis(500);
    })
    .await;
    sdk.wait_for("Ready", WAIT, |_, game_server| game_server.state == "Ready")
        .await;

    let mut ada = Player::join(&node, "arena-1", "ada").await;
    sdk.wait_for("Allocated with one player", WAIT, |events, game_server| {
        game_server.state == "Allocated"
            && counter_is(events, "players", 1)
            && counter_is(events, "rooms", 1)
    })
    .await;
    let events = sdk.events();
    let allocated = position(&events, |call| *call == Call::Allocate).unwrap();
    let counted = position(
        &events,
        |call| matches!(call, Call::Counter { name, count: 1, .. } if name == "players"),
    )
    .unwrap();
    assert!(
        allocated < counted,
        "Allocate protects the player before the counters move"
    );

    let mut bea = Player::join(&node, "arena-2", "bea").await;
    sdk.wait_for("two players in two rooms", WAIT, |events, _| {
        counter_is(events, "players", 2) && counter_is(events, "rooms", 2)
    })
    .await;
    assert_eq!(sdk.game_server().state, "Allocated");

    ada.socket.close(None).await.unwrap();
    ada.read_until_closed().await;
    sdk.wait_for("one player left", WAIT, |events, _| {
        counter_is(events, "players", 1)
    })
    .await;
    assert_eq!(
        sdk.game_server().state,
        "Allocated",
        "a node with a player stays Allocated"
    );
    let readies_before_empty = count_of(&sdk.events(), |call| matches!(call, Call::Ready { .. }));

    let emptied = Instant::now();
    bea.socket.close(None).await.unwrap();
    bea.read_until_closed().await;
    sdk.wait_for("Ready again once empty", WAIT, |_, game_server| {
        game_server.state == "Ready"
    })
    .await;
    let events = sdk.events();
    assert_eq!(
        count_of(&events, |call| matches!(call, Call::Ready { .. })),
        readies_before_empty + 1
    );
    assert!(
        emptied.elapsed() >= AgonesConfig::for_tests(0).ready_after_idle,
        "the idle hold passed before Ready"
    );
    assert!(counter_is(&events, "players", 0));
    // The rooms are reaped after their idle time and the counter follows.
    sdk.wait_for("no rooms", WAIT, |events, _| counter_is(events, "rooms", 0))
        .await;
    assert!(
        !events
            .iter()
            .any(|event| matches!(event.call, Call::Refused { .. })),
        "every call the node made was well formed: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_with_health_pings_going_on_then_shuts_the_gameserver_down() {
    let (mut node, sdk) = node_under_agones(|config| {
        config.room_population_target = 0;
        config.drain_timeout = Duration::from_secs(1);
    })
    .await;
    let mut cleo = Player::join(&node, "last-round", "cleo").await;
    sdk.wait_for("Allocated", WAIT, |_, game_server| {
        game_server.state == "Allocated"
    })
    .await;

    let drain_started = Instant::now();
    let task = node.shut_down();
    // The player is told, stays until the deadline, and is closed then.
    let codes = cleo.read_until_closed().await;
    assert_eq!(codes, vec![coil_protocol::ErrorCode::RoomDraining as u16]);
    tokio::time::timeout(WAIT, task)
        .await
        .expect("node stopped")
        .unwrap()
        .unwrap();

    let events = sdk.events();
    let shutdown = position(&events, |call| *call == Call::Shutdown).expect("Shutdown sent");
    assert!(
        events[shutdown].at - drain_started >= Duration::from_secs(1),
        "Shutdown came after the drain deadline, not at SIGTERM"
    );
    let during_drain = &events[..shutdown];
    assert!(
        during_drain
            .iter()
            .filter(|event| event.at > drain_started)
            .filter(|event| event.call == Call::Health)
            .count()
            >= 3,
        "health pings go on while draining"
    );
    assert!(
        !during_drain
            .iter()
            .any(|event| event.at > drain_started && matches!(event.call, Call::Ready { .. })),
        "a draining node never offers itself as Ready"
    );
    assert!(counter_is(during_drain, "players", 0));
    assert_eq!(sdk.game_server().state, "Shutdown");
    assert_eq!(count_of(&events, |call| *call == Call::Shutdown), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_request_ends_in_shutdown_once_the_node_is_empty() {
    let (mut node, sdk) = node_under_agones(|config| config.room_population_target = 0).await;
    sdk.wait_for("Ready", WAIT, |_, game_server| game_server.state == "Ready")
        .await;
    let drained = reqwest::Client::new()
        .post(node.url("/internal/drain"))
        .bearer_auth("test-internal-secret")
        .json(&json!({"deadlineSecs": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status().as_u16(), 202);
    // Nobody here: Agones is asked to delete the GameServer while the process still serves.
    sdk.wait_for("Shutdown", WAIT, |_, game_server| {
        game_server.state == "Shutdown"
    })
    .await;
    let (status, health) = node.get_json("/api/health").await;
    assert_eq!((status, health["draining"].as_bool()), (200, Some(true)));
    tokio::time::timeout(WAIT, node.shut_down())
        .await
        .expect("node stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_goes_on_while_the_sdk_is_absent_hangs_or_fails_and_agones_catches_up() {
    // PUBLIC_URL is set, so the node needs nothing from Agones to start; the SDK server is
    // not there yet (its port refuses connections).
    let sdk_port = free_port();
    let node = TestNode::start(move |config| {
        config.room_population_target = 0;
        config.agones = Some(AgonesConfig::for_tests(sdk_port));
    })
    .await;
    let errors_before = sdk_errors(&node).await;
    let mut dora = Player::join(&node, "outage", "dora").await;
    let states = dora.mirror.states_applied();
    dora.wait_until(
        |p| p.mirror.states_applied() >= states + 10,
        "states while the SDK is absent",
    )
    .await;
    let (status, _) = node.get_json("/api/health").await;
    assert_eq!(status, 200);
    assert!(
        sdk_errors(&node).await > errors_before,
        "failed SDK calls are counted"
    );

    // The sidecar comes up: the node catches up without a restart.
    let sdk = StandIn::start(sdk_port, GameServer::scheduled("127.0.0.1", 1)).await;
    sdk.wait_for("Allocated with the player", WAIT, |events, game_server| {
        game_server.state == "Allocated" && counter_is(events, "players", 1)
    })
    .await;
    assert!(
        position(&sdk.events(), |call| matches!(call, Call::Ready { .. })).is_none(),
        "with a player already on it the node goes straight to Allocated, never Ready"
    );

    // The SDK hangs: every call runs into its timeout; the room keeps ticking for the player
    // and a second player joins.
    sdk.set_mode(Mode::Hang);
    sdk.wait_for("calls hanging", WAIT, |events, _| {
        count_of(events, |call| {
            matches!(call, Call::Refused { status: 0, .. })
        }) >= 4
    })
    .await;
    let states = dora.mirror.states_applied();
    dora.wait_until(
        |p| p.mirror.states_applied() >= states + 20,
        "states while the SDK hangs",
    )
    .await;
    let _eli = Player::join(&node, "outage", "eli").await;

    // The gateway answers 503: same story.
    sdk.set_mode(Mode::Unavailable);
    sdk.wait_for("503s", WAIT, |events, _| {
        count_of(events, |call| {
            matches!(call, Call::Refused { status: 503, .. })
        }) >= 4
    })
    .await;
    let states = dora.mirror.states_applied();
    dora.wait_until(
        |p| p.mirror.states_applied() >= states + 10,
        "states while the SDK answers 503",
    )
    .await;

    // Back up: the count the SDK missed arrives, and pings resume.
    sdk.set_mode(Mode::Up);
    let resumed = Instant::now();
    sdk.wait_for("two players counted, pings back", WAIT, |events, _| {
        counter_is(events, "players", 2)
            && events
                .iter()
                .any(|event| event.at > resumed && event.call == Call::Health)
    })
    .await;
    assert_eq!(sdk.game_server().state, "Allocated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_missing_from_the_gameserver_holds_up_nothing_else() {
    // The Fleet's spec defines "players" but not "rooms": the SDK server refuses every update
    // of "rooms" (counter not found), which must not stop Allocate, the players count or
    // Shutdown.
    let node_port = free_port();
    let mut game_server = GameServer::scheduled("127.0.0.1", node_port);
    game_server.counters.remove("rooms");
    let sdk = StandIn::start(0, game_server).await;
    let sdk_port = sdk.port;
    let mut node = TestNode::start(move |config| {
        config.listen.set_port(node_port);
        config.room_population_target = 0;
        config.drain_timeout = Duration::from_millis(500);
        config.agones = Some(AgonesConfig::for_tests(sdk_port));
    })
    .await;
    let fay = Player::join(&node, "no-rooms-counter", "fay").await;
    sdk.wait_for("Allocated and counted", WAIT, |events, game_server| {
        game_server.state == "Allocated" && counter_is(events, "players", 1)
    })
    .await;
    let refused = |events: &[Event]| {
        count_of(
            events,
            |call| matches!(call, Call::Refused { path, status: 500 } if path == "/v1beta1/counters/rooms"),
        )
    };
    // The rooms counter is sent in its own call, after or before the players one: wait for it.
    sdk.wait_for("the rooms counter tried and refused", WAIT, |events, _| {
        refused(events) >= 1
    })
    .await;
    drop(fay);
    tokio::time::timeout(WAIT, node.shut_down())
        .await
        .expect("node stopped")
        .unwrap()
        .unwrap();
    assert_eq!(sdk.game_server().state, "Shutdown");
}

/// Failed SDK calls other than counter updates (the outage test is the only one in this binary
/// that makes any; the missing-counter test makes failed counter updates).
async fn sdk_errors(node: &TestNode) -> f64 {
    let text = node.metrics().await;
    text.lines()
        .filter(|line| line.starts_with("coil_agones_sdk_requests_total{"))
        .filter(|line| line.contains("result=\"error\"") && !line.contains("call=\"counter\""))
        .map(|line| metric_sum(line, "coil_agones_sdk_requests_total"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_learn_its_address_refuses_to_start_and_says_why() {
    // The GameServer is not scheduled yet: no address, and it never gets one.
    let mut unscheduled = GameServer::scheduled("", 7001);
    unscheduled.state = "Creating".into();
    let sdk = StandIn::start(0, unscheduled).await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = coil_server::NodeConfig::for_tests(data_dir.path());
    let mut agones = AgonesConfig::for_tests(sdk.port);
    agones.published_url = PublishedUrl::Template("ws://{address}:{port}".into());
    agones.startup_timeout = Duration::from_secs(1);
    config.agones = Some(agones);
    let listener = coil_server::bind(config.listen).unwrap();
    let modes = coil_server::modes::configured(&config).unwrap();
    let services = coil_server::all_in_one(&config, modes, Duration::from_secs(20)).unwrap();
    let started = Instant::now();
    let result = tokio::time::timeout(
        WAIT,
        coil_server::run(config, listener, services, std::future::pending()),
    )
    .await
    .expect("run returns instead of waiting forever");
    let error = format!("{:#}", result.unwrap_err());
    assert!(
        error.contains("AGONES_STARTUP_TIMEOUT_SECS") && error.contains("no address yet"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        count_of(&sdk.events(), |call| *call == Call::GetGameServer) >= 2,
        "the address was asked for again while the sidecar had none"
    );
}
