//! One full 4v4 match tick: simulation + vision + encoding for 8 viewers, with every seat
//! played by a bot brain through the input path (as a load-test client would).
//!
//! Run with `cargo bench -p coil-breach --bench tick`. The allocation profiler shows what a
//! warm tick allocates.

use coil_breach::bots::BotBrain;
use coil_breach::wire::{self, Vote};
use coil_breach::{Breach, BreachConfig, BreachEvent, JoinRequest, Phase, Role, Seat};

#[global_allocator]
static ALLOCATIONS: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// A match of eight seats driven by bot brains, its outbound buffer and input scratch.
struct Match {
    breach: Breach,
    brains: Vec<(Seat, BotBrain)>,
    events: Vec<BreachEvent>,
    out: Vec<u8>,
    bytes: Vec<u8>,
}

impl Match {
    fn new(seed: u64) -> Match {
        let config = BreachConfig {
            min_players: 8,
            kill_limit: 1000,
            time_limit_ticks: 24 * 3600 * 30,
            ..BreachConfig::default()
        };
        let mut breach = Breach::new(config, seed).unwrap();
        let mut brains = Vec::new();
        for index in 0..8u32 {
            let seat = Seat(index + 1);
            let name = format!("p{index}");
            let request = JoinRequest {
                name: &name,
                team: None,
                party: None,
                role: Role::Player,
            };
            breach.add_player(seat, &request).unwrap();
            brains.push((seat, BotBrain::new(u64::from(index) * 7919 + seed)));
        }
        Match {
            breach,
            brains,
            events: Vec::with_capacity(64),
            out: Vec::with_capacity(4096),
            bytes: Vec::with_capacity(16),
        }
    }

    /// One tick as the runtime would run it; returns the bytes written.
    fn tick(&mut self) -> usize {
        for (seat, brain) in &mut self.brains {
            if let Some((slot, _)) = self.breach.slot_of(*seat) {
                let intent = brain.think(self.breach.world(), slot);
                self.bytes.clear();
                wire::encode_input(&intent, &mut self.bytes);
                let _ = self.breach.apply_input(*seat, &self.bytes);
            }
            if self.breach.phase() == Phase::Ending {
                self.bytes.clear();
                wire::encode_vote(Vote::Stay, &mut self.bytes);
                let _ = self.breach.apply_input(*seat, &self.bytes);
            }
        }
        self.events.clear();
        self.breach.step(&mut self.events);
        let mut total = 0;
        for (seat, _) in &self.brains {
            self.out.clear();
            self.breach.write_update(*seat, &mut self.out);
            total += self.out.len();
        }
        total
    }
}

fn warmed(ticks: usize) -> Match {
    let mut game = Match::new(0xB4EA);
    for _ in 0..ticks {
        game.tick();
    }
    assert_eq!(game.breach.phase(), Phase::InProgress);
    game
}

/// The whole tick (bot decisions, input decode, simulation, vision, 8 encodes), warmed up
/// for one simulated minute.
#[divan::bench]
fn match_tick_8_viewers(bencher: divan::Bencher) {
    let mut game = warmed(1800);
    bencher.bench_local(|| game.tick());
}

/// The server's share alone: step + 8 encodes, with the seats' inputs already queued.
#[divan::bench]
fn step_and_encode_8_viewers(bencher: divan::Bencher) {
    let mut game = warmed(1800);
    bencher.bench_local(|| {
        game.events.clear();
        game.breach.step(&mut game.events);
        let mut total = 0;
        for (seat, _) in &game.brains {
            game.out.clear();
            game.breach.write_update(*seat, &mut game.out);
            total += game.out.len();
        }
        total
    });
}
