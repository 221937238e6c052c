//! Small 2D vector and angle helpers used by the simulation.
//!
//! Owns plain arithmetic only; nothing here allocates, reads a clock or touches IO.

use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// A point or direction in arena units. The arena is centred on (0, 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vec2 {
    pub x: f32,
    pub y: f32,
}

impl Vec2 {
    pub const ZERO: Vec2 = Vec2 { x: 0.0, y: 0.0 };

    pub const fn new(x: f32, y: f32) -> Vec2 {
        Vec2 { x, y }
    }

    /// The unit vector pointing along `angle` (radians, counter-clockwise from +x).
    pub fn from_angle(angle: f32) -> Vec2 {
        let (sin, cos) = angle.sin_cos();
        Vec2 { x: cos, y: sin }
    }

    pub fn length(self) -> f32 {
        self.length_squared().sqrt()
    }

    pub fn length_squared(self) -> f32 {
        self.x * self.x + self.y * self.y
    }

    pub fn distance(self, other: Vec2) -> f32 {
        (self - other).length()
    }

    pub fn distance_squared(self, other: Vec2) -> f32 {
        (self - other).length_squared()
    }

    pub fn dot(self, other: Vec2) -> f32 {
        self.x * other.x + self.y * other.y
    }

    /// The heading of this vector in radians, in (-pi, pi].
    pub fn angle(self) -> f32 {
        self.y.atan2(self.x)
    }

    /// This vector scaled to length 1, or zero when it is too short to have a direction.
    pub fn normalized_or_zero(self) -> Vec2 {
        let length = self.length();
        if length > 1e-6 && length.is_finite() {
            self * (1.0 / length)
        } else {
            Vec2::ZERO
        }
    }

    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

impl Add for Vec2 {
    type Output = Vec2;
    fn add(self, other: Vec2) -> Vec2 {
        Vec2::new(self.x + other.x, self.y + other.y)
    }
}

impl Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, other: Vec2) -> Vec2 {
        Vec2::new(self.x - other.x, self.y - other.y)
    }
}

impl Mul<f32> for Vec2 {
    type Output = Vec2;
    fn mul(self, factor: f32) -> Vec2 {
        Vec2::new(self.x * factor, self.y * factor)
    }
}

impl Neg for Vec2 {
    type Output = Vec2;
    fn neg(self) -> Vec2 {
        Vec2::new(-self.x, -self.y)
    }
}

impl AddAssign for Vec2 {
    fn add_assign(&mut self, other: Vec2) {
        *self = *self + other;
    }
}

impl SubAssign for Vec2 {
    fn sub_assign(&mut self, other: Vec2) {
        *self = *self - other;
    }
}

/// Wraps any finite angle into (-pi, pi] so headings never grow without bound.
pub fn wrap_angle(angle: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let mut wrapped = angle % TAU;
    if wrapped > PI {
        wrapped -= TAU;
    } else if wrapped <= -PI {
        wrapped += TAU;
    }
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn wrap_angle_stays_in_half_open_range() {
        for raw in [-100.0f32, -PI, -3.0, 0.0, 3.0, PI, 7.0, 1000.0] {
            let wrapped = wrap_angle(raw);
            assert!(
                wrapped > -PI - 1e-5 && wrapped <= PI + 1e-5,
                "{raw} -> {wrapped}"
            );
            // Same direction before and after wrapping.
            assert!(Vec2::from_angle(raw).distance(Vec2::from_angle(wrapped)) < 1e-3);
        }
    }

    #[test]
    fn normalizing_a_zero_vector_gives_zero_not_nan() {
        assert_eq!(Vec2::ZERO.normalized_or_zero(), Vec2::ZERO);
        let unit = Vec2::new(3.0, 4.0).normalized_or_zero();
        assert!((unit.length() - 1.0).abs() < 1e-6);
    }
}
