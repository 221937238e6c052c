//! Scenario and property tests of the World's rules, in-crate so scenarios can place snakes
//! exactly. No timing is asserted here; speed lives in `benches/tick.rs`.

use std::f32::consts::{FRAC_PI_2, PI};

use proptest::prelude::*;

use std::collections::BTreeMap;

use crate::{
    ArenaConfig, Pellet, PelletChange, SEGMENT_SPACING, SimEvent, SnakeId, SnakeKind, Vec2, World,
};

const DT: f32 = 0.05;

/// An arena where nothing happens unless a test makes it happen: no food, no bots.
fn empty_world() -> World {
    let mut world = World::new(ArenaConfig::default(), 1);
    world.clear_pellets_for_test();
    world
}

/// A smaller, denser arena so random runs see plenty of collisions, deaths and boosting.
fn crowded_config() -> ArenaConfig {
    ArenaConfig {
        radius: 900.0,
        natural_pellet_target: 600,
        max_pellets: 2500,
        dropped_pellet_lifetime: 3.0,
        ..ArenaConfig::default()
    }
}

fn step(world: &mut World) -> Vec<SimEvent> {
    let mut events = Vec::new();
    world.step(DT, &mut events);
    assert!(
        world.grid_matches_bodies(),
        "the grid drifted from the bodies"
    );
    events
}

fn died(events: &[SimEvent], id: SnakeId) -> Option<Option<SnakeId>> {
    events.iter().find_map(|event| match event {
        SimEvent::SnakeDied { snake, killer, .. } if *snake == id => Some(*killer),
        _ => None,
    })
}

fn pellets_in(world: &World, center: Vec2, half_extent: Vec2) -> Vec<Pellet> {
    let mut found = Vec::new();
    world.for_each_pellet_in(center, half_extent, |pellet| found.push(*pellet));
    found
}

fn everything(world: &World) -> Vec<Pellet> {
    let reach = world.config().radius * 2.0;
    pellets_in(world, Vec2::ZERO, Vec2::new(reach, reach))
}

/// Gives a snake `mass` and the length and girth that go with it, as if it had grown.
fn set_mass(world: &mut World, id: SnakeId, mass: f32) {
    let config = world.config().clone();
    let snake = world.snake_mut_for_test(id);
    snake.mass = mass;
    snake.length = config.target_length(mass);
    snake.girth = config.girth_for_mass(mass);
}

#[test]
fn heading_turns_toward_the_input_at_the_bounded_rate_without_overshoot() {
    let mut world = empty_world();
    let id = world.spawn_snake(SnakeKind::Human, "turner", 0);
    world.place_snake_for_test(id, Vec2::ZERO, 0.0);
    world.set_input(id, FRAC_PI_2, false);
    step(&mut world);
    let turn_per_tick = world.config().turn_rate * DT;
    let angle = world.snake(id).unwrap().angle();
    assert!(
        (angle - turn_per_tick).abs() < 1e-5,
        "turned {angle}, limit {turn_per_tick}"
    );
    for _ in 0..20 {
        step(&mut world);
    }
    assert!((world.snake(id).unwrap().angle() - FRAC_PI_2).abs() < 1e-5);
    // The short way round: from just below +pi to just above -pi is a small left turn.
    world.place_snake_for_test(id, Vec2::ZERO, PI - 0.05);
    world.set_input(id, -PI + 0.05, false);
    step(&mut world);
    assert!((world.snake(id).unwrap().angle() - (-PI + 0.05)).abs() < 1e-4);
}

#[test]
fn head_moves_at_speed_and_body_points_keep_their_spacing() {
    let mut world = empty_world();
    let id = world.spawn_snake(SnakeKind::Human, "mover", 0);
    world.place_snake_for_test(id, Vec2::new(-200.0, 0.0), 0.0);
    for tick in 0..40 {
        // Weave, so spacing is checked on a bent body as well.
        world.set_input(id, if tick % 10 < 5 { 0.6 } else { -0.6 }, false);
        let before = world.snake(id).unwrap().head();
        step(&mut world);
        let snake = world.snake(id).unwrap();
        let moved = snake.head().distance(before);
        assert!((moved - world.config().speed * DT).abs() < 1e-3);
        let body: Vec<Vec2> = snake.body().collect();
        assert_eq!(body.len(), snake.body_len());
        assert!(body[0].distance(body[1]) <= SEGMENT_SPACING + 1e-3);
        for pair in body[1..].windows(2) {
            assert!((pair[0].distance(pair[1]) - SEGMENT_SPACING).abs() < 1e-3);
        }
    }
}

#[test]
fn boost_spends_mass_and_oxygen_drops_pellets_then_oxygen_refills() {
    let mut world = empty_world();
    let config = world.config().clone();
    let id = world.spawn_snake(SnakeKind::Human, "booster", 0);
    world.place_snake_for_test(id, Vec2::new(-1500.0, 0.0), 0.0);
    set_mass(&mut world, id, 100.0);
    world.set_input(id, 0.0, true);
    let start = world.snake(id).unwrap().head();
    for _ in 0..20 {
        step(&mut world);
    }
    let snake = world.snake(id).unwrap();
    assert!(snake.boosting());
    assert!((snake.oxygen() - (1.0 - config.oxygen_drain_per_second)).abs() < 1e-3);
    assert!((snake.mass() - (100.0 - config.boost_mass_per_second)).abs() < 1e-2);
    assert!((snake.head().distance(start) - config.boost_speed).abs() < 0.5);
    let dropped: f32 = everything(&world).iter().map(|pellet| pellet.value).sum();
    let pending = world.snake_mut_for_test(id).boost_mass_to_drop;
    assert!((dropped + pending - config.boost_mass_per_second).abs() < 1e-2);

    // Boost until out of breath: boosting stops and does not flicker back on right away.
    for _ in 0..100 {
        step(&mut world);
    }
    let snake = world.snake(id).unwrap();
    assert!(!snake.boosting());
    assert!(snake.oxygen() < config.oxygen_restart_level);

    world.set_input(id, 0.0, false);
    let before = world.snake(id).unwrap().oxygen();
    for _ in 0..20 {
        step(&mut world);
    }
    let refilled = world.snake(id).unwrap().oxygen() - before;
    assert!((refilled - config.oxygen_refill_per_second).abs() < 1e-3);
}

#[test]
fn boost_stops_at_the_minimum_mass() {
    let mut world = empty_world();
    let id = world.spawn_snake(SnakeKind::Human, "light", 0);
    world.place_snake_for_test(id, Vec2::ZERO, 0.0);
    let minimum = world.config().min_boost_mass;
    set_mass(&mut world, id, minimum + 0.1);
    world.set_input(id, 0.0, true);
    for _ in 0..5 {
        step(&mut world);
    }
    let snake = world.snake(id).unwrap();
    assert!(!snake.boosting());
    assert!((snake.mass() - minimum).abs() < 1e-4);
}

#[test]
fn eating_grows_mass_then_length_and_girth_smoothly() {
    let mut world = empty_world();
    let config = world.config().clone();
    let id = world.spawn_snake(SnakeKind::Human, "eater", 0);
    world.place_snake_for_test(id, Vec2::ZERO, 0.0);
    let before = world.snake(id).unwrap().clone();
    world.insert_pellet_for_test(Vec2::new(10.0, 0.0), 30.0);
    step(&mut world);
    let after = world.snake(id).unwrap().clone();
    assert!((after.mass() - (before.mass() + 30.0)).abs() < 1e-4);
    assert_eq!(world.pellet_count(), 0);
    // Length follows over several ticks instead of jumping.
    let mut lengths = vec![after.length()];
    for _ in 0..40 {
        step(&mut world);
        let snake = world.snake(id).unwrap();
        assert!((0.0..1.0).contains(&snake.tail_extension()));
        lengths.push(snake.length());
    }
    for pair in lengths.windows(2) {
        assert!(pair[1] >= pair[0]);
        assert!(pair[1] - pair[0] <= config.length_change_per_second * DT + 1e-4);
    }
    let grown = world.snake(id).unwrap();
    assert!((grown.length() - config.target_length(before.mass() + 30.0)).abs() < 1e-3);
    assert!(grown.girth() > before.girth());
    assert!(grown.body_len() > before.body_len());
}

#[test]
fn a_head_at_the_edge_dies_and_a_human_keeps_its_id_until_respawn() {
    let mut world = empty_world();
    let radius = world.config().radius;
    let id = world.spawn_snake(SnakeKind::Human, "edge", 0);
    world.place_snake_for_test(id, Vec2::new(radius - 40.0, 0.0), 0.0);
    let mut killer = None;
    for _ in 0..20 {
        let events = step(&mut world);
        if let Some(found) = died(&events, id) {
            killer = Some(found);
            break;
        }
    }
    assert_eq!(killer, Some(None), "the edge kills without a killer");
    assert_eq!(world.snakes().count(), 0);
    assert_eq!(world.humans(), 1);
    assert!(!world.snake(id).unwrap().alive());
    assert_eq!(world.snake(id).unwrap().body().count(), 0);
    assert!(world.respawn(id));
    assert!(!world.respawn(id), "a live snake cannot respawn");
    let snake = world.snake(id).unwrap();
    assert!(snake.alive());
    assert!(snake.head().length() < radius * 0.8);
}

#[test]
fn a_head_touching_another_body_dies_and_the_body_becomes_pellets() {
    let mut world = empty_world();
    let config = world.config().clone();
    let wall = world.spawn_snake(SnakeKind::Human, "wall", 0);
    set_mass(&mut world, wall, 100.0);
    // A long body standing upright along x = 60, its head far above and moving away.
    world.place_snake_for_test(wall, Vec2::new(60.0, 200.0), FRAC_PI_2);
    world.set_input(wall, FRAC_PI_2, false);
    let victim = world.spawn_snake(SnakeKind::Human, "victim", 3);
    set_mass(&mut world, victim, 60.0);
    world.place_snake_for_test(victim, Vec2::ZERO, 0.0);
    world.set_input(victim, 0.0, false);
    let victim_body_end = world.snake(victim).unwrap().body().last().unwrap();
    let victim_mass = world.snake(victim).unwrap().mass();

    let mut killer = None;
    for _ in 0..20 {
        let events = step(&mut world);
        if let Some(found) = died(&events, victim) {
            killer = Some(found);
            break;
        }
    }
    assert_eq!(killer, Some(Some(wall)));
    assert!(
        world.snake(wall).unwrap().alive(),
        "the body's owner survives"
    );
    assert!(!world.snake(victim).unwrap().alive());

    let dropped = pellets_in(&world, Vec2::new(-80.0, 0.0), Vec2::new(200.0, 40.0));
    let dropped_value: f32 = dropped.iter().map(|pellet| pellet.value).sum();
    assert!(!dropped.is_empty());
    assert!((dropped_value - victim_mass * config.death_mass_fraction).abs() < 1e-2);
    assert!(dropped.iter().all(|pellet| pellet.color == 3));
    // Food lies along the whole body, the tail end included: the tail moved as far as the
    // head did, and pellets sit at evenly spread body points (the last few may be skipped).
    let moved = world.snake(victim).unwrap().head().x;
    let tail_now = victim_body_end.x + moved;
    assert!(
        dropped
            .iter()
            .any(|pellet| pellet.pos.x < tail_now + 3.0 * SEGMENT_SPACING)
    );
}

#[test]
fn two_heads_meeting_both_die() {
    let mut world = empty_world();
    let left = world.spawn_snake(SnakeKind::Human, "left", 0);
    let right = world.spawn_snake(SnakeKind::Human, "right", 0);
    world.place_snake_for_test(left, Vec2::new(-30.0, 0.0), 0.0);
    world.place_snake_for_test(right, Vec2::new(30.0, 0.0), PI);
    world.set_input(left, 0.0, false);
    world.set_input(right, PI, false);
    let mut deaths = Vec::new();
    for _ in 0..10 {
        deaths.extend(step(&mut world));
        if !deaths.is_empty() {
            break;
        }
    }
    assert_eq!(died(&deaths, left), Some(Some(right)));
    assert_eq!(died(&deaths, right), Some(Some(left)));
}

#[test]
fn a_bot_steers_away_from_the_wall_where_an_idle_snake_dies() {
    let mut world = empty_world();
    let radius = world.config().radius;
    let start = Vec2::new(radius - 60.0, 0.0);

    // Control: without steering, this spot and heading are fatal within the ticks we watch.
    let idle = world.spawn_snake(SnakeKind::Human, "idle", 0);
    world.place_snake_for_test(idle, start, 0.0);
    world.set_input(idle, 0.0, false);
    let mut idle_died = false;
    for _ in 0..200 {
        idle_died |= died(&step(&mut world), idle).is_some();
    }
    assert!(idle_died);

    world.set_bot_target(1);
    step(&mut world);
    let bot = world
        .snakes()
        .find(|snake| snake.kind() == SnakeKind::Bot)
        .unwrap()
        .id();
    world.place_snake_for_test(bot, start, 0.0);
    for _ in 0..200 {
        let events = step(&mut world);
        assert_eq!(died(&events, bot), None, "the bot ran into the wall");
    }
    assert!(world.snake(bot).unwrap().head().length() < radius - 100.0);
}

#[test]
fn a_bot_turns_away_from_a_body_ahead() {
    let mut world = empty_world();
    let wall = world.spawn_snake(SnakeKind::Human, "wall", 0);
    set_mass(&mut world, wall, 400.0);
    world.place_snake_for_test(wall, Vec2::new(120.0, 600.0), FRAC_PI_2);
    world.set_input(wall, FRAC_PI_2, false);
    world.set_bot_target(1);
    step(&mut world);
    let bot = world
        .snakes()
        .find(|snake| snake.kind() == SnakeKind::Bot)
        .unwrap()
        .id();
    world.place_snake_for_test(bot, Vec2::ZERO, 0.0);
    for _ in 0..60 {
        let events = step(&mut world);
        assert_eq!(died(&events, bot), None, "the bot ran into a body");
    }
}

#[test]
fn bots_join_gradually_and_leave_at_once_so_humans_always_fit() {
    let mut world = World::new(ArenaConfig::default(), 9);
    let per_tick = world.config().bot_spawns_per_tick;
    world.set_bot_target(10);
    let mut previous = 0;
    while world.bots() < 10 {
        step(&mut world);
        assert!(world.bots() - previous <= per_tick);
        previous = world.bots();
    }
    let human = world.spawn_snake(SnakeKind::Human, "player", 1);
    world.set_bot_target(9);
    assert_eq!(world.bots(), 9);
    assert_eq!(world.snakes().count(), world.humans() + world.bot_target());
    world.set_bot_target(0);
    assert_eq!(world.bots(), 0);
    assert_eq!(
        world.snakes().map(|snake| snake.id()).collect::<Vec<_>>(),
        vec![human]
    );
    for _ in 0..10 {
        step(&mut world);
        assert_eq!(world.bots(), 0);
    }
}

#[test]
fn ids_are_not_reused_and_removal_reports_the_score_of_a_live_snake() {
    let mut world = empty_world();
    let first = world.spawn_snake(SnakeKind::Human, "first", 0);
    let start_score = world.snake(first).unwrap().score();
    assert_eq!(world.remove_snake(first), Some(start_score));
    assert_eq!(world.remove_snake(first), None);
    let second = world.spawn_snake(SnakeKind::Human, "second", 0);
    assert_ne!(first, second);
    assert!(world.kill_snake(second));
    let events = step(&mut world);
    assert_eq!(died(&events, second), Some(None));
    assert_eq!(
        world.remove_snake(second),
        None,
        "a dead snake has no run in progress"
    );
    assert_eq!(world.humans(), 0);
    assert!(world.snake(second).is_none());
}

#[test]
fn a_snake_spawned_between_steps_is_seen_by_view_queries_at_once() {
    let mut world = World::new(ArenaConfig::default(), 5);
    let id = world.spawn_snake(SnakeKind::Human, "newcomer", 0);
    let head = world.snake(id).unwrap().head();
    let mut seen = Vec::new();
    world.for_each_snake_near(head, Vec2::new(5.0, 5.0), |snake| seen.push(snake.id()));
    assert_eq!(seen, vec![id]);
    seen.clear();
    world.for_each_snake_near(Vec2::new(0.0, 9000.0), Vec2::new(5.0, 5.0), |snake| {
        seen.push(snake.id())
    });
    assert!(seen.is_empty());
    assert!(world.grid_matches_bodies());
}

#[test]
fn hostile_inputs_are_ignored_instead_of_panicking() {
    let mut world = empty_world();
    let id = world.spawn_snake(SnakeKind::Human, &"名".repeat(100), 255);
    assert!(world.snake(id).unwrap().name().len() <= 64);
    world.place_snake_for_test(id, Vec2::ZERO, 0.0);
    world.set_input(id, f32::NAN, false);
    world.set_input(id, f32::INFINITY, true);
    world.set_input(SnakeId(999), 1.0, true);
    assert!(!world.respawn(SnakeId(999)));
    let mut events = Vec::new();
    for dt in [f32::NAN, -1.0, f32::INFINITY, 1.0e9, 0.0] {
        world.step(dt, &mut events);
    }
    let snake = world.snake(id).unwrap();
    assert_eq!(snake.angle(), 0.0);
    assert!(snake.head().is_finite());
    world.for_each_pellet_in(
        Vec2::new(f32::NAN, 0.0),
        Vec2::new(f32::INFINITY, -5.0),
        |_| {},
    );
    world.for_each_snake_near(Vec2::new(f32::NAN, 0.0), Vec2::new(1.0, 1.0), |_| {});
}

/// One thing a room can do to a World, as generated by proptest and recorded for replays.
#[derive(Debug, Clone)]
enum Operation {
    SpawnHuman(u8),
    Remove(u8),
    Respawn(u8),
    Kill(u8),
    Input(u8, f32, bool),
    BotTarget(u8),
    Step(f32),
}

fn operation() -> impl Strategy<Value = Operation> {
    let angle = prop_oneof![
        8 => -10.0f32..10.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
    ];
    let dt = prop_oneof![
        12 => Just(DT),
        2 => 0.0f32..0.3,
        1 => Just(f32::NAN),
        1 => Just(-0.5f32),
        1 => Just(5.0f32),
    ];
    prop_oneof![
        2 => any::<u8>().prop_map(Operation::SpawnHuman),
        1 => any::<u8>().prop_map(Operation::Remove),
        2 => any::<u8>().prop_map(Operation::Respawn),
        1 => any::<u8>().prop_map(Operation::Kill),
        8 => (any::<u8>(), angle, any::<bool>()).prop_map(|(who, angle, boost)| Operation::Input(who, angle, boost)),
        1 => (0u8..30).prop_map(Operation::BotTarget),
        24 => dt.prop_map(Operation::Step),
    ]
}

/// Picks an existing (or, for some picks, a never-used) id so unknown ids are exercised too.
fn pick_id(world: &World, known: &[SnakeId], pick: u8) -> SnakeId {
    let _ = world;
    if known.is_empty() || pick >= 240 {
        SnakeId(60_000 + u16::from(pick))
    } else {
        known[pick as usize % known.len()]
    }
}

/// Applies `operation`; returns the events of a step.
fn apply(world: &mut World, known: &mut Vec<SnakeId>, operation: &Operation) -> Vec<SimEvent> {
    let mut events = Vec::new();
    match *operation {
        Operation::SpawnHuman(skin) => {
            if world.humans() < 12 {
                known.push(world.spawn_snake(SnakeKind::Human, "player", skin));
            }
        }
        Operation::Remove(pick) => {
            let id = pick_id(world, known, pick);
            world.remove_snake(id);
        }
        Operation::Respawn(pick) => {
            let id = pick_id(world, known, pick);
            world.respawn(id);
        }
        Operation::Kill(pick) => {
            let id = pick_id(world, known, pick);
            world.kill_snake(id);
        }
        Operation::Input(pick, angle, boost) => {
            let id = pick_id(world, known, pick);
            world.set_input(id, angle, boost);
        }
        Operation::BotTarget(bots) => world.set_bot_target(usize::from(bots)),
        Operation::Step(dt) => world.step(dt, &mut events),
    }
    events
}

fn check_invariants(world: &World) -> Result<(), TestCaseError> {
    let radius = world.config().radius;
    let mut ids = Vec::new();
    for snake in world.snakes() {
        ids.push(snake.id());
        prop_assert!(snake.alive());
        prop_assert!(snake.head().is_finite() && snake.angle().is_finite());
        prop_assert!(
            snake.head().length() <= radius,
            "head outside: {:?}",
            snake.head()
        );
        for value in [snake.mass(), snake.length(), snake.girth(), snake.oxygen()] {
            prop_assert!(value.is_finite() && value >= 0.0);
        }
        prop_assert!((0.0..=1.0).contains(&snake.oxygen()));
        prop_assert!((0.0..1.0).contains(&snake.tail_extension()));
        prop_assert!(snake.body().all(Vec2::is_finite));
        prop_assert_eq!(snake.body().count(), snake.body_len());
    }
    ids.sort();
    ids.dedup();
    prop_assert_eq!(ids.len(), world.snakes().count(), "duplicate snake ids");
    prop_assert!(world.snakes().count() <= world.humans() + world.bot_target());
    prop_assert!(world.bots() <= world.bot_target());
    let pellets = everything(world);
    prop_assert_eq!(pellets.len(), world.pellet_count());
    for pellet in &pellets {
        prop_assert!(pellet.pos.is_finite() && pellet.value.is_finite() && pellet.value > 0.0);
        prop_assert!(
            pellet.pos.length() <= radius,
            "pellet outside: {:?}",
            pellet.pos
        );
        prop_assert!(pellet.id < world.next_pellet_id());
    }
    prop_assert!(
        world.grid_matches_bodies(),
        "the grid drifted from the bodies"
    );
    let ledger = world.mass_ledger();
    let expected = ledger.created - ledger.destroyed;
    let actual = world.total_mass();
    let tolerance = 1e-4 * ledger.created + 0.01;
    prop_assert!(
        (actual - expected).abs() <= tolerance,
        "mass {actual} but ledger says {expected} (created {}, destroyed {})",
        ledger.created,
        ledger.destroyed
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_runs_keep_every_invariant(
        seed in any::<u64>(),
        operations in prop::collection::vec(operation(), 1..400),
    ) {
        let mut world = World::new(crowded_config(), seed);
        let mut known = Vec::new();
        world.set_bot_target(12);
        for operation in &operations {
            apply(&mut world, &mut known, operation);
            check_invariants(&world)?;
        }
    }

    #[test]
    fn a_recorded_run_replays_to_the_same_state_hash(
        seed in any::<u64>(),
        operations in prop::collection::vec(operation(), 1..300),
    ) {
        let mut recording = Vec::new();
        let mut world = World::new(crowded_config(), seed);
        let mut known = Vec::new();
        for operation in &operations {
            let events = apply(&mut world, &mut known, operation);
            recording.push((operation.clone(), events, world.state_hash()));
        }

        let mut replay = World::new(crowded_config(), seed);
        let mut replay_known = Vec::new();
        for (operation, events, hash) in &recording {
            let replay_events = apply(&mut replay, &mut replay_known, operation);
            prop_assert_eq!(&replay_events, events);
            prop_assert_eq!(replay.state_hash(), *hash);
        }
    }

    /// The pellet journal is a complete record: a reader that starts from a full scan and
    /// applies every change it reads holds exactly the live pellets after any operation,
    /// sees each id added once and removed at most once, and never finds the journal gone
    /// when it reads after every operation. A second reader that reads only every few
    /// operations either stays exact too or is told the journal no longer reaches back.
    #[test]
    fn the_pellet_journal_replays_to_the_live_pellet_set(
        seed in any::<u64>(),
        operations in prop::collection::vec(operation(), 1..300),
        lazy_every in 1usize..6,
    ) {
        let mut world = World::new(crowded_config(), seed);
        world.set_bot_target(12);
        let mut known = Vec::new();
        let scan = |world: &World| -> BTreeMap<u32, Pellet> {
            everything(world).into_iter().map(|pellet| (pellet.id, pellet)).collect()
        };
        let apply_changes = |set: &mut BTreeMap<u32, Pellet>, changes: &[PelletChange], removed_ever: &mut Vec<u32>| -> Result<(), TestCaseError> {
            for change in changes {
                match *change {
                    PelletChange::Added(pellet) => {
                        prop_assert!(set.insert(pellet.id, pellet).is_none(), "added twice: {}", pellet.id);
                        prop_assert!(!removed_ever.contains(&pellet.id), "id reused: {}", pellet.id);
                    }
                    PelletChange::Removed(pellet) => {
                        prop_assert_eq!(set.remove(&pellet.id), Some(pellet), "removed what was not there");
                        removed_ever.push(pellet.id);
                    }
                }
            }
            Ok(())
        };
        let mut eager = scan(&world);
        let mut eager_position = world.pellet_journal_end();
        let mut eager_removed = Vec::new();
        let mut lazy = (scan(&world), world.pellet_journal_end());
        let mut lazy_removed = Vec::new();
        for (index, operation) in operations.iter().enumerate() {
            apply(&mut world, &mut known, operation);
            let changes = world.pellet_changes_since(eager_position);
            prop_assert!(changes.is_some(), "the journal forgot changes read after every operation");
            apply_changes(&mut eager, changes.unwrap_or_default(), &mut eager_removed)?;
            eager_position = world.pellet_journal_end();
            prop_assert_eq!(&eager, &scan(&world));

            if index % lazy_every == 0 {
                let (lazy_set, lazy_position) = &mut lazy;
                match world.pellet_changes_since(*lazy_position) {
                    Some(changes) => {
                        apply_changes(lazy_set, changes, &mut lazy_removed)?;
                        prop_assert_eq!(&*lazy_set, &scan(&world));
                    }
                    // Too late: start again from a scan, as the room's tracker does.
                    None => *lazy_set = scan(&world),
                }
                *lazy_position = world.pellet_journal_end();
            }
        }
        prop_assert!(world.pellet_changes_since(world.pellet_journal_end() + 1).is_none());
        // A scan reports pellets in `(pellet_cell, id)` order, as `pellet_cell` documents.
        let order: Vec<(usize, u32)> = everything(&world)
            .iter()
            .map(|pellet| (world.pellet_cell(pellet.pos), pellet.id))
            .collect();
        prop_assert!(order.is_sorted(), "a scan is not in (cell, id) order");
    }

    #[test]
    fn view_queries_match_a_brute_force_scan(
        seed in any::<u64>(),
        ticks in 1usize..60,
        center in (-1000.0f32..1000.0, -1000.0f32..1000.0),
        half in (0.0f32..700.0, 0.0f32..700.0),
    ) {
        let mut world = World::new(crowded_config(), seed);
        world.set_bot_target(25);
        let mut events = Vec::new();
        for _ in 0..ticks {
            world.step(DT, &mut events);
        }
        let center = Vec2::new(center.0, center.1);
        let half = Vec2::new(half.0, half.1);
        let inside = |point: Vec2| {
            (point.x - center.x).abs() <= half.x && (point.y - center.y).abs() <= half.y
        };

        let mut near = Vec::new();
        world.for_each_snake_near(center, half, |snake| near.push(snake.id()));
        let expected: Vec<SnakeId> = world
            .snakes()
            .filter(|snake| snake.body().any(inside))
            .map(|snake| snake.id())
            .collect();
        prop_assert_eq!(near, expected);

        let mut found: Vec<u32> = pellets_in(&world, center, half).iter().map(|pellet| pellet.id).collect();
        let mut expected: Vec<u32> = everything(&world)
            .iter()
            .filter(|pellet| inside(pellet.pos))
            .map(|pellet| pellet.id)
            .collect();
        found.sort_unstable();
        expected.sort_unstable();
        prop_assert_eq!(found, expected);
    }
}

/// The occupancy-map snake query against a brute-force scan in a full standard arena, for
/// view-sized and odd boxes alike (many coarse cells wholly inside, edges, the arena rim).
#[test]
fn snake_view_queries_match_a_brute_force_scan_in_a_full_arena() {
    let mut world = World::new(ArenaConfig::default(), 9);
    world.set_bot_target(140);
    let mut events = Vec::new();
    let mut random = crate::rng::SimRng::new(77);
    let mut checked = 0;
    for tick in 0..400 {
        world.step(DT, &mut events);
        events.clear();
        if tick % 20 != 19 {
            continue;
        }
        assert!(world.grid_matches_bodies());
        for _ in 0..200 {
            let center = Vec2::new(random.range(-3300.0, 3300.0), random.range(-3300.0, 3300.0));
            let half = Vec2::new(random.next_unit() * 1500.0, random.next_unit() * 900.0);
            let inside = |point: Vec2| {
                (point.x - center.x).abs() <= half.x && (point.y - center.y).abs() <= half.y
            };
            let mut near = Vec::new();
            world.for_each_snake_near(center, half, |snake| near.push(snake.id()));
            let expected: Vec<SnakeId> = world
                .snakes()
                .filter(|snake| snake.body().any(inside))
                .map(|snake| snake.id())
                .collect();
            assert_eq!(near, expected, "box {center:?} ± {half:?}");
            checked += usize::from(!expected.is_empty());
        }
    }
    assert!(checked > 500, "too few boxes saw a snake: {checked}");
}

#[test]
fn different_seeds_or_inputs_give_different_hashes() {
    let run = |seed: u64, steer: f32| {
        let mut world = World::new(crowded_config(), seed);
        world.set_bot_target(5);
        let human = world.spawn_snake(SnakeKind::Human, "p", 0);
        let mut events = Vec::new();
        for _ in 0..50 {
            world.set_input(human, steer, false);
            world.step(DT, &mut events);
        }
        world.state_hash()
    };
    assert_eq!(run(1, 0.5), run(1, 0.5));
    assert_ne!(run(1, 0.5), run(2, 0.5));
    assert_ne!(run(1, 0.5), run(1, 0.6));
}
