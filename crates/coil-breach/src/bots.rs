//! Bots that fill missing seats and drive load tests. A bot decides an [`Intent`] from what
//! its body could know — its own state, its teammates, and enemies that pass the same
//! [`vision::visible_slots`] query the encoder uses (no wallhack bots) — and the game feeds
//! that intent through the same byte path as a human's input.
//!
//! Behaviour: walk a breadth-first path over map cells toward a waypoint (usually the enemy's
//! spawn zone or a random open cell), run while travelling; on sight of an enemy, turn toward
//! it at a human rate (never fast enough to trip the aim-snap flag), walk, and fire once the
//! aim is close and a reaction delay has passed; reload when empty or idle; when stuck, try a
//! breaching charge now and then.

use crate::MAX_SLOTS;
use crate::input::Intent;
use crate::math::Angle;
use crate::player::{PLAYER_HALF_SUB, Speed};
use crate::rng::BreachRng;
use crate::vision;
use crate::weapons;
use crate::world::World;

/// The fastest a bot turns per tick (about 11°, i.e. 330°/s): quick, but a third of the
/// aim-snap threshold.
pub const BOT_TURN_PER_TICK: i32 = 2000;
/// Ticks a bot needs after first seeing an enemy before it fires (200 ms).
const REACTION_TICKS: u16 = 6;
/// Fire when the facing is this close to the target (about 4°).
const FIRE_ERROR: i32 = 700;
/// Recompute the path this often even when nothing changed (walls break).
const REPATH_TICKS: u16 = 120;
const UNREACHABLE: u16 = u16::MAX;

/// One bot's memory between ticks.
#[derive(Debug, Clone)]
pub struct BotBrain {
    rng: BreachRng,
    sequence: u32,
    waypoint: (u32, u32),
    distances: Vec<u16>,
    ticks_to_repath: u16,
    last_position: (i64, i64),
    stuck_ticks: u16,
    target: Option<usize>,
    seen_for: u16,
    idle_ticks: u16,
    speed: Speed,
    facing: Angle,
}

impl BotBrain {
    pub fn new(seed: u64) -> BotBrain {
        BotBrain {
            rng: BreachRng::new(seed),
            sequence: 0,
            waypoint: (0, 0),
            distances: Vec::new(),
            ticks_to_repath: 0,
            last_position: (0, 0),
            stuck_ticks: 0,
            target: None,
            seen_for: 0,
            idle_ticks: 0,
            speed: Speed::Run,
            facing: Angle(0),
        }
    }

    pub(crate) fn hash_into(&self, hasher: &mut crate::rng::StateHasher) {
        hasher.add(self.rng.state());
        hasher.add(u64::from(self.sequence) | u64::from(self.waypoint.0) << 32);
        hasher.add(u64::from(self.waypoint.1) | u64::from(self.stuck_ticks) << 32);
    }

    /// Decides this tick's intent for the body in `slot`.
    pub fn think(&mut self, world: &World, slot: usize) -> Intent {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let Some(me) = world.player(slot) else {
            return Intent {
                sequence: self.sequence,
                ..Intent::idle(Angle(0))
            };
        };
        if !me.alive {
            self.target = None;
            self.distances.clear();
            return Intent {
                sequence: self.sequence,
                ..Intent::idle(me.facing)
            };
        }
        self.facing = me.facing;
        let position = me.position();
        // Enemies this body can see, nearest first.
        let seen = vision::visible_slots(world, slot);
        let mut nearest: Option<(i64, usize)> = None;
        for other in 0..MAX_SLOTS {
            if seen & (1 << other) == 0 {
                continue;
            }
            let Some(enemy) = world.player(other) else {
                continue;
            };
            if enemy.team == me.team {
                continue;
            }
            let (dx, dy) = (enemy.x - position.0, enemy.y - position.1);
            let distance = dx * dx + dy * dy;
            if nearest.is_none_or(|(best, _)| distance < best) {
                nearest = Some((distance, other));
            }
        }
        let target = nearest.map(|(_, slot)| slot);
        if target.is_some() && target == self.target {
            self.seen_for = self.seen_for.saturating_add(1);
        } else {
            self.seen_for = 0;
        }
        self.target = target;

        let mut intent = Intent {
            sequence: self.sequence,
            ..Intent::idle(me.facing)
        };
        if position == self.last_position {
            self.stuck_ticks = self.stuck_ticks.saturating_add(1);
        } else {
            self.stuck_ticks = 0;
        }
        self.last_position = position;

        if let Some(enemy) = target.and_then(|slot| world.player(slot)) {
            self.idle_ticks = 0;
            let toward =
                Angle::of_vector((enemy.x - position.0) as f64, (enemy.y - position.1) as f64);
            let error = me.facing.delta_to(toward);
            let turn = error.clamp(-BOT_TURN_PER_TICK, BOT_TURN_PER_TICK);
            intent.facing = me.facing.offset(turn + self.rng.symmetric(60));
            let aim_error = intent.facing.delta_to(toward).abs();
            intent.fire = aim_error <= FIRE_ERROR
                && self.seen_for >= REACTION_TICKS
                && me.reload_in == 0
                && me.ammo > 0;
            intent.reload = me.ammo == 0;
            // Strafe a little while engaging.
            intent.speed = Speed::Walk;
            intent.direction = if self.rng.below(3) == 0 {
                0
            } else {
                let side = if self.rng.below(2) == 0 { 2 } else { -2 };
                direction_of(toward.offset(side * 8192))
            };
            return intent;
        }

        self.idle_ticks = self.idle_ticks.saturating_add(1);
        if me.ammo < weapons::MAGAZINE / 3 && self.idle_ticks > 30 && me.reload_in == 0 {
            intent.reload = true;
        }
        // Travel along the path.
        self.ticks_to_repath = self.ticks_to_repath.saturating_sub(1);
        let cell_sub = i64::from(world.map().cell_pixels) * 8;
        let here = (
            (position.0 / cell_sub) as u32,
            (position.1 / cell_sub) as u32,
        );
        if self.distances.is_empty() || here == self.waypoint || self.ticks_to_repath == 0 {
            if self.distances.is_empty() || here == self.waypoint {
                self.pick_waypoint(world, me.team);
            }
            self.plan(world);
        }
        if self.stuck_ticks > 20 {
            if me.charges > 0 && self.rng.below(4) == 0 {
                intent.use_charge = true;
            }
            self.pick_waypoint(world, me.team);
            self.plan(world);
            self.stuck_ticks = 0;
        }
        if self.rng.below(200) == 0 {
            self.speed = match self.rng.below(5) {
                0 => Speed::Sneak,
                1 | 2 => Speed::Walk,
                _ => Speed::Run,
            };
        }
        intent.speed = self.speed;
        if let Some(next) = self.next_cell(world, here) {
            let target = (
                i64::from(next.0) * cell_sub + cell_sub / 2,
                i64::from(next.1) * cell_sub + cell_sub / 2,
            );
            let (dx, dy) = (target.0 - position.0, target.1 - position.1);
            let toward = Angle::of_vector(dx as f64, dy as f64);
            // Steer on each axis until within a pixel of the next cell's centre, so a body
            // lines up with a one-cell door instead of catching its edge.
            let axis = |delta: i64| if delta.abs() > 8 { delta.signum() } else { 0 };
            intent.direction = match (axis(dx), axis(dy)) {
                (0, 0) => direction_of(toward),
                (sx, sy) => direction_of(Angle::of_vector(sx as f64, sy as f64)),
            };
            let error = me.facing.delta_to(toward);
            intent.facing = me
                .facing
                .offset(error.clamp(-BOT_TURN_PER_TICK / 2, BOT_TURN_PER_TICK / 2));
        }
        intent
    }

    fn pick_waypoint(&mut self, world: &World, team: crate::map::Team) {
        let map = world.map();
        if self.rng.below(2) == 0 {
            let spawns = &map.spawns[team.other().index()];
            self.waypoint = spawns[self.rng.below(spawns.len() as u32) as usize];
        } else {
            self.waypoint = (
                1 + self.rng.below(map.width_cells.saturating_sub(2)),
                1 + self.rng.below(map.height_cells.saturating_sub(2)),
            );
        }
    }

    /// Breadth-first distances (in cells) from the waypoint over cells a body fits in.
    fn plan(&mut self, world: &World) {
        self.ticks_to_repath = REPATH_TICKS;
        let map = world.map();
        let (width, height) = (map.width_cells as usize, map.height_cells as usize);
        self.distances.clear();
        self.distances.resize(width * height, UNREACHABLE);
        let goal = (self.waypoint.1 as usize) * width + self.waypoint.0 as usize;
        if goal >= self.distances.len() || !walkable(world, self.waypoint.0, self.waypoint.1) {
            return;
        }
        let mut queue = std::collections::VecDeque::with_capacity(width * height);
        self.distances[goal] = 0;
        queue.push_back(goal);
        while let Some(index) = queue.pop_front() {
            let (x, y) = ((index % width) as i64, (index / width) as i64);
            let next_distance = self.distances[index] + 1;
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                    continue;
                }
                let neighbour = ny as usize * width + nx as usize;
                if self.distances[neighbour] != UNREACHABLE
                    || !walkable(world, nx as u32, ny as u32)
                {
                    continue;
                }
                self.distances[neighbour] = next_distance;
                queue.push_back(neighbour);
            }
        }
    }

    fn next_cell(&self, world: &World, here: (u32, u32)) -> Option<(u32, u32)> {
        let width = world.map().width_cells as i64;
        let height = world.map().height_cells as i64;
        let distance_at = |x: i64, y: i64| -> u16 {
            if x < 0 || y < 0 || x >= width || y >= height {
                return UNREACHABLE;
            }
            self.distances
                .get((y * width + x) as usize)
                .copied()
                .unwrap_or(UNREACHABLE)
        };
        let (x, y) = (i64::from(here.0), i64::from(here.1));
        let mut best = (distance_at(x, y), None);
        for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            let distance = distance_at(x + dx, y + dy);
            if distance < best.0 {
                best = (distance, Some(((x + dx) as u32, (y + dy) as u32)));
            }
        }
        best.1
    }
}

fn walkable(world: &World, x: u32, y: u32) -> bool {
    let cell_sub = i64::from(world.map().cell_pixels) * 8;
    !world.walls().box_blocked(
        i64::from(x) * cell_sub + cell_sub / 2,
        i64::from(y) * cell_sub + cell_sub / 2,
        PLAYER_HALF_SUB,
    )
}

/// The nearest of the eight move directions (1 = +x, clockwise on screen).
pub fn direction_of(angle: Angle) -> u8 {
    ((u32::from(angle.0) + 4096) / 8192 % 8 + 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_round_to_the_nearest_eighth() {
        assert_eq!(direction_of(Angle(0)), 1);
        assert_eq!(direction_of(Angle(8192)), 2);
        assert_eq!(direction_of(Angle(16384)), 3);
        assert_eq!(direction_of(Angle(65535)), 1);
        assert_eq!(direction_of(Angle(49152)), 7);
    }
}
