//! Coil's load generator: thousands of simulated players in one process, over real
//! WebSockets and the real protocol, playing like people; a capacity finder that adds rooms
//! until a node breaks its tick budget; a matchmaker burst; and a report (table on stdout,
//! JSON on request).
//!
//! Layout: [`args`] (flags, bounds, loopback check → a `Plan`), [`player`] (one simulated
//! player and the [`Joiner`] that opens its session), [`steering`] (the arena player's hand
//! and the one-input-per-tick rule), [`breach`] (the breach scenario's
//! player: matches of 8, one input per tick, the match book), [`burst`] (the matchmake-burst
//! scenario), [`stats`] (shared counters),
//! [`histogram`] (log-bucketed percentiles), [`prometheus`] (reading a node's /metrics),
//! [`run`](crate::run()) (the controller) and [`report`].
//!
//! It must never send traffic beyond loopback unless `--allow-remote` is given, never run
//! without a bound on players and time, and never leave a task running after [`run()`]
//! returns. It depends on the server crate only in tests.

pub mod args;
pub mod breach;
pub mod burst;
pub mod histogram;
pub mod player;
mod procstat;
pub mod prometheus;
pub mod report;
mod run;
pub mod stats;
pub mod steering;

pub use args::{ArgsError, LoadtestArgs, Scenario};
pub use player::Joiner;
pub use report::Report;
pub use run::run;
