//! The accounts API over real HTTP on 127.0.0.1 and a real SQLite file (the core flows also on
//! PostgreSQL when `TEST_DATABASE_URL` is set): the routes, the issue's "bad input and
//! attacks" list, single-session mode, password changes and bans.

mod support;

use std::time::Duration;

use coil_auth::{AccountEvent, Received};
use coil_store::{AccountId, SessionEndReason};
use reqwest::Method;
use serde_json::json;
use support::{START_MS, TestApi, TestDatabase};

const PASSWORD: &str = "correct horse battery";

async fn on_sqlite() -> (TestDatabase, TestApi) {
    let database = TestDatabase::sqlite();
    let api = TestApi::start(&database, |_| {}).await;
    (database, api)
}

async fn core_flow(api: &TestApi) {
    let registered = api.register("Ada", PASSWORD).await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let body = &registered.body;
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["accessToken", "refreshToken", "accessExpiresAt", "account"] {
        assert!(keys.contains(&key), "token answer lacks {key}: {body}");
    }
    assert_eq!(body["account"]["displayName"], "Ada");
    assert_eq!(body["account"]["roles"], json!(["player"]));
    assert_eq!(body["accessExpiresAt"], json!(START_MS + 900_000));
    let id = registered.account_id();

    let me = api.get("/api/me", &registered.access()).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], json!(id));
    assert_eq!(me.body["username"], "Ada");
    assert_eq!(me.body["guest"], false);

    // Login is case-insensitive on the username.
    let login = api.login("ada", PASSWORD).await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.account_id(), id);

    let refreshed = api.refresh(&login.refresh_token()).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    assert_ne!(refreshed.refresh_token(), login.refresh_token());
    assert_eq!(refreshed.account_id(), id);

    let sessions = api.get("/api/sessions", &refreshed.access()).await;
    assert_eq!(sessions.status, 200);
    let list = sessions.body["sessions"].as_array().unwrap();
    assert_eq!(
        list.len(),
        2,
        "register and login each started one: {list:?}"
    );
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);

    let logout = api
        .call(
            Method::POST,
            "/api/auth/logout",
            None,
            Some(&refreshed.access()),
            &[],
        )
        .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    // The access token of the ended session is refused at once, not in 15 minutes.
    api.get("/api/me", &refreshed.access())
        .await
        .assert_error(401, "session_ended");
    api.refresh(&refreshed.refresh_token())
        .await
        .assert_error(401, "refresh_invalid");
    // The other session (from register) still works.
    assert_eq!(api.get("/api/me", &registered.access()).await.status, 200);
}

#[tokio::test]
async fn register_login_refresh_logout_on_sqlite() {
    let (_database, api) = on_sqlite().await;
    core_flow(&api).await;
}

#[tokio::test]
async fn register_login_refresh_logout_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let api = TestApi::start(&database, |_| {}).await;
    core_flow(&api).await;
    drop(api);
    database.drop_schema().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_alike_after_one_argon2_run_each() {
    let (_database, api) = on_sqlite().await;
    api.register("victim", PASSWORD).await;
    let hasher = api.accounts.platform().password_hasher();
    let before = hasher.verifications();
    let wrong = api.login("victim", "not the password").await;
    let after_wrong = hasher.verifications();
    let unknown = api.login("nobody", "not the password").await;
    let after_unknown = hasher.verifications();
    assert_eq!(
        after_wrong - before,
        1,
        "a wrong password costs one verification"
    );
    assert_eq!(
        after_unknown - after_wrong,
        1,
        "an unknown user costs one verification too"
    );
    wrong.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "the answers must be identical");
    // A guest has no password: the same answer, the same cost.
    let guest = api
        .post("/api/auth/guest", json!({ "deviceSecret": "g".repeat(32) }))
        .await;
    let guest_name = guest.body["account"]["displayName"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_guest = hasher.verifications();
    let as_guest = api.login(&guest_name, "anything at all").await;
    assert_eq!(hasher.verifications() - before_guest, 1);
    assert_eq!(as_guest.body, wrong.body);
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused_over_http() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (_database, api) = on_sqlite().await;
    let registered = api.register("tokens", PASSWORD).await;
    let token = registered.access();
    // alg: none with the real claims.
    let claims = token.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{claims}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    api.get("/api/me", &none)
        .await
        .assert_error(401, "token_invalid");
    // A token from another deployment's key.
    let database = TestDatabase::sqlite();
    let other = TestApi::start(&database, |_| {}).await;
    let foreign = other.register("tokens", PASSWORD).await.access();
    api.get("/api/me", &foreign)
        .await
        .assert_error(401, "token_invalid");
    // Wrong audience: same key, a deployment that issues for another audience.
    let audience_database = TestDatabase::sqlite();
    let shared_seed = support::new_seed();
    let shared = |seed: &str, clock: &coil_auth::ManualClock| support::Shared {
        signer_seed: seed.to_owned(),
        revocations: std::sync::Arc::new(coil_auth::MemoryRevocationList::new(clock.shared())),
        events: std::sync::Arc::new(coil_auth::MemoryAccountEvents::default()),
        limiter: std::sync::Arc::new(coil_auth::MemoryRateLimiter::new(clock.shared())),
    };
    let clock = coil_auth::ManualClock::starting_at(START_MS);
    let lobby = TestApi::start_with(
        &audience_database,
        &shared(&shared_seed, &clock),
        clock.clone(),
        |config| {
            config.access.audience = "someone-else".into();
        },
    )
    .await;
    let game = TestApi::start_with(
        &audience_database,
        &shared(&shared_seed, &clock),
        clock.clone(),
        |_| {},
    )
    .await;
    let for_someone_else = lobby.register("audience", PASSWORD).await.access();
    game.get("/api/me", &for_someone_else)
        .await
        .assert_error(401, "token_invalid");
    // Expired: 15 minutes and the leeway later.
    api.clock.advance(Duration::from_secs(900 + 5));
    api.get("/api/me", &token)
        .await
        .assert_error(401, "token_expired");
    // Not yet valid: a token from a replica whose clock runs a minute ahead.
    let ahead = TestApi::start_with(
        &audience_database,
        &shared(&shared_seed, &clock),
        coil_auth::ManualClock::starting_at(START_MS + 60_000),
        |_| {},
    )
    .await;
    let early = ahead.login("audience", PASSWORD).await.access();
    game.get("/api/me", &early)
        .await
        .assert_error(401, "token_not_yet_valid");
    // Not a bearer header at all.
    let basic = api
        .call(
            Method::GET,
            "/api/me",
            None,
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    basic.assert_error(401, "bad_authorization");
    api.call(Method::GET, "/api/me", None, None, &[])
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn a_replayed_refresh_token_ends_the_whole_family() {
    let (_database, api) = on_sqlite().await;
    let mut events = api.accounts.platform().events().subscribe();
    let first = api.register("family", PASSWORD).await;
    let second = api.refresh(&first.refresh_token()).await;
    assert_eq!(second.status, 200);
    let third = api.refresh(&second.refresh_token()).await;
    assert_eq!(third.status, 200);
    // The first token again: a thief's copy (or the owner's stale one).
    api.refresh(&first.refresh_token())
        .await
        .assert_error(401, "refresh_reused");
    // Every token of the family is dead now, the newest included, and so is its access token.
    api.refresh(&third.refresh_token())
        .await
        .assert_error(401, "refresh_invalid");
    api.get("/api/me", &third.access())
        .await
        .assert_error(401, "session_ended");
    let event = events.recv().await.unwrap();
    assert!(
        matches!(
            event,
            Received::Event(AccountEvent::SessionEnded {
                reason: SessionEndReason::RefreshReplayed,
                ..
            })
        ),
        "{event:?}"
    );
}

#[tokio::test]
async fn oversized_malformed_and_mistyped_bodies_get_json_errors() {
    let (_database, api) = on_sqlite().await;
    for path in [
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/guest",
        "/api/auth/refresh",
        "/api/auth/logout",
    ] {
        let huge = api
            .http
            .post(api.url(path))
            .header("content-type", "application/json")
            .body(format!("{{\"username\":\"{}\"}}", "x".repeat(64 * 1024)))
            .send()
            .await
            .unwrap();
        assert_eq!(huge.status().as_u16(), 413, "{path}");
        let body: serde_json::Value = huge.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}");

        let broken = api
            .http
            .post(api.url(path))
            .header("content-type", "application/json")
            .body("{\"username\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(broken.status().as_u16(), 400, "{path}");
        let body: serde_json::Value = broken.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{path}");
    }
    // Fields of the wrong type or missing: 400, not axum's 422.
    api.post("/api/auth/login", json!({ "username": 5, "password": "x" }))
        .await
        .assert_error(400, "bad_request");
    api.post("/api/auth/register", json!({ "username": "ada" }))
        .await
        .assert_error(400, "bad_request");
    // Not JSON at all.
    let form = api
        .http
        .post(api.url("/api/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=a&password=b")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    // Field rules.
    api.register("ok name", "short")
        .await
        .assert_error(400, "bad_request");
    api.register("<script>", PASSWORD)
        .await
        .assert_error(400, "bad_request");
    api.register("guest-ada", PASSWORD)
        .await
        .assert_error(400, "bad_request");
    api.post("/api/auth/guest", json!({ "deviceSecret": "too-short" }))
        .await
        .assert_error(400, "bad_request");
    // A preferred region follows the directory's rule: the matchmaker refuses a dotted one,
    // so an account must not be able to store it.
    let secret = "a-device-secret-of-enough-length-0123456789";
    api.post(
        "/api/auth/guest",
        json!({ "deviceSecret": secret, "preferredRegion": "eu.central" }),
    )
    .await
    .assert_error(400, "bad_request");
    let guest = api
        .post(
            "/api/auth/guest",
            json!({ "deviceSecret": secret, "preferredRegion": "eu-central" }),
        )
        .await;
    assert_eq!(guest.status, 200, "{:?}", guest.body);
    api.refresh("not-a-token")
        .await
        .assert_error(401, "refresh_invalid");
}

#[tokio::test]
async fn usernames_that_differ_only_in_case_or_look_alikes_are_refused() {
    let (_database, api) = on_sqlite().await;
    assert_eq!(api.register("Admin", PASSWORD).await.status, 201);
    // Case only, UTS #39 look-alikes (rn/m), and case of a look-alike (I is l's look-alike).
    for taken in ["admin", "ADMIN", "adrnin", "AdmIn", "ADRNIN"] {
        api.register(taken, PASSWORD)
            .await
            .assert_error(409, "username_taken");
    }
    // Non-ASCII look-alikes are refused by the display-name rules before that.
    api.register("\u{430}dmin", PASSWORD)
        .await
        .assert_error(400, "bad_request");
    assert_eq!(api.register("Bob0", PASSWORD).await.status, 201);
    api.register("bobO", PASSWORD)
        .await
        .assert_error(409, "username_taken");
}

#[tokio::test]
async fn guests_come_back_by_device_and_upgrade_without_losing_their_id() {
    let (_database, api) = on_sqlite().await;
    let secret = "device-secret-0123456789abcdef";
    let guest = api
        .post("/api/auth/guest", json!({ "deviceSecret": secret }))
        .await;
    assert_eq!(guest.status, 200, "{guest:?}");
    assert_eq!(guest.body["account"]["guest"], true);
    let id = guest.account_id();
    let again = api
        .post("/api/auth/guest", json!({ "deviceSecret": secret }))
        .await;
    assert_eq!(again.account_id(), id, "the same device is the same guest");

    // Upgrade needs the guest's own token.
    api.post(
        "/api/auth/upgrade",
        json!({ "username": "Grace", "password": PASSWORD }),
    )
    .await
    .assert_error(401, "unauthenticated");
    let upgraded = api
        .call(
            Method::POST,
            "/api/auth/upgrade",
            Some(json!({ "username": "Grace", "password": PASSWORD })),
            Some(&guest.access()),
            &[],
        )
        .await;
    assert_eq!(upgraded.status, 200, "{upgraded:?}");
    assert_eq!(upgraded.account_id(), id, "upgrading keeps the account id");
    assert_eq!(upgraded.body["account"]["displayName"], "Grace");
    assert_eq!(upgraded.body["account"]["guest"], false);
    let me = api.get("/api/me", &upgraded.access()).await;
    assert_eq!(me.body["username"], "Grace");
    // The password now logs into the same account; the device secret makes a new guest.
    assert_eq!(api.login("grace", PASSWORD).await.account_id(), id);
    let fresh = api
        .post("/api/auth/guest", json!({ "deviceSecret": secret }))
        .await;
    assert_ne!(fresh.account_id(), id);
    // The upgrade rotated the session's refresh token: the guest's old one is a replay.
    api.refresh(&guest.refresh_token())
        .await
        .assert_error(401, "refresh_reused");
    // A registered account cannot "upgrade".
    let registered = api.login("grace", PASSWORD).await;
    api.call(
        Method::POST,
        "/api/auth/upgrade",
        Some(json!({ "username": "Other", "password": PASSWORD })),
        Some(&registered.access()),
        &[],
    )
    .await
    .assert_error(403, "forbidden");
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let (_database, api) = on_sqlite().await;
    let phone = api.register("changer", PASSWORD).await;
    let laptop = api.login("changer", PASSWORD).await;
    let wrong = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(json!({ "currentPassword": "nope nope", "newPassword": "a new passphrase" })),
            Some(&laptop.access()),
            &[],
        )
        .await;
    wrong.assert_error(401, "invalid_credentials");
    let changed = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(json!({ "currentPassword": PASSWORD, "newPassword": "a new passphrase" })),
            Some(&laptop.access()),
            &[],
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    assert_eq!(changed.body["endedSessions"], 1);
    api.get("/api/me", &phone.access())
        .await
        .assert_error(401, "session_ended");
    api.refresh(&phone.refresh_token())
        .await
        .assert_error(401, "refresh_invalid");
    assert_eq!(api.get("/api/me", &laptop.access()).await.status, 200);
    api.login("changer", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(api.login("changer", "a new passphrase").await.status, 200);
}

#[tokio::test]
async fn single_session_mode_ends_the_old_session_and_tells_the_nodes() {
    let (_database, api) = on_sqlite().await;
    let first = api.register("solo", PASSWORD).await;
    let enabled = api
        .call(
            Method::PATCH,
            "/api/me",
            Some(json!({ "singleSession": true })),
            Some(&first.access()),
            &[],
        )
        .await;
    assert_eq!(enabled.status, 200, "{enabled:?}");
    assert_eq!(enabled.body["singleSession"], true);
    let mut events = api.accounts.platform().events().subscribe();
    let second = api.login("solo", PASSWORD).await;
    assert_eq!(second.status, 200);
    api.get("/api/me", &first.access())
        .await
        .assert_error(401, "session_ended");
    assert_eq!(api.get("/api/me", &second.access()).await.status, 200);
    let session_of_first = api.get("/api/me", &second.access()).await;
    assert_ne!(session_of_first.body["sessionId"], json!(null));
    match events.recv().await {
        Some(Received::Event(AccountEvent::SessionEnded {
            account_id,
            reason: SessionEndReason::Takeover,
            ..
        })) => assert_eq!(account_id.as_str(), first.account_id()),
        other => panic!("expected a takeover event, got {other:?}"),
    }
}

#[tokio::test]
async fn sessions_are_listed_and_ended_one_or_all() {
    let (_database, api) = on_sqlite().await;
    let a = api.register("lister", PASSWORD).await;
    let b = api.login("lister", PASSWORD).await;
    let c = api.login("lister", PASSWORD).await;
    let listed = api.get("/api/sessions", &a.access()).await;
    let sessions = listed.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3);
    let b_session = api.get("/api/me", &b.access()).await.body["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = api
        .call(
            Method::DELETE,
            &format!("/api/sessions/{b_session}"),
            None,
            Some(&a.access()),
            &[],
        )
        .await;
    assert_eq!(ended.status, 204);
    api.get("/api/me", &b.access())
        .await
        .assert_error(401, "session_ended");
    api.call(
        Method::DELETE,
        &format!("/api/sessions/{b_session}"),
        None,
        Some(&a.access()),
        &[],
    )
    .await
    .assert_error(404, "not_found");
    api.call(
        Method::DELETE,
        "/api/sessions/not-an-id",
        None,
        Some(&a.access()),
        &[],
    )
    .await
    .assert_error(404, "not_found");
    // Another account cannot end these sessions.
    let stranger = api.register("stranger", PASSWORD).await;
    let c_session = api.get("/api/me", &c.access()).await.body["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        Method::DELETE,
        &format!("/api/sessions/{c_session}"),
        None,
        Some(&stranger.access()),
        &[],
    )
    .await
    .assert_error(404, "not_found");
    let all = api
        .call(
            Method::DELETE,
            "/api/sessions",
            None,
            Some(&c.access()),
            &[],
        )
        .await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(all.body["endedSessions"], 2);
    api.get("/api/me", &a.access())
        .await
        .assert_error(401, "session_ended");
    api.get("/api/me", &c.access())
        .await
        .assert_error(401, "session_ended");
    assert_eq!(api.get("/api/me", &stranger.access()).await.status, 200);
}

#[tokio::test]
async fn logout_with_only_the_refresh_token_works_and_is_idempotent() {
    let (_database, api) = on_sqlite().await;
    let session = api.register("leaver", PASSWORD).await;
    let body = json!({ "refreshToken": session.refresh_token() });
    assert_eq!(api.post("/api/auth/logout", body.clone()).await.status, 204);
    assert_eq!(api.post("/api/auth/logout", body).await.status, 204);
    api.get("/api/me", &session.access())
        .await
        .assert_error(401, "session_ended");
    api.call(Method::POST, "/api/auth/logout", None, None, &[])
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn bans_block_login_refresh_and_tokens_and_reach_the_nodes() {
    let (_database, api) = on_sqlite().await;
    let session = api.register("cheater", PASSWORD).await;
    let id = AccountId::parse(&session.account_id()).unwrap();
    let mut events = api.accounts.platform().events().subscribe();
    api.accounts
        .ban(&id, "wallhack", Some((START_MS + 3_600_000) as i64))
        .await
        .unwrap();
    // The live access token is refused at once, as banned.
    api.get("/api/me", &session.access())
        .await
        .assert_error(403, "account_banned");
    // Login with the right password: banned (with the reason and end); wrong password stays
    // the generic answer, so a ban reveals nothing to someone without the password.
    let banned = api.login("cheater", PASSWORD).await;
    banned.assert_error(403, "account_banned");
    assert_eq!(banned.body["error"]["reason"], "wallhack");
    assert_eq!(
        banned.body["error"]["bannedUntil"],
        json!(START_MS + 3_600_000)
    );
    api.login("cheater", "wrong password")
        .await
        .assert_error(401, "invalid_credentials");
    api.refresh(&session.refresh_token())
        .await
        .assert_error(401, "refresh_invalid");
    // Matchmaking asks the platform the same question.
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", session.access()).parse().unwrap(),
    );
    let refused = api
        .accounts
        .platform()
        .admit_matchmake(None, &headers)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status().as_u16(), refused.code()),
        (403, "account_banned")
    );
    // Game nodes hear about it: the session ended, and the account is banned.
    let mut saw_ban = false;
    for _ in 0..2 {
        if let Some(Received::Event(AccountEvent::Banned {
            account_id, reason, ..
        })) = events.recv().await
        {
            assert_eq!(account_id, id);
            assert_eq!(reason, "wallhack");
            saw_ban = true;
        }
    }
    assert!(saw_ban);
    // The ban ends: the owner logs in again.
    api.clock.advance(Duration::from_secs(3_601));
    assert_eq!(api.login("cheater", PASSWORD).await.status, 200);
    // A lifted ban ends early.
    api.accounts.ban(&id, "again", None).await.unwrap();
    api.login("cheater", PASSWORD)
        .await
        .assert_error(403, "account_banned");
    assert_eq!(api.accounts.unban(&id).await.unwrap(), 1);
    assert_eq!(api.login("cheater", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn matchmake_admission_takes_tokens_and_guards_anonymous_play() {
    let database = TestDatabase::sqlite();
    let open = TestApi::start(&database, |_| {}).await;
    let platform = open.accounts.platform();
    let empty = axum::http::HeaderMap::new();
    assert!(
        platform
            .admit_matchmake(None, &empty)
            .await
            .unwrap()
            .is_none()
    );
    let guest = open
        .post("/api/auth/guest", json!({ "deviceSecret": "m".repeat(30) }))
        .await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", guest.access()).parse().unwrap(),
    );
    let claims = platform
        .admit_matchmake(None, &headers)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims.account_id.as_str(), guest.account_id());
    assert!(claims.display_name.starts_with("guest-"));
    headers.insert("authorization", "Bearer forged.token.here".parse().unwrap());
    let refused = platform.admit_matchmake(None, &headers).await.unwrap_err();
    assert_eq!(refused.code(), "token_invalid");
    let closed = TestApi::start(&database, |config| {
        config.allow_anonymous_matchmaking = false
    })
    .await;
    let refused = closed
        .accounts
        .platform()
        .admit_matchmake(None, &empty)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status().as_u16(), refused.code()),
        (401, "unauthenticated")
    );
}
