//! The no-wallhack guarantee, proven two ways:
//!
//! 1. A property test over random maps, random holes and random positions holds the vision
//!    query (`vision::can_see`, an exact integer grid walk) to a brute-force check: dense
//!    sampling of the sight line against the slice grid, and the cone measured with the
//!    platform's own `atan2`. Whatever the query calls visible has no intact slice anywhere
//!    on the line (safety), and whatever has a clear line with a margin is visible
//!    (completeness, so the safety half cannot pass by seeing nothing).
//! 2. A full match with bots is played and the actual bytes each human is sent are decoded;
//!    every enemy, enemy charge and tracer end they contain is checked with the brute-force
//!    line of sight from the viewer's true position.

use coil_breach::map::Map;
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::vision::{self, CONE_HALF_ANGLE, NEAR_RADIUS_SUB, VIEW_RANGE_SUB};
use coil_breach::walls::Walls;
use coil_breach::wire::{POSITION_QUANTUM_SUB, ShotEnd};
use coil_breach::{Breach, BreachConfig, JoinRequest, Role, Seat};
use proptest::prelude::*;

const CELLS: u32 = 16;

fn map_text(walls: &[u8]) -> String {
    let mut text =
        String::from("breach-map 1\nname Random\nid 7\nsize 16 16\ncell 10\nslices 5\ngrid\n");
    for y in 0..CELLS {
        for x in 0..CELLS {
            let index = (y * CELLS + x) as usize;
            let character = if y == 0 && x < 4 {
                'A'
            } else if y == CELLS - 1 && x >= CELLS - 4 {
                'B'
            } else {
                match walls[index] % 7 {
                    0 => 'w',
                    1 => 'c',
                    2 => '#',
                    _ => '.',
                }
            };
            text.push(character);
        }
        text.push('\n');
    }
    text.push_str("end\n");
    text
}

/// Dense sampling of the segment: blocked if any sample lies in an intact slice.
fn brute_clear(walls: &Walls, from: (f64, f64), to: (f64, f64)) -> bool {
    let samples = 4000;
    let slice = walls.slice_sub() as f64;
    (0..=samples).all(|i| {
        let t = f64::from(i) / f64::from(samples);
        let x = from.0 + (to.0 - from.0) * t;
        let y = from.1 + (to.1 - from.1) * t;
        !walls.intact((x / slice).floor() as i64, (y / slice).floor() as i64)
    })
}

/// The view shape by the platform's trigonometry: Some(inside) away from the boundary,
/// None within a hair of it (where rounding decides).
fn brute_shape(eye: (i64, i64), facing: Angle, point: (i64, i64)) -> Option<bool> {
    let (dx, dy) = ((point.0 - eye.0) as f64, (point.1 - eye.1) as f64);
    let distance = (dx * dx + dy * dy).sqrt();
    let near = NEAR_RADIUS_SUB as f64;
    let range = VIEW_RANGE_SUB as f64;
    if distance < near - 0.01 {
        return Some(true);
    }
    if distance > range + 0.01 {
        return Some(false);
    }
    if (distance - range).abs() < 0.01 || (distance - near).abs() < 0.01 {
        return None;
    }
    let angle = dy.atan2(dx);
    let difference = (angle - facing.radians() + std::f64::consts::PI)
        .rem_euclid(std::f64::consts::TAU)
        - std::f64::consts::PI;
    let half = Angle(CONE_HALF_ANGLE).radians();
    if (difference.abs() - half).abs() < 1e-6 {
        None
    } else {
        Some(difference.abs() < half)
    }
}

fn brute_sees(walls: &Walls, eye: (i64, i64), facing: Angle, point: (i64, i64)) -> bool {
    brute_shape(eye, facing, point) == Some(true)
        && brute_clear(
            walls,
            (eye.0 as f64, eye.1 as f64),
            (point.0 as f64, point.1 as f64),
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_vision_query_matches_brute_force_line_of_sight(
        cells in proptest::collection::vec(any::<u8>(), (CELLS * CELLS) as usize),
        holes in proptest::collection::vec((0u32..80, 0u32..80), 0..200),
        eye in (0i64..1280, 0i64..1280),
        targets in proptest::collection::vec((0i64..1280, 0i64..1280), 1..12),
        facing in any::<u16>(),
    ) {
        let map = Map::parse(&map_text(&cells)).unwrap();
        let mut walls = Walls::from_map(&map);
        for (x, y) in holes {
            walls.damage(y * walls.width() + x, 255);
        }
        let facing = Angle(facing);
        for target in targets {
            let seen = vision::can_see(&walls, eye, facing, target);
            let shape = brute_shape(eye, facing, target);
            let exact = brute_clear(&walls, (eye.0 as f64, eye.1 as f64), (target.0 as f64, target.1 as f64));
            if seen {
                // Safety: nothing intact on the line, and inside the view shape.
                prop_assert!(exact, "seen through a wall: {eye:?} -> {target:?}");
                prop_assert_ne!(shape, Some(false), "seen outside the cone: {:?} -> {:?}", eye, target);
            }
            // Completeness: a line clear with a one-sub-pixel margin on every side, well
            // inside the shape, must be seen.
            let margin_clear = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0), (0.0, 0.0)]
                .iter()
                .all(|(ox, oy)| brute_clear(
                    &walls,
                    (eye.0 as f64 + ox, eye.1 as f64 + oy),
                    (target.0 as f64 + ox, target.1 as f64 + oy),
                ));
            if shape == Some(true) && margin_clear {
                prop_assert!(seen, "not seen despite a clear line: {eye:?} -> {target:?}");
            }
        }
    }
}

fn join(name: &str) -> JoinRequest<'_> {
    JoinRequest {
        name,
        team: None,
        party: None,
        role: Role::Player,
    }
}

#[test]
fn the_bytes_a_player_is_sent_hold_no_enemy_it_cannot_see() {
    let config = BreachConfig {
        min_players: 2,
        countdown_ticks: 10,
        kill_limit: 30,
        time_limit_ticks: 3000,
        ..BreachConfig::default()
    };
    let mut breach = Breach::new(config, 77).unwrap();
    // Two humans who only stand and turn, one per team; bots play around them.
    let humans = [Seat(1), Seat(2)];
    breach.add_player(humans[0], &join("ann")).unwrap();
    breach.add_player(humans[1], &join("bo")).unwrap();
    let mut mirrors = [ClientMirror::new(), ClientMirror::new()];
    let mut events = Vec::new();
    let mut message = Vec::new();
    let mut enemies_checked = 0;
    let mut enemies_withheld = 0;
    let mut tracers_checked = 0;
    for tick in 0..3000u32 {
        for (index, seat) in humans.iter().enumerate() {
            let intent = coil_breach::input::Intent {
                sequence: tick + 1,
                direction: ((tick / 60 + index as u32) % 9) as u8,
                facing: Angle((tick * 300 + index as u32 * 20000) as u16),
                fire: tick % 7 == 0,
                ..coil_breach::input::Intent::idle(Angle(0))
            };
            let mut bytes = Vec::new();
            coil_breach::wire::encode_input(&intent, &mut bytes);
            let _ = breach.apply_input(*seat, &bytes);
        }
        events.clear();
        breach.step(&mut events);
        for (index, seat) in humans.iter().enumerate() {
            message.clear();
            breach.write_update(*seat, &mut message);
            mirrors[index].apply_message(&message).unwrap();
            let (slot, team) = breach.slot_of(*seat).unwrap();
            let world = breach.world();
            let me = world.player(slot).unwrap();
            let walls = world.walls();
            for (other, player) in world.players() {
                if player.team == team || other == slot {
                    continue;
                }
                match mirrors[index].others[other] {
                    Some(held) => {
                        // What the client holds is this tick's truth (to the quantum)...
                        assert_eq!(held.qx, player.x.div_euclid(POSITION_QUANTUM_SUB));
                        // ...and the viewer really sees it.
                        assert!(me.alive && player.alive);
                        assert!(
                            brute_sees(walls, me.position(), me.facing, player.position()),
                            "tick {tick}: slot {slot} was sent enemy {other} it cannot see"
                        );
                        enemies_checked += 1;
                    }
                    None => enemies_withheld += 1,
                }
            }
            let Some(state) = &mirrors[index].last_state else {
                continue;
            };
            for shot in &state.shots {
                if let ShotEnd::Seen { dx, dy } = shot.end {
                    let from = world
                        .shots()
                        .iter()
                        .find(|s| s.shooter == usize::from(shot.shooter))
                        .map(|s| s.from)
                        .unwrap();
                    let end = (from.0 + i64::from(dx) * 8, from.1 + i64::from(dy) * 8);
                    // Within the rounding of whole pixels, the end point is in view.
                    let near_seen = (-8..=8).step_by(8).any(|ox| {
                        (-8..=8).step_by(8).any(|oy| {
                            brute_sees(walls, me.position(), me.facing, (end.0 + ox, end.1 + oy))
                        })
                    });
                    assert!(near_seen, "tick {tick}: tracer end out of view");
                    tracers_checked += 1;
                }
            }
            for charge in &state.charges {
                if !charge.friendly {
                    let at = (i64::from(charge.x_px) * 8, i64::from(charge.y_px) * 8);
                    let near_seen = (0..=8).step_by(8).any(|ox| {
                        (0..=8).step_by(8).any(|oy| {
                            brute_sees(walls, me.position(), me.facing, (at.0 + ox, at.1 + oy))
                        })
                    });
                    assert!(near_seen, "tick {tick}: enemy charge out of view");
                }
            }
        }
    }
    assert!(enemies_checked > 100, "{enemies_checked}");
    assert!(enemies_withheld > 1000, "{enemies_withheld}");
    assert!(tracers_checked > 10, "{tracers_checked}");
}
