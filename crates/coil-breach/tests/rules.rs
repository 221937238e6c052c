//! Match rules: phases, balance, victory, results exactly once, votes and restarts,
//! forfeits, spectators, refusals and input validation counters.

use coil_breach::input::Intent;
use coil_breach::math::Angle;
use coil_breach::wire::{self, Vote};
use coil_breach::{
    Breach, BreachConfig, BreachEvent, InputError, JoinRequest, MatchReason, MatchResult, Phase,
    Refusal, Role, Seat, Team,
};

fn join(name: &str) -> JoinRequest<'_> {
    JoinRequest {
        name,
        team: None,
        party: None,
        role: Role::Player,
    }
}

fn quick() -> BreachConfig {
    BreachConfig {
        countdown_ticks: 10,
        scoreboard_ticks: 30,
        respawn_ticks: 20,
        ..BreachConfig::default()
    }
}

fn step_until(
    breach: &mut Breach,
    limit: u32,
    mut stop: impl FnMut(&Breach, &[BreachEvent]) -> bool,
) -> Vec<BreachEvent> {
    let mut all = Vec::new();
    for _ in 0..limit {
        let mut events = Vec::new();
        breach.step(&mut events);
        let done = stop(breach, &events);
        all.extend(events);
        if done {
            return all;
        }
    }
    panic!(
        "condition not reached in {limit} ticks (phase {:?})",
        breach.phase()
    );
}

fn results(events: &[BreachEvent]) -> Vec<&MatchResult> {
    events
        .iter()
        .filter_map(|event| match event {
            BreachEvent::Result(result) => Some(result),
            _ => None,
        })
        .collect()
}

fn vote(breach: &mut Breach, seat: Seat, vote: Vote) -> Result<(), InputError> {
    let mut bytes = Vec::new();
    wire::encode_vote(vote, &mut bytes);
    breach.apply_input(seat, &bytes)
}

#[test]
fn the_lobby_counts_down_at_the_minimum_and_fills_with_bots() {
    let mut breach = Breach::new(quick(), 1).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    let mut events = Vec::new();
    for _ in 0..50 {
        breach.step(&mut events);
    }
    assert_eq!(
        breach.phase(),
        Phase::Waiting,
        "one human is below the minimum of two"
    );
    assert_eq!(breach.bots(), 0);
    breach.add_player(Seat(2), &join("bo")).unwrap();
    breach.step(&mut events);
    assert_eq!(breach.phase(), Phase::Starting);
    assert_eq!(breach.humans() + breach.bots(), 8);
    // A human leaving during the countdown below the minimum goes back to the lobby.
    breach.remove_player(Seat(2));
    breach.step(&mut events);
    assert_eq!(breach.phase(), Phase::Waiting);
    assert_eq!(breach.bots(), 0);
    breach.add_player(Seat(3), &join("cy")).unwrap();
    step_until(&mut breach, 20, |b, _| b.phase() == Phase::InProgress);
    let (_, first) = breach.slot_of(Seat(1)).unwrap();
    let (_, second) = breach.slot_of(Seat(3)).unwrap();
    assert_ne!(first, second, "two humans are split across the teams");
    assert_eq!(breach.humans() + breach.bots(), 8);
}

#[test]
fn a_match_ends_at_the_kill_limit_once_then_restarts_with_those_who_stayed() {
    let config = BreachConfig {
        kill_limit: 3,
        ..quick()
    };
    let mut breach = Breach::new(config, 9).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    breach.add_player(Seat(2), &join("bo")).unwrap();
    let first_map = breach.world().map().id;
    let events = step_until(&mut breach, 40_000, |b, _| b.phase() == Phase::Ending);
    let found = results(&events);
    assert_eq!(found.len(), 1, "exactly one result");
    let result = found[0];
    assert_eq!(result.reason, MatchReason::KillLimit);
    let winner = result.winner.unwrap();
    assert_eq!(result.scores[winner.index()], 3);
    assert!(result.scores[winner.other().index()] < 3);
    assert_eq!(result.players.len(), 8);
    let team_kills: u32 = result
        .players
        .iter()
        .filter(|p| p.team == winner)
        .map(|p| p.kills)
        .sum();
    assert_eq!(team_kills, 3, "team score is the sum of its players' kills");
    assert!(result.duration_ticks > 0);
    assert_eq!(result.match_number, 1);
    assert_eq!(breach.counters().results_emitted, 1);
    // The scoreboard: no new joins, inputs do nothing, votes count.
    assert_eq!(
        breach.add_player(Seat(5), &join("late")),
        Err(Refusal::NotJoinable)
    );
    assert!(!breach.joinable());
    vote(&mut breach, Seat(1), Vote::Stay).unwrap();
    vote(&mut breach, Seat(2), Vote::Stay).unwrap();
    let events = step_until(&mut breach, 40, |b, _| b.phase() == Phase::Starting);
    assert!(
        results(&events).is_empty(),
        "no second result for the same match"
    );
    assert!(!events.iter().any(|e| matches!(e, BreachEvent::Release(_))));
    assert_eq!(breach.scores(), [0, 0]);
    assert_ne!(breach.world().map().id, first_map, "the rotation moves on");
    assert_eq!(breach.humans(), 2);
    // The second match: one leaves, one does not vote → completed, both released.
    let events = step_until(&mut breach, 40_000, |b, _| b.phase() == Phase::Ending);
    assert_eq!(results(&events).len(), 1);
    assert_eq!(results(&events)[0].match_number, 2);
    vote(&mut breach, Seat(1), Vote::Leave).unwrap();
    let events = step_until(&mut breach, 40, |b, _| b.finished());
    let released: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BreachEvent::Release(seat) => Some(*seat),
            _ => None,
        })
        .collect();
    assert_eq!(released.len(), 2, "{released:?}");
    assert!(released.contains(&Seat(1)) && released.contains(&Seat(2)));
    assert_eq!(breach.counters().results_emitted, 2);
    assert_eq!(breach.phase(), Phase::Completed);
}

#[test]
fn the_scoreboard_freezes_the_world() {
    let config = BreachConfig {
        time_limit_ticks: 30,
        ..quick()
    };
    let mut breach = Breach::new(config, 3).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    breach.add_player(Seat(2), &join("bo")).unwrap();
    let events = step_until(&mut breach, 200, |b, _| b.phase() == Phase::Ending);
    let result = results(&events)[0].clone();
    assert_eq!(result.reason, MatchReason::TimeLimit);
    assert_eq!(result.duration_ticks, 30);
    let positions: Vec<_> = breach
        .world()
        .players()
        .map(|(_, p)| p.position())
        .collect();
    let hash = breach.world().walls().damaged_slices().count();
    let mut events = Vec::new();
    for _ in 0..10 {
        breach.step(&mut events);
    }
    let after: Vec<_> = breach
        .world()
        .players()
        .map(|(_, p)| p.position())
        .collect();
    assert_eq!(positions, after);
    assert_eq!(hash, breach.world().walls().damaged_slices().count());
}

#[test]
fn a_team_without_humans_forfeits() {
    let mut breach = Breach::new(quick(), 5).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    breach.add_player(Seat(2), &join("bo")).unwrap();
    step_until(&mut breach, 20, |b, _| b.phase() == Phase::InProgress);
    let (_, staying_team) = breach.slot_of(Seat(1)).unwrap();
    assert!(breach.remove_player(Seat(2)));
    assert_eq!(
        breach.humans() + breach.bots(),
        8,
        "a bot took the leaver's seat"
    );
    let events = step_until(&mut breach, 5, |b, _| b.phase() != Phase::InProgress);
    let result = results(&events)[0];
    assert_eq!(result.reason, MatchReason::Forfeit);
    assert_eq!(result.winner, Some(staying_team));
    // Alone at the vote: fewer than two stay, the room completes.
    vote(&mut breach, Seat(1), Vote::Stay).unwrap();
    step_until(&mut breach, 40, |b, _| b.finished());
}

#[test]
fn everyone_leaving_mid_match_completes_the_room_with_one_result() {
    let mut breach = Breach::new(quick(), 6).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    breach.add_player(Seat(2), &join("bo")).unwrap();
    step_until(&mut breach, 20, |b, _| b.phase() == Phase::InProgress);
    breach.remove_player(Seat(1));
    breach.remove_player(Seat(2));
    let events = step_until(&mut breach, 5, |b, _| b.finished());
    let found = results(&events);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reason, MatchReason::Forfeit);
    assert_eq!(found[0].winner, None);
}

#[test]
fn teams_stay_balanced_and_parties_stay_together() {
    let mut breach = Breach::new(quick(), 7).unwrap();
    let party = |name: &'static str, party: u32| JoinRequest {
        name,
        team: None,
        party: Some(party),
        role: Role::Player,
    };
    breach.add_player(Seat(1), &party("a1", 10)).unwrap();
    breach.add_player(Seat(2), &party("a2", 10)).unwrap();
    breach.add_player(Seat(3), &party("a3", 10)).unwrap();
    breach.add_player(Seat(4), &join("solo")).unwrap();
    breach.add_player(Seat(5), &join("solo2")).unwrap();
    step_until(&mut breach, 20, |b, _| b.phase() == Phase::InProgress);
    let team = |b: &Breach, seat| b.slot_of(Seat(seat)).unwrap().1;
    let party_team = team(&breach, 1);
    assert_eq!(team(&breach, 2), party_team);
    assert_eq!(team(&breach, 3), party_team);
    assert_ne!(team(&breach, 4), party_team);
    assert_ne!(team(&breach, 5), party_team);
    // A late joiner goes to the team with fewer humans (2 vs 3), asking for the other.
    let request = JoinRequest {
        name: "late",
        team: Some(party_team),
        party: None,
        role: Role::Player,
    };
    breach.add_player(Seat(6), &request).unwrap();
    assert_eq!(team(&breach, 6), party_team.other());
    assert_eq!(
        breach.humans() + breach.bots(),
        8,
        "the newcomer took a bot's seat"
    );
    // A request that keeps the balance is honoured.
    let request = JoinRequest {
        name: "wish",
        team: Some(Team::B),
        party: None,
        role: Role::Player,
    };
    breach.add_player(Seat(7), &request).unwrap();
    assert_eq!(team(&breach, 7), Team::B);
    breach.add_player(Seat(8), &join("eight")).unwrap();
    assert_eq!(breach.bots(), 0);
    assert_eq!(
        breach.add_player(Seat(9), &join("nine")),
        Err(Refusal::MatchFull)
    );
    assert_eq!(
        breach.add_player(Seat(8), &join("again")),
        Err(Refusal::AlreadySeated)
    );
    assert_eq!(
        breach.add_player(Seat(10), &join("")),
        Err(Refusal::BadName)
    );
    assert_eq!(
        breach.add_player(Seat(10), &join("seventeen-chars-x")),
        Err(Refusal::BadName)
    );
}

#[test]
fn spectators_are_capped_silent_delayed_and_not_counted() {
    let config = BreachConfig {
        max_spectators: 1,
        spectator_delay_ticks: 45,
        kill_limit: 1,
        ..quick()
    };
    let mut breach = Breach::new(config, 8).unwrap();
    let watcher = JoinRequest {
        name: "eve",
        team: None,
        party: None,
        role: Role::Spectator,
    };
    breach.add_player(Seat(50), &watcher).unwrap();
    assert_eq!(
        breach.add_player(Seat(51), &watcher),
        Err(Refusal::SpectatorsFull)
    );
    breach.add_player(Seat(1), &join("ann")).unwrap();
    let mut events = Vec::new();
    for _ in 0..30 {
        breach.step(&mut events);
    }
    assert_eq!(
        breach.phase(),
        Phase::Waiting,
        "a spectator does not count toward the minimum"
    );
    breach.add_player(Seat(2), &join("bo")).unwrap();
    let mut bytes = Vec::new();
    wire::encode_input(
        &Intent {
            sequence: 1,
            ..Intent::idle(Angle(0))
        },
        &mut bytes,
    );
    assert_eq!(
        breach.apply_input(Seat(50), &bytes),
        Err(InputError::Spectator)
    );
    assert_eq!(breach.counters().inputs_from_spectators, 1);
    // Positions 45 ticks ago are what the spectator is shown.
    let mut history = Vec::new();
    let mut checked = 0;
    let events = step_until(&mut breach, 40_000, |b, _| {
        history.push(b.world().player(0).map(|p| (p.alive, p.x, p.y)));
        if history.len() > 46
            && let Some(Some((true, x, y))) = history.get(history.len() - 46)
            && let Some((sx, sy, _)) = b.spectator_feed().shown_player(0)
            && b.phase() == Phase::InProgress
        {
            assert_eq!((sx, sy), (*x, *y));
            checked += 1;
        }
        b.phase() == Phase::Ending
    });
    assert!(checked > 10, "{checked}");
    let result = results(&events)[0];
    assert!(result.players.iter().all(|p| p.seat != Some(Seat(50))));
    assert_eq!(
        vote(&mut breach, Seat(50), Vote::Stay),
        Err(InputError::Spectator)
    );
}

#[test]
fn bad_inputs_are_refused_and_counted() {
    let mut breach = Breach::new(quick(), 2).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    let send = |breach: &mut Breach, sequence: u32| {
        let mut bytes = Vec::new();
        wire::encode_input(
            &Intent {
                sequence,
                ..Intent::idle(Angle(0))
            },
            &mut bytes,
        );
        breach.apply_input(Seat(1), &bytes)
    };
    assert_eq!(send(&mut breach, 1), Ok(()));
    assert_eq!(send(&mut breach, 1), Err(InputError::StaleSequence));
    assert_eq!(send(&mut breach, 1000), Err(InputError::SequenceJump));
    for sequence in 2..=4 {
        send(&mut breach, sequence).unwrap();
    }
    assert_eq!(send(&mut breach, 5), Err(InputError::Flood));
    assert!(matches!(
        breach.apply_input(Seat(1), &[0x10, 0x01]),
        Err(InputError::Malformed(_))
    ));
    assert_eq!(
        breach.apply_input(Seat(99), &[0x11, 1]),
        Err(InputError::UnknownSeat)
    );
    assert_eq!(
        vote(&mut breach, Seat(1), Vote::Stay),
        Err(InputError::VoteNotOpen)
    );
    let counters = *breach.counters();
    assert_eq!(counters.inputs_stale_sequence, 1);
    assert_eq!(counters.inputs_sequence_jump, 1);
    assert_eq!(counters.inputs_flood, 1);
    assert_eq!(counters.inputs_malformed, 1);
    assert_eq!(counters.inputs_unknown_seat, 1);
    assert_eq!(counters.votes_out_of_phase, 1);
    // One queued intent is applied per tick: four ticks drain the queue.
    let mut events = Vec::new();
    for _ in 0..4 {
        breach.step(&mut events);
    }
    assert_eq!(send(&mut breach, 5), Ok(()));
}

#[test]
fn bad_configs_are_refused() {
    for config in [
        BreachConfig {
            map_rotation: vec![],
            ..BreachConfig::default()
        },
        BreachConfig {
            map_rotation: vec![99],
            ..BreachConfig::default()
        },
        BreachConfig {
            kill_limit: 0,
            ..BreachConfig::default()
        },
        BreachConfig {
            min_players: 9,
            ..BreachConfig::default()
        },
        BreachConfig {
            spectator_delay_ticks: 0,
            ..BreachConfig::default()
        },
        BreachConfig {
            scoreboard_ticks: 0,
            ..BreachConfig::default()
        },
    ] {
        assert!(Breach::new(config, 0).is_err());
    }
}

#[test]
fn bots_alone_fight_without_raising_flags() {
    let config = BreachConfig {
        min_players: 0,
        ..quick()
    };
    let mut breach = Breach::new(config, 11).unwrap();
    let mut events = Vec::new();
    for _ in 0..(30 * 120) {
        breach.step(&mut events);
    }
    let counters = breach.counters();
    assert_eq!(breach.bots(), 8);
    assert!(
        counters.kills >= 10,
        "bots should kill each other: {counters:?}"
    );
    assert!(counters.shots_fired > 200, "{counters:?}");
    assert!(counters.slices_destroyed > 0, "{counters:?}");
    assert_eq!(counters.flags_raised, 0);
    assert_eq!(counters.inputs_stale_sequence + counters.inputs_flood, 0);
}

#[test]
fn inputs_sent_every_tick_through_the_scoreboard_still_move_players_after_the_restart() {
    let config = BreachConfig {
        time_limit_ticks: 60,
        ..quick()
    };
    let mut breach = Breach::new(config, 12).unwrap();
    breach.add_player(Seat(1), &join("ann")).unwrap();
    breach.add_player(Seat(2), &join("bo")).unwrap();
    let mut sequence = 0;
    let mut events = Vec::new();
    let mut restarted_at = None;
    let mut moved_after_restart = false;
    for _ in 0..400 {
        sequence += 1;
        for seat in [Seat(1), Seat(2)] {
            let mut bytes = Vec::new();
            let intent = Intent {
                sequence,
                direction: 1 + (sequence / 30 % 8) as u8,
                ..Intent::idle(Angle(0))
            };
            wire::encode_input(&intent, &mut bytes);
            assert_eq!(
                breach.apply_input(seat, &bytes),
                Ok(()),
                "sequence {sequence}"
            );
            if breach.phase() == Phase::Ending {
                vote(&mut breach, seat, Vote::Stay).unwrap();
            }
        }
        let before = breach
            .world()
            .player(breach.slot_of(Seat(1)).unwrap().0)
            .unwrap()
            .position();
        events.clear();
        breach.step(&mut events);
        let after = breach
            .world()
            .player(breach.slot_of(Seat(1)).unwrap().0)
            .unwrap()
            .position();
        if results(&events).len() == 1 && breach.counters().results_emitted == 1 {
            restarted_at = Some(sequence);
        }
        if restarted_at.is_some() && breach.phase() == Phase::InProgress && before != after {
            moved_after_restart = true;
        }
    }
    assert!(restarted_at.is_some());
    assert!(
        breach.counters().results_emitted >= 2,
        "a second match ran and ended"
    );
    assert!(moved_after_restart);
}
