//! The per-viewer encoder: each tick, what changed *for this client* against what this
//! client is known to hold.
//!
//! [`ClientHolds`] is the server's copy of one client's knowledge. [`encode_viewer`] turns a
//! viewer's [`View`] (the only source of other players, shots, charges, blasts and sounds —
//! see `vision.rs`), its own player and the match's public state into frames, and updates the
//! holds exactly as the client will update itself (`mirror.rs` applies the same rules). A
//! delta is never built on a frame the client did not get: [`ClientHolds::forget`] (called by
//! `resync`) makes the next message start over with Init and full state.
//!
//! Countdowns (reload, respawn, phase time) run on the client by one per state frame; the
//! server sends a value only when the client's countdown would be wrong.

use coil_protocol::codec::Writer;

use crate::MAX_SLOTS;
use crate::vision::View;
use crate::wire::{
    self, ChargeEntry, InitFrame, KillEntry, LobbyFrame, NoticeFrame, OwnUpdate,
    POSITION_QUANTUM_SUB, PlayerChange, PlayerEntry, RosterEntry, ScoreboardFrame, ShotEnd,
    ShotEntry, SoundEntry, StateFrame,
};

/// What the viewer's own body looks like this tick (absent for spectators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnView {
    pub x: i64,
    pub y: i64,
    pub facing: u16,
    pub health: u8,
    pub ammo: u8,
    pub reload_in: u8,
    pub alive: bool,
    pub respawn_in: u16,
    pub charges: u8,
    pub spawns: u32,
    /// Last input sequence the simulation applied.
    pub ack: u32,
}

/// The match-wide part of every viewer's message this tick.
#[derive(Debug, Clone, Copy)]
pub struct PublicState<'a> {
    /// Init fields common to all viewers (slot and team are filled in per viewer).
    pub init: InitFrame,
    pub scores: [u32; 2],
    pub phase: (u8, u32),
    /// Wall slices changed this tick, ascending, with their hit points now.
    pub wall_changes: &'a [(u32, u8)],
    /// Every damaged slice (only read when a viewer needs a full resync).
    pub full_walls: &'a [(u32, u8)],
    pub kills: &'a [KillEntry],
    pub roster: &'a [RosterEntry],
    pub roster_version: u64,
    pub scoreboard: Option<&'a ScoreboardFrame>,
    pub votes: &'a [(u8, u8)],
    pub votes_version: u64,
    /// The custom lobby (none in quick play: no Lobby frame is ever written).
    pub lobby: Option<&'a LobbyFrame>,
    pub lobby_version: u64,
    /// Notices for this viewer only (refused lobby commands, a kick).
    pub notices: &'a [NoticeFrame],
}

/// One other player as the client holds it (half-pixel position, byte facing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldOther {
    pub generation: u32,
    pub qx: i64,
    pub qy: i64,
    pub facing: u8,
    pub health: u8,
}

/// The server's copy of what one client holds.
#[derive(Debug, Clone)]
pub struct ClientHolds {
    synced: bool,
    match_generation: u32,
    last_tick: u32,
    fresh_after_init: bool,
    own: OwnHeld,
    others: [Option<HeldOther>; MAX_SLOTS],
    scores: [u32; 2],
    phase: (u8, u32),
    roster_version: u64,
    scoreboard_sent: bool,
    votes_version: u64,
    lobby_version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct OwnHeld {
    x: i64,
    y: i64,
    health: u8,
    ammo: u8,
    reload: u8,
    alive: bool,
    respawn: u16,
    charges: u8,
    ack: u32,
    spawns: Option<u32>,
}

impl Default for ClientHolds {
    fn default() -> Self {
        ClientHolds::new()
    }
}

impl ClientHolds {
    pub fn new() -> ClientHolds {
        ClientHolds {
            synced: false,
            match_generation: 0,
            last_tick: 0,
            fresh_after_init: true,
            own: OwnHeld::default(),
            others: [None; MAX_SLOTS],
            scores: [0, 0],
            phase: (u8::MAX, 0),
            roster_version: u64::MAX,
            scoreboard_sent: false,
            votes_version: u64::MAX,
            lobby_version: u64::MAX,
        }
    }

    /// Forgets everything: the next message re-sends it all (after a dropped frame).
    pub fn forget(&mut self) {
        *self = ClientHolds::new();
    }

    /// Whether the next message will be a full one (so the caller prepares the wall list).
    pub fn needs_full(&self, tick: u32, match_generation: u32) -> bool {
        !self.synced
            || self.match_generation != match_generation
            || tick != self.last_tick.wrapping_add(1)
    }

    /// Other players the client holds, by slot.
    pub fn others(&self) -> &[Option<HeldOther>; MAX_SLOTS] {
        &self.others
    }
}

fn quantize(value: i64) -> i64 {
    value.div_euclid(POSITION_QUANTUM_SUB)
}

fn to_px(value: i64) -> u32 {
    u32::try_from(value.div_euclid(8)).unwrap_or(0)
}

/// Appends this tick's frames for one viewer to `out` and updates `holds` to match.
/// `slot_team` is the viewer's (slot, team) for the init frame (`NO_SLOT`/2 for spectators);
/// `scratch` is a reusable state frame.
pub fn encode_viewer(
    holds: &mut ClientHolds,
    slot_team: (u8, u8),
    own: Option<&OwnView>,
    view: &View,
    public: &PublicState<'_>,
    scratch: &mut StateFrame,
    out: &mut Vec<u8>,
) {
    let tick = public.init.tick;
    let generation = public.init.match_generation;
    let mut writer = Writer::new(out);
    let full = holds.needs_full(tick, generation);
    if full {
        holds.forget();
        holds.synced = true;
        holds.match_generation = generation;
        let init = InitFrame {
            slot: slot_team.0,
            team: slot_team.1,
            ..public.init
        };
        wire::write_init(&mut writer, &init);
        if !public.full_walls.is_empty() {
            wire::write_walls(&mut writer, public.full_walls);
        }
    }
    if holds.roster_version != public.roster_version {
        wire::write_roster(&mut writer, public.roster);
        holds.roster_version = public.roster_version;
    }
    if let Some(lobby) = public.lobby
        && holds.lobby_version != public.lobby_version
    {
        wire::write_lobby(&mut writer, lobby);
        holds.lobby_version = public.lobby_version;
    }
    if !public.kills.is_empty() {
        wire::write_kill_feed(&mut writer, public.kills);
    }
    match public.scoreboard {
        Some(board) if !holds.scoreboard_sent => {
            wire::write_scoreboard(&mut writer, board);
            holds.scoreboard_sent = true;
        }
        Some(_) => {}
        None => holds.scoreboard_sent = false,
    }
    if holds.votes_version != public.votes_version {
        if !public.votes.is_empty() || holds.votes_version != u64::MAX {
            wire::write_votes(&mut writer, public.votes);
        }
        holds.votes_version = public.votes_version;
    }
    for notice in public.notices {
        wire::write_notice(&mut writer, notice);
    }

    scratch.clear();
    // The client's own countdowns run first, exactly as the mirror runs them.
    let steps = if holds.fresh_after_init { 0 } else { 1 };
    holds.fresh_after_init = false;
    holds.last_tick = tick;
    holds.own.reload = holds.own.reload.saturating_sub(steps);
    holds.own.respawn = holds.own.respawn.saturating_sub(u16::from(steps));
    holds.phase.1 = holds.phase.1.saturating_sub(u32::from(steps));

    if let Some(own) = own {
        scratch.own = own_delta(&mut holds.own, own);
    }
    others_delta(&mut holds.others, view, &mut scratch.players);
    for shot in &view.shots {
        let end = match shot.end {
            Some((x, y)) => ShotEnd::Seen {
                dx: ((x - shot.from.0) as f64 / 8.0).round() as i32,
                dy: ((y - shot.from.1) as f64 / 8.0).round() as i32,
            },
            None => ShotEnd::Direction(shot.direction.to_byte()),
        };
        scratch.shots.push(ShotEntry {
            shooter: shot.shooter as u8,
            end,
            hit_player: shot.hit_player,
        });
    }
    if !full {
        scratch.walls.extend_from_slice(public.wall_changes);
    }
    scratch
        .sounds
        .extend(view.sounds.iter().map(|sound| SoundEntry {
            kind: sound.kind as u8,
            loudness: sound.loudness,
            direction: sound.direction,
            muffled: sound.muffled,
        }));
    if holds.scores != public.scores {
        scratch.scores = Some(public.scores);
        holds.scores = public.scores;
    }
    if holds.phase != public.phase {
        scratch.phase = Some(public.phase);
        holds.phase = public.phase;
    }
    scratch
        .charges
        .extend(view.charges.iter().map(|charge| ChargeEntry {
            x_px: to_px(charge.x),
            y_px: to_px(charge.y),
            fuse: charge.fuse.min(127) as u8,
            friendly: charge.friendly,
        }));
    scratch
        .blasts
        .extend(view.blasts.iter().map(|&(x, y)| (to_px(x), to_px(y))));
    wire::write_state(&mut writer, scratch);
}

fn own_delta(held: &mut OwnHeld, own: &OwnView) -> OwnUpdate {
    let mut update = OwnUpdate::default();
    if own.ack != held.ack {
        update.ack_delta = Some(own.ack.wrapping_sub(held.ack));
        held.ack = own.ack;
    }
    if (own.x, own.y) != (held.x, held.y) {
        update.moved = Some(((own.x - held.x) as i32, (own.y - held.y) as i32));
        held.x = own.x;
        held.y = own.y;
    }
    if own.health != held.health {
        update.health = Some(own.health);
        held.health = own.health;
    }
    if own.ammo != held.ammo {
        update.ammo = Some(own.ammo);
        held.ammo = own.ammo;
    }
    if own.reload_in != held.reload {
        update.reload = Some(own.reload_in);
        held.reload = own.reload_in;
    }
    let respawn = if own.alive { 0 } else { own.respawn_in };
    if own.alive != held.alive || respawn != held.respawn {
        update.life = Some((own.alive, respawn));
        held.alive = own.alive;
        held.respawn = respawn;
    }
    if own.charges != held.charges {
        update.charges = Some(own.charges);
        held.charges = own.charges;
    }
    if held.spawns != Some(own.spawns) {
        update.facing = Some(own.facing);
        held.spawns = Some(own.spawns);
    }
    update
}

fn others_delta(
    held: &mut [Option<HeldOther>; MAX_SLOTS],
    view: &View,
    out: &mut Vec<PlayerEntry>,
) {
    let mut seen = view.players.iter().peekable();
    for (slot, held_slot) in held.iter_mut().enumerate() {
        let current = match seen.peek() {
            Some(player) if player.slot == slot => seen.next(),
            _ => None,
        };
        match (current, held_slot.as_mut()) {
            (None, None) => {}
            (None, Some(_)) => {
                out.push(PlayerEntry {
                    slot: slot as u8,
                    change: PlayerChange::Leave,
                });
                *held_slot = None;
            }
            (Some(player), known) => {
                let now = HeldOther {
                    generation: player.generation,
                    qx: quantize(player.x),
                    qy: quantize(player.y),
                    facing: player.facing.to_byte(),
                    health: player.health,
                };
                let change = match known {
                    Some(before) if before.generation == now.generation => {
                        let moved = (now.qx != before.qx || now.qy != before.qy)
                            .then(|| ((now.qx - before.qx) as i32, (now.qy - before.qy) as i32));
                        let facing = (now.facing != before.facing).then_some(now.facing);
                        let health = (now.health != before.health).then_some(now.health);
                        if moved.is_none() && facing.is_none() && health.is_none() {
                            None
                        } else {
                            Some(PlayerChange::Update {
                                moved,
                                facing,
                                health,
                            })
                        }
                    }
                    _ => Some(PlayerChange::Enter {
                        x: now.qx.max(0) as u32,
                        y: now.qy.max(0) as u32,
                        facing: now.facing,
                        health: now.health,
                    }),
                };
                if let Some(change) = change {
                    out.push(PlayerEntry {
                        slot: slot as u8,
                        change,
                    });
                }
                *held_slot = Some(now);
            }
        }
    }
}
