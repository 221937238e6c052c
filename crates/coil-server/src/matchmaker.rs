//! The matchmaker's HTTP face: `POST /api/matchmake` places a player and signs a join token;
//! `POST /internal/room-heartbeat` lets nodes that cannot reach the directory store publish
//! through the matchmaker (authenticated with a shared secret).
//!
//! Placement and seat reservation happen in the directory (`coil-match`), atomically; this
//! module validates requests, signs tokens and maps outcomes to HTTP. It holds the signing key;
//! nodes only ever get the public key. The matchmaker is stateless: two of them over one Redis
//! place players consistently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use coil_api::openapi::ErrorBody;
use coil_match::{
    DirectoryError, GameMode, Heartbeat, MatchError, PlacementPolicy, PlacementRequest, Region,
    RegionReason, RoomDirectory, RoomId, TokenSigner,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::fleet::now_ms;

/// Settings of the matchmaker service.
#[derive(Debug, Clone)]
pub struct MatchmakerSettings {
    pub policy: PlacementPolicy,
    /// Lifetime of a join token (15–30 s by default); never longer than the seat reservation.
    pub token_ttl: Duration,
    /// How long a node's entries live without a new heartbeat.
    pub heartbeat_ttl: Duration,
    /// Shared secret for `/internal/room-heartbeat`; `None` disables the endpoint (404).
    pub internal_secret: Option<String>,
    /// Longest a matchmake may take, every directory call and retry included; past it the
    /// player gets 503 + `Retry-After` instead of a hanging request.
    pub matchmake_deadline: Duration,
    /// Browser origins allowed to call the matchmaker and accounts routes (`CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
}

impl MatchmakerSettings {
    /// Default of `matchmake_deadline`: a few directory calls at their 250 ms deadline.
    pub const DEFAULT_MATCHMAKE_DEADLINE: Duration = Duration::from_millis(800);
}

pub struct Matchmaker {
    pub directory: Arc<dyn RoomDirectory>,
    pub(crate) signer: TokenSigner,
    pub settings: MatchmakerSettings,
    /// Accounts: `Authorization: Bearer` matchmakes place the account (guests too), rate
    /// limits apply, and anonymous play needs the platform's switch. `None`: anonymous only.
    pub(crate) accounts: Option<coil_api::Platform>,
    /// The modes whose custom lobbies this matchmaker creates (their rules checked here).
    pub(crate) lobby_modes: Vec<Arc<dyn coil_game::GameMode>>,
    /// The live lobby feed's shared pollers.
    pub(crate) feeds: crate::lobbies::Feeds,
}

impl Matchmaker {
    pub fn new(
        directory: Arc<dyn RoomDirectory>,
        signer: TokenSigner,
        settings: MatchmakerSettings,
    ) -> Arc<Matchmaker> {
        Matchmaker::with_accounts(directory, signer, settings, None)
    }

    /// A matchmaker that knows accounts (see [`Matchmaker::accounts`]).
    pub fn with_accounts(
        directory: Arc<dyn RoomDirectory>,
        signer: TokenSigner,
        settings: MatchmakerSettings,
        accounts: Option<coil_api::Platform>,
    ) -> Arc<Matchmaker> {
        Arc::new(Matchmaker {
            directory,
            signer,
            settings,
            accounts,
            lobby_modes: crate::modes::with_lobbies(),
            feeds: crate::lobbies::Feeds::default(),
        })
    }
}

/// Largest matchmake or heartbeat body (a heartbeat of 4,096 rooms is ~1 MB).
const HEARTBEAT_BODY_LIMIT: usize = 2 * 1024 * 1024;
const MATCHMAKE_BODY_LIMIT: usize = 4 * 1024;

pub fn routes(matchmaker: Arc<Matchmaker>) -> Router {
    Router::new()
        .route(
            "/api/matchmake",
            post(matchmake).layer(DefaultBodyLimit::max(MATCHMAKE_BODY_LIMIT)),
        )
        .route(
            "/internal/room-heartbeat",
            post(room_heartbeat).layer(DefaultBodyLimit::max(HEARTBEAT_BODY_LIMIT)),
        )
        .with_state(matchmaker.clone())
        .merge(crate::lobbies::routes(matchmaker))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MatchmakeBody {
    /// 1-64 of letters, digits, '-', '_', '.', ':'; random when absent. Ignored with a bearer
    /// token (the account plays as itself); an account id here is refused.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    player_id: Option<String>,
    /// A display name (`player` when absent); Unicode, checked for look-alikes.
    player_name: Option<String>,
    /// A region id; the account's preferred region is the fallback.
    #[schema(pattern = "^[A-Za-z0-9_-]{0,32}$")]
    preferred_region: Option<String>,
    /// A room id to join (a friend's room); 409 when it cannot take the player.
    #[schema(pattern = "^[A-Za-z0-9_-]{0,32}$")]
    room_override: Option<String>,
    /// The game mode (`arena` when absent, so clients from before modes keep working); a mode
    /// no node runs is 400 `unknown_mode`.
    #[schema(pattern = "^[a-z0-9-]{0,16}$")]
    mode: Option<String>,
    /// `player` (when absent) or `spectator`: signed into the join token, so the room seats
    /// the client as what it asked to be (a mode without spectators refuses the join).
    #[schema(pattern = "^(player|spectator)?$")]
    role: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MatchmakeAnswer {
    pub(crate) room_id: String,
    ws_url: String,
    /// Ed25519-signed, single use; send it in the WebSocket's join frame.
    join_token: String,
    /// Unix milliseconds after which the token is refused.
    expires_at: u64,
    region: String,
    mode: String,
    /// Why the player got `region`: preferred, neighbour, fallback or room.
    #[schema(value_type = RegionReasonSchema)]
    region_reason: RegionReason,
}

/// Why a player got its region (`coil_match::RegionReason`, which stays free of utoipa).
#[derive(ToSchema)]
#[schema(as = RegionReason, rename_all = "camelCase")]
#[allow(dead_code)] // A schema only.
enum RegionReasonSchema {
    Preferred,
    Neighbour,
    Fallback,
    Room,
}

/// The `/internal/room-heartbeat` body (`coil_match::Heartbeat`): the node and all its rooms.
/// Described loosely here; `Heartbeat::validate` is the authority.
#[derive(ToSchema)]
#[schema(as = Heartbeat)]
#[allow(dead_code)]
struct HeartbeatSchema {
    /// `{nodeId, region, publicUrl, state, roomCapacity, rooms, humans, modes?}`.
    #[schema(value_type = Object)]
    node: (),
    /// `[{roomId, region, nodeId, humans, bots, state, tickP95Ms, joinable, mode?}]`, at most
    /// 4,096.
    #[schema(value_type = Vec<Object>)]
    rooms: (),
}

#[derive(OpenApi)]
#[openapi(
    paths(matchmake, room_heartbeat),
    components(schemas(ErrorBody)),
    tags(
        (name = "matchmaker", description = "Placement and join tokens."),
        (name = "internal", description = "Fleet control, with the INTERNAL_SECRET bearer."),
    )
)]
struct MatchmakerApi;

/// The OpenAPI document of [`routes`]: `/api/matchmake` and `/internal/room-heartbeat` (which
/// answers 404 unless an internal secret is set, and is listed only then).
pub fn openapi(settings: &MatchmakerSettings) -> utoipa::openapi::OpenApi {
    let mut document = MatchmakerApi::openapi();
    document.merge(crate::lobbies::openapi());
    if settings.internal_secret.is_none() {
        document.paths.paths.remove("/internal/room-heartbeat");
    }
    document
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

fn valid_player_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Places a player in a room of its mode and region and signs a join token for it. With
/// accounts, `Authorization: Bearer <accessToken>` plays as the account (anonymous play needs
/// the platform's switch).
#[utoipa::path(post, path = "/api/matchmake", tag = "matchmaker", request_body = MatchmakeBody,
    security((), ("accessToken" = [])),
    responses(
        (status = 200, description = "A seat is reserved until `expiresAt`.", body = MatchmakeAnswer),
        (status = 400, description = "`bad_request` (a field is wrong) or `unknown_mode`.", body = ErrorBody),
        (status = 401, description = "A refused access token, or `unauthenticated` where anonymous play is off.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 409, description = "`room_full`, `room_draining`, `room_not_joinable` or `room_unknown` for a `roomOverride`, with `suggestedRoom`.", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with accounts: per address and per account).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
        (status = 503, description = "`no_capacity`, `contended` or `directory_unavailable`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before matchmaking again"))),
    ))]
async fn matchmake(
    State(matchmaker): State<Arc<Matchmaker>>,
    peer: coil_api::Peer,
    headers: HeaderMap,
    body: Result<Json<MatchmakeBody>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    // With accounts, the platform decides who this is (a verified bearer token, or anonymous
    // if allowed) and applies the matchmake rate limits, before any placement work.
    let account = match &matchmaker.accounts {
        None => None,
        Some(platform) => match platform.admit_matchmake(peer.0, &headers).await {
            Ok(claims) => claims,
            Err(refused) => {
                crate::metrics::matchmake_request("refused", None);
                return refused.into_response();
            }
        },
    };
    let accounts_enabled = matchmaker.accounts.is_some();
    let (result, response) = matchmake_inner(&matchmaker, body, account, accounts_enabled).await;
    crate::metrics::matchmake_request(result, Some(started.elapsed()));
    response
}

async fn matchmake_inner(
    matchmaker: &Matchmaker,
    body: Result<Json<MatchmakeBody>, JsonRejection>,
    account: Option<coil_auth::AccessClaims>,
    accounts_enabled: bool,
) -> (&'static str, Response) {
    let bad = |message: String| {
        (
            "bad_request",
            error(StatusCode::BAD_REQUEST, "bad_request", message),
        )
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return bad(rejection.body_text()),
    };
    let player_name = match body.player_name.as_deref() {
        None => "player".to_string(),
        Some(name) => match coil_store::validate_player_name(name) {
            Ok(name) => name,
            Err(problem) => return bad(format!("playerName: {problem}")),
        },
    };
    let player_id = match body.player_id {
        None => format!("anon-{:016x}", rand::random::<u64>()),
        // An anonymous player must not pass as an account: account ids come only from a
        // verified access token.
        Some(id) if accounts_enabled && coil_store::AccountId::parse(&id).is_ok() => {
            return bad("playerId: account ids come from the access token".into());
        }
        Some(id) if valid_player_id(&id) => id,
        Some(_) => {
            return bad(
                "playerId: use 1-64 characters of letters, digits, '-', '_', '.', ':'".into(),
            );
        }
    };
    // A verified account plays as itself (guests too), whatever the body says.
    let (player_id, player_name) = match &account {
        Some(claims) => (claims.account_id.to_string(), claims.display_name.clone()),
        None => (player_id, player_name),
    };
    // The body's region wins; an account's preferred region (a token claim) is the fallback.
    let account_region = account
        .as_ref()
        .and_then(|claims| claims.preferred_region.as_deref());
    let preferred_region = match body.preferred_region.as_deref().or(account_region) {
        None | Some("") => None,
        Some(region) => match Region::parse(region) {
            Ok(region) => Some(region),
            Err(problem) => return bad(format!("preferredRegion: {problem}")),
        },
    };
    let room_override = match body.room_override.as_deref() {
        None | Some("") => None,
        Some(room) => match RoomId::parse(room) {
            Ok(room) => Some(room),
            Err(problem) => return bad(format!("roomOverride: {problem}")),
        },
    };
    let mode = match body.mode.as_deref() {
        None | Some("") => GameMode::arena(),
        Some(mode) => match GameMode::parse(mode) {
            Ok(mode) => mode,
            Err(problem) => return bad(format!("mode: {problem}")),
        },
    };
    // The token's role byte: 0 player, 1 spectator (coil_match::token).
    let role = match body.role.as_deref() {
        None | Some("") | Some("player") => 0,
        Some("spectator") => 1,
        Some(_) => return bad("role: use \"player\" or \"spectator\"".to_string()),
    };
    let request = PlacementRequest {
        preferred_region,
        room_override,
        mode,
        ..PlacementRequest::default()
    };
    let seat = Seat {
        player_id,
        player_name,
        role,
        ..Seat::default()
    };
    match reserve_and_sign(matchmaker, &request, seat).await {
        Ok(answer) => ("ok", Json(answer).into_response()),
        Err(refused) => refused,
    }
}

/// Who a seat is for and what its token says beyond the placement (a custom lobby's creator
/// carries the lobby's rules and password hash).
#[derive(Debug, Default)]
pub(crate) struct Seat {
    pub player_id: String,
    pub player_name: String,
    /// 0 player, 1 spectator.
    pub role: u8,
    pub host: bool,
    pub private: bool,
    pub password: bool,
    pub rules: Option<String>,
    pub password_hash: Option<String>,
}

/// Places `request` (within the matchmake deadline) and signs the seat's join token: the
/// answer of `POST /api/matchmake`, or the refusal as (metrics result, response).
pub(crate) async fn reserve_and_sign(
    matchmaker: &Matchmaker,
    request: &PlacementRequest,
    seat: Seat,
) -> Result<MatchmakeAnswer, (&'static str, Response)> {
    let now = now_ms();
    let placing = matchmaker
        .directory
        .matchmake(request, &matchmaker.settings.policy, now);
    let placement =
        match tokio::time::timeout(matchmaker.settings.matchmake_deadline, placing).await {
            Ok(Ok(placement)) => placement,
            Ok(Err(failure)) => return Err(match_error(failure)),
            // A reservation the directory made after the deadline simply expires unused.
            Err(_) => {
                return Err(match_error(MatchError::Directory(
                    DirectoryError::Timeout {
                        operation: "matchmake",
                    },
                )));
            }
        };
    let region_reason = matchmaker.settings.policy.region_reason(
        request.preferred_region.as_ref(),
        request.room_override.is_some(),
        &placement.region,
    );
    let mut claims = placement.join_claims(
        &seat.player_id,
        &seat.player_name,
        matchmaker.settings.token_ttl,
        now,
    );
    claims.role = seat.role;
    claims.host = seat.host;
    claims.private = seat.private;
    claims.password = seat.password;
    claims.rules = seat.rules;
    claims.password_hash = seat.password_hash;
    let token = match matchmaker.signer.sign(&claims) {
        Ok(token) => token,
        Err(problem) => {
            tracing::error!(cause = %problem, "failed to sign a join token");
            return Err((
                "error",
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                ),
            ));
        }
    };
    crate::metrics::matchmake_placement(region_reason.as_str());
    Ok(MatchmakeAnswer {
        room_id: placement.room_id.to_string(),
        ws_url: placement.ws_url(),
        join_token: token,
        expires_at: claims.expires_at_ms,
        region: placement.region.to_string(),
        mode: placement.mode.to_string(),
        region_reason,
    })
}

fn match_error(failure: MatchError) -> (&'static str, Response) {
    let status =
        StatusCode::from_u16(failure.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = failure.code();
    let result = match &failure {
        MatchError::OverrideConflict { .. } => "override_conflict",
        MatchError::NoCapacity { .. } => "no_capacity",
        MatchError::Contended { .. } => "contended",
        MatchError::UnknownMode => "unknown_mode",
        // Shed without touching Redis (reconnecting, breaker open, too many in flight): the
        // cause is already logged once by the directory, not once per request.
        MatchError::Directory(DirectoryError::Unavailable { .. }) => "shed",
        MatchError::Directory(problem) => {
            crate::rate_limited_warn!(cause = %problem, "directory unavailable during matchmake");
            "error"
        }
    };
    let mut body = json!({ "error": { "code": code, "message": failure.to_string() } });
    if let MatchError::OverrideConflict { suggested, .. } = &failure {
        body["suggestedRoom"] = json!(suggested.as_ref().map(|room| room.to_string()));
    }
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = failure.retry_after_s() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    (result, response)
}

/// What `coil matchmaker` serves besides placement: its health, readiness and metrics.
pub(crate) struct ServiceState {
    pub started: Instant,
    pub directory: Arc<dyn RoomDirectory>,
    /// Every region the directory gauges cover.
    pub regions: Vec<Region>,
    pub policy: PlacementPolicy,
    pub process: metrics_process::Collector,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// `GET /api/health` and `GET /api/ready` of the matchmaker process.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ServiceHealth {
    /// Always `ok`: a matchmaker that answers is ready.
    #[schema(value_type = String)]
    status: &'static str,
    /// Always `matchmaker`.
    #[schema(value_type = String)]
    role: &'static str,
    #[schema(value_type = String)]
    version: &'static str,
    uptime_seconds: u64,
}

pub(crate) fn service_routes(state: ServiceState) -> Router {
    Router::new()
        .route("/api/health", axum::routing::get(service_health))
        .route("/api/ready", axum::routing::get(service_ready))
        .route("/metrics", axum::routing::get(service_metrics))
        .with_state(Arc::new(state))
}

fn health_of(state: &ServiceState) -> Json<ServiceHealth> {
    Json(ServiceHealth {
        status: "ok",
        role: "matchmaker",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// The matchmaker is alive.
#[utoipa::path(get, path = "/api/health", tag = "matchmaker",
    responses((status = 200, description = "Alive.", body = ServiceHealth)))]
async fn service_health(State(state): State<Arc<ServiceState>>) -> Json<ServiceHealth> {
    health_of(&state)
}

/// The matchmaker takes requests (it keeps no state of its own to wait for).
#[utoipa::path(get, path = "/api/ready", tag = "matchmaker",
    responses((status = 200, description = "Ready.", body = ServiceHealth)))]
async fn service_ready(State(state): State<Arc<ServiceState>>) -> Json<ServiceHealth> {
    health_of(&state)
}

/// Prometheus metrics, the directory's gauges included.
#[utoipa::path(get, path = "/metrics", tag = "matchmaker",
    responses((status = 200, description = "Every metric of the process.", content_type = "text/plain", body = String)))]
async fn service_metrics(State(state): State<Arc<ServiceState>>) -> String {
    state.process.collect();
    crate::fleet::export_directory_gauges(&*state.directory, &state.regions, &state.policy).await;
    state.metrics.render()
}

#[derive(OpenApi)]
#[openapi(paths(service_health, service_ready, service_metrics))]
struct ServiceApi;

/// The OpenAPI document of [`service_routes`].
pub(crate) fn service_openapi() -> utoipa::openapi::OpenApi {
    ServiceApi::openapi()
}

/// Constant-time comparison of the bearer secret.
pub(crate) fn authorized(headers: &HeaderMap, secret: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = given.strip_prefix("Bearer ") else {
        return false;
    };
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A node's heartbeat, for nodes that cannot reach the directory store themselves.
#[utoipa::path(post, path = "/internal/room-heartbeat", tag = "internal", request_body = HeartbeatSchema,
    security(("internalSecret" = [])),
    responses(
        (status = 204, description = "Stored."),
        (status = 400, description = "`bad_request`: the heartbeat does not validate.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong internal secret.", body = ErrorBody),
        (status = 503, description = "`directory_unavailable`.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn room_heartbeat(
    State(matchmaker): State<Arc<Matchmaker>>,
    headers: HeaderMap,
    body: Result<Json<Heartbeat>, JsonRejection>,
) -> Response {
    let Some(secret) = &matchmaker.settings.internal_secret else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    };
    if !authorized(&headers, secret) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong internal secret",
        );
    }
    let heartbeat = match body {
        Ok(Json(heartbeat)) => heartbeat,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            );
        }
    };
    if let Err(problem) = heartbeat.validate() {
        return error(StatusCode::BAD_REQUEST, "bad_request", problem.to_string());
    }
    match matchmaker
        .directory
        .heartbeat(&heartbeat, matchmaker.settings.heartbeat_ttl, now_ms())
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => {
            crate::rate_limited_warn!(cause = %problem, "heartbeat could not be stored");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "directory_unavailable",
                "directory unavailable",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_secrets_compare_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "s3cret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(authorized(&headers, "s3cret"));
        assert!(!authorized(&headers, "s3cre"));
        assert!(!authorized(&headers, "s3cret!"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert!(!authorized(&headers, "s3cret"));
    }

    #[test]
    fn player_ids_are_bounded() {
        assert!(valid_player_id("user:42.a-b_c"));
        assert!(!valid_player_id(""));
        assert!(!valid_player_id(&"x".repeat(65)));
        assert!(!valid_player_id("a b"));
    }
}
