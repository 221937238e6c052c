//! The accounts routes: JSON in camelCase, errors in the node's shape, bodies capped at
//! [`BODY_LIMIT`] (413 JSON above it). Handlers parse, call [`Accounts`], and shape the answer.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use coil_store::{Account, AccountKind, SessionId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, Peer};
use crate::metrics as m;
use crate::openapi::{ErrorBody, SecuritySchemes};
use crate::service::{AccountSummary, Accounts, ClientInfo, TokenAnswer};

/// Largest body any accounts route accepts (a login is ~100 bytes).
pub const BODY_LIMIT: usize = 8 * 1024;

type AppState = State<Arc<Accounts>>;
type Body<T> = Result<Json<T>, JsonRejection>;

/// Builds the router (state included) that `coil serve` and `coil matchmaker` merge.
pub fn router(accounts: Accounts) -> Router {
    Router::new()
        .route("/api/auth/register", post(register))
        .route("/api/auth/login", post(login))
        .route("/api/auth/guest", post(guest))
        .route("/api/auth/upgrade", post(upgrade))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/password", post(change_password))
        .route("/api/me", get(me).patch(update_me))
        .route("/api/sessions", get(list_sessions).delete(end_all_sessions))
        .route("/api/sessions/{id}", delete(end_session))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(Arc::new(accounts))
}

/// `{"endedSessions": n}`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // A schema only: the handlers answer with `json!`.
struct EndedSessions {
    ended_sessions: usize,
}

/// `{"sessions": [...]}`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct SessionList {
    sessions: Vec<SessionAnswer>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        register, login, guest, upgrade, refresh, logout, change_password, me, update_me,
        list_sessions, end_session, end_all_sessions
    ),
    components(schemas(ErrorBody, TokenAnswer, AccountSummary)),
    modifiers(&SecuritySchemes),
    tags((name = "accounts", description = "Accounts and sessions (docs/accounts.md)."))
)]
struct AccountsApi;

/// The OpenAPI document of [`router`]'s routes; every body over [`BODY_LIMIT`] is 413, a
/// non-JSON body 415, and a database or Redis fault 503 with `Retry-After`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = AccountsApi::openapi();
    crate::openapi::add_common_responses(&mut document, true);
    document
}

fn client_info(accounts: &Accounts, peer: Peer, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        address: accounts.platform.client_address(peer.0, headers),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(200).collect()),
    }
}

/// Counts the answer of a route and turns it into a response.
fn answer<T: IntoResponse>(route: &'static str, result: Result<T, ApiError>) -> Response {
    let response = match result {
        Ok(value) => value.into_response(),
        Err(error) => error.into_response(),
    };
    m::request(route, response.status().as_u16());
    response
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    username: String,
    password: String,
}

/// A username and password being chosen (registration, guest upgrade): the schema carries
/// the rules `coil_auth` enforces, so clients and the fuzzer see them.
#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewCredentials {
    /// 1–16 ASCII letters, digits, space, `_`, `-`, `.` with at least one letter or digit, not
    /// starting with `guest`, unique up to case and look-alikes.
    #[schema(pattern = "^[A-Za-z0-9_.-]([A-Za-z0-9 _.-]{0,14}[A-Za-z0-9_.-])?$")]
    username: String,
    /// 8–128 characters, any printable Unicode, not trimmed.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// A region name (1–32 letters, digits, `-`, `_`); empty or absent: none.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{0,32}$")]
    preferred_region: Option<String>,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestBody {
    /// A secret the device keeps (e.g. 32 random bytes in base64url); its hash names the guest.
    #[schema(pattern = "^[A-Za-z0-9_-]{22,256}$")]
    device_secret: String,
    /// A region name (1–32 letters, digits, `-`, `_`); empty or absent: none.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{0,32}$")]
    preferred_region: Option<String>,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    refresh_token: String,
}

#[derive(ToSchema, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordBody {
    current_password: String,
    /// 8–128 characters, any printable Unicode, not trimmed.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[derive(ToSchema, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateMe {
    #[serde(default)]
    single_session: Option<bool>,
    /// Absent: unchanged; `null`: cleared; a string (a region name, as at registration): set.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9_-]{0,32}$")]
    preferred_region: Option<Option<String>>,
}

/// Tells an absent field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

/// A preferred region: the directory's region id rules (1-64 of a-z, 0-9, '-', '_', '.').
fn region(value: Option<&str>) -> Result<Option<&str>, ApiError> {
    // The directory's own rule (`coil_match::Region`): an account's preferred region is used
    // by the matchmaker as it is, so one the directory would refuse must not be stored.
    match value {
        None | Some("") => Ok(None),
        Some(region) => match coil_match::Region::parse(region) {
            Ok(_) => Ok(Some(region)),
            Err(problem) => Err(ApiError::BadRequest(format!("preferredRegion: {problem}"))),
        },
    }
}

/// Creates a registered account and its first session.
#[utoipa::path(post, path = "/api/auth/register", tag = "accounts", request_body = NewCredentials,
    responses(
        (status = 201, description = "The account and its session's tokens.", body = TokenAnswer),
        (status = 409, description = "`username_taken`: the username, or a look-alike, is taken.", body = ErrorBody),
        (status = 429, description = "Rate limited (GCRA buckets by address, address + username, username).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn register(
    State(accounts): AppState,
    peer: Peer,
    headers: HeaderMap,
    body: Body<NewCredentials>,
) -> Response {
    let result = async {
        let Json(body) = body?;
        let client = client_info(&accounts, peer, &headers);
        let region = region(body.preferred_region.as_deref())?;
        let answer = accounts
            .register(&body.username, &body.password, region, &client)
            .await?;
        Ok((StatusCode::CREATED, Json(answer)))
    }
    .await;
    answer("register", result)
}

/// Logs in with a username and password.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = Credentials,
    responses(
        (status = 200, description = "A new session's tokens.", body = TokenAnswer),
        (status = 401, description = "`invalid_credentials` (one answer for a wrong password, an unknown user and a guest).", body = ErrorBody),
        (status = 403, description = "`account_banned`, with `bannedUntil` and `reason`.", body = ErrorBody),
        (status = 429, description = "Rate limited (GCRA buckets by address, address + username, username).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn login(
    State(accounts): AppState,
    peer: Peer,
    headers: HeaderMap,
    body: Body<Credentials>,
) -> Response {
    let result = async {
        let Json(body) = body?;
        let client = client_info(&accounts, peer, &headers);
        let answer = accounts
            .login(&body.username, &body.password, &client)
            .await?;
        Ok(Json(answer))
    }
    .await;
    answer("login", result)
}

/// The guest account of a device secret, created on first use.
#[utoipa::path(post, path = "/api/auth/guest", tag = "accounts", request_body = GuestBody,
    responses(
        (status = 200, description = "A new session's tokens.", body = TokenAnswer),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 429, description = "Rate limited (GCRA buckets by address, address + username, username).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn guest(
    State(accounts): AppState,
    peer: Peer,
    headers: HeaderMap,
    body: Body<GuestBody>,
) -> Response {
    let result = async {
        let Json(body) = body?;
        let client = client_info(&accounts, peer, &headers);
        let region = region(body.preferred_region.as_deref())?;
        let answer = accounts.guest(&body.device_secret, region, &client).await?;
        Ok(Json(answer))
    }
    .await;
    answer("guest", result)
}

/// Gives the caller's guest account a username and password; the account id stays.
#[utoipa::path(post, path = "/api/auth/upgrade", tag = "accounts", request_body = NewCredentials,
    security(("accessToken" = [])),
    responses(
        (status = 200, description = "Fresh tokens for the same session.", body = TokenAnswer),
        (status = 401, description = "No or a refused access token (`unauthenticated`, `token_*`, `session_ended`, `bad_authorization`).", body = ErrorBody),
        (status = 403, description = "`forbidden` (not a guest) or `account_banned`.", body = ErrorBody),
        (status = 409, description = "`username_taken`.", body = ErrorBody),
        (status = 429, description = "Rate limited (GCRA buckets by address, address + username, username).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn upgrade(
    State(accounts): AppState,
    peer: Peer,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
    body: Body<NewCredentials>,
) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let Json(body) = body?;
        let client = client_info(&accounts, peer, &headers);
        let answer = accounts
            .upgrade(&caller, &body.username, &body.password, &client)
            .await?;
        Ok(Json(answer))
    }
    .await;
    answer("upgrade", result)
}

/// Rotates a refresh token; presenting a used one ends its whole session.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "accounts", request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens; the old refresh token is spent.", body = TokenAnswer),
        (status = 401, description = "`refresh_invalid` or `refresh_reused`.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 429, description = "Rate limited (GCRA buckets by address, address + username, username).", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until a retry can pass"))),
    ))]
async fn refresh(
    State(accounts): AppState,
    peer: Peer,
    headers: HeaderMap,
    body: Body<RefreshBody>,
) -> Response {
    let result = async {
        let Json(body) = body?;
        let client = client_info(&accounts, peer, &headers);
        Ok(Json(accounts.refresh(&body.refresh_token, &client).await?))
    }
    .await;
    answer("refresh", result)
}

/// Ends the session of the access token, or of the refresh token in the body. Idempotent.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts",
    request_body(content = LogoutBody, description = "Optional: a Bearer logout sends no body."),
    security((), ("accessToken" = [])),
    responses(
        (status = 204, description = "The session has ended (or had already)."),
        (status = 401, description = "`unauthenticated`: neither a passing access token nor a refresh token.", body = ErrorBody),
    ))]
async fn logout(
    State(accounts): AppState,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let result = async {
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        // The body is optional here (a Bearer logout sends none), so it is parsed by hand.
        let body: LogoutBody = if body.is_empty() {
            LogoutBody::default()
        } else {
            serde_json::from_slice(&body)
                .map_err(|error| ApiError::BadRequest(format!("invalid JSON body: {error}")))?
        };
        // An access token that no longer passes (expired, already logged out) still lets the
        // refresh token in the body end the session.
        let caller = accounts
            .platform
            .authenticator()
            .authenticate_headers(&headers)
            .await
            .ok()
            .flatten();
        accounts
            .logout(caller.as_ref(), body.refresh_token.as_deref())
            .await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    answer("logout", result)
}

/// Changes the password and ends every other session.
#[utoipa::path(post, path = "/api/auth/password", tag = "accounts", request_body = PasswordBody,
    security(("accessToken" = [])),
    responses(
        (status = 200, description = "How many other sessions ended.", body = EndedSessions),
        (status = 401, description = "`invalid_credentials` (wrong current password) or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
    ))]
async fn change_password(
    State(accounts): AppState,
    caller: Result<Caller, ApiError>,
    body: Body<PasswordBody>,
) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let Json(body) = body?;
        let ended = accounts
            .change_password(&caller, &body.current_password, &body.new_password)
            .await?;
        Ok(Json(json!({ "endedSessions": ended })))
    }
    .await;
    answer("password", result)
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "camelCase")]
struct MeAnswer {
    id: String,
    username: Option<String>,
    display_name: String,
    #[schema(value_type = Vec<String>)]
    roles: Vec<&'static str>,
    guest: bool,
    preferred_region: Option<String>,
    single_session: bool,
    created_at: i64,
    session_id: String,
}

fn me_answer(account: Account, session: &SessionId) -> MeAnswer {
    MeAnswer {
        id: account.id.to_string(),
        guest: account.kind == AccountKind::Guest,
        username: account.username,
        display_name: account.display_name,
        roles: account.roles.iter().map(|role| role.as_str()).collect(),
        preferred_region: account.preferred_region,
        single_session: account.single_session,
        created_at: account.created_at_ms,
        session_id: session.to_string(),
    }
}

/// The caller's account.
#[utoipa::path(get, path = "/api/me", tag = "accounts", security(("accessToken" = [])),
    responses(
        (status = 200, description = "The account and the caller's session id.", body = MeAnswer),
        (status = 401, description = "No or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account is gone.", body = ErrorBody),
    ))]
async fn me(State(accounts): AppState, caller: Result<Caller, ApiError>) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let account = accounts.me(&caller).await?;
        Ok(Json(me_answer(account, &caller.session_id)))
    }
    .await;
    answer("me", result)
}

/// Changes the caller's settings.
#[utoipa::path(patch, path = "/api/me", tag = "accounts", request_body = UpdateMe,
    security(("accessToken" = [])),
    responses(
        (status = 200, description = "The account as it is now.", body = MeAnswer),
        (status = 401, description = "No or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account is gone.", body = ErrorBody),
    ))]
async fn update_me(
    State(accounts): AppState,
    caller: Result<Caller, ApiError>,
    body: Body<UpdateMe>,
) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let Json(body) = body?;
        let region = match &body.preferred_region {
            None => None,
            Some(value) => Some(region(value.as_deref())?),
        };
        let account = accounts
            .update_me(&caller, body.single_session, region)
            .await?;
        Ok(Json(me_answer(account, &caller.session_id)))
    }
    .await;
    answer("me", result)
}

#[derive(ToSchema, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionAnswer {
    id: String,
    current: bool,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    client_ip: Option<String>,
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/api/sessions", tag = "accounts", security(("accessToken" = [])),
    responses(
        (status = 200, description = "Every live session of the account.", body = SessionList),
        (status = 401, description = "No or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
    ))]
async fn list_sessions(State(accounts): AppState, caller: Result<Caller, ApiError>) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let sessions: Vec<SessionAnswer> = accounts
            .sessions(&caller)
            .await?
            .into_iter()
            .map(|session| SessionAnswer {
                current: session.id == caller.session_id,
                id: session.id.to_string(),
                created_at: session.created_at_ms,
                last_used_at: session.last_used_at_ms,
                expires_at: session.expires_at_ms,
                user_agent: session.user_agent,
                client_ip: session.client_ip,
            })
            .collect();
        Ok(Json(json!({ "sessions": sessions })))
    }
    .await;
    answer("sessions", result)
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "accounts", security(("accessToken" = [])),
    params(("id" = String, Path, description = "A session id from GET /api/sessions.")),
    responses(
        (status = 204, description = "The session has ended."),
        (status = 401, description = "No or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such session of the caller.", body = ErrorBody),
    ))]
async fn end_session(
    State(accounts): AppState,
    caller: Result<Caller, ApiError>,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let session = SessionId::parse(&id).map_err(|_| ApiError::NotFound("no such session"))?;
        accounts.end_session(&caller, &session).await?;
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    answer("sessions", result)
}

/// Ends every session of the account, the caller's included.
#[utoipa::path(delete, path = "/api/sessions", tag = "accounts", security(("accessToken" = [])),
    responses(
        (status = 200, description = "How many sessions ended.", body = EndedSessions),
        (status = 401, description = "No or a refused access token.", body = ErrorBody),
        (status = 403, description = "`account_banned`.", body = ErrorBody),
    ))]
async fn end_all_sessions(State(accounts): AppState, caller: Result<Caller, ApiError>) -> Response {
    let result = async {
        let Caller(caller) = caller?;
        let ended = accounts.end_all_sessions(&caller).await?;
        Ok(Json(json!({ "endedSessions": ended })))
    }
    .await;
    answer("sessions", result)
}
