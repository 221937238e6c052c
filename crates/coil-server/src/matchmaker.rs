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
use coil_match::{
    Heartbeat, MatchError, PlacementPolicy, PlacementRequest, Region, RoomDirectory, RoomId,
    TokenSigner,
};
use metrics::{counter, histogram};
use serde::{Deserialize, Serialize};
use serde_json::json;

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
}

pub struct Matchmaker {
    pub directory: Arc<dyn RoomDirectory>,
    signer: TokenSigner,
    pub settings: MatchmakerSettings,
}

impl Matchmaker {
    pub fn new(
        directory: Arc<dyn RoomDirectory>,
        signer: TokenSigner,
        settings: MatchmakerSettings,
    ) -> Arc<Matchmaker> {
        Arc::new(Matchmaker {
            directory,
            signer,
            settings,
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
        .with_state(matchmaker)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MatchmakeBody {
    player_id: Option<String>,
    player_name: Option<String>,
    preferred_region: Option<String>,
    room_override: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchmakeAnswer {
    room_id: String,
    ws_url: String,
    join_token: String,
    expires_at: u64,
    region: String,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
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

async fn matchmake(
    State(matchmaker): State<Arc<Matchmaker>>,
    body: Result<Json<MatchmakeBody>, JsonRejection>,
) -> Response {
    let started = Instant::now();
    let (result, response) = matchmake_inner(&matchmaker, body).await;
    counter!("coil_matchmake_requests_total", "result" => result).increment(1);
    histogram!("coil_matchmake_duration_seconds").record(started.elapsed().as_secs_f64());
    response
}

async fn matchmake_inner(
    matchmaker: &Matchmaker,
    body: Result<Json<MatchmakeBody>, JsonRejection>,
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
        Some(id) if valid_player_id(&id) => id,
        Some(_) => {
            return bad(
                "playerId: use 1-64 characters of letters, digits, '-', '_', '.', ':'".into(),
            );
        }
    };
    let preferred_region = match body.preferred_region.as_deref() {
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
    let request = PlacementRequest {
        preferred_region,
        room_override,
    };
    let now = now_ms();
    let placement = match matchmaker
        .directory
        .matchmake(&request, &matchmaker.settings.policy, now)
        .await
    {
        Ok(placement) => placement,
        Err(failure) => return match_error(failure),
    };
    let claims =
        placement.join_claims(&player_id, &player_name, matchmaker.settings.token_ttl, now);
    let token = match matchmaker.signer.sign(&claims) {
        Ok(token) => token,
        Err(problem) => {
            tracing::error!(cause = %problem, "failed to sign a join token");
            return (
                "error",
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                ),
            );
        }
    };
    let answer = MatchmakeAnswer {
        room_id: placement.room_id.to_string(),
        ws_url: placement.ws_url(),
        join_token: token,
        expires_at: claims.expires_at_ms,
        region: placement.region.to_string(),
    };
    ("ok", Json(answer).into_response())
}

fn match_error(failure: MatchError) -> (&'static str, Response) {
    let status =
        StatusCode::from_u16(failure.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = failure.code();
    let result = match &failure {
        MatchError::OverrideConflict { .. } => "override_conflict",
        MatchError::NoCapacity { .. } => "no_capacity",
        MatchError::Contended { .. } => "contended",
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
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "directory_unavailable",
                "directory unavailable",
            )
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
