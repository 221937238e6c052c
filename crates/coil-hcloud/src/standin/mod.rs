//! A local stand-in for the Hetzner Cloud API, for tests of this crate, the autoscaler and the
//! cost model: an axum server on `127.0.0.1:0` that follows the published shapes.
//!
//! It serves `POST/GET /v1/servers`, `GET/DELETE /v1/servers/{id}`, `GET /v1/actions/{id}`,
//! `GET /v1/server_types`, `GET /v1/pricing`, and DNS record sets (`GET/POST
//! /v1/zones/{id_or_name}/rrsets`, `DELETE /v1/zones/{id_or_name}/rrsets/{name}/{type}`) in
//! zones a test adds with [`StandinHandle::add_zone`], over an in-memory project, with bearer-token
//! auth (401 `unauthorized`), label selectors, pagination, the `RateLimit-*` headers and 429
//! `rate_limit_exceeded`, actions that finish after a configurable number of observations,
//! `initializing → running` server status, and fault knobs (capacity refusals, project limit,
//! 5xx, slow responses, failing actions, a DNS outage). A [`StandinHandle`] inspects and changes the state.
//!
//! It must not be mistaken for Hetzner: prices and ids are fixtures (see `catalog.rs`), only
//! the endpoints above exist, and the HTTP status of some error codes is a guess (the client
//! classifies by code). It must never listen on anything but loopback.

mod catalog;
mod routes;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::StandinState;

/// A location the stand-in knows.
#[derive(Debug, Clone, PartialEq)]
pub struct StandinLocation {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub country: String,
    pub city: String,
    pub network_zone: String,
    pub datacenter_name: String,
}

/// One server type's net prices in one location.
#[derive(Debug, Clone, PartialEq)]
pub struct StandinPrice {
    pub location: String,
    pub hourly_net: f64,
    pub monthly_net: f64,
    pub included_traffic_bytes: u64,
    pub per_tb_traffic_net: f64,
}

/// A server type the stand-in sells; it is sold exactly where it has a price.
#[derive(Debug, Clone, PartialEq)]
pub struct StandinServerType {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub cores: u32,
    pub memory_gb: f64,
    pub disk_gb: u64,
    pub cpu_type: String,
    pub architecture: String,
    pub prices: Vec<StandinPrice>,
}

/// An image servers can be created from (by id, or by name for system images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandinImage {
    pub id: u64,
    /// `system` or `snapshot`.
    pub image_type: String,
    pub name: Option<String>,
    pub description: String,
}

/// How the stand-in behaves. [`StandinConfig::default`] is the catalogue in `catalog.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct StandinConfig {
    /// The only bearer token accepted.
    pub token: String,
    /// `RateLimit-Limit`: the bucket's size.
    pub rate_limit_per_hour: u32,
    /// Requests regained per second (Hetzner: 1 at 3600/hour). Tests that must not see a
    /// refill between two requests set this very low.
    pub rate_limit_refill_per_second: f64,
    /// How many observations (`GET /v1/actions/{id}`, or `GET /v1/servers/{id}` for a server's
    /// create/delete action) an action needs to finish; 0 finishes actions at once.
    pub action_polls_to_finish: u32,
    /// Creates beyond this many servers answer `resource_limit_exceeded` (new Hetzner
    /// accounts may hold 5).
    pub project_server_limit: Option<usize>,
    pub currency: String,
    pub vat_rate_percent: f64,
    pub primary_ipv4_monthly_net: f64,
    pub locations: Vec<StandinLocation>,
    pub server_types: Vec<StandinServerType>,
    pub images: Vec<StandinImage>,
}

impl Default for StandinConfig {
    fn default() -> Self {
        catalog::default_config()
    }
}

/// A server as the stand-in stores it, for inspection from tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandinServerRecord {
    pub id: u64,
    pub name: String,
    /// `initializing`, `running`, `off`, `deleting`, or whatever a test set.
    pub status: String,
    pub server_type: String,
    pub location: String,
    pub image_id: u64,
    pub labels: BTreeMap<String, String>,
    pub user_data: Option<String>,
    pub networks: Vec<u64>,
    pub firewalls: Vec<u64>,
    pub placement_group: Option<u64>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// Seed of the fixture private address and MAC.
    pub private_address: u32,
    pub created_unix_seconds: u64,
    pub start_after_create: bool,
}

/// An error answer to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl InjectedError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Hetzner has no capacity for the type in the location (2026 rationing).
    pub fn resource_unavailable() -> Self {
        Self::new(
            state::status_for_code("resource_unavailable"),
            "resource_unavailable",
            "the requested resource is currently unavailable",
        )
    }

    /// The project may hold no more servers.
    pub fn resource_limit_exceeded() -> Self {
        Self::new(
            state::status_for_code("resource_limit_exceeded"),
            "resource_limit_exceeded",
            "server limit exceeded",
        )
    }

    /// No host can take the server under its placement constraints.
    pub fn placement_error() -> Self {
        Self::new(
            state::status_for_code("placement_error"),
            "placement_error",
            "no suitable host found",
        )
    }

    /// A generic 500.
    pub fn server_error() -> Self {
        Self::new(500, "server_error", "internal server error")
    }

    /// A 503 during maintenance or an outage.
    pub fn unavailable() -> Self {
        Self::new(503, "unavailable", "service temporarily unavailable")
    }
}

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
}

struct Shared {
    state: Mutex<StandinState>,
}

/// Inspects and manipulates a running stand-in. Cheap to clone.
#[derive(Clone)]
pub struct StandinHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StandinHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StandinHandle")
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_secs())
        .unwrap_or(0)
}

impl StandinHandle {
    /// A handle over a fresh in-memory project (no server bound; see [`Standin::start`]).
    pub fn new(config: StandinConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(StandinState::new(config, Instant::now())),
            }),
        }
    }

    /// The lock is held only for synchronous bookkeeping, never across an `.await`; a panic
    /// in a test while holding it must not hide the state from the rest of the test.
    pub(crate) fn lock(&self) -> MutexGuard<'_, StandinState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The axum router serving this project under `/v1`, for embedding in another server.
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    /// Every server, by id.
    pub fn servers(&self) -> Vec<StandinServerRecord> {
        self.lock().servers()
    }

    pub fn server(&self, server_id: u64) -> Option<StandinServerRecord> {
        self.lock().server(server_id)
    }

    /// Sets a server's status directly (e.g. `off` to simulate a crash); `false` if unknown.
    pub fn set_server_status(&self, server_id: u64, status: &str) -> bool {
        self.lock().set_server_status(server_id, status)
    }

    /// Removes a server without an action, as if deleted from the console.
    pub fn remove_server(&self, server_id: u64) -> bool {
        self.lock().remove_server(server_id)
    }

    /// Finishes every running action now, applying its effect.
    pub fn complete_all_actions(&self) {
        self.lock().complete_all_actions(now_unix_seconds());
    }

    /// How many observations new actions need to finish.
    pub fn set_action_polls_to_finish(&self, polls: u32) {
        self.lock().config.action_polls_to_finish = polls;
    }

    /// The next created server's `create_server` action ends in `error` with this code; the
    /// server is left `off`.
    pub fn fail_next_create_action(&self, code: &str, message: &str) {
        self.lock()
            .faults
            .failing_create_actions
            .push_back((code.to_owned(), message.to_owned()));
    }

    /// The next valid create request is refused with this error (queued, one per create).
    pub fn inject_next_create_error(&self, error: InjectedError) {
        self.lock().faults.next_create_errors.push_back(error);
    }

    /// While set, creates of `server_type` in `location` answer `resource_unavailable`.
    pub fn set_unavailable(&self, server_type: &str, location: &str, unavailable: bool) {
        let key = (server_type.to_owned(), location.to_owned());
        let mut state = self.lock();
        if unavailable {
            state.faults.unavailable.insert(key);
        } else {
            state.faults.unavailable.remove(&key);
        }
    }

    /// Creates beyond `limit` servers answer `resource_limit_exceeded`.
    pub fn set_project_server_limit(&self, limit: Option<usize>) {
        self.lock().config.project_server_limit = limit;
    }

    /// The next request of any kind (after auth and rate limiting) gets this answer.
    pub fn inject_next_response_error(&self, error: InjectedError) {
        self.lock().faults.next_response_errors.push_back(error);
    }

    /// Every response is held back this long (zero to stop).
    pub fn set_response_delay(&self, delay: Duration) {
        self.lock().faults.response_delay = delay;
    }

    /// Sets what is left of the request budget (0 to make the next request a 429).
    pub fn set_rate_limit_remaining(&self, remaining: u32) {
        self.lock().rate.set_remaining(remaining, Instant::now());
    }

    /// What the next response's `RateLimit-Remaining` would say before that request.
    pub fn rate_limit_remaining(&self) -> u32 {
        self.lock()
            .rate
            .headers(Instant::now(), now_unix_seconds())
            .remaining
    }

    /// Every request answered so far, in order.
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.lock().request_log.clone()
    }

    /// Number of requests answered so far.
    pub fn request_count(&self) -> usize {
        self.lock().request_log.len()
    }

    /// Sets the net prices of `server_type` in `location` (adding the location to the type if
    /// it was not sold there); `false` if the type is unknown.
    pub fn set_price(&self, server_type: &str, price: StandinPrice) -> bool {
        let mut state = self.lock();
        let Some(entry) = state
            .config
            .server_types
            .iter_mut()
            .find(|entry| entry.name == server_type)
        else {
            return false;
        };
        match entry
            .prices
            .iter_mut()
            .find(|existing| existing.location == price.location)
        {
            Some(existing) => *existing = price,
            None => entry.prices.push(price),
        }
        true
    }

    /// The accepted bearer token.
    pub fn token(&self) -> String {
        self.lock().config.token.clone()
    }

    /// Adds a primary DNS zone (e.g. `example.com`) and returns its id; an existing zone's id
    /// if it is already there.
    pub fn add_zone(&self, name: &str) -> u64 {
        self.lock().add_zone(name)
    }

    /// Every record set of `zone` (id or name) as `GET .../rrsets` would list it, or `None`
    /// for an unknown zone.
    pub fn rrsets(&self, zone: &str) -> Option<Vec<StandinRrset>> {
        let values = self.lock().rrsets_json(zone)?;
        Some(values.iter().map(StandinRrset::from_json).collect())
    }

    /// While set, every `/v1/zones/...` request answers 503 `unavailable`.
    pub fn set_dns_unavailable(&self, unavailable: bool) {
        self.lock().faults.dns_unavailable = unavailable;
    }
}

/// A record set as the stand-in stores it, for inspection from tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandinRrset {
    pub name: String,
    pub rrset_type: String,
    pub ttl: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub values: Vec<String>,
}

impl StandinRrset {
    fn from_json(value: &serde_json::Value) -> Self {
        let text = |field: &str| value[field].as_str().unwrap_or_default().to_owned();
        Self {
            name: text("name"),
            rrset_type: text("type"),
            ttl: value["ttl"]
                .as_u64()
                .and_then(|ttl| u32::try_from(ttl).ok()),
            labels: value["labels"]
                .as_object()
                .map(|labels| {
                    labels
                        .iter()
                        .map(|(key, value)| {
                            (key.clone(), value.as_str().unwrap_or_default().to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            values: value["records"]
                .as_array()
                .map(|records| {
                    records
                        .iter()
                        .map(|record| record["value"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A running stand-in. Dropping it stops the server.
pub struct Standin {
    handle: StandinHandle,
    address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Standin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Standin")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Standin {
    /// Binds `127.0.0.1:0` and serves the stand-in on the current tokio runtime.
    pub async fn start(config: StandinConfig) -> std::io::Result<Self> {
        let handle = StandinHandle::new(config);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (shutdown, shutdown_signal) = oneshot::channel::<()>();
        let router = handle.router();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    // Either an explicit shutdown or the `Standin` being dropped ends the wait.
                    let _ = shutdown_signal.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(cause = %error, "hetzner stand-in stopped with an error");
            }
        });
        Ok(Self {
            handle,
            address,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// A clone of the state handle.
    pub fn handle(&self) -> StandinHandle {
        self.handle.clone()
    }

    /// The socket address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234/v1`, for `HcloudClientConfig::base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// The accepted bearer token.
    pub fn token(&self) -> String {
        self.handle.token()
    }

    /// Stops accepting, lets open requests finish, and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
