//! The choices compared in one run, and the verdict: which is cheapest for the SLO, and why.
//!
//! Owns turning a choice (region, burst server type, optional long-lived baseline) plus the
//! capacity input and the price table into a simulation config, running it, and billing it.
//! It must not tune the autoscaling policy per scenario: every scenario runs the same
//! default policy, so the comparison is between purchases, not between policies.

use serde::Serialize;

use crate::billing::{MonthlyBill, ServerPurchase, monthly_bill};
use crate::capacity::CapacityInput;
use crate::prices::{PriceRegion, PriceTable};
use crate::simulate::{
    Baseline, NodeKind, SimulationConfig, SimulationResult, SimulationStats, simulate,
};
use crate::traffic::{MINUTES_PER_WEEK, TrafficShape};

/// Where the region's evening peak falls in UTC and what the fleet calls the region.
pub fn region_setup(region: PriceRegion) -> (&'static str, f64) {
    match region {
        // 20:00 on the US east coast, in Central Europe, in Singapore.
        PriceRegion::Us => ("us-east", 1.0),
        PriceRegion::Eu => ("eu-central", 19.0),
        PriceRegion::Sg => ("ap-southeast", 12.0),
    }
}

/// A long-lived baseline choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum BaselineChoice {
    /// Cloud servers kept all month (monthly price).
    Cloud { server_type: String, count: u32 },
    /// Dedicated root servers (EU only).
    Dedicated { name: String, count: u32 },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub region: PriceRegion,
    pub burst_server_type: String,
    pub baseline: Option<BaselineChoice>,
}

/// The service level a scenario must meet to be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ServiceLevel {
    /// No player may give up waiting for a seat.
    pub max_refused_joins: u64,
    /// Share of joins allowed to wait a minute or two (the spike's first minutes).
    pub max_delayed_share: f64,
}

impl Default for ServiceLevel {
    fn default() -> Self {
        Self {
            max_refused_joins: 0,
            max_delayed_share: 0.005,
        }
    }
}

impl ServiceLevel {
    pub fn is_met(&self, stats: &SimulationStats) -> bool {
        stats.joins_refused <= self.max_refused_joins
            && stats.players_on_deleted_nodes == 0
            && (stats.joins == 0
                || stats.joins_delayed as f64 / stats.joins as f64 <= self.max_delayed_share)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the price table has no {0} in {1}")]
    UnknownServerType(String, PriceRegion),
    #[error("the price table has no dedicated server {0}")]
    UnknownDedicated(String),
    #[error(transparent)]
    Bill(#[from] crate::billing::BillError),
}

/// Knobs shared by every scenario in a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSettings {
    pub peak_ccu: u32,
    pub seed: u64,
    pub max_nodes: u32,
    pub series_every_minutes: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioOutcome {
    pub scenario: Scenario,
    pub seats_per_burst_node: u32,
    pub seats_per_baseline_node: Option<u32>,
    pub meets_slo: bool,
    pub stats: SimulationStats,
    pub bill: MonthlyBill,
    #[serde(skip)]
    pub result: SimulationResult,
}

fn node_kind(
    prices: &PriceTable,
    capacity: &CapacityInput,
    region: PriceRegion,
    server_type: &str,
) -> Result<NodeKind, ScenarioError> {
    let row = prices
        .server_type(server_type)
        .filter(|_| prices.server_price(server_type, region).is_some())
        .ok_or_else(|| ScenarioError::UnknownServerType(server_type.to_owned(), region))?;
    Ok(NodeKind {
        purchase: ServerPurchase::Cloud {
            server_type: row.name.clone(),
        },
        seats: capacity.seats_per_node(row.cores, row.cpu == "shared", row.memory_gb),
    })
}

/// Builds the simulation config of one scenario.
pub fn build_config(
    scenario: &Scenario,
    settings: &RunSettings,
    prices: &PriceTable,
    capacity: &CapacityInput,
) -> Result<SimulationConfig, ScenarioError> {
    let (region_name, peak_hour) = region_setup(scenario.region);
    let burst = node_kind(
        prices,
        capacity,
        scenario.region,
        &scenario.burst_server_type,
    )?;
    let mut config = SimulationConfig::new(
        region_name,
        TrafficShape::default_week(settings.peak_ccu, peak_hour),
        burst,
    );
    config.seed = settings.seed;
    config.max_nodes = settings.max_nodes;
    config.series_every_minutes = settings.series_every_minutes;
    config.bytes_per_player_per_second = capacity.bytes_per_player_per_second_median.value;
    // The connection signal presses at the node ceiling, whatever the input says it is.
    let thresholds = &mut config.policy.thresholds;
    let ceiling = capacity.max_players_per_node.value / thresholds.near_limit_fraction.max(0.05);
    thresholds.node_connection_limit = ceiling.round().clamp(1.0, f64::from(u32::MAX)) as u32;
    config.baseline = match &scenario.baseline {
        None => None,
        Some(BaselineChoice::Cloud { server_type, count }) => Some(Baseline {
            kind: node_kind(prices, capacity, scenario.region, server_type)?,
            count: *count,
        }),
        Some(BaselineChoice::Dedicated { name, count }) => {
            let row = prices
                .dedicated(name)
                .ok_or_else(|| ScenarioError::UnknownDedicated(name.clone()))?;
            Some(Baseline {
                kind: NodeKind {
                    purchase: ServerPurchase::Dedicated {
                        name: row.name.clone(),
                    },
                    seats: capacity.seats_per_node(row.cores, false, row.memory_gb),
                },
                count: *count,
            })
        }
    };
    Ok(config)
}

/// Runs and bills one scenario.
pub fn run_scenario(
    scenario: &Scenario,
    settings: &RunSettings,
    prices: &PriceTable,
    capacity: &CapacityInput,
    service_level: &ServiceLevel,
) -> Result<ScenarioOutcome, ScenarioError> {
    let config = build_config(scenario, settings, prices, capacity)?;
    let region = scenario.region;
    let hourly = |purchase: &ServerPurchase| match purchase {
        ServerPurchase::Cloud { server_type } => prices
            .server_price(server_type, region)
            .map_or(0.0, |price| price.hourly_eur),
        ServerPurchase::Dedicated { name } => prices
            .dedicated(name)
            .map_or(0.0, |row| row.monthly_eur / prices.hours_per_month),
    };
    let result = simulate(&config, &hourly);
    let bill = monthly_bill(prices, region, &result.lives, MINUTES_PER_WEEK)?;
    Ok(ScenarioOutcome {
        scenario: scenario.clone(),
        seats_per_burst_node: config.burst.seats,
        seats_per_baseline_node: config.baseline.as_ref().map(|baseline| baseline.kind.seats),
        meets_slo: service_level.is_met(&result.stats),
        stats: result.stats.clone(),
        bill,
        result,
    })
}

/// Nodes of `seats` needed for the week's lowest demand with the buffer: the part of the
/// fleet that is busy all week and could be bought long-lived.
pub fn nodes_for_weekly_minimum(peak_ccu: u32, region: PriceRegion, seats: u32) -> u32 {
    let (_, peak_hour) = region_setup(region);
    let lowest = TrafficShape::default_week(peak_ccu, peak_hour)
        .weekly_demand()
        .into_iter()
        .fold(f64::MAX, f64::min);
    // Whole nodes only, rounded down: a baseline node that idles is pure cost.
    (lowest / f64::from(seats.max(1))).floor() as u32
}

/// The candidates for one region: each cloud type alone, and a long-lived baseline sized to
/// the week's minimum (cloud everywhere, dedicated where Hetzner sells it) plus burst.
pub fn candidates(
    region: PriceRegion,
    peak_ccu: u32,
    prices: &PriceTable,
    capacity: &CapacityInput,
) -> Vec<Scenario> {
    let types: &[&str] = match region {
        PriceRegion::Us => &["ccx33", "ccx23", "cpx41"],
        PriceRegion::Eu | PriceRegion::Sg => &["ccx33", "ccx23", "cpx42"],
    };
    let mut scenarios: Vec<Scenario> = types
        .iter()
        .filter(|name| prices.server_price(name, region).is_some())
        .map(|name| Scenario {
            name: format!("{region} {name} all autoscaled"),
            region,
            burst_server_type: (*name).to_owned(),
            baseline: None,
        })
        .collect();
    if let Some(row) = prices.server_type("ccx33") {
        let seats = capacity.seats_per_node(row.cores, false, row.memory_gb);
        let count = nodes_for_weekly_minimum(peak_ccu, region, seats);
        if count > 0 {
            scenarios.push(Scenario {
                name: format!("{region} {count}× ccx33 long-lived + ccx33 burst"),
                region,
                burst_server_type: "ccx33".to_owned(),
                baseline: Some(BaselineChoice::Cloud {
                    server_type: "ccx33".to_owned(),
                    count,
                }),
            });
        }
    }
    for dedicated in prices.dedicated.iter().filter(|row| row.region == region) {
        let seats = capacity.seats_per_node(dedicated.cores, false, dedicated.memory_gb);
        let count = nodes_for_weekly_minimum(peak_ccu, region, seats).max(1);
        scenarios.push(Scenario {
            name: format!(
                "{region} {count}× {} dedicated + ccx33 burst",
                dedicated.name
            ),
            region,
            burst_server_type: "ccx33".to_owned(),
            baseline: Some(BaselineChoice::Dedicated {
                name: dedicated.name.clone(),
                count,
            }),
        });
    }
    scenarios
}

/// The cheapest outcome that meets the service level, if any.
pub fn cheapest_meeting_slo(outcomes: &[ScenarioOutcome]) -> Option<&ScenarioOutcome> {
    outcomes
        .iter()
        .filter(|outcome| outcome.meets_slo)
        .min_by(|left, right| left.bill.total_eur.total_cmp(&right.bill.total_eur))
}

/// One paragraph saying why the winner wins, from the numbers.
pub fn explain(winner: &ScenarioOutcome, outcomes: &[ScenarioOutcome]) -> String {
    let bill = &winner.bill;
    let mut text = format!(
        "Cheapest that meets the SLO (no join refused, ≤0.5% delayed, no node deleted with players): {} at €{:.0}/month. Game servers are €{:.0} of it ({:.0} server-hours/month, {} seats per burst node), egress overage €{:.0} ({:.0} TB out, {:.0} TB included per server; €{:.0} if allowances pooled), the control plane and storage the rest.",
        winner.scenario.name,
        bill.total_eur,
        bill.game_servers_eur,
        bill.game_server_hours_per_month,
        winner.seats_per_burst_node,
        bill.egress_overage_eur,
        bill.egress_tb_per_month,
        bill.included_tb_per_month,
        bill.egress_overage_if_pooled_eur,
    );
    for other in outcomes {
        if other.scenario.name == winner.scenario.name {
            continue;
        }
        let difference = other.bill.total_eur - bill.total_eur;
        let why = if !other.meets_slo {
            format!(
                "misses the SLO ({} refused, {} delayed)",
                other.stats.joins_refused, other.stats.joins_delayed
            )
        } else if (other.bill.egress_overage_eur - bill.egress_overage_eur).abs()
            > (other.bill.game_servers_eur - bill.game_servers_eur).abs()
        {
            format!(
                "egress overage €{:.0} vs €{:.0}",
                other.bill.egress_overage_eur, bill.egress_overage_eur
            )
        } else {
            format!(
                "game servers €{:.0} vs €{:.0} ({} seats per node)",
                other.bill.game_servers_eur, bill.game_servers_eur, other.seats_per_burst_node
            )
        };
        text.push_str(&format!(
            "\n  - {}: €{:+.0}/month; {why}",
            other.scenario.name, difference
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> (PriceTable, CapacityInput) {
        (
            PriceTable::parse(include_str!("../../../deploy/prices/hetzner.json")).expect("prices"),
            CapacityInput::parse(
                include_str!("../../../deploy/capacity/measured.json"),
                "measured.json",
            )
            .expect("capacity"),
        )
    }

    #[test]
    fn the_verdict_is_the_cheapest_outcome_that_meets_the_slo() {
        let (prices, capacity) = inputs();
        let settings = RunSettings {
            peak_ccu: 8_000,
            seed: 2,
            max_nodes: 200,
            series_every_minutes: 60,
        };
        let service_level = ServiceLevel::default();
        let mut outcomes: Vec<ScenarioOutcome> =
            candidates(PriceRegion::Eu, 8_000, &prices, &capacity)
                .iter()
                .map(|scenario| {
                    run_scenario(scenario, &settings, &prices, &capacity, &service_level)
                        .expect("scenario runs")
                })
                .collect();
        assert!(outcomes.len() >= 3);
        let winner = cheapest_meeting_slo(&outcomes)
            .expect("one meets the SLO")
            .clone();
        for outcome in outcomes.iter().filter(|outcome| outcome.meets_slo) {
            assert!(winner.bill.total_eur <= outcome.bill.total_eur);
        }
        // An outcome that misses the SLO is never chosen, however cheap.
        outcomes.push(ScenarioOutcome {
            meets_slo: false,
            bill: MonthlyBill {
                total_eur: 1.0,
                ..winner.bill.clone()
            },
            scenario: Scenario {
                name: "too small to meet the SLO".to_owned(),
                ..winner.scenario.clone()
            },
            ..winner.clone()
        });
        let again = cheapest_meeting_slo(&outcomes).expect("still one");
        assert!(again.meets_slo);
        assert!(explain(again, &outcomes).contains("misses the SLO"));
    }

    #[test]
    fn a_type_not_sold_in_the_region_is_an_error() {
        let (prices, capacity) = inputs();
        let scenario = Scenario {
            name: "cpx42 in the US".to_owned(),
            region: PriceRegion::Us,
            burst_server_type: "cpx42".to_owned(),
            baseline: None,
        };
        let settings = RunSettings {
            peak_ccu: 1_000,
            seed: 1,
            max_nodes: 10,
            series_every_minutes: 60,
        };
        assert!(matches!(
            build_config(&scenario, &settings, &prices, &capacity),
            Err(ScenarioError::UnknownServerType(..))
        ));
    }

    #[test]
    fn the_service_level_counts_refusals_delays_and_deleted_players() {
        let level = ServiceLevel::default();
        let good = SimulationStats {
            joins: 10_000,
            joins_delayed: 50,
            ..SimulationStats::default()
        };
        assert!(level.is_met(&good));
        assert!(!level.is_met(&SimulationStats {
            joins_refused: 1,
            ..good.clone()
        }));
        assert!(!level.is_met(&SimulationStats {
            joins_delayed: 51,
            ..good.clone()
        }));
        assert!(!level.is_met(&SimulationStats {
            players_on_deleted_nodes: 1,
            ..good
        }));
    }
}
