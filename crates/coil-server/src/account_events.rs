//! Ends the live game connections of accounts the platform banned or must cut off: the node
//! subscribes once to the account-events bus (`coil_auth::events`: a tokio channel all-in-one,
//! Redis pub/sub in the fleet) and kicks the matching seats with error 33 (Kicked), within the
//! bus's delivery time — the node never polls the database per tick or per join.
//!
//! Which events end connections: a ban; and a session ended by a takeover (single-session
//! mode), a password change or a replayed refresh token, which end the account's connections
//! on the node. A plain logout or one session ended from the session list does not: a join
//! token names the account, not the session, so the node cannot tell which of the account's
//! connections that session made, and cutting a player's other device would be wrong. Those
//! connections end when the player leaves; their access tokens stop working at once.
//!
//! Must not: block a room, or hold anything across events but the receiver.

use std::sync::Arc;

use coil_auth::events::{AccountEvent, AccountEvents, Received};
use coil_protocol::envelope::ErrorCode;
use coil_store::SessionEndReason;
use tokio::sync::watch;

use crate::node::Node;

/// What an event asks of this node: the account whose connections end, and why.
pub fn connections_to_end(event: &AccountEvent) -> Option<(&str, &'static str)> {
    match event {
        AccountEvent::Banned { account_id, .. } => Some((account_id.as_str(), "account banned")),
        AccountEvent::SessionEnded {
            account_id, reason, ..
        } => match reason {
            SessionEndReason::Takeover => Some((account_id.as_str(), "signed in elsewhere")),
            SessionEndReason::PasswordChanged => Some((account_id.as_str(), "password changed")),
            SessionEndReason::Banned => Some((account_id.as_str(), "account banned")),
            SessionEndReason::RefreshReplayed => {
                Some((account_id.as_str(), "session ended for safety"))
            }
            SessionEndReason::Logout | SessionEndReason::Revoked => None,
        },
    }
}

/// Runs until `stop` fires or the bus closes, kicking the seats each event names.
pub async fn enforce(
    node: Arc<Node>,
    events: Arc<dyn AccountEvents>,
    mut stop: watch::Receiver<bool>,
) {
    let mut receiver = events.subscribe();
    loop {
        let received = tokio::select! {
            received = receiver.recv() => received,
            _ = stop.changed() => return,
        };
        match received {
            None => return,
            Some(Received::Event(event)) => {
                if let Some((account, reason)) = connections_to_end(&event) {
                    let kicked = node.kick(account, ErrorCode::Kicked, reason).await;
                    if kicked > 0 {
                        tracing::info!(account, kicked, reason, "ended an account's connections");
                    }
                }
            }
            Some(Received::Missed) => {
                // The revocation list stays authoritative for new joins and matchmakes; only
                // live connections of a missed ban keep playing until they leave.
                crate::rate_limited_warn!("account events may have been missed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coil_store::{AccountId, SessionId};

    #[test]
    fn bans_takeovers_and_stolen_sessions_end_connections_a_logout_does_not() {
        let account = AccountId::generate();
        let session = SessionId::generate();
        let ended = |reason| AccountEvent::SessionEnded {
            account_id: account.clone(),
            session_id: session.clone(),
            reason,
        };
        let banned = AccountEvent::Banned {
            account_id: account.clone(),
            reason: "aimbot".into(),
            until_ms: None,
        };
        assert_eq!(
            connections_to_end(&banned).map(|(id, _)| id),
            Some(account.as_str())
        );
        for reason in [
            SessionEndReason::Takeover,
            SessionEndReason::PasswordChanged,
            SessionEndReason::Banned,
            SessionEndReason::RefreshReplayed,
        ] {
            assert!(connections_to_end(&ended(reason)).is_some(), "{reason:?}");
        }
        for reason in [SessionEndReason::Logout, SessionEndReason::Revoked] {
            assert!(connections_to_end(&ended(reason)).is_none(), "{reason:?}");
        }
    }
}
