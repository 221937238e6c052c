//! The encoder and the client mirror agree with the simulation after many random ticks,
//! including dropped messages followed by resyncs, for players and for a spectator.

use coil_breach::input::Intent;
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::player::Speed;
use coil_breach::vision::{self, View};
use coil_breach::wire::{self, POSITION_QUANTUM_SUB};
use coil_breach::{Breach, BreachConfig, JoinRequest, Phase, Role, Seat};

/// A tiny deterministic generator for the test's own choices.
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn config() -> BreachConfig {
    BreachConfig {
        min_players: 1,
        countdown_ticks: 20,
        kill_limit: 8,
        time_limit_ticks: 1500,
        scoreboard_ticks: 40,
        respawn_ticks: 30,
        spectator_delay_ticks: 15,
        ..BreachConfig::default()
    }
}

fn join(name: &str, role: Role) -> JoinRequest<'_> {
    JoinRequest {
        name,
        team: None,
        party: None,
        role,
    }
}

fn random_intent(rng: &mut TestRng, sequence: u32, facing: &mut Angle) -> Intent {
    *facing = facing.offset(rng.below(2001) as i32 - 1000);
    Intent {
        sequence,
        direction: rng.below(9) as u8,
        speed: Speed::from_index(rng.below(3) as u8).unwrap(),
        facing: *facing,
        fire: rng.below(3) == 0,
        reload: rng.below(40) == 0,
        use_charge: rng.below(200) == 0,
    }
}

fn check_player(breach: &Breach, seat: Seat, mirror: &ClientMirror, view: &mut View) {
    let (slot, team) = breach.slot_of(seat).expect("seated");
    let player = breach.world().player(slot).unwrap();
    let init = mirror.init.expect("init received");
    assert_eq!(usize::from(init.slot), slot);
    assert_eq!(init.team, team as u8);
    let own = &mirror.own;
    assert_eq!((own.x, own.y), (player.x, player.y), "own position");
    assert_eq!(own.health, player.health);
    assert_eq!(own.ammo, player.ammo);
    assert_eq!(own.reload, player.reload_in);
    assert_eq!(own.alive, player.alive);
    assert_eq!(
        own.respawn,
        if player.alive { 0 } else { player.respawn_in }
    );
    assert_eq!(own.charges, player.charges);
    vision::build_view(breach.world(), slot, view);
    for other in 0..coil_breach::MAX_SLOTS {
        let expected = view.players.iter().find(|p| p.slot == other).map(|p| {
            (
                p.x.div_euclid(POSITION_QUANTUM_SUB),
                p.y.div_euclid(POSITION_QUANTUM_SUB),
                p.facing.to_byte(),
                p.health,
            )
        });
        let held = mirror.others[other].map(|o| (o.qx, o.qy, o.facing, o.health));
        assert_eq!(held, expected, "slot {slot} holding slot {other}");
    }
}

fn check_walls(breach: &Breach, mirror: &ClientMirror, spectator: bool) {
    let walls = mirror.walls.as_ref().unwrap();
    let truth = if spectator {
        breach.spectator_feed().walls()
    } else {
        breach.world().walls()
    };
    let held: Vec<_> = walls.damaged_slices().collect();
    let expected: Vec<_> = truth.damaged_slices().collect();
    assert_eq!(held, expected);
}

#[test]
fn mirrors_agree_with_the_simulation_through_drops_and_resyncs() {
    let mut breach = Breach::new(config(), 0xB4EAC4).unwrap();
    let humans = [Seat(1), Seat(2), Seat(3)];
    for (index, seat) in humans.iter().enumerate() {
        breach
            .add_player(*seat, &join(["ann", "bo", "cy"][index], Role::Player))
            .unwrap();
    }
    let spectator = Seat(50);
    breach
        .add_player(spectator, &join("eve", Role::Spectator))
        .unwrap();
    let mut mirrors: Vec<ClientMirror> = (0..4).map(|_| ClientMirror::new()).collect();
    let mut sequences = [0u32; 3];
    let mut facings = [Angle(0); 3];
    let mut rng = TestRng(42);
    let mut events = Vec::new();
    let mut message = Vec::new();
    let mut view = View::default();
    let mut drops = 0;
    let mut phases_seen = std::collections::HashSet::new();
    let mut saw_others = 0;
    let mut saw_wall_changes = false;
    for tick in 0..2400 {
        for (index, seat) in humans.iter().enumerate() {
            if rng.below(10) < 9 {
                sequences[index] += 1;
                let intent = random_intent(&mut rng, sequences[index], &mut facings[index]);
                let mut bytes = Vec::new();
                wire::encode_input(&intent, &mut bytes);
                let _ = breach.apply_input(*seat, &bytes);
            }
            if breach.phase() == Phase::Ending {
                let mut bytes = Vec::new();
                wire::encode_vote(wire::Vote::Stay, &mut bytes);
                let _ = breach.apply_input(*seat, &bytes);
            }
        }
        events.clear();
        breach.step(&mut events);
        phases_seen.insert(breach.phase());
        let seats = [humans[0], humans[1], humans[2], spectator];
        for (index, seat) in seats.iter().enumerate() {
            message.clear();
            breach.write_update(*seat, &mut message);
            assert!(!message.is_empty());
            if rng.below(40) == 0 {
                // The runtime dropped this message for a slow client.
                drops += 1;
                breach.resync(*seat);
                continue;
            }
            mirrors[index].apply_message(&message).unwrap();
            if let Some(state) = &mirrors[index].last_state {
                saw_wall_changes |= !state.walls.is_empty();
            }
            assert_eq!(mirrors[index].scores, breach.scores(), "tick {tick}");
            assert_eq!(mirrors[index].phase.0, breach.phase() as u8);
            if index < 3 {
                check_player(&breach, *seat, &mirrors[index], &mut view);
                saw_others += mirrors[index].others.iter().flatten().count();
            } else {
                for slot in 0..coil_breach::MAX_SLOTS {
                    let expected = breach.spectator_feed().shown_player(slot).map(|(x, y, f)| {
                        (
                            x.div_euclid(POSITION_QUANTUM_SUB),
                            y.div_euclid(POSITION_QUANTUM_SUB),
                            f.to_byte(),
                        )
                    });
                    let held = mirrors[index].others[slot].map(|o| (o.qx, o.qy, o.facing));
                    assert_eq!(held, expected, "spectator holding slot {slot}");
                }
            }
            if tick % 50 == 0 {
                check_walls(&breach, &mirrors[index], index == 3);
            }
        }
    }
    assert!(drops > 50, "{drops}");
    assert!(saw_others > 1000, "{saw_others}");
    assert!(saw_wall_changes);
    assert!(phases_seen.contains(&Phase::InProgress));
    assert!(
        phases_seen.contains(&Phase::Ending),
        "a match ended: {phases_seen:?}"
    );
}
