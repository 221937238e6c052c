//! Tests of the arena game against the real simulation: every viewer's [`ClientMirror`] must
//! match the world within the quantization error, tick after tick.

use coil_protocol::ErrorCode;
use coil_protocol::arena::{Input, angle_to_u16, encode_input, encode_respawn};
use coil_sim::{ArenaConfig, SnakeId, Vec2};
use proptest::prelude::*;

use super::client::ClientMirror;
use super::view::{wire_girth, wire_length};
use super::*;
use coil_game::RunScore;

const DT: f32 = 0.05;

fn small_arena(seed: u64, bots: usize) -> Arena {
    // A smaller arena than the standard one so that a short test sees snakes meet, eat, die
    // and cross view edges.
    let arena = ArenaConfig {
        radius: 1200.0,
        natural_pellet_target: 1500,
        ..ArenaConfig::default()
    };
    let mut game = Arena::new(ArenaSettings {
        arena,
        seed,
        ..ArenaSettings::default()
    });
    game.set_bot_target(bots);
    game
}

fn join(game: &mut Arena, id: u32, name: &str) -> PlayerId {
    let player = PlayerId(id);
    game.join(
        player,
        &Identity {
            skin: id as u8,
            ..Identity::guest(player.0.to_string(), name.to_owned())
        },
    )
    .expect("the arena seats every player");
    player
}

fn send_input(game: &mut Arena, player: PlayerId, radians: f32, boost: bool) {
    let mut frame = Vec::new();
    encode_input(
        Input {
            angle: angle_to_u16(radians),
            boost,
        },
        &mut frame,
    );
    game.handle_message(player, &frame).unwrap();
}

/// Writes and applies one update; returns its size in bytes.
fn update(game: &mut Arena, player: PlayerId, mirror: &mut ClientMirror) -> usize {
    let mut out = Vec::new();
    game.write_update(player, &mut out);
    mirror.apply_message(&out).unwrap();
    out.len()
}

/// Checks one viewer's mirror against the simulation and the server's view of that client.
fn check_mirror(
    game: &Arena,
    player: PlayerId,
    mirror: &ClientMirror,
) -> Result<(), TestCaseError> {
    let init = *mirror.init().expect("init received");
    let quantum = init.position_quantum;
    let tolerance = quantum / 2.0 + 1e-3 * quantum.max(1.0);
    let world = game.world();
    let viewer = game.viewer(player).unwrap();
    prop_assert_eq!(mirror.center(), viewer.center());
    prop_assert_eq!(mirror.snakes().len(), viewer.known_snake_count());
    prop_assert_eq!(mirror.pellets().len(), viewer.known_pellet_count());

    // Own snake: known exactly while alive, absent while dead.
    let own = world.snake(game.snake_of(player).unwrap()).unwrap();
    prop_assert_eq!(own.alive(), mirror.own_snake().is_some());

    // Every known snake is alive and matches within the quantization error.
    for known in mirror.snakes() {
        let snake = world.snake(SnakeId(known.id));
        prop_assert!(
            snake.is_some_and(|s| s.alive()),
            "mirror knows dead snake {}",
            known.id
        );
        let snake = snake.unwrap();
        let [x, y] = known.head_world(&init);
        prop_assert!(
            (x - snake.head().x).abs() <= tolerance && (y - snake.head().y).abs() <= tolerance,
            "head of {} at {:?}, sim {:?}",
            known.id,
            [x, y],
            snake.head()
        );
        prop_assert_eq!(known.length, wire_length(snake));
        prop_assert_eq!(known.girth, wire_girth(snake.girth()));
        prop_assert_eq!(known.boosting, snake.boosting());
        prop_assert!(
            mirror
                .identity(known.id)
                .is_some_and(|identity| identity.name == snake.name())
        );
    }

    // The set of visible snakes: everything in the view box is known; nothing known is far.
    let center = Vec2::new(
        mirror.center()[0] as f32 * quantum,
        mirror.center()[1] as f32 * quantum,
    );
    let half = Vec2::new(
        f32::from(init.view_half_width) * quantum,
        f32::from(init.view_half_height) * quantum,
    );
    let mut missing = Vec::new();
    world.for_each_snake_near(center, half, |snake| {
        if mirror.snake(snake.id().0).is_none() {
            missing.push(snake.id().0);
        }
    });
    prop_assert!(
        missing.is_empty(),
        "snakes in view but unknown: {:?}",
        missing
    );
    let margin = game.settings().view.keep_margin + 1.0;
    let mut near = Vec::new();
    world.for_each_snake_near(
        center,
        Vec2::new(half.x + margin, half.y + margin),
        |snake| near.push(snake.id().0),
    );
    for known in mirror.snakes() {
        prop_assert!(
            near.contains(&known.id),
            "snake {} known but out of view",
            known.id
        );
    }

    // Pellets: the client holds exactly the live pellets whose cell centre (on the global
    // grid of `pellet_cell` position units) lies inside the view box, each at that centre.
    let cell = i32::from(init.pellet_cell);
    let cell_world = cell as f32 * quantum;
    let [cx, cy] = mirror.center();
    let (hw, hh) = (
        i32::from(init.view_half_width),
        i32::from(init.view_half_height),
    );
    let mut expected = Vec::new();
    world.for_each_pellet_in(
        center,
        Vec2::new(half.x + 2.0 * cell_world, half.y + 2.0 * cell_world),
        |pellet| {
            let stored = [
                (pellet.pos.x / cell_world).floor() as i32 * cell + cell / 2,
                (pellet.pos.y / cell_world).floor() as i32 * cell + cell / 2,
            ];
            if (cx - hw..=cx + hw).contains(&stored[0]) && (cy - hh..=cy + hh).contains(&stored[1])
            {
                expected.push((stored, pellet.color & 0xf));
            }
        },
    );
    let mut held: Vec<_> = mirror
        .pellets()
        .iter()
        .map(|pellet| (pellet.position, pellet.color))
        .collect();
    expected.sort_unstable();
    held.sort_unstable();
    prop_assert_eq!(held, expected);
    Ok(())
}

#[derive(Debug, Clone)]
enum Action {
    Steer {
        player: usize,
        angle: f32,
        boost: bool,
    },
    Respawn {
        player: usize,
    },
    Resync {
        player: usize,
    },
    Kill {
        player: usize,
    },
    /// The runtime skips this viewer's update for a tick (as for a client not reading).
    Skip {
        player: usize,
    },
    /// The player leaves (its body scatters as pellets between ticks) and a new one joins.
    Rejoin {
        player: usize,
    },
    Wait,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0usize..3, -4.0f32..4.0, prop::bool::weighted(0.2)).prop_map(|(player, angle, boost)| Action::Steer { player, angle, boost }),
        1 => (0usize..3).prop_map(|player| Action::Respawn { player }),
        1 => (0usize..3).prop_map(|player| Action::Resync { player }),
        1 => (0usize..3).prop_map(|player| Action::Kill { player }),
        1 => (0usize..3).prop_map(|player| Action::Skip { player }),
        1 => (0usize..3).prop_map(|player| Action::Rejoin { player }),
        4 => Just(Action::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_mirror_matches_the_simulation(seed in any::<u64>(), actions in proptest::collection::vec(action(), 150)) {
        let mut game = small_arena(seed, 20);
        let mut players: Vec<PlayerId> = (0..3).map(|index| join(&mut game, index + 1, &format!("player{index}"))).collect();
        let mut mirrors: Vec<ClientMirror> = (0..3).map(|_| ClientMirror::new()).collect();
        let mut events = Vec::new();
        let (mut most_snakes_seen, mut most_pellets_seen) = (0, 0);
        let mut next_player = 100;
        for (tick, action) in actions.iter().enumerate() {
            let mut skipped = None;
            match *action {
                Action::Steer { player, angle, boost } => send_input(&mut game, players[player], angle, boost),
                Action::Respawn { player } => {
                    let mut frame = Vec::new();
                    encode_respawn(&mut frame);
                    game.handle_message(players[player], &frame).unwrap();
                }
                Action::Resync { player } => game.resync(players[player]),
                Action::Kill { player } => {
                    game.kill(players[player]);
                }
                Action::Skip { player } => skipped = Some(player),
                Action::Rejoin { player } => {
                    game.leave(players[player], &mut Vec::new());
                    next_player += 1;
                    players[player] = join(&mut game, next_player, "rejoined");
                    mirrors[player] = ClientMirror::new();
                }
                Action::Wait => {}
            }
            game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
            for (index, (player, mirror)) in players.iter().zip(&mut mirrors).enumerate() {
                if skipped == Some(index) {
                    continue;
                }
                update(&mut game, *player, mirror);
                check_mirror(&game, *player, mirror).map_err(|error| TestCaseError::fail(format!("tick {tick}: {error}")))?;
                most_snakes_seen = most_snakes_seen.max(mirror.snakes().len());
                most_pellets_seen = most_pellets_seen.max(mirror.pellets().len());
            }
        }
        // Guards against a vacuous run: the viewers really saw other snakes and food.
        prop_assert!(most_snakes_seen >= 2 && most_pellets_seen >= 10, "{most_snakes_seen} snakes, {most_pellets_seen} pellets");
    }

    /// The event-driven pellet tracker against a full scan: over many random ticks (bots
    /// boosting, dying and scattering, players leaving between ticks, updates sometimes
    /// skipped) it reports exactly the pellets that appeared and vanished between two
    /// consecutive updates, or skips a generation so no viewer applies a delta across a gap.
    #[test]
    fn the_pellet_tracker_matches_a_full_scan(
        seed in any::<u64>(),
        plan in proptest::collection::vec((0u8..20, any::<u8>()), 200),
    ) {
        use std::collections::BTreeMap;
        use super::view::PelletTracker;

        type PelletSet = BTreeMap<u32, (Vec2, u8)>;
        let scan = |world: &World| -> PelletSet {
            let reach = world.config().radius * 2.0;
            let mut all = BTreeMap::new();
            world.for_each_pellet_in(Vec2::ZERO, Vec2::new(reach, reach), |pellet| {
                all.insert(pellet.id, (pellet.pos, pellet.color & 0xf));
            });
            all
        };
        let mut game = small_arena(seed, 30);
        let mut players: Vec<PlayerId> = (0..4).map(|index| join(&mut game, index + 1, "p")).collect();
        let mut next_player = 10;
        let mut tracker = PelletTracker::default();
        let mut previous: Option<(PelletSet, u64)> = None;
        let mut events = Vec::new();
        let (mut deltas, mut changes) = (0, 0);
        for &(what, pick) in &plan {
            let player = usize::from(pick) % players.len();
            match what {
                0 => {
                    game.leave(players[player], &mut Vec::new());
                    next_player += 1;
                    players[player] = join(&mut game, next_player, "p");
                }
                1 => {
                    game.kill(players[player]);
                }
                2..=7 => send_input(&mut game, players[player], f32::from(pick) * 0.1, what < 5),
                _ => {}
            }
            events.clear();
            game.world.step(DT, &mut events);
            // Sometimes the room does not update the tracker for a tick or two.
            if what == 19 || (what == 18 && pick % 2 == 0) {
                continue;
            }
            tracker.update(game.world(), &game.settings().view);
            let now = scan(game.world());
            match previous.take() {
                Some((before, generation)) if tracker.generation() == generation + 1 => {
                    let expected_added: Vec<u32> = now.keys().filter(|id| !before.contains_key(id)).copied().collect();
                    let expected_removed: Vec<u32> = before.keys().filter(|id| !now.contains_key(id)).copied().collect();
                    let mut added: Vec<u32> = tracker.added().iter().map(|pellet| pellet.id).collect();
                    let mut removed: Vec<u32> = tracker.removed().iter().map(|pellet| pellet.id).collect();
                    added.sort_unstable();
                    removed.sort_unstable();
                    prop_assert_eq!(&added, &expected_added);
                    prop_assert_eq!(&removed, &expected_removed);
                    for pellet in tracker.added() {
                        prop_assert_eq!(Some(&(pellet.pos, pellet.color)), now.get(&pellet.id));
                    }
                    for pellet in tracker.removed() {
                        prop_assert_eq!(Some(&(pellet.pos, pellet.color)), before.get(&pellet.id));
                    }
                    deltas += 1;
                    changes += added.len() + removed.len();
                }
                Some((_, generation)) => prop_assert!(
                    tracker.generation() >= generation + 2,
                    "a gap must not look like a continuous update"
                ),
                None => {}
            }
            previous = Some((now, tracker.generation()));
        }
        prop_assert!(deltas > 100 && changes > 100, "{deltas} deltas, {changes} changes");
    }

    #[test]
    fn the_mirror_never_panics_on_arbitrary_messages(messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)) {
        let mut mirror = ClientMirror::new();
        for message in messages {
            let _ = mirror.apply_message(&message);
        }
    }

    #[test]
    fn the_mirror_never_panics_on_corrupted_real_messages(seed in any::<u64>(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut game = small_arena(seed, 10);
        let player = join(&mut game, 1, "victim");
        let mut mirror = ClientMirror::new();
        let mut events = Vec::new();
        for _ in 0..5 {
            game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
            let mut out = Vec::new();
            game.write_update(player, &mut out);
            for &(position, value) in &flips {
                let len = out.len();
                out[position % len] ^= value;
            }
            let _ = mirror.apply_message(&out);
        }
    }

    #[test]
    fn garbage_game_frames_are_rejected_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
        let mut game = small_arena(1, 0);
        let player = join(&mut game, 1, "fuzzer");
        let _ = game.handle_message(player, &bytes);
        let mut events = Vec::new();
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    }
}

#[test]
fn steering_turns_the_snake_the_client_sees() {
    let mut game = small_arena(7, 0);
    let player = join(&mut game, 1, "pilot");
    let mut mirror = ClientMirror::new();
    let mut events = Vec::new();
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    update(&mut game, player, &mut mirror);
    let start = mirror.own_snake().unwrap().angle();
    // Steer to the opposite heading; at 4.5 rad/s a half turn takes 0.7 s.
    let wanted = start + std::f32::consts::PI * 0.5;
    for _ in 0..30 {
        send_input(&mut game, player, wanted, false);
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
        update(&mut game, player, &mut mirror);
    }
    let seen = mirror.own_snake().unwrap().angle();
    let difference = (seen - wanted).rem_euclid(std::f32::consts::TAU);
    let error = difference.min(std::f32::consts::TAU - difference);
    // The mirror's heading comes from quantized movement: within ~0.3 rad of the target.
    assert!(error < 0.3, "client sees heading {seen}, wanted {wanted}");
    let own = mirror.own_snake().unwrap();
    let body: Vec<_> = own.body(mirror.init().unwrap()).collect();
    assert!(body.len() > 4, "the body is reconstructed");
}

#[test]
fn death_is_reported_to_the_runtime_and_the_client_and_respawn_brings_the_snake_back() {
    let mut game = small_arena(3, 0);
    let player = join(&mut game, 1, "mortal");
    let mut mirror = ClientMirror::new();
    let mut events = Vec::new();
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    update(&mut game, player, &mut mirror);
    let score_before = game
        .world()
        .snake(game.snake_of(player).unwrap())
        .unwrap()
        .score();
    assert!(game.kill(player));
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    assert_eq!(
        events,
        vec![GameEvent::RunEnded(RunScore {
            player,
            score: score_before
        })]
    );
    update(&mut game, player, &mut mirror);
    let death = mirror.take_death().expect("death frame");
    assert_eq!(death.final_score, score_before);
    assert_eq!(death.killer, None);
    assert!(mirror.own_snake().is_none());
    assert!(!game.kill(player), "a dead snake cannot be killed again");

    let mut respawn = Vec::new();
    encode_respawn(&mut respawn);
    game.handle_message(player, &respawn).unwrap();
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    update(&mut game, player, &mut mirror);
    assert!(mirror.own_snake().is_some());
    assert!(mirror.death().is_none());
}

#[test]
fn leaving_reports_the_live_run() {
    let mut game = small_arena(5, 0);
    let player = join(&mut game, 1, "leaver");
    let mut events = Vec::new();
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    let score = game
        .world()
        .snake(game.snake_of(player).unwrap())
        .unwrap()
        .score();
    let mut left = Vec::new();
    game.leave(player, &mut left);
    assert_eq!(left, vec![GameEvent::RunEnded(RunScore { player, score })]);
    left.clear();
    game.leave(player, &mut left);
    assert!(left.is_empty(), "a second leave reports nothing");
    assert_eq!(game.population().humans, 0);
}

#[test]
fn meta_arrives_within_a_second_with_room_counts() {
    let mut game = small_arena(11, 5);
    let player = join(&mut game, 1, "reader");
    let mut mirror = ClientMirror::new();
    let mut events = Vec::new();
    for _ in 0..25 {
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
        update(&mut game, player, &mut mirror);
    }
    let meta = mirror.meta().expect("meta frame");
    assert_eq!(meta.humans, 1);
    assert_eq!(meta.bots as usize, game.population().bots);
    assert!(meta.own_rank >= 1);
    assert!(meta.top.iter().any(|row| row.name == "reader") || meta.top.len() == 10);
    let own = game.world().snake(game.snake_of(player).unwrap()).unwrap();
    assert!(meta.own_score <= own.score() + 5);
}

#[test]
fn bad_client_frames_are_rejected_with_stable_codes() {
    let mut game = small_arena(1, 0);
    let player = join(&mut game, 1, "sender");
    let truncated = game.handle_message(player, &[0x10, 1]).unwrap_err();
    assert_eq!(truncated.code, ErrorCode::Truncated.into());
    let unknown = game.handle_message(player, &[0x7f]).unwrap_err();
    assert_eq!(unknown.code, ErrorCode::BadFrame.into());
    let stranger = game.handle_message(PlayerId(99), &[0x11]).unwrap_err();
    assert_eq!(stranger.code, ErrorCode::OutOfOrder.into());
}

#[test]
fn a_quiet_tick_costs_well_under_a_hundred_bytes_for_a_lone_snake() {
    // Not a speed assertion: a size property of the encoding. A snake alone in view moving
    // straight costs a state frame of a few bytes once the pellets around it are known.
    let mut game = small_arena(13, 0);
    let player = join(&mut game, 1, "alone");
    let mut mirror = ClientMirror::new();
    let mut events = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..40 {
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
        sizes.push(update(&mut game, player, &mut mirror));
    }
    assert!(
        sizes[0] > 100,
        "the first update carries init and the surroundings"
    );
    let mut steady: Vec<_> = sizes[20..].to_vec();
    steady.sort_unstable();
    assert!(steady[steady.len() / 2] < 40, "steady updates: {steady:?}");
}

#[test]
fn runtime_frames_from_a_newer_server_are_skipped_by_the_mirror() {
    let mut game = small_arena(11, 0);
    let player = join(&mut game, 1, "old-client");
    let mut mirror = ClientMirror::new();
    let mut events = Vec::new();
    game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    // A frame type this version does not know (0x8f), then the real update.
    let mut message = Vec::new();
    coil_protocol::codec::Writer::new(&mut message).frame(0x8f, |w| w.u32(7));
    game.write_update(player, &mut message);
    mirror.apply_message(&message).unwrap();
    assert!(mirror.own_snake().is_some(), "the update after it applied");
}
