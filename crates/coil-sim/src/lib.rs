//! Coil's arena simulation: snakes, pellets, bots, collisions and the uniform spatial grid of
//! the slither-style reference game, as a pure library.
//!
//! # What it owns
//! The game rules and nothing else. [`World`] holds one arena; the room runtime feeds it
//! inputs ([`World::set_input`]), joins and leaves ([`World::spawn_snake`],
//! [`World::remove_snake`]), the bot target ([`World::set_bot_target`]) and elapsed time
//! ([`World::step`]), and reads it back through accessors and the grid-backed view queries
//! ([`World::for_each_snake_near`], [`World::for_each_pellet_in`]), and follows the pellet
//! set through the journal of pellet changes ([`World::pellet_changes_since`]).
//!
//! # What it must not do
//! No IO, no clock, no OS entropy, no tokio, no serde, and no dependencies besides `std`.
//! Time arrives as `dt`; randomness comes from an in-crate seeded SplitMix64 generator. This
//! keeps the sim free of IO and OS entropy, so a run is a pure function of its seed and its
//! inputs: a replay reproduces [`World::state_hash`] exactly, and bots, fuzzing and
//! benchmarks need no harness.
//!
//! # Movement model (the encoder relies on it)
//! A head moves along its heading at [`ArenaConfig::speed`] (or `boost_speed` while
//! boosting) units per second and turns toward the input angle by at most
//! [`ArenaConfig::turn_rate`] radians per second. Body points trail the head: the head leaves
//! a point behind every [`SEGMENT_SPACING`] units, and [`Snake::body`] yields the head then
//! those points. The arena is a circle of [`ArenaConfig::radius`] centred on (0, 0).
//!
//! # Layout
//! - `world.rs`: [`World`], the tick and every rule, bots included.
//! - `snake.rs`: [`Snake`], [`SnakeId`], [`SnakeKind`].
//! - `pellets.rs`: [`Pellet`] and their per-cell storage.
//! - `grid.rs`: the uniform grid: cell maths and the body-point index, updated point by
//!   point as heads move (trail points never move once laid). Collisions (head against the
//!   body points in nearby cells, never all pairs), bot sensing and spawn safety use it;
//!   pellets are stored per cell of the same grid. Snake view queries read the grid's coarse
//!   occupancy map (which 256-unit cells each body touches, one bit per snake), so a viewer
//!   costs a few bit-set unions rather than a test of every snake.
//! - `config.rs`: [`ArenaConfig`], every tunable.
//! - `math.rs`: [`Vec2`]. `rng.rs`: the seeded generator.

mod config;
mod grid;
mod math;
mod pellets;
mod rng;
mod snake;
mod world;

#[cfg(test)]
mod tests;

pub use config::ArenaConfig;
pub use math::{Vec2, wrap_angle};
pub use pellets::{Pellet, PelletChange};
pub use snake::{Snake, SnakeId, SnakeKind};
pub use world::{MassLedger, SimEvent, World};

/// Distance between consecutive trail points of a body, in arena units.
pub const SEGMENT_SPACING: f32 = 8.0;
