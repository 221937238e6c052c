//! Settings of the accounts API, from flags and environment variables, validated before any
//! socket is bound. [`AccountsArgs`] is flattened into `coil serve`; [`FleetAccountsArgs`]
//! (the same plus `DATABASE_URL`) into `coil matchmaker`. Tests build [`AccountsConfig`]
//! directly, so no test touches the process environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use coil_auth::{AccessTokenSettings, Argon2Settings, RateRule, TrustedProxies};

pub use coil_service::ConfigError;
use coil_service::{invalid, parse_flag};

/// Flags and environment of the accounts API (shared by `coil serve` and `coil matchmaker`).
#[derive(Debug, Clone, Args)]
pub struct AccountsArgs {
    /// Ed25519 seed (standard base64 of 32 bytes) that signs access tokens. Every API replica
    /// needs the same key. Unset in `coil serve`: generated into DATA_DIR/access-token.key.
    #[arg(
        long,
        env = "ACCESS_TOKEN_SIGNING_KEY",
        value_name = "ACCESS_TOKEN_SIGNING_KEY",
        hide_env_values = true
    )]
    pub access_token_signing_key: Option<String>,

    /// File holding the access-token seed (instead of ACCESS_TOKEN_SIGNING_KEY).
    #[arg(
        long,
        env = "ACCESS_TOKEN_SIGNING_KEY_FILE",
        value_name = "ACCESS_TOKEN_SIGNING_KEY_FILE"
    )]
    pub access_token_signing_key_file: Option<PathBuf>,

    /// Seconds an access token is valid (60..=86400).
    #[arg(
        long,
        env = "ACCESS_TOKEN_TTL_SECS",
        value_name = "ACCESS_TOKEN_TTL_SECS",
        default_value_t = 900
    )]
    pub access_token_ttl_secs: u64,

    /// Days a session lives without a refresh (1..=365); every refresh extends it.
    #[arg(
        long,
        env = "REFRESH_TOKEN_TTL_DAYS",
        value_name = "REFRESH_TOKEN_TTL_DAYS",
        default_value_t = 30
    )]
    pub refresh_token_ttl_days: u64,

    /// The `iss` claim of access tokens.
    #[arg(
        long,
        env = "TOKEN_ISSUER",
        value_name = "TOKEN_ISSUER",
        default_value = "coil"
    )]
    pub token_issuer: String,

    /// The `aud` claim of access tokens.
    #[arg(
        long,
        env = "TOKEN_AUDIENCE",
        value_name = "TOKEN_AUDIENCE",
        default_value = "coil-game"
    )]
    pub token_audience: String,

    /// Argon2id memory per hash in KiB (OWASP minimum 19456 = 19 MiB).
    #[arg(
        long,
        env = "ARGON2_MEMORY_KIB",
        value_name = "ARGON2_MEMORY_KIB",
        default_value_t = 19_456
    )]
    pub argon2_memory_kib: u32,

    /// Argon2id passes (OWASP minimum with 19 MiB: 2).
    #[arg(
        long,
        env = "ARGON2_ITERATIONS",
        value_name = "ARGON2_ITERATIONS",
        default_value_t = 2
    )]
    pub argon2_iterations: u32,

    /// Argon2id lanes.
    #[arg(
        long,
        env = "ARGON2_PARALLELISM",
        value_name = "ARGON2_PARALLELISM",
        default_value_t = 1
    )]
    pub argon2_parallelism: u32,

    /// Password hashes run at once (0 = half the cores, at least 1).
    #[arg(
        long,
        env = "ARGON2_MAX_CONCURRENT",
        value_name = "ARGON2_MAX_CONCURRENT",
        default_value_t = 0
    )]
    pub argon2_max_concurrent: usize,

    #[command(flatten)]
    pub node_limits: NodeLimitArgs,

    /// Allow POST /api/matchmake without an access token (arena play as an anonymous name).
    /// Default: on for `coil serve`; on for `coil matchmaker` unless DATABASE_URL is set.
    #[arg(long, env = "ALLOW_ANONYMOUS_MATCHMAKING", value_name = "ALLOW_ANONYMOUS_MATCHMAKING", value_parser = parse_flag)]
    pub allow_anonymous_matchmaking: Option<bool>,

    /// Registrations (and guest upgrades) per client address: N/DURATION or off.
    #[arg(
        long,
        env = "RATE_LIMIT_REGISTER_IP",
        value_name = "RATE_LIMIT_REGISTER_IP",
        default_value = "10/1h"
    )]
    pub rate_limit_register_ip: String,

    /// Login attempts per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_LOGIN_IP",
        value_name = "RATE_LIMIT_LOGIN_IP",
        default_value = "60/1m"
    )]
    pub rate_limit_login_ip: String,

    /// Login attempts per client address and username.
    #[arg(
        long,
        env = "RATE_LIMIT_LOGIN_IP_ACCOUNT",
        value_name = "RATE_LIMIT_LOGIN_IP_ACCOUNT",
        default_value = "5/1m"
    )]
    pub rate_limit_login_ip_account: String,

    /// Login attempts per username from anywhere (the slow window that ends a distributed
    /// guessing run and then lets the owner back in).
    #[arg(
        long,
        env = "RATE_LIMIT_LOGIN_ACCOUNT",
        value_name = "RATE_LIMIT_LOGIN_ACCOUNT",
        default_value = "20/15m"
    )]
    pub rate_limit_login_account: String,

    /// Guest logins per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_GUEST_IP",
        value_name = "RATE_LIMIT_GUEST_IP",
        default_value = "30/1h"
    )]
    pub rate_limit_guest_ip: String,

    /// Refreshes per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_REFRESH_IP",
        value_name = "RATE_LIMIT_REFRESH_IP",
        default_value = "120/1m"
    )]
    pub rate_limit_refresh_ip: String,

    /// Matchmakes per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_MATCHMAKE_IP",
        value_name = "RATE_LIMIT_MATCHMAKE_IP",
        default_value = "120/1m"
    )]
    pub rate_limit_matchmake_ip: String,

    /// Matchmakes per account.
    #[arg(
        long,
        env = "RATE_LIMIT_MATCHMAKE_ACCOUNT",
        value_name = "RATE_LIMIT_MATCHMAKE_ACCOUNT",
        default_value = "30/1m"
    )]
    pub rate_limit_matchmake_account: String,

    /// Prefix of the accounts keys in Redis (revocations, rate limits, events).
    #[arg(
        long,
        env = "ACCOUNTS_REDIS_KEY_PREFIX",
        value_name = "ACCOUNTS_REDIS_KEY_PREFIX",
        default_value = "coil:acct:"
    )]
    pub accounts_redis_key_prefix: String,
}

/// The limits a game node applies to its own routes (join attempts, leaderboard submissions)
/// and how it finds the client's address: part of [`AccountsArgs`] in `coil serve` and
/// `coil matchmaker`, and on its own in `coil node` (whose limiter is the fleet's Redis).
#[derive(Debug, Clone, Args)]
pub struct NodeLimitArgs {
    /// Proxies whose X-Forwarded-For entries are believed, comma separated addresses or CIDR
    /// ranges (e.g. 10.0.0.0/8). Empty: the TCP peer is the client.
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        value_name = "TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: String,

    /// Client addresses the per-address limits do not apply to (comma separated, CIDR).
    /// Default: loopback, so load tests and a local reverse proxy work; per-account limits
    /// still apply.
    #[arg(
        long,
        env = "RATE_LIMIT_EXEMPT",
        value_name = "RATE_LIMIT_EXEMPT",
        default_value = "127.0.0.0/8, ::1"
    )]
    pub rate_limit_exempt: String,

    /// Leaderboard submissions (POST /api/leaderboard) per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_LEADERBOARD_IP",
        value_name = "RATE_LIMIT_LEADERBOARD_IP",
        default_value = "30/1m"
    )]
    pub rate_limit_leaderboard_ip: String,

    /// WebSocket join attempts (GET /api/room/{room}) per client address.
    #[arg(
        long,
        env = "RATE_LIMIT_JOIN_IP",
        value_name = "RATE_LIMIT_JOIN_IP",
        default_value = "120/1m"
    )]
    pub rate_limit_join_ip: String,
}

impl NodeLimitArgs {
    pub fn validate(&self) -> Result<NodeLimitConfig, ConfigError> {
        let rule = |variable: &'static str, name: &'static str, text: &str| {
            RateRule::parse(name, text).map_err(|problem| invalid(variable, problem))
        };
        Ok(NodeLimitConfig {
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)
                .map_err(|problem| invalid("TRUSTED_PROXIES", problem))?,
            exempt: TrustedProxies::parse(&self.rate_limit_exempt)
                .map_err(|problem| invalid("RATE_LIMIT_EXEMPT", problem))?,
            leaderboard_ip: rule(
                "RATE_LIMIT_LEADERBOARD_IP",
                "leaderboard_ip",
                &self.rate_limit_leaderboard_ip,
            )?,
            join_ip: rule("RATE_LIMIT_JOIN_IP", "join_ip", &self.rate_limit_join_ip)?,
        })
    }
}

/// Validated [`NodeLimitArgs`].
#[derive(Debug, Clone)]
pub struct NodeLimitConfig {
    pub trusted_proxies: TrustedProxies,
    pub exempt: TrustedProxies,
    pub leaderboard_ip: Option<RateRule>,
    pub join_ip: Option<RateRule>,
}

/// `coil matchmaker`'s accounts settings: the shared ones plus the database.
#[derive(Debug, Clone, Args)]
pub struct FleetAccountsArgs {
    /// Accounts database (postgres://…; sqlite:… for a single replica). Unset: the accounts
    /// API is off and matchmaking is anonymous.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL")]
    pub database_url: Option<String>,

    #[command(flatten)]
    pub accounts: AccountsArgs,
}

/// Where the access-token signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningKeySource {
    /// Base64 seed from the environment (never printed).
    Inline(String),
    /// A file holding the seed; created on first start only in the all-in-one shape.
    File { path: PathBuf, create: bool },
}

/// Every rate rule; `None` is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub register_ip: Option<RateRule>,
    pub login_ip: Option<RateRule>,
    pub login_ip_account: Option<RateRule>,
    pub login_account: Option<RateRule>,
    pub guest_ip: Option<RateRule>,
    pub refresh_ip: Option<RateRule>,
    pub matchmake_ip: Option<RateRule>,
    pub matchmake_account: Option<RateRule>,
    pub leaderboard_ip: Option<RateRule>,
    pub join_ip: Option<RateRule>,
    /// Client addresses exempt from the per-address rules.
    pub exempt: TrustedProxies,
}

impl RateLimits {
    /// No limits at all (benchmarks that measure something else).
    pub fn off() -> RateLimits {
        RateLimits {
            register_ip: None,
            login_ip: None,
            login_ip_account: None,
            login_account: None,
            guest_ip: None,
            refresh_ip: None,
            matchmake_ip: None,
            matchmake_account: None,
            leaderboard_ip: None,
            join_ip: None,
            exempt: TrustedProxies::none(),
        }
    }
}

impl Default for RateLimits {
    /// The defaults of the flags above, with no exemption.
    fn default() -> RateLimits {
        let rule = |name, text| RateRule::parse(name, text).ok().flatten();
        RateLimits {
            register_ip: rule("register_ip", "10/1h"),
            login_ip: rule("login_ip", "60/1m"),
            login_ip_account: rule("login_ip_account", "5/1m"),
            login_account: rule("login_account", "20/15m"),
            guest_ip: rule("guest_ip", "30/1h"),
            refresh_ip: rule("refresh_ip", "120/1m"),
            matchmake_ip: rule("matchmake_ip", "120/1m"),
            matchmake_account: rule("matchmake_account", "30/1m"),
            leaderboard_ip: rule("leaderboard_ip", "30/1m"),
            join_ip: rule("join_ip", "120/1m"),
            exempt: TrustedProxies::none(),
        }
    }
}

/// A validated accounts configuration.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub signing_key: SigningKeySource,
    pub access: AccessTokenSettings,
    pub refresh_ttl: Duration,
    pub argon2: Argon2Settings,
    pub trusted_proxies: TrustedProxies,
    pub limits: RateLimits,
    pub allow_anonymous_matchmaking: bool,
    pub redis_key_prefix: String,
}

impl AccountsConfig {
    /// The all-in-one defaults (what `coil serve` runs with no accounts flags): the key
    /// generated into `data_dir`, OWASP-minimum Argon2id, the default limits with loopback
    /// exempt from the per-address ones, anonymous arena matchmaking on.
    pub fn all_in_one(data_dir: &std::path::Path) -> AccountsConfig {
        AccountsConfig {
            signing_key: SigningKeySource::File {
                path: data_dir.join("access-token.key"),
                create: true,
            },
            access: AccessTokenSettings::default(),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            argon2: Argon2Settings::default(),
            trusted_proxies: TrustedProxies::none(),
            limits: RateLimits {
                exempt: TrustedProxies::parse("127.0.0.0/8, ::1").unwrap_or_default(),
                ..RateLimits::default()
            },
            allow_anonymous_matchmaking: true,
            redis_key_prefix: "coil:acct:".to_owned(),
        }
    }

    /// For tests: a generated key file in `data_dir`, the cheapest Argon2 (named as such), no
    /// limits, anonymous matchmaking on.
    pub fn for_tests(data_dir: &std::path::Path) -> AccountsConfig {
        AccountsConfig {
            signing_key: SigningKeySource::File {
                path: data_dir.join("access-token.key"),
                create: true,
            },
            access: AccessTokenSettings::default(),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            argon2: Argon2Settings::insecure_fast_for_tests(),
            trusted_proxies: TrustedProxies::none(),
            limits: RateLimits::off(),
            allow_anonymous_matchmaking: true,
            redis_key_prefix: format!("coil-test:{:016x}:", rand::random::<u64>()),
        }
    }
}

impl AccountsArgs {
    /// Validates for a shape: `generated_key_file` is where the all-in-one keeps its key when
    /// none is configured (`None` in the fleet, where a key is required);
    /// `anonymous_by_default` is the shape's default for ALLOW_ANONYMOUS_MATCHMAKING.
    pub fn validate(
        &self,
        generated_key_file: Option<PathBuf>,
        anonymous_by_default: bool,
    ) -> Result<AccountsConfig, ConfigError> {
        let signing_key = match (
            &self.access_token_signing_key,
            &self.access_token_signing_key_file,
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "ACCESS_TOKEN_SIGNING_KEY",
                    "set either ACCESS_TOKEN_SIGNING_KEY or ACCESS_TOKEN_SIGNING_KEY_FILE, not both",
                ));
            }
            (Some(inline), None) => {
                coil_auth::AccessTokenSigner::from_seed_base64(
                    inline,
                    AccessTokenSettings::default(),
                )
                .map_err(|_| {
                    invalid(
                        "ACCESS_TOKEN_SIGNING_KEY",
                        "must be standard base64 of a 32-byte Ed25519 seed",
                    )
                })?;
                SigningKeySource::Inline(inline.trim().to_owned())
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    invalid(
                        "ACCESS_TOKEN_SIGNING_KEY_FILE",
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?;
                coil_auth::AccessTokenSigner::from_seed_base64(
                    &text,
                    AccessTokenSettings::default(),
                )
                .map_err(|_| {
                    invalid(
                        "ACCESS_TOKEN_SIGNING_KEY_FILE",
                        format!(
                            "{} must hold standard base64 of a 32-byte Ed25519 seed",
                            path.display()
                        ),
                    )
                })?;
                SigningKeySource::File {
                    path: path.clone(),
                    create: false,
                }
            }
            (None, None) => match generated_key_file {
                Some(path) => SigningKeySource::File { path, create: true },
                None => {
                    return Err(invalid(
                        "ACCESS_TOKEN_SIGNING_KEY",
                        "is required (or ACCESS_TOKEN_SIGNING_KEY_FILE); every API replica needs the same key",
                    ));
                }
            },
        };
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            return Err(invalid(
                "ACCESS_TOKEN_TTL_SECS",
                "must be within 60..=86400",
            ));
        }
        if !(1..=365).contains(&self.refresh_token_ttl_days) {
            return Err(invalid("REFRESH_TOKEN_TTL_DAYS", "must be within 1..=365"));
        }
        let claim_ok = |text: &str| {
            (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic())
        };
        if !claim_ok(&self.token_issuer) {
            return Err(invalid(
                "TOKEN_ISSUER",
                "use 1-64 printable ASCII characters",
            ));
        }
        if !claim_ok(&self.token_audience) {
            return Err(invalid(
                "TOKEN_AUDIENCE",
                "use 1-64 printable ASCII characters",
            ));
        }
        if !(8..=4 * 1024 * 1024).contains(&self.argon2_memory_kib) {
            return Err(invalid("ARGON2_MEMORY_KIB", "must be within 8..=4194304"));
        }
        if !(1..=64).contains(&self.argon2_iterations) {
            return Err(invalid("ARGON2_ITERATIONS", "must be within 1..=64"));
        }
        if !(1..=16).contains(&self.argon2_parallelism) {
            return Err(invalid("ARGON2_PARALLELISM", "must be within 1..=16"));
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism {
            return Err(invalid(
                "ARGON2_MEMORY_KIB",
                "must be at least 8 x ARGON2_PARALLELISM",
            ));
        }
        if self.argon2_max_concurrent > 1024 {
            return Err(invalid("ARGON2_MAX_CONCURRENT", "must be at most 1024"));
        }
        let defaults = Argon2Settings::default();
        let argon2 = Argon2Settings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
            max_concurrent: if self.argon2_max_concurrent == 0 {
                defaults.max_concurrent
            } else {
                self.argon2_max_concurrent
            },
            max_waiting: defaults.max_waiting,
        };
        let NodeLimitConfig {
            trusted_proxies,
            exempt,
            leaderboard_ip,
            join_ip,
        } = self.node_limits.validate()?;
        let rule = |variable: &'static str, name: &'static str, text: &str| {
            RateRule::parse(name, text).map_err(|problem| invalid(variable, problem))
        };
        let limits = RateLimits {
            register_ip: rule(
                "RATE_LIMIT_REGISTER_IP",
                "register_ip",
                &self.rate_limit_register_ip,
            )?,
            login_ip: rule("RATE_LIMIT_LOGIN_IP", "login_ip", &self.rate_limit_login_ip)?,
            login_ip_account: rule(
                "RATE_LIMIT_LOGIN_IP_ACCOUNT",
                "login_ip_account",
                &self.rate_limit_login_ip_account,
            )?,
            login_account: rule(
                "RATE_LIMIT_LOGIN_ACCOUNT",
                "login_account",
                &self.rate_limit_login_account,
            )?,
            guest_ip: rule("RATE_LIMIT_GUEST_IP", "guest_ip", &self.rate_limit_guest_ip)?,
            refresh_ip: rule(
                "RATE_LIMIT_REFRESH_IP",
                "refresh_ip",
                &self.rate_limit_refresh_ip,
            )?,
            matchmake_ip: rule(
                "RATE_LIMIT_MATCHMAKE_IP",
                "matchmake_ip",
                &self.rate_limit_matchmake_ip,
            )?,
            matchmake_account: rule(
                "RATE_LIMIT_MATCHMAKE_ACCOUNT",
                "matchmake_account",
                &self.rate_limit_matchmake_account,
            )?,
            leaderboard_ip,
            join_ip,
            exempt,
        };
        let prefix = &self.accounts_redis_key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || prefix.contains(char::is_whitespace) {
            return Err(invalid(
                "ACCOUNTS_REDIS_KEY_PREFIX",
                "use 1-64 characters without spaces",
            ));
        }
        Ok(AccountsConfig {
            signing_key,
            access: AccessTokenSettings {
                issuer: self.token_issuer.clone(),
                audience: self.token_audience.clone(),
                ttl: Duration::from_secs(self.access_token_ttl_secs),
                leeway: AccessTokenSettings::default().leeway,
            },
            refresh_ttl: Duration::from_secs(self.refresh_token_ttl_days * 24 * 3600),
            argon2,
            trusted_proxies,
            limits,
            allow_anonymous_matchmaking: self
                .allow_anonymous_matchmaking
                .unwrap_or(anonymous_by_default),
            redis_key_prefix: prefix.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        accounts: AccountsArgs,
    }

    fn parse(args: &[&str], generated: Option<PathBuf>) -> Result<AccountsConfig, String> {
        let mut full = vec!["coil"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
        cli.accounts
            .validate(generated, true)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_valid_in_the_all_in_one_shape() {
        let config = parse(&[], Some(PathBuf::from("data/access-token.key"))).unwrap();
        assert_eq!(config.access.ttl, Duration::from_secs(900));
        assert_eq!(config.argon2.memory_kib, 19_456);
        assert_eq!(config.argon2.iterations, 2);
        assert!(config.allow_anonymous_matchmaking);
        assert_eq!(
            config.limits.login_account.unwrap().period,
            Duration::from_secs(900)
        );
        assert!(matches!(
            config.signing_key,
            SigningKeySource::File { create: true, .. }
        ));
    }

    #[test]
    fn the_fleet_needs_a_key_and_bad_values_name_their_variable() {
        let error = parse(&[], None).unwrap_err();
        assert!(error.contains("ACCESS_TOKEN_SIGNING_KEY"), "{error}");
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert!(parse(&["--access-token-signing-key", key], None).is_ok());
        let cases: &[(&[&str], &str)] = &[
            (
                &["--access-token-signing-key", "short"],
                "ACCESS_TOKEN_SIGNING_KEY",
            ),
            (
                &["--access-token-signing-key-file", "/nonexistent/key"],
                "ACCESS_TOKEN_SIGNING_KEY_FILE",
            ),
            (&["--access-token-ttl-secs", "5"], "ACCESS_TOKEN_TTL_SECS"),
            (&["--refresh-token-ttl-days", "0"], "REFRESH_TOKEN_TTL_DAYS"),
            (&["--argon2-memory-kib", "1"], "ARGON2_MEMORY_KIB"),
            (&["--argon2-iterations", "0"], "ARGON2_ITERATIONS"),
            (&["--trusted-proxies", "10.0.0.0/40"], "TRUSTED_PROXIES"),
            (&["--rate-limit-login-ip", "lots"], "RATE_LIMIT_LOGIN_IP"),
            (&["--rate-limit-join-ip", "0/1m"], "RATE_LIMIT_JOIN_IP"),
            (&["--token-audience", ""], "TOKEN_AUDIENCE"),
            (
                &["--allow-anonymous-matchmaking", "maybe"],
                "ALLOW_ANONYMOUS_MATCHMAKING",
            ),
        ];
        for (args, variable) in cases {
            let error = parse(args, Some(PathBuf::from("k"))).unwrap_err();
            assert!(error.contains(variable), "{args:?} gave {error:?}");
        }
    }

    #[test]
    fn limits_can_be_switched_off() {
        let config = parse(
            &[
                "--rate-limit-matchmake-ip",
                "off",
                "--rate-limit-exempt",
                "",
            ],
            Some(PathBuf::from("k")),
        )
        .unwrap();
        assert_eq!(config.limits.matchmake_ip, None);
        assert!(config.limits.exempt.is_empty());
    }
}
