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
    /// Run everything in one process: game rooms, HTTP API, leaderboard (the default).
    Serve(Box<coil_server::NodeArgs>),
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

fn run_serve(args: coil_server::NodeArgs) -> ExitCode {
    let config = match args.validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("coil: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
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
        let factory = coil_server::arena_factory(config.tick);
        match coil_server::run(config, listener, factory, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(cause = %format!("{error:#}"), "coil stopped with an error");
                eprintln!("coil: {error:#}");
                ExitCode::FAILURE
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
