//! The contract between Coil's room runtime and a game mode.
//!
//! The runtime (`coil-server`) owns sockets, timers, sessions, seats, caps, reconnects and the
//! room lifecycle; a [`Game`] owns its rules and decides what each player is sent. A
//! [`GameMode`] is the factory the node holds per mode ("arena", "breach", a studio's own) and
//! says, in a [`ModeSpec`], what the runtime should provide: tick rate, caps, reconnect grace,
//! whether runs go to the leaderboard, whether rooms run matches.
//!
//! The runtime calls a game only from the room's own task, so a game needs no locks, and it
//! passes time in ([`TickContext`]), so a game never reads a clock. Identity reaches the game
//! already verified ([`Identity`]); a game reports what the world outside the room must act on
//! through one typed channel ([`GameEvent`]: a run's score, a match result, a flag for review)
//! and declares its [`Phase`] and whether it takes joins ([`GameStatus`]). Bots, the leaderboard
//! and score receipts are things a mode opts into; the runtime has no opinion about them.
//!
//! Adding a game touches the game's own crate and the one line that registers its mode: if it
//! needs an edit in the room task, this contract is missing something.
//!
//! This crate does no IO: no tokio, no sockets, no clock, no serde.

use std::time::Duration;

pub use coil_protocol::ErrorCode;

/// A seat inside one room. Assigned by the runtime, unique within the room for the room's
/// lifetime (never reused), so a late message for a departed player cannot reach a newcomer.
/// A player who reconnects to a held seat keeps its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayerId(pub u32);

/// Whether a seat plays or only watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    #[default]
    Player,
    /// Watches; its input is ignored; it never counts in team balance, votes or results. The
    /// runtime counts spectators against the mode's spectator cap, not the player caps.
    Spectator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Spectator => "spectator",
        }
    }

    /// The wire form of join tokens (0 = player, 1 = spectator).
    pub fn from_u8(value: u8) -> Option<Role> {
        match value {
            0 => Some(Role::Player),
            1 => Some(Role::Spectator),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Role::Player => 0,
            Role::Spectator => 1,
        }
    }
}

/// Who is joining, as the runtime verified it. With a signed join token (protocol v12) every
/// field but `skin` comes from the token, never from the client's join frame; a v11 join (the
/// compatibility switch) gets a runtime-made `player_key` and `verified = false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable id of the person: an account id, a guest id, or an anonymous id the matchmaker
    /// made. Results and scores are keyed by it.
    pub player_key: String,
    /// Validated display name (1..=16 characters, see `coil_store::validate_player_name`).
    pub display_name: String,
    /// True when the identity came from a signed join token.
    pub verified: bool,
    /// The party this player came with (parties stay on one team).
    pub party: Option<String>,
    /// The team the matchmaker asked for, if any; the game may still balance.
    pub team: Option<u8>,
    pub role: Role,
    /// Equipped cosmetics, opaque to the runtime: the game decodes what it understands.
    pub cosmetics: Vec<u8>,
    /// The join frame's cosmetic preference byte (the arena's skin); not identity.
    pub skin: u8,
    /// The token says this player created the room's custom lobby: a mode with lobby rules
    /// makes it the host (host controls; the game moves the host on when it leaves).
    pub host: bool,
}

impl Identity {
    /// An unverified player with only a name (tests, benches, v11 joins).
    pub fn guest(player_key: impl Into<String>, display_name: impl Into<String>) -> Identity {
        Identity {
            player_key: player_key.into(),
            display_name: display_name.into(),
            verified: false,
            party: None,
            team: None,
            role: Role::Player,
            cosmetics: Vec::new(),
            skin: 0,
            host: false,
        }
    }
}

/// The code a game refuses something with. Runtime codes ([`ErrorCode`]) are shared by every
/// game; a game may define its own in `1000..=1999` (documented by the game), which reach the
/// client in the same error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefusalCode(u16);

impl RefusalCode {
    pub const FIRST_GAME_CODE: u16 = 1000;
    pub const LAST_GAME_CODE: u16 = 1999;

    /// A game's own code; `None` outside `1000..=1999`.
    pub const fn game(code: u16) -> Option<RefusalCode> {
        if code >= Self::FIRST_GAME_CODE && code <= Self::LAST_GAME_CODE {
            Some(RefusalCode(code))
        } else {
            None
        }
    }

    /// The number in the error frame.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl From<ErrorCode> for RefusalCode {
    fn from(code: ErrorCode) -> RefusalCode {
        RefusalCode(code as u16)
    }
}

/// Something a game would not accept: a join, or a client frame. The runtime answers with an
/// error frame carrying `code` and closes that connection; the room keeps ticking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub reason: &'static str,
}

impl Refusal {
    pub fn new(code: impl Into<RefusalCode>, reason: &'static str) -> Refusal {
        Refusal {
            code: code.into(),
            reason,
        }
    }
}

/// Where a room's game is in its life. Io rooms are always [`Phase::Open`]; match games go
/// Waiting → Starting → InProgress → Ending → (restart: Waiting or Starting | Completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// A drop-in room that never ends by itself (the arena).
    #[default]
    Open,
    /// A lobby: waiting for enough players.
    Waiting,
    /// Countdown to the start.
    Starting,
    InProgress,
    /// The final scoreboard and the restart vote.
    Ending,
    /// The game is over for good: the runtime closes the room.
    Completed,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Open,
        Phase::Waiting,
        Phase::Starting,
        Phase::InProgress,
        Phase::Ending,
        Phase::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Waiting => "waiting",
            Phase::Starting => "starting",
            Phase::InProgress => "in_progress",
            Phase::Ending => "ending",
            Phase::Completed => "completed",
        }
    }

    /// A match is being played (a draining node lets it finish, up to its deadline).
    pub fn is_match_running(self) -> bool {
        matches!(self, Phase::Starting | Phase::InProgress)
    }
}

/// What a game says about itself after each call, read by the runtime once per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GameStatus {
    pub phase: Phase,
    /// Whether the game takes new players now (the runtime also applies its caps and drain).
    pub joinable: bool,
    /// Bots the game runs (published; never counted against human caps).
    pub bots: u32,
}

/// A run that ended (death, or leaving with a live run): the runtime records it on the
/// leaderboard if the mode opted in ([`ModeSpec::leaderboard`]), with the seat's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunScore {
    pub player: PlayerId,
    pub score: u32,
}

/// How a match ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultReason {
    KillLimit,
    TimeLimit,
    /// A team emptied.
    Forfeit,
    /// The room closed before a winner (drain deadline, everyone left).
    Abandoned,
}

impl ResultReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultReason::KillLimit => "kill_limit",
            ResultReason::TimeLimit => "time_limit",
            ResultReason::Forfeit => "forfeit",
            ResultReason::Abandoned => "abandoned",
        }
    }
}

/// One player's line of a match result. Carries the identity itself: a player who left before
/// the end is still in the result, after the runtime forgot its seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerResult {
    pub player_key: String,
    pub display_name: String,
    pub team: u8,
    pub kills: u32,
    pub deaths: u32,
    pub assists: u32,
    pub score: i64,
    /// Left (or was disconnected past the grace) before the match ended.
    pub left_early: bool,
    /// A bot filled the seat (`player_key` is then the game's bot name).
    pub bot: bool,
    /// The seat's identity came from a signed join token ([`Identity::verified`]), so
    /// `player_key` is an account (or guest) id that results may be stored under.
    pub verified: bool,
}

/// A finished match, emitted exactly once per match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult {
    /// The match's number within its room (1, 2, … across restarts); the runtime makes the
    /// fleet-wide match id from the room and this.
    pub ordinal: u32,
    /// The winning team, or `None` for a draw.
    pub winner: Option<u8>,
    pub reason: ResultReason,
    /// Final score per team, indexed by team.
    pub team_scores: Vec<u32>,
    pub players: Vec<PlayerResult>,
    /// Match length in game ticks (from the start of play, countdown excluded).
    pub duration_ticks: u64,
    /// The game's tick rate, so `duration_ticks` converts to time.
    pub tick_rate: u32,
    /// Opaque game data to keep with the result (map, rules), for the store and replays.
    pub details: Vec<(&'static str, String)>,
}

/// How much a flag should worry a moderator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// Something a game noticed that a moderator should review (an aim snap, an input flood).
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub player: PlayerId,
    /// The game tick it happened on (a replay opens there).
    pub tick: u64,
    /// Stable kind, e.g. `aim_snap`, `input_flood`, `fire_rate`.
    pub kind: &'static str,
    pub severity: Severity,
    /// Human-readable evidence (numbers, not prose), kept with the flag.
    pub evidence: String,
}

/// What a game reports for the world outside its room.
#[derive(Debug, Clone, PartialEq)]
pub enum GameEvent {
    RunEnded(RunScore),
    MatchResult(MatchResult),
    Flag(Flag),
    /// The game is done with this player (it voted to leave, or the room's games are over for
    /// it): the runtime ends the seat — closes the connection with `RoomClosed` and forgets the
    /// seat (the game gets no `leave` for it; it already let the player go).
    Release(PlayerId),
}

/// What the runtime passes each tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickContext {
    /// Real seconds since the previous tick, clamped by the runtime (never a huge step).
    /// Deterministic games (replays) step by their fixed tick instead and may ignore it.
    pub dt: f32,
    /// Ticks run so far by this room, starting at 0.
    pub tick: u64,
}

/// Conditions around the room the game may adapt to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conditions {
    /// The room's tick is near its budget: shed optional work (the arena drops its bots).
    pub overloaded: bool,
    /// The node is draining: take no one new, do not start anything new (no restart after the
    /// current match); the runtime closes the room at the drain deadline.
    pub draining: bool,
}

/// A realtime game that one room task drives.
///
/// Call order, from the room task only: any number of `join`, `leave`, `disconnected`,
/// `resumed` and `handle_message` as events arrive, then `tick`, then `write_update` once for
/// every connected seat. Nothing here may block, read a clock or allocate without bound.
pub trait Game: Send + 'static {
    /// Seats a player, or refuses with a stable code (match already started, team full, …).
    /// Called after the runtime checked its own caps; a refusal frees the seat again.
    fn join(&mut self, player: PlayerId, identity: &Identity) -> Result<(), Refusal>;

    /// The player is gone for good (left, kicked, or its reconnect grace ran out). A game with
    /// a run in progress reports it ([`GameEvent::RunEnded`]) into `events`.
    fn leave(&mut self, player: PlayerId, events: &mut Vec<GameEvent>);

    /// The player's connection dropped; its seat is held for the mode's reconnect grace. The
    /// game may keep its character in the world (idle) — it is still seated.
    fn disconnected(&mut self, _player: PlayerId) {}

    /// The player came back to its held seat on a new connection. The client holds nothing,
    /// so the next update must be complete (the default re-sends everything).
    fn resumed(&mut self, player: PlayerId) {
        self.resync(player);
    }

    /// Applies one game-level client frame: the raw bytes of a frame whose type the runtime
    /// does not own (`0x10..=0x7f`).
    fn handle_message(&mut self, player: PlayerId, frame: &[u8]) -> Result<(), Refusal>;

    /// Advances the game by one tick and appends what the runtime must act on to `events`.
    fn tick(&mut self, context: TickContext, events: &mut Vec<GameEvent>);

    /// Appends this tick's game frames for a connected `player` to `out`. The runtime sends
    /// `out` (plus its own frames) as one WebSocket message. The first call after `join` or
    /// `resumed` writes whatever a client needs to start from nothing.
    fn write_update(&mut self, player: PlayerId, out: &mut Vec<u8>);

    /// Forgets what `player`'s client is known to hold, so the next `write_update` re-sends
    /// everything in full. The runtime calls it after it had to drop a frame for a slow
    /// client: delta encoding must never build on a frame the client did not receive.
    fn resync(&mut self, player: PlayerId);

    /// The game's phase, joinability and bot count (read once per tick and after joins).
    fn status(&self) -> GameStatus;

    /// Tells the game about the room's conditions (set when they change).
    fn set_conditions(&mut self, _conditions: Conditions) {}

    /// The game's own running counters (inputs refused, flags raised, …), as (stable name,
    /// total so far). The runtime exports their growth per mode as
    /// `coil_game_events_total{mode, event}`; names must be a fixed set.
    fn counters(&self, _out: &mut Vec<(&'static str, u64)>) {}

    /// A debug command for one player (`POST /api/debug/...` with `ENABLE_DEBUG_COMMANDS=1`),
    /// e.g. the arena's `kill`. Returns whether the game did something.
    fn debug_command(&mut self, _player: PlayerId, _command: &str) -> bool {
        false
    }

    /// The room's lobby (host, map, size) if the game runs matches with a lobby; the runtime
    /// reports it in the room's heartbeat. Io rooms have none (the default).
    fn lobby(&self) -> Option<LobbyView> {
        None
    }
}

/// What a mode asks of the runtime. The node's configuration may override each value per mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeSpec {
    /// Stable lowercase name: `arena`, `breach`, … (letters, digits, `-`; 1..=16).
    pub name: &'static str,
    pub tick: Duration,
    /// The matchmaker stops placing players in a room at this many (players + held seats +
    /// reservations).
    pub soft_cap: usize,
    /// The node refuses player joins at this many connected + held players.
    pub hard_cap: usize,
    /// Most spectators a room takes, beside its players.
    pub spectator_cap: usize,
    /// How long a dropped player's seat is held for a reconnect (zero: leaving is final).
    pub reconnect_grace: Duration,
    /// Runs ([`GameEvent::RunEnded`]) are recorded on the leaderboard, with score receipts.
    pub leaderboard: bool,
    /// Rooms run matches: a draining node lets a match in progress finish (up to the match
    /// drain deadline) instead of closing the room at the ordinary drain deadline.
    pub matches: bool,
    /// Rooms of this mode one node runs by default (a node sets its own from measured
    /// capacity).
    pub max_rooms: usize,
}

/// What the runtime gives a mode to build one room's game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSetup {
    /// Seed of the room's randomness (a replay with the same seed and inputs matches).
    pub seed: u64,
    pub tick: Duration,
    pub hard_cap: usize,
    pub spectator_cap: usize,
    /// The custom lobby's rules, as [`GameMode::lobby_rules`] normalized them (the matchmaker
    /// validated them before it signed the creator's token); `None`: a quick-play room with the
    /// mode's defaults.
    pub rules: Option<String>,
}

/// A custom lobby's rules as the mode read them: the normalized text (what tokens carry and
/// [`RoomSetup::rules`] receives) and the two facts the lobby browser lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyRules {
    /// Canonical `key=value;key=value` text, at most [`LobbyRules::MAX_LEN`] bytes.
    pub normalized: String,
    pub map: String,
    pub max_players: u32,
}

impl LobbyRules {
    /// Most bytes of normalized rules (they travel in join tokens).
    pub const MAX_LEN: usize = 200;
}

/// What a match room's lobby looks like now, for the directory and the lobby browser (read by
/// the runtime once per heartbeat, not per tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyView {
    /// The seat with host controls (`None`: a quick-play room, or nobody left to host).
    pub host: Option<PlayerId>,
    /// The map the next (or current) match plays.
    pub map: String,
    /// Most players (not spectators) the lobby seats under its rules.
    pub max_players: u32,
}

/// A game mode: its defaults and the factory of its rooms' games. Held by the node, shared by
/// every room of the mode.
pub trait GameMode: Send + Sync + 'static {
    /// The mode's defaults (the node applies its configuration on top).
    fn spec(&self) -> ModeSpec;

    /// A fresh game for one room.
    fn create(&self, setup: &RoomSetup) -> Box<dyn Game>;

    /// Reads a custom lobby's rules (`POST /api/lobbies` settings as `key=value;…` text) into
    /// their normalized form, or says in words what is out of range. A mode without custom
    /// lobbies (the default) refuses every text.
    fn lobby_rules(&self, _text: &str) -> Result<LobbyRules, String> {
        Err("this mode has no custom lobbies".to_owned())
    }
}

/// The mode name rule, checked where names come from configuration or the wire.
pub fn valid_mode_name(name: &str) -> bool {
    (1..=16).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_codes_live_in_their_own_range() {
        assert!(RefusalCode::game(999).is_none());
        assert!(RefusalCode::game(2000).is_none());
        assert_eq!(RefusalCode::game(1000).map(RefusalCode::get), Some(1000));
        assert_eq!(RefusalCode::from(ErrorCode::RoomFull).get(), 10);
    }

    #[test]
    fn mode_names_are_short_lowercase_words() {
        assert!(valid_mode_name("arena"));
        assert!(valid_mode_name("breach-2"));
        assert!(!valid_mode_name(""));
        assert!(!valid_mode_name("Arena"));
        assert!(!valid_mode_name("a.b"));
        assert!(!valid_mode_name(&"x".repeat(17)));
    }

    #[test]
    fn roles_round_trip_their_wire_form() {
        for role in [Role::Player, Role::Spectator] {
            assert_eq!(Role::from_u8(role.as_u8()), Some(role));
        }
        assert_eq!(Role::from_u8(2), None);
    }
}
