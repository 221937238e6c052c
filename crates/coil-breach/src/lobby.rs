//! A custom lobby's settings: the `key=value;key=value` text the API hands over (the JSON
//! settings of `POST /api/lobbies`, flattened), read into [`LobbySettings`], checked, and
//! written back in canonical form. The same parser reads a host's settings change in the
//! waiting room, so a lobby can never hold a value its creation would have refused.
//!
//! Keys (each optional, each at most once; a missing key keeps its base value — the mode's
//! defaults when a lobby is created, the lobby's current value when the host changes it):
//!
//! | key | value | range | default |
//! |---|---|---|---|
//! | `map` | a built-in map's name, any case (`warehouse`, `courtyard`) | | the first map of the rotation |
//! | `killLimit` | decimal | 1..=200 | the mode's kill limit (50) |
//! | `timeLimitSecs` | decimal | 60..=3600 | the mode's time limit (600) |
//! | `friendlyFire` | `true` / `false` | | the mode's (false) |
//! | `mapVote` | `true` / `false` | | false |
//! | `maxPlayers` | decimal, even | 2..=8 (teams of `maxPlayers / 2`) | 8 |
//!
//! The canonical text has every key, sorted by name, the map in lower case: e.g.
//! `friendlyFire=false;killLimit=50;map=warehouse;mapVote=false;maxPlayers=8;timeLimitSecs=600`
//! (at most 100 bytes, well under `LobbyRules::MAX_LEN`). Reading the canonical text again
//! gives the same settings. Errors are one sentence a player can read. Nothing here panics on
//! any text, and nothing reads a clock or a random source.

use crate::game::BreachConfig;
use crate::map::{BUILT_IN_MAPS, Map};
use crate::{MAX_SLOTS, TICK_RATE};

pub const KILL_LIMIT_RANGE: std::ops::RangeInclusive<u32> = 1..=200;
pub const TIME_LIMIT_SECS_RANGE: std::ops::RangeInclusive<u32> = 60..=3600;
pub const MAX_PLAYERS_RANGE: std::ops::RangeInclusive<u32> = 2..=MAX_SLOTS as u32;
/// Longest settings text read at all (the API's is far shorter; a host's change travels in a
/// `short_str`, at most 255 bytes).
pub const MAX_TEXT_LEN: usize = 512;

/// A custom lobby's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LobbySettings {
    /// A built-in map id.
    pub map_id: u8,
    pub kill_limit: u32,
    pub time_limit_secs: u32,
    pub friendly_fire: bool,
    pub map_vote: bool,
    /// Even, 2..=8; each team seats half.
    pub max_players: u8,
}

/// The lower-case name a map goes by in settings (`Warehouse` → `warehouse`).
pub fn map_key(map: &Map) -> String {
    map.name.to_lowercase()
}

/// The built-in map called `name` (any case).
pub fn map_by_name(name: &str) -> Option<Map> {
    BUILT_IN_MAPS
        .iter()
        .filter_map(|text| Map::parse(text).ok())
        .find(|map| map.name.eq_ignore_ascii_case(name))
}

/// The settings name of a built-in map id (`None` for an unknown id).
pub fn map_name(id: u8) -> Option<String> {
    Map::built_in(id).map(|map| map_key(&map))
}

fn map_names() -> String {
    BUILT_IN_MAPS
        .iter()
        .filter_map(|text| Map::parse(text).ok())
        .map(|map| map_key(&map))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A user-supplied key, shortened and stripped of control characters, to quote in an error.
fn quoted(key: &str) -> String {
    let shown: String = key.chars().filter(|c| !c.is_control()).take(24).collect();
    format!("\"{shown}\"")
}

fn number(key: &str, value: &str, range: &std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    let out_of_range = || {
        format!(
            "{key} must be a whole number between {} and {}",
            range.start(),
            range.end()
        )
    };
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    let parsed: u64 = value.parse().map_err(|_| out_of_range())?;
    match u32::try_from(parsed) {
        Ok(parsed) if range.contains(&parsed) => Ok(parsed),
        _ => Err(out_of_range()),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} must be true or false")),
    }
}

impl LobbySettings {
    /// The settings a lobby gets for every key it leaves out: the mode's own rules, each
    /// brought into the lobby's range (a node may run quick play outside it).
    pub fn defaults(config: &BreachConfig) -> LobbySettings {
        let map_id = config
            .map_rotation
            .first()
            .copied()
            .filter(|id| Map::built_in(*id).is_some())
            .or_else(|| Map::built_in_ids().first().copied())
            .unwrap_or(1);
        let clamp = |value: u32, range: &std::ops::RangeInclusive<u32>| {
            value.clamp(*range.start(), *range.end())
        };
        let max_players = clamp(config.max_players as u32, &MAX_PLAYERS_RANGE) & !1;
        LobbySettings {
            map_id,
            kill_limit: clamp(config.kill_limit, &KILL_LIMIT_RANGE),
            time_limit_secs: clamp(
                config.time_limit_ticks.div_ceil(u32::from(TICK_RATE)),
                &TIME_LIMIT_SECS_RANGE,
            ),
            friendly_fire: config.friendly_fire,
            map_vote: config.map_vote,
            max_players: max_players as u8,
        }
    }

    /// Reads `text` over `base`: every key present replaces the base value.
    pub fn parse(text: &str, base: &LobbySettings) -> Result<LobbySettings, String> {
        if text.len() > MAX_TEXT_LEN {
            return Err(format!(
                "the settings are too long (at most {MAX_TEXT_LEN} characters)"
            ));
        }
        let mut settings = *base;
        if text.is_empty() {
            return Ok(settings);
        }
        let mut seen: Vec<&str> = Vec::new();
        for pair in text.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!(
                    "setting {} has no value: settings are key=value pairs separated by ';'",
                    quoted(pair)
                ));
            };
            if seen.contains(&key) {
                return Err(format!("setting {} is given twice", quoted(key)));
            }
            match key {
                "map" => {
                    let map = map_by_name(value).ok_or_else(|| {
                        format!(
                            "map {} is not one of breach's maps ({})",
                            quoted(value),
                            map_names()
                        )
                    })?;
                    settings.map_id = map.id;
                }
                "killLimit" => settings.kill_limit = number(key, value, &KILL_LIMIT_RANGE)?,
                "timeLimitSecs" => {
                    settings.time_limit_secs = number(key, value, &TIME_LIMIT_SECS_RANGE)?;
                }
                "friendlyFire" => settings.friendly_fire = boolean(key, value)?,
                "mapVote" => settings.map_vote = boolean(key, value)?,
                "maxPlayers" => {
                    let players = number(key, value, &MAX_PLAYERS_RANGE)
                        .ok()
                        .filter(|n| n % 2 == 0);
                    settings.max_players = players.ok_or_else(|| {
                        format!(
                            "maxPlayers must be an even number between {} and {} (two equal teams)",
                            MAX_PLAYERS_RANGE.start(),
                            MAX_PLAYERS_RANGE.end()
                        )
                    })? as u8;
                }
                _ => {
                    return Err(format!(
                        "unknown setting {}: breach knows friendlyFire, killLimit, map, mapVote, maxPlayers and timeLimitSecs",
                        quoted(key)
                    ));
                }
            }
            seen.push(key);
        }
        Ok(settings)
    }

    /// The canonical text: every key, sorted, the map by its lower-case name.
    pub fn normalized(&self) -> String {
        format!(
            "friendlyFire={};killLimit={};map={};mapVote={};maxPlayers={};timeLimitSecs={}",
            self.friendly_fire,
            self.kill_limit,
            self.map_name(),
            self.map_vote,
            self.max_players,
            self.time_limit_secs
        )
    }

    /// The map's settings name.
    pub fn map_name(&self) -> String {
        map_name(self.map_id).unwrap_or_else(|| self.map_id.to_string())
    }

    /// Puts these settings into a room's config: the one map, limits, team size, vote.
    pub fn apply_to(&self, config: &mut BreachConfig) {
        config.map_rotation = vec![self.map_id];
        config.kill_limit = self.kill_limit;
        config.time_limit_ticks = self.time_limit_secs * u32::from(TICK_RATE);
        config.friendly_fire = self.friendly_fire;
        config.map_vote = self.map_vote;
        config.max_players = usize::from(self.max_players);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LobbySettings {
        LobbySettings::defaults(&BreachConfig::default())
    }

    #[test]
    fn the_defaults_come_from_the_mode_and_normalize_with_every_key() {
        let settings = LobbySettings::parse("", &defaults()).unwrap();
        assert_eq!(
            settings.normalized(),
            "friendlyFire=false;killLimit=50;map=warehouse;mapVote=false;maxPlayers=8;timeLimitSecs=600"
        );
    }

    #[test]
    fn defaults_outside_the_lobby_ranges_are_brought_inside() {
        let config = BreachConfig {
            kill_limit: 1000,
            time_limit_ticks: 30,
            ..BreachConfig::default()
        };
        let settings = LobbySettings::defaults(&config);
        assert_eq!(settings.kill_limit, 200);
        assert_eq!(settings.time_limit_secs, 60);
        let again = LobbySettings::parse(&settings.normalized(), &defaults()).unwrap();
        assert_eq!(again, settings);
    }
}
