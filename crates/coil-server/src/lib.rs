//! The Coil game node: room runtime, HTTP and WebSocket API, configuration and drain.
//!
//! Entry point: [`run`] takes a validated [`NodeConfig`], a bound listener, the node's
//! services (its game modes, its link to the directory) and a shutdown future; `main` and the
//! integration tests call the same function.
//!
//! Layout:
//! - [`config`]: flags/environment → validated [`NodeConfig`];
//! - [`modes`]: the game modes a node runs (the built-in registry) and their settings;
//! - [`room`]: one task per room driving a [`coil_game::Game`] at its mode's tick rate, with
//!   the sans-IO [`room::core`] making the room's decisions;
//! - [`node`]: the registry of rooms, drain, node-wide figures;
//! - [`session`]: one player's WebSocket connection;
//! - [`http`]: axum routes and the JSON error mapping;
//! - [`scores`]: server-recorded scores and receipts, written off the tick path;
//! - [`results`]: match results stored once per match id; both writers are `durable.rs`'s
//!   queue, retry and spill loop; [`history`] serves them (`GET /api/matches/{id}`,
//!   `GET /api/players/{id}/matches`, `GET /api/players/{id}/ratings`);
//! - [`fleet`]: join-token checks and the room-directory heartbeat of a node;
//! - [`agones`]: with `AGONES=1`, the Agones SDK (Ready, Health, Allocate, counters, Shutdown);
//! - [`matchmaker`]: `POST /api/matchmake` and `POST /internal/room-heartbeat`;
//! - [`openapi`]: each process's OpenAPI 3.1 document, from the handlers' annotations, served
//!   at `/api/openapi.json` with a page at `/api/docs`;
//! - [`metrics`]: every exported metric, declared once;
//! - [`web`]: the embedded browser client (`web/`), served at `/`.
//!
//! This crate never runs game rules (they live in `coil-game`/`coil-sim`) and never holds a
//! lock across `.await` or inside a tick.

pub mod account_events;
pub mod agones;
pub mod config;
pub mod direct;
mod durable;
pub mod fleet;
pub mod history;
pub mod http;
pub mod lobbies;
pub mod matchmaker;
pub mod metrics;
pub mod modes;
pub mod node;
pub mod openapi;
pub mod results;
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
use coil_match::{
    DirectoryOptions, InMemoryDirectory, PlacementPolicy, Region, RoomDirectory, TokenSigner,
};
use coil_store::{Leaderboard, ReceiptKey};
use tokio::net::{TcpListener, TcpSocket};

pub use config::{FleetNodeArgs, MatchmakerArgs, NodeArgs, NodeConfig, ServeArgs};
pub use fleet::FleetLink;
pub use modes::Modes;
pub use node::Node;
pub use room::{ReportSink, RoomReport};

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

/// What a node runs besides its configuration: its game modes, its link to the directory and
/// matchmaker (if any), where rooms report results and flags, and extra routes served on the
/// same port (the all-in-one matchmaker).
pub struct NodeServices {
    pub modes: Modes,
    pub fleet: Option<FleetLink>,
    /// Where rooms report results and flags; `None` stores match results in the node's own
    /// database (`results.rs`), `Some` hands every report to the caller (tests).
    pub reports: Option<ReportSink>,
    pub extra_routes: Option<axum::Router>,
    /// The OpenAPI document of `extra_routes` (merged into the node's `/api/openapi.json`).
    pub extra_openapi: Option<utoipa::openapi::OpenApi>,
    /// The accounts API (`coil-api`), mounted over the node's own database once [`run`] has
    /// connected it; its rate limits also guard the node's join and leaderboard routes.
    pub accounts: Option<coil_api::Platform>,
    /// Where the node learns of bans and takeovers to end live connections
    /// (`account_events.rs`); `None` takes the accounts API's bus when there is one.
    pub account_events: Option<Arc<dyn coil_auth::events::AccountEvents>>,
    /// Join and leaderboard limits on the node's routes; `None` takes the accounts API's
    /// when there is one (a fleet node builds its own over Redis).
    pub node_limits: Option<coil_api::node_limits::NodeLimits>,
}

impl NodeServices {
    /// A lone node: v11 joins only, no directory, no matchmaker.
    pub fn standalone(modes: Modes) -> NodeServices {
        NodeServices {
            modes,
            fleet: None,
            reports: None,
            extra_routes: None,
            extra_openapi: None,
            accounts: None,
            account_events: None,
            node_limits: None,
        }
    }
}

/// The all-in-one shape of `coil serve`: every configured mode, an in-process room directory,
/// and a matchmaker on the same port whose signing key is generated into the data directory,
/// with the accounts API at its defaults ([`coil_api::AccountsConfig::all_in_one`]).
pub fn all_in_one(
    config: &NodeConfig,
    modes: Modes,
    token_ttl: Duration,
) -> anyhow::Result<NodeServices> {
    let accounts = coil_api::AccountsConfig::all_in_one(&config.data_dir);
    all_in_one_with_accounts(config, modes, token_ttl, accounts)
}

/// [`all_in_one`] with explicit accounts settings (`coil serve` passes its flags).
pub fn all_in_one_with_accounts(
    config: &NodeConfig,
    modes: Modes,
    token_ttl: Duration,
    accounts: coil_api::AccountsConfig,
) -> anyhow::Result<NodeServices> {
    let platform = coil_api::Platform::in_memory(accounts, coil_auth::system_clock())
        .context("setting up accounts")?;
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
        // The node and the matchmaker are one process: judge rooms against its own ticks.
        max_tick_p95_ms: modes.slowest_tick().as_secs_f64() * 1000.0 * 0.8,
        modes: modes.placement_caps(),
        ..PlacementPolicy::default()
    };
    let settings = matchmaker::MatchmakerSettings {
        policy,
        token_ttl,
        heartbeat_ttl: config.heartbeat_ttl,
        internal_secret: None,
        matchmake_deadline: matchmaker::MatchmakerSettings::DEFAULT_MATCHMAKE_DEADLINE,
        // The node's own CORS layer covers the matchmaker routes it mounts.
        cors_origins: Vec::new(),
    };
    let matchmaker_openapi = matchmaker::openapi(&settings);
    let matchmaker = matchmaker::Matchmaker::with_accounts(
        directory.clone(),
        signer,
        settings,
        Some(platform.clone()),
    );
    let fleet = FleetLink::new(
        directory,
        verifier,
        config.public_url.clone(),
        config.heartbeat_interval,
        config.heartbeat_ttl,
    );
    Ok(NodeServices {
        modes,
        fleet: Some(fleet),
        reports: None,
        extra_routes: Some(matchmaker::routes(matchmaker)),
        extra_openapi: Some(matchmaker_openapi),
        accounts: Some(platform),
        account_events: None,
        node_limits: None,
    })
}

/// Runs a game node until `shutdown` resolves, then drains: no new joins, players are told to
/// re-matchmake, rooms close when empty or at the drain deadline, scores are flushed, and the
/// function returns.
pub async fn run(
    config: NodeConfig,
    listener: TcpListener,
    mut services: NodeServices,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = metrics::install();
    metrics::register_at_zero(&services.modes.names());
    let agones = match config.agones.clone() {
        Some(settings) => Some(agones::prepare(settings, services.fleet.as_mut()).await?),
        None => None,
    };
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
    // Scores the database could not take by shutdown are kept here and replayed at the next start.
    let (stop_score_writer, score_writer_stopping) = tokio::sync::watch::channel(false);
    let score_writer = scores::WriterSettings {
        spill_file: Some(config.data_dir.join("scores-pending.jsonl")),
        shutdown: Some(score_writer_stopping),
        ..scores::WriterSettings::default()
    };
    let (scores, writer) = scores::start_writer_with(
        leaderboard.clone(),
        receipts.clone(),
        &config.node_id,
        score_writer,
    );
    // Match results likewise, into the same database.
    let (reports, result_writer) = match services.reports.take() {
        Some(reports) => (reports, None),
        None => {
            let settings = scores::WriterSettings {
                spill_file: Some(results::spill_file(&config.data_dir)),
                shutdown: Some(stop_score_writer.subscribe()),
                ..scores::WriterSettings::default()
            };
            let (queue, writer) = results::start_writer(leaderboard.matches(), settings);
            (ReportSink::storing(queue), Some(writer))
        }
    };
    let fleet = services.fleet.map(Arc::new);
    let node = Node::new(config, services.modes, scores, reports, fleet.clone());
    let (stop_heartbeats, heartbeats_stopped) = tokio::sync::watch::channel(false);
    let events = services
        .account_events
        .clone()
        .or_else(|| services.accounts.as_ref().map(coil_api::Platform::events));
    if let Some(events) = events {
        // Bans and takeovers end live connections within the bus's delivery time.
        tokio::spawn(account_events::enforce(
            node.clone(),
            events,
            heartbeats_stopped.clone(),
        ));
    }
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
    // The accounts tables live in the leaderboard's database and share its pool.
    let accounts_store = leaderboard.accounts();
    let state = Arc::new(http::AppState {
        node: node.clone(),
        leaderboard,
        receipts,
        metrics,
        process,
    });
    let document = openapi::node_document(
        &node.config,
        services.extra_openapi.take(),
        services.accounts.is_some(),
    );
    // The browser client is served by every node: the all-in-one shape is playable at /.
    let mut app = http::router(state)
        .merge(web::routes())
        .merge(openapi::routes(&document));
    if let Some(extra) = services.extra_routes {
        app = app.merge(extra);
    }
    let mut node_limits = services.node_limits;
    if let Some(platform) = services.accounts {
        app = app.merge(platform.router(accounts_store));
        node_limits =
            node_limits.or_else(|| Some(coil_api::node_limits::NodeLimits::of_platform(&platform)));
    }
    if let Some(limits) = node_limits {
        app = coil_api::node_limits::apply(app, limits);
    }
    if let Some(cors) = http::cors_layer(&node.config.cors_origins) {
        app = app.layer(cors);
    }

    let address = listener.local_addr()?;
    tracing::info!(%address, node = %node.config.node_id, "coil node listening");
    let listener = listener.tap_io(|tcp| {
        // Nagle plus delayed ACKs stalls small realtime frames by tens of milliseconds.
        let _ = tcp.set_nodelay(true);
    });
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        // Connect info: rate limits and the session list need the TCP peer.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stopped.await;
        })
        .into_future(),
    );

    let agones = agones.map(|agones| agones.start(node.clone()));

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
    if let Some(agones) = agones {
        agones.finish().await;
    }
    let _ = stop_http.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(result)) => result.context("serving HTTP")?,
        Ok(Err(join_error)) => return Err(join_error.into()),
        Err(_) => tracing::warn!("connections still open after the drain; closing them"),
    }
    drop(node);
    let _ = stop_score_writer.send(true);
    // Both writers flush (or spill) within their flush deadline; they run side by side.
    let results_done = async {
        if let Some(writer) = result_writer {
            let _ = writer.await;
        }
    };
    let (scores_done, results_done) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), writer),
        tokio::time::timeout(Duration::from_secs(5), results_done)
    );
    if scores_done.is_err() {
        tracing::warn!("score writer did not finish in time; some scores may be lost");
    }
    if results_done.is_err() {
        tracing::warn!("match-result writer did not finish in time; some results may be lost");
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
    run_matchmaker_with_accounts(settings, listener, directory, signer, None, shutdown).await
}

/// [`run_matchmaker`] with the accounts API mounted (a fleet API replica): the platform (on
/// Redis) and the accounts database.
pub async fn run_matchmaker_with_accounts(
    settings: matchmaker::MatchmakerSettings,
    listener: TcpListener,
    directory: Arc<dyn RoomDirectory>,
    signer: TokenSigner,
    accounts: Option<(coil_api::Platform, coil_store::AccountStore)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = metrics::install();
    let started = std::time::Instant::now();
    let cors_origins = settings.cors_origins.clone();
    let platform = accounts.as_ref().map(|(platform, _)| platform.clone());
    let document = openapi::matchmaker_document(&settings, accounts.is_some());
    let matchmaker = matchmaker::Matchmaker::with_accounts(directory, signer, settings, platform);
    let process = metrics_process::Collector::default();
    process.describe();
    let mut regions = vec![matchmaker.settings.policy.default_region.clone()];
    for (region, neighbours) in &matchmaker.settings.policy.nearest_regions {
        regions.push(region.clone());
        regions.extend(neighbours.iter().cloned());
    }
    regions.sort();
    regions.dedup();
    let service = matchmaker::ServiceState {
        started,
        directory: matchmaker.directory.clone(),
        regions,
        policy: matchmaker.settings.policy.clone(),
        process,
        metrics: handle,
    };
    let mut app = matchmaker::routes(matchmaker);
    if let Some((platform, store)) = accounts {
        app = app.merge(platform.router(store));
    }
    let app = app
        .merge(matchmaker::service_routes(service))
        .merge(openapi::routes(&document))
        .fallback(|| async { http::AppError::NotFound("no such endpoint") });
    let app = match http::cors_layer(&cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    tracing::info!(address = %listener.local_addr()?, "coil matchmaker listening");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
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
