//! Rate limits over real HTTP: the issue's "1,000 wrong logins for one account in a minute are
//! rate-limited without locking the real owner out forever", and the trusted-proxy rules.
//!
//! The design under test (defaults): per address 60/min, per address and username 5/min, per
//! username from anywhere 20 per 15 min. A guessing run from one address stops after 5 tries
//! and the owner, elsewhere, is not affected at all; a run spread over many addresses stops
//! after 20 tries for the account (~1 guess per 45 s after that), and the owner gets the full
//! budget back 15 minutes after the run ends. No lockout is ever stored.

mod support;

use std::time::Duration;

use coil_api::RateLimits;
use coil_auth::TrustedProxies;
use reqwest::Method;
use serde_json::json;
use support::{TestApi, TestDatabase};

const PASSWORD: &str = "correct horse battery";

async fn api_with_default_limits() -> (TestDatabase, TestApi) {
    let database = TestDatabase::sqlite();
    let api = TestApi::start(&database, |config| {
        config.limits = RateLimits::default();
        // The test client is on loopback: trust it as the proxy so each request can come
        // from its own client address through X-Forwarded-For.
        config.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    (database, api)
}

async fn login_from(
    api: &TestApi,
    address: &str,
    username: &str,
    password: &str,
) -> support::Reply {
    api.call(
        Method::POST,
        "/api/auth/login",
        Some(json!({ "username": username, "password": password })),
        None,
        &[("x-forwarded-for", address)],
    )
    .await
}

#[tokio::test]
async fn a_thousand_guesses_from_one_address_stop_after_five_and_the_owner_is_unaffected() {
    let (_database, api) = api_with_default_limits().await;
    api.register("owner", PASSWORD).await;
    let hasher = api.accounts.platform().password_hasher();
    let before = hasher.verifications();
    let mut limited = 0;
    for attempt in 0..1000 {
        let reply = login_from(&api, "198.51.100.7", "owner", &format!("guess {attempt}")).await;
        match reply.status {
            401 => {}
            429 => {
                limited += 1;
                let retry: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry), "{reply:?}");
                assert_eq!(reply.code(), "rate_limited");
            }
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(limited, 995);
    assert_eq!(
        hasher.verifications() - before,
        5,
        "only 5 guesses reached Argon2"
    );
    // The owner, from home, logs straight in: the account's own budget is barely touched.
    assert_eq!(
        login_from(&api, "203.0.113.20", "owner", PASSWORD)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_thousand_guesses_from_many_addresses_are_capped_per_account_and_the_owner_gets_back_in()
{
    let (_database, api) = api_with_default_limits().await;
    api.register("target", PASSWORD).await;
    let hasher = api.accounts.platform().password_hasher();
    let before = hasher.verifications();
    let mut limited = 0;
    for attempt in 0..1000u32 {
        let address = format!(
            "10.{}.{}.{}",
            attempt / 65536,
            (attempt / 256) % 256,
            attempt % 256
        );
        let reply = login_from(&api, &address, "target", "wrong guess").await;
        if reply.status == 429 {
            limited += 1;
        } else {
            assert_eq!(reply.status, 401, "{reply:?}");
        }
        // The run takes a minute of the test's clock.
        api.clock.advance(Duration::from_millis(60));
    }
    // 20 at once, plus one more per 45 s of the minute the run took.
    assert_eq!(limited, 1000 - 21);
    assert_eq!(hasher.verifications() - before, 21);
    // During the run the account is throttled for everyone, the owner included...
    login_from(&api, "203.0.113.20", "target", PASSWORD)
        .await
        .assert_error(429, "rate_limited");
    // ...but only for the window: 15 minutes after the run, the owner is back in.
    api.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        login_from(&api, "203.0.113.20", "target", PASSWORD)
            .await
            .status,
        200
    );
    // Other accounts were never affected.
    api.register("bystander", PASSWORD).await;
    assert_eq!(
        login_from(&api, "10.0.0.1", "bystander", PASSWORD)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_forged_forwarded_header_from_an_untrusted_peer_changes_nothing() {
    let database = TestDatabase::sqlite();
    let api = TestApi::start(&database, |config| {
        config.limits = RateLimits::default();
        // No trusted proxy: the TCP peer (127.0.0.1) is the client, whatever the header says.
    })
    .await;
    let mut limited = 0;
    for attempt in 0..100u32 {
        let forged = format!("192.0.2.{}", attempt % 250);
        let reply = login_from(&api, &forged, &format!("user{attempt}"), "whatever pw").await;
        if reply.status == 429 {
            limited += 1;
        }
    }
    assert_eq!(limited, 40, "60 per minute per address, all from one peer");
}

#[tokio::test]
async fn register_guest_and_refresh_are_limited_per_address() {
    let (_database, api) = api_with_default_limits().await;
    for attempt in 0..10 {
        let reply = api
            .call(
                Method::POST,
                "/api/auth/register",
                Some(json!({ "username": format!("new{attempt}"), "password": PASSWORD })),
                None,
                &[("x-forwarded-for", "198.51.100.9")],
            )
            .await;
        assert_eq!(reply.status, 201, "{reply:?}");
    }
    let refused = api
        .call(
            Method::POST,
            "/api/auth/register",
            Some(json!({ "username": "new11", "password": PASSWORD })),
            None,
            &[("x-forwarded-for", "198.51.100.9")],
        )
        .await;
    refused.assert_error(429, "rate_limited");
    assert_eq!(
        refused.retry_after.as_deref(),
        Some("360"),
        "10 per hour: one back every 6 min"
    );
    let mut guests_limited = 0;
    for attempt in 0..31 {
        let reply = api
            .call(
                Method::POST,
                "/api/auth/guest",
                Some(json!({ "deviceSecret": format!("{attempt:0>24}") })),
                None,
                &[("x-forwarded-for", "198.51.100.10")],
            )
            .await;
        if reply.status == 429 {
            guests_limited += 1;
        }
    }
    assert_eq!(guests_limited, 1);
    let mut refreshes_limited = 0;
    for _ in 0..121 {
        let reply = api
            .call(
                Method::POST,
                "/api/auth/refresh",
                Some(json!({ "refreshToken": "x".repeat(43) })),
                None,
                &[("x-forwarded-for", "198.51.100.11")],
            )
            .await;
        if reply.status == 429 {
            refreshes_limited += 1;
        }
    }
    assert_eq!(refreshes_limited, 1);
}

#[tokio::test]
async fn exempt_addresses_skip_address_limits_but_not_account_limits() {
    let database = TestDatabase::sqlite();
    let api = TestApi::start(&database, |config| {
        config.limits = RateLimits {
            exempt: TrustedProxies::parse("127.0.0.0/8").unwrap(),
            ..RateLimits::default()
        };
    })
    .await;
    api.register("local", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(api.login("local", "wrong password").await.status);
    }
    // Address rules are skipped for loopback, so the per-account rule (20) is what stops it.
    assert_eq!(statuses.iter().filter(|status| **status == 429).count(), 5);
}
