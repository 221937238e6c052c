//! Breach, Coil's 4v4 top-down tactical reference game: the pure core.
//!
//! This crate owns the game's rules and its bytes: maps as data files (`map.rs`), walls of
//! destructible slices (`walls.rs`), players and movement (`player.rs`), the rifle and the
//! breaching charge (`weapons.rs`), the simulation step (`world.rs`), vision (`vision.rs`) and
//! sound (`sound.rs`), input validation (`input.rs`), bots (`bots.rs`), match rules, seats and
//! phases (`game.rs`, the [`Breach`] struct a runtime adapter drives), the wire format
//! (`wire.rs`), the per-viewer delta encoder (`encode.rs`), the spectators' delayed feed
//! (`spectate.rs`), the Rust client mirror (`mirror.rs`), custom lobbies' settings
//! (`lobby.rs`; host controls and map votes live in `game.rs`), and the thin adapter that
//! makes it a Coil game mode (`runtime.rs`: [`BreachMode`]).
//!
//! It must not do IO, read a clock, spawn threads, use tokio or serde, or read OS entropy:
//! time is ticks, randomness is a seeded generator, and the same seed and inputs give the
//! same [`Breach::state_hash`] tick by tick. Its dependencies are `coil-protocol`, for the
//! varint codec every Coil frame uses, and `coil-game`, the runtime's (pure) game contract. No
//! input, however malformed, may panic it.

pub mod bots;
pub mod encode;
pub mod game;
pub mod input;
pub mod lobby;
pub mod map;
pub mod math;
pub mod mirror;
pub mod player;
mod rng;
pub mod runtime;
pub mod sound;
pub mod spectate;
pub mod vision;
pub mod walls;
pub mod weapons;
pub mod wire;
pub mod world;

pub use game::{
    Breach, BreachConfig, BreachEvent, ConfigError, Counters, Flag, FlagKind, InputError,
    JoinRequest, KICKED_NOTICE_CODE, LobbyRefusal, MatchReason, MatchResult, Phase, PlayerResult,
    Refusal, Role, Seat,
};
pub use lobby::LobbySettings;
pub use map::{Map, MapError, Team};
pub use runtime::{BreachGame, BreachMode};

/// Player slots in one match (two teams of four). Slots are the ids players travel under
/// on the wire (`0..MAX_SLOTS`).
pub const MAX_SLOTS: usize = 8;
/// Players per team.
pub const TEAM_SIZE: usize = MAX_SLOTS / 2;
/// Simulation and send rate.
pub const TICK_RATE: u8 = 30;
