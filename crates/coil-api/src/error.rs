//! The API's errors and their JSON: `{"error":{"code":"stable_code","message":"..."}}`, the
//! shape of the node's `AppError` (`coil-server/src/http.rs`). Codes are stable; messages are
//! for people. Internal causes are logged once here and never sent.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coil_auth::{AuthError, PasswordError};
use coil_store::{AccountError, Ban};
use serde_json::json;

/// Every refusal the API sends.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body or a field is wrong; the message says which.
    BadRequest(String),
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 401: wrong username or password (one answer for both, and for guests).
    InvalidCredentials,
    /// 401: no bearer token where one is required.
    Unauthenticated,
    /// 401/403/503 from the token check (code from [`AuthError::code`]).
    Auth(AuthError),
    /// 401: the refresh token is unknown, expired or its session ended.
    RefreshInvalid,
    /// 401: the refresh token had already been used; its session is now ended.
    RefreshReused,
    /// 403: the account is banned.
    Banned(Ban),
    /// 403: the caller may not do this (a registered account asking for an upgrade, say).
    Forbidden(&'static str),
    /// 404.
    NotFound(&'static str),
    /// 409: the username (or a look-alike) is taken.
    UsernameTaken,
    /// 429 with `Retry-After`.
    RateLimited { retry_after: Duration },
    /// 503 with `Retry-After: 1`: the password pool is full.
    Busy,
    /// 503: a dependency (database, Redis) failed; logged.
    Unavailable(String),
    /// 500: a bug or an impossible state; logged.
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidCredentials
            | ApiError::Unauthenticated
            | ApiError::RefreshInvalid
            | ApiError::RefreshReused => StatusCode::UNAUTHORIZED,
            ApiError::Auth(AuthError::Banned) | ApiError::Banned(_) | ApiError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Auth(AuthError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UsernameTaken => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Busy | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Auth(error) => error.code(),
            ApiError::RefreshInvalid => "refresh_invalid",
            ApiError::RefreshReused => "refresh_reused",
            ApiError::Banned(_) => "account_banned",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::UsernameTaken => "username_taken",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Busy => "busy",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(message) => message.clone(),
            ApiError::PayloadTooLarge => "request body is too large".into(),
            ApiError::UnsupportedMediaType => "send the body as application/json".into(),
            ApiError::InvalidCredentials => "wrong username or password".into(),
            ApiError::Unauthenticated => "send Authorization: Bearer <accessToken>".into(),
            ApiError::Auth(AuthError::Unavailable(_)) => "try again shortly".into(),
            ApiError::Auth(error) => error.to_string(),
            ApiError::RefreshInvalid => "refresh token is not valid; log in again".into(),
            ApiError::RefreshReused => {
                "refresh token was already used; the session has been ended, log in again".into()
            }
            ApiError::Banned(ban) => match ban.until_ms {
                Some(until) => format!("account is banned until {until} (Unix ms): {}", ban.reason),
                None => format!("account is banned: {}", ban.reason),
            },
            ApiError::Forbidden(message) | ApiError::NotFound(message) => (*message).to_owned(),
            ApiError::UsernameTaken => "that username, or one that looks the same, is taken".into(),
            ApiError::RateLimited { retry_after } => format!(
                "too many requests; retry in {} s",
                retry_after_seconds(*retry_after)
            ),
            ApiError::Busy => "the server is busy; retry in a second".into(),
            ApiError::Unavailable(_) => {
                "a backing service is unavailable; try again shortly".into()
            }
            ApiError::Internal(_) => "internal error".into(),
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(code = self.code(), cause = %cause, "api request failed");
            }
            ApiError::Auth(AuthError::Unavailable(cause)) => {
                tracing::error!(cause = %cause, "revocation list unavailable");
            }
            _ => {}
        }
        let status = self.status();
        let mut body = json!({ "error": { "code": self.code(), "message": self.message() } });
        if let ApiError::Banned(ban) = &self {
            body["error"]["bannedUntil"] = json!(ban.until_ms);
            body["error"]["reason"] = json!(ban.reason);
        }
        let mut response = (status, Json(body)).into_response();
        let retry = match &self {
            ApiError::RateLimited { retry_after } => Some(retry_after_seconds(*retry_after)),
            ApiError::Busy | ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> ApiError {
        match error {
            AccountError::UsernameTaken => ApiError::UsernameTaken,
            AccountError::NotAGuest => ApiError::Forbidden("only a guest account can be upgraded"),
            AccountError::NoSuchAccount => ApiError::NotFound("no such account"),
            AccountError::Store(store) => ApiError::Unavailable(format!("{store:#}")),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> ApiError {
        match error {
            PasswordError::Busy => ApiError::Busy,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        ApiError::Auth(error)
    }
}
