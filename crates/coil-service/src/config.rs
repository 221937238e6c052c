//! Configuration pieces every command shares: the error that names a variable, the flag
//! parser, and the flag groups that several commands flatten (`#[command(flatten)]`) instead
//! of each declaring its own copy.

use clap::Args;

/// A configuration value that is out of range. Its message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// A [`ConfigError`] for `variable`.
pub fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// A boolean setting: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`/empty.
pub fn parse_flag(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("expected 0 or 1, got {other:?}")),
    }
}

/// The Redis that holds the room directory, as nodes, matchmakers and the autoscaler name it.
#[derive(Debug, Clone, Args)]
pub struct DirectoryRedisArgs {
    /// Redis holding the room directory (the same for every node, matchmaker and the
    /// autoscaler), e.g. redis://10.0.0.5:6379.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL")]
    pub redis_url: String,

    /// Prefix of every directory key in Redis (the same for every node, matchmaker and the
    /// autoscaler of one fleet).
    #[arg(
        long,
        env = "REDIS_KEY_PREFIX",
        value_name = "REDIS_KEY_PREFIX",
        default_value = "coil:dir:"
    )]
    pub redis_key_prefix: String,
}

impl DirectoryRedisArgs {
    /// Checks the URL's scheme and the prefix (non-empty, printable, no spaces).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.redis_url.trim();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(invalid(
                "REDIS_URL",
                "must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379",
            ));
        }
        let prefix = &self.redis_key_prefix;
        if prefix.is_empty() || prefix.len() > 64 || !prefix.chars().all(|c| c.is_ascii_graphic()) {
            return Err(invalid(
                "REDIS_KEY_PREFIX",
                "must be 1..=64 printable characters without spaces, e.g. coil:dir:",
            ));
        }
        Ok(())
    }
}

/// Shortest accepted internal secret.
pub const MIN_SECRET_LEN: usize = 16;

/// The shared secret of the fleet's `/internal/*` endpoints (node drain/evict, the
/// matchmaker's room heartbeat), which the autoscaler and nodes present as a bearer token.
#[derive(Debug, Clone, Args)]
pub struct InternalSecretArgs {
    /// Shared secret (Authorization: Bearer …) of the fleet's /internal/* endpoints: a node's
    /// /internal/drain and /internal/evict (the autoscaler calls them), the matchmaker's
    /// /internal/room-heartbeat. At least 16 characters. Unset on a node or matchmaker: those
    /// endpoints are off (404).
    #[arg(
        long,
        env = "INTERNAL_SECRET",
        value_name = "INTERNAL_SECRET",
        hide_env_values = true
    )]
    pub internal_secret: Option<String>,

    /// File holding INTERNAL_SECRET (a systemd credential, a Kubernetes secret volume), instead
    /// of the value itself.
    #[arg(
        long,
        env = "INTERNAL_SECRET_FILE",
        value_name = "INTERNAL_SECRET_FILE"
    )]
    pub internal_secret_file: Option<std::path::PathBuf>,
}

impl InternalSecretArgs {
    /// The secret if set (the value, else the file's trimmed contents), checked for length.
    pub fn validate(&self) -> Result<Option<String>, ConfigError> {
        let secret = match (&self.internal_secret, &self.internal_secret_file) {
            (Some(secret), _) => secret.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|error| {
                    invalid(
                        "INTERNAL_SECRET_FILE",
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(invalid(
                "INTERNAL_SECRET",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        Ok(Some(secret))
    }

    /// The secret, which this command cannot run without (`why` says what for).
    pub fn require(&self, why: &str) -> Result<String, ConfigError> {
        self.validate()?.ok_or_else(|| {
            invalid(
                "INTERNAL_SECRET",
                format!("required (or INTERNAL_SECRET_FILE): {why}"),
            )
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
        redis: DirectoryRedisArgs,
        #[command(flatten)]
        secret: InternalSecretArgs,
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("coil").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_read_as_documented() {
        for (value, expected) in [("1", true), ("on", true), ("0", false), ("", false)] {
            assert_eq!(parse_flag(value), Ok(expected));
        }
        assert!(parse_flag("maybe").is_err());
    }

    #[test]
    fn redis_settings_are_checked_once_for_every_command() {
        let good = parse(&["--redis-url", "redis://127.0.0.1:6379"]);
        assert_eq!(good.redis.redis_key_prefix, "coil:dir:");
        assert!(good.redis.validate().is_ok());
        let cases: &[(&[&str], &str)] = &[
            (&["--redis-url", "http://127.0.0.1:6379"], "REDIS_URL"),
            (
                &["--redis-url", "redis://x", "--redis-key-prefix", ""],
                "REDIS_KEY_PREFIX",
            ),
            (
                &["--redis-url", "redis://x", "--redis-key-prefix", "a b"],
                "REDIS_KEY_PREFIX",
            ),
        ];
        for (args, variable) in cases {
            let error = parse(args).redis.validate().unwrap_err();
            assert_eq!(error.variable, *variable, "{args:?}");
        }
    }

    #[test]
    fn a_short_secret_is_refused_and_a_missing_one_only_where_required() {
        let none = parse(&["--redis-url", "redis://x"]);
        assert_eq!(none.secret.validate(), Ok(None));
        assert_eq!(
            none.secret.require("tests").unwrap_err().variable,
            "INTERNAL_SECRET"
        );
        let short = parse(&["--redis-url", "redis://x", "--internal-secret", "short"]);
        assert_eq!(
            short.secret.validate().unwrap_err().variable,
            "INTERNAL_SECRET"
        );
        let good = parse(&[
            "--redis-url",
            "redis://x",
            "--internal-secret",
            "sixteen-chars-ok",
        ]);
        assert_eq!(good.secret.require("tests").unwrap(), "sixteen-chars-ok");
        let dir = std::env::temp_dir().join(format!("coil-service-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let path = file.display().to_string();
        let from_file = parse(&["--redis-url", "redis://x", "--internal-secret-file", &path]);
        assert_eq!(
            from_file.secret.require("tests").unwrap(),
            "from-a-file-0123456789"
        );
        let missing = parse(&[
            "--redis-url",
            "redis://x",
            "--internal-secret-file",
            "/nonexistent/coil-secret",
        ]);
        assert_eq!(
            missing.secret.validate().unwrap_err().variable,
            "INTERNAL_SECRET_FILE"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
