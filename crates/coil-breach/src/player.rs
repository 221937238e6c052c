//! Players: position, facing, health, ammo, the three speeds and their noise, movement with
//! collision against intact slices and the map edge.
//!
//! Movement is integer sub-pixels per tick and depends only on the intent (direction and
//! speed) — a client cannot say where it is, only where it wants to go, so speed hacks and
//! teleports cannot be expressed. A client predicting its own movement runs exactly
//! [`step_movement`] with the constants of the init frame.

use crate::map::Team;
use crate::math::Angle;
use crate::walls::Walls;

/// Half the side of a player's collision box in sub-pixels (4.5 px: a player is 9 px wide,
/// so it fits through a one-cell (10 px, five-slice) gap with a pixel to spare).
pub const PLAYER_HALF_SUB: i64 = 36;
/// Radius of the circle bullets hit, in sub-pixels (5 px).
pub const PLAYER_HIT_RADIUS_SUB: i64 = 40;
pub const MAX_HEALTH: u8 = 100;
/// Breaching charges a player carries per life.
pub const CHARGES_PER_LIFE: u8 = 2;
/// The longest single collision sub-step (half a slice), so a fast mover never tunnels
/// through a one-slice wall.
const MOVE_SUB_STEP: i64 = 8;

/// Movement speed, the trade between getting there and being heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Speed {
    Sneak = 0,
    Walk = 1,
    Run = 2,
}

impl Speed {
    pub fn from_index(index: u8) -> Option<Speed> {
        match index {
            0 => Some(Speed::Sneak),
            1 => Some(Speed::Walk),
            2 => Some(Speed::Run),
            _ => None,
        }
    }

    /// Sub-pixels per tick along an axis (30 px/s, 60 px/s, 97.5 px/s at 30 Hz).
    pub fn sub_per_tick(self) -> i64 {
        match self {
            Speed::Sneak => 8,
            Speed::Walk => 16,
            Speed::Run => 26,
        }
    }

    /// How far a footstep carries, in pixels.
    pub fn noise_radius_px(self) -> i64 {
        match self {
            Speed::Sneak => 24,
            Speed::Walk => 110,
            Speed::Run => 190,
        }
    }

    /// Ticks between two footsteps while moving.
    pub fn footstep_interval(self) -> u16 {
        match self {
            Speed::Sneak => 16,
            Speed::Walk => 11,
            Speed::Run => 8,
        }
    }
}

/// The unit step of a move direction `0..=8` (0 = stand still, 1 = +x then clockwise on
/// screen in 45° steps), scaled by 256 (diagonals by 181 ≈ 256/√2).
pub fn direction_step(direction: u8) -> (i64, i64) {
    match direction {
        1 => (256, 0),
        2 => (181, 181),
        3 => (0, 256),
        4 => (-181, 181),
        5 => (-256, 0),
        6 => (-181, -181),
        7 => (0, -256),
        8 => (181, -181),
        _ => (0, 0),
    }
}

/// Moves a box from `(x, y)` by one tick of `direction` at `speed`, sliding along walls; the
/// reference movement shared by the server and a predicting client.
pub fn step_movement(walls: &Walls, (x, y): (i64, i64), direction: u8, speed: Speed) -> (i64, i64) {
    let (unit_x, unit_y) = direction_step(direction);
    let total_x = unit_x * speed.sub_per_tick() / 256;
    let total_y = unit_y * speed.sub_per_tick() / 256;
    let (mut x, mut y) = (x, y);
    let steps = (total_x.abs().max(total_y.abs()) + MOVE_SUB_STEP - 1) / MOVE_SUB_STEP;
    let (mut left_x, mut left_y) = (total_x, total_y);
    for _ in 0..steps {
        let step_x = left_x.clamp(-MOVE_SUB_STEP, MOVE_SUB_STEP);
        if step_x != 0 {
            if walls.box_blocked(x + step_x, y, PLAYER_HALF_SUB) {
                left_x = 0;
            } else {
                x += step_x;
                left_x -= step_x;
            }
        }
        let step_y = left_y.clamp(-MOVE_SUB_STEP, MOVE_SUB_STEP);
        if step_y != 0 {
            if walls.box_blocked(x, y + step_y, PLAYER_HALF_SUB) {
                left_y = 0;
            } else {
                y += step_y;
                left_y -= step_y;
            }
        }
    }
    (x, y)
}

/// One player's body in the world (humans and bots alike).
#[derive(Debug, Clone)]
pub struct Player {
    pub team: Team,
    /// Bumped each time a new occupant takes this slot, so a client never mistakes a
    /// newcomer for the player it held before.
    pub generation: u32,
    pub x: i64,
    pub y: i64,
    pub facing: Angle,
    pub health: u8,
    pub alive: bool,
    /// Ticks until respawn while dead.
    pub respawn_in: u16,
    pub ammo: u8,
    /// Ticks until the reload finishes (0 = not reloading).
    pub reload_in: u8,
    /// Ticks until the weapon may fire again.
    pub fire_cooldown: u8,
    pub charges: u8,
    /// Whether fire was held in the previous applied intent (to tell presses from holds).
    pub fire_was_held: bool,
    pub ticks_to_footstep: u16,
    /// The tick each other slot last damaged this player (0 = never), for assists.
    pub damaged_by_at: [u64; crate::MAX_SLOTS],
    pub kills: u32,
    pub deaths: u32,
    pub assists: u32,
    /// How many times this body has spawned (a client is told its facing again on each).
    pub spawns: u32,
}

impl Player {
    pub fn new(team: Team, generation: u32) -> Player {
        Player {
            team,
            generation,
            x: 0,
            y: 0,
            facing: Angle(0),
            health: 0,
            alive: false,
            respawn_in: 0,
            ammo: 0,
            reload_in: 0,
            fire_cooldown: 0,
            charges: 0,
            fire_was_held: false,
            ticks_to_footstep: 0,
            damaged_by_at: [0; crate::MAX_SLOTS],
            kills: 0,
            deaths: 0,
            assists: 0,
            spawns: 0,
        }
    }

    pub fn position(&self) -> (i64, i64) {
        (self.x, self.y)
    }

    /// Puts the player back in the game at `(x, y)` with a full loadout.
    pub fn spawn_at(&mut self, x: i64, y: i64, facing: Angle) {
        self.x = x;
        self.y = y;
        self.facing = facing;
        self.health = MAX_HEALTH;
        self.alive = true;
        self.respawn_in = 0;
        self.ammo = crate::weapons::MAGAZINE;
        self.reload_in = 0;
        self.fire_cooldown = 0;
        self.charges = CHARGES_PER_LIFE;
        self.fire_was_held = false;
        self.ticks_to_footstep = 0;
        self.damaged_by_at = [0; crate::MAX_SLOTS];
        self.spawns = self.spawns.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Map;

    #[test]
    fn speeds_are_ordered_in_pace_and_noise() {
        assert!(Speed::Sneak.sub_per_tick() < Speed::Walk.sub_per_tick());
        assert!(Speed::Walk.sub_per_tick() < Speed::Run.sub_per_tick());
        assert!(Speed::Sneak.noise_radius_px() < Speed::Walk.noise_radius_px());
        assert!(Speed::Walk.noise_radius_px() < Speed::Run.noise_radius_px());
        assert_eq!(Speed::from_index(3), None);
    }

    #[test]
    fn movement_covers_the_speed_and_stops_at_walls_and_the_edge() {
        let walls = Walls::from_map(&Map::built_in(1).unwrap());
        let start = (400, 400);
        assert_eq!(step_movement(&walls, start, 1, Speed::Run), (426, 400));
        assert_eq!(step_movement(&walls, start, 0, Speed::Run), start);
        let diagonal = step_movement(&walls, start, 2, Speed::Walk);
        assert_eq!(diagonal, (411, 411));
        // Walking west forever ends against the steel border (slices 0..5 = 80 sub).
        let mut position = start;
        for _ in 0..100 {
            position = step_movement(&walls, position, 5, Speed::Run);
        }
        assert_eq!(position, (80 + PLAYER_HALF_SUB, 400));
        // Sliding: pressing north-west against the west wall still moves north.
        let slid = step_movement(&walls, position, 6, Speed::Run);
        assert_eq!(slid.0, position.0);
        assert!(slid.1 < position.1);
    }
}
