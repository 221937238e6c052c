//! The breach scenario against a real node started in this process (all-in-one: the matchmaker
//! on the node's port) with a tiny kill limit: 16 simulated players fill two matches of 8
//! through `POST /api/matchmake`, play them to their result over real WebSockets, vote to stay,
//! and play the restarts. This file is its own test binary, so the node's process-wide
//! metrics count this test's matches only.

mod support;

use coil_breach::BreachConfig;
use coil_loadtest::{LoadtestArgs, Scenario};
use support::TestNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_matches_of_eight_play_to_their_result_with_one_input_per_tick() {
    let node = TestNode::start_configured(true, |config| {
        config.breach = BreachConfig {
            // A kill limit reached in seconds, and a time limit as the backstop (a match that
            // ends on time is a result too, counted the same way).
            kill_limit: 2,
            time_limit_ticks: 30 * 12,
            countdown_ticks: 10,
            scoreboard_ticks: 20,
            ..BreachConfig::default()
        };
    })
    .await;
    let args = LoadtestArgs {
        url: node.url(),
        scenario: Scenario::Breach,
        players: 16,
        ramp: 0.5,
        warmup: 1.0,
        duration: 14.0,
        // Drops and resumes happen, a few per player-minute.
        leave_per_minute: 3.0,
        quiet: true,
        seed: Some(12),
        server_pid: Some(std::process::id()),
        ..LoadtestArgs::default()
    };
    let report = coil_loadtest::run(args).await.unwrap();
    node.stop().await;
    let table = report.to_table();

    assert_eq!(report.scenario, Scenario::Breach);
    assert_eq!(
        report.joins.failed, 0,
        "{:?}\n{table}",
        report.joins.failures_by_reason
    );
    assert_eq!(report.ccu_peak, 16, "{table}");
    let breach = report.breach.as_ref().expect("a breach report");
    assert_eq!(breach.decode_errors, 0, "{table}");
    assert!(
        !report.disconnects_by_reason.contains_key("mirror desync"),
        "{table}"
    );

    // Matches reached their result, and each result was counted once.
    let matches = &breach.matches;
    assert!(matches.started >= 2, "both rooms played: {table}");
    assert!(matches.completed >= 2, "{table}");
    assert_eq!(matches.abandoned, 0, "{table}");
    assert_eq!(matches.completion_rate, Some(1.0), "{table}");
    assert_eq!(matches.duplicate_results_seen, 0, "{table}");
    assert_eq!(matches.results_counted_once, Some(true), "{table}");
    let server_results = matches.server_results.unwrap();
    assert!(server_results >= matches.completed as f64, "{table}");
    assert!(breach.inputs.votes_sent >= 8, "stay votes: {table}");

    // Inputs: one per tick while moving, never two in one tick, all accepted by the node.
    let inputs = &breach.inputs;
    assert_eq!(inputs.most_in_one_tick, 1, "{table}");
    assert!(inputs.moving_ticks > 16 * 30, "{table}");
    assert_eq!(inputs.sent_in_moving_ticks, inputs.moving_ticks, "{table}");
    let rate = inputs.per_player_second_in_window.unwrap();
    // Moving most of the time at 30 ticks per second; standing at the scoreboard or while
    // dead sends nothing, so the average sits below the tick rate, never above it.
    assert!((10.0..=31.0).contains(&rate), "inputs/s {rate}: {table}");
    assert_eq!(inputs.server_refused, Some(0.0), "{table}");
    assert_eq!(inputs.server_malformed, Some(0.0), "{table}");
    assert!(inputs.server_applied.unwrap() > 0.0, "{table}");
    assert!(inputs.fire_ticks > 0 && inputs.speed_changes > 0, "{table}");
    // They aim well enough to hit: someone died.
    assert!(report.behaviour.deaths > 0, "{table}");

    // The arena-standard figures are there too, for the breach tick.
    let traffic = &report.traffic;
    assert_eq!(traffic.players_measured, 16, "{table}");
    assert!(traffic.bytes_per_player_per_second_p50.unwrap() > 30.0 * 3.0);
    let interval = traffic.state_interval_ms.p50.unwrap();
    assert!((20.0..=50.0).contains(&interval), "{table}");
    let server = report.server.as_ref().expect("the node's /metrics");
    assert!(
        server.tick_p99_ms.is_some(),
        "the breach tick histogram: {table}"
    );
    assert!(server.rss_per_player_bytes.is_some());
    assert!(table.contains("completion"), "{table}");
}
