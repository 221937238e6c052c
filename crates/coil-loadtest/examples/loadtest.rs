//! `cargo run --release -p coil-loadtest --example loadtest -- --help`: the load generator on
//! its own, for measuring before it is wired into the `coil` binary as `coil loadtest`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Coil load generator (same flags as `coil loadtest`)."
)]
struct Cli {
    #[command(flatten)]
    args: coil_loadtest::LoadtestArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    coil_loadtest::run(cli.args).await?;
    Ok(())
}
