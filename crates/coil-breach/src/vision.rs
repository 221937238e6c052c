//! What each player may know: the vision query, and the per-viewer [`View`] the encoder is
//! built from.
//!
//! A player sees a point when it lies within [`NEAR_RADIUS_SUB`] of its centre, or within
//! [`VIEW_RANGE_SUB`] and inside its cone ([`CONE_HALF_ANGLE`] either side of its facing), and
//! no intact wall slice lies on the segment between its centre and the point (destroyed
//! slices are open, so holes let sight through). Teammates are always known.
//!
//! **This module is the only way the encoder learns about other players, shots, charges and
//! blasts**: `encode.rs` takes a [`View`], which [`build_view`] fills with copies of exactly
//! what passed [`can_see`] (and sounds, which carry only direction and a coarse loudness).
//! The encoder never holds a `&World`, so it cannot send what is not in view — that is the
//! no-wallhack guarantee, and the property tests in `tests/vision.rs` hold [`can_see`] to a
//! brute-force line-of-sight check.

use crate::MAX_SLOTS;
use crate::math::{Angle, cos_turn};
use crate::player::Player;
use crate::sound::{HeardSound, hear};
use crate::walls::Walls;
use crate::world::World;

/// Half the opening of the vision cone (50°, in 1/65536 turn).
pub const CONE_HALF_ANGLE: u16 = 9102;
/// How far the cone reaches (230 px, in sub-pixels).
pub const VIEW_RANGE_SUB: i64 = 230 * 8;
/// Everything this close is seen whatever the facing, if in line of sight (28 px).
pub const NEAR_RADIUS_SUB: i64 = 28 * 8;

/// Whether a viewer at `eye` facing `facing` sees `point` (all sub-pixels).
pub fn can_see(walls: &Walls, eye: (i64, i64), facing: Angle, point: (i64, i64)) -> bool {
    in_view_shape(eye, facing, point) && walls.line_clear(eye, point)
}

/// The geometric half of [`can_see`]: inside the near circle or the cone, ignoring walls.
pub fn in_view_shape(eye: (i64, i64), facing: Angle, point: (i64, i64)) -> bool {
    let (dx, dy) = (point.0 - eye.0, point.1 - eye.1);
    let distance_squared = dx * dx + dy * dy;
    if distance_squared <= NEAR_RADIUS_SUB * NEAR_RADIUS_SUB {
        return true;
    }
    if distance_squared > VIEW_RANGE_SUB * VIEW_RANGE_SUB {
        return false;
    }
    let (ux, uy) = facing.unit();
    let dot = dx as f64 * ux + dy as f64 * uy;
    dot > 0.0 && dot >= (distance_squared as f64).sqrt() * cos_turn(CONE_HALF_ANGLE)
}

/// Whether `viewer` sees the point (its own position and facing).
pub fn player_sees(walls: &Walls, viewer: &Player, point: (i64, i64)) -> bool {
    viewer.alive && can_see(walls, viewer.position(), viewer.facing, point)
}

/// Another player as a viewer knows it this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenPlayer {
    pub slot: usize,
    pub generation: u32,
    pub x: i64,
    pub y: i64,
    pub facing: Angle,
    pub health: u8,
}

/// A shot a viewer sees: its shooter is in view (or is the viewer or a teammate). The end
/// point is known only when it is itself in view, so a tracer never reveals where an unseen
/// enemy was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenShot {
    pub shooter: usize,
    pub from: (i64, i64),
    pub direction: Angle,
    pub end: Option<(i64, i64)>,
    pub hit_player: bool,
}

/// A charge or blast a viewer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenCharge {
    pub x: i64,
    pub y: i64,
    pub fuse: u16,
    pub friendly: bool,
}

/// Everything one viewer is allowed to know about others this tick.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Visible other players, ascending by slot.
    pub players: Vec<SeenPlayer>,
    pub shots: Vec<SeenShot>,
    pub charges: Vec<SeenCharge>,
    pub blasts: Vec<(i64, i64)>,
    pub sounds: Vec<HeardSound>,
}

impl View {
    pub fn clear(&mut self) {
        self.players.clear();
        self.shots.clear();
        self.charges.clear();
        self.blasts.clear();
        self.sounds.clear();
    }
}

/// Which slots `viewer` sees this tick, as a bit set (teammates always; itself never).
pub fn visible_slots(world: &World, viewer: usize) -> u16 {
    let Some(me) = world.player(viewer) else {
        return 0;
    };
    let mut seen = 0u16;
    for slot in 0..MAX_SLOTS {
        if slot == viewer {
            continue;
        }
        let Some(other) = world.player(slot) else {
            continue;
        };
        if !other.alive {
            continue;
        }
        if other.team == me.team || player_sees(world.walls(), me, other.position()) {
            seen |= 1 << slot;
        }
    }
    seen
}

/// Fills `view` with what the player in `viewer` may know this tick.
pub fn build_view(world: &World, viewer: usize, view: &mut View) {
    view.clear();
    let Some(me) = world.player(viewer) else {
        return;
    };
    let walls = world.walls();
    let seen = visible_slots(world, viewer);
    for slot in 0..MAX_SLOTS {
        if seen & (1 << slot) == 0 {
            continue;
        }
        if let Some(other) = world.player(slot) {
            view.players.push(SeenPlayer {
                slot,
                generation: other.generation,
                x: other.x,
                y: other.y,
                facing: other.facing,
                health: other.health,
            });
        }
    }
    for shot in world.shots() {
        if shot.shooter != viewer && seen & (1 << shot.shooter) == 0 {
            continue;
        }
        // Even the viewer's own tracer ends where it can see: a shot that stopped on an enemy
        // beyond view range must not mark that enemy.
        let end_seen = player_sees(walls, me, shot.to);
        view.shots.push(SeenShot {
            shooter: shot.shooter,
            from: shot.from,
            direction: shot.direction,
            end: end_seen.then_some(shot.to),
            hit_player: end_seen && matches!(shot.hit, crate::weapons::ShotHit::Player(_)),
        });
    }
    for charge in world.charges() {
        let friendly = charge.team == me.team;
        if friendly || player_sees(walls, me, (charge.x, charge.y)) {
            view.charges.push(SeenCharge {
                x: charge.x,
                y: charge.y,
                fuse: charge.fuse,
                friendly,
            });
        }
    }
    for blast in world.blasts() {
        if player_sees(walls, me, *blast) {
            view.blasts.push(*blast);
        }
    }
    hear(world, viewer, seen, &mut view.sounds);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Map;

    #[test]
    fn the_cone_the_near_circle_and_range() {
        let eye = (1000, 1000);
        // Facing +x: ahead is seen, behind is not (unless near).
        assert!(in_view_shape(eye, Angle(0), (1500, 1000)));
        assert!(!in_view_shape(eye, Angle(0), (500, 1000)));
        assert!(in_view_shape(eye, Angle(0), (1000 - 100, 1000)));
        // Just inside and just outside 50° at 1000 sub.
        let inside = Angle(CONE_HALF_ANGLE - 100).unit();
        let outside = Angle(CONE_HALF_ANGLE + 100).unit();
        let at =
            |(ux, uy): (f64, f64)| (eye.0 + (ux * 1000.0) as i64, eye.1 + (uy * 1000.0) as i64);
        assert!(in_view_shape(eye, Angle(0), at(inside)));
        assert!(!in_view_shape(eye, Angle(0), at(outside)));
        // Beyond range.
        assert!(!in_view_shape(
            eye,
            Angle(0),
            (1000 + VIEW_RANGE_SUB + 1, 1000)
        ));
    }

    #[test]
    fn walls_block_sight_and_holes_open_it() {
        let map = Map::built_in(1).unwrap();
        let mut walls = Walls::from_map(&map);
        // Across the warehouse's west wall (cell x = 22) at row 13.
        let eye = (20 * 80, 13 * 80 + 40);
        let target = (25 * 80, 13 * 80 + 40);
        assert!(!can_see(&walls, eye, Angle(0), target));
        // Shoot a one-slice-high tunnel through the five slices of the wall.
        let row = (13 * 80 + 40) / 16;
        for column in 22 * 5..23 * 5 {
            let index = (row as u32) * walls.width() + column;
            walls.damage(index, 255);
        }
        assert!(can_see(&walls, eye, Angle(0), target));
        // A line a slice lower is still blocked.
        assert!(!can_see(
            &walls,
            (eye.0, eye.1 + 16),
            Angle(0),
            (target.0, target.1 + 16)
        ));
    }
}
