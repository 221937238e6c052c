//! Custom lobbies through the runtime's contract (`coil_game::Game`), as a room drives them:
//! the rules a lobby is created with, host controls from the host and from everyone else,
//! kicks, host transfer and migration, starting early, settings changes, map votes, and quick
//! play left as it was. Every player's bytes go through the reference client
//! (`ClientMirror`), so what is asserted is what a client would see.

use std::collections::BTreeMap;
use std::time::Duration;

use coil_breach::mirror::ClientMirror;
use coil_breach::wire::{self, LobbyCommand, NO_SLOT};
use coil_breach::{BreachConfig, BreachMode};
use coil_game::{
    Game, GameEvent, GameMode, Identity, Phase, PlayerId, ResultReason, Role, RoomSetup,
    TickContext,
};

const WAREHOUSE: u8 = 1;
const COURTYARD: u8 = 2;

fn mode() -> BreachMode {
    BreachMode {
        config: BreachConfig {
            countdown_ticks: 3,
            scoreboard_ticks: 20,
            respawn_ticks: 20,
            ..BreachConfig::default()
        },
    }
}

/// A room as the runtime holds it: the game, and one client mirror per connected seat.
struct Room {
    game: Box<dyn Game>,
    clients: BTreeMap<u32, ClientMirror>,
    events: Vec<GameEvent>,
    ticks: u64,
}

impl Room {
    fn new(rules: Option<&str>) -> Room {
        let game = mode().create(&RoomSetup {
            seed: 77,
            tick: Duration::from_millis(33),
            hard_cap: 8,
            spectator_cap: 4,
            rules: rules.map(str::to_owned),
        });
        Room {
            game,
            clients: BTreeMap::new(),
            events: Vec::new(),
            ticks: 0,
        }
    }

    fn join_as(&mut self, id: u32, identity: Identity) -> Result<(), u16> {
        self.game
            .join(PlayerId(id), &identity)
            .map_err(|refusal| refusal.code.get())?;
        self.clients.insert(id, ClientMirror::new());
        Ok(())
    }

    fn join(&mut self, id: u32, host: bool) -> Result<(), u16> {
        self.join_as(
            id,
            Identity {
                host,
                ..Identity::guest(format!("key-{id}"), format!("p{id}"))
            },
        )
    }

    fn watch(&mut self, id: u32) {
        let identity = Identity {
            role: Role::Spectator,
            ..Identity::guest(format!("key-{id}"), format!("w{id}"))
        };
        self.join_as(id, identity).unwrap();
    }

    fn leave(&mut self, id: u32) {
        self.clients.remove(&id);
        self.game.leave(PlayerId(id), &mut self.events);
    }

    /// One tick as the room task runs it: the game, every connected seat's update, then the
    /// seats the game released (they still get this tick's message, as on a real node).
    fn tick(&mut self) -> Vec<GameEvent> {
        let mut events = std::mem::take(&mut self.events);
        self.game.tick(
            TickContext {
                dt: 0.033,
                tick: self.ticks,
            },
            &mut events,
        );
        self.ticks += 1;
        let mut out = Vec::new();
        for (id, mirror) in self.clients.iter_mut() {
            out.clear();
            self.game.write_update(PlayerId(*id), &mut out);
            mirror
                .apply_message(&out)
                .expect("the client holds what it was sent");
        }
        for event in &events {
            if let GameEvent::Release(player) = event {
                self.clients.remove(&player.0);
            }
        }
        events
    }

    fn ticks(&mut self, count: usize) -> Vec<GameEvent> {
        (0..count).flat_map(|_| self.tick()).collect()
    }

    fn until(&mut self, limit: usize, phase: Phase) -> Vec<GameEvent> {
        let mut all = Vec::new();
        for _ in 0..limit {
            all.extend(self.tick());
            if self.game.status().phase == phase {
                return all;
            }
        }
        panic!("phase {phase:?} not reached in {limit} ticks");
    }

    fn send(&mut self, id: u32, command: LobbyCommand) {
        let mut bytes = Vec::new();
        wire::encode_lobby_command(&command, &mut bytes);
        // Refused lobby commands never close a connection.
        self.game
            .handle_message(PlayerId(id), &bytes)
            .expect("a lobby command is answered, never a disconnect");
    }

    fn client(&self, id: u32) -> &ClientMirror {
        &self.clients[&id]
    }

    fn slot(&self, id: u32) -> u8 {
        self.client(id).init.expect("an init").slot
    }

    fn host_slot(&self, id: u32) -> u8 {
        self.client(id)
            .lobby
            .as_ref()
            .expect("a lobby frame")
            .host_slot
    }

    fn notice_codes(&self, id: u32) -> Vec<u16> {
        self.client(id).notices.iter().map(|n| n.code).collect()
    }

    fn counter(&self, name: &str) -> u64 {
        let mut out = Vec::new();
        self.game.counters(&mut out);
        out.iter()
            .find(|(counter, _)| *counter == name)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

fn refused(text: &str) -> String {
    mode().lobby_rules(text).unwrap_err()
}

#[test]
fn lobby_rules_are_normalized_with_every_key_sorted() {
    let rules = mode()
        .lobby_rules("timeLimitSecs=300;map=Courtyard;killLimit=030;mapVote=true;maxPlayers=4")
        .unwrap();
    assert_eq!(
        rules.normalized,
        "friendlyFire=false;killLimit=30;map=courtyard;mapVote=true;maxPlayers=4;timeLimitSecs=300"
    );
    assert_eq!(rules.map, "courtyard");
    assert_eq!(rules.max_players, 4);
    // The canonical text reads back to itself, and an empty text is every default.
    assert_eq!(mode().lobby_rules(&rules.normalized).unwrap(), rules);
    let defaults = mode().lobby_rules("").unwrap();
    assert_eq!(
        defaults.normalized,
        "friendlyFire=false;killLimit=50;map=warehouse;mapVote=false;maxPlayers=8;timeLimitSecs=600"
    );
    assert_eq!(
        (defaults.map.as_str(), defaults.max_players),
        ("warehouse", 8)
    );
    assert!(defaults.normalized.len() <= coil_game::LobbyRules::MAX_LEN);
}

#[test]
fn each_bad_rule_is_refused_with_a_sentence() {
    let cases = [
        (
            "killLimit=0",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "killLimit=201",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "killLimit=-5",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "killLimit=3.5",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "killLimit=",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "killLimit=99999999999",
            "killLimit must be a whole number between 1 and 200",
        ),
        (
            "timeLimitSecs=59",
            "timeLimitSecs must be a whole number between 60 and 3600",
        ),
        (
            "timeLimitSecs=3601",
            "timeLimitSecs must be a whole number between 60 and 3600",
        ),
        ("friendlyFire=yes", "friendlyFire must be true or false"),
        ("mapVote=TRUE", "mapVote must be true or false"),
        (
            "maxPlayers=3",
            "maxPlayers must be an even number between 2 and 8 (two equal teams)",
        ),
        (
            "maxPlayers=10",
            "maxPlayers must be an even number between 2 and 8 (two equal teams)",
        ),
        (
            "maxPlayers=0",
            "maxPlayers must be an even number between 2 and 8 (two equal teams)",
        ),
    ];
    for (text, sentence) in cases {
        assert_eq!(refused(text), sentence, "{text}");
    }
    assert!(refused("map=foundry").starts_with("map \"foundry\" is not one of breach's maps"));
    assert!(refused("map=foundry").contains("warehouse, courtyard"));
    assert!(refused("gravity=low").starts_with("unknown setting \"gravity\""));
    assert_eq!(
        refused("killLimit=5;killLimit=6"),
        "setting \"killLimit\" is given twice"
    );
    assert!(refused("killLimit").starts_with("setting \"killLimit\" has no value"));
    assert!(refused("killLimit=5;").starts_with("setting \"\" has no value"));
    assert!(refused(&"a".repeat(600)).starts_with("the settings are too long"));
    // Whatever the text, never a panic (arbitrary bytes, odd separators, other scripts).
    for text in [
        "=",
        ";;",
        "map==warehouse",
        "map=wärehouse",
        "\u{0}=1",
        "killLimit=٣",
    ] {
        assert!(mode().lobby_rules(text).is_err(), "{text}");
    }
}

#[test]
fn quick_play_rooms_have_no_host_and_no_lobby_frame() {
    let mut room = Room::new(None);
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    let view = room
        .game
        .lobby()
        .expect("every breach room reports its lobby");
    assert_eq!(view.host, None, "the host flag means nothing in quick play");
    assert_eq!((view.map.as_str(), view.max_players), ("warehouse", 8));
    room.send(1, LobbyCommand::StartEarly);
    room.tick();
    assert!(
        room.client(1).lobby.is_none(),
        "no Lobby frame in quick play"
    );
    assert_eq!(room.notice_codes(1), vec![1115]);
    // Quick play counts down at its minimum of two, as it always did.
    assert_eq!(room.game.status().phase, Phase::Starting);
}

#[test]
fn the_creator_hosts_and_a_non_hosts_commands_are_refused_without_a_disconnect() {
    let mut room = Room::new(Some("maxPlayers=8"));
    room.join(1, false).unwrap(); // arrives before the creator: not the host
    room.tick();
    assert_eq!(room.host_slot(1), NO_SLOT);
    room.join(2, true).unwrap();
    room.join(3, false).unwrap();
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(2)));
    let host_slot = room.slot(2);
    for id in [1, 2, 3] {
        assert_eq!(room.host_slot(id), host_slot, "everyone is told who hosts");
    }
    let target = room.slot(3);
    room.send(1, LobbyCommand::Kick(target));
    room.send(1, LobbyCommand::TransferHost(room.slot(1)));
    room.send(1, LobbyCommand::StartEarly);
    room.send(1, LobbyCommand::Settings("killLimit=5".into()));
    let events = room.tick();
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(room.notice_codes(1), vec![1110; 4]);
    assert!(room.notice_codes(2).is_empty() && room.notice_codes(3).is_empty());
    assert_eq!(room.counter("lobby_commands_refused"), 4);
    assert_eq!(room.counter("host_commands_applied"), 0);
    assert!(room.clients.contains_key(&3), "nobody was kicked");
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(2)));
    assert_eq!(room.client(1).lobby.as_ref().unwrap().kill_limit, 50);
    room.ticks(5);
    assert_eq!(
        room.game.status().phase,
        Phase::Waiting,
        "nobody started it"
    );
}

#[test]
fn a_kicked_player_is_told_released_and_kept_out_of_the_room() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.tick();
    room.send(1, LobbyCommand::Kick(room.slot(2)));
    let events = room.tick();
    assert_eq!(events, vec![GameEvent::Release(PlayerId(2))]);
    assert_eq!(room.counter("kicks"), 1);
    // Its last message (the one the runtime sends before closing) said why.
    room.send(1, LobbyCommand::Kick(0xff)); // nobody there
    room.tick();
    assert_eq!(room.notice_codes(1), vec![1114]);
    // A new token for the same person is refused; someone else may come in.
    let again = room.join_as(9, Identity::guest("key-2", "p2 again"));
    assert_eq!(again, Err(1106));
    assert_eq!(room.counter("joins_refused_kicked"), 1);
    room.join(3, false).unwrap();
    // The host cannot kick itself.
    room.send(1, LobbyCommand::Kick(room.slot(1)));
    room.tick();
    assert_eq!(room.notice_codes(1), vec![1114, 1114]);
}

#[test]
fn the_kick_notice_reaches_the_kicked_client_in_its_last_message() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.tick();
    let slot = room.slot(2);
    room.send(1, LobbyCommand::Kick(slot));
    // Step by hand to look at player 2's last message before the release.
    let mut events = Vec::new();
    room.game
        .tick(TickContext { dt: 0.033, tick: 1 }, &mut events);
    assert!(events.contains(&GameEvent::Release(PlayerId(2))));
    let mut out = Vec::new();
    room.game.write_update(PlayerId(2), &mut out);
    let mirror = room.clients.get_mut(&2).unwrap();
    mirror.apply_message(&out).unwrap();
    assert_eq!(mirror.notices.last().map(|n| n.code), Some(1106));
}

#[test]
fn kicked_keys_are_bounded_and_the_oldest_is_forgotten() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.tick();
    let kept = coil_breach::runtime::KICKED_KEYS_KEPT as u32;
    for id in 2..(3 + kept) {
        room.join(id, false).unwrap();
        room.tick();
        room.send(1, LobbyCommand::Kick(room.slot(id)));
        room.tick();
    }
    assert_eq!(room.counter("kicks"), u64::from(kept) + 1);
    // key-2 was the first of kept + 1 kicks: forgotten. key-3 is still remembered.
    assert_eq!(room.join_as(1000, Identity::guest("key-2", "back")), Ok(()));
    assert_eq!(
        room.join_as(1001, Identity::guest("key-3", "back")),
        Err(1106)
    );
}

#[test]
fn the_host_hands_over_to_a_seated_player_only() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.watch(3);
    room.tick();
    room.send(1, LobbyCommand::TransferHost(NO_SLOT)); // a spectator has no slot
    room.send(1, LobbyCommand::TransferHost(7)); // an empty slot
    room.tick();
    assert_eq!(room.notice_codes(1), vec![1114, 1114]);
    room.send(1, LobbyCommand::TransferHost(room.slot(2)));
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(2)));
    assert_eq!(room.host_slot(3), room.slot(2), "spectators see it too");
    // The old host is an ordinary player now; the new one has the controls.
    room.send(1, LobbyCommand::StartEarly);
    room.tick();
    assert_eq!(room.notice_codes(1).last(), Some(&1110));
    room.send(2, LobbyCommand::StartEarly);
    room.tick();
    assert_eq!(room.game.status().phase, Phase::Starting);
}

#[test]
fn the_longest_seated_player_inherits_the_host_when_it_leaves() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.watch(2); // seated before the others, but spectators never host
    room.join(3, false).unwrap();
    room.join(4, false).unwrap();
    room.tick();
    room.leave(1);
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(3)));
    let slot = room.slot(3);
    for id in [2, 3, 4] {
        assert_eq!(room.host_slot(id), slot, "everyone is told");
    }
    assert_eq!(room.counter("host_migrations"), 1);
    // A dropped connection holds the seat and the host; only the leave after the grace moves it.
    room.game.disconnected(PlayerId(3));
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(3)));
    room.leave(3);
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(4)));
    // With every player gone the lobby has no host; the next to sit down takes it.
    room.leave(4);
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, None);
    room.join(5, false).unwrap();
    room.tick();
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(5)));
}

#[test]
fn a_host_who_votes_to_leave_hands_over_to_a_player_who_stays() {
    let mut room = Room::new(Some("killLimit=1"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.join(3, false).unwrap();
    room.tick();
    room.send(1, LobbyCommand::StartEarly);
    room.until(30 * 60 * 10, Phase::Ending);
    let mut bytes = Vec::new();
    for (id, vote) in [
        (1, wire::Vote::Leave),
        (2, wire::Vote::Stay),
        (3, wire::Vote::Stay),
    ] {
        bytes.clear();
        wire::encode_vote(vote, &mut bytes);
        room.game.handle_message(PlayerId(id), &bytes).unwrap();
    }
    let events = room.until(100, Phase::Starting);
    assert!(events.contains(&GameEvent::Release(PlayerId(1))));
    assert_eq!(room.game.lobby().unwrap().host, Some(PlayerId(2)));
}

#[test]
fn start_early_needs_a_player_on_each_team_and_a_lobby_waits_for_it_or_for_a_full_room() {
    let mut room = Room::new(Some("maxPlayers=6"));
    room.join(1, true).unwrap();
    room.tick();
    room.send(1, LobbyCommand::StartEarly);
    room.tick();
    assert_eq!(room.notice_codes(1), vec![1113]);
    room.join(2, false).unwrap();
    room.ticks(40);
    assert_eq!(
        room.game.status().phase,
        Phase::Waiting,
        "a custom lobby does not start at quick play's minimum"
    );
    room.send(1, LobbyCommand::StartEarly);
    room.tick();
    assert_eq!(room.game.status().phase, Phase::Starting);
    assert_eq!(room.counter("host_commands_applied"), 1);
    room.until(10, Phase::InProgress);
    assert_eq!(room.game.status().bots, 4, "bots fill up to maxPlayers");
    assert_eq!(room.client(1).roster.len(), 6);
    // Too late to start again.
    room.send(1, LobbyCommand::StartEarly);
    room.tick();
    assert_eq!(room.notice_codes(1).last(), Some(&1111));

    // A full lobby starts by itself.
    let mut full = Room::new(Some("maxPlayers=2"));
    full.join(1, true).unwrap();
    full.join(2, false).unwrap();
    full.tick();
    assert_eq!(full.game.status().phase, Phase::Starting);
}

#[test]
fn max_players_refuses_the_next_player_with_the_full_code() {
    let mut room = Room::new(Some("maxPlayers=4"));
    for id in 1..=4 {
        room.join(id, id == 1).unwrap();
    }
    assert_eq!(room.join(5, false), Err(1101));
    assert!(!room.game.status().joinable);
    room.watch(6); // spectators are apart
    room.tick();
    let roster = &room.client(1).roster;
    for team in 0..2 {
        assert_eq!(roster.iter().filter(|entry| entry.team == team).count(), 2);
    }
    assert_eq!(room.game.lobby().unwrap().max_players, 4);
}

#[test]
fn a_kill_limit_of_one_ends_the_match_at_the_first_kill() {
    let mut room = Room::new(Some("killLimit=1;timeLimitSecs=600"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.tick();
    assert_eq!(room.client(1).init.unwrap().kill_limit, 1);
    room.send(1, LobbyCommand::StartEarly);
    let events = room.until(30 * 60 * 10, Phase::Ending);
    let results: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            GameEvent::MatchResult(result) => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1);
    let result = results[0];
    assert_eq!(result.reason, ResultReason::KillLimit);
    assert_eq!(
        result.team_scores.iter().sum::<u32>(),
        1,
        "{:?}",
        result.team_scores
    );
    let kills: u32 = result.players.iter().map(|p| p.kills).sum();
    assert_eq!(kills, 1, "the match ended at its first kill");
}

#[test]
fn the_host_changes_settings_in_the_waiting_room_only() {
    let mut room = Room::new(Some("map=warehouse"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.join(3, false).unwrap();
    room.tick();
    let generation = room.client(2).init.unwrap().match_generation;
    room.send(
        1,
        LobbyCommand::Settings("killLimit=5;map=courtyard;friendlyFire=true".into()),
    );
    room.tick();
    for id in [1, 2] {
        let client = room.client(id);
        let init = client.init.unwrap();
        assert_eq!(
            (init.map_id, init.kill_limit, init.friendly_fire),
            (COURTYARD, 5, true)
        );
        assert!(
            init.match_generation > generation,
            "a new Init with the new rules"
        );
        let lobby = client.lobby.as_ref().unwrap();
        assert_eq!(
            (lobby.map_id, lobby.kill_limit, lobby.friendly_fire),
            (COURTYARD, 5, true)
        );
        assert_eq!(
            lobby.time_limit_secs, 600,
            "keys left out keep their values"
        );
    }
    assert_eq!(room.game.lobby().unwrap().map, "courtyard");
    // The same validation as the lobby's creation, with the sentence in the notice.
    room.send(1, LobbyCommand::Settings("killLimit=0".into()));
    room.send(1, LobbyCommand::Settings("maxPlayers=2;killLimit=7".into()));
    room.tick();
    let notices = &room.client(1).notices;
    assert_eq!(notices[0].code, 1112);
    assert_eq!(
        notices[0].text,
        "killLimit must be a whole number between 1 and 200"
    );
    assert_eq!(notices[1].code, 1112);
    assert!(
        notices[1].text.contains("below the 3 players"),
        "{}",
        notices[1].text
    );
    assert_eq!(
        room.client(1).lobby.as_ref().unwrap().kill_limit,
        5,
        "nothing applied"
    );
    room.send(1, LobbyCommand::StartEarly);
    room.until(10, Phase::InProgress);
    room.send(1, LobbyCommand::Settings("killLimit=9".into()));
    room.tick();
    assert_eq!(room.client(1).notices.last().unwrap().code, 1111);
    assert_eq!(room.client(1).init.unwrap().kill_limit, 5);
}

fn vote(room: &mut Room, id: u32, map_id: u8) {
    room.send(id, LobbyCommand::MapVote(map_id));
}

#[test]
fn the_map_with_most_votes_wins_at_the_start() {
    let mut room = Room::new(Some("mapVote=true;map=warehouse"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.join(3, false).unwrap();
    vote(&mut room, 1, COURTYARD);
    vote(&mut room, 2, COURTYARD);
    vote(&mut room, 3, WAREHOUSE);
    room.tick();
    let votes = &room.client(3).lobby.as_ref().unwrap().votes;
    assert_eq!(votes.len(), 3, "votes are shown to everyone: {votes:?}");
    assert!(votes.contains(&(room.slot(1), COURTYARD)));
    room.send(1, LobbyCommand::StartEarly);
    room.until(10, Phase::Starting);
    room.tick();
    assert_eq!(room.client(2).init.unwrap().map_id, COURTYARD);
    assert_eq!(room.game.lobby().unwrap().map, "courtyard");
    assert!(
        room.client(2).lobby.as_ref().unwrap().votes.is_empty(),
        "counted, cleared"
    );
    // Votes close with the countdown.
    vote(&mut room, 2, WAREHOUSE);
    room.tick();
    assert_eq!(room.notice_codes(2), vec![1111]);
    assert_eq!(room.counter("map_votes"), 3);
}

#[test]
fn a_tie_keeps_the_current_map_and_spectators_do_not_vote() {
    let mut room = Room::new(Some("mapVote=true;map=warehouse"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.watch(3);
    vote(&mut room, 1, WAREHOUSE);
    vote(&mut room, 2, COURTYARD);
    vote(&mut room, 3, COURTYARD); // a spectator: ignored (the runtime drops it too)
    room.tick();
    assert_eq!(room.client(3).lobby.as_ref().unwrap().votes.len(), 2);
    room.send(1, LobbyCommand::StartEarly);
    room.until(10, Phase::InProgress);
    assert_eq!(
        room.client(1).init.unwrap().map_id,
        WAREHOUSE,
        "1 : 1 keeps the map"
    );
    assert_eq!(room.game.lobby().unwrap().map, "warehouse");
}

#[test]
fn map_votes_on_the_scoreboard_choose_the_next_match_and_need_voting_on() {
    let mut room = Room::new(Some("mapVote=true;killLimit=1"));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    room.tick();
    room.send(1, LobbyCommand::StartEarly);
    room.until(30 * 60 * 10, Phase::Ending);
    assert_eq!(room.client(1).init.unwrap().map_id, WAREHOUSE);
    let mut bytes = Vec::new();
    for id in [1, 2] {
        vote(&mut room, id, COURTYARD);
        bytes.clear();
        wire::encode_vote(wire::Vote::Stay, &mut bytes);
        room.game.handle_message(PlayerId(id), &bytes).unwrap();
    }
    room.until(100, Phase::Starting);
    room.tick();
    assert_eq!(room.client(1).init.unwrap().map_id, COURTYARD);
    vote(&mut room, 1, 99);
    room.tick();
    assert_eq!(
        room.notice_codes(1),
        vec![1111],
        "closed during the countdown"
    );

    let mut off = Room::new(Some("mapVote=false"));
    off.join(1, true).unwrap();
    vote(&mut off, 1, COURTYARD);
    off.tick();
    assert_eq!(off.notice_codes(1), vec![1116]);
    let mut open = Room::new(Some("mapVote=true"));
    open.join(1, true).unwrap();
    vote(&mut open, 1, 99);
    open.tick();
    assert_eq!(open.notice_codes(1), vec![1117]);
}

#[test]
fn garbage_lobby_frames_close_only_the_sender_and_never_stick_the_room() {
    let mut room = Room::new(Some(""));
    room.join(1, true).unwrap();
    room.join(2, false).unwrap();
    for bytes in [&[0x12][..], &[0x15, 9, b'x'], &[0x14, 1], &[0x16]] {
        assert!(room.game.handle_message(PlayerId(2), bytes).is_err());
    }
    room.send(1, LobbyCommand::StartEarly);
    room.until(10, Phase::InProgress);
}

#[test]
fn lobby_commands_are_deterministic() {
    let run = || {
        let mut room = Room::new(Some("mapVote=true;killLimit=200"));
        room.join(1, true).unwrap();
        room.join(2, false).unwrap();
        room.join(3, false).unwrap();
        vote(&mut room, 2, COURTYARD);
        room.tick();
        room.send(1, LobbyCommand::TransferHost(room.slot(2)));
        room.tick();
        room.send(2, LobbyCommand::Settings("friendlyFire=true".into()));
        room.send(2, LobbyCommand::StartEarly);
        let mut trace = Vec::new();
        for _ in 0..600 {
            room.tick();
            let client = room.client(1);
            trace.push((client.tick, client.own, client.scores, client.phase));
        }
        trace
    };
    assert_eq!(run(), run());
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn command() -> impl Strategy<Value = LobbyCommand> {
        prop_oneof![
            any::<u8>().prop_map(|slot| LobbyCommand::Kick(slot % 10)),
            any::<u8>().prop_map(|slot| LobbyCommand::TransferHost(slot % 10)),
            Just(LobbyCommand::StartEarly),
            "(killLimit|maxPlayers|map|mapVote|friendlyFire|timeLimitSecs|x)=(1|2|4|7|60|true|courtyard|)(;maxPlayers=(2|4|6|8))?"
                .prop_map(LobbyCommand::Settings),
            (0u8..4).prop_map(LobbyCommand::MapVote),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any mix of lobby commands from anyone, with joins and leaves between ticks: no
        /// panic, no disconnect for a well-formed command, and the host is always a seated
        /// player (or none), as every client's Lobby frame says.
        #[test]
        fn any_lobby_commands_keep_the_room_consistent(
            steps in proptest::collection::vec((0u32..6, command(), 0u8..10), 1..60),
        ) {
            let mut room = Room::new(Some("mapVote=true;maxPlayers=4;killLimit=1"));
            room.join(1, true).unwrap();
            room.join(2, false).unwrap();
            room.watch(3);
            let mut next_id = 10;
            for (sender, command, churn) in steps {
                if room.clients.contains_key(&sender) {
                    room.send(sender, command);
                }
                match churn {
                    0 => {
                        let _ = room.join(next_id, false);
                        next_id += 1;
                    }
                    1 => {
                        if let Some(&id) = room.clients.keys().find(|&&id| id != 3) {
                            room.leave(id);
                        }
                    }
                    _ => {}
                }
                room.tick();
                if let Some(host) = room.game.lobby().unwrap().host {
                    prop_assert!(room.clients.contains_key(&host.0), "the host {host:?} is seated");
                    prop_assert_ne!(host, PlayerId(3), "a spectator never hosts");
                    for (id, mirror) in &room.clients {
                        let lobby = mirror.lobby.as_ref().unwrap();
                        prop_assert_eq!(lobby.host_slot, room.slot(host.0), "viewer {}", id);
                    }
                }
            }
        }
    }
}
