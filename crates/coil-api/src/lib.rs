//! The player platform's HTTP API, as an axum `Router` that `coil serve` and `coil matchmaker`
//! both mount. Today: accounts and sessions (issue 19); later issues add lobbies, parties,
//! donations and admin routes here.
//!
//! # What this crate owns
//! - [`Platform`]: the identity services of one process for its shape (in memory, or on
//!   Redis): access-token signer and [`coil_auth::Authenticator`], revocation list, account
//!   events bus, rate limiter, password pool. It needs no database.
//! - [`Accounts`] (in `service.rs`): what each route does, over the platform and
//!   [`coil_store::AccountStore`]; also what `coil admin` calls (roles, bans).
//! - `routes.rs`: `POST /api/auth/{register,login,guest,upgrade,refresh,logout,password}`,
//!   `GET|PATCH /api/me`, `GET|DELETE /api/sessions`, `DELETE /api/sessions/{id}`.
//! - [`extract`]: [`Caller`] / [`MaybeCaller`] (the verified access claims of a request) and
//!   [`Peer`] (the TCP peer) for any router.
//! - [`node_limits`]: the rate limits the game node's own routes get (WebSocket joins,
//!   leaderboard submissions).
//! - [`openapi`]: what every OpenAPI document shares (the error body and its codes, the
//!   bearer schemes); `routes::openapi` documents the accounts routes.
//! - [`config`]: `#[derive(clap::Args)]` settings, validated; [`cli`]: `coil admin`.
//!
//! # What it must not do
//! Place players or sign join tokens (the matchmaker in `coil-server` does, after asking
//! [`Platform::admit_matchmake`]), run game rules, hold a lock across `.await`, trust a
//! client-supplied identity, or send internal error text to a client.

pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod node_limits;
pub mod openapi;
pub mod platform;
pub mod routes;
pub mod service;

pub use config::{
    AccountsArgs, AccountsConfig, ConfigError, FleetAccountsArgs, RateLimits, SigningKeySource,
};
pub use error::ApiError;
pub use extract::{AuthState, Caller, MaybeCaller, Peer};
pub use platform::{Platform, PlatformError};
pub use service::{AccountSummary, Accounts, ClientInfo, TokenAnswer};
