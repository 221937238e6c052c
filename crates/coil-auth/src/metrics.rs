//! Every metric this crate exports, declared once. No label carries a per-player, per-account
//! or per-session value: labels are rule names, operations and outcomes.

use std::time::Duration;

use metrics::{counter, histogram};

/// `coil_password_hash_duration_seconds{operation="hash"|"verify"}`: queueing plus hashing.
pub fn password_duration(operation: &'static str, elapsed: Duration) {
    histogram!("coil_password_hash_duration_seconds", "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// `coil_password_busy_total`: requests refused because the hashing pool was full.
pub fn password_refused_busy() {
    counter!("coil_password_busy_total").increment(1);
}

/// `coil_rate_limit_checks_total{rule, result="allowed"|"limited"}`.
pub fn rate_limit_decision(rule: &'static str, allowed: bool) {
    let result = if allowed { "allowed" } else { "limited" };
    counter!("coil_rate_limit_checks_total", "rule" => rule, "result" => result).increment(1);
}

/// `coil_rate_limit_errors_total`: checks that could not reach Redis (and were allowed).
pub fn rate_limit_error() {
    counter!("coil_rate_limit_errors_total").increment(1);
}

/// `coil_account_events_published_total{kind}`.
pub fn account_event_published(kind: &'static str) {
    counter!("coil_account_events_published_total", "kind" => kind).increment(1);
}

/// `coil_account_events_subscription_lost_total`: the Redis subscription dropped.
pub fn account_event_subscription_lost() {
    counter!("coil_account_events_subscription_lost_total").increment(1);
}

/// `coil_access_token_checks_total{result}`: bearer tokens checked by [`crate::Authenticator`].
pub fn access_token_check(result: &'static str) {
    counter!("coil_access_token_checks_total", "result" => result).increment(1);
}
