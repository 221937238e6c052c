//! Every metric the autoscaler exports, declared in one place, and the `GET /metrics` listener.
//!
//! Names are the agreed ones: `coil_autoscaler_decisions_total{action}` (labels from
//! `coil_autoscale::metrics`), `coil_autoscaler_create_failures_total{reason}`,
//! `coil_autoscaler_nodes{state}`, `coil_autoscaler_api_requests_remaining` and
//! `coil_autoscaler_dns_failures_total{operation}`. Label values are bounded (action kinds,
//! node states, failure reasons, DNS operations), never node ids. The process-wide
//! recorder is `coil_service::metrics::install()`, shared with anything else in the process.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use coil_autoscale::Decision;
use metrics::{counter, describe_counter, describe_gauge, gauge};

pub const CREATE_FAILURES_TOTAL: &str = "coil_autoscaler_create_failures_total";
pub const API_REQUESTS_REMAINING: &str = "coil_autoscaler_api_requests_remaining";
pub const DNS_FAILURES_TOTAL: &str = "coil_autoscaler_dns_failures_total";

/// The `operation` values of `coil_autoscaler_dns_failures_total`: a node's record set could
/// not be created or deleted, or the zone's labelled record sets could not be listed.
pub const DNS_FAILURE_OPERATIONS: [&str; 3] = ["create", "delete", "list"];

/// The `reason` values of `coil_autoscaler_create_failures_total`.
pub const CREATE_FAILURE_REASONS: [&str; 9] = [
    // Hetzner has no capacity for this type in this location (2026 rationing).
    "resource_unavailable",
    // The project's server limit.
    "resource_limit_exceeded",
    "placement_error",
    // 429, or the budget guard kept the request back.
    "rate_limited",
    // Any other refusal or failed create action.
    "api_error",
    // Connection refused, timeout.
    "transport",
    // A local child process could not be started.
    "spawn_failed",
    // Every (server type, location) option failed for one node: the alert.
    "all_options_failed",
    // Misconfiguration (user data too large, no free port).
    "config",
];

/// Describes the metrics and makes every label series exist at zero, so dashboards and
/// `increase()` work before the first event.
pub fn describe() {
    describe_counter!(
        coil_autoscale::metrics::DECISIONS_TOTAL,
        "Autoscaler actions decided, by kind (scale_out, scale_in, drain, delete, hold)."
    );
    describe_counter!(
        CREATE_FAILURES_TOTAL,
        "Node creations refused or failed, by reason."
    );
    describe_gauge!(
        coil_autoscale::metrics::NODES,
        "Game nodes the autoscaler sees, by state (booting, active, draining)."
    );
    describe_gauge!(
        API_REQUESTS_REMAINING,
        "Hetzner API requests left in the hourly budget (RateLimit-Remaining)."
    );
    for action in coil_autoscale::metrics::DECISION_ACTION_LABELS {
        counter!(coil_autoscale::metrics::DECISIONS_TOTAL, "action" => action).increment(0);
    }
    for reason in CREATE_FAILURE_REASONS {
        counter!(CREATE_FAILURES_TOTAL, "reason" => reason).increment(0);
    }
    describe_counter!(
        DNS_FAILURES_TOTAL,
        "Per-node DNS record changes or listings that failed, by operation (create, delete, list); retried by the next pass."
    );
    for operation in DNS_FAILURE_OPERATIONS {
        counter!(DNS_FAILURES_TOTAL, "operation" => operation).increment(0);
    }
}

pub fn dns_failed(operation: &'static str) {
    counter!(DNS_FAILURES_TOTAL, "operation" => operation).increment(1);
}

/// Counts a decision's actions and sets the node gauges.
pub fn record_decision(decision: &Decision) {
    for (action, count) in decision.counts_by_metric_label() {
        if count > 0 {
            counter!(coil_autoscale::metrics::DECISIONS_TOTAL, "action" => action).increment(count);
        }
    }
    for (state, count) in decision.node_gauges() {
        gauge!(coil_autoscale::metrics::NODES, "state" => state).set(count as f64);
    }
}

pub fn create_failed(reason: &'static str) {
    counter!(CREATE_FAILURES_TOTAL, "reason" => reason).increment(1);
}

pub fn api_requests_remaining(remaining: u32) {
    gauge!(API_REQUESTS_REMAINING).set(f64::from(remaining));
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = coil_service::metrics::install();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_listener_serves_the_agreed_metric_names() {
        coil_service::metrics::install();
        describe();
        create_failed("resource_unavailable");
        api_requests_remaining(3_500);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async move {
            let _ = stopped.await;
        }));
        let text = reqwest::get(format!("http://{address}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for name in [
            "coil_autoscaler_decisions_total{action=\"scale_out\"}",
            "coil_autoscaler_decisions_total{action=\"hold\"}",
            "coil_autoscaler_create_failures_total{reason=\"resource_unavailable\"}",
            "coil_autoscaler_create_failures_total{reason=\"all_options_failed\"}",
            "coil_autoscaler_api_requests_remaining 3500",
            "coil_autoscaler_dns_failures_total{operation=\"create\"} 0",
            "coil_autoscaler_dns_failures_total{operation=\"list\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
