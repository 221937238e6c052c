//! The rifle (hitscan: fire rate, spread from the seeded generator, damage, range) and the
//! breaching charge (limited count, placed by "use", destroys breakable slices in a radius).
//!
//! A shot is a segment from the shooter's centre along its facing plus spread. It walks the
//! wall slices in order ([`Walls::first_intact`]) and tests every other living player's hit
//! circle; whichever comes first along the ray takes the hit: a player loses health, a slice
//! loses hit points (the ray stops there either way). Nothing here reads a clock: rates and
//! durations are ticks.

use crate::math::Angle;
use crate::player::{PLAYER_HIT_RADIUS_SUB, Player, Speed};
use crate::walls::Walls;

pub const MAGAZINE: u8 = 24;
/// Ticks between shots (7.5 shots per second at 30 Hz).
pub const FIRE_INTERVAL_TICKS: u8 = 4;
pub const RELOAD_TICKS: u8 = 60;
pub const PLAYER_DAMAGE: u8 = 25;
pub const WALL_DAMAGE: u8 = 25;
pub const RANGE_SUB: i64 = 320 * 8;
/// Ticks from placing a charge to its blast.
pub const CHARGE_FUSE_TICKS: u16 = 45;
/// Breakable slices within this radius of a blast are destroyed (16 px).
pub const CHARGE_BREACH_RADIUS_SUB: i64 = 16 * 8;
/// Players within this radius of a blast take damage, falling off with distance (30 px).
pub const CHARGE_DAMAGE_RADIUS_SUB: i64 = 30 * 8;
pub const CHARGE_MAX_DAMAGE: u8 = 90;
/// How far in front of the player a charge is placed (12 px).
pub const CHARGE_PLACE_DISTANCE_SUB: i64 = 12 * 8;

/// The most a shot strays from the facing, in 1/65536 turn, by movement speed (about 1°, 2°
/// and 5°): sneaking is accurate, running is not.
pub fn spread(speed: Speed, moving: bool) -> i32 {
    if !moving {
        return 120;
    }
    match speed {
        Speed::Sneak => 180,
        Speed::Walk => 360,
        Speed::Run => 900,
    }
}

/// What a shot hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShotHit {
    Nothing,
    /// A wall slice (None = the map edge).
    Wall(Option<u32>),
    Player(usize),
}

/// One resolved shot of this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    pub shooter: usize,
    pub from: (i64, i64),
    /// Where the ray stopped (sub-pixels).
    pub to: (i64, i64),
    pub direction: Angle,
    pub hit: ShotHit,
}

/// Where along the segment `from → from + (dx, dy)` (as a fraction) the ray first touches a
/// circle of `radius` around `centre`, if it does.
fn ray_circle(from: (i64, i64), delta: (f64, f64), centre: (i64, i64), radius: i64) -> Option<f64> {
    let (fx, fy) = ((from.0 - centre.0) as f64, (from.1 - centre.1) as f64);
    let (dx, dy) = delta;
    let a = dx * dx + dy * dy;
    if a == 0.0 {
        return None;
    }
    let b = 2.0 * (fx * dx + fy * dy);
    let c = fx * fx + fy * fy - (radius * radius) as f64;
    let discriminant = b * b - 4.0 * a * c;
    if discriminant < 0.0 {
        return None;
    }
    let root = discriminant.sqrt();
    let near = (-b - root) / (2.0 * a);
    let far = (-b + root) / (2.0 * a);
    if far < 0.0 || near > 1.0 {
        return None;
    }
    Some(near.max(0.0))
}

/// Traces one shot from `shooter` in `direction`; `can_hit(slot)` says which players the
/// bullet interacts with (friendly fire off lets it pass teammates).
pub fn trace_shot(
    walls: &Walls,
    players: &[Option<Player>],
    shooter: usize,
    direction: Angle,
    can_hit: impl Fn(usize) -> bool,
) -> Shot {
    let from = players[shooter].as_ref().map_or((0, 0), Player::position);
    let (ux, uy) = direction.unit();
    let delta = (ux * RANGE_SUB as f64, uy * RANGE_SUB as f64);
    let end = (
        from.0 + delta.0.round() as i64,
        from.1 + delta.1.round() as i64,
    );
    let wall = walls.first_intact(from, end);
    let mut best_t = wall.map_or(1.0, |(_, t)| t);
    let mut hit = match wall {
        Some((index, _)) => ShotHit::Wall(index),
        None => ShotHit::Nothing,
    };
    for (slot, player) in players.iter().enumerate() {
        let Some(player) = player else { continue };
        if slot == shooter || !player.alive || !can_hit(slot) {
            continue;
        }
        if let Some(t) = ray_circle(from, delta, player.position(), PLAYER_HIT_RADIUS_SUB)
            && t < best_t
        {
            best_t = t;
            hit = ShotHit::Player(slot);
        }
    }
    let to = (
        from.0 + (delta.0 * best_t).round() as i64,
        from.1 + (delta.1 * best_t).round() as i64,
    );
    Shot {
        shooter,
        from,
        to,
        direction,
        hit,
    }
}

/// A placed breaching charge, counting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub owner: usize,
    pub owner_generation: u32,
    pub team: crate::map::Team,
    pub x: i64,
    pub y: i64,
    pub fuse: u16,
}

/// Blast damage at `distance` sub-pixels from a charge (0 outside the radius).
pub fn blast_damage(distance_squared: i64) -> u8 {
    let radius = CHARGE_DAMAGE_RADIUS_SUB;
    if distance_squared > radius * radius {
        return 0;
    }
    let distance = crate::math::isqrt(distance_squared);
    let min = 20i64;
    let max = i64::from(CHARGE_MAX_DAMAGE);
    (max - (max - min) * distance / radius) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Map, Team};

    fn two_players(a: (i64, i64), b: (i64, i64)) -> Vec<Option<Player>> {
        let mut first = Player::new(Team::A, 1);
        first.spawn_at(a.0, a.1, Angle(0));
        let mut second = Player::new(Team::B, 1);
        second.spawn_at(b.0, b.1, Angle(0));
        vec![Some(first), Some(second)]
    }

    #[test]
    fn a_shot_hits_the_first_player_on_its_ray() {
        let walls = Walls::from_map(&Map::built_in(1).unwrap());
        let players = two_players((400, 200), (800, 200));
        let shot = trace_shot(&walls, &players, 0, Angle(0), |_| true);
        assert_eq!(shot.hit, ShotHit::Player(1));
        assert_eq!(shot.to, (800 - PLAYER_HIT_RADIUS_SUB, 200));
        // Friendly fire off: the bullet passes and stops at something else.
        let passed = trace_shot(&walls, &players, 0, Angle(0), |_| false);
        assert_ne!(passed.hit, ShotHit::Player(1));
        // Aimed away, it misses.
        let missed = trace_shot(&walls, &players, 0, Angle(32768), |_| true);
        assert!(matches!(missed.hit, ShotHit::Wall(_)));
        assert_eq!(missed.to.0, 80, "stops at the steel border");
    }

    #[test]
    fn a_wall_in_front_takes_the_bullet() {
        let walls = Walls::from_map(&Map::built_in(1).unwrap());
        // The wood strip at cells x 12..=19, y 6: shoot down at it from y = 4.
        let players = two_players((14 * 80, 4 * 80), (14 * 80, 9 * 80));
        let shot = trace_shot(&walls, &players, 0, Angle(16384), |_| true);
        let ShotHit::Wall(Some(index)) = shot.hit else {
            panic!("expected a wall hit, got {:?}", shot.hit);
        };
        assert_eq!(walls.material(index), crate::walls::Material::Wood);
        assert_eq!(shot.to.1, 6 * 80);
    }

    #[test]
    fn blast_damage_falls_off_and_ends_at_the_radius() {
        assert_eq!(blast_damage(0), CHARGE_MAX_DAMAGE);
        let edge = CHARGE_DAMAGE_RADIUS_SUB;
        assert_eq!(blast_damage(edge * edge), 20);
        assert_eq!(blast_damage(edge * edge + 1), 0);
        assert!(blast_damage((edge / 2) * (edge / 2)) < CHARGE_MAX_DAMAGE);
    }
}
