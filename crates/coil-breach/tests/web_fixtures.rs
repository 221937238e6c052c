//! Fixtures for breach's browser client (`web/src/breach/`): real matches played by bots
//! and scripted players, every server message a viewer receives written out in hex with what
//! the Rust reference client ([`ClientMirror`]) holds after applying it; movement vectors
//! from [`player::step_movement`] on the shipped maps with random holes; and the shipped map
//! files as a JavaScript module, since the client builds its walls from the map id.
//!
//! `web/test/breach.test.mjs` replays the same bytes through the JavaScript decoder and
//! mirror and must hold the same state after every message, and its movement port must give
//! the same positions, so the two clients cannot drift apart without a test failing. This test
//! owns the files it writes (`web/test/fixtures/breach_*.json`, `web/src/breach/maps.js`): it
//! fails when a committed file differs from what the current code produces;
//! `UPDATE_FIXTURES=1 cargo test -p coil-breach --test web_fixtures` rewrites them. Matches are
//! seeded and stepped by hand, so a file only changes when the game or the protocol does.

use std::fmt::Write as _;
use std::path::PathBuf;

use coil_breach::bots::BotBrain;
use coil_breach::input::Intent;
use coil_breach::map::{BUILT_IN_MAPS, Map};
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::player::{self, PLAYER_HALF_SUB, Speed};
use coil_breach::walls::{Material, Walls};
use coil_breach::wire::{self, ServerFrame, ShotEnd, Vote, server_type};
use coil_breach::{Breach, BreachConfig, JoinRequest, MAX_SLOTS, Phase, Role, Seat, vision};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{write_error, write_notice, write_pong};
use coil_protocol::{ErrorCode, NoticeKind, Writer};

/// A tiny deterministic generator for the test's own choices (SplitMix64).
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

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(out, "{byte:02x}").unwrap();
    }
    out
}

fn json_string(value: &str) -> String {
    let mut out = String::from("\"");
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// FNV-1a (32 bit) over every damaged slice as `index u32 LE, hit points u8`: the
/// JavaScript test computes the same over its own walls.
fn walls_hash(walls: &Walls) -> (usize, u32) {
    let mut hash = 0x811c_9dc5_u32;
    let mut count = 0;
    for (index, hit_points) in walls.damaged_slices() {
        count += 1;
        for byte in index.to_le_bytes().into_iter().chain([hit_points]) {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
    }
    (count, hash)
}

fn roster_json(out: &mut String, roster: &[wire::RosterEntry]) {
    out.push('[');
    for (index, entry) in roster.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write!(
            out,
            "[{},{},{},{},{},{},{}]",
            entry.slot,
            entry.team,
            u8::from(entry.bot),
            entry.kills,
            entry.deaths,
            entry.assists,
            json_string(&entry.name)
        )
        .unwrap();
    }
    out.push(']');
}

/// What the mirror holds. A light snapshot has every per-tick field and counts of the rest;
/// a full one adds init, roster, kill feed, scoreboard and every damaged slice.
fn write_mirror(out: &mut String, mirror: &ClientMirror, full: bool) {
    let own = &mirror.own;
    write!(
        out,
        "{{\"tick\":{},\"own\":[{},{},{},{},{},{},{},{},{},{}],\"others\":[",
        mirror.tick,
        own.x,
        own.y,
        own.facing,
        own.health,
        own.ammo,
        own.reload,
        u8::from(own.alive),
        own.respawn,
        own.charges,
        own.ack
    )
    .unwrap();
    let mut first = true;
    for (slot, other) in mirror.others.iter().enumerate() {
        if let Some(other) = other {
            if !first {
                out.push(',');
            }
            first = false;
            write!(
                out,
                "[{slot},{},{},{},{}]",
                other.qx, other.qy, other.facing, other.health
            )
            .unwrap();
        }
    }
    write!(
        out,
        "],\"scores\":[{},{}],\"phase\":[{},{}]",
        mirror.scores[0], mirror.scores[1], mirror.phase.0, mirror.phase.1
    )
    .unwrap();
    // This tick's lists are left out when empty (most ticks), to keep the files small.
    let list = |out: &mut String, key: &str, items: Vec<String>| {
        if !items.is_empty() {
            write!(out, ",\"{key}\":[{}]", items.join(",")).unwrap();
        }
    };
    let shots = mirror
        .shots
        .iter()
        .map(|shot| {
            let (seen, a, b) = match shot.end {
                ShotEnd::Seen { dx, dy } => (1, dx, dy),
                ShotEnd::Direction(direction) => (0, i32::from(direction), 0),
            };
            format!(
                "[{},{},{seen},{a},{b}]",
                shot.shooter,
                u8::from(shot.hit_player)
            )
        })
        .collect();
    list(out, "shots", shots);
    let sounds = mirror
        .sounds
        .iter()
        .map(|sound| {
            format!(
                "[{},{},{},{}]",
                sound.kind,
                sound.loudness,
                sound.direction,
                u8::from(sound.muffled)
            )
        })
        .collect();
    list(out, "sounds", sounds);
    let charges = mirror
        .charges
        .iter()
        .map(|charge| {
            format!(
                "[{},{},{},{}]",
                charge.x_px,
                charge.y_px,
                charge.fuse,
                u8::from(charge.friendly)
            )
        })
        .collect();
    list(out, "charges", charges);
    let blasts = mirror
        .blasts
        .iter()
        .map(|(x, y)| format!("[{x},{y}]"))
        .collect();
    list(out, "blasts", blasts);
    let votes = mirror
        .votes
        .iter()
        .map(|(slot, vote)| format!("[{slot},{vote}]"))
        .collect();
    list(out, "votes", votes);
    let (damaged, hash) = mirror.walls.as_ref().map_or((0, 0), walls_hash);
    write!(
        out,
        ",\"walls\":[{damaged},{hash}],\"rosterSize\":{},\"killFeedSize\":{},\"scoreboard\":{}",
        mirror.roster.len(),
        mirror.kill_feed.len(),
        u8::from(mirror.scoreboard.is_some())
    )
    .unwrap();
    if full {
        match &mirror.init {
            Some(init) => write!(
                out,
                ",\"init\":{{\"mapId\":{},\"tickRate\":{},\"slot\":{},\"team\":{},\"matchGeneration\":{},\"tick\":{},\"killLimit\":{},\"timeLimitTicks\":{},\"friendlyFire\":{},\"spectatorDelayTicks\":{},\"coneHalfAngle\":{},\"viewRangePx\":{},\"nearRadiusPx\":{},\"speeds\":[{},{},{}],\"playerHalfSub\":{}}}",
                init.map_id,
                init.tick_rate,
                init.slot,
                init.team,
                init.match_generation,
                init.tick,
                init.kill_limit,
                init.time_limit_ticks,
                init.friendly_fire,
                init.spectator_delay_ticks,
                init.cone_half_angle,
                init.view_range_px,
                init.near_radius_px,
                init.speeds[0],
                init.speeds[1],
                init.speeds[2],
                init.player_half_sub
            )
            .unwrap(),
            None => out.push_str(",\"init\":null"),
        }
        out.push_str(",\"roster\":");
        roster_json(out, &mirror.roster);
        out.push_str(",\"killFeed\":[");
        for (index, kill) in mirror.kill_feed.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write!(
                out,
                "[{},{},{},{}]",
                kill.killer, kill.victim, kill.assister, kill.cause
            )
            .unwrap();
        }
        out.push(']');
        match &mirror.scoreboard {
            Some(board) => {
                write!(
                    out,
                    ",\"scoreboardFull\":{{\"reason\":{},\"winner\":{},\"scores\":[{},{}],\"durationTicks\":{},\"ticksLeft\":{},\"players\":",
                    board.reason,
                    board.winner,
                    board.scores[0],
                    board.scores[1],
                    board.duration_ticks,
                    board.ticks_left
                )
                .unwrap();
                roster_json(out, &board.players);
                out.push('}');
            }
            None => out.push_str(",\"scoreboardFull\":null"),
        }
        out.push_str(",\"damaged\":[");
        if let Some(walls) = &mirror.walls {
            for (index, (slice, hit_points)) in walls.damaged_slices().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write!(out, "{slice},{hit_points}").unwrap();
            }
        }
        out.push(']');
    }
    out.push('}');
}

/// One viewer's stream: its messages in order (a dropped one has no bytes), the frames it
/// sent before each tick, and what its mirror holds after each message.
struct Recording {
    name: String,
    seat: Seat,
    role: Role,
    mirror: ClientMirror,
    entries: Vec<String>,
    full_every: usize,
}

impl Recording {
    fn new(name: &str, seat: Seat, role: Role) -> Recording {
        Recording {
            name: name.to_owned(),
            seat,
            role,
            mirror: ClientMirror::new(),
            entries: Vec::new(),
            full_every: 30,
        }
    }

    /// Records one message as delivered (`Some`) or dropped by the runtime (`None`), with the
    /// frames the viewer sent before the tick and, for players, the enemies it was not sent
    /// (from the server's world: where they really were, in whole pixels).
    fn record(&mut self, message: Option<&[u8]>, sent: &[Vec<u8>], hidden: &[(usize, i64, i64)]) {
        let mut entry = String::from("{");
        if !sent.is_empty() {
            entry.push_str("\"sent\":[");
            for (index, frame) in sent.iter().enumerate() {
                if index > 0 {
                    entry.push(',');
                }
                write!(entry, "\"{}\"", hex(frame)).unwrap();
            }
            entry.push_str("],");
        }
        match message {
            None => entry.push_str("\"hex\":null"),
            Some(message) => {
                self.mirror.apply_message(message).unwrap_or_else(|error| {
                    panic!(
                        "{}: the Rust mirror refused a message: {error:?}",
                        self.name
                    )
                });
                let unusual = server_frames(message).any(|frame| {
                    frame.is_ok_and(|(frame_type, _)| frame_type != server_type::STATE)
                });
                let full = unusual || self.entries.len() % self.full_every == 0;
                write!(entry, "\"hex\":\"{}\",\"mirror\":", hex(message)).unwrap();
                write_mirror(&mut entry, &self.mirror, full);
                // Where the enemies this viewer was not sent really are, on every tenth
                // message (the browser test checks that nothing is drawn there).
                if !hidden.is_empty() && self.entries.len() % 10 == 0 {
                    entry.push_str(",\"hidden\":[");
                    for (index, (slot, x, y)) in hidden.iter().enumerate() {
                        if index > 0 {
                            entry.push(',');
                        }
                        write!(entry, "[{slot},{x},{y}]").unwrap();
                    }
                    entry.push(']');
                }
            }
        }
        entry.push('}');
        self.entries.push(entry);
    }

    fn json(&self) -> String {
        let role = match self.role {
            Role::Player => "player",
            Role::Spectator => "spectator",
        };
        format!(
            "{{\"viewer\":{},\"role\":\"{role}\",\"messages\":[\n{}\n]}}",
            json_string(&self.name),
            self.entries.join(",\n")
        )
    }
}

/// A scripted player that walks up to a wooden wall, shoots slices out of it, plants a
/// breaching charge, backs off, and then plays like a bot: the fixture is certain to hold
/// wall slices destroyed in the viewer's own sight, a charge and a blast.
struct Breacher {
    brain: BotBrain,
    stage: u32,
    ticks_in_stage: u32,
}

impl Breacher {
    /// Where to stand and which way to face, by team: two cells in front of the wooden posts
    /// at columns 15 (team A, west) and 48 (team B, east), rows 17–18 of the warehouse.
    fn post(team: u8) -> ((i64, i64), Angle) {
        if team == 0 {
            ((13 * 80 + 40, 18 * 80), Angle(0))
        } else {
            ((50 * 80 + 40, 18 * 80), Angle(32768))
        }
    }

    fn think(&mut self, breach: &Breach, slot: usize, team: u8) -> Intent {
        let bot = self.brain.think(breach.world(), slot);
        let Some(me) = breach.world().player(slot) else {
            return bot;
        };
        if !me.alive || breach.world().map().id != 1 || self.stage >= 4 {
            return bot;
        }
        let ((tx, ty), facing) = Breacher::post(team);
        self.ticks_in_stage += 1;
        let mut intent = Intent {
            facing,
            ..Intent::idle(facing)
        };
        match self.stage {
            0 => {
                // Walk to the post, one axis then the other, facing the way it goes.
                let (dx, dy) = (tx - me.x, ty - me.y);
                intent.speed = Speed::Run;
                intent.direction = if dx.abs() > 12 {
                    if dx > 0 { 1 } else { 5 }
                } else if dy.abs() > 12 {
                    if dy > 0 { 3 } else { 7 }
                } else {
                    0
                };
                if intent.direction == 0 || self.ticks_in_stage > 400 {
                    self.stage = 1;
                    self.ticks_in_stage = 0;
                } else {
                    intent.facing = Angle::of_vector(dx as f64, dy as f64);
                }
            }
            1 => {
                // Hold fire for a few shots into the post.
                intent.fire = true;
                if self.ticks_in_stage > 6 * 4 {
                    self.stage = 2;
                    self.ticks_in_stage = 0;
                }
            }
            2 => {
                intent.use_charge = self.ticks_in_stage == 1;
                if self.ticks_in_stage > 2 {
                    self.stage = 3;
                    self.ticks_in_stage = 0;
                }
            }
            _ => {
                // Back off a little while the fuse burns, still facing the wall, and watch.
                intent.speed = Speed::Run;
                if self.ticks_in_stage <= 20 {
                    intent.direction = if team == 0 { 5 } else { 1 };
                }
                if self.ticks_in_stage > 60 {
                    self.stage = 4;
                }
            }
        }
        intent
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

/// Whether `slot`'s player can see `(x, y)` this tick (the encoder's own question).
fn enemies_hidden_from(breach: &Breach, viewer: usize) -> Vec<(usize, i64, i64)> {
    let world = breach.world();
    let Some(me) = world.player(viewer) else {
        return Vec::new();
    };
    let seen = vision::visible_slots(world, viewer);
    (0..MAX_SLOTS)
        .filter(|&slot| slot != viewer && seen & (1 << slot) == 0)
        .filter_map(|slot| {
            let other = world.player(slot)?;
            (other.alive && other.team != me.team && me.alive)
                .then(|| (slot, other.x.div_euclid(8), other.y.div_euclid(8)))
        })
        .collect()
}

/// Facts about a stream, so a change in the game that leaves a case uncovered fails here.
#[derive(Default, Debug)]
struct Coverage {
    inits: usize,
    generations: std::collections::BTreeSet<u32>,
    maps: std::collections::BTreeSet<u8>,
    own_deaths: usize,
    own_respawns: usize,
    enters: usize,
    leaves: usize,
    shots_seen_end: usize,
    shots_direction_only: usize,
    sounds: usize,
    muffled_sounds: usize,
    wall_changes: usize,
    slices_destroyed: usize,
    charges: usize,
    blasts: usize,
    kills: usize,
    scoreboards: usize,
    votes: usize,
    phases: std::collections::BTreeSet<u8>,
    hidden_enemies: usize,
}

impl Coverage {
    fn add(&mut self, message: &[u8], mirror_before_alive: bool, mirror: &ClientMirror) {
        for frame in wire::decode_server_message(message).expect("the server's own bytes") {
            match frame {
                ServerFrame::Init(init) => {
                    self.inits += 1;
                    self.generations.insert(init.match_generation);
                    self.maps.insert(init.map_id);
                }
                ServerFrame::State(state) => {
                    for player in &state.players {
                        match player.change {
                            wire::PlayerChange::Enter { .. } => self.enters += 1,
                            wire::PlayerChange::Leave => self.leaves += 1,
                            wire::PlayerChange::Update { .. } => {}
                        }
                    }
                    for shot in &state.shots {
                        match shot.end {
                            ShotEnd::Seen { .. } => self.shots_seen_end += 1,
                            ShotEnd::Direction(_) => self.shots_direction_only += 1,
                        }
                    }
                    self.sounds += state.sounds.len();
                    self.muffled_sounds += state.sounds.iter().filter(|s| s.muffled).count();
                    self.wall_changes += state.walls.len();
                    self.slices_destroyed += state.walls.iter().filter(|w| w.1 == 0).count();
                    self.charges += state.charges.len();
                    self.blasts += state.blasts.len();
                    if let Some((phase, _)) = state.phase {
                        self.phases.insert(phase);
                    }
                }
                ServerFrame::KillFeed(kills) => self.kills += kills.len(),
                ServerFrame::Scoreboard(_) => self.scoreboards += 1,
                ServerFrame::Votes(votes) => self.votes += votes.len(),
                _ => {}
            }
        }
        if mirror_before_alive && !mirror.own.alive {
            self.own_deaths += 1;
        }
        if !mirror_before_alive && mirror.own.alive {
            self.own_respawns += 1;
        }
    }
}

/// A match on the warehouse with two humans (one scripted breacher, one bot-driven player
/// that sometimes sends nothing for a tick) and a spectator; six bots fill the teams. The
/// match runs to a kill limit of 5, the scoreboard takes both humans' "stay" votes, and the
/// restart plays on the courtyard for a while. Messages are dropped now and then (the runtime
/// would resync a slow client), so the streams hold resyncs mid-match.
fn match_fixture() -> (String, [Coverage; 3]) {
    let config = BreachConfig {
        min_players: 2,
        countdown_ticks: 15,
        kill_limit: 8,
        time_limit_ticks: 2400,
        scoreboard_ticks: 45,
        respawn_ticks: 30,
        spectator_delay_ticks: 15,
        ..BreachConfig::default()
    };
    let mut breach = Breach::new(config, 0x5EED_B4EA).expect("valid config");
    let mut recordings = [
        Recording::new("ann", Seat(1), Role::Player),
        Recording::new("bo", Seat(2), Role::Player),
        Recording::new("eve", Seat(50), Role::Spectator),
    ];
    for recording in &recordings {
        breach
            .add_player(recording.seat, &join(&recording.name, recording.role))
            .expect("room has space");
    }
    let mut breacher = Breacher {
        brain: BotBrain::new(11),
        stage: 0,
        ticks_in_stage: 0,
    };
    let mut bo_brain = BotBrain::new(22);
    let mut sequences = [0u32; 2];
    let mut rng = TestRng(0xF1C5);
    let mut events = Vec::new();
    let mut coverage: [Coverage; 3] = Default::default();
    let mut restarted_at = None;
    let mut ended = false;
    let mut tick = 0u32;
    loop {
        tick += 1;
        assert!(tick < 6000, "the match reached its end and restart in time");
        let mut sent: [Vec<Vec<u8>>; 3] = Default::default();
        for (index, seat) in [Seat(1), Seat(2)].into_iter().enumerate() {
            let Some((slot, team)) = breach.slot_of(seat) else {
                continue;
            };
            if breach.phase() == Phase::Ending {
                // Each human votes "stay" a little while into the scoreboard.
                if rng.below(10) == 0 {
                    let mut frame = Vec::new();
                    wire::encode_vote(Vote::Stay, &mut frame);
                    if breach.apply_input(seat, &frame).is_ok() {
                        sent[index].push(frame);
                    }
                }
                continue;
            }
            let mut intent = if index == 0 {
                breacher.think(&breach, slot, team as u8)
            } else {
                bo_brain.think(breach.world(), slot)
            };
            // Bo's client sends nothing on some ticks: the server holds its last intent.
            if index == 1 && rng.below(8) == 0 {
                continue;
            }
            sequences[index] += 1;
            intent.sequence = sequences[index];
            let mut frame = Vec::new();
            wire::encode_input(&intent, &mut frame);
            breach
                .apply_input(seat, &frame)
                .expect("a well-formed input in sequence");
            sent[index].push(frame);
        }
        events.clear();
        breach.step(&mut events);
        for event in &events {
            match event {
                coil_breach::BreachEvent::PhaseChanged(Phase::Ending) => ended = true,
                coil_breach::BreachEvent::PhaseChanged(Phase::Starting) if ended => {
                    restarted_at.get_or_insert(tick);
                }
                _ => {}
            }
        }
        for (index, recording) in recordings.iter_mut().enumerate() {
            let mut message = Vec::new();
            breach.write_update(recording.seat, &mut message);
            // Drop a message now and then (bo and eve): the runtime resyncs a slow client.
            let drop = index > 0 && tick > 40 && rng.below(150) == 0;
            if drop {
                breach.resync(recording.seat);
                recording.record(None, &sent[index], &[]);
                continue;
            }
            let hidden = match breach.slot_of(recording.seat) {
                Some((slot, _)) => enemies_hidden_from(&breach, slot),
                None => Vec::new(),
            };
            let alive_before = recording.mirror.own.alive;
            recording.record(Some(&message), &sent[index], &hidden);
            coverage[index].add(&message, alive_before, &recording.mirror);
            coverage[index].hidden_enemies += hidden.len();
        }
        if restarted_at.is_some_and(|at| tick > at + 150) {
            break;
        }
    }
    // The runtime's own frames around the game's, and a game frame type this client does not
    // know: the mirror must skip them all.
    let mut message = Vec::new();
    let mut writer = Writer::new(&mut message);
    write_pong(&mut writer, 0xdead_beef);
    write_notice(&mut writer, NoticeKind::Draining, 30_000);
    writer.frame(0x9f, |w| w.bytes(&[1, 2, 3]));
    recordings[0].record(Some(&message), &[], &[]);
    let mut message = Vec::new();
    write_error(
        &mut Writer::new(&mut message),
        ErrorCode::RoomDraining,
        "room is not taking players",
    );
    recordings[0].record(Some(&message), &[], &[]);

    let viewers: Vec<String> = recordings.iter().map(Recording::json).collect();
    let file = format!(
        "{{\"description\":{},\"viewers\":[\n{}\n]}}\n",
        json_string(
            "coil-breach tests/web_fixtures.rs: warehouse then courtyard, seed 0x5EEDB4EA, kill limit 8; ann (scripted breacher, then a bot brain), bo (bot brain, skips some ticks, some messages dropped), eve (spectator, some messages dropped); 6 bots"
        ),
        viewers.join(",\n")
    );
    (file, coverage)
}

/// `step_movement` on both shipped maps, pristine and with random holes (shots and charge
/// circles): walks of random intents from random starts, most of them next to walls.
fn movement_fixture() -> String {
    let mut rng = TestRng(0x0_5717);
    let mut groups = Vec::new();
    for map_id in Map::built_in_ids() {
        let map = Map::built_in(map_id).expect("built-in map");
        for pattern in 0..3 {
            let mut walls = Walls::from_map(&map);
            let (width, height) = walls.size_sub();
            walls.begin_tick();
            if pattern > 0 {
                for _ in 0..40 * pattern {
                    let index = rng.below(u64::from(walls.slice_count())) as u32;
                    walls.damage(index, (1 + rng.below(255)) as u8);
                }
                for _ in 0..6 * pattern {
                    let x = rng.below(width as u64) as i64;
                    let y = rng.below(height as u64) as i64;
                    walls.destroy_circle(x, y, 16 * 8);
                }
            }
            walls.end_tick();
            let mut damaged = String::new();
            for (index, (slice, hit_points)) in walls.damaged_slices().enumerate() {
                if index > 0 {
                    damaged.push(',');
                }
                write!(damaged, "{slice},{hit_points}").unwrap();
            }
            let mut walks = Vec::new();
            for _ in 0..40 {
                // Start beside an intact breakable slice, or anywhere at all.
                let (mut x, mut y) = loop {
                    let index = rng.below(u64::from(walls.slice_count())) as u32;
                    let (cx, cy) = walls.slice_centre(index);
                    if rng.below(5) == 0 || walls.material(index) != Material::Empty {
                        let jitter = |rng: &mut TestRng| rng.below(161) as i64 - 80;
                        break (cx + jitter(&mut rng), cy + jitter(&mut rng));
                    }
                };
                if rng.below(4) != 0 {
                    // Most walks start where a player could stand.
                    let mut tries = 0;
                    while walls.box_blocked(x, y, PLAYER_HALF_SUB) && tries < 50 {
                        x += rng.below(33) as i64 - 16;
                        y += rng.below(33) as i64 - 16;
                        tries += 1;
                    }
                }
                let mut steps = String::new();
                write!(steps, "[{x},{y}").unwrap();
                for _ in 0..30 {
                    let direction = rng.below(9) as u8;
                    let speed = Speed::from_index(rng.below(3) as u8).unwrap();
                    let (nx, ny) = player::step_movement(&walls, (x, y), direction, speed);
                    write!(steps, ",{direction},{},{nx},{ny}", speed as u8).unwrap();
                    (x, y) = (nx, ny);
                }
                steps.push(']');
                walks.push(steps);
            }
            groups.push(format!(
                "{{\"mapId\":{map_id},\"damaged\":[{damaged}],\"walks\":[\n{}\n]}}",
                walks.join(",\n")
            ));
        }
    }
    format!(
        "{{\"description\":{},\"playerHalfSub\":{PLAYER_HALF_SUB},\"speeds\":[{},{},{}],\"groups\":[\n{}\n]}}\n",
        json_string(
            "coil-breach tests/web_fixtures.rs: player::step_movement on every built-in map, pristine and with random holes; each walk is [x, y, then per step direction, speed, new x, new y]"
        ),
        Speed::Sneak.sub_per_tick(),
        Speed::Walk.sub_per_tick(),
        Speed::Run.sub_per_tick(),
        groups.join(",\n")
    )
}

/// The shipped maps as a JavaScript module, and what the Rust parser made of each (for the
/// JavaScript parser to agree with).
fn maps_module() -> String {
    let mut out = String::from(
        "// Generated by crates/coil-breach/tests/web_fixtures.rs from crates/coil-breach/maps/*.map;\n\
         // do not edit. Regenerate: UPDATE_FIXTURES=1 cargo test -p coil-breach --test web_fixtures\n\
         // The client builds its walls from the map id of the init frame (docs/protocol-breach.md §1).\n\n\
         export const BUILT_IN_MAPS = [\n",
    );
    for text in BUILT_IN_MAPS {
        writeln!(out, "  {},", json_string(text)).unwrap();
    }
    out.push_str("];\n");
    out
}

fn maps_fixture() -> String {
    let mut maps = Vec::new();
    for id in Map::built_in_ids() {
        let map = Map::built_in(id).expect("built-in map");
        let cells: String = map
            .cells
            .iter()
            .map(|cell| char::from(b'0' + *cell as u8))
            .collect();
        let spawns: Vec<String> = map
            .spawns
            .iter()
            .map(|team| {
                let cells: Vec<String> = team.iter().map(|(x, y)| format!("{x},{y}")).collect();
                format!("[{}]", cells.join(","))
            })
            .collect();
        maps.push(format!(
            "{{\"id\":{},\"name\":{},\"width\":{},\"height\":{},\"cell\":{},\"slices\":{},\"cells\":\"{cells}\",\"spawns\":[{}]}}",
            map.id,
            json_string(&map.name),
            map.width_cells,
            map.height_cells,
            map.cell_pixels,
            map.slices_per_cell,
            spawns.join(",")
        ));
    }
    format!(
        "{{\"description\":\"coil-breach tests/web_fixtures.rs: the built-in maps as the Rust parser reads them (cells: 0 floor, 1 wood, 2 concrete, 3 steel)\",\"maps\":[\n{}\n]}}\n",
        maps.join(",\n")
    )
}

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Compares `generated` with the committed file, or rewrites it under `UPDATE_FIXTURES=1`.
fn check_or_update(relative: &str, generated: &str) {
    let path = repo_path(relative);
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|value| value == "1") {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the fixture directory");
        }
        std::fs::write(&path, generated).expect("write the fixture");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is missing or out of date with the game's bytes; regenerate it with \
         `UPDATE_FIXTURES=1 cargo test -p coil-breach --test web_fixtures` and commit it \
         (then run `node --test web/test/breach.test.mjs` to see whether the JavaScript client still agrees)",
        path.display()
    );
}

#[test]
fn match_fixture_matches_the_game() {
    let (generated, coverage) = match_fixture();
    assert_eq!(
        generated,
        match_fixture().0,
        "fixture generation is deterministic"
    );
    let [ann, bo, eve] = &coverage;
    for (name, player) in [("ann", ann), ("bo", bo)] {
        assert!(player.own_deaths >= 1, "{name} dies: {player:?}");
        assert!(
            player.own_respawns >= 2,
            "{name} spawns and respawns: {player:?}"
        );
        assert!(
            player.enters >= 5 && player.leaves >= 5,
            "{name} sees enemies come and go: {player:?}"
        );
        assert!(player.shots_seen_end >= 10, "{name}: {player:?}");
        assert!(
            player.sounds >= 5 && player.muffled_sounds >= 1,
            "{name} hears: {player:?}"
        );
        assert!(player.hidden_enemies >= 100, "{name}: {player:?}");
        assert_eq!(
            player.generations.iter().copied().collect::<Vec<_>>(),
            vec![1, 2],
            "{name} sees the restart"
        );
        assert!(
            player.scoreboards >= 1 && player.votes >= 1,
            "{name}: {player:?}"
        );
    }
    assert!(
        ann.slices_destroyed >= 10,
        "the breacher opens the wall: {ann:?}"
    );
    assert!(ann.charges >= 1 && ann.blasts >= 1, "{ann:?}");
    assert!(ann.kills >= 5, "{ann:?}");
    assert!(bo.inits >= 3, "bo resyncs mid-match: {bo:?}");
    assert!(eve.inits >= 3, "eve resyncs: {eve:?}");
    assert!(
        eve.enters >= 8 && eve.shots_seen_end >= 10,
        "the spectator sees the match: {eve:?}"
    );
    assert_eq!(eve.sounds, 0, "spectators hear nothing");
    assert_eq!(eve.maps.iter().copied().collect::<Vec<_>>(), vec![1, 2]);
    for phase in [Phase::InProgress, Phase::Ending, Phase::Starting] {
        assert!(ann.phases.contains(&(phase as u8)), "{phase:?} in {ann:?}");
    }
    check_or_update("web/test/fixtures/breach_match.json", &generated);
}

#[test]
fn movement_fixture_matches_the_game() {
    let generated = movement_fixture();
    assert_eq!(generated, movement_fixture(), "deterministic");
    check_or_update("web/test/fixtures/breach_movement.json", &generated);
}

#[test]
fn maps_module_and_fixture_match_the_map_files() {
    check_or_update("web/src/breach/maps.js", &maps_module());
    check_or_update("web/test/fixtures/breach_maps.json", &maps_fixture());
}
