//! The simulation of one match: walls, player bodies, shots, charges, sounds, kills.
//!
//! [`World::step`] applies one intent per player slot and advances everything by one tick,
//! in slot order, so the result depends only on the seed, the map and the intents. It knows
//! nothing of seats, phases, scores or the wire: that is `game.rs` (rules) and `encode.rs`.

use crate::MAX_SLOTS;
use crate::input::Intent;
use crate::map::{Map, Team};
use crate::math::Angle;
use crate::player::{MAX_HEALTH, PLAYER_HALF_SUB, Player, Speed, step_movement};
use crate::rng::{BreachRng, StateHasher};
use crate::sound::{SoundKind, SoundSource};
use crate::vision;
use crate::walls::Walls;
use crate::weapons::{self, Charge, Shot, ShotHit};

/// How a kill happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KillCause {
    Rifle = 0,
    Charge = 1,
}

/// One death this tick. `killer` is None for a self-inflicted or ownerless death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub killer: Option<usize>,
    pub victim: usize,
    pub assister: Option<usize>,
    pub cause: KillCause,
    /// Whether the kill scores for the killer's team (an enemy killed).
    pub scores: bool,
}

/// A facing change this tick large enough to be a flick that ended on a visible enemy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AimSnap {
    pub slot: usize,
    /// Size of the facing change, 1/65536 turn.
    pub turn: u32,
    /// How far from the enemy's centre the new facing points, 1/65536 turn.
    pub error: u32,
    pub target: usize,
}

/// A facing change above this (about 0.9 rad in one tick) followed by pinpoint aim is not
/// what a hand on a mouse does repeatedly.
pub const SNAP_MIN_TURN: u32 = 9400;
/// "Pinpoint": within about 1.4° of an enemy's centre.
pub const SNAP_MAX_ERROR: u32 = 260;
/// Ticks after a death before the respawn.
pub const DEFAULT_RESPAWN_TICKS: u16 = 90;
/// Damage within this many ticks before a kill earns an assist (5 s).
pub const ASSIST_WINDOW_TICKS: u64 = 150;

/// Settings of the simulation itself (rules above it live in `game.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldSettings {
    pub friendly_fire: bool,
    pub respawn_ticks: u16,
}

/// One match's simulation.
#[derive(Debug, Clone)]
pub struct World {
    map: Map,
    walls: Walls,
    players: [Option<Player>; MAX_SLOTS],
    charges: Vec<Charge>,
    shots: Vec<Shot>,
    blasts: Vec<(i64, i64)>,
    sounds: Vec<SoundSource>,
    kills: Vec<Kill>,
    snaps: Vec<AimSnap>,
    rng: BreachRng,
    tick: u64,
    settings: WorldSettings,
    /// Counters the game exports: slices destroyed, shots fired, fire presses on cooldown.
    pub(crate) slices_destroyed: u64,
    pub(crate) shots_fired: u64,
    pub(crate) fire_presses_on_cooldown: u64,
    pub(crate) charges_exploded: u64,
}

impl World {
    pub fn new(map: Map, settings: WorldSettings, seed: u64) -> World {
        let walls = Walls::from_map(&map);
        World {
            map,
            walls,
            players: Default::default(),
            charges: Vec::new(),
            shots: Vec::new(),
            blasts: Vec::new(),
            sounds: Vec::new(),
            kills: Vec::new(),
            snaps: Vec::new(),
            rng: BreachRng::new(seed),
            tick: 0,
            settings,
            slices_destroyed: 0,
            shots_fired: 0,
            fire_presses_on_cooldown: 0,
            charges_exploded: 0,
        }
    }

    pub fn map(&self) -> &Map {
        &self.map
    }

    pub fn walls(&self) -> &Walls {
        &self.walls
    }

    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn player(&self, slot: usize) -> Option<&Player> {
        self.players.get(slot).and_then(Option::as_ref)
    }

    pub(crate) fn player_mut(&mut self, slot: usize) -> Option<&mut Player> {
        self.players.get_mut(slot).and_then(Option::as_mut)
    }

    pub fn players(&self) -> impl Iterator<Item = (usize, &Player)> {
        self.players
            .iter()
            .enumerate()
            .filter_map(|(slot, player)| player.as_ref().map(|p| (slot, p)))
    }

    pub fn shots(&self) -> &[Shot] {
        &self.shots
    }

    pub fn charges(&self) -> &[Charge] {
        &self.charges
    }

    pub fn blasts(&self) -> &[(i64, i64)] {
        &self.blasts
    }

    pub fn sounds(&self) -> &[SoundSource] {
        &self.sounds
    }

    pub fn kills(&self) -> &[Kill] {
        &self.kills
    }

    pub fn snaps(&self) -> &[AimSnap] {
        &self.snaps
    }

    /// Puts a new body in `slot` and spawns it at once.
    pub(crate) fn add_player(&mut self, slot: usize, team: Team, generation: u32) {
        if slot >= MAX_SLOTS {
            return;
        }
        self.players[slot] = Some(Player::new(team, generation));
        self.respawn(slot);
    }

    pub(crate) fn remove_player(&mut self, slot: usize) {
        if slot >= MAX_SLOTS {
            return;
        }
        self.players[slot] = None;
        self.charges.retain(|charge| charge.owner != slot);
        for player in self.players.iter_mut().flatten() {
            player.damaged_by_at[slot] = 0;
        }
    }

    /// Restores the walls and every body for a new match on `map`; stats reset.
    pub(crate) fn reset(&mut self, map: Map) {
        self.walls = Walls::from_map(&map);
        self.map = map;
        self.charges.clear();
        for slot in 0..MAX_SLOTS {
            if let Some(player) = &mut self.players[slot] {
                player.kills = 0;
                player.deaths = 0;
                player.assists = 0;
                self.respawn(slot);
            }
        }
    }

    /// Friendly fire on or off (a custom lobby's settings change before a match).
    pub(crate) fn set_friendly_fire(&mut self, on: bool) {
        self.settings.friendly_fire = on;
    }

    /// Moves a player to a team (and respawns it there).
    pub(crate) fn set_team(&mut self, slot: usize, team: Team) {
        if let Some(player) = self.player_mut(slot) {
            player.team = team;
            self.respawn(slot);
        }
    }

    /// Spawns the player in a free spot of its team's spawn zone: a spawn cell whose box is
    /// clear of walls and at least a cell away from every living player; a random spawn cell
    /// if none is free.
    fn respawn(&mut self, slot: usize) {
        let Some(team) = self.player(slot).map(|p| p.team) else {
            return;
        };
        let cells = &self.map.spawns[team.index()];
        let cell_sub = i64::from(self.map.cell_pixels) * 8;
        let count = cells.len() as u32;
        let start = self.rng.below(count);
        let mut chosen = None;
        for offset in 0..count {
            let (cx, cy) = cells[((start + offset) % count) as usize];
            let x = i64::from(cx) * cell_sub + cell_sub / 2;
            let y = i64::from(cy) * cell_sub + cell_sub / 2;
            let crowded = self.players().any(|(other, player)| {
                other != slot
                    && player.alive
                    && (player.x - x).abs() < cell_sub
                    && (player.y - y).abs() < cell_sub
            });
            if !crowded && !self.walls.box_blocked(x, y, PLAYER_HALF_SUB) {
                chosen = Some((x, y));
                break;
            }
        }
        let (x, y) = chosen.unwrap_or_else(|| {
            let (cx, cy) = cells[start as usize % cells.len()];
            (
                i64::from(cx) * cell_sub + cell_sub / 2,
                i64::from(cy) * cell_sub + cell_sub / 2,
            )
        });
        // Face the middle of the map.
        let (width, height) = self.walls.size_sub();
        let facing = Angle::of_vector((width / 2 - x) as f64, (height / 2 - y) as f64);
        if let Some(player) = self.player_mut(slot) {
            player.spawn_at(x, y, facing);
        }
    }

    /// Advances one tick. `intents[slot]` is applied to the body in that slot; with
    /// `weapons_live` false (lobby, countdown) bodies move and aim but cannot fire or plant.
    pub fn step(&mut self, intents: &[Intent; MAX_SLOTS], weapons_live: bool) {
        self.tick += 1;
        self.walls.begin_tick();
        self.shots.clear();
        self.blasts.clear();
        self.sounds.clear();
        self.kills.clear();
        self.snaps.clear();
        for (slot, intent) in intents.iter().enumerate() {
            self.apply_intent(slot, intent, weapons_live);
        }
        self.tick_charges();
        for slot in 0..MAX_SLOTS {
            let Some(player) = self.player_mut(slot) else {
                continue;
            };
            if player.alive {
                continue;
            }
            player.respawn_in = player.respawn_in.saturating_sub(1);
            if player.respawn_in == 0 {
                self.respawn(slot);
            }
        }
        self.walls.end_tick();
        self.slices_destroyed += self
            .walls
            .changed()
            .iter()
            .filter(|&&index| self.walls.hit_points(index) == 0)
            .count() as u64;
    }

    fn apply_intent(&mut self, slot: usize, intent: &Intent, weapons_live: bool) {
        let tick = self.tick;
        let Some(player) = self.players[slot].as_mut() else {
            return;
        };
        if !player.alive {
            return;
        }
        let previous_facing = player.facing;
        player.facing = intent.facing;
        let moving = intent.direction != 0;
        let before = player.position();
        let after = step_movement(&self.walls, before, intent.direction, intent.speed);
        player.x = after.0;
        player.y = after.1;
        let moved = after != before;
        if moved {
            if player.ticks_to_footstep == 0 {
                player.ticks_to_footstep = intent.speed.footstep_interval();
                let kind = match intent.speed {
                    Speed::Sneak => SoundKind::FootstepSneak,
                    Speed::Walk => SoundKind::FootstepWalk,
                    Speed::Run => SoundKind::FootstepRun,
                };
                self.sounds.push(SoundSource {
                    kind,
                    emitter: slot,
                    x: after.0,
                    y: after.1,
                });
            }
            player.ticks_to_footstep -= 1;
        } else {
            player.ticks_to_footstep = 0;
        }
        // Weapon timers.
        player.fire_cooldown = player.fire_cooldown.saturating_sub(1);
        if player.reload_in > 0 {
            player.reload_in -= 1;
            if player.reload_in == 0 {
                player.ammo = weapons::MAGAZINE;
            }
        }
        let fire_pressed = intent.fire && !player.fire_was_held;
        player.fire_was_held = intent.fire;
        let turn = previous_facing.delta_to(intent.facing).unsigned_abs();
        let team = player.team;
        let position = player.position();
        if turn >= SNAP_MIN_TURN {
            self.check_snap(slot, team, position, intent.facing, turn);
        }
        if !weapons_live {
            return;
        }
        let player = self.players[slot].as_mut().expect("checked above");
        if intent.reload && player.reload_in == 0 && player.ammo < weapons::MAGAZINE {
            player.reload_in = weapons::RELOAD_TICKS;
            self.sounds.push(SoundSource {
                kind: SoundKind::Reload,
                emitter: slot,
                x: position.0,
                y: position.1,
            });
        }
        let player = self.players[slot].as_mut().expect("checked above");
        if intent.use_charge && player.charges > 0 {
            player.charges -= 1;
            let generation = player.generation;
            let (ux, uy) = intent.facing.unit();
            let ahead = (
                position.0 + (ux * weapons::CHARGE_PLACE_DISTANCE_SUB as f64).round() as i64,
                position.1 + (uy * weapons::CHARGE_PLACE_DISTANCE_SUB as f64).round() as i64,
            );
            // Against a wall the charge goes where the line from the player meets it.
            let spot = match self.walls.first_intact(position, ahead) {
                Some((_, t)) => (
                    position.0 + ((ahead.0 - position.0) as f64 * t).round() as i64,
                    position.1 + ((ahead.1 - position.1) as f64 * t).round() as i64,
                ),
                None => ahead,
            };
            self.charges.push(Charge {
                owner: slot,
                owner_generation: generation,
                team,
                x: spot.0,
                y: spot.1,
                fuse: weapons::CHARGE_FUSE_TICKS,
            });
            self.sounds.push(SoundSource {
                kind: SoundKind::ChargePlaced,
                emitter: slot,
                x: spot.0,
                y: spot.1,
            });
        }
        let player = self.players[slot].as_mut().expect("checked above");
        if intent.fire {
            if player.fire_cooldown > 0 || player.reload_in > 0 {
                if fire_pressed {
                    self.fire_presses_on_cooldown += 1;
                }
            } else if player.ammo == 0 {
                // An empty magazine reloads by itself when the trigger is pulled.
                player.reload_in = weapons::RELOAD_TICKS;
            } else {
                player.ammo -= 1;
                player.fire_cooldown = weapons::FIRE_INTERVAL_TICKS;
                let spread = weapons::spread(intent.speed, moving);
                let direction = intent.facing.offset(self.rng.symmetric(spread));
                self.fire(slot, team, direction, tick);
            }
        }
    }

    fn check_snap(&mut self, slot: usize, team: Team, eye: (i64, i64), facing: Angle, turn: u32) {
        let mut found = None;
        for (other, player) in self.players() {
            if other == slot || !player.alive || player.team == team {
                continue;
            }
            if !vision::can_see(&self.walls, eye, facing, player.position()) {
                continue;
            }
            let toward = Angle::of_vector((player.x - eye.0) as f64, (player.y - eye.1) as f64);
            let error = facing.delta_to(toward).unsigned_abs();
            if error <= SNAP_MAX_ERROR {
                found = Some(AimSnap {
                    slot,
                    turn,
                    error,
                    target: other,
                });
                break;
            }
        }
        self.snaps.extend(found);
    }

    fn fire(&mut self, slot: usize, team: Team, direction: Angle, tick: u64) {
        let friendly_fire = self.settings.friendly_fire;
        let players = &self.players;
        let shot = weapons::trace_shot(&self.walls, players, slot, direction, |other| {
            friendly_fire || players[other].as_ref().is_some_and(|p| p.team != team)
        });
        self.shots_fired += 1;
        self.sounds.push(SoundSource {
            kind: SoundKind::Shot,
            emitter: slot,
            x: shot.from.0,
            y: shot.from.1,
        });
        match shot.hit {
            ShotHit::Wall(Some(index)) => {
                self.walls.damage(index, weapons::WALL_DAMAGE);
            }
            ShotHit::Player(victim) => {
                self.hurt(
                    victim,
                    Some(slot),
                    weapons::PLAYER_DAMAGE,
                    KillCause::Rifle,
                    tick,
                );
            }
            _ => {}
        }
        self.shots.push(shot);
    }

    fn hurt(
        &mut self,
        victim: usize,
        attacker: Option<usize>,
        damage: u8,
        cause: KillCause,
        tick: u64,
    ) {
        let Some(player) = self.players[victim].as_mut() else {
            return;
        };
        if !player.alive {
            return;
        }
        if let Some(attacker) = attacker
            && attacker != victim
        {
            player.damaged_by_at[attacker] = tick;
        }
        player.health = player.health.saturating_sub(damage);
        if player.health > 0 {
            return;
        }
        player.alive = false;
        player.respawn_in = self.settings.respawn_ticks.max(1);
        player.deaths += 1;
        let victim_team = player.team;
        let killer = attacker.filter(|&a| a != victim);
        // The most recent other damager within the window assists.
        let mut assister = None;
        let mut latest = 0;
        for (other, &at) in player.damaged_by_at.iter().enumerate() {
            if Some(other) == killer || other == victim || at == 0 {
                continue;
            }
            if tick.saturating_sub(at) <= ASSIST_WINDOW_TICKS && at > latest {
                latest = at;
                assister = Some(other);
            }
        }
        player.damaged_by_at = [0; MAX_SLOTS];
        let killer_team = killer.and_then(|k| self.player(k)).map(|p| p.team);
        let scores = killer_team.is_some_and(|team| team != victim_team);
        if let Some(killer) = killer
            && scores
            && let Some(player) = self.player_mut(killer)
        {
            player.kills += 1;
        }
        let assister = assister.filter(|&a| self.player(a).is_some_and(|p| p.team != victim_team));
        if let Some(assister) = assister
            && let Some(player) = self.player_mut(assister)
        {
            player.assists += 1;
        }
        self.charges.retain(|charge| charge.owner != victim);
        self.kills.push(Kill {
            killer,
            victim,
            assister,
            cause,
            scores,
        });
    }

    fn tick_charges(&mut self) {
        let tick = self.tick;
        let mut index = 0;
        while index < self.charges.len() {
            self.charges[index].fuse -= 1;
            if self.charges[index].fuse > 0 {
                index += 1;
                continue;
            }
            let charge = self.charges.swap_remove(index);
            self.charges_exploded += 1;
            let centre = (charge.x, charge.y);
            self.walls
                .destroy_circle(charge.x, charge.y, weapons::CHARGE_BREACH_RADIUS_SUB);
            self.blasts.push(centre);
            self.sounds.push(SoundSource {
                kind: SoundKind::Blast,
                emitter: charge.owner,
                x: charge.x,
                y: charge.y,
            });
            let owner_team = charge.team;
            for slot in 0..MAX_SLOTS {
                let Some(player) = self.player(slot) else {
                    continue;
                };
                if !player.alive {
                    continue;
                }
                let friendly = player.team == owner_team && slot != charge.owner;
                if friendly && !self.settings.friendly_fire {
                    continue;
                }
                let (dx, dy) = (player.x - charge.x, player.y - charge.y);
                let damage = weapons::blast_damage(dx * dx + dy * dy);
                if damage == 0 || !self.walls.line_clear(centre, player.position()) {
                    continue;
                }
                let owner_here = self
                    .player(charge.owner)
                    .is_some_and(|p| p.generation == charge.owner_generation);
                let attacker = owner_here.then_some(charge.owner);
                self.hurt(slot, attacker, damage, KillCause::Charge, tick);
            }
        }
        // Keep charge order stable for hashing and encoding.
        self.charges
            .sort_by_key(|charge| (charge.owner, charge.fuse));
    }

    /// Folds the whole simulation state into `hasher`.
    pub(crate) fn hash_into(&self, hasher: &mut StateHasher) {
        hasher.add(self.tick);
        hasher.add(self.rng.state());
        self.walls.hash_into(hasher);
        for (slot, player) in self.players.iter().enumerate() {
            let Some(player) = player else {
                hasher.add(0xdead_0000 + slot as u64);
                continue;
            };
            hasher
                .add(slot as u64 | (player.team as u64) << 8 | u64::from(player.generation) << 16);
            hasher.add(player.x as u64);
            hasher.add(player.y as u64);
            hasher.add(
                u64::from(player.facing.0)
                    | u64::from(player.health) << 16
                    | u64::from(player.alive) << 24
                    | u64::from(player.respawn_in) << 32
                    | u64::from(player.ammo) << 48
                    | u64::from(player.reload_in) << 56,
            );
            hasher.add(
                u64::from(player.fire_cooldown)
                    | u64::from(player.charges) << 8
                    | u64::from(player.fire_was_held) << 16
                    | u64::from(player.ticks_to_footstep) << 24
                    | u64::from(player.spawns) << 32,
            );
            hasher.add(
                u64::from(player.kills)
                    | u64::from(player.deaths) << 21
                    | u64::from(player.assists) << 42,
            );
            for at in player.damaged_by_at {
                hasher.add(at);
            }
        }
        for charge in &self.charges {
            hasher.add(
                charge.owner as u64
                    | u64::from(charge.fuse) << 8
                    | u64::from(charge.owner_generation) << 24,
            );
            hasher.add(charge.x as u64 ^ (charge.y as u64) << 32);
        }
    }

    /// Health a spawned player has (for the encoder's "what the client holds").
    pub fn max_health() -> u8 {
        MAX_HEALTH
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_players(friendly_fire: bool) -> World {
        let settings = WorldSettings {
            friendly_fire,
            respawn_ticks: 10,
        };
        let mut world = World::new(Map::built_in(1).unwrap(), settings, 1);
        world.add_player(0, Team::A, 1);
        world.add_player(1, Team::A, 2);
        world.add_player(2, Team::B, 3);
        world
    }

    #[test]
    fn the_killer_scores_and_a_recent_damager_assists() {
        let mut world = three_players(false);
        world.hurt(2, Some(1), 25, KillCause::Rifle, 10);
        world.hurt(2, Some(0), 100, KillCause::Rifle, 20);
        assert_eq!(
            world.kills(),
            &[Kill {
                killer: Some(0),
                victim: 2,
                assister: Some(1),
                cause: KillCause::Rifle,
                scores: true,
            }]
        );
        assert_eq!(world.player(0).unwrap().kills, 1);
        assert_eq!(world.player(1).unwrap().assists, 1);
        assert_eq!(world.player(2).unwrap().deaths, 1);
        assert!(!world.player(2).unwrap().alive);
        // Respawn after the delay, in team B's zone.
        let intents = [Intent::idle(Angle(0)); MAX_SLOTS];
        for _ in 0..10 {
            world.step(&intents, true);
        }
        let respawned = world.player(2).unwrap();
        assert!(respawned.alive);
        let cell = (respawned.x / 80, respawned.y / 80);
        assert!(
            world.map().spawns[1].contains(&(cell.0 as u32, cell.1 as u32)),
            "{cell:?}"
        );
    }

    #[test]
    fn old_damage_does_not_assist_and_team_kills_do_not_score() {
        let mut world = three_players(true);
        world.hurt(2, Some(1), 25, KillCause::Rifle, 10);
        world.hurt(
            2,
            Some(0),
            100,
            KillCause::Rifle,
            10 + ASSIST_WINDOW_TICKS + 1,
        );
        assert_eq!(world.kills()[0].assister, None);
        world.kills.clear();
        world.hurt(1, Some(0), 100, KillCause::Rifle, 500);
        assert!(!world.kills()[0].scores);
        assert_eq!(
            world.player(0).unwrap().kills,
            1,
            "only the enemy kill counts"
        );
    }
}
