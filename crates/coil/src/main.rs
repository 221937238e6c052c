//! The `coil` binary: parses the command line, sets up logging, and calls into the library
//! crates. No game, network or storage logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a bad command line, environment variable or configuration value
/// (EX_USAGE from sysexits.h).
const EXIT_USAGE: u8 = 64;

#[derive(Parser)]
#[command(
    name = "coil",
    version,
    about = "Coil: a realtime room-based game backend, from one laptop to a fleet.",
    long_about = "Coil: a realtime room-based game backend, from one laptop to a fleet.\n\n\
        Without a subcommand, `coil` runs `coil serve`: the all-in-one node on \
        http://127.0.0.1:8787 with a SQLite leaderboard under ./data.\n\n\
        Logging: RUST_LOG sets levels (default info), LOG_FORMAT=json switches to JSON lines."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: game rooms, matchmaker, HTTP API, leaderboard (the default).
    Serve(Box<coil_server::ServeArgs>),
    /// Run a fleet game node: rooms only, joins with matchmaker tokens, directory on Redis.
    Node(Box<coil_server::FleetNodeArgs>),
    /// Run a fleet matchmaker: places players and signs join tokens, directory on Redis.
    Matchmaker(Box<coil_server::MatchmakerArgs>),
    /// Simulate players over real WebSockets and report bytes, latency and server capacity.
    Loadtest(Box<coil_loadtest::LoadtestArgs>),
    /// Simulate a week of the fleet and bill it; show or refresh Hetzner prices.
    Fleet(coil_fleet::FleetArgs),
    /// Run the autoscaler: keeps the game-node fleet sized (local processes or Hetzner Cloud).
    Autoscaler(Box<coil_autoscaler::AutoscalerArgs>),
    /// Administer accounts against DATABASE_URL: roles (bootstrap the first admin), bans.
    Admin(Box<coil_api::cli::AdminArgs>),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            return usage_error(&error);
        }
    };
    let command = match cli.command {
        Some(command) => command,
        None => match Cli::try_parse_from(["coil", "serve"]) {
            Ok(Cli {
                command: Some(command),
            }) => command,
            Ok(_) => unreachable!("serve parses to a command"),
            Err(error) => return usage_error(&error),
        },
    };
    if let Err(message) = init_logging() {
        eprintln!("coil: {message}");
        return ExitCode::from(EXIT_USAGE);
    }
    match command {
        Command::Serve(args) => run_serve(*args),
        Command::Node(args) => run_node(*args),
        Command::Matchmaker(args) => run_matchmaker(*args),
        Command::Loadtest(args) => run_loadtest(*args),
        Command::Fleet(args) => run_fleet(args),
        Command::Autoscaler(args) => run_autoscaler(*args),
        Command::Admin(args) => run_admin(*args),
    }
}

/// Prints one line naming the flag and its environment variable (clap shows the variable as
/// the value name), and returns the usage exit status.
fn usage_error(error: &clap::Error) -> ExitCode {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!("coil: {}", first.trim_start_matches("error: "));
    ExitCode::from(EXIT_USAGE)
}

fn init_logging() -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) => EnvFilter::try_new(&value).map_err(|e| format!("RUST_LOG: {e}"))?,
        Err(_) => EnvFilter::new("info"),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().init(),
        Ok("text") | Err(_) => builder.init(),
        Ok(other) => return Err(format!("LOG_FORMAT: expected text or json, got {other:?}")),
    }
    Ok(())
}

fn run_serve(args: coil_server::ServeArgs) -> ExitCode {
    let token_ttl =
        match coil_server::config::token_ttl("JOIN_TOKEN_TTL_SECS", args.join_token_ttl_secs) {
            Ok(ttl) => ttl,
            Err(error) => {
                eprintln!("coil: {error}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
    let config = match args.node.validate(true) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("coil: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let modes = match coil_server::Modes::configure(&config, coil_server::modes::builtin(&config)) {
        Ok(modes) => modes,
        Err(error) => return config_error(error),
    };
    let accounts = match args
        .accounts
        .validate(Some(config.data_dir.join("access-token.key")), true)
    {
        Ok(accounts) => accounts,
        Err(error) => return config_error(error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("coil: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Keys, accounts and the in-process matchmaker are set up before the socket is bound,
        // so a broken data directory stops the server before it says it is running.
        let services =
            match coil_server::all_in_one_with_accounts(&config, modes, token_ttl, accounts) {
                Ok(services) => services,
                Err(error) => {
                    eprintln!("coil: {error:#}");
                    return ExitCode::FAILURE;
                }
            };
        let listener = match coil_server::bind(config.listen) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!(
                    "coil: cannot listen on {} (PORT/HOST): {error}",
                    config.listen
                );
                return ExitCode::FAILURE;
            }
        };
        println!(
            "Coil is running: open http://{} (Ctrl-C drains and stops)",
            config.listen
        );
        match coil_server::run(config, listener, services, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(cause = %format!("{error:#}"), "coil stopped with an error");
                eprintln!("coil: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

fn config_error(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("coil: {error}");
    ExitCode::from(EXIT_USAGE)
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("coil: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        })
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(cause = %format!("{error:#}"), "coil stopped with an error");
            eprintln!("coil: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn redis_directory(
    url: &str,
    prefix: &str,
) -> anyhow::Result<std::sync::Arc<dyn coil_match::RoomDirectory>> {
    use anyhow::Context;
    let config = coil_match::RedisDirectoryConfig {
        key_prefix: prefix.to_string(),
        ..Default::default()
    };
    let directory = coil_match::RedisDirectory::connect(url, config)
        .await
        .with_context(|| "connecting to Redis (REDIS_URL)".to_string())?;
    Ok(std::sync::Arc::new(directory))
}

fn run_node(args: coil_server::FleetNodeArgs) -> ExitCode {
    if let Err(error) = args.redis.validate() {
        return config_error(error);
    }
    let limits = match args.limits.validate() {
        Ok(limits) => limits,
        Err(error) => return config_error(error),
    };
    let config = match args.node.validate(false) {
        Ok(config) => config,
        Err(error) => return config_error(error),
    };
    let modes = match coil_server::Modes::configure(&config, coil_server::modes::builtin(&config)) {
        Ok(modes) => modes,
        Err(error) => return config_error(error),
    };
    let verifier = match coil_match::TokenVerifier::from_public_key_base64(
        args.join_token_public_key.trim(),
    ) {
        Ok(verifier) => verifier,
        Err(error) => return config_error(format!("JOIN_TOKEN_PUBLIC_KEY: {error}")),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let directory =
            match redis_directory(&args.redis.redis_url, &args.redis.redis_key_prefix).await {
                Ok(directory) => directory,
                Err(error) => return finish(Err(error)),
            };
        let listener = match coil_server::bind(config.listen) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!(
                    "coil: cannot listen on {} (PORT/HOST): {error}",
                    config.listen
                );
                return ExitCode::FAILURE;
            }
        };
        let fleet = coil_server::FleetLink::new(
            directory,
            verifier,
            config.public_url.clone(),
            config.heartbeat_interval,
            config.heartbeat_ttl,
        );
        // The matchmaker publishes bans and takeovers on the same Redis, where the fleet's rate
        // limits live too: the node ends banned players' connections and counts join attempts
        // against the same budgets as every other node.
        let link = match coil_auth::RedisLink::connect(
            &args.redis.redis_url,
            &args.accounts_redis_key_prefix,
            coil_auth::redis_link::DEFAULT_REDIS_TIMEOUT,
        )
        .await
        {
            Ok(link) => link,
            Err(error) => {
                return finish(Err(anyhow::anyhow!(
                    "connecting to Redis for account events and rate limits (REDIS_URL): {error}"
                )));
            }
        };
        let account_events: std::sync::Arc<dyn coil_auth::events::AccountEvents> =
            std::sync::Arc::new(coil_auth::events::RedisAccountEvents::start(link.clone()));
        let node_limits = coil_api::node_limits::NodeLimits::new(
            limits,
            std::sync::Arc::new(coil_auth::RedisRateLimiter::new(
                link,
                coil_auth::system_clock(),
            )),
        );
        let services = coil_server::NodeServices {
            modes,
            fleet: Some(fleet),
            reports: None,
            extra_routes: None,
            extra_openapi: None,
            accounts: None,
            account_events: Some(account_events),
            node_limits: Some(node_limits),
        };
        println!(
            "Coil node {} is running on http://{} (SIGTERM drains)",
            config.node_id, config.listen
        );
        finish(coil_server::run(config, listener, services, shutdown_signal()).await)
    })
}

fn run_matchmaker(args: coil_server::MatchmakerArgs) -> ExitCode {
    let settings = match args.validate() {
        Ok(settings) => settings,
        Err(error) => return config_error(error),
    };
    // Accounts are on when DATABASE_URL is set; then anonymous matchmaking is off unless
    // ALLOW_ANONYMOUS_MATCHMAKING says otherwise, and the signing key must be configured.
    let accounts = match &args.accounts.database_url {
        None => None,
        Some(url) => match args.accounts.accounts.validate(None, false) {
            Ok(config) => Some((url.clone(), config)),
            Err(error) => return config_error(error),
        },
    };
    let signer = match coil_match::TokenSigner::load_or_create(&args.join_token_key_file) {
        Ok(signer) => signer,
        Err(error) => {
            eprintln!(
                "coil: JOIN_TOKEN_KEY_FILE {}: {error}",
                args.join_token_key_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if args.print_public_key {
        println!("{}", signer.public_key_base64());
        return ExitCode::SUCCESS;
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let directory =
            match redis_directory(&args.redis.redis_url, &args.redis.redis_key_prefix).await {
                Ok(directory) => directory,
                Err(error) => return finish(Err(error)),
            };
        let address = std::net::SocketAddr::new(args.host, args.port);
        let listener = match coil_server::bind(address) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("coil: cannot listen on {address} (PORT/HOST): {error}");
                return ExitCode::FAILURE;
            }
        };
        let accounts = match accounts {
            None => None,
            Some((url, config)) => {
                use anyhow::Context;
                let store = match coil_store::AccountStore::connect(&url)
                    .await
                    .context("opening the accounts database (DATABASE_URL)")
                {
                    Ok(store) => store,
                    Err(error) => return finish(Err(error)),
                };
                let platform = match coil_api::Platform::on_redis(
                    config,
                    &args.redis.redis_url,
                    coil_auth::system_clock(),
                )
                .await
                .context("setting up accounts")
                {
                    Ok(platform) => platform,
                    Err(error) => return finish(Err(error)),
                };
                Some((platform, store))
            }
        };
        println!(
            "Coil matchmaker is running on http://{address}; nodes need JOIN_TOKEN_PUBLIC_KEY={}",
            signer.public_key_base64()
        );
        finish(
            coil_server::run_matchmaker_with_accounts(
                settings,
                listener,
                directory,
                signer,
                accounts,
                shutdown_signal(),
            )
            .await,
        )
    })
}

fn run_autoscaler(args: coil_autoscaler::AutoscalerArgs) -> ExitCode {
    let config = match args.validate() {
        Ok(config) => config,
        Err(error) => return config_error(error),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        finish(coil_autoscaler::run_with_config(config, shutdown_signal()).await)
    })
}

fn run_admin(args: coil_api::cli::AdminArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(coil_api::cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coil admin: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_fleet(args: coil_fleet::FleetArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(coil_fleet::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coil fleet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_loadtest(args: coil_loadtest::LoadtestArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        match coil_loadtest::run(args).await {
            Ok(_report) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("coil loadtest: {error:#}");
                // Bad arguments (remote target, bounds) are usage errors.
                if error.downcast_ref::<coil_loadtest::ArgsError>().is_some() {
                    ExitCode::from(EXIT_USAGE)
                } else {
                    ExitCode::FAILURE
                }
            }
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C: both drain the node.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutdown requested");
}
