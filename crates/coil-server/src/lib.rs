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
//! - [`metrics`]: every exported metric, declared once.
//!
//! This crate never runs game rules (they live in `coil-game`/`coil-sim`) and never holds a
//! lock across `.await` or inside a tick.

pub mod config;
pub mod http;
pub mod metrics;
pub mod node;
pub mod room;
pub mod scores;
pub mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use coil_game::Game;
use coil_game::arena::{Arena, ArenaSettings};
use coil_store::{Leaderboard, ReceiptKey};
use tokio::net::{TcpListener, TcpSocket};

pub use config::{NodeArgs, NodeConfig};
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

/// Runs a game node until `shutdown` resolves, then drains: no new joins, players are told to
/// re-matchmake, rooms close when empty or at the drain deadline, scores are flushed, and the
/// function returns.
pub async fn run<G: Game>(
    config: NodeConfig,
    listener: TcpListener,
    factory: GameFactory<G>,
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
    let node = Node::new(config, factory, scores);
    let process = metrics_process::Collector::default();
    process.describe();
    let state = Arc::new(http::AppState {
        node: node.clone(),
        leaderboard,
        receipts,
        metrics,
        process,
    });
    let app = http::router(state);

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
