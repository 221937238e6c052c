//! The client against the stand-in over real HTTP on 127.0.0.1: the server lifecycle, label
//! selectors, pagination, actions, rate limiting, capacity refusals, auth, user-data limits,
//! pricing, injected faults and timeouts, and DNS zone record sets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use coil_hcloud::standin::{InjectedError, Standin, StandinConfig};
use coil_hcloud::{
    ActionStatus, ApiToken, CreateRrsetRequest, CreateServerRequest, ErrorCode, HcloudClient,
    HcloudClientConfig, HcloudError, ImageRef, LabelSelector, ListServersQuery, RrsetRecord,
    ServerId, ServerStatus, USER_DATA_LIMIT_BYTES,
};

const POLL: Duration = Duration::from_millis(5);
const GIVE_UP: Duration = Duration::from_secs(10);

async fn start(config: StandinConfig) -> (Standin, HcloudClient) {
    let standin = Standin::start(config).await.expect("stand-in starts");
    let client = client_for(&standin, &standin.token(), Duration::from_secs(10));
    (standin, client)
}

fn client_for(standin: &Standin, token: &str, request_timeout: Duration) -> HcloudClient {
    HcloudClient::new(
        ApiToken::new(token).expect("token"),
        HcloudClientConfig {
            base_url: standin.base_url(),
            request_timeout,
            ..HcloudClientConfig::default()
        },
    )
    .expect("client builds")
}

fn node_request(name: &str, server_type: &str, location: &str) -> CreateServerRequest {
    let mut request =
        CreateServerRequest::new(name, server_type, ImageRef::Name("ubuntu-24.04".into()));
    request.location = Some(location.to_owned());
    request
        .labels
        .insert("role".to_owned(), "game-node".to_owned());
    request
}

fn instant_actions() -> StandinConfig {
    StandinConfig {
        action_polls_to_finish: 0,
        ..StandinConfig::default()
    }
}

#[tokio::test]
async fn create_get_list_and_delete_a_server() {
    let (standin, client) = start(StandinConfig::default()).await;
    let mut request = node_request("coil-node-1", "cpx32", "fsn1");
    request.image = ImageRef::Id(300_000_001);
    request.user_data = Some("#cloud-config\nruncmd: [\"systemctl start coil-node\"]\n".to_owned());
    request.networks = vec![77];
    request.firewalls = vec![5];
    request.placement_group = Some(9);
    request.enable_ipv4 = false;

    let created = client
        .create_server(&request)
        .await
        .expect("create succeeds");
    assert_eq!(created.server.name, "coil-node-1");
    assert_eq!(created.server.status, ServerStatus::Initializing);
    assert_eq!(created.server.server_type.name, "cpx32");
    assert_eq!(created.server.location_name(), "fsn1");
    assert_eq!(
        created.server.labels.get("role").map(String::as_str),
        Some("game-node")
    );
    assert!(
        created.server.public_net.ipv4.is_none(),
        "ipv4 was switched off"
    );
    assert!(created.server.public_net.ipv6.is_some());
    assert_eq!(created.server.public_net.firewalls[0].id, 5);
    assert_eq!(created.server.private_net[0].network, 77);
    assert_eq!(
        created
            .server
            .placement_group
            .as_ref()
            .map(|group| group.id),
        Some(9)
    );
    let image = created.server.image.as_ref().expect("image");
    assert_eq!(
        (image.id, image.image_type.as_str()),
        (300_000_001, "snapshot")
    );
    assert_eq!(created.action.command, "create_server");
    assert_eq!(created.action.status, ActionStatus::Running);

    // What went over the wire is what the stand-in stored.
    let stored = standin
        .handle()
        .server(created.server.id.0)
        .expect("stored");
    assert_eq!(stored.user_data, request.user_data);
    assert_eq!(stored.firewalls, vec![5]);
    assert_eq!(stored.ipv4, None);

    let finished = client
        .wait_for_action(created.action.id, POLL, GIVE_UP)
        .await
        .expect("create action succeeds");
    assert_eq!(finished.status, ActionStatus::Success);
    assert_eq!(finished.progress, 100);

    let fetched = client.get_server(created.server.id).await.expect("get");
    assert_eq!(fetched.status, ServerStatus::Running);

    let listed = client
        .list_servers(Some("role=game-node"))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|server| server.id).collect::<Vec<_>>(),
        vec![created.server.id]
    );

    let deletion = client
        .delete_server(created.server.id)
        .await
        .expect("delete");
    assert_eq!(deletion.command, "delete_server");
    client
        .wait_for_action(deletion.id, POLL, GIVE_UP)
        .await
        .expect("delete action succeeds");
    let gone = client.get_server(created.server.id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");
    assert!(!gone.is_retryable());
    let deleted_again = client.delete_server(created.server.id).await.unwrap_err();
    assert!(deleted_again.is_not_found(), "{deleted_again:?}");
    assert!(client.list_servers(None).await.expect("list").is_empty());
}

#[tokio::test]
async fn server_status_moves_from_initializing_to_running_as_it_is_observed() {
    let config = StandinConfig {
        action_polls_to_finish: 3,
        ..StandinConfig::default()
    };
    let (_standin, client) = start(config).await;
    let created = client
        .create_server(&node_request("coil-node-2", "ccx13", "ash"))
        .await
        .expect("create");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client
                .get_server(created.server.id)
                .await
                .expect("get")
                .status,
        );
    }
    assert_eq!(
        statuses,
        vec![
            ServerStatus::Initializing,
            ServerStatus::Initializing,
            ServerStatus::Running
        ]
    );
}

#[tokio::test]
async fn label_selectors_filter_the_server_list() {
    let (_standin, client) = start(instant_actions()).await;
    let fleet = [
        ("node-a", &[("role", "game-node"), ("zone", "fsn1")][..]),
        (
            "node-b",
            &[("role", "game-node"), ("zone", "nbg1"), ("draining", "")][..],
        ),
        ("mm-a", &[("role", "matchmaker"), ("zone", "fsn1")][..]),
        ("bare", &[][..]),
    ];
    for (name, labels) in fleet {
        let mut request =
            CreateServerRequest::new(name, "cpx22", ImageRef::Name("debian-12".into()));
        request.location = Some("hel1".to_owned());
        request.labels = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>();
        client.create_server(&request).await.expect("create");
    }
    async fn names(client: &HcloudClient, selector: &str) -> Vec<String> {
        let mut names: Vec<String> = client
            .list_servers(Some(selector))
            .await
            .expect("list")
            .into_iter()
            .map(|server| server.name)
            .collect();
        names.sort();
        names
    }
    assert_eq!(names(&client, "role=game-node").await, ["node-a", "node-b"]);
    assert_eq!(names(&client, "role").await, ["mm-a", "node-a", "node-b"]);
    assert_eq!(names(&client, "!role").await, ["bare"]);
    assert_eq!(names(&client, "role=game-node,!draining").await, ["node-a"]);
    assert_eq!(names(&client, "zone in (nbg1,hel1)").await, ["node-b"]);
    assert_eq!(names(&client, "role!=game-node").await, ["bare", "mm-a"]);
    let built = LabelSelector::everything()
        .with_equals("zone", "fsn1")
        .with_key("role")
        .to_string();
    assert_eq!(names(&client, &built).await, ["mm-a", "node-a"]);

    let refused = client.list_servers(Some("role=,,")).await.unwrap_err();
    assert_eq!(refused.code(), Some(&ErrorCode::InvalidInput));
}

#[tokio::test]
async fn lists_walk_every_page() {
    let (standin, client) = start(instant_actions()).await;
    let total = 57;
    for index in 0..total {
        client
            .create_server(&node_request(&format!("node-{index}"), "cpx22", "nbg1"))
            .await
            .expect("create");
    }

    let first = client
        .list_servers_page(&ListServersQuery {
            label_selector: Some("role=game-node".to_owned()),
            per_page: Some(20),
            ..ListServersQuery::default()
        })
        .await
        .expect("first page");
    let pagination = first.pagination.expect("pagination meta");
    assert_eq!(first.items.len(), 20);
    assert_eq!((pagination.page, pagination.per_page), (1, 20));
    assert_eq!(pagination.previous_page, None);
    assert_eq!(pagination.next_page, Some(2));
    assert_eq!(pagination.last_page, Some(3));
    assert_eq!(pagination.total_entries, Some(total));

    let third = client
        .list_servers_page(&ListServersQuery {
            page: Some(3),
            per_page: Some(20),
            ..ListServersQuery::default()
        })
        .await
        .expect("third page");
    assert_eq!(third.items.len(), 17);
    assert_eq!(third.pagination.and_then(|meta| meta.next_page), None);

    let requests_before = standin.handle().request_count();
    let everything = client
        .list_servers(Some("role=game-node"))
        .await
        .expect("all");
    let ids: BTreeSet<ServerId> = everything.iter().map(|server| server.id).collect();
    assert_eq!(everything.len(), 57);
    assert_eq!(ids.len(), 57, "every server exactly once across pages");
    let list_requests: Vec<_> = standin.handle().request_log()[requests_before..]
        .iter()
        .map(|request| request.query.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        list_requests.len(),
        2,
        "57 servers at 50 per page is two requests"
    );
    assert!(list_requests[1].contains("page=2"));
}

#[tokio::test]
async fn wait_for_action_reports_a_failed_action_as_a_typed_capacity_error() {
    let (standin, client) = start(StandinConfig::default()).await;
    standin
        .handle()
        .fail_next_create_action("placement_error", "no host with enough capacity");
    let created = client
        .create_server(&node_request("coil-node-3", "ccx23", "hel1"))
        .await
        .expect("create is accepted");
    let failure = client
        .wait_for_action(created.action.id, POLL, GIVE_UP)
        .await
        .unwrap_err();
    match &failure {
        HcloudError::ActionFailed {
            action_id,
            code,
            message,
        } => {
            assert_eq!(*action_id, created.action.id);
            assert_eq!(*code, ErrorCode::PlacementError);
            assert_eq!(message, "no host with enough capacity");
        }
        other => panic!("expected ActionFailed, got {other:?}"),
    }
    assert!(failure.is_capacity_problem());
    let server = client
        .get_server(created.server.id)
        .await
        .expect("still exists");
    assert_eq!(
        server.status,
        ServerStatus::Off,
        "a failed create leaves a server to clean up"
    );
}

#[tokio::test]
async fn wait_for_action_gives_up_at_its_deadline() {
    let config = StandinConfig {
        action_polls_to_finish: 1_000_000,
        ..StandinConfig::default()
    };
    let (_standin, client) = start(config).await;
    let created = client
        .create_server(&node_request("coil-node-4", "cpx42", "fsn1"))
        .await
        .expect("create");
    let timed_out = client
        .wait_for_action(
            created.action.id,
            Duration::from_millis(20),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(timed_out, HcloudError::ActionDeadlineExceeded { action_id, progress } if action_id == created.action.id && progress < 100),
        "{timed_out:?}"
    );
}

#[tokio::test]
async fn rate_limit_headers_are_tracked_and_a_429_carries_when_to_retry() {
    let config = StandinConfig {
        rate_limit_per_hour: 10,
        // One request regained every ~17 minutes: no refill can sneak in during the test.
        rate_limit_refill_per_second: 0.001,
        ..StandinConfig::default()
    };
    let (standin, client) = start(config).await;
    assert!(client.rate_limit().is_none());
    assert!(
        client.may_spend(1_000),
        "no snapshot yet: the first response will tell"
    );

    client.list_server_types().await.expect("first call");
    let snapshot = client.rate_limit().expect("headers were read");
    assert_eq!(snapshot.limit, 10);
    assert_eq!(snapshot.remaining, 9);
    assert!(snapshot.reset_at() > SystemTime::now() - Duration::from_secs(5));
    assert!(client.may_spend(9));
    let shortfall = client.check_budget(10).unwrap_err();
    assert_eq!(shortfall.available_now, 9);

    standin.handle().set_rate_limit_remaining(0);
    let before = SystemTime::now();
    let refused = client.get_pricing().await.unwrap_err();
    let HcloudError::RateLimited {
        error,
        retry_at,
        rate_limit,
        ..
    } = &refused
    else {
        panic!("expected RateLimited, got {refused:?}");
    };
    assert_eq!(error.code, ErrorCode::RateLimitExceeded);
    assert_eq!(error.status, 429);
    assert_eq!(rate_limit.map(|snapshot| snapshot.remaining), Some(0));
    assert!(*retry_at > before, "retry lies in the future");
    assert_eq!(refused.retry_at(), Some(*retry_at));
    assert!(refused.is_retryable());
    assert!(!refused.is_capacity_problem());
    assert_eq!(
        client.rate_limit().map(|snapshot| snapshot.remaining),
        Some(0)
    );
    assert!(!client.may_spend(1));
}

#[tokio::test]
async fn capacity_refusals_are_typed_so_an_executor_can_fall_through() {
    let (standin, client) = start(instant_actions()).await;
    let handle = standin.handle();
    handle.set_unavailable("ccx33", "fsn1", true);

    let refused = client
        .create_server(&node_request("node-x", "ccx33", "fsn1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(&ErrorCode::ResourceUnavailable));
    assert!(refused.is_capacity_problem());
    assert!(!refused.is_retryable());
    // The next location takes it.
    client
        .create_server(&node_request("node-x", "ccx33", "nbg1"))
        .await
        .expect("another location has capacity");

    handle.inject_next_create_error(InjectedError::placement_error());
    let placement = client
        .create_server(&node_request("node-y", "ccx33", "nbg1"))
        .await
        .unwrap_err();
    assert_eq!(placement.code(), Some(&ErrorCode::PlacementError));
    assert!(placement.is_capacity_problem());

    handle.set_project_server_limit(Some(1));
    let limited = client
        .create_server(&node_request("node-z", "cpx22", "hel1"))
        .await
        .unwrap_err();
    assert_eq!(limited.code(), Some(&ErrorCode::ResourceLimitExceeded));
    assert!(limited.is_capacity_problem());
    let HcloudError::Api { error, .. } = &limited else {
        panic!("expected an API error, got {limited:?}");
    };
    assert!(
        error
            .details
            .as_ref()
            .is_some_and(|details| details.get("limits").is_some())
    );
    assert_eq!(handle.servers().len(), 1);
}

#[tokio::test]
async fn invalid_requests_are_neither_retryable_nor_capacity_problems() {
    let (_standin, client) = start(instant_actions()).await;
    client
        .create_server(&node_request("dup", "cpx22", "fsn1"))
        .await
        .expect("first");
    let duplicate = client
        .create_server(&node_request("dup", "cpx22", "fsn1"))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Some(&ErrorCode::UniquenessError));

    let unknown_type = client
        .create_server(&node_request("other", "cx9000", "fsn1"))
        .await
        .unwrap_err();
    assert_eq!(unknown_type.code(), Some(&ErrorCode::InvalidInput));
    let not_sold_there = client
        .create_server(&node_request("other", "cpx11", "fsn1"))
        .await
        .unwrap_err();
    assert_eq!(not_sold_there.code(), Some(&ErrorCode::InvalidInput));
    for error in [duplicate, unknown_type, not_sold_there] {
        assert!(!error.is_retryable(), "{error:?}");
        assert!(!error.is_capacity_problem(), "{error:?}");
    }
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized() {
    let (standin, _client) = start(StandinConfig::default()).await;
    let intruder = client_for(&standin, "not-the-token", Duration::from_secs(10));
    let refused = intruder.list_servers(None).await.unwrap_err();
    let HcloudError::Api { error, .. } = &refused else {
        panic!("expected an API error, got {refused:?}");
    };
    assert_eq!(error.code, ErrorCode::Unauthorized);
    assert_eq!(error.status, 401);
    assert!(!refused.is_retryable());
    assert!(!format!("{refused:?} {refused}").contains("not-the-token"));
}

#[tokio::test]
async fn oversized_user_data_is_refused_before_sending() {
    let (standin, client) = start(instant_actions()).await;
    let mut request = node_request("big", "cpx22", "fsn1");
    request.user_data = Some("x".repeat(USER_DATA_LIMIT_BYTES + 1));
    let refused = client.create_server(&request).await.unwrap_err();
    assert!(matches!(
        refused,
        HcloudError::UserDataTooLarge { size_bytes, limit_bytes }
            if size_bytes == USER_DATA_LIMIT_BYTES + 1 && limit_bytes == 32 * 1024
    ));
    assert_eq!(standin.handle().request_count(), 0, "nothing was sent");

    request.user_data = Some("x".repeat(USER_DATA_LIMIT_BYTES));
    client
        .create_server(&request)
        .await
        .expect("exactly 32 KiB is accepted");
}

#[tokio::test]
async fn pricing_and_server_types_are_parsed_into_numbers() {
    let config = StandinConfig::default();
    let expected_type = config
        .server_types
        .iter()
        .find(|server_type| server_type.name == "ccx33")
        .expect("fixture has ccx33")
        .clone();
    let expected_price = expected_type
        .prices
        .iter()
        .find(|price| price.location == "fsn1")
        .expect("sold in fsn1")
        .clone();
    let vat_factor = 1.0 + config.vat_rate_percent / 100.0;
    let (_standin, client) = start(config.clone()).await;

    let pricing = client.get_pricing().await.expect("pricing");
    assert_eq!(pricing.currency, config.currency);
    assert!((pricing.vat_rate_percent - config.vat_rate_percent).abs() < 1e-9);
    let price = pricing
        .server_price("ccx33", "fsn1")
        .expect("ccx33 in fsn1");
    assert!((price.price_monthly.net - expected_price.monthly_net).abs() < 1e-6);
    assert!((price.price_monthly.gross - expected_price.monthly_net * vat_factor).abs() < 1e-6);
    assert!((price.price_hourly.net - expected_price.hourly_net).abs() < 1e-6);
    assert_eq!(
        price.included_traffic,
        expected_price.included_traffic_bytes
    );
    let per_tb = price.price_per_tb_traffic.expect("traffic price");
    assert!((per_tb.net - expected_price.per_tb_traffic_net).abs() < 1e-6);
    let ipv4 = pricing.primary_ipv4_monthly("fsn1").expect("ipv4 price");
    assert!((ipv4.net - config.primary_ipv4_monthly_net).abs() < 1e-6);
    assert_eq!(pricing.server_backup_percent, Some(20.0));
    assert!(pricing.server_price("ccx33", "nowhere").is_none());

    let server_types = client.list_server_types().await.expect("server types");
    assert_eq!(server_types.len(), config.server_types.len());
    let ccx33 = server_types
        .iter()
        .find(|server_type| server_type.name == "ccx33")
        .expect("listed");
    assert_eq!(ccx33.cores, expected_type.cores);
    assert_eq!(ccx33.cpu_type, "dedicated");
    assert_eq!(ccx33.prices.len(), expected_type.prices.len());
    assert_eq!(
        ccx33.price_in("fsn1").map(|price| price.included_traffic),
        Some(expected_price.included_traffic_bytes)
    );
    assert!(
        ccx33
            .locations
            .iter()
            .any(|location| location.name == "fsn1")
    );
}

#[tokio::test]
async fn injected_server_errors_are_retryable() {
    let (standin, client) = start(StandinConfig::default()).await;
    standin
        .handle()
        .inject_next_response_error(InjectedError::server_error());
    standin
        .handle()
        .inject_next_response_error(InjectedError::unavailable());
    let first = client.list_servers(None).await.unwrap_err();
    let second = client.get_pricing().await.unwrap_err();
    assert_eq!(first.code(), Some(&ErrorCode::ServerError));
    assert_eq!(second.code(), Some(&ErrorCode::Unavailable));
    assert!(first.is_retryable() && second.is_retryable());
    client
        .list_servers(None)
        .await
        .expect("the fault was one-shot");
}

#[tokio::test]
async fn every_request_has_a_timeout() {
    let (standin, _client) = start(StandinConfig::default()).await;
    let impatient = client_for(&standin, &standin.token(), Duration::from_millis(100));
    standin.handle().set_response_delay(Duration::from_secs(3));
    let timed_out = impatient.get_pricing().await.unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");
    assert!(timed_out.is_retryable());
    standin.handle().set_response_delay(Duration::ZERO);
    impatient
        .get_pricing()
        .await
        .expect("answers again without the delay");
}

#[tokio::test]
async fn deleting_a_server_twice_while_the_first_delete_runs_is_locked() {
    let (_standin, client) = start(StandinConfig::default()).await;
    let created = client
        .create_server(&node_request("twice", "cpx22", "fsn1"))
        .await
        .expect("create");
    client
        .delete_server(created.server.id)
        .await
        .expect("first delete");
    let again = client.delete_server(created.server.id).await.unwrap_err();
    assert_eq!(again.code(), Some(&ErrorCode::Locked));
    assert!(again.is_retryable());
}

fn a_record(name: &str, value: &str, labels: &[(&str, &str)]) -> CreateRrsetRequest {
    CreateRrsetRequest {
        name: name.to_owned(),
        rrset_type: "A".to_owned(),
        ttl: Some(60),
        records: vec![RrsetRecord {
            value: value.to_owned(),
            comment: None,
        }],
        labels: labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

#[tokio::test]
async fn rrsets_are_created_listed_by_label_and_deleted() {
    let (standin, client) = start(StandinConfig::default()).await;
    let handle = standin.handle();
    let zone_id = handle.add_zone("example.com");

    let created = client
        .create_rrset(
            "example.com",
            &a_record("n-abc.nodes", "198.51.100.7", &[("coil-fleet", "f")]),
        )
        .await
        .unwrap();
    assert_eq!(created.rrset.id, "n-abc.nodes/A");
    assert_eq!(created.rrset.name, "n-abc.nodes");
    assert_eq!(created.rrset.rrset_type, "A");
    assert_eq!(created.rrset.ttl, Some(60));
    assert_eq!(created.rrset.records[0].value, "198.51.100.7");
    assert_eq!(created.rrset.zone, Some(zone_id));
    assert_eq!(created.action.command, "create_rrset");
    assert_eq!(created.action.status, ActionStatus::Success);

    // The same name and type again: 409 uniqueness_error.
    let again = client
        .create_rrset("example.com", &a_record("n-abc.nodes", "198.51.100.8", &[]))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(&ErrorCode::UniquenessError), "{again}");

    // 60 more, by zone id, half of them labelled: the selector and every page are honoured.
    for index in 0..60 {
        let labels: &[(&str, &str)] = if index % 2 == 0 {
            &[("coil-fleet", "f")]
        } else {
            &[("coil-fleet", "g")]
        };
        client
            .create_rrset(
                &zone_id.to_string(),
                &a_record(&format!("n-{index:03}.nodes"), "198.51.100.9", labels),
            )
            .await
            .unwrap();
    }
    let labelled = client
        .list_rrsets("example.com", Some("coil-fleet=f"))
        .await
        .unwrap();
    assert_eq!(labelled.len(), 31);
    assert!(
        labelled
            .iter()
            .all(|rrset| rrset.labels["coil-fleet"] == "f")
    );
    assert_eq!(
        client.list_rrsets("example.com", None).await.unwrap().len(),
        61
    );
    let first_page = client
        .list_rrsets_page("example.com", None, 1, 50)
        .await
        .unwrap();
    assert_eq!(first_page.items.len(), 50);
    assert_eq!(first_page.pagination.unwrap().next_page, Some(2));

    let action = client
        .delete_rrset("example.com", "n-abc.nodes", "A")
        .await
        .unwrap();
    assert_eq!(action.command, "delete_rrset");
    assert!(
        handle
            .rrsets("example.com")
            .unwrap()
            .iter()
            .all(|rrset| rrset.name != "n-abc.nodes")
    );
    // Gone now, and an unknown zone: 404 not_found.
    let missing = client
        .delete_rrset("example.com", "n-abc.nodes", "A")
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let no_zone = client.list_rrsets("example.org", None).await.unwrap_err();
    assert!(no_zone.is_not_found(), "{no_zone}");
    let no_zone = client
        .create_rrset("example.org", &a_record("x", "198.51.100.7", &[]))
        .await
        .unwrap_err();
    assert!(no_zone.is_not_found(), "{no_zone}");
    standin.shutdown().await;
}

#[tokio::test]
async fn rrset_input_is_checked_and_outages_are_api_errors() {
    let (standin, client) = start(StandinConfig::default()).await;
    let handle = standin.handle();
    handle.add_zone("example.com");
    for bad in [
        a_record("www.example.com", "198.51.100.7", &[]),
        a_record("WWW", "198.51.100.7", &[]),
        a_record("www", "not-an-address", &[]),
        CreateRrsetRequest {
            ttl: Some(5),
            ..a_record("www", "198.51.100.7", &[])
        },
        CreateRrsetRequest {
            records: Vec::new(),
            ..a_record("www", "198.51.100.7", &[])
        },
    ] {
        let error = client.create_rrset("example.com", &bad).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&ErrorCode::InvalidInput),
            "{bad:?}: {error}"
        );
    }
    // A name that would be a path of its own is one encoded segment, never a traversal.
    let error = client
        .delete_rrset("example.com", "a/b", "A")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");

    handle.set_dns_unavailable(true);
    let error = client
        .create_rrset("example.com", &a_record("www", "198.51.100.7", &[]))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(handle.rrsets("example.com").unwrap().is_empty());
    handle.set_dns_unavailable(false);
    client
        .create_rrset("example.com", &a_record("www", "198.51.100.7", &[]))
        .await
        .unwrap();
    assert_eq!(handle.rrsets("example.com").unwrap().len(), 1);
    standin.shutdown().await;
}
