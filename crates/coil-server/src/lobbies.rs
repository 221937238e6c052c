//! The lobby routes: browse (`GET /api/lobbies`), create (`POST /api/lobbies`), look at one
//! (`GET /api/lobbies/{id}`), join (`POST /api/lobbies/{id}/join`) and invite
//! (`POST /api/lobbies/{id}/invites`).
//!
//! A lobby is a match room in its waiting phase; its node reports it to the directory (map,
//! size, phase, host, private, password) and the browser pages through the directory's lobby
//! index (`coil_match::lobby`). Creating a custom lobby validates its settings with the mode
//! (`GameMode::lobby_rules`), opens a fresh room and signs the creator's token with the rules
//! and the host flag: the node creates the room with them when the creator connects.
//!
//! Private lobbies keep no state here, so any number of API replicas serve them: the password's
//! Argon2id hash travels in the creator's token to the node, which publishes it to the
//! directory (never in an answer); an invite code is signed with the matchmaker's key over the
//! room id and an expiry. A wrong password is rate-limited per client and lobby before the
//! Argon2 check runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coil_api::openapi::ErrorBody;
use coil_auth::{AccessClaims, RateRule};
use coil_match::{
    GameMode, LobbyCursor, LobbyQuery, PlacementRequest, Region, RoomId, RoomStatus, list_lobbies,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::fleet::now_ms;
use crate::matchmaker::{MatchmakeAnswer, Matchmaker, Seat, error, reserve_and_sign};

/// How long an invite code lets its holder in.
pub const INVITE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Password attempts per client address and lobby, counted before Argon2 runs (so a guesser
/// costs at most this many hashes a minute); roomy enough for friends behind one NAT.
const PASSWORD_ATTEMPTS: RateRule = RateRule {
    name: "lobby_password",
    burst: 10,
    period: Duration::from_secs(60),
};
const BODY_LIMIT: usize = 4 * 1024;
const MAX_SETTINGS: usize = 16;
const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=64;

pub fn routes(matchmaker: Arc<Matchmaker>) -> Router {
    Router::new()
        .route(
            "/api/lobbies",
            get(browse)
                .post(create)
                .layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/api/lobbies/feed", get(feed))
        .route("/api/lobbies/{id}", get(lobby))
        .route(
            "/api/lobbies/{id}/join",
            post(join).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/api/lobbies/{id}/invites", post(invite))
        .with_state(matchmaker)
}

#[derive(OpenApi)]
#[openapi(
    paths(browse, feed, create, lobby, join, invite),
    components(schemas(ErrorBody, Lobby, LobbyPageBody, CreateBody, CreatedLobby, JoinBody, Invite)),
    tags((name = "lobbies", description = "The lobby browser, custom and private lobbies."))
)]
struct LobbiesApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    LobbiesApi::openapi()
}

/// A lobby as the browser shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Lobby {
    id: String,
    mode: String,
    region: String,
    map: String,
    players: u32,
    max_players: u32,
    /// `waiting`, `starting`, `in_progress` or `ending`.
    phase: String,
    private: bool,
    password: bool,
    /// Created with custom rules (not a quick-play room).
    custom: bool,
    /// The host's display name (`null`: a quick-play room, or nobody hosts).
    host: Option<String>,
    /// The host's player id.
    host_id: Option<String>,
}

impl Lobby {
    fn of(room: RoomStatus) -> Option<Lobby> {
        let lobby = room.lobby?;
        Some(Lobby {
            id: room.room_id.to_string(),
            mode: room.mode.to_string(),
            region: room.region.to_string(),
            map: lobby.map,
            players: lobby.players,
            max_players: lobby.max_players,
            phase: lobby.phase,
            private: lobby.private,
            password: lobby.password,
            custom: lobby.custom,
            host: lobby.host,
            host_id: lobby.host_id,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct BrowseParams {
    /// The mode (`breach` when absent).
    mode: Option<String>,
    /// One region; every region the matchmaker knows when absent.
    region: Option<String>,
    map: Option<String>,
    /// Leave out full lobbies.
    not_full: Option<bool>,
    /// Leave out lobbies whose match has started.
    not_started: Option<bool>,
    /// Leave out lobbies with a password.
    no_password: Option<bool>,
    /// 1-100, 20 when absent.
    limit: Option<usize>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct LobbyPageBody {
    lobbies: Vec<Lobby>,
    /// Pass as `cursor` for the next page; `null` at the end.
    next_cursor: Option<String>,
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "lobby_unknown", "no such lobby")
}

/// The `mode` field or parameter (`breach` when absent), or what is wrong with it.
fn mode_param(mode: Option<&str>) -> Result<GameMode, String> {
    GameMode::parse(mode.filter(|mode| !mode.is_empty()).unwrap_or("breach"))
        .map_err(|problem| format!("mode: {problem}"))
}

/// The `region` parameter: that one region, or every region placement knows when absent.
fn regions_param(matchmaker: &Matchmaker, region: Option<&str>) -> Result<Vec<Region>, String> {
    match region {
        None | Some("") => Ok(all_regions(matchmaker)),
        Some(region) => Region::parse(region)
            .map(|region| vec![region])
            .map_err(|problem| format!("region: {problem}")),
    }
}

/// Every region placement knows, the default first.
fn all_regions(matchmaker: &Matchmaker) -> Vec<Region> {
    let policy = &matchmaker.settings.policy;
    let mut regions = vec![policy.default_region.clone()];
    for (region, neighbours) in &policy.nearest_regions {
        for region in std::iter::once(region).chain(neighbours) {
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
    }
    regions
}

/// Lists lobbies of a mode, filtered, one page at a time.
#[utoipa::path(get, path = "/api/lobbies", tag = "lobbies", params(BrowseParams),
    responses(
        (status = 200, description = "One page of lobbies.", body = LobbyPageBody),
        (status = 400, description = "`bad_request`: a parameter is wrong.", body = ErrorBody),
        (status = 503, description = "`directory_unavailable`.", body = ErrorBody),
    ))]
async fn browse(
    State(matchmaker): State<Arc<Matchmaker>>,
    params: Result<Query<BrowseParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return bad("a query parameter is malformed (booleans are true or false)");
    };
    let mode = match mode_param(params.mode.as_deref()) {
        Ok(mode) => mode,
        Err(problem) => return bad(problem),
    };
    let regions = match regions_param(&matchmaker, params.region.as_deref()) {
        Ok(regions) => regions,
        Err(problem) => return bad(problem),
    };
    let limit = params.limit.unwrap_or(20);
    if !(1..=coil_match::lobby::MAX_PAGE).contains(&limit) {
        return bad("limit: use 1 to 100");
    }
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => match LobbyCursor::parse(text) {
            Some(cursor) => Some(cursor),
            None => return bad("cursor: use the nextCursor of a previous page"),
        },
    };
    if params.map.as_ref().is_some_and(|map| map.len() > 64) {
        return bad("map: at most 64 characters");
    }
    let query = LobbyQuery {
        mode,
        regions,
        map: params.map.filter(|map| !map.is_empty()),
        not_full: params.not_full.unwrap_or(false),
        not_started: params.not_started.unwrap_or(false),
        no_password: params.no_password.unwrap_or(false),
        limit,
        after,
    };
    match list_lobbies(matchmaker.directory.as_ref(), &query, now_ms()).await {
        Ok(page) => Json(LobbyPageBody {
            lobbies: page.lobbies.into_iter().filter_map(Lobby::of).collect(),
            next_cursor: page.next.map(|cursor| cursor.encode()),
        })
        .into_response(),
        Err(problem) => unavailable(problem),
    }
}

fn unavailable(problem: coil_match::DirectoryError) -> Response {
    crate::rate_limited_warn!(cause = %problem, "directory unavailable for the lobby routes");
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "directory_unavailable",
        "the room directory is unavailable; try again shortly",
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(1),
    );
    response
}

/// The lobby in room `id` as the directory has it, or the answer to give instead.
async fn find(matchmaker: &Matchmaker, id: &str) -> Result<RoomStatus, Response> {
    let Ok(room) = RoomId::parse(id) else {
        return Err(not_found());
    };
    match matchmaker.directory.room_status(&room, now_ms()).await {
        Ok(Some(status)) if status.lobby.is_some() => Ok(status),
        Ok(_) => Err(not_found()),
        Err(problem) => Err(unavailable(problem)),
    }
}

/// One lobby.
#[utoipa::path(get, path = "/api/lobbies/{id}", tag = "lobbies",
    params(("id" = String, Path, description = "The lobby's room id")),
    responses(
        (status = 200, description = "The lobby.", body = Lobby),
        (status = 404, description = "`lobby_unknown`.", body = ErrorBody),
        (status = 503, description = "`directory_unavailable`.", body = ErrorBody),
    ))]
async fn lobby(State(matchmaker): State<Arc<Matchmaker>>, Path(id): Path<String>) -> Response {
    match find(&matchmaker, &id).await {
        Ok(status) => match Lobby::of(status) {
            Some(lobby) => Json(lobby).into_response(),
            None => not_found(),
        },
        Err(refused) => refused,
    }
}

/// The caller's identity for a lobby route: the account of a verified bearer token, or an
/// anonymous player where the platform allows anonymous play (or has no accounts at all).
async fn caller(
    matchmaker: &Matchmaker,
    peer: &coil_api::Peer,
    headers: &HeaderMap,
) -> Result<Option<AccessClaims>, Response> {
    match &matchmaker.accounts {
        None => Ok(None),
        Some(platform) => platform
            .admit_matchmake(peer.0, headers)
            .await
            .map_err(IntoResponse::into_response),
    }
}

fn anonymous_seat(name: Option<&str>) -> Result<Seat, String> {
    let player_name = match name {
        None => "player".to_owned(),
        Some(name) => {
            coil_store::validate_player_name(name).map_err(|p| format!("playerName: {p}"))?
        }
    };
    Ok(Seat {
        player_id: format!("anon-{:016x}", rand::random::<u64>()),
        player_name,
        ..Seat::default()
    })
}

/// The seat of an account (as itself) or of an anonymous player named `name`, or what is
/// wrong with the name.
fn seat_of(claims: Option<&AccessClaims>, name: Option<&str>) -> Result<Seat, String> {
    match claims {
        Some(claims) => Ok(Seat {
            player_id: claims.account_id.to_string(),
            player_name: claims.display_name.clone(),
            ..Seat::default()
        }),
        None => anonymous_seat(name),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    /// The mode (`breach` when absent); it must have custom lobbies.
    mode: Option<String>,
    /// Where to open the lobby (the account's or the default region when absent).
    region: Option<String>,
    /// Quick play never fills a private lobby; a password or an invite gets in.
    #[serde(default)]
    private: bool,
    /// 8-64 characters; makes the lobby private.
    password: Option<String>,
    /// The mode's rules, e.g. breach's `{"map":"foundry","killLimit":30,"timeLimitSecs":600,
    /// "friendlyFire":false,"mapVote":true,"maxPlayers":8}`; absent keys take the defaults.
    #[schema(value_type = Object)]
    settings: Option<BTreeMap<String, serde_json::Value>>,
    /// A display name for anonymous creators (accounts play as themselves).
    player_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedLobby {
    lobby_id: String,
    /// An invite for a private lobby (`null` for a public one).
    invite_code: Option<String>,
    invite_expires_at: Option<u64>,
    /// The creator's seat: connect with it to open the lobby.
    #[serde(flatten)]
    join: MatchmakeAnswer,
}

/// The settings object as `key=value;…` text (sorted keys), for `GameMode::lobby_rules`.
fn settings_text(settings: &BTreeMap<String, serde_json::Value>) -> Result<String, String> {
    if settings.len() > MAX_SETTINGS {
        return Err(format!("at most {MAX_SETTINGS} settings"));
    }
    let mut pairs = Vec::with_capacity(settings.len());
    for (key, value) in settings {
        let value = match value {
            serde_json::Value::Bool(flag) => flag.to_string(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::String(text) => text.clone(),
            _ => return Err(format!("{key}: use a number, a boolean or a string")),
        };
        let clean = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && !text.contains([';', '='])
                && !text.chars().any(char::is_control)
        };
        if !clean(key) || !clean(&value) {
            return Err(format!(
                "{key}: keys and values are 1-64 characters without ';' or '='"
            ));
        }
        pairs.push(format!("{key}={value}"));
    }
    Ok(pairs.join(";"))
}

/// Opens a custom lobby and seats its creator as the host.
#[utoipa::path(post, path = "/api/lobbies", tag = "lobbies", request_body = CreateBody,
    security((), ("accessToken" = [])),
    responses(
        (status = 201, description = "The lobby and the creator's seat.", body = CreatedLobby),
        (status = 400, description = "`bad_request` (a field is wrong), `bad_settings` (the mode refused a rule) or `no_custom_lobbies`.", body = ErrorBody),
        (status = 401, description = "A refused access token, or `unauthenticated` where anonymous play is off.", body = ErrorBody),
        (status = 429, description = "`rate_limited`.", body = ErrorBody),
        (status = 503, description = "`no_capacity` or `directory_unavailable`.", body = ErrorBody),
    ))]
async fn create(
    State(matchmaker): State<Arc<Matchmaker>>,
    peer: coil_api::Peer,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    let claims = match caller(&matchmaker, &peer, &headers).await {
        Ok(claims) => claims,
        Err(refused) => return refused,
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return bad(rejection.body_text()),
    };
    let mode = match mode_param(body.mode.as_deref()) {
        Ok(mode) => mode,
        Err(problem) => return bad(problem),
    };
    let Some(game) = matchmaker
        .lobby_modes
        .iter()
        .find(|game| game.spec().name == mode.as_str())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "no_custom_lobbies",
            format!("mode {mode} has no custom lobbies"),
        );
    };
    if matchmaker.settings.policy.caps(&mode).is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_mode",
            "no node runs this mode",
        );
    }
    let text = match settings_text(&body.settings.unwrap_or_default()) {
        Ok(text) => text,
        Err(problem) => return bad(format!("settings: {problem}")),
    };
    let rules = match game.lobby_rules(&text) {
        Ok(rules) => rules,
        Err(problem) => return error(StatusCode::BAD_REQUEST, "bad_settings", problem),
    };
    let preferred_region = match body
        .region
        .as_deref()
        .or(claims.as_ref().and_then(|c| c.preferred_region.as_deref()))
    {
        None | Some("") => None,
        Some(region) => match Region::parse(region) {
            Ok(region) => Some(region),
            Err(problem) => return bad(format!("region: {problem}")),
        },
    };
    let password_hash = match body.password.as_deref() {
        None => None,
        Some(password) if !PASSWORD_CHARS.contains(&password.chars().count()) => {
            return bad("password: use 8 to 64 characters");
        }
        Some(password) if password.chars().any(char::is_control) => {
            return bad("password: no control characters");
        }
        Some(password) => {
            let Some(platform) = &matchmaker.accounts else {
                return bad("password: lobby passwords need the accounts platform");
            };
            match platform.hash_secret(password).await {
                Ok(hash) => Some(hash),
                Err(refused) => return refused.into_response(),
            }
        }
    };
    let private = body.private || password_hash.is_some();
    let mut seat = match seat_of(claims.as_ref(), body.player_name.as_deref()) {
        Ok(seat) => seat,
        Err(problem) => return bad(problem),
    };
    seat.host = true;
    seat.private = private;
    seat.password = password_hash.is_some();
    seat.rules = Some(rules.normalized);
    seat.password_hash = password_hash;
    let request = PlacementRequest {
        preferred_region,
        mode,
        fresh_room: true,
        private,
        ..PlacementRequest::default()
    };
    let join = match reserve_and_sign(&matchmaker, &request, seat).await {
        Ok(answer) => answer,
        Err((_, refused)) => return refused,
    };
    let (invite_code, invite_expires_at) = if private {
        let expires_at = now_ms().saturating_add(INVITE_TTL.as_millis() as u64);
        (
            Some(matchmaker.signer.sign_invite(&join.room_id, expires_at)),
            Some(expires_at),
        )
    } else {
        (None, None)
    };
    let created = CreatedLobby {
        lobby_id: join.room_id.clone(),
        invite_code,
        invite_expires_at,
        join,
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinBody {
    /// A private lobby's password.
    password: Option<String>,
    /// An invite code to a private lobby.
    invite_code: Option<String>,
    /// A display name for anonymous players (accounts play as themselves).
    player_name: Option<String>,
}

/// Joins a lobby: the same answer as `POST /api/matchmake`, for this lobby's room.
#[utoipa::path(post, path = "/api/lobbies/{id}/join", tag = "lobbies", request_body = JoinBody,
    security((), ("accessToken" = [])),
    params(("id" = String, Path, description = "The lobby's room id")),
    responses(
        (status = 200, description = "A seat in the lobby until `expiresAt`.", body = MatchmakeAnswer),
        (status = 400, description = "`bad_request`.", body = ErrorBody),
        (status = 403, description = "`lobby_private` (no password or invite given), `wrong_password`, `invite_invalid` or `invite_expired`.", body = ErrorBody),
        (status = 404, description = "`lobby_unknown`.", body = ErrorBody),
        (status = 409, description = "`room_full` or `room_not_joinable` (the match started).", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many wrong passwords for this lobby.", body = ErrorBody),
        (status = 503, description = "`directory_unavailable`.", body = ErrorBody),
    ))]
async fn join(
    State(matchmaker): State<Arc<Matchmaker>>,
    peer: coil_api::Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<JoinBody>, JsonRejection>,
) -> Response {
    let claims = match caller(&matchmaker, &peer, &headers).await {
        Ok(claims) => claims,
        Err(refused) => return refused,
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => return bad(rejection.body_text()),
    };
    let status = match find(&matchmaker, &id).await {
        Ok(status) => status,
        Err(refused) => return refused,
    };
    let Some(lobby) = status.lobby.as_ref() else {
        return not_found();
    };
    // The room's caps are the mode's; a lobby's own size is the game's rule, so a full lobby
    // is refused here instead of with a token the room would refuse.
    if lobby.is_full() {
        return error(StatusCode::CONFLICT, "room_full", "this lobby is full");
    }
    if lobby.private {
        let is_host = claims.as_ref().is_some_and(|claims| {
            lobby.host_id.as_deref() == Some(claims.account_id.to_string().as_str())
        });
        if !is_host {
            if let Err(refused) = admit_private(&matchmaker, &peer, &headers, &status, &body).await
            {
                return refused;
            }
        }
    }
    let mut seat = match seat_of(claims.as_ref(), body.player_name.as_deref()) {
        Ok(seat) => seat,
        Err(problem) => return bad(problem),
    };
    seat.private = lobby.private;
    let request = PlacementRequest {
        room_override: Some(status.room_id.clone()),
        mode: status.mode.clone(),
        ..PlacementRequest::default()
    };
    match reserve_and_sign(&matchmaker, &request, seat).await {
        Ok(answer) => Json(answer).into_response(),
        Err((_, refused)) => refused,
    }
}

/// A private lobby lets in an unexpired invite to it, or its password (rate-limited per
/// client and lobby before Argon2 runs).
async fn admit_private(
    matchmaker: &Matchmaker,
    peer: &coil_api::Peer,
    headers: &HeaderMap,
    status: &RoomStatus,
    body: &JoinBody,
) -> Result<(), Response> {
    let forbidden = |code: &str, message: &str| error(StatusCode::FORBIDDEN, code, message);
    if let Some(code) = body.invite_code.as_deref() {
        return match matchmaker
            .signer
            .verify_invite(code, status.room_id.as_str(), now_ms())
        {
            Ok(()) => Ok(()),
            Err(coil_match::TokenError::Expired) => {
                Err(forbidden("invite_expired", "this invite has expired"))
            }
            Err(_) => Err(forbidden(
                "invite_invalid",
                "this invite is not for this lobby",
            )),
        };
    }
    let hash = status
        .lobby
        .as_ref()
        .and_then(|lobby| lobby.password_hash.as_deref());
    let (Some(password), Some(hash), Some(platform)) =
        (body.password.as_deref(), hash, &matchmaker.accounts)
    else {
        return Err(forbidden(
            "lobby_private",
            "this lobby is private: join with its password or an invite",
        ));
    };
    let client = platform.client_address(peer.0, headers);
    platform
        .limit(
            Some(PASSWORD_ATTEMPTS),
            &format!("lobby:{}:{client}", status.room_id),
        )
        .await
        .map_err(IntoResponse::into_response)?;
    match platform.verify_secret(password, hash).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(forbidden("wrong_password", "wrong lobby password")),
        Err(refused) => Err(refused.into_response()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Invite {
    invite_code: String,
    expires_at: u64,
}

/// A fresh invite code, for the lobby's current host (an account).
#[utoipa::path(post, path = "/api/lobbies/{id}/invites", tag = "lobbies",
    security(("accessToken" = [])),
    params(("id" = String, Path, description = "The lobby's room id")),
    responses(
        (status = 201, description = "The invite.", body = Invite),
        (status = 401, description = "`unauthenticated`: invites need the host's access token.", body = ErrorBody),
        (status = 403, description = "`not_host`.", body = ErrorBody),
        (status = 404, description = "`lobby_unknown`.", body = ErrorBody),
    ))]
async fn invite(
    State(matchmaker): State<Arc<Matchmaker>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(platform) = &matchmaker.accounts else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "invites need accounts",
        );
    };
    let claims = match platform.caller(&headers).await {
        Ok(Some(claims)) => claims,
        Ok(None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send the host's access token",
            );
        }
        Err(refused) => return refused.into_response(),
    };
    let status = match find(&matchmaker, &id).await {
        Ok(status) => status,
        Err(refused) => return refused,
    };
    let host = status
        .lobby
        .as_ref()
        .and_then(|lobby| lobby.host_id.as_deref());
    if host != Some(claims.account_id.to_string().as_str()) {
        return error(
            StatusCode::FORBIDDEN,
            "not_host",
            "only the lobby's host can invite",
        );
    }
    let expires_at = now_ms().saturating_add(INVITE_TTL.as_millis() as u64);
    let invite = Invite {
        invite_code: matchmaker
            .signer
            .sign_invite(status.room_id.as_str(), expires_at),
        expires_at,
    };
    (StatusCode::CREATED, Json(invite)).into_response()
}

/// The live lobby feed's shared pollers: one per (mode, region filter) and process, however
/// many browsers watch, so a page of browsers costs the directory one read per second.
#[derive(Default)]
pub(crate) struct Feeds {
    channels: std::sync::Mutex<BTreeMap<(String, String), Arc<FeedChannel>>>,
}

struct FeedChannel {
    changes: tokio::sync::broadcast::Sender<FeedEvent>,
    /// What the poller last saw, for a new subscriber's first events.
    current: std::sync::Mutex<BTreeMap<String, Lobby>>,
}

#[derive(Debug, Clone)]
enum FeedEvent {
    Changed(Lobby),
    Removed(String),
}

/// How often a feed's poller reads the directory, and how many lobbies one feed follows.
const FEED_INTERVAL: Duration = Duration::from_secs(1);
const FEED_LOBBIES: usize = coil_match::lobby::MAX_PAGE;
/// How long one feed connection lasts before the client reconnects.
const FEED_LIFETIME: Duration = Duration::from_secs(600);
/// Most feed subscribers one process serves (each holds a connection and a buffer).
const MAX_FEED_SUBSCRIBERS: usize = 10_000;

impl Feeds {
    fn subscribers(&self) -> usize {
        self.lock()
            .values()
            .map(|channel| channel.changes.receiver_count())
            .sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Arc<FeedChannel>>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The feed for `query`'s mode and regions, starting its poller if nobody watched it.
    fn subscribe(
        &self,
        matchmaker: &Arc<Matchmaker>,
        query: LobbyQuery,
    ) -> (Vec<Lobby>, tokio::sync::broadcast::Receiver<FeedEvent>) {
        let key = (
            query.mode.to_string(),
            query
                .regions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        let mut channels = self.lock();
        if let Some(channel) = channels.get(&key) {
            let receiver = channel.changes.subscribe();
            let current = channel
                .current
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .values()
                .cloned()
                .collect();
            return (current, receiver);
        }
        let (changes, receiver) = tokio::sync::broadcast::channel(1024);
        let channel = Arc::new(FeedChannel {
            changes,
            current: std::sync::Mutex::new(BTreeMap::new()),
        });
        channels.insert(key.clone(), channel.clone());
        drop(channels);
        let matchmaker = matchmaker.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FEED_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if channel.changes.receiver_count() == 0 {
                    let mut channels = matchmaker.feeds.lock();
                    // Re-checked under the lock: a subscriber may have just arrived.
                    if channel.changes.receiver_count() == 0 {
                        channels.remove(&key);
                        return;
                    }
                }
                let page_query = LobbyQuery {
                    limit: FEED_LOBBIES,
                    after: None,
                    ..query.clone()
                };
                let Ok(page) =
                    list_lobbies(matchmaker.directory.as_ref(), &page_query, now_ms()).await
                else {
                    continue; // The directory blipped: the next tick tries again.
                };
                let seen: BTreeMap<String, Lobby> = page
                    .lobbies
                    .into_iter()
                    .filter_map(Lobby::of)
                    .map(|lobby| (lobby.id.clone(), lobby))
                    .collect();
                let mut current = channel
                    .current
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for (id, lobby) in &seen {
                    if current.get(id) != Some(lobby) {
                        let _ = channel.changes.send(FeedEvent::Changed(lobby.clone()));
                    }
                }
                for id in current.keys() {
                    if !seen.contains_key(id) {
                        let _ = channel.changes.send(FeedEvent::Removed(id.clone()));
                    }
                }
                *current = seen;
            }
        });
        (Vec::new(), receiver)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct FeedParams {
    /// The mode (`breach` when absent).
    mode: Option<String>,
    /// One region; every region the matchmaker knows when absent.
    region: Option<String>,
}

/// Server-sent events of one mode's lobbies: `lobby` (a lobby appeared or changed; data: the
/// lobby) and `removed` (data: `{"id"}`), the current lobbies first. Polled from the directory
/// once a second per process, shared by every watcher; follows the first 100 lobbies. Needs
/// `Accept: text/event-stream` (what `EventSource` sends); the stream ends after ten minutes
/// with a `retry` hint, and `EventSource` reconnects by itself (so a long-lived watcher moves
/// to a fresh replica now and then).
#[utoipa::path(get, path = "/api/lobbies/feed", tag = "lobbies", params(FeedParams),
    responses(
        (status = 200, description = "`text/event-stream` of `lobby` and `removed` events.", content_type = "text/event-stream", body = String),
        (status = 400, description = "`bad_request`.", body = ErrorBody),
        (status = 406, description = "`not_acceptable`: ask for `text/event-stream`.", body = ErrorBody),
        (status = 503, description = "`too_many_watchers`.", body = ErrorBody),
    ))]
async fn feed(
    State(matchmaker): State<Arc<Matchmaker>>,
    headers: HeaderMap,
    params: Result<Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let wants_events = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if !wants_events {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "the lobby feed is text/event-stream: send Accept: text/event-stream, or poll GET /api/lobbies",
        );
    }
    let Ok(Query(params)) = params else {
        return bad("a query parameter is malformed");
    };
    let mode = match mode_param(params.mode.as_deref()) {
        Ok(mode) => mode,
        Err(problem) => return bad(problem),
    };
    let regions = match regions_param(&matchmaker, params.region.as_deref()) {
        Ok(regions) => regions,
        Err(problem) => return bad(problem),
    };
    if matchmaker.feeds.subscribers() >= MAX_FEED_SUBSCRIBERS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_watchers",
            "the lobby feed is full; poll GET /api/lobbies instead",
        );
    }
    let query = LobbyQuery {
        mode,
        regions,
        map: None,
        not_full: false,
        not_started: false,
        no_password: false,
        limit: FEED_LOBBIES,
        after: None,
    };
    let (current, receiver) = matchmaker.feeds.subscribe(&matchmaker, query);
    let event = |change: FeedEvent| -> Result<Event, std::convert::Infallible> {
        Ok(match change {
            FeedEvent::Changed(lobby) => Event::default()
                .event("lobby")
                .json_data(&lobby)
                .unwrap_or_else(|_| Event::default().comment("unencodable")),
            FeedEvent::Removed(id) => Event::default()
                .event("removed")
                .json_data(serde_json::json!({ "id": id }))
                .unwrap_or_else(|_| Event::default().comment("unencodable")),
        })
    };
    let first = futures_util::stream::iter(current.into_iter().map(FeedEvent::Changed).map(event));
    let changes = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        // A watcher too slow for the feed (`Lagged`) missed changes, a removal among them
        // maybe: the stream ends with the retry hint, and the reconnect starts from the
        // current lobbies, so the page never keeps a lobby that is gone.
        let change = receiver.recv().await.ok()?;
        Some((event(change), receiver))
    });
    use futures_util::StreamExt;
    let retry = futures_util::stream::once(async {
        Ok(Event::default()
            .retry(Duration::from_secs(1))
            .comment("reconnect"))
    });
    let lifetime = tokio::time::sleep(FEED_LIFETIME);
    let stream = first.chain(changes).take_until(lifetime).chain(retry);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_sorted_key_value_text_and_odd_values_are_refused() {
        let settings: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(r#"{"maxPlayers":8,"friendlyFire":false,"map":"foundry"}"#)
                .unwrap();
        assert_eq!(
            settings_text(&settings).unwrap(),
            "friendlyFire=false;map=foundry;maxPlayers=8"
        );
        for odd in [
            r#"{"map":["a"]}"#,
            r#"{"map":null}"#,
            r#"{"map":"a;b=c"}"#,
            r#"{"a=b":1}"#,
            r#"{"map":""}"#,
        ] {
            let settings: BTreeMap<String, serde_json::Value> = serde_json::from_str(odd).unwrap();
            assert!(settings_text(&settings).is_err(), "{odd}");
        }
        let many: BTreeMap<String, serde_json::Value> = (0..17)
            .map(|index| (format!("k{index}"), serde_json::Value::from(index)))
            .collect();
        assert!(settings_text(&many).is_err());
    }
}
