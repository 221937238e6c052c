//! What every OpenAPI document of Coil shares: the JSON error body with its stable codes, the
//! two bearer schemes (an account's access token, the fleet's internal secret) and the
//! `Retry-After` header. The accounts routes' own document is [`crate::routes::openapi`]; the
//! game node and the matchmaker compose theirs in `coil-server/src/openapi.rs`.
//!
//! Only descriptions of the HTTP edge live here: no handler, no state, no logic.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, ToSchema};

/// Name of the security scheme for `Authorization: Bearer <accessToken>`.
pub const BEARER_ACCESS_TOKEN: &str = "accessToken";
/// Name of the security scheme for `Authorization: Bearer <INTERNAL_SECRET>`.
pub const BEARER_INTERNAL_SECRET: &str = "internalSecret";

/// Every error Coil's HTTP API answers: `{"error":{"code","message"}}`. The code is stable and
/// meant for programs; the message is for people and may change.
#[derive(ToSchema)]
#[schema(as = Error, rename_all = "camelCase")]
#[allow(dead_code)] // A schema only: handlers build the same shape with `serde_json::json!`.
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Matchmaker only, with 409: a room of the same mode the player may take instead.
    pub suggested_room: Option<String>,
}

/// The error itself.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people; never internal error text.
    pub message: String,
    /// With `account_banned`: Unix milliseconds the ban ends, `null` when it does not.
    pub banned_until: Option<i64>,
    /// With `account_banned`: why.
    pub reason: Option<String>,
}

/// The stable error codes (a code never changes meaning; new ones may be added).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ErrorCode {
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    UpgradeRequired,
    Unauthorized,
    Unauthenticated,
    BadAuthorization,
    InvalidCredentials,
    TokenInvalid,
    TokenExpired,
    TokenNotYetValid,
    SessionEnded,
    RefreshInvalid,
    RefreshReused,
    AccountBanned,
    Forbidden,
    NotFound,
    UsernameTaken,
    RoomFull,
    RoomDraining,
    RoomNotJoinable,
    RoomUnknown,
    UnknownMode,
    LobbyUnknown,
    LobbyPrivate,
    WrongPassword,
    InviteInvalid,
    InviteExpired,
    NotHost,
    BadSettings,
    NoCustomLobbies,
    NotAcceptable,
    TooManyWatchers,
    RateLimited,
    NoCapacity,
    Contended,
    DirectoryUnavailable,
    Busy,
    Unavailable,
    Internal,
}

/// Adds the two bearer schemes to a document's components.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut access = Http::new(HttpAuthScheme::Bearer);
        access.bearer_format = Some("JWT".into());
        access.description = Some(
            "An account's access token (EdDSA JWT) from /api/auth/login, /api/auth/guest, \
             /api/auth/register or /api/auth/refresh."
                .into(),
        );
        components.add_security_scheme(BEARER_ACCESS_TOKEN, SecurityScheme::Http(access));
        let mut internal = Http::new(HttpAuthScheme::Bearer);
        internal.description = Some(
            "The fleet's shared INTERNAL_SECRET: autoscaler → node, node → matchmaker.".into(),
        );
        components.add_security_scheme(BEARER_INTERNAL_SECRET, SecurityScheme::Http(internal));
    }
}

/// An error response: the [`ErrorBody`] as JSON, with `Retry-After` when `retry_after`.
pub fn error_response(description: &str, retry_after: bool) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .build(),
    );
    if retry_after {
        response = response.header("Retry-After", retry_after_header());
    }
    response.build()
}

/// `Retry-After: <seconds>`.
pub fn retry_after_header() -> utoipa::openapi::header::Header {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// Adds the answers every JSON route can give to each operation of `document` that does not
/// list them itself: 400 (a malformed body or parameter, for routes that take one), 413 and
/// 415 (routes with a body), 500, and with `unavailable` 503 + `Retry-After` (a database or
/// Redis fault).
pub fn add_common_responses(document: &mut utoipa::openapi::OpenApi, unavailable: bool) {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.request_body.is_some();
            let has_input = has_body || operation.parameters.is_some();
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str, retry: bool| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(description, retry).into());
            };
            if has_input {
                add(
                    "400",
                    "`bad_request`: a malformed body or parameter.",
                    false,
                );
            }
            if has_body {
                add(
                    "413",
                    "`payload_too_large`: the body is over the route's limit.",
                    false,
                );
                add(
                    "415",
                    "`unsupported_media_type`: the body is not application/json.",
                    false,
                );
            }
            add(
                "500",
                "`internal`: a bug; the cause is logged, not sent.",
                false,
            );
            if unavailable {
                add(
                    "503",
                    "`unavailable` or `busy`: a backing service failed or the password pool \
                     is full; retry after the header's seconds.",
                    true,
                );
            }
        }
    }
}
