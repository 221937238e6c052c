//! Breach's frames, byte by byte (`docs/protocol-breach.md` says the same in prose).
//!
//! Client → server: one frame per WebSocket message, types `0x10..=0x7f` (Input `0x10`, Vote
//! `0x11`; the custom lobby's Kick `0x12`, TransferHost `0x13`, StartEarly `0x14`, Settings
//! `0x15`, MapVote `0x16`). Server → client: frames `[type u8][len varint][payload]` inside the
//! runtime's one message per tick, types `0x90..=0xff` (Init `0x90`, Walls `0x91`, State
//! `0x92`, KillFeed `0x93`, Roster `0x94`, Scoreboard `0x95`, Votes `0x96`, Lobby `0x97`,
//! Notice `0x98`). This module owns the layout only:
//! *what* a viewer is sent is decided by `encode.rs` from the viewer's `View`. Every decoder
//! takes untrusted bytes, never panics, and never allocates more than a small multiple of the
//! input's length (every count is checked against the bytes left).

use coil_protocol::codec::{DecodeError, Reader, Writer, server_frames};

use crate::input::Intent;
use crate::math::Angle;
use crate::player::Speed;

/// Client → server frame types.
pub mod client_type {
    pub const INPUT: u8 = 0x10;
    pub const VOTE: u8 = 0x11;
    pub const KICK: u8 = 0x12;
    pub const TRANSFER_HOST: u8 = 0x13;
    pub const START_EARLY: u8 = 0x14;
    pub const SETTINGS: u8 = 0x15;
    pub const MAP_VOTE: u8 = 0x16;
}

/// Server → client frame types.
pub mod server_type {
    pub const INIT: u8 = 0x90;
    pub const WALLS: u8 = 0x91;
    pub const STATE: u8 = 0x92;
    pub const KILL_FEED: u8 = 0x93;
    pub const ROSTER: u8 = 0x94;
    pub const SCOREBOARD: u8 = 0x95;
    pub const VOTES: u8 = 0x96;
    pub const LOBBY: u8 = 0x97;
    pub const NOTICE: u8 = 0x98;
}

/// "No player" in a slot byte (kill feed killer or assister, a spectator's own slot).
pub const NO_SLOT: u8 = 0xff;
/// Others' positions travel in 1/2 px (4 sub-pixels).
pub const POSITION_QUANTUM_SUB: i64 = 4;

/// A restart vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vote {
    Stay = 1,
    Leave = 2,
}

/// A custom lobby's command: host controls (the target is a player slot) and the map vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LobbyCommand {
    Kick(u8),
    TransferHost(u8),
    StartEarly,
    /// `key=value;…` over the current settings (the keys of `lobby.rs`).
    Settings(String),
    /// A built-in map id.
    MapVote(u8),
}

/// One decoded client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Input(Intent),
    Vote(Vote),
    Lobby(LobbyCommand),
}

/// Encodes an input: `[0x10][sequence varint][direction | speed << 4][facing u16][buttons]`.
pub fn encode_input(intent: &Intent, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    writer.u8(client_type::INPUT);
    writer.varint(intent.sequence);
    writer.u8(intent.direction.min(8) | (intent.speed as u8) << 4);
    writer.u16(intent.facing.0);
    writer.u8(u8::from(intent.fire)
        | u8::from(intent.reload) << 1
        | u8::from(intent.use_charge) << 2);
}

/// Encodes a vote: `[0x11][1 stay | 2 leave]`.
pub fn encode_vote(vote: Vote, out: &mut Vec<u8>) {
    out.push(client_type::VOTE);
    out.push(vote as u8);
}

/// Encodes a lobby command: `[0x12][slot]`, `[0x13][slot]`, `[0x14]`, `[0x15][text
/// short_str]`, `[0x16][map id]`.
pub fn encode_lobby_command(command: &LobbyCommand, out: &mut Vec<u8>) {
    let mut writer = Writer::new(out);
    match command {
        LobbyCommand::Kick(slot) => {
            writer.u8(client_type::KICK);
            writer.u8(*slot);
        }
        LobbyCommand::TransferHost(slot) => {
            writer.u8(client_type::TRANSFER_HOST);
            writer.u8(*slot);
        }
        LobbyCommand::StartEarly => writer.u8(client_type::START_EARLY),
        LobbyCommand::Settings(text) => {
            writer.u8(client_type::SETTINGS);
            writer.short_str(text);
        }
        LobbyCommand::MapVote(map_id) => {
            writer.u8(client_type::MAP_VOTE);
            writer.u8(*map_id);
        }
    }
}

/// Decodes one client frame (type byte included), refusing out-of-range fields.
pub fn decode_client_frame(frame: &[u8]) -> Result<ClientFrame, DecodeError> {
    let mut reader = Reader::new(frame);
    let frame_type = reader.u8().map_err(|_| DecodeError::Empty)?;
    let decoded = match frame_type {
        client_type::INPUT => {
            let sequence = reader.varint()?;
            let movement = reader.u8()?;
            let direction = movement & 0x0f;
            let speed = Speed::from_index(movement >> 4).ok_or(DecodeError::OutOfRange)?;
            if direction > 8 {
                return Err(DecodeError::OutOfRange);
            }
            let facing = Angle(reader.u16()?);
            let buttons = reader.u8()?;
            if buttons > 0b111 {
                return Err(DecodeError::OutOfRange);
            }
            ClientFrame::Input(Intent {
                sequence,
                direction,
                speed,
                facing,
                fire: buttons & 1 != 0,
                reload: buttons & 2 != 0,
                use_charge: buttons & 4 != 0,
            })
        }
        client_type::VOTE => ClientFrame::Vote(match reader.u8()? {
            1 => Vote::Stay,
            2 => Vote::Leave,
            _ => return Err(DecodeError::OutOfRange),
        }),
        client_type::KICK => ClientFrame::Lobby(LobbyCommand::Kick(reader.u8()?)),
        client_type::TRANSFER_HOST => ClientFrame::Lobby(LobbyCommand::TransferHost(reader.u8()?)),
        client_type::START_EARLY => ClientFrame::Lobby(LobbyCommand::StartEarly),
        client_type::SETTINGS => {
            ClientFrame::Lobby(LobbyCommand::Settings(reader.short_str()?.to_owned()))
        }
        client_type::MAP_VOTE => ClientFrame::Lobby(LobbyCommand::MapVote(reader.u8()?)),
        other => return Err(DecodeError::UnknownType(other)),
    };
    reader.finish()?;
    Ok(decoded)
}

/// What a client needs before its first state frame (and again after every resync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFrame {
    pub map_id: u8,
    pub tick_rate: u8,
    /// The viewer's slot, [`NO_SLOT`] for a spectator.
    pub slot: u8,
    /// 0 = team A, 1 = team B, 2 = spectator.
    pub team: u8,
    /// Bumped on every restart; a client drops everything it held from an older match.
    pub match_generation: u32,
    /// The tick of the message this frame is in (the state frame that follows is this tick).
    pub tick: u32,
    pub kill_limit: u32,
    pub time_limit_ticks: u32,
    pub friendly_fire: bool,
    pub spectator_delay_ticks: u32,
    pub cone_half_angle: u16,
    pub view_range_px: u16,
    pub near_radius_px: u16,
    /// Sub-pixels per tick at sneak, walk, run (for prediction).
    pub speeds: [u8; 3],
    /// Half the player box in sub-pixels (for prediction).
    pub player_half_sub: u8,
}

/// Per-viewer own-player changes; absent fields are unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnUpdate {
    /// Increase of the last applied input sequence.
    pub ack_delta: Option<u32>,
    /// Position change in sub-pixels.
    pub moved: Option<(i32, i32)>,
    pub health: Option<u8>,
    pub ammo: Option<u8>,
    /// Ticks of reload left (the client counts down by one per tick on its own).
    pub reload: Option<u8>,
    /// Alive, and ticks to respawn while dead (counted down by the client).
    pub life: Option<(bool, u16)>,
    pub charges: Option<u8>,
    /// Facing set by the server (spawn); otherwise the client owns its facing.
    pub facing: Option<u16>,
}

impl OwnUpdate {
    pub fn is_empty(&self) -> bool {
        *self == OwnUpdate::default()
    }
}

/// A change to one other player the viewer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerChange {
    /// No longer in view (or gone).
    Leave,
    /// Newly in view: everything, position absolute in half pixels.
    Enter {
        x: u32,
        y: u32,
        facing: u8,
        health: u8,
    },
    /// Still in view; position change in half pixels.
    Update {
        moved: Option<(i32, i32)>,
        facing: Option<u8>,
        health: Option<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerEntry {
    pub slot: u8,
    pub change: PlayerChange,
}

/// A tracer: the end point relative to the shooter in whole pixels when the viewer sees it,
/// otherwise only the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShotEntry {
    pub shooter: u8,
    pub end: ShotEnd,
    pub hit_player: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShotEnd {
    Seen { dx: i32, dy: i32 },
    Direction(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoundEntry {
    pub kind: u8,
    pub loudness: u8,
    pub direction: u8,
    /// Heard through at least one intact wall slice (bit 6 of the packed byte).
    pub muffled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeEntry {
    pub x_px: u32,
    pub y_px: u32,
    pub fuse: u8,
    pub friendly: bool,
}

/// One tick's per-viewer delta. Empty vectors and `None`s are left out of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFrame {
    /// Ticks since the previous state frame (1 unless the viewer skipped ticks).
    pub gap: u32,
    pub own: OwnUpdate,
    pub players: Vec<PlayerEntry>,
    pub shots: Vec<ShotEntry>,
    /// Changed wall slices: (slice index, hit points now), ascending.
    pub walls: Vec<(u32, u8)>,
    pub sounds: Vec<SoundEntry>,
    pub scores: Option<[u32; 2]>,
    /// Phase code and ticks left in it (counted down by the client).
    pub phase: Option<(u8, u32)>,
    pub charges: Vec<ChargeEntry>,
    /// Blasts in view, whole pixels.
    pub blasts: Vec<(u32, u32)>,
}

impl Default for StateFrame {
    fn default() -> Self {
        StateFrame {
            gap: 1,
            own: OwnUpdate::default(),
            players: Vec::new(),
            shots: Vec::new(),
            walls: Vec::new(),
            sounds: Vec::new(),
            scores: None,
            phase: None,
            charges: Vec::new(),
            blasts: Vec::new(),
        }
    }
}

impl StateFrame {
    pub fn clear(&mut self) {
        self.gap = 1;
        self.own = OwnUpdate::default();
        self.players.clear();
        self.shots.clear();
        self.walls.clear();
        self.sounds.clear();
        self.scores = None;
        self.phase = None;
        self.charges.clear();
        self.blasts.clear();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillEntry {
    pub killer: u8,
    pub victim: u8,
    pub assister: u8,
    pub cause: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub slot: u8,
    pub team: u8,
    pub bot: bool,
    pub kills: u32,
    pub deaths: u32,
    pub assists: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreboardFrame {
    /// 1 kill limit, 2 time limit, 3 forfeit.
    pub reason: u8,
    /// 0 team A, 1 team B, 2 draw.
    pub winner: u8,
    pub scores: [u32; 2],
    pub duration_ticks: u32,
    /// Ticks left to vote.
    pub ticks_left: u32,
    pub players: Vec<RosterEntry>,
}

/// A custom lobby's state, to everyone in the room whenever it changes (and after Init).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LobbyFrame {
    /// The host's player slot, [`NO_SLOT`] for none.
    pub host_slot: u8,
    pub map_id: u8,
    pub kill_limit: u32,
    pub time_limit_secs: u32,
    pub friendly_fire: bool,
    pub map_vote: bool,
    pub max_players: u8,
    pub spectators: u8,
    /// (slot, map id) of each seated player's map vote, by slot.
    pub votes: Vec<(u8, u8)>,
}

/// Something said to one player: a lobby command refused (codes 1110..=1117) or a kick
/// (1106), with a sentence to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeFrame {
    pub code: u16,
    pub text: String,
}

/// One decoded server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    Init(InitFrame),
    Walls(Vec<(u32, u8)>),
    State(StateFrame),
    KillFeed(Vec<KillEntry>),
    Roster(Vec<RosterEntry>),
    Scoreboard(ScoreboardFrame),
    /// (slot, 1 stay | 2 leave).
    Votes(Vec<(u8, u8)>),
    Lobby(LobbyFrame),
    Notice(NoticeFrame),
    /// A frame of a type this client does not know (runtime frames, newer game frames).
    Other(u8),
}

mod section {
    pub const OWN: u32 = 1 << 0;
    pub const PLAYERS: u32 = 1 << 1;
    pub const SHOTS: u32 = 1 << 2;
    pub const WALLS: u32 = 1 << 3;
    pub const SOUNDS: u32 = 1 << 4;
    pub const SCORES: u32 = 1 << 5;
    pub const PHASE: u32 = 1 << 6;
    pub const GAP: u32 = 1 << 7;
    pub const CHARGES: u32 = 1 << 8;
    pub const BLASTS: u32 = 1 << 9;
    pub const ALL: u32 = (1 << 10) - 1;
}

mod own_field {
    pub const ACK: u8 = 1 << 0;
    pub const POSITION: u8 = 1 << 1;
    pub const HEALTH: u8 = 1 << 2;
    pub const AMMO: u8 = 1 << 3;
    pub const RELOAD: u8 = 1 << 4;
    pub const LIFE: u8 = 1 << 5;
    pub const CHARGES: u8 = 1 << 6;
    pub const FACING: u8 = 1 << 7;
}

mod player_bits {
    pub const SMALL_MOVE: u8 = 1 << 4;
    pub const LARGE_MOVE: u8 = 1 << 5;
    pub const ENTER: u8 = SMALL_MOVE | LARGE_MOVE;
    pub const FACING: u8 = 1 << 6;
    pub const HEALTH: u8 = 1 << 7;
}

pub fn write_init(writer: &mut Writer<'_>, init: &InitFrame) {
    writer.frame(server_type::INIT, |w| {
        w.u8(init.map_id);
        w.u8(init.tick_rate);
        w.u8(init.slot);
        w.u8(init.team);
        w.varint(init.match_generation);
        w.varint(init.tick);
        w.varint(init.kill_limit);
        w.varint(init.time_limit_ticks);
        w.u8(u8::from(init.friendly_fire));
        w.varint(init.spectator_delay_ticks);
        w.u16(init.cone_half_angle);
        w.u16(init.view_range_px);
        w.u16(init.near_radius_px);
        for speed in init.speeds {
            w.u8(speed);
        }
        w.u8(init.player_half_sub);
    });
}

fn read_init(reader: &mut Reader<'_>) -> Result<InitFrame, DecodeError> {
    let init = InitFrame {
        map_id: reader.u8()?,
        tick_rate: reader.u8()?,
        slot: reader.u8()?,
        team: reader.u8()?,
        match_generation: reader.varint()?,
        tick: reader.varint()?,
        kill_limit: reader.varint()?,
        time_limit_ticks: reader.varint()?,
        friendly_fire: read_bool(reader)?,
        spectator_delay_ticks: reader.varint()?,
        cone_half_angle: reader.u16()?,
        view_range_px: reader.u16()?,
        near_radius_px: reader.u16()?,
        speeds: [reader.u8()?, reader.u8()?, reader.u8()?],
        player_half_sub: reader.u8()?,
    };
    if init.tick_rate == 0 || init.team > 2 || (init.slot != NO_SLOT && init.slot >= 16) {
        return Err(DecodeError::OutOfRange);
    }
    Ok(init)
}

fn read_bool(reader: &mut Reader<'_>) -> Result<bool, DecodeError> {
    match reader.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::OutOfRange),
    }
}

/// Checks a count against the bytes left, each entry taking at least `min_entry` bytes.
fn read_count(reader: &mut Reader<'_>, min_entry: usize) -> Result<usize, DecodeError> {
    let count = reader.varint()? as usize;
    if count.saturating_mul(min_entry) > reader.remaining() {
        return Err(DecodeError::Truncated);
    }
    Ok(count)
}

fn write_slices(w: &mut Writer<'_>, slices: &[(u32, u8)]) {
    w.varint(slices.len() as u32);
    let mut previous = 0u32;
    for (index, (slice, hit_points)) in slices.iter().enumerate() {
        // Ascending indices travel as gaps (the first from 0).
        let gap = if index == 0 { *slice } else { slice - previous };
        w.varint(gap);
        w.u8(*hit_points);
        previous = *slice;
    }
}

fn read_slices(reader: &mut Reader<'_>) -> Result<Vec<(u32, u8)>, DecodeError> {
    let count = read_count(reader, 2)?;
    let mut slices = Vec::with_capacity(count);
    let mut previous: Option<u32> = None;
    for _ in 0..count {
        let gap = reader.varint()?;
        let index = match previous {
            None => gap,
            Some(_) if gap == 0 => return Err(DecodeError::OutOfRange),
            Some(previous) => previous.checked_add(gap).ok_or(DecodeError::OutOfRange)?,
        };
        slices.push((index, reader.u8()?));
        previous = Some(index);
    }
    Ok(slices)
}

/// Writes the full list of damaged slices (after init, on resync).
pub fn write_walls(writer: &mut Writer<'_>, slices: &[(u32, u8)]) {
    writer.frame(server_type::WALLS, |w| write_slices(w, slices));
}

fn write_own(w: &mut Writer<'_>, own: &OwnUpdate) {
    let mut mask = 0u8;
    mask |= if own.ack_delta.is_some() {
        own_field::ACK
    } else {
        0
    };
    mask |= if own.moved.is_some() {
        own_field::POSITION
    } else {
        0
    };
    mask |= if own.health.is_some() {
        own_field::HEALTH
    } else {
        0
    };
    mask |= if own.ammo.is_some() {
        own_field::AMMO
    } else {
        0
    };
    mask |= if own.reload.is_some() {
        own_field::RELOAD
    } else {
        0
    };
    mask |= if own.life.is_some() {
        own_field::LIFE
    } else {
        0
    };
    mask |= if own.charges.is_some() {
        own_field::CHARGES
    } else {
        0
    };
    mask |= if own.facing.is_some() {
        own_field::FACING
    } else {
        0
    };
    w.u8(mask);
    if let Some(ack) = own.ack_delta {
        w.varint(ack);
    }
    if let Some((dx, dy)) = own.moved {
        w.svarint(dx);
        w.svarint(dy);
    }
    if let Some(health) = own.health {
        w.u8(health);
    }
    if let Some(ammo) = own.ammo {
        w.u8(ammo);
    }
    if let Some(reload) = own.reload {
        w.u8(reload);
    }
    if let Some((alive, respawn)) = own.life {
        w.u8(u8::from(alive));
        if !alive {
            w.varint(u32::from(respawn));
        }
    }
    if let Some(charges) = own.charges {
        w.u8(charges);
    }
    if let Some(facing) = own.facing {
        w.u16(facing);
    }
}

fn read_own(reader: &mut Reader<'_>) -> Result<OwnUpdate, DecodeError> {
    let mask = reader.u8()?;
    let mut own = OwnUpdate::default();
    if mask & own_field::ACK != 0 {
        own.ack_delta = Some(reader.varint()?);
    }
    if mask & own_field::POSITION != 0 {
        own.moved = Some((reader.svarint()?, reader.svarint()?));
    }
    if mask & own_field::HEALTH != 0 {
        own.health = Some(reader.u8()?);
    }
    if mask & own_field::AMMO != 0 {
        own.ammo = Some(reader.u8()?);
    }
    if mask & own_field::RELOAD != 0 {
        own.reload = Some(reader.u8()?);
    }
    if mask & own_field::LIFE != 0 {
        let alive = read_bool(reader)?;
        let respawn = if alive {
            0
        } else {
            u16::try_from(reader.varint()?).map_err(|_| DecodeError::OutOfRange)?
        };
        own.life = Some((alive, respawn));
    }
    if mask & own_field::CHARGES != 0 {
        own.charges = Some(reader.u8()?);
    }
    if mask & own_field::FACING != 0 {
        own.facing = Some(reader.u16()?);
    }
    Ok(own)
}

fn small_move((dx, dy): (i32, i32)) -> Option<u8> {
    let fits = |v: i32| (-8..=7).contains(&v);
    (fits(dx) && fits(dy)).then(|| ((dx + 8) as u8) | ((dy + 8) as u8) << 4)
}

fn write_player(w: &mut Writer<'_>, entry: &PlayerEntry) {
    let slot = entry.slot & 0x0f;
    match entry.change {
        PlayerChange::Leave => w.u8(slot),
        PlayerChange::Enter {
            x,
            y,
            facing,
            health,
        } => {
            w.u8(slot | player_bits::ENTER | player_bits::FACING | player_bits::HEALTH);
            w.varint(x);
            w.varint(y);
            w.u8(facing);
            w.u8(health);
        }
        PlayerChange::Update {
            moved,
            facing,
            health,
        } => {
            let small = moved.and_then(small_move);
            let mut header = slot;
            match (moved, small) {
                (Some(_), Some(_)) => header |= player_bits::SMALL_MOVE,
                (Some(_), None) => header |= player_bits::LARGE_MOVE,
                _ => {}
            }
            if facing.is_some() {
                header |= player_bits::FACING;
            }
            if health.is_some() {
                header |= player_bits::HEALTH;
            }
            w.u8(header);
            match (moved, small) {
                (_, Some(byte)) => w.u8(byte),
                (Some((dx, dy)), None) => {
                    w.svarint(dx);
                    w.svarint(dy);
                }
                _ => {}
            }
            if let Some(facing) = facing {
                w.u8(facing);
            }
            if let Some(health) = health {
                w.u8(health);
            }
        }
    }
}

fn read_player(reader: &mut Reader<'_>) -> Result<PlayerEntry, DecodeError> {
    let header = reader.u8()?;
    let slot = header & 0x0f;
    let moves = header & player_bits::ENTER;
    let change = if header & 0xf0 == 0 {
        PlayerChange::Leave
    } else if moves == player_bits::ENTER {
        if header & (player_bits::FACING | player_bits::HEALTH)
            != player_bits::FACING | player_bits::HEALTH
        {
            return Err(DecodeError::OutOfRange);
        }
        PlayerChange::Enter {
            x: reader.varint()?,
            y: reader.varint()?,
            facing: reader.u8()?,
            health: reader.u8()?,
        }
    } else {
        let moved = if moves == player_bits::SMALL_MOVE {
            let byte = reader.u8()?;
            Some((i32::from(byte & 0x0f) - 8, i32::from(byte >> 4) - 8))
        } else if moves == player_bits::LARGE_MOVE {
            Some((reader.svarint()?, reader.svarint()?))
        } else {
            None
        };
        let facing = if header & player_bits::FACING != 0 {
            Some(reader.u8()?)
        } else {
            None
        };
        let health = if header & player_bits::HEALTH != 0 {
            Some(reader.u8()?)
        } else {
            None
        };
        PlayerChange::Update {
            moved,
            facing,
            health,
        }
    };
    Ok(PlayerEntry { slot, change })
}

/// Writes one tick's state frame.
pub fn write_state(writer: &mut Writer<'_>, state: &StateFrame) {
    writer.frame(server_type::STATE, |w| {
        let mut sections = 0u32;
        let mut set = |present: bool, bit: u32| {
            if present {
                sections |= bit;
            }
        };
        set(!state.own.is_empty(), section::OWN);
        set(!state.players.is_empty(), section::PLAYERS);
        set(!state.shots.is_empty(), section::SHOTS);
        set(!state.walls.is_empty(), section::WALLS);
        set(!state.sounds.is_empty(), section::SOUNDS);
        set(state.scores.is_some(), section::SCORES);
        set(state.phase.is_some(), section::PHASE);
        set(state.gap != 1, section::GAP);
        set(!state.charges.is_empty(), section::CHARGES);
        set(!state.blasts.is_empty(), section::BLASTS);
        w.varint(sections);
        if sections & section::GAP != 0 {
            w.varint(state.gap);
        }
        if sections & section::OWN != 0 {
            write_own(w, &state.own);
        }
        if sections & section::PLAYERS != 0 {
            w.varint(state.players.len() as u32);
            for entry in &state.players {
                write_player(w, entry);
            }
        }
        if sections & section::SHOTS != 0 {
            w.varint(state.shots.len() as u32);
            for shot in &state.shots {
                let mut header = shot.shooter & 0x0f;
                if shot.hit_player {
                    header |= 0x20;
                }
                match shot.end {
                    ShotEnd::Seen { dx, dy } => {
                        w.u8(header | 0x10);
                        w.svarint(dx);
                        w.svarint(dy);
                    }
                    ShotEnd::Direction(direction) => {
                        w.u8(header);
                        w.u8(direction);
                    }
                }
            }
        }
        if sections & section::WALLS != 0 {
            write_slices(w, &state.walls);
        }
        if sections & section::SOUNDS != 0 {
            w.varint(state.sounds.len() as u32);
            for sound in &state.sounds {
                w.u8((sound.kind & 0x07)
                    | (sound.loudness & 0x07) << 3
                    | u8::from(sound.muffled) << 6);
                w.u8(sound.direction);
            }
        }
        if let Some([a, b]) = state.scores {
            w.varint(a);
            w.varint(b);
        }
        if let Some((phase, ticks_left)) = state.phase {
            w.u8(phase);
            w.varint(ticks_left);
        }
        if sections & section::CHARGES != 0 {
            w.varint(state.charges.len() as u32);
            for charge in &state.charges {
                w.varint(charge.x_px);
                w.varint(charge.y_px);
                w.u8((charge.fuse & 0x7f) | u8::from(charge.friendly) << 7);
            }
        }
        if sections & section::BLASTS != 0 {
            w.varint(state.blasts.len() as u32);
            for (x, y) in &state.blasts {
                w.varint(*x);
                w.varint(*y);
            }
        }
    });
}

fn read_state(reader: &mut Reader<'_>) -> Result<StateFrame, DecodeError> {
    let sections = reader.varint()?;
    if sections & !section::ALL != 0 {
        return Err(DecodeError::OutOfRange);
    }
    let mut state = StateFrame::default();
    if sections & section::GAP != 0 {
        state.gap = reader.varint()?;
        if state.gap == 1 {
            return Err(DecodeError::OutOfRange);
        }
    }
    if sections & section::OWN != 0 {
        state.own = read_own(reader)?;
    }
    if sections & section::PLAYERS != 0 {
        let count = read_count(reader, 1)?;
        for _ in 0..count {
            state.players.push(read_player(reader)?);
        }
    }
    if sections & section::SHOTS != 0 {
        let count = read_count(reader, 2)?;
        for _ in 0..count {
            let header = reader.u8()?;
            if header & 0xc0 != 0 {
                return Err(DecodeError::OutOfRange);
            }
            let end = if header & 0x10 != 0 {
                ShotEnd::Seen {
                    dx: reader.svarint()?,
                    dy: reader.svarint()?,
                }
            } else {
                ShotEnd::Direction(reader.u8()?)
            };
            state.shots.push(ShotEntry {
                shooter: header & 0x0f,
                end,
                hit_player: header & 0x20 != 0,
            });
        }
    }
    if sections & section::WALLS != 0 {
        state.walls = read_slices(reader)?;
    }
    if sections & section::SOUNDS != 0 {
        let count = read_count(reader, 2)?;
        for _ in 0..count {
            let packed = reader.u8()?;
            if packed & 0x80 != 0 {
                return Err(DecodeError::OutOfRange);
            }
            state.sounds.push(SoundEntry {
                kind: packed & 0x07,
                loudness: (packed >> 3) & 0x07,
                direction: reader.u8()?,
                muffled: packed & 0x40 != 0,
            });
        }
    }
    if sections & section::SCORES != 0 {
        state.scores = Some([reader.varint()?, reader.varint()?]);
    }
    if sections & section::PHASE != 0 {
        state.phase = Some((reader.u8()?, reader.varint()?));
    }
    if sections & section::CHARGES != 0 {
        let count = read_count(reader, 3)?;
        for _ in 0..count {
            let x_px = reader.varint()?;
            let y_px = reader.varint()?;
            let packed = reader.u8()?;
            state.charges.push(ChargeEntry {
                x_px,
                y_px,
                fuse: packed & 0x7f,
                friendly: packed & 0x80 != 0,
            });
        }
    }
    if sections & section::BLASTS != 0 {
        let count = read_count(reader, 2)?;
        for _ in 0..count {
            state.blasts.push((reader.varint()?, reader.varint()?));
        }
    }
    Ok(state)
}

pub fn write_kill_feed(writer: &mut Writer<'_>, kills: &[KillEntry]) {
    writer.frame(server_type::KILL_FEED, |w| {
        w.varint(kills.len() as u32);
        for kill in kills {
            w.u8(kill.killer);
            w.u8(kill.victim);
            w.u8(kill.assister);
            w.u8(kill.cause);
        }
    });
}

fn write_roster_entry(w: &mut Writer<'_>, entry: &RosterEntry) {
    w.u8(entry.slot);
    w.u8(entry.team);
    w.u8(u8::from(entry.bot));
    w.varint(entry.kills);
    w.varint(entry.deaths);
    w.varint(entry.assists);
    w.short_str(&entry.name);
}

fn read_roster_entry(reader: &mut Reader<'_>) -> Result<RosterEntry, DecodeError> {
    let entry = RosterEntry {
        slot: reader.u8()?,
        team: reader.u8()?,
        bot: read_bool(reader)?,
        kills: reader.varint()?,
        deaths: reader.varint()?,
        assists: reader.varint()?,
        name: reader.short_str()?.to_string(),
    };
    if entry.slot >= 16 || entry.team > 1 {
        return Err(DecodeError::OutOfRange);
    }
    Ok(entry)
}

pub fn write_roster(writer: &mut Writer<'_>, roster: &[RosterEntry]) {
    writer.frame(server_type::ROSTER, |w| {
        w.varint(roster.len() as u32);
        for entry in roster {
            write_roster_entry(w, entry);
        }
    });
}

pub fn write_scoreboard(writer: &mut Writer<'_>, board: &ScoreboardFrame) {
    writer.frame(server_type::SCOREBOARD, |w| {
        w.u8(board.reason);
        w.u8(board.winner);
        w.varint(board.scores[0]);
        w.varint(board.scores[1]);
        w.varint(board.duration_ticks);
        w.varint(board.ticks_left);
        w.varint(board.players.len() as u32);
        for entry in &board.players {
            write_roster_entry(w, entry);
        }
    });
}

pub fn write_votes(writer: &mut Writer<'_>, votes: &[(u8, u8)]) {
    writer.frame(server_type::VOTES, |w| {
        w.varint(votes.len() as u32);
        for (slot, vote) in votes {
            w.u8(*slot);
            w.u8(*vote);
        }
    });
}

pub fn write_lobby(writer: &mut Writer<'_>, lobby: &LobbyFrame) {
    writer.frame(server_type::LOBBY, |w| {
        w.u8(lobby.host_slot);
        w.u8(lobby.map_id);
        w.varint(lobby.kill_limit);
        w.varint(lobby.time_limit_secs);
        w.u8(u8::from(lobby.friendly_fire) | u8::from(lobby.map_vote) << 1);
        w.u8(lobby.max_players);
        w.u8(lobby.spectators);
        w.varint(lobby.votes.len() as u32);
        for (slot, map_id) in &lobby.votes {
            w.u8(*slot);
            w.u8(*map_id);
        }
    });
}

pub fn write_notice(writer: &mut Writer<'_>, notice: &NoticeFrame) {
    writer.frame(server_type::NOTICE, |w| {
        w.u16(notice.code);
        w.short_str(&notice.text);
    });
}

fn read_lobby(reader: &mut Reader<'_>) -> Result<LobbyFrame, DecodeError> {
    let host_slot = reader.u8()?;
    let map_id = reader.u8()?;
    let kill_limit = reader.varint()?;
    let time_limit_secs = reader.varint()?;
    let flags = reader.u8()?;
    let max_players = reader.u8()?;
    let spectators = reader.u8()?;
    if flags & !0b11 != 0
        || (host_slot != NO_SLOT && host_slot >= 16)
        || max_players == 0
        || max_players > 16
    {
        return Err(DecodeError::OutOfRange);
    }
    let count = read_count(reader, 2)?;
    let mut votes = Vec::with_capacity(count);
    for _ in 0..count {
        let slot = reader.u8()?;
        if slot >= 16 {
            return Err(DecodeError::OutOfRange);
        }
        votes.push((slot, reader.u8()?));
    }
    Ok(LobbyFrame {
        host_slot,
        map_id,
        kill_limit,
        time_limit_secs,
        friendly_fire: flags & 1 != 0,
        map_vote: flags & 2 != 0,
        max_players,
        spectators,
        votes,
    })
}

/// Decodes one server frame's payload.
pub fn decode_server_frame(frame_type: u8, payload: &[u8]) -> Result<ServerFrame, DecodeError> {
    let mut reader = Reader::new(payload);
    let frame = match frame_type {
        server_type::INIT => ServerFrame::Init(read_init(&mut reader)?),
        server_type::WALLS => ServerFrame::Walls(read_slices(&mut reader)?),
        server_type::STATE => ServerFrame::State(read_state(&mut reader)?),
        server_type::KILL_FEED => {
            let count = read_count(&mut reader, 4)?;
            let mut kills = Vec::with_capacity(count);
            for _ in 0..count {
                let kill = KillEntry {
                    killer: reader.u8()?,
                    victim: reader.u8()?,
                    assister: reader.u8()?,
                    cause: reader.u8()?,
                };
                if kill.cause > 1 {
                    return Err(DecodeError::OutOfRange);
                }
                kills.push(kill);
            }
            ServerFrame::KillFeed(kills)
        }
        server_type::ROSTER => {
            let count = read_count(&mut reader, 7)?;
            let mut roster = Vec::with_capacity(count);
            for _ in 0..count {
                roster.push(read_roster_entry(&mut reader)?);
            }
            ServerFrame::Roster(roster)
        }
        server_type::SCOREBOARD => {
            let reason = reader.u8()?;
            let winner = reader.u8()?;
            if !(1..=3).contains(&reason) || winner > 2 {
                return Err(DecodeError::OutOfRange);
            }
            let scores = [reader.varint()?, reader.varint()?];
            let duration_ticks = reader.varint()?;
            let ticks_left = reader.varint()?;
            let count = read_count(&mut reader, 7)?;
            let mut players = Vec::with_capacity(count);
            for _ in 0..count {
                players.push(read_roster_entry(&mut reader)?);
            }
            ServerFrame::Scoreboard(ScoreboardFrame {
                reason,
                winner,
                scores,
                duration_ticks,
                ticks_left,
                players,
            })
        }
        server_type::VOTES => {
            let count = read_count(&mut reader, 2)?;
            let mut votes = Vec::with_capacity(count);
            for _ in 0..count {
                let slot = reader.u8()?;
                let vote = reader.u8()?;
                if !(1..=2).contains(&vote) {
                    return Err(DecodeError::OutOfRange);
                }
                votes.push((slot, vote));
            }
            ServerFrame::Votes(votes)
        }
        server_type::LOBBY => ServerFrame::Lobby(read_lobby(&mut reader)?),
        server_type::NOTICE => ServerFrame::Notice(NoticeFrame {
            code: reader.u16()?,
            text: reader.short_str()?.to_owned(),
        }),
        other => return Ok(ServerFrame::Other(other)),
    };
    reader.finish()?;
    Ok(frame)
}

/// Decodes every frame of one server message, in order.
pub fn decode_server_message(message: &[u8]) -> Result<Vec<ServerFrame>, DecodeError> {
    let mut frames = Vec::new();
    for frame in server_frames(message) {
        let (frame_type, payload) = frame?;
        frames.push(decode_server_frame(frame_type, payload)?);
    }
    Ok(frames)
}
