//! The identity platform one process runs: signing key, verifier, revocation list, account
//! events, rate limiter, password pool and clock, built for a shape:
//! [`Platform::in_memory`] (all-in-one) or [`Platform::on_redis`] (fleet replicas sharing one
//! Redis). It needs no database, so `coil serve` can build it (and hand the matchmaker its
//! [`Platform::authenticator`]) before the store is connected; [`Platform::router`] then takes
//! the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use coil_auth::{
    AccessClaims, AccessTokenSigner, AccountEvents, Authenticator, ClientAddress,
    MemoryAccountEvents, MemoryRateLimiter, MemoryRevocationList, PasswordHasher, RateDecision,
    RateLimiter, RateRule, RedisAccountEvents, RedisLink, RedisRateLimiter, RedisRevocationList,
    RevocationList, SharedClock,
};
use coil_store::AccountStore;

use crate::config::{AccountsConfig, SigningKeySource};
use crate::error::ApiError;

/// Why the platform could not be built (startup; the message names what to fix).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("access-token signing key: {0}")]
    SigningKey(#[from] coil_auth::AccessKeyError),
    #[error("ARGON2_*: {0}")]
    Password(#[from] coil_auth::PasswordError),
    #[error("REDIS_URL (accounts): {0}")]
    Redis(#[from] coil_auth::RedisError),
}

/// Everything identity needs except the database. Cheap to clone.
#[derive(Clone)]
pub struct Platform {
    pub(crate) inner: Arc<PlatformInner>,
}

pub(crate) struct PlatformInner {
    pub config: AccountsConfig,
    pub signer: AccessTokenSigner,
    pub authenticator: Authenticator,
    pub revocations: Arc<dyn RevocationList>,
    pub events: Arc<dyn AccountEvents>,
    pub limiter: Arc<dyn RateLimiter>,
    pub hasher: Arc<PasswordHasher>,
    pub clock: SharedClock,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("signer", &self.inner.signer)
            .finish_non_exhaustive()
    }
}

fn load_signer(config: &AccountsConfig) -> Result<AccessTokenSigner, PlatformError> {
    let settings = config.access.clone();
    Ok(match &config.signing_key {
        SigningKeySource::Inline(seed) => AccessTokenSigner::from_seed_base64(seed, settings)?,
        SigningKeySource::File { path, create: true } => {
            AccessTokenSigner::load_or_create(path, settings)?
        }
        SigningKeySource::File {
            path,
            create: false,
        } => {
            let text =
                std::fs::read_to_string(path).map_err(|source| coil_auth::AccessKeyError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            AccessTokenSigner::from_seed_base64(&text, settings)?
        }
    })
}

impl Platform {
    /// From explicit parts (tests, benches, and the two constructors below).
    pub fn from_parts(
        config: AccountsConfig,
        signer: AccessTokenSigner,
        revocations: Arc<dyn RevocationList>,
        events: Arc<dyn AccountEvents>,
        limiter: Arc<dyn RateLimiter>,
        clock: SharedClock,
    ) -> Result<Platform, PlatformError> {
        let hasher = Arc::new(PasswordHasher::new(config.argon2.clone())?);
        let authenticator =
            Authenticator::new(signer.verifier(), revocations.clone(), clock.clone());
        Ok(Platform {
            inner: Arc::new(PlatformInner {
                config,
                signer,
                authenticator,
                revocations,
                events,
                limiter,
                hasher,
                clock,
            }),
        })
    }

    /// The all-in-one shape: everything shared lives in this process.
    pub fn in_memory(
        config: AccountsConfig,
        clock: SharedClock,
    ) -> Result<Platform, PlatformError> {
        let signer = load_signer(&config)?;
        Platform::from_parts(
            config,
            signer,
            Arc::new(MemoryRevocationList::new(clock.clone())),
            Arc::new(MemoryAccountEvents::default()),
            Arc::new(MemoryRateLimiter::new(clock.clone())),
            clock,
        )
    }

    /// The fleet shape: revocations, rate limits and events on Redis, shared by every replica
    /// and game node on it.
    pub async fn on_redis(
        config: AccountsConfig,
        redis_url: &str,
        clock: SharedClock,
    ) -> Result<Platform, PlatformError> {
        let signer = load_signer(&config)?;
        let link = RedisLink::connect(
            redis_url,
            &config.redis_key_prefix,
            coil_auth::redis_link::DEFAULT_REDIS_TIMEOUT,
        )
        .await?;
        Platform::from_parts(
            config,
            signer,
            Arc::new(RedisRevocationList::new(link.clone(), clock.clone())),
            Arc::new(RedisAccountEvents::start(link.clone())),
            Arc::new(RedisRateLimiter::new(link, clock.clone())),
            clock,
        )
    }

    pub fn config(&self) -> &AccountsConfig {
        &self.inner.config
    }

    /// Verifies bearer tokens (signature, times, revocation): for the matchmaker and others.
    pub fn authenticator(&self) -> Authenticator {
        self.inner.authenticator.clone()
    }

    /// The account-events bus game nodes subscribe to.
    pub fn events(&self) -> Arc<dyn AccountEvents> {
        self.inner.events.clone()
    }

    pub fn limiter(&self) -> Arc<dyn RateLimiter> {
        self.inner.limiter.clone()
    }

    pub fn password_hasher(&self) -> Arc<PasswordHasher> {
        self.inner.hasher.clone()
    }

    /// The access-token public key, base64 (for verifiers elsewhere).
    pub fn access_public_key_base64(&self) -> String {
        self.inner.signer.public_key_base64()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The client address of a request from `peer` (the TCP peer; `None` when the server was
    /// not started with connect info, which then keys everyone as one unknown client).
    pub fn client_address(
        &self,
        peer: Option<SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> ClientAddress {
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.inner
            .config
            .trusted_proxies
            .client_address(peer, headers)
    }

    /// Hashes a secret that is not an account password (a lobby's) with the accounts' Argon2id
    /// settings and bounded pool.
    pub async fn hash_secret(&self, secret: &str) -> Result<String, ApiError> {
        Ok(self.inner.hasher.hash(secret).await?)
    }

    /// Whether `secret` matches a hash made by [`Platform::hash_secret`] (one Argon2 run).
    pub async fn verify_secret(&self, secret: &str, hash: &str) -> Result<bool, ApiError> {
        Ok(self.inner.hasher.verify(secret, Some(hash)).await?.matches)
    }

    /// Who is calling: a verified access token's claims, `None` without a bearer token (no
    /// rate limit applied; the route decides what anonymous callers may do).
    pub async fn caller(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<AccessClaims>, ApiError> {
        Ok(self
            .inner
            .authenticator
            .authenticate_headers(headers)
            .await?)
    }

    /// Applies one rule to one key: `Err(RateLimited)` when over. A `None` rule is off.
    pub async fn limit(&self, rule: Option<RateRule>, key: &str) -> Result<(), ApiError> {
        let Some(rule) = rule else {
            return Ok(());
        };
        match self.inner.limiter.check(&rule, key).await {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(ApiError::RateLimited { retry_after }),
        }
    }

    /// A per-address rule, unless the address is exempt (`RATE_LIMIT_EXEMPT`).
    pub async fn limit_address(
        &self,
        rule: Option<RateRule>,
        address: ClientAddress,
        suffix: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.is_exempt(address) {
            return Ok(());
        }
        let key = match suffix {
            Some(suffix) => format!("{}|{suffix}", address.rate_limit_key()),
            None => address.rate_limit_key(),
        };
        self.limit(rule, &key).await
    }

    fn is_exempt(&self, address: ClientAddress) -> bool {
        self.inner.config.limits.exempt.contains(address.0)
    }

    /// What `POST /api/matchmake` asks before placing anyone: the address limit, then the
    /// bearer token if there is one (refused → 401/403), then the account limit, and whether
    /// anonymous play is allowed. `Ok(None)`: an anonymous player.
    pub async fn admit_matchmake(
        &self,
        peer: Option<SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Result<Option<AccessClaims>, ApiError> {
        let limits = &self.inner.config.limits;
        let address = self.client_address(peer, headers);
        self.limit_address(limits.matchmake_ip, address, None)
            .await?;
        let claims = self
            .inner
            .authenticator
            .authenticate_headers(headers)
            .await?;
        match &claims {
            Some(claims) => {
                self.limit(
                    limits.matchmake_account,
                    &format!("acct:{}", claims.account_id),
                )
                .await?;
            }
            None if !self.inner.config.allow_anonymous_matchmaking => {
                return Err(ApiError::Unauthenticated);
            }
            None => {}
        }
        Ok(claims)
    }

    /// The accounts routes over `store` (and a background task that prunes dead sessions).
    pub fn router(&self, store: AccountStore) -> axum::Router {
        let accounts = crate::service::Accounts::new(self.clone(), store);
        crate::service::spawn_maintenance(accounts.clone(), Duration::from_secs(3600));
        crate::routes::router(accounts)
    }
}
