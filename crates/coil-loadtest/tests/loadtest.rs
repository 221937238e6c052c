//! Runs the load generator against a real node started in this process on 127.0.0.1:0, over
//! real WebSockets, and checks that the report's figures are present and plausible. Timing is
//! never asserted beyond "near the tick", which the design fixes at 50 ms.

use std::net::SocketAddr;
use std::time::Duration;

use coil_loadtest::{LoadtestArgs, Report, Scenario};
use coil_server::NodeConfig;
use tokio::sync::oneshot;

struct TestNode {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestNode {
    async fn start() -> TestNode {
        TestNode::start_shape(false).await
    }

    /// `with_matchmaker`: the all-in-one shape (matchmaker on the same port, v12 tokens).
    async fn start_shape(with_matchmaker: bool) -> TestNode {
        TestNode::start_configured(with_matchmaker, |_| {}).await
    }

    async fn start_configured(
        with_matchmaker: bool,
        configure: impl FnOnce(&mut NodeConfig),
    ) -> TestNode {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::for_tests(data_dir.path());
        configure(&mut config);
        let listener = coil_server::bind(config.listen).unwrap();
        let addr = listener.local_addr().unwrap();
        config.public_url = format!("ws://{addr}");
        // Only matchmaker tokens get in, so a direct v11 join could not pass for one.
        config.allow_protocol_v11 = !with_matchmaker;
        let (shutdown, signal) = oneshot::channel::<()>();
        let services = if with_matchmaker {
            coil_server::all_in_one(&config, Duration::from_secs(20)).unwrap()
        } else {
            coil_server::NodeServices::standalone(coil_server::arena_factory(config.tick))
        };
        let task = tokio::spawn(coil_server::run(config, listener, services, async move {
            let _ = signal.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let health = format!("http://{addr}/api/health");
        while reqwest::get(&health).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "node did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        TestNode {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
            _data_dir: data_dir,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

fn small_run(url: String) -> LoadtestArgs {
    LoadtestArgs {
        url,
        players: 24,
        rooms: 2,
        ramp: 0.5,
        warmup: 1.0,
        duration: 4.0,
        quiet: true,
        seed: Some(42),
        ..LoadtestArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_reports_plausible_figures() {
    let node = TestNode::start().await;
    let json_dir = tempfile::tempdir().unwrap();
    let json_path = json_dir.path().join("report.json");
    let args = LoadtestArgs {
        // No leaves: every player keeps one session, so the counts below are exact.
        leave_per_minute: 0.0,
        json: Some(json_path.clone()),
        // The node runs in this process; /proc gives its CPU exactly (the exported counter
        // counts whole seconds only).
        server_pid: Some(std::process::id()),
        ..small_run(node.url())
    };
    let report: Report = coil_loadtest::run(args).await.unwrap();
    node.stop().await;

    assert_eq!(report.scenario, Scenario::ArenaStandard);
    assert_eq!(report.joins.succeeded, 24, "{:?}", report.joins);
    assert_eq!(
        report.joins.failed, 0,
        "{:?}",
        report.joins.failures_by_reason
    );
    assert_eq!(report.joins.success_rate, Some(1.0));
    assert_eq!(report.ccu_peak, 24);
    assert_eq!(report.ccu_at_end, 24);
    assert_eq!(report.joins.latency_ms.count, 24);
    assert!(report.joins.latency_ms.p99.unwrap() > 0.0);

    let traffic = &report.traffic;
    assert_eq!(traffic.players_measured, 24);
    let p50 = traffic.bytes_per_player_per_second_p50.unwrap();
    let p95 = traffic.bytes_per_player_per_second_p95.unwrap();
    // At 20 Hz every state frame costs at least a header and a type byte.
    assert!(p50 >= 20.0 * 3.0, "bytes/s p50 {p50}");
    assert!(p95 >= p50);
    assert!(traffic.bytes_received_total > 0);
    // ~5.5 s connected at 20 Hz per player.
    assert!(
        traffic.state_frames_total > 24 * 40,
        "{}",
        traffic.state_frames_total
    );
    let interval = traffic.state_interval_ms.p50.unwrap();
    assert!(
        (30.0..=80.0).contains(&interval),
        "state interval p50 {interval} ms"
    );
    assert!(traffic.state_interval_ms.count > 24 * 40);

    assert!(report.behaviour.inputs_sent >= 24, "{:?}", report.behaviour);
    // The only disconnects are the run's own end.
    assert_eq!(report.disconnects_by_reason.get("run ended"), Some(&24));
    assert_eq!(
        report.disconnects_by_reason.len(),
        1,
        "{:?}",
        report.disconnects_by_reason
    );

    let server = report
        .server
        .as_ref()
        .expect("the node's /metrics was read");
    assert!(server.cpu_seconds.unwrap() > 0.0);
    assert!(server.rss_window_end_bytes.unwrap() > 0.0);
    assert!(server.rss_per_player_bytes.unwrap() > 0.0);
    assert!(
        server.player_seconds > 24.0 * 3.0,
        "{}",
        server.player_seconds
    );
    assert!(server.cpu_seconds_per_player_second.unwrap() > 0.0);
    assert!(server.tick_p99_ms.is_some());
    assert_eq!(server.humans_at_end, Some(24.0));

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(written["joins"]["succeeded"], 24);
    assert_eq!(written["scenario"], "arena-standard");
    assert!(
        written["traffic"]["bytes_per_player_per_second_p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(report.to_table().contains("bytes/player/s"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_leave_and_rejoin_when_the_rate_is_forced_high() {
    let node = TestNode::start().await;
    let args = LoadtestArgs {
        players: 8,
        rooms: 1,
        // 60 per minute: each player leaves about once a second.
        leave_per_minute: 60.0,
        ..small_run(node.url())
    };
    let report = coil_loadtest::run(args).await.unwrap();
    node.stop().await;

    assert!(
        report.behaviour.planned_leaves >= 8,
        "{:?}",
        report.behaviour
    );
    assert!(
        report.joins.succeeded > 8,
        "rejoins counted as joins: {:?}",
        report.joins
    );
    assert_eq!(
        report.joins.failed, 0,
        "{:?}",
        report.joins.failures_by_reason
    );
    assert!(
        report
            .disconnects_by_reason
            .get("left to rejoin")
            .copied()
            .unwrap_or(0)
            >= 8
    );
}

#[tokio::test]
async fn a_remote_target_is_refused_without_allow_remote() {
    let args = LoadtestArgs {
        url: "http://203.0.113.7:8787".into(),
        duration: 1.0,
        warmup: 0.0,
        quiet: true,
        ..LoadtestArgs::default()
    };
    let error = coil_loadtest::run(args).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("--allow-remote"), "{message}");
    assert!(message.contains("203.0.113.7"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_yields_connect_failures_not_a_panic() {
    // A port that was just free: nothing listens on it any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let args = LoadtestArgs {
        url: format!("http://127.0.0.1:{port}"),
        players: 4,
        ramp: 0.0,
        warmup: 0.0,
        duration: 1.5,
        quiet: true,
        ..LoadtestArgs::default()
    };
    let report = coil_loadtest::run(args).await.unwrap();
    assert_eq!(report.joins.succeeded, 0);
    assert!(report.joins.failed >= 4, "{:?}", report.joins);
    assert_eq!(report.joins.success_rate, Some(0.0));
    let refused = report
        .joins
        .failures_by_reason
        .get("connect: connection refused")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        refused, report.joins.failed,
        "{:?}",
        report.joins.failures_by_reason
    );
    assert!(report.server.is_none());
    assert_eq!(report.ccu_peak, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_can_join_through_the_matchmaker() {
    let node = TestNode::start_shape(true).await;
    let args = LoadtestArgs {
        leave_per_minute: 0.0,
        players: 12,
        rooms: 1,
        matchmaker: Some(node.url()),
        ..small_run(node.url())
    };
    let report: Report = coil_loadtest::run(args).await.unwrap();
    node.stop().await;
    assert_eq!(
        report.joins.succeeded, 12,
        "{:?}",
        report.joins.failures_by_reason
    );
    assert_eq!(report.joins.failed, 0);
    assert_eq!(report.ccu_at_end, 12);
}

/// The matchmake-burst scenario against the all-in-one shape: every placement is answered with
/// a room and a token, every placed player joins and leaves, and the report's counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchmake_burst_places_and_joins_every_player() {
    let node = TestNode::start_shape(true).await;
    let args = LoadtestArgs {
        url: node.url(),
        matchmaker: Some(node.url()),
        scenario: Scenario::MatchmakeBurst,
        players: 300,
        ramp: 1.0,
        join: true,
        quiet: true,
        ..LoadtestArgs::default()
    };
    let report = coil_loadtest::run(args).await.unwrap();
    let burst = report.burst.clone().expect("a burst report");
    assert_eq!(burst.sent + burst.not_sent_generator_busy, 300);
    assert_eq!(burst.placed, 300, "{:?}", burst.refused_by_reason);
    assert!(burst.refused_by_reason.is_empty());
    assert_eq!(burst.placement_latency_ms.count, 300);
    assert!(burst.placed_per_second > 0.0 && burst.elapsed_seconds >= 0.9);
    let joins = burst.joins.clone().expect("--join reports joins");
    assert_eq!(
        (joins.succeeded, joins.failed),
        (300, 0),
        "{:?}",
        joins.failures_by_reason
    );
    assert!(report.to_table().contains("placements per second"));
    node.stop().await;
}

/// A capacity run that reaches the node's room limit says so and calls its figure a lower
/// bound, instead of reporting the node as broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_run_stopped_by_the_room_limit_is_a_lower_bound() {
    let node = TestNode::start_configured(false, |config| config.max_rooms = 2).await;
    let args = LoadtestArgs {
        url: node.url(),
        find_capacity: true,
        room_size: 5,
        ramp: 0.2,
        step: 1.0,
        max_players: 50,
        server_cores: 2.0,
        quiet: true,
        seed: Some(3),
        ..LoadtestArgs::default()
    };
    let report = coil_loadtest::run(args).await.unwrap();
    let capacity = report.capacity.expect("a capacity report");
    assert_eq!(capacity.largest_ccu_held, 10, "{capacity:?}");
    assert!(
        capacity.stop_reason.contains("MAX_ROOMS"),
        "{}",
        capacity.stop_reason
    );
    assert!(capacity.lower_bound);
    node.stop().await;
}
