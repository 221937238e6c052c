//! The Redis directory under faults, against a private `redis-server` this test starts, kills,
//! freezes and restarts on its own loopback port (the shared Redis on 6379 is never touched).
//!
//! Runs when `TEST_REDIS_URL` is set (CI sets it and installs `redis-server`); the URL itself is
//! not used, only the promise that Redis is available on this machine.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use coil_match::{
    Heartbeat, NodeId, NodeState, NodeStatus, RedisDirectory, RedisDirectoryConfig, Region,
    RoomDirectory, RoomId, RoomState, RoomStatus,
};

/// A `redis-server` of our own on a free loopback port, without persistence: a restart comes
/// back empty, as a crashed Redis without a replica does.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Option<PrivateRedis> {
        if std::env::var("TEST_REDIS_URL").is_err() {
            eprintln!("TEST_REDIS_URL is not set: skipping the Redis fault tests");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = PrivateRedis { port, child: None };
        if !redis.spawn() {
            eprintln!("redis-server is not on PATH: skipping the Redis fault tests");
            return None;
        }
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server and waits until it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|output| output.stdout.starts_with(b"PONG"));
            if pong {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the private redis-server never answered PING");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("-CONT");
        }
        self.kill();
    }
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn beat(node: &str) -> Heartbeat {
    let node_id = NodeId::parse(node).unwrap();
    let region = Region::parse("local").unwrap();
    Heartbeat {
        node: NodeStatus {
            node_id: node_id.clone(),
            region: region.clone(),
            public_url: "ws://127.0.0.1:9".into(),
            state: NodeState::Active,
            room_capacity: 4,
            rooms: 1,
            humans: 0,
            modes: Vec::new(),
        },
        rooms: vec![RoomStatus {
            room_id: RoomId::parse(&format!("{node}-room")).unwrap(),
            region,
            node_id,
            humans: 0,
            bots: 0,
            state: RoomState::Warm,
            tick_p95_ms: 1.0,
            joinable: true,
            mode: coil_match::GameMode::arena(),
            lobby: None,
        }],
    }
}

fn config() -> RedisDirectoryConfig {
    RedisDirectoryConfig {
        key_prefix: "coil:faults:".into(),
        ..RedisDirectoryConfig::default()
    }
}

/// Heartbeats every 200 ms, like a node, until one succeeds; returns how long that took.
async fn beat_until_stored(directory: &RedisDirectory, limit: Duration) -> Duration {
    let started = Instant::now();
    let heartbeat = beat("node-a");
    loop {
        let attempt = directory
            .heartbeat(&heartbeat, Duration::from_secs(5), now_ms())
            .await;
        if attempt.is_ok() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "no heartbeat stored within {limit:?} of Redis returning; last error: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reconnects_within_seconds_after_redis_restarts_empty() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let directory = RedisDirectory::connect(&redis.url(), config())
        .await
        .unwrap();
    beat_until_stored(&directory, Duration::from_secs(1)).await;

    redis.kill();
    // The node keeps beating through a 2 s outage; each beat fails.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(2) {
        let result = directory
            .heartbeat(&beat("node-a"), Duration::from_secs(5), now_ms())
            .await;
        assert!(result.is_err(), "a heartbeat succeeded with Redis down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(redis.spawn());
    let took = beat_until_stored(&directory, Duration::from_secs(3)).await;
    eprintln!("heartbeat stored {took:?} after Redis came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_is_announced_so_nodes_can_republish_at_once() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let directory = RedisDirectory::connect(&redis.url(), config())
        .await
        .unwrap();
    let mut changes = directory
        .connection_changes()
        .expect("redis has a connection");
    let before = *changes.borrow_and_update();
    redis.kill();
    // The loss is noticed by the first call that fails on the dead connection.
    let failed = directory
        .heartbeat(&beat("node-a"), Duration::from_secs(5), now_ms())
        .await;
    assert!(failed.is_err());
    assert!(redis.spawn());
    let restarted = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), changes.changed())
        .await
        .expect("a reconnect within 3 s of Redis returning")
        .unwrap();
    assert!(*changes.borrow() > before);
    eprintln!("reconnected {:?} after Redis returned", restarted.elapsed());
    // Redis came back empty: the node is unknown until it publishes again.
    let node = NodeId::parse("node-a").unwrap();
    assert!(
        !directory
            .keep_alive(&node, Duration::from_secs(1))
            .await
            .unwrap()
    );
    directory
        .heartbeat(&beat("node-a"), Duration::from_secs(5), now_ms())
        .await
        .unwrap();
    assert!(
        directory
            .keep_alive(&node, Duration::from_secs(1))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_silent_past_its_liveness_leaves_placement_while_its_rooms_keep_the_ttl() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let directory = RedisDirectory::connect(&redis.url(), config())
        .await
        .unwrap();
    let node = NodeId::parse("node-a").unwrap();
    directory
        .heartbeat(&beat("node-a"), Duration::from_secs(30), now_ms())
        .await
        .unwrap();
    assert!(
        directory
            .keep_alive(&node, Duration::from_millis(300))
            .await
            .unwrap()
    );
    let policy = coil_match::PlacementPolicy {
        spare_fraction: 0.0,
        ..coil_match::PlacementPolicy::default()
    };
    let request = coil_match::MatchRequest::default();
    let placement = directory
        .matchmake(&request, &policy, now_ms())
        .await
        .unwrap();
    assert_eq!(placement.node_id, node);
    // No beat for longer than the liveness: the node is out of placement, although its room's
    // entry (30 s TTL) is still there.
    let silent = Instant::now();
    loop {
        match directory.matchmake(&request, &policy, now_ms()).await {
            Err(coil_match::MatchError::NoCapacity { .. }) => break,
            Ok(placement) => assert_eq!(placement.node_id, node),
            Err(other) => panic!("{other}"),
        }
        assert!(
            silent.elapsed() < Duration::from_secs(3),
            "a silent node kept receiving players"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone_after = silent.elapsed();
    assert!(gone_after >= Duration::from_millis(250), "{gone_after:?}");
    eprintln!("a silent node left placement {gone_after:?} after its last beat (liveness 300 ms)");
    let mut raw = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let room_ttl_ms: i64 = redis::cmd("PTTL")
        .arg("coil:faults:room:node-a-room")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(room_ttl_ms > 20_000, "room TTL {room_ttl_ms} ms");
}

/// Freezes Redis (SIGSTOP): calls fail within their deadline and never queue, the breaker then
/// sheds at once, and everything works again right after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_fails_calls_fast_and_recovers_when_it_thaws() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let directory = std::sync::Arc::new(
        RedisDirectory::connect(&redis.url(), config())
            .await
            .unwrap(),
    );
    beat_until_stored(&directory, Duration::from_secs(1)).await;
    let policy = coil_match::PlacementPolicy {
        spare_fraction: 0.0,
        ..coil_match::PlacementPolicy::default()
    };
    directory
        .matchmake(&coil_match::MatchRequest::default(), &policy, now_ms())
        .await
        .unwrap();
    redis.signal("-STOP");
    // 10 matchmakes a second for 3 s, each on its own task, as HTTP requests arrive.
    let mut calls = Vec::new();
    for _ in 0..30 {
        let (directory, policy) = (directory.clone(), policy.clone());
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = directory
                .matchmake(&coil_match::MatchRequest::default(), &policy, now_ms())
                .await;
            (result.is_ok(), started.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (ok, took) = call.await.unwrap();
        assert!(!ok, "a matchmake succeeded against a frozen Redis");
        slowest = slowest.max(took);
    }
    // The deadline is 250 ms per call and a matchmake makes at most a few calls before it fails.
    assert!(
        slowest < Duration::from_secs(1),
        "a call waited {slowest:?}"
    );
    eprintln!("slowest answer during the freeze: {slowest:?}");
    redis.signal("-CONT");
    let thawed = Instant::now();
    loop {
        if directory
            .matchmake(&coil_match::MatchRequest::default(), &policy, now_ms())
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(3),
            "no recovery after SIGCONT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("matchmakes work again {:?} after SIGCONT", thawed.elapsed());
}

/// Redis down: every call fails at once (nothing waits for a connection), however many arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_calls_are_refused_at_once_not_queued() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let directory = std::sync::Arc::new(
        RedisDirectory::connect(&redis.url(), config())
            .await
            .unwrap(),
    );
    beat_until_stored(&directory, Duration::from_secs(1)).await;
    redis.kill();
    let policy = coil_match::PlacementPolicy::default();
    let started = Instant::now();
    let calls: Vec<_> = (0..500)
        .map(|_| {
            let (directory, policy) = (directory.clone(), policy.clone());
            tokio::spawn(async move {
                directory
                    .matchmake(&coil_match::MatchRequest::default(), &policy, now_ms())
                    .await
            })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_err());
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "500 refusals took {took:?}");
    eprintln!("500 concurrent matchmakes refused in {took:?} with Redis down");
}

/// A directory nobody calls (a matchmaker between requests) still notices a restart and
/// reconnects, so the first request after Redis returns does not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_directory_reconnects_without_waiting_for_a_request() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let directory = RedisDirectory::connect(&redis.url(), config())
        .await
        .unwrap();
    let mut changes = directory.connection_changes().unwrap();
    changes.borrow_and_update();
    redis.kill();
    assert!(redis.spawn());
    tokio::time::timeout(Duration::from_secs(4), changes.changed())
        .await
        .expect("the health check noticed the restart and reconnected")
        .unwrap();
    directory
        .heartbeat(&beat("node-a"), Duration::from_secs(5), now_ms())
        .await
        .expect("the first call after the restart succeeds");
}
