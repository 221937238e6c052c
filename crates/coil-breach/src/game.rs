//! [`Breach`]: one match room's game — seats, teams, phases, results, flags, bots, and the
//! per-viewer bytes — as a plain struct a runtime adapter drives from one task.
//!
//! Call order per tick: any number of [`Breach::add_player`], [`Breach::remove_player`] and
//! [`Breach::apply_input`] as events arrive, then [`Breach::step`] once, then
//! [`Breach::write_update`] once for every seat (players and spectators). When the adapter
//! had to drop a message for a slow client it calls [`Breach::resync`]. Durations are ticks
//! ([`crate::TICK_RATE`] per second); nothing here reads a clock.
//!
//! Phases: `Waiting` (lobby) → `Starting` (countdown, once `min_players` humans are seated)
//! → `InProgress` → `Ending` (final scoreboard, every seated human votes stay or leave) →
//! `Starting` again with those who stayed if at least two did, else `Completed`. A match ends
//! at the kill limit or the time limit, whichever comes first, or by forfeit when a team has
//! no humans left while the other has some; its [`MatchResult`] is emitted exactly once.
//!
//! Custom lobbies ([`Breach::with_lobby`]) add a host and its controls, read from the same
//! frames as input: the countdown starts when the lobby is full or the host starts it (a
//! player on each team), the host kicks, hands over, and changes the rules in the waiting
//! room; when the host goes, the longest-seated human takes over; with map voting on, the map
//! with the most votes (a tie keeps the current one) is played when the countdown starts or
//! the match restarts. Every command is checked against the sender's seat and phase; a refused
//! one is counted and answered with a Notice for that player only. Quick play has none of it.

use coil_protocol::codec::DecodeError;

use crate::bots::BotBrain;
use crate::encode::{self, ClientHolds, OwnView, PublicState};
use crate::input::{InputGate, Intent, SequenceRefusal};
use crate::lobby::LobbySettings;
use crate::map::{Map, Team};
use crate::math::Angle;
use crate::player::Speed;
use crate::rng::{StateHasher, mix64};
use crate::spectate::SpectatorFeed;
use crate::vision::{self, View};
use crate::wire::{
    self, ClientFrame, InitFrame, KillEntry, LobbyCommand, LobbyFrame, NO_SLOT, NoticeFrame,
    RosterEntry, ScoreboardFrame, StateFrame, Vote,
};
use crate::world::{KillCause, World, WorldSettings};
use crate::{MAX_SLOTS, TEAM_SIZE, TICK_RATE};

/// A seat in the room, assigned by the runtime (its player id). Never reused within a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seat(pub u32);

/// Whether a seat plays or watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Player,
    Spectator,
}

/// What the runtime knows about a joining seat (from its join token).
#[derive(Debug, Clone, Copy)]
pub struct JoinRequest<'a> {
    /// Display name, 1..=16 printable characters.
    pub name: &'a str,
    /// A team the player asked for; honoured when it keeps the teams balanced.
    pub team: Option<Team>,
    /// Players of one party are kept on one team when the balance allows.
    pub party: Option<u32>,
    pub role: Role,
}

impl<'a> JoinRequest<'a> {
    /// A player with only a name (no team or party).
    pub fn player(name: &'a str) -> JoinRequest<'a> {
        JoinRequest {
            name,
            team: None,
            party: None,
            role: Role::Player,
        }
    }
}

/// Why a seat was not taken. `code()` is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every player slot holds a human.
    MatchFull,
    /// The spectator cap is reached.
    SpectatorsFull,
    /// The seat is already in this match.
    AlreadySeated,
    /// The match is ending or completed.
    NotJoinable,
    /// The name is empty, too long or has control characters.
    BadName,
    /// The host removed this player from the lobby (the adapter checks the player's key).
    Kicked,
}

impl Refusal {
    pub fn code(self) -> u16 {
        match self {
            Refusal::MatchFull => 1,
            Refusal::SpectatorsFull => 2,
            Refusal::AlreadySeated => 3,
            Refusal::NotJoinable => 4,
            Refusal::BadName => 5,
            Refusal::Kicked => 6,
        }
    }
}

/// Why an input frame was refused. Every refusal is counted in [`Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// Undecodable or out-of-range bytes.
    Malformed(DecodeError),
    UnknownSeat,
    /// Spectators send no input.
    Spectator,
    StaleSequence,
    SequenceJump,
    /// More intents waiting than allowed.
    Flood,
    /// A vote outside the scoreboard phase.
    VoteNotOpen,
    /// A lobby command (host control, map vote) that was refused; the sender was told why
    /// in a Notice frame and stays connected.
    Lobby(LobbyRefusal),
}

/// Why a lobby command was refused. The codes are breach's (game range 1000..=1999) and reach
/// the sender in a Notice frame (`0x98`); the connection stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LobbyRefusal {
    /// A host control from a seat that is not the host.
    NotHost,
    /// Not in this phase (settings and start only in the waiting room, votes only in the
    /// waiting room and on the scoreboard).
    WrongPhase,
    /// Settings the lobby's rules refuse (the notice says which and why).
    BadSettings,
    /// Start early needs at least one player on each team.
    NeedBothTeams,
    /// The target slot holds no other human player.
    NoSuchPlayer,
    /// Host controls and map votes exist only in custom lobbies.
    NotALobby,
    /// This lobby does not vote on maps.
    MapVoteOff,
    /// Not a built-in map id.
    UnknownMap,
}

impl LobbyRefusal {
    /// The number in the Notice frame.
    pub fn code(self) -> u16 {
        match self {
            LobbyRefusal::NotHost => 1110,
            LobbyRefusal::WrongPhase => 1111,
            LobbyRefusal::BadSettings => 1112,
            LobbyRefusal::NeedBothTeams => 1113,
            LobbyRefusal::NoSuchPlayer => 1114,
            LobbyRefusal::NotALobby => 1115,
            LobbyRefusal::MapVoteOff => 1116,
            LobbyRefusal::UnknownMap => 1117,
        }
    }

    /// A sentence for the player.
    pub fn reason(self) -> &'static str {
        match self {
            LobbyRefusal::NotHost => "only the host can do that",
            LobbyRefusal::WrongPhase => "not now: the match has started",
            LobbyRefusal::BadSettings => "those settings are not valid",
            LobbyRefusal::NeedBothTeams => "each team needs at least one player to start",
            LobbyRefusal::NoSuchPlayer => "that player is not in the lobby",
            LobbyRefusal::NotALobby => "this is a quick-play match: there is no host",
            LobbyRefusal::MapVoteOff => "this lobby does not vote on maps",
            LobbyRefusal::UnknownMap => "there is no such map",
        }
    }
}

/// The code a kicked player's Notice carries (and its join refusal, `1100 + Refusal::Kicked`).
pub const KICKED_NOTICE_CODE: u16 = 1106;

impl InputError {
    /// The envelope error code an adapter answers with (`docs/protocol.md` §2). Whether to
    /// close the connection is the adapter's policy; the match itself is unaffected.
    pub fn wire_code(self) -> coil_protocol::ErrorCode {
        use coil_protocol::ErrorCode;
        match self {
            InputError::Malformed(
                DecodeError::Empty | DecodeError::Truncated | DecodeError::TrailingBytes(_),
            ) => ErrorCode::Truncated,
            InputError::Malformed(DecodeError::Oversized) => ErrorCode::Oversized,
            InputError::Malformed(_) | InputError::StaleSequence | InputError::SequenceJump => {
                ErrorCode::BadFrame
            }
            InputError::UnknownSeat
            | InputError::Spectator
            | InputError::VoteNotOpen
            | InputError::Lobby(_) => ErrorCode::OutOfOrder,
            InputError::Flood => ErrorCode::RateLimited,
        }
    }
}

/// Match phases (wire codes 0..=4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Waiting = 0,
    Starting = 1,
    InProgress = 2,
    Ending = 3,
    Completed = 4,
}

/// Why a match ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchReason {
    KillLimit = 1,
    TimeLimit = 2,
    Forfeit = 3,
}

/// One player's line of a match result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerResult {
    /// None for a bot.
    pub seat: Option<Seat>,
    pub name: String,
    pub team: Team,
    pub kills: u32,
    pub deaths: u32,
    pub assists: u32,
}

/// The outcome of one match, emitted once when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult {
    /// 1 for the room's first match, +1 per restart.
    pub match_number: u32,
    /// None for a draw.
    pub winner: Option<Team>,
    pub scores: [u32; 2],
    pub players: Vec<PlayerResult>,
    pub duration_ticks: u32,
    pub reason: MatchReason,
    pub map_id: u8,
}

/// What kind of suspicious pattern a flag reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKind {
    /// Repeated large facing changes within one tick that land on a visible enemy's centre.
    AimSnap,
}

/// Evidence for later review; raising one changes nothing in the match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    pub seat: Seat,
    pub tick: u64,
    pub kind: FlagKind,
    /// Snaps within the window.
    pub snaps: u32,
    /// The largest facing change of those snaps, in milliradians.
    pub largest_turn_mrad: u32,
    /// The smallest aim error of those snaps, in milliradians.
    pub smallest_error_mrad: u32,
}

/// Something the adapter acts on outside the game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreachEvent {
    /// A match ended (exactly once per match).
    Result(MatchResult),
    Flag(Flag),
    /// The kill feed (slots, as on the wire).
    Kill {
        killer: Option<u8>,
        victim: u8,
        assister: Option<u8>,
        cause: KillCause,
    },
    PhaseChanged(Phase),
    /// The seat left the game by vote (or did not vote) or the room completed: the adapter
    /// should send it back to the menu and close its connection.
    Release(Seat),
    /// The host kicked this seat (a `Release` for it follows): the adapter keeps the player
    /// from joining this room again.
    Kicked(Seat),
}

/// Plain counters the adapter exports (as Prometheus counters, summed over rooms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub inputs_applied: u64,
    pub inputs_malformed: u64,
    pub inputs_stale_sequence: u64,
    pub inputs_sequence_jump: u64,
    pub inputs_flood: u64,
    pub inputs_from_spectators: u64,
    pub inputs_unknown_seat: u64,
    pub votes_out_of_phase: u64,
    pub fire_presses_on_cooldown: u64,
    pub aim_snaps: u64,
    pub flags_raised: u64,
    pub results_emitted: u64,
    pub kills: u64,
    pub shots_fired: u64,
    pub slices_destroyed: u64,
    pub charges_exploded: u64,
    pub resyncs: u64,
    pub bytes_written: u64,
    /// Host controls applied (kick, transfer, start early, settings).
    pub host_commands_applied: u64,
    /// Lobby commands refused (from a non-host, out of phase, bad settings, …): a stale UI
    /// sends them innocently, so they are counted and answered, never a reason to disconnect.
    pub lobby_commands_refused: u64,
    pub map_votes: u64,
    pub kicks: u64,
    /// The host left and another player became host.
    pub host_migrations: u64,
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "breach config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The mode's rules. Durations in ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreachConfig {
    /// Built-in map ids, played in turn (restart moves to the next).
    pub map_rotation: Vec<u8>,
    pub kill_limit: u32,
    pub time_limit_ticks: u32,
    /// Humans needed before the countdown starts (0 = start with bots only).
    pub min_players: usize,
    pub countdown_ticks: u32,
    pub scoreboard_ticks: u32,
    pub respawn_ticks: u16,
    pub friendly_fire: bool,
    pub max_spectators: usize,
    pub spectator_delay_ticks: u32,
    /// Fill empty player slots with bots once the countdown starts.
    pub fill_with_bots: bool,
    /// Most players (humans and bots) a match seats: even, 2..=8, teams of half each. A
    /// custom lobby sets it from its `maxPlayers`; quick play keeps 8.
    pub max_players: usize,
    /// Players vote for the next map in the lobby and on the scoreboard (custom lobbies).
    pub map_vote: bool,
}

impl Default for BreachConfig {
    fn default() -> Self {
        let second = u32::from(TICK_RATE);
        BreachConfig {
            map_rotation: Map::built_in_ids(),
            kill_limit: 50,
            time_limit_ticks: 10 * 60 * second,
            min_players: 2,
            countdown_ticks: 5 * second,
            scoreboard_ticks: 15 * second,
            respawn_ticks: 3 * TICK_RATE as u16,
            friendly_fire: false,
            max_spectators: 4,
            spectator_delay_ticks: 3 * second,
            fill_with_bots: true,
            max_players: MAX_SLOTS,
            map_vote: false,
        }
    }
}

impl BreachConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.map_rotation.is_empty() {
            return Err(ConfigError("map_rotation is empty".into()));
        }
        for id in &self.map_rotation {
            if Map::built_in(*id).is_none() {
                return Err(ConfigError(format!("map_rotation names unknown map {id}")));
            }
        }
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError(what.to_string()))
            }
        };
        check(
            (1..=1000).contains(&self.kill_limit),
            "kill_limit must be 1..=1000",
        )?;
        check(
            (1..=24 * 3600 * u32::from(TICK_RATE)).contains(&self.time_limit_ticks),
            "time_limit_ticks must be 1 tick..=24 hours",
        )?;
        check(self.min_players <= MAX_SLOTS, "min_players must be 0..=8")?;
        check(
            (2..=MAX_SLOTS).contains(&self.max_players) && self.max_players % 2 == 0,
            "max_players must be even, 2..=8",
        )?;
        check(
            self.countdown_ticks <= 600,
            "countdown_ticks must be <= 600",
        )?;
        check(
            (1..=3600).contains(&self.scoreboard_ticks),
            "scoreboard_ticks must be 1..=3600",
        )?;
        check(
            (1..=1800).contains(&self.respawn_ticks),
            "respawn_ticks must be 1..=1800",
        )?;
        check(self.max_spectators <= 64, "max_spectators must be 0..=64")?;
        check(
            (1..=900).contains(&self.spectator_delay_ticks),
            "spectator_delay_ticks must be 1..=900",
        )?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Controller {
    Human { seat: Seat, party: Option<u32> },
    Bot(Box<BotBrain>),
}

#[derive(Debug, Clone)]
struct Occupant {
    controller: Controller,
    name: String,
    gate: InputGate,
    holds: ClientHolds,
    vote: Option<Vote>,
    /// The map this player votes for (custom lobbies with map voting).
    map_vote: Option<u8>,
    /// Order of arrival (rises by one per human seated): the longest-seated player inherits
    /// the host.
    seated_since: u64,
    snap_ticks: [u64; SNAP_WINDOW_COUNT],
    snap_turns: [u32; SNAP_WINDOW_COUNT],
    snap_errors: [u32; SNAP_WINDOW_COUNT],
    snap_next: usize,
}

impl Occupant {
    fn seat(&self) -> Option<Seat> {
        match self.controller {
            Controller::Human { seat, .. } => Some(seat),
            Controller::Bot(_) => None,
        }
    }

    fn is_bot(&self) -> bool {
        matches!(self.controller, Controller::Bot(_))
    }
}

#[derive(Debug, Clone)]
struct Spectator {
    seat: Seat,
    holds: ClientHolds,
}

/// Snaps that raise a flag when they fall within [`SNAP_WINDOW_TICKS`].
pub const SNAP_WINDOW_COUNT: usize = 3;
/// The window for [`SNAP_WINDOW_COUNT`] snaps (10 s).
pub const SNAP_WINDOW_TICKS: u64 = 300;
const MAX_NAME_CHARS: usize = 16;

/// One breach match room.
#[derive(Debug, Clone)]
pub struct Breach {
    config: BreachConfig,
    seed: u64,
    world: World,
    occupants: [Option<Occupant>; MAX_SLOTS],
    spectators: Vec<Spectator>,
    phase: Phase,
    phase_ticks_left: u32,
    tick: u64,
    match_number: u32,
    match_generation: u32,
    next_generation: u32,
    map_index: usize,
    scores: [u32; 2],
    match_started_tick: u64,
    humans_at_start: [usize; 2],
    result_emitted: bool,
    /// After this match nobody stays: the scoreboard ends in `Completed` (the node drains).
    last_match: bool,
    scoreboard: Option<ScoreboardFrame>,
    roster: Vec<RosterEntry>,
    roster_version: u64,
    votes: Vec<(u8, u8)>,
    votes_version: u64,
    kills_this_tick: Vec<KillEntry>,
    wall_changes: Vec<(u32, u8)>,
    full_walls: Vec<(u32, u8)>,
    full_walls_tick: Option<u64>,
    spectator_full_walls: Vec<(u32, u8)>,
    spectator_full_walls_tick: Option<u64>,
    spectator_feed: SpectatorFeed,
    counters: Counters,
    view: View,
    state_scratch: StateFrame,
    input_scratch: Vec<u8>,
    /// The custom lobby (host, settings); `None` in quick play.
    lobby: Option<Lobby>,
    /// Humans seated so far (orders arrivals for host migration).
    arrivals: u64,
    /// Notices queued since the last step, and those the coming `write_update`s deliver.
    notices_queued: Vec<(Seat, NoticeFrame)>,
    notices_ready: Vec<(Seat, NoticeFrame)>,
    /// Seats kicked since the last step: released (and reported) by the next step.
    kicked: Vec<Seat>,
    /// The Lobby frame as of `Lobby::version` (rebuilt when the version moves).
    lobby_frame: Option<(u64, LobbyFrame)>,
    notice_scratch: Vec<NoticeFrame>,
}

/// A custom lobby's state beside the match: who hosts, the rules, a start request.
#[derive(Debug, Clone)]
struct Lobby {
    settings: LobbySettings,
    host: Option<Seat>,
    /// Someone hosted once: a newcomer to a lobby whose host and players all left takes over.
    had_host: bool,
    /// The host asked to start before the lobby is full.
    start_requested: bool,
    /// Bumped on every change clients see (host, settings, votes, spectators).
    version: u64,
}

/// Most notices waiting for delivery (a flood of refused commands drops the oldest).
const MAX_NOTICES: usize = 32;

fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&count) && !name.chars().any(char::is_control)
}

impl Breach {
    /// A new room in `Waiting`, on the first map of the rotation.
    pub fn new(config: BreachConfig, seed: u64) -> Result<Breach, ConfigError> {
        config.validate()?;
        let map = Map::built_in(config.map_rotation[0])
            .ok_or_else(|| ConfigError("map missing".into()))?;
        let world = World::new(
            map,
            WorldSettings {
                friendly_fire: config.friendly_fire,
                respawn_ticks: config.respawn_ticks,
            },
            seed,
        );
        let spectator_feed = SpectatorFeed::new(config.spectator_delay_ticks, world.walls());
        Ok(Breach {
            config,
            seed,
            world,
            occupants: Default::default(),
            spectators: Vec::new(),
            phase: Phase::Waiting,
            phase_ticks_left: 0,
            tick: 0,
            match_number: 1,
            match_generation: 1,
            next_generation: 1,
            map_index: 0,
            scores: [0, 0],
            match_started_tick: 0,
            humans_at_start: [0, 0],
            result_emitted: false,
            last_match: false,
            scoreboard: None,
            roster: Vec::new(),
            roster_version: 0,
            votes: Vec::new(),
            votes_version: 0,
            kills_this_tick: Vec::new(),
            wall_changes: Vec::new(),
            full_walls: Vec::new(),
            full_walls_tick: None,
            spectator_full_walls: Vec::new(),
            spectator_full_walls_tick: None,
            spectator_feed,
            counters: Counters::default(),
            view: View::default(),
            state_scratch: StateFrame::default(),
            input_scratch: Vec::with_capacity(16),
            lobby: None,
            arrivals: 0,
            notices_queued: Vec::new(),
            notices_ready: Vec::new(),
            kicked: Vec::new(),
            lobby_frame: None,
            notice_scratch: Vec::new(),
        })
    }

    /// A custom lobby's room: `config` with `settings` applied (one map, limits, team size,
    /// map vote), a host (the first player whose join says so), host controls. The countdown
    /// starts when the lobby is full or the host starts it.
    pub fn with_lobby(
        mut config: BreachConfig,
        seed: u64,
        settings: LobbySettings,
    ) -> Result<Breach, ConfigError> {
        settings.apply_to(&mut config);
        let mut breach = Breach::new(config, seed)?;
        breach.lobby = Some(Lobby {
            settings,
            host: None,
            had_host: false,
            start_requested: false,
            version: 1,
        });
        Ok(breach)
    }

    /// The custom lobby's settings now (`None` in quick play).
    pub fn lobby_settings(&self) -> Option<LobbySettings> {
        self.lobby.as_ref().map(|lobby| lobby.settings)
    }

    /// The lobby's host (`None` in quick play, or with nobody left to host).
    pub fn host(&self) -> Option<Seat> {
        self.lobby.as_ref().and_then(|lobby| lobby.host)
    }

    /// Most players a match seats (humans and bots).
    pub fn max_players(&self) -> usize {
        self.config.max_players
    }

    fn team_size(&self) -> usize {
        (self.config.max_players / 2).clamp(1, TEAM_SIZE)
    }

    /// The map the next (or current) match plays.
    pub fn current_map_id(&self) -> u8 {
        self.world.map().id
    }

    /// Map votes now: (slot, map id), by slot.
    pub fn map_votes(&self) -> Vec<(u8, u8)> {
        (0..MAX_SLOTS)
            .filter_map(|slot| {
                let vote = self.occupants[slot].as_ref()?.map_vote?;
                Some((slot as u8, vote))
            })
            .collect()
    }

    fn lobby_changed(&mut self) {
        if let Some(lobby) = self.lobby.as_mut() {
            lobby.version += 1;
        }
    }

    fn notify(&mut self, seat: Seat, code: u16, text: String) {
        if self.notices_queued.len() >= MAX_NOTICES {
            self.notices_queued.remove(0);
        }
        self.notices_queued.push((seat, NoticeFrame { code, text }));
    }

    fn refuse(&mut self, seat: Seat, refusal: LobbyRefusal, text: Option<String>) -> InputError {
        self.counters.lobby_commands_refused += 1;
        self.notify(
            seat,
            refusal.code(),
            text.unwrap_or_else(|| refusal.reason().to_string()),
        );
        InputError::Lobby(refusal)
    }

    /// The seated human (not a bot) in `slot`, if any.
    fn human_in(&self, slot: usize) -> Option<Seat> {
        self.occupants.get(slot)?.as_ref()?.seat()
    }

    /// Gives the host to the longest-seated human player when the host is gone (left, kicked,
    /// voted to leave). Spectators and bots never host. A lobby whose creator has not arrived
    /// yet waits for it.
    fn settle_host(&mut self) {
        let Some(lobby) = self.lobby.as_ref() else {
            return;
        };
        match lobby.host {
            Some(host) if self.find_slot(host).is_some() => return,
            None if !lobby.had_host => return,
            _ => {}
        }
        let heir = (0..MAX_SLOTS)
            .filter_map(|slot| {
                let occupant = self.occupants[slot].as_ref()?;
                Some((occupant.seated_since, occupant.seat()?))
            })
            .min()
            .map(|(_, seat)| seat);
        let Some(lobby) = self.lobby.as_mut() else {
            return;
        };
        let had = lobby.host;
        if had == heir {
            return;
        }
        lobby.host = heir;
        if had.is_some() && heir.is_some() {
            self.counters.host_migrations += 1;
        }
        self.lobby_changed();
    }

    /// Makes the current match the room's last: when its scoreboard ends, every seat is released
    /// and the room completes whatever the votes said (a draining node). Switching it off again
    /// before the scoreboard ends restores the vote.
    pub fn set_last_match(&mut self, last: bool) {
        self.last_match = last;
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn config(&self) -> &BreachConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn scores(&self) -> [u32; 2] {
        self.scores
    }

    /// Whether a new player could be seated now.
    pub fn joinable(&self) -> bool {
        matches!(
            self.phase,
            Phase::Waiting | Phase::Starting | Phase::InProgress
        ) && self.humans() < self.config.max_players
    }

    /// Whether the room is done and can be closed.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Completed
    }

    /// Humans seated as players.
    pub fn humans(&self) -> usize {
        self.occupants
            .iter()
            .flatten()
            .filter(|occupant| !occupant.is_bot())
            .count()
    }

    pub fn bots(&self) -> usize {
        self.occupants
            .iter()
            .flatten()
            .filter(|occupant| occupant.is_bot())
            .count()
    }

    pub fn spectator_count(&self) -> usize {
        self.spectators.len()
    }

    /// The slot and team of a seated player.
    pub fn slot_of(&self, seat: Seat) -> Option<(usize, Team)> {
        let slot = self.find_slot(seat)?;
        Some((slot, self.world.player(slot)?.team))
    }

    fn find_slot(&self, seat: Seat) -> Option<usize> {
        self.occupants.iter().position(|occupant| {
            occupant
                .as_ref()
                .is_some_and(|occupant| occupant.seat() == Some(seat))
        })
    }

    fn team_of(&self, slot: usize) -> Option<Team> {
        self.world.player(slot).map(|player| player.team)
    }

    fn humans_on(&self, team: Team) -> usize {
        (0..MAX_SLOTS)
            .filter(|&slot| {
                self.occupants[slot]
                    .as_ref()
                    .is_some_and(|occupant| !occupant.is_bot())
                    && self.team_of(slot) == Some(team)
            })
            .count()
    }

    fn bodies_on(&self, team: Team) -> usize {
        (0..MAX_SLOTS)
            .filter(|&slot| self.occupants[slot].is_some() && self.team_of(slot) == Some(team))
            .count()
    }

    /// The team a newcomer joins: the requested or party team when that keeps the humans
    /// balanced, else the team with fewer humans (ties: the one behind on score, then A).
    fn team_for_newcomer(&self, request: &JoinRequest<'_>) -> Team {
        let humans = [self.humans_on(Team::A), self.humans_on(Team::B)];
        let party_team = request.party.and_then(|party| {
            (0..MAX_SLOTS).find_map(|slot| match &self.occupants[slot] {
                Some(Occupant {
                    controller:
                        Controller::Human {
                            party: Some(other), ..
                        },
                    ..
                }) if *other == party => self.team_of(slot),
                _ => None,
            })
        });
        let allowed = |team: Team| {
            humans[team.index()] < self.team_size()
                && humans[team.index()] <= humans[team.other().index()]
        };
        if let Some(team) = party_team.or(request.team)
            && allowed(team)
        {
            return team;
        }
        if humans[0] != humans[1] {
            return if humans[0] < humans[1] {
                Team::A
            } else {
                Team::B
            };
        }
        if self.scores[1] < self.scores[0] {
            Team::B
        } else {
            Team::A
        }
    }

    fn new_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        generation
    }

    fn new_occupant(
        controller: Controller,
        name: String,
        facing: Angle,
        seated_since: u64,
    ) -> Occupant {
        Occupant {
            controller,
            name,
            gate: InputGate::new(facing),
            holds: ClientHolds::new(),
            vote: None,
            map_vote: None,
            seated_since,
            snap_ticks: [0; SNAP_WINDOW_COUNT],
            snap_turns: [0; SNAP_WINDOW_COUNT],
            snap_errors: [0; SNAP_WINDOW_COUNT],
            snap_next: 0,
        }
    }

    /// Seats a player or a spectator.
    pub fn add_player(&mut self, seat: Seat, request: &JoinRequest<'_>) -> Result<(), Refusal> {
        self.add_member(seat, request, false)
    }

    /// Seats a player or a spectator; `creator`: the custom lobby's creator (its join token
    /// says so), who becomes the host if the lobby has none yet. Ignored in quick play and for
    /// spectators.
    pub fn add_member(
        &mut self,
        seat: Seat,
        request: &JoinRequest<'_>,
        creator: bool,
    ) -> Result<(), Refusal> {
        if !valid_name(request.name) {
            return Err(Refusal::BadName);
        }
        if self.find_slot(seat).is_some() || self.spectators.iter().any(|s| s.seat == seat) {
            return Err(Refusal::AlreadySeated);
        }
        if matches!(self.phase, Phase::Ending | Phase::Completed) {
            return Err(Refusal::NotJoinable);
        }
        if request.role == Role::Spectator {
            if self.spectators.len() >= self.config.max_spectators {
                return Err(Refusal::SpectatorsFull);
            }
            self.spectators.push(Spectator {
                seat,
                holds: ClientHolds::new(),
            });
            self.lobby_changed();
            return Ok(());
        }
        if self.humans() >= self.config.max_players {
            return Err(Refusal::MatchFull);
        }
        let team = self.team_for_newcomer(request);
        // A free slot, else a bot's slot on that team (the newcomer takes the bot's place).
        let slot = match self.occupants.iter().position(Option::is_none) {
            Some(slot)
                if self.bodies_on(team) < self.team_size() || !self.config.fill_with_bots =>
            {
                slot
            }
            _ => {
                let bot_slot = (0..MAX_SLOTS).find(|&slot| {
                    self.occupants[slot].as_ref().is_some_and(Occupant::is_bot)
                        && self.team_of(slot) == Some(team)
                });
                match bot_slot.or_else(|| self.occupants.iter().position(Option::is_none)) {
                    Some(slot) => slot,
                    None => return Err(Refusal::MatchFull),
                }
            }
        };
        self.clear_slot(slot);
        let generation = self.new_generation();
        self.world.add_player(slot, team, generation);
        let facing = self.world.player(slot).map_or(Angle(0), |p| p.facing);
        self.arrivals += 1;
        self.occupants[slot] = Some(Breach::new_occupant(
            Controller::Human {
                seat,
                party: request.party,
            },
            request.name.to_string(),
            facing,
            self.arrivals,
        ));
        if let Some(lobby) = self.lobby.as_mut()
            && lobby.host.is_none()
            && (creator || lobby.had_host)
        {
            // The creator takes the lobby; after everyone left, whoever comes next does.
            lobby.host = Some(seat);
            lobby.had_host = true;
        }
        self.lobby_changed();
        self.roster_changed();
        Ok(())
    }

    fn clear_slot(&mut self, slot: usize) {
        if self.occupants[slot].take().is_some() {
            self.world.remove_player(slot);
        }
    }

    /// Removes a seat (disconnect, kick). Returns false for an unknown seat. A bot takes a
    /// leaving player's slot while the match is on and bots fill seats.
    pub fn remove_player(&mut self, seat: Seat) -> bool {
        if let Some(index) = self.spectators.iter().position(|s| s.seat == seat) {
            self.spectators.remove(index);
            self.lobby_changed();
            return true;
        }
        let Some(slot) = self.find_slot(seat) else {
            return false;
        };
        let team = self.team_of(slot);
        self.clear_slot(slot);
        if let Some(team) = team
            && self.config.fill_with_bots
            && matches!(self.phase, Phase::Starting | Phase::InProgress)
        {
            self.add_bot(slot, team);
        }
        self.refresh_votes();
        self.settle_host();
        self.lobby_changed();
        self.roster_changed();
        true
    }

    fn add_bot(&mut self, slot: usize, team: Team) {
        let generation = self.new_generation();
        self.world.add_player(slot, team, generation);
        let facing = self.world.player(slot).map_or(Angle(0), |p| p.facing);
        let brain = BotBrain::new(mix64(self.seed ^ u64::from(generation) << 8 ^ slot as u64));
        self.occupants[slot] = Some(Breach::new_occupant(
            Controller::Bot(Box::new(brain)),
            format!("bot-{generation}"),
            facing,
            u64::MAX,
        ));
    }

    fn fill_bots(&mut self) {
        if !self.config.fill_with_bots {
            return;
        }
        for team in [Team::A, Team::B] {
            while self.bodies_on(team) < self.team_size() {
                let Some(slot) = self.occupants.iter().position(Option::is_none) else {
                    return;
                };
                self.add_bot(slot, team);
            }
        }
        self.roster_changed();
    }

    fn remove_bots(&mut self) {
        for slot in 0..MAX_SLOTS {
            if self.occupants[slot].as_ref().is_some_and(Occupant::is_bot) {
                self.clear_slot(slot);
            }
        }
        self.roster_changed();
    }

    /// Applies one game frame from a seat: an input intent or a restart vote.
    pub fn apply_input(&mut self, seat: Seat, frame: &[u8]) -> Result<(), InputError> {
        if self.spectators.iter().any(|s| s.seat == seat) {
            self.counters.inputs_from_spectators += 1;
            return Err(InputError::Spectator);
        }
        let Some(slot) = self.find_slot(seat) else {
            self.counters.inputs_unknown_seat += 1;
            return Err(InputError::UnknownSeat);
        };
        self.offer_frame(slot, frame)
    }

    /// The one input path, for humans and bots alike.
    fn offer_frame(&mut self, slot: usize, frame: &[u8]) -> Result<(), InputError> {
        let decoded = match wire::decode_client_frame(frame) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.counters.inputs_malformed += 1;
                return Err(InputError::Malformed(error));
            }
        };
        let Some(occupant) = self.occupants[slot].as_mut() else {
            self.counters.inputs_unknown_seat += 1;
            return Err(InputError::UnknownSeat);
        };
        match decoded {
            ClientFrame::Input(intent) => match occupant.gate.offer(intent) {
                Ok(()) => Ok(()),
                Err(SequenceRefusal::Stale) => {
                    self.counters.inputs_stale_sequence += 1;
                    Err(InputError::StaleSequence)
                }
                Err(SequenceRefusal::Jump) => {
                    self.counters.inputs_sequence_jump += 1;
                    Err(InputError::SequenceJump)
                }
                Err(SequenceRefusal::Flood) => {
                    self.counters.inputs_flood += 1;
                    Err(InputError::Flood)
                }
            },
            ClientFrame::Vote(vote) => {
                if self.phase != Phase::Ending || occupant.is_bot() {
                    self.counters.votes_out_of_phase += 1;
                    return Err(InputError::VoteNotOpen);
                }
                occupant.vote = Some(vote);
                self.refresh_votes();
                Ok(())
            }
            ClientFrame::Lobby(command) => {
                let Some(seat) = occupant.seat() else {
                    return Err(InputError::UnknownSeat);
                };
                self.lobby_command(slot, seat, command)
            }
        }
    }

    /// A host control or a map vote from the human in `slot`. Never trusts the client: the
    /// sender must be the host (votes: any seated player), the phase must allow it, targets
    /// must be seated humans. A refusal is counted and answered with a Notice.
    fn lobby_command(
        &mut self,
        slot: usize,
        seat: Seat,
        command: LobbyCommand,
    ) -> Result<(), InputError> {
        let Some(lobby) = self.lobby.as_ref() else {
            return Err(self.refuse(seat, LobbyRefusal::NotALobby, None));
        };
        if let LobbyCommand::MapVote(map_id) = command {
            if !lobby.settings.map_vote {
                return Err(self.refuse(seat, LobbyRefusal::MapVoteOff, None));
            }
            if !matches!(self.phase, Phase::Waiting | Phase::Ending) {
                return Err(self.refuse(
                    seat,
                    LobbyRefusal::WrongPhase,
                    Some("map votes are open in the waiting room and on the scoreboard".into()),
                ));
            }
            if Map::built_in(map_id).is_none() {
                return Err(self.refuse(seat, LobbyRefusal::UnknownMap, None));
            }
            if let Some(occupant) = self.occupants[slot].as_mut()
                && occupant.map_vote != Some(map_id)
            {
                occupant.map_vote = Some(map_id);
                self.counters.map_votes += 1;
                self.lobby_changed();
            }
            return Ok(());
        }
        if lobby.host != Some(seat) {
            return Err(self.refuse(seat, LobbyRefusal::NotHost, None));
        }
        match command {
            LobbyCommand::MapVote(_) => Ok(()),
            LobbyCommand::Kick(target) => {
                let Some(target_seat) = self.human_in(usize::from(target)).filter(|&t| t != seat)
                else {
                    return Err(self.refuse(seat, LobbyRefusal::NoSuchPlayer, None));
                };
                if matches!(self.phase, Phase::Completed) {
                    return Err(self.refuse(seat, LobbyRefusal::WrongPhase, None));
                }
                self.remove_player(target_seat);
                self.kicked.push(target_seat);
                self.notify(
                    target_seat,
                    KICKED_NOTICE_CODE,
                    "the host removed you from this lobby".into(),
                );
                self.counters.kicks += 1;
                self.counters.host_commands_applied += 1;
                Ok(())
            }
            LobbyCommand::TransferHost(target) => {
                let Some(target_seat) = self.human_in(usize::from(target)).filter(|&t| t != seat)
                else {
                    return Err(self.refuse(seat, LobbyRefusal::NoSuchPlayer, None));
                };
                if let Some(lobby) = self.lobby.as_mut() {
                    lobby.host = Some(target_seat);
                }
                self.lobby_changed();
                self.counters.host_commands_applied += 1;
                Ok(())
            }
            LobbyCommand::StartEarly => {
                if self.phase != Phase::Waiting {
                    return Err(self.refuse(
                        seat,
                        LobbyRefusal::WrongPhase,
                        Some("the match is already starting".into()),
                    ));
                }
                if self.humans_on(Team::A) == 0 || self.humans_on(Team::B) == 0 {
                    return Err(self.refuse(seat, LobbyRefusal::NeedBothTeams, None));
                }
                if let Some(lobby) = self.lobby.as_mut() {
                    lobby.start_requested = true;
                }
                self.counters.host_commands_applied += 1;
                Ok(())
            }
            LobbyCommand::Settings(text) => {
                if self.phase != Phase::Waiting {
                    return Err(self.refuse(
                        seat,
                        LobbyRefusal::WrongPhase,
                        Some("settings can only change in the waiting room".into()),
                    ));
                }
                let current = lobby.settings;
                let settings = match LobbySettings::parse(&text, &current) {
                    Ok(settings) => settings,
                    Err(sentence) => {
                        return Err(self.refuse(seat, LobbyRefusal::BadSettings, Some(sentence)));
                    }
                };
                let humans = self.humans();
                if usize::from(settings.max_players) < humans {
                    return Err(self.refuse(
                        seat,
                        LobbyRefusal::BadSettings,
                        Some(format!(
                            "maxPlayers cannot be below the {humans} players already here"
                        )),
                    ));
                }
                self.apply_settings(settings);
                self.counters.host_commands_applied += 1;
                Ok(())
            }
        }
    }

    /// New lobby settings in the waiting room: the config, the world's map and friendly
    /// fire, and a new match generation so every client gets an Init with the new rules.
    fn apply_settings(&mut self, settings: LobbySettings) {
        let Some(lobby) = self.lobby.as_mut() else {
            return;
        };
        let map_changed = lobby.settings.map_id != settings.map_id;
        lobby.settings = settings;
        settings.apply_to(&mut self.config);
        self.world.set_friendly_fire(settings.friendly_fire);
        if !settings.map_vote {
            for occupant in self.occupants.iter_mut().flatten() {
                occupant.map_vote = None;
            }
        }
        if map_changed {
            self.switch_map(settings.map_id);
        } else {
            self.match_generation += 1;
        }
        self.lobby_changed();
    }

    /// Moves the room to another built-in map before a match (a settings change, a map
    /// vote): pristine walls, everyone respawned, a new Init for every client.
    fn switch_map(&mut self, map_id: u8) {
        let Some(map) = Map::built_in(map_id) else {
            return;
        };
        self.config.map_rotation = vec![map_id];
        self.map_index = 0;
        self.world.reset(map);
        self.spectator_feed.reset(self.world.walls());
        self.match_generation += 1;
        if let Some(lobby) = self.lobby.as_mut() {
            lobby.settings.map_id = map_id;
        }
        self.lobby_changed();
    }

    /// Counts the map votes (custom lobbies with map voting) and clears them. The map with
    /// the most votes wins; a tie at the top, or no vote at all, keeps the current map.
    /// Returns the winner if it differs from the current map.
    fn tally_map_votes(&mut self) -> Option<u8> {
        let voting = self
            .lobby
            .as_ref()
            .is_some_and(|lobby| lobby.settings.map_vote);
        let mut counts: Vec<(u8, u32)> = Vec::new();
        for occupant in self.occupants.iter_mut().flatten() {
            if let Some(map_id) = occupant.map_vote.take()
                && !occupant.is_bot()
            {
                match counts.iter_mut().find(|(id, _)| *id == map_id) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((map_id, 1)),
                }
            }
        }
        if counts.is_empty() {
            return None;
        }
        self.lobby_changed();
        if !voting {
            return None;
        }
        let best = counts.iter().map(|(_, count)| *count).max()?;
        let mut leaders = counts.iter().filter(|(_, count)| *count == best);
        let (winner, _) = *leaders.next()?;
        if leaders.next().is_some() || winner == self.current_map_id() {
            return None;
        }
        Some(winner)
    }

    /// Whether a lobby in `Waiting` starts its countdown: quick play at the minimum of
    /// humans; a custom lobby when full or when the host asked (both teams have a human).
    fn ready_to_count_down(&self) -> bool {
        match &self.lobby {
            None => self.humans() >= self.config.min_players,
            Some(lobby) => {
                let both_teams = self.humans_on(Team::A) > 0 && self.humans_on(Team::B) > 0;
                both_teams && (lobby.start_requested || self.humans() >= self.config.max_players)
            }
        }
    }

    /// Whether a countdown goes back to the lobby: quick play below the minimum; a custom
    /// lobby when a team has no human left.
    fn countdown_lost(&self) -> bool {
        match &self.lobby {
            None => self.humans() < self.config.min_players,
            Some(_) => self.humans_on(Team::A) == 0 || self.humans_on(Team::B) == 0,
        }
    }

    fn refresh_votes(&mut self) {
        let votes: Vec<(u8, u8)> = (0..MAX_SLOTS)
            .filter_map(|slot| {
                let occupant = self.occupants[slot].as_ref()?;
                occupant.vote.map(|vote| (slot as u8, vote as u8))
            })
            .collect();
        if votes != self.votes {
            self.votes = votes;
            self.votes_version += 1;
        }
    }

    fn roster_changed(&mut self) {
        self.roster.clear();
        for slot in 0..MAX_SLOTS {
            let (Some(occupant), Some(player)) = (&self.occupants[slot], self.world.player(slot))
            else {
                continue;
            };
            self.roster.push(RosterEntry {
                slot: slot as u8,
                team: player.team as u8,
                bot: occupant.is_bot(),
                kills: player.kills,
                deaths: player.deaths,
                assists: player.assists,
                name: occupant.name.clone(),
            });
        }
        self.roster_version += 1;
    }

    fn set_phase(&mut self, phase: Phase, ticks: u32, events: &mut Vec<BreachEvent>) {
        if phase == Phase::Completed
            && let Some(lobby) = self.lobby.as_mut()
            && lobby.host.take().is_some()
        {
            // Every seat is released with the room: nobody is left to host.
            self.lobby_changed();
        }
        self.phase = phase;
        self.phase_ticks_left = ticks;
        events.push(BreachEvent::PhaseChanged(phase));
    }

    /// Advances the room by one tick and appends what the adapter must act on.
    pub fn step(&mut self, events: &mut Vec<BreachEvent>) {
        self.tick += 1;
        // Notices queued before this step reach their players in this tick's updates; those
        // nobody collected last tick (a dropped connection) are gone.
        self.notices_ready.clear();
        std::mem::swap(&mut self.notices_ready, &mut self.notices_queued);
        for seat in std::mem::take(&mut self.kicked) {
            events.push(BreachEvent::Kicked(seat));
            events.push(BreachEvent::Release(seat));
        }
        self.kills_this_tick.clear();
        self.wall_changes.clear();
        self.phase_ticks_left = self.phase_ticks_left.saturating_sub(1);
        match self.phase {
            Phase::Waiting => {
                let both_teams = self.humans_on(Team::A) > 0 && self.humans_on(Team::B) > 0;
                if let Some(lobby) = self.lobby.as_mut()
                    && !both_teams
                {
                    // A team emptied after the host pressed start: the host presses again.
                    lobby.start_requested = false;
                }
                if self.ready_to_count_down() {
                    if let Some(map_id) = self.tally_map_votes() {
                        self.switch_map(map_id);
                    }
                    if let Some(lobby) = self.lobby.as_mut() {
                        lobby.start_requested = false;
                    }
                    self.set_phase(Phase::Starting, self.config.countdown_ticks, events);
                    self.fill_bots();
                }
            }
            Phase::Starting => {
                if self.countdown_lost() {
                    self.remove_bots();
                    self.set_phase(Phase::Waiting, 0, events);
                } else if self.phase_ticks_left == 0 {
                    self.start_match(events);
                }
            }
            Phase::InProgress | Phase::Completed => {}
            Phase::Ending => {
                if self.phase_ticks_left == 0 {
                    self.finish_vote(events);
                }
            }
        }
        if matches!(self.phase, Phase::Ending | Phase::Completed) {
            // The scoreboard freezes the world: no movement, no fire. Inputs that arrive are
            // consumed (and acknowledged) all the same, so a client that keeps sending one
            // per tick never fills its queue or falls behind its own sequence numbers.
            for slot in 0..MAX_SLOTS {
                let facing = self.world.player(slot).map_or(Angle(0), |p| p.facing);
                if let Some(occupant) = self.occupants[slot].as_mut() {
                    occupant.gate.halt(facing);
                }
            }
            return;
        }
        self.run_world(events);
        if self.phase == Phase::InProgress {
            self.check_victory(events);
        }
    }

    fn start_match(&mut self, events: &mut Vec<BreachEvent>) {
        self.balance_teams();
        self.fill_bots();
        let map = self.current_map();
        self.world.reset(map);
        self.spectator_feed.reset(self.world.walls());
        self.scores = [0, 0];
        self.match_started_tick = self.tick;
        self.humans_at_start = [self.humans_on(Team::A), self.humans_on(Team::B)];
        self.result_emitted = false;
        self.scoreboard = None;
        for occupant in self.occupants.iter_mut().flatten() {
            occupant.vote = None;
        }
        self.refresh_votes();
        self.roster_changed();
        self.set_phase(Phase::InProgress, self.config.time_limit_ticks, events);
    }

    fn current_map(&self) -> Map {
        let id = self.config.map_rotation[self.map_index % self.config.map_rotation.len()];
        Map::built_in(id).unwrap_or_else(|| self.world.map().clone())
    }

    /// Splits the seated humans into two teams that differ by at most one, keeping parties
    /// together where they fit (largest parties first), then fills with bots.
    fn balance_teams(&mut self) {
        let mut groups: Vec<(Option<u32>, Vec<usize>)> = Vec::new();
        for slot in 0..MAX_SLOTS {
            let Some(Occupant {
                controller: Controller::Human { party, .. },
                ..
            }) = &self.occupants[slot]
            else {
                continue;
            };
            match party.and_then(|p| groups.iter_mut().find(|(g, _)| *g == Some(p))) {
                Some((_, members)) => members.push(slot),
                None => groups.push((*party, vec![slot])),
            }
        }
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(&b.1[0])));
        let total: usize = groups.iter().map(|(_, members)| members.len()).sum();
        let cap = total.div_ceil(2).min(self.team_size());
        let mut counts = [0usize; 2];
        for (_, members) in groups {
            for slot in members.iter().copied() {
                let preferred = if counts[0] <= counts[1] {
                    Team::A
                } else {
                    Team::B
                };
                // Keep the party on the team its first member went to while it has room.
                let team = match members.first().and_then(|&first| self.team_of(first)) {
                    Some(team) if slot != members[0] && counts[team.index()] < cap => team,
                    _ if counts[preferred.index()] < cap => preferred,
                    _ => preferred.other(),
                };
                counts[team.index()] += 1;
                if self.team_of(slot) != Some(team) {
                    self.world.set_team(slot, team);
                }
            }
        }
        // Bots from the previous match are re-made to fit the new split.
        self.remove_bots();
    }

    fn run_world(&mut self, events: &mut Vec<BreachEvent>) {
        // Bots decide from what they can see and send bytes through the input path.
        for slot in 0..MAX_SLOTS {
            let intent = match self.occupants[slot].as_mut() {
                Some(Occupant {
                    controller: Controller::Bot(brain),
                    ..
                }) => brain.think(&self.world, slot),
                _ => continue,
            };
            let mut bytes = std::mem::take(&mut self.input_scratch);
            bytes.clear();
            wire::encode_input(&intent, &mut bytes);
            let _ = self.offer_frame(slot, &bytes);
            self.input_scratch = bytes;
        }
        let mut intents = [Intent::idle(Angle(0)); MAX_SLOTS];
        for (slot, intent) in intents.iter_mut().enumerate() {
            if let Some(occupant) = self.occupants[slot].as_mut() {
                let alive = self.world.player(slot).is_some_and(|p| p.alive);
                *intent = occupant.gate.next_for_tick();
                if !alive {
                    let facing = self.world.player(slot).map_or(Angle(0), |p| p.facing);
                    occupant.gate.halt(facing);
                }
                self.counters.inputs_applied += 1;
            }
        }
        let weapons_live = self.phase == Phase::InProgress;
        let before = (
            self.world.shots_fired,
            self.world.slices_destroyed,
            self.world.fire_presses_on_cooldown,
            self.world.charges_exploded,
        );
        self.world.step(&intents, weapons_live);
        self.counters.shots_fired += self.world.shots_fired - before.0;
        self.counters.slices_destroyed += self.world.slices_destroyed - before.1;
        self.counters.fire_presses_on_cooldown += self.world.fire_presses_on_cooldown - before.2;
        self.counters.charges_exploded += self.world.charges_exploded - before.3;
        let walls = self.world.walls();
        self.wall_changes.extend(
            walls
                .changed()
                .iter()
                .map(|&index| (index, walls.hit_points(index))),
        );
        let mut roster_dirty = false;
        for index in 0..self.world.kills().len() {
            let kill = self.world.kills()[index];
            roster_dirty = true;
            self.counters.kills += 1;
            if kill.scores
                && let Some(team) = kill.killer.and_then(|k| self.team_of(k))
            {
                self.scores[team.index()] += 1;
            }
            let slot_byte = |slot: Option<usize>| slot.map_or(NO_SLOT, |s| s as u8);
            self.kills_this_tick.push(KillEntry {
                killer: slot_byte(kill.killer),
                victim: kill.victim as u8,
                assister: slot_byte(kill.assister),
                cause: kill.cause as u8,
            });
            events.push(BreachEvent::Kill {
                killer: kill.killer.map(|s| s as u8),
                victim: kill.victim as u8,
                assister: kill.assister.map(|s| s as u8),
                cause: kill.cause,
            });
        }
        if roster_dirty {
            self.roster_changed();
        }
        for index in 0..self.world.snaps().len() {
            let snap = self.world.snaps()[index];
            self.counters.aim_snaps += 1;
            self.note_snap(snap, events);
        }
        self.spectator_feed.record(&self.world);
    }

    fn note_snap(&mut self, snap: crate::world::AimSnap, events: &mut Vec<BreachEvent>) {
        let tick = self.tick;
        let Some(occupant) = self.occupants[snap.slot].as_mut() else {
            return;
        };
        let index = occupant.snap_next % SNAP_WINDOW_COUNT;
        occupant.snap_ticks[index] = tick;
        occupant.snap_turns[index] = snap.turn;
        occupant.snap_errors[index] = snap.error;
        occupant.snap_next += 1;
        let recent = occupant
            .snap_ticks
            .iter()
            .filter(|&&at| at != 0 && tick - at <= SNAP_WINDOW_TICKS)
            .count();
        if recent < SNAP_WINDOW_COUNT {
            return;
        }
        let Some(seat) = occupant.seat() else {
            occupant.snap_ticks = [0; SNAP_WINDOW_COUNT];
            return;
        };
        let to_mrad = |turn: u32| (u64::from(turn) * 6_283_185 / 65_536 / 1000) as u32;
        let flag = Flag {
            seat,
            tick,
            kind: FlagKind::AimSnap,
            snaps: recent as u32,
            largest_turn_mrad: to_mrad(occupant.snap_turns.iter().copied().max().unwrap_or(0)),
            smallest_error_mrad: to_mrad(occupant.snap_errors.iter().copied().min().unwrap_or(0)),
        };
        // Start a new window so one burst raises one flag.
        occupant.snap_ticks = [0; SNAP_WINDOW_COUNT];
        self.counters.flags_raised += 1;
        events.push(BreachEvent::Flag(flag));
    }

    fn check_victory(&mut self, events: &mut Vec<BreachEvent>) {
        let limit = self.config.kill_limit;
        let humans = [self.humans_on(Team::A), self.humans_on(Team::B)];
        let had_humans = self.humans_at_start[0] + self.humans_at_start[1] > 0;
        let outcome = if self.scores[0] >= limit || self.scores[1] >= limit {
            let winner = if self.scores[0] >= limit {
                Team::A
            } else {
                Team::B
            };
            Some((Some(winner), MatchReason::KillLimit))
        } else if self.phase_ticks_left == 0 {
            let winner = match self.scores[0].cmp(&self.scores[1]) {
                std::cmp::Ordering::Greater => Some(Team::A),
                std::cmp::Ordering::Less => Some(Team::B),
                std::cmp::Ordering::Equal => None,
            };
            Some((winner, MatchReason::TimeLimit))
        } else if had_humans && humans[0] + humans[1] == 0 {
            Some((None, MatchReason::Forfeit))
        } else if self.humans_at_start[0] > 0 && self.humans_at_start[1] > 0 && humans[0] == 0 {
            Some((Some(Team::B), MatchReason::Forfeit))
        } else if self.humans_at_start[0] > 0 && self.humans_at_start[1] > 0 && humans[1] == 0 {
            Some((Some(Team::A), MatchReason::Forfeit))
        } else {
            None
        };
        let Some((winner, reason)) = outcome else {
            return;
        };
        self.end_match(winner, reason, events);
        if humans[0] + humans[1] == 0 && had_humans {
            // Nobody is left to vote.
            self.set_phase(Phase::Completed, 0, events);
        }
    }

    fn end_match(
        &mut self,
        winner: Option<Team>,
        reason: MatchReason,
        events: &mut Vec<BreachEvent>,
    ) {
        if self.result_emitted {
            return;
        }
        self.result_emitted = true;
        let duration = (self.tick - self.match_started_tick) as u32;
        let mut players = Vec::new();
        let mut lines = Vec::new();
        for slot in 0..MAX_SLOTS {
            let (Some(occupant), Some(player)) = (&self.occupants[slot], self.world.player(slot))
            else {
                continue;
            };
            players.push(PlayerResult {
                seat: occupant.seat(),
                name: occupant.name.clone(),
                team: player.team,
                kills: player.kills,
                deaths: player.deaths,
                assists: player.assists,
            });
            lines.push(RosterEntry {
                slot: slot as u8,
                team: player.team as u8,
                bot: occupant.is_bot(),
                kills: player.kills,
                deaths: player.deaths,
                assists: player.assists,
                name: occupant.name.clone(),
            });
        }
        self.scoreboard = Some(ScoreboardFrame {
            reason: reason as u8,
            winner: winner.map_or(2, |team| team as u8),
            scores: self.scores,
            duration_ticks: duration,
            ticks_left: self.config.scoreboard_ticks,
            players: lines,
        });
        self.counters.results_emitted += 1;
        events.push(BreachEvent::Result(MatchResult {
            match_number: self.match_number,
            winner,
            scores: self.scores,
            players,
            duration_ticks: duration,
            reason,
            map_id: self.world.map().id,
        }));
        for occupant in self.occupants.iter_mut().flatten() {
            occupant.vote = None;
        }
        self.refresh_votes();
        self.set_phase(Phase::Ending, self.config.scoreboard_ticks, events);
    }

    fn finish_vote(&mut self, events: &mut Vec<BreachEvent>) {
        let mut stayed = Vec::new();
        for slot in 0..MAX_SLOTS {
            if let Some(occupant) = &self.occupants[slot]
                && let Some(seat) = occupant.seat()
            {
                if occupant.vote == Some(Vote::Stay) && !self.last_match {
                    stayed.push(slot);
                } else {
                    events.push(BreachEvent::Release(seat));
                }
            }
        }
        if stayed.len() < 2 {
            for slot in stayed {
                if let Some(seat) = self.occupants[slot].as_ref().and_then(Occupant::seat) {
                    events.push(BreachEvent::Release(seat));
                }
            }
            for spectator in &self.spectators {
                events.push(BreachEvent::Release(spectator.seat));
            }
            self.set_phase(Phase::Completed, 0, events);
            return;
        }
        for slot in 0..MAX_SLOTS {
            let keep = stayed.contains(&slot);
            if !keep {
                self.clear_slot(slot);
            }
        }
        self.settle_host();
        self.match_number += 1;
        self.match_generation += 1;
        self.map_index += 1;
        if let Some(map_id) = self.tally_map_votes() {
            self.config.map_rotation = vec![map_id];
            if let Some(lobby) = self.lobby.as_mut() {
                lobby.settings.map_id = map_id;
            }
        }
        self.lobby_changed();
        self.scores = [0, 0];
        self.scoreboard = None;
        for occupant in self.occupants.iter_mut().flatten() {
            occupant.vote = None;
        }
        self.refresh_votes();
        let map = self.current_map();
        self.world.reset(map);
        self.spectator_feed.reset(self.world.walls());
        self.balance_teams();
        self.fill_bots();
        self.roster_changed();
        self.set_phase(Phase::Starting, self.config.countdown_ticks, events);
    }

    /// Forgets what `seat`'s client holds: its next update re-sends everything.
    pub fn resync(&mut self, seat: Seat) {
        self.counters.resyncs += 1;
        if let Some(slot) = self.find_slot(seat)
            && let Some(occupant) = self.occupants[slot].as_mut()
        {
            occupant.holds.forget();
        } else if let Some(spectator) = self.spectators.iter_mut().find(|s| s.seat == seat) {
            spectator.holds.forget();
        }
    }

    fn init_frame(&self) -> InitFrame {
        InitFrame {
            map_id: self.world.map().id,
            tick_rate: TICK_RATE,
            slot: NO_SLOT,
            team: 2,
            match_generation: self.match_generation,
            tick: self.tick as u32,
            kill_limit: self.config.kill_limit,
            time_limit_ticks: self.config.time_limit_ticks,
            friendly_fire: self.config.friendly_fire,
            spectator_delay_ticks: self.config.spectator_delay_ticks,
            cone_half_angle: vision::CONE_HALF_ANGLE,
            view_range_px: (vision::VIEW_RANGE_SUB / 8) as u16,
            near_radius_px: (vision::NEAR_RADIUS_SUB / 8) as u16,
            speeds: [
                Speed::Sneak.sub_per_tick() as u8,
                Speed::Walk.sub_per_tick() as u8,
                Speed::Run.sub_per_tick() as u8,
            ],
            player_half_sub: crate::player::PLAYER_HALF_SUB as u8,
        }
    }

    /// Appends this tick's game frames for `seat` to `out` (nothing for an unknown seat).
    pub fn write_update(&mut self, seat: Seat, out: &mut Vec<u8>) {
        let start = out.len();
        let init = self.init_frame();
        let phase = (self.phase as u8, self.phase_ticks_left);
        self.refresh_lobby_frame();
        let lobby_version = self.lobby_frame.as_ref().map_or(0, |(version, _)| *version);
        let mut notices = std::mem::take(&mut self.notice_scratch);
        notices.clear();
        if self.notices_ready.iter().any(|(to, _)| *to == seat) {
            let ready = std::mem::take(&mut self.notices_ready);
            for (to, notice) in ready {
                if to == seat {
                    notices.push(notice);
                } else {
                    self.notices_ready.push((to, notice));
                }
            }
        }
        if let Some(slot) = self.find_slot(seat) {
            let needs_full = self.occupants[slot]
                .as_ref()
                .is_some_and(|o| o.holds.needs_full(init.tick, init.match_generation));
            if needs_full && self.full_walls_tick != Some(self.tick) {
                self.full_walls.clear();
                self.full_walls.extend(self.world.walls().damaged_slices());
                self.full_walls_tick = Some(self.tick);
            }
            vision::build_view(&self.world, slot, &mut self.view);
            let Some(player) = self.world.player(slot) else {
                return;
            };
            let Some(occupant) = self.occupants[slot].as_mut() else {
                return;
            };
            let own = OwnView {
                x: player.x,
                y: player.y,
                facing: player.facing.0,
                health: player.health,
                ammo: player.ammo,
                reload_in: player.reload_in,
                alive: player.alive,
                respawn_in: player.respawn_in,
                charges: player.charges,
                spawns: player.spawns,
                ack: occupant.gate.last_applied(),
            };
            let public = PublicState {
                init,
                scores: self.scores,
                phase,
                wall_changes: &self.wall_changes,
                full_walls: &self.full_walls,
                kills: &self.kills_this_tick,
                roster: &self.roster,
                roster_version: self.roster_version,
                scoreboard: self.scoreboard.as_ref(),
                votes: &self.votes,
                votes_version: self.votes_version,
                lobby: self.lobby_frame.as_ref().map(|(_, frame)| frame),
                lobby_version,
                notices: &notices,
            };
            encode::encode_viewer(
                &mut occupant.holds,
                (slot as u8, player.team as u8),
                Some(&own),
                &self.view,
                &public,
                &mut self.state_scratch,
                out,
            );
        } else if let Some(index) = self.spectators.iter().position(|s| s.seat == seat) {
            let needs_full = self.spectators[index]
                .holds
                .needs_full(init.tick, init.match_generation);
            if needs_full && self.spectator_full_walls_tick != Some(self.tick) {
                self.spectator_full_walls.clear();
                self.spectator_full_walls
                    .extend(self.spectator_feed.walls().damaged_slices());
                self.spectator_full_walls_tick = Some(self.tick);
            }
            self.spectator_feed.view(&mut self.view);
            let public = PublicState {
                init,
                scores: self.scores,
                phase,
                wall_changes: self.spectator_feed.wall_changes(),
                full_walls: &self.spectator_full_walls,
                kills: &self.kills_this_tick,
                roster: &self.roster,
                roster_version: self.roster_version,
                scoreboard: self.scoreboard.as_ref(),
                votes: &self.votes,
                votes_version: self.votes_version,
                lobby: self.lobby_frame.as_ref().map(|(_, frame)| frame),
                lobby_version,
                notices: &notices,
            };
            encode::encode_viewer(
                &mut self.spectators[index].holds,
                (NO_SLOT, 2),
                None,
                &self.view,
                &public,
                &mut self.state_scratch,
                out,
            );
        } else {
            // A seat the game let go this tick (kicked): its last message says why.
            let mut writer = coil_protocol::codec::Writer::new(out);
            for notice in &notices {
                wire::write_notice(&mut writer, notice);
            }
        }
        self.notice_scratch = notices;
        self.counters.bytes_written += (out.len() - start) as u64;
    }

    fn refresh_lobby_frame(&mut self) {
        let Some(lobby) = self.lobby.as_ref() else {
            return;
        };
        if self
            .lobby_frame
            .as_ref()
            .is_some_and(|(version, _)| *version == lobby.version)
        {
            return;
        }
        let settings = lobby.settings;
        let host_slot = lobby
            .host
            .and_then(|host| self.find_slot(host))
            .map_or(NO_SLOT, |slot| slot as u8);
        let frame = LobbyFrame {
            host_slot,
            map_id: settings.map_id,
            kill_limit: settings.kill_limit,
            time_limit_secs: settings.time_limit_secs,
            friendly_fire: settings.friendly_fire,
            map_vote: settings.map_vote,
            max_players: settings.max_players,
            spectators: self.spectators.len().min(255) as u8,
            votes: self.map_votes(),
        };
        self.lobby_frame = Some((lobby.version, frame));
    }

    /// The spectators' delayed feed (for tests and tools).
    pub fn spectator_feed(&self) -> &SpectatorFeed {
        &self.spectator_feed
    }

    /// The seats of seated humans, by slot.
    pub fn seats(&self) -> Vec<(usize, Seat)> {
        (0..MAX_SLOTS)
            .filter_map(|slot| Some((slot, self.occupants[slot].as_ref()?.seat()?)))
            .collect()
    }

    /// A hash of the whole game state, stable across runs (same seed + inputs → same hash).
    pub fn state_hash(&self) -> u64 {
        let mut hasher = StateHasher::new();
        hasher.add(self.tick);
        hasher.add(self.phase as u64 | u64::from(self.phase_ticks_left) << 8);
        hasher.add(u64::from(self.scores[0]) | u64::from(self.scores[1]) << 32);
        hasher.add(u64::from(self.match_generation) | u64::from(self.next_generation) << 32);
        self.world.hash_into(&mut hasher);
        for (slot, occupant) in self.occupants.iter().enumerate() {
            let Some(occupant) = occupant else {
                hasher.add(slot as u64);
                continue;
            };
            match &occupant.controller {
                Controller::Human { seat, party } => {
                    hasher.add(u64::from(seat.0) | u64::from(party.unwrap_or(u32::MAX)) << 32);
                }
                Controller::Bot(brain) => brain.hash_into(&mut hasher),
            }
            occupant.gate.hash_into(&mut hasher);
            hasher.add(occupant.vote.map_or(0, |vote| vote as u64));
        }
        if let Some(lobby) = &self.lobby {
            let settings = lobby.settings;
            hasher.add(lobby.host.map_or(u64::MAX, |seat| u64::from(seat.0)));
            hasher.add(
                u64::from(settings.map_id)
                    | u64::from(settings.max_players) << 8
                    | u64::from(settings.friendly_fire) << 16
                    | u64::from(settings.map_vote) << 17
                    | u64::from(lobby.start_requested) << 18
                    | u64::from(lobby.had_host) << 19,
            );
            hasher.add(u64::from(settings.kill_limit) | u64::from(settings.time_limit_secs) << 32);
            for occupant in &self.occupants {
                hasher.add(
                    occupant
                        .as_ref()
                        .and_then(|o| o.map_vote)
                        .map_or(0, u64::from),
                );
            }
        }
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duel() -> Breach {
        let config = BreachConfig {
            fill_with_bots: false,
            countdown_ticks: 1,
            ..BreachConfig::default()
        };
        let mut breach = Breach::new(config, 4).unwrap();
        for (seat, name) in [(1, "ann"), (2, "bo")] {
            let request = JoinRequest::player(name);
            breach.add_player(Seat(seat), &request).unwrap();
        }
        let mut events = Vec::new();
        while breach.phase() != Phase::InProgress {
            breach.step(&mut events);
        }
        // Face to face across open floor on the warehouse map (row 2 is clear).
        let (a, _) = breach.slot_of(Seat(1)).unwrap();
        let (b, _) = breach.slot_of(Seat(2)).unwrap();
        let place = |breach: &mut Breach, slot: usize, x: i64, facing: u16| {
            let player = breach.world.player_mut(slot).unwrap();
            player.x = x;
            player.y = 200;
            player.facing = Angle(facing);
        };
        place(&mut breach, a, 400, 32768);
        place(&mut breach, b, 800, 32768);
        breach
    }

    fn aim(breach: &mut Breach, sequence: u32, facing: u16, events: &mut Vec<BreachEvent>) {
        let intent = Intent {
            sequence,
            facing: Angle(facing),
            ..Intent::idle(Angle(0))
        };
        let mut bytes = Vec::new();
        wire::encode_input(&intent, &mut bytes);
        breach.apply_input(Seat(1), &bytes).unwrap();
        breach.step(events);
    }

    #[test]
    fn repeated_snaps_onto_an_enemy_raise_one_flag_with_evidence() {
        let mut breach = duel();
        let mut events = Vec::new();
        let mut sequence = 0;
        for _ in 0..SNAP_WINDOW_COUNT {
            sequence += 1;
            aim(&mut breach, sequence, 0, &mut events); // snap onto the enemy
            sequence += 1;
            aim(&mut breach, sequence, 32768, &mut events); // and away again
        }
        let flags: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                BreachEvent::Flag(flag) => Some(*flag),
                _ => None,
            })
            .collect();
        assert_eq!(flags.len(), 1, "{events:?}");
        let flag = flags[0];
        assert_eq!(flag.seat, Seat(1));
        assert_eq!(flag.kind, FlagKind::AimSnap);
        assert_eq!(flag.snaps, SNAP_WINDOW_COUNT as u32);
        assert_eq!(flag.largest_turn_mrad, 3141);
        assert_eq!(flag.smallest_error_mrad, 0);
        assert_eq!(breach.counters().aim_snaps, SNAP_WINDOW_COUNT as u64);
        assert_eq!(breach.counters().flags_raised, 1);
    }

    #[test]
    fn turning_onto_an_enemy_at_a_human_rate_raises_nothing() {
        let mut breach = duel();
        let mut events = Vec::new();
        let mut facing: u16 = 32768;
        let mut sequence = 0;
        for _ in 0..6 {
            // Sweep back and forth at 0.3 rad per tick, crossing the enemy each time.
            for _ in 0..20 {
                sequence += 1;
                facing = facing.wrapping_add(3000);
                aim(&mut breach, sequence, facing, &mut events);
            }
        }
        assert_eq!(breach.counters().aim_snaps, 0);
        assert!(!events.iter().any(|e| matches!(e, BreachEvent::Flag(_))));
    }

    #[test]
    fn fire_is_limited_by_the_weapon_not_by_the_client() {
        let mut breach = duel();
        let mut events = Vec::new();
        // Fire pressed and released every tick (an autoclicker) facing away from everyone.
        for sequence in 1..=40u32 {
            let intent = Intent {
                sequence,
                fire: sequence % 2 == 1,
                facing: Angle(16384),
                ..Intent::idle(Angle(0))
            };
            let mut bytes = Vec::new();
            wire::encode_input(&intent, &mut bytes);
            breach.apply_input(Seat(1), &bytes).unwrap();
            breach.step(&mut events);
        }
        let fired = breach.counters().shots_fired;
        assert!(
            fired <= 40 / u64::from(crate::weapons::FIRE_INTERVAL_TICKS) + 1,
            "{fired}"
        );
        assert!(fired >= 5, "{fired}");
        assert!(breach.counters().fire_presses_on_cooldown > 0);
    }

    #[test]
    fn a_breaching_charge_opens_a_wooden_wall() {
        let mut breach = duel();
        let (a, _) = breach.slot_of(Seat(1)).unwrap();
        // Just above the warehouse's north wooden strip (cells x 12..=19, row 6), facing down.
        let eye = (14 * 80 + 40, 5 * 80 + 40);
        {
            let player = breach.world.player_mut(a).unwrap();
            player.x = eye.0;
            player.y = eye.1;
        }
        let beyond = (eye.0, 7 * 80 + 40);
        assert!(!breach.world.walls().line_clear(eye, beyond));
        let mut events = Vec::new();
        let intent = Intent {
            sequence: 1,
            facing: Angle(16384),
            use_charge: true,
            ..Intent::idle(Angle(0))
        };
        let mut bytes = Vec::new();
        wire::encode_input(&intent, &mut bytes);
        breach.apply_input(Seat(1), &bytes).unwrap();
        breach.step(&mut events);
        assert_eq!(breach.world.charges().len(), 1);
        assert_eq!(
            breach.world.player(a).unwrap().charges,
            crate::player::CHARGES_PER_LIFE - 1
        );
        let mut blasts = 0;
        for _ in 0..crate::weapons::CHARGE_FUSE_TICKS {
            breach.step(&mut events);
            blasts += breach.world.blasts().len();
        }
        assert_eq!(blasts, 1);
        assert!(breach.world.charges().is_empty());
        assert!(
            breach.counters().slices_destroyed > 20,
            "{:?}",
            breach.counters()
        );
        assert!(
            breach.world.walls().line_clear(eye, beyond),
            "a hole to see and walk through"
        );
    }

    #[test]
    fn unseen_enemies_are_heard_as_direction_and_loudness_muffled_by_walls() {
        let mut breach = duel();
        let (a, _) = breach.slot_of(Seat(1)).unwrap();
        let (b, _) = breach.slot_of(Seat(2)).unwrap();
        let heard = |breach: &mut Breach, b_position: (i64, i64), a_facing: u16| {
            {
                let player = breach.world.player_mut(b).unwrap();
                player.x = b_position.0;
                player.y = b_position.1;
                player.ticks_to_footstep = 0;
            }
            let intent = Intent {
                sequence: breach.tick as u32 + 1,
                direction: 1,
                speed: Speed::Run,
                facing: Angle(16384),
                ..Intent::idle(Angle(0))
            };
            let mut bytes = Vec::new();
            wire::encode_input(&intent, &mut bytes);
            breach.apply_input(Seat(2), &bytes).unwrap();
            let listener = Intent {
                facing: Angle(a_facing),
                ..intent
            };
            let listener = Intent {
                direction: 0,
                ..listener
            };
            bytes.clear();
            wire::encode_input(&listener, &mut bytes);
            breach.apply_input(Seat(1), &bytes).unwrap();
            let mut events = Vec::new();
            breach.step(&mut events);
            let mut view = View::default();
            vision::build_view(&breach.world, a, &mut view);
            let seen = view.players.iter().any(|p| p.slot == b);
            (seen, view.sounds.clone())
        };
        {
            let player = breach.world.player_mut(a).unwrap();
            player.x = 14 * 80 + 40;
            player.y = 2 * 80 + 40;
            player.facing = Angle(0); // facing +x: the enemy below is out of the cone
        }
        // In the open, 30 px below (beyond the near circle): heard, not seen.
        let (seen, open) = heard(&mut breach, (14 * 80 + 40, 5 * 80 + 40), 0);
        assert!(!seen);
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].kind, crate::sound::SoundKind::FootstepRun);
        // (26, 240) sub-pixels away: 83.8° = 14.9 of 64 steps, sent as 15.
        assert_eq!(open[0].direction, 15);
        assert!(!open[0].muffled, "nothing between: {open:?}");
        // Behind the wooden strip at the same distance further down: quieter, and marked
        // muffled so the client plays it through a low-pass filter.
        let (_, muffled) = heard(&mut breach, (14 * 80 + 40, 7 * 80 + 60), 0);
        assert_eq!(muffled.len(), 1, "{muffled:?}");
        assert!(muffled[0].muffled, "{muffled:?}");
        let (_, open_far) = {
            let player = breach.world.player_mut(a).unwrap();
            player.x = 30 * 80 + 40;
            heard(&mut breach, (30 * 80 + 40, 7 * 80 + 60), 0)
        };
        assert_eq!(open_far.len(), 1, "{open_far:?}");
        assert!(!open_far[0].muffled, "{open_far:?}");
        assert!(
            muffled[0].loudness < open_far[0].loudness,
            "{muffled:?} vs {open_far:?}"
        );
        // Seen enemies make no sound entry: the picture already says it.
        {
            let player = breach.world.player_mut(a).unwrap();
            player.x = 14 * 80 + 40;
            player.facing = Angle(16384);
        }
        let (seen, sounds) = heard(&mut breach, (14 * 80 + 40, 5 * 80 + 40), 16384);
        assert!(seen);
        assert!(sounds.is_empty(), "{sounds:?}");
    }

    /// A lobby with friendly fire `on`: ann shoots her teammate bo at point blank for a
    /// second. Returns bo's health after.
    fn teammate_health_after_fire(on: bool) -> u8 {
        let config = BreachConfig {
            fill_with_bots: false,
            countdown_ticks: 1,
            ..BreachConfig::default()
        };
        let settings = LobbySettings::parse(
            if on {
                "friendlyFire=true"
            } else {
                "friendlyFire=false"
            },
            &LobbySettings::defaults(&config),
        )
        .unwrap();
        let mut breach = Breach::with_lobby(config, 4, settings).unwrap();
        for (seat, name, host) in [(1, "ann", true), (2, "bo", false)] {
            breach
                .add_member(Seat(seat), &JoinRequest::player(name), host)
                .unwrap();
        }
        let mut start = Vec::new();
        wire::encode_lobby_command(&LobbyCommand::StartEarly, &mut start);
        breach.apply_input(Seat(1), &start).unwrap();
        let mut events = Vec::new();
        while breach.phase() != Phase::InProgress {
            breach.step(&mut events);
        }
        let (a, team) = breach.slot_of(Seat(1)).unwrap();
        let (b, _) = breach.slot_of(Seat(2)).unwrap();
        breach.world.set_team(b, team);
        for (slot, x) in [(a, 400), (b, 800)] {
            let player = breach.world.player_mut(slot).unwrap();
            player.x = x;
            player.y = 200;
            player.facing = Angle(0);
        }
        for sequence in 1..=30u32 {
            let intent = Intent {
                sequence,
                fire: true,
                facing: Angle(0),
                ..Intent::idle(Angle(0))
            };
            let mut bytes = Vec::new();
            wire::encode_input(&intent, &mut bytes);
            breach.apply_input(Seat(1), &bytes).unwrap();
            breach.step(&mut events);
        }
        assert!(breach.counters().shots_fired > 0);
        let bo = breach.world.player(b).unwrap();
        if bo.alive { bo.health } else { 0 }
    }

    #[test]
    fn friendly_fire_from_the_lobby_rules_hurts_teammates_and_is_off_by_default() {
        assert_eq!(teammate_health_after_fire(false), 100);
        assert!(teammate_health_after_fire(true) < 100);
    }

    #[test]
    fn input_errors_map_to_envelope_codes() {
        use coil_protocol::ErrorCode;
        assert_eq!(
            InputError::Malformed(DecodeError::Truncated).wire_code(),
            ErrorCode::Truncated
        );
        assert_eq!(
            InputError::Malformed(DecodeError::OutOfRange).wire_code(),
            ErrorCode::BadFrame
        );
        assert_eq!(InputError::Flood.wire_code(), ErrorCode::RateLimited);
        assert_eq!(InputError::Spectator.wire_code(), ErrorCode::OutOfOrder);
        assert_eq!(InputError::SequenceJump.wire_code(), ErrorCode::BadFrame);
    }
}
