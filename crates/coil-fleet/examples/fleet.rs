//! Runs `coil fleet …` without the `coil` binary, e.g. to regenerate the plan's tables:
//! `cargo run --release -p coil-fleet --example fleet -- simulate --plan-table`.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    fleet: coil_fleet::FleetArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coil_fleet::run(Cli::parse().fleet).await
}
