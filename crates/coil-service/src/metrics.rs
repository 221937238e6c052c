//! The process-wide Prometheus recorder. Every crate declares and describes its own metrics in
//! its own `metrics.rs`; this only installs the recorder once, with the bucket layout every
//! histogram of the same kind shares, and hands out its handle for `GET /metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of every `*_duration_seconds` histogram (ticks, encodes, matchmakes, hashes).
pub const TIME_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
/// Buckets of every `*_latency_seconds` histogram (joins: network round trips included).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle. Several services in one
/// process (the all-in-one, tests) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), TIME_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Suffix("_latency_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // A recorder may already be installed by an embedding application; then our
            // handle simply renders nothing of theirs.
            let _ = ::metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
