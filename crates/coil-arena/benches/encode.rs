//! Arena encoding benchmarks.
//!
//! 1. A BYTES report (printed first): an arena-standard-like room — 120 snakes, 100 of them
//!    steering "humans" whose target point changes every 1–3 s and who boost 10% of the
//!    time, respawning 2 s after a death, 5% of them leaving and rejoining per minute — runs
//!    30 s of game time to warm up, then 60 s
//!    measured. It prints the median and p95 bytes per human per second server → client,
//!    WebSocket framing included (2 bytes of header below 126 bytes of payload, 4 below
//!    65,536, 10 above), and where those bytes go.
//! 2. divan timings: one room tick with and without encoding every viewer's update in a
//!    warmed 140-snake room (100 humans + 40 bots). `tick_only` is the simulation step plus
//!    the room-level pellet tracker (shared by all viewers); the difference between the two
//!    is the per-viewer encode cost, 100 viewers per iteration.
//!
//! Run: `cargo bench -p coil-game --bench encode` (set `COIL_BYTES_SECONDS=10` for a shorter
//! measured window while iterating).

use coil_arena::client::ClientMirror;
use coil_arena::{Arena, ArenaSettings};
use coil_game::{Game, GameEvent, Identity, PlayerId, TickContext};
use coil_protocol::arena::{
    Input, StateFrame, angle_to_u16, decode_state_into, encode_input, encode_respawn, server_type,
};
use coil_protocol::codec::server_frames;
use divan::Bencher;
use divan::counter::ItemsCount;

const TICK_RATE: u32 = 20;
const DT: f32 = 1.0 / TICK_RATE as f32;

/// SplitMix64: the bench's own deterministic randomness (no dependency for it).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A simulated human: steers toward a target that changes every 1–3 s.
struct Driver {
    player: PlayerId,
    target: [f32; 2],
    ticks_to_new_target: u32,
    boost: bool,
    dead_ticks: Option<u32>,
}

impl Driver {
    fn steer(&mut self, game: &mut Arena, random: &mut Random, radius: f32) {
        let Some(snake) = game
            .snake_of(self.player)
            .and_then(|id| game.world().snake(id))
        else {
            return;
        };
        if !snake.alive() {
            let waited = self.dead_ticks.get_or_insert(0);
            *waited += 1;
            if *waited >= 2 * TICK_RATE {
                let mut frame = Vec::new();
                encode_respawn(&mut frame);
                game.handle_message(self.player, &frame).unwrap();
                self.dead_ticks = None;
            }
            return;
        }
        if self.ticks_to_new_target == 0 {
            let angle = random.unit() * std::f32::consts::TAU;
            let distance = random.unit().sqrt() * radius * 0.9;
            self.target = [angle.cos() * distance, angle.sin() * distance];
            self.ticks_to_new_target = TICK_RATE + (random.unit() * 2.0 * TICK_RATE as f32) as u32;
            self.boost = random.unit() < 0.1;
        }
        self.ticks_to_new_target -= 1;
        let head = snake.head();
        let angle = (self.target[1] - head.y).atan2(self.target[0] - head.x);
        let mut frame = Vec::new();
        encode_input(
            Input {
                angle: angle_to_u16(angle),
                boost: self.boost,
            },
            &mut frame,
        );
        game.handle_message(self.player, &frame).unwrap();
    }
}

struct Room {
    game: Arena,
    drivers: Vec<Driver>,
    random: Random,
    events: Vec<GameEvent>,
    out: Vec<u8>,
}

impl Room {
    fn new(humans: u32, bots: usize, seed: u64) -> Room {
        let mut game = Arena::new(ArenaSettings {
            seed,
            ..ArenaSettings::default()
        });
        game.set_bot_target(bots);
        let drivers = (0..humans)
            .map(|index| {
                let player = PlayerId(index + 1);
                game.join(
                    player,
                    &Identity {
                        skin: index as u8,
                        ..Identity::guest(player.0.to_string(), format!("human{index:03}"))
                    },
                )
                .expect("the arena seats every player");
                Driver {
                    player,
                    target: [0.0, 0.0],
                    ticks_to_new_target: 0,
                    boost: false,
                    dead_ticks: None,
                }
            })
            .collect();
        Room {
            game,
            drivers,
            random: Random(seed),
            events: Vec::new(),
            out: Vec::new(),
        }
    }

    fn step(&mut self) {
        let radius = self.game.world().config().radius;
        for driver in &mut self.drivers {
            driver.steer(&mut self.game, &mut self.random, radius);
        }
        self.events.clear();
        self.game
            .tick(TickContext { dt: DT, tick: 0 }, &mut self.events);
    }

    /// Encodes every viewer's update; calls `sink` with each message.
    fn encode_all(&mut self, mut sink: impl FnMut(usize, &[u8])) {
        for (index, driver) in self.drivers.iter().enumerate() {
            self.out.clear();
            self.game.write_update(driver.player, &mut self.out);
            sink(index, &self.out);
        }
    }
}

fn websocket_header(payload: usize) -> usize {
    match payload {
        0..126 => 2,
        126..65536 => 4,
        _ => 10,
    }
}

#[derive(Default)]
struct Breakdown {
    websocket: u64,
    state: u64,
    meta: u64,
    other_frames: u64,
    entries: u64,
    body_bytes: u64,
    moves: u64,
    extensions: u64,
    new_pellets: u64,
    eaten: u64,
}

fn bytes_report() {
    let measured_seconds: u32 = std::env::var("COIL_BYTES_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let mut room = Room::new(100, 20, 42);
    let mut mirrors: Vec<ClientMirror> = (0..100).map(|_| ClientMirror::without_bodies()).collect();
    let mut bytes = vec![0u64; 100];
    let mut breakdown = Breakdown::default();
    let mut state = StateFrame::default();
    let warm_up_ticks = 30 * TICK_RATE;
    let total_ticks = warm_up_ticks + measured_seconds * TICK_RATE;
    let started = std::time::Instant::now();
    // arena-standard: 5% of the humans leave and rejoin per minute, i.e. one every 12 s. A
    // rejoin is a new seat and a fresh client; its bytes count toward the same human slot.
    let rejoin_every = 12 * TICK_RATE;
    let mut next_player = 1000u32;
    for tick in 0..total_ticks {
        if tick % rejoin_every == rejoin_every - 1 {
            let slot = (room.random.next() % room.drivers.len() as u64) as usize;
            let old = room.drivers[slot].player;
            room.game.leave(old, &mut room.events);
            next_player += 1;
            let player = PlayerId(next_player);
            room.game
                .join(
                    player,
                    &Identity {
                        skin: 3,
                        ..Identity::guest(player.0.to_string(), format!("rejoin{next_player}"))
                    },
                )
                .expect("the arena seats every player");
            room.drivers[slot] = Driver {
                player,
                target: [0.0, 0.0],
                ticks_to_new_target: 0,
                boost: false,
                dead_ticks: None,
            };
            mirrors[slot] = ClientMirror::without_bodies();
        }
        room.step();
        let measuring = tick >= warm_up_ticks;
        room.encode_all(|index, message| {
            // Every message is applied by a client mirror, so the figures are for frames a
            // real client can decode.
            mirrors[index]
                .apply_message(message)
                .expect("client applies the server's message");
            if !measuring {
                return;
            }
            bytes[index] += (message.len() + websocket_header(message.len())) as u64;
            breakdown.websocket += websocket_header(message.len()) as u64;
            for frame in server_frames(message) {
                let (frame_type, payload) = frame.unwrap();
                let size = 1 + payload.len() as u64 + if payload.len() < 128 { 1 } else { 2 };
                match frame_type {
                    server_type::STATE => {
                        breakdown.state += size;
                        decode_state_into(payload, &mut state).unwrap();
                        breakdown.entries += state.entered.len() as u64;
                        breakdown.body_bytes += state.body_directions.len() as u64;
                        breakdown.moves += state.moves.len() as u64;
                        breakdown.extensions += state.extensions.len() as u64;
                        breakdown.new_pellets += state.new_pellets.len() as u64;
                        breakdown.eaten += state.eaten.len() as u64;
                    }
                    server_type::META => breakdown.meta += size,
                    _ => breakdown.other_frames += size,
                }
            }
        });
    }
    let seconds = f64::from(measured_seconds);
    let mut per_second: Vec<f64> = bytes.iter().map(|&b| b as f64 / seconds).collect();
    per_second.sort_by(f64::total_cmp);
    let median = per_second[per_second.len() / 2];
    let p95 = per_second[(per_second.len() * 95).div_ceil(100) - 1];
    let humans = per_second.len() as f64;
    let per_human_second = |value: u64| value as f64 / humans / seconds;
    println!(
        "arena bytes: 120 snakes (100 steering humans + 20 bots, 5%/min rejoin), {measured_seconds} s measured after 30 s warm-up"
    );
    println!(
        "  bytes per human per second (incl. WebSocket header): median {median:.0}, p95 {p95:.0}, min {:.0}, max {:.0}",
        per_second[0],
        per_second[per_second.len() - 1]
    );
    println!(
        "  per human-second: state {:.0} B, meta {:.0} B, other {:.0} B, websocket headers {:.0} B",
        per_human_second(breakdown.state),
        per_human_second(breakdown.meta),
        per_human_second(breakdown.other_frames),
        per_human_second(breakdown.websocket)
    );
    println!(
        "  per human-second: {:.2} snake entries ({:.0} body bytes), {:.1} moves ({:.1} extended), {:.1} new pellets, {:.1} eaten",
        per_human_second(breakdown.entries),
        per_human_second(breakdown.body_bytes),
        per_human_second(breakdown.moves),
        per_human_second(breakdown.extensions),
        per_human_second(breakdown.new_pellets),
        per_human_second(breakdown.eaten)
    );
    println!(
        "  (simulated {total_ticks} ticks in {:.1} s wall)",
        started.elapsed().as_secs_f64()
    );
}

fn warmed_room() -> Room {
    let mut room = Room::new(100, 40, 7);
    for _ in 0..(10 * TICK_RATE) {
        room.step();
        room.encode_all(|_, _| {});
    }
    room
}

/// One room tick (100 humans steering + 40 bots, sim step + pellet tracker), no encoding.
#[divan::bench(sample_count = 50, sample_size = 4)]
fn tick_only(bencher: Bencher) {
    let mut room = warmed_room();
    bencher.bench_local(|| room.step());
}

/// One room tick plus every viewer's update; per item = per viewer.
#[divan::bench(sample_count = 50, sample_size = 4)]
fn tick_and_encode_100_viewers(bencher: Bencher) {
    let mut room = warmed_room();
    bencher.counter(ItemsCount::new(100usize)).bench_local(|| {
        room.step();
        let mut total = 0usize;
        room.encode_all(|_, message| total += message.len());
        divan::black_box(total)
    });
}

fn main() {
    bytes_report();
    divan::main();
}
