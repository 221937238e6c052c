//! The matchmaker and join tokens in the all-in-one shape (node + in-process directory +
//! matchmaker on one port): the acceptance tests of the Hetzner plan, section 11.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use coil_protocol::{ErrorCode, PROTOCOL_V11, PROTOCOL_V12};
use serde_json::{Value, json};
use support::{Player, TestNode};

async fn matchmake(node: &TestNode, body: Value) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(node.url("/api/matchmake"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

/// Joins with the token from a matchmake answer, on the room it names.
async fn join_with(node: &TestNode, answer: &Value, name: &str) -> Player {
    let room = answer["roomId"].as_str().unwrap();
    let token = answer["joinToken"].as_str().unwrap();
    Player::join_only(node, room, name, PROTOCOL_V12, Some(token.as_bytes())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchmake_returns_a_room_and_a_token_that_joins() {
    let node = TestNode::start(|_| {}).await;
    let (status, answer, _) = matchmake(
        &node,
        json!({"playerName": "ann", "preferredRegion": "local"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let room = answer["roomId"].as_str().unwrap();
    assert_eq!(
        answer["wsUrl"],
        format!("ws://{}/api/room/{room}", node.addr)
    );
    assert_eq!(answer["region"], "local");
    assert_eq!(answer["regionReason"], "preferred");
    assert!(answer["expiresAt"].as_u64().unwrap() > 1_700_000_000_000);
    // A region this matchmaker does not serve: placed in the default region, and told so.
    let (status, elsewhere, _) = matchmake(
        &node,
        json!({"playerName": "bea", "preferredRegion": "mars"}),
    )
    .await;
    assert_eq!(status, 200, "{elsewhere}");
    assert_eq!(
        (&elsewhere["region"], &elsewhere["regionReason"]),
        (&json!("local"), &json!("fallback"))
    );
    let mut player = join_with(&node, &answer, "ann").await;
    player
        .wait_until(
            |p| p.mirror.own_snake().is_some(),
            "a state after a v12 join",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_with_a_json_error() {
    let node = TestNode::start(|_| {}).await;
    for body in [
        json!({"playerName": ""}),
        json!({"playerName": "way too long a name for this"}),
        json!({"preferredRegion": "no spaces allowed"}),
        json!({"roomOverride": "../../etc"}),
        json!({"playerId": "has space"}),
        json!({"playerName": 42}),
    ] {
        let (status, answer, _) = matchmake(&node, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
    }
    let response = reqwest::Client::new()
        .post(node.url("/api/matchmake"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    // The heartbeat endpoint is off in the all-in-one shape (the node publishes in-process).
    let (status, _) = node.post_json("/internal/room-heartbeat", &json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_fill_to_the_soft_cap_then_a_new_room_opens() {
    let node = TestNode::start(|config| {
        config.room_soft_cap = 3;
        config.room_hard_cap = 4;
    })
    .await;
    let mut rooms: HashMap<String, usize> = HashMap::new();
    for index in 0..6 {
        let (status, answer, _) =
            matchmake(&node, json!({"playerName": format!("p{index}")})).await;
        assert_eq!(status, 200, "{answer}");
        *rooms
            .entry(answer["roomId"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Reservations count at once: the first room fills to the soft cap before another opens.
    let mut counts: Vec<usize> = rooms.values().copied().collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![3, 3], "{rooms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_matchmakes_never_overfill_a_room() {
    let hard_cap = 12;
    let node = TestNode::start(|config| {
        config.room_soft_cap = 10;
        config.room_hard_cap = hard_cap;
    })
    .await;
    let (_, first, _) = matchmake(&node, json!({"playerName": "host"})).await;
    let room = first["roomId"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let attempts = (0..500).map(|index| {
        let client = client.clone();
        let url = node.url("/api/matchmake");
        let room = room.clone();
        tokio::spawn(async move {
            let body = json!({"playerName": format!("party{index}"), "roomOverride": room});
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    let mut placed = 0;
    let mut conflicts = 0;
    for attempt in attempts {
        let (status, answer) = attempt.await.unwrap();
        match status {
            200 => {
                assert_eq!(answer["roomId"], room.as_str());
                placed += 1;
            }
            409 => {
                assert_eq!(answer["error"]["code"], "room_full");
                conflicts += 1;
            }
            other => panic!("unexpected status {other}: {answer}"),
        }
    }
    // The host's reservation holds one seat; overrides may fill up to the hard cap, never past it.
    assert_eq!(placed, hard_cap - 1);
    assert_eq!(conflicts, 500 - placed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_override_is_honoured_when_joinable_and_redirected_when_full() {
    let node = TestNode::start(|config| {
        config.room_soft_cap = 2;
        config.room_hard_cap = 2;
    })
    .await;
    let (_, first, _) = matchmake(&node, json!({"playerName": "a"})).await;
    let room = first["roomId"].as_str().unwrap().to_string();
    let (status, second, _) =
        matchmake(&node, json!({"playerName": "b", "roomOverride": room})).await;
    assert_eq!(
        (status, second["roomId"].as_str()),
        (200, Some(room.as_str()))
    );
    // Full now: 409 with a suggested alternative (or null when a new room would be opened).
    let (status, third, _) =
        matchmake(&node, json!({"playerName": "c", "roomOverride": room})).await;
    assert_eq!(status, 409, "{third}");
    assert_eq!(third["error"]["code"], "room_full");
    assert!(third.get("suggestedRoom").is_some(), "{third}");
    assert_ne!(third["suggestedRoom"].as_str(), Some(room.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_gets_no_new_players() {
    let mut node = TestNode::start(|config| config.drain_timeout = Duration::from_secs(5)).await;
    let (_, answer, _) = matchmake(&node, json!({"playerName": "stay"})).await;
    let room = answer["roomId"].as_str().unwrap().to_string();
    let mut player = join_with(&node, &answer, "stay").await;
    player
        .wait_until(|p| p.mirror.own_snake().is_some(), "joined")
        .await;
    let task = node.shut_down();
    player
        .wait_until(|p| p.mirror.last_notice().is_some(), "drain notice")
        .await;
    let (status, body, retry_after) = matchmake(&node, json!({"playerName": "late"})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_capacity");
    assert!(retry_after.is_some_and(|s| s.parse::<u32>().unwrap() > 0));
    let (status, body, _) =
        matchmake(&node, json!({"playerName": "late", "roomOverride": room})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "room_draining");
    player.socket.close(None).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v11_clients_connect_only_while_compatibility_is_on() {
    let on = TestNode::start(|config| config.allow_protocol_v11 = true).await;
    Player::join(&on, "legacy", "old").await;
    let off = TestNode::start(|config| config.allow_protocol_v11 = false).await;
    let mut refused = Player::join_only(&off, "legacy", "old", PROTOCOL_V11, None).await;
    assert_eq!(
        refused.read_until_closed().await,
        vec![ErrorCode::TokenRequired as u16]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_wrong_room_replayed_and_expired_tokens_are_refused() {
    let node = TestNode::start(|_| {}).await;
    let (_, answer, _) = matchmake(&node, json!({"playerName": "tok"})).await;
    let room = answer["roomId"].as_str().unwrap();
    let token = answer["joinToken"].as_str().unwrap().to_string();

    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let mut player = Player::join_only(&node, room, "tok", PROTOCOL_V12, Some(&forged)).await;
    assert_eq!(
        player.read_until_closed().await,
        vec![ErrorCode::TokenInvalid as u16]
    );
    let mut player = Player::join_only(&node, room, "tok", PROTOCOL_V12, Some(b"garbage")).await;
    assert_eq!(
        player.read_until_closed().await,
        vec![ErrorCode::TokenInvalid as u16]
    );

    let mut player = Player::join_only(
        &node,
        "some-other-room",
        "tok",
        PROTOCOL_V12,
        Some(token.as_bytes()),
    )
    .await;
    assert_eq!(
        player.read_until_closed().await,
        vec![ErrorCode::TokenWrongRoom as u16]
    );

    let mut first =
        Player::join_only(&node, room, "tok", PROTOCOL_V12, Some(token.as_bytes())).await;
    first
        .wait_until(|p| p.mirror.own_snake().is_some(), "the first use")
        .await;
    let mut again =
        Player::join_only(&node, room, "tok", PROTOCOL_V12, Some(token.as_bytes())).await;
    assert_eq!(
        again.read_until_closed().await,
        vec![ErrorCode::TokenReplayed as u16]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    // A node whose matchmaker issues one-second tokens.
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = coil_server::NodeConfig::for_tests(data_dir.path());
    let listener = coil_server::bind(config.listen).unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = format!("ws://{addr}");
    let modes = coil_server::modes::configured(&config).unwrap();
    let services = coil_server::all_in_one(&config, modes, Duration::from_secs(1)).unwrap();
    tokio::spawn(coil_server::run(
        config,
        listener,
        services,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    let answer: Value = loop {
        if let Ok(response) = client
            .post(format!("http://{addr}/api/matchmake"))
            .json(&json!({}))
            .send()
            .await
        {
            break response.json().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let url = format!(
        "ws://{addr}/api/room/{}",
        answer["roomId"].as_str().unwrap()
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut frame = Vec::new();
    let token = answer["joinToken"].as_str().unwrap().as_bytes();
    coil_protocol::envelope::encode_join(
        &coil_protocol::Join {
            version: PROTOCOL_V12,
            name: "late",
            skin: 0,
            token: Some(token),
        },
        &mut frame,
    );
    use futures_util::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            frame.into(),
        ))
        .await
        .unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let bytes = message.into_data();
    let (frame_type, payload) = coil_protocol::codec::server_frames(&bytes)
        .next()
        .unwrap()
        .unwrap();
    let envelope = coil_protocol::envelope::decode_server_envelope(frame_type, payload).unwrap();
    assert!(
        matches!(envelope, Some(coil_protocol::envelope::ServerEnvelope::Error { code, .. }) if code == ErrorCode::TokenExpired as u16),
        "{envelope:?}"
    );
}
