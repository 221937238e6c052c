//! The OpenAPI documents hold every route, and nothing but routes: a route registered in the
//! source (`.route("…")` in coil-server and coil-api) must be a path of a document; on a real
//! all-in-one node (internal routes and debug commands on) and a real `coil matchmaker`, every
//! documented operation reaches a handler (not the "no such endpoint" fallback, not 405), and
//! every method a document leaves out of a documented path answers 405. Undocumented paths are
//! probed too, to show the check tells a handler from the fallback.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coil_server::NodeConfig;
use serde_json::Value;
use support::WAIT;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every path string passed to `.route(` in the `.rs` files under `dir`.
fn routes_in_source(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("source directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            routes_in_source(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let source = std::fs::read_to_string(&path).expect("source file");
            let mut rest = source.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = rest[at + ".route(".len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    let end = literal.find('"').expect("closed string");
                    out.insert(literal[..end].to_string());
                }
            }
        }
    }
}

/// (path, methods) of a document.
fn operations(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

fn crate_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

async fn start_node() -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::for_tests(data_dir.path());
    assert!(config.internal_secret.is_some() && config.enable_debug_commands);
    let listener = coil_server::bind(config.listen).unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = format!("ws://{addr}");
    let services = coil_server::all_in_one_with_accounts(
        &config,
        coil_server::modes::configured(&config).unwrap(),
        Duration::from_secs(20),
        coil_api::AccountsConfig::for_tests(data_dir.path()),
    )
    .unwrap();
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(coil_server::run(config, listener, services, async move {
        let _ = signal.await;
    }));
    wait_for(addr).await;
    (addr, shutdown, data_dir)
}

async fn start_matchmaker() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = coil_server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = coil_server::matchmaker::MatchmakerSettings {
        policy: coil_match::PlacementPolicy::default(),
        token_ttl: Duration::from_secs(20),
        heartbeat_ttl: Duration::from_secs(5),
        internal_secret: Some("test-internal-secret".into()),
        matchmake_deadline: coil_server::matchmaker::MatchmakerSettings::DEFAULT_MATCHMAKE_DEADLINE,
        cors_origins: Vec::new(),
    };
    let directory: Arc<dyn coil_match::RoomDirectory> = Arc::new(
        coil_match::InMemoryDirectory::new(coil_match::DirectoryOptions::default()),
    );
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(coil_server::run_matchmaker(
        settings,
        listener,
        directory,
        coil_match::TokenSigner::generate(),
        async move {
            let _ = signal.await;
        },
    ));
    wait_for(addr).await;
    (addr, shutdown)
}

async fn wait_for(addr: std::net::SocketAddr) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while reqwest::get(format!("http://{addr}/api/health"))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn document_of(addr: std::net::SocketAddr) -> Value {
    let response = reqwest::get(format!("http://{addr}/api/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    document
}

/// What a request with no body and no credentials gets: (status, whether it is the fallback).
async fn probe(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> (u16, bool) {
    let concrete: String = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "probe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = client
        .request(method, format!("http://{addr}{concrete}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let fallback = status == 404
        && body["error"]["code"] == "not_found"
        && body["error"]["message"] == "no such endpoint";
    (status, fallback)
}

/// Every documented operation reaches a handler; every other method on a documented path is
/// 405; undocumented paths reach the fallback.
async fn check_live(addr: std::net::SocketAddr, document: &Value) {
    let client = reqwest::Client::new();
    for (path, methods) in operations(document) {
        for method in METHODS {
            let (status, fallback) = probe(&client, addr, method, &path).await;
            if methods.contains(method) {
                assert!(
                    !fallback && status != 405,
                    "{method} {path} is documented but not served ({status})"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served ({status}) but not documented"
                );
            }
        }
    }
    for undocumented in [
        "/api/nope",
        "/api/health/extra",
        "/internal/nope",
        "/api/openapi",
    ] {
        let (status, fallback) = probe(&client, addr, "get", undocumented).await;
        assert!(
            fallback,
            "{undocumented} should be the fallback, got {status}"
        );
    }
}

#[tokio::test]
async fn every_route_in_the_source_is_documented() {
    let mut in_source = BTreeSet::new();
    routes_in_source(&crate_dir("coil-server"), &mut in_source);
    routes_in_source(&crate_dir("coil-api"), &mut in_source);
    assert!(in_source.contains("/api/health") && in_source.contains("/api/auth/login"));

    let (node, _stop_node, _data) = start_node().await;
    let (matchmaker, _stop_matchmaker) = start_matchmaker().await;
    let mut documented = BTreeSet::new();
    for addr in [node, matchmaker] {
        documented.extend(operations(&document_of(addr).await).into_keys());
    }
    let undocumented: Vec<_> = in_source.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI documents: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&in_source).collect();
    assert!(
        unserved.is_empty(),
        "documented paths no source registers: {unserved:?}"
    );
}

#[tokio::test]
async fn the_node_serves_exactly_its_document() {
    let (addr, _stop, _data) = start_node().await;
    let document = document_of(addr).await;
    let paths = operations(&document);
    for expected in [
        "/internal/drain",
        "/api/debug/kill",
        "/api/matchmake",
        "/api/me",
        "/api/docs",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing");
    }
    check_live(addr, &document).await;
}

#[tokio::test]
async fn the_matchmaker_serves_exactly_its_document() {
    let (addr, _stop) = start_matchmaker().await;
    let document = document_of(addr).await;
    let paths = operations(&document);
    assert!(paths.contains_key("/internal/room-heartbeat"));
    assert!(
        !paths.contains_key("/api/leaderboard"),
        "not a matchmaker route"
    );
    check_live(addr, &document).await;
}

#[tokio::test]
async fn the_docs_page_lists_every_operation_under_a_strict_policy() {
    let (addr, _stop, _data) = start_node().await;
    let document = document_of(addr).await;
    let response = reqwest::get(format!("http://{addr}/api/docs"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script"), "the page runs nothing");
    for (path, methods) in operations(&document) {
        for method in methods {
            let line = format!("{} {}", method.to_uppercase(), path);
            assert!(page.contains(&line), "{line} missing from /api/docs");
        }
    }
}
