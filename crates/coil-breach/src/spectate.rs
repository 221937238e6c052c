//! The spectators' feed: the match as it was [`BreachConfig::spectator_delay_ticks`] ago, so
//! watching cannot be used to tell a player where enemies are right now.
//!
//! Every tick [`SpectatorFeed::record`] stores a compact snapshot (bodies, shots, charges,
//! blasts, changed wall slices) in a ring of exactly `delay` entries; the entry that falls out
//! of the ring is what spectators are shown this tick, and its wall changes are applied to a
//! delayed copy of the walls for spectator resyncs. Memory is bounded by the delay: snapshots
//! are recycled, never freed and reallocated in steady state. Spectators hear nothing (sounds
//! are a player's-eye thing) and see every player.
//!
//! [`BreachConfig::spectator_delay_ticks`]: crate::BreachConfig

use std::collections::VecDeque;

use crate::MAX_SLOTS;
use crate::math::Angle;
use crate::vision::{SeenCharge, SeenPlayer, SeenShot, View};
use crate::walls::Walls;
use crate::world::World;

#[derive(Debug, Clone, Default)]
struct Snapshot {
    players: Vec<SeenPlayer>,
    shots: Vec<SeenShot>,
    charges: Vec<SeenCharge>,
    blasts: Vec<(i64, i64)>,
    wall_changes: Vec<(u32, u8)>,
}

/// The delayed feed of one match.
#[derive(Debug, Clone)]
pub struct SpectatorFeed {
    delay: usize,
    ring: VecDeque<Snapshot>,
    spare: Vec<Snapshot>,
    shown: Option<Snapshot>,
    delayed_walls: Walls,
}

impl SpectatorFeed {
    pub fn new(delay_ticks: u32, walls: &Walls) -> SpectatorFeed {
        let delay = delay_ticks.max(1) as usize;
        SpectatorFeed {
            delay,
            ring: VecDeque::with_capacity(delay + 1),
            spare: Vec::new(),
            shown: None,
            delayed_walls: walls.clone(),
        }
    }

    /// Starts over for a new match on fresh walls.
    pub fn reset(&mut self, walls: &Walls) {
        while let Some(snapshot) = self.ring.pop_front() {
            self.spare.push(snapshot);
        }
        if let Some(snapshot) = self.shown.take() {
            self.spare.push(snapshot);
        }
        self.delayed_walls = walls.clone();
    }

    /// Records this tick and advances what spectators are shown.
    pub fn record(&mut self, world: &World) {
        let mut snapshot = self.spare.pop().unwrap_or_default();
        snapshot.players.clear();
        snapshot.shots.clear();
        snapshot.charges.clear();
        snapshot.blasts.clear();
        snapshot.wall_changes.clear();
        for (slot, player) in world.players() {
            if player.alive && slot < MAX_SLOTS {
                snapshot.players.push(SeenPlayer {
                    slot,
                    generation: player.generation,
                    x: player.x,
                    y: player.y,
                    facing: player.facing,
                    health: player.health,
                });
            }
        }
        snapshot
            .shots
            .extend(world.shots().iter().map(|shot| SeenShot {
                shooter: shot.shooter,
                from: shot.from,
                direction: shot.direction,
                end: Some(shot.to),
                hit_player: matches!(shot.hit, crate::weapons::ShotHit::Player(_)),
            }));
        snapshot
            .charges
            .extend(world.charges().iter().map(|charge| SeenCharge {
                x: charge.x,
                y: charge.y,
                fuse: charge.fuse,
                friendly: false,
            }));
        snapshot.blasts.extend_from_slice(world.blasts());
        let walls = world.walls();
        snapshot.wall_changes.extend(
            walls
                .changed()
                .iter()
                .map(|&index| (index, walls.hit_points(index))),
        );
        self.ring.push_back(snapshot);
        if self.ring.len() > self.delay {
            if let Some(old) = self.shown.take() {
                self.spare.push(old);
            }
            let due = self.ring.pop_front();
            if let Some(due) = &due {
                for &(index, hit_points) in &due.wall_changes {
                    self.delayed_walls.set_hit_points(index, hit_points);
                }
            }
            self.shown = due;
        } else if let Some(old) = self.shown.take() {
            self.spare.push(old);
        }
    }

    /// What spectators see this tick.
    pub fn view(&self, view: &mut View) {
        view.clear();
        if let Some(shown) = &self.shown {
            view.players.extend_from_slice(&shown.players);
            view.shots.extend_from_slice(&shown.shots);
            view.charges.extend_from_slice(&shown.charges);
            view.blasts.extend_from_slice(&shown.blasts);
        }
    }

    /// Wall slices that changed in the tick spectators are shown.
    pub fn wall_changes(&self) -> &[(u32, u8)] {
        self.shown.as_ref().map_or(&[], |shown| &shown.wall_changes)
    }

    /// The walls as spectators see them.
    pub fn walls(&self) -> &Walls {
        &self.delayed_walls
    }

    /// The delayed position of a slot, if shown (for tests).
    pub fn shown_player(&self, slot: usize) -> Option<(i64, i64, Angle)> {
        self.shown.as_ref().and_then(|shown| {
            shown
                .players
                .iter()
                .find(|player| player.slot == slot)
                .map(|player| (player.x, player.y, player.facing))
        })
    }
}
