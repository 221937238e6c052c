//! The HTTP edge of a game node (axum): health, readiness, metrics, leaderboard, the room
//! WebSocket upgrade and the debug command. One error type maps to JSON responses with a
//! small set of stable codes; internal error text is logged, never sent.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coil_game::Game;
use coil_store::{Leaderboard, ReceiptKey, Recorded};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::node::Node;
use crate::room::RoomId;
use crate::{metrics as m, session};

/// What every handler can reach.
pub struct AppState<G: Game> {
    pub node: Arc<Node<G>>,
    pub leaderboard: Leaderboard,
    pub receipts: Arc<ReceiptKey>,
    pub metrics: PrometheusHandle,
    pub process: metrics_process::Collector,
}

/// Errors at the HTTP edge, each with a stable `code` string.
#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    Forbidden(&'static str),
    NotFound(&'static str),
    Unavailable(&'static str),
    Internal(anyhow::Error),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, "bad_request", message),
            AppError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, "forbidden", message.to_string())
            }
            AppError::NotFound(message) => {
                (StatusCode::NOT_FOUND, "not_found", message.to_string())
            }
            AppError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                message.to_string(),
            ),
            AppError::Internal(error) => {
                tracing::error!(cause = %format!("{error:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_string(),
                )
            }
        };
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// Largest HTTP body accepted (leaderboard receipts and debug commands are tiny).
const BODY_LIMIT: usize = 16 * 1024;

pub fn router<G: Game>(state: Arc<AppState<G>>) -> Router {
    let config = &state.node.config;
    let mut router = Router::new()
        .route("/api/health", get(health::<G>))
        .route("/api/ready", get(ready::<G>))
        .route("/api/room/{room}", get(room_socket::<G>))
        .route(
            "/api/leaderboard",
            get(leaderboard_top::<G>).post(leaderboard_submit::<G>),
        )
        .route("/metrics", get(metrics_text::<G>));
    if config.internal_secret.is_some() {
        router = router
            .route("/internal/drain", post(internal_drain::<G>))
            .route("/internal/evict", post(internal_evict::<G>));
    }
    if config.enable_debug_commands {
        router = router.route("/api/debug/kill", post(debug_kill::<G>));
    }
    let router = router
        .fallback(|| async { AppError::NotFound("no such endpoint") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let router = if config.cors_origins.is_empty() {
        router
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE]),
        )
    };
    router.with_state(state)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    node_id: String,
    region: String,
    draining: bool,
    rooms: RoomCounts,
    players: PlayerCounts,
}

#[derive(Serialize)]
struct RoomCounts {
    warm: usize,
    active: usize,
    draining: usize,
}

#[derive(Serialize)]
struct PlayerCounts {
    human: usize,
    bot: usize,
}

async fn health<G: Game>(State(state): State<Arc<AppState<G>>>) -> Json<Health> {
    let node = &state.node;
    let summary = node.summary();
    let draining = node.is_draining();
    Json(Health {
        status: if draining { "draining" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: node.started.elapsed().as_secs(),
        node_id: node.config.node_id.clone(),
        region: node.config.region.clone(),
        draining,
        rooms: RoomCounts {
            warm: summary.rooms_by_state[0],
            active: summary.rooms_by_state[1],
            draining: summary.rooms_by_state[2],
        },
        players: PlayerCounts {
            human: summary.humans,
            bot: summary.bots,
        },
    })
}

async fn ready<G: Game>(State(state): State<Arc<AppState<G>>>) -> Response {
    let node = &state.node;
    if node.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "draining" })),
        )
            .into_response();
    }
    if !node.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "reason": "overloaded" })),
        )
            .into_response();
    }
    Json(json!({ "ready": true })).into_response()
}

async fn metrics_text<G: Game>(State(state): State<Arc<AppState<G>>>) -> Response {
    let node = &state.node;
    let summary = node.summary();
    m::set_node_gauges(
        summary.rooms_by_state,
        summary.humans,
        summary.bots,
        node.is_draining(),
        node.is_ready(),
    );
    // The all-in-one node also reports its in-process directory (the matchmaker's view).
    if let (Some(link), Ok(region)) = (&node.fleet, coil_match::Region::parse(&node.config.region))
    {
        crate::fleet::export_directory_gauges(
            &*link.directory,
            &[region],
            node.config.room_soft_cap as u32,
        )
        .await;
    }
    state.process.collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn room_socket<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    Path(room): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let upgraded_at = Instant::now();
    let room = RoomId::parse(&room).map_err(|problem| AppError::BadRequest(problem.to_string()))?;
    if state.node.is_draining() {
        return Err(AppError::Unavailable(
            "node is draining; ask the matchmaker for another room",
        ));
    }
    let node = state.node.clone();
    Ok(upgrade
        // Small buffers: thousands of sockets per node (see docs/benchmarks.md for memory).
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(coil_protocol::MAX_CLIENT_MESSAGE)
        .max_frame_size(coil_protocol::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session::run(node, room, socket, upgraded_at)))
}

#[derive(Deserialize)]
struct TopQuery {
    limit: Option<u32>,
}

async fn leaderboard_top<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    query: Result<Query<TopQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(AppError::BadRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    let rows = state
        .leaderboard
        .top(limit)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(json!({ "scores": rows })).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmitScore {
    receipt: Option<String>,
}

/// Kept for old clients. Scores are recorded by the server when a run ends; this endpoint only
/// accepts a server-issued receipt (idempotently), never a number a client made up.
async fn leaderboard_submit<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    body: Result<Json<SubmitScore>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(body) = body?;
    let Some(receipt) = body.receipt else {
        return Err(AppError::Forbidden(
            "scores are recorded by the server; submit the score receipt from your death frame",
        ));
    };
    let entry = state
        .receipts
        .verify(&receipt)
        .map_err(|_| AppError::Forbidden("score receipt is not valid"))?;
    let recorded = state
        .leaderboard
        .record(&entry)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let status = match recorded {
        Recorded::Inserted => StatusCode::CREATED,
        Recorded::AlreadyRecorded => StatusCode::OK,
    };
    let body = json!({
        "recorded": true,
        "alreadyRecorded": matches!(recorded, Recorded::AlreadyRecorded),
        "name": entry.name,
        "score": entry.score,
    });
    Ok((status, Json(body)).into_response())
}

fn internal_caller<G: Game>(state: &AppState<G>, headers: &axum::http::HeaderMap) -> bool {
    let secret = state
        .node
        .config
        .internal_secret
        .as_deref()
        .unwrap_or_default();
    crate::matchmaker::authorized(headers, secret)
}

fn unauthorized() -> Response {
    let body = json!({ "error": { "code": "unauthorized", "message": "missing or wrong internal secret" } });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DrainRequest {
    deadline_secs: Option<u64>,
}

/// Autoscaler: stop taking players, tell the ones here to finish, close rooms at the deadline.
/// The process keeps running until it is stopped (SIGTERM), so it can be deleted once empty.
async fn internal_drain<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    headers: axum::http::HeaderMap,
    body: Option<Json<DrainRequest>>,
) -> Response {
    if !internal_caller(&state, &headers) {
        return unauthorized();
    }
    let request = body.map(|Json(request)| request).unwrap_or_default();
    let timeout = request
        .deadline_secs
        .map_or(state.node.config.drain_timeout, |secs| {
            std::time::Duration::from_secs(secs.min(3600))
        });
    let deadline = state.node.drain_within(timeout).await;
    let remaining_ms = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .as_millis() as u64;
    (
        StatusCode::ACCEPTED,
        Json(json!({ "draining": true, "deadlineInMs": remaining_ms })),
    )
        .into_response()
}

/// Autoscaler: close every room now; players are told and re-matchmake.
async fn internal_evict<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !internal_caller(&state, &headers) {
        return unauthorized();
    }
    state.node.drain_within(std::time::Duration::ZERO).await;
    (
        StatusCode::ACCEPTED,
        Json(json!({ "evicting": true, "humans": state.node.summary().humans })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct KillRequest {
    room: String,
    name: String,
}

async fn debug_kill<G: Game>(
    State(state): State<Arc<AppState<G>>>,
    body: Result<Json<KillRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(request) = body?;
    let room = RoomId::parse(&request.room)
        .map_err(|problem| AppError::BadRequest(problem.to_string()))?;
    let killed = state
        .node
        .kill(&room, &request.name)
        .await
        .ok_or(AppError::NotFound("no such room"))?;
    Ok(Json(json!({ "killed": killed })).into_response())
}
