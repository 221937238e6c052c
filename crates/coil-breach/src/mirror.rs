//! The Rust client mirror: applies server messages and holds exactly what a breach client
//! knows. Used by the tests (the encoder and the mirror must agree after any sequence of
//! ticks, drops and resyncs) and by load generators; the browser client follows the same
//! rules (`docs/protocol-breach.md`).
//!
//! It never trusts the bytes: every frame is decoded by `wire.rs`, and a frame that does not
//! fit what the mirror holds (a state before init, an update for a player it does not hold, a
//! slice outside the map) is an error, not a panic. A Notice is the one frame that may come
//! before Init.

use coil_protocol::codec::DecodeError;

use crate::map::Map;
use crate::walls::Walls;
use crate::wire::{
    self, ChargeEntry, InitFrame, KillEntry, LobbyFrame, NoticeFrame, PlayerChange, RosterEntry,
    ScoreboardFrame, ServerFrame, ShotEntry, SoundEntry, StateFrame,
};

/// Kill feed lines kept (oldest dropped first).
pub const KILL_FEED_KEPT: usize = 16;
/// Notices kept (oldest dropped first).
pub const NOTICES_KEPT: usize = 8;
/// Other-player slots the wire can name.
const WIRE_SLOTS: usize = 16;

/// Why a message could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorError {
    Decode(DecodeError),
    /// A frame other than Init before the first Init.
    NotInitialized,
    UnknownMap(u8),
    BadSlice(u32),
    /// An update for a player slot the mirror does not hold.
    UnknownPlayer(u8),
}

impl From<DecodeError> for MirrorError {
    fn from(error: DecodeError) -> Self {
        MirrorError::Decode(error)
    }
}

/// The viewer's own player as the client knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorOwn {
    pub x: i64,
    pub y: i64,
    pub facing: u16,
    pub health: u8,
    pub ammo: u8,
    pub reload: u8,
    pub alive: bool,
    pub respawn: u16,
    pub charges: u8,
    /// Last input sequence the server applied.
    pub ack: u32,
}

/// Another player as the client knows it (half-pixel position, byte facing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorOther {
    pub qx: i64,
    pub qy: i64,
    pub facing: u8,
    pub health: u8,
}

/// Everything one client holds.
#[derive(Debug, Clone)]
pub struct ClientMirror {
    pub init: Option<InitFrame>,
    pub map: Option<Map>,
    pub walls: Option<Walls>,
    pub tick: u32,
    fresh_after_init: bool,
    pub own: MirrorOwn,
    pub others: [Option<MirrorOther>; WIRE_SLOTS],
    pub scores: [u32; 2],
    /// Phase code and ticks left (255 before the first phase section).
    pub phase: (u8, u32),
    pub roster: Vec<RosterEntry>,
    pub kill_feed: Vec<KillEntry>,
    pub scoreboard: Option<ScoreboardFrame>,
    pub votes: Vec<(u8, u8)>,
    /// The custom lobby (none in quick play). Kept across Init, like the roster.
    pub lobby: Option<LobbyFrame>,
    /// Notices received (refused lobby commands, a kick), oldest first.
    pub notices: Vec<NoticeFrame>,
    /// This tick's shots, sounds, charges and blasts (replaced every state frame).
    pub shots: Vec<ShotEntry>,
    pub sounds: Vec<SoundEntry>,
    pub charges: Vec<ChargeEntry>,
    pub blasts: Vec<(u32, u32)>,
    /// The last state frame as decoded (for tests that look at the bytes' content).
    pub last_state: Option<StateFrame>,
}

impl Default for ClientMirror {
    fn default() -> Self {
        ClientMirror::new()
    }
}

impl ClientMirror {
    pub fn new() -> ClientMirror {
        ClientMirror {
            init: None,
            map: None,
            walls: None,
            tick: 0,
            fresh_after_init: true,
            own: MirrorOwn::default(),
            others: [None; WIRE_SLOTS],
            scores: [0, 0],
            phase: (u8::MAX, 0),
            roster: Vec::new(),
            kill_feed: Vec::new(),
            scoreboard: None,
            votes: Vec::new(),
            lobby: None,
            notices: Vec::new(),
            shots: Vec::new(),
            sounds: Vec::new(),
            charges: Vec::new(),
            blasts: Vec::new(),
            last_state: None,
        }
    }

    /// Applies one server message (every frame in it, in order). Frames of types the mirror
    /// does not know (runtime frames) are skipped.
    pub fn apply_message(&mut self, message: &[u8]) -> Result<(), MirrorError> {
        for frame in wire::decode_server_message(message)? {
            self.apply_frame(frame)?;
        }
        Ok(())
    }

    pub fn apply_frame(&mut self, frame: ServerFrame) -> Result<(), MirrorError> {
        match frame {
            ServerFrame::Init(init) => {
                let map = Map::built_in(init.map_id).ok_or(MirrorError::UnknownMap(init.map_id))?;
                let roster = std::mem::take(&mut self.roster);
                let kill_feed = std::mem::take(&mut self.kill_feed);
                let lobby = self.lobby.take();
                let notices = std::mem::take(&mut self.notices);
                *self = ClientMirror::new();
                self.roster = roster;
                self.kill_feed = kill_feed;
                self.lobby = lobby;
                self.notices = notices;
                self.walls = Some(Walls::from_map(&map));
                self.map = Some(map);
                self.tick = init.tick;
                self.init = Some(init);
            }
            ServerFrame::Other(_) => {}
            // A notice needs nothing held: a player kicked before its first update gets only
            // that.
            ServerFrame::Notice(notice) => {
                self.notices.push(notice);
                let excess = self.notices.len().saturating_sub(NOTICES_KEPT);
                self.notices.drain(..excess);
            }
            other => {
                if self.init.is_none() {
                    return Err(MirrorError::NotInitialized);
                }
                match other {
                    ServerFrame::Walls(slices) => self.apply_slices(&slices)?,
                    ServerFrame::State(state) => self.apply_state(state)?,
                    ServerFrame::KillFeed(kills) => {
                        self.kill_feed.extend(kills);
                        let excess = self.kill_feed.len().saturating_sub(KILL_FEED_KEPT);
                        self.kill_feed.drain(..excess);
                    }
                    ServerFrame::Roster(roster) => self.roster = roster,
                    ServerFrame::Scoreboard(board) => self.scoreboard = Some(board),
                    ServerFrame::Votes(votes) => self.votes = votes,
                    ServerFrame::Lobby(lobby) => self.lobby = Some(lobby),
                    ServerFrame::Init(_) | ServerFrame::Other(_) | ServerFrame::Notice(_) => {}
                }
            }
        }
        Ok(())
    }

    fn apply_slices(&mut self, slices: &[(u32, u8)]) -> Result<(), MirrorError> {
        let walls = self.walls.as_mut().ok_or(MirrorError::NotInitialized)?;
        for &(index, hit_points) in slices {
            if !walls.set_hit_points(index, hit_points) {
                return Err(MirrorError::BadSlice(index));
            }
        }
        Ok(())
    }

    fn apply_state(&mut self, state: StateFrame) -> Result<(), MirrorError> {
        let steps = if self.fresh_after_init { 0 } else { state.gap };
        self.fresh_after_init = false;
        self.tick = self.tick.wrapping_add(steps);
        let countdown = steps.min(u32::from(u16::MAX)) as u16;
        self.own.reload = self.own.reload.saturating_sub(countdown.min(255) as u8);
        self.own.respawn = self.own.respawn.saturating_sub(countdown);
        self.phase.1 = self.phase.1.saturating_sub(steps);

        let own = &state.own;
        if let Some(delta) = own.ack_delta {
            self.own.ack = self.own.ack.wrapping_add(delta);
        }
        if let Some((dx, dy)) = own.moved {
            self.own.x += i64::from(dx);
            self.own.y += i64::from(dy);
        }
        if let Some(health) = own.health {
            self.own.health = health;
        }
        if let Some(ammo) = own.ammo {
            self.own.ammo = ammo;
        }
        if let Some(reload) = own.reload {
            self.own.reload = reload;
        }
        if let Some((alive, respawn)) = own.life {
            self.own.alive = alive;
            self.own.respawn = respawn;
        }
        if let Some(charges) = own.charges {
            self.own.charges = charges;
        }
        if let Some(facing) = own.facing {
            self.own.facing = facing;
        }
        for entry in &state.players {
            let slot = usize::from(entry.slot);
            match entry.change {
                PlayerChange::Leave => {
                    if self.others[slot].take().is_none() {
                        return Err(MirrorError::UnknownPlayer(entry.slot));
                    }
                }
                PlayerChange::Enter {
                    x,
                    y,
                    facing,
                    health,
                } => {
                    self.others[slot] = Some(MirrorOther {
                        qx: i64::from(x),
                        qy: i64::from(y),
                        facing,
                        health,
                    });
                }
                PlayerChange::Update {
                    moved,
                    facing,
                    health,
                } => {
                    let held = self.others[slot]
                        .as_mut()
                        .ok_or(MirrorError::UnknownPlayer(entry.slot))?;
                    if let Some((dx, dy)) = moved {
                        held.qx += i64::from(dx);
                        held.qy += i64::from(dy);
                    }
                    if let Some(facing) = facing {
                        held.facing = facing;
                    }
                    if let Some(health) = health {
                        held.health = health;
                    }
                }
            }
        }
        self.apply_slices(&state.walls)?;
        if let Some(scores) = state.scores {
            self.scores = scores;
        }
        if let Some(phase) = state.phase {
            self.phase = phase;
            if phase.0 != crate::Phase::Ending as u8 {
                self.scoreboard = None;
            }
        }
        self.shots.clone_from(&state.shots);
        self.sounds.clone_from(&state.sounds);
        self.charges.clone_from(&state.charges);
        self.blasts.clone_from(&state.blasts);
        self.last_state = Some(state);
        Ok(())
    }
}
