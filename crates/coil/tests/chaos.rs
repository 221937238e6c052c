//! The fleet under faults, as real processes on loopback: `coil matchmaker` and `coil node`s
//! over a private `redis-server` this suite starts, kills, freezes and restarts, and (for the
//! leaderboard) PostgreSQL behind a proxy the suite cuts and restores. Each test asserts the
//! recovery figures of issue 17 and prints what it measured (`cargo test -p coil --test chaos
//! -- --nocapture` shows them; `docs/benchmarks.md` quotes them).
//!
//! - Redis killed and restarted empty, then frozen (SIGSTOP/SIGCONT): matchmakes during the
//!   outage are answered (503 + Retry-After) within a second, none hangs; placement is back
//!   within seconds of Redis returning; connected players keep playing throughout.
//! - A node SIGKILLed: matchmake-then-join attempts started after the kill reach a game within
//!   2 s (≥ 99%), re-placing the player when the token's node refuses; no seat goes to the dead
//!   node once its liveness ran out. A node SIGSTOPped (alive but silent): the same, and it
//!   returns to placement when it resumes.
//! - Every node of a region gone: new matchmakes for that region go to its neighbour, and the
//!   answer says `regionReason: "neighbour"`.
//! - PostgreSQL cut off and restored: no score is lost, not even across a node restart during
//!   the outage (the node spills what it could not write and replays it).
//!
//! Needs `TEST_REDIS_URL` (the promise that Redis is installed; CI sets it) and, for the
//! leaderboard test, `TEST_DATABASE_URL`. The tests run one at a time (they measure seconds on a
//! shared two-core machine), about a minute and a half in all.

#[path = "../../coil-store/tests/support/outage_proxy.rs"]
mod outage_proxy;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coil_match::RoomDirectory;
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{Join, ServerEnvelope, decode_server_envelope, encode_join};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The chaos tests measure seconds: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Kills its process when dropped (after SIGCONT, in case a test froze it).
struct Process {
    name: String,
    child: Child,
}

impl Process {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of our own, without persistence: a restart comes back empty.
struct PrivateRedis {
    port: u16,
    process: Option<Process>,
}

impl PrivateRedis {
    fn start() -> Option<PrivateRedis> {
        if std::env::var("TEST_REDIS_URL").is_err() {
            println!("skipped: TEST_REDIS_URL is not set (CI sets it)");
            return None;
        }
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            println!("skipped: redis-server is not on PATH");
            return None;
        }
        let mut redis = PrivateRedis {
            port: free_port(),
            process: None,
        };
        redis.spawn();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.process = Some(Process {
            name: "redis".into(),
            child,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|output| output.stdout.starts_with(b"PONG"));
            if pong {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the private redis-server never answered PING");
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    fn signal(&self, signal: &str) {
        self.process.as_ref().expect("running").signal(signal);
    }
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

/// A matchmaker and nodes over a private Redis.
struct Fleet {
    dir: tempfile::TempDir,
    redis: PrivateRedis,
    matchmaker_port: u16,
    _matchmaker: Process,
    public_key: String,
    /// Node id → (port, process).
    nodes: HashMap<String, (u16, Process)>,
    client: reqwest::Client,
}

impl Fleet {
    /// `nodes`: (id, region); `matchmaker_env` and `node_env` are added to the defaults.
    async fn start(
        redis: PrivateRedis,
        nodes: &[(&str, &str)],
        matchmaker_env: &[(&str, String)],
        node_env: &[(&str, String)],
    ) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("join-token.key");
        let output = Command::new(env!("CARGO_BIN_EXE_coil"))
            .args(["matchmaker", "--print-public-key"])
            .env("REDIS_URL", redis.url())
            .env("JOIN_TOKEN_KEY_FILE", &key_file)
            .output()
            .unwrap();
        assert!(output.status.success());
        let public_key = String::from_utf8(output.stdout).unwrap().trim().to_string();
        let matchmaker_port = free_port();
        let mut env = vec![
            ("PORT", matchmaker_port.to_string()),
            ("REDIS_URL", redis.url()),
            ("JOIN_TOKEN_KEY_FILE", key_file.display().to_string()),
            // The nodes tick every 100 ms: a room is slow at 80% of that.
            ("MAX_TICK_P95_MS", "80".into()),
        ];
        env.extend(matchmaker_env.iter().cloned());
        let mut matchmaker = coil(dir.path(), "matchmaker", &["matchmaker"], &env);
        wait_healthy(matchmaker_port, &mut matchmaker).await;
        let mut fleet = Fleet {
            dir,
            redis,
            matchmaker_port,
            _matchmaker: matchmaker,
            public_key,
            nodes: HashMap::new(),
            client: reqwest::Client::new(),
        };
        for (id, region) in nodes {
            fleet.start_node(id, region, node_env).await;
        }
        fleet
    }

    async fn start_node(&mut self, id: &str, region: &str, extra: &[(&str, String)]) {
        let port = free_port();
        let data = self.dir.path().join(id);
        std::fs::create_dir_all(&data).unwrap();
        let mut env = vec![
            ("PORT", port.to_string()),
            ("NODE_ID", id.to_string()),
            ("REGION", region.to_string()),
            ("REDIS_URL", self.redis.url()),
            ("JOIN_TOKEN_PUBLIC_KEY", self.public_key.clone()),
            ("HEARTBEAT_SECS", "1".into()),
            ("HEARTBEAT_TTL_SECS", "5".into()),
            // No bots and 10 Hz: several debug-build processes share two cores.
            ("ROOM_POPULATION_TARGET", "0".into()),
            ("TICK_MS", "100".into()),
            ("DATA_DIR", data.display().to_string()),
            (
                "DATABASE_URL",
                format!("sqlite://{}", data.join("lb.db").display()),
            ),
        ];
        env.extend(extra.iter().cloned());
        let mut node = coil(self.dir.path(), id, &["node"], &env);
        wait_healthy(port, &mut node).await;
        self.nodes.insert(id.to_string(), (port, node));
    }

    fn node_port(&self, id: &str) -> u16 {
        self.nodes[id].0
    }

    /// `POST /api/matchmake`; (status, answer, Retry-After, time to answer). A request that
    /// gets no answer within 5 s is status 0: "hanging".
    async fn matchmake(&self, body: Value) -> (u16, Value, Option<String>, Duration) {
        matchmake(&self.client, self.matchmaker_port, body).await
    }

    /// Waits until every node is in the directory (a matchmake lands on each at least once is
    /// not guaranteed; the directory's own view is).
    async fn wait_until_placeable(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _, _, _) = self.matchmake(json!({"playerName": "probe"})).await;
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "the fleet never placed anyone");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn matchmake(
    client: &reqwest::Client,
    port: u16,
    body: Value,
) -> (u16, Value, Option<String>, Duration) {
    let started = Instant::now();
    let sent = client
        .post(format!("http://127.0.0.1:{port}/api/matchmake"))
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let Ok(response) = sent else {
        return (0, Value::Null, None, started.elapsed());
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let answer = response.json().await.unwrap_or(Value::Null);
    (status, answer, retry_after, started.elapsed())
}

/// A joined player whose socket a task keeps reading: counts frames, keeps receipts.
struct Player {
    port: u16,
    frames: Arc<AtomicU64>,
    receipts: Arc<Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Player {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn ws_port(ws_url: &str) -> u16 {
    ws_url
        .split(':')
        .nth(2)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .expect("ws://127.0.0.1:<port>/…")
}

/// Connects to `ws_url`, joins (v12 with `token`, or v11 without), and waits for the first
/// state frame. `Err((refused, reason))`: `refused` when the node did not take the connection.
async fn join(ws_url: &str, name: &str, token: Option<&str>) -> Result<Player, (bool, String)> {
    let connect = tokio_tungstenite::connect_async(ws_url);
    let (mut socket, _) = match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(error)) => return Err((true, error.to_string())),
        Err(_) => return Err((true, "connect timed out".into())),
    };
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: if token.is_some() { 12 } else { 11 },
            name,
            skin: 0,
            token: token.map(str::as_bytes),
        },
        &mut frame,
    );
    socket
        .send(Message::Binary(frame.into()))
        .await
        .map_err(|error| (true, error.to_string()))?;
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .map_err(|_| (false, "no first frame".to_string()))?
        .ok_or((false, "closed".to_string()))?
        .map_err(|error| (false, error.to_string()))?;
    for frame in server_frames(&first.into_data()) {
        let (frame_type, payload) = frame.map_err(|error| (false, error.to_string()))?;
        if let Ok(Some(ServerEnvelope::Error { code, reason })) =
            decode_server_envelope(frame_type, payload)
        {
            return Err((false, format!("join refused: {code} {reason}")));
        }
    }
    let frames = Arc::new(AtomicU64::new(1));
    let receipts: Arc<Mutex<Vec<String>>> = Arc::default();
    let (frame_count, receipt_list) = (frames.clone(), receipts.clone());
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            frame_count.fetch_add(1, Ordering::Relaxed);
            for frame in server_frames(&message.into_data()).flatten() {
                if let Ok(Some(ServerEnvelope::ScoreReceipt { receipt })) =
                    decode_server_envelope(frame.0, frame.1)
                {
                    receipt_list.lock().unwrap().push(receipt.to_string());
                }
            }
        }
    });
    Ok(Player {
        port: ws_port(ws_url),
        frames,
        receipts,
        reader,
    })
}

/// What one matchmake-then-join attempt did.
struct Attempt {
    player: Option<Player>,
    took: Duration,
    replacements: u32,
    region: String,
    region_reason: String,
    failure: Option<String>,
}

/// Matchmakes and joins like the clients do: when the token's node refuses the connection,
/// matchmake again at once, then after 100, 200, 400 ms…, for at most `budget`.
async fn matchmake_and_join(
    client: &reqwest::Client,
    matchmaker: u16,
    name: &str,
    body: Value,
    budget: Duration,
) -> Attempt {
    let started = Instant::now();
    let mut replacements = 0u32;
    loop {
        let (status, answer, retry_after, _) = matchmake(client, matchmaker, body.clone()).await;
        let failure = if status == 200 {
            let ws_url = answer["wsUrl"].as_str().unwrap_or_default();
            let token = answer["joinToken"].as_str();
            match join(ws_url, name, token).await {
                Ok(player) => {
                    return Attempt {
                        player: Some(player),
                        took: started.elapsed(),
                        replacements,
                        region: answer["region"].as_str().unwrap_or_default().into(),
                        region_reason: answer["regionReason"].as_str().unwrap_or_default().into(),
                        failure: None,
                    };
                }
                Err((true, reason)) => format!("refused: {reason}"),
                Err((false, reason)) => reason,
            }
        } else {
            format!("matchmake {status} {answer} retry-after {retry_after:?}")
        };
        let pause = match replacements {
            0 => Duration::ZERO,
            n => Duration::from_millis(100 << (n - 1).min(2)),
        };
        if started.elapsed() + pause >= budget {
            return Attempt {
                player: None,
                took: started.elapsed(),
                replacements,
                region: String::new(),
                region_reason: String::new(),
                failure: Some(failure),
            };
        }
        replacements += 1;
        tokio::time::sleep(pause).await;
    }
}

/// Matchmakes at `per_second` for `duration`, each request on its own task, as HTTP requests
/// arrive; returns each answer's (status, Retry-After, time to answer).
async fn matchmakes_at_rate(
    fleet: &Fleet,
    per_second: u32,
    duration: Duration,
) -> Vec<(u16, Option<String>, Duration)> {
    let mut requests = Vec::new();
    let interval = Duration::from_secs(1) / per_second;
    let started = Instant::now();
    let mut index = 0u32;
    while started.elapsed() < duration {
        let (client, port) = (fleet.client.clone(), fleet.matchmaker_port);
        index += 1;
        let body = json!({"playerName": format!("o{index}")});
        requests.push(tokio::spawn(async move {
            let (status, _, retry_after, took) = matchmake(&client, port, body).await;
            (status, retry_after, took)
        }));
        tokio::time::sleep_until((started + interval * index).into()).await;
    }
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers
}

/// Asserts every outage request was answered at once with 503 + Retry-After; prints the figures.
fn assert_shed_quickly(fault: &str, answers: &[(u16, Option<String>, Duration)]) {
    let hanging = answers.iter().filter(|(status, ..)| *status == 0).count();
    let slowest = answers
        .iter()
        .map(|(.., took)| *took)
        .max()
        .unwrap_or_default();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (status, ..) in answers {
        *statuses.entry(*status).or_default() += 1;
    }
    println!(
        "{fault}: {} matchmakes at 10/s: {hanging} got no answer within 5 s, slowest answer {slowest:?}, statuses {statuses:?}",
        answers.len()
    );
    assert_eq!(hanging, 0, "{fault}: requests hung");
    assert!(
        slowest < Duration::from_secs(1),
        "{fault}: an answer took {slowest:?}"
    );
    for (status, retry_after, _) in answers {
        if *status == 503 {
            assert!(retry_after.is_some(), "{fault}: a 503 without Retry-After");
        }
    }
}

/// From now, the time until a matchmake-then-join succeeds (polled every 100 ms).
async fn time_until_placement(fleet: &Fleet, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut index = 0;
    loop {
        index += 1;
        let attempt = matchmake_and_join(
            &fleet.client,
            fleet.matchmaker_port,
            &format!("back{index}"),
            json!({"playerName": format!("back{index}")}),
            Duration::from_millis(100),
        )
        .await;
        if attempt.player.is_some() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "placement not back within {limit:?}: {:?}",
            attempt.failure
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every player received frames since `before` was taken: the games kept running.
fn assert_players_kept_playing(players: &[Player], before: &[u64], fault: &str) {
    for (player, before) in players.iter().zip(before) {
        let now = player.frames.load(Ordering::Relaxed);
        assert!(
            now > *before + 5,
            "{fault}: a player on port {} got {} frames during the fault",
            player.port,
            now - before
        );
    }
}

fn frames_of(players: &[Player]) -> Vec<u64> {
    players
        .iter()
        .map(|player| player.frames.load(Ordering::Relaxed))
        .collect()
}

async fn join_players(fleet: &Fleet, count: usize, prefix: &str) -> Vec<Player> {
    let mut players = Vec::new();
    for index in 0..count {
        let name = format!("{prefix}{index}");
        let attempt = matchmake_and_join(
            &fleet.client,
            fleet.matchmaker_port,
            &name,
            json!({"playerName": name}),
            Duration::from_secs(5),
        )
        .await;
        players.push(
            attempt
                .player
                .unwrap_or_else(|| panic!("{name} did not join: {:?}", attempt.failure)),
        );
    }
    players
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_or_frozen_placement_returns_within_seconds_and_nothing_hangs() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let mut fleet =
        Fleet::start(redis, &[("node-a", "local"), ("node-b", "local")], &[], &[]).await;
    fleet.wait_until_placeable().await;
    let players = join_players(&fleet, 10, "warm").await;

    // Killed, down 3 s, restarted empty.
    let before = frames_of(&players);
    fleet.redis.kill();
    let answers = matchmakes_at_rate(&fleet, 10, Duration::from_secs(3)).await;
    assert_shed_quickly("Redis down", &answers);
    fleet.redis.spawn();
    let back = time_until_placement(&fleet, Duration::from_secs(10)).await;
    println!("Redis restarted empty: placement back {back:?} after it returned");
    assert_players_kept_playing(&players, &before, "Redis down");

    // Frozen 3 s (the process stops answering; the sockets stay open).
    let before = frames_of(&players);
    fleet.redis.signal("-STOP");
    let answers = matchmakes_at_rate(&fleet, 10, Duration::from_secs(3)).await;
    fleet.redis.signal("-CONT");
    assert_shed_quickly("Redis frozen", &answers);
    let back = time_until_placement(&fleet, Duration::from_secs(10)).await;
    println!("Redis frozen: placement back {back:?} after SIGCONT");
    assert_players_kept_playing(&players, &before, "Redis frozen");
}

/// The share of attempts that reached a game within 2 s of their start, while attempts start
/// at 20 per second for `duration` from now.
async fn attempts_after_fault(fleet: &Fleet, prefix: &str, duration: Duration) -> Vec<Attempt> {
    let mut tasks = Vec::new();
    let started = Instant::now();
    let mut index = 0u32;
    while started.elapsed() < duration {
        index += 1;
        let (client, port) = (fleet.client.clone(), fleet.matchmaker_port);
        let name = format!("{prefix}{index}");
        tasks.push(tokio::spawn(async move {
            let body = json!({"playerName": name});
            matchmake_and_join(&client, port, &name, body, Duration::from_secs(5)).await
        }));
        tokio::time::sleep_until((started + Duration::from_millis(50) * index).into()).await;
    }
    let mut attempts = Vec::new();
    for task in tasks {
        attempts.push(task.await.unwrap());
    }
    attempts
}

fn report_attempts(fault: &str, attempts: &[Attempt], dead_port: u16) -> f64 {
    let within = attempts
        .iter()
        .filter(|attempt| attempt.player.is_some() && attempt.took <= Duration::from_secs(2))
        .count();
    let replaced = attempts
        .iter()
        .filter(|attempt| attempt.replacements > 0)
        .count();
    let mut took: Vec<Duration> = attempts.iter().map(|attempt| attempt.took).collect();
    took.sort_unstable();
    let share = within as f64 / attempts.len() as f64;
    println!(
        "{fault}: {within} of {} matchmake-then-join attempts reached a game within 2 s ({:.1}%); \
         {replaced} were re-placed after a refusal; time to a game p50 {:?} p99 {:?} max {:?}",
        attempts.len(),
        share * 100.0,
        took[took.len() / 2],
        took[(took.len() * 99 / 100).min(took.len() - 1)],
        took[took.len() - 1]
    );
    for attempt in attempts {
        if let Some(player) = &attempt.player {
            assert_ne!(
                player.port, dead_port,
                "{fault}: a player joined the dead node"
            );
        }
    }
    if let Some(failure) = attempts.iter().find_map(|attempt| attempt.failure.as_ref()) {
        println!("{fault}: first failure: {failure}");
    }
    share
}

/// After the detection time, no matchmake hands out a seat on `dead_port`.
async fn assert_no_seat_on(fleet: &Fleet, dead_port: u16, fault: &str) {
    for index in 0..20 {
        let (status, answer, _, _) = fleet
            .matchmake(json!({"playerName": format!("after{index}")}))
            .await;
        assert_eq!(status, 200, "{fault}: {answer}");
        assert_ne!(
            ws_port(answer["wsUrl"].as_str().unwrap()),
            dead_port,
            "{fault}: a seat on the dead node after the detection time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_and_a_frozen_node_leave_placement_and_players_are_placed_again() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let liveness = Duration::from_millis(1500);
    let mut fleet = Fleet::start(
        redis,
        &[
            ("node-a", "local"),
            ("node-b", "local"),
            ("node-c", "local"),
        ],
        &[],
        &[("NODE_LIVENESS_MS", liveness.as_millis().to_string())],
    )
    .await;
    fleet.wait_until_placeable().await;
    let players = join_players(&fleet, 30, "warm").await;
    let mut per_port: HashMap<u16, usize> = HashMap::new();
    for player in &players {
        *per_port.entry(player.port).or_default() += 1;
    }

    // SIGKILL the node with the most players (its rooms are the fullest: placement's favourite).
    let victim = ["node-a", "node-b", "node-c"]
        .into_iter()
        .max_by_key(|id| per_port.get(&fleet.node_port(id)).copied().unwrap_or(0))
        .unwrap();
    let dead_port = fleet.node_port(victim);
    fleet.nodes.get_mut(victim).unwrap().1.kill();
    let attempts = attempts_after_fault(&fleet, "k", Duration::from_secs(4)).await;
    let share = report_attempts("node SIGKILLed", &attempts, dead_port);
    assert!(share >= 0.99, "only {:.1}% within 2 s", share * 100.0);
    // The first attempts were started within the liveness: some were sent to the dead node.
    assert!(
        attempts.iter().any(|attempt| attempt.replacements > 0),
        "no attempt met the dead node: the test did not test re-placement"
    );
    assert_no_seat_on(&fleet, dead_port, "node SIGKILLed").await;

    // SIGSTOP another node: alive but silent.
    let frozen = ["node-a", "node-b", "node-c"]
        .into_iter()
        .find(|id| *id != victim)
        .unwrap();
    let frozen_port = fleet.node_port(frozen);
    fleet.nodes[frozen].1.signal("-STOP");
    let stopped_at = Instant::now();
    // A frozen node's kernel still accepts TCP connections: clients wait for a first frame
    // that never comes. Give the directory its liveness, then check no seat goes there.
    tokio::time::sleep_until((stopped_at + liveness + Duration::from_millis(500)).into()).await;
    assert_no_seat_on(&fleet, frozen_port, "node SIGSTOPped").await;
    println!(
        "node SIGSTOPped: no seat on it from {:?} after the stop (liveness {liveness:?})",
        liveness + Duration::from_millis(500)
    );
    fleet.nodes[frozen].1.signal("-CONT");
    let resumed = Instant::now();
    // It is back in placement as soon as the directory knows it again (its first keep-alive
    // finds it forgotten and publishes every room).
    let directory = coil_match::RedisDirectory::connect(
        &fleet.redis.url(),
        coil_match::RedisDirectoryConfig::default(),
    )
    .await
    .unwrap();
    let region = coil_match::Region::parse("local").unwrap();
    loop {
        let snapshot = directory.region_snapshot(&region, now_ms()).await.unwrap();
        if snapshot
            .nodes
            .iter()
            .any(|node| node.node_id.as_str() == frozen)
        {
            break;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(10),
            "the resumed node never returned to placement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "node SIGCONTed: back in placement {:?} after it resumed",
        resumed.elapsed()
    );
    drop(players);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_outage_reroutes_new_matchmakes_to_the_neighbour_and_says_why() {
    let _serial = SERIAL.lock().await;
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let mut fleet = Fleet::start(
        redis,
        &[
            ("east-a", "us-east"),
            ("east-b", "us-east"),
            ("west-a", "us-west"),
        ],
        &[
            ("DEFAULT_REGION", "us-east".into()),
            (
                "REGION_NEIGHBOURS",
                "us-east=us-west;us-west=us-east".into(),
            ),
        ],
        // A node is out of placement one heartbeat after its last beat.
        &[("NODE_LIVENESS_MS", "1000".into())],
    )
    .await;
    fleet.wait_until_placeable().await;
    let east = |name: &str| json!({"playerName": name, "preferredRegion": "us-east"});
    let attempt = matchmake_and_join(
        &fleet.client,
        fleet.matchmaker_port,
        "e1",
        east("e1"),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        (attempt.region.as_str(), attempt.region_reason.as_str()),
        ("us-east", "preferred")
    );
    let (_, unknown, _, _) = fleet
        .matchmake(json!({"playerName": "m1", "preferredRegion": "mars"}))
        .await;
    assert_eq!(
        (&unknown["region"], &unknown["regionReason"]),
        (&json!("us-east"), &json!("fallback"))
    );

    // Every node of us-east dies at once.
    fleet.nodes.get_mut("east-a").unwrap().1.kill();
    fleet.nodes.get_mut("east-b").unwrap().1.kill();
    let killed = Instant::now();
    let rerouted = loop {
        let (status, answer, _, _) = fleet.matchmake(east("e2")).await;
        if status == 200 && answer["region"] == "us-west" {
            break (killed.elapsed(), answer);
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "us-east matchmakes never went to us-west: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!(
        "regional outage: us-east matchmakes go to us-west {:?} after its last node died (heartbeat 1 s, liveness 1 s)",
        rerouted.0
    );
    assert_eq!(rerouted.1["regionReason"], "neighbour");
    assert!(
        rerouted.0 <= Duration::from_millis(2500),
        "{:?}",
        rerouted.0
    );
    // And those players reach a game in the neighbour region.
    let attempt = matchmake_and_join(
        &fleet.client,
        fleet.matchmaker_port,
        "e3",
        east("e3"),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        (attempt.region.as_str(), attempt.region_reason.as_str()),
        ("us-west", "neighbour"),
        "{:?}",
        attempt.failure
    );
    assert_eq!(
        attempt.player.as_ref().map(|player| player.port),
        Some(fleet.node_port("west-a"))
    );
}

/// The all-in-one node with its leaderboard on PostgreSQL through the cut-and-restore proxy.
async fn start_serve(dir: &Path, data: &Path, database_url: &str, port: u16) -> Process {
    let mut process = coil(
        dir,
        "serve",
        &["serve"],
        &[
            ("PORT", port.to_string()),
            ("DATA_DIR", data.display().to_string()),
            ("DATABASE_URL", database_url.to_string()),
            ("ENABLE_DEBUG_COMMANDS", "1".into()),
            ("ROOM_POPULATION_TARGET", "0".into()),
            ("TICK_MS", "100".into()),
            ("DRAIN_TIMEOUT_SECS", "1".into()),
        ],
    );
    wait_healthy(port, &mut process).await;
    process
}

async fn kill_snake(client: &reqwest::Client, port: u16, name: &str) {
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/debug/kill"))
        .json(&json!({"room": "chaos", "name": name}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "kill {name}: {}",
        response.status()
    );
}

/// Waits until `players` hold a receipt each (one death each).
async fn wait_for_receipts(players: &[Player]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let receipts: Vec<String> = players
            .iter()
            .filter_map(|player| player.receipts.lock().unwrap().first().cloned())
            .collect();
        if receipts.len() == players.len() {
            return receipts;
        }
        assert!(Instant::now() < deadline, "deaths without receipts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leaderboard rows of `receipts` are all stored: re-POSTing a receipt answers 200
/// ("already recorded"), where a lost row would answer 201 (stored just now).
async fn assert_rows_stored(client: &reqwest::Client, port: u16, receipts: &[String], fault: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    // First wait until the writer caught up (the leaderboard lists as many rows).
    loop {
        let top: Value = client
            .get(format!("http://127.0.0.1:{port}/api/leaderboard?limit=100"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let rows = top["scores"].as_array().map_or(0, Vec::len);
        if rows >= receipts.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{fault}: {rows} of {} rows stored",
            receipts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for receipt in receipts {
        let response = client
            .post(format!("http://127.0.0.1:{port}/api/leaderboard"))
            .json(&json!({"receipt": receipt}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            200,
            "{fault}: a receipt's row was missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_off_and_restored_loses_no_score_even_across_a_node_restart() {
    let _serial = SERIAL.lock().await;
    let Ok(base_url) = std::env::var("TEST_DATABASE_URL") else {
        println!("skipped: TEST_DATABASE_URL is not set (CI sets it)");
        return;
    };
    use sqlx::Connection;
    let schema = format!("chaos_{:016x}", {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(Instant::now())
    });
    let mut admin = sqlx::PgConnection::connect(&base_url).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let proxy = outage_proxy::OutageProxy::start(outage_proxy::postgres_address(&base_url)).await;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let database_url = format!(
        "{}{separator}options[search_path]={schema}",
        proxy.rewrite_url(&base_url)
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let client = reqwest::Client::new();
    let mut serve = start_serve(dir.path(), &data, &database_url, port).await;
    let ws = format!("ws://127.0.0.1:{port}/api/room/chaos");

    // Deaths while PostgreSQL is away: the games go on, nothing is lost, and no receipt is
    // handed out before its row is durable.
    let mut players = Vec::new();
    for index in 0..6 {
        players.push(join(&ws, &format!("pg{index}"), None).await.unwrap());
    }
    proxy.cut();
    let before = frames_of(&players);
    for index in 0..6 {
        kill_snake(&client, port, &format!("pg{index}")).await;
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        players
            .iter()
            .all(|player| player.receipts.lock().unwrap().is_empty()),
        "a receipt arrived while its row could not be stored"
    );
    // Reading the leaderboard meanwhile is a quick 503, not a request that waits out a deadline.
    for _ in 0..3 {
        let started = Instant::now();
        let response = client
            .get(format!("http://127.0.0.1:{port}/api/leaderboard"))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(response.status().as_u16(), 503);
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_players_kept_playing(&players, &before, "PostgreSQL down");
    proxy.restore();
    let restored = Instant::now();
    let receipts = wait_for_receipts(&players).await;
    assert_rows_stored(&client, port, &receipts, "PostgreSQL cut off").await;
    println!(
        "PostgreSQL cut off 2 s: 6 of 6 deaths stored {:?} after it returned",
        restored.elapsed()
    );

    // Deaths while PostgreSQL is away, then the node is restarted before it returns: the node
    // keeps the unwritten scores on disk at shutdown and writes them after the restart.
    let mut second = Vec::new();
    for index in 0..4 {
        second.push(join(&ws, &format!("rs{index}"), None).await.unwrap());
    }
    proxy.cut();
    for index in 0..4 {
        kill_snake(&client, port, &format!("rs{index}")).await;
    }
    drop(second);
    drop(players);
    serve.signal("-TERM");
    let stopped = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if serve.child.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "the node did not stop after SIGTERM");
    let spill = data.join("scores-pending.jsonl");
    assert!(
        spill.exists(),
        "no spill file after a shutdown with PostgreSQL away"
    );
    proxy.restore();
    let _serve = start_serve(dir.path(), &data, &database_url, port).await;
    // Those players left before their rows were durable, so they hold no receipts: the rows
    // themselves are the proof.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let top: Value = client
            .get(format!("http://127.0.0.1:{port}/api/leaderboard?limit=100"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let names: Vec<&str> = top["scores"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|row| row["name"].as_str()).collect())
            .unwrap_or_default();
        let replayed = (0..4)
            .filter(|index| names.contains(&format!("rs{index}").as_str()))
            .count();
        if replayed == 4 && names.len() >= 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node restarted during the outage: {replayed} of 4 spilled runs stored ({names:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!spill.exists(), "the spill file outlived its replay");
    println!("PostgreSQL away across a node restart: 4 of 4 deaths stored after the replay");
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
}
