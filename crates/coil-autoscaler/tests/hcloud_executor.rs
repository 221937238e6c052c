//! The Hetzner executor against `coil_hcloud::standin` over real HTTP on 127.0.0.1: create,
//! list and delete with the fleet's labels, the delete guard, falling through server types and
//! locations when Hetzner has no capacity (refused creates and failed create actions), the
//! 429 rate limit, and a restarted autoscaler adopting the servers that exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coil_autoscale::{Action, Policy, RegionId};
use coil_autoscaler::{
    Controller, ControllerSettings, DeleteRequest, Executor, ExecutorError, HcloudConfig,
    HcloudExecutor, NodeControl,
};
use coil_hcloud::standin::{Standin, StandinConfig};
use coil_hcloud::{ApiToken, CreateServerRequest, HcloudClient, HcloudClientConfig, ImageRef};
use coil_match::{DirectoryOptions, InMemoryDirectory};

fn client(standin: &Standin) -> HcloudClient {
    HcloudClient::new(
        ApiToken::new(standin.token()).expect("token"),
        HcloudClientConfig {
            base_url: standin.base_url(),
            request_timeout: Duration::from_secs(5),
            ..HcloudClientConfig::default()
        },
    )
    .expect("client")
}

fn config() -> HcloudConfig {
    HcloudConfig {
        fleet: "testfleet".to_owned(),
        server_types: vec!["ccx33".to_owned(), "ccx23".to_owned()],
        locations: BTreeMap::new(),
        default_locations: vec!["ash".to_owned(), "hil".to_owned()],
        image: ImageRef::Name("ubuntu-24.04".to_owned()),
        extra_labels: BTreeMap::from([("team".to_owned(), "game".to_owned())]),
        networks: Vec::new(),
        firewalls: Vec::new(),
        placement_group: None,
        ssh_keys: Vec::new(),
        enable_ipv4: true,
        node_port: 8787,
        user_data: None,
        seats_by_server_type: BTreeMap::from([("ccx23".to_owned(), 240)]),
        budget_reserve: 5,
        action_timeout: Duration::from_secs(5),
        action_poll_interval: Duration::from_millis(10),
        capacity_backoff: Duration::from_secs(60),
    }
}

fn control() -> NodeControl {
    NodeControl::new(
        Arc::new(InMemoryDirectory::new(DirectoryOptions::default())),
        "0123456789abcdef".to_owned(),
    )
}

fn executor(standin: &Standin) -> HcloudExecutor {
    HcloudExecutor::new(client(standin), config(), control())
}

fn region() -> RegionId {
    RegionId::new("us-east")
}

#[tokio::test]
async fn creates_lists_and_deletes_labelled_servers() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = executor(&standin);

    let outcome = executor.create(&region(), 2).await;
    assert_eq!(outcome.created.len(), 2, "{:?}", outcome.failures);
    assert!(outcome.failures.is_empty());
    let servers = handle.servers();
    assert_eq!(servers.len(), 2);
    for server in &servers {
        assert_eq!(server.labels.get("coil-fleet").unwrap(), "testfleet");
        assert_eq!(server.labels.get("coil-pool").unwrap(), "game");
        assert_eq!(server.labels.get("coil-region").unwrap(), "us-east");
        assert_eq!(server.labels.get("coil-node").unwrap(), &server.name);
        assert_eq!(server.labels.get("team").unwrap(), "game");
        assert_eq!(
            (server.server_type.as_str(), server.location.as_str()),
            ("ccx33", "ash")
        );
    }

    let listed = executor.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    let first = listed[0].clone();
    assert_eq!(first.region, region());
    assert_eq!(first.cores, 8);
    assert!(
        first.created_at_ms > 1_600_000_000_000,
        "parsed creation time"
    );
    assert!(first.internal_url.as_deref().unwrap().ends_with(":8787"));
    assert_eq!(first.seat_capacity, None, "ccx33 uses SEATS_PER_NODE");

    // The guard: players on the node and no eviction → no delete, the server stays.
    let guarded = DeleteRequest {
        node: first.clone(),
        humans: 3,
        seats_reserved: 0,
        open_connections: 3,
        evicted: false,
    };
    assert!(matches!(
        executor.delete(&guarded).await,
        Err(ExecutorError::WouldCutOffPlayers { humans: 3, .. })
    ));
    assert_eq!(handle.servers().len(), 2);

    let empty = DeleteRequest {
        humans: 0,
        open_connections: 0,
        ..guarded
    };
    executor.delete(&empty).await.unwrap();
    let remaining = executor.list().await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_ne!(remaining[0].node, first.node);
    assert_eq!(
        handle.servers().len(),
        1,
        "the delete action was followed to the end"
    );
    standin.shutdown().await;
}

#[tokio::test]
async fn falls_through_types_and_locations_when_hetzner_has_no_capacity() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = executor(&standin);

    // The best type is rationed in both locations: the second type is created, in ash.
    handle.set_unavailable("ccx33", "ash", true);
    handle.set_unavailable("ccx33", "hil", true);
    let outcome = executor.create(&region(), 1).await;
    assert_eq!(outcome.created.len(), 1, "{:?}", outcome.failures);
    let reasons: Vec<&str> = outcome
        .failures
        .iter()
        .map(|failure| failure.reason)
        .collect();
    assert_eq!(reasons, ["resource_unavailable", "resource_unavailable"]);
    assert_eq!(outcome.created[0].seat_capacity, Some(240));
    let servers = handle.servers();
    assert_eq!(
        (
            servers[0].server_type.as_str(),
            servers[0].location.as_str()
        ),
        ("ccx23", "ash")
    );

    // A create that is accepted but whose action fails for lack of capacity: the dead server
    // is deleted (it would be billed) and the next option is used.
    handle.fail_next_create_action("resource_unavailable", "no capacity after all");
    let outcome = executor.create(&region(), 1).await;
    assert_eq!(outcome.created.len(), 1, "{:?}", outcome.failures);
    assert_eq!(outcome.failures.len(), 1);
    assert_eq!(outcome.failures[0].reason, "resource_unavailable");
    assert_eq!(handle.servers().len(), 2, "the failed server was deleted");

    // Nothing anywhere: no node, and the alert reason is counted.
    handle.set_unavailable("ccx23", "ash", true);
    handle.set_unavailable("ccx23", "hil", true);
    let outcome = executor.create(&region(), 1).await;
    assert!(outcome.created.is_empty());
    assert!(
        outcome
            .failures
            .iter()
            .any(|failure| failure.reason == "all_options_failed")
    );
    assert_eq!(handle.servers().len(), 2);
    standin.shutdown().await;
}

#[tokio::test]
async fn a_rate_limit_stops_calls_until_its_retry_time() {
    let standin = Standin::start(StandinConfig {
        // No refill within the test: the 429's retry time lies far ahead.
        rate_limit_refill_per_second: 0.001,
        ..StandinConfig::default()
    })
    .await
    .unwrap();
    let handle = standin.handle();
    let executor = executor(&standin);
    let outcome = executor.create(&region(), 1).await;
    assert_eq!(outcome.created.len(), 1);
    let listed = executor.list().await.unwrap();

    handle.set_rate_limit_remaining(0);
    let outcome = executor.create(&region(), 2).await;
    assert!(outcome.created.is_empty());
    assert_eq!(outcome.failures[0].reason, "rate_limited");
    assert!(
        outcome.failures.len() <= 2,
        "the second node of the batch is not even tried: {:?}",
        outcome.failures
    );
    let requests_after_429 = handle.request_count();

    // Blocked: no request goes out, the listing is served from the last good one.
    let outcome = executor.create(&region(), 1).await;
    assert!(outcome.created.is_empty());
    assert_eq!(outcome.failures[0].reason, "rate_limited");
    assert_eq!(executor.list().await.unwrap(), listed);
    assert_eq!(handle.request_count(), requests_after_429);
    assert_eq!(handle.servers().len(), 1);
    standin.shutdown().await;
}

#[tokio::test]
async fn a_restarted_autoscaler_adopts_its_servers_and_only_its_own() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let before_restart = executor(&standin);
    assert_eq!(before_restart.create(&region(), 2).await.created.len(), 2);
    drop(before_restart);

    // A server of another fleet and one without the game pool label stay untouched.
    let client = client(&standin);
    let mut foreign = CreateServerRequest::new(
        "other-1",
        "ccx23",
        ImageRef::Name("ubuntu-24.04".to_owned()),
    );
    foreign
        .labels
        .insert("coil-fleet".to_owned(), "otherfleet".to_owned());
    foreign
        .labels
        .insert("coil-pool".to_owned(), "game".to_owned());
    foreign
        .labels
        .insert("coil-region".to_owned(), "us-east".to_owned());
    client.create_server(&foreign).await.unwrap();
    let mut control_plane = CreateServerRequest::new(
        "testfleet-redis",
        "ccx23",
        ImageRef::Name("ubuntu-24.04".to_owned()),
    );
    control_plane
        .labels
        .insert("coil-fleet".to_owned(), "testfleet".to_owned());
    control_plane
        .labels
        .insert("coil-role".to_owned(), "redis".to_owned());
    client.create_server(&control_plane).await.unwrap();
    assert_eq!(handle.servers().len(), 4);

    let after_restart = executor(&standin);
    let listed = after_restart.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|node| node.node.0.starts_with("testfleet-us-east-"))
    );

    // The controller, fresh memory, over an empty directory: both servers count as booting
    // capacity, so the floor (1) asks for nothing new.
    let mut policy = Policy::default();
    policy.default_limits.min_nodes = 1;
    let mut controller = Controller::new(
        after_restart,
        policy,
        ControllerSettings {
            regions: vec![region()],
            room_soft_cap: 120,
            scrape_timeout: Duration::from_millis(100),
            matchmaker_metrics_url: None,
        },
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let evaluation = controller.evaluate(now_ms).await.unwrap();
    let nodes = &evaluation.snapshot.regions[0].nodes;
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes
            .iter()
            .all(|node| node.state == coil_autoscale::NodeState::Booting)
    );
    assert!(
        !evaluation.decision.actions.iter().any(|action| matches!(
            action,
            Action::CreateNodes { .. } | Action::DeleteNode { .. }
        )),
        "{:?}",
        evaluation.decision.actions
    );
    assert_eq!(handle.servers().len(), 4);
    standin.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_decides_but_creates_nothing() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let mut policy = Policy::default();
    policy.default_limits.min_nodes = 2;
    policy.dry_run = true;
    let mut controller = Controller::new(
        executor(&standin),
        policy,
        ControllerSettings {
            regions: vec![region()],
            room_soft_cap: 120,
            scrape_timeout: Duration::from_millis(100),
            matchmaker_metrics_url: None,
        },
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let evaluation = controller.evaluate(now_ms).await.unwrap();
    assert!(
        evaluation
            .decision
            .actions
            .iter()
            .any(|action| matches!(action, Action::CreateNodes { count: 2, .. }))
    );
    assert!(evaluation.created.is_empty());
    assert!(handle.servers().is_empty());
    standin.shutdown().await;
}
