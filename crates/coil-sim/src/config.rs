//! Every gameplay and performance tunable of the arena, in one plain struct.
//!
//! Owns numbers only. `World::new` passes the config through [`ArenaConfig::sanitized`], so a
//! nonsensical value (NaN, negative, zero radius) degrades to something playable instead of
//! producing NaN positions later.

/// Tunables for one arena. `Default` is the standard 140-snake room played at 20 Hz.
///
/// Units: distances in arena units, time in seconds, angles in radians, mass in pellet value
/// units (a snake's score is its mass rounded down).
#[derive(Debug, Clone, PartialEq)]
pub struct ArenaConfig {
    /// The arena is a circle of this radius centred on (0, 0); a head touching it dies.
    pub radius: f32,
    /// Head speed without boost, units per second.
    pub speed: f32,
    /// Head speed while boosting, units per second.
    pub boost_speed: f32,
    /// Largest heading change per second.
    pub turn_rate: f32,
    /// Mass of a freshly spawned snake.
    pub start_mass: f32,
    /// Mass that buys one body segment of length.
    pub mass_per_segment: f32,
    /// Shortest and longest a snake can be, in segments.
    pub min_length: f32,
    pub max_length: f32,
    /// How fast the visible length follows the mass, segments per second. Growth shows as a
    /// smooth tail extension instead of jumps.
    pub length_change_per_second: f32,
    /// Body radius: `base_girth + girth_per_sqrt_mass * sqrt(mass)`, at most `max_girth`.
    pub base_girth: f32,
    pub girth_per_sqrt_mass: f32,
    pub max_girth: f32,
    /// Mass spent per second of boosting; it falls from the tail as pellets.
    pub boost_mass_per_second: f32,
    /// Boosting stops once a snake is this light.
    pub min_boost_mass: f32,
    /// Value of one pellet dropped while boosting.
    pub boost_pellet_value: f32,
    /// Oxygen (0..=1) spent per second of boosting and regained per second otherwise.
    pub oxygen_drain_per_second: f32,
    pub oxygen_refill_per_second: f32,
    /// After running out of oxygen a snake can boost again only once it has this much back;
    /// without the hysteresis boost would flicker on and off every tick.
    pub oxygen_restart_level: f32,
    /// A pellet is eaten when it lies within `girth + pellet_magnet` of a head.
    pub pellet_magnet: f32,
    /// Naturally spawned food kept in the arena (the density target).
    pub natural_pellet_target: usize,
    pub natural_pellet_min_value: f32,
    pub natural_pellet_max_value: f32,
    /// Most natural pellets respawned per tick. This is the arena's main mass inflow, so it
    /// decides how fast snakes grow on average: 5 per tick is ~200 mass per second at 20 Hz.
    pub natural_pellets_per_tick: usize,
    /// Hard cap on pellets of all kinds; drops beyond it are lost (and counted as destroyed).
    pub max_pellets: usize,
    /// Pellets dropped by boosting and dead snakes vanish after this long.
    pub dropped_pellet_lifetime: f32,
    /// Share of a dead snake's mass that becomes pellets along its body.
    pub death_mass_fraction: f32,
    /// Typical value of one death pellet (fewer, bigger pellets for long bodies).
    pub death_pellet_value: f32,
    /// Pellet colours are `0..pellet_colors`.
    pub pellet_colors: u8,
    /// Side of one uniform-grid cell; about twice the largest collision reach.
    pub grid_cell_size: f32,
    /// Bots spawned per tick at most while below the bot target.
    pub bot_spawns_per_tick: usize,
    /// A bot re-plans its steering every this many ticks (staggered across bots); between
    /// plans it keeps its last input, like a player whose reactions take a moment.
    pub bot_think_interval: u32,
    /// Bots look this far for bodies and bigger heads, and this far for food.
    pub bot_sense_radius: f32,
    pub bot_food_radius: f32,
    /// Bots steer back toward the centre inside this band along the edge.
    pub bot_wall_margin: f32,
    /// A spawn spot is safe when no body point lies this close.
    pub spawn_clearance: f32,
    /// Longest step accepted; a stalled room catches up in bounded steps.
    pub max_dt: f32,
}

impl Default for ArenaConfig {
    fn default() -> ArenaConfig {
        ArenaConfig {
            radius: 3000.0,
            speed: 110.0,
            boost_speed: 230.0,
            turn_rate: 4.5,
            start_mass: 25.0,
            mass_per_segment: 2.5,
            min_length: 8.0,
            max_length: 400.0,
            length_change_per_second: 12.0,
            base_girth: 5.0,
            girth_per_sqrt_mass: 0.6,
            max_girth: 22.0,
            boost_mass_per_second: 5.0,
            min_boost_mass: 20.0,
            boost_pellet_value: 1.0,
            oxygen_drain_per_second: 0.25,
            oxygen_refill_per_second: 0.125,
            oxygen_restart_level: 0.25,
            pellet_magnet: 12.0,
            natural_pellet_target: 5000,
            natural_pellet_min_value: 1.0,
            natural_pellet_max_value: 3.0,
            natural_pellets_per_tick: 5,
            max_pellets: 20_000,
            dropped_pellet_lifetime: 60.0,
            death_mass_fraction: 0.8,
            death_pellet_value: 4.0,
            pellet_colors: 12,
            grid_cell_size: 64.0,
            bot_spawns_per_tick: 2,
            bot_think_interval: 2,
            bot_sense_radius: 160.0,
            bot_food_radius: 220.0,
            bot_wall_margin: 200.0,
            spawn_clearance: 150.0,
            max_dt: 0.25,
        }
    }
}

/// `value` if it is finite and within `low..=high`, else the nearest bound (`fallback` for NaN).
fn clamp_finite(value: f32, low: f32, high: f32, fallback: f32) -> f32 {
    if value.is_nan() {
        fallback
    } else {
        value.clamp(low, high)
    }
}

impl ArenaConfig {
    /// A copy with every value forced into a range the simulation handles without NaN, panics
    /// or unbounded memory. Sensible configs come back unchanged.
    pub fn sanitized(&self) -> ArenaConfig {
        let defaults = ArenaConfig::default();
        let radius = clamp_finite(self.radius, 200.0, 100_000.0, defaults.radius);
        let min_length = clamp_finite(self.min_length, 2.0, 1000.0, defaults.min_length);
        let base_girth = clamp_finite(self.base_girth, 1.0, 100.0, defaults.base_girth);
        let start_mass = clamp_finite(self.start_mass, 1.0, 1.0e6, defaults.start_mass);
        let max_girth = clamp_finite(self.max_girth, base_girth, 200.0, defaults.max_girth);
        let min_value = clamp_finite(
            self.natural_pellet_min_value,
            0.01,
            1000.0,
            defaults.natural_pellet_min_value,
        );
        ArenaConfig {
            radius,
            speed: clamp_finite(self.speed, 0.0, 10_000.0, defaults.speed),
            boost_speed: clamp_finite(self.boost_speed, 0.0, 20_000.0, defaults.boost_speed),
            turn_rate: clamp_finite(self.turn_rate, 0.0, 100.0, defaults.turn_rate),
            start_mass,
            mass_per_segment: clamp_finite(
                self.mass_per_segment,
                0.01,
                1.0e6,
                defaults.mass_per_segment,
            ),
            min_length,
            max_length: clamp_finite(self.max_length, min_length, 4000.0, defaults.max_length),
            length_change_per_second: clamp_finite(
                self.length_change_per_second,
                0.1,
                10_000.0,
                defaults.length_change_per_second,
            ),
            base_girth,
            girth_per_sqrt_mass: clamp_finite(
                self.girth_per_sqrt_mass,
                0.0,
                100.0,
                defaults.girth_per_sqrt_mass,
            ),
            max_girth,
            boost_mass_per_second: clamp_finite(
                self.boost_mass_per_second,
                0.0,
                1.0e6,
                defaults.boost_mass_per_second,
            ),
            min_boost_mass: clamp_finite(self.min_boost_mass, 0.0, 1.0e9, defaults.min_boost_mass),
            boost_pellet_value: clamp_finite(
                self.boost_pellet_value,
                0.01,
                1.0e6,
                defaults.boost_pellet_value,
            ),
            oxygen_drain_per_second: clamp_finite(
                self.oxygen_drain_per_second,
                0.0,
                1000.0,
                defaults.oxygen_drain_per_second,
            ),
            oxygen_refill_per_second: clamp_finite(
                self.oxygen_refill_per_second,
                0.0,
                1000.0,
                defaults.oxygen_refill_per_second,
            ),
            oxygen_restart_level: clamp_finite(
                self.oxygen_restart_level,
                0.0,
                1.0,
                defaults.oxygen_restart_level,
            ),
            pellet_magnet: clamp_finite(self.pellet_magnet, 0.0, 1000.0, defaults.pellet_magnet),
            natural_pellet_target: self.natural_pellet_target.min(1_000_000),
            natural_pellet_min_value: min_value,
            natural_pellet_max_value: clamp_finite(
                self.natural_pellet_max_value,
                min_value,
                1000.0,
                defaults.natural_pellet_max_value.max(min_value),
            ),
            natural_pellets_per_tick: self.natural_pellets_per_tick.min(100_000),
            max_pellets: self.max_pellets.min(2_000_000),
            dropped_pellet_lifetime: clamp_finite(
                self.dropped_pellet_lifetime,
                0.0,
                1.0e6,
                defaults.dropped_pellet_lifetime,
            ),
            death_mass_fraction: clamp_finite(
                self.death_mass_fraction,
                0.0,
                1.0,
                defaults.death_mass_fraction,
            ),
            death_pellet_value: clamp_finite(
                self.death_pellet_value,
                0.01,
                1.0e6,
                defaults.death_pellet_value,
            ),
            pellet_colors: self.pellet_colors.max(1),
            grid_cell_size: clamp_finite(
                self.grid_cell_size,
                // At most ~500 cells per side, so the two grids stay a few MB at any radius.
                (radius / 250.0).max(8.0),
                radius,
                defaults.grid_cell_size,
            ),
            bot_spawns_per_tick: self.bot_spawns_per_tick.clamp(1, 1000),
            bot_think_interval: self.bot_think_interval.clamp(1, 100),
            bot_sense_radius: clamp_finite(
                self.bot_sense_radius,
                0.0,
                radius,
                defaults.bot_sense_radius,
            ),
            bot_food_radius: clamp_finite(
                self.bot_food_radius,
                0.0,
                radius,
                defaults.bot_food_radius,
            ),
            bot_wall_margin: clamp_finite(
                self.bot_wall_margin,
                0.0,
                radius * 0.5,
                defaults.bot_wall_margin,
            ),
            spawn_clearance: clamp_finite(
                self.spawn_clearance,
                0.0,
                radius * 0.5,
                defaults.spawn_clearance,
            ),
            max_dt: clamp_finite(self.max_dt, 0.001, 1.0, defaults.max_dt),
        }
    }

    /// Body length in segments that `mass` buys.
    pub fn target_length(&self, mass: f32) -> f32 {
        (mass / self.mass_per_segment).clamp(self.min_length, self.max_length)
    }

    /// Body radius at `mass`.
    pub fn girth_for_mass(&self, mass: f32) -> f32 {
        (self.base_girth + self.girth_per_sqrt_mass * mass.max(0.0).sqrt()).min(self.max_girth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_survives_sanitizing_unchanged() {
        assert_eq!(ArenaConfig::default().sanitized(), ArenaConfig::default());
    }

    #[test]
    fn nonsense_values_are_repaired() {
        let broken = ArenaConfig {
            radius: f32::NAN,
            speed: -5.0,
            grid_cell_size: 0.0,
            max_girth: 0.5,
            max_length: f32::INFINITY,
            ..ArenaConfig::default()
        };
        let repaired = broken.sanitized();
        assert_eq!(repaired.radius, ArenaConfig::default().radius);
        assert_eq!(repaired.speed, 0.0);
        assert!(repaired.grid_cell_size >= 8.0);
        assert!(repaired.max_girth >= repaired.base_girth);
        assert!(repaired.max_length.is_finite());
    }
}
