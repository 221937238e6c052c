//! A deliberately tiny match game, used only by tests, to prove the game contract without
//! touching the runtime: players join a lobby, the match starts with two players, every input
//! frame adds its byte to the room's count, and at `target` the match ends with a result, the
//! game completes and the room closes by itself. A player join while the match runs is refused
//! with the game's own code.
//!
//! Wire (game frames): client `0x10 [amount u8]`; server `0x90 [len] [count u32 LE] [phase u8]
//! [own u32 LE]` every tick (`own` = what this player added so far).

use std::collections::BTreeMap;
use std::time::Duration;

use coil_game::{
    Game, GameEvent, GameMode, GameStatus, Identity, MatchResult, ModeSpec, Phase, PlayerId,
    PlayerResult, Refusal, RefusalCode, ResultReason, Role, RoomSetup, TickContext,
};

pub const NAME: &str = "counter";
/// The game's own refusal: the match already started.
pub const MATCH_STARTED: u16 = 1500;
pub const STATE_FRAME: u8 = 0x90;

pub struct CounterMode {
    pub target: u32,
    pub reconnect_grace: Duration,
    pub hard_cap: usize,
    /// Players the match starts with.
    pub start_at: usize,
}

impl GameMode for CounterMode {
    fn spec(&self) -> ModeSpec {
        ModeSpec {
            name: NAME,
            tick: Duration::from_millis(20),
            soft_cap: self.hard_cap,
            hard_cap: self.hard_cap,
            spectator_cap: 2,
            reconnect_grace: self.reconnect_grace,
            leaderboard: false,
            matches: true,
            max_rooms: 64,
        }
    }

    fn create(&self, _setup: &RoomSetup) -> Box<dyn Game> {
        Box::new(Counter {
            target: self.target,
            start_at: self.start_at,
            count: 0,
            phase: Phase::Waiting,
            players: BTreeMap::new(),
            reported: false,
            ticks: 0,
        })
    }
}

struct Seat {
    identity: Identity,
    added: u32,
    left: bool,
}

struct Counter {
    target: u32,
    start_at: usize,
    count: u32,
    phase: Phase,
    players: BTreeMap<PlayerId, Seat>,
    reported: bool,
    ticks: u64,
}

impl Game for Counter {
    fn join(&mut self, player: PlayerId, identity: &Identity) -> Result<(), Refusal> {
        if identity.role == Role::Player && self.phase != Phase::Waiting {
            return Err(Refusal {
                code: RefusalCode::game(MATCH_STARTED).expect("a game code"),
                reason: "the match already started",
            });
        }
        self.players.insert(
            player,
            Seat {
                identity: identity.clone(),
                added: 0,
                left: false,
            },
        );
        Ok(())
    }

    fn leave(&mut self, player: PlayerId, _events: &mut Vec<GameEvent>) {
        if let Some(seat) = self.players.get_mut(&player) {
            seat.left = true;
        }
    }

    fn handle_message(&mut self, player: PlayerId, frame: &[u8]) -> Result<(), Refusal> {
        let [0x10, amount] = frame else {
            return Err(Refusal::new(
                coil_game::ErrorCode::BadFrame,
                "counter frames are 0x10 and one byte",
            ));
        };
        if self.phase == Phase::InProgress
            && let Some(seat) = self.players.get_mut(&player)
        {
            seat.added += u32::from(*amount);
            self.count += u32::from(*amount);
        }
        Ok(())
    }

    fn tick(&mut self, _context: TickContext, events: &mut Vec<GameEvent>) {
        self.ticks += 1;
        let playing = self
            .players
            .values()
            .filter(|seat| !seat.left && seat.identity.role == Role::Player)
            .count();
        if self.phase == Phase::Waiting && playing >= self.start_at {
            self.phase = Phase::InProgress;
        }
        if self.phase == Phase::InProgress && self.count >= self.target && !self.reported {
            self.reported = true;
            self.phase = Phase::Completed;
            events.push(GameEvent::MatchResult(MatchResult {
                ordinal: 1,
                winner: None,
                reason: ResultReason::KillLimit,
                team_scores: vec![self.count],
                players: self
                    .players
                    .values()
                    .filter(|seat| seat.identity.role == Role::Player)
                    .map(|seat| PlayerResult {
                        player_key: seat.identity.player_key.clone(),
                        display_name: seat.identity.display_name.clone(),
                        team: 0,
                        kills: seat.added,
                        deaths: 0,
                        assists: 0,
                        score: i64::from(seat.added),
                        left_early: seat.left,
                        bot: false,
                        verified: seat.identity.verified,
                    })
                    .collect(),
                duration_ticks: self.ticks,
                tick_rate: 50,
                details: vec![("target", self.target.to_string())],
            }));
        }
    }

    fn write_update(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        let own = self.players.get(&player).map_or(0, |seat| seat.added);
        out.push(STATE_FRAME);
        out.push(9);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.push(
            Phase::ALL
                .iter()
                .position(|p| *p == self.phase)
                .unwrap_or(0) as u8,
        );
        out.extend_from_slice(&own.to_le_bytes());
    }

    fn resync(&mut self, _player: PlayerId) {}

    fn status(&self) -> GameStatus {
        GameStatus {
            phase: self.phase,
            joinable: self.phase == Phase::Waiting,
            bots: 0,
        }
    }
}

/// The counter state frame a client received: (count, phase index, own contribution).
pub fn decode_state(payload: &[u8]) -> Option<(u32, u8, u32)> {
    if payload.len() != 9 {
        return None;
    }
    Some((
        u32::from_le_bytes(payload[0..4].try_into().ok()?),
        payload[4],
        u32::from_le_bytes(payload[5..9].try_into().ok()?),
    ))
}
