//! End to end with real processes: Redis (`TEST_REDIS_URL`), a `coil matchmaker` process, the
//! autoscaler (library call, local executor starting `coil node` processes), and simulated
//! players over real WebSockets (matchmake, v12 join with the token; on a drain notice, an
//! error frame 11 or a dropped socket they matchmake again by themselves).
//!
//! Players ramp up → the autoscaler adds a node and new players land on it → most players
//! leave → the autoscaler drains the emptiest node (its players move) and deletes it. No
//! player is lost: every interrupted player joined again. Bounded by a 90 s timeout; every
//! process is stopped on any exit (`kill_on_drop`, and the autoscaler's own shutdown).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use coil_autoscaler::AutoscalerArgs;
use coil_match::{NodeState, RedisDirectory, RedisDirectoryConfig, Region, RoomDirectory};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{
    Join, NoticeKind, ServerEnvelope, decode_server_envelope, encode_join,
};
use futures_util::{SinkExt, StreamExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "e2e-internal-secret-0123456789";
const REGION: &str = "local";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: AutoscalerArgs,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builds the `coil` binary (a no-op when it is up to date) and returns its path. If the
/// build fails (another crate mid-edit) an existing binary is used.
fn coil_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("debug").join("coil");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-p", "coil", "--bin", "coil"])
        .current_dir(&workspace)
        .status();
    match status {
        Ok(status) if status.success() => {}
        other => {
            eprintln!("cargo build -p coil did not succeed ({other:?}); using the existing binary")
        }
    }
    assert!(binary.exists(), "no coil binary at {}", binary.display());
    binary
}

/// What one simulated player went through.
#[derive(Default)]
struct PlayerRecord {
    joined: AtomicBool,
    sessions: AtomicU32,
    /// Sessions the server ended (drain notice, error 11, closed socket).
    interruptions: AtomicU32,
    /// Joins that followed an interruption.
    recoveries: AtomicU32,
    /// The `ws://127.0.0.1:<port>` base of the node the player is on.
    node: Mutex<String>,
    /// The room's full WebSocket URL.
    room: Mutex<String>,
}

struct Player {
    record: Arc<PlayerRecord>,
    leave: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

enum SessionEnd {
    Left,
    Interrupted,
    JoinFailed,
}

async fn matchmake(
    http: &reqwest::Client,
    matchmaker: &str,
    player_id: &str,
) -> Option<(String, String)> {
    let response = http
        .post(format!("{matchmaker}/api/matchmake"))
        .json(&serde_json::json!({ "playerId": player_id, "playerName": player_id }))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let answer: serde_json::Value = response.json().await.ok()?;
    Some((
        answer["wsUrl"].as_str()?.to_owned(),
        answer["joinToken"].as_str()?.to_owned(),
    ))
}

async fn session(
    ws_url: &str,
    token: &str,
    name: &str,
    record: &PlayerRecord,
    interrupted_before: bool,
    leave: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let Ok(Ok((mut socket, _))) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(ws_url),
    )
    .await
    else {
        return SessionEnd::JoinFailed;
    };
    let mut frame = Vec::new();
    encode_join(
        &Join {
            version: 12,
            name,
            skin: 0,
            token: Some(token.as_bytes()),
        },
        &mut frame,
    );
    if socket.send(Message::Binary(frame.into())).await.is_err() {
        return SessionEnd::JoinFailed;
    }
    let mut joined = false;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = leave.changed() => {
                let _ = socket.close(None).await;
                return SessionEnd::Left;
            }
        };
        let bytes = match message {
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                return if joined {
                    SessionEnd::Interrupted
                } else {
                    SessionEnd::JoinFailed
                };
            }
            Some(Ok(_)) => continue,
        };
        for frame in server_frames(&bytes) {
            let Ok((frame_type, payload)) = frame else {
                break;
            };
            match decode_server_envelope(frame_type, payload) {
                Ok(None) if !joined => {
                    // The first game frame: the player is in.
                    joined = true;
                    record.joined.store(true, Ordering::SeqCst);
                    record.sessions.fetch_add(1, Ordering::SeqCst);
                    if interrupted_before {
                        record.recoveries.fetch_add(1, Ordering::SeqCst);
                    }
                    let base = ws_url.split("/api/").next().unwrap_or_default().to_owned();
                    *record.node.lock().unwrap() = base;
                    *record.room.lock().unwrap() = ws_url.to_owned();
                }
                Ok(Some(ServerEnvelope::Notice { kind, .. }))
                    if kind == NoticeKind::Draining as u8 =>
                {
                    // Re-matchmake at once rather than wait for the deadline.
                    let _ = socket.close(None).await;
                    return if joined {
                        SessionEnd::Interrupted
                    } else {
                        SessionEnd::JoinFailed
                    };
                }
                Ok(Some(ServerEnvelope::Error { code, .. })) => {
                    let _ = code; // 11 (draining) or any refusal: matchmake again.
                    let _ = socket.close(None).await;
                    return if joined {
                        SessionEnd::Interrupted
                    } else {
                        SessionEnd::JoinFailed
                    };
                }
                _ => {}
            }
        }
    }
}

fn spawn_player(matchmaker: String, index: usize) -> Player {
    let record = Arc::new(PlayerRecord::default());
    let (leave, mut leave_rx) = watch::channel(false);
    let task_record = record.clone();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let name = format!("p{index}");
        let mut interrupted = false;
        loop {
            if *leave_rx.borrow() {
                return;
            }
            let Some((ws_url, token)) = matchmake(&http, &matchmaker, &name).await else {
                // No capacity yet (503) or a hiccup: ask again shortly, like a client would.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => continue,
                    _ = leave_rx.changed() => return,
                }
            };
            match session(
                &ws_url,
                &token,
                &name,
                &task_record,
                interrupted,
                &mut leave_rx,
            )
            .await
            {
                SessionEnd::Left => return,
                SessionEnd::Interrupted => {
                    task_record.joined.store(false, Ordering::SeqCst);
                    task_record.interruptions.fetch_add(1, Ordering::SeqCst);
                    interrupted = true;
                }
                SessionEnd::JoinFailed => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    Player {
        record,
        leave,
        task,
    }
}

async fn leave(player: Player) {
    let _ = player.leave.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), player.task).await;
}

/// Polls `condition` every 200 ms until it holds; panics with `what` after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Active and draining node ids in the directory, with their public URLs.
async fn directory_nodes(directory: &RedisDirectory) -> Vec<(String, NodeState, String, u32)> {
    let region = Region::parse(REGION).unwrap();
    match directory.region_snapshot(&region, now_ms()).await {
        Ok(snapshot) => snapshot
            .nodes
            .iter()
            .map(|node| {
                (
                    node.node_id.to_string(),
                    node.state,
                    node.public_url.clone(),
                    node.humans,
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn port_open(url: &str) -> bool {
    let address: Option<SocketAddr> = url
        .trim_start_matches("ws://")
        .trim_start_matches("http://")
        .parse()
        .ok();
    address.is_some_and(|address| {
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
    })
}

async fn start_matchmaker(
    coil: &Path,
    redis_url: &str,
    prefix: &str,
    key_file: &Path,
    port: u16,
    log: &Path,
) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let log_err = log.try_clone().unwrap();
    Command::new(coil)
        .arg("matchmaker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis_url)
        .env("REDIS_KEY_PREFIX", prefix)
        .env("JOIN_TOKEN_KEY_FILE", key_file)
        .env("DEFAULT_REGION", REGION)
        .env("ROOM_SOFT_CAP", "6")
        .env("ROOM_HARD_CAP", "8")
        .env("SPARE_FRACTION", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true)
        .spawn()
        .expect("matchmaker starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_ramp_up_and_down_and_the_fleet_follows_without_losing_anyone() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("TEST_REDIS_URL is not set: skipping the autoscaler end-to-end test");
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter("coil_autoscaler=info")
        .with_test_writer()
        .try_init();
    let coil = coil_binary();
    let work = tempfile::tempdir().unwrap();
    let prefix = format!("coil:e2e:{:08x}:", rand::random::<u32>());
    let key_file = work.path().join("join-token.key");
    let public_key = std::process::Command::new(&coil)
        .args(["matchmaker", "--print-public-key"])
        .env("JOIN_TOKEN_KEY_FILE", &key_file)
        .env("REDIS_URL", &redis_url)
        .output()
        .expect("coil matchmaker --print-public-key");
    assert!(public_key.status.success(), "{public_key:?}");
    let public_key = String::from_utf8(public_key.stdout)
        .unwrap()
        .trim()
        .to_owned();

    let matchmaker_port = free_port();
    let matchmaker_log = work.path().join("matchmaker.log");
    let mut matchmaker_process = start_matchmaker(
        &coil,
        &redis_url,
        &prefix,
        &key_file,
        matchmaker_port,
        &matchmaker_log,
    )
    .await;
    let matchmaker = format!("http://127.0.0.1:{matchmaker_port}");

    let base_port = 30_000 + (rand::random::<u16>() % 20_000);
    let node_dir = work.path().join("nodes");
    let cli = Cli::try_parse_from([
        "coil",
        "--redis-url",
        &redis_url,
        "--redis-key-prefix",
        &prefix,
        "--internal-secret",
        SECRET,
        "--join-token-public-key",
        &public_key,
        "--regions",
        REGION,
        "--executor",
        "local",
        "--coil-bin",
        coil.to_str().unwrap(),
        "--base-port",
        &base_port.to_string(),
        "--local-data-dir",
        node_dir.to_str().unwrap(),
        "--port",
        "0",
        "--interval-secs",
        "1",
        "--room-soft-cap",
        "6",
        "--scrape-timeout-ms",
        "500",
        "--min-nodes",
        "1",
        "--max-nodes",
        "3",
        "--seats-per-node",
        "12",
        "--spare-seat-buffer",
        "0.15",
        "--scale-in-window-secs",
        "2",
        "--scale-in-delay-after-scale-out-secs",
        "4",
        "--scale-in-cooldown-secs",
        "1",
        "--drain-deadline-secs",
        "6",
        "--eviction-grace-secs",
        "2",
        "--action-retry-secs",
        "3",
        "--boot-timeout-secs",
        "40",
        "--pending-create-timeout-secs",
        "30",
        "--node-stop-timeout-secs",
        "5",
        "--node-env",
        "MAX_ROOMS=2;ROOM_POPULATION_TARGET=0;ROOM_IDLE_SECS=2;HEARTBEAT_SECS=1;HEARTBEAT_TTL_SECS=3;DRAIN_TIMEOUT_SECS=4;RUST_LOG=warn",
    ])
    .expect("autoscaler flags parse");
    let (stop_autoscaler, autoscaler_stopped) = tokio::sync::oneshot::channel::<()>();
    let autoscaler = tokio::spawn(coil_autoscaler::run(cli.args, async move {
        let _ = autoscaler_stopped.await;
    }));

    let directory = RedisDirectory::connect(
        &redis_url,
        RedisDirectoryConfig {
            key_prefix: prefix.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("redis");

    let scenario = async {
        // The floor: one node comes up with no players at all.
        wait_for("the first node", Duration::from_secs(20), || async {
            directory_nodes(&directory).await.len() == 1
        })
        .await;
        let first_node = directory_nodes(&directory).await[0].2.clone();

        // Ramp up to 11 players: 11 of 12 seats leaves 8% spare, under the 15% buffer.
        let mut players: Vec<Player> = (0..11)
            .map(|index| spawn_player(matchmaker.clone(), index))
            .collect();
        wait_for("11 players in", Duration::from_secs(20), || async {
            players
                .iter()
                .filter(|player| player.record.joined.load(Ordering::SeqCst))
                .count()
                == 11
        })
        .await;
        wait_for("a second active node", Duration::from_secs(25), || async {
            directory_nodes(&directory)
                .await
                .iter()
                .filter(|node| node.1 == NodeState::Active)
                .count()
                >= 2
        })
        .await;

        // Five more: the first node's two rooms are at the soft cap, so they land on new nodes.
        // (The buffer may still ask for two nodes at once: a seat counts from its reservation
        // until the node's next heartbeat includes the player.)
        players.extend((11..16).map(|index| spawn_player(matchmaker.clone(), index)));
        wait_for("16 players in", Duration::from_secs(20), || async {
            players
                .iter()
                .filter(|player| player.record.joined.load(Ordering::SeqCst))
                .count()
                == 16
        })
        .await;
        let on_new_nodes = players
            .iter()
            .filter(|player| *player.record.node.lock().unwrap() != first_node)
            .count();
        assert!(
            on_new_nodes >= 4,
            "new players landed on the new node(s) ({on_new_nodes} there)"
        );
        let new_nodes: BTreeSet<String> = directory_nodes(&directory)
            .await
            .into_iter()
            .map(|node| node.2)
            .filter(|url| url != &first_node)
            .collect();

        // Most leave: four stay in one room of the first node, two in one room of a new node.
        // Whole rooms empty out, so their slots free up; while every room slot holds someone,
        // `room_slots_exhausted` presses and (rightly) blocks any scale-in.
        let mut by_room: BTreeMap<String, usize> = BTreeMap::new();
        for player in &players {
            *by_room
                .entry(player.record.room.lock().unwrap().clone())
                .or_default() += 1;
        }
        let fullest = |on_first: bool| {
            by_room
                .iter()
                .filter(|(room, _)| room.starts_with(&first_node) == on_first)
                .max_by_key(|(_, count)| **count)
                .map(|(room, _)| room.clone())
                .expect("a room")
        };
        let (first_room, new_room) = (fullest(true), fullest(false));
        let mut kept_first = 0;
        let mut kept_new = 0;
        let mut staying = Vec::new();
        for player in players {
            let room = player.record.room.lock().unwrap().clone();
            let keep = if room == first_room && kept_first < 4 {
                kept_first += 1;
                true
            } else if room == new_room && kept_new < 2 {
                kept_new += 1;
                true
            } else {
                false
            };
            if keep {
                staying.push(player);
            } else {
                leave(player).await;
            }
        }
        assert_eq!(kept_first, 4);
        assert!(
            kept_new >= 1,
            "someone stays on a node that will be drained"
        );

        // The emptiest node is drained; its players move; it is deleted.
        wait_for(
            "the new node(s) drained and deleted",
            Duration::from_secs(45),
            || async {
                let nodes = directory_nodes(&directory).await;
                nodes.len() == 1
                    && nodes[0].2 == first_node
                    && new_nodes.iter().all(|url| !port_open(url))
            },
        )
        .await;
        wait_for(
            "every staying player back in",
            Duration::from_secs(15),
            || async {
                staying
                    .iter()
                    .all(|player| player.record.joined.load(Ordering::SeqCst))
            },
        )
        .await;
        let interrupted: BTreeSet<usize> = staying
            .iter()
            .enumerate()
            .filter(|(_, player)| player.record.interruptions.load(Ordering::SeqCst) > 0)
            .map(|(index, _)| index)
            .collect();
        assert!(
            interrupted.len() >= 2,
            "the drained node's players were moved"
        );
        for player in &staying {
            let record = &player.record;
            assert_eq!(
                record.interruptions.load(Ordering::SeqCst),
                record.recoveries.load(Ordering::SeqCst),
                "every interrupted player joined again"
            );
            assert_eq!(*record.node.lock().unwrap(), first_node);
        }
        for player in staying {
            leave(player).await;
        }
        first_node
    };

    let outcome = tokio::time::timeout(Duration::from_secs(90), scenario).await;
    let _ = stop_autoscaler.send(());
    let stopped = tokio::time::timeout(Duration::from_secs(20), autoscaler).await;
    let _ = matchmaker_process.kill().await;
    let first_node = match outcome {
        Ok(nodes) => nodes,
        Err(_) => {
            let log = std::fs::read_to_string(&matchmaker_log).unwrap_or_default();
            panic!("the scenario took longer than 90 s; matchmaker log:\n{log}");
        }
    };
    let stopped = stopped.expect("the autoscaler stops within 20 s");
    stopped
        .expect("autoscaler task")
        .expect("autoscaler ran without error");
    assert!(
        !port_open(&first_node),
        "the autoscaler stopped its last node on shutdown"
    );
}
