//! Deterministic geometry: angles in 1/65536 turn, fixed-point positions in sub-pixels, and a
//! sine and arctangent built from IEEE-754 basic operations only.
//!
//! The simulation must produce the same `state_hash` on every machine for the same seed and
//! inputs (replays rely on it). `f64::sin`/`atan2` call the platform's libm, whose last bits
//! differ between systems, so this module computes them with fixed polynomials instead: `+`,
//! `-`, `*`, `/` and `sqrt` are correctly rounded by IEEE-754 and therefore identical
//! everywhere (Rust never fuses them into FMA on its own). Nothing here reads a clock or
//! allocates.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// Sub-pixels per logical pixel: positions are integers in 1/8 px.
pub const SUBPIXELS_PER_PIXEL: i32 = 8;

/// A direction in 1/65536 of a turn, counter-clockwise from +x with +y pointing *down* the
/// screen (so a positive angle turns clockwise on screen, as `atan2(dy, dx)` does in screen
/// coordinates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Angle(pub u16);

impl Angle {
    /// Radians of this angle in `[0, 2π)`.
    pub fn radians(self) -> f64 {
        f64::from(self.0) * (TAU / 65536.0)
    }

    /// The angle nearest to `radians` (any finite value; non-finite gives 0).
    pub fn from_radians(radians: f64) -> Angle {
        if !radians.is_finite() {
            return Angle(0);
        }
        let turns = (radians / TAU).rem_euclid(1.0);
        Angle(((turns * 65536.0).round() as u32 & 0xffff) as u16)
    }

    /// The unit vector `(cos, sin)` of this angle.
    pub fn unit(self) -> (f64, f64) {
        (cos_turn(self.0), sin_turn(self.0))
    }

    /// The signed difference `other - self` in 1/65536 turn, in `-32768..=32767`.
    pub fn delta_to(self, other: Angle) -> i32 {
        i32::from(other.0.wrapping_sub(self.0) as i16)
    }

    /// Adds a signed number of 1/65536 turns, wrapping.
    pub fn offset(self, delta: i32) -> Angle {
        Angle((i32::from(self.0) + delta).rem_euclid(65536) as u16)
    }

    /// The angle of the vector `(dx, dy)` (0 for the zero vector).
    pub fn of_vector(dx: f64, dy: f64) -> Angle {
        Angle::from_radians(atan2(dy, dx))
    }

    /// The same angle at 1/256 turn, as others' facings travel on the wire.
    pub fn to_byte(self) -> u8 {
        (self.0.wrapping_add(128) >> 8) as u8
    }

    pub fn from_byte(byte: u8) -> Angle {
        Angle(u16::from(byte) << 8)
    }
}

/// Sine of `turn / 65536` turns.
pub fn sin_turn(turn: u16) -> f64 {
    // Reduce to a quarter turn; `quadrant` picks the sign and whether to mirror.
    let quadrant = turn >> 14;
    let within = f64::from(turn & 0x3fff) * (FRAC_PI_2 / 16384.0);
    match quadrant {
        0 => sin_quarter(within),
        1 => sin_quarter(FRAC_PI_2 - within),
        2 => -sin_quarter(within),
        _ => -sin_quarter(FRAC_PI_2 - within),
    }
}

/// Cosine of `turn / 65536` turns.
pub fn cos_turn(turn: u16) -> f64 {
    sin_turn(turn.wrapping_add(16384))
}

/// sin(x) for x in [0, π/2] by its Taylor series to x^15 (error below 1e-12 there).
fn sin_quarter(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    for k in 1..8 {
        let k = f64::from(k);
        term = -term * x2 / ((2.0 * k) * (2.0 * k + 1.0));
        sum += term;
    }
    sum
}

/// atan2(y, x) in (-π, π], from basic operations only (error below 1e-9 rad).
pub fn atan2(y: f64, x: f64) -> f64 {
    if !(x.is_finite() && y.is_finite()) || (x == 0.0 && y == 0.0) {
        return 0.0;
    }
    let (ax, ay) = (x.abs(), y.abs());
    // atan on [0, 1], mirrored for the other octants.
    let (ratio, swapped) = if ay > ax {
        (ax / ay, true)
    } else {
        (ay / ax, false)
    };
    let mut angle = atan_unit(ratio);
    if swapped {
        angle = FRAC_PI_2 - angle;
    }
    if x < 0.0 {
        angle = PI - angle;
    }
    if y < 0.0 { -angle } else { angle }
}

/// atan(t) for t in [0, 1]: two argument halvings (atan t = 2 atan(t / (1 + sqrt(1 + t²))))
/// bring t below 0.2, where the Taylor series to t^21 is far below the precision we need.
fn atan_unit(t: f64) -> f64 {
    let mut value = t;
    for _ in 0..2 {
        value /= 1.0 + (1.0 + value * value).sqrt();
    }
    let v2 = value * value;
    let mut term = value;
    let mut sum = value;
    for k in 1..11 {
        term *= -v2;
        sum += term / f64::from(2 * k + 1);
    }
    sum * 4.0
}

/// Integer square root of a non-negative i64 (floor).
pub fn isqrt(value: i64) -> i64 {
    if value <= 0 {
        return 0;
    }
    let mut root = (value as f64).sqrt() as i64;
    while root * root > value {
        root -= 1;
    }
    while (root + 1) * (root + 1) <= value {
        root += 1;
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_matches_the_platform_closely() {
        for turn in (0..=u16::MAX).step_by(97) {
            let radians = f64::from(turn) * TAU / 65536.0;
            assert!((sin_turn(turn) - radians.sin()).abs() < 1e-9, "turn {turn}");
            assert!((cos_turn(turn) - radians.cos()).abs() < 1e-9, "turn {turn}");
        }
    }

    #[test]
    fn atan2_matches_the_platform_closely() {
        for step in 0..2000 {
            let angle = f64::from(step) * TAU / 2000.0 - PI;
            for radius in [0.5, 3.0, 700.0] {
                let (y, x) = (angle.sin() * radius, angle.cos() * radius);
                assert!((atan2(y, x) - y.atan2(x)).abs() < 1e-9, "angle {angle}");
            }
        }
        assert_eq!(atan2(0.0, 0.0), 0.0);
        assert_eq!(atan2(f64::NAN, 1.0), 0.0);
    }

    #[test]
    fn angles_convert_and_wrap() {
        assert_eq!(Angle::from_radians(0.0), Angle(0));
        assert_eq!(Angle::from_radians(PI), Angle(32768));
        assert_eq!(Angle::from_radians(-FRAC_PI_2), Angle(49152));
        assert_eq!(Angle::from_radians(f64::INFINITY), Angle(0));
        assert_eq!(Angle(65000).delta_to(Angle(100)), 636);
        assert_eq!(Angle(100).delta_to(Angle(65000)), -636);
        assert_eq!(Angle(65500).offset(100), Angle(64));
        assert_eq!(Angle::of_vector(0.0, 5.0), Angle(16384));
        assert_eq!(Angle(0xfff0).to_byte(), 0);
        assert_eq!(Angle::from_byte(64), Angle(16384));
    }

    #[test]
    fn integer_square_roots_are_floors() {
        for value in [0i64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, (1 << 40) + 1] {
            let root = isqrt(value);
            assert!(root * root <= value && (root + 1) * (root + 1) > value);
        }
        assert_eq!(isqrt(-5), 0);
    }
}
