//! The game modes a node runs: the built-in modes, and each mode's settings on this node (its
//! spec's defaults with the node's configuration on top).
//!
//! A node runs several modes side by side; every room has exactly one. Registering a game is
//! one line in [`builtin`]; nothing else in the runtime names a game.

use std::sync::Arc;
use std::time::Duration;

use coil_arena::ArenaMode;
use coil_breach::{BreachConfig, BreachMode};
use coil_game::{GameMode as Mode, ModeSpec};
use coil_match::{GameMode, ModeCaps};

use crate::config::{ConfigError, NodeConfig};
use crate::room::RoomSettings;
use crate::room::core::SeatLimits;

/// Every mode this binary ships, configured from the node's settings where the mode has
/// node-level knobs (the arena's bot population).
pub fn builtin(config: &NodeConfig) -> Vec<Arc<dyn Mode>> {
    vec![
        Arc::new(ArenaMode {
            population_target: config.room_population_target,
        }),
        Arc::new(BreachMode {
            config: config.breach.clone(),
        }),
    ]
}

/// Placement caps of the built-in modes but the arena, at their defaults: what a standalone
/// `coil matchmaker` places with (nodes that override a mode's caps should run the same
/// `MODE_*` settings; the node's own caps still bound every join).
pub fn default_placement_caps() -> std::collections::BTreeMap<GameMode, ModeCaps> {
    with_lobbies()
        .iter()
        .filter_map(|mode| {
            let spec = mode.spec();
            let name = GameMode::parse(spec.name).ok()?;
            Some((
                name,
                ModeCaps {
                    soft_cap: u32::try_from(spec.soft_cap).unwrap_or(u32::MAX),
                    hard_cap: u32::try_from(spec.hard_cap).unwrap_or(u32::MAX),
                },
            ))
        })
        .collect()
}

/// The modes with custom lobbies, as the matchmaker checks their rules (`GameMode::
/// lobby_rules` is a pure function of the text: node settings do not change it).
pub fn with_lobbies() -> Vec<Arc<dyn Mode>> {
    vec![Arc::new(BreachMode {
        config: coil_breach::BreachConfig::default(),
    })]
}

const BREACH_HELP: &str = "Breach (the 4v4 mode)";

/// Breach's match rules on this node (`coil serve --help` lists them under "Breach"). Short
/// matches for demos and tests: `BREACH_KILL_LIMIT=3 BREACH_MIN_PLAYERS=1`.
#[derive(Debug, Clone, clap::Args)]
pub struct BreachArgs {
    /// Kills that win a breach match. Range 1..=1000.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_KILL_LIMIT",
        value_name = "BREACH_KILL_LIMIT",
        default_value_t = 50
    )]
    pub breach_kill_limit: u32,

    /// Seconds after which a breach match ends on time (the team ahead wins). Range 10..=86400.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_TIME_LIMIT_SECS",
        value_name = "BREACH_TIME_LIMIT_SECS",
        default_value_t = 600
    )]
    pub breach_time_limit_secs: u32,

    /// Humans in a breach room before its countdown starts; bots fill the other seats then.
    /// 0 starts with bots alone. Range 0..=8.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_MIN_PLAYERS",
        value_name = "BREACH_MIN_PLAYERS",
        default_value_t = 2
    )]
    pub breach_min_players: usize,

    /// Seconds of countdown before a breach match starts. Range 0..=20.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_COUNTDOWN_SECS",
        value_name = "BREACH_COUNTDOWN_SECS",
        default_value_t = 5
    )]
    pub breach_countdown_secs: u32,

    /// Seconds the final scoreboard and the restart vote last. Range 1..=120.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_SCOREBOARD_SECS",
        value_name = "BREACH_SCOREBOARD_SECS",
        default_value_t = 15
    )]
    pub breach_scoreboard_secs: u32,

    /// Shots and blasts hurt teammates (1) or not (0).
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_FRIENDLY_FIRE",
        value_name = "BREACH_FRIENDLY_FIRE",
        default_value = "0",
        value_parser = crate::config::parse_flag,
        action = clap::ArgAction::Set
    )]
    pub breach_friendly_fire: bool,

    /// Spectators per breach match. Range 0..=64.
    #[arg(
        long,
        help_heading = BREACH_HELP,
        env = "BREACH_MAX_SPECTATORS",
        value_name = "BREACH_MAX_SPECTATORS",
        default_value_t = 4
    )]
    pub breach_max_spectators: usize,
}

impl BreachArgs {
    /// Breach's rules from these settings, each range checked with the variable named.
    pub fn validate(&self) -> Result<BreachConfig, ConfigError> {
        let out_of = |variable: &'static str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(ConfigError {
                    variable,
                    problem: format!("{value} is outside {}..={}", range.start(), range.end()),
                })
            }
        };
        out_of("BREACH_KILL_LIMIT", self.breach_kill_limit.into(), 1..=1000)?;
        out_of(
            "BREACH_TIME_LIMIT_SECS",
            self.breach_time_limit_secs.into(),
            10..=86_400,
        )?;
        out_of("BREACH_MIN_PLAYERS", self.breach_min_players as u64, 0..=8)?;
        out_of(
            "BREACH_COUNTDOWN_SECS",
            self.breach_countdown_secs.into(),
            0..=20,
        )?;
        out_of(
            "BREACH_SCOREBOARD_SECS",
            self.breach_scoreboard_secs.into(),
            1..=120,
        )?;
        out_of(
            "BREACH_MAX_SPECTATORS",
            self.breach_max_spectators as u64,
            0..=64,
        )?;
        let second = u32::from(coil_breach::TICK_RATE);
        let config = BreachConfig {
            kill_limit: self.breach_kill_limit,
            time_limit_ticks: self.breach_time_limit_secs * second,
            min_players: self.breach_min_players,
            countdown_ticks: self.breach_countdown_secs * second,
            scoreboard_ticks: self.breach_scoreboard_secs * second,
            friendly_fire: self.breach_friendly_fire,
            max_spectators: self.breach_max_spectators,
            ..BreachConfig::default()
        };
        // The ranges above are inside breach's own; a mismatch is a bug worth a clear message.
        config.validate().map_err(|error| ConfigError {
            variable: "BREACH_*",
            problem: error.to_string(),
        })?;
        Ok(config)
    }
}

/// The built-in modes as `config` selects and sets them.
pub fn configured(config: &NodeConfig) -> Result<Modes, ConfigError> {
    Modes::configure(config, builtin(config))
}

/// One mode on this node.
pub struct ModeEntry {
    pub name: GameMode,
    pub mode: Arc<dyn Mode>,
    pub spec: ModeSpec,
    pub room: RoomSettings,
    /// Rooms of this mode the node runs at most.
    pub max_rooms: usize,
    /// The matchmaker stops placing players in a room at this many.
    pub soft_cap: usize,
}

impl std::fmt::Debug for ModeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModeEntry")
            .field("name", &self.name)
            .field("room", &self.room)
            .field("max_rooms", &self.max_rooms)
            .finish_non_exhaustive()
    }
}

/// The modes a node runs, in configuration order.
#[derive(Debug)]
pub struct Modes {
    entries: Vec<ModeEntry>,
}

impl Modes {
    /// The modes `GAME_MODES` names out of `available` (all of them when it names none), with
    /// their settings. An unknown name, or an override for a mode the node does not run, is a
    /// configuration error naming the variable.
    pub fn configure(
        config: &NodeConfig,
        available: Vec<Arc<dyn Mode>>,
    ) -> Result<Modes, ConfigError> {
        let known: Vec<String> = available
            .iter()
            .map(|mode| mode.spec().name.to_owned())
            .collect();
        let wanted: Vec<GameMode> = if config.game_modes.is_empty() {
            known
                .iter()
                .filter_map(|name| GameMode::parse(name).ok())
                .collect()
        } else {
            config.game_modes.clone()
        };
        for name in &wanted {
            if !known.iter().any(|known| known == name.as_str()) {
                return Err(ConfigError {
                    variable: "GAME_MODES",
                    problem: format!(
                        "{name} is not a mode of this node (known: {})",
                        known.join(", ")
                    ),
                });
            }
        }
        for (variable, named) in [
            ("MODE_TICK_MS", config.mode_ticks.keys().collect::<Vec<_>>()),
            (
                "MODE_MAX_ROOMS",
                config.mode_max_rooms.keys().collect::<Vec<_>>(),
            ),
            (
                "RECONNECT_GRACE_SECS",
                config.reconnect_grace.modes.keys().collect::<Vec<_>>(),
            ),
        ] {
            if let Some(stray) = named.into_iter().find(|mode| !wanted.contains(mode)) {
                return Err(ConfigError {
                    variable,
                    problem: format!("{stray} is not one of this node's GAME_MODES"),
                });
            }
        }
        let mut entries = Vec::new();
        for name in wanted {
            let Some(mode) = available
                .iter()
                .find(|mode| mode.spec().name == name.as_str())
            else {
                continue;
            };
            let spec = mode.spec();
            let arena = name.as_str() == GameMode::DEFAULT;
            // The arena keeps its historic flags (TICK_MS, ROOM_*_CAP, MAX_ROOMS); other modes
            // take their spec's defaults unless MODE_* names them.
            let tick = if arena {
                config.tick
            } else {
                config.mode_ticks.get(&name).copied().unwrap_or(spec.tick)
            };
            let (soft_cap, hard_cap) = if arena {
                (config.room_soft_cap, config.room_hard_cap)
            } else {
                (spec.soft_cap, spec.hard_cap)
            };
            let max_rooms = if arena {
                config.max_rooms
            } else {
                config
                    .mode_max_rooms
                    .get(&name)
                    .copied()
                    .unwrap_or(spec.max_rooms)
            };
            let reconnect_grace = config
                .reconnect_grace
                .get(&name)
                .unwrap_or(spec.reconnect_grace);
            let room = RoomSettings {
                mode: name.clone(),
                tick,
                limits: SeatLimits {
                    hard_cap,
                    spectator_cap: spec.spectator_cap,
                    reconnect_grace,
                    idle_grace: config.room_idle,
                    matches: spec.matches,
                },
                slow_client_timeout: config.slow_client_timeout,
                leaderboard: spec.leaderboard,
            };
            entries.push(ModeEntry {
                name,
                mode: mode.clone(),
                spec,
                room,
                max_rooms,
                soft_cap,
            });
        }
        if entries.is_empty() {
            return Err(ConfigError {
                variable: "GAME_MODES",
                problem: "names no mode".into(),
            });
        }
        Ok(Modes { entries })
    }

    pub fn get(&self, name: &GameMode) -> Option<&ModeEntry> {
        self.entries.iter().find(|entry| &entry.name == name)
    }

    /// The mode of joins that name none (protocol v11): the arena if the node runs it, else
    /// its first mode.
    pub fn default_mode(&self) -> &ModeEntry {
        self.entries
            .iter()
            .find(|entry| entry.name.as_str() == GameMode::DEFAULT)
            .unwrap_or(&self.entries[0])
    }

    pub fn iter(&self) -> impl Iterator<Item = &ModeEntry> {
        self.entries.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .map(|entry| entry.name.as_str())
            .collect()
    }

    /// Placement caps of every mode but the arena (whose caps are the policy's own).
    pub fn placement_caps(&self) -> std::collections::BTreeMap<GameMode, ModeCaps> {
        self.entries
            .iter()
            .filter(|entry| entry.name.as_str() != GameMode::DEFAULT)
            .map(|entry| {
                (
                    entry.name.clone(),
                    ModeCaps {
                        soft_cap: entry.soft_cap as u32,
                        hard_cap: entry.room.limits.hard_cap as u32,
                    },
                )
            })
            .collect()
    }

    /// The longest tick of any mode (health and heartbeats judge pressure against it).
    pub fn slowest_tick(&self) -> Duration {
        self.entries
            .iter()
            .map(|entry| entry.room.tick)
            .max()
            .unwrap_or(Duration::from_millis(50))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_keeps_its_flags_and_unknown_modes_are_refused() {
        let dir = std::path::PathBuf::from("unused");
        let mut config = NodeConfig::for_tests(&dir);
        config.room_soft_cap = 50;
        config.max_rooms = 7;
        let modes = Modes::configure(&config, builtin(&config)).unwrap();
        let arena = modes.get(&GameMode::arena()).unwrap();
        assert_eq!((arena.soft_cap, arena.max_rooms), (50, 7));
        assert_eq!(arena.room.limits.reconnect_grace, Duration::ZERO);
        assert_eq!(modes.default_mode().name, GameMode::arena());

        config.game_modes = vec![GameMode::parse("chess").unwrap()];
        let error = Modes::configure(&config, builtin(&config)).unwrap_err();
        assert_eq!(error.variable, "GAME_MODES");

        config.game_modes = Vec::new();
        config
            .mode_max_rooms
            .insert(GameMode::parse("chess").unwrap(), 3);
        let error = Modes::configure(&config, builtin(&config)).unwrap_err();
        assert_eq!(error.variable, "MODE_MAX_ROOMS");
    }
}
