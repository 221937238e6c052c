//! Configuration of a game node, from flags and environment variables, validated before any
//! socket is bound.
//!
//! Every setting is a flag with an environment variable of the same meaning; `coil serve
//! --help` prints them all. Tests build a [`NodeConfig`] directly or parse flags from a slice,
//! so no test ever mutates the process environment.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use coil_match::{GameMode, NodeId, Region};

/// A setting given once for every mode, per mode, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerMode<T> {
    pub all: Option<T>,
    pub modes: BTreeMap<GameMode, T>,
}

impl<T: Copy> PerMode<T> {
    /// The value for `mode`, if one was given.
    pub fn get(&self, mode: &GameMode) -> Option<T> {
        self.modes.get(mode).copied().or(self.all)
    }
}

/// Parses `mode=value,mode=value` (or, when `allow_all`, a bare value for every mode). Empty:
/// nothing given.
fn parse_per_mode<T>(
    variable: &'static str,
    raw: &str,
    allow_all: bool,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<PerMode<T>, ConfigError> {
    let mut out = PerMode {
        all: None,
        modes: BTreeMap::new(),
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(out);
    }
    if allow_all && !raw.contains('=') {
        out.all = Some(parse(raw).map_err(|problem| invalid(variable, problem))?);
        return Ok(out);
    }
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (mode, value) = entry
            .split_once('=')
            .ok_or_else(|| invalid(variable, format!("{entry:?} is not mode=value")))?;
        let mode = GameMode::parse(mode.trim())
            .map_err(|problem| invalid(variable, format!("{mode:?}: {problem}")))?;
        let value = parse(value.trim()).map_err(|problem| invalid(variable, problem))?;
        if out.modes.insert(mode.clone(), value).is_some() {
            return Err(invalid(variable, format!("{mode} is given twice")));
        }
    }
    Ok(out)
}

fn number_in(range: std::ops::RangeInclusive<u64>) -> impl Fn(&str) -> Result<u64, String> {
    move |text| {
        let value: u64 = text
            .parse()
            .map_err(|_| format!("{text:?} is not a whole number"))?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{value} is outside {}..={}",
                range.start(),
                range.end()
            ))
        }
    }
}

/// Flags and environment of `coil serve` (and later `coil node`).
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Address to listen on. Use 0.0.0.0 to accept players from other machines.
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port for HTTP, WebSockets and metrics.
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8787)]
    pub port: u16,

    /// Leaderboard and accounts database: sqlite://path (created on start) or
    /// postgres://user@host/db. Unset: sqlite://<DATA_DIR>/leaderboard.db.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for generated keys (score-receipt secret) and the default SQLite file.
    #[arg(
        long,
        env = "DATA_DIR",
        value_name = "DATA_DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,

    /// Game modes this node runs, comma separated (default: every built-in mode). Each room has
    /// one mode; players are placed only into rooms of the mode they ask for.
    #[arg(
        long,
        env = "GAME_MODES",
        value_name = "GAME_MODES",
        default_value = ""
    )]
    pub game_modes: String,

    /// Milliseconds per arena tick (50 = 20 Hz). Range 10..=200. Other modes: MODE_TICK_MS.
    #[arg(long, env = "TICK_MS", value_name = "TICK_MS", default_value_t = 50)]
    pub tick_ms: u64,

    /// Tick of modes other than the arena, as mode=milliseconds pairs (e.g. "breach=33");
    /// modes not listed keep their own default.
    #[arg(
        long,
        env = "MODE_TICK_MS",
        value_name = "MODE_TICK_MS",
        default_value = ""
    )]
    pub mode_tick_ms: String,

    /// Rooms of modes other than the arena one node runs, as mode=count pairs (e.g.
    /// "breach=300"); the arena's is MAX_ROOMS. Modes not listed keep their own default.
    #[arg(
        long,
        env = "MODE_MAX_ROOMS",
        value_name = "MODE_MAX_ROOMS",
        default_value = ""
    )]
    pub mode_max_rooms: String,

    /// Seconds a dropped player's seat is held for a reconnect: one number for every mode, or
    /// mode=seconds pairs (e.g. "breach=60,arena=0"). Default: each mode's own (arena 0).
    #[arg(
        long,
        env = "RECONNECT_GRACE_SECS",
        value_name = "RECONNECT_GRACE_SECS",
        default_value = ""
    )]
    pub reconnect_grace_secs: String,

    /// Seconds a draining node lets a match in progress run before it closes the room anyway
    /// (rooms of match modes only; others close at DRAIN_TIMEOUT_SECS).
    #[arg(
        long,
        env = "MATCH_DRAIN_DEADLINE_SECS",
        value_name = "MATCH_DRAIN_DEADLINE_SECS",
        default_value_t = 1200
    )]
    pub match_drain_deadline_secs: u64,

    /// Humans per room at which the matchmaker stops placing players.
    #[arg(
        long,
        env = "ROOM_SOFT_CAP",
        value_name = "ROOM_SOFT_CAP",
        default_value_t = 120
    )]
    pub room_soft_cap: usize,

    /// Humans per room at which the node refuses joins with ROOM_FULL. Range 1..=1000.
    #[arg(
        long,
        env = "ROOM_HARD_CAP",
        value_name = "ROOM_HARD_CAP",
        default_value_t = 140
    )]
    pub room_hard_cap: usize,

    /// Bots top each room up to this many snakes (humans + bots); 0 disables bots. Bots never
    /// take a human's seat and step aside as humans join.
    #[arg(
        long,
        env = "ROOM_POPULATION_TARGET",
        value_name = "ROOM_POPULATION_TARGET",
        default_value_t = 120
    )]
    pub room_population_target: usize,

    /// Most rooms this node runs at once; joins that would create more are refused. The
    /// matchmaker counts this node's seats as MAX_ROOMS x ROOM_SOFT_CAP, so set it from measured
    /// capacity (players per core x cores / soft cap; see docs/benchmarks.md).
    #[arg(
        long,
        env = "MAX_ROOMS",
        value_name = "MAX_ROOMS",
        default_value_t = 16
    )]
    pub max_rooms: usize,

    /// Seconds an empty room (no humans) is kept before it is reaped.
    #[arg(
        long,
        env = "ROOM_IDLE_SECS",
        value_name = "ROOM_IDLE_SECS",
        default_value_t = 30
    )]
    pub room_idle_secs: u64,

    /// Seconds a draining node waits for rooms to empty before it closes what is left and exits.
    #[arg(
        long,
        env = "DRAIN_TIMEOUT_SECS",
        value_name = "DRAIN_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub drain_timeout_secs: u64,

    /// Seconds a client may go without reading before it is disconnected as too slow.
    #[arg(
        long,
        env = "SLOW_CLIENT_TIMEOUT_SECS",
        value_name = "SLOW_CLIENT_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub slow_client_timeout_secs: u64,

    /// Origins allowed to call the HTTP API from a browser, comma separated
    /// (e.g. https://play.example.com). Empty = same origin only. "*" is refused.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_name = "CORS_ORIGINS",
        default_value = ""
    )]
    pub cors_origins: String,

    /// Accept protocol v11 joins without a matchmaker token (migration window). Default: on
    /// for `coil serve`, off for `coil node`.
    #[arg(long, env = "ALLOW_PROTOCOL_V11", value_name = "ALLOW_PROTOCOL_V11", value_parser = parse_flag)]
    pub allow_protocol_v11: Option<bool>,

    /// Base URL players connect to, published to the matchmaker (e.g. wss://n1.example.com).
    /// Default: ws://<HOST>:<PORT> (ws://127.0.0.1:<PORT> when HOST is 0.0.0.0).
    #[arg(long, env = "PUBLIC_URL", value_name = "PUBLIC_URL")]
    pub public_url: Option<String>,

    #[command(flatten)]
    pub internal_secret: coil_service::config::InternalSecretArgs,

    /// Seconds between room-directory heartbeats.
    #[arg(
        long,
        env = "HEARTBEAT_SECS",
        value_name = "HEARTBEAT_SECS",
        default_value_t = 1
    )]
    pub heartbeat_secs: u64,

    /// Seconds a node's directory entries live without a heartbeat (a dead node's rooms vanish
    /// after this).
    #[arg(
        long,
        env = "HEARTBEAT_TTL_SECS",
        value_name = "HEARTBEAT_TTL_SECS",
        default_value_t = 5
    )]
    pub heartbeat_ttl_secs: u64,

    /// Milliseconds a node stays in placement without a beat. Between full heartbeats the node
    /// sends a cheap keep-alive every fifth of this, so a dead or frozen node stops receiving
    /// players after this long while its rooms' entries keep HEARTBEAT_TTL_SECS.
    #[arg(
        long,
        env = "NODE_LIVENESS_MS",
        value_name = "NODE_LIVENESS_MS",
        default_value_t = 1500
    )]
    pub node_liveness_ms: u64,

    /// Enable POST /api/debug/kill (never in production).
    #[arg(
        long,
        env = "ENABLE_DEBUG_COMMANDS",
        value_name = "ENABLE_DEBUG_COMMANDS",
        default_value = "0",
        value_parser = parse_flag,
        action = clap::ArgAction::Set
    )]
    pub enable_debug_commands: bool,

    /// This node's id in the directory and in score run ids.
    #[arg(
        long,
        env = "NODE_ID",
        value_name = "NODE_ID",
        default_value = "local-1"
    )]
    pub node_id: String,

    /// Region this node serves (matchmaker placement).
    #[arg(long, env = "REGION", value_name = "REGION", default_value = "local")]
    pub region: String,

    #[command(flatten)]
    pub agones: crate::agones::AgonesArgs,

    #[command(flatten)]
    pub breach: crate::modes::BreachArgs,
}

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    /// The modes to run (empty: every built-in mode).
    pub game_modes: Vec<GameMode>,
    /// The arena's tick.
    pub tick: Duration,
    /// Per-mode overrides, checked against the modes' specs when the node's modes are built.
    pub mode_ticks: BTreeMap<GameMode, Duration>,
    pub mode_max_rooms: BTreeMap<GameMode, usize>,
    /// `None` key: the value for every mode.
    pub reconnect_grace: PerMode<Duration>,
    pub match_drain_deadline: Duration,
    pub room_soft_cap: usize,
    pub room_hard_cap: usize,
    pub room_population_target: usize,
    pub max_rooms: usize,
    pub room_idle: Duration,
    pub drain_timeout: Duration,
    pub slow_client_timeout: Duration,
    pub cors_origins: Vec<String>,
    pub allow_protocol_v11: bool,
    pub enable_debug_commands: bool,
    pub node_id: String,
    pub region: String,
    pub public_url: String,
    pub heartbeat_interval: Duration,
    pub heartbeat_ttl: Duration,
    /// Silence after which the node leaves placement (its rooms keep `heartbeat_ttl`).
    pub node_liveness: Duration,
    pub internal_secret: Option<String>,
    /// `Some` with `AGONES=1`: the node speaks the Agones SDK (see `agones.rs`).
    pub agones: Option<crate::agones::AgonesConfig>,
    /// Breach's match rules (`BREACH_*`).
    pub breach: coil_breach::BreachConfig,
}

/// A configuration value that is out of range. Its message names the variable.
pub use coil_service::ConfigError;
pub(crate) use coil_service::{invalid, parse_flag};

impl NodeArgs {
    /// Checks ranges and relations between settings. `v11_by_default` is the shape's default
    /// for ALLOW_PROTOCOL_V11 (on for the all-in-one, off in the fleet).
    pub fn validate(self, v11_by_default: bool) -> Result<NodeConfig, ConfigError> {
        if !(10..=200).contains(&self.tick_ms) {
            return Err(invalid(
                "TICK_MS",
                format!("{} is outside 10..=200", self.tick_ms),
            ));
        }
        if !(1..=1000).contains(&self.room_hard_cap) {
            return Err(invalid(
                "ROOM_HARD_CAP",
                format!("{} is outside 1..=1000", self.room_hard_cap),
            ));
        }
        if self.room_soft_cap == 0 || self.room_soft_cap > self.room_hard_cap {
            return Err(invalid(
                "ROOM_SOFT_CAP",
                format!(
                    "{} must be between 1 and ROOM_HARD_CAP ({})",
                    self.room_soft_cap, self.room_hard_cap
                ),
            ));
        }
        if self.room_population_target > 1000 {
            return Err(invalid(
                "ROOM_POPULATION_TARGET",
                format!("{} is above 1000", self.room_population_target),
            ));
        }
        if self.max_rooms == 0 || self.max_rooms > 100_000 {
            return Err(invalid(
                "MAX_ROOMS",
                format!("{} is outside 1..=100000", self.max_rooms),
            ));
        }
        if self.drain_timeout_secs > 3600 {
            return Err(invalid("DRAIN_TIMEOUT_SECS", "must be at most 3600"));
        }
        if !(1..=120).contains(&self.slow_client_timeout_secs) {
            return Err(invalid(
                "SLOW_CLIENT_TIMEOUT_SECS",
                "must be within 1..=120",
            ));
        }
        let database_url = match &self.database_url {
            Some(url) => url.trim().to_string(),
            None => coil_store::default_database_url(&self.data_dir),
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        let cors_origins = parse_origins(&self.cors_origins)?;
        // The directory's own rules: an id it would refuse must stop the node here, before it
        // binds a socket and says it is running.
        NodeId::parse(&self.node_id).map_err(|problem| invalid("NODE_ID", problem.to_string()))?;
        Region::parse(&self.region).map_err(|problem| invalid("REGION", problem.to_string()))?;
        let mut game_modes = Vec::new();
        for name in self
            .game_modes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let mode = GameMode::parse(name)
                .map_err(|problem| invalid("GAME_MODES", format!("{name:?}: {problem}")))?;
            if game_modes.contains(&mode) {
                return Err(invalid("GAME_MODES", format!("{mode} is listed twice")));
            }
            game_modes.push(mode);
        }
        let mode_ticks = parse_per_mode(
            "MODE_TICK_MS",
            &self.mode_tick_ms,
            false,
            number_in(10..=200),
        )?
        .modes
        .into_iter()
        .map(|(mode, ms)| (mode, Duration::from_millis(ms)))
        .collect();
        let mode_max_rooms = parse_per_mode(
            "MODE_MAX_ROOMS",
            &self.mode_max_rooms,
            false,
            number_in(1..=100_000),
        )?
        .modes
        .into_iter()
        .map(|(mode, rooms)| (mode, rooms as usize))
        .collect();
        let grace = parse_per_mode(
            "RECONNECT_GRACE_SECS",
            &self.reconnect_grace_secs,
            true,
            number_in(0..=3600),
        )?;
        let reconnect_grace = PerMode {
            all: grace.all.map(Duration::from_secs),
            modes: grace
                .modes
                .into_iter()
                .map(|(mode, secs)| (mode, Duration::from_secs(secs)))
                .collect(),
        };
        if self.match_drain_deadline_secs > 24 * 3600 {
            return Err(invalid(
                "MATCH_DRAIN_DEADLINE_SECS",
                "must be at most 86400",
            ));
        }
        if !(1..=60).contains(&self.heartbeat_secs) {
            return Err(invalid("HEARTBEAT_SECS", "must be within 1..=60"));
        }
        if self.heartbeat_ttl_secs <= self.heartbeat_secs || self.heartbeat_ttl_secs > 600 {
            return Err(invalid(
                "HEARTBEAT_TTL_SECS",
                "must exceed HEARTBEAT_SECS and be at most 600",
            ));
        }
        if self.node_liveness_ms < 250 || self.node_liveness_ms > self.heartbeat_ttl_secs * 1000 {
            return Err(invalid(
                "NODE_LIVENESS_MS",
                "must be at least 250 and at most HEARTBEAT_TTL_SECS in milliseconds",
            ));
        }
        let internal_secret = self.internal_secret.validate()?;
        let agones = self.agones.validate(self.public_url.is_some())?;
        let public_url = match self.public_url {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_string();
                let scheme_ok = url.starts_with("ws://") || url.starts_with("wss://");
                if !scheme_ok || url.len() > 200 || url.contains(char::is_whitespace) {
                    return Err(invalid("PUBLIC_URL", "must be a ws:// or wss:// URL"));
                }
                url
            }
            None if self.host.is_unspecified() => format!("ws://127.0.0.1:{}", self.port),
            None => format!("ws://{}", SocketAddr::new(self.host, self.port)),
        };
        let breach = self.breach.validate()?;
        Ok(NodeConfig {
            breach,
            listen: SocketAddr::new(self.host, self.port),
            database_url,
            data_dir: self.data_dir,
            game_modes,
            tick: Duration::from_millis(self.tick_ms),
            mode_ticks,
            mode_max_rooms,
            reconnect_grace,
            match_drain_deadline: Duration::from_secs(self.match_drain_deadline_secs),
            room_soft_cap: self.room_soft_cap,
            room_hard_cap: self.room_hard_cap,
            room_population_target: self.room_population_target,
            max_rooms: self.max_rooms,
            room_idle: Duration::from_secs(self.room_idle_secs),
            drain_timeout: Duration::from_secs(self.drain_timeout_secs),
            slow_client_timeout: Duration::from_secs(self.slow_client_timeout_secs),
            cors_origins,
            allow_protocol_v11: self.allow_protocol_v11.unwrap_or(v11_by_default),
            enable_debug_commands: self.enable_debug_commands,
            node_id: self.node_id,
            region: self.region,
            public_url,
            heartbeat_interval: Duration::from_secs(self.heartbeat_secs),
            heartbeat_ttl: Duration::from_secs(self.heartbeat_ttl_secs),
            node_liveness: Duration::from_millis(self.node_liveness_ms),
            internal_secret,
            agones,
        })
    }
}

fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Err(invalid(
                "CORS_ORIGINS",
                "\"*\" is not allowed; list the origins that may call the API",
            ));
        }
        let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        let host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if !scheme_ok || host.is_empty() || host.contains('/') {
            return Err(invalid(
                "CORS_ORIGINS",
                format!("{origin:?} is not an origin like https://play.example.com"),
            ));
        }
        origins.push(origin.to_string());
    }
    Ok(origins)
}

impl NodeConfig {
    /// A configuration for tests and benchmarks: port 0, a given data directory, SQLite inside
    /// it, debug commands on, short idle and drain windows.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> NodeConfig {
        let data_dir = data_dir.into();
        NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: coil_store::default_database_url(&data_dir),
            data_dir,
            game_modes: Vec::new(),
            tick: Duration::from_millis(50),
            mode_ticks: BTreeMap::new(),
            mode_max_rooms: BTreeMap::new(),
            reconnect_grace: PerMode::default(),
            match_drain_deadline: Duration::from_secs(1200),
            room_soft_cap: 120,
            room_hard_cap: 140,
            room_population_target: 20,
            max_rooms: 100,
            room_idle: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(5),
            slow_client_timeout: Duration::from_secs(5),
            cors_origins: Vec::new(),
            allow_protocol_v11: true,
            enable_debug_commands: true,
            node_id: "test-node".into(),
            region: "local".into(),
            public_url: "ws://127.0.0.1:0".into(),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_ttl: Duration::from_secs(5),
            node_liveness: Duration::from_millis(1500),
            internal_secret: Some("test-internal-secret".into()),
            agones: None,
            breach: coil_breach::BreachConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        node: NodeArgs,
    }

    fn parse(args: &[&str]) -> Result<NodeConfig, String> {
        let mut full = vec!["coil"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
        cli.node.validate(true).map_err(|e| e.to_string())
    }

    #[test]
    fn breach_rules_come_from_the_node_settings() {
        let defaults = parse(&[]).unwrap().breach;
        assert_eq!(defaults, coil_breach::BreachConfig::default());
        let short = parse(&[
            "--breach-kill-limit",
            "3",
            "--breach-min-players",
            "1",
            "--breach-time-limit-secs",
            "90",
            "--breach-friendly-fire",
            "1",
        ])
        .unwrap()
        .breach;
        assert_eq!(short.kill_limit, 3);
        assert_eq!(short.min_players, 1);
        assert_eq!(short.time_limit_ticks, 90 * 30);
        assert!(short.friendly_fire);
        assert_eq!(short.scoreboard_ticks, defaults.scoreboard_ticks);
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.port(), 8787);
        assert_eq!(config.tick, Duration::from_millis(50));
        assert_eq!((config.room_soft_cap, config.room_hard_cap), (120, 140));
        assert!(config.cors_origins.is_empty());
        assert!(!config.enable_debug_commands);
        assert!(config.allow_protocol_v11);
        assert_eq!(config.public_url, "ws://127.0.0.1:8787");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[&str], &str)] = &[
            (&["--tick-ms", "5"], "TICK_MS"),
            (&["--room-soft-cap", "150"], "ROOM_SOFT_CAP"),
            (&["--cors-origins", "*"], "CORS_ORIGINS"),
            (&["--cors-origins", "example.com"], "CORS_ORIGINS"),
            (&["--database-url", "mysql://x"], "DATABASE_URL"),
            (&["--node-id", "a b"], "NODE_ID"),
            // The directory's rule (no dots): such a node would never appear in placement.
            (&["--node-id", "node.1"], "NODE_ID"),
            (&["--region", "us.east"], "REGION"),
            (&["--game-modes", "arena,Arena"], "GAME_MODES"),
            (&["--game-modes", "arena,arena"], "GAME_MODES"),
            (&["--mode-tick-ms", "breach=5"], "MODE_TICK_MS"),
            (&["--mode-tick-ms", "33"], "MODE_TICK_MS"),
            (&["--mode-max-rooms", "breach"], "MODE_MAX_ROOMS"),
            (
                &["--reconnect-grace-secs", "breach=x"],
                "RECONNECT_GRACE_SECS",
            ),
            (&["--reconnect-grace-secs", "99999"], "RECONNECT_GRACE_SECS"),
            (
                &["--match-drain-deadline-secs", "999999"],
                "MATCH_DRAIN_DEADLINE_SECS",
            ),
            (&["--public-url", "http://x"], "PUBLIC_URL"),
            (&["--heartbeat-ttl-secs", "1"], "HEARTBEAT_TTL_SECS"),
            (&["--node-liveness-ms", "100"], "NODE_LIVENESS_MS"),
            (&["--node-liveness-ms", "9000"], "NODE_LIVENESS_MS"),
            (&["--internal-secret", "short"], "INTERNAL_SECRET"),
            (&["--breach-kill-limit", "0"], "BREACH_KILL_LIMIT"),
            (&["--breach-time-limit-secs", "5"], "BREACH_TIME_LIMIT_SECS"),
            (&["--breach-min-players", "9"], "BREACH_MIN_PLAYERS"),
            (&["--breach-countdown-secs", "21"], "BREACH_COUNTDOWN_SECS"),
            (&["--breach-scoreboard-secs", "0"], "BREACH_SCOREBOARD_SECS"),
            (&["--breach-max-spectators", "65"], "BREACH_MAX_SPECTATORS"),
            (&["--breach-friendly-fire", "maybe"], "BREACH_FRIENDLY_FIRE"),
            // Type errors come from clap and name the variable through the value name.
            (&["--port", "abc"], "PORT"),
            (
                &["--enable-debug-commands", "maybe"],
                "ENABLE_DEBUG_COMMANDS",
            ),
        ];
        for (args, variable) in cases {
            let error = parse(args).unwrap_err();
            assert!(
                error.contains(variable),
                "{args:?} gave {error:?}, which does not name {variable}"
            );
        }
    }

    #[test]
    fn per_mode_settings_take_one_value_or_a_list() {
        let config = parse(&[
            "--reconnect-grace-secs",
            "breach=60, arena=0",
            "--mode-tick-ms",
            "breach=33",
            "--game-modes",
            "arena, breach",
        ])
        .unwrap();
        let breach = GameMode::parse("breach").unwrap();
        assert_eq!(
            config.reconnect_grace.get(&breach),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            config.reconnect_grace.get(&GameMode::arena()),
            Some(Duration::ZERO)
        );
        assert_eq!(config.mode_ticks[&breach], Duration::from_millis(33));
        assert_eq!(config.game_modes, vec![GameMode::arena(), breach.clone()]);
        let everywhere = parse(&["--reconnect-grace-secs", "30"]).unwrap();
        assert_eq!(
            everywhere.reconnect_grace.get(&breach),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse(&[]).unwrap().reconnect_grace.get(&breach), None);
    }

    #[test]
    fn origins_are_parsed_as_a_list() {
        let config =
            parse(&["--cors-origins", "https://a.example, http://localhost:5173"]).unwrap();
        assert_eq!(
            config.cors_origins,
            vec!["https://a.example", "http://localhost:5173"]
        );
    }
}

/// Extra settings of `coil serve`: the in-process matchmaker.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    /// Seconds a matchmaker join token stays valid (15–30 recommended).
    #[arg(
        long,
        env = "JOIN_TOKEN_TTL_SECS",
        value_name = "JOIN_TOKEN_TTL_SECS",
        default_value_t = 20
    )]
    pub join_token_ttl_secs: u64,

    /// Accounts, sessions and rate limits (`coil_api::AccountsArgs`).
    #[command(flatten)]
    pub accounts: coil_api::AccountsArgs,
}

/// Extra settings of `coil node`: the fleet's directory and the matchmaker's public key.
#[derive(Debug, Clone, Args)]
pub struct FleetNodeArgs {
    #[command(flatten)]
    pub node: NodeArgs,

    #[command(flatten)]
    pub redis: coil_service::config::DirectoryRedisArgs,

    /// Prefix of the accounts keys in Redis (the matchmaker's ACCOUNTS_REDIS_KEY_PREFIX): the
    /// node subscribes to its account events there, to end a banned player's connection.
    #[arg(
        long,
        env = "ACCOUNTS_REDIS_KEY_PREFIX",
        value_name = "ACCOUNTS_REDIS_KEY_PREFIX",
        default_value = "coil:acct:"
    )]
    pub accounts_redis_key_prefix: String,

    #[command(flatten)]
    pub limits: coil_api::config::NodeLimitArgs,

    /// The matchmaker's Ed25519 public key (base64), printed by `coil matchmaker --print-public-key`.
    #[arg(
        long,
        env = "JOIN_TOKEN_PUBLIC_KEY",
        value_name = "JOIN_TOKEN_PUBLIC_KEY"
    )]
    pub join_token_public_key: String,
}

/// Settings of `coil matchmaker`.
#[derive(Debug, Clone, Args)]
pub struct MatchmakerArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port for the matchmaking API and metrics.
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8788)]
    pub port: u16,

    #[command(flatten)]
    pub redis: coil_service::config::DirectoryRedisArgs,

    /// Ed25519 signing key for join tokens (created on first start). Share the file between
    /// matchmakers; give nodes only the public key.
    #[arg(
        long,
        env = "JOIN_TOKEN_KEY_FILE",
        value_name = "JOIN_TOKEN_KEY_FILE",
        default_value = "data/join-token.key"
    )]
    pub join_token_key_file: PathBuf,

    /// Print the join-token public key (for JOIN_TOKEN_PUBLIC_KEY on nodes) and exit.
    #[arg(long)]
    pub print_public_key: bool,

    /// Seconds a join token stays valid.
    #[arg(
        long,
        env = "JOIN_TOKEN_TTL_SECS",
        value_name = "JOIN_TOKEN_TTL_SECS",
        default_value_t = 20
    )]
    pub join_token_ttl_secs: u64,

    /// Humans per room at which placement stops.
    #[arg(
        long,
        env = "ROOM_SOFT_CAP",
        value_name = "ROOM_SOFT_CAP",
        default_value_t = 120
    )]
    pub room_soft_cap: u32,

    /// Humans + reservations a room never exceeds.
    #[arg(
        long,
        env = "ROOM_HARD_CAP",
        value_name = "ROOM_HARD_CAP",
        default_value_t = 140
    )]
    pub room_hard_cap: u32,

    /// Share of a region's seats kept free for bursts and reconnect storms.
    #[arg(
        long,
        env = "SPARE_FRACTION",
        value_name = "SPARE_FRACTION",
        default_value_t = 0.15
    )]
    pub spare_fraction: f64,

    /// Region used when a request names none.
    #[arg(
        long,
        env = "DEFAULT_REGION",
        value_name = "DEFAULT_REGION",
        default_value = "local"
    )]
    pub default_region: String,

    /// Nearest regions, tried in order after the preferred one:
    /// "us-east=us-west,eu-central;eu-central=us-east".
    #[arg(
        long,
        env = "REGION_NEIGHBOURS",
        value_name = "REGION_NEIGHBOURS",
        default_value = ""
    )]
    pub region_neighbours: String,

    /// Seconds a heartbeat received over HTTP keeps a node's entries alive.
    #[arg(
        long,
        env = "HEARTBEAT_TTL_SECS",
        value_name = "HEARTBEAT_TTL_SECS",
        default_value_t = 5
    )]
    pub heartbeat_ttl_secs: u64,

    /// Rooms whose reported tick p95 is above this many milliseconds get no fresh players (their
    /// node is struggling). Use 80% of the nodes' TICK_MS: 40 for the default 50 ms tick.
    #[arg(
        long,
        env = "MAX_TICK_P95_MS",
        value_name = "MAX_TICK_P95_MS",
        default_value_t = 40.0
    )]
    pub max_tick_p95_ms: f64,

    /// Milliseconds a matchmake may take, every directory call included, before the player gets
    /// 503 + Retry-After (a Redis outage must never leave requests hanging).
    #[arg(
        long,
        env = "MATCHMAKE_DEADLINE_MS",
        value_name = "MATCHMAKE_DEADLINE_MS",
        default_value_t = 800
    )]
    pub matchmake_deadline_ms: u64,

    /// Browser origins allowed to call the matchmaker and the accounts API from another site,
    /// comma separated (e.g. https://play.example.com). Empty: same origin only.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_name = "CORS_ORIGINS",
        default_value = ""
    )]
    pub cors_origins: String,

    #[command(flatten)]
    pub internal_secret: coil_service::config::InternalSecretArgs,

    /// Accounts API (`coil_api::FleetAccountsArgs`): on when DATABASE_URL is set.
    #[command(flatten)]
    pub accounts: coil_api::FleetAccountsArgs,
}

impl MatchmakerArgs {
    /// Validates and builds the placement policy and service settings.
    pub fn validate(&self) -> Result<crate::matchmaker::MatchmakerSettings, ConfigError> {
        use coil_match::{PlacementPolicy, Region};
        if self.room_hard_cap == 0 || self.room_hard_cap > 1000 {
            return Err(invalid("ROOM_HARD_CAP", "must be within 1..=1000"));
        }
        if self.room_soft_cap == 0 || self.room_soft_cap > self.room_hard_cap {
            return Err(invalid(
                "ROOM_SOFT_CAP",
                "must be between 1 and ROOM_HARD_CAP",
            ));
        }
        if !(0.0..0.9).contains(&self.spare_fraction) {
            return Err(invalid("SPARE_FRACTION", "must be within 0.0..0.9"));
        }
        let token_ttl = token_ttl("JOIN_TOKEN_TTL_SECS", self.join_token_ttl_secs)?;
        if !(self.max_tick_p95_ms.is_finite() && self.max_tick_p95_ms > 0.0) {
            return Err(invalid("MAX_TICK_P95_MS", "must be a positive number"));
        }
        if !(2..=600).contains(&self.heartbeat_ttl_secs) {
            return Err(invalid("HEARTBEAT_TTL_SECS", "must be within 2..=600"));
        }
        if !(50..=10_000).contains(&self.matchmake_deadline_ms) {
            return Err(invalid(
                "MATCHMAKE_DEADLINE_MS",
                "must be within 50..=10000",
            ));
        }
        let default_region = Region::parse(&self.default_region)
            .map_err(|e| invalid("DEFAULT_REGION", e.to_string()))?;
        let mut nearest_regions = std::collections::BTreeMap::new();
        for entry in self
            .region_neighbours
            .split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (region, neighbours) = entry
                .split_once('=')
                .ok_or_else(|| invalid("REGION_NEIGHBOURS", format!("{entry:?} lacks '='")))?;
            let region = Region::parse(region.trim())
                .map_err(|e| invalid("REGION_NEIGHBOURS", e.to_string()))?;
            let neighbours = neighbours
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| Region::parse(n).map_err(|e| invalid("REGION_NEIGHBOURS", e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            nearest_regions.insert(region, neighbours);
        }
        self.redis.validate()?;
        let internal_secret = self.internal_secret.validate()?;
        let policy = PlacementPolicy {
            soft_cap: self.room_soft_cap,
            hard_cap: self.room_hard_cap,
            spare_fraction: self.spare_fraction,
            default_region,
            nearest_regions,
            seat_reservation_ttl_ms: (token_ttl.as_millis() as u64) + 10_000,
            max_tick_p95_ms: self.max_tick_p95_ms,
            // Breach and any other built-in match mode, so quick play and lobbies work in
            // the fleet shape too (the arena's caps are ROOM_SOFT_CAP/ROOM_HARD_CAP above).
            modes: crate::modes::default_placement_caps(),
            ..PlacementPolicy::default()
        };
        Ok(crate::matchmaker::MatchmakerSettings {
            policy,
            token_ttl,
            heartbeat_ttl: Duration::from_secs(self.heartbeat_ttl_secs),
            internal_secret,
            matchmake_deadline: Duration::from_millis(self.matchmake_deadline_ms),
            cors_origins: parse_origins(&self.cors_origins)?,
        })
    }
}

/// A join-token lifetime: 5..=120 seconds.
pub fn token_ttl(variable: &'static str, seconds: u64) -> Result<Duration, ConfigError> {
    if !(5..=120).contains(&seconds) {
        return Err(invalid(variable, format!("{seconds} is outside 5..=120")));
    }
    Ok(Duration::from_secs(seconds))
}
