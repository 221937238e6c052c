//! A local stand-in for the Agones SDK server's REST API (the sidecar's HTTP gateway on
//! `localhost:$AGONES_SDK_HTTP_PORT`), written from the published shapes: `sdk.swagger.json`
//! (`POST /ready`, `/health`, `/allocate`, `/shutdown` with an `{}` body; `GET /gameserver`
//! answering `{object_meta, spec, status: {state, address, addresses, ports, counters}}`) and
//! `beta.swagger.json` (`GET`/`PATCH /v1beta1/counters/{name}`, int64 fields as JSON strings).
//!
//! Counter updates follow the SDK server's rules: a request sets the capacity, the count or a
//! count difference (at least one of them); capacity is applied first; a count outside
//! `0..=capacity` or an unknown counter is refused with the gateway's error body
//! `{"code", "message"}`. It is stricter than the real gateway in one way on purpose: a field it
//! does not know is refused (the gateway would drop it silently, and the update would then be
//! refused as empty).
//!
//! Every request is recorded as an [`Event`]; tests wait on the log with [`StandIn::wait_for`]
//! (woken on each new event, never polling). [`Mode`] turns the stand-in into an outage: 503s
//! from a gateway whose SDK server is gone, or requests that are accepted and never answered.

#![allow(dead_code)] // each test uses a different subset

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Every request gets 503 `{"code": 14, "message": "..."}` (UNAVAILABLE).
    Unavailable,
    /// Requests are read and never answered: the caller's timeout is all that ends them.
    Hang,
}

/// What a request did, in the order they arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Ready {
        /// Status of `GET <probe>` made while handling the request: did the node serve then?
        probe_status: Option<u16>,
    },
    Health,
    Allocate,
    Shutdown,
    GetGameServer,
    /// A counter update that was accepted, with the counter afterwards.
    Counter {
        name: String,
        count: i64,
        capacity: i64,
    },
    /// A request refused by the rules or by the mode: path and status.
    Refused {
        path: String,
        status: u16,
    },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub at: Instant,
    pub call: Call,
}

/// The GameServer as this stand-in holds it.
#[derive(Debug, Clone)]
pub struct GameServer {
    pub name: String,
    pub state: String,
    pub address: String,
    pub ports: Vec<(String, u16)>,
    /// name → (count, capacity)
    pub counters: BTreeMap<String, (i64, i64)>,
}

impl GameServer {
    /// As Agones reports a scheduled GameServer of the chart's Fleet: the host address, one
    /// port named `game`, and the two counters at their spec values (Agones' default capacity
    /// 1000 where the spec gives none).
    pub fn scheduled(address: &str, port: u16) -> GameServer {
        GameServer {
            name: "coil-node-x7k2p-9wq4m".into(),
            state: "Scheduled".into(),
            address: address.into(),
            ports: vec![("game".into(), port)],
            counters: BTreeMap::from([
                ("players".to_string(), (0, 1000)),
                ("rooms".to_string(), (0, 1000)),
            ]),
        }
    }
}

struct Inner {
    mode: Mode,
    game_server: GameServer,
    events: Vec<Event>,
    probe: Option<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Bumped on every event so waiters wake.
    version: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, call: Call) {
        self.lock().events.push(Event {
            at: Instant::now(),
            call,
        });
        self.version.send_modify(|version| *version += 1);
    }
}

pub struct StandIn {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The gateway's error body (grpc-gateway: `{"code": <grpc code>, "message": ...}`).
fn gateway_error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({ "code": code, "message": message.into(), "details": [] });
    (status, Json(body)).into_response()
}

impl StandIn {
    /// Serves on 127.0.0.1:`port` (0 picks one).
    pub async fn start(port: u16, game_server: GameServer) -> StandIn {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("stand-in port is free");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                mode: Mode::Up,
                game_server,
                events: Vec::new(),
                probe: None,
            }),
            version: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/ready", post(ready))
            .route("/health", post(health))
            .route("/allocate", post(allocate))
            .route("/shutdown", post(shutdown))
            .route("/gameserver", get(game_server_json))
            .route(
                "/v1beta1/counters/{name}",
                get(get_counter).patch(update_counter),
            )
            .fallback(|| async { gateway_error(StatusCode::NOT_FOUND, 5, "Not Found") })
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                mode_gate,
            ))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { port, shared, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().mode = mode;
    }

    /// A URL the Ready handler fetches (with a short timeout) and records the status of.
    pub fn probe_on_ready(&self, url: String) {
        self.shared.lock().probe = Some(url);
    }

    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    pub fn game_server(&self) -> GameServer {
        self.shared.lock().game_server.clone()
    }

    /// Waits until `condition` holds for the event log and the GameServer, or fails the test
    /// after `within`.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        mut condition: impl FnMut(&[Event], &GameServer) -> bool,
    ) {
        let mut changes = self.shared.version.subscribe();
        let give_up = Instant::now() + within;
        loop {
            {
                let inner = self.shared.lock();
                if condition(&inner.events, &inner.game_server) {
                    return;
                }
            }
            if tokio::time::timeout_at(give_up, changes.changed())
                .await
                .is_err()
            {
                let inner = self.shared.lock();
                panic!(
                    "timed out waiting for {what}; GameServer {:?}; last events {:?}",
                    inner.game_server,
                    inner.events.iter().rev().take(12).collect::<Vec<_>>()
                );
            }
        }
    }
}

/// Applies the mode before any handler: an outage answers every path the same way.
async fn mode_gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mode = shared.lock().mode;
    let path = request.uri().path().to_string();
    match mode {
        Mode::Up => next.run(request).await,
        Mode::Unavailable => {
            shared.record(Call::Refused { path, status: 503 });
            gateway_error(
                StatusCode::SERVICE_UNAVAILABLE,
                14,
                "connection error: desc = \"transport: Error while dialing\"",
            )
        }
        Mode::Hang => {
            shared.record(Call::Refused { path, status: 0 });
            std::future::pending::<Response>().await
        }
    }
}

/// The lifecycle calls take `sdk.Empty`: a JSON object. `Some` is the refusal.
fn not_an_empty_message(body: &[u8]) -> Option<Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => None,
        _ => Some(gateway_error(
            StatusCode::BAD_REQUEST,
            3,
            "body must be a JSON object ({})",
        )),
    }
}

fn refuse(shared: &Shared, path: &str, response: Response) -> Response {
    shared.record(Call::Refused {
        path: path.to_string(),
        status: response.status().as_u16(),
    });
    response
}

/// A state change as the SDK server makes it: nothing leaves Shutdown or Unhealthy.
fn transition(shared: &Shared, to: &str) {
    let mut inner = shared.lock();
    let state = &mut inner.game_server.state;
    if state != "Shutdown" && state != "Unhealthy" {
        *state = to.to_string();
    }
}

async fn ready(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(response) = not_an_empty_message(&body) {
        return refuse(&shared, "/ready", response);
    }
    let probe = shared.lock().probe.clone();
    let probe_status = match probe {
        Some(url) => reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16()),
        None => None,
    };
    transition(&shared, "Ready");
    shared.record(Call::Ready { probe_status });
    Json(json!({})).into_response()
}

async fn health(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(response) = not_an_empty_message(&body) {
        return refuse(&shared, "/health", response);
    }
    shared.record(Call::Health);
    Json(json!({})).into_response()
}

async fn allocate(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(response) = not_an_empty_message(&body) {
        return refuse(&shared, "/allocate", response);
    }
    transition(&shared, "Allocated");
    shared.record(Call::Allocate);
    Json(json!({})).into_response()
}

async fn shutdown(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(response) = not_an_empty_message(&body) {
        return refuse(&shared, "/shutdown", response);
    }
    transition(&shared, "Shutdown");
    shared.record(Call::Shutdown);
    Json(json!({})).into_response()
}

async fn game_server_json(State(shared): State<Arc<Shared>>) -> Response {
    let game_server = shared.lock().game_server.clone();
    shared.record(Call::GetGameServer);
    let counters: serde_json::Map<String, Value> = game_server
        .counters
        .iter()
        .map(|(name, (count, capacity))| {
            (
                name.clone(),
                json!({ "count": count.to_string(), "capacity": capacity.to_string() }),
            )
        })
        .collect();
    let ports: Vec<Value> = game_server
        .ports
        .iter()
        .map(|(name, port)| json!({ "name": name, "port": port }))
        .collect();
    Json(json!({
        "object_meta": {
            "name": game_server.name,
            "namespace": "default",
            "uid": "8a4f1b2c-0000-4000-8000-000000000001",
            "resource_version": "1",
            "generation": "1",
            "creation_timestamp": "1796169600",
            "annotations": {},
            "labels": { "agones.dev/fleet": "coil-node" }
        },
        "spec": { "health": { "period_seconds": 5, "failure_threshold": 3, "initial_delay_seconds": 5 } },
        "status": {
            "state": game_server.state,
            "address": game_server.address,
            "addresses": [{ "type": "InternalIP", "address": game_server.address }],
            "ports": ports,
            "counters": counters
        }
    }))
    .into_response()
}

async fn get_counter(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let counter = shared.lock().game_server.counters.get(&name).copied();
    match counter {
        Some((count, capacity)) => Json(json!({
            "name": name, "count": count.to_string(), "capacity": capacity.to_string()
        }))
        .into_response(),
        None => gateway_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            2,
            format!("counter not found: {name}"),
        ),
    }
}

/// protojson reads int64 (and Int64Value) from a JSON string or a number.
fn int64(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

async fn update_counter(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/v1beta1/counters/{name}");
    let bad = |message: String| gateway_error(StatusCode::BAD_REQUEST, 3, message);
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&shared, &path, bad("body must be a JSON object".into()));
    };
    let mut capacity_set = None;
    let mut count_set = None;
    let mut count_diff = 0;
    for (key, value) in &fields {
        let Some(number) = int64(value) else {
            return refuse(&shared, &path, bad(format!("{key}: not an int64")));
        };
        match key.as_str() {
            "capacity" => capacity_set = Some(number),
            "count" => count_set = Some(number),
            "countDiff" => count_diff = number,
            "name" => {}
            other => return refuse(&shared, &path, bad(format!("unknown field {other:?}"))),
        }
    }
    if capacity_set.is_none() && count_set.is_none() && count_diff == 0 {
        return refuse(
            &shared,
            &path,
            gateway_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                2,
                "invalid argument. Malformed CounterUpdateRequest",
            ),
        );
    }
    let outcome = {
        let mut inner = shared.lock();
        match inner.game_server.counters.get_mut(&name) {
            None => Err(format!("counter not found: {name}")),
            Some((count, capacity)) => {
                let new_capacity = capacity_set.unwrap_or(*capacity);
                let new_count = count_set.unwrap_or(*count) + count_diff;
                if new_capacity < 0 {
                    Err(format!(
                        "out of range. Capacity must be greater than or equal to 0. Found Capacity: {new_capacity}"
                    ))
                } else if !(0..=new_capacity).contains(&new_count) {
                    Err(format!(
                        "out of range. Count must be within range [0,Capacity]. Found Count: {new_count}, Capacity: {new_capacity}"
                    ))
                } else {
                    *capacity = new_capacity;
                    *count = new_count;
                    Ok((new_count, new_capacity))
                }
            }
        }
    };
    match outcome {
        Ok((count, capacity)) => {
            shared.record(Call::Counter {
                name: name.clone(),
                count,
                capacity,
            });
            Json(json!({
                "name": name, "count": count.to_string(), "capacity": capacity.to_string()
            }))
            .into_response()
        }
        Err(message) => refuse(
            &shared,
            &path,
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, 2, message),
        ),
    }
}
