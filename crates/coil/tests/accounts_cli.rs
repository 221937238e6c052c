//! The accounts side of the `coil` binary: `coil admin` bootstraps the first admin (and
//! revokes roles, bans, unbans) against DATABASE_URL, and accounts settings that are wrong or
//! missing exit 64 naming the variable.

use std::process::Command;

fn coil() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coil"));
    for variable in [
        "DATABASE_URL",
        "REDIS_URL",
        "ACCESS_TOKEN_SIGNING_KEY",
        "ACCESS_TOKEN_SIGNING_KEY_FILE",
        "RUST_LOG",
        "LOG_FORMAT",
    ] {
        command.env_remove(variable);
    }
    command
}

fn fails_with_usage(env: &[(&str, &str)], args: &[&str], names: &str) {
    let output = coil()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{env:?} {args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(names), "{stderr:?} should name {names}");
}

#[test]
fn bad_accounts_settings_exit_64_naming_the_variable() {
    fails_with_usage(
        &[("ARGON2_MEMORY_KIB", "1")],
        &["serve"],
        "ARGON2_MEMORY_KIB",
    );
    fails_with_usage(
        &[("ACCESS_TOKEN_TTL_SECS", "1")],
        &["serve"],
        "ACCESS_TOKEN_TTL_SECS",
    );
    fails_with_usage(
        &[("TRUSTED_PROXIES", "nonsense")],
        &["serve"],
        "TRUSTED_PROXIES",
    );
    fails_with_usage(
        &[("RATE_LIMIT_LOGIN_IP", "many")],
        &["serve"],
        "RATE_LIMIT_LOGIN_IP",
    );
    fails_with_usage(
        &[("ACCESS_TOKEN_SIGNING_KEY", "not-a-key")],
        &["serve"],
        "ACCESS_TOKEN_SIGNING_KEY",
    );
    // The fleet matchmaker with accounts on (DATABASE_URL) needs the shared signing key.
    fails_with_usage(
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/x"),
        ],
        &["matchmaker"],
        "ACCESS_TOKEN_SIGNING_KEY",
    );
}

#[tokio::test]
async fn admin_commands_grant_and_revoke_roles_ban_and_unban() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}",
        directory.path().join("accounts.db").display()
    );
    // Make an account through the library, as a server would.
    let store = coil_store::AccountStore::connect(&database_url)
        .await
        .unwrap();
    let name = coil_auth::username::username_keys("Root").unwrap();
    let account = store
        .create_registered(&name, "$argon2id$not-used", None, 1)
        .await
        .unwrap();
    let run = |args: &[&str]| {
        coil()
            .env("DATABASE_URL", &database_url)
            .arg("admin")
            .args(args)
            .output()
            .unwrap()
    };
    let granted = run(&["grant-role", "--account", "root", "--role", "admin"]);
    assert!(granted.status.success(), "{granted:?}");
    assert!(String::from_utf8_lossy(&granted.stdout).contains("now has the admin role"));
    let again = run(&[
        "grant-role",
        "--account",
        account.id.as_str(),
        "--role",
        "admin",
    ]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already had"));
    let roles = store.account(&account.id).await.unwrap().unwrap().roles;
    assert_eq!(
        roles,
        vec![coil_store::Role::Player, coil_store::Role::Admin]
    );
    let shown = run(&["show", "--account", "ROOT"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("roles player,admin"));
    let unknown = run(&["grant-role", "--account", "nobody", "--role", "admin"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account"));
    let bad_role = run(&["grant-role", "--account", "root", "--role", "king"]);
    assert_eq!(
        bad_role.status.code(),
        Some(64),
        "an unknown role is a usage error"
    );
    let revoked = run(&["revoke-role", "--account", "root", "--role", "admin"]);
    assert!(String::from_utf8_lossy(&revoked.stdout).contains("no longer has"));
    let banned = run(&[
        "ban",
        "--account",
        "root",
        "--reason",
        "testing",
        "--for-secs",
        "60",
    ]);
    assert!(banned.status.success(), "{banned:?}");
    assert!(store.active_ban(&account.id, 2).await.unwrap().is_some());
    let unbanned = run(&["unban", "--account", "root"]);
    assert!(String::from_utf8_lossy(&unbanned.stdout).contains("1 ban(s) lifted"));
}
