//! The session revocation list: what every verifier checks after a token's signature, so a
//! logout, a ban or a takeover takes effect at once on every replica instead of when the
//! access token expires.
//!
//! Entries are keyed by session (`sid`, which every access token of a session carries, across
//! refreshes) and by account (bans: refuse every token of the account, including one issued by
//! a login that raced the ban). An entry lives only as long as a token it refuses can: the
//! access-token lifetime plus the leeway, passed in as `until_ms`. After that, the token is
//! expired anyway and the database refuses the refresh, so the list never grows beyond the
//! revocations of the last ~15 minutes.
//!
//! Two implementations: [`MemoryRevocationList`] (all-in-one: one process is every replica)
//! and [`RedisRevocationList`] (fleet: `SET … PX` per entry, one `MGET` per check).

use std::collections::HashMap;
use std::sync::Mutex;

use coil_store::{AccountId, SessionId};
use redis::AsyncCommands;

use crate::BoxFuture;
use crate::clock::SharedClock;
use crate::redis_link::{RedisError, RedisLink};

/// Why a token is refused by the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// The session ended (logout, revoked from the list, takeover, password change, replay).
    SessionEnded,
    /// The account is banned.
    Banned,
}

impl RevocationReason {
    fn as_str(self) -> &'static str {
        match self {
            RevocationReason::SessionEnded => "ended",
            RevocationReason::Banned => "banned",
        }
    }

    fn parse(text: &str) -> RevocationReason {
        // Anything unexpected still refuses: a revocation entry is never ignored.
        if text == "banned" {
            RevocationReason::Banned
        } else {
            RevocationReason::SessionEnded
        }
    }
}

/// The shared list. Implementations must make a revocation visible to every later `check`
/// on any replica once `revoke_*` has returned `Ok`.
pub trait RevocationList: Send + Sync + std::fmt::Debug {
    /// Refuse tokens of `session` until `until_ms`.
    fn revoke_session<'a>(
        &'a self,
        session: &'a SessionId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>>;

    /// Refuse every token of `account` until `until_ms` (bans).
    fn revoke_account<'a>(
        &'a self,
        account: &'a AccountId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>>;

    /// Drops the account entry (a ban lifted early).
    fn clear_account<'a>(&'a self, account: &'a AccountId)
    -> BoxFuture<'a, Result<(), RedisError>>;

    /// The reason a token of (`account`, `session`) is refused, if it is. An account entry
    /// (ban) wins over a session entry.
    fn check<'a>(
        &'a self,
        account: &'a AccountId,
        session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<RevocationReason>, RedisError>>;
}

/// In-process list for the all-in-one shape. Expired entries are dropped as the list is used.
#[derive(Debug)]
pub struct MemoryRevocationList {
    clock: SharedClock,
    entries: Mutex<HashMap<String, (RevocationReason, u64)>>,
}

/// Entries at which an insert first sweeps out expired ones (amortized, so a check never
/// scans the map).
const MEMORY_SWEEP_AT: usize = 4096;

impl MemoryRevocationList {
    pub fn new(clock: SharedClock) -> MemoryRevocationList {
        MemoryRevocationList {
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Entries held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, key: String, reason: RevocationReason, until_ms: u64) {
        let now = self.clock.now_ms();
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if entries.len() >= MEMORY_SWEEP_AT && entries.len().is_power_of_two() {
            entries.retain(|_, (_, until)| *until > now);
        }
        let entry = entries.entry(key).or_insert((reason, until_ms));
        // Keep the strongest reason and the longest life of two revocations of one key.
        if reason == RevocationReason::Banned {
            entry.0 = reason;
        }
        entry.1 = entry.1.max(until_ms);
    }

    fn live(&self, key: &str, now: u64) -> Option<RevocationReason> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(reason, _)| *reason)
    }
}

impl RevocationList for MemoryRevocationList {
    fn revoke_session<'a>(
        &'a self,
        session: &'a SessionId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        self.insert(format!("s:{session}"), reason, until_ms);
        Box::pin(async { Ok(()) })
    }

    fn revoke_account<'a>(
        &'a self,
        account: &'a AccountId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        self.insert(format!("a:{account}"), reason, until_ms);
        Box::pin(async { Ok(()) })
    }

    fn clear_account<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        entries.remove(&format!("a:{account}"));
        Box::pin(async { Ok(()) })
    }

    fn check<'a>(
        &'a self,
        account: &'a AccountId,
        session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<RevocationReason>, RedisError>> {
        let now = self.clock.now_ms();
        let found = self
            .live(&format!("a:{account}"), now)
            .or_else(|| self.live(&format!("s:{session}"), now));
        Box::pin(async move { Ok(found) })
    }
}

/// The fleet's list: `{prefix}rv:s:{session}` and `{prefix}rv:a:{account}` with a TTL, so
/// every replica (and anything else on that Redis) sees a revocation at once and Redis drops
/// it when no token it refuses can still be alive.
#[derive(Debug, Clone)]
pub struct RedisRevocationList {
    link: RedisLink,
    clock: SharedClock,
}

impl RedisRevocationList {
    pub fn new(link: RedisLink, clock: SharedClock) -> RedisRevocationList {
        RedisRevocationList { link, clock }
    }

    async fn set(
        &self,
        key: String,
        reason: RevocationReason,
        until_ms: u64,
    ) -> Result<(), RedisError> {
        let ttl_ms = until_ms.saturating_sub(self.clock.now_ms()).max(1);
        let mut connection = self.link.connection.clone();
        if reason == RevocationReason::Banned {
            self.link
                .run(
                    "revoke",
                    connection.pset_ex::<_, _, ()>(key, reason.as_str(), ttl_ms),
                )
                .await
        } else {
            // NX: a session entry never downgrades a ban stored under the same key (there is
            // none today, but the rule keeps the list monotonic).
            let options = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(ttl_ms));
            self.link
                .run(
                    "revoke",
                    connection.set_options::<_, _, Option<String>>(key, reason.as_str(), options),
                )
                .await
                .map(|_| ())
        }
    }
}

impl RevocationList for RedisRevocationList {
    fn revoke_session<'a>(
        &'a self,
        session: &'a SessionId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        Box::pin(self.set(
            self.link.key(&["rv", "s", session.as_str()]),
            reason,
            until_ms,
        ))
    }

    fn revoke_account<'a>(
        &'a self,
        account: &'a AccountId,
        reason: RevocationReason,
        until_ms: u64,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        Box::pin(self.set(
            self.link.key(&["rv", "a", account.as_str()]),
            reason,
            until_ms,
        ))
    }

    fn clear_account<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<(), RedisError>> {
        Box::pin(async move {
            let mut connection = self.link.connection.clone();
            let key = self.link.key(&["rv", "a", account.as_str()]);
            self.link
                .run("clear revocation", connection.del::<_, ()>(key))
                .await
        })
    }

    fn check<'a>(
        &'a self,
        account: &'a AccountId,
        session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<RevocationReason>, RedisError>> {
        Box::pin(async move {
            let mut connection = self.link.connection.clone();
            let keys = [
                self.link.key(&["rv", "a", account.as_str()]),
                self.link.key(&["rv", "s", session.as_str()]),
            ];
            let values: Vec<Option<String>> = self
                .link
                .run("check revocation", connection.mget(&keys[..]))
                .await?;
            Ok(values
                .into_iter()
                .flatten()
                .map(|value| RevocationReason::parse(&value))
                .next())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[tokio::test]
    async fn memory_entries_refuse_until_their_time_and_bans_win() {
        let clock = ManualClock::starting_at(1_000);
        let list = MemoryRevocationList::new(clock.shared());
        let (account, session, other) = (
            AccountId::generate(),
            SessionId::generate(),
            SessionId::generate(),
        );
        assert_eq!(list.check(&account, &session).await.unwrap(), None);
        list.revoke_session(&session, RevocationReason::SessionEnded, 5_000)
            .await
            .unwrap();
        assert_eq!(
            list.check(&account, &session).await.unwrap(),
            Some(RevocationReason::SessionEnded)
        );
        assert_eq!(list.check(&account, &other).await.unwrap(), None);
        list.revoke_account(&account, RevocationReason::Banned, 3_000)
            .await
            .unwrap();
        assert_eq!(
            list.check(&account, &other).await.unwrap(),
            Some(RevocationReason::Banned)
        );
        assert_eq!(
            list.check(&account, &session).await.unwrap(),
            Some(RevocationReason::Banned)
        );
        clock.advance(Duration::from_millis(2_000));
        assert_eq!(
            list.check(&account, &other).await.unwrap(),
            None,
            "ban entry expired"
        );
        assert_eq!(
            list.check(&account, &session).await.unwrap(),
            Some(RevocationReason::SessionEnded)
        );
        list.revoke_account(&account, RevocationReason::Banned, 10_000)
            .await
            .unwrap();
        list.clear_account(&account).await.unwrap();
        assert_eq!(list.check(&account, &other).await.unwrap(), None);
        clock.advance(Duration::from_millis(2_000));
        assert_eq!(list.check(&account, &session).await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_list_sweeps_expired_entries() {
        let clock = ManualClock::starting_at(0);
        let list = MemoryRevocationList::new(clock.shared());
        for _ in 0..MEMORY_SWEEP_AT {
            list.revoke_session(&SessionId::generate(), RevocationReason::SessionEnded, 10)
                .await
                .unwrap();
        }
        clock.set(20);
        list.revoke_session(&SessionId::generate(), RevocationReason::SessionEnded, 30)
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
    }
}
