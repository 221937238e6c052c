//! The Hetzner executor against `coil_hcloud::standin` over real HTTP on 127.0.0.1: create,
//! list and delete with the fleet's labels, the delete guard, falling through server types and
//! locations when Hetzner has no capacity (refused creates and failed create actions), the
//! 429 rate limit, a restarted autoscaler adopting the servers that exist, and per-node DNS
//! records (created, deleted, repaired after an outage, orphans removed, none without a zone).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coil_autoscale::{Action, Policy, RegionId};
use coil_autoscaler::{
    Controller, ControllerSettings, DeleteRequest, DnsConfig, Executor, ExecutorError,
    HcloudConfig, HcloudExecutor, NodeControl,
};
use coil_hcloud::standin::{Standin, StandinConfig, StandinHandle, StandinRrset};
use coil_hcloud::{
    ApiToken, CreateRrsetRequest, CreateServerRequest, HcloudClient, HcloudClientConfig, ImageRef,
    RrsetRecord,
};
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
        dns: None,
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

const ZONE: &str = "example.com";

fn dns_executor(standin: &Standin) -> HcloudExecutor {
    standin.handle().add_zone(ZONE);
    let mut config = config();
    config.dns = Some(DnsConfig {
        zone: ZONE.to_owned(),
        nodes_domain: "nodes.example.com".to_owned(),
        ttl_secs: 60,
    });
    HcloudExecutor::new(client(standin), config, control())
}

fn records(handle: &StandinHandle) -> Vec<StandinRrset> {
    handle.rrsets(ZONE).expect("zone exists")
}

/// The (name, type, values) the zone holds, sorted.
fn record_view(handle: &StandinHandle) -> Vec<(String, String, Vec<String>)> {
    // Addresses in their canonical spelling.
    let canonical = |value: String| {
        value
            .parse::<std::net::IpAddr>()
            .map_or(value, |ip| ip.to_string())
    };
    let mut view: Vec<_> = records(handle)
        .into_iter()
        .map(|rrset| {
            let values = rrset.values.into_iter().map(canonical).collect();
            (rrset.name, rrset.rrset_type, values)
        })
        .collect();
    view.sort();
    view
}

/// What the zone should hold for the stand-in's servers: A → IPv4, AAAA → `::1` of the /64.
fn expected_records(handle: &StandinHandle) -> Vec<(String, String, Vec<String>)> {
    let mut expected = Vec::new();
    for server in handle.servers() {
        let name = format!("{}.nodes", server.name);
        if let Some(ipv4) = &server.ipv4 {
            expected.push((name.clone(), "A".to_owned(), vec![ipv4.clone()]));
        }
        if let Some(ipv6) = &server.ipv6 {
            let network: std::net::Ipv6Addr = ipv6.split('/').next().unwrap().parse().unwrap();
            let mut segments = network.segments();
            segments[7] = 1;
            expected.push((
                name,
                "AAAA".to_owned(),
                vec![std::net::Ipv6Addr::from(segments).to_string()],
            ));
        }
    }
    expected.sort();
    expected
}

fn controller(executor: HcloudExecutor) -> Controller<HcloudExecutor> {
    Controller::new(
        executor,
        Policy::default(),
        ControllerSettings {
            regions: vec![region()],
            room_soft_cap: 120,
            scrape_timeout: Duration::from_millis(100),
            matchmaker_metrics_url: None,
        },
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn a_created_node_gets_its_records_and_loses_them_when_deleted() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = dns_executor(&standin);

    let outcome = executor.create(&region(), 2).await;
    assert_eq!(outcome.created.len(), 2, "{:?}", outcome.failures);
    let expected = expected_records(&handle);
    assert_eq!(expected.len(), 4, "A and AAAA for each of two servers");
    assert_eq!(record_view(&handle), expected);
    for rrset in records(&handle) {
        assert_eq!(rrset.ttl, Some(60));
        assert_eq!(rrset.labels.get("coil-fleet").unwrap(), "testfleet");
        assert_eq!(rrset.labels.get("coil-pool").unwrap(), "game");
        assert_eq!(rrset.labels.get("coil-region").unwrap(), "us-east");
        assert_eq!(
            format!("{}.nodes", rrset.labels.get("coil-node").unwrap()),
            rrset.name
        );
    }

    let first = outcome.created[0].clone();
    executor.destroy(&first).await.unwrap();
    let left = record_view(&handle);
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|(name, _, _)| *name != format!("{}.nodes", first.node.0)),
        "{left:?}"
    );
    assert_eq!(left, expected_records(&handle));
    standin.shutdown().await;
}

#[tokio::test]
async fn a_dns_outage_keeps_the_server_and_the_next_pass_repairs_it() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = dns_executor(&standin);

    handle.set_dns_unavailable(true);
    let outcome = executor.create(&region(), 1).await;
    assert_eq!(outcome.created.len(), 1, "{:?}", outcome.failures);
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(handle.servers().len(), 1, "the server is kept");
    assert!(records(&handle).is_empty());

    // Still down: a controller pass lists the server and fails to list the zone, harmlessly.
    let mut controller = controller(executor);
    controller.evaluate(now_ms()).await.unwrap();
    assert!(records(&handle).is_empty());
    assert_eq!(handle.servers().len(), 1);

    // Back: the next pass creates the missing records, and a pass after that changes nothing.
    handle.set_dns_unavailable(false);
    controller.evaluate(now_ms()).await.unwrap();
    assert_eq!(record_view(&handle), expected_records(&handle));
    assert_eq!(records(&handle).len(), 2);
    let before = handle.request_count();
    controller.evaluate(now_ms()).await.unwrap();
    let zone_writes = handle.request_log()[before..]
        .iter()
        .filter(|request| request.path.starts_with("/v1/zones/") && request.method != "GET")
        .count();
    assert_eq!(zone_writes, 0, "nothing to repair");

    // A delete during an outage leaves the records behind; the next pass removes them.
    let node = controller.executor().list().await.unwrap()[0].clone();
    handle.set_dns_unavailable(true);
    controller.executor().destroy(&node).await.unwrap();
    assert!(handle.servers().is_empty(), "the server is deleted anyway");
    assert_eq!(records(&handle).len(), 2);
    handle.set_dns_unavailable(false);
    controller.evaluate(now_ms()).await.unwrap();
    // (The policy's floor of one node may have created a replacement, with its own records.)
    let gone = format!("{}.nodes", node.node.0);
    assert!(
        records(&handle).iter().all(|rrset| rrset.name != gone),
        "{:?}",
        records(&handle)
    );
    assert_eq!(record_view(&handle), expected_records(&handle));
    standin.shutdown().await;
}

#[tokio::test]
async fn orphans_with_the_fleet_labels_are_removed_and_others_kept() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = dns_executor(&standin);
    assert_eq!(executor.create(&region(), 1).await.created.len(), 1);

    let client = client(&standin);
    let fleet_labels = BTreeMap::from([
        ("coil-fleet".to_owned(), "testfleet".to_owned()),
        ("coil-pool".to_owned(), "game".to_owned()),
        (
            "coil-node".to_owned(),
            "testfleet-us-east-dead00".to_owned(),
        ),
    ]);
    let record = |name: &str, labels: BTreeMap<String, String>| CreateRrsetRequest {
        name: name.to_owned(),
        rrset_type: "A".to_owned(),
        ttl: Some(60),
        records: vec![RrsetRecord {
            value: "203.0.113.7".to_owned(),
            comment: None,
        }],
        labels,
    };
    // A gone node's record, one of another fleet, and an unlabelled one.
    client
        .create_rrset(
            ZONE,
            &record("testfleet-us-east-dead00.nodes", fleet_labels.clone()),
        )
        .await
        .unwrap();
    let mut other_fleet = fleet_labels.clone();
    other_fleet.insert("coil-fleet".to_owned(), "otherfleet".to_owned());
    client
        .create_rrset(ZONE, &record("other-us-east-000001.nodes", other_fleet))
        .await
        .unwrap();
    client
        .create_rrset(ZONE, &record("www", BTreeMap::new()))
        .await
        .unwrap();
    // A live node's A record pointing at the wrong address is replaced.
    let live = handle.servers()[0].clone();
    let live_name = format!("{}.nodes", live.name);
    client.delete_rrset(ZONE, &live_name, "A").await.unwrap();
    let mut live_labels = fleet_labels.clone();
    live_labels.insert("coil-node".to_owned(), live.name.clone());
    client
        .create_rrset(ZONE, &record(&live_name, live_labels))
        .await
        .unwrap();

    // Its AAAA spelled out in full is the same address: left alone.
    let aaaa = records(&handle)
        .into_iter()
        .find(|rrset| rrset.name == live_name && rrset.rrset_type == "AAAA")
        .unwrap();
    let full: std::net::Ipv6Addr = aaaa.values[0].parse().unwrap();
    let segments = full.segments();
    let spelled_out = segments
        .iter()
        .map(|segment| format!("{segment:04x}"))
        .collect::<Vec<_>>()
        .join(":");
    client.delete_rrset(ZONE, &live_name, "AAAA").await.unwrap();
    let mut aaaa_request = record(&live_name, aaaa.labels.clone());
    aaaa_request.rrset_type = "AAAA".to_owned();
    aaaa_request.records[0].value = spelled_out.clone();
    client.create_rrset(ZONE, &aaaa_request).await.unwrap();

    executor.list().await.unwrap();
    executor.reconcile().await;
    let aaaa_after = records(&handle)
        .into_iter()
        .find(|rrset| rrset.name == live_name && rrset.rrset_type == "AAAA")
        .unwrap();
    assert_eq!(aaaa_after.values, vec![spelled_out], "not churned");
    let mut expected = expected_records(&handle);
    expected.push((
        "other-us-east-000001.nodes".to_owned(),
        "A".to_owned(),
        vec!["203.0.113.7".to_owned()],
    ));
    expected.push((
        "www".to_owned(),
        "A".to_owned(),
        vec!["203.0.113.7".to_owned()],
    ));
    expected.sort();
    assert_eq!(record_view(&handle), expected);

    // A reconcile without a fresh listing in between does nothing (one list per pass).
    let before = handle.request_count();
    executor.reconcile().await;
    assert_eq!(handle.request_count(), before);
    standin.shutdown().await;
}

#[tokio::test]
async fn without_a_dns_zone_no_dns_call_is_made() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    handle.add_zone(ZONE);
    let mut controller = controller(executor(&standin));
    let outcome = controller.executor().create(&region(), 1).await;
    assert_eq!(outcome.created.len(), 1);
    controller.evaluate(now_ms()).await.unwrap();
    controller
        .executor()
        .destroy(&outcome.created[0])
        .await
        .unwrap();
    assert!(records(&handle).is_empty());
    assert!(
        handle
            .request_log()
            .iter()
            .all(|request| !request.path.starts_with("/v1/zones")),
        "{:?}",
        handle.request_log()
    );
    standin.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_changes_no_records() {
    let standin = Standin::start(StandinConfig::default()).await.unwrap();
    let handle = standin.handle();
    let executor = dns_executor(&standin);
    handle.set_dns_unavailable(true);
    assert_eq!(executor.create(&region(), 1).await.created.len(), 1);
    handle.set_dns_unavailable(false);
    let policy = Policy {
        dry_run: true,
        ..Policy::default()
    };
    let mut controller = Controller::new(
        executor,
        policy,
        ControllerSettings {
            regions: vec![region()],
            room_soft_cap: 120,
            scrape_timeout: Duration::from_millis(100),
            matchmaker_metrics_url: None,
        },
    );
    controller.evaluate(now_ms()).await.unwrap();
    assert!(records(&handle).is_empty());
    standin.shutdown().await;
}
