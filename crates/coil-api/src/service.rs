//! What the accounts routes do, as plain async methods over the platform and the store, so
//! the HTTP handlers stay thin and the command line (`coil admin`) and tests call the same
//! code: register, login, guest, upgrade, refresh, logout, sessions, password change, roles,
//! bans.
//!
//! Every way a session ends goes through [`Accounts::sessions_ended`]: the revocation list
//! refuses the session's access tokens at once (on every replica), and the account-events bus
//! tells the game nodes. A ban also revokes the account as a whole.

use std::sync::Arc;
use std::time::Duration;

use coil_auth::secrets::{
    is_refresh_token_shaped, new_refresh_token, secret_hash, validate_device_secret,
};
use coil_auth::username::{login_key, username_keys};
use coil_auth::{
    AccessClaims, AccessGrant, AccountEvent, ClientAddress, RevocationReason,
    password::validate_new_password,
};
use coil_store::{
    Account, AccountId, AccountKind, AccountStore, Ban, NewSession, RefreshOutcome, Role, Session,
    SessionEndReason, SessionId,
};
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics as m;
use crate::platform::Platform;

/// Who is asking, as far as the network tells.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub address: ClientAddress,
    /// Truncated to 200 characters.
    pub user_agent: Option<String>,
}

/// The account part of a token answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    pub id: String,
    pub display_name: String,
    #[schema(value_type = Vec<String>)]
    pub roles: Vec<&'static str>,
    pub guest: bool,
}

impl AccountSummary {
    pub fn of(account: &Account) -> AccountSummary {
        AccountSummary {
            id: account.id.to_string(),
            display_name: account.display_name.clone(),
            roles: account.roles.iter().map(|role| role.as_str()).collect(),
            guest: account.kind == AccountKind::Guest,
        }
    }
}

/// Every successful login, guest, upgrade and refresh answers this.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenAnswer {
    pub access_token: String,
    pub refresh_token: String,
    /// Unix milliseconds.
    pub access_expires_at: u64,
    /// Unix milliseconds: the session ends then unless refreshed.
    pub refresh_expires_at: i64,
    pub account: AccountSummary,
}

/// The store and the platform together: the state of the accounts routes. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) platform: Platform,
    pub(crate) store: AccountStore,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

/// Guests are shown as `guest-` and six hex characters of their device secret's hash (stable
/// per device, and it says nothing about the secret).
fn guest_display_name(secret_hash: &str) -> String {
    format!("guest-{}", &secret_hash[..6])
}

impl Accounts {
    pub fn new(platform: Platform, store: AccountStore) -> Accounts {
        Accounts { platform, store }
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn store(&self) -> &AccountStore {
        &self.store
    }

    fn now_ms(&self) -> u64 {
        self.platform.clock().now_ms()
    }

    /// Until when a revocation entry must live: the longest an access token issued now (or
    /// just before) can still be accepted.
    fn revocation_until(&self) -> u64 {
        let config = &self.platform.config().access;
        self.now_ms() + (config.ttl + config.leeway + Duration::from_secs(1)).as_millis() as u64
    }

    fn issue(
        &self,
        account: &Account,
        session: &Session,
        refresh_token: String,
    ) -> Result<TokenAnswer, ApiError> {
        let grant = AccessGrant {
            account_id: &account.id,
            display_name: &account.display_name,
            roles: &account.roles,
            preferred_region: account.preferred_region.as_deref(),
            session_id: &session.id,
            guest: account.kind == AccountKind::Guest,
        };
        let (access_token, access_expires_at) = self
            .platform
            .inner
            .signer
            .issue(&grant, self.now_ms())
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        Ok(TokenAnswer {
            access_token,
            refresh_token,
            access_expires_at,
            refresh_expires_at: session.expires_at_ms,
            account: AccountSummary::of(account),
        })
    }

    async fn start_session(
        &self,
        account: &Account,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let now = self.now_ms() as i64;
        let refresh_token = new_refresh_token();
        let new = NewSession {
            refresh_token_hash: secret_hash(&refresh_token),
            expires_at_ms: now + self.platform.config().refresh_ttl.as_millis() as i64,
            user_agent: client.user_agent.clone(),
            client_ip: Some(client.address.to_string()),
        };
        let (session, taken_over) = self.store.start_session(&account.id, &new, now).await?;
        if !taken_over.is_empty() {
            self.sessions_ended(&account.id, &taken_over, SessionEndReason::Takeover)
                .await?;
        }
        m::session_started();
        self.issue(account, &session, refresh_token)
    }

    /// Revokes the sessions' access tokens on every replica and tells the game nodes. The
    /// database already ended them; this makes it take effect before their tokens expire.
    pub async fn sessions_ended(
        &self,
        account: &AccountId,
        sessions: &[SessionId],
        reason: SessionEndReason,
    ) -> Result<(), ApiError> {
        let until = self.revocation_until();
        let revocation = if reason == SessionEndReason::Banned {
            RevocationReason::Banned
        } else {
            RevocationReason::SessionEnded
        };
        for session in sessions {
            self.platform
                .inner
                .revocations
                .revoke_session(session, revocation, until)
                .await
                .map_err(|error| ApiError::Unavailable(error.to_string()))?;
            let event = AccountEvent::SessionEnded {
                account_id: account.clone(),
                session_id: session.clone(),
                reason,
            };
            // The revocation above is what makes the end authoritative; a lost event only
            // delays a node until the player's next token check, so it is logged, not fatal.
            if let Err(error) = self.platform.inner.events.publish(&event).await {
                tracing::warn!(cause = %error, "could not publish a session-ended event");
            }
            m::session_ended(reason.as_str());
        }
        Ok(())
    }

    async fn refuse_if_banned(&self, account: &AccountId) -> Result<(), ApiError> {
        match self.store.active_ban(account, self.now_ms() as i64).await? {
            Some(ban) => Err(ApiError::Banned(ban)),
            None => Ok(()),
        }
    }

    /// `POST /api/auth/register`.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        preferred_region: Option<&str>,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let limits = &self.platform.config().limits;
        self.platform
            .limit_address(limits.register_ip, client.address, None)
            .await?;
        let name =
            username_keys(username).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        validate_new_password(password).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let hash = self.platform.inner.hasher.hash(password).await?;
        let account = self
            .store
            .create_registered(&name, &hash, preferred_region, self.now_ms() as i64)
            .await?;
        m::account_created("registered");
        self.start_session(&account, client).await
    }

    /// `POST /api/auth/login`. Wrong password, unknown user and guest all answer
    /// [`ApiError::InvalidCredentials`] after exactly one Argon2 verification.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let limits = &self.platform.config().limits;
        // Bound the key: the body limit allows kilobytes, a username is 16 characters.
        let key: String = login_key(username).chars().take(64).collect();
        self.platform
            .limit_address(limits.login_ip, client.address, None)
            .await?;
        self.platform
            .limit_address(limits.login_ip_account, client.address, Some(&key))
            .await?;
        self.platform
            .limit(limits.login_account, &format!("acct:{key}"))
            .await?;
        let found = self.store.login_lookup(&key).await?;
        let stored_hash = found.as_ref().map(|(_, hash)| hash.as_str());
        let verified = self
            .platform
            .inner
            .hasher
            .verify(password, stored_hash)
            .await?;
        let Some((account, hash)) = found.filter(|_| verified.matches) else {
            m::login("invalid");
            return Err(ApiError::InvalidCredentials);
        };
        self.refuse_if_banned(&account.id)
            .await
            .inspect_err(|_| m::login("banned"))?;
        if verified.needs_rehash {
            // Parameters were raised since this hash was made; the proven password gets the
            // new cost now. A failure only means it is tried again next login.
            match self.platform.inner.hasher.hash(password).await {
                Ok(fresh) => {
                    if let Err(error) = self.store.rehash_password(&account.id, &hash, &fresh).await
                    {
                        tracing::warn!(cause = %error, "could not store a rehashed password");
                    }
                }
                Err(error) => tracing::warn!(cause = %error, "could not rehash a password"),
            }
        }
        m::login("ok");
        self.start_session(&account, client).await
    }

    /// `POST /api/auth/guest`: the guest account of this device secret, created on first use.
    pub async fn guest(
        &self,
        device_secret: &str,
        preferred_region: Option<&str>,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let limits = &self.platform.config().limits;
        self.platform
            .limit_address(limits.guest_ip, client.address, None)
            .await?;
        validate_device_secret(device_secret)
            .map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let hash = secret_hash(device_secret);
        let (account, created) = self
            .store
            .guest_for_device(
                &hash,
                &guest_display_name(&hash),
                preferred_region,
                self.now_ms() as i64,
            )
            .await?;
        if created {
            m::account_created("guest");
        }
        self.refuse_if_banned(&account.id).await?;
        self.start_session(&account, client).await
    }

    /// `POST /api/auth/upgrade`: the caller's guest account gets a username and password and
    /// keeps its id (and so everything tied to it); the device secret stops working.
    pub async fn upgrade(
        &self,
        caller: &AccessClaims,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let limits = &self.platform.config().limits;
        self.platform
            .limit_address(limits.register_ip, client.address, None)
            .await?;
        if !caller.guest {
            return Err(ApiError::Forbidden("only a guest account can be upgraded"));
        }
        let name =
            username_keys(username).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        validate_new_password(password).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let hash = self.platform.inner.hasher.hash(password).await?;
        let now = self.now_ms() as i64;
        let account = self
            .store
            .upgrade_guest(&caller.account_id, &name, &hash, now)
            .await?;
        m::account_created("upgraded");
        // Fresh tokens for the same session: the name in the access token changed.
        let refresh_token = new_refresh_token();
        if !self
            .store
            .replace_refresh(&caller.session_id, &secret_hash(&refresh_token), now)
            .await?
        {
            return Err(ApiError::Auth(coil_auth::AuthError::SessionEnded));
        }
        let session = self
            .store
            .live_session(&caller.session_id, now)
            .await?
            .ok_or(ApiError::Auth(coil_auth::AuthError::SessionEnded))?;
        self.issue(&account, &session, refresh_token)
    }

    /// `POST /api/auth/refresh`: rotates the refresh token; a replayed one ends its session.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenAnswer, ApiError> {
        let limits = &self.platform.config().limits;
        self.platform
            .limit_address(limits.refresh_ip, client.address, None)
            .await?;
        if !is_refresh_token_shaped(refresh_token) {
            m::refresh("invalid");
            return Err(ApiError::RefreshInvalid);
        }
        let now = self.now_ms() as i64;
        let next = new_refresh_token();
        let outcome = self
            .store
            .rotate_refresh(
                &secret_hash(refresh_token),
                &secret_hash(&next),
                now + self.platform.config().refresh_ttl.as_millis() as i64,
                now,
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated { account, session } => {
                m::refresh("ok");
                self.issue(&account, &session, next)
            }
            RefreshOutcome::Replayed {
                account_id,
                session_id,
            } => {
                m::refresh("replayed");
                tracing::warn!(account = %account_id, "refresh token replayed; session family ended");
                self.sessions_ended(
                    &account_id,
                    &[session_id],
                    SessionEndReason::RefreshReplayed,
                )
                .await?;
                Err(ApiError::RefreshReused)
            }
            RefreshOutcome::Banned {
                account_id,
                session_id,
                ban,
            } => {
                m::refresh("banned");
                self.sessions_ended(&account_id, &[session_id], SessionEndReason::Banned)
                    .await?;
                Err(ApiError::Banned(ban))
            }
            RefreshOutcome::SessionEnded | RefreshOutcome::Unknown => {
                m::refresh("invalid");
                Err(ApiError::RefreshInvalid)
            }
        }
    }

    /// `POST /api/auth/logout`: ends the session of the access token, or of the refresh token
    /// when the access token is gone or expired. Idempotent.
    pub async fn logout(
        &self,
        caller: Option<&AccessClaims>,
        refresh_token: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = self.now_ms() as i64;
        if let Some(caller) = caller {
            self.store
                .end_session(
                    &caller.account_id,
                    &caller.session_id,
                    SessionEndReason::Logout,
                    now,
                )
                .await?;
            // Revoke even when the store says it was already ended: a retried logout after a
            // Redis hiccup must still reach the list.
            return self
                .sessions_ended(
                    &caller.account_id,
                    std::slice::from_ref(&caller.session_id),
                    SessionEndReason::Logout,
                )
                .await;
        }
        let Some(refresh_token) = refresh_token.filter(|token| is_refresh_token_shaped(token))
        else {
            return Err(ApiError::Unauthenticated);
        };
        if let Some((account, session)) = self
            .store
            .end_session_by_refresh(&secret_hash(refresh_token), SessionEndReason::Logout, now)
            .await?
        {
            self.sessions_ended(&account, &[session], SessionEndReason::Logout)
                .await?;
        }
        Ok(())
    }

    /// `GET /api/me`.
    pub async fn me(&self, caller: &AccessClaims) -> Result<Account, ApiError> {
        self.store
            .account(&caller.account_id)
            .await?
            .ok_or(ApiError::NotFound("no such account"))
    }

    /// `PATCH /api/me`.
    pub async fn update_me(
        &self,
        caller: &AccessClaims,
        single_session: Option<bool>,
        preferred_region: Option<Option<&str>>,
    ) -> Result<Account, ApiError> {
        let now = self.now_ms() as i64;
        if let Some(enabled) = single_session {
            self.store
                .set_single_session(&caller.account_id, enabled, now)
                .await?;
        }
        if let Some(region) = preferred_region {
            self.store
                .set_preferred_region(&caller.account_id, region, now)
                .await?;
        }
        self.me(caller).await
    }

    /// `GET /api/sessions`.
    pub async fn sessions(&self, caller: &AccessClaims) -> Result<Vec<Session>, ApiError> {
        Ok(self
            .store
            .live_sessions(&caller.account_id, self.now_ms() as i64)
            .await?)
    }

    /// `DELETE /api/sessions/{id}`.
    pub async fn end_session(
        &self,
        caller: &AccessClaims,
        session: &SessionId,
    ) -> Result<(), ApiError> {
        let ended = self
            .store
            .end_session(
                &caller.account_id,
                session,
                SessionEndReason::Revoked,
                self.now_ms() as i64,
            )
            .await?;
        if !ended {
            return Err(ApiError::NotFound("no such session"));
        }
        self.sessions_ended(
            &caller.account_id,
            std::slice::from_ref(session),
            SessionEndReason::Revoked,
        )
        .await
    }

    /// `DELETE /api/sessions`: ends every session of the account, the caller's included.
    pub async fn end_all_sessions(&self, caller: &AccessClaims) -> Result<usize, ApiError> {
        let ended = self
            .store
            .end_all_sessions(
                &caller.account_id,
                SessionEndReason::Revoked,
                None,
                self.now_ms() as i64,
            )
            .await?;
        self.sessions_ended(&caller.account_id, &ended, SessionEndReason::Revoked)
            .await?;
        Ok(ended.len())
    }

    /// `POST /api/auth/password`: checks the current password, stores the new one, ends every
    /// other session. Returns how many ended.
    pub async fn change_password(
        &self,
        caller: &AccessClaims,
        current: &str,
        new: &str,
    ) -> Result<usize, ApiError> {
        let stored = self.store.password_hash(&caller.account_id).await?;
        let verified = self
            .platform
            .inner
            .hasher
            .verify(current, stored.as_deref())
            .await?;
        if !verified.matches {
            return Err(ApiError::InvalidCredentials);
        }
        validate_new_password(new).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        let hash = self.platform.inner.hasher.hash(new).await?;
        let ended = self
            .store
            .change_password(
                &caller.account_id,
                &hash,
                Some(&caller.session_id),
                self.now_ms() as i64,
            )
            .await?;
        self.sessions_ended(
            &caller.account_id,
            &ended,
            SessionEndReason::PasswordChanged,
        )
        .await?;
        Ok(ended.len())
    }

    /// Bans an account: no login, refresh or matchmake; every session ends, every access token
    /// is refused at once, and game nodes are told to end its connections.
    pub async fn ban(
        &self,
        account: &AccountId,
        reason: &str,
        until_ms: Option<i64>,
    ) -> Result<Ban, ApiError> {
        let (ban, ended) = self
            .store
            .ban(account, reason, until_ms, self.now_ms() as i64)
            .await?;
        // The account entry covers tokens of a login that raced the ban; it lives as long as
        // such a token can, or until the ban ends if that is sooner.
        let mut until = self.revocation_until();
        if let Some(ban_end) = until_ms {
            until = until.min(ban_end.max(0) as u64);
        }
        self.platform
            .inner
            .revocations
            .revoke_account(account, RevocationReason::Banned, until)
            .await
            .map_err(|error| ApiError::Unavailable(error.to_string()))?;
        self.sessions_ended(account, &ended, SessionEndReason::Banned)
            .await?;
        let event = AccountEvent::Banned {
            account_id: account.clone(),
            reason: ban.reason.clone(),
            until_ms,
        };
        if let Err(error) = self.platform.inner.events.publish(&event).await {
            tracing::warn!(cause = %error, "could not publish a ban event");
        }
        m::ban();
        Ok(ban)
    }

    /// Lifts an account's bans. Returns how many were in force.
    pub async fn unban(&self, account: &AccountId) -> Result<u64, ApiError> {
        let lifted = self.store.lift_bans(account, self.now_ms() as i64).await?;
        self.platform
            .inner
            .revocations
            .clear_account(account)
            .await
            .map_err(|error| ApiError::Unavailable(error.to_string()))?;
        Ok(lifted)
    }

    /// Grants a role (`coil admin grant-role`).
    pub async fn grant_role(&self, account: &AccountId, role: Role) -> Result<bool, ApiError> {
        Ok(self
            .store
            .grant_role(account, role, self.now_ms() as i64)
            .await?)
    }

    /// Revokes a role (`coil admin revoke-role`).
    pub async fn revoke_role(&self, account: &AccountId, role: Role) -> Result<bool, ApiError> {
        Ok(self.store.revoke_role(account, role).await?)
    }
}

/// Deletes sessions that ended or expired more than a day ago, every `every`, until the
/// process ends. A failure is logged and tried again next time.
pub(crate) fn spawn_maintenance(accounts: Accounts, every: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let accounts = Arc::new(accounts);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let before = accounts.now_ms() as i64 - 24 * 3600 * 1000;
            match accounts.store.prune_sessions(before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned dead sessions"),
                Err(error) => tracing::warn!(cause = %error, "pruning sessions failed"),
            }
        }
    });
}
