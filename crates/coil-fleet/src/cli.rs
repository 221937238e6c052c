//! `coil fleet simulate` and `coil fleet prices`: arguments, file loading and printing.
//!
//! Owns the command line and the only IO of this crate (reading the price and capacity
//! files, writing the chart and a refreshed table, the Hetzner API call). It must not hold
//! any model logic: it calls `scenarios`, `billing`, `chart` and `refresh`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::capacity::CapacityInput;
use crate::prices::{PriceRegion, PriceTable};
use crate::scenarios::{
    BaselineChoice, RunSettings, Scenario, ScenarioOutcome, ServiceLevel, candidates,
    cheapest_meeting_slo, explain, run_scenario,
};

/// `coil fleet …`
#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Simulate a week of traffic under the real autoscaling policy and bill it.
    Simulate(SimulateArgs),
    /// Show the price table, or refresh it from the Hetzner API.
    Prices(PricesArgs),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Highest CCU of the week (the weekend evening peak).
    #[arg(long, default_value_t = 100_000)]
    pub peak_ccu: u32,
    /// Pricing region: us, eu or sg.
    #[arg(long, default_value = "us")]
    pub region: String,
    /// Game server type the autoscaler creates.
    #[arg(long, default_value = "ccx33")]
    pub server_type: String,
    /// Long-lived baseline: cloud servers of this type kept all month.
    #[arg(long, conflicts_with = "baseline_dedicated")]
    pub baseline_type: Option<String>,
    /// Long-lived baseline: dedicated servers (e.g. ax42, EU only).
    #[arg(long)]
    pub baseline_dedicated: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub baseline_count: u32,
    /// Capacity input: deploy/capacity format or a `coil loadtest --find-capacity --json` report.
    #[arg(long, default_value = "deploy/capacity/measured.json")]
    pub capacity: PathBuf,
    #[arg(long, default_value = "deploy/prices/hetzner.json")]
    pub prices: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most game nodes in the region (the Hetzner project limit).
    #[arg(long, default_value_t = 1_000)]
    pub max_nodes: u32,
    /// Compare server types, regions and baseline choices in one run.
    #[arg(long)]
    pub compare: bool,
    /// Print the plan's cost table (10k, 50k, 100k peak CCU in US and EU) as Markdown.
    #[arg(long)]
    pub plan_table: bool,
    /// Write an SVG chart of players, capacity and cost across the week.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PricesArgs {
    #[arg(long, default_value = "deploy/prices/hetzner.json")]
    pub prices: PathBuf,
    /// Read GET /v1/pricing and GET /v1/server_types (needs HCLOUD_TOKEN or --token-file).
    #[arg(long)]
    pub refresh: bool,
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// API base URL (a stand-in for tests).
    #[arg(long, default_value = coil_hcloud::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Where to write the refreshed table (default: print it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Entry point for `coil fleet …`.
pub async fn run(args: FleetArgs) -> anyhow::Result<()> {
    match args.command {
        FleetCommand::Simulate(simulate) => {
            // The simulation is CPU-bound for seconds; keep it off the async workers.
            let output = tokio::task::spawn_blocking(move || run_simulate(&simulate))
                .await
                .context("simulation task")??;
            print!("{output}");
            Ok(())
        }
        FleetCommand::Prices(prices) => {
            let output = run_prices(&prices).await?;
            print!("{output}");
            Ok(())
        }
    }
}

fn load_inputs(args: &SimulateArgs) -> anyhow::Result<(PriceTable, CapacityInput)> {
    let prices = PriceTable::load(&args.prices)?;
    let capacity = CapacityInput::load(&args.capacity)?;
    Ok((prices, capacity))
}

#[derive(Serialize)]
struct SimulateReport<'run> {
    price_table_date: &'run str,
    capacity_assumptions: Vec<String>,
    settings: &'run RunSettings,
    outcomes: Vec<OutcomeJson<'run>>,
    cheapest_meeting_slo: Option<&'run str>,
}

#[derive(Serialize)]
struct OutcomeJson<'run> {
    #[serde(flatten)]
    outcome: &'run ScenarioOutcome,
    series: &'run [crate::simulate::SeriesPoint],
}

/// Runs `coil fleet simulate` and returns what it prints.
pub fn run_simulate(args: &SimulateArgs) -> anyhow::Result<String> {
    let (prices, capacity) = load_inputs(args)?;
    let service_level = ServiceLevel::default();
    let region = PriceRegion::parse(&args.region)
        .with_context(|| format!("--region: expected us, eu or sg, got {:?}", args.region))?;
    if args.plan_table {
        return plan_table(&prices, &capacity, args.seed, args.max_nodes);
    }
    let settings = RunSettings {
        peak_ccu: args.peak_ccu,
        seed: args.seed,
        max_nodes: args.max_nodes,
        series_every_minutes: 10,
    };
    let scenarios: Vec<Scenario> = if args.compare {
        PriceRegion::ALL
            .iter()
            .flat_map(|region| candidates(*region, args.peak_ccu, &prices, &capacity))
            .collect()
    } else {
        let baseline = match (&args.baseline_type, &args.baseline_dedicated) {
            (Some(server_type), _) if args.baseline_count > 0 => Some(BaselineChoice::Cloud {
                server_type: server_type.clone(),
                count: args.baseline_count,
            }),
            (_, Some(name)) if args.baseline_count > 0 => Some(BaselineChoice::Dedicated {
                name: name.clone(),
                count: args.baseline_count,
            }),
            (None, None) => None,
            _ => bail!("--baseline-type/--baseline-dedicated need --baseline-count > 0"),
        };
        vec![Scenario {
            name: format!("{region} {} autoscaled", args.server_type),
            region,
            burst_server_type: args.server_type.clone(),
            baseline,
        }]
    };
    let mut outcomes = Vec::new();
    for scenario in &scenarios {
        outcomes.push(run_scenario(
            scenario,
            &settings,
            &prices,
            &capacity,
            &service_level,
        )?);
    }
    let winner = cheapest_meeting_slo(&outcomes);
    if let Some(path) = &args.chart {
        let shown = winner.or(outcomes.first()).context("no scenario ran")?;
        let title = format!(
            "{} — peak {} CCU — €{:.0}/month",
            shown.scenario.name, args.peak_ccu, shown.bill.total_eur
        );
        std::fs::write(path, crate::chart::svg(&title, &shown.result.series))
            .with_context(|| format!("writing chart {}", path.display()))?;
    }
    if args.json {
        let report = SimulateReport {
            price_table_date: &prices.date,
            capacity_assumptions: capacity.assumptions(),
            settings: &settings,
            outcomes: outcomes
                .iter()
                .map(|outcome| OutcomeJson {
                    outcome,
                    series: &outcome.result.series,
                })
                .collect(),
            cheapest_meeting_slo: winner.map(|outcome| outcome.scenario.name.as_str()),
        };
        return Ok(serde_json::to_string_pretty(&report)? + "\n");
    }
    let mut out = String::new();
    writeln!(
        out,
        "Week peaking at {} CCU; prices of {} (net, EUR); capacity from {}",
        args.peak_ccu,
        prices.date,
        args.capacity.display()
    )?;
    for assumption in capacity.assumptions() {
        writeln!(out, "  ASSUMPTION {assumption}")?;
    }
    writeln!(
        out,
        "\n{:<44} {:>9} {:>9} {:>8} {:>8} {:>6} {:>8} {:>8} {:>7} {:>8} {:>4}",
        "scenario",
        "€/month",
        "servers",
        "egress",
        "node-h/w",
        "peak",
        "refused",
        "delayed",
        "spare",
        "evicted",
        "SLO"
    )?;
    for outcome in &outcomes {
        let stats = &outcome.stats;
        writeln!(
            out,
            "{:<44} {:>9.0} {:>9.0} {:>8.0} {:>8.0} {:>6} {:>8} {:>8} {:>6.1}% {:>8} {:>4}",
            outcome.scenario.name,
            outcome.bill.total_eur,
            outcome.bill.game_servers_eur,
            outcome.bill.egress_overage_eur,
            stats.node_hours,
            stats.peak_nodes,
            stats.joins_refused,
            stats.joins_delayed,
            stats.lowest_spare_fraction * 100.0,
            stats.players_evicted,
            if outcome.meets_slo { "yes" } else { "NO" }
        )?;
    }
    if let Some(shown) = winner.or(outcomes.first()) {
        let stats = &shown.stats;
        writeln!(
            out,
            "\n{}: {} joins, {} nodes created, {} drains ({} ended in eviction, {} players evicted), lowest spare {:.1}% at minute {}, players on deleted nodes {}",
            shown.scenario.name,
            stats.joins,
            stats.nodes_created,
            stats.drains,
            stats.drains_with_eviction,
            stats.players_evicted,
            stats.lowest_spare_fraction * 100.0,
            stats.lowest_spare_minute,
            stats.players_on_deleted_nodes
        )?;
        writeln!(out, "Monthly bill:")?;
        for line in &shown.bill.lines {
            writeln!(
                out,
                "  {:<40} €{:>9.2}  {}",
                line.item, line.monthly_eur, line.detail
            )?;
        }
        writeln!(out, "  {:<40} €{:>9.2}", "total", shown.bill.total_eur)?;
    }
    if args.compare {
        match winner {
            Some(winner) => writeln!(out, "\n{}", explain(winner, &outcomes))?,
            None => writeln!(out, "\nNo scenario met the SLO; raise --max-nodes.")?,
        }
    }
    Ok(out)
}

/// The plan's table: for 10k, 50k and 100k peak CCU in US and EU, the cheapest candidate
/// that meets the SLO, itemised.
fn plan_table(
    prices: &PriceTable,
    capacity: &CapacityInput,
    seed: u64,
    max_nodes: u32,
) -> anyhow::Result<String> {
    let service_level = ServiceLevel::default();
    let mut out = String::new();
    writeln!(
        out,
        "| peak CCU | region | cheapest choice meeting the SLO | game servers | egress overage | control plane + storage | total €/month | € per peak CCU | peak nodes |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for peak_ccu in [10_000, 50_000, 100_000] {
        for region in [PriceRegion::Us, PriceRegion::Eu] {
            let settings = RunSettings {
                peak_ccu,
                seed,
                max_nodes,
                series_every_minutes: 60,
            };
            let mut outcomes = Vec::new();
            for scenario in candidates(region, peak_ccu, prices, capacity) {
                outcomes.push(run_scenario(
                    &scenario,
                    &settings,
                    prices,
                    capacity,
                    &service_level,
                )?);
            }
            let Some(winner) = cheapest_meeting_slo(&outcomes) else {
                writeln!(
                    out,
                    "| {peak_ccu} | {region} | none met the SLO | | | | | | |"
                )?;
                continue;
            };
            let bill = &winner.bill;
            writeln!(
                out,
                "| {peak_ccu} | {region} | {} | {:.0} | {:.0} | {:.0} | **{:.0}** | {:.3} | {} |",
                winner.scenario.name,
                bill.game_servers_eur,
                bill.egress_overage_eur,
                bill.total_eur - bill.game_servers_eur - bill.egress_overage_eur,
                bill.total_eur,
                bill.total_eur / f64::from(peak_ccu),
                winner.stats.peak_nodes
            )?;
        }
    }
    Ok(out)
}

async fn run_prices(args: &PricesArgs) -> anyhow::Result<String> {
    let mut table = PriceTable::load(&args.prices)?;
    let mut out = String::new();
    if args.refresh {
        let token = match &args.token_file {
            Some(path) => coil_hcloud::ApiToken::from_file(path)?,
            None => coil_hcloud::ApiToken::from_process_environment()?,
        };
        let client = coil_hcloud::HcloudClient::new(
            token,
            coil_hcloud::HcloudClientConfig {
                base_url: args.base_url.clone(),
                ..coil_hcloud::HcloudClientConfig::default()
            },
        )?;
        let today = crate::refresh::today_utc();
        let summary = crate::refresh::refresh_from_api(&client, &mut table, &today)
            .await
            .context("refreshing prices from the Hetzner API")?;
        table
            .validate()
            .map_err(|errors| anyhow::anyhow!("refreshed table invalid: {}", errors.join("; ")))?;
        writeln!(
            out,
            "refreshed {} rows, added {} server-type rows; not listed by the API (kept): {}",
            summary.rows_updated,
            summary.rows_added,
            if summary.unchanged_rows.is_empty() {
                "none".to_owned()
            } else {
                summary.unchanged_rows.join(", ")
            }
        )?;
        let text = serde_json::to_string_pretty(&table)? + "\n";
        match &args.out {
            Some(path) => {
                std::fs::write(path, &text)
                    .with_context(|| format!("writing {}", path.display()))?;
                writeln!(out, "wrote {}", path.display())?;
            }
            None => out.push_str(&text),
        }
        return Ok(out);
    }
    if args.json {
        return Ok(serde_json::to_string_pretty(&table)? + "\n");
    }
    writeln!(
        out,
        "Price table of {} ({}, {} of VAT); {} sources",
        table.date,
        table.currency,
        table.vat,
        table.sources.len()
    )?;
    writeln!(
        out,
        "{:<8} {:>5} {:<10} {:<4} {:>9} {:>8} {:>11}  sources",
        "type", "cores", "cpu", "rgn", "€/month", "€/hour", "incl. TB"
    )?;
    for row in &table.server_types {
        for price in &row.prices {
            writeln!(
                out,
                "{:<8} {:>5} {:<10} {:<4} {:>9.2} {:>8.4} {:>11.1}  {}",
                row.name,
                row.cores,
                row.cpu,
                price.region,
                price.monthly_eur,
                price.hourly_eur,
                price.included_traffic_tb,
                price.sources.join(",")
            )?;
        }
    }
    for row in &table.traffic {
        writeln!(
            out,
            "egress overage {}: €{:.2}/TB",
            row.region, row.overage_eur_per_tb
        )?;
    }
    Ok(out)
}
