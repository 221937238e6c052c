//! The World: the whole arena and the rules of one tick.
//!
//! Owns snakes, pellets, bots, the mass ledger and the uniform grid, and is the only code that
//! changes them. It never reads a clock (time arrives as `dt`), never reads OS entropy (the
//! seeded `SimRng` is the only randomness) and never does IO, so a run is a pure function of
//! its seed and its inputs. A step allocates nothing once buffers reach their high-water marks:
//! scratch buffers, per-cell vectors and retired snakes' buffers are kept and reused, and a
//! trail is sized for `max_length` when laid out (`benches/tick.rs` reports the allocations).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::SEGMENT_SPACING;
use crate::config::ArenaConfig;
use crate::grid::{BodyEntry, BodyGrid, GridGeometry};
use crate::math::{Vec2, wrap_angle};
use crate::pellets::{NewPellet, Pellet, PelletChange, PelletStore};
use crate::rng::{SimRng, mix64};
use crate::snake::{SlotState, Snake, SnakeId, SnakeKind};

/// Something that happened during a step that the caller must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    /// A snake hit a body, the edge, or was killed by `kill_snake`. It is already gone from
    /// `snakes()`; a human's id stays reserved for `respawn` or `remove_snake`.
    SnakeDied {
        snake: SnakeId,
        killer: Option<SnakeId>,
        score: u32,
    },
}

/// Mass that entered and left the arena from outside the snake/pellet cycle. At any moment
/// `total_mass() ≈ created - destroyed`; the property tests hold the World to it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MassLedger {
    /// Natural pellets spawned plus the start mass of every spawned or respawned snake.
    pub created: f64,
    /// Pellets that expired or did not fit under the cap, and the share of a dead snake's
    /// mass that does not become pellets.
    pub destroyed: f64,
}

/// Names in the UTF-8 byte budget below; the runtime validates names, this only bounds memory.
const MAX_NAME_BYTES: usize = 64;

/// Bots are named from this list.
const BOT_NAMES: [&str; 16] = [
    "Noodle",
    "Sidewinder",
    "Mamba",
    "Slinky",
    "Viper",
    "Zigzag",
    "Cobra",
    "Wiggles",
    "Boa",
    "Python",
    "Adder",
    "Taipan",
    "Krait",
    "Coily",
    "Sssam",
    "Rattler",
];

/// Bot skins are `0..BOT_SKINS`.
const BOT_SKINS: u32 = 24;

/// Ticks over which the pellet expiry sweep covers the whole grid once.
const EXPIRY_SWEEP_TICKS: usize = 20;

/// Every this many ticks a snake's bounding box is recomputed exactly (staggered by slot);
/// in between it only grows, which keeps it correct for the view-query broad phase.
const BOUNDS_REFRESH_TICKS: u64 = 8;

/// A bot rescans its whole food radius after chasing one pellet for this many thinks.
const BOT_FOOD_RESCAN_THINKS: u8 = 8;

/// What a bot decided for the coming ticks.
struct BotPlan {
    angle: f32,
    boost: bool,
    /// The pellet (id, position) it is heading for, remembered to skip the next scans.
    food_target: Option<(u32, Vec2)>,
}

/// Tries before a spawn settles for the emptiest spot seen.
const SPAWN_ATTEMPTS: usize = 24;

/// Hashes a `SnakeId` with one multiply: ids are small dense integers, and a fixed hasher
/// keeps the World free of OS entropy (std's default hasher seeds itself randomly).
#[derive(Default)]
struct SnakeIdHasher(u64);

impl Hasher for SnakeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u16(&mut self, value: u16) {
        self.0 = (self.0 ^ u64::from(value)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// FNV-1a, 64 bit: tiny, stable across runs and platforms, good enough to catch divergence.
struct StateHasher(u64);

impl StateHasher {
    fn new() -> StateHasher {
        StateHasher(0xCBF2_9CE4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn f32(&mut self, value: f32) {
        self.bytes(&value.to_bits().to_le_bytes());
    }

    fn vec2(&mut self, value: Vec2) {
        self.f32(value.x);
        self.f32(value.y);
    }
}

/// Pulls `position` just inside the arena edge so drops near the edge stay in bounds.
fn clamp_into_arena(position: Vec2, radius: f32) -> Vec2 {
    let limit = radius - 1.0;
    let distance = position.length();
    if distance > limit {
        position * (limit / distance)
    } else {
        position
    }
}

fn truncate_name(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Slot bit-set words a snake view query keeps on the stack (512 slots).
const MAX_QUERY_WORDS: usize = 8;

/// One arena: snakes, pellets and bots, advanced by `step`.
#[derive(Debug)]
pub struct World {
    config: ArenaConfig,
    geometry: GridGeometry,
    rng: SimRng,
    seed: u64,
    tick: u64,
    /// Sum of all `dt` so far, seconds; the only notion of time the World has.
    elapsed: f64,
    /// Snake table; a slot index is stable for a snake's whole life, so the body grid can
    /// refer to snakes by slot.
    slots: Vec<Snake>,
    free_slots: Vec<u16>,
    slot_of: HashMap<SnakeId, u16, BuildHasherDefault<SnakeIdHasher>>,
    next_snake_id: u16,
    humans: usize,
    bots: usize,
    bot_target: usize,
    body_grid: BodyGrid,
    pellets: PelletStore,
    /// Deaths decided in the current step, kept for its capacity.
    deaths: Vec<(u16, Option<SnakeId>)>,
    ledger: MassLedger,
}

impl World {
    /// An empty arena with natural food at its target density. Bad config values are
    /// repaired by [`ArenaConfig::sanitized`].
    pub fn new(config: ArenaConfig, seed: u64) -> World {
        let config = config.sanitized();
        let geometry = GridGeometry::new(config.radius, config.grid_cell_size);
        let mut world = World {
            body_grid: BodyGrid::new(&geometry),
            pellets: PelletStore::new(&geometry),
            geometry,
            rng: SimRng::new(seed),
            seed,
            tick: 0,
            elapsed: 0.0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            slot_of: HashMap::default(),
            next_snake_id: 0,
            humans: 0,
            bots: 0,
            bot_target: 0,
            deaths: Vec::new(),
            ledger: MassLedger::default(),
            config,
        };
        let initial_food = world
            .config
            .natural_pellet_target
            .min(world.config.max_pellets);
        for _ in 0..initial_food {
            world.spawn_natural_pellet();
        }
        world
    }

    pub fn config(&self) -> &ArenaConfig {
        &self.config
    }

    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Seconds of simulated time so far (the sum of clamped `dt`).
    pub fn elapsed(&self) -> f64 {
        self.elapsed
    }

    /// Adds a snake, alive at the emptiest of several random spots.
    ///
    /// # Panics
    /// If 65,536 snakes exist at once (ids are u16); the runtime's room caps are far below.
    pub fn spawn_snake(&mut self, kind: SnakeKind, name: &str, skin: u8) -> SnakeId {
        let id = self.allocate_snake_id();
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Snake::empty(id, kind));
                (self.slots.len() - 1) as u16
            }
        };
        let snake = &mut self.slots[slot as usize];
        snake.id = id;
        snake.kind = kind;
        snake.name.clear();
        snake.name.push_str(truncate_name(name));
        snake.skin = skin;
        self.slot_of.insert(id, slot);
        match kind {
            SnakeKind::Human => self.humans += 1,
            SnakeKind::Bot => self.bots += 1,
        }
        self.start_run(slot as usize);
        id
    }

    /// Starts a new run for a dead human. False if `id` is unknown, alive, or a bot.
    pub fn respawn(&mut self, id: SnakeId) -> bool {
        let Some(&slot) = self.slot_of.get(&id) else {
            return false;
        };
        if self.slots[slot as usize].state != SlotState::Dead {
            return false;
        }
        self.start_run(slot as usize);
        true
    }

    /// Removes a snake for good (player left, bot retired). Its body becomes pellets.
    /// Returns the score if it was alive.
    pub fn remove_snake(&mut self, id: SnakeId) -> Option<u32> {
        let &slot = self.slot_of.get(&id)?;
        let slot = slot as usize;
        let score = if self.slots[slot].alive() {
            self.scatter_body(slot);
            Some(self.slots[slot].score)
        } else {
            None
        };
        self.free_slot(slot);
        score
    }

    /// Ends a live snake's run at the next step, reported as a normal `SnakeDied` without a
    /// killer (admin and debug commands). False if it is not alive.
    pub fn kill_snake(&mut self, id: SnakeId) -> bool {
        match self.slot_of.get(&id) {
            Some(&slot) if self.slots[slot as usize].alive() => {
                self.slots[slot as usize].kill_requested = true;
                true
            }
            _ => false,
        }
    }

    /// The steering input of a snake: head toward `angle` (radians), boost while `boost`.
    /// Unknown ids and non-finite angles are ignored (the boost flag still applies).
    pub fn set_input(&mut self, id: SnakeId, angle: f32, boost: bool) {
        let Some(&slot) = self.slot_of.get(&id) else {
            return;
        };
        let snake = &mut self.slots[slot as usize];
        if angle.is_finite() {
            snake.wanted_angle = wrap_angle(angle);
        }
        snake.wants_boost = boost;
    }

    /// How many bots the room should hold (the runtime has already subtracted humans).
    ///
    /// Bots above the target leave at once, lightest first, so a human's join never waits
    /// for a seat and the room never exceeds `humans + target`. Below the target, bots join
    /// gradually: at most `bot_spawns_per_tick` per step.
    pub fn set_bot_target(&mut self, bots: usize) {
        self.bot_target = bots;
        while self.bots > self.bot_target {
            let lightest = self
                .slots
                .iter()
                .filter(|snake| snake.alive() && snake.kind == SnakeKind::Bot)
                .min_by(|first, second| {
                    first
                        .mass
                        .total_cmp(&second.mass)
                        .then(first.id.cmp(&second.id))
                })
                .map(|snake| snake.id);
            match lightest {
                Some(id) => {
                    self.remove_snake(id);
                }
                None => break,
            }
        }
    }

    pub fn bot_target(&self) -> usize {
        self.bot_target
    }

    /// Human snakes, alive or waiting to respawn.
    pub fn humans(&self) -> usize {
        self.humans
    }

    /// Bots (always alive: a dead bot is removed).
    pub fn bots(&self) -> usize {
        self.bots
    }

    /// A live snake, or a dead human waiting to respawn (`alive()` is false then).
    pub fn snake(&self, id: SnakeId) -> Option<&Snake> {
        self.slot_of
            .get(&id)
            .map(|&slot| &self.slots[slot as usize])
    }

    /// Every live snake, in a stable table order.
    pub fn snakes(&self) -> impl Iterator<Item = &Snake> {
        self.slots.iter().filter(|snake| snake.alive())
    }

    /// Calls `f` once for every live snake with a body point in the box
    /// `center ± half_extent`, in slot order.
    ///
    /// The body grid keeps a coarse occupancy map (which 256-unit cells each body touches,
    /// updated point by point as bodies move, so it also covers snakes spawned since the last
    /// step). A snake touching a coarse cell that lies wholly inside the box is in view
    /// without reading its body; only snakes that touch nothing but the cells on the box's
    /// edge are tested point by point, and every other snake costs nothing. The query needs
    /// no scratch beyond two small arrays on the stack, so the World stays `Sync`.
    pub fn for_each_snake_near(&self, center: Vec2, half_extent: Vec2, mut f: impl FnMut(&Snake)) {
        let half_extent = Vec2::new(half_extent.x.abs(), half_extent.y.abs());
        let occupancy = self.body_grid.occupancy();
        let words = occupancy.words();
        if words > MAX_QUERY_WORDS {
            // Over 512 slots: test every snake (never reached with the room caps).
            for snake in self.snakes() {
                if snake.has_point_in_box(center, half_extent) {
                    f(snake);
                }
            }
            return;
        }
        let mut inside = [0u64; MAX_QUERY_WORDS];
        let mut edge = [0u64; MAX_QUERY_WORDS];
        let (box_min, box_max) = (center - half_extent, center + half_extent);
        let range = self.geometry.coarse_overlapping(center, half_extent);
        let per_side = self.geometry.coarse_per_side();
        for y in range.y_first..=range.y_last {
            for x in range.x_first..=range.x_last {
                let target = if self.geometry.coarse_cell_within(x, y, box_min, box_max) {
                    &mut inside
                } else {
                    &mut edge
                };
                for (target, bits) in target.iter_mut().zip(occupancy.cell(y * per_side + x)) {
                    *target |= bits;
                }
            }
        }
        for word in 0..words {
            let mut candidates = inside[word] | edge[word];
            while candidates != 0 {
                let bit = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let Some(snake) = self.slots.get(word * 64 + bit) else {
                    continue;
                };
                if snake.alive()
                    && (inside[word] >> bit & 1 == 1 || snake.has_point_in_box(center, half_extent))
                {
                    f(snake);
                }
            }
        }
    }

    /// Calls `f` for every pellet in the box `center ± half_extent`, via the grid.
    pub fn for_each_pellet_in(&self, center: Vec2, half_extent: Vec2, f: impl FnMut(&Pellet)) {
        self.pellets
            .for_each_in(&self.geometry, center, half_extent, f);
    }

    /// The grid cell that stores a pellet at `position`. [`World::for_each_pellet_in`]
    /// reports pellets by ascending cell, and by ascending id within a cell, so sorting by
    /// `(pellet_cell(pos), id)` reproduces the order of a scan.
    pub fn pellet_cell(&self, position: Vec2) -> usize {
        self.geometry.cell_index(position)
    }

    pub fn pellet_count(&self) -> usize {
        self.pellets.len()
    }

    /// The id the next pellet will get; every pellet below it has been created already.
    pub fn next_pellet_id(&self) -> u32 {
        self.pellets.next_id()
    }

    /// Position in the pellet journal just after the newest change; pass it to
    /// [`World::pellet_changes_since`] later to read what happened in between.
    pub fn pellet_journal_end(&self) -> u64 {
        self.pellets.journal_end()
    }

    /// Every pellet added or removed since journal position `position` (a value returned by
    /// [`World::pellet_journal_end`]), oldest first, whether by `step` (eaten, expired,
    /// respawned, dropped while boosting, scattered by deaths) or between steps (a removed
    /// snake's body). Applying them in order to the pellet set as it was at `position` gives
    /// the live pellet set.
    ///
    /// `None` if the journal no longer reaches back to `position`: each `step` forgets the
    /// changes recorded before the previous step began, so a reader that looks again before
    /// a second step has run since its last look (the room does after every step) never gets
    /// `None`; one that does must rebuild from a full query.
    pub fn pellet_changes_since(&self, position: u64) -> Option<&[PelletChange]> {
        self.pellets.changes_since(position)
    }

    pub fn mass_ledger(&self) -> MassLedger {
        self.ledger
    }

    /// Mass in live snakes (including boost mass about to drop) and in pellets.
    pub fn total_mass(&self) -> f64 {
        let in_snakes: f64 = self
            .snakes()
            .map(|snake| f64::from(snake.mass) + f64::from(snake.boost_mass_to_drop))
            .sum();
        let in_pellets: f64 = self
            .pellets
            .iter()
            .map(|stored| f64::from(stored.pellet.value))
            .sum();
        in_snakes + in_pellets
    }

    /// Advances the arena by `dt` seconds (clamped to `0..=max_dt`; NaN counts as 0) and
    /// appends deaths to `events`.
    pub fn step(&mut self, dt: f32, events: &mut Vec<SimEvent>) {
        let dt = if dt.is_finite() {
            dt.clamp(0.0, self.config.max_dt)
        } else {
            0.0
        };
        self.tick += 1;
        self.elapsed += f64::from(dt);
        self.pellets.begin_step();
        self.top_up_bots();
        self.steer_bots();
        self.move_snakes(dt);
        self.find_deaths();
        self.eat_pellets();
        self.resolve_deaths(events);
        self.expire_pellets();
        self.respawn_natural_pellets();
    }

    /// FNV-1a over the full state (snakes, bodies, pellets, counters, RNG). Equal seeds and
    /// inputs give equal hashes; any divergence shows up here.
    pub fn state_hash(&self) -> u64 {
        let mut hasher = StateHasher::new();
        hasher.u64(self.seed);
        hasher.u64(self.rng.state());
        hasher.u64(self.tick);
        hasher.u64(self.elapsed.to_bits());
        hasher.u64(u64::from(self.next_snake_id));
        hasher.u64(self.humans as u64);
        hasher.u64(self.bots as u64);
        hasher.u64(self.bot_target as u64);
        for snake in &self.slots {
            hasher.u64(snake.state as u64);
            if snake.state == SlotState::Free {
                continue;
            }
            hasher.u64(u64::from(snake.id.0));
            hasher.u64(snake.kind as u64);
            hasher.bytes(snake.name.as_bytes());
            hasher.u64(u64::from(snake.skin));
            hasher.vec2(snake.head);
            hasher.f32(snake.angle);
            hasher.f32(snake.wanted_angle);
            hasher.u64(
                u64::from(snake.wants_boost)
                    | u64::from(snake.boosting) << 1
                    | u64::from(snake.out_of_breath) << 2
                    | u64::from(snake.kill_requested) << 3,
            );
            hasher.f32(snake.mass);
            hasher.f32(snake.length);
            hasher.f32(snake.girth);
            hasher.u64(u64::from(snake.score));
            hasher.f32(snake.oxygen);
            hasher.f32(snake.boost_mass_to_drop);
            if let Some((pellet, position)) = snake.bot_food_target {
                hasher.u64(u64::from(pellet));
                hasher.vec2(position);
            }
            hasher.u64(u64::from(snake.bot_food_thinks));
            hasher.u64(snake.trail.len() as u64);
            for &point in &snake.trail {
                hasher.vec2(point);
            }
        }
        for &slot in &self.free_slots {
            hasher.u64(u64::from(slot));
        }
        hasher.u64(u64::from(self.pellets.next_id()));
        hasher.u64(self.pellets.len() as u64);
        for stored in self.pellets.iter() {
            hasher.u64(u64::from(stored.pellet.id));
            hasher.vec2(stored.pellet.pos);
            hasher.f32(stored.pellet.value);
            hasher.u64(u64::from(stored.pellet.color));
            hasher.u64(stored.expires_at.to_bits());
            hasher.u64(u64::from(stored.natural));
        }
        hasher.0
    }

    fn allocate_snake_id(&mut self) -> SnakeId {
        for _ in 0..=u16::MAX as u32 {
            let candidate = SnakeId(self.next_snake_id);
            self.next_snake_id = self.next_snake_id.wrapping_add(1);
            if !self.slot_of.contains_key(&candidate) {
                return candidate;
            }
        }
        panic!("coil-sim: all 65,536 snake ids are in use");
    }

    /// Gives the snake in `slot` a fresh body and start mass at a safe spot.
    fn start_run(&mut self, slot: usize) {
        let (head, angle) = self.find_spawn_spot();
        let config = &self.config;
        let snake = &mut self.slots[slot];
        snake.state = SlotState::Alive;
        snake.mass = config.start_mass;
        snake.length = config.target_length(config.start_mass);
        snake.girth = config.girth_for_mass(config.start_mass);
        snake.score = config.start_mass as u32;
        snake.oxygen = 1.0;
        snake.wants_boost = false;
        snake.boosting = false;
        snake.out_of_breath = false;
        snake.boost_mass_to_drop = 0.0;
        snake.dying = false;
        snake.kill_requested = false;
        snake.bot_food_target = None;
        snake.bot_food_thinks = 0;
        snake.lay_out_body(head, angle, config.max_length);
        self.ledger.created += f64::from(config.start_mass);
        self.insert_into_grid(slot);
    }

    /// The emptiest of a few random spots in the inner arena, heading roughly inward so the
    /// straight fresh body lies behind the head, away from the edge.
    fn find_spawn_spot(&mut self) -> (Vec2, f32) {
        let spawn_radius = self.config.radius * 0.75;
        let clearance = self.config.spawn_clearance;
        let mut best_spot = Vec2::ZERO;
        let mut best_clearance = -1.0;
        for _ in 0..SPAWN_ATTEMPTS {
            let candidate = self.random_point_in_disc(spawn_radius);
            let free_distance = self.free_distance_around(candidate, clearance);
            if free_distance > best_clearance {
                best_spot = candidate;
                best_clearance = free_distance;
            }
            if free_distance >= clearance {
                break;
            }
        }
        let inward = if best_spot.length_squared() > 1.0 {
            (-best_spot).angle()
        } else {
            self.rng.range(-std::f32::consts::PI, std::f32::consts::PI)
        };
        let angle = wrap_angle(inward + self.rng.range(-0.8, 0.8));
        (best_spot, angle)
    }

    /// Distance from `position` to the nearest body point (any snake), capped at `limit`.
    fn free_distance_around(&self, position: Vec2, limit: f32) -> f32 {
        let mut nearest_squared = limit * limit;
        let range = self
            .geometry
            .cells_overlapping(position, Vec2::new(limit, limit));
        for cell in self.geometry.cell_indices(range) {
            for entry in self.body_grid.cell(cell) {
                nearest_squared = nearest_squared.min(entry.position.distance_squared(position));
            }
        }
        nearest_squared.sqrt()
    }

    fn random_point_in_disc(&mut self, radius: f32) -> Vec2 {
        // sqrt makes the density uniform over the disc instead of piling up at the centre.
        let distance = radius * self.rng.next_unit().sqrt();
        let angle = self.rng.range(-std::f32::consts::PI, std::f32::consts::PI);
        Vec2::from_angle(angle) * distance
    }

    fn spawn_natural_pellet(&mut self) {
        let position = self.random_point_in_disc(self.config.radius * 0.98);
        let value = self.rng.range(
            self.config.natural_pellet_min_value,
            self.config.natural_pellet_max_value,
        );
        let color = self.rng.below(u32::from(self.config.pellet_colors)) as u8;
        let new_pellet = NewPellet {
            position,
            value,
            color,
            expires_at: f64::INFINITY,
            natural: true,
        };
        let inserted = self
            .pellets
            .insert(&self.geometry, self.config.max_pellets, new_pellet);
        if inserted {
            self.ledger.created += f64::from(value);
        }
    }

    /// Turns a live snake's mass into pellets along its body (death or removal). The share
    /// that does not become food is recorded as destroyed.
    fn scatter_body(&mut self, slot: usize) {
        let config = &self.config;
        let snake = &mut self.slots[slot];
        let total = snake.mass + snake.boost_mass_to_drop;
        let converted = total * config.death_mass_fraction;
        self.ledger.destroyed += f64::from(total) - f64::from(converted);
        let point_count = snake.body_len().max(1);
        let wanted_pellets = (converted / config.death_pellet_value).ceil().max(1.0) as usize;
        let pellet_count = wanted_pellets.min(point_count);
        let value = converted / pellet_count as f32;
        if converted > 0.0 {
            let expires_at = self.elapsed + f64::from(config.dropped_pellet_lifetime);
            let color = snake.skin % config.pellet_colors;
            let jitter_radius = snake.girth * 0.6;
            for index in 0..pellet_count {
                // Spread evenly along the whole body, head to tail.
                let point_index = index * point_count / pellet_count;
                let point = snake.body().nth(point_index).unwrap_or(snake.head);
                let jitter = Vec2::new(self.rng.range(-1.0, 1.0), self.rng.range(-1.0, 1.0));
                let position = clamp_into_arena(point + jitter * jitter_radius, config.radius);
                let new_pellet = NewPellet {
                    position,
                    value,
                    color,
                    expires_at,
                    natural: false,
                };
                let inserted = self
                    .pellets
                    .insert(&self.geometry, config.max_pellets, new_pellet);
                if !inserted {
                    self.ledger.destroyed += f64::from(value);
                }
            }
        }
        snake.mass = 0.0;
        snake.boost_mass_to_drop = 0.0;
    }

    /// Returns a slot to the free list, keeping its buffers for the next spawn.
    fn free_slot(&mut self, slot: usize) {
        if self.slots[slot].alive() {
            self.remove_from_grid(slot);
        }
        let snake = &mut self.slots[slot];
        self.slot_of.remove(&snake.id);
        match snake.kind {
            SnakeKind::Human => self.humans -= 1,
            SnakeKind::Bot => self.bots -= 1,
        }
        snake.state = SlotState::Free;
        snake.name.clear();
        snake.trail.clear();
        snake.mass = 0.0;
        snake.boost_mass_to_drop = 0.0;
        snake.dying = false;
        snake.kill_requested = false;
        self.free_slots.push(slot as u16);
    }

    /// Adds a live snake's head and visible trail to the grid.
    fn insert_into_grid(&mut self, slot: usize) {
        let snake = &mut self.slots[slot];
        let slot_id = slot as u16;
        let head = BodyEntry {
            position: snake.head,
            slot: slot_id,
            is_head: true,
            serial: 0,
        };
        self.body_grid.insert(&self.geometry, head);
        snake.grid_trail_points = snake.visible_trail_points();
        for (index, &position) in snake.trail.iter().take(snake.grid_trail_points).enumerate() {
            let serial = (snake.front_serial - index as u64) as u32;
            let entry = BodyEntry {
                position,
                slot: slot_id,
                is_head: false,
                serial,
            };
            self.body_grid.insert(&self.geometry, entry);
        }
    }

    /// Takes a live snake's head and visible trail out of the grid (death, removal).
    fn remove_from_grid(&mut self, slot: usize) {
        let snake = &mut self.slots[slot];
        let slot_id = slot as u16;
        self.body_grid
            .remove(&self.geometry, snake.head, slot_id, true, 0);
        for (index, &position) in snake.trail.iter().take(snake.grid_trail_points).enumerate() {
            let serial = (snake.front_serial - index as u64) as u32;
            self.body_grid
                .remove(&self.geometry, position, slot_id, false, serial);
        }
        snake.grid_trail_points = 0;
    }

    fn top_up_bots(&mut self) {
        let missing = self
            .bot_target
            .saturating_sub(self.bots)
            .min(self.config.bot_spawns_per_tick);
        for _ in 0..missing {
            let name = BOT_NAMES[self.rng.below(BOT_NAMES.len() as u32) as usize];
            let skin = self.rng.below(BOT_SKINS) as u8;
            self.spawn_snake(SnakeKind::Bot, name, skin);
        }
    }

    fn steer_bots(&mut self) {
        let interval = u64::from(self.config.bot_think_interval);
        for slot in 0..self.slots.len() {
            let snake = &self.slots[slot];
            // Staggered by slot so each tick carries an even share of the thinking.
            if !snake.alive()
                || snake.kind != SnakeKind::Bot
                || (self.tick + slot as u64) % interval != 0
            {
                continue;
            }
            let plan = self.bot_decision(slot);
            let snake = &mut self.slots[slot];
            snake.wanted_angle = plan.angle;
            snake.wants_boost = plan.boost;
            snake.bot_food_thinks = if plan.food_target == snake.bot_food_target {
                snake.bot_food_thinks.saturating_add(1)
            } else {
                0
            };
            snake.bot_food_target = plan.food_target;
        }
    }

    /// A bot's steering: seek the best nearby pellet, push away from nearby bodies (more from
    /// those ahead), run from bigger heads (boosting when it can afford to), and turn back
    /// from the edge. Sees the other snakes as they were after the previous step.
    fn bot_decision(&self, slot: usize) -> BotPlan {
        let config = &self.config;
        let me = &self.slots[slot];
        let head = me.head;
        let forward = Vec2::from_angle(me.angle);
        let sense = config.bot_sense_radius + me.girth;
        let mut avoid = Vec2::ZERO;
        let mut flee = Vec2::ZERO;
        let sense_range = self
            .geometry
            .cells_overlapping(head, Vec2::new(sense, sense));
        for cell in self.geometry.cell_indices(sense_range) {
            for entry in self.body_grid.cell(cell) {
                if entry.slot as usize == slot {
                    continue;
                }
                let other = &self.slots[entry.slot as usize];
                let offset = entry.position - head;
                let distance_squared = offset.length_squared();
                if distance_squared >= sense * sense || distance_squared < 1e-6 {
                    continue;
                }
                let distance = distance_squared.sqrt();
                let direction = offset * (1.0 / distance);
                let closeness = 1.0 - distance / sense;
                let ahead = direction.dot(forward).max(0.0);
                avoid -= direction * (closeness * closeness * (0.5 + ahead));
                if entry.is_head && other.mass > me.mass * 1.2 {
                    flee -= direction * closeness;
                }
            }
        }

        let from_center = head.length();
        let margin = config.bot_wall_margin + me.girth;
        let mut wall = Vec2::ZERO;
        if from_center > config.radius - margin && from_center > 1e-3 {
            let depth = (from_center - (config.radius - margin)) / margin.max(1.0);
            wall = -head * (depth * 6.0 / from_center);
        }

        let food_reach = config.bot_food_radius;
        let edge_limit = config.radius - margin * 0.5;
        let mut best_food_score = 0.0;
        // Keep chasing the remembered pellet while it exists (one cell lookup) and rescan the
        // whole food radius only now and then: the scan is most of a bot's thinking time.
        let remembered = me
            .bot_food_target
            .filter(|_| me.bot_food_thinks < BOT_FOOD_RESCAN_THINKS)
            .filter(|&(id, position)| {
                position.distance_squared(head) <= food_reach * food_reach
                    && self
                        .pellets
                        .cell(self.geometry.cell_index(position))
                        .iter()
                        .any(|stored| stored.pellet.id == id)
            });
        let food_range = self
            .geometry
            .cells_overlapping(head, Vec2::new(food_reach, food_reach));
        // When a target is remembered, no cell is scanned.
        let cells_to_scan = if remembered.is_some() { 0 } else { usize::MAX };
        let mut food_target = remembered;
        for cell in self.geometry.cell_indices(food_range).take(cells_to_scan) {
            for stored in self.pellets.cell(cell) {
                let offset = stored.pellet.pos - head;
                let distance_squared = offset.length_squared();
                if distance_squared > food_reach * food_reach
                    || stored.pellet.pos.length_squared() > edge_limit * edge_limit
                {
                    continue;
                }
                let distance = distance_squared.sqrt();
                let direction = offset.normalized_or_zero();
                let score =
                    stored.pellet.value / (distance + 30.0) * (1.5 + direction.dot(forward));
                if score > best_food_score {
                    best_food_score = score;
                    food_target = Some((stored.pellet.id, stored.pellet.pos));
                }
            }
        }
        let food_direction = food_target
            .map(|(_, position)| (position - head).normalized_or_zero())
            .unwrap_or(Vec2::ZERO);

        let desire = food_direction + avoid * 2.5 + flee * 3.0 + wall;
        let angle = if desire.length_squared() > 1e-6 {
            desire.angle()
        } else {
            // Wander: a gentle bend that changes direction about once a second.
            let noise_bits = mix64(self.seed ^ (self.tick / 20) ^ (u64::from(me.id.0) << 32));
            let noise = (noise_bits >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            wrap_angle(me.angle + noise * 0.3)
        };
        let boost = flee.length() > 0.3 && me.mass > config.min_boost_mass * 2.0;
        BotPlan {
            angle,
            boost,
            food_target,
        }
    }

    fn move_snakes(&mut self, dt: f32) {
        let config = &self.config;
        let geometry = &self.geometry;
        for (slot, snake) in self.slots.iter_mut().enumerate() {
            if !snake.alive() {
                continue;
            }
            let old_head = snake.head;
            let old_front_serial = snake.front_serial;
            let old_grid_points = snake.grid_trail_points;
            let difference = wrap_angle(snake.wanted_angle - snake.angle);
            let max_turn = config.turn_rate * dt;
            snake.angle = wrap_angle(snake.angle + difference.clamp(-max_turn, max_turn));

            snake.boosting = snake.wants_boost
                && dt > 0.0
                && !snake.out_of_breath
                && snake.mass > config.min_boost_mass;
            if snake.boosting {
                snake.oxygen -= config.oxygen_drain_per_second * dt;
                if snake.oxygen <= 0.0 {
                    snake.oxygen = 0.0;
                    snake.out_of_breath = true;
                }
                let spent =
                    (config.boost_mass_per_second * dt).min(snake.mass - config.min_boost_mass);
                snake.mass -= spent;
                snake.boost_mass_to_drop += spent;
            } else {
                snake.oxygen = (snake.oxygen + config.oxygen_refill_per_second * dt).min(1.0);
                if snake.out_of_breath && snake.oxygen >= config.oxygen_restart_level {
                    snake.out_of_breath = false;
                }
            }

            let speed = if snake.boosting {
                config.boost_speed
            } else {
                config.speed
            };
            snake.head += Vec2::from_angle(snake.angle) * (speed * dt);

            // The trail records where the head has been, one point per SEGMENT_SPACING.
            if snake.trail.is_empty() {
                let behind = snake.head - Vec2::from_angle(snake.angle) * SEGMENT_SPACING;
                snake.trail.push_front(behind);
                snake.front_serial += 1;
            }
            while let Some(&newest) = snake.trail.front() {
                let offset = snake.head - newest;
                let distance = offset.length();
                if distance < SEGMENT_SPACING {
                    break;
                }
                snake
                    .trail
                    .push_front(newest + offset * (SEGMENT_SPACING / distance));
                snake.front_serial += 1;
            }

            let target_length = config.target_length(snake.mass);
            let max_change = config.length_change_per_second * dt;
            snake.length += (target_length - snake.length).clamp(-max_change, max_change);
            snake.girth = config.girth_for_mass(snake.mass);

            // Bring the grid in line with the new visible body before the trail is cut, while
            // every point that leaves the body is still in the trail. Serials name points:
            // the grid held serials (old_low, old_front]; it must hold (new_low, new_front].
            let slot_id = slot as u16;
            self.body_grid
                .move_head(geometry, slot_id, old_head, snake.head);
            let new_front_serial = snake.front_serial;
            let new_grid_points = snake.visible_trail_points();
            let old_low = old_front_serial - old_grid_points as u64;
            let new_low = new_front_serial - new_grid_points as u64;
            let trail_index = |serial: u64| (new_front_serial - serial) as usize;
            for serial in old_low + 1..=new_low.min(old_front_serial) {
                let position = snake.trail[trail_index(serial)];
                self.body_grid
                    .remove(geometry, position, slot_id, false, serial as u32);
            }
            let grown_at_tail = new_low + 1..=old_low.min(new_front_serial);
            let grown_at_head = old_front_serial.max(new_low) + 1..=new_front_serial;
            for serial in grown_at_tail.chain(grown_at_head) {
                let position = snake.trail[trail_index(serial)];
                let entry = BodyEntry {
                    position,
                    slot: slot_id,
                    is_head: false,
                    serial: serial as u32,
                };
                self.body_grid.insert(geometry, entry);
                snake.extend_bounds(position);
            }
            snake.grid_trail_points = new_grid_points;
            // One point beyond the visible body gives the partial tail segment its direction.
            snake.trail.truncate(snake.length as usize + 1);

            while snake.boost_mass_to_drop >= config.boost_pellet_value {
                snake.boost_mass_to_drop -= config.boost_pellet_value;
                let tail = snake.trail.back().copied().unwrap_or(snake.head);
                let jitter = Vec2::new(self.rng.range(-1.0, 1.0), self.rng.range(-1.0, 1.0));
                let position = clamp_into_arena(tail + jitter * (snake.girth * 0.5), config.radius);
                let new_pellet = NewPellet {
                    position,
                    value: config.boost_pellet_value,
                    color: snake.skin % config.pellet_colors,
                    expires_at: self.elapsed + f64::from(config.dropped_pellet_lifetime),
                    natural: false,
                };
                let inserted = self
                    .pellets
                    .insert(&self.geometry, config.max_pellets, new_pellet);
                if !inserted {
                    self.ledger.destroyed += f64::from(config.boost_pellet_value);
                }
            }
            snake.score = snake.mass as u32;
            snake.extend_bounds(snake.head);
            if (self.tick + slot as u64) % BOUNDS_REFRESH_TICKS == 0 {
                snake.refresh_bounds();
            }
        }
    }

    /// Decides every death of this tick after every snake has moved and before any is removed,
    /// so the outcome does not depend on the order snakes are processed in (two heads meeting
    /// both die).
    fn find_deaths(&mut self) {
        self.deaths.clear();
        let radius = self.config.radius;
        for slot in 0..self.slots.len() {
            let snake = &self.slots[slot];
            if !snake.alive() {
                continue;
            }
            let head = snake.head;
            let girth = snake.girth;
            let death = if snake.kill_requested || head.length() + girth > radius {
                Some(None)
            } else {
                self.first_body_touched(slot, head, girth).map(Some)
            };
            if let Some(killer) = death {
                self.deaths.push((slot as u16, killer));
            }
        }
        for &(slot, _) in &self.deaths {
            self.slots[slot as usize].dying = true;
        }
    }

    /// The owner of the first other snake's body point that the head of `slot` touches.
    fn first_body_touched(&self, slot: usize, head: Vec2, girth: f32) -> Option<SnakeId> {
        let reach = girth + self.config.max_girth;
        let range = self
            .geometry
            .cells_overlapping(head, Vec2::new(reach, reach));
        for cell in self.geometry.cell_indices(range) {
            for entry in self.body_grid.cell(cell) {
                if entry.slot as usize == slot {
                    continue;
                }
                let other = &self.slots[entry.slot as usize];
                let touch = girth + other.girth;
                if entry.position.distance_squared(head) < touch * touch {
                    return Some(other.id);
                }
            }
        }
        None
    }

    fn eat_pellets(&mut self) {
        for snake in self.slots.iter_mut() {
            if !snake.alive() || snake.dying {
                continue;
            }
            let radius = snake.girth + self.config.pellet_magnet;
            let eaten = self.pellets.eat_within(&self.geometry, snake.head, radius);
            if eaten > 0.0 {
                snake.mass += eaten;
                snake.score = snake.mass as u32;
            }
        }
    }

    fn resolve_deaths(&mut self, events: &mut Vec<SimEvent>) {
        for index in 0..self.deaths.len() {
            let (slot, killer) = self.deaths[index];
            let slot = slot as usize;
            let snake = &self.slots[slot];
            events.push(SimEvent::SnakeDied {
                snake: snake.id,
                killer,
                score: snake.score,
            });
            self.scatter_body(slot);
            if self.slots[slot].kind == SnakeKind::Bot {
                self.free_slot(slot);
            } else {
                self.remove_from_grid(slot);
                let snake = &mut self.slots[slot];
                snake.state = SlotState::Dead;
                snake.trail.clear();
                snake.boosting = false;
                snake.wants_boost = false;
                snake.dying = false;
                snake.kill_requested = false;
            }
        }
        self.deaths.clear();
    }

    fn expire_pellets(&mut self) {
        let cells_per_tick = self.geometry.cell_count().div_ceil(EXPIRY_SWEEP_TICKS);
        let expired = self.pellets.expire(self.elapsed, cells_per_tick);
        self.ledger.destroyed += f64::from(expired);
        self.body_grid.trim(cells_per_tick);
    }

    fn respawn_natural_pellets(&mut self) {
        let missing = self
            .config
            .natural_pellet_target
            .saturating_sub(self.pellets.natural_len())
            .min(self.config.natural_pellets_per_tick);
        for _ in 0..missing {
            self.spawn_natural_pellet();
        }
    }
}

#[cfg(test)]
impl World {
    /// Puts a live snake at `head` with a straight body behind it, for scenario tests.
    pub(crate) fn place_snake_for_test(&mut self, id: SnakeId, head: Vec2, angle: f32) {
        let slot = self.slot_of[&id] as usize;
        self.remove_from_grid(slot);
        let max_length = self.config.max_length;
        self.slots[slot].lay_out_body(head, angle, max_length);
        self.insert_into_grid(slot);
    }

    /// Mutable access for scenario tests that need a particular mass or oxygen level.
    pub(crate) fn snake_mut_for_test(&mut self, id: SnakeId) -> &mut Snake {
        let slot = self.slot_of[&id] as usize;
        &mut self.slots[slot]
    }

    /// Whether the grid holds exactly the live bodies: every head and visible trail point once,
    /// at its current position, and nothing else.
    pub(crate) fn grid_matches_bodies(&self) -> bool {
        let expected: usize = self.snakes().map(Snake::body_len).sum();
        if self.body_grid.len() != expected || self.body_grid.iter().count() != expected {
            return false;
        }
        if !self.body_grid.occupancy_matches(&self.geometry) {
            return false;
        }
        self.body_grid.iter().all(|entry| {
            let snake = &self.slots[entry.slot as usize];
            if !snake.alive() {
                return false;
            }
            if entry.is_head {
                return entry.position == snake.head;
            }
            let index = (snake.front_serial as u32).wrapping_sub(entry.serial) as usize;
            index < snake.visible_trail_points() && snake.trail[index] == entry.position
        })
    }

    /// Removes every pellet so scenario tests control food exactly.
    pub(crate) fn clear_pellets_for_test(&mut self) {
        // A journal reader must not mistake the fresh store's journal for a continuation.
        let after = self.pellets.journal_end() + 1;
        self.pellets = PelletStore::new(&self.geometry);
        self.pellets.start_journal_at(after);
        self.config.natural_pellet_target = 0;
    }

    pub(crate) fn insert_pellet_for_test(&mut self, position: Vec2, value: f32) {
        let new_pellet = NewPellet {
            position,
            value,
            color: 0,
            expires_at: f64::INFINITY,
            natural: false,
        };
        self.pellets.insert(&self.geometry, usize::MAX, new_pellet);
    }
}
