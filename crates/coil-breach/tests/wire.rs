//! Every breach decoder: arbitrary bytes never panic, and encode → decode round trips.

use coil_breach::input::Intent;
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::player::Speed;
use coil_breach::wire::*;
use coil_protocol::codec::{DecodeError, Writer};
use proptest::prelude::*;

fn intent_strategy() -> impl Strategy<Value = Intent> {
    (
        any::<u32>(),
        0u8..=8,
        0u8..3,
        any::<u16>(),
        any::<[bool; 3]>(),
    )
        .prop_map(
            |(sequence, direction, speed, facing, [fire, reload, use_charge])| Intent {
                sequence,
                direction,
                speed: Speed::from_index(speed).unwrap(),
                facing: Angle(facing),
                fire,
                reload,
                use_charge,
            },
        )
}

fn own_strategy() -> impl Strategy<Value = OwnUpdate> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of((any::<i32>(), any::<i32>())),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of((any::<bool>(), any::<u16>())),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(ack_delta, moved, health, ammo, reload, life, charges, facing)| OwnUpdate {
                ack_delta,
                moved,
                health,
                ammo,
                reload,
                // A living player has no respawn countdown on the wire.
                life: life.map(|(alive, respawn)| (alive, if alive { 0 } else { respawn })),
                charges,
                facing,
            },
        )
}

fn player_strategy() -> impl Strategy<Value = PlayerEntry> {
    let change = prop_oneof![
        Just(PlayerChange::Leave),
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u8>()).prop_map(
            |(x, y, facing, health)| {
                PlayerChange::Enter {
                    x,
                    y,
                    facing,
                    health,
                }
            }
        ),
        (
            proptest::option::of((any::<i32>(), any::<i32>())),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        )
            .prop_filter("an update changes something", |(m, f, h)| {
                m.is_some() || f.is_some() || h.is_some()
            })
            .prop_map(|(moved, facing, health)| PlayerChange::Update {
                moved,
                facing,
                health
            }),
    ];
    (0u8..16, change).prop_map(|(slot, change)| PlayerEntry { slot, change })
}

fn slices_strategy() -> impl Strategy<Value = Vec<(u32, u8)>> {
    proptest::collection::btree_map(0u32..200_000, any::<u8>(), 0..20)
        .prop_map(|map| map.into_iter().collect())
}

fn state_strategy() -> impl Strategy<Value = StateFrame> {
    (
        (
            1u32..1000,
            own_strategy(),
            proptest::collection::vec(player_strategy(), 0..10),
        ),
        proptest::collection::vec(
            (
                0u8..16,
                any::<bool>(),
                any::<bool>(),
                any::<i32>(),
                any::<i32>(),
                any::<u8>(),
            ),
            0..6,
        ),
        slices_strategy(),
        proptest::collection::vec((0u8..8, 0u8..8, any::<u8>(), any::<bool>()), 0..8),
        proptest::option::of(any::<[u32; 2]>()),
        proptest::option::of((any::<u8>(), any::<u32>())),
        proptest::collection::vec((any::<u32>(), any::<u32>(), 0u8..128, any::<bool>()), 0..4),
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..4),
    )
        .prop_map(
            |((gap, own, players), shots, walls, sounds, scores, phase, charges, blasts)| {
                StateFrame {
                    gap,
                    own,
                    players,
                    shots: shots
                        .into_iter()
                        .map(|(shooter, seen, hit_player, dx, dy, direction)| ShotEntry {
                            shooter,
                            end: if seen {
                                ShotEnd::Seen { dx, dy }
                            } else {
                                ShotEnd::Direction(direction)
                            },
                            hit_player,
                        })
                        .collect(),
                    walls,
                    sounds: sounds
                        .into_iter()
                        .map(|(kind, loudness, direction, muffled)| SoundEntry {
                            kind,
                            loudness,
                            direction,
                            muffled,
                        })
                        .collect(),
                    scores,
                    phase,
                    charges: charges
                        .into_iter()
                        .map(|(x_px, y_px, fuse, friendly)| ChargeEntry {
                            x_px,
                            y_px,
                            fuse,
                            friendly,
                        })
                        .collect(),
                    blasts,
                }
            },
        )
}

fn roster_strategy() -> impl Strategy<Value = Vec<RosterEntry>> {
    proptest::collection::vec(
        (
            0u8..16,
            0u8..2,
            any::<bool>(),
            any::<[u32; 3]>(),
            "[a-z]{1,16}",
        ),
        0..8,
    )
    .prop_map(|entries| {
        entries
            .into_iter()
            .map(
                |(slot, team, bot, [kills, deaths, assists], name)| RosterEntry {
                    slot,
                    team,
                    bot,
                    kills,
                    deaths,
                    assists,
                    name,
                },
            )
            .collect()
    })
}

proptest! {
    #[test]
    fn client_frames_round_trip(intent in intent_strategy(), stay in any::<bool>()) {
        let mut bytes = Vec::new();
        encode_input(&intent, &mut bytes);
        prop_assert_eq!(decode_client_frame(&bytes), Ok(ClientFrame::Input(intent)));
        let vote = if stay { Vote::Stay } else { Vote::Leave };
        bytes.clear();
        encode_vote(vote, &mut bytes);
        prop_assert_eq!(decode_client_frame(&bytes), Ok(ClientFrame::Vote(vote)));
    }

    #[test]
    fn arbitrary_client_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_client_frame(&bytes);
    }

    #[test]
    fn server_frames_round_trip(
        state in state_strategy(),
        walls in slices_strategy(),
        roster in roster_strategy(),
        kills in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), 0u8..2), 0..5),
        votes in proptest::collection::vec((any::<u8>(), 1u8..=2), 0..8),
        board in (1u8..=3, 0u8..=2, any::<[u32; 4]>()),
        init in (any::<[u8; 2]>(), 1u8..=60, any::<[u32; 5]>(), any::<bool>(), any::<[u16; 3]>()),
    ) {
        let init = InitFrame {
            map_id: init.0[0],
            tick_rate: init.1,
            slot: if init.0[1] % 2 == 0 { NO_SLOT } else { init.0[1] % 16 },
            team: init.0[1] % 3,
            match_generation: init.2[0],
            tick: init.2[1],
            kill_limit: init.2[2],
            time_limit_ticks: init.2[3],
            friendly_fire: init.3,
            spectator_delay_ticks: init.2[4],
            cone_half_angle: init.4[0],
            view_range_px: init.4[1],
            near_radius_px: init.4[2],
            speeds: [8, 16, 26],
            player_half_sub: 36,
        };
        let kills: Vec<KillEntry> = kills
            .into_iter()
            .map(|(killer, victim, assister, cause)| KillEntry { killer, victim, assister, cause })
            .collect();
        let board = ScoreboardFrame {
            reason: board.0,
            winner: board.1,
            scores: [board.2[0], board.2[1]],
            duration_ticks: board.2[2],
            ticks_left: board.2[3],
            players: roster.clone(),
        };
        let mut message = Vec::new();
        let mut writer = Writer::new(&mut message);
        write_init(&mut writer, &init);
        write_walls(&mut writer, &walls);
        write_state(&mut writer, &state);
        write_kill_feed(&mut writer, &kills);
        write_roster(&mut writer, &roster);
        write_scoreboard(&mut writer, &board);
        write_votes(&mut writer, &votes);
        let decoded = decode_server_message(&message).unwrap();
        prop_assert_eq!(decoded, vec![
            ServerFrame::Init(init),
            ServerFrame::Walls(walls),
            ServerFrame::State(state),
            ServerFrame::KillFeed(kills),
            ServerFrame::Roster(roster),
            ServerFrame::Scoreboard(board),
            ServerFrame::Votes(votes),
        ]);
    }

    #[test]
    fn lobby_frames_round_trip(
        host_slot in prop_oneof![Just(NO_SLOT), 0u8..16],
        numbers in any::<[u32; 2]>(),
        bytes in any::<[u8; 2]>(),
        flags in any::<[bool; 2]>(),
        max_players in 1u8..=16,
        votes in proptest::collection::vec((0u8..16, any::<u8>()), 0..8),
        code in any::<u16>(),
        text in "\\PC{0,60}",
        slot in any::<u8>(),
    ) {
        let lobby = LobbyFrame {
            host_slot,
            map_id: bytes[0],
            kill_limit: numbers[0],
            time_limit_secs: numbers[1],
            friendly_fire: flags[0],
            map_vote: flags[1],
            max_players,
            spectators: bytes[1],
            votes,
        };
        let notice = NoticeFrame { code, text: text.clone() };
        let mut message = Vec::new();
        let mut writer = Writer::new(&mut message);
        write_lobby(&mut writer, &lobby);
        write_notice(&mut writer, &notice);
        prop_assert_eq!(
            decode_server_message(&message).unwrap(),
            vec![ServerFrame::Lobby(lobby), ServerFrame::Notice(notice)]
        );
        for command in [
            LobbyCommand::Kick(slot),
            LobbyCommand::TransferHost(slot),
            LobbyCommand::StartEarly,
            LobbyCommand::Settings(text),
            LobbyCommand::MapVote(slot),
        ] {
            let mut bytes = Vec::new();
            encode_lobby_command(&command, &mut bytes);
            prop_assert_eq!(decode_client_frame(&bytes), Ok(ClientFrame::Lobby(command)));
        }
    }

    #[test]
    fn arbitrary_server_bytes_never_panic(
        frame_type in 0x90u8..=0x99,
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        message in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = decode_server_frame(frame_type, &payload);
        let _ = decode_server_message(&message);
        let mut mirror = ClientMirror::new();
        let _ = mirror.apply_message(&message);
        // A mirror that holds a real match must survive garbage too.
        let mut framed = Vec::new();
        let mut writer = Writer::new(&mut framed);
        writer.frame(frame_type, |w| w.bytes(&payload));
        let _ = mirror.apply_message(&framed);
    }
}

#[test]
fn out_of_range_inputs_are_refused() {
    let mut bytes = Vec::new();
    encode_input(&Intent::idle(Angle(0)), &mut bytes);
    let mut bad_direction = bytes.clone();
    bad_direction[2] = 0x19; // direction 9
    assert_eq!(
        decode_client_frame(&bad_direction),
        Err(DecodeError::OutOfRange)
    );
    let mut bad_speed = bytes.clone();
    bad_speed[2] = 0x30; // speed 3
    assert_eq!(
        decode_client_frame(&bad_speed),
        Err(DecodeError::OutOfRange)
    );
    let mut bad_buttons = bytes.clone();
    *bad_buttons.last_mut().unwrap() = 0x08;
    assert_eq!(
        decode_client_frame(&bad_buttons),
        Err(DecodeError::OutOfRange)
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        decode_client_frame(&trailing),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        decode_client_frame(&bytes[..3]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(decode_client_frame(&[]), Err(DecodeError::Empty));
    assert_eq!(
        decode_client_frame(&[0x17]),
        Err(DecodeError::UnknownType(0x17))
    );
    // Lobby commands: a kick without its slot, a start with a payload, a settings text
    // longer than its bytes, a map vote without its map.
    assert_eq!(decode_client_frame(&[0x12]), Err(DecodeError::Truncated));
    assert_eq!(
        decode_client_frame(&[0x14, 0]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        decode_client_frame(&[0x15, 5, b'a']),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        decode_client_frame(&[0x15, 2, 0xff, 0xfe]),
        Err(DecodeError::BadUtf8)
    );
    assert_eq!(decode_client_frame(&[0x16]), Err(DecodeError::Truncated));
    assert_eq!(
        decode_client_frame(&[0x11, 3]),
        Err(DecodeError::OutOfRange)
    );
    // A huge count with no bytes behind it is refused before anything is allocated.
    assert_eq!(
        decode_server_frame(0x91, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn a_state_frame_with_one_moving_player_is_a_handful_of_bytes() {
    let state = StateFrame {
        own: OwnUpdate {
            ack_delta: Some(1),
            moved: Some((16, 0)),
            ..OwnUpdate::default()
        },
        players: vec![PlayerEntry {
            slot: 3,
            change: PlayerChange::Update {
                moved: Some((4, -4)),
                facing: Some(9),
                health: None,
            },
        }],
        ..StateFrame::default()
    };
    let mut message = Vec::new();
    write_state(&mut Writer::new(&mut message), &state);
    // type, length, sections, own mask, ack, dx, dy, count, header, packed move, facing.
    assert_eq!(
        message,
        [
            0x92, 0x09, 0x03, 0x03, 0x01, 0x20, 0x00, 0x01, 0x53, 0x4c, 0x09
        ],
        "{message:02x?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The fuzz target's first half as a property: garbage frames into a running match are
    /// refused with an error, and the room keeps ticking and writing.
    #[test]
    fn garbage_into_a_running_match_never_panics_and_the_room_keeps_ticking(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..40),
    ) {
        use coil_breach::{Breach, BreachConfig, JoinRequest, Role, Seat};
        let config = BreachConfig { min_players: 1, countdown_ticks: 1, ..BreachConfig::default() };
        let mut breach = Breach::new(config, 3).unwrap();
        let request = JoinRequest { name: "fuzz", team: None, party: None, role: Role::Player };
        breach.add_player(Seat(1), &request).unwrap();
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut mirror = ClientMirror::new();
        for mut frame in frames {
            if let Some(first) = frame.first_mut() {
                // Mostly game frame types, so decoding gets past the type byte.
                *first = 0x10 | (*first & 0x01);
            }
            let _ = breach.apply_input(Seat(1), &frame);
            let tick = breach.tick();
            events.clear();
            breach.step(&mut events);
            prop_assert_eq!(breach.tick(), tick + 1);
            out.clear();
            breach.write_update(Seat(1), &mut out);
            prop_assert!(mirror.apply_message(&out).is_ok());
        }
    }
}

#[test]
fn a_muffled_sound_sets_bit_6_and_bit_7_is_refused() {
    let state = StateFrame {
        sounds: vec![SoundEntry {
            kind: 2,
            loudness: 3,
            direction: 15,
            muffled: true,
        }],
        ..StateFrame::default()
    };
    let mut message = Vec::new();
    write_state(&mut Writer::new(&mut message), &state);
    // type, length, sections (bit 4), count, kind 2 | loudness 3 << 3 | muffled << 6, direction.
    assert_eq!(
        message,
        [0x92, 0x04, 0x10, 0x01, 0x5a, 0x0f],
        "{message:02x?}"
    );
    assert_eq!(
        decode_server_frame(0x92, &message[2..]),
        Ok(ServerFrame::State(state))
    );
    assert_eq!(
        decode_server_frame(0x92, &[0x10, 0x01, 0x9a, 0x0f]),
        Err(DecodeError::OutOfRange)
    );
}
