//! The breach scenario's simulated player: placed by the matchmaker (`"mode": "breach"`), it
//! follows its match with the reference client (`coil_breach::mirror::ClientMirror`) and plays
//! like a person at a keyboard and mouse — walks a path across the map at a speed it changes
//! now and then (sneak, walk, run), turns toward enemies it sees at a human rate, fires in
//! bursts once it has them in its sights, reloads, votes to stay at the scoreboard — and it
//! sometimes drops its connection and resumes its seat with the session token.
//!
//! The sending rule is the browser client's (`web/src/breach/input.js`): **at most one input
//! per server tick**, decided when a state frame arrives (one state frame is one tick), sent on
//! every tick while moving or when anything changed, nothing while standing still with nothing
//! new. Sequence numbers start at 1 on a fresh join and rise by one per input; after a resume
//! they go on above what the server may have accepted (its ack + the 4 it may hold + 1).
//!
//! Matches are counted in a shared [`MatchBook`] keyed by room and match generation, touched
//! only when a player's phase or match changes (never per frame): started (a client saw it in
//! progress), ended (a client saw its scoreboard), and whether a client still watched it when
//! the run stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coil_breach::input::Intent;
use coil_breach::map::Team;
use coil_breach::math::Angle;
use coil_breach::mirror::ClientMirror;
use coil_breach::player::{PLAYER_HALF_SUB, Speed};
use coil_breach::wire::{self, Vote, server_type};
use coil_protocol::codec::server_frames;
use coil_protocol::envelope::{RESUME_TOKEN_LEN, ServerEnvelope, decode_server_envelope};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::player::{
    Accounting, FollowsServer, Joiner, PlayerPlan, PlayerSummary, RETRY_DELAY, SessionEnd, Socket,
    await_first_state, connect, connect_for_join, error_reason, next_leave, overlap, wait_or_stop,
};
use crate::stats::{Counter, Shared};

/// Phase codes on the wire (`docs/protocol-breach.md` §3.3).
const PHASE_IN_PROGRESS: u8 = 2;
const PHASE_ENDING: u8 = 3;
/// input.rs `MAX_PENDING_INPUTS`: the most intents the server may hold unapplied.
const SERVER_MAX_PENDING: u32 = 4;
/// Facing changes below this (1/65536 turn, ≈ 0.1°) are not worth a frame (input.js).
const FACING_THRESHOLD: i32 = 16;
/// The fastest a player turns per tick, in 1/65536 turn: 1,400 ≈ 7.7° per tick ≈ 230°/s, a
/// quick flick of a mouse, well below the server's aim-snap threshold (bots turn 2,000).
const MAX_TURN_PER_TICK: i32 = 1_400;
/// The slowest (each player draws its own hand speed between the two).
const MIN_TURN_PER_TICK: i32 = 700;
/// Fire once the aim is this close (≈ 6°).
const FIRE_AIM_ERROR: i32 = 1_100;
/// Ticks between first seeing an enemy and the first shot (200–400 ms).
const REACTION_TICKS: std::ops::RangeInclusive<u32> = 6..=12;
/// A burst holds the trigger this many ticks (the rifle fires every 4), then pauses.
const BURST_TICKS: std::ops::RangeInclusive<u32> = 4..=10;
const BURST_PAUSE_TICKS: std::ops::RangeInclusive<u32> = 3..=9;
/// A travelling player picks a new speed this often (2–6 s).
const SPEED_CHANGE_TICKS: std::ops::RangeInclusive<u32> = 60..=180;
/// Ticks without progress before a traveller picks another waypoint.
const STUCK_TICKS: u32 = 20;
/// Reload a part-empty magazine after this long without an enemy in sight (1.5 s).
const IDLE_RELOAD_TICKS: u32 = 45;
const IDLE_RELOAD_BELOW: u8 = 12;
const UNREACHABLE: u16 = u16::MAX;

/// Matches as the clients saw them.
#[derive(Debug, Default)]
pub struct MatchBook {
    matches: Mutex<HashMap<(String, u32), MatchSeen>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct MatchSeen {
    started: bool,
    ended: bool,
    /// Clients following this match right now.
    watchers: u32,
}

/// The book's counts at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatchTally {
    /// Matches a client saw in progress.
    pub started: u64,
    /// Of those, matches a client saw reach their scoreboard.
    pub completed: u64,
    /// Started, not ended, and still followed by a client: the run stopped them.
    pub in_progress: u64,
    /// Started, not ended, and no client followed them any more (everyone dropped).
    pub abandoned: u64,
    /// Distinct matches whose scoreboard a client saw (started or not: a player may arrive
    /// during the last seconds).
    pub results_seen: u64,
}

impl MatchBook {
    fn update(&self, room: &str, generation: u32, change: impl FnOnce(&mut MatchSeen)) {
        let mut matches = self.matches.lock().unwrap_or_else(|p| p.into_inner());
        change(matches.entry((room.to_owned(), generation)).or_default());
    }

    pub fn tally(&self) -> MatchTally {
        let matches = self.matches.lock().unwrap_or_else(|p| p.into_inner());
        let mut tally = MatchTally::default();
        for seen in matches.values() {
            tally.results_seen += u64::from(seen.ended);
            if !seen.started {
                continue;
            }
            tally.started += 1;
            match (seen.ended, seen.watchers > 0) {
                (true, _) => tally.completed += 1,
                (false, true) => tally.in_progress += 1,
                (false, false) => tally.abandoned += 1,
            }
        }
        tally
    }
}

/// What the breach players count besides [`Shared`], read by the controller at the end.
#[derive(Debug, Default)]
pub struct BreachShared {
    pub book: MatchBook,
    /// Inputs sent inside the measurement window.
    pub inputs_in_window: Counter,
    /// Ticks (state frames) in which a player wanted to move, and inputs sent in them.
    pub moving_ticks: Counter,
    pub inputs_in_moving_ticks: Counter,
    /// The most inputs any player sent between two consecutive state frames (1 by design).
    pub most_inputs_in_one_tick: Counter,
    pub votes_sent: Counter,
    pub fire_ticks: Counter,
    pub reloads: Counter,
    pub speed_changes: Counter,
    /// Scoreboard frames a client got twice for one match without an Init between.
    pub duplicate_results: Counter,
    /// Messages the mirror could not apply (each ends its connection as "mirror desync").
    pub decode_errors: Counter,
    pub resumes_attempted: Counter,
    pub resumes_refused: Counter,
}

/// The reference mirror plus what the runtime's own frames carry (the session token and
/// error codes), and a check that every result reaches a client once.
struct BreachClient {
    mirror: ClientMirror,
    states: u64,
    last_error: Option<u16>,
    session: Option<[u8; RESUME_TOKEN_LEN]>,
    scoreboard_since_init: bool,
    duplicate_results: u64,
}

impl BreachClient {
    fn new() -> BreachClient {
        BreachClient {
            mirror: ClientMirror::new(),
            states: 0,
            last_error: None,
            session: None,
            scoreboard_since_init: false,
            duplicate_results: 0,
        }
    }
}

impl FollowsServer for BreachClient {
    fn apply(&mut self, message: &[u8]) -> bool {
        for frame in server_frames(message) {
            let Ok((frame_type, payload)) = frame else {
                return false;
            };
            match frame_type {
                server_type::STATE => self.states += 1,
                server_type::INIT => self.scoreboard_since_init = false,
                server_type::SCOREBOARD => {
                    if self.scoreboard_since_init {
                        self.duplicate_results += 1;
                    }
                    self.scoreboard_since_init = true;
                }
                _ => match decode_server_envelope(frame_type, payload) {
                    Ok(Some(ServerEnvelope::Session { token, .. })) => self.session = Some(token),
                    Ok(Some(ServerEnvelope::Error { code, .. })) => self.last_error = Some(code),
                    Ok(_) => {}
                    Err(_) => return false,
                },
            }
        }
        self.mirror.apply_message(message).is_ok()
    }

    fn states_applied(&self) -> u64 {
        self.states
    }

    fn error_code(&self) -> Option<u16> {
        self.last_error
    }

    fn tick_rate(&self) -> Option<u8> {
        self.mirror.init.as_ref().map(|init| init.tick_rate)
    }
}

/// Numbers inputs and decides whether one goes out this tick (input.js `InputSender`).
#[derive(Debug, Clone)]
pub(crate) struct InputSender {
    next_sequence: u32,
    last: Option<Intent>,
    waiting_for_ack: bool,
}

impl InputSender {
    /// A fresh join: numbering starts at 1.
    pub(crate) fn fresh() -> InputSender {
        InputSender {
            next_sequence: 1,
            last: None,
            waiting_for_ack: false,
        }
    }

    /// A resumed seat: send nothing until the first state says what the server applied.
    pub(crate) fn resumed(&mut self) {
        self.last = None;
        self.waiting_for_ack = true;
    }

    pub(crate) fn on_ack(&mut self, ack: u32) {
        if self.waiting_for_ack {
            self.waiting_for_ack = false;
            self.next_sequence = self
                .next_sequence
                .max(ack.wrapping_add(SERVER_MAX_PENDING + 1).max(1));
        }
    }

    fn should_send(&self, intent: &Intent) -> bool {
        if self.waiting_for_ack {
            return false;
        }
        let Some(last) = &self.last else {
            return true;
        };
        if intent.direction != 0 || intent.reload || intent.use_charge {
            return true;
        }
        if intent.direction != last.direction
            || intent.speed != last.speed
            || intent.fire != last.fire
        {
            return true;
        }
        last.facing.delta_to(intent.facing).abs() >= FACING_THRESHOLD
    }

    /// The numbered intent if it must go out this tick.
    pub(crate) fn tick(&mut self, mut intent: Intent) -> Option<Intent> {
        if !self.should_send(&intent) {
            return None;
        }
        intent.sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1).max(1);
        self.last = Some(intent);
        Some(intent)
    }
}

/// Paths over map cells, from the pristine walls of the match (holes blown later only add
/// ways the player does not know about, as a person who has not looked).
#[derive(Debug, Clone, Default)]
struct Navigator {
    width: usize,
    height: usize,
    cell_sub: i64,
    walkable: Vec<bool>,
    open_cells: Vec<(u32, u32)>,
    distances: Vec<u16>,
    goal: Option<(u32, u32)>,
}

impl Navigator {
    fn for_match(mirror: &ClientMirror) -> Navigator {
        let (Some(map), Some(walls)) = (&mirror.map, &mirror.walls) else {
            return Navigator::default();
        };
        let (width, height) = (map.width_cells as usize, map.height_cells as usize);
        let cell_sub = i64::from(map.cell_pixels) * 8;
        let mut walkable = vec![false; width * height];
        let mut open_cells = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let centre = (
                    x as i64 * cell_sub + cell_sub / 2,
                    y as i64 * cell_sub + cell_sub / 2,
                );
                if !walls.box_blocked(centre.0, centre.1, PLAYER_HALF_SUB) {
                    walkable[y * width + x] = true;
                    open_cells.push((x as u32, y as u32));
                }
            }
        }
        Navigator {
            width,
            height,
            cell_sub,
            walkable,
            open_cells,
            distances: Vec::new(),
            goal: None,
        }
    }

    fn cell_of(&self, (x, y): (i64, i64)) -> Option<(u32, u32)> {
        if self.cell_sub == 0 || x < 0 || y < 0 {
            return None;
        }
        let cell = ((x / self.cell_sub) as u32, (y / self.cell_sub) as u32);
        ((cell.0 as usize) < self.width && (cell.1 as usize) < self.height).then_some(cell)
    }

    /// Breadth-first distances from `goal` over walkable cells.
    fn aim_for(&mut self, goal: (u32, u32)) {
        self.goal = Some(goal);
        self.distances.clear();
        self.distances.resize(self.width * self.height, UNREACHABLE);
        let start = goal.1 as usize * self.width + goal.0 as usize;
        if !self.walkable.get(start).copied().unwrap_or(false) {
            return;
        }
        let mut queue = std::collections::VecDeque::with_capacity(self.open_cells.len());
        self.distances[start] = 0;
        queue.push_back(start);
        while let Some(index) = queue.pop_front() {
            let (x, y) = ((index % self.width) as i64, (index / self.width) as i64);
            let next = self.distances[index] + 1;
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= self.width as i64 || ny >= self.height as i64 {
                    continue;
                }
                let neighbour = ny as usize * self.width + nx as usize;
                if self.walkable[neighbour] && self.distances[neighbour] == UNREACHABLE {
                    self.distances[neighbour] = next;
                    queue.push_back(neighbour);
                }
            }
        }
    }

    /// The centre (sub-pixels) of the next cell on the way to the goal, if there is a way.
    fn next_step(&self, here: (u32, u32)) -> Option<(i64, i64)> {
        let distance_at = |x: i64, y: i64| -> u16 {
            if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
                return UNREACHABLE;
            }
            self.distances
                .get(y as usize * self.width + x as usize)
                .copied()
                .unwrap_or(UNREACHABLE)
        };
        let (x, y) = (i64::from(here.0), i64::from(here.1));
        let mut best = (distance_at(x, y), None);
        for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            let distance = distance_at(x + dx, y + dy);
            if distance < best.0 {
                best = (distance, Some((x + dx, y + dy)));
            }
        }
        best.1.map(|(cx, cy)| {
            (
                cx * self.cell_sub + self.cell_sub / 2,
                cy * self.cell_sub + self.cell_sub / 2,
            )
        })
    }
}

/// The nearest of the eight move directions (1 = +x, clockwise on screen).
fn direction_of(angle: Angle) -> u8 {
    ((u32::from(angle.0) + 4096) / 8192 % 8 + 1) as u8
}

/// What the player decided for one tick, and why (for the counters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decision {
    pub intent: Intent,
    pub moving: bool,
}

/// One player's hands: decides an intent per tick from what its client knows (the mirror),
/// never from anything the server did not send it.
#[derive(Debug, Clone)]
pub(crate) struct Brain {
    rng: StdRng,
    turn_per_tick: i32,
    navigator: Navigator,
    generation: Option<u32>,
    speed: Speed,
    speed_ticks_left: u32,
    last_position: (i64, i64),
    stuck_ticks: u32,
    target: Option<usize>,
    seen_for: u32,
    reaction: u32,
    burst_left: u32,
    pause_left: u32,
    idle_ticks: u32,
    /// Facing as this player last asked for it (the server's own follows it).
    facing: Option<Angle>,
}

impl Brain {
    pub(crate) fn new(seed: u64) -> Brain {
        let mut rng = StdRng::seed_from_u64(seed);
        Brain {
            turn_per_tick: rng.gen_range(MIN_TURN_PER_TICK..=MAX_TURN_PER_TICK),
            reaction: rng.gen_range(REACTION_TICKS),
            rng,
            navigator: Navigator::default(),
            generation: None,
            speed: Speed::Walk,
            speed_ticks_left: 0,
            last_position: (0, 0),
            stuck_ticks: 0,
            target: None,
            seen_for: 0,
            burst_left: 0,
            pause_left: 0,
            idle_ticks: 0,
            facing: None,
        }
    }

    /// Forgets the map and aim after an Init (a new match, a resync or a resume).
    fn on_init(&mut self, mirror: &ClientMirror) {
        let generation = mirror.init.as_ref().map(|init| init.match_generation);
        if generation != self.generation || self.navigator.walkable.is_empty() {
            self.navigator = Navigator::for_match(mirror);
            self.generation = generation;
        }
        self.navigator.goal = None;
        self.facing = None;
        self.target = None;
    }

    fn pick_goal(&mut self, mirror: &ClientMirror, own_team: Option<Team>) {
        let enemy_spawns = match (&mirror.map, own_team) {
            (Some(map), Some(team)) => map.spawns[team.other().index()].as_slice(),
            _ => &[],
        };
        let goal = if !enemy_spawns.is_empty() && self.rng.gen_bool(0.5) {
            enemy_spawns[self.rng.gen_range(0..enemy_spawns.len())]
        } else if !self.navigator.open_cells.is_empty() {
            let cells = &self.navigator.open_cells;
            cells[self.rng.gen_range(0..cells.len())]
        } else {
            return;
        };
        self.navigator.aim_for(goal);
    }

    /// This tick's intent (sequence 0: the sender numbers it).
    pub(crate) fn decide(&mut self, mirror: &ClientMirror) -> Decision {
        let own = mirror.own;
        let facing = *self.facing.get_or_insert(Angle(own.facing));
        let idle = Decision {
            intent: Intent::idle(facing),
            moving: false,
        };
        let Some(init) = &mirror.init else {
            return idle;
        };
        if mirror.phase.0 != PHASE_IN_PROGRESS || !own.alive || init.team > 1 {
            self.target = None;
            self.burst_left = 0;
            self.facing = None;
            return idle;
        }
        let own_team = Team::from_index(init.team);
        let position = (own.x, own.y);

        // The nearest enemy this client holds: the server sends enemies only while they are
        // in view, so holding one is seeing it.
        let mut nearest: Option<(i64, usize, (i64, i64))> = None;
        for (slot, other) in mirror.others.iter().enumerate() {
            let Some(other) = other else { continue };
            if other.health == 0 || usize::from(init.slot) == slot {
                continue;
            }
            let team = mirror
                .roster
                .iter()
                .find(|entry| usize::from(entry.slot) == slot)
                .map(|entry| entry.team);
            if team.is_none() || team == Some(init.team) {
                continue;
            }
            let at = (
                other.qx * wire::POSITION_QUANTUM_SUB,
                other.qy * wire::POSITION_QUANTUM_SUB,
            );
            let (dx, dy) = (at.0 - position.0, at.1 - position.1);
            let distance = dx * dx + dy * dy;
            if nearest.is_none_or(|(best, _, _)| distance < best) {
                nearest = Some((distance, slot, at));
            }
        }
        if nearest.map(|(_, slot, _)| slot) == self.target && self.target.is_some() {
            self.seen_for = self.seen_for.saturating_add(1);
        } else {
            self.seen_for = 0;
            self.burst_left = 0;
            self.pause_left = 0;
            self.reaction = self.rng.gen_range(REACTION_TICKS);
        }
        self.target = nearest.map(|(_, slot, _)| slot);
        let jitter = self.rng.gen_range(-40..=40);

        if let Some((_, _, at)) = nearest {
            self.idle_ticks = 0;
            let toward = Angle::of_vector((at.0 - position.0) as f64, (at.1 - position.1) as f64);
            let error = facing.delta_to(toward);
            let new_facing =
                facing.offset(error.clamp(-self.turn_per_tick, self.turn_per_tick) + jitter);
            self.facing = Some(new_facing);
            let on_target = new_facing.delta_to(toward).abs() <= FIRE_AIM_ERROR;
            let mut fire = false;
            if on_target && self.seen_for >= self.reaction && own.ammo > 0 && own.reload == 0 {
                if self.burst_left > 0 {
                    self.burst_left -= 1;
                    fire = true;
                    if self.burst_left == 0 {
                        self.pause_left = self.rng.gen_range(BURST_PAUSE_TICKS);
                    }
                } else if self.pause_left > 0 {
                    self.pause_left -= 1;
                } else {
                    self.burst_left = self.rng.gen_range(BURST_TICKS) - 1;
                    fire = true;
                }
            }
            // Strafe (or stand) at a walk while engaging.
            let direction = match self.rng.gen_range(0..6) {
                0 | 1 => 0,
                2..=3 => direction_of(toward.offset(16_384)),
                _ => direction_of(toward.offset(-16_384)),
            };
            return Decision {
                intent: Intent {
                    direction,
                    speed: Speed::Walk,
                    facing: new_facing,
                    fire,
                    reload: own.ammo == 0 && own.reload == 0,
                    ..Intent::idle(new_facing)
                },
                moving: direction != 0,
            };
        }

        self.idle_ticks = self.idle_ticks.saturating_add(1);
        let reload = own.reload == 0
            && (own.ammo == 0
                || (own.ammo < IDLE_RELOAD_BELOW && self.idle_ticks == IDLE_RELOAD_TICKS));
        if self.speed_ticks_left == 0 {
            self.speed = match self.rng.gen_range(0..10) {
                0 | 1 => Speed::Sneak,
                2..=5 => Speed::Walk,
                _ => Speed::Run,
            };
            self.speed_ticks_left = self.rng.gen_range(SPEED_CHANGE_TICKS);
        }
        self.speed_ticks_left -= 1;
        if position == self.last_position {
            self.stuck_ticks += 1;
        } else {
            self.stuck_ticks = 0;
        }
        self.last_position = position;
        let here = self.navigator.cell_of(position);
        if self.navigator.goal.is_none()
            || here == self.navigator.goal
            || self.stuck_ticks > STUCK_TICKS
        {
            self.stuck_ticks = 0;
            self.pick_goal(mirror, own_team);
        }
        let next = here.and_then(|here| self.navigator.next_step(here));
        let Some(next) = next else {
            // No way from here (or the goal is here): stand, look around, and choose again.
            self.navigator.goal = None;
            return Decision {
                intent: Intent {
                    reload,
                    ..Intent::idle(facing)
                },
                moving: false,
            };
        };
        let (dx, dy) = (next.0 - position.0, next.1 - position.1);
        // Line up on each axis before crossing into the next cell, so a one-cell door is
        // entered straight rather than caught on its edge.
        let axis = |delta: i64| if delta.abs() > 8 { delta.signum() } else { 0 };
        let toward = Angle::of_vector(dx as f64, dy as f64);
        let direction = match (axis(dx), axis(dy)) {
            (0, 0) => direction_of(toward),
            (sx, sy) => direction_of(Angle::of_vector(sx as f64, sy as f64)),
        };
        // Look where it goes, turning at half the hand's speed.
        let half = self.turn_per_tick / 2;
        let new_facing = facing.offset(facing.delta_to(toward).clamp(-half, half) + jitter);
        self.facing = Some(new_facing);
        Decision {
            intent: Intent {
                direction,
                speed: self.speed,
                facing: new_facing,
                reload,
                ..Intent::idle(new_facing)
            },
            moving: true,
        }
    }
}

/// Everything one breach player keeps across its sessions (resumes keep the seat).
struct Seat {
    ws_url: String,
    room: String,
    token: Option<[u8; RESUME_TOKEN_LEN]>,
}

/// Runs one breach player until `stop` turns true: matchmake, join, play; resume after a
/// planned drop; matchmake again after a failure or when the room let it go.
pub(crate) async fn run_player(
    plan: PlayerPlan,
    joiner: Arc<Joiner>,
    shared: Arc<Shared>,
    breach: Arc<BreachShared>,
    mut stop: watch::Receiver<bool>,
) -> PlayerSummary {
    let seed = plan.seed ^ (plan.slot as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut brain = Brain::new(seed.rotate_left(17));
    let mut summary = PlayerSummary {
        slot: plan.slot,
        ..PlayerSummary::default()
    };
    let name = format!("lt{}", plan.slot);
    if wait_or_stop(plan.start_at, &mut stop).await {
        return summary;
    }
    let mut seat: Option<Seat> = None;
    loop {
        if *stop.borrow() {
            return summary;
        }
        let context = Context {
            plan: &plan,
            shared: &shared,
            breach: &breach,
        };
        let end = session(
            &context,
            &joiner,
            &mut stop,
            &mut rng,
            &mut brain,
            &name,
            &mut seat,
            &mut summary,
        )
        .await;
        match end {
            SessionEnd::Stopped => return summary,
            SessionEnd::Left => continue,
            SessionEnd::Retry => {
                seat = None;
                if wait_or_stop(Instant::now() + RETRY_DELAY, &mut stop).await {
                    return summary;
                }
            }
        }
    }
}

struct Context<'a> {
    plan: &'a PlayerPlan,
    shared: &'a Shared,
    breach: &'a BreachShared,
}

/// One connection: a fresh join through the matchmaker, or a resume of `seat`.
#[allow(clippy::too_many_arguments)] // one call site, all borrowed player state
async fn session(
    context: &Context<'_>,
    joiner: &Joiner,
    stop: &mut watch::Receiver<bool>,
    rng: &mut StdRng,
    brain: &mut Brain,
    name: &str,
    seat: &mut Option<Seat>,
    summary: &mut PlayerSummary,
) -> SessionEnd {
    let shared = context.shared;
    let connect_started = Instant::now();
    let resume = seat.as_ref().and_then(|seat| {
        seat.token
            .map(|token| (seat.ws_url.clone(), seat.room.clone(), token))
    });
    let (mut socket, first_frame, room, ws_url) = match resume {
        Some((ws_url, room, token)) => {
            context.breach.resumes_attempted.increment();
            let mut frame = Vec::with_capacity(4 + RESUME_TOKEN_LEN);
            coil_protocol::envelope::encode_resume(&token, &mut frame);
            match connect(&ws_url, stop).await {
                Err(end) => return end,
                Ok(Ok(socket)) => (socket, frame, room, ws_url),
                Ok(Err(reason)) => {
                    shared.join_attempts.increment();
                    shared.join_failed(&reason);
                    return SessionEnd::Retry;
                }
            }
        }
        None => match connect_for_join("", joiner, shared, stop, name, 0).await {
            Ok((ticket, socket)) => (socket, ticket.join_frame, ticket.room, ticket.ws_url),
            Err(end) => return end,
        },
    };
    let resuming = seat.is_some();
    summary.sessions += 1;
    let mut client = BreachClient::new();
    let mut accounting = Accounting {
        shared,
        window: context.plan.window,
        bytes_in_window: 0,
    };
    let joined = await_first_state(
        &mut socket,
        first_frame,
        &mut client,
        &mut accounting,
        stop,
        connect_started,
    )
    .await;
    let joined_at = match joined {
        Ok(at) => at,
        Err(end) => {
            summary.bytes_in_window += accounting.bytes_in_window;
            if resuming {
                // The seat is gone (its grace ran out, or the room closed): place again.
                context.breach.resumes_refused.increment();
                *seat = None;
            }
            return end;
        }
    };
    *seat = Some(Seat {
        ws_url,
        room,
        token: client.session,
    });
    let mut sender = InputSender::fresh();
    if resuming {
        sender.resumed();
    }
    let seat_ref = seat.as_mut().map(|seat| &mut *seat);
    let Some(seat_ref) = seat_ref else {
        return SessionEnd::Retry;
    };
    let (end, reason) = play(
        context,
        stop,
        rng,
        brain,
        &mut socket,
        &mut client,
        &mut sender,
        seat_ref,
        &mut accounting,
    )
    .await;
    if client.duplicate_results > 0 {
        context
            .breach
            .duplicate_results
            .add(client.duplicate_results);
    }
    let ended_at = Instant::now();
    shared.player_disconnected(&reason);
    summary.bytes_in_window += accounting.bytes_in_window;
    summary.connected_in_window += overlap(joined_at, ended_at, context.plan.window);
    end
}

/// Which match this client follows, for the book.
struct Following {
    room: String,
    generation: Option<u32>,
    phase: u8,
}

impl Following {
    fn observe(&mut self, book: &MatchBook, mirror: &ClientMirror) {
        let Some(init) = &mirror.init else { return };
        if self.generation != Some(init.match_generation) {
            self.leave(book);
            self.generation = Some(init.match_generation);
            self.phase = u8::MAX;
            book.update(&self.room, init.match_generation, |seen| seen.watchers += 1);
        }
        let phase = mirror.phase.0;
        if phase != self.phase {
            self.phase = phase;
            match phase {
                PHASE_IN_PROGRESS => book.update(&self.room, init.match_generation, |seen| {
                    seen.started = true
                }),
                PHASE_ENDING => {
                    book.update(&self.room, init.match_generation, |seen| seen.ended = true)
                }
                _ => {}
            }
        }
    }

    fn leave(&mut self, book: &MatchBook) {
        if let Some(generation) = self.generation.take() {
            book.update(&self.room, generation, |seen| {
                seen.watchers = seen.watchers.saturating_sub(1)
            });
        }
    }
}

/// Plays one joined connection until it ends; returns how and the disconnect reason.
#[allow(clippy::too_many_arguments)] // one call site, all borrowed session state
async fn play(
    context: &Context<'_>,
    stop: &mut watch::Receiver<bool>,
    rng: &mut StdRng,
    brain: &mut Brain,
    socket: &mut Socket,
    client: &mut BreachClient,
    sender: &mut InputSender,
    seat: &mut Seat,
    accounting: &mut Accounting<'_>,
) -> (SessionEnd, String) {
    let mut following = Following {
        room: seat.room.clone(),
        generation: None,
        phase: u8::MAX,
    };
    let result = play_following(
        context,
        stop,
        rng,
        brain,
        socket,
        client,
        sender,
        seat,
        accounting,
        &mut following,
    )
    .await;
    following.leave(&context.breach.book);
    result
}

#[allow(clippy::too_many_arguments)] // the body of `play`, which owns `following`
async fn play_following(
    context: &Context<'_>,
    stop: &mut watch::Receiver<bool>,
    rng: &mut StdRng,
    brain: &mut Brain,
    socket: &mut Socket,
    client: &mut BreachClient,
    sender: &mut InputSender,
    seat: &mut Seat,
    accounting: &mut Accounting<'_>,
    following: &mut Following,
) -> (SessionEnd, String) {
    let shared = context.shared;
    let breach = context.breach;
    let window = context.plan.window;
    let now = Instant::now();
    let far_future = now + Duration::from_secs(86_400);
    let leave_at =
        next_leave(rng, context.plan.behaviour.leave_per_minute).map(|after| now + after);
    let leave_timer = tokio::time::sleep_until(leave_at.unwrap_or(far_future));
    tokio::pin!(leave_timer);
    let mut frame = Vec::with_capacity(16);
    let mut voted_generation: Option<u32> = None;
    let mut was_alive = client.mirror.own.alive;
    let mut last_state_at = now;
    let mut init_generation = client
        .mirror
        .init
        .as_ref()
        .map(|init| init.match_generation);
    let mut init_tick = client.mirror.init.as_ref().map(|init| init.tick);
    brain.on_init(&client.mirror);
    // The first state came with the join; act on it like on any other.
    let mut states_before = 0;
    loop {
        // One decision per state frame applied: the tick clock is the server's.
        let new_states = client.states_applied() - states_before;
        states_before = client.states_applied();
        if new_states > 0 {
            let mirror = &client.mirror;
            let init = mirror.init.as_ref();
            let generation = init.map(|init| init.match_generation);
            let tick = init.map(|init| init.tick);
            if generation != init_generation || tick != init_tick {
                // An Init arrived (a new match, a resync): the map and aim start over.
                init_generation = generation;
                init_tick = tick;
                brain.on_init(mirror);
            }
            following.observe(&breach.book, mirror);
            sender.on_ack(mirror.own.ack);
            if was_alive && !mirror.own.alive {
                shared.deaths.increment();
            }
            was_alive = mirror.own.alive;
            let mut inputs_this_tick = 0u64;
            if mirror.phase.0 == PHASE_ENDING
                && generation.is_some()
                && voted_generation != generation
            {
                voted_generation = generation;
                frame.clear();
                wire::encode_vote(Vote::Stay, &mut frame);
                if socket
                    .send(Message::Binary(frame.clone().into()))
                    .await
                    .is_err()
                {
                    return (SessionEnd::Retry, "write error".into());
                }
                breach.votes_sent.increment();
            }
            let speed_before = brain.speed;
            let decision = brain.decide(&client.mirror);
            if brain.speed != speed_before {
                breach.speed_changes.increment();
            }
            if decision.moving {
                breach.moving_ticks.increment();
            }
            if let Some(intent) = sender.tick(decision.intent) {
                frame.clear();
                wire::encode_input(&intent, &mut frame);
                if socket
                    .send(Message::Binary(frame.clone().into()))
                    .await
                    .is_err()
                {
                    return (SessionEnd::Retry, "write error".into());
                }
                inputs_this_tick += 1;
                shared.inputs_sent.increment();
                let sent_at = Instant::now();
                if sent_at >= window.0 && sent_at < window.1 {
                    breach.inputs_in_window.increment();
                }
                if decision.moving {
                    breach.inputs_in_moving_ticks.increment();
                }
                if intent.fire {
                    breach.fire_ticks.increment();
                }
                if intent.reload {
                    breach.reloads.increment();
                }
            }
            breach.most_inputs_in_one_tick.raise_to(inputs_this_tick);
        }
        tokio::select! {
            _ = stop.changed() => {
                let _ = socket.close(None).await;
                return (SessionEnd::Stopped, "run ended".into());
            }
            () = &mut leave_timer => {
                // Drop the connection as a flaky network would; the seat is held for the
                // mode's reconnect grace and the next session resumes it.
                shared.planned_leaves.increment();
                let _ = socket.close(None).await;
                return (SessionEnd::Left, "left to resume".into());
            }
            message = socket.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    let now = accounting.received(bytes.len());
                    let states = client.states_applied();
                    if !client.apply(&bytes) {
                        breach.decode_errors.increment();
                        let _ = socket.close(None).await;
                        return (SessionEnd::Retry, "mirror desync".into());
                    }
                    if client.session.is_some() {
                        seat.token = client.session;
                    }
                    let applied = client.states_applied() - states;
                    if applied > 0 {
                        shared.state_frames.add(applied);
                        shared
                            .state_interval_us
                            .record(now.duration_since(last_state_at).as_micros() as u64);
                        last_state_at = now;
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    // The room released the seat (a vote to leave, or the room completed):
                    // place again rather than resume.
                    seat.token = None;
                    return (SessionEnd::Retry, error_reason(client.error_code(), "server closed"));
                }
                Some(Err(_)) => {
                    return (SessionEnd::Retry, error_reason(client.error_code(), "read error"));
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walking(direction: u8, facing: u16) -> Intent {
        Intent {
            direction,
            ..Intent::idle(Angle(facing))
        }
    }

    #[test]
    fn inputs_are_numbered_from_one_and_sent_every_tick_while_moving() {
        let mut sender = InputSender::fresh();
        let first = sender.tick(walking(1, 0)).unwrap();
        assert_eq!(first.sequence, 1);
        assert_eq!(sender.tick(walking(1, 0)).unwrap().sequence, 2);
        // Standing still: one input to say so, then nothing while nothing changes.
        assert_eq!(sender.tick(walking(0, 0)).unwrap().sequence, 3);
        assert!(sender.tick(walking(0, 0)).is_none());
        assert!(
            sender.tick(walking(0, 5)).is_none(),
            "below the facing threshold"
        );
        assert_eq!(sender.tick(walking(0, 500)).unwrap().sequence, 4);
    }

    #[test]
    fn a_resumed_seat_waits_for_the_ack_and_numbers_above_what_the_server_holds() {
        let mut sender = InputSender::fresh();
        for _ in 0..10 {
            sender.tick(walking(1, 0));
        }
        sender.resumed();
        assert!(
            sender.tick(walking(1, 0)).is_none(),
            "waits for the first state"
        );
        sender.on_ack(30);
        assert_eq!(sender.tick(walking(1, 0)).unwrap().sequence, 35);
    }

    #[test]
    fn the_book_counts_each_match_once_whoever_saw_it() {
        let book = MatchBook::default();
        for _ in 0..8 {
            book.update("r1", 1, |seen| {
                seen.watchers += 1;
                seen.started = true;
            });
        }
        book.update("r1", 1, |seen| seen.ended = true);
        book.update("r1", 2, |seen| {
            seen.started = true;
            seen.watchers = 1;
        });
        book.update("r2", 1, |seen| seen.started = true);
        book.update("r3", 4, |seen| seen.ended = true);
        assert_eq!(
            book.tally(),
            MatchTally {
                started: 3,
                completed: 1,
                in_progress: 1,
                abandoned: 1,
                results_seen: 2,
            }
        );
    }

    #[test]
    fn directions_round_to_the_nearest_eighth() {
        assert_eq!(direction_of(Angle(0)), 1);
        assert_eq!(direction_of(Angle(16_384)), 3);
        assert_eq!(direction_of(Angle(65_535)), 1);
    }
}
