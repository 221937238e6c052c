//! The command line of `coil loadtest` and its validation into a bounded [`Plan`].
//!
//! Every run is bounded before it starts: a player count and a duration are always set (by
//! default or by hand), both have hard upper limits, and targets outside loopback are refused
//! unless `--allow-remote` is given. Validation is a pure function so tests never need a
//! process environment.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Most simulated players one run may hold.
pub const MAX_PLAYERS: usize = 20_000;
/// Most placements one matchmake-burst run may ask for.
pub const MAX_PLACEMENTS: usize = 200_000;
/// Fastest --input-hz: the node's sustained frame rate per client (`session.rs`
/// FRAMES_PER_SECOND); above it the node would close the connection for flooding.
pub const MAX_INPUT_HZ: u32 = 120;
/// Longest a run may last, ramp and warm-up included.
pub const MAX_RUN: Duration = Duration::from_secs(3_600);

/// A named workload (see docs/loadtest.md and the design's targets page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N players in fixed rooms who steer, boost, die, respawn and sometimes leave and rejoin;
    /// measured over a window after a warm-up.
    ArenaStandard,
    /// Rooms of players added one step at a time until the node breaks its tick budget or
    /// runs out of CPU (same as --find-capacity).
    ArenaCapacity,
    /// --players placements through --matchmaker, sent at an even rate over --ramp seconds
    /// (open loop: arrivals do not wait for answers); with --join each placed player also
    /// joins its room with the token, waits for the first frame and leaves.
    MatchmakeBurst,
    /// Breach matches of 8 simulated players placed by the matchmaker (mode "breach"), who
    /// move, aim and fire in bursts with one input per tick while moving, vote to stay at the
    /// scoreboard and sometimes drop and resume; reports match completion besides the
    /// arena-standard figures. With --find-capacity: breach-capacity.
    Breach,
    /// Breach matches added --step-matches at a time until the node breaks its tick budget or
    /// runs out of CPU; reports matches and players per server core (same as --scenario
    /// breach --find-capacity).
    BreachCapacity,
}

impl Scenario {
    /// The game the scenario plays (none for the matchmake burst, which only places).
    pub fn game(self) -> Game {
        match self {
            Scenario::Breach | Scenario::BreachCapacity => Game::Breach,
            Scenario::ArenaStandard | Scenario::ArenaCapacity | Scenario::MatchmakeBurst => {
                Game::Arena
            }
        }
    }
}

/// The game simulated players play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Game {
    Arena,
    Breach,
}

impl Game {
    /// The mode name the node and the matchmaker use (the label of its metrics).
    pub fn mode_name(self) -> &'static str {
        match self {
            Game::Arena => "arena",
            Game::Breach => "breach",
        }
    }

    /// The mode's tick: the capacity finder's budgets are fractions of it.
    pub fn tick(self) -> Duration {
        match self {
            Game::Arena => Duration::from_millis(50),
            Game::Breach => Duration::from_micros(1_000_000 / BREACH_TICK_RATE),
        }
    }
}

/// Breach's tick rate (coil-breach's `TICK_RATE`; the Init frame says it again).
const BREACH_TICK_RATE: u64 = 30;
/// Players in one breach match (two teams of four; coil-breach's `MAX_SLOTS`).
pub const BREACH_MATCH_PLAYERS: usize = 8;

/// Flags of `coil loadtest`.
#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Base URL of the game node (HTTP; WebSockets go to ws://<same host>/api/room/<room>).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8787")]
    pub url: String,

    /// Allow a target outside loopback (127.0.0.0/8, ::1, localhost). Only point this at
    /// servers you run: it opens thousands of connections.
    #[arg(long)]
    pub allow_remote: bool,

    /// Join through this matchmaker (POST <URL>/api/matchmake, then a v12 join with its token)
    /// instead of connecting to rooms of --url directly. --url still names the node whose
    /// /metrics are read. Same loopback rule as --url.
    #[arg(long, value_name = "URL")]
    pub matchmaker: Option<String>,

    /// Workload to run. arena-capacity is the same as --find-capacity.
    #[arg(long, value_enum, default_value = "arena-standard")]
    pub scenario: Scenario,

    /// Add rooms of players step by step until the node breaks its tick budget or runs out of
    /// CPU, and report players per server core (the arena-capacity scenario).
    #[arg(long)]
    pub find_capacity: bool,

    /// Simulated players (arena-standard, breach: a multiple of 8 makes full matches; upper
    /// bound 20000), or placements (matchmake-burst; upper bound 200000).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub players: usize,

    /// Rooms the players are spread over, round-robin (arena-standard).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub rooms: usize,

    /// Room names are <prefix>-<number>. Use a fresh prefix to start from empty rooms.
    #[arg(long, value_name = "PREFIX", default_value = "lt")]
    pub room_prefix: String,

    /// Seconds over which joins are spread (in --find-capacity: per added room; in
    /// matchmake-burst: the placements are sent at players / ramp per second).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub ramp: f64,

    /// Seconds after the ramp before measuring starts (arena-standard).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub warmup: f64,

    /// Seconds of measurement after the warm-up (arena-standard). Ramp + warm-up + duration
    /// is at most 3600.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub duration: f64,

    /// Fraction of players that leave and rejoin per minute (0.05 = 5%; 60 = each player about
    /// once a second). Breach players drop the connection and resume their seat.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.05)]
    pub leave_per_minute: f64,

    /// Fraction of the time a player boosts.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.10)]
    pub boost_fraction: f64,

    /// Seconds a dead player waits before asking to respawn.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub respawn_delay: f64,

    /// Worst case: arena players send an input this many times a second while alive, changed
    /// or not, instead of the browser client's rule (the default: at most one per server tick,
    /// only when the aim changed). E.g. 60 for a client that sends on every animation frame;
    /// 1 to 120.
    #[arg(long, value_name = "HZ")]
    pub input_hz: Option<u32>,

    /// Players added per step with --find-capacity (one new room per step; server bots top
    /// each room up).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub room_size: usize,

    /// Breach matches (8 players each) added per --find-capacity step.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub step_matches: usize,

    /// Seconds each --find-capacity step is held and measured, after its ramp and 2 s settle.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub step: f64,

    /// Most players --find-capacity adds before it stops (upper bound 20000).
    #[arg(long, value_name = "N", default_value_t = MAX_PLAYERS)]
    pub max_players: usize,

    /// Cores the server may use; --find-capacity stops when it burns 95% of them.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub server_cores: f64,

    /// Read the server's CPU-seconds and RSS from /proc/PID (same machine) instead of its
    /// /metrics, whose CPU counter has whole-second resolution. Use for capacity runs.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Seed for the players' random choices (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress lines on stderr (the final table is still printed).
    #[arg(long)]
    pub quiet: bool,

    /// matchmake-burst: also connect to each placed room, join with the token, wait for the
    /// first frame and leave (end-to-end join latency; the seats are confirmed, then freed).
    #[arg(long)]
    pub join: bool,

    /// matchmake-burst: most placements in flight at once. An arrival finding all of them busy
    /// is not sent and is reported as such (the generator, not the matchmaker, was the limit).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub concurrency: usize,
}

impl Default for LoadtestArgs {
    /// The defaults of the command line (arena-standard, 100 players, 1 room, 30 s + 60 s).
    fn default() -> Self {
        LoadtestArgs {
            url: "http://127.0.0.1:8787".into(),
            allow_remote: false,
            matchmaker: None,
            scenario: Scenario::ArenaStandard,
            find_capacity: false,
            players: 100,
            rooms: 1,
            room_prefix: "lt".into(),
            ramp: 5.0,
            warmup: 30.0,
            duration: 60.0,
            leave_per_minute: 0.05,
            boost_fraction: 0.10,
            respawn_delay: 2.0,
            input_hz: None,
            room_size: 100,
            step_matches: 10,
            step: 15.0,
            max_players: MAX_PLAYERS,
            server_cores: 1.0,
            server_pid: None,
            seed: None,
            json: None,
            quiet: false,
            join: false,
            concurrency: 1024,
        }
    }
}

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgsError {
    #[error(
        "refusing to load {host}: it is not loopback (127.0.0.0/8, ::1, localhost); pass --allow-remote if you run that server"
    )]
    RemoteTarget { host: String },
    #[error("--url {url}: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("--{flag}: {problem}")]
    OutOfRange { flag: &'static str, problem: String },
}

fn out_of_range(flag: &'static str, problem: impl Into<String>) -> ArgsError {
    ArgsError::OutOfRange {
        flag,
        problem: problem.into(),
    }
}

/// What the players do, shared by both scenarios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub leave_per_minute: f64,
    pub boost_fraction: f64,
    pub respawn_delay: Duration,
    /// Arena: send an input at this rate, changed or not, instead of the tick rule
    /// (--input-hz).
    pub input_hz: Option<u32>,
}

/// A validated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub scenario: Scenario,
    /// `http://host:port` without a trailing slash.
    pub http_base: String,
    /// `ws://host:port` without a trailing slash.
    pub ws_base: String,
    pub room_prefix: String,
    pub behaviour: Behaviour,
    pub seed: u64,
    pub server_pid: Option<u32>,
    pub json: Option<PathBuf>,
    pub quiet: bool,
    pub mode: Mode,
    /// The game the players play.
    pub game: Game,
    /// `http://host:port` of the matchmaker to join through, if any (always for breach:
    /// --url's own when not given, as `coil serve` runs one on the node's port).
    pub matchmaker: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Standard {
        players: usize,
        rooms: usize,
        ramp: Duration,
        warmup: Duration,
        duration: Duration,
    },
    Capacity {
        /// Players per room (breach: 8, one match).
        room_size: usize,
        /// Rooms added per step (arena: 1; breach: --step-matches).
        rooms_per_step: usize,
        ramp: Duration,
        step: Duration,
        max_players: usize,
        server_cores: f64,
    },
    Burst {
        placements: usize,
        over: Duration,
        join: bool,
        concurrency: usize,
    },
}

fn seconds(flag: &'static str, value: f64, min: f64) -> Result<Duration, ArgsError> {
    if !value.is_finite() || value < min || value > MAX_RUN.as_secs_f64() {
        return Err(out_of_range(
            flag,
            format!(
                "{value} is not between {min} and {} seconds",
                MAX_RUN.as_secs()
            ),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Is this URL host (as `Url::host_str` gives it, IPv6 in brackets) loopback? Names other
/// than "localhost" are not resolved: a name that resolves to loopback today may not tomorrow.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

impl LoadtestArgs {
    /// Checks every bound and turns the flags into a [`Plan`].
    pub fn plan(&self) -> Result<Plan, ArgsError> {
        let url = reqwest::Url::parse(&self.url).map_err(|error| ArgsError::BadUrl {
            url: self.url.clone(),
            problem: error.to_string(),
        })?;
        let ws_scheme = match url.scheme() {
            "http" | "ws" => "ws",
            other => {
                return Err(ArgsError::BadUrl {
                    url: self.url.clone(),
                    problem: format!(
                        "scheme {other} is not supported (http:// or ws://; this build speaks no TLS)"
                    ),
                });
            }
        };
        let host = url.host_str().ok_or_else(|| ArgsError::BadUrl {
            url: self.url.clone(),
            problem: "no host".into(),
        })?;
        if !self.allow_remote && !is_loopback_host(host) {
            return Err(ArgsError::RemoteTarget { host: host.into() });
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let matchmaker = match &self.matchmaker {
            None => None,
            Some(raw) => {
                let parsed = reqwest::Url::parse(raw).map_err(|error| ArgsError::BadUrl {
                    url: raw.clone(),
                    problem: error.to_string(),
                })?;
                let mm_host = parsed.host_str().ok_or_else(|| ArgsError::BadUrl {
                    url: raw.clone(),
                    problem: "no host".into(),
                })?;
                if parsed.scheme() != "http" {
                    return Err(ArgsError::BadUrl {
                        url: raw.clone(),
                        problem: "the matchmaker URL must be http:// (this build speaks no TLS)"
                            .into(),
                    });
                }
                if !self.allow_remote && !is_loopback_host(mm_host) {
                    return Err(ArgsError::RemoteTarget {
                        host: mm_host.into(),
                    });
                }
                let mm_port = parsed.port_or_known_default().unwrap_or(80);
                Some(format!("http://{mm_host}:{mm_port}"))
            }
        };
        if self.room_prefix.is_empty()
            || self.room_prefix.len() > 20
            || !self
                .room_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(out_of_range(
                "room-prefix",
                "1 to 20 letters, digits, '-' or '_' (room names are at most 32 characters)",
            ));
        }
        if !(0.0..=120.0).contains(&self.leave_per_minute) {
            return Err(out_of_range("leave-per-minute", "between 0 and 120"));
        }
        if !(0.0..=1.0).contains(&self.boost_fraction) {
            return Err(out_of_range("boost-fraction", "between 0 and 1"));
        }
        let game = self.scenario.game();
        if let Some(hz) = self.input_hz {
            if !(1..=MAX_INPUT_HZ).contains(&hz) {
                return Err(out_of_range(
                    "input-hz",
                    format!(
                        "{hz} is not between 1 and {MAX_INPUT_HZ} inputs per second (the node's \
                         frame limit per client)"
                    ),
                ));
            }
            if game == Game::Breach {
                return Err(out_of_range(
                    "input-hz",
                    "applies to the arena only (breach players send one input per tick)",
                ));
            }
        }
        let behaviour = Behaviour {
            leave_per_minute: self.leave_per_minute,
            boost_fraction: self.boost_fraction,
            respawn_delay: seconds("respawn-delay", self.respawn_delay, 0.0)?,
            input_hz: self.input_hz,
        };
        let capacity = self.find_capacity
            || matches!(
                self.scenario,
                Scenario::ArenaCapacity | Scenario::BreachCapacity
            );
        let burst = self.scenario == Scenario::MatchmakeBurst;
        // Breach rooms are placed by the matchmaker (the mode travels in the matchmake body);
        // `coil serve` answers matchmakes on the node's own port.
        let matchmaker = match (game, matchmaker) {
            (Game::Breach, None) => Some(format!("http://{authority}")),
            (_, matchmaker) => matchmaker,
        };
        let mode = if burst {
            if capacity {
                return Err(out_of_range(
                    "find-capacity",
                    "is another scenario than matchmake-burst",
                ));
            }
            if matchmaker.is_none() {
                return Err(out_of_range(
                    "matchmaker",
                    "matchmake-burst needs the matchmaker's URL",
                ));
            }
            if self.players == 0 || self.players > MAX_PLACEMENTS {
                return Err(out_of_range(
                    "players",
                    format!("between 1 and {MAX_PLACEMENTS} placements"),
                ));
            }
            if self.concurrency == 0 || self.concurrency > 20_000 {
                return Err(out_of_range("concurrency", "between 1 and 20000"));
            }
            Mode::Burst {
                placements: self.players,
                over: seconds("ramp", self.ramp, 0.0)?,
                join: self.join,
                concurrency: self.concurrency,
            }
        } else if capacity {
            let (room_size, rooms_per_step) = match game {
                Game::Arena => {
                    if self.room_size == 0 || self.room_size > 1_000 {
                        return Err(out_of_range("room-size", "between 1 and 1000"));
                    }
                    (self.room_size, 1)
                }
                Game::Breach => {
                    if self.step_matches == 0 || self.step_matches > 500 {
                        return Err(out_of_range("step-matches", "between 1 and 500"));
                    }
                    (BREACH_MATCH_PLAYERS, self.step_matches)
                }
            };
            if self.max_players == 0 || self.max_players > MAX_PLAYERS {
                return Err(out_of_range(
                    "max-players",
                    format!("between 1 and {MAX_PLAYERS}"),
                ));
            }
            if !(self.server_cores > 0.0 && self.server_cores <= 512.0) {
                return Err(out_of_range("server-cores", "between 0 and 512"));
            }
            Mode::Capacity {
                room_size,
                rooms_per_step,
                ramp: seconds("ramp", self.ramp, 0.0)?,
                step: seconds("step", self.step, 1.0)?,
                max_players: self.max_players,
                server_cores: self.server_cores,
            }
        } else {
            if self.players == 0 || self.players > MAX_PLAYERS {
                return Err(out_of_range(
                    "players",
                    format!("between 1 and {MAX_PLAYERS}"),
                ));
            }
            // Breach players go where the matchmaker puts them: 8 to a match.
            let rooms = match game {
                Game::Arena => self.rooms,
                Game::Breach => self.players.div_ceil(BREACH_MATCH_PLAYERS),
            };
            if rooms == 0 || rooms > self.players {
                return Err(out_of_range("rooms", "between 1 and --players"));
            }
            let ramp = seconds("ramp", self.ramp, 0.0)?;
            let warmup = seconds("warmup", self.warmup, 0.0)?;
            let duration = seconds("duration", self.duration, 0.5)?;
            if ramp + warmup + duration > MAX_RUN {
                return Err(out_of_range(
                    "duration",
                    "ramp + warm-up + duration must be at most 3600 seconds",
                ));
            }
            Mode::Standard {
                players: self.players,
                rooms,
                ramp,
                warmup,
                duration,
            }
        };
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64)
        });
        Ok(Plan {
            scenario: match (burst, capacity, game) {
                (true, _, _) => Scenario::MatchmakeBurst,
                (false, true, Game::Arena) => Scenario::ArenaCapacity,
                (false, true, Game::Breach) => Scenario::BreachCapacity,
                (false, false, Game::Arena) => Scenario::ArenaStandard,
                (false, false, Game::Breach) => Scenario::Breach,
            },
            game,
            http_base: format!("http://{authority}"),
            ws_base: format!("{ws_scheme}://{authority}"),
            room_prefix: self.room_prefix.clone(),
            behaviour,
            seed,
            server_pid: self.server_pid,
            json: self.json.clone(),
            quiet: self.quiet,
            matchmaker,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> LoadtestArgs {
        LoadtestArgs {
            url: url.into(),
            ..LoadtestArgs::default()
        }
    }

    #[test]
    fn loopback_targets_are_accepted() {
        for url in [
            "http://127.0.0.1:8787",
            "http://127.1.2.3:9",
            "http://localhost:8787/",
            "http://LOCALHOST",
            "http://[::1]:8787",
            "ws://127.0.0.1:8787",
        ] {
            let plan = args(url).plan().unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(plan.ws_base.starts_with("ws://"), "{}", plan.ws_base);
        }
        assert_eq!(
            args("http://[::1]:8787").plan().unwrap().http_base,
            "http://[::1]:8787"
        );
    }

    #[test]
    fn remote_targets_need_allow_remote() {
        for url in [
            "http://10.0.0.1:8787",
            "http://example.com",
            "http://localhost.example.com",
            "http://[2001:db8::1]:80",
            "http://0.0.0.0:8787",
        ] {
            let error = args(url).plan().unwrap_err();
            assert!(
                matches!(error, ArgsError::RemoteTarget { .. }),
                "{url}: {error}"
            );
            let allowed = LoadtestArgs {
                allow_remote: true,
                ..args(url)
            };
            assert!(allowed.plan().is_ok(), "{url} with --allow-remote");
        }
    }

    #[test]
    fn matchmake_burst_needs_a_matchmaker_and_bounds() {
        let burst = |players, matchmaker: Option<&str>| LoadtestArgs {
            scenario: Scenario::MatchmakeBurst,
            players,
            ramp: 2.0,
            matchmaker: matchmaker.map(str::to_owned),
            ..LoadtestArgs::default()
        };
        let plan = burst(50_000, Some("http://127.0.0.1:8788")).plan().unwrap();
        assert_eq!(plan.scenario, Scenario::MatchmakeBurst);
        assert_eq!(
            plan.mode,
            Mode::Burst {
                placements: 50_000,
                over: Duration::from_secs(2),
                join: false,
                concurrency: 1024
            }
        );
        assert!(burst(50_000, None).plan().is_err());
        assert!(
            burst(MAX_PLACEMENTS + 1, Some("http://127.0.0.1:8788"))
                .plan()
                .is_err()
        );
        assert!(
            burst(10, Some("http://10.1.2.3:8788")).plan().is_err(),
            "loopback only"
        );
    }

    #[test]
    fn bounds_are_enforced() {
        let too_many = LoadtestArgs {
            players: MAX_PLAYERS + 1,
            ..LoadtestArgs::default()
        };
        assert!(too_many.plan().is_err());
        let too_long = LoadtestArgs {
            duration: 3_590.0,
            ..LoadtestArgs::default()
        };
        assert!(too_long.plan().is_err());
        let no_time = LoadtestArgs {
            duration: 0.0,
            ..LoadtestArgs::default()
        };
        assert!(no_time.plan().is_err());
        let nan = LoadtestArgs {
            warmup: f64::NAN,
            ..LoadtestArgs::default()
        };
        assert!(nan.plan().is_err());
        let rooms = LoadtestArgs {
            rooms: 101,
            ..LoadtestArgs::default()
        };
        assert!(rooms.plan().is_err());
        let https = args("https://127.0.0.1");
        assert!(matches!(https.plan(), Err(ArgsError::BadUrl { .. })));
        let bad_prefix = LoadtestArgs {
            room_prefix: "a/b".into(),
            ..LoadtestArgs::default()
        };
        assert!(bad_prefix.plan().is_err());
    }

    #[test]
    fn input_hz_is_bounded_and_reaches_the_players() {
        let with_hz = |hz| LoadtestArgs {
            input_hz: Some(hz),
            ..LoadtestArgs::default()
        };
        for refused in [0, 121, 1_000] {
            let message = with_hz(refused).plan().unwrap_err().to_string();
            assert!(
                message.contains("--input-hz") && message.contains("between 1 and 120"),
                "{refused}: {message}"
            );
        }
        for accepted in [1, 60, 120] {
            assert_eq!(
                with_hz(accepted).plan().unwrap().behaviour.input_hz,
                Some(accepted)
            );
        }
        assert_eq!(
            LoadtestArgs::default().plan().unwrap().behaviour.input_hz,
            None
        );
        let breach = LoadtestArgs {
            scenario: Scenario::Breach,
            players: 8,
            ..with_hz(60)
        };
        assert!(
            breach
                .plan()
                .unwrap_err()
                .to_string()
                .contains("arena only")
        );

        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: LoadtestArgs,
        }
        let parsed = Cli::try_parse_from(["loadtest", "--input-hz", "60"])
            .unwrap()
            .args;
        assert_eq!(parsed.plan().unwrap().behaviour.input_hz, Some(60));
    }

    #[test]
    fn capacity_scenario_and_flag_mean_the_same() {
        let by_flag = LoadtestArgs {
            find_capacity: true,
            ..LoadtestArgs::default()
        };
        let by_scenario = LoadtestArgs {
            scenario: Scenario::ArenaCapacity,
            ..LoadtestArgs::default()
        };
        let flag_plan = by_flag.plan().unwrap();
        assert_eq!(flag_plan.mode, by_scenario.plan().unwrap().mode);
        assert!(matches!(
            flag_plan.mode,
            Mode::Capacity { room_size: 100, .. }
        ));
    }

    #[test]
    fn breach_goes_through_the_matchmaker_in_matches_of_eight() {
        let breach = LoadtestArgs {
            scenario: Scenario::Breach,
            players: 16,
            ..LoadtestArgs::default()
        };
        let plan = breach.plan().unwrap();
        assert_eq!(plan.game, Game::Breach);
        assert_eq!(plan.scenario, Scenario::Breach);
        assert_eq!(plan.matchmaker.as_deref(), Some("http://127.0.0.1:8787"));
        assert!(matches!(plan.mode, Mode::Standard { rooms: 2, .. }));
        let capacity = LoadtestArgs {
            find_capacity: true,
            step_matches: 25,
            ..breach.clone()
        }
        .plan()
        .unwrap();
        assert_eq!(capacity.scenario, Scenario::BreachCapacity);
        assert!(matches!(
            capacity.mode,
            Mode::Capacity {
                room_size: 8,
                rooms_per_step: 25,
                ..
            }
        ));
        let by_name = LoadtestArgs {
            scenario: Scenario::BreachCapacity,
            ..LoadtestArgs::default()
        };
        assert_eq!(by_name.plan().unwrap().scenario, Scenario::BreachCapacity);
        let no_matches = LoadtestArgs {
            step_matches: 0,
            ..by_name
        };
        assert!(no_matches.plan().is_err());
        assert_eq!(Game::Breach.tick(), Duration::from_micros(33_333));
    }

    #[test]
    fn defaults_match_the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: LoadtestArgs,
        }
        let parsed = Cli::try_parse_from(["loadtest"]).unwrap().args;
        let plan = parsed.plan().unwrap();
        let mut expected = LoadtestArgs::default().plan().unwrap();
        expected.seed = plan.seed;
        assert_eq!(plan, expected);
    }
}
