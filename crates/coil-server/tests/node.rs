//! The game node end to end over real WebSockets on 127.0.0.1: join, state, steering, death
//! and the leaderboard, caps, bad input, health/metrics and drain.

mod support;

use std::f32::consts::PI;
use std::time::Duration;

use coil_protocol::ErrorCode;
use serde_json::json;
use support::{Player, TestNode, WAIT, metric_sum};

/// The angle difference folded into -PI..PI.
fn angle_between(a: f32, b: f32) -> f32 {
    let mut d = (a - b) % (2.0 * PI);
    if d > PI {
        d -= 2.0 * PI;
    }
    if d < -PI {
        d += 2.0 * PI;
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_joins_and_receives_init_and_state() {
    let node = TestNode::start(|_| {}).await;
    let mut player = Player::join(&node, "lobby", "alice").await;
    let init = *player.mirror.init().expect("init frame first");
    assert!(init.arena_radius > 100.0);
    assert_eq!(init.tick_rate, 20);
    let before = player.mirror.states_applied();
    player
        .wait_until(
            |p| p.mirror.states_applied() >= before + 5,
            "five more states",
        )
        .await;
    // Bots top the room up to the configured population (20 in tests), and they are in view
    // often enough that the client knows some other snake after a few seconds.
    player
        .wait_until(|p| p.mirror.snakes().len() > 1, "another snake in view")
        .await;
    player
        .wait_until(|p| p.mirror.meta().is_some(), "a meta frame")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_turns_the_snake() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let mut player = Player::join(&node, "steer", "bob").await;
    let start = player.mirror.own_snake().unwrap().angle();
    let target = start + PI / 2.0;
    player.steer(target, false).await;
    player
        .wait_until(
            |p| {
                p.mirror
                    .own_snake()
                    .is_some_and(|s| angle_between(s.angle(), target).abs() < 0.2)
            },
            "the snake to face the new heading",
        )
        .await;
    // It moved there gradually (bounded turn rate), not in one step: the heading was between
    // the two at some point is implied by the simulation's tests; here the client sees the end.
    let now = player.mirror.own_snake().unwrap().angle();
    assert!(angle_between(now, start).abs() > 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn death_records_the_score_and_receipts_are_the_only_way_in() {
    let node = TestNode::start(|config| config.room_population_target = 0).await;
    let mut player = Player::join(&node, "deathroom", "carol").await;
    let (status, body) = node
        .post_json(
            "/api/debug/kill",
            &json!({"room": "deathroom", "name": "carol"}),
        )
        .await;
    assert_eq!((status, body["killed"].as_u64()), (200, Some(1)));
    player
        .wait_until(
            |p| p.mirror.death().is_some() && !p.receipts.is_empty(),
            "death frame and receipt",
        )
        .await;
    let final_score = player.mirror.death().unwrap().final_score;
    assert!(final_score > 0);

    // The server recorded the score itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = node.get_json("/api/leaderboard?limit=10").await;
        assert_eq!(status, 200);
        let scores = body["scores"].as_array().unwrap();
        if let Some(row) = scores.iter().find(|row| row["name"] == "carol") {
            assert_eq!(row["score"].as_u64(), Some(u64::from(final_score)));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "score never reached the leaderboard"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The compatibility endpoint accepts the server's receipt (idempotently) and nothing else.
    let receipt = player.receipts[0].clone();
    let (status, body) = node
        .post_json("/api/leaderboard", &json!({"receipt": receipt}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alreadyRecorded"], true);
    let (status, body) = node
        .post_json(
            "/api/leaderboard",
            &json!({"name": "carol", "score": 999_999}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let mut forged = receipt.clone();
    forged.replace_range(forged.len() - 3.., "AAA");
    let (status, _) = node
        .post_json("/api/leaderboard", &json!({"receipt": forged}))
        .await;
    assert_eq!(status, 403);
    let response = reqwest::Client::new()
        .post(node.url("/api/leaderboard"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // Respawning starts a new run.
    player.respawn().await;
    player
        .wait_until(
            |p| p.mirror.own_snake().is_some() && p.mirror.states_applied() > 0,
            "respawn",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hard_cap_refuses_one_more_human() {
    let node = TestNode::start(|config| {
        config.room_soft_cap = 2;
        config.room_hard_cap = 3;
        config.room_population_target = 10;
    })
    .await;
    let mut players = Vec::new();
    for name in ["p1", "p2", "p3"] {
        players.push(Player::join(&node, "capped", name).await);
    }
    let mut fourth =
        Player::join_only(&node, "capped", "p4", coil_protocol::PROTOCOL_V11, None).await;
    let codes = fourth.read_until_closed().await;
    assert_eq!(codes, vec![ErrorCode::RoomFull as u16]);
    // Bots stepped aside but never pushed the room past its cap.
    let (_, health) = node.get_json("/api/health").await;
    let humans = health["players"]["human"].as_u64().unwrap();
    let bots = health["players"]["bot"].as_u64().unwrap();
    assert_eq!(humans, 3);
    assert!(
        humans + bots <= 3,
        "bots pushed the room past its hard cap: {health}"
    );
    // A seat frees up when a player leaves.
    drop(players.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut again =
            Player::join_only(&node, "capped", "p5", coil_protocol::PROTOCOL_V11, None).await;
        again.read_one().await;
        if again.errors.is_empty() && !again.closed {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "seat never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_an_error_frame_and_the_room_keeps_ticking() {
    let node = TestNode::start(|_| {}).await;
    let mut watcher = Player::join(&node, "garbage", "watcher").await;
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (vec![0x05, 1, 2, 3], ErrorCode::BadFrame), // unknown type
        (vec![0x10], ErrorCode::Truncated),         // input cut short
        (vec![0x10; 5000], ErrorCode::Oversized),   // larger than allowed
        (
            vec![0x01, 11, 3, b'a', b'b', b'c', 0],
            ErrorCode::OutOfOrder,
        ), // a second join
        (vec![0x02, 1], ErrorCode::Truncated),      // ping cut short
    ];
    for (frame, expected) in cases {
        let mut rogue = Player::join(&node, "garbage", "rogue").await;
        rogue.send(frame.clone()).await;
        let codes = rogue.read_until_closed().await;
        assert_eq!(
            codes,
            vec![expected as u16],
            "frame {:?}",
            &frame[..frame.len().min(8)]
        );
        let before = watcher.mirror.states_applied();
        watcher
            .wait_until(
                |p| p.mirror.states_applied() >= before + 3,
                "the watcher's stream to continue",
            )
            .await;
    }
    // Garbage before joining is refused too.
    let mut early =
        Player::join_only(&node, "garbage", "", coil_protocol::PROTOCOL_V11, None).await;
    assert_eq!(
        early.read_until_closed().await,
        vec![ErrorCode::BadName as u16]
    );
    let mut wrong_version = Player::join_only(&node, "garbage", "x", 9, None).await;
    assert_eq!(
        wrong_version.read_until_closed().await,
        vec![ErrorCode::UnsupportedVersion as u16]
    );
    let (_, health) = node.get_json("/api/health").await;
    assert_eq!(
        health["players"]["human"], 1,
        "only the watcher is left: {health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_room_names_get_400_not_a_room() {
    let node = TestNode::start(|_| {}).await;
    for bad in ["has%20space", "..", &"x".repeat(40)] {
        let error = tokio_tungstenite::connect_async(node.ws_url(bad))
            .await
            .expect_err("must not upgrade");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status().as_u16(), 400, "room {bad}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .to_string();
                assert!(body.contains("room id"), "{body}");
            }
            other => panic!("expected an HTTP 400 for {bad}, got {other}"),
        }
    }
    let (_, health) = node.get_json("/api/health").await;
    assert_eq!(
        health["rooms"]["warm"].as_u64().unwrap() + health["rooms"]["active"].as_u64().unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_follow_the_game() {
    let node = TestNode::start(|_| {}).await;
    let (status, health) = node.get_json("/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["draining"], false);
    assert!(health["version"].is_string() && health["uptimeSeconds"].is_number());
    let (status, _) = node.get_json("/api/ready").await;
    assert_eq!(status, 200);

    let before = node.metrics().await;
    let mut player = Player::join(&node, "metered", "dave").await;
    player.steer(1.0, true).await;
    let states = player.mirror.states_applied();
    player
        .wait_until(|p| p.mirror.states_applied() >= states + 10, "ten states")
        .await;
    let (_, health) = node.get_json("/api/health").await;
    assert_eq!(health["rooms"]["active"], 1);
    assert_eq!(health["players"]["human"], 1);
    assert!(health["players"]["bot"].as_u64().unwrap() > 0);

    let after = node.metrics().await;
    for counter in [
        "coil_ws_bytes_sent_total",
        "coil_ws_bytes_received_total",
        "coil_tick_duration_seconds_count",
        "coil_encode_duration_seconds_count",
        "coil_join_latency_seconds_count",
    ] {
        assert!(
            metric_sum(&after, counter) > metric_sum(&before, counter),
            "{counter} did not move"
        );
    }
    assert!(after.contains("coil_joins_total{result=\"ok\"}"));
    assert!(metric_sum(&after, "coil_connections_open") >= 1.0);
    assert!(metric_sum(&after, "coil_players") >= 2.0);
    assert!(
        after.contains("process_resident_memory_bytes"),
        "process metrics missing"
    );
    // No per-room or per-player labels.
    assert!(!after.contains("metered") && !after.contains("dave"));
    // The in-process directory (the matchmaker's view) catches up with the next heartbeat.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = node.metrics().await;
        if metric_sum(&text, "coil_directory_humans") >= 1.0 {
            assert!(metric_sum(&text, "coil_directory_seats_free") > 0.0);
            assert!(text.contains("coil_directory_nodes{region=\"local\",state=\"active\"} 1"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "directory gauges never showed the player: {}",
            text.lines()
                .filter(|l| l.contains("directory"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_commands_are_absent_unless_enabled() {
    let node = TestNode::start(|config| config.enable_debug_commands = false).await;
    let (status, _) = node
        .post_json("/api/debug/kill", &json!({"room": "x", "name": "y"}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_players_are_told_and_the_node_exits() {
    let mut node = TestNode::start(|config| config.drain_timeout = Duration::from_secs(3)).await;
    let mut player = Player::join(&node, "draining", "erin").await;
    let task = node.shut_down();
    player
        .wait_until(|p| p.mirror.last_notice().is_some(), "a drain notice")
        .await;
    let (kind, deadline_ms) = player.mirror.last_notice().unwrap();
    assert_eq!(kind, coil_protocol::NoticeKind::Draining as u8);
    assert!(deadline_ms > 0 && deadline_ms <= 3000);
    let (status, body) = node.get_json("/api/ready").await;
    assert_eq!((status, body["reason"].as_str()), (503, Some("draining")));
    let (_, health) = node.get_json("/api/health").await;
    assert_eq!(health["rooms"]["draining"], 1);
    // New players are turned away while the room drains, with the code clients act on (the
    // socket still upgrades: a player of a running match may resume its seat).
    let mut late =
        Player::join_only(&node, "draining", "late", coil_protocol::PROTOCOL_V11, None).await;
    while late.read_one().await {}
    assert_eq!(
        late.errors.first().map(|(code, _)| *code),
        Some(coil_protocol::ErrorCode::RoomDraining as u16),
        "a draining node must not take new players"
    );
    // The player leaves; the room ends; the node stops well before the deadline.
    player.socket.close(None).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("node stopped");
    result.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_deadline_closes_players_who_stay() {
    let mut node = TestNode::start(|config| config.drain_timeout = Duration::from_secs(1)).await;
    let mut player = Player::join(&node, "stubborn", "frank").await;
    let task = node.shut_down();
    let codes = player.read_until_closed().await;
    assert_eq!(codes, vec![ErrorCode::RoomDraining as u16]);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("node stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_can_drain_then_evict_and_the_node_stays_up_until_stopped() {
    let node = TestNode::start(|config| config.drain_timeout = Duration::from_secs(30)).await;
    let mut player = Player::join(&node, "retiring", "gina").await;
    let client = reqwest::Client::new();
    let unauthorized = client
        .post(node.url("/internal/drain"))
        .bearer_auth("wrong-secret-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let drained = client
        .post(node.url("/internal/drain"))
        .bearer_auth("test-internal-secret")
        .json(&json!({"deadlineSecs": 20}))
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status().as_u16(), 202);
    player
        .wait_until(|p| p.mirror.last_notice().is_some(), "a drain notice")
        .await;
    assert!(player.mirror.last_notice().unwrap().1 <= 20_000);
    let (_, health) = node.get_json("/api/health").await;
    assert_eq!(health["draining"], true);
    let evicted = client
        .post(node.url("/internal/evict"))
        .bearer_auth("test-internal-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(evicted.status().as_u16(), 202);
    assert_eq!(
        player.read_until_closed().await,
        vec![ErrorCode::RoomDraining as u16]
    );
    // The process is still serving (the autoscaler deletes it once empty).
    let (status, health) = node.get_json("/api/health").await;
    assert_eq!(
        (status, health["players"]["human"].as_u64()),
        (200, Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_endpoints_are_absent_without_a_secret() {
    let node = TestNode::start(|config| config.internal_secret = None).await;
    let (status, _) = node.post_json("/internal/drain", &json!({})).await;
    assert_eq!(status, 404);
}
