//! The Coil game node: room runtime, HTTP and WebSocket API, configuration and drain.
//!
//! Entry point: [`run`] takes a validated [`NodeConfig`], a bound listener, the game factory
//! and a shutdown future; `main` and the integration tests call the same function.
//!
//! Layout:
//! - [`config`]: flags/environment → validated [`NodeConfig`];
//! - [`room`]: one task per room driving a [`coil_game::Game`] at the tick rate;
//! - [`node`]: the registry of rooms, drain, node-wide figures;
//! - [`session`]: one player's WebSocket connection;
//! - [`http`]: axum routes and the JSON error mapping;
//! - [`scores`]: server-recorded scores and receipts, written off the tick path;
//! - [`fleet`]: join-token checks and the room-directory heartbeat of a node;
//! - [`matchmaker`]: `POST /api/matchmake` and `POST /internal/room-heartbeat`;
//! - [`metrics`]: every exported metric, declared once;
//! - [`web`]: the embedded browser client (`web/`), served at `/`.
//!
//! This crate never runs game rules (they live in `coil-game`/`coil-sim`) and never holds a
//! lock across `.await` or inside a tick.

pub mod config;
pub mod direct;
pub mod fleet;
pub mod http;
pub mod matchmaker;
pub mod metrics;
pub mod node;
pub mod room;
pub mod scores;
pub mod session;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use coil_game::Game;
use coil_game::arena::{Arena, ArenaSettings};
use coil_match::{
    DirectoryOptions, InMemoryDirectory, PlacementPolicy, Region, RoomDirectory, TokenSigner,
};
use coil_store::{Leaderboard, ReceiptKey};
use tokio::net::{TcpListener, TcpSocket};

pub use config::{FleetNodeArgs, MatchmakerArgs, NodeArgs, NodeConfig, ServeArgs};
pub use fleet::FleetLink;
pub use node::{GameFactory, Node};

/// The snake arena as the node's game: one [`Arena`] per room, seeded per room, sending state
/// at the node's tick rate.
pub fn arena_factory(tick: Duration) -> GameFactory<Arena> {
    let tick_rate = (1000 / tick.as_millis().max(1)).clamp(1, 255) as u8;
    Arc::new(move |seed| {
        let mut settings = ArenaSettings {
            seed,
            ..ArenaSettings::default()
        };
        settings.view.tick_rate = tick_rate;
        Arena::new(settings)
    })
}

/// Binds the node's listener with socket options for thousands of small, latency-sensitive
/// connections: a deep accept backlog and modest per-socket buffers (accepted sockets inherit
/// them), so memory per player stays small. `TCP_NODELAY` is set per accepted socket in [`run`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    // ~100-byte messages at 20 Hz: 64 KiB of send buffer is seconds of slack per player.
    socket.set_send_buffer_size(64 * 1024)?;
    socket.set_recv_buffer_size(16 * 1024)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// What a node runs besides its configuration: the game, its link to the directory and
/// matchmaker (if any), and extra routes served on the same port (the all-in-one matchmaker).
pub struct NodeServices<G: Game> {
    pub factory: GameFactory<G>,
    pub fleet: Option<FleetLink>,
    pub extra_routes: Option<axum::Router>,
}

impl<G: Game> NodeServices<G> {
    /// A lone node: v11 joins only, no directory, no matchmaker.
    pub fn standalone(factory: GameFactory<G>) -> NodeServices<G> {
        NodeServices {
            factory,
            fleet: None,
            extra_routes: None,
        }
    }
}

/// The all-in-one shape of `coil serve`: the arena, an in-process room directory, and a
/// matchmaker on the same port whose signing key is generated into the data directory.
pub fn all_in_one(config: &NodeConfig, token_ttl: Duration) -> anyhow::Result<NodeServices<Arena>> {
    let key_file = config.data_dir.join("join-token.key");
    let signer = TokenSigner::load_or_create(&key_file)
        .with_context(|| format!("loading the join-token key {}", key_file.display()))?;
    let verifier = signer.verifier();
    let directory: Arc<dyn RoomDirectory> =
        Arc::new(InMemoryDirectory::new(DirectoryOptions::default()));
    let region = Region::parse(&config.region).context("REGION is not a valid region id")?;
    let policy = PlacementPolicy {
        soft_cap: config.room_soft_cap as u32,
        hard_cap: config.room_hard_cap as u32,
        default_region: region,
        seat_reservation_ttl_ms: token_ttl.as_millis() as u64 + 10_000,
        // The node and the matchmaker are one process: judge rooms against its own tick.
        max_tick_p95_ms: config.tick.as_secs_f64() * 1000.0 * 0.8,
        ..PlacementPolicy::default()
    };
    let settings = matchmaker::MatchmakerSettings {
        policy,
        token_ttl,
        heartbeat_ttl: config.heartbeat_ttl,
        internal_secret: None,
    };
    let matchmaker = matchmaker::Matchmaker::new(directory.clone(), signer, settings);
    let fleet = FleetLink::new(
        directory,
        verifier,
        config.public_url.clone(),
        config.heartbeat_interval,
        config.heartbeat_ttl,
    );
    Ok(NodeServices {
        factory: arena_factory(config.tick),
        fleet: Some(fleet),
        extra_routes: Some(matchmaker::routes(matchmaker)),
    })
}

/// Runs a game node until `shutdown` resolves, then drains: no new joins, players are told to
/// re-matchmake, rooms close when empty or at the drain deadline, scores are flushed, and the
/// function returns.
pub async fn run<G: Game>(
    config: NodeConfig,
    listener: TcpListener,
    services: NodeServices<G>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = metrics::install();
    let leaderboard = Leaderboard::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the leaderboard at {}",
                redact(&config.database_url)
            )
        })?;
    let receipts = Arc::new(
        ReceiptKey::load_or_create(&config.data_dir.join("receipt.key")).with_context(|| {
            format!(
                "loading the score-receipt key in {}",
                config.data_dir.display()
            )
        })?,
    );
    let (scores, writer) =
        scores::start_writer(leaderboard.clone(), receipts.clone(), &config.node_id);
    let fleet = services.fleet.map(Arc::new);
    let node = Node::new(config, services.factory, scores, fleet.clone());
    let (stop_heartbeats, heartbeats_stopped) = tokio::sync::watch::channel(false);
    if let Some(link) = &fleet {
        // Publish before serving, so the first matchmake already sees this node.
        fleet::publish(&node, link).await;
        tokio::spawn(fleet::heartbeat_loop(
            node.clone(),
            link.clone(),
            heartbeats_stopped,
        ));
    }
    let process = metrics_process::Collector::default();
    process.describe();
    let state = Arc::new(http::AppState {
        node: node.clone(),
        leaderboard,
        receipts,
        metrics,
        process,
    });
    // The browser client is served by every node: the all-in-one shape is playable at /.
    let mut app = http::router(state).merge(web::routes());
    if let Some(extra) = services.extra_routes {
        app = app.merge(extra);
    }

    let address = listener.local_addr()?;
    tracing::info!(%address, node = %node.config.node_id, "coil node listening");
    let listener = listener.tap_io(|tcp| {
        // Nagle plus delayed ACKs stalls small realtime frames by tens of milliseconds.
        let _ = tcp.set_nodelay(true);
    });
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stopped.await;
            })
            .into_future(),
    );

    shutdown.await;
    let deadline = node.drain().await;
    tracing::info!(
        rooms = node.room_count(),
        "draining: no new joins, players told to re-matchmake"
    );
    node.wait_until_empty(deadline).await;
    let _ = stop_heartbeats.send(true);
    if let Some(link) = &fleet {
        fleet::withdraw(&node, link).await;
    }
    let _ = stop_http.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(result)) => result.context("serving HTTP")?,
        Ok(Err(join_error)) => return Err(join_error.into()),
        Err(_) => tracing::warn!("connections still open after the drain; closing them"),
    }
    drop(node);
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        tracing::warn!("score writer did not finish in time; some scores may be lost");
    }
    tracing::info!("coil node stopped");
    Ok(())
}

/// Runs the matchmaker service alone (`coil matchmaker`) until `shutdown` resolves.
pub async fn run_matchmaker(
    settings: matchmaker::MatchmakerSettings,
    listener: TcpListener,
    directory: Arc<dyn RoomDirectory>,
    signer: TokenSigner,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = metrics::install();
    let started = std::time::Instant::now();
    let matchmaker = matchmaker::Matchmaker::new(directory, signer, settings);
    let health = axum::routing::get(move || async move {
        axum::Json(serde_json::json!({
            "status": "ok",
            "role": "matchmaker",
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeSeconds": started.elapsed().as_secs(),
        }))
    });
    let process = metrics_process::Collector::default();
    process.describe();
    let gauge_directory = matchmaker.directory.clone();
    let mut regions = vec![matchmaker.settings.policy.default_region.clone()];
    for (region, neighbours) in &matchmaker.settings.policy.nearest_regions {
        regions.push(region.clone());
        regions.extend(neighbours.iter().cloned());
    }
    regions.sort();
    regions.dedup();
    let soft_cap = matchmaker.settings.policy.soft_cap;
    let app = matchmaker::routes(matchmaker)
        .route("/api/health", health.clone())
        .route("/api/ready", health)
        .route(
            "/metrics",
            axum::routing::get(move || {
                let (directory, regions) = (gauge_directory.clone(), regions.clone());
                process.collect();
                let handle = handle.clone();
                async move {
                    fleet::export_directory_gauges(&*directory, &regions, soft_cap).await;
                    handle.render()
                }
            }),
        )
        .fallback(|| async { http::AppError::NotFound("no such endpoint") });
    tracing::info!(address = %listener.local_addr()?, "coil matchmaker listening");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    Ok(())
}

/// Hides a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@db/x"),
            "postgres://***@db/x"
        );
        assert_eq!(super::redact("sqlite://data/l.db"), "sqlite://data/l.db");
    }
}
