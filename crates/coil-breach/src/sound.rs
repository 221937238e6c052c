//! Sounds: footsteps by speed, shots, reloads, charges and blasts reach players within a
//! radius even without sight, as a direction and a loudness, muffled by intact walls between.
//!
//! What a listener learns is deliberately coarse: the direction is quantized to
//! [`DIRECTION_STEPS`] per turn and the loudness to [`LOUDNESS_LEVELS`] levels, so a sound
//! tells roughly where to look, never the emitter's exact position. Sounds from players the
//! listener already sees (and from itself and teammates, who are always seen) are not sent:
//! the picture already says it.

use crate::math::Angle;
use crate::world::World;

/// Directions per turn a sound can come from (5.6° steps).
pub const DIRECTION_STEPS: u16 = 64;
/// Loudness levels `1..=7` (0 = inaudible, not sent).
pub const LOUDNESS_LEVELS: u8 = 7;
/// Each intact slice between emitter and listener keeps this share of the loudness (a
/// five-slice wall leaves ~44%).
const MUFFLE_PER_SLICE: f64 = 0.85;
/// Beyond this many intact slices a sound is considered fully muffled.
const MUFFLE_CAP: u32 = 24;
/// Most sounds one listener receives per tick (the loudest are kept).
pub const MAX_SOUNDS_PER_VIEW: usize = 8;

/// What made a sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoundKind {
    FootstepSneak = 0,
    FootstepWalk = 1,
    FootstepRun = 2,
    Shot = 3,
    Reload = 4,
    ChargePlaced = 5,
    Blast = 6,
}

impl SoundKind {
    pub fn from_index(index: u8) -> Option<SoundKind> {
        Some(match index {
            0 => SoundKind::FootstepSneak,
            1 => SoundKind::FootstepWalk,
            2 => SoundKind::FootstepRun,
            3 => SoundKind::Shot,
            4 => SoundKind::Reload,
            5 => SoundKind::ChargePlaced,
            6 => SoundKind::Blast,
            _ => return None,
        })
    }

    /// How far the sound carries in sub-pixels when nothing is in the way.
    pub fn radius_sub(self) -> i64 {
        8 * match self {
            SoundKind::FootstepSneak => crate::player::Speed::Sneak.noise_radius_px(),
            SoundKind::FootstepWalk => crate::player::Speed::Walk.noise_radius_px(),
            SoundKind::FootstepRun => crate::player::Speed::Run.noise_radius_px(),
            SoundKind::Shot => 300,
            SoundKind::Reload => 60,
            SoundKind::ChargePlaced => 80,
            SoundKind::Blast => 450,
        }
    }
}

/// A sound made in the world this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoundSource {
    pub kind: SoundKind,
    /// The player who made it (blasts: the charge's owner).
    pub emitter: usize,
    pub x: i64,
    pub y: i64,
}

/// A sound as one listener hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeardSound {
    pub kind: SoundKind,
    /// `0..DIRECTION_STEPS`, clockwise on screen from +x.
    pub direction: u8,
    /// `1..=LOUDNESS_LEVELS`.
    pub loudness: u8,
    /// At least one intact wall slice lies between the emitter and the listener, so the
    /// client plays it through a low-pass filter. This says no more than the loudness
    /// already does (walls lower it), but the client cannot tell distance from walls apart
    /// without it.
    pub muffled: bool,
}

/// The loudness level `0..=7` of a sound of `radius` at `distance`, muffled by `slices`.
pub fn loudness(distance_squared: i64, radius: i64, slices: u32) -> u8 {
    if distance_squared >= radius * radius || slices >= MUFFLE_CAP {
        return 0;
    }
    let distance = (distance_squared as f64).sqrt();
    let mut level = 1.0 - distance / radius as f64;
    for _ in 0..slices {
        level *= MUFFLE_PER_SLICE;
    }
    (level * f64::from(LOUDNESS_LEVELS) + 0.5)
        .floor()
        .min(f64::from(LOUDNESS_LEVELS)) as u8
}

/// Fills `out` with what the player in `listener` hears this tick; `seen` is its visible-slot
/// bit set (sounds of seen players are skipped).
pub fn hear(world: &World, listener: usize, seen: u16, out: &mut Vec<HeardSound>) {
    out.clear();
    let Some(me) = world.player(listener) else {
        return;
    };
    let (x, y) = me.position();
    for source in world.sounds() {
        if source.emitter == listener {
            continue;
        }
        let emitter_seen = seen & (1 << source.emitter) != 0;
        // A blast is heard even from a seen owner: it happens at the charge, not at them.
        if emitter_seen && source.kind != SoundKind::Blast {
            continue;
        }
        let (dx, dy) = (source.x - x, source.y - y);
        let distance_squared = dx * dx + dy * dy;
        let radius = source.kind.radius_sub();
        if distance_squared >= radius * radius {
            continue;
        }
        let slices = world
            .walls()
            .count_intact((x, y), (source.x, source.y), MUFFLE_CAP);
        let level = loudness(distance_squared, radius, slices);
        if level == 0 {
            continue;
        }
        let angle = Angle::of_vector(dx as f64, dy as f64);
        let step = 65536 / u32::from(DIRECTION_STEPS);
        let direction = ((u32::from(angle.0) + step / 2) / step % u32::from(DIRECTION_STEPS)) as u8;
        let heard = HeardSound {
            kind: source.kind,
            direction,
            loudness: level,
            muffled: slices > 0,
        };
        if out.len() < MAX_SOUNDS_PER_VIEW {
            out.push(heard);
        } else if let Some(quietest) = out.iter_mut().min_by_key(|sound| sound.loudness)
            && quietest.loudness < level
        {
            *quietest = heard;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loudness_falls_with_distance_and_walls() {
        let radius = 1000;
        assert_eq!(loudness(0, radius, 0), LOUDNESS_LEVELS);
        assert!(loudness(500 * 500, radius, 0) < LOUDNESS_LEVELS);
        assert!(loudness(500 * 500, radius, 5) < loudness(500 * 500, radius, 0));
        assert_eq!(loudness(radius * radius, radius, 0), 0);
        assert_eq!(loudness(0, radius, MUFFLE_CAP), 0);
    }

    #[test]
    fn every_kind_round_trips_its_index() {
        for index in 0..7 {
            assert_eq!(SoundKind::from_index(index).unwrap() as u8, index);
        }
        assert_eq!(SoundKind::from_index(7), None);
    }
}
