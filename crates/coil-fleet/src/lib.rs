//! `coil fleet`: a week-long simulation of the game fleet under the real autoscaling policy,
//! the monthly Hetzner bill it implies, and the price table's refresh.
//!
//! # What it owns
//! - `traffic`: the week of demand (daily curve, weekend peak, one 2× spike) and a seeded
//!   random generator.
//! - `capacity`: what one node carries, from `deploy/capacity/*.json` or a
//!   `coil loadtest --find-capacity --json` report, each figure with its provenance.
//! - `prices`: the dated price table under `deploy/prices/`, validated.
//! - `simulate`: nodes, players, boots, drains, evictions; every scaling action comes from
//!   `coil_autoscale::decide`.
//! - `billing`: hourly billing with monthly caps, included traffic, overage, the control
//!   plane; a month from the simulated week.
//! - `scenarios`: the choices compared in one run (server types, regions, long-lived
//!   baseline plus burst) and the verdict.
//! - `chart`: the week as SVG. `refresh`: prices from the Hetzner API.
//! - `cli`: `FleetArgs` and `run`, which the `coil` binary mounts as `coil fleet …`.
//!
//! # What it must not do
//! It never creates or deletes a server: the Hetzner client is used read-only, for prices.
//! It bakes in no capacity figure and no price: both come from files that say where they
//! come from. The simulation reads no clock, so a seed reproduces a week exactly.

pub mod billing;
pub mod capacity;
pub mod chart;
mod cli;
pub mod prices;
pub mod refresh;
pub mod scenarios;
pub mod simulate;
pub mod traffic;

pub use cli::{FleetArgs, FleetCommand, PricesArgs, SimulateArgs, run};
