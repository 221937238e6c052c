//! The arena game mode: `coil-sim` rules behind the `coil-game` contract, encoded per viewer
//! with `coil-protocol`'s arena frames.
//!
//! Owns the mapping between runtime seats ([`PlayerId`]) and snakes ([`SnakeId`]), input
//! coalescing, respawn, bot fill (bots top the room up to a population target and step aside
//! as humans join, or all leave when the room is overloaded or draining), the ~1 Hz meta frame,
//! the death frame, and each player's [`view::ViewerState`] (what that client knows). It does
//! not own the rules (`coil-sim`), the byte layout (`coil-protocol`) or sockets, seats and
//! timers (the room runtime): no IO, no clock.
//!
//! [`ArenaMode`] is the mode the node registers: a drop-in room that is always
//! [`Phase::Open`], records every run on the leaderboard and holds no seat on a disconnect.
//!
//! Layout: [`view`] is the per-viewer state encoder, [`client`] the Rust client mirror that
//! applies server messages (tests, the load generator).

pub mod client;
pub mod view;

use std::collections::HashMap;

use coil_protocol::arena::{
    ArenaClientFrame, Death, Init, LeaderboardEntry, META_TOP_MAX, Meta, angle_from_u16,
    decode_client_frame, unit_to_u8, write_death, write_init, write_meta, write_state,
};
use coil_protocol::{ErrorCode, Writer};
use coil_sim::{ArenaConfig, SEGMENT_SPACING, SimEvent, SnakeId, SnakeKind, World};

use coil_game::{
    Conditions, Game, GameEvent, GameMode, GameStatus, Identity, ModeSpec, Phase, PlayerId,
    Refusal, RefusalCode, Role, RoomSetup, RunScore, TickContext,
};
use view::{EncoderScratch, PelletTracker, ViewSettings, ViewerState, wire_girth};

/// Everything that shapes one arena room.
#[derive(Debug, Clone)]
pub struct ArenaSettings {
    pub arena: ArenaConfig,
    pub view: ViewSettings,
    /// Seed of the simulation's generator (a replay with the same seed and inputs matches).
    pub seed: u64,
    /// Skins the client can draw; a join's skin is taken modulo this.
    pub skins: u8,
    /// How many bots the room runs.
    pub bots: BotFill,
}

/// How an arena room fills itself with bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotFill {
    /// Exactly this many bots (tests, benches, fixtures).
    Fixed(usize),
    /// Bots top the room up to `population_target` snakes (humans + bots) and never take a
    /// human's seat: at most `hard_cap - humans`. None while the room is overloaded or draining.
    TopUp {
        population_target: usize,
        hard_cap: usize,
    },
}

/// How many snakes a room holds right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Population {
    pub humans: usize,
    pub bots: usize,
}

/// Code of a spectator join: the arena has no spectators.
pub const NO_SPECTATORS: Option<RefusalCode> = RefusalCode::game(1001);

impl Default for ArenaSettings {
    fn default() -> Self {
        ArenaSettings {
            arena: ArenaConfig::default(),
            view: ViewSettings::default(),
            seed: 1,
            skins: 16,
            bots: BotFill::Fixed(0),
        }
    }
}

#[derive(Debug)]
struct Seat {
    snake: SnakeId,
    viewer: ViewerState,
    needs_init: bool,
    wants_respawn: bool,
    pending_death: Option<Death>,
    /// Meta is sent when `(tick + meta_phase) % tick_rate == 0`, so a room's players do not
    /// all get their meta on the same tick.
    meta_phase: u64,
}

/// One arena room's game.
#[derive(Debug)]
pub struct Arena {
    world: World,
    settings: ArenaSettings,
    seats: HashMap<PlayerId, Seat>,
    owners: HashMap<SnakeId, PlayerId>,
    sim_events: Vec<SimEvent>,
    scratch: EncoderScratch,
    pellets: PelletTracker,
    /// Live snakes by descending score, rebuilt at most once per tick when a meta is due.
    ranking: Vec<(u32, SnakeId)>,
    ranking_tick: Option<u64>,
    seats_added: u64,
    conditions: Conditions,
}

impl Arena {
    pub fn new(mut settings: ArenaSettings) -> Arena {
        settings.view = settings.view.sanitized();
        Arena {
            world: World::new(settings.arena.clone(), settings.seed),
            settings,
            seats: HashMap::new(),
            owners: HashMap::new(),
            sim_events: Vec::new(),
            scratch: EncoderScratch::default(),
            pellets: PelletTracker::default(),
            ranking: Vec::new(),
            ranking_tick: None,
            seats_added: 0,
            conditions: Conditions::default(),
        }
    }

    /// Runs exactly `bots` bots from now on (tests, benches and fixtures; rooms use
    /// [`BotFill::TopUp`]).
    pub fn set_bot_target(&mut self, bots: usize) {
        self.settings.bots = BotFill::Fixed(bots);
        self.world.set_bot_target(bots);
    }

    /// Current humans and bots.
    pub fn population(&self) -> Population {
        Population {
            humans: self.world.humans(),
            bots: self.world.bots(),
        }
    }

    /// Ends `player`'s current run as if the snake had died; the death is reported on the
    /// next tick. False when the player has no live snake.
    pub fn kill(&mut self, player: PlayerId) -> bool {
        self.seats
            .get(&player)
            .is_some_and(|seat| self.world.kill_snake(seat.snake))
    }

    /// Applies the bot policy for the current humans and conditions.
    fn refill_bots(&mut self) {
        let bots = match self.settings.bots {
            BotFill::Fixed(bots) => bots,
            BotFill::TopUp { .. } if self.conditions.overloaded || self.conditions.draining => 0,
            BotFill::TopUp {
                population_target,
                hard_cap,
            } => {
                let humans = self.seats.len();
                population_target
                    .saturating_sub(humans)
                    .min(hard_cap.saturating_sub(humans))
            }
        };
        self.world.set_bot_target(bots);
    }

    /// The simulation, read-only (tests, benches and debug endpoints inspect it).
    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn settings(&self) -> &ArenaSettings {
        &self.settings
    }

    /// The snake a seated player steers.
    pub fn snake_of(&self, player: PlayerId) -> Option<SnakeId> {
        self.seats.get(&player).map(|seat| seat.snake)
    }

    /// What the server believes `player`'s client holds (tests compare it with the mirror).
    pub fn viewer(&self, player: PlayerId) -> Option<&ViewerState> {
        self.seats.get(&player).map(|seat| &seat.viewer)
    }

    fn init_frame(&self, snake: SnakeId) -> Init {
        let view = &self.settings.view;
        Init {
            snake_id: snake.0,
            arena_radius: self.world.config().radius,
            tick_rate: view.tick_rate,
            position_quantum: view.position_quantum,
            segment_spacing: SEGMENT_SPACING,
            view_half_width: view.view_half_width,
            view_half_height: view.view_half_height,
            pellet_cell: view.pellet_cell,
        }
    }

    fn refresh_ranking(&mut self) {
        let tick = self.world.tick();
        if self.ranking_tick == Some(tick) {
            return;
        }
        self.ranking.clear();
        self.ranking
            .extend(self.world.snakes().map(|snake| (snake.score(), snake.id())));
        self.ranking
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        self.ranking_tick = Some(tick);
    }

    /// Rank a score would have among live snakes: 1 + the number of strictly better scores.
    fn rank_of_score(&self, score: u32) -> u32 {
        1 + self
            .world
            .snakes()
            .filter(|snake| snake.score() > score)
            .count() as u32
    }

    fn meta_for(&self, snake: SnakeId) -> Meta {
        let top = self
            .ranking
            .iter()
            .take(META_TOP_MAX)
            .filter_map(|&(score, id)| {
                self.world.snake(id).map(|snake| LeaderboardEntry {
                    name: snake.name().to_owned(),
                    score,
                })
            })
            .collect();
        let own = self.world.snake(snake).filter(|snake| snake.alive());
        let own_rank = own
            .and_then(|_| self.ranking.iter().position(|&(_, id)| id == snake))
            .map_or(0, |index| index as u32 + 1);
        let mass = own.map_or(0.0, |snake| snake.mass());
        Meta {
            top,
            own_rank,
            own_score: own.map_or(0, |snake| snake.score()),
            score_fraction: unit_to_u8(if mass.is_finite() {
                mass.max(0.0).fract()
            } else {
                0.0
            }),
            oxygen: unit_to_u8(own.map_or(0.0, |snake| snake.oxygen())),
            girth: own.map_or(0, |snake| wire_girth(snake.girth())),
            tail_extension: unit_to_u8(own.map_or(0.0, |snake| snake.tail_extension())),
            humans: self.world.humans() as u32,
            bots: self.world.bots() as u32,
        }
    }
}

impl Game for Arena {
    fn join(&mut self, player: PlayerId, identity: &Identity) -> Result<(), Refusal> {
        if identity.role == Role::Spectator {
            return Err(Refusal {
                code: NO_SPECTATORS.unwrap_or_else(|| RefusalCode::from(ErrorCode::BadFrame)),
                reason: "the arena has no spectators",
            });
        }
        if let Some(old) = self.seats.remove(&player) {
            // A seat id is never reused by the runtime; this only guards against misuse.
            self.world.remove_snake(old.snake);
            self.owners.remove(&old.snake);
        }
        let skin = identity.skin % self.settings.skins.max(1);
        let snake = self
            .world
            .spawn_snake(SnakeKind::Human, &identity.display_name, skin);
        self.owners.insert(snake, player);
        self.seats_added += 1;
        let meta_phase = self.seats_added % u64::from(self.settings.view.tick_rate.max(1));
        self.seats.insert(
            player,
            Seat {
                snake,
                viewer: ViewerState::default(),
                needs_init: true,
                wants_respawn: false,
                pending_death: None,
                meta_phase,
            },
        );
        // Make room for the human at once: bots never hold a human's seat.
        self.refill_bots();
        Ok(())
    }

    fn leave(&mut self, player: PlayerId, events: &mut Vec<GameEvent>) {
        let Some(seat) = self.seats.remove(&player) else {
            return;
        };
        self.owners.remove(&seat.snake);
        if let Some(score) = self.world.remove_snake(seat.snake) {
            events.push(GameEvent::RunEnded(RunScore { player, score }));
        }
        self.refill_bots();
    }

    fn handle_message(&mut self, player: PlayerId, frame: &[u8]) -> Result<(), Refusal> {
        let decoded = decode_client_frame(frame)
            .map_err(|error| Refusal::new(ErrorCode::for_decode_error(error), "bad arena frame"))?;
        let Some(seat) = self.seats.get_mut(&player) else {
            return Err(Refusal::new(ErrorCode::OutOfOrder, "not seated"));
        };
        match decoded {
            // The simulation keeps only the latest input, which is the coalescing we want:
            // the last input before a tick wins.
            ArenaClientFrame::Input(input) => {
                self.world
                    .set_input(seat.snake, angle_from_u16(input.angle), input.boost)
            }
            ArenaClientFrame::Respawn => seat.wants_respawn = true,
        }
        Ok(())
    }

    fn tick(&mut self, context: TickContext, events: &mut Vec<GameEvent>) {
        self.refill_bots();
        for seat in self.seats.values_mut() {
            if std::mem::take(&mut seat.wants_respawn) && self.world.respawn(seat.snake) {
                seat.pending_death = None;
            }
        }
        self.sim_events.clear();
        self.world.step(context.dt, &mut self.sim_events);
        // The tracker serves viewers only; a room without players skips it, and a player's
        // first frame reconciles pellets in full anyway.
        if !self.seats.is_empty() {
            self.pellets.update(&self.world, &self.settings.view);
        }
        for event in std::mem::take(&mut self.sim_events) {
            let SimEvent::SnakeDied {
                snake,
                killer,
                score,
            } = event;
            let Some(&player) = self.owners.get(&snake) else {
                continue;
            };
            let killer = killer
                .and_then(|id| self.world.snake(id))
                .map(|snake| snake.name().to_owned());
            let rank = self.rank_of_score(score);
            if let Some(seat) = self.seats.get_mut(&player) {
                seat.pending_death = Some(Death {
                    killer,
                    final_score: score,
                    rank,
                });
                events.push(GameEvent::RunEnded(RunScore { player, score }));
            }
        }
    }

    fn write_update(&mut self, player: PlayerId, out: &mut Vec<u8>) {
        let tick_rate = u64::from(self.settings.view.tick_rate.max(1));
        let Some(seat) = self.seats.get(&player) else {
            return;
        };
        let meta_due = seat.needs_init || (self.world.tick() + seat.meta_phase) % tick_rate == 0;
        let snake = seat.snake;
        let meta = if meta_due {
            self.refresh_ranking();
            Some(self.meta_for(snake))
        } else {
            None
        };
        let init = self.init_frame(snake);
        let Some(seat) = self.seats.get_mut(&player) else {
            return;
        };
        let mut writer = Writer::new(out);
        if std::mem::take(&mut seat.needs_init) {
            write_init(&mut writer, &init);
            seat.viewer.reset();
        }
        if let Some(death) = seat.pending_death.take() {
            write_death(&mut writer, &death);
        }
        let state = seat.viewer.encode(
            &self.world,
            Some(snake),
            &self.settings.view,
            &self.pellets,
            &mut self.scratch,
        );
        write_state(&mut writer, state);
        if let Some(meta) = meta {
            write_meta(&mut writer, &meta);
        }
    }

    fn resync(&mut self, player: PlayerId) {
        // The init frame tells the client to forget what it holds; the viewer is reset when
        // it is written, so both sides start from nothing on the same frame.
        if let Some(seat) = self.seats.get_mut(&player) {
            seat.needs_init = true;
        }
    }

    fn status(&self) -> GameStatus {
        GameStatus {
            phase: Phase::Open,
            joinable: true,
            bots: self.world.bots() as u32,
        }
    }

    fn set_conditions(&mut self, conditions: Conditions) {
        self.conditions = conditions;
        self.refill_bots();
    }

    fn debug_command(&mut self, player: PlayerId, command: &str) -> bool {
        match command {
            "kill" => self.kill(player),
            _ => false,
        }
    }
}

/// The arena as a node's mode: one [`Arena`] per room, topped up with bots to
/// `population_target` snakes.
#[derive(Debug, Clone)]
pub struct ArenaMode {
    /// Bots top each room up to this many snakes (humans + bots); 0 disables bots.
    pub population_target: usize,
}

impl ArenaMode {
    pub const NAME: &'static str = "arena";
}

impl GameMode for ArenaMode {
    fn spec(&self) -> ModeSpec {
        ModeSpec {
            name: Self::NAME,
            tick: std::time::Duration::from_millis(50),
            soft_cap: 120,
            hard_cap: 140,
            spectator_cap: 0,
            reconnect_grace: std::time::Duration::ZERO,
            leaderboard: true,
            matches: false,
            max_rooms: 16,
        }
    }

    fn create(&self, setup: &RoomSetup) -> Box<dyn Game> {
        let mut settings = ArenaSettings {
            seed: setup.seed,
            bots: BotFill::TopUp {
                population_target: self.population_target,
                hard_cap: setup.hard_cap,
            },
            ..ArenaSettings::default()
        };
        settings.view.tick_rate = (1000 / setup.tick.as_millis().max(1)).clamp(1, 255) as u8;
        Box::new(Arena::new(settings))
    }
}

#[cfg(test)]
mod tests;
