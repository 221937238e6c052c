//! Protocol fixtures for the browser client (`web/`): real arena rooms run for a few seconds,
//! and every server message a viewer receives is written out in hex together with what the
//! Rust reference client ([`ClientMirror`]) reconstructed after applying it.
//!
//! `web/test/protocol.test.mjs` decodes the same messages with the JavaScript decoder and
//! mirror and must arrive at the same world, so the two clients cannot drift apart without a
//! test failing. This test owns the fixture files: it fails when the committed files differ
//! from what the current server code produces; `UPDATE_FIXTURES=1 cargo test -p coil-game
//! --test web_fixtures` rewrites them. It writes nothing else and reads no clock: the rooms
//! are seeded and stepped by hand, so a file only changes when the protocol or the game does.

use std::fmt::Write as _;
use std::path::PathBuf;

use coil_arena::client::ClientMirror;
use coil_arena::{Arena, ArenaSettings};
use coil_game::{Game, Identity, PlayerId, TickContext};
use coil_protocol::arena::{Input, angle_to_u16, encode_input, encode_respawn, server_type};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{write_error, write_notice, write_pong, write_score_receipt};
use coil_protocol::{ErrorCode, NoticeKind, Writer};
use coil_sim::ArenaConfig;

const DT: f32 = 0.05;

/// How often the mirror's view is written beside the messages. The view is cumulative, so a
/// difference in an unwritten one still shows in the next written one.
#[derive(Clone, Copy)]
struct Snapshots {
    /// A light view (no bodies, pellet positions or names) every this many messages.
    every: usize,
    /// A full view every this many messages, and after any message that carries more than
    /// state and meta (init, death, runtime frames).
    full_every: usize,
}

/// One viewer's stream: its messages in order, with the mirror's view after them.
struct Recording {
    name: String,
    player: PlayerId,
    mirror: ClientMirror,
    snapshots: Snapshots,
    messages: Vec<String>,
}

impl Recording {
    fn new(name: &str, player: PlayerId, snapshots: Snapshots) -> Recording {
        Recording {
            name: name.to_owned(),
            player,
            mirror: ClientMirror::new(),
            snapshots,
            messages: Vec::new(),
        }
    }

    fn record(&mut self, message: &[u8]) {
        self.mirror.apply_message(message).unwrap_or_else(|error| {
            panic!("{}: the Rust mirror refused a message: {error}", self.name)
        });
        let unusual = server_frames(message).any(|frame| {
            frame.is_ok_and(|(frame_type, _)| {
                frame_type != server_type::STATE && frame_type != server_type::META
            })
        });
        let index = self.messages.len();
        let full = unusual || index % self.snapshots.full_every == 0;
        let mut entry = String::new();
        write!(entry, "{{\"hex\":\"{}\",\"mirror\":", hex(message)).unwrap();
        if full || index % self.snapshots.every == 0 {
            write_mirror(&mut entry, &self.mirror, full);
        } else {
            entry.push_str("null");
        }
        entry.push('}');
        self.messages.push(entry);
    }

    fn json(&self) -> String {
        format!(
            "{{\"viewer\":{},\"messages\":[\n{}\n]}}",
            json_string(&self.name),
            self.messages.join(",\n")
        )
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
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An `f32` as the shortest decimal that reads back as the same `f32` (JavaScript compares
/// after `Math.fround`).
fn json_f32(value: f32) -> String {
    assert!(value.is_finite(), "fixture values are finite");
    format!("{value}")
}

/// The mirror's reconstructed world. A light snapshot leaves out bodies, pellet positions and
/// names (counts only) to keep the committed files small.
fn write_mirror(out: &mut String, mirror: &ClientMirror, full: bool) {
    out.push('{');
    write!(out, "\"full\":{full},").unwrap();
    match mirror.init() {
        Some(init) => write!(
            out,
            "\"init\":{{\"snakeId\":{},\"arenaRadius\":{},\"tickRate\":{},\"positionQuantum\":{},\"segmentSpacing\":{},\"viewHalfWidth\":{},\"viewHalfHeight\":{},\"pelletCell\":{}}},",
            init.snake_id,
            json_f32(init.arena_radius),
            init.tick_rate,
            json_f32(init.position_quantum),
            json_f32(init.segment_spacing),
            init.view_half_width,
            init.view_half_height,
            init.pellet_cell
        )
        .unwrap(),
        None => out.push_str("\"init\":null,"),
    }
    let [cx, cy] = mirror.center();
    write!(
        out,
        "\"center\":[{cx},{cy}],\"statesApplied\":{},",
        mirror.states_applied()
    )
    .unwrap();
    out.push_str("\"snakes\":[");
    for (index, snake) in mirror.snakes().iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write!(
            out,
            "{{\"id\":{},\"head\":[{},{}],\"velocity\":[{},{}],\"length\":{},\"girth\":{},\"boosting\":{}",
            snake.id,
            snake.head[0],
            snake.head[1],
            snake.velocity[0],
            snake.velocity[1],
            snake.length,
            snake.girth,
            snake.boosting
        )
        .unwrap();
        if let (true, Some(init)) = (full, mirror.init()) {
            out.push_str(",\"body\":[");
            for (point_index, [x, y]) in snake.body(init).enumerate() {
                if point_index > 0 {
                    out.push(',');
                }
                write!(out, "{},{}", json_f32(x), json_f32(y)).unwrap();
            }
            out.push(']');
            match mirror.identity(snake.id) {
                Some(identity) => write!(
                    out,
                    ",\"skin\":{},\"name\":{}",
                    identity.skin,
                    json_string(&identity.name)
                )
                .unwrap(),
                None => out.push_str(",\"skin\":null,\"name\":null"),
            }
        }
        out.push('}');
    }
    out.push_str("],");
    write!(out, "\"pelletCount\":{},", mirror.pellets().len()).unwrap();
    if full {
        out.push_str("\"pellets\":[");
        for (index, pellet) in mirror.pellets().iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write!(
                out,
                "{},{},{},{}",
                pellet.position[0], pellet.position[1], pellet.color, pellet.size
            )
            .unwrap();
        }
        out.push_str("],");
    }
    match mirror.meta() {
        Some(meta) => {
            out.push_str("\"meta\":{\"top\":[");
            for (index, row) in meta.top.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write!(out, "[{},{}]", row.score, json_string(&row.name)).unwrap();
            }
            write!(
                out,
                "],\"ownRank\":{},\"ownScore\":{},\"scoreFraction\":{},\"oxygen\":{},\"girth\":{},\"tailExtension\":{},\"humans\":{},\"bots\":{}}},",
                meta.own_rank,
                meta.own_score,
                meta.score_fraction,
                meta.oxygen,
                meta.girth,
                meta.tail_extension,
                meta.humans,
                meta.bots
            )
            .unwrap();
        }
        None => out.push_str("\"meta\":null,"),
    }
    match mirror.death() {
        Some(death) => write!(
            out,
            "\"death\":{{\"killer\":{},\"finalScore\":{},\"rank\":{}}},",
            death
                .killer
                .as_deref()
                .map_or_else(|| "null".to_owned(), json_string),
            death.final_score,
            death.rank
        )
        .unwrap(),
        None => out.push_str("\"death\":null,"),
    }
    match mirror.last_error() {
        Some((code, reason)) => {
            write!(out, "\"lastError\":[{code},{}],", json_string(reason)).unwrap()
        }
        None => out.push_str("\"lastError\":null,"),
    }
    match mirror.last_notice() {
        Some((kind, deadline)) => write!(out, "\"lastNotice\":[{kind},{deadline}]").unwrap(),
        None => out.push_str("\"lastNotice\":null"),
    }
    out.push('}');
}

fn join(game: &mut Arena, id: u32, name: &str, skin: u8) -> PlayerId {
    let player = PlayerId(id);
    game.join(
        player,
        &Identity {
            skin,
            ..Identity::guest(id.to_string(), name)
        },
    )
    .expect("the arena seats every player");
    player
}

fn steer(game: &mut Arena, player: PlayerId, radians: f32, boost: bool) {
    let mut frame = Vec::new();
    encode_input(
        Input {
            angle: angle_to_u16(radians),
            boost,
        },
        &mut frame,
    );
    game.handle_message(player, &frame)
        .expect("the arena accepts a well-formed input");
}

fn update(game: &mut Arena, recording: &mut Recording) {
    let mut out = Vec::new();
    game.write_update(recording.player, &mut out);
    recording.record(&out);
}

fn fixture_file(recordings: &[Recording], description: &str) -> String {
    let viewers: Vec<String> = recordings.iter().map(Recording::json).collect();
    format!(
        "{{\"description\":{},\"viewers\":[\n{}\n]}}\n",
        json_string(description),
        viewers.join(",\n")
    )
}

/// A small, crowded arena so a short run sees snakes meet, eat, boost, die and cross the view
/// edges; three viewers, one killed and respawned, one resynchronised, one joining late, and
/// the runtime's own frames (pong, notice, score receipt, error) plus a frame type the client
/// must skip at the end of one stream.
fn small_arena_fixture() -> String {
    let settings = ArenaSettings {
        arena: ArenaConfig {
            radius: 1200.0,
            natural_pellet_target: 1500,
            ..ArenaConfig::default()
        },
        seed: 7,
        ..ArenaSettings::default()
    };
    let mut game = Arena::new(settings);
    game.set_bot_target(12);
    let snapshots = Snapshots {
        every: 1,
        full_every: 20,
    };
    let mut alice = Recording::new("alice", join(&mut game, 1, "alice", 3), snapshots);
    let mut bob = Recording::new("bob", join(&mut game, 2, "bob", 5), snapshots);
    let mut carol = Recording::new("carol", PlayerId(3), snapshots);
    let mut events = Vec::new();
    for tick in 0..140u32 {
        let t = tick as f32;
        steer(&mut game, alice.player, t * 0.06, (20..36).contains(&tick));
        steer(
            &mut game,
            bob.player,
            2.0 + (t * 0.1).sin() * 1.5,
            tick % 50 > 40,
        );
        if tick == 40 {
            join(&mut game, 3, "carol", 9);
        }
        if tick >= 40 {
            steer(&mut game, carol.player, 4.0 - t * 0.03, false);
        }
        if tick == 60 {
            assert!(game.kill(alice.player), "alice is alive at tick 60");
        }
        if tick == 75 {
            let mut frame = Vec::new();
            encode_respawn(&mut frame);
            game.handle_message(alice.player, &frame)
                .expect("respawn is accepted");
        }
        if tick == 100 {
            game.resync(bob.player);
        }
        events.clear();
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
        update(&mut game, &mut alice);
        update(&mut game, &mut bob);
        if tick >= 40 {
            update(&mut game, &mut carol);
        }
    }
    // Frames the room runtime adds around the game's: written by the same encoders the server
    // uses. The unknown type 0x9f stands for a newer game frame an old client must skip.
    let mut message = Vec::new();
    let mut writer = Writer::new(&mut message);
    write_pong(&mut writer, 0xdead_beef);
    write_notice(&mut writer, NoticeKind::Draining, 30_000);
    writer.frame(0x9f, |w| w.bytes(&[1, 2, 3]));
    alice.record(&message);
    let mut message = Vec::new();
    write_score_receipt(&mut Writer::new(&mut message), "v1.alice.42.receipt");
    alice.record(&message);
    let mut message = Vec::new();
    write_error(
        &mut Writer::new(&mut message),
        ErrorCode::RoomDraining,
        "room is not taking players",
    );
    alice.record(&message);
    fixture_file(
        &[alice, bob, carol],
        "coil-arena tests/web_fixtures.rs: radius-1200 arena, seed 7, 12 bots, viewers alice (killed at tick 60, respawns at 75), bob (resynced at tick 100), carol (joins at tick 40)",
    )
}

/// A full room: 139 bots and one human, recorded after the bots have spread out, in the
/// standard arena (`crowded = false`, what a player usually sees) or squeezed into a
/// radius-1200 arena (`crowded = true`, most of the room on screen at once: the worst case the
/// renderer meets). The browser benchmark (`web/test/bench.html`) replays these.
fn full_room_fixture(crowded: bool) -> String {
    let mut settings = ArenaSettings {
        seed: 3,
        ..ArenaSettings::default()
    };
    if crowded {
        settings.arena.radius = 1200.0;
        settings.arena.natural_pellet_target = 1500;
    }
    let mut game = Arena::new(settings);
    game.set_bot_target(139);
    let mut events = Vec::new();
    for _ in 0..100 {
        events.clear();
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
    }
    let snapshots = Snapshots {
        every: 10,
        full_every: 50,
    };
    let mut viewer = Recording::new("viewer", join(&mut game, 1, "viewer", 1), snapshots);
    for tick in 0..200u32 {
        let t = tick as f32;
        steer(
            &mut game,
            viewer.player,
            (t * 0.03).sin() * 3.0,
            tick % 80 > 60,
        );
        events.clear();
        game.tick(TickContext { dt: DT, tick: 0 }, &mut events);
        update(&mut game, &mut viewer);
    }
    assert_eq!(
        game.population().bots + game.population().humans,
        140,
        "the room is full"
    );
    let arena = if crowded {
        "radius-1200 arena"
    } else {
        "standard arena"
    };
    fixture_file(
        &[viewer],
        &format!(
            "coil-arena tests/web_fixtures.rs: {arena}, seed 3, 139 bots + 1 viewer, 100 ticks of warm-up, then 200 ticks of one viewer"
        ),
    )
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/test/fixtures")
}

/// Compares `generated` with the committed file, or rewrites it under `UPDATE_FIXTURES=1`.
fn check_or_update(file_name: &str, generated: &str) {
    let path = fixture_dir().join(file_name);
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|value| value == "1") {
        std::fs::create_dir_all(fixture_dir()).expect("create web/test/fixtures");
        std::fs::write(&path, generated).expect("write the fixture");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is missing or out of date with the server's frames; regenerate it with \
         `UPDATE_FIXTURES=1 cargo test -p coil-arena --test web_fixtures` and commit it \
         (then run `node --test web/test/protocol.test.mjs` to see whether the JavaScript client still agrees)",
        path.display()
    );
}

#[test]
fn small_arena_fixture_matches_the_server() {
    let generated = small_arena_fixture();
    // The rooms are seeded and stepped by hand; a second run must produce the same bytes, or
    // the committed file could never be compared.
    assert_eq!(
        generated,
        small_arena_fixture(),
        "fixture generation is deterministic"
    );
    check_or_update("arena_small.json", &generated);
}

#[test]
fn full_room_fixtures_match_the_server() {
    check_or_update("arena_140.json", &full_room_fixture(false));
    check_or_update("arena_140_crowded.json", &full_room_fixture(true));
}
