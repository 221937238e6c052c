//! The custom lobby's bytes for breach's browser client: a scripted lobby (map votes, a
//! refused command, a host transfer, a settings change, a kick, the start) played through the
//! game contract, every message its host, a player and a spectator receive written out in hex
//! with what the Rust reference client ([`ClientMirror`]) holds of the lobby after it; and
//! every lobby command as the Rust encoder writes it.
//!
//! `web/test/breach-lobby.test.mjs` replays the messages through the JavaScript decoder and
//! mirror and must hold the same lobby, and its encoders must write the same command bytes.
//! This test owns `web/test/fixtures/breach-lobby.json`: it fails when the committed file
//! differs from what the current code produces;
//! `UPDATE_FIXTURES=1 cargo test -p coil-breach --test lobby_fixtures` rewrites it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use coil_breach::mirror::ClientMirror;
use coil_breach::wire::{self, LobbyCommand};
use coil_breach::{BreachConfig, BreachMode};
use coil_game::{GameMode, Identity, PlayerId, Role, RoomSetup, TickContext};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        write!(out, "{byte:02x}").unwrap();
        out
    })
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

/// What a client holds of the lobby, as JSON: the lobby frame's fields, the notices, and the
/// init's map, kill limit and friendly fire (a settings change sends a new init).
fn lobby_json(mirror: &ClientMirror) -> String {
    let lobby = match &mirror.lobby {
        None => "null".to_owned(),
        Some(lobby) => {
            let votes: Vec<String> = lobby
                .votes
                .iter()
                .map(|(slot, map)| format!("[{slot},{map}]"))
                .collect();
            format!(
                "[{},{},{},{},{},{},{},{},[{}]]",
                lobby.host_slot,
                lobby.map_id,
                lobby.kill_limit,
                lobby.time_limit_secs,
                u8::from(lobby.friendly_fire),
                u8::from(lobby.map_vote),
                lobby.max_players,
                lobby.spectators,
                votes.join(",")
            )
        }
    };
    let notices: Vec<String> = mirror
        .notices
        .iter()
        .map(|notice| format!("[{},{}]", notice.code, json_string(&notice.text)))
        .collect();
    let init = mirror.init.map_or("null".to_owned(), |init| {
        format!(
            "[{},{},{},{}]",
            init.map_id,
            init.kill_limit,
            u8::from(init.friendly_fire),
            init.slot
        )
    });
    format!(
        "{{\"lobby\":{lobby},\"notices\":[{}],\"init\":{init},\"roster\":{},\"phase\":{}}}",
        notices.join(","),
        mirror.roster.len(),
        mirror.phase.0
    )
}

fn lobby_fixture() -> String {
    let mode = BreachMode {
        config: BreachConfig {
            countdown_ticks: 3,
            ..BreachConfig::default()
        },
    };
    let mut game = mode.create(&RoomSetup {
        seed: 0x0001_0BB7,
        tick: Duration::from_millis(33),
        hard_cap: 8,
        spectator_cap: 4,
        rules: Some(
            mode.lobby_rules("mapVote=true;maxPlayers=6;killLimit=20")
                .unwrap()
                .normalized,
        ),
    });
    let viewers = [
        (1u32, "host"),
        (2, "player"),
        (3, "spectator"),
        (4, "kicked"),
    ];
    for (id, name) in viewers {
        let identity = Identity {
            host: id == 1,
            role: if id == 3 {
                Role::Spectator
            } else {
                Role::Player
            },
            ..Identity::guest(format!("key-{id}"), name)
        };
        game.join(PlayerId(id), &identity).unwrap();
    }
    let mut mirrors: Vec<(u32, ClientMirror, Vec<String>)> = viewers
        .iter()
        .map(|(id, _)| (*id, ClientMirror::new(), Vec::new()))
        .collect();
    let send = |game: &mut Box<dyn coil_game::Game>, id: u32, command: LobbyCommand| {
        let mut bytes = Vec::new();
        wire::encode_lobby_command(&command, &mut bytes);
        game.handle_message(PlayerId(id), &bytes).unwrap();
    };
    let mut events = Vec::new();
    let mut out = Vec::new();
    for tick in 0..16u64 {
        // Slots as the clients know them (the kicked player's from its own mirror).
        let slot_of = |mirrors: &[(u32, ClientMirror, Vec<String>)], id: u32| {
            mirrors
                .iter()
                .find(|(viewer, _, _)| *viewer == id)
                .and_then(|(_, mirror, _)| mirror.init)
                .map_or(0xff, |init| init.slot)
        };
        match tick {
            1 => {
                send(&mut game, 1, LobbyCommand::MapVote(2));
                send(&mut game, 2, LobbyCommand::MapVote(1));
            }
            2 => send(&mut game, 2, LobbyCommand::StartEarly), // not the host
            3 => send(
                &mut game,
                1,
                LobbyCommand::Settings("killLimit=0".to_owned()),
            ),
            4 => send(
                &mut game,
                1,
                LobbyCommand::Settings("killLimit=15;friendlyFire=true;timeLimitSecs=300".into()),
            ),
            5 => send(&mut game, 1, LobbyCommand::Kick(slot_of(&mirrors, 4))),
            6 => send(&mut game, 1, LobbyCommand::Kick(0xff)), // nobody
            7 => send(
                &mut game,
                1,
                LobbyCommand::TransferHost(slot_of(&mirrors, 2)),
            ),
            8 => send(
                &mut game,
                1,
                LobbyCommand::TransferHost(slot_of(&mirrors, 2)),
            ),
            9 => send(&mut game, 4, LobbyCommand::MapVote(2)), // gone: ignored
            10 => send(&mut game, 2, LobbyCommand::StartEarly),
            _ => {}
        }
        events.clear();
        game.tick(TickContext { dt: 0.033, tick }, &mut events);
        let released: Vec<u32> = events
            .iter()
            .filter_map(|event| match event {
                coil_game::GameEvent::Release(player) => Some(player.0),
                _ => None,
            })
            .collect();
        for (id, mirror, lines) in mirrors.iter_mut() {
            if lines
                .last()
                .is_some_and(|line| line.contains("\"released\":true"))
            {
                continue;
            }
            out.clear();
            game.write_update(PlayerId(*id), &mut out);
            mirror
                .apply_message(&out)
                .expect("the mirror takes the message");
            let gone = released.contains(id);
            lines.push(format!(
                "{{\"tick\":{tick},\"hex\":\"{}\",\"released\":{gone},\"after\":{}}}",
                hex(&out),
                lobby_json(mirror)
            ));
        }
    }
    let viewers_json: Vec<String> = mirrors
        .iter()
        .zip(viewers)
        .map(|((_, _, lines), (_, name))| {
            format!(
                "{{\"name\":\"{name}\",\"messages\":[\n{}\n]}}",
                lines.join(",\n")
            )
        })
        .collect();
    let commands = [
        ("kick slot 3", LobbyCommand::Kick(3)),
        ("make slot 5 host", LobbyCommand::TransferHost(5)),
        ("start early", LobbyCommand::StartEarly),
        (
            "settings",
            LobbyCommand::Settings("friendlyFire=true;killLimit=15;map=courtyard".into()),
        ),
        (
            "settings, not ASCII",
            LobbyCommand::Settings("map=wärehouse".into()),
        ),
        ("vote for courtyard", LobbyCommand::MapVote(2)),
    ];
    let commands_json: Vec<String> = commands
        .iter()
        .map(|(what, command)| {
            let mut bytes = Vec::new();
            wire::encode_lobby_command(command, &mut bytes);
            format!("[{},\"{}\"]", json_string(what), hex(&bytes))
        })
        .collect();
    format!(
        "{{\"description\":\"coil-breach tests/lobby_fixtures.rs: a custom lobby (mapVote=true;maxPlayers=6;killLimit=20, seed 0x10BB7): votes, a non-host start, bad then good settings, a kick, a host transfer, the start; every message of host, player, spectator and the kicked player, with the Rust mirror's lobby after it (lobby: host slot, map, kill limit, time limit secs, friendly fire, map vote, max players, spectators, votes; init: map, kill limit, friendly fire, own slot)\",\n\"viewers\":[\n{}\n],\n\"commands\":[\n{}\n]}}\n",
        viewers_json.join(",\n"),
        commands_json.join(",\n")
    )
}

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

#[test]
fn lobby_fixture_matches_the_game() {
    let generated = lobby_fixture();
    assert_eq!(generated, lobby_fixture(), "deterministic");
    // The script must reach what the JavaScript test checks.
    for needle in ["\"released\":true", "[1110,", "[1112,", "[1106,", "[1114,"] {
        assert!(generated.contains(needle), "the fixture lacks {needle}");
    }
    let path = repo_path("web/test/fixtures/breach-lobby.json");
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|value| value == "1") {
        std::fs::write(&path, &generated).expect("write the fixture");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is missing or out of date; regenerate it with \
         `UPDATE_FIXTURES=1 cargo test -p coil-breach --test lobby_fixtures` and commit it \
         (then run `node --test web/test/breach-lobby.test.mjs`)",
        path.display()
    );
}
