//! Matchmaking for Coil: the room directory, placement and join tokens.
//!
//! Layout:
//! - [`token`]: Ed25519 join tokens (`TokenSigner` in the matchmaker, `TokenVerifier` and
//!   `ReplayGuard` in game nodes).
//! - [`placement`]: the pure placement policy, `place(snapshot, request, policy) -> Decision`.
//! - [`queue`]: the ranked queue's pure matching function, `form_matches(tickets, backfills,
//!   rules, now_ms) -> QueueDecision` (backfills first, region then neighbours, parties whole,
//!   teams balanced within each ticket's widening allowance).
//! - [`rating`]: Weng-Lin team ratings (`update_match`), the matchmaking skill and the
//!   conservative displayed value once an account is calibrated.
//! - [`directory`]: heartbeat payload, the `RoomDirectory` trait and matchmake result types.
//! - [`memory`]: `InMemoryDirectory`, the all-in-one default.
//! - [`redis_directory`]: `RedisDirectory`, the fleet's shared directory; its connection,
//!   reconnects and load shedding are `redis_link.rs`.
//! - [`metrics`]: the directory connection's metrics.
//!
//! How the pieces fit (the HTTP wiring lives elsewhere):
//! - Matchmaker, `POST /api/matchmake`: `directory.matchmake(&request, &policy, now_ms)` →
//!   `placement.join_claims(player_id, name, token_ttl, now_ms)` → `signer.sign(&claims)` →
//!   `{roomId, wsUrl: placement.ws_url(), joinToken, expiresAt: claims.expires_at_ms, region}`.
//!   Errors: `MatchError::{http_status, code, retry_after_s}` (409 with `suggested`, or 503).
//! - Matchmaker, `POST /internal/room-heartbeat`: body is a [`Heartbeat`];
//!   `directory.heartbeat(&body, ttl, now_ms)` (TTL about three heartbeat intervals).
//! - Game node, on `Join{joinToken}`: [`admit_join`] (signature, expiry, room/node, single use);
//!   when `placement.new_room` the room id is new to the node, which creates it on the first
//!   valid join; then `directory.confirm_seat(room, &claims.nonce, now_ms)` (or let the
//!   reservation expire).
//!
//! This crate is a library: it runs no HTTP server and reads no clock (callers pass `now_ms`).
//! - Ranked queue (later: the ticket store in Redis): read the waiting tickets and backfill
//!   requests, `form_matches(&tickets, &backfills, &rules, now_ms)`, then remove the matched
//!   tickets atomically and place each match; after a match, `update_match` the ratings once.
//!
//! Must not: scan the whole directory per matchmake, keep entries alive without heartbeats,
//! let concurrent matchmakes overfill a room, or let the signing key leave the matchmaker.

pub mod directory;
pub mod ids;
pub mod lobby;
pub mod memory;
pub mod metrics;
pub mod placement;
pub mod queue;
pub mod rating;
pub mod redis_directory;
mod redis_link;
mod redis_lua;
pub mod token;

pub use directory::{
    DirectoryError, DirectoryOptions, Heartbeat, LobbyStatus, MatchError, MatchRequest,
    ModeCapacity, NodeState, NodeStatus, Placement, RegionSnapshot, RoomDirectory, RoomEntry,
    RoomState, RoomStatus,
};
pub use ids::{GameMode, NodeId, Region, RoomId};
pub use lobby::{LobbyCursor, LobbyPage, LobbyQuery, list_lobbies};
pub use memory::InMemoryDirectory;
pub use placement::{
    ConflictReason, Decision, ModeCaps, PlacementPolicy, PlacementRequest, RegionReason, place,
};
pub use queue::{
    AccountKey, Backfill, BackfillAssignment, BackfillTeam, FormedMatch, FormedTeam, InputProblem,
    QueueDecision, QueueRules, QueueRulesError, RejectedBackfill, RejectedTicket, TeamShape,
    Ticket, TicketId, TicketMember, WaitingTicket, Widening, form_matches,
};
pub use rating::{
    DisplayedRating, MatchOutcome, Rating, RatingError, RatingSettings, update_match,
};
pub use redis_directory::{RedisDirectory, RedisDirectoryConfig};
pub use redis_link::RedisLinkSettings;

pub use token::{
    JoinClaims, JoinRejection, Nonce, ReplayError, ReplayGuard, TokenError, TokenSigner,
    TokenVerifier, admit_join,
};
