//! The `coil` binary's command line: bad configuration exits 64 with one line naming the
//! variable, `--help` documents every setting, and a plain `coil` serves with defaults.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every setting of `coil serve`, by its environment variable.
const SERVE_SETTINGS: &[&str] = &[
    "HOST",
    "PORT",
    "DATABASE_URL",
    "DATA_DIR",
    "TICK_MS",
    "ROOM_SOFT_CAP",
    "ROOM_HARD_CAP",
    "ROOM_POPULATION_TARGET",
    "MAX_ROOMS",
    "ROOM_IDLE_SECS",
    "DRAIN_TIMEOUT_SECS",
    "SLOW_CLIENT_TIMEOUT_SECS",
    "CORS_ORIGINS",
    "ALLOW_PROTOCOL_V11",
    "ENABLE_DEBUG_COMMANDS",
    "NODE_ID",
    "REGION",
    "PUBLIC_URL",
    "INTERNAL_SECRET",
    "HEARTBEAT_SECS",
    "HEARTBEAT_TTL_SECS",
    "JOIN_TOKEN_TTL_SECS",
];

fn coil() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coil"));
    // Start from a clean slate: no setting leaks in from the developer's shell.
    for variable in SERVE_SETTINGS.iter().chain(&["RUST_LOG", "LOG_FORMAT"]) {
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
fn bad_settings_exit_64_naming_the_variable() {
    fails_with_usage(&[("PORT", "abc")], &[], "PORT");
    fails_with_usage(&[("PORT", "70000")], &["serve"], "PORT");
    fails_with_usage(&[("TICK_MS", "5")], &["serve"], "TICK_MS");
    fails_with_usage(&[("ROOM_SOFT_CAP", "200")], &["serve"], "ROOM_SOFT_CAP");
    fails_with_usage(&[("CORS_ORIGINS", "*")], &["serve"], "CORS_ORIGINS");
    fails_with_usage(
        &[("DATABASE_URL", "mysql://nope")],
        &["serve"],
        "DATABASE_URL",
    );
    fails_with_usage(
        &[("ENABLE_DEBUG_COMMANDS", "maybe")],
        &["serve"],
        "ENABLE_DEBUG_COMMANDS",
    );
    fails_with_usage(&[("LOG_FORMAT", "xml")], &["serve"], "LOG_FORMAT");
    fails_with_usage(&[("RUST_LOG", "=[")], &["serve"], "RUST_LOG");
    fails_with_usage(&[], &["serve", "--no-such-flag"], "--no-such-flag");
}

#[test]
fn help_documents_every_setting() {
    let output = coil().args(["serve", "--help"]).output().unwrap();
    assert!(output.status.success());
    // clap wraps long lines; compare with whitespace folded.
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for variable in SERVE_SETTINGS {
        // Secrets are listed without their value: "[env: INTERNAL_SECRET]".
        let documented = help.contains(&format!("[env: {variable}="))
            || help.contains(&format!("[env: {variable}]"));
        assert!(documented, "--help does not document {variable}");
    }
}

#[test]
fn plain_coil_serves_with_embedded_defaults_and_sigterm_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = coil()
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.contains(&format!("127.0.0.1:{port}")), "{banner}");
    // The default SQLite file and receipt key were created under ./data.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.path().join("data/leaderboard.db").exists()
        || !dir.path().join("data/receipt.key").exists()
    {
        assert!(Instant::now() < deadline, "data/ was not created");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stream = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(stream.is_ok(), "the node accepts connections");
    // SIGTERM drains and exits 0 (no rooms, so at once).
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "coil did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
