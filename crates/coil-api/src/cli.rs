//! `coil admin …`: account administration from the command line, against `DATABASE_URL`
//! (bootstrapping the first admin needs no admin). With `REDIS_URL` set (the fleet), a ban
//! also revokes the account's tokens at once and tells the game nodes; without it (the
//! all-in-one's SQLite), the ban is stored and takes effect at the account's next login or
//! refresh, at most `ACCESS_TOKEN_TTL_SECS` later.

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use coil_auth::{
    AccessTokenSigner, Argon2Settings, MemoryAccountEvents, MemoryRateLimiter,
    MemoryRevocationList, RedisAccountEvents, RedisLink, RedisRevocationList, system_clock,
};
use coil_store::{Account, AccountStore, Role};

use crate::config::{AccountsConfig, RateLimits};
use crate::platform::Platform;
use crate::service::Accounts;

/// `coil admin`.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Accounts database (the same DATABASE_URL as the server). Unset:
    /// sqlite://<DATA_DIR>/leaderboard.db, as `coil serve` does.
    #[arg(long, env = "DATABASE_URL", value_name = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// The server's data directory (only used to find the default SQLite file).
    #[arg(
        long,
        env = "DATA_DIR",
        value_name = "DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: std::path::PathBuf,

    /// The fleet's Redis, so a ban takes effect at once everywhere (optional).
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,

    /// Prefix of the accounts keys in Redis (as the API replicas use).
    #[arg(
        long,
        env = "ACCOUNTS_REDIS_KEY_PREFIX",
        value_name = "ACCOUNTS_REDIS_KEY_PREFIX",
        default_value = "coil:acct:",
        global = true
    )]
    pub accounts_redis_key_prefix: String,

    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Give an account a role (player, admin, server).
    GrantRole(RoleArgs),
    /// Take a role away.
    RevokeRole(RoleArgs),
    /// Ban an account: it cannot log in, refresh or matchmake; its sessions end.
    Ban(BanArgs),
    /// Lift an account's bans.
    Unban(AccountArg),
    /// Print an account.
    Show(AccountArg),
}

#[derive(Debug, Clone, Args)]
pub struct AccountArg {
    /// Account id (32 hex characters) or username.
    #[arg(long, value_name = "ID|USERNAME")]
    pub account: String,
}

#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// player, admin or server.
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
}

#[derive(Debug, Clone, Args)]
pub struct BanArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// Why (shown to the player).
    #[arg(long)]
    pub reason: String,
    /// Ban length in seconds; omitted: forever.
    #[arg(long, value_name = "SECONDS")]
    pub for_secs: Option<u64>,
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role; use player, admin or server"))
}

/// Runs one admin command, printing what it did.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let database_url = match &args.database_url {
        Some(url) => url.clone(),
        None => coil_store::default_database_url(&args.data_dir),
    };
    let store = AccountStore::connect(&database_url)
        .await
        .context("opening the accounts database (DATABASE_URL)")?;
    let accounts = admin_accounts(&args, store).await?;
    let find = |arg: &AccountArg| {
        let accounts = accounts.clone();
        let text = arg.account.clone();
        async move {
            accounts
                .store()
                .find(&text)
                .await
                .context("looking the account up")?
                .with_context(|| format!("no account with id or username {text:?}"))
        }
    };
    match &args.command {
        AdminCommand::GrantRole(role) => {
            let account = find(&role.account).await?;
            let added = accounts
                .grant_role(&account.id, role.role)
                .await
                .map_err(|error| anyhow::anyhow!("granting the role failed: {}", error.code()))?;
            println!(
                "{} {} the {} role",
                describe(&account),
                if added { "now has" } else { "already had" },
                role.role
            );
        }
        AdminCommand::RevokeRole(role) => {
            let account = find(&role.account).await?;
            let removed = accounts
                .revoke_role(&account.id, role.role)
                .await
                .map_err(|error| anyhow::anyhow!("revoking the role failed: {}", error.code()))?;
            println!(
                "{} {} the {} role",
                describe(&account),
                if removed {
                    "no longer has"
                } else {
                    "did not have"
                },
                role.role
            );
        }
        AdminCommand::Ban(ban) => {
            let account = find(&ban.account).await?;
            let until = ban.for_secs.map(|secs| {
                accounts.platform().clock().now_ms() as i64 + (secs as i64).saturating_mul(1000)
            });
            accounts
                .ban(&account.id, &ban.reason, until)
                .await
                .map_err(|error| anyhow::anyhow!("banning failed: {}", error.code()))?;
            match until {
                Some(until) => println!("{} is banned until {until} (Unix ms)", describe(&account)),
                None => println!("{} is banned for good", describe(&account)),
            }
            if args.redis_url.is_none() {
                println!(
                    "(no REDIS_URL: a running server refuses the account at its next login or refresh)"
                );
            }
        }
        AdminCommand::Unban(arg) => {
            let account = find(arg).await?;
            let lifted = accounts
                .unban(&account.id)
                .await
                .map_err(|error| anyhow::anyhow!("unbanning failed: {}", error.code()))?;
            println!("{}: {lifted} ban(s) lifted", describe(&account));
        }
        AdminCommand::Show(arg) => {
            let account = find(arg).await?;
            let roles: Vec<&str> = account.roles.iter().map(|role| role.as_str()).collect();
            println!(
                "{}: kind {}, roles {}, single session {}",
                describe(&account),
                account.kind.as_str(),
                roles.join(","),
                account.single_session
            );
        }
    }
    Ok(())
}

fn describe(account: &Account) -> String {
    format!("account {} ({})", account.id, account.display_name)
}

/// An [`Accounts`] for administration: it never signs a token or hashes a password, so its
/// signing key is throwaway and its Argon2 parameters are the cheapest (only the startup dummy
/// hash runs).
async fn admin_accounts(args: &AdminArgs, store: AccountStore) -> anyhow::Result<Accounts> {
    let clock = system_clock();
    let mut config = AccountsConfig::for_tests(std::path::Path::new("."));
    config.argon2 = Argon2Settings::insecure_fast_for_tests();
    config.limits = RateLimits::off();
    config.redis_key_prefix = args.accounts_redis_key_prefix.clone();
    let signer = AccessTokenSigner::generate(config.access.clone());
    let platform = match &args.redis_url {
        Some(url) => {
            let link = RedisLink::connect(
                url,
                &config.redis_key_prefix,
                coil_auth::redis_link::DEFAULT_REDIS_TIMEOUT,
            )
            .await
            .context("connecting to Redis (REDIS_URL)")?;
            Platform::from_parts(
                config,
                signer,
                Arc::new(RedisRevocationList::new(link.clone(), clock.clone())),
                Arc::new(RedisAccountEvents::start(link)),
                Arc::new(MemoryRateLimiter::new(clock.clone())),
                clock,
            )?
        }
        None => Platform::from_parts(
            config,
            signer,
            Arc::new(MemoryRevocationList::new(clock.clone())),
            Arc::new(MemoryAccountEvents::default()),
            Arc::new(MemoryRateLimiter::new(clock.clone())),
            clock,
        )?,
    };
    Ok(Accounts::new(platform, store))
}
