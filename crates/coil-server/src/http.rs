//! The HTTP edge of a game node (axum): health, readiness, metrics, leaderboard, the room
//! WebSocket upgrade and the debug command. One error type maps to JSON responses with a
//! small set of stable codes; internal error text is logged, never sent.

use std::sync::Arc;
use tokio::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coil_api::openapi::ErrorBody;
use coil_store::{Leaderboard, ReceiptKey, Recorded};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::{OpenApi, ToSchema};

use crate::node::Node;
use crate::room::RoomId;
use crate::{metrics as m, session};

/// What every handler can reach.
pub struct AppState {
    pub node: Arc<Node>,
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
    /// 426: a plain request to the WebSocket route.
    UpgradeRequired(String),
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
            AppError::UpgradeRequired(message) => {
                (StatusCode::UPGRADE_REQUIRED, "upgrade_required", message)
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

impl From<WebSocketUpgradeRejection> for AppError {
    fn from(rejection: WebSocketUpgradeRejection) -> Self {
        if rejection.status() == StatusCode::UPGRADE_REQUIRED {
            AppError::UpgradeRequired(rejection.body_text())
        } else {
            AppError::BadRequest(rejection.body_text())
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::BadRequest(rejection.body_text())
    }
}

/// Largest HTTP body accepted (leaderboard receipts and debug commands are tiny).
const BODY_LIMIT: usize = 16 * 1024;

pub fn router(state: Arc<AppState>) -> Router {
    let config = &state.node.config;
    let mut router = Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/api/room/{room}", get(room_socket))
        .route(
            "/api/leaderboard",
            get(leaderboard_top).post(leaderboard_submit),
        )
        .route("/metrics", get(metrics_text))
        .merge(crate::history::routes());
    if config.internal_secret.is_some() {
        router = router
            .route("/internal/drain", post(internal_drain))
            .route("/internal/evict", post(internal_evict));
    }
    if config.enable_debug_commands {
        router = router.route("/api/debug/kill", post(debug_kill));
    }
    let router = router
        .fallback(|| async { AppError::NotFound("no such endpoint") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    router.with_state(state)
}

/// Cross-origin access for a browser client served from another origin (a studio's own site
/// calling the node, the matchmaker and the accounts API): the listed origins may call every
/// route with the methods and headers the API uses (`Authorization` for accounts), and read
/// `Retry-After`. `None` when no origin is configured (same-origin only).
pub fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Health {
    /// `ok`, or `draining` once the node takes no new players.
    #[schema(value_type = String)]
    status: &'static str,
    #[schema(value_type = String)]
    version: &'static str,
    uptime_seconds: u64,
    node_id: String,
    region: String,
    draining: bool,
    rooms: RoomCounts,
    players: PlayerCounts,
    /// Rooms and people per game mode this node runs.
    modes: Vec<ModeCounts>,
}

#[derive(Serialize, ToSchema)]
struct ModeCounts {
    mode: String,
    rooms: usize,
    humans: usize,
    spectators: usize,
    bots: usize,
}

#[derive(Serialize, ToSchema)]
struct RoomCounts {
    warm: usize,
    active: usize,
    draining: usize,
}

#[derive(Serialize, ToSchema)]
struct PlayerCounts {
    human: usize,
    spectator: usize,
    bot: usize,
}

/// `GET /api/ready`'s body.
#[derive(ToSchema)]
#[allow(dead_code)] // Schemas only: the handlers answer with `json!`.
struct Readiness {
    ready: bool,
    /// Why not: `draining` or `overloaded`.
    reason: Option<String>,
}

/// `GET /api/leaderboard`'s body.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TopScores {
    scores: Vec<ScoreRowSchema>,
}

/// One leaderboard line (`coil_store::ScoreRow`, which stays free of utoipa).
#[derive(ToSchema)]
#[schema(as = ScoreRow, rename_all = "camelCase")]
#[allow(dead_code)]
struct ScoreRowSchema {
    name: String,
    score: u32,
    room: String,
    /// Unix milliseconds when the run ended.
    recorded_at_ms: i64,
}

/// `POST /api/leaderboard`'s body.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct Submitted {
    recorded: bool,
    already_recorded: bool,
    name: String,
    score: u32,
}

/// `POST /internal/drain`'s body.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct DrainAnswer {
    draining: bool,
    deadline_in_ms: u64,
}

/// `POST /internal/evict`'s body.
#[derive(ToSchema)]
#[allow(dead_code)]
struct EvictAnswer {
    evicting: bool,
    /// Humans still on the node as the rooms close.
    humans: usize,
}

/// `POST /api/debug/kill`'s body.
#[derive(ToSchema)]
#[allow(dead_code)]
struct KillAnswer {
    /// How many snakes of that name died.
    killed: usize,
}

#[derive(OpenApi)]
#[openapi(
    paths(health, ready, metrics_text, room_socket, leaderboard_top, leaderboard_submit),
    components(schemas(ErrorBody)),
    tags((name = "node", description = "A game node's own routes."))
)]
struct NodeApi;

#[derive(OpenApi)]
#[openapi(
    paths(internal_drain, internal_evict),
    tags((name = "internal", description = "Fleet control, with the INTERNAL_SECRET bearer."))
)]
struct InternalApi;

#[derive(OpenApi)]
#[openapi(paths(debug_kill), tags((name = "debug", description = "Only with ENABLE_DEBUG_COMMANDS.")))]
struct DebugApi;

/// The OpenAPI document of the routes [`router`] serves for `config` (the internal routes only
/// with an internal secret, the debug command only when enabled).
pub fn openapi(config: &crate::NodeConfig) -> utoipa::openapi::OpenApi {
    let mut document = NodeApi::openapi();
    document.merge(crate::history::HistoryApi::openapi());
    if config.internal_secret.is_some() {
        document.merge(InternalApi::openapi());
    }
    if config.enable_debug_commands {
        document.merge(DebugApi::openapi());
    }
    document
}

/// The node's figures: liveness, drain state, rooms and people per mode.
#[utoipa::path(get, path = "/api/health", tag = "node",
    responses((status = 200, description = "The node is alive.", body = Health)))]
async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
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
            spectator: summary.spectators,
            bot: summary.bots,
        },
        modes: summary
            .modes
            .into_iter()
            .map(|mode| ModeCounts {
                mode: mode.mode,
                rooms: mode.rooms,
                humans: mode.humans,
                spectators: mode.spectators,
                bots: mode.bots,
            })
            .collect(),
    })
}

/// Readiness for a load balancer or Kubernetes: 503 while draining or overloaded.
#[utoipa::path(get, path = "/api/ready", tag = "node",
    responses(
        (status = 200, description = "The node takes players.", body = Readiness),
        (status = 503, description = "Draining or overloaded.", body = Readiness),
    ))]
async fn ready(State(state): State<Arc<AppState>>) -> Response {
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

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, description = "Every metric of the process.", content_type = "text/plain", body = String)))]
async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
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
        let policy = coil_match::PlacementPolicy {
            soft_cap: node.config.room_soft_cap as u32,
            hard_cap: node.config.room_hard_cap as u32,
            modes: node.modes.placement_caps(),
            ..coil_match::PlacementPolicy::default()
        };
        crate::fleet::export_directory_gauges(&*link.directory, &[region], &policy).await;
    }
    state.process.collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The room's WebSocket: upgrade with a join token from `POST /api/matchmake`; the binary
/// protocol that follows is docs/protocol.md. A draining node still upgrades (a resume may
/// pass; a join is refused on the socket).
#[utoipa::path(get, path = "/api/room/{room}", tag = "node",
    params(("room" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$", description = "Room id: 1-32 of letters, digits, '-', '_' (other values answer 400).")),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open."),
        (status = 400, description = "`bad_request`: a bad room id or WebSocket handshake headers.", body = ErrorBody),
        (status = 426, description = "`upgrade_required`: not a WebSocket upgrade request.", body = ErrorBody),
        (status = 429, description = "`rate_limited` per client address (accounts rate limits).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn room_socket(
    State(state): State<Arc<AppState>>,
    Path(room): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let upgraded_at = Instant::now();
    let room = RoomId::parse(&room).map_err(|problem| AppError::BadRequest(problem.to_string()))?;
    let upgrade = upgrade?;
    // A draining node still upgrades: a player of a match that runs on may resume its seat,
    // and a join is refused over the socket with RoomDraining (the code clients act on).
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

/// A leaderboard failure as the client sees it: 503 while the database is unreachable (the
/// store fails fast then, and the cause is logged rate-limited, not once per request), 500 for
/// anything else.
pub(crate) fn store_error(error: coil_store::StoreError) -> AppError {
    if error.is_transient() {
        crate::rate_limited_warn!(cause = %error, "leaderboard unavailable");
        AppError::Unavailable("the leaderboard is unavailable; try again shortly")
    } else {
        AppError::Internal(error.into())
    }
}

#[derive(Deserialize)]
struct TopQuery {
    limit: Option<u32>,
}

/// The best scores, highest first.
#[utoipa::path(get, path = "/api/leaderboard", tag = "node",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many rows (default 10).")),
    responses(
        (status = 200, description = "The top scores.", body = TopScores),
        (status = 400, description = "`bad_request`: limit out of range.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn leaderboard_top(
    State(state): State<Arc<AppState>>,
    query: Result<Query<TopQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(AppError::BadRequest(
            "limit must be between 1 and 100".into(),
        ));
    }
    let rows = state.leaderboard.top(limit).await.map_err(store_error)?;
    Ok(Json(json!({ "scores": rows })).into_response())
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubmitScore {
    receipt: Option<String>,
}

/// Records a run from its server-signed receipt (the death frame's); idempotent. Kept for old
/// clients: scores are recorded by the server when a run ends, and this endpoint never takes a
/// number a client made up.
#[utoipa::path(post, path = "/api/leaderboard", tag = "node", request_body = SubmitScore,
    responses(
        (status = 201, description = "Recorded now.", body = Submitted),
        (status = 200, description = "Already recorded.", body = Submitted),
        (status = 403, description = "`forbidden`: no receipt, or one that is not valid.", body = ErrorBody),
        (status = 429, description = "`rate_limited` per client address (accounts rate limits).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
        (status = 503, description = "`unavailable`: the database is unreachable.", body = ErrorBody),
    ))]
async fn leaderboard_submit(
    State(state): State<Arc<AppState>>,
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
        .map_err(store_error)?;
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

fn internal_caller(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
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

#[derive(ToSchema, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DrainRequest {
    deadline_secs: Option<u64>,
}

/// Autoscaler: stop taking players, tell the ones here to finish, close rooms at the deadline.
/// The process keeps running until it is stopped (SIGTERM), so it can be deleted once empty.
/// Stops taking players and closes rooms at the deadline (autoscaler, operator).
#[utoipa::path(post, path = "/internal/drain", tag = "internal", request_body(content = Option<DrainRequest>, description = "Optional."),
    security(("internalSecret" = [])),
    responses(
        (status = 202, description = "Draining.", body = DrainAnswer),
        (status = 400, description = "`bad_request`: a body that is not a drain request (checked after the secret).", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong internal secret.", body = ErrorBody),
    ))]
async fn internal_drain(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The secret is checked before the body is read, so an unauthenticated caller learns
    // nothing from parse errors; the body is optional, so it is parsed by hand.
    if !internal_caller(&state, &headers) {
        return unauthorized();
    }
    let request = if body.is_empty() {
        DrainRequest::default()
    } else {
        match serde_json::from_slice::<DrainRequest>(&body) {
            Ok(request) => request,
            Err(problem) => {
                return AppError::BadRequest(format!("invalid drain request: {problem}"))
                    .into_response();
            }
        }
    };
    let timeout = request
        .deadline_secs
        .map_or(state.node.config.drain_timeout, |secs| {
            std::time::Duration::from_secs(secs.min(3600))
        });
    let deadline = state.node.drain_within(timeout).await;
    let remaining_ms = deadline
        .saturating_duration_since(Instant::now())
        .as_millis() as u64;
    (
        StatusCode::ACCEPTED,
        Json(json!({ "draining": true, "deadlineInMs": remaining_ms })),
    )
        .into_response()
}

/// Autoscaler: close every room now; players are told and re-matchmake.
/// Closes every room now; players are told and re-matchmake.
#[utoipa::path(post, path = "/internal/evict", tag = "internal", security(("internalSecret" = [])),
    responses(
        (status = 202, description = "Evicting.", body = EvictAnswer),
        (status = 401, description = "`unauthorized`: missing or wrong internal secret.", body = ErrorBody),
    ))]
async fn internal_evict(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !internal_caller(&state, &headers) {
        return unauthorized();
    }
    state.node.evict().await;
    (
        StatusCode::ACCEPTED,
        Json(json!({ "evicting": true, "humans": state.node.summary().humans })),
    )
        .into_response()
}

#[derive(ToSchema, Deserialize)]
struct KillRequest {
    room: String,
    name: String,
}

/// Debug builds of a deployment (`ENABLE_DEBUG_COMMANDS`): kills a player's snake.
#[utoipa::path(post, path = "/api/debug/kill", tag = "debug", request_body = KillRequest,
    responses(
        (status = 200, description = "How many snakes of that name died.", body = KillAnswer),
        (status = 404, description = "`not_found`: no such room.", body = ErrorBody),
    ))]
async fn debug_kill(
    State(state): State<Arc<AppState>>,
    body: Result<Json<KillRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(request) = body?;
    let room = RoomId::parse(&request.room)
        .map_err(|problem| AppError::BadRequest(problem.to_string()))?;
    let killed = state
        .node
        .debug(&room, &request.name, "kill")
        .await
        .ok_or(AppError::NotFound("no such room"))?;
    Ok(Json(json!({ "killed": killed })).into_response())
}
