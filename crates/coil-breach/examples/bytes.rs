//! Bytes per player per second, server → client, in a bot-played full 4v4 at 30 Hz, and
//! the tick time distribution (simulation + vision + 8 encodes).
//!
//! `cargo run --release -p coil-breach --example bytes -- [seconds] [seed]` (default 600 s
//! of simulated play after 10 s of warm-up). Every seat is played by a bot brain through the
//! input path; each one's message is counted with its WebSocket frame header (2 bytes up to
//! 125 bytes of payload, 4 up to 65,535), as the runtime would send it. Restart votes are
//! "stay", so long runs cross match ends, scoreboards and restarts.

use std::time::Instant;

use coil_breach::bots::BotBrain;
use coil_breach::wire::{self, Vote};
use coil_breach::{Breach, BreachConfig, BreachEvent, JoinRequest, Phase, Role, Seat, TICK_RATE};

fn websocket_header(payload: usize) -> usize {
    match payload {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0xB4EA);
    let config = BreachConfig {
        min_players: 8,
        ..BreachConfig::default()
    };
    let mut breach = Breach::new(config, seed).expect("default config is valid");
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
        breach.add_player(seat, &request).expect("room has space");
        brains.push((seat, BotBrain::new(u64::from(index) * 7919 + seed)));
    }
    let rate = u64::from(TICK_RATE);
    let warm_up = 10 * rate;
    let total_ticks = warm_up + seconds * rate;
    let mut events: Vec<BreachEvent> = Vec::new();
    let mut out = Vec::new();
    let mut input = Vec::new();
    let mut second_bytes = [0usize; 8];
    let mut samples: Vec<f64> = Vec::new();
    let mut totals = [0usize; 8];
    let mut tick_times: Vec<f64> = Vec::new();
    let mut results = 0;
    let mut kills = 0;
    let mut in_progress_ticks = 0u64;
    for tick in 0..total_ticks {
        for (seat, brain) in &mut brains {
            if let Some((slot, _)) = breach.slot_of(*seat) {
                let intent = brain.think(breach.world(), slot);
                input.clear();
                wire::encode_input(&intent, &mut input);
                let _ = breach.apply_input(*seat, &input);
            }
            if breach.phase() == Phase::Ending {
                input.clear();
                wire::encode_vote(Vote::Stay, &mut input);
                let _ = breach.apply_input(*seat, &input);
            }
        }
        let started = Instant::now();
        events.clear();
        breach.step(&mut events);
        let mut sizes = [0usize; 8];
        for (index, (seat, _)) in brains.iter().enumerate() {
            out.clear();
            breach.write_update(*seat, &mut out);
            sizes[index] = out.len() + websocket_header(out.len());
        }
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        if tick < warm_up {
            continue;
        }
        if breach.phase() == Phase::InProgress {
            in_progress_ticks += 1;
        }
        tick_times.push(elapsed);
        for event in &events {
            match event {
                BreachEvent::Result(_) => results += 1,
                BreachEvent::Kill { .. } => kills += 1,
                _ => {}
            }
        }
        for index in 0..8 {
            second_bytes[index] += sizes[index];
            totals[index] += sizes[index];
        }
        if (tick - warm_up + 1) % rate == 0 {
            samples.extend(second_bytes.iter().map(|&b| b as f64));
            second_bytes = [0; 8];
        }
    }
    samples.sort_by(f64::total_cmp);
    tick_times.sort_by(f64::total_cmp);
    let mut averages: Vec<f64> = totals.iter().map(|&t| t as f64 / seconds as f64).collect();
    averages.sort_by(f64::total_cmp);
    println!(
        "breach bytes: {seconds} s simulated (after 10 s warm-up), seed {seed}, 8 bot-played seats, {TICK_RATE} Hz"
    );
    println!(
        "  per player-second: median {:.0} B/s, p95 {:.0} B/s, p99 {:.0} B/s, max {:.0} B/s ({} samples)",
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0),
        samples.len()
    );
    println!(
        "  per player over the run: lowest {:.0} B/s, median {:.0} B/s, highest {:.0} B/s",
        averages[0],
        percentile(&averages, 0.5),
        averages[7]
    );
    println!(
        "  tick (step + 8 encodes): median {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        percentile(&tick_times, 0.5),
        percentile(&tick_times, 0.99),
        percentile(&tick_times, 0.999),
        tick_times.last().copied().unwrap_or(0.0)
    );
    println!(
        "  play: {kills} kills, {results} match results, {:.0}% of ticks in progress",
        100.0 * in_progress_ticks as f64 / tick_times.len().max(1) as f64
    );
}
