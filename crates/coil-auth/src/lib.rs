//! Coil's identity mechanisms, shared by the API replicas, the matchmaker and the game nodes.
//!
//! # What this crate owns
//! - [`password`]: new-password rules; Argon2id hashing and verification on a bounded
//!   blocking pool, with a dummy hash so an unknown user costs what a wrong password costs.
//! - [`access`]: access tokens (JWT, EdDSA/Ed25519): signing in the API, verifying anywhere
//!   with the public key only.
//! - [`secrets`]: refresh tokens and guest device secrets (random, stored as SHA-256).
//! - [`revocation`]: the session revocation list (in memory, or Redis with TTLs).
//! - [`events`]: the account-events bus (ban, session ended) for game nodes (tokio broadcast,
//!   or Redis pub/sub).
//! - [`ratelimit`]: GCRA rate limits per address and per account (governor in memory, or one
//!   Lua script on Redis shared by all replicas).
//! - [`client_ip`]: the client's address through trusted proxies only.
//! - [`username`]: username rules and their case/confusable uniqueness keys.
//! - [`Authenticator`]: "who sent this request": bearer token → verified, unrevoked claims.
//!
//! # What it must not do
//! Serve HTTP routes (that is `coil-api`), touch the database (that is `coil-store`), read the
//! clock except through [`clock::Clock`], block a runtime thread on a hash, or log a password,
//! a token or a key.

pub mod access;
pub mod client_ip;
pub mod clock;
pub mod events;
pub mod keyfile;
pub mod metrics;
pub mod password;
pub mod ratelimit;
pub mod redis_link;
pub mod revocation;
pub mod secrets;
pub mod username;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use access::{
    AccessClaims, AccessGrant, AccessKeyError, AccessTokenError, AccessTokenSettings,
    AccessTokenSigner, AccessTokenVerifier,
};
pub use client_ip::{ClientAddress, TrustedProxies};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, system_clock};
pub use events::{
    AccountEvent, AccountEventReceiver, AccountEvents, MemoryAccountEvents, Received,
    RedisAccountEvents,
};
pub use password::{Argon2Settings, PasswordError, PasswordHasher, Verified};
pub use ratelimit::{MemoryRateLimiter, RateDecision, RateLimiter, RateRule, RedisRateLimiter};
pub use redis_link::{RedisError, RedisLink};
pub use revocation::{MemoryRevocationList, RedisRevocationList, RevocationList, RevocationReason};

/// A boxed, sendable future: what the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a request's bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is malformed, forged, expired or not yet valid.
    #[error(transparent)]
    Token(#[from] AccessTokenError),
    /// The session ended (logout, takeover, revoked) after the token was issued.
    #[error("session has ended")]
    SessionEnded,
    /// The account is banned.
    #[error("account is banned")]
    Banned,
    /// The `Authorization` header is present but not `Bearer <token>`.
    #[error("authorization header must be \"Bearer <token>\"")]
    BadHeader,
    /// The revocation list could not be read; the token is refused rather than trusted.
    #[error("revocation list unavailable")]
    Unavailable(#[source] RedisError),
}

impl AuthError {
    /// Stable code for the JSON error.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Token(error) => error.code(),
            AuthError::SessionEnded => "session_ended",
            AuthError::Banned => "account_banned",
            AuthError::BadHeader => "bad_authorization",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

/// Verifies bearer tokens: signature and times ([`AccessTokenVerifier`]), then the
/// revocation list. Cheap to clone; what the matchmaker and the API call per request.
#[derive(Clone)]
pub struct Authenticator {
    verifier: AccessTokenVerifier,
    revocations: Arc<dyn RevocationList>,
    clock: SharedClock,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(
        verifier: AccessTokenVerifier,
        revocations: Arc<dyn RevocationList>,
        clock: SharedClock,
    ) -> Authenticator {
        Authenticator {
            verifier,
            revocations,
            clock,
        }
    }

    pub fn verifier(&self) -> &AccessTokenVerifier {
        &self.verifier
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The verified claims of an access token, refused if its session or account is revoked.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let claims = match self.verifier.verify(token, self.clock.now_ms()) {
            Ok(claims) => claims,
            Err(error) => {
                metrics::access_token_check(error.code());
                return Err(AuthError::Token(error));
            }
        };
        match self
            .revocations
            .check(&claims.account_id, &claims.session_id)
            .await
        {
            Ok(None) => {
                metrics::access_token_check("ok");
                Ok(claims)
            }
            Ok(Some(RevocationReason::SessionEnded)) => {
                metrics::access_token_check("session_ended");
                Err(AuthError::SessionEnded)
            }
            Ok(Some(RevocationReason::Banned)) => {
                metrics::access_token_check("banned");
                Err(AuthError::Banned)
            }
            Err(error) => {
                metrics::access_token_check("unavailable");
                Err(AuthError::Unavailable(error))
            }
        }
    }

    /// The claims of a request's `Authorization: Bearer …` header: `Ok(None)` when there is no
    /// such header (an anonymous request), an error when there is one that does not pass.
    pub async fn authenticate_headers(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<AccessClaims>, AuthError> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|text| {
                text.strip_prefix("Bearer ")
                    .or_else(|| text.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::BadHeader)?;
        self.authenticate(token).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coil_store::{AccountId, Role, SessionId};

    #[tokio::test]
    async fn bearer_headers_are_verified_and_checked_against_revocations() {
        let clock = ManualClock::starting_at(1_800_000_000_000);
        let signer = AccessTokenSigner::generate(AccessTokenSettings::default());
        let revocations = Arc::new(MemoryRevocationList::new(clock.shared()));
        let authenticator =
            Authenticator::new(signer.verifier(), revocations.clone(), clock.shared());
        let (account, session) = (AccountId::generate(), SessionId::generate());
        let (token, _) = signer
            .issue(
                &AccessGrant {
                    account_id: &account,
                    display_name: "Ada",
                    roles: &[Role::Player],
                    preferred_region: None,
                    session_id: &session,
                    guest: true,
                },
                clock.now_ms(),
            )
            .unwrap();
        let mut headers = http::HeaderMap::new();
        assert!(
            authenticator
                .authenticate_headers(&headers)
                .await
                .unwrap()
                .is_none()
        );
        headers.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(matches!(
            authenticator.authenticate_headers(&headers).await,
            Err(AuthError::BadHeader)
        ));
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let claims = authenticator
            .authenticate_headers(&headers)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claims.account_id, account);
        assert!(claims.guest);
        revocations
            .revoke_session(
                &session,
                RevocationReason::SessionEnded,
                clock.now_ms() + 60_000,
            )
            .await
            .unwrap();
        let refused = authenticator
            .authenticate_headers(&headers)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "session_ended");
        revocations
            .revoke_account(&account, RevocationReason::Banned, clock.now_ms() + 60_000)
            .await
            .unwrap();
        assert_eq!(
            authenticator.authenticate(&token).await.unwrap_err().code(),
            "account_banned"
        );
        clock.advance(std::time::Duration::from_secs(3600));
        assert_eq!(
            authenticator.authenticate(&token).await.unwrap_err().code(),
            "token_expired"
        );
    }
}
