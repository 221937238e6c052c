//! Matchmaking for Coil: the room directory, placement and join tokens.
//!
//! Layout:
//! - [`token`]: Ed25519 join tokens (`TokenSigner` in the matchmaker, `TokenVerifier` and
//!   `ReplayGuard` in game nodes).
//! - [`placement`]: the pure placement policy, `place(snapshot, request, policy) -> Decision`.
//! - [`directory`]: heartbeat payload, the `RoomDirectory` trait and matchmake result types.
//! - [`memory`]: `InMemoryDirectory`, the all-in-one default.
//! - [`redis_directory`]: `RedisDirectory`, the fleet's shared directory.
//!
//! This crate is a library: it runs no HTTP server and reads no clock (callers pass `now_ms`).
//! Must not: scan the whole directory per matchmake, keep entries alive without heartbeats,
//! let concurrent matchmakes overfill a room, or let the signing key leave the matchmaker.

pub mod directory;
pub mod ids;
pub mod memory;
pub mod placement;
pub mod redis_directory;
mod redis_lua;
pub mod token;

pub use directory::{
    DirectoryError, DirectoryOptions, Heartbeat, MatchError, MatchRequest, NodeState, NodeStatus,
    Placement, RegionSnapshot, RoomDirectory, RoomEntry, RoomState, RoomStatus,
};
pub use ids::{NodeId, Region, RoomId};
pub use memory::InMemoryDirectory;
pub use placement::{ConflictReason, Decision, PlacementPolicy, PlacementRequest, place};
pub use redis_directory::{RedisDirectory, RedisDirectoryConfig};

pub use token::{
    JoinClaims, JoinRejection, Nonce, ReplayError, ReplayGuard, TokenError, TokenSigner,
    TokenVerifier, admit_join,
};
