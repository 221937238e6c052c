//! The account-events bus: how game nodes learn, within seconds and without polling the
//! database, that a player's account was banned or one of its sessions ended (logout,
//! takeover by a new login in single-session mode, "end all sessions", a password change).
//! A node subscribes once and ends the matching live connections.
//!
//! Two implementations of [`AccountEvents`]:
//! - [`MemoryAccountEvents`]: a tokio broadcast channel (all-in-one: the API and the rooms are
//!   one process).
//! - [`RedisAccountEvents`]: Redis pub/sub on `{prefix}events`. One background task per process
//!   holds the subscription, reconnects with a capped backoff, and fans messages out to local
//!   receivers through the same broadcast channel.
//!
//! Delivery is at most once (that is what pub/sub and a bounded broadcast give). A receiver is
//! told when it may have missed events: [`Received::Missed`] after it lagged behind the
//! channel's capacity or after the Redis subscription dropped. A consumer answers a miss by
//! re-checking the sessions it holds against the revocation list, which stays authoritative for
//! the access-token lifetime.

use std::sync::Arc;
use std::time::Duration;

use coil_store::{AccountId, SessionEndReason, SessionId};
use futures_util::StreamExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::BoxFuture;
use crate::metrics as m;
use crate::redis_link::{RedisError, RedisLink};

/// Events buffered per receiver. A receiver further behind than this loses the oldest and is
/// told ([`Received::Missed`]); bans and logouts are rare, so 1,024 is minutes of backlog.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// Something a game node must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEvent {
    /// The account is banned: end every connection of it.
    Banned {
        account_id: AccountId,
        reason: String,
        /// Unix ms; `None` is forever.
        until_ms: Option<i64>,
    },
    /// One session ended: end connections made with that session's tokens (and, for a
    /// takeover, the account's older connections).
    SessionEnded {
        account_id: AccountId,
        session_id: SessionId,
        reason: SessionEndReason,
    },
}

impl AccountEvent {
    pub fn account_id(&self) -> &AccountId {
        match self {
            AccountEvent::Banned { account_id, .. }
            | AccountEvent::SessionEnded { account_id, .. } => account_id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            AccountEvent::Banned { .. } => "banned",
            AccountEvent::SessionEnded { .. } => "session_ended",
        }
    }

    /// The JSON form published on Redis.
    pub fn to_json(&self) -> String {
        let wire = match self {
            AccountEvent::Banned {
                account_id,
                reason,
                until_ms,
            } => Wire::Banned {
                account_id: account_id.to_string(),
                reason: reason.clone(),
                until_ms: *until_ms,
            },
            AccountEvent::SessionEnded {
                account_id,
                session_id,
                reason,
            } => Wire::SessionEnded {
                account_id: account_id.to_string(),
                session_id: session_id.to_string(),
                reason: reason.as_str().to_owned(),
            },
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses [`AccountEvent::to_json`]; `None` for anything else (a foreign publisher).
    pub fn from_json(text: &str) -> Option<AccountEvent> {
        match serde_json::from_str::<Wire>(text).ok()? {
            Wire::Banned {
                account_id,
                reason,
                until_ms,
            } => Some(AccountEvent::Banned {
                account_id: AccountId::parse(&account_id).ok()?,
                reason,
                until_ms,
            }),
            Wire::SessionEnded {
                account_id,
                session_id,
                reason,
            } => Some(AccountEvent::SessionEnded {
                account_id: AccountId::parse(&account_id).ok()?,
                session_id: SessionId::parse(&session_id).ok()?,
                reason: parse_end_reason(&reason)?,
            }),
        }
    }
}

fn parse_end_reason(text: &str) -> Option<SessionEndReason> {
    use SessionEndReason::*;
    [
        Logout,
        Revoked,
        Takeover,
        PasswordChanged,
        Banned,
        RefreshReplayed,
    ]
    .into_iter()
    .find(|reason| reason.as_str() == text)
}

#[derive(Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Wire {
    Banned {
        account_id: String,
        reason: String,
        until_ms: Option<i64>,
    },
    SessionEnded {
        account_id: String,
        session_id: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Delivery {
    Event(AccountEvent),
    Gap,
}

/// What a receiver gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Event(AccountEvent),
    /// Events may have been lost (lag, or a dropped Redis subscription): re-check.
    Missed,
}

/// One subscriber's end of the bus.
#[derive(Debug)]
pub struct AccountEventReceiver {
    inner: broadcast::Receiver<Delivery>,
}

impl AccountEventReceiver {
    /// The next event or miss; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.inner.recv().await {
            Ok(Delivery::Event(event)) => Some(Received::Event(event)),
            Ok(Delivery::Gap) => Some(Received::Missed),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Received::Missed),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// The bus. `publish` returning `Ok` means the event left this process (Redis accepted it, or
/// the local channel holds it).
pub trait AccountEvents: Send + Sync + std::fmt::Debug {
    fn publish<'a>(&'a self, event: &'a AccountEvent) -> BoxFuture<'a, Result<(), RedisError>>;
    fn subscribe(&self) -> AccountEventReceiver;
}

/// The all-in-one bus: one tokio broadcast channel.
#[derive(Debug, Clone)]
pub struct MemoryAccountEvents {
    sender: broadcast::Sender<Delivery>,
}

impl Default for MemoryAccountEvents {
    fn default() -> Self {
        MemoryAccountEvents {
            sender: broadcast::channel(EVENT_CHANNEL_CAPACITY).0,
        }
    }
}

impl AccountEvents for MemoryAccountEvents {
    fn publish<'a>(&'a self, event: &'a AccountEvent) -> BoxFuture<'a, Result<(), RedisError>> {
        // No receiver is fine: no game node is listening (an API-only process).
        let _ = self.sender.send(Delivery::Event(event.clone()));
        m::account_event_published(event.kind());
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> AccountEventReceiver {
        AccountEventReceiver {
            inner: self.sender.subscribe(),
        }
    }
}

/// Aborts the listener task when the last handle goes.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The fleet bus over Redis pub/sub. Cheap to clone; clones share one subscription.
#[derive(Debug, Clone)]
pub struct RedisAccountEvents {
    link: RedisLink,
    channel: String,
    sender: broadcast::Sender<Delivery>,
    subscribed: watch::Receiver<bool>,
    _listener: Arc<AbortOnDrop>,
}

/// Longest wait between two reconnection attempts of the subscription.
const MAX_RECONNECT_BACKOFF: Duration = Duration::from_secs(5);

impl RedisAccountEvents {
    /// Starts the listener task (it subscribes in the background; see
    /// [`RedisAccountEvents::wait_until_subscribed`]).
    pub fn start(link: RedisLink) -> RedisAccountEvents {
        let channel = link.key(&["events"]);
        let (sender, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        let (subscribed_tx, subscribed) = watch::channel(false);
        let listener = tokio::spawn(listen(
            link.client.clone(),
            channel.clone(),
            link.timeout,
            sender.clone(),
            subscribed_tx,
        ));
        RedisAccountEvents {
            link,
            channel,
            sender,
            subscribed,
            _listener: Arc::new(AbortOnDrop(listener)),
        }
    }

    /// Waits (at most `limit`) until the subscription is live; `false` if it is not by then.
    /// Events published before that are not seen by this process.
    pub async fn wait_until_subscribed(&self, limit: Duration) -> bool {
        let mut subscribed = self.subscribed.clone();
        tokio::time::timeout(limit, subscribed.wait_for(|live| *live))
            .await
            .is_ok_and(|result| result.is_ok())
    }
}

async fn listen(
    client: redis::Client,
    channel: String,
    timeout: Duration,
    sender: broadcast::Sender<Delivery>,
    subscribed: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let connected = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match connected {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                let _ = subscribed.send(true);
                if !first {
                    // Whatever was published while we were away is lost.
                    let _ = sender.send(Delivery::Gap);
                }
                first = false;
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    match AccountEvent::from_json(&payload) {
                        Some(event) => {
                            let _ = sender.send(Delivery::Event(event));
                        }
                        None => tracing::warn!("ignored a malformed account event"),
                    }
                }
                let _ = subscribed.send(false);
                let _ = sender.send(Delivery::Gap);
                m::account_event_subscription_lost();
                tracing::warn!("account-events subscription lost; reconnecting");
            }
            Ok(Err(error)) => {
                tracing::warn!(cause = %error, "account-events subscription failed; retrying");
            }
            Err(_elapsed) => tracing::warn!("account-events subscription timed out; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_RECONNECT_BACKOFF);
    }
}

impl AccountEvents for RedisAccountEvents {
    fn publish<'a>(&'a self, event: &'a AccountEvent) -> BoxFuture<'a, Result<(), RedisError>> {
        Box::pin(async move {
            let mut connection = self.link.connection.clone();
            self.link
                .run(
                    "publish account event",
                    connection.publish::<_, _, i64>(&self.channel, event.to_json()),
                )
                .await?;
            m::account_event_published(event.kind());
            Ok(())
        })
    }

    fn subscribe(&self) -> AccountEventReceiver {
        AccountEventReceiver {
            inner: self.sender.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banned() -> AccountEvent {
        AccountEvent::Banned {
            account_id: AccountId::generate(),
            reason: "aimbot".into(),
            until_ms: Some(5),
        }
    }

    #[test]
    fn events_round_trip_through_json() {
        let ended = AccountEvent::SessionEnded {
            account_id: AccountId::generate(),
            session_id: SessionId::generate(),
            reason: SessionEndReason::Takeover,
        };
        for event in [banned(), ended] {
            assert_eq!(
                AccountEvent::from_json(&event.to_json()),
                Some(event.clone())
            );
        }
        assert!(banned().to_json().contains("\"type\":\"banned\""));
        assert!(banned().to_json().contains("\"accountId\""));
        for garbage in ["", "{}", "{\"type\":\"banned\"}", "[1]"] {
            assert_eq!(AccountEvent::from_json(garbage), None);
        }
    }

    #[tokio::test]
    async fn memory_bus_fans_out_and_reports_lag() {
        let bus = MemoryAccountEvents::default();
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        let event = banned();
        bus.publish(&event).await.unwrap();
        assert_eq!(first.recv().await, Some(Received::Event(event.clone())));
        assert_eq!(second.recv().await, Some(Received::Event(event.clone())));
        for _ in 0..EVENT_CHANNEL_CAPACITY + 1 {
            bus.publish(&event).await.unwrap();
        }
        assert_eq!(first.recv().await, Some(Received::Missed));
        assert_eq!(first.recv().await, Some(Received::Event(event)));
        drop(bus);
    }
}
