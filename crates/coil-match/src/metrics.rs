//! Every metric `coil-match` records, declared in one place (Prometheus names, bounded label
//! values). The process that embeds the crate installs the recorder and calls [`describe`].

use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Registers the help text of this crate's metrics with the installed recorder.
pub fn describe() {
    describe_gauge!(
        "coil_directory_store_up",
        "1 while the Redis directory has a connection in use, 0 while it reconnects."
    );
    describe_counter!(
        "coil_directory_store_reconnects_total",
        "Connections to the Redis directory re-established after a loss."
    );
    describe_counter!(
        "coil_directory_calls_shed_total",
        "Directory calls failed at once without reaching Redis, by reason \
         (not_connected, breaker_open, overloaded)."
    );
    describe_counter!(
        "coil_directory_call_failures_total",
        "Directory calls that reached Redis and failed, by kind (timeout, io)."
    );
}

pub(crate) fn directory_store_up(up: bool) {
    gauge!("coil_directory_store_up").set(if up { 1.0 } else { 0.0 });
}

pub(crate) fn directory_reconnect() {
    counter!("coil_directory_store_reconnects_total").increment(1);
}

pub(crate) fn directory_call_shed(reason: &'static str) {
    counter!("coil_directory_calls_shed_total", "reason" => reason).increment(1);
}

pub(crate) fn directory_call_failure(kind: &'static str) {
    counter!("coil_directory_call_failures_total", "kind" => kind).increment(1);
}
