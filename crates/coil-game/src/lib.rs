//! The contract between Coil's room runtime and a game, and the arena game that fulfils it.
//!
//! The runtime (`coil-server`) owns sockets, timers, sessions, caps and the room lifecycle; a
//! [`Game`] owns the rules and decides what each player is sent. The runtime calls the game only
//! from the room's own task, so a game needs no locks, and it passes time in as `dt`, so a game
//! never reads a clock. A 4v4 team mode will implement the same trait.
//!
//! This crate does no IO: no tokio, no sockets, no clock, no serde.

pub mod arena;

/// A player seat inside one room. Assigned by the runtime, unique within the room for the
/// room's lifetime (never reused), so a late message for a departed player cannot reach a
/// newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayerId(pub u32);

/// What the runtime knows about a player when it seats them. The runtime has already checked
/// the protocol version, the join token and the room's caps.
#[derive(Debug, Clone)]
pub struct JoinInfo {
    /// Validated display name (1..=16 printable characters).
    pub name: String,
    /// Cosmetic skin index chosen by the client; a game clamps it to what it supports.
    pub skin: u8,
}

/// How many snakes (or units) a room holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Population {
    pub humans: usize,
    pub bots: usize,
}

/// Something that happened during a tick that the runtime must act on outside the game.
#[derive(Debug, Clone, PartialEq)]
pub enum GameEvent {
    /// A human player's run ended (death). The runtime records `score` on the leaderboard.
    PlayerDied {
        player: PlayerId,
        name: String,
        score: u32,
    },
}

/// A client message the game could not accept. The runtime answers with an error frame
/// carrying `code` and closes the connection; the room keeps ticking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub code: coil_protocol::ErrorCode,
    pub reason: &'static str,
}

/// A realtime game that one room task drives.
///
/// Call order per tick, from the room task only: any number of `add_player`, `remove_player`
/// and `handle_message` as events arrive, then `tick(dt)`, then `write_update` once for every
/// seated player. Nothing here may block or allocate without bound.
pub trait Game: Send + 'static {
    /// Seats a human player. Called only after the runtime checked the room's caps.
    fn add_player(&mut self, player: PlayerId, info: &JoinInfo);

    /// Removes a human player (disconnect, kick, drain). Returns the score of the run in
    /// progress, if the player had a live snake, so the runtime can record it.
    fn remove_player(&mut self, player: PlayerId) -> Option<u32>;

    /// Applies one game-level client frame (input, respawn, …): the raw bytes of a frame
    /// whose type the runtime does not own. Inputs are coalesced: the latest one before a
    /// tick wins.
    fn handle_message(&mut self, player: PlayerId, frame: &[u8]) -> Result<(), Rejected>;

    /// Advances the game by `dt` seconds of real elapsed time and appends what the runtime
    /// must act on to `events`.
    fn tick(&mut self, dt: f32, events: &mut Vec<GameEvent>);

    /// Appends this tick's game frames for `player` (state, and meta or death when due) to
    /// `out`. The runtime sends `out` as one WebSocket message. The first call for a player
    /// after `add_player` writes the init frame.
    fn write_update(&mut self, player: PlayerId, out: &mut Vec<u8>);

    /// Forgets what `player`'s client is known to hold, so the next `write_update` re-sends
    /// everything in full. The runtime calls it after it had to drop a frame for a slow
    /// client: delta encoding must never build on a frame the client did not receive.
    fn resync(&mut self, player: PlayerId);

    /// Ends `player`'s current run as if the snake had died (debug and admin commands). The
    /// death shows up as a [`GameEvent::PlayerDied`] on the next tick. Returns false when the
    /// player has no live snake.
    fn kill(&mut self, player: PlayerId) -> bool;

    /// How many bots the game should keep. Bots never take a human's seat: the runtime sets
    /// this to `target population - humans` (or lower when the node sheds load).
    fn set_bot_target(&mut self, bots: usize);

    /// Current humans and bots.
    fn population(&self) -> Population;

    /// A hash of the full game state, for determinism tests and replays.
    fn state_hash(&self) -> u64;
}
