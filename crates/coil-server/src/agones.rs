//! The node's side of Agones, the game-server engine for Kubernetes. With `AGONES=1` the node
//! speaks the local REST API of the Agones SDK server, the sidecar Agones runs in every
//! GameServer pod on `localhost:$AGONES_SDK_HTTP_PORT` (9358 unless Agones says otherwise).
//!
//! What it does, in the order a GameServer lives:
//! - before serving ([`prepare`]): learns the address players reach from `GET /gameserver`
//!   (`status.address` and the port named `AGONES_PORT_NAME`) and publishes it as the node's URL
//!   in the room directory, filled into `AGONES_PUBLIC_URL_TEMPLATE`; an explicit `PUBLIC_URL` is
//!   published as it is instead;
//! - once the listener serves ([`Agones::start`]): `POST /ready`;
//! - every `AGONES_HEALTH_SECS`: `POST /health`, from its own task so that a slow counter call can
//!   never starve the health pings (a GameServer without pings is marked Unhealthy and deleted);
//! - every `AGONES_SYNC_MS`: samples the node and keeps Agones in step: `POST /allocate` as soon
//!   as a human is on the node (Agones never deletes an Allocated GameServer, neither on
//!   scale-down nor on a fleet update), `POST /ready` again after the node has had no human for
//!   `AGONES_READY_AFTER_IDLE_SECS` (so an empty node can be scaled in), and the `players` and
//!   `rooms` counters (`PATCH /v1beta1/counters/{name}`) that the FleetAutoscaler's Counter
//!   policy reads: free seats are `capacity - count` of `players`;
//! - draining (SIGTERM, or `/internal/drain`): no more Ready; `POST /shutdown` once the node is
//!   empty, and in any case after the drain ([`Agones::finish`]).
//!
//! The decisions are a plain struct ([`Lifecycle`]) stepped with samples and `now`; the tasks
//! only move bytes and time. This module never decides placement (the directory does: the
//! node's heartbeats go on as before), never runs on the tick path, and never stops the game
//! when the SDK server is down: every call has a timeout, failures are logged (the first one, a
//! reminder a minute while it lasts, the recovery) and counted in
//! `coil_agones_sdk_requests_total{call,result}`, and the next sample retries whatever Agones
//! has not acknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{ConfigError, invalid, parse_flag};
use crate::fleet::FleetLink;
use crate::node::Node;

/// The placeholders `AGONES_PUBLIC_URL_TEMPLATE` may use.
const PLACEHOLDERS: [&str; 3] = ["{address}", "{port}", "{name}"];

/// Published when neither `PUBLIC_URL` nor `AGONES_PUBLIC_URL_TEMPLATE` is set: the node's
/// host port on the Kubernetes node's address, plain WebSocket.
const DEFAULT_PUBLIC_URL_TEMPLATE: &str = "ws://{address}:{port}";

/// How often the address lookup at start is retried while the sidecar is not up yet (Agones:
/// "the SDK Server sidecar process may startup after your game server binary").
const STARTUP_RETRY: Duration = Duration::from_millis(500);

/// How often [`Agones::finish`] tries the final counters and Shutdown before giving up.
const FINAL_ATTEMPTS: u32 = 5;

/// While the SDK stays unreachable, one reminder line per this interval.
const OUTAGE_REMINDER: Duration = Duration::from_secs(60);

/// Flags and environment of the Agones integration (flattened into the node's flags).
#[derive(Debug, Clone, Args)]
pub struct AgonesArgs {
    /// Speak the Agones SDK (Ready, Health, Allocate, counters, Shutdown) to the SDK server
    /// sidecar of this GameServer pod. The Helm chart's Fleet sets it.
    #[arg(
        long = "agones",
        env = "AGONES",
        value_name = "AGONES",
        default_value = "0",
        value_parser = parse_flag,
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,

    /// Port of the SDK server's REST API on localhost (Agones sets this variable in the pod).
    #[arg(
        long,
        env = "AGONES_SDK_HTTP_PORT",
        value_name = "AGONES_SDK_HTTP_PORT",
        default_value_t = 9358
    )]
    pub agones_sdk_http_port: u16,

    /// Seconds between Health pings; keep it below the GameServer's health.periodSeconds.
    #[arg(
        long,
        env = "AGONES_HEALTH_SECS",
        value_name = "AGONES_HEALTH_SECS",
        default_value_t = 2
    )]
    pub agones_health_secs: u64,

    /// Milliseconds between samples of the node that keep Allocate/Ready and the counters in step.
    #[arg(
        long,
        env = "AGONES_SYNC_MS",
        value_name = "AGONES_SYNC_MS",
        default_value_t = 1000
    )]
    pub agones_sync_ms: u64,

    /// Milliseconds one SDK call may take before it counts as failed.
    #[arg(
        long,
        env = "AGONES_SDK_TIMEOUT_MS",
        value_name = "AGONES_SDK_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub agones_sdk_timeout_ms: u64,

    /// Seconds an Allocated node must have had no human before it marks itself Ready again
    /// (and so may be scaled in).
    #[arg(
        long,
        env = "AGONES_READY_AFTER_IDLE_SECS",
        value_name = "AGONES_READY_AFTER_IDLE_SECS",
        default_value_t = 60
    )]
    pub agones_ready_after_idle_secs: u64,

    /// Seconds the node waits at start for the SDK server to report this GameServer's address
    /// (only when the published URL comes from AGONES_PUBLIC_URL_TEMPLATE).
    #[arg(
        long,
        env = "AGONES_STARTUP_TIMEOUT_SECS",
        value_name = "AGONES_STARTUP_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub agones_startup_timeout_secs: u64,

    /// Counter (GameServer spec.counters) holding humans on the node, capacity = seats.
    #[arg(
        long,
        env = "AGONES_PLAYERS_COUNTER",
        value_name = "AGONES_PLAYERS_COUNTER",
        default_value = "players"
    )]
    pub agones_players_counter: String,

    /// Counter holding rooms on the node, capacity = MAX_ROOMS.
    #[arg(
        long,
        env = "AGONES_ROOMS_COUNTER",
        value_name = "AGONES_ROOMS_COUNTER",
        default_value = "rooms"
    )]
    pub agones_rooms_counter: String,

    /// Name of the GameServer port players connect to (spec.ports[].name).
    #[arg(
        long,
        env = "AGONES_PORT_NAME",
        value_name = "AGONES_PORT_NAME",
        default_value = "game"
    )]
    pub agones_port_name: String,

    /// URL published to the matchmaker, from the GameServer's status: {address}, {port} (the
    /// host port Agones allocated) and {name}. Default ws://{address}:{port}. Not together with
    /// PUBLIC_URL.
    #[arg(
        long,
        env = "AGONES_PUBLIC_URL_TEMPLATE",
        value_name = "AGONES_PUBLIC_URL_TEMPLATE"
    )]
    pub agones_public_url_template: Option<String>,
}

/// Where the URL the node publishes comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedUrl {
    /// `PUBLIC_URL` was set: published as it is.
    Configured,
    /// Filled from the GameServer's status at start.
    Template(String),
}

/// The validated Agones settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgonesConfig {
    pub sdk_http_port: u16,
    pub health_interval: Duration,
    pub sync_interval: Duration,
    pub call_timeout: Duration,
    pub ready_after_idle: Duration,
    pub startup_timeout: Duration,
    pub players_counter: String,
    pub rooms_counter: String,
    pub port_name: String,
    pub published_url: PublishedUrl,
}

impl AgonesConfig {
    /// Settings for tests: the SDK on `port`, fast samples and pings, short timeouts.
    pub fn for_tests(port: u16) -> AgonesConfig {
        AgonesConfig {
            sdk_http_port: port,
            health_interval: Duration::from_millis(100),
            sync_interval: Duration::from_millis(50),
            call_timeout: Duration::from_millis(300),
            ready_after_idle: Duration::from_millis(300),
            startup_timeout: Duration::from_secs(10),
            players_counter: "players".into(),
            rooms_counter: "rooms".into(),
            port_name: "game".into(),
            published_url: PublishedUrl::Configured,
        }
    }

    fn base_url(&self) -> String {
        format!("http://localhost:{}", self.sdk_http_port)
    }
}

impl AgonesArgs {
    /// `None` when `AGONES` is off. `public_url_given` says whether `PUBLIC_URL` was set, which
    /// excludes a template.
    pub fn validate(&self, public_url_given: bool) -> Result<Option<AgonesConfig>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.agones_sdk_http_port == 0 {
            return Err(invalid("AGONES_SDK_HTTP_PORT", "must be within 1..=65535"));
        }
        if !(1..=60).contains(&self.agones_health_secs) {
            return Err(invalid("AGONES_HEALTH_SECS", "must be within 1..=60"));
        }
        if !(100..=60_000).contains(&self.agones_sync_ms) {
            return Err(invalid("AGONES_SYNC_MS", "must be within 100..=60000"));
        }
        if !(50..=30_000).contains(&self.agones_sdk_timeout_ms) {
            return Err(invalid(
                "AGONES_SDK_TIMEOUT_MS",
                "must be within 50..=30000",
            ));
        }
        if self.agones_sdk_timeout_ms >= self.agones_health_secs * 1000 {
            return Err(invalid(
                "AGONES_SDK_TIMEOUT_MS",
                "must be shorter than AGONES_HEALTH_SECS, or one slow call delays the next ping",
            ));
        }
        if self.agones_ready_after_idle_secs > 3600 {
            return Err(invalid(
                "AGONES_READY_AFTER_IDLE_SECS",
                "must be at most 3600",
            ));
        }
        if !(1..=600).contains(&self.agones_startup_timeout_secs) {
            return Err(invalid(
                "AGONES_STARTUP_TIMEOUT_SECS",
                "must be within 1..=600",
            ));
        }
        for (variable, name) in [
            ("AGONES_PLAYERS_COUNTER", &self.agones_players_counter),
            ("AGONES_ROOMS_COUNTER", &self.agones_rooms_counter),
            ("AGONES_PORT_NAME", &self.agones_port_name),
        ] {
            if !valid_key(name) {
                return Err(invalid(
                    variable,
                    "use 1-63 characters of a-z, A-Z, 0-9, '-', '_', '.'",
                ));
            }
        }
        if self.agones_players_counter == self.agones_rooms_counter {
            return Err(invalid(
                "AGONES_ROOMS_COUNTER",
                "must differ from AGONES_PLAYERS_COUNTER",
            ));
        }
        let published_url = match (&self.agones_public_url_template, public_url_given) {
            (Some(_), true) => {
                return Err(invalid(
                    "AGONES_PUBLIC_URL_TEMPLATE",
                    "set either PUBLIC_URL or AGONES_PUBLIC_URL_TEMPLATE, not both",
                ));
            }
            (None, true) => PublishedUrl::Configured,
            (template, false) => {
                let template = template
                    .as_deref()
                    .unwrap_or(DEFAULT_PUBLIC_URL_TEMPLATE)
                    .trim()
                    .trim_end_matches('/')
                    .to_string();
                check_template(&template)
                    .map_err(|problem| invalid("AGONES_PUBLIC_URL_TEMPLATE", problem))?;
                PublishedUrl::Template(template)
            }
        };
        Ok(Some(AgonesConfig {
            sdk_http_port: self.agones_sdk_http_port,
            health_interval: Duration::from_secs(self.agones_health_secs),
            sync_interval: Duration::from_millis(self.agones_sync_ms),
            call_timeout: Duration::from_millis(self.agones_sdk_timeout_ms),
            ready_after_idle: Duration::from_secs(self.agones_ready_after_idle_secs),
            startup_timeout: Duration::from_secs(self.agones_startup_timeout_secs),
            players_counter: self.agones_players_counter.clone(),
            rooms_counter: self.agones_rooms_counter.clone(),
            port_name: self.agones_port_name.clone(),
            published_url,
        }))
    }
}

/// Counter and port names end up in a URL path: a small alphabet, no escaping needed.
fn valid_key(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_template(template: &str) -> Result<(), String> {
    if !(template.starts_with("ws://") || template.starts_with("wss://")) {
        return Err("must start with ws:// or wss://".into());
    }
    if template.len() > 200 || template.contains(char::is_whitespace) {
        return Err("must be at most 200 characters without spaces".into());
    }
    let mut rest = template.to_string();
    for placeholder in PLACEHOLDERS {
        rest = rest.replace(placeholder, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err("knows only the placeholders {address}, {port} and {name}".into());
    }
    Ok(())
}

/// Fills a checked template from the GameServer's status. An IPv6 address gets brackets.
pub fn fill_template(template: &str, address: &str, port: u16, name: &str) -> String {
    let host = if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    template
        .replace("{address}", &host)
        .replace("{port}", &port.to_string())
        .replace("{name}", name)
}

/// The state of this GameServer as far as the node has told Agones and Agones acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkState {
    /// Nothing acknowledged yet (Agones: Scheduled).
    Starting,
    Ready,
    Allocated,
    /// Shutdown acknowledged: nothing more is sent.
    ShutDown,
}

/// One look at the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub humans: u64,
    /// Rooms that exist (warm, active or draining).
    pub rooms: u64,
    pub draining: bool,
}

/// Which of the node's two counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    Players,
    Rooms,
}

/// A state-changing SDK call (Health is not one: it is pinged on its own clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkCall {
    Ready,
    Allocate,
    Shutdown,
    /// Sets a counter's count, and its capacity the first time.
    Counter {
        kind: CounterKind,
        count: u64,
        capacity: Option<u64>,
    },
}

impl SdkCall {
    /// The `call` label of `coil_agones_sdk_requests_total`.
    pub fn label(&self) -> &'static str {
        match self {
            SdkCall::Ready => "ready",
            SdkCall::Allocate => "allocate",
            SdkCall::Shutdown => "shutdown",
            SdkCall::Counter { .. } => "counter",
        }
    }
}

/// The decisions: which calls bring Agones in step with a sample. Calls not acknowledged are
/// asked for again by the next [`Lifecycle::plan`], so a failed call is simply retried.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: SdkState,
    seats: u64,
    room_slots: u64,
    ready_after_idle: Duration,
    /// Last acknowledged counts and whether the capacity went with them.
    players_sent: Option<u64>,
    rooms_sent: Option<u64>,
    players_capacity_sent: bool,
    rooms_capacity_sent: bool,
    /// Since when (on the caller's clock) the node has had no human.
    empty_since: Option<Duration>,
}

impl Lifecycle {
    /// `seats` is the players counter's capacity (MAX_ROOMS x ROOM_SOFT_CAP: what the
    /// matchmaker fills a node to), `room_slots` the rooms counter's (MAX_ROOMS).
    pub fn new(seats: u64, room_slots: u64, ready_after_idle: Duration) -> Lifecycle {
        Lifecycle {
            state: SdkState::Starting,
            seats,
            room_slots,
            ready_after_idle,
            players_sent: None,
            rooms_sent: None,
            players_capacity_sent: false,
            rooms_capacity_sent: false,
            empty_since: None,
        }
    }

    pub fn state(&self) -> SdkState {
        self.state
    }

    /// The calls to make now, in order: a state change first (Allocate protects players before
    /// anything else), then the counters, then Shutdown (after the counters read zero).
    pub fn plan(&mut self, sample: Sample, now: Duration) -> Vec<SdkCall> {
        if self.state == SdkState::ShutDown {
            return Vec::new();
        }
        if sample.humans == 0 {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
        let mut calls = Vec::new();
        if sample.humans > 0 && self.state != SdkState::Allocated {
            // Also while draining: the players still here are protected until they leave.
            calls.push(SdkCall::Allocate);
        } else if sample.humans == 0 && !sample.draining {
            let idle_long_enough = self
                .empty_since
                .is_some_and(|since| now.saturating_sub(since) >= self.ready_after_idle);
            match self.state {
                SdkState::Starting => calls.push(SdkCall::Ready),
                SdkState::Allocated if idle_long_enough => calls.push(SdkCall::Ready),
                _ => {}
            }
        }
        // A room above the soft cap can hold more humans than the node has seats: the counter
        // saturates (no free seat) instead of being refused by Agones (count <= capacity).
        let players = sample.humans.min(self.seats);
        if self.players_sent != Some(players) {
            calls.push(SdkCall::Counter {
                kind: CounterKind::Players,
                count: players,
                capacity: (!self.players_capacity_sent).then_some(self.seats),
            });
        }
        let rooms = sample.rooms.min(self.room_slots);
        if self.rooms_sent != Some(rooms) {
            calls.push(SdkCall::Counter {
                kind: CounterKind::Rooms,
                count: rooms,
                capacity: (!self.rooms_capacity_sent).then_some(self.room_slots),
            });
        }
        if sample.draining && sample.humans == 0 && sample.rooms == 0 {
            calls.push(SdkCall::Shutdown);
        }
        calls
    }

    /// Records that Agones answered a call with success.
    pub fn acknowledged(&mut self, call: &SdkCall) {
        match call {
            SdkCall::Ready if self.state != SdkState::ShutDown => self.state = SdkState::Ready,
            SdkCall::Allocate if self.state != SdkState::ShutDown => {
                self.state = SdkState::Allocated
            }
            SdkCall::Shutdown => self.state = SdkState::ShutDown,
            SdkCall::Counter {
                kind,
                count,
                capacity,
            } => {
                let (sent, capacity_sent) = match kind {
                    CounterKind::Players => {
                        (&mut self.players_sent, &mut self.players_capacity_sent)
                    }
                    CounterKind::Rooms => (&mut self.rooms_sent, &mut self.rooms_capacity_sent),
                };
                *sent = Some(*count);
                *capacity_sent |= capacity.is_some();
            }
            _ => {}
        }
    }
}

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("no answer within the timeout or no connection: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("answered with an unexpected body: {0}")]
    Body(String),
}

/// What the node reads of `GET /gameserver` (the SDK's `sdk.GameServer`, JSON names as the
/// REST gateway writes them).
#[derive(Debug, Default, Deserialize)]
struct GameServer {
    #[serde(default)]
    object_meta: ObjectMeta,
    #[serde(default)]
    status: GameServerStatus,
}

#[derive(Debug, Default, Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct GameServerStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    ports: Vec<StatusPort>,
}

#[derive(Debug, Default, Deserialize)]
struct StatusPort {
    #[serde(default)]
    name: String,
    #[serde(default)]
    port: i64,
}

/// First failure, a reminder per [`OUTAGE_REMINDER`], and the recovery: an SDK outage costs a
/// handful of log lines, not one per call. Kept per kind of call, so that pings that still go
/// through do not reset the story of a call that keeps failing.
#[derive(Debug, Default)]
struct OutageLog {
    failing_since: Option<Instant>,
    failures: u64,
    last_line: Option<Instant>,
}

/// The `call` labels, in the order of [`OutageLogs`]' slots.
const CALL_LABELS: [&str; 6] = [
    "ready",
    "allocate",
    "shutdown",
    "counter",
    "health",
    "gameserver",
];

type OutageLogs = [OutageLog; CALL_LABELS.len()];

/// A failed call either never reached the SDK server (it is down or hangs: trying the next call
/// of the same sample would only wait again) or was refused by it (the next call may work).
fn unreachable(error: &SdkError) -> bool {
    !matches!(error, SdkError::Refused { .. })
}

/// The HTTP side, shared by the sync and health tasks.
struct SdkClient {
    http: reqwest::Client,
    base: String,
    settings: AgonesConfig,
    outage: Mutex<OutageLogs>,
}

impl SdkClient {
    fn new(settings: AgonesConfig) -> anyhow::Result<SdkClient> {
        let http = reqwest::Client::builder()
            .timeout(settings.call_timeout)
            .connect_timeout(settings.call_timeout)
            // The sidecar is on localhost: a proxy from the environment must not be used.
            .no_proxy()
            .build()
            .context("building the Agones SDK HTTP client")?;
        Ok(SdkClient {
            http,
            base: settings.base_url(),
            settings,
            outage: Mutex::new(Default::default()),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, SdkError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            // The REST gateway answers errors as {"code": <grpc code>, "message": "..."}.
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|body| body.get("message")?.as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(SdkError::Refused {
                status: status.as_u16(),
                message: message.chars().take(200).collect(),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|error| SdkError::Body(error.to_string()))
    }

    /// One call with its metric and outage logging.
    async fn call(&self, call: &SdkCall) -> Result<(), SdkError> {
        use reqwest::Method;
        let empty = Some(json!({}));
        let result = match call {
            SdkCall::Ready => self.send(Method::POST, "/ready", empty).await.map(drop),
            SdkCall::Allocate => self.send(Method::POST, "/allocate", empty).await.map(drop),
            SdkCall::Shutdown => self.send(Method::POST, "/shutdown", empty).await.map(drop),
            SdkCall::Counter {
                kind,
                count,
                capacity,
            } => {
                let name = match kind {
                    CounterKind::Players => &self.settings.players_counter,
                    CounterKind::Rooms => &self.settings.rooms_counter,
                };
                // int64 fields travel as JSON strings, as in the Agones REST examples.
                let mut body = json!({ "count": count.to_string() });
                if let Some(capacity) = capacity {
                    body["capacity"] = Value::String(capacity.to_string());
                }
                self.send(
                    Method::PATCH,
                    &format!("/v1beta1/counters/{name}"),
                    Some(body),
                )
                .await
                .map(drop)
            }
        };
        self.record(call.label(), &result);
        result
    }

    async fn health(&self) -> Result<(), SdkError> {
        let result = self
            .send(reqwest::Method::POST, "/health", Some(json!({})))
            .await
            .map(drop);
        self.record("health", &result);
        result
    }

    async fn game_server(&self) -> Result<GameServer, SdkError> {
        let result = self.send(reqwest::Method::GET, "/gameserver", None).await;
        let result = result.and_then(|body| {
            serde_json::from_value::<GameServer>(body)
                .map_err(|error| SdkError::Body(error.to_string()))
        });
        self.record("gameserver", &result);
        result
    }

    fn record<T>(&self, call: &'static str, result: &Result<T, SdkError>) {
        crate::metrics::agones_sdk_request(call, result.is_ok());
        let now = Instant::now();
        let slot = CALL_LABELS
            .iter()
            .position(|label| *label == call)
            .unwrap_or(0);
        let mut logs = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        let log = &mut logs[slot];
        match result {
            Ok(_) => {
                if let Some(since) = log.failing_since.take() {
                    tracing::info!(
                        call,
                        failures = log.failures,
                        seconds = since.elapsed().as_secs(),
                        "agones sdk reachable again"
                    );
                    log.failures = 0;
                    log.last_line = None;
                }
            }
            Err(error) => {
                log.failures += 1;
                let since = *log.failing_since.get_or_insert(now);
                let due = log
                    .last_line
                    .is_none_or(|last| now.duration_since(last) >= OUTAGE_REMINDER);
                if due {
                    log.last_line = Some(now);
                    tracing::warn!(
                        call,
                        cause = %error,
                        failures = log.failures,
                        seconds = now.duration_since(since).as_secs(),
                        sdk = %self.base,
                        "agones sdk call failed; the game goes on and the call is retried"
                    );
                }
            }
        }
    }
}

/// The SDK link before the node serves: its HTTP client, and the URL it learnt.
pub struct Agones {
    client: Arc<SdkClient>,
}

/// Builds the SDK client and, when the published URL comes from the template, asks the SDK
/// server for this GameServer's address and port (retrying while the sidecar starts, up to
/// `AGONES_STARTUP_TIMEOUT_SECS`) and puts the URL into the node's directory link. Fails only
/// when the address cannot be learnt: a node that cannot say where it is cannot take players.
pub async fn prepare(
    settings: AgonesConfig,
    fleet: Option<&mut FleetLink>,
) -> anyhow::Result<Agones> {
    let client = Arc::new(SdkClient::new(settings.clone())?);
    let (PublishedUrl::Template(template), Some(link)) = (&settings.published_url, fleet) else {
        return Ok(Agones { client });
    };
    let give_up = Instant::now() + settings.startup_timeout;
    let mut last_problem: String;
    loop {
        match client.game_server().await {
            Ok(game_server) => match reachable_at(&game_server, &settings.port_name) {
                Ok((address, port)) => {
                    let url = fill_template(template, address, port, &game_server.object_meta.name);
                    tracing::info!(
                        gameserver = %game_server.object_meta.name,
                        state = %game_server.status.state,
                        %url,
                        "agones: publishing this GameServer's address"
                    );
                    link.public_url = url;
                    return Ok(Agones { client });
                }
                Err(problem) => last_problem = problem,
            },
            Err(error) => last_problem = error.to_string(),
        }
        let now = Instant::now();
        if now >= give_up {
            anyhow::bail!(
                "AGONES: the SDK server at {} did not report this GameServer's address within \
                 AGONES_STARTUP_TIMEOUT_SECS ({} s): {last_problem}",
                client.base,
                settings.startup_timeout.as_secs()
            );
        }
        tokio::time::sleep(STARTUP_RETRY.min(give_up - now)).await;
    }
}

/// The address and port players reach, once Agones has filled them in (it does at Scheduled).
fn reachable_at<'a>(
    game_server: &'a GameServer,
    port_name: &str,
) -> Result<(&'a str, u16), String> {
    let status = &game_server.status;
    if status.address.is_empty() {
        return Err(format!("no address yet (state {:?})", status.state));
    }
    let port = match status.ports.iter().find(|port| port.name == port_name) {
        Some(port) => port,
        None if status.ports.len() == 1 => &status.ports[0],
        None => {
            return Err(format!(
                "no port named {port_name:?} in the GameServer status"
            ));
        }
    };
    let port = u16::try_from(port.port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("port {} is not a TCP port", port.port))?;
    Ok((&status.address, port))
}

/// The running integration: a sync task and a health task.
pub struct AgonesAgent {
    client: Arc<SdkClient>,
    stop: watch::Sender<bool>,
    sync: JoinHandle<Lifecycle>,
    health: JoinHandle<()>,
    started: Instant,
    sample: SampleFn,
}

/// Looks at the node (a closure so the agent is not generic over the game).
type SampleFn = Arc<dyn Fn() -> Sample + Send + Sync>;

fn sample_node(node: &Node) -> Sample {
    let summary = node.summary();
    let [warm, active, draining, _terminated] = summary.rooms_by_state;
    Sample {
        humans: summary.humans as u64,
        rooms: (warm + active + draining) as u64,
        draining: node.is_draining(),
    }
}

impl Agones {
    /// Starts telling Agones about the node; call once the listener serves (the first sample
    /// sends Ready).
    pub fn start(self, node: Arc<Node>) -> AgonesAgent {
        let settings = &self.client.settings;
        // Free player seats are counted over every mode the node runs.
        let seats = node
            .modes
            .iter()
            .map(|mode| (mode.max_rooms * mode.soft_cap) as u64)
            .sum::<u64>();
        let rooms = node
            .modes
            .iter()
            .map(|mode| mode.max_rooms as u64)
            .sum::<u64>();
        let lifecycle = Lifecycle::new(seats, rooms, settings.ready_after_idle);
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let sample: SampleFn = Arc::new(move || sample_node(&node));
        let sync = tokio::spawn(sync_loop(
            self.client.clone(),
            lifecycle,
            sample.clone(),
            started,
            stopped.clone(),
        ));
        let health = tokio::spawn(health_loop(self.client.clone(), stopped));
        AgonesAgent {
            client: self.client,
            stop,
            sync,
            health,
            started,
            sample,
        }
    }
}

async fn sync_loop(
    client: Arc<SdkClient>,
    mut lifecycle: Lifecycle,
    sample: SampleFn,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Lifecycle {
    let mut ticker = tokio::time::interval(client.settings.sync_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return lifecycle,
        }
        for call in lifecycle.plan(sample(), started.elapsed()) {
            // With the SDK unreachable, one timeout per sample is enough: stop, the next sample
            // asks again for everything not acknowledged. A refused call does not hold up the
            // others (a counter missing from the GameServer spec must not block Shutdown).
            match client.call(&call).await {
                Ok(()) => lifecycle.acknowledged(&call),
                Err(error) if unreachable(&error) => break,
                Err(_) => {}
            }
        }
    }
}

async fn health_loop(client: Arc<SdkClient>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(client.settings.health_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => { let _ = client.health().await; }
            _ = stop.changed() => return,
        }
    }
}

impl AgonesAgent {
    /// After the drain: the counters' last values and Shutdown (Agones then deletes the
    /// GameServer), a few attempts, then the health pings stop. Never fails: with the SDK
    /// down, Agones finds the pod gone when the process exits.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let mut lifecycle = match self.sync.await {
            Ok(lifecycle) => lifecycle,
            Err(_) => return,
        };
        for attempt in 1..=FINAL_ATTEMPTS {
            let mut sample = (self.sample)();
            sample.draining = true;
            let mut calls = lifecycle.plan(sample, self.started.elapsed());
            // Rooms still closing at the deadline do not keep the GameServer alive.
            if lifecycle.state() != SdkState::ShutDown && !calls.contains(&SdkCall::Shutdown) {
                calls.push(SdkCall::Shutdown);
            }
            for call in calls {
                match self.client.call(&call).await {
                    Ok(()) => lifecycle.acknowledged(&call),
                    Err(error) if unreachable(&error) => break,
                    Err(_) => {}
                }
            }
            if lifecycle.state() == SdkState::ShutDown {
                tracing::info!("agones: Shutdown sent; Agones deletes this GameServer");
                break;
            }
            if attempt < FINAL_ATTEMPTS {
                tokio::time::sleep(self.client.settings.sync_interval).await;
            } else {
                tracing::warn!("agones: Shutdown was not acknowledged; exiting anyway");
            }
        }
        let _ = self.health.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        agones: AgonesArgs,
    }

    fn parse(args: &[&str], public_url_given: bool) -> Result<Option<AgonesConfig>, String> {
        let mut full = vec!["coil"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
        cli.agones
            .validate(public_url_given)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_on_with_the_documented_defaults() {
        assert_eq!(parse(&[], false).unwrap(), None);
        let config = parse(&["--agones", "1"], false).unwrap().unwrap();
        assert_eq!(config.sdk_http_port, 9358);
        assert_eq!(config.base_url(), "http://localhost:9358");
        assert_eq!(config.health_interval, Duration::from_secs(2));
        assert_eq!(
            config.published_url,
            PublishedUrl::Template("ws://{address}:{port}".into())
        );
        let config = parse(&["--agones", "1"], true).unwrap().unwrap();
        assert_eq!(config.published_url, PublishedUrl::Configured);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[&str], bool, &str)] = &[
            (&["--agones", "maybe"], false, "AGONES"),
            (
                &["--agones-sdk-http-port", "0"],
                false,
                "AGONES_SDK_HTTP_PORT",
            ),
            (&["--agones-health-secs", "0"], false, "AGONES_HEALTH_SECS"),
            (&["--agones-sync-ms", "10"], false, "AGONES_SYNC_MS"),
            (
                &["--agones-sdk-timeout-ms", "5000"],
                false,
                "AGONES_SDK_TIMEOUT_MS",
            ),
            (
                &["--agones-ready-after-idle-secs", "9999"],
                false,
                "AGONES_READY_AFTER_IDLE_SECS",
            ),
            (
                &["--agones-startup-timeout-secs", "0"],
                false,
                "AGONES_STARTUP_TIMEOUT_SECS",
            ),
            (
                &["--agones-players-counter", "a/b"],
                false,
                "AGONES_PLAYERS_COUNTER",
            ),
            (
                &["--agones-rooms-counter", "players"],
                false,
                "AGONES_ROOMS_COUNTER",
            ),
            (&["--agones-port-name", ""], false, "AGONES_PORT_NAME"),
            (
                &["--agones-public-url-template", "http://{address}"],
                false,
                "AGONES_PUBLIC_URL_TEMPLATE",
            ),
            (
                &["--agones-public-url-template", "ws://{host}:{port}"],
                false,
                "AGONES_PUBLIC_URL_TEMPLATE",
            ),
            (
                &["--agones-public-url-template", "ws://{address}:{port}"],
                true,
                "AGONES_PUBLIC_URL_TEMPLATE",
            ),
        ];
        for (args, public_url_given, variable) in cases {
            // Every case but the first switches the integration on.
            let mut full = args.to_vec();
            if args.first() != Some(&"--agones") {
                full.splice(0..0, ["--agones", "1"]);
            }
            let error = parse(&full, *public_url_given).unwrap_err();
            assert!(
                error.contains(variable),
                "{args:?} gave {error:?}, which does not name {variable}"
            );
        }
    }

    #[test]
    fn templates_fill_addresses_ports_and_names() {
        assert_eq!(
            fill_template("ws://{address}:{port}", "203.0.113.7", 7301, "gs-1"),
            "ws://203.0.113.7:7301"
        );
        assert_eq!(
            fill_template("ws://{address}:{port}", "2001:db8::7", 7301, "gs-1"),
            "ws://[2001:db8::7]:7301"
        );
        assert_eq!(
            fill_template(
                "wss://{name}.gs.example.com:{port}",
                "10.0.0.1",
                443,
                "coil-node-a1"
            ),
            "wss://coil-node-a1.gs.example.com:443"
        );
    }

    #[test]
    fn the_named_port_or_the_only_port_is_used() {
        let mut game_server = GameServer::default();
        assert!(
            reachable_at(&game_server, "game").is_err(),
            "no address yet"
        );
        game_server.status.address = "198.51.100.4".into();
        assert!(reachable_at(&game_server, "game").is_err(), "no port yet");
        game_server.status.ports.push(StatusPort {
            name: "other".into(),
            port: 7001,
        });
        assert_eq!(
            reachable_at(&game_server, "game"),
            Ok(("198.51.100.4", 7001))
        );
        game_server.status.ports.push(StatusPort {
            name: "game".into(),
            port: 7002,
        });
        assert_eq!(
            reachable_at(&game_server, "game"),
            Ok(("198.51.100.4", 7002))
        );
        game_server.status.ports[1].port = 70_000;
        assert!(reachable_at(&game_server, "game").is_err());
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn sample(humans: u64, rooms: u64, draining: bool) -> Sample {
        Sample {
            humans,
            rooms,
            draining,
        }
    }

    /// Plans and acknowledges every call, as a healthy SDK would.
    fn step(lifecycle: &mut Lifecycle, sample: Sample, now: Duration) -> Vec<SdkCall> {
        let calls = lifecycle.plan(sample, now);
        for call in &calls {
            lifecycle.acknowledged(call);
        }
        calls
    }

    fn counter(kind: CounterKind, count: u64, capacity: Option<u64>) -> SdkCall {
        SdkCall::Counter {
            kind,
            count,
            capacity,
        }
    }

    #[test]
    fn ready_first_then_allocated_while_humans_then_ready_after_the_idle_hold() {
        let mut lifecycle = Lifecycle::new(1920, 16, at(1000));
        assert_eq!(
            step(&mut lifecycle, sample(0, 0, false), at(0)),
            vec![
                SdkCall::Ready,
                counter(CounterKind::Players, 0, Some(1920)),
                counter(CounterKind::Rooms, 0, Some(16)),
            ]
        );
        assert_eq!(step(&mut lifecycle, sample(0, 0, false), at(50)), vec![]);
        assert_eq!(
            step(&mut lifecycle, sample(1, 1, false), at(100)),
            vec![
                SdkCall::Allocate,
                counter(CounterKind::Players, 1, None),
                counter(CounterKind::Rooms, 1, None),
            ]
        );
        assert_eq!(lifecycle.state(), SdkState::Allocated);
        assert_eq!(
            step(&mut lifecycle, sample(0, 1, false), at(200)),
            vec![counter(CounterKind::Players, 0, None)]
        );
        // Still Allocated until the node has been empty for the hold.
        assert_eq!(step(&mut lifecycle, sample(0, 1, false), at(1100)), vec![]);
        // A human back inside the hold resets it.
        step(&mut lifecycle, sample(1, 1, false), at(1150));
        step(&mut lifecycle, sample(0, 1, false), at(1200));
        assert_eq!(step(&mut lifecycle, sample(0, 1, false), at(2100)), vec![]);
        assert_eq!(
            step(&mut lifecycle, sample(0, 1, false), at(2200)),
            vec![SdkCall::Ready]
        );
        assert_eq!(lifecycle.state(), SdkState::Ready);
    }

    #[test]
    fn unacknowledged_calls_are_asked_for_again() {
        let mut lifecycle = Lifecycle::new(100, 2, at(0));
        let first = lifecycle.plan(sample(3, 1, false), at(0));
        assert_eq!(first[0], SdkCall::Allocate);
        // Nothing acknowledged (SDK down): the same calls again, capacities included.
        assert_eq!(lifecycle.plan(sample(3, 1, false), at(10)), first);
        // Only Allocate went through: the counters are still due, with the latest count.
        lifecycle.acknowledged(&SdkCall::Allocate);
        assert_eq!(
            lifecycle.plan(sample(4, 1, false), at(20)),
            vec![
                counter(CounterKind::Players, 4, Some(100)),
                counter(CounterKind::Rooms, 1, Some(2)),
            ]
        );
    }

    #[test]
    fn counters_saturate_at_their_capacity() {
        let mut lifecycle = Lifecycle::new(240, 2, at(0));
        let calls = step(&mut lifecycle, sample(260, 3, false), at(0));
        assert!(calls.contains(&counter(CounterKind::Players, 240, Some(240))));
        assert!(calls.contains(&counter(CounterKind::Rooms, 2, Some(2))));
    }

    #[test]
    fn draining_never_goes_ready_and_shuts_down_when_empty() {
        let mut lifecycle = Lifecycle::new(100, 4, at(0));
        step(&mut lifecycle, sample(0, 0, false), at(0));
        step(&mut lifecycle, sample(2, 1, false), at(10));
        // Draining with players: stays Allocated, no Shutdown yet.
        assert_eq!(step(&mut lifecycle, sample(2, 1, true), at(20)), vec![]);
        assert_eq!(
            step(&mut lifecycle, sample(0, 1, true), at(30)),
            vec![counter(CounterKind::Players, 0, None)]
        );
        // Idle for longer than the hold while draining: still no Ready.
        assert_eq!(step(&mut lifecycle, sample(0, 1, true), at(5000)), vec![]);
        assert_eq!(
            step(&mut lifecycle, sample(0, 0, true), at(5010)),
            vec![counter(CounterKind::Rooms, 0, None), SdkCall::Shutdown]
        );
        assert_eq!(lifecycle.state(), SdkState::ShutDown);
        assert_eq!(step(&mut lifecycle, sample(5, 1, false), at(6000)), vec![]);
    }

    #[test]
    fn a_drain_before_ready_skips_ready() {
        let mut lifecycle = Lifecycle::new(100, 4, at(0));
        let calls = step(&mut lifecycle, sample(0, 0, true), at(0));
        assert!(!calls.contains(&SdkCall::Ready));
        assert_eq!(calls.last(), Some(&SdkCall::Shutdown));
    }

    #[test]
    fn humans_while_draining_are_still_protected() {
        let mut lifecycle = Lifecycle::new(100, 4, at(0));
        step(&mut lifecycle, sample(0, 0, false), at(0));
        let calls = step(&mut lifecycle, sample(1, 1, true), at(10));
        assert_eq!(calls.first(), Some(&SdkCall::Allocate));
    }
}
