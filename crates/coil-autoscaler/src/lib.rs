//! `coil autoscaler`: the controller that keeps the game-node fleet sized, and its executors.
//!
//! Every `INTERVAL_SECS` it observes the fleet (the executor's listing, the room directory on
//! Redis, each node's `/metrics`), asks the pure policy (`coil_autoscale::decide`) what to do,
//! logs and counts every action with its reasons, and carries the actions out through an
//! [`Executor`]: [`LocalExecutor`] (`coil node` child processes) or [`HcloudExecutor`]
//! (Hetzner Cloud servers). It serves `GET /metrics` on `PORT` (default 8789).
//!
//! # What this crate must not do
//! No policy of its own: how many nodes, which one to retire and when come from
//! `coil_autoscale`. It never deletes a node that still holds players unless they were told to
//! re-matchmake (the executor's delete guard), never acts on a partial view of the fleet (a
//! failed listing or directory read skips the evaluation), and never logs a secret (API
//! token, internal secret, user data).
//!
//! # Layout
//! - `args`: [`AutoscalerArgs`] (flags and environment) → [`AutoscalerConfig`].
//! - `controller`: [`Controller::evaluate`], one observe–decide–execute round.
//! - `executor`: the [`Executor`] trait, [`ManagedNode`], the shared node calls, the delete guard.
//! - `local`, `hcloud`: the two executors.
//! - `scrape`: node metrics text → load figures.
//! - `metrics`: the autoscaler's own metrics and the `/metrics` listener.
//!
//! The controller and executors are described in `docs/autoscaling.md`.

pub mod args;
pub mod controller;
pub mod executor;
pub mod hcloud;
pub mod local;
pub mod metrics;
pub mod scrape;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

pub use args::{AutoscalerArgs, AutoscalerConfig, ConfigError, ExecutorKind, ExecutorSettings};
pub use controller::{Controller, ControllerSettings, Evaluation, EvaluationError};
pub use executor::{
    CreateFailure, CreateOutcome, DeleteRequest, Executor, ExecutorError, ManagedNode, NodeControl,
};
pub use hcloud::{DnsConfig, HcloudConfig, HcloudExecutor, UserDataTemplate};
pub use local::{LocalConfig, LocalExecutor};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |duration| {
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Validates `args` and runs the autoscaler until `shutdown` resolves. A bad setting comes back
/// as an error whose message starts with the variable's name (see [`AutoscalerArgs::validate`]
/// to check before starting a runtime).
pub async fn run(
    args: AutoscalerArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let config = args.validate()?;
    run_with_config(config, shutdown).await
}

/// Runs a validated configuration until `shutdown` resolves, then stops what must not outlive
/// it (local nodes, bounded) and the metrics listener.
pub async fn run_with_config(
    config: AutoscalerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    coil_service::metrics::install();
    metrics::describe();
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {} (PORT/HOST)", config.metrics_listen))?;
    let metrics_address = listener.local_addr()?;
    let directory = coil_match::RedisDirectory::connect(
        &config.redis_url,
        coil_match::RedisDirectoryConfig {
            key_prefix: config.redis_key_prefix.clone(),
            ..Default::default()
        },
    )
    .await
    .context("connecting to Redis (REDIS_URL)")?;
    let control = NodeControl::new(Arc::new(directory), config.internal_secret.clone());
    let settings = ControllerSettings {
        regions: config.regions.clone(),
        room_soft_cap: config.room_soft_cap,
        scrape_timeout: config.scrape_timeout,
        matchmaker_metrics_url: config.matchmaker_metrics_url.clone(),
    };
    tracing::info!(
        metrics = %metrics_address,
        regions = ?config.regions.iter().map(|region| region.0.as_str()).collect::<Vec<_>>(),
        dry_run = config.policy.dry_run,
        interval_secs = config.interval.as_secs(),
        "autoscaler started"
    );
    match config.executor {
        ExecutorSettings::Local(local) => {
            let executor =
                LocalExecutor::new(local, control).context("preparing local node directories")?;
            let controller = Controller::new(executor, config.policy, settings);
            drive(controller, config.interval, listener, shutdown).await
        }
        ExecutorSettings::Hcloud {
            api_url,
            token,
            config: hcloud,
        } => {
            let client = coil_hcloud::HcloudClient::new(
                token,
                coil_hcloud::HcloudClientConfig {
                    base_url: api_url,
                    ..Default::default()
                },
            )
            .context("building the Hetzner API client")?;
            match &hcloud.dns {
                Some(dns) => {
                    tracing::info!(zone = %dns.zone, nodes_domain = %dns.nodes_domain, "managing per-node DNS records")
                }
                None => tracing::info!("DNS_ZONE unset: no per-node DNS records are managed"),
            }
            let executor = HcloudExecutor::new(client, *hcloud, control);
            let controller = Controller::new(executor, config.policy, settings);
            drive(controller, config.interval, listener, shutdown).await
        }
    }
}

async fn drive<E: Executor>(
    mut controller: Controller<E>,
    interval: std::time::Duration,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_task = tokio::spawn(metrics::serve(listener, async move {
        let _ = metrics_stopped.await;
    }));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = ticker.tick() => {}
        }
        // An evaluation in progress is abandoned on shutdown: a half-done create is adopted by
        // the next start (hcloud lists by label) or stopped below (local children).
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            result = controller.evaluate(now_ms()) => {
                if let Err(error) = result {
                    tracing::warn!(cause = %error, "evaluation skipped");
                }
            }
        }
    }
    tracing::info!("autoscaler stopping");
    controller.executor().shutdown().await;
    let _ = stop_metrics.send(());
    match metrics_task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error).context("metrics listener failed"),
        Err(error) => Err(error).context("metrics listener task failed"),
    }
}
