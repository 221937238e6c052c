//! The account store suite, run twice like the leaderboard's: against a real SQLite file and
//! against a real PostgreSQL in a fresh schema per test (when `TEST_DATABASE_URL` is set).
//! Every check is one `async fn` over a [`TestDatabase`]; `on_both_backends!` makes a test per
//! backend. Hashes and name keys are made-up strings here: hashing and skeletons belong to
//! `coil-auth`, and the store must treat them as opaque.

use coil_store::{
    AccountError, AccountId, AccountKind, NewSession, Recorded, RefreshOutcome, Role, ScoreEntry,
    SessionEndReason, UsernameKeys,
};

#[macro_use]
#[path = "support/database.rs"]
mod database;

use database::TestDatabase;

on_both_backends!(
    registered_accounts_round_trip_with_the_player_role,
    a_username_key_held_by_another_account_is_refused,
    concurrent_registrations_of_one_name_create_one_account,
    guests_are_found_again_by_their_device_secret,
    upgrading_a_guest_keeps_its_id_and_retires_the_device_secret,
    refresh_rotation_uses_each_token_once,
    a_replayed_refresh_token_ends_the_family,
    concurrent_refreshes_of_one_token_rotate_once,
    expired_or_ended_sessions_do_not_refresh,
    single_session_mode_ends_the_older_session,
    a_password_change_ends_every_other_session,
    ending_sessions_one_or_all,
    roles_are_granted_and_revoked,
    bans_end_sessions_and_block_refresh_until_they_expire,
    pruning_removes_what_is_ended_or_expired,
    leaderboard_rows_carry_the_account,
);

fn name(username: &str) -> UsernameKeys {
    let folded = username.to_ascii_lowercase();
    UsernameKeys {
        username: username.to_owned(),
        folded: folded.clone(),
        keys: vec![
            format!("fold:{folded}"),
            format!("skel:{}", folded.replace('0', "o")),
        ],
    }
}

fn hash(label: &str) -> String {
    // 64 hex characters, as a SHA-256 would be; distinct per label.
    let mut text: String = label
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    text.truncate(64);
    format!("{text:0>64}")
}

fn session_at(label: &str, expires_at_ms: i64) -> NewSession {
    NewSession {
        refresh_token_hash: hash(label),
        expires_at_ms,
        user_agent: Some("test-agent".to_owned()),
        client_ip: Some("127.0.0.1".to_owned()),
    }
}

async fn registered_accounts_round_trip_with_the_player_role(database: &TestDatabase) {
    let store = database.accounts().await;
    assert_eq!(store.backend(), database.expected_backend);
    let account = store
        .create_registered(&name("Ada"), "$argon2id$fake", Some("eu-central"), 1_000)
        .await
        .unwrap();
    assert_eq!(account.username.as_deref(), Some("Ada"));
    assert_eq!(account.display_name, "Ada");
    assert_eq!(account.kind, AccountKind::Registered);
    assert_eq!(account.roles, vec![Role::Player]);
    assert_eq!(account.preferred_region.as_deref(), Some("eu-central"));
    assert!(!account.single_session);
    assert_eq!(
        store.account(&account.id).await.unwrap(),
        Some(account.clone())
    );
    let (found, stored_hash) = store.login_lookup("ada").await.unwrap().unwrap();
    assert_eq!(found.id, account.id);
    assert_eq!(stored_hash, "$argon2id$fake");
    assert!(
        store.login_lookup("Ada").await.unwrap().is_none(),
        "lookups take the folded name"
    );
    assert_eq!(
        store.find("ADA").await.unwrap().map(|a| a.id),
        Some(account.id.clone())
    );
    assert_eq!(
        store.find(account.id.as_str()).await.unwrap().map(|a| a.id),
        Some(account.id.clone())
    );
    assert!(
        store
            .account(&AccountId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_username_key_held_by_another_account_is_refused(database: &TestDatabase) {
    let store = database.accounts().await;
    store
        .create_registered(&name("bob"), "h", None, 1)
        .await
        .unwrap();
    // Same folded name (case only).
    assert!(matches!(
        store.create_registered(&name("BOB"), "h", None, 2).await,
        Err(AccountError::UsernameTaken)
    ));
    // A different name that shares one key (the made-up skeleton maps 0 to o).
    assert!(matches!(
        store.create_registered(&name("b0b"), "h", None, 3).await,
        Err(AccountError::UsernameTaken)
    ));
    // Nothing of the refused attempts was kept: the account count is one.
    assert!(store.login_lookup("b0b").await.unwrap().is_none());
    store
        .create_registered(&name("bobby"), "h", None, 4)
        .await
        .unwrap();
}

async fn concurrent_registrations_of_one_name_create_one_account(database: &TestDatabase) {
    let store = database.accounts().await;
    let attempts = (0..8).map(|index| {
        let store = store.clone();
        let username = if index % 2 == 0 { "racer" } else { "RACER" };
        tokio::spawn(async move {
            store
                .create_registered(&name(username), "h", None, index)
                .await
        })
    });
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(AccountError::UsernameTaken) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(created, 1);
}

async fn guests_are_found_again_by_their_device_secret(database: &TestDatabase) {
    let store = database.accounts().await;
    let (guest, created) = store
        .guest_for_device(&hash("device-1"), "guest-1", None, 10)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(guest.kind, AccountKind::Guest);
    assert_eq!(guest.username, None);
    let (again, created_again) = store
        .guest_for_device(&hash("device-1"), "guest-other", None, 20)
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(again.id, guest.id);
    assert_eq!(again.display_name, "guest-1");
    let (other, _) = store
        .guest_for_device(&hash("device-2"), "guest-2", None, 30)
        .await
        .unwrap();
    assert_ne!(other.id, guest.id);
    assert!(store.password_hash(&guest.id).await.unwrap().is_none());
}

async fn upgrading_a_guest_keeps_its_id_and_retires_the_device_secret(database: &TestDatabase) {
    let store = database.accounts().await;
    store
        .create_registered(&name("taken"), "h", None, 1)
        .await
        .unwrap();
    let (guest, _) = store
        .guest_for_device(&hash("device-u"), "guest-u", None, 10)
        .await
        .unwrap();
    store.grant_role(&guest.id, Role::Server, 11).await.unwrap();
    assert!(matches!(
        store
            .upgrade_guest(&guest.id, &name("Taken"), "h2", 12)
            .await,
        Err(AccountError::UsernameTaken)
    ));
    let upgraded = store
        .upgrade_guest(&guest.id, &name("Newbie"), "h2", 13)
        .await
        .unwrap();
    assert_eq!(upgraded.id, guest.id);
    assert_eq!(upgraded.kind, AccountKind::Registered);
    assert_eq!(upgraded.display_name, "Newbie");
    assert_eq!(
        upgraded.roles,
        vec![Role::Player, Role::Server],
        "roles survive"
    );
    assert_eq!(upgraded.created_at_ms, guest.created_at_ms);
    assert_eq!(
        store.password_hash(&guest.id).await.unwrap().as_deref(),
        Some("h2")
    );
    // The device secret no longer reaches the account: it makes a fresh guest.
    let (fresh, created) = store
        .guest_for_device(&hash("device-u"), "guest-v", None, 14)
        .await
        .unwrap();
    assert!(created);
    assert_ne!(fresh.id, guest.id);
    assert!(matches!(
        store
            .upgrade_guest(&guest.id, &name("Again"), "h3", 15)
            .await,
        Err(AccountError::NotAGuest)
    ));
    assert!(matches!(
        store
            .upgrade_guest(&AccountId::generate(), &name("Nobody"), "h3", 15)
            .await,
        Err(AccountError::NoSuchAccount)
    ));
}

async fn refresh_rotation_uses_each_token_once(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("rot"), "h", None, 1)
        .await
        .unwrap();
    let (session, ended) = store
        .start_session(&account.id, &session_at("t0", 1_000_000), 100)
        .await
        .unwrap();
    assert!(ended.is_empty());
    match store
        .rotate_refresh(&hash("t0"), &hash("t1"), 2_000_000, 200)
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated {
            account: found,
            session: rotated,
        } => {
            assert_eq!(found.id, account.id);
            assert_eq!(rotated.id, session.id);
            assert_eq!(rotated.last_used_at_ms, 200);
            assert_eq!(rotated.expires_at_ms, 2_000_000);
        }
        other => panic!("expected a rotation, got {other:?}"),
    }
    match store
        .rotate_refresh(&hash("t1"), &hash("t2"), 2_000_000, 300)
        .await
        .unwrap()
    {
        RefreshOutcome::Rotated { .. } => {}
        other => panic!("expected a rotation, got {other:?}"),
    }
    assert_eq!(
        store
            .rotate_refresh(&hash("never"), &hash("x"), 1, 300)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
    let live = store.live_session(&session.id, 400).await.unwrap().unwrap();
    assert_eq!(live.expires_at_ms, 2_000_000);
}

async fn a_replayed_refresh_token_ends_the_family(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("replay"), "h", None, 1)
        .await
        .unwrap();
    let (session, _) = store
        .start_session(&account.id, &session_at("r0", 1_000_000), 100)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh(&hash("r0"), &hash("r1"), 1_000_000, 200)
            .await
            .unwrap(),
        RefreshOutcome::Rotated { .. }
    ));
    // r0 again (a thief's copy, or the owner's stale one): the family ends.
    assert_eq!(
        store
            .rotate_refresh(&hash("r0"), &hash("r2"), 1_000_000, 300)
            .await
            .unwrap(),
        RefreshOutcome::Replayed {
            account_id: account.id.clone(),
            session_id: session.id.clone()
        }
    );
    // The newest token (r1) is dead too, and nothing of the family is kept.
    assert_eq!(
        store
            .rotate_refresh(&hash("r1"), &hash("r3"), 1_000_000, 400)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
    assert!(
        store
            .live_session(&session.id, 400)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.refresh_token_count(&session.id).await.unwrap(), 0);
}

async fn concurrent_refreshes_of_one_token_rotate_once(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("twins"), "h", None, 1)
        .await
        .unwrap();
    store
        .start_session(&account.id, &session_at("c0", 1_000_000), 100)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..6)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh(&hash("c0"), &hash(&format!("c1-{index}")), 1_000_000, 200)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for attempt in attempts {
        if let RefreshOutcome::Rotated { .. } = attempt.await.unwrap() {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "exactly one presenter of a token wins");
}

async fn expired_or_ended_sessions_do_not_refresh(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("expiry"), "h", None, 1)
        .await
        .unwrap();
    store
        .start_session(&account.id, &session_at("e0", 1_000), 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh(&hash("e0"), &hash("e1"), 5_000, 1_000)
            .await
            .unwrap(),
        RefreshOutcome::SessionEnded,
        "a session is dead at its expiry"
    );
    let (session, _) = store
        .start_session(&account.id, &session_at("f0", 1_000_000), 100)
        .await
        .unwrap();
    assert!(
        store
            .end_session(&account.id, &session.id, SessionEndReason::Logout, 200)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .rotate_refresh(&hash("f0"), &hash("f1"), 1_000_000, 300)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
}

async fn single_session_mode_ends_the_older_session(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("solo"), "h", None, 1)
        .await
        .unwrap();
    let (first, _) = store
        .start_session(&account.id, &session_at("s0", 1_000_000), 100)
        .await
        .unwrap();
    let (second, ended) = store
        .start_session(&account.id, &session_at("s1", 1_000_000), 110)
        .await
        .unwrap();
    assert!(ended.is_empty(), "off by default: sessions coexist");
    store
        .set_single_session(&account.id, true, 120)
        .await
        .unwrap();
    assert!(
        store
            .account(&account.id)
            .await
            .unwrap()
            .unwrap()
            .single_session
    );
    let (third, mut ended) = store
        .start_session(&account.id, &session_at("s2", 1_000_000), 130)
        .await
        .unwrap();
    ended.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    let live: Vec<_> = store
        .live_sessions(&account.id, 140)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.id)
        .collect();
    assert_eq!(live, vec![third.id]);
    assert_eq!(
        store
            .rotate_refresh(&hash("s0"), &hash("s0b"), 1_000_000, 150)
            .await
            .unwrap(),
        RefreshOutcome::Unknown
    );
}

async fn a_password_change_ends_every_other_session(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("pw"), "old", None, 1)
        .await
        .unwrap();
    let (current, _) = store
        .start_session(&account.id, &session_at("p0", 1_000_000), 100)
        .await
        .unwrap();
    let (other, _) = store
        .start_session(&account.id, &session_at("p1", 1_000_000), 110)
        .await
        .unwrap();
    let ended = store
        .change_password(&account.id, "new", Some(&current.id), 120)
        .await
        .unwrap();
    assert_eq!(ended, vec![other.id.clone()]);
    assert_eq!(
        store.password_hash(&account.id).await.unwrap().as_deref(),
        Some("new")
    );
    assert!(
        store
            .live_session(&current.id, 130)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.live_session(&other.id, 130).await.unwrap().is_none());
    assert!(
        store
            .rehash_password(&account.id, "new", "newer")
            .await
            .unwrap()
    );
    assert!(
        !store
            .rehash_password(&account.id, "stale", "x")
            .await
            .unwrap()
    );
}

async fn ending_sessions_one_or_all(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("many"), "h", None, 1)
        .await
        .unwrap();
    let stranger = store
        .create_registered(&name("stranger"), "h", None, 1)
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for index in 0..3 {
        let (session, _) = store
            .start_session(
                &account.id,
                &session_at(&format!("m{index}"), 1_000_000),
                100 + index,
            )
            .await
            .unwrap();
        sessions.push(session);
    }
    let listed = store.live_sessions(&account.id, 200).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, sessions[2].id, "newest first");
    assert_eq!(listed[0].user_agent.as_deref(), Some("test-agent"));
    // Another account cannot end them.
    assert!(
        !store
            .end_session(
                &stranger.id,
                &sessions[0].id,
                SessionEndReason::Revoked,
                210
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .end_session(&account.id, &sessions[0].id, SessionEndReason::Revoked, 210)
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_session(&account.id, &sessions[0].id, SessionEndReason::Revoked, 211)
            .await
            .unwrap(),
        "ending twice reports nothing ended"
    );
    assert_eq!(
        store
            .end_session_by_refresh(&hash("m1"), SessionEndReason::Logout, 220)
            .await
            .unwrap(),
        Some((account.id.clone(), sessions[1].id.clone()))
    );
    assert_eq!(
        store
            .end_session_by_refresh(&hash("m1"), SessionEndReason::Logout, 221)
            .await
            .unwrap(),
        None
    );
    let ended = store
        .end_all_sessions(&account.id, SessionEndReason::Revoked, None, 230)
        .await
        .unwrap();
    assert_eq!(ended, vec![sessions[2].id.clone()]);
    assert!(
        store
            .live_sessions(&account.id, 240)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn roles_are_granted_and_revoked(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("boss"), "h", None, 1)
        .await
        .unwrap();
    assert!(store.grant_role(&account.id, Role::Admin, 2).await.unwrap());
    assert!(
        !store.grant_role(&account.id, Role::Admin, 3).await.unwrap(),
        "idempotent"
    );
    assert_eq!(
        store.account(&account.id).await.unwrap().unwrap().roles,
        vec![Role::Player, Role::Admin]
    );
    assert!(store.revoke_role(&account.id, Role::Admin).await.unwrap());
    assert!(!store.revoke_role(&account.id, Role::Admin).await.unwrap());
    assert_eq!(
        store.account(&account.id).await.unwrap().unwrap().roles,
        vec![Role::Player]
    );
    assert!(matches!(
        store
            .grant_role(&AccountId::generate(), Role::Admin, 4)
            .await,
        Err(AccountError::NoSuchAccount)
    ));
}

async fn bans_end_sessions_and_block_refresh_until_they_expire(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("cheater"), "h", None, 1)
        .await
        .unwrap();
    let (session, _) = store
        .start_session(&account.id, &session_at("b0", 10_000_000), 100)
        .await
        .unwrap();
    let (ban, ended) = store
        .ban(&account.id, "aimbot", Some(5_000), 200)
        .await
        .unwrap();
    assert_eq!(ended, vec![session.id.clone()]);
    assert_eq!(ban.until_ms, Some(5_000));
    assert_eq!(
        store
            .active_ban(&account.id, 300)
            .await
            .unwrap()
            .map(|ban| ban.reason),
        Some("aimbot".to_owned())
    );
    // A session started while banned (the API refuses logins first; the store still guards
    // refresh) cannot rotate.
    store
        .start_session(&account.id, &session_at("b1", 10_000_000), 400)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh(&hash("b1"), &hash("b2"), 10_000_000, 500)
            .await
            .unwrap(),
        RefreshOutcome::Banned { .. }
    ));
    // The ban expires at 5,000.
    assert!(
        store
            .active_ban(&account.id, 5_000)
            .await
            .unwrap()
            .is_none()
    );
    // A forever ban, lifted early.
    store.ban(&account.id, "again", None, 6_000).await.unwrap();
    assert_eq!(
        store
            .active_ban(&account.id, i64::MAX)
            .await
            .unwrap()
            .map(|ban| ban.until_ms),
        Some(None)
    );
    assert_eq!(store.lift_bans(&account.id, 7_000).await.unwrap(), 1);
    assert!(
        store
            .active_ban(&account.id, 7_001)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.ban(&AccountId::generate(), "x", None, 1).await,
        Err(AccountError::NoSuchAccount)
    ));
}

async fn pruning_removes_what_is_ended_or_expired(database: &TestDatabase) {
    let store = database.accounts().await;
    let account = store
        .create_registered(&name("prune"), "h", None, 1)
        .await
        .unwrap();
    let (ended, _) = store
        .start_session(&account.id, &session_at("q0", 1_000_000), 100)
        .await
        .unwrap();
    store
        .end_session(&account.id, &ended.id, SessionEndReason::Logout, 200)
        .await
        .unwrap();
    store
        .start_session(&account.id, &session_at("q1", 300), 100)
        .await
        .unwrap();
    let (live, _) = store
        .start_session(&account.id, &session_at("q2", 1_000_000), 100)
        .await
        .unwrap();
    assert_eq!(store.prune_sessions(500).await.unwrap(), 2);
    assert_eq!(store.refresh_token_count(&live.id).await.unwrap(), 1);
    assert!(store.live_session(&live.id, 600).await.unwrap().is_some());
}

async fn leaderboard_rows_carry_the_account(database: &TestDatabase) {
    let store = database.accounts().await;
    let leaderboard = database.leaderboard().await;
    let account = store
        .create_registered(&name("scorer"), "h", None, 1)
        .await
        .unwrap();
    let entry = |run_id: &str| ScoreEntry {
        run_id: run_id.to_owned(),
        name: "scorer".to_owned(),
        score: 10,
        room: "room-1".to_owned(),
        recorded_at_ms: 5,
    };
    assert_eq!(
        leaderboard
            .record_for_account(&entry("with"), Some(&account.id))
            .await
            .unwrap(),
        Recorded::Inserted
    );
    assert_eq!(
        leaderboard.record(&entry("without")).await.unwrap(),
        Recorded::Inserted
    );
    assert_eq!(
        leaderboard.account_of_run("with").await.unwrap(),
        Some(account.id)
    );
    assert_eq!(leaderboard.account_of_run("without").await.unwrap(), None);
    assert_eq!(leaderboard.top(10).await.unwrap().len(), 2);
}
