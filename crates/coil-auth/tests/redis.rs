//! The Redis implementations against a real Redis (`TEST_REDIS_URL`; skipped with a note when
//! unset, CI always sets it). Each test uses its own key prefix and opens two connections, as
//! two API replicas (or a replica and a game node) would.

use std::sync::Arc;
use std::time::Duration;

use coil_auth::{
    AccountEvent, AccountEvents, ManualClock, RateDecision, RateLimiter, RateRule, Received,
    RedisAccountEvents, RedisLink, RedisRateLimiter, RedisRevocationList, RevocationList,
    RevocationReason,
};
use coil_store::{AccountId, SessionEndReason, SessionId};

async fn two_links(test: &str) -> Option<(RedisLink, RedisLink)> {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("skipped: TEST_REDIS_URL is not set, so the Redis test {test} did not run");
        return None;
    };
    let prefix = format!("coil-test:{test}:{:016x}:", rand::random::<u64>());
    let timeout = Duration::from_secs(2);
    Some((
        RedisLink::connect(&url, &prefix, timeout).await.unwrap(),
        RedisLink::connect(&url, &prefix, timeout).await.unwrap(),
    ))
}

#[tokio::test]
async fn a_revocation_on_one_replica_is_seen_by_the_other_until_its_ttl() {
    let Some((first, second)) = two_links("revocation").await else {
        return;
    };
    // Redis expires keys on its own clock, so this test uses the real one.
    let clock = coil_auth::system_clock();
    let writer = RedisRevocationList::new(first, clock.clone());
    let reader = RedisRevocationList::new(second, clock.clone());
    let (account, session, other) = (
        AccountId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    assert_eq!(reader.check(&account, &session).await.unwrap(), None);
    // A short TTL so the test can see Redis drop the entry (Redis keeps real time).
    writer
        .revoke_session(
            &session,
            RevocationReason::SessionEnded,
            clock.now_ms() + 300,
        )
        .await
        .unwrap();
    assert_eq!(
        reader.check(&account, &session).await.unwrap(),
        Some(RevocationReason::SessionEnded)
    );
    assert_eq!(reader.check(&account, &other).await.unwrap(), None);
    writer
        .revoke_account(&account, RevocationReason::Banned, clock.now_ms() + 60_000)
        .await
        .unwrap();
    assert_eq!(
        reader.check(&account, &other).await.unwrap(),
        Some(RevocationReason::Banned)
    );
    writer.clear_account(&account).await.unwrap();
    assert_eq!(reader.check(&account, &other).await.unwrap(), None);
    // Wait for Redis's own expiry of the 300 ms entry, polling (bounded), not a bare sleep.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while reader.check(&account, &session).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the entry never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rate_limits_hold_across_replicas() {
    let Some((first, second)) = two_links("ratelimit").await else {
        return;
    };
    let clock = ManualClock::starting_at(1_800_000_000_000);
    let replica_a = RedisRateLimiter::new(first, clock.shared());
    let replica_b = RedisRateLimiter::new(second, clock.shared());
    let rule = RateRule {
        name: "login_account",
        burst: 4,
        period: Duration::from_secs(60),
    };
    // Four allowed in total, alternating replicas; the fifth is refused on either.
    for index in 0..4 {
        let limiter: &dyn RateLimiter = if index % 2 == 0 {
            &replica_a
        } else {
            &replica_b
        };
        assert_eq!(
            limiter.check(&rule, "acct:ada").await,
            RateDecision::Allowed
        );
    }
    assert_eq!(
        replica_a.check(&rule, "acct:ada").await,
        RateDecision::Limited {
            retry_after: Duration::from_secs(15)
        }
    );
    assert!(!replica_b.check(&rule, "acct:ada").await.is_allowed());
    assert!(
        replica_b.check(&rule, "acct:bob").await.is_allowed(),
        "keys are separate"
    );
    clock.advance(Duration::from_secs(15));
    assert!(replica_b.check(&rule, "acct:ada").await.is_allowed());
    assert!(!replica_a.check(&rule, "acct:ada").await.is_allowed());
}

#[tokio::test]
async fn concurrent_checks_never_exceed_the_burst() {
    let Some((first, second)) = two_links("ratelimit-race").await else {
        return;
    };
    let clock = ManualClock::starting_at(1_800_000_000_000);
    let limiters = [
        Arc::new(RedisRateLimiter::new(first, clock.shared())),
        Arc::new(RedisRateLimiter::new(second, clock.shared())),
    ];
    let rule = RateRule {
        name: "race",
        burst: 10,
        period: Duration::from_secs(3600),
    };
    let checks: Vec<_> = (0..100)
        .map(|index| {
            let limiter = limiters[index % 2].clone();
            tokio::spawn(async move { limiter.check(&rule, "ip:1.2.3.4").await.is_allowed() })
        })
        .collect();
    let mut allowed = 0;
    for check in checks {
        if check.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
}

#[tokio::test]
async fn account_events_reach_subscribers_on_other_connections() {
    let Some((publisher_link, subscriber_link)) = two_links("events").await else {
        return;
    };
    let publisher = RedisAccountEvents::start(publisher_link);
    let subscriber = RedisAccountEvents::start(subscriber_link);
    assert!(
        subscriber
            .wait_until_subscribed(Duration::from_secs(5))
            .await
    );
    let mut node_a = subscriber.subscribe();
    let mut node_b = subscriber.subscribe();
    let banned = AccountEvent::Banned {
        account_id: AccountId::generate(),
        reason: "aimbot".into(),
        until_ms: None,
    };
    let ended = AccountEvent::SessionEnded {
        account_id: AccountId::generate(),
        session_id: SessionId::generate(),
        reason: SessionEndReason::Takeover,
    };
    publisher.publish(&banned).await.unwrap();
    publisher.publish(&ended).await.unwrap();
    for receiver in [&mut node_a, &mut node_b] {
        let first = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
            .await
            .unwrap();
        assert_eq!(first, Some(Received::Event(banned.clone())));
        let second = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
            .await
            .unwrap();
        assert_eq!(second, Some(Received::Event(ended.clone())));
    }
}
