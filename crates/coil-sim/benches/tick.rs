//! `World::step` cost in a full, warmed-up room: 140 bots in the standard arena.
//!
//! Run with `cargo bench -p coil-sim --bench tick`. The allocation profiler shows that a warm
//! step allocates nothing (the World reuses every buffer); a few allocations can still show
//! up when a dead bot's replacement outgrows a recycled body buffer.

use coil_sim::{ArenaConfig, SimEvent, Vec2, World};

#[global_allocator]
static ALLOCATIONS: divan::AllocProfiler = divan::AllocProfiler::system();

const DT: f32 = 0.05;

fn main() {
    divan::main();
}

/// A standard arena topped up to 140 bots and played for 60 simulated seconds, so bodies have
/// grown, bots have died and respawned, and every buffer has reached its working size.
fn warmed_world(snakes: usize) -> World {
    let mut world = World::new(ArenaConfig::default(), 0xC011);
    world.set_bot_target(snakes);
    let mut events = Vec::new();
    for _ in 0..1200 {
        world.step(DT, &mut events);
        events.clear();
    }
    world
}

#[divan::bench(args = [140])]
fn step(bencher: divan::Bencher, snakes: usize) {
    let mut world = warmed_world(snakes);
    let mut events: Vec<SimEvent> = Vec::with_capacity(64);
    bencher.bench_local(|| {
        events.clear();
        world.step(DT, &mut events);
    });
}

/// What one viewer's snapshot costs in queries: every snake and pellet in a 1920x1080 view.
#[divan::bench(args = [140])]
fn view_queries(bencher: divan::Bencher, snakes: usize) {
    let world = warmed_world(snakes);
    let centers: Vec<Vec2> = world.snakes().map(|snake| snake.head()).collect();
    let half_extent = Vec2::new(960.0, 540.0);
    let mut next = 0;
    bencher.bench_local(|| {
        let center = centers[next % centers.len()];
        next += 1;
        let mut seen = 0usize;
        world.for_each_snake_near(center, half_extent, |_| seen += 1);
        world.for_each_pellet_in(center, half_extent, |_| seen += 1);
        seen
    });
}
