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

/// A standard arena topped up to `snakes` bots and played for `warm_up_ticks` (20 per simulated
/// second), so bodies have grown, bots have died and respawned, and buffers have grown.
fn warmed_world(snakes: usize, warm_up_ticks: usize) -> World {
    let mut world = World::new(ArenaConfig::default(), 0xC011);
    world.set_bot_target(snakes);
    let mut events = Vec::new();
    for _ in 0..warm_up_ticks {
        world.step(DT, &mut events);
        events.clear();
    }
    world
}

/// Warmed up for one minute (the figure to quote) and for five, to show allocations fading
/// once per-cell buffers have reached their high-water marks.
#[divan::bench(args = [1200, 6000])]
fn step_140_bots(bencher: divan::Bencher, warm_up_ticks: usize) {
    let mut world = warmed_world(140, warm_up_ticks);
    let mut events: Vec<SimEvent> = Vec::with_capacity(64);
    bencher.bench_local(|| {
        events.clear();
        world.step(DT, &mut events);
    });
}

/// What one viewer's snapshot costs in queries: every snake and pellet in a 1920x1080 view.
#[divan::bench]
fn view_queries_140_bots(bencher: divan::Bencher) {
    let world = warmed_world(140, 1200);
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

/// Which snakes one viewer sees: the snake half of `view_queries_140_bots`, with the encoder's
/// view box grown by its keep margin (1,840 × 1,140).
#[divan::bench]
fn snake_view_query_140_bots(bencher: divan::Bencher) {
    let world = warmed_world(140, 1200);
    let centers: Vec<Vec2> = world.snakes().map(|snake| snake.head()).collect();
    let half_extent = Vec2::new(920.0, 570.0);
    let mut next = 0;
    bencher.bench_local(|| {
        let center = centers[next % centers.len()];
        next += 1;
        let mut seen = 0usize;
        world.for_each_snake_near(center, half_extent, |_| seen += 1);
        seen
    });
}
