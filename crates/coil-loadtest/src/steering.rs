//! How a simulated arena player's hand moves the mouse, and when its client sends an input.
//!
//! The sending rule is the browser client's (`web/src/main.js`): **at most one input per
//! tick**, and only when the 16-bit angle moved by more than [`ANGLE_THRESHOLD`] or boost
//! changed since the last input sent ([`InputGate`]). The aim is a [`Hand`]: it steers toward a
//! target point that changes every 1–3 s and, between changes, drifts the way a thing a person
//! chases does (a pellet, another snake), so the angle from the own head to it changes on most
//! ticks — as a hand on a mouse that follows something on the screen. (`--input-hz`, the worst
//! case, bypasses the gate: the player task sends every aim it reads.)
//!
//! Pure: positions, `dt` and a random generator in, an input (or none) out. The player task
//! (`player.rs`) owns the socket and decides when a tick happened; nothing here reads a clock.

use std::f32::consts::TAU;

use coil_protocol::arena::{Input, angle_to_u16};
use rand::Rng;

/// Angle changes up to this (1/65536 turn, ≈ 0.04°) are not worth a frame (main.js sends
/// when the difference is above 8).
pub const ANGLE_THRESHOLD: u16 = 8;
/// Targets are drawn inside this fraction of the arena radius so players do not aim at the
/// deadly rim on purpose.
const TARGET_RADIUS_FRACTION: f32 = 0.8;
/// How fast a target drifts, world units per second: from a slow pellet-chase to a snake's
/// own cruising speed (110).
const DRIFT_SPEED_MIN: f32 = 30.0;
const DRIFT_SPEED_MAX: f32 = 120.0;
/// Longest step of the drift in one call: after a stall the target jumps at most this far in
/// time, never across the arena.
const MAX_DT: f32 = 0.25;

/// Whether two 16-bit angles differ by more than [`ANGLE_THRESHOLD`], the short way round.
pub fn angle_moved(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16).unsigned_abs() > ANGLE_THRESHOLD
}

/// Decides, once per tick, whether the input of that tick goes out: the first of a
/// connection always, then only when the angle moved past the threshold or boost changed.
#[derive(Debug, Default, Clone)]
pub struct InputGate {
    last: Option<Input>,
}

impl InputGate {
    pub fn new() -> InputGate {
        InputGate::default()
    }

    /// The input to send this tick, if any; remembers it as the last one sent.
    pub fn offer(&mut self, input: Input) -> Option<Input> {
        let send = match self.last {
            None => true,
            Some(last) => last.boost != input.boost || angle_moved(last.angle, input.angle),
        };
        if send {
            self.last = Some(input);
        }
        send.then_some(input)
    }
}

/// Where the player's hand points the mouse: a target point in the world that drifts.
#[derive(Debug, Clone, Default)]
pub struct Hand {
    target: Option<Target>,
}

#[derive(Debug, Clone, Copy)]
struct Target {
    position: [f32; 2],
    velocity: [f32; 2],
    boost: bool,
    /// Drift stays inside this radius (it bounces off it).
    bound: f32,
}

impl Hand {
    pub fn new() -> Hand {
        Hand::default()
    }

    /// A fresh target (the player's mind changed): a point uniform over the disc inside
    /// [`TARGET_RADIUS_FRACTION`] of the arena, drifting in a random direction at a random
    /// speed, boosting toward it with probability `boost_fraction`.
    pub fn pick_target(&mut self, arena_radius: f32, boost_fraction: f64, rng: &mut impl Rng) {
        let bound = arena_radius * TARGET_RADIUS_FRACTION;
        // Uniform over the disc: radius ∝ sqrt(u).
        let radius = bound * rng.r#gen::<f32>().sqrt();
        let theta = rng.r#gen::<f32>() * TAU;
        let heading = rng.r#gen::<f32>() * TAU;
        let speed = rng.gen_range(DRIFT_SPEED_MIN..=DRIFT_SPEED_MAX);
        self.target = Some(Target {
            position: [radius * theta.cos(), radius * theta.sin()],
            velocity: [speed * heading.cos(), speed * heading.sin()],
            boost: rng.gen_bool(boost_fraction.clamp(0.0, 1.0)),
            bound,
        });
    }

    /// Forgets the target (the snake died): nothing is aimed at until the next pick.
    pub fn drop_target(&mut self) {
        self.target = None;
    }

    /// Moves the target on by `dt` seconds and returns this tick's input aiming at it from
    /// `head`; `None` without a target.
    pub fn aim(&mut self, head: [f32; 2], dt: f32) -> Option<Input> {
        let target = self.target.as_mut()?;
        let dt = dt.clamp(0.0, MAX_DT);
        let mut next = [
            target.position[0] + target.velocity[0] * dt,
            target.position[1] + target.velocity[1] * dt,
        ];
        if next[0].hypot(next[1]) > target.bound {
            // Bounce back inward: the velocity turns around, the position stays.
            target.velocity = [-target.velocity[0], -target.velocity[1]];
            next = target.position;
        }
        target.position = next;
        let angle = (next[1] - head[1]).atan2(next[0] - head[0]);
        Some(Input {
            angle: angle_to_u16(angle),
            boost: target.boost,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn input(angle: u16, boost: bool) -> Input {
        Input { angle, boost }
    }

    #[test]
    fn the_gate_sends_the_first_input_then_only_changes_past_the_threshold() {
        let mut gate = InputGate::new();
        assert_eq!(gate.offer(input(1000, false)), Some(input(1000, false)));
        assert_eq!(gate.offer(input(1000, false)), None, "unchanged");
        assert_eq!(gate.offer(input(1008, false)), None, "8 is not above 8");
        assert_eq!(gate.offer(input(992, false)), None, "nor −8");
        assert_eq!(gate.offer(input(1009, false)), Some(input(1009, false)));
        // Measured from the last one sent, not the last one offered.
        assert_eq!(gate.offer(input(1015, false)), None);
        assert_eq!(gate.offer(input(1018, false)), Some(input(1018, false)));
        assert_eq!(
            gate.offer(input(1018, true)),
            Some(input(1018, true)),
            "boost"
        );
        assert_eq!(gate.offer(input(1018, false)), Some(input(1018, false)));
    }

    #[test]
    fn angles_compare_the_short_way_round() {
        assert!(!angle_moved(65_534, 3), "5 apart across zero");
        assert!(angle_moved(65_530, 3), "9 apart across zero");
        assert!(angle_moved(0, 32_768));
        assert!(!angle_moved(12_345, 12_345));
    }

    /// A snake head that turns toward the aim at the arena's rate and moves at its speed,
    /// enough to let the hand's angle change as it would in a room.
    struct FakeHead {
        position: [f32; 2],
        heading: f32,
    }

    impl FakeHead {
        fn step(&mut self, aim: u16, dt: f32) {
            let wanted = coil_protocol::arena::angle_from_u16(aim);
            let mut error = (wanted - self.heading) % TAU;
            if error > TAU / 2.0 {
                error -= TAU;
            } else if error < -TAU / 2.0 {
                error += TAU;
            }
            self.heading += error.clamp(-4.5 * dt, 4.5 * dt);
            self.position[0] += self.heading.cos() * 110.0 * dt;
            self.position[1] += self.heading.sin() * 110.0 * dt;
        }
    }

    /// The player's loop, ticked at 20 Hz for a minute: one decision per tick, a new target
    /// every 1–3 s. Every tick whose angle moved past the threshold (against the last one
    /// sent) sends exactly one input, no other tick sends, and that is most ticks.
    #[test]
    fn steering_sends_one_input_on_each_tick_the_angle_changed_and_never_more() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut hand = Hand::new();
        let mut gate = InputGate::new();
        let mut head = FakeHead {
            position: [0.0, 0.0],
            heading: 0.0,
        };
        let dt = 1.0 / 20.0;
        let ticks = 20 * 60;
        let mut next_target_tick = 0;
        let mut last_sent: Option<Input> = None;
        let mut sent = 0;
        for tick in 0..ticks {
            if tick == next_target_tick {
                hand.pick_target(3_000.0, 0.1, &mut rng);
                next_target_tick += rng.gen_range(20..=60);
            }
            let wanted = hand.aim(head.position, dt).expect("a target is set");
            let changed = last_sent.is_none_or(|last| {
                last.boost != wanted.boost || angle_moved(last.angle, wanted.angle)
            });
            let out = gate.offer(wanted);
            assert_eq!(
                out.is_some(),
                changed,
                "tick {tick}: {wanted:?} after {last_sent:?}"
            );
            if let Some(input) = out {
                sent += 1;
                last_sent = Some(input);
            }
            head.step(last_sent.unwrap().angle, dt);
        }
        let per_second = sent as f64 / 60.0;
        // A hand following a drifting target changes the angle on most ticks: about the
        // browser client's 20 per second, far above one per target change (~0.5 per second).
        assert!(
            (15.0..=20.0).contains(&per_second),
            "{per_second} inputs per second"
        );
    }

    #[test]
    fn the_target_drifts_and_stays_inside_the_bound() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut hand = Hand::new();
        assert_eq!(hand.aim([0.0, 0.0], 0.05), None, "no target yet");
        hand.pick_target(1_000.0, 0.0, &mut rng);
        let first = hand.target.unwrap().position;
        for _ in 0..10_000 {
            hand.aim([0.0, 0.0], 0.05);
            let position = hand.target.unwrap().position;
            assert!(
                position[0].hypot(position[1]) <= 800.0 + 1e-3,
                "{position:?}"
            );
        }
        assert_ne!(hand.target.unwrap().position, first, "it moved");
        hand.drop_target();
        assert_eq!(hand.aim([0.0, 0.0], 0.05), None);
    }
}
