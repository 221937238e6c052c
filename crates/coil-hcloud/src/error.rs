//! Errors of the Hetzner Cloud client: the API's own error object, transport and decode
//! failures, and the client-side refusals (user data too large, budget).
//!
//! Owns the classification an executor needs (`is_retryable`, `is_capacity_problem`,
//! `retry_at`). It must not decide what to do about an error: that is the autoscaler's call.
//! Error messages never contain the API token (the token only ever lives in a sensitive header).

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::model::ActionId;
use crate::rate_limit::RateLimitSnapshot;

/// The machine-readable `error.code` of a Hetzner Cloud API error.
///
/// Codes come from the published error table (docs.hetzner.cloud, "Errors") plus the
/// call-specific codes the autoscaler cares about (`placement_error`). Codes this enum does not
/// know are kept verbatim in `Unknown` so that a new code never fails decoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    Forbidden,
    Unauthorized,
    InvalidInput,
    JsonError,
    Locked,
    NotFound,
    RateLimitExceeded,
    ResourceLimitExceeded,
    ResourceUnavailable,
    ServerError,
    ServiceError,
    UniquenessError,
    Protected,
    Maintenance,
    Conflict,
    UnsupportedError,
    TokenReadonly,
    Unavailable,
    PlacementError,
    Timeout,
    Unknown(String),
}

impl ErrorCode {
    /// The code as the API spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Forbidden => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::InvalidInput => "invalid_input",
            Self::JsonError => "json_error",
            Self::Locked => "locked",
            Self::NotFound => "not_found",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::ResourceLimitExceeded => "resource_limit_exceeded",
            Self::ResourceUnavailable => "resource_unavailable",
            Self::ServerError => "server_error",
            Self::ServiceError => "service_error",
            Self::UniquenessError => "uniqueness_error",
            Self::Protected => "protected",
            Self::Maintenance => "maintenance",
            Self::Conflict => "conflict",
            Self::UnsupportedError => "unsupported_error",
            Self::TokenReadonly => "token_readonly",
            Self::Unavailable => "unavailable",
            Self::PlacementError => "placement_error",
            Self::Timeout => "timeout",
            Self::Unknown(code) => code,
        }
    }

    /// Parses a code as the API spells it; unknown codes become `Unknown`.
    pub fn from_api_code(code: &str) -> Self {
        match code {
            "forbidden" => Self::Forbidden,
            "unauthorized" => Self::Unauthorized,
            "invalid_input" => Self::InvalidInput,
            "json_error" => Self::JsonError,
            "locked" => Self::Locked,
            "not_found" => Self::NotFound,
            "rate_limit_exceeded" => Self::RateLimitExceeded,
            "resource_limit_exceeded" => Self::ResourceLimitExceeded,
            "resource_unavailable" => Self::ResourceUnavailable,
            "server_error" => Self::ServerError,
            "service_error" => Self::ServiceError,
            "uniqueness_error" => Self::UniquenessError,
            "protected" => Self::Protected,
            "maintenance" => Self::Maintenance,
            "conflict" => Self::Conflict,
            "unsupported_error" => Self::UnsupportedError,
            "token_readonly" => Self::TokenReadonly,
            "unavailable" => Self::Unavailable,
            "placement_error" => Self::PlacementError,
            "timeout" => Self::Timeout,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The same request, sent again later without changes, may succeed.
    ///
    /// `locked` means another action is still running on the resource and `conflict` is
    /// documented as "please retry"; the rest are transient faults on Hetzner's side.
    /// Capacity problems are deliberately not retryable here: the better move is another
    /// server type or location (see [`ErrorCode::is_capacity_problem`]).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimitExceeded
                | Self::Locked
                | Self::Conflict
                | Self::ServerError
                | Self::ServiceError
                | Self::Unavailable
                | Self::Maintenance
                | Self::Timeout
        )
    }

    /// Hetzner cannot give us this server type in this location (or at all, for this project)
    /// right now: an executor should fall through to the next type or location.
    pub fn is_capacity_problem(&self) -> bool {
        matches!(
            self,
            Self::ResourceUnavailable | Self::ResourceLimitExceeded | Self::PlacementError
        )
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        Self::from_api_code(&code)
    }
}

impl From<ErrorCode> for String {
    fn from(code: ErrorCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// An error object returned by the API: `{"error": {"code", "message", "details"}}` plus the
/// HTTP status it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub status: u16,
    /// Code-specific details (e.g. `fields` for `invalid_input`, `limits` for
    /// `resource_limit_exceeded`); `None` when absent or `null`.
    pub details: Option<serde_json::Value>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} (HTTP {}): {}",
            self.code, self.status, self.message
        )
    }
}

/// Everything a client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HcloudError {
    /// The API answered with an error object.
    #[error("hetzner api refused {operation}: {error}")]
    Api {
        operation: &'static str,
        /// Boxed so that `Result<_, HcloudError>` stays small on the happy path.
        error: Box<ApiError>,
    },
    /// The API answered 429 `rate_limit_exceeded`. The client never sleeps on this: the caller
    /// decides whether to wait until `retry_at`.
    #[error("hetzner api rate limit exceeded during {operation}; retry at {retry_at:?}")]
    RateLimited {
        operation: &'static str,
        error: Box<ApiError>,
        /// Earliest moment one more request is expected to be accepted.
        retry_at: SystemTime,
        /// The rate-limit headers of the refusing response, when it carried them.
        rate_limit: Option<RateLimitSnapshot>,
    },
    /// The API answered with an error status but no decodable error object.
    #[error("hetzner api answered HTTP {status} without an error object during {operation}")]
    UnexpectedStatus {
        operation: &'static str,
        status: u16,
        /// The first bytes of the body, for the log.
        body_start: String,
    },
    /// The request did not complete: connection refused, TLS, or the per-request timeout.
    #[error("hetzner api request failed during {operation}")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// A success response whose body did not match the published shape.
    #[error("hetzner api response for {operation} could not be decoded")]
    Decode {
        operation: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Refused before sending: Hetzner accepts at most 32 KiB of user data.
    #[error("user_data is {size_bytes} bytes; hetzner accepts at most {limit_bytes}")]
    UserDataTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// An action finished with status `error`.
    #[error("hetzner action {action_id} failed: {code}: {message}")]
    ActionFailed {
        action_id: ActionId,
        code: ErrorCode,
        message: String,
    },
    /// `wait_for_action` gave up before the action finished.
    #[error("hetzner action {action_id} still running at {progress}% when the deadline passed")]
    ActionDeadlineExceeded { action_id: ActionId, progress: u8 },
    /// No token in the environment, or an empty token file.
    #[error("no hetzner api token: {reason}")]
    MissingToken { reason: String },
    /// The token file could not be read.
    #[error("hetzner api token file {path} could not be read")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built (e.g. TLS backend initialisation).
    #[error("hetzner http client could not be built")]
    ClientBuild {
        #[source]
        source: reqwest::Error,
    },
    /// The base URL joined with a path is not a URL.
    #[error("invalid hetzner api url {url}")]
    InvalidUrl { url: String },
}

impl HcloudError {
    /// The API error code, when the failure came from the API (directly or via an action).
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Api { error, .. } | Self::RateLimited { error, .. } => Some(&error.code),
            Self::ActionFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The same call may succeed if made again later, unchanged: rate limits, timeouts,
    /// connection failures, 5xx answers and the transient API codes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Api { error, .. } => error.code.is_retryable() || error.status >= 500,
            Self::UnexpectedStatus { status, .. } => *status >= 500 || *status == 429,
            Self::Transport { source, .. } => {
                source.is_timeout() || source.is_connect() || source.is_request()
            }
            Self::ActionFailed { code, .. } => code.is_retryable(),
            Self::ActionDeadlineExceeded { .. } => true,
            Self::Decode { .. }
            | Self::UserDataTooLarge { .. }
            | Self::MissingToken { .. }
            | Self::TokenFile { .. }
            | Self::ClientBuild { .. }
            | Self::InvalidUrl { .. } => false,
        }
    }

    /// Hetzner has no capacity for this request (`resource_unavailable`,
    /// `resource_limit_exceeded`, `placement_error`), whether the create call itself was
    /// refused or its action failed: try the next server type or location.
    pub fn is_capacity_problem(&self) -> bool {
        self.code().is_some_and(ErrorCode::is_capacity_problem)
    }

    /// When a rate-limited call may be retried; `None` for every other error.
    pub fn retry_at(&self) -> Option<SystemTime> {
        match self {
            Self::RateLimited { retry_at, .. } => Some(*retry_at),
            _ => None,
        }
    }

    /// The resource does not exist (`not_found`): for a delete, the server is already gone.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(&ErrorCode::NotFound)
    }

    /// The request hit the client's per-request timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport { source, .. } if source.is_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_through_their_api_spelling() {
        let known = [
            "forbidden",
            "unauthorized",
            "invalid_input",
            "json_error",
            "locked",
            "not_found",
            "rate_limit_exceeded",
            "resource_limit_exceeded",
            "resource_unavailable",
            "server_error",
            "service_error",
            "uniqueness_error",
            "protected",
            "maintenance",
            "conflict",
            "unsupported_error",
            "token_readonly",
            "unavailable",
            "placement_error",
            "timeout",
        ];
        for spelling in known {
            let code = ErrorCode::from_api_code(spelling);
            assert!(!matches!(code, ErrorCode::Unknown(_)), "{spelling}");
            assert_eq!(code.as_str(), spelling);
        }
        let future = ErrorCode::from_api_code("brand_new_code");
        assert_eq!(future, ErrorCode::Unknown("brand_new_code".to_owned()));
        assert_eq!(future.as_str(), "brand_new_code");
    }

    #[test]
    fn capacity_codes_are_not_counted_as_retryable() {
        for code in [
            ErrorCode::ResourceUnavailable,
            ErrorCode::ResourceLimitExceeded,
            ErrorCode::PlacementError,
        ] {
            assert!(code.is_capacity_problem());
            assert!(!code.is_retryable());
        }
        assert!(ErrorCode::RateLimitExceeded.is_retryable());
        assert!(!ErrorCode::InvalidInput.is_retryable());
        assert!(!ErrorCode::InvalidInput.is_capacity_problem());
    }

    #[test]
    fn a_failed_action_with_a_capacity_code_is_a_capacity_problem() {
        let failed = HcloudError::ActionFailed {
            action_id: ActionId(7),
            code: ErrorCode::PlacementError,
            message: "no host".to_owned(),
        };
        assert!(failed.is_capacity_problem());
        assert!(!failed.is_retryable());
    }
}
