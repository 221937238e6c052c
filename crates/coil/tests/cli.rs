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
    "INTERNAL_SECRET_FILE",
    "NODE_LIVENESS_MS",
    "GAME_MODES",
    "MODE_TICK_MS",
    "MODE_MAX_ROOMS",
    "RECONNECT_GRACE_SECS",
    "MATCH_DRAIN_DEADLINE_SECS",
    "BREACH_KILL_LIMIT",
    "BREACH_TIME_LIMIT_SECS",
    "BREACH_MIN_PLAYERS",
    "BREACH_COUNTDOWN_SECS",
    "BREACH_SCOREBOARD_SECS",
    "BREACH_FRIENDLY_FIRE",
    "BREACH_MAX_SPECTATORS",
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

/// The body of a plain HTTP/1.1 GET on 127.0.0.1.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_owned()
}

/// Starts a plain `coil` in `dir` on a free port with `env` set; returns the port and the child.
fn serve_in(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    stdout: Stdio,
) -> (u16, std::process::Child) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let child = coil()
        .current_dir(dir)
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (port, child)
}

#[test]
fn plain_coil_serves_with_embedded_defaults_and_sigterm_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut child) = serve_in(dir.path(), &[], Stdio::piped());
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
    // Before any room exists, /metrics already shows the tick histogram and the WebSocket
    // counters of every mode at zero (dashboards and absent-metric alerts need the series).
    let metrics = http_get(port, "/metrics");
    for series in [
        "coil_tick_duration_seconds_count{mode=\"arena\"} 0",
        "coil_tick_duration_seconds_count{mode=\"breach\"} 0",
        "coil_encode_duration_seconds_count{mode=\"arena\"} 0",
        "coil_ws_bytes_sent_total{mode=\"arena\"} 0",
        "coil_ws_bytes_sent_total{mode=\"breach\"} 0",
        "coil_dropped_frames_total{mode=\"breach\"} 0",
        "coil_ws_bytes_received_total 0",
        "coil_connections_open 0",
        "coil_joins_total{result=\"ok\"} 0",
        "coil_join_latency_seconds_count 0",
    ] {
        assert!(
            metrics.lines().any(|line| line == series),
            "/metrics before the first room lacks `{series}`:\n{metrics}"
        );
    }
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

#[test]
fn data_dir_holds_the_default_database_and_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut child) = serve_in(dir.path(), &[("DATA_DIR", "state")], Stdio::null());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.path().join("state/leaderboard.db").exists()
        || !dir.path().join("state/receipt.key").exists()
    {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("state/ did not get the database and the receipt key");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Nothing went to the working directory's data/ (DATABASE_URL used to default there).
    assert!(
        !dir.path().join("data").exists(),
        "a data/ directory was created"
    );
}
