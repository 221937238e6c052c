//! Breach as a Coil game mode: the thin adapter between [`Breach`] and the runtime's game
//! contract (`coil-game`). It maps seats and identities, input refusals and events, and
//! nothing else: rules, vision and bytes stay in the rest of this crate.
//!
//! Refusal codes: a join breach refuses reaches the client as `1100 + Refusal::code()`
//! (`1101` match full — also a custom lobby at its `maxPlayers`, `1102` spectators full, `1103`
//! already seated, `1104` not joinable, `1105` bad name, `1106` kicked from this lobby by its
//! host). A malformed input frame closes the connection with the envelope's code; a stale or
//! jumping sequence number, a flood or a vote out of phase is refused and counted, and the
//! player stays (a client that resends after a reconnect is not a cheater). Lobby commands
//! (host controls, map votes) that are refused — a non-host's, one out of phase — are counted
//! and answered with a Notice frame (`1110..=1117`, see `LobbyRefusal`); the sender stays
//! connected, since a stale waiting-room screen sends them innocently.
//!
//! Custom lobbies: a room created with [`RoomSetup::rules`] reads them with the same parser as
//! [`GameMode::lobby_rules`] (`lobby.rs`) and runs as a lobby with a host. Kicked players are
//! remembered by `player_key` (the last [`KICKED_KEYS_KEPT`]) for the room's life and refused
//! if they come back with a new token.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use coil_game::{
    Conditions, Game, GameEvent, GameMode, GameStatus, Identity, LobbyRules, LobbyView, ModeSpec,
    Phase as RuntimePhase, PlayerId, Refusal as RuntimeRefusal, RefusalCode, ResultReason,
    Role as RuntimeRole, RoomSetup, Severity, TickContext,
};

use crate::game::{
    Breach, BreachConfig, BreachEvent, FlagKind, InputError, JoinRequest, MatchReason, Phase,
    Refusal, Role, Seat,
};
use crate::lobby::{self, LobbySettings};
use crate::map::Team;
use crate::{MAX_SLOTS, TICK_RATE};

/// Kicked players' keys a room remembers (the oldest is forgotten first).
pub const KICKED_KEYS_KEPT: usize = 64;

/// The mode the node registers.
#[derive(Debug, Clone, Default)]
pub struct BreachMode {
    pub config: BreachConfig,
}

impl BreachMode {
    pub const NAME: &'static str = "breach";
    /// The first of breach's own refusal codes (`1100 + Refusal::code()`).
    pub const REFUSAL_BASE: u16 = 1100;
}

impl GameMode for BreachMode {
    fn spec(&self) -> ModeSpec {
        ModeSpec {
            name: Self::NAME,
            tick: Duration::from_micros(1_000_000 / u64::from(TICK_RATE)),
            soft_cap: MAX_SLOTS,
            hard_cap: MAX_SLOTS,
            spectator_cap: self.config.max_spectators,
            reconnect_grace: Duration::from_secs(60),
            leaderboard: false,
            matches: true,
            max_rooms: 300,
        }
    }

    fn create(&self, setup: &RoomSetup) -> Box<dyn Game> {
        let config = BreachConfig {
            max_spectators: setup.spectator_cap.min(self.config.max_spectators),
            ..self.config.clone()
        };
        let built = match &setup.rules {
            None => Breach::new(config.clone(), setup.seed),
            Some(text) => {
                // The matchmaker validated the rules before it signed a token for them; should
                // they not read (a node older than the API), the lobby plays the defaults.
                let defaults = LobbySettings::defaults(&config);
                let settings = LobbySettings::parse(text, &defaults).unwrap_or(defaults);
                Breach::with_lobby(config.clone(), setup.seed, settings)
            }
        };
        match built {
            Ok(breach) => Box::new(BreachGame::new(breach)),
            // The mode's config was validated when the node started; a room never sees a bad
            // one, but the defaults are always valid, so fall back to them rather than panic.
            Err(_) => Box::new(BreachGame::new(
                Breach::new(BreachConfig::default(), setup.seed)
                    .unwrap_or_else(|_| unreachable!("the default config is valid")),
            )),
        }
    }

    fn lobby_rules(&self, text: &str) -> Result<LobbyRules, String> {
        let settings = LobbySettings::parse(text, &LobbySettings::defaults(&self.config))?;
        let normalized = settings.normalized();
        if normalized.len() > LobbyRules::MAX_LEN {
            return Err("the settings are too long".to_owned());
        }
        Ok(LobbyRules {
            normalized,
            map: settings.map_name(),
            max_players: u32::from(settings.max_players),
        })
    }
}

/// Who sits in a seat, kept past a leave so results can name everyone who played.
#[derive(Debug, Clone)]
struct Known {
    player_key: String,
    display_name: String,
    verified: bool,
}

/// One breach room behind the game contract.
pub struct BreachGame {
    breach: Breach,
    known: HashMap<Seat, Known>,
    events: Vec<BreachEvent>,
    /// Keys of players the host kicked, refused at join for the room's life (bounded).
    kicked_keys: VecDeque<String>,
    joins_refused_kicked: u64,
}

impl BreachGame {
    pub fn new(breach: Breach) -> BreachGame {
        BreachGame {
            breach,
            known: HashMap::new(),
            events: Vec::new(),
            kicked_keys: VecDeque::new(),
            joins_refused_kicked: 0,
        }
    }

    /// The match, read-only (tests, replays).
    pub fn breach(&self) -> &Breach {
        &self.breach
    }
}

fn seat(player: PlayerId) -> Seat {
    Seat(player.0)
}

/// Parties are strings on the token and small numbers in the game: the same party string
/// always maps to the same number (FNV-1a).
fn party_number(party: &str) -> u32 {
    party.bytes().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn refusal(refused: Refusal) -> RuntimeRefusal {
    let code = RefusalCode::game(BreachMode::REFUSAL_BASE + refused.code())
        .unwrap_or_else(|| RefusalCode::from(coil_game::ErrorCode::Internal));
    let reason = match refused {
        Refusal::MatchFull => "the match is full",
        Refusal::SpectatorsFull => "no spectator seat left",
        Refusal::AlreadySeated => "already in this match",
        Refusal::NotJoinable => "the match is ending",
        Refusal::BadName => "the name is not valid",
        Refusal::Kicked => "the host removed you from this lobby",
    };
    RuntimeRefusal { code, reason }
}

fn phase(phase: Phase) -> RuntimePhase {
    match phase {
        Phase::Waiting => RuntimePhase::Waiting,
        Phase::Starting => RuntimePhase::Starting,
        Phase::InProgress => RuntimePhase::InProgress,
        Phase::Ending => RuntimePhase::Ending,
        Phase::Completed => RuntimePhase::Completed,
    }
}

fn reason(reason: MatchReason) -> ResultReason {
    match reason {
        MatchReason::KillLimit => ResultReason::KillLimit,
        MatchReason::TimeLimit => ResultReason::TimeLimit,
        MatchReason::Forfeit => ResultReason::Forfeit,
    }
}

impl Game for BreachGame {
    fn join(&mut self, player: PlayerId, identity: &Identity) -> Result<(), RuntimeRefusal> {
        let request = JoinRequest {
            name: &identity.display_name,
            team: identity.team.and_then(Team::from_index),
            party: identity.party.as_deref().map(party_number),
            role: match identity.role {
                RuntimeRole::Player => Role::Player,
                RuntimeRole::Spectator => Role::Spectator,
            },
        };
        if self.kicked_keys.contains(&identity.player_key) {
            self.joins_refused_kicked += 1;
            return Err(refusal(Refusal::Kicked));
        }
        self.breach
            .add_member(seat(player), &request, identity.host)
            .map_err(refusal)?;
        self.known.insert(
            seat(player),
            Known {
                player_key: identity.player_key.clone(),
                display_name: identity.display_name.clone(),
                verified: identity.verified,
            },
        );
        Ok(())
    }

    fn leave(&mut self, player: PlayerId, _events: &mut Vec<GameEvent>) {
        // The seat's name stays known: a result at the end of this match still lists it.
        self.breach.remove_player(seat(player));
    }

    fn handle_message(&mut self, player: PlayerId, frame: &[u8]) -> Result<(), RuntimeRefusal> {
        match self.breach.apply_input(seat(player), frame) {
            Ok(()) => Ok(()),
            Err(error @ InputError::Malformed(_)) => {
                Err(RuntimeRefusal::new(error.wire_code(), "bad breach frame"))
            }
            // Counted by the game; the player stays.
            Err(_) => Ok(()),
        }
    }

    fn tick(&mut self, _context: TickContext, events: &mut Vec<GameEvent>) {
        // Breach steps by its fixed tick (deterministic replays), not by the measured time.
        self.breach.step(&mut self.events);
        for event in self.events.drain(..) {
            match event {
                BreachEvent::Result(result) => {
                    let players = result
                        .players
                        .iter()
                        .map(|line| {
                            let known = line.seat.and_then(|seat| self.known.get(&seat));
                            coil_game::PlayerResult {
                                player_key: known
                                    .map_or_else(|| line.name.clone(), |k| k.player_key.clone()),
                                display_name: known
                                    .map_or_else(|| line.name.clone(), |k| k.display_name.clone()),
                                team: line.team.index() as u8,
                                kills: line.kills,
                                deaths: line.deaths,
                                assists: line.assists,
                                score: i64::from(line.kills),
                                left_early: false,
                                bot: line.seat.is_none(),
                                verified: known.is_some_and(|k| k.verified),
                            }
                        })
                        .collect();
                    events.push(GameEvent::MatchResult(coil_game::MatchResult {
                        ordinal: result.match_number,
                        winner: result.winner.map(|team| team.index() as u8),
                        reason: reason(result.reason),
                        team_scores: result.scores.to_vec(),
                        players,
                        duration_ticks: u64::from(result.duration_ticks),
                        tick_rate: u32::from(TICK_RATE),
                        details: vec![("map", result.map_id.to_string())],
                    }));
                }
                BreachEvent::Flag(flag) => {
                    let (kind, severity) = match flag.kind {
                        FlagKind::AimSnap => ("aim_snap", Severity::High),
                    };
                    events.push(GameEvent::Flag(coil_game::Flag {
                        player: PlayerId(flag.seat.0),
                        tick: flag.tick,
                        kind,
                        severity,
                        evidence: format!(
                            "snaps={} largest_turn_mrad={} smallest_error_mrad={}",
                            flag.snaps, flag.largest_turn_mrad, flag.smallest_error_mrad
                        ),
                    }));
                }
                BreachEvent::Release(released) => {
                    events.push(GameEvent::Release(PlayerId(released.0)));
                }
                BreachEvent::Kicked(kicked) => {
                    if let Some(known) = self.known.get(&kicked)
                        && !self.kicked_keys.contains(&known.player_key)
                    {
                        if self.kicked_keys.len() >= KICKED_KEYS_KEPT {
                            self.kicked_keys.pop_front();
                        }
                        self.kicked_keys.push_back(known.player_key.clone());
                    }
                }
                // The kill feed and phase changes travel in the players' own frames.
                BreachEvent::Kill { .. } | BreachEvent::PhaseChanged(_) => {}
            }
        }
    }

    fn write_update(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        self.breach.write_update(seat(player), out);
    }

    fn resync(&mut self, player: PlayerId) {
        self.breach.resync(seat(player));
    }

    fn status(&self) -> GameStatus {
        GameStatus {
            phase: phase(self.breach.phase()),
            joinable: self.breach.joinable(),
            bots: self.breach.bots() as u32,
        }
    }

    fn set_conditions(&mut self, conditions: Conditions) {
        // A draining node lets the match in progress end, then no restart: the room completes.
        self.breach.set_last_match(conditions.draining);
    }

    fn counters(&self, out: &mut Vec<(&'static str, u64)>) {
        let counters = self.breach.counters();
        out.extend([
            ("inputs_applied", counters.inputs_applied),
            ("inputs_malformed", counters.inputs_malformed),
            ("inputs_stale_sequence", counters.inputs_stale_sequence),
            ("inputs_sequence_jump", counters.inputs_sequence_jump),
            ("inputs_flood", counters.inputs_flood),
            ("inputs_from_spectators", counters.inputs_from_spectators),
            (
                "fire_presses_on_cooldown",
                counters.fire_presses_on_cooldown,
            ),
            ("aim_snaps", counters.aim_snaps),
            ("flags_raised", counters.flags_raised),
            ("results_emitted", counters.results_emitted),
            ("kills", counters.kills),
            ("shots_fired", counters.shots_fired),
            ("slices_destroyed", counters.slices_destroyed),
            ("resyncs", counters.resyncs),
            ("host_commands_applied", counters.host_commands_applied),
            ("lobby_commands_refused", counters.lobby_commands_refused),
            ("map_votes", counters.map_votes),
            ("kicks", counters.kicks),
            ("host_migrations", counters.host_migrations),
            ("joins_refused_kicked", self.joins_refused_kicked),
        ]);
    }

    fn lobby(&self) -> Option<LobbyView> {
        Some(LobbyView {
            host: self.breach.host().map(|seat| PlayerId(seat.0)),
            map: lobby::map_name(self.breach.current_map_id())
                .unwrap_or_else(|| self.breach.current_map_id().to_string()),
            max_players: self.breach.max_players() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_map_to_stable_numbers_and_refusals_to_breach_codes() {
        assert_eq!(party_number("p-1"), party_number("p-1"));
        assert_ne!(party_number("p-1"), party_number("p-2"));
        assert_eq!(refusal(Refusal::MatchFull).code.get(), 1101);
        assert_eq!(refusal(Refusal::BadName).code.get(), 1105);
    }

    #[test]
    fn a_full_match_plays_through_the_contract_and_reports_once() {
        let mode = BreachMode {
            config: BreachConfig {
                kill_limit: 3,
                countdown_ticks: 1,
                scoreboard_ticks: 2,
                ..BreachConfig::default()
            },
        };
        let mut game = mode.create(&RoomSetup {
            seed: 9,
            tick: Duration::from_millis(33),
            hard_cap: 8,
            spectator_cap: 4,
            rules: None,
        });
        for index in 1..=2u32 {
            game.join(
                PlayerId(index),
                &Identity::guest(format!("acc-{index}"), format!("p{index}")),
            )
            .unwrap();
        }
        let watcher = Identity {
            role: RuntimeRole::Spectator,
            ..Identity::guest("acc-w", "watcher")
        };
        game.join(PlayerId(3), &watcher).unwrap();
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut results = Vec::new();
        for tick in 0..(30 * 60 * 12) {
            game.tick(TickContext { dt: 0.033, tick }, &mut events);
            for player in 1..=3 {
                out.clear();
                game.write_update(PlayerId(player), &mut out);
            }
            results.extend(events.drain(..).filter_map(|event| match event {
                GameEvent::MatchResult(result) => Some(result),
                _ => None,
            }));
            if !results.is_empty() {
                break;
            }
        }
        assert_eq!(results.len(), 1, "one result for the match");
        let result = &results[0];
        let humans: Vec<&str> = result
            .players
            .iter()
            .filter(|p| !p.bot)
            .map(|p| p.player_key.as_str())
            .collect();
        assert_eq!(humans.len(), 2, "both humans, no spectator: {humans:?}");
        assert!(humans.contains(&"acc-1") && humans.contains(&"acc-2"));
        assert!(
            result.players.iter().any(|p| p.bot),
            "bots filled the seats"
        );
        assert_eq!(game.status().phase, RuntimePhase::Ending);
    }
}
