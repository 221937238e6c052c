//! The local executor: game nodes as `coil node` child processes on this machine, for
//! development, demos and the end-to-end test.
//!
//! Owns the children: `NODE_ID=local-<n>` on `127.0.0.1:<base port + n>` (the next free port
//! if that one is taken), the fleet's Redis, key prefix, join-token public key and internal
//! secret, a data directory each, stdout and stderr into `<node>.log`. Delete is SIGTERM (the
//! node drains and exits) and SIGKILL after a timeout; every child is stopped, bounded, when the
//! autoscaler stops, and `kill_on_drop` covers a panic.
//!
//! It must not adopt processes it did not start: after a restart `list()` is empty and nodes
//! of the previous run vanish from the directory when their heartbeats stop. It must not pass
//! the autoscaler's own environment to nodes wholesale (its `PORT` is not theirs): children
//! start from an empty environment plus what is listed here.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coil_autoscale::{NodeId, RegionId};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::executor::{
    CreateFailure, CreateOutcome, Executor, ExecutorError, ManagedNode, NodeControl,
};

/// Everything the local executor needs to start nodes.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The `coil` binary to run as `coil node`.
    pub coil_bin: PathBuf,
    /// Node n listens on `base_port + n` (or the next free port).
    pub base_port: u16,
    pub redis_url: String,
    pub redis_key_prefix: String,
    pub join_token_public_key: String,
    pub internal_secret: String,
    /// Extra `NAME=VALUE` for every node; applied last, so they override the defaults above.
    pub node_env: Vec<(String, String)>,
    /// Where data directories and logs go; `None` = a temporary directory removed at exit.
    pub data_dir: Option<PathBuf>,
    /// How long a node may take to exit after SIGTERM before it is killed.
    pub stop_timeout: Duration,
}

struct LocalChild {
    child: Child,
    managed: ManagedNode,
}

struct LocalState {
    next_index: u32,
    children: BTreeMap<NodeId, LocalChild>,
    stopping: Vec<JoinHandle<()>>,
}

/// Game nodes as child processes.
pub struct LocalExecutor {
    config: LocalConfig,
    control: NodeControl,
    root: PathBuf,
    /// Keeps a temporary root alive (and removes it on drop).
    _temporary_root: Option<tempfile::TempDir>,
    state: Mutex<LocalState>,
    cores: u32,
    memory_bytes: u64,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalExecutor")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| {
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Total memory of this machine from `/proc/meminfo` (0 if unknown: memory then never presses).
fn machine_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kibibytes| kibibytes.saturating_mul(1024))
}

/// Environment variables a child inherits from the autoscaler when they are set: what a
/// process needs to run and log, nothing that configures a node.
const INHERITED_VARIABLES: [&str; 4] = ["PATH", "HOME", "RUST_LOG", "LOG_FORMAT"];

impl LocalExecutor {
    pub fn new(config: LocalConfig, control: NodeControl) -> std::io::Result<Self> {
        let (root, temporary_root) = match &config.data_dir {
            Some(directory) => {
                std::fs::create_dir_all(directory)?;
                (directory.clone(), None)
            }
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("coil-autoscaler-")
                    .tempdir()?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        tracing::info!(root = %root.display(), "local executor keeps node data and logs here");
        let cores = std::thread::available_parallelism()
            .map_or(1, |cores| u32::try_from(cores.get()).unwrap_or(u32::MAX));
        Ok(Self {
            config,
            control,
            root,
            _temporary_root: temporary_root,
            state: Mutex::new(LocalState {
                next_index: 1,
                children: BTreeMap::new(),
                stopping: Vec::new(),
            }),
            cores,
            memory_bytes: machine_memory_bytes(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where node logs go (`<dir>/<node id>.log`).
    pub fn log_dir(&self) -> &std::path::Path {
        &self.root
    }

    /// The next index whose port is free, and that port.
    fn claim_index(&self) -> Option<(u32, u16)> {
        let mut state = self.lock();
        for _ in 0..1000 {
            let index = state.next_index;
            state.next_index = state.next_index.saturating_add(1);
            let port = u32::from(self.config.base_port).checked_add(index)?;
            let port = u16::try_from(port).ok()?;
            let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            if std::net::TcpListener::bind(address).is_ok() {
                return Some((index, port));
            }
        }
        None
    }

    fn spawn_one(&self, region: &RegionId) -> Result<ManagedNode, CreateFailure> {
        let Some((index, port)) = self.claim_index() else {
            return Err(CreateFailure {
                reason: "config",
                detail: format!("no free port above BASE_PORT {}", self.config.base_port),
            });
        };
        let node = NodeId::new(format!("local-{index}"));
        let data_dir = self.root.join(&node.0);
        let spawn_failed = |detail: String| CreateFailure {
            reason: "spawn_failed",
            detail,
        };
        std::fs::create_dir_all(&data_dir)
            .map_err(|error| spawn_failed(format!("data dir {}: {error}", data_dir.display())))?;
        let log_path = self.root.join(format!("{}.log", node.0));
        let log = std::fs::File::create(&log_path)
            .map_err(|error| spawn_failed(format!("log {}: {error}", log_path.display())))?;
        let log_for_stderr = log
            .try_clone()
            .map_err(|error| spawn_failed(format!("log {}: {error}", log_path.display())))?;
        let mut command = Command::new(&self.config.coil_bin);
        command.arg("node").env_clear();
        for name in INHERITED_VARIABLES {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("NODE_ID", &node.0)
            .env("REGION", &region.0)
            .env("PUBLIC_URL", format!("ws://127.0.0.1:{port}"))
            .env("REDIS_URL", &self.config.redis_url)
            .env("REDIS_KEY_PREFIX", &self.config.redis_key_prefix)
            .env("JOIN_TOKEN_PUBLIC_KEY", &self.config.join_token_public_key)
            .env("INTERNAL_SECRET", &self.config.internal_secret)
            .env("DATA_DIR", &data_dir)
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", data_dir.join("leaderboard.db").display()),
            );
        for (name, value) in &self.config.node_env {
            command.env(name, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_for_stderr))
            .kill_on_drop(true);
        let child = command.spawn().map_err(|error| {
            spawn_failed(format!("{} node: {error}", self.config.coil_bin.display()))
        })?;
        let managed = ManagedNode {
            node: node.clone(),
            region: region.clone(),
            internal_url: Some(format!("http://127.0.0.1:{port}")),
            created_at_ms: now_ms(),
            seat_capacity: None,
            cores: self.cores,
            memory_bytes: self.memory_bytes,
            server_id: None,
        };
        tracing::info!(node = %node, region = %region, port, pid = child.id(), log = %log_path.display(), "started a local game node");
        self.lock().children.insert(
            node,
            LocalChild {
                child,
                managed: managed.clone(),
            },
        );
        Ok(managed)
    }
}

/// SIGTERM through the system's `kill` (the workspace forbids `unsafe`, so no `libc::kill`);
/// SIGKILL if that is not possible.
async fn terminate(child: &mut Child) {
    let Some(pid) = child.id() else {
        return;
    };
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success());
    if !sent {
        let _ = child.start_kill();
    }
}

/// SIGTERM, wait up to `timeout`, then SIGKILL and reap.
async fn stop_child(node: NodeId, mut child: Child, timeout: Duration) {
    terminate(&mut child).await;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => tracing::info!(node = %node, %status, "local game node stopped"),
        Ok(Err(error)) => {
            tracing::warn!(node = %node, cause = %error, "waiting for a local node failed")
        }
        Err(_) => {
            tracing::warn!(node = %node, timeout_ms = timeout.as_millis() as u64, "local node ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}

impl Executor for LocalExecutor {
    fn node_control(&self) -> &NodeControl {
        &self.control
    }

    async fn list(&self) -> Result<Vec<ManagedNode>, ExecutorError> {
        let mut state = self.lock();
        let mut exited = Vec::new();
        for (node, child) in &mut state.children {
            match child.child.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => {
                    tracing::warn!(node = %node, %status, "local game node exited on its own");
                    exited.push(node.clone());
                }
                Err(error) => {
                    tracing::warn!(node = %node, cause = %error, "cannot check a local game node");
                }
            }
        }
        for node in exited {
            state.children.remove(&node);
        }
        state.stopping.retain(|task| !task.is_finished());
        Ok(state
            .children
            .values()
            .map(|child| child.managed.clone())
            .collect())
    }

    async fn create(&self, region: &RegionId, count: u32) -> CreateOutcome {
        let mut outcome = CreateOutcome::default();
        for _ in 0..count {
            match self.spawn_one(region) {
                Ok(node) => outcome.created.push(node),
                Err(failure) => outcome.failures.push(failure),
            }
        }
        outcome
    }

    async fn destroy(&self, node: &ManagedNode) -> Result<(), ExecutorError> {
        let removed = self.lock().children.remove(&node.node);
        if let Some(child) = removed {
            // Stopping runs in the background so a slow exit cannot hold up the control loop;
            // shutdown waits for it.
            let task = tokio::spawn(stop_child(
                node.node.clone(),
                child.child,
                self.config.stop_timeout,
            ));
            self.lock().stopping.push(task);
        }
        Ok(())
    }

    async fn shutdown(&self) {
        let (children, stopping) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.children),
                std::mem::take(&mut state.stopping),
            )
        };
        let timeout = self.config.stop_timeout;
        let mut tasks: Vec<JoinHandle<()>> = children
            .into_iter()
            .map(|(node, child)| tokio::spawn(stop_child(node, child.child, timeout)))
            .collect();
        tasks.extend(stopping);
        for task in tasks {
            // Each task is bounded by the stop timeout plus a kill; this bound is a backstop.
            let _ = tokio::time::timeout(timeout + Duration::from_secs(5), task).await;
        }
    }
}
