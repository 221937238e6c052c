//! What every `coil` process (node, matchmaker, autoscaler, load generator) shares around its
//! own logic, so none of them depends on another's crate for it:
//!
//! - [`config`]: [`ConfigError`] (a bad setting names its variable; the binary exits 64), the
//!   `0`/`1` flag parser, and the flag groups several commands take (the directory's Redis,
//!   the internal secret), each declared and validated once.
//! - [`metrics`]: the process-wide Prometheus recorder and its bucket layout.
//! - [`prometheus`]: a parser of the Prometheus text format, for processes that read other
//!   processes' `/metrics` (the autoscaler, the load generator).
//!
//! Must not: know any game, room or service; do IO beyond installing the recorder and reading
//! a secret file a setting names.

pub mod config;
pub mod metrics;
pub mod prometheus;

pub use config::{ConfigError, invalid, parse_flag};
