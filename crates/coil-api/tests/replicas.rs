//! Two API replicas in one process sharing one PostgreSQL and one Redis, as the fleet runs
//! them behind a load balancer (needs `TEST_DATABASE_URL` and `TEST_REDIS_URL`; skipped with
//! a note otherwise, CI sets both): a logout on one is refused at once on the other, rate
//! limits are one budget, and a ban on one reaches a game node subscribed through the other.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coil_api::RateLimits;
use coil_auth::{
    AccountEvent, AccountEvents, ManualClock, Received, RedisAccountEvents, RedisLink,
    RedisRateLimiter, RedisRevocationList, TrustedProxies,
};
use coil_store::AccountId;
use reqwest::Method;
use serde_json::json;
use support::{START_MS, Shared, TestApi, TestDatabase};

const PASSWORD: &str = "correct horse battery";

/// One replica's Redis-backed parts: its own connections (as a separate process would have)
/// over the deployment's prefix, with the deployment's signing key.
async fn replica_parts(
    url: &str,
    prefix: &str,
    seed: &str,
    clock: &ManualClock,
) -> (Shared, RedisAccountEvents) {
    let link = RedisLink::connect(url, prefix, Duration::from_secs(2))
        .await
        .unwrap();
    let events = RedisAccountEvents::start(link.clone());
    assert!(events.wait_until_subscribed(Duration::from_secs(5)).await);
    (
        Shared {
            signer_seed: seed.to_owned(),
            revocations: Arc::new(RedisRevocationList::new(link.clone(), clock.shared())),
            events: Arc::new(events.clone()),
            limiter: Arc::new(RedisRateLimiter::new(link, clock.shared())),
        },
        events,
    )
}

#[tokio::test]
async fn replicas_share_revocations_limits_and_events() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("skipped: TEST_REDIS_URL is not set, so the two-replica test did not run");
        database.drop_schema().await;
        return;
    };
    let clock = ManualClock::starting_at(START_MS);
    let prefix = format!("coil-test:replicas:{:016x}:", rand::random::<u64>());
    let seed = support::new_seed();
    let (shared_a, events_a) = replica_parts(&url, &prefix, &seed, &clock).await;
    let (shared_b, _events_b) = replica_parts(&url, &prefix, &seed, &clock).await;
    let limits = |config: &mut coil_api::AccountsConfig| {
        config.limits = RateLimits::default();
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    };
    let replica_a = TestApi::start_with(&database, &shared_a, clock.clone(), limits).await;
    let replica_b = TestApi::start_with(&database, &shared_b, clock.clone(), limits).await;

    // Register on A, use on B: one database, one key.
    let registered = replica_a.register("roamer", PASSWORD).await;
    assert_eq!(registered.status, 201, "{registered:?}");
    assert_eq!(
        replica_b.get("/api/me", &registered.access()).await.status,
        200
    );

    // Log out on B: A refuses the access token at once (not 15 minutes later).
    let logout = replica_b
        .call(
            Method::POST,
            "/api/auth/logout",
            None,
            Some(&registered.access()),
            &[],
        )
        .await;
    assert_eq!(logout.status, 204);
    replica_a
        .get("/api/me", &registered.access())
        .await
        .assert_error(401, "session_ended");

    // Refresh on A, replay on B: the family ends for both.
    let session = replica_a.login("roamer", PASSWORD).await;
    let rotated = replica_a.refresh(&session.refresh_token()).await;
    assert_eq!(rotated.status, 200);
    replica_b
        .refresh(&session.refresh_token())
        .await
        .assert_error(401, "refresh_reused");
    replica_a
        .get("/api/me", &rotated.access())
        .await
        .assert_error(401, "session_ended");

    // The per-address-and-username budget (5/min) is one budget across replicas.
    let mut statuses = Vec::new();
    for attempt in 0..8 {
        let replica = if attempt % 2 == 0 {
            &replica_a
        } else {
            &replica_b
        };
        let reply = replica
            .call(
                Method::POST,
                "/api/auth/login",
                Some(json!({ "username": "roamer", "password": "bad guess!" })),
                None,
                &[("x-forwarded-for", "198.51.100.77")],
            )
            .await;
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);

    // A ban issued through B reaches a game node listening through A's connection, and both
    // replicas refuse the account's live token.
    let live = replica_a.login("roamer", PASSWORD).await;
    let mut node = events_a.subscribe();
    let id = AccountId::parse(&live.account_id()).unwrap();
    replica_b
        .accounts
        .ban(&id, "speedhack", None)
        .await
        .unwrap();
    replica_a
        .get("/api/me", &live.access())
        .await
        .assert_error(403, "account_banned");
    replica_b
        .get("/api/me", &live.access())
        .await
        .assert_error(403, "account_banned");
    let mut saw_ban = false;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(5), node.recv()).await {
            Ok(Some(Received::Event(AccountEvent::Banned { account_id, .. }))) => {
                assert_eq!(account_id, id);
                saw_ban = true;
                break;
            }
            Ok(Some(_)) => continue,
            other => panic!("no ban event: {other:?}"),
        }
    }
    assert!(saw_ban);
    drop((replica_a, replica_b));
    database.drop_schema().await;
}
