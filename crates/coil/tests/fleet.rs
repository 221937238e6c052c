//! The fleet shape with real processes on this machine: one `coil matchmaker` and three
//! `coil node`s sharing a real Redis. 1,000 players are placed and joined through the
//! matchmaker; one node is killed with SIGKILL and its rooms leave the directory within the
//! heartbeat TTL while new players go to the others.
//!
//! Needs `TEST_REDIS_URL` (CI sets it); without it the test says so and returns.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coil_match::{RedisDirectory, RedisDirectoryConfig, Region, RoomDirectory};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{Join, ServerEnvelope, decode_server_envelope, encode_join};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PLAYERS: usize = 1000;
const HEARTBEAT_TTL_SECS: u64 = 5;

/// Kills its process when dropped, so a failing test leaves nothing running.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn coil(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Process {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_coil"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    command.env("RUST_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    Process {
        name: name.to_string(),
        child: command.spawn().unwrap(),
    }
}

/// The matchmaker's join-token key file in `dir` (created), and its public key for the nodes.
fn signing_key(dir: &Path, redis_url: &str) -> (std::path::PathBuf, String) {
    let key_file = dir.join("join-token.key");
    let output = Command::new(env!("CARGO_BIN_EXE_coil"))
        .args(["matchmaker", "--print-public-key"])
        .env("REDIS_URL", redis_url)
        .env("JOIN_TOKEN_KEY_FILE", &key_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let public_key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    (key_file, public_key)
}

async fn wait_healthy(port: u16, process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/api/health")).await
            && response.status().is_success()
        {
            return;
        }
        if let Some(status) = process.child.try_wait().unwrap() {
            panic!("{} exited early with {status}", process.name);
        }
        assert!(
            Instant::now() < deadline,
            "{} never became healthy",
            process.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Matchmakes and joins with the token; returns the node port and room once the first state
/// frame arrived, and keeps the connection reading (cheaply) until `stop` fires.
async fn play(
    client: reqwest::Client,
    matchmaker: u16,
    index: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(u16, String), String> {
    let name = format!("p{index}");
    let answer: Value = client
        .post(format!("http://127.0.0.1:{matchmaker}/api/matchmake"))
        .json(&json!({"playerName": name, "playerId": format!("player-{index}")}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let ws_url = answer["wsUrl"]
        .as_str()
        .ok_or_else(|| format!("no wsUrl in {answer}"))?
        .to_string();
    let room = answer["roomId"].as_str().unwrap().to_string();
    let token = answer["joinToken"].as_str().unwrap().to_string();
    let port: u16 = ws_url
        .split(':')
        .nth(2)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .map_err(|e| format!("{ws_url} (room {room}): {e}"))?;
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: 12,
            name: &name,
            skin: 0,
            token: Some(token.as_bytes()),
        },
        &mut frame,
    );
    socket
        .send(Message::Binary(frame.into()))
        .await
        .map_err(|e| e.to_string())?;
    // The first message after a good join carries init and state; an error frame means refused.
    let first = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .map_err(|_| "no first frame".to_string())?
        .ok_or("closed")?
        .map_err(|e| e.to_string())?;
    for frame in server_frames(&first.into_data()) {
        let (frame_type, payload) = frame.map_err(|e| e.to_string())?;
        if let Ok(Some(ServerEnvelope::Error { code, reason })) =
            decode_server_envelope(frame_type, payload)
        {
            return Err(format!("join refused: {code} {reason}"));
        }
    }
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            tokio::select! {
                message = socket.next() => if message.is_none() { break },
                _ = stop.changed() => break,
            }
        }
    });
    Ok((port, room))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_places_a_thousand_players_and_forgets_a_killed_node() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        println!("skipped: TEST_REDIS_URL is not set (CI sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("coil:test:{:016x}:", rand_u64());
    let (key_file, public_key) = signing_key(dir.path(), &redis_url);

    let matchmaker_port = free_port();
    let mut matchmaker = coil(
        dir.path(),
        "matchmaker",
        &["matchmaker"],
        &[
            ("PORT", matchmaker_port.to_string()),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("JOIN_TOKEN_KEY_FILE", key_file.display().to_string()),
            ("INTERNAL_SECRET", "fleet-test-internal-secret".into()),
            // The nodes tick every 200 ms: a room is slow at 80% of that, not at 40 ms.
            ("MAX_TICK_P95_MS", "160".into()),
        ],
    );
    wait_healthy(matchmaker_port, &mut matchmaker).await;

    let mut nodes = HashMap::new();
    for name in ["node-a", "node-b", "node-c"] {
        let port = free_port();
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut node = coil(
            dir.path(),
            name,
            &["node"],
            &[
                ("PORT", port.to_string()),
                ("NODE_ID", name.into()),
                ("REDIS_URL", redis_url.clone()),
                ("REDIS_KEY_PREFIX", prefix.clone()),
                ("JOIN_TOKEN_PUBLIC_KEY", public_key.clone()),
                ("HEARTBEAT_SECS", "1".into()),
                ("HEARTBEAT_TTL_SECS", HEARTBEAT_TTL_SECS.to_string()),
                // No bots and 5 Hz: a debug build carries 1,000 players on two shared cores.
                ("ROOM_POPULATION_TARGET", "0".into()),
                ("TICK_MS", "200".into()),
                ("DATA_DIR", data.display().to_string()),
                (
                    "DATABASE_URL",
                    format!("sqlite://{}", data.join("lb.db").display()),
                ),
            ],
        );
        wait_healthy(port, &mut node).await;
        nodes.insert(port, node);
    }
    let directory = RedisDirectory::connect(
        &redis_url,
        RedisDirectoryConfig {
            key_prefix: prefix.clone(),
            ..RedisDirectoryConfig::default()
        },
    )
    .await
    .unwrap();
    let region = Region::parse("local").unwrap();
    // Every node has published itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while directory
        .region_snapshot(&region, now_ms())
        .await
        .unwrap()
        .nodes
        .len()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "nodes never reached the directory"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1,000 players, 50 at a time.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let client = reqwest::Client::new();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(50));
    let mut joins = Vec::new();
    for index in 0..PLAYERS {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let (client, stopped) = (client.clone(), stopped.clone());
        joins.push(tokio::spawn(async move {
            let result = play(client, matchmaker_port, index, stopped).await;
            drop(permit);
            result
        }));
    }
    let mut per_room: HashMap<String, usize> = HashMap::new();
    let mut per_node: HashMap<u16, usize> = HashMap::new();
    let mut failures = Vec::new();
    for join in joins {
        match join.await.unwrap() {
            Ok((port, room)) => {
                *per_room.entry(room).or_default() += 1;
                *per_node.entry(port).or_default() += 1;
            }
            Err(problem) => failures.push(problem),
        }
    }
    assert!(
        failures.is_empty(),
        "{} joins failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(per_room.values().sum::<usize>(), PLAYERS);
    assert!(
        per_room.values().all(|&humans| humans <= 140),
        "a room went past the hard cap: {per_room:?}"
    );
    // Rooms fill to the soft cap before new ones open: a joined player counted twice (seat and
    // humans) or a burst opening one room per concurrent request would show up here as many
    // half-empty rooms. Two rooms of slack for a room too slow to take players on a loaded machine.
    assert!(
        (PLAYERS.div_ceil(120)..=PLAYERS.div_ceil(120) + 2).contains(&per_room.len()),
        "rooms did not fill to the soft cap: {per_room:?}"
    );
    let mut sizes: Vec<usize> = per_room.values().copied().collect();
    sizes.sort_unstable();
    println!("players per node port: {per_node:?}; room sizes: {sizes:?}");
    // New rooms go to the least-loaded node, so 1,000 players in 120-seat rooms use every
    // node even when the whole burst fits inside one heartbeat interval.
    if per_node.len() < 3 {
        let snapshot = directory.region_snapshot(&region, now_ms()).await.unwrap();
        let rooms: Vec<String> = snapshot
            .rooms
            .iter()
            .map(|room| {
                format!(
                    "{} on {}: {} humans + {} reserved, tick {:.0} ms",
                    room.status.room_id,
                    room.status.node_id,
                    room.status.humans,
                    room.reserved,
                    room.status.tick_p95_ms
                )
            })
            .collect();
        panic!("rooms piled onto some nodes: {per_node:?}; directory: {rooms:#?}");
    }

    // SIGKILL the node with the most players: no drain, no goodbye.
    let (&victim_port, _) = per_node
        .iter()
        .max_by_key(|(_, players)| **players)
        .unwrap();
    let mut victim = nodes.remove(&victim_port).unwrap();
    let victim_id = victim.name.clone();
    let victim_rooms: HashSet<String> = directory
        .region_snapshot(&region, now_ms())
        .await
        .unwrap()
        .rooms
        .iter()
        .filter(|room| room.status.node_id.as_str() == victim_id)
        .map(|room| room.status.room_id.to_string())
        .collect();
    assert!(!victim_rooms.is_empty(), "the victim published no rooms");
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let killed_at = Instant::now();
    loop {
        let snapshot = directory.region_snapshot(&region, now_ms()).await.unwrap();
        let node_gone = snapshot
            .nodes
            .iter()
            .all(|node| node.node_id.as_str() != victim_id);
        let rooms_gone = snapshot
            .rooms
            .iter()
            .all(|room| !victim_rooms.contains(room.status.room_id.as_str()));
        if node_gone && rooms_gone {
            break;
        }
        // The TTL plus one heartbeat interval and a second of slack for a loaded machine.
        assert!(
            killed_at.elapsed() < Duration::from_secs(HEARTBEAT_TTL_SECS + 2),
            "the killed node's rooms outlived the heartbeat TTL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // New players go elsewhere, and join.
    for index in PLAYERS..PLAYERS + 40 {
        let (port, _) = play(client.clone(), matchmaker_port, index, stopped.clone())
            .await
            .unwrap();
        assert_ne!(port, victim_port, "a player was sent to the dead node");
    }

    // The matchmaker's heartbeat endpoint is authenticated.
    let heartbeat = json!({
        "node": {"nodeId": "node-z", "region": "local", "publicUrl": "ws://127.0.0.1:1", "state": "ACTIVE",
                 "roomCapacity": 1, "rooms": 0, "humans": 0},
        "rooms": []
    });
    let url = format!("http://127.0.0.1:{matchmaker_port}/internal/room-heartbeat");
    let refused = client.post(&url).json(&heartbeat).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let accepted = client
        .post(&url)
        .bearer_auth("fleet-test-internal-secret")
        .json(&heartbeat)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 204);
    let snapshot = directory.region_snapshot(&region, now_ms()).await.unwrap();
    assert!(
        snapshot
            .nodes
            .iter()
            .any(|node| node.node_id.as_str() == "node-z")
    );

    let _ = stop.send(true);
    for (_, node) in nodes.iter_mut() {
        let _ = node.child.kill();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// WebSocket join attempts are limited per client address across the fleet: two nodes count
/// against one budget in Redis, so moving to another node does not reset it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_attempts_share_one_budget_across_fleet_nodes() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        println!("skipped: TEST_REDIS_URL is not set (CI sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, public_key) = signing_key(dir.path(), &redis_url);
    let tag = rand_u64();
    let mut ports = Vec::new();
    let mut nodes = Vec::new();
    for name in ["limit-a", "limit-b"] {
        let port = free_port();
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        let mut node = coil(
            dir.path(),
            name,
            &["node"],
            &[
                ("PORT", port.to_string()),
                ("NODE_ID", name.into()),
                ("REDIS_URL", redis_url.clone()),
                ("REDIS_KEY_PREFIX", format!("coil:test:{tag:016x}:dir:")),
                (
                    "ACCOUNTS_REDIS_KEY_PREFIX",
                    format!("coil:test:{tag:016x}:acct:"),
                ),
                ("JOIN_TOKEN_PUBLIC_KEY", public_key.clone()),
                ("RATE_LIMIT_JOIN_IP", "3/1m".into()),
                // Loopback is exempt by default (load tests); this test is the client.
                ("RATE_LIMIT_EXEMPT", String::new()),
                ("DATA_DIR", data.display().to_string()),
                (
                    "DATABASE_URL",
                    format!("sqlite://{}", data.join("lb.db").display()),
                ),
            ],
        );
        wait_healthy(port, &mut node).await;
        ports.push(port);
        nodes.push(node);
    }
    let client = reqwest::Client::new();
    let attempt = |port: u16| {
        client
            .get(format!("http://127.0.0.1:{port}/api/room/local-00000001"))
            .send()
    };
    for port in [ports[0], ports[1], ports[0]] {
        let status = attempt(port).await.unwrap().status().as_u16();
        assert_ne!(status, 429, "limited before the budget of 3 was spent");
    }
    let refused = attempt(ports[1]).await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        429,
        "the 4th attempt, on the other node, spends the same budget"
    );
    assert!(refused.headers().contains_key("retry-after"));
}

/// Connects with a join answer and returns the open socket once the first frame came without
/// an error frame in it.
async fn join_with(
    answer: &Value,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let ws_url = answer["wsUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: 12,
            name: "ignored",
            skin: 0,
            token: Some(answer["joinToken"].as_str().unwrap().as_bytes()),
        },
        &mut frame,
    );
    socket.send(Message::Binary(frame.into())).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(20), socket.next())
        .await
        .expect("a first frame")
        .expect("open")
        .unwrap();
    for frame in server_frames(&first.into_data()) {
        let (frame_type, payload) = frame.unwrap();
        if let Ok(Some(ServerEnvelope::Error { code, reason })) =
            decode_server_envelope(frame_type, payload)
        {
            panic!("join refused: {code} {reason}");
        }
    }
    socket
}

/// Custom lobbies in the fleet shape: two matchmakers (API replicas) over one Redis and a node.
/// A private lobby opened through one replica is listed by the other once its node reports it,
/// quick play through either never lands in it, and an invite signed by one replica lets a
/// player in through the other: no lobby state lives in an API process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_lobby_made_on_one_api_replica_is_listed_and_joined_on_another() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        println!("skipped: TEST_REDIS_URL is not set (CI sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("coil:test:{:016x}:", rand_u64());
    let (key_file, public_key) = signing_key(dir.path(), &redis_url);
    let mut replicas = Vec::new();
    let mut ports = Vec::new();
    for name in ["api-a", "api-b"] {
        let port = free_port();
        let mut process = coil(
            dir.path(),
            name,
            &["matchmaker"],
            &[
                ("PORT", port.to_string()),
                ("REDIS_URL", redis_url.clone()),
                ("REDIS_KEY_PREFIX", prefix.clone()),
                ("JOIN_TOKEN_KEY_FILE", key_file.display().to_string()),
            ],
        );
        wait_healthy(port, &mut process).await;
        replicas.push(process);
        ports.push(port);
    }
    let node_port = free_port();
    let data = dir.path().join("node");
    std::fs::create_dir_all(&data).unwrap();
    let mut node = coil(
        dir.path(),
        "node",
        &["node"],
        &[
            ("PORT", node_port.to_string()),
            ("NODE_ID", "lobby-node".into()),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("JOIN_TOKEN_PUBLIC_KEY", public_key),
            ("HEARTBEAT_SECS", "1".into()),
            ("DATA_DIR", data.display().to_string()),
            (
                "DATABASE_URL",
                format!("sqlite://{}", data.join("lb.db").display()),
            ),
        ],
    );
    wait_healthy(node_port, &mut node).await;
    let client = reqwest::Client::new();
    let post = |port: u16, path: String, body: Value| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://127.0.0.1:{port}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The node may need a heartbeat before the directory knows it can open breach rooms.
    let deadline = Instant::now() + Duration::from_secs(15);
    let created = loop {
        let (status, created) = post(
            ports[0],
            "/api/lobbies".into(),
            json!({"mode": "breach", "private": true, "playerName": "host",
                   "settings": {"maxPlayers": 4, "map": "courtyard"}}),
        )
        .await;
        if status == 201 {
            break created;
        }
        assert!(Instant::now() < deadline, "{status} {created}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lobby_id = created["lobbyId"].as_str().unwrap().to_owned();
    let _host = join_with(&created).await;
    // Listed by the other replica once the node reported it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page: Value = client
            .get(format!(
                "http://127.0.0.1:{}/api/lobbies?mode=breach",
                ports[1]
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed = page["lobbies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|lobby| lobby["id"] == lobby_id.as_str())
            .cloned();
        if let Some(lobby) = listed.filter(|lobby| lobby["players"] == 1) {
            assert_eq!(lobby["private"], true);
            assert_eq!(lobby["map"], "courtyard");
            assert_eq!(lobby["maxPlayers"], 4);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never listed on the other replica: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Quick play through either replica keeps out of it.
    for (index, port) in [ports[0], ports[1], ports[0], ports[1]]
        .into_iter()
        .enumerate()
    {
        let (status, quick) = post(
            port,
            "/api/matchmake".into(),
            json!({"mode": "breach", "playerName": format!("quick{index}")}),
        )
        .await;
        assert_eq!(status, 200, "{quick}");
        assert_ne!(quick["roomId"], lobby_id.as_str());
    }
    // Without the invite the other replica refuses; with the first replica's invite it admits.
    let join_path = format!("/api/lobbies/{lobby_id}/join");
    let (status, refused) = post(ports[1], join_path.clone(), json!({})).await;
    assert_eq!(status, 403, "{refused}");
    let (status, invited) = post(
        ports[1],
        join_path,
        json!({"inviteCode": created["inviteCode"], "playerName": "friend"}),
    )
    .await;
    assert_eq!(status, 200, "{invited}");
    assert_eq!(invited["roomId"], lobby_id.as_str());
    let _friend = join_with(&invited).await;
}
