//! Capacity input: what one node can carry, with where each figure came from.
//!
//! Owns the small capacity file format (`deploy/capacity/*.json`) and the reading of a
//! `coil loadtest --find-capacity --json` report, plus the arithmetic from a server type's
//! cores and memory to seats per node. It must not guess: a figure without provenance is
//! refused, and an unmeasured figure must say so (`measured: false`) so every table built on
//! it can say so too.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CapacityError {
    #[error("cannot read capacity file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("capacity file is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("capacity input is invalid: {0}")]
    Invalid(String),
}

/// Where a figure comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// True only for a figure a command produced; false for a stated assumption.
    pub measured: bool,
    pub command: String,
    pub date: String,
    pub machine: String,
    pub git_commit: String,
    #[serde(default)]
    pub note: String,
}

/// A figure and its provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub value: f64,
    pub provenance: Provenance,
}

/// Everything the simulation needs to know about a node's capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityInput {
    /// Human players one dedicated core carries at the tick budget (arena-capacity).
    pub players_per_core: Figure,
    /// Inputs per player-second of the run that measured `players_per_core`: a figure from a
    /// gentler workload than real players (who send one per tick while steering) is not a
    /// capacity figure, so the input says which workload it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_per_player_second: Option<Figure>,
    /// Server → client bytes per player per second, median (billing).
    pub bytes_per_player_per_second_median: Figure,
    /// Same, p95 (node egress sizing).
    pub bytes_per_player_per_second_p95: Figure,
    /// Resident memory per connected player, bytes.
    pub memory_per_player_bytes: Figure,
    /// Share of a dedicated core one shared vCPU is counted as (noisy neighbours).
    pub shared_vcpu_factor: Figure,
    /// Share of the measured breaking load a node is filled to: the autoscaler's CPU
    /// threshold, so a full node sits at the scale-out signal and not at the cliff.
    pub fill_fraction_of_capacity: Figure,
    /// Most players one node takes whatever its cores. Absent: the autoscaling policy's
    /// default connection limit (10,000), which nobody has measured as a real limit.
    #[serde(default = "default_connection_ceiling")]
    pub max_players_per_node: Figure,
}

/// The policy's default `node_connection_limit`: the ceiling when the input names none.
pub const NODE_CONNECTION_CEILING: u32 = 10_000;

fn default_connection_ceiling() -> Figure {
    Figure {
        value: f64::from(NODE_CONNECTION_CEILING),
        provenance: Provenance {
            measured: false,
            command: String::new(),
            date: String::new(),
            machine: String::new(),
            git_commit: String::new(),
            note: "the autoscaling policy's default node_connection_limit (10,000), not a measured limit; the Hetzner firewall allows 80,000 per server".to_owned(),
        },
    }
}

impl CapacityInput {
    pub fn load(path: &Path) -> Result<Self, CapacityError> {
        let text = std::fs::read_to_string(path).map_err(|source| CapacityError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses either the capacity file format or a load generator `--json` report that has a
    /// capacity section. `origin` names the input in provenance of report-derived figures.
    pub fn parse(text: &str, origin: &str) -> Result<Self, CapacityError> {
        let value: Value = serde_json::from_str(text)?;
        let input = if value.get("capacity").is_some() && value.get("traffic").is_some() {
            Self::from_loadtest_report(&value, origin)?
        } else {
            serde_json::from_value(value)?
        };
        input.validate()?;
        Ok(input)
    }

    fn from_loadtest_report(report: &Value, origin: &str) -> Result<Self, CapacityError> {
        let number = |pointer: &str| report.pointer(pointer).and_then(Value::as_f64);
        let players_per_core = number("/capacity/players_per_server_core").ok_or_else(|| {
            CapacityError::Invalid("loadtest report has no capacity.players_per_server_core".into())
        })?;
        let bytes = number("/traffic/bytes_per_player_per_second_mean").ok_or_else(|| {
            CapacityError::Invalid(
                "loadtest report has no traffic.bytes_per_player_per_second_mean".into(),
            )
        })?;
        let cores = number("/capacity/server_cores").unwrap_or(0.0);
        let started = number("/started_at_unix_seconds").unwrap_or(0.0);
        let lower_bound = report
            .pointer("/capacity/lower_bound")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let measured = |note: String| Provenance {
            measured: true,
            command: "coil loadtest --find-capacity --json".to_owned(),
            date: format!("unix {started:.0}"),
            machine: format!("{cores} server cores"),
            git_commit: "see report".to_owned(),
            note: format!("{note} (from {origin})"),
        };
        let assumption = |note: &str| Provenance {
            measured: false,
            command: String::new(),
            date: String::new(),
            machine: String::new(),
            git_commit: String::new(),
            note: note.to_owned(),
        };
        let memory = number("/server/rss_per_player_bytes");
        Ok(Self {
            players_per_core: Figure {
                value: players_per_core,
                provenance: measured(if lower_bound {
                    "lower bound: the load generator or the node's room limit ended the run, not its CPU".to_owned()
                } else {
                    "arena-capacity".to_owned()
                }),
            },
            bytes_per_player_per_second_median: Figure {
                value: bytes,
                provenance: measured("mean over the capacity run".to_owned()),
            },
            // The report carries a mean only; the mean stands in for the p95 as well.
            bytes_per_player_per_second_p95: Figure {
                value: bytes,
                provenance: measured("mean (the report has no p95)".to_owned()),
            },
            memory_per_player_bytes: match memory {
                Some(bytes) => Figure {
                    value: bytes,
                    provenance: measured("RSS per player".to_owned()),
                },
                None => Figure {
                    value: 65_536.0,
                    provenance: assumption("target from docs: 64 KiB per player"),
                },
            },
            shared_vcpu_factor: Figure {
                value: 0.7,
                provenance: assumption("shared vCPU counted as 0.7 of a dedicated core"),
            },
            fill_fraction_of_capacity: Figure {
                value: 0.75,
                provenance: assumption("the autoscaler's CPU threshold (0.75)"),
            },
            max_players_per_node: default_connection_ceiling(),
            inputs_per_player_second: number("/capacity/inputs_per_player_second").map(|value| {
                Figure {
                    value,
                    provenance: measured("the capacity run's players".to_owned()),
                }
            }),
        })
    }

    fn validate(&self) -> Result<(), CapacityError> {
        for (name, figure, low, high) in [
            ("players_per_core", &self.players_per_core, 1.0, 1e6),
            (
                "bytes_per_player_per_second_median",
                &self.bytes_per_player_per_second_median,
                1.0,
                1e7,
            ),
            (
                "bytes_per_player_per_second_p95",
                &self.bytes_per_player_per_second_p95,
                1.0,
                1e7,
            ),
            (
                "memory_per_player_bytes",
                &self.memory_per_player_bytes,
                1.0,
                1e10,
            ),
            ("shared_vcpu_factor", &self.shared_vcpu_factor, 0.05, 1.0),
            (
                "fill_fraction_of_capacity",
                &self.fill_fraction_of_capacity,
                0.05,
                1.0,
            ),
            (
                "max_players_per_node",
                &self.max_players_per_node,
                1.0,
                80_000.0,
            ),
        ]
        .into_iter()
        .chain(
            self.inputs_per_player_second
                .as_ref()
                .map(|figure| ("inputs_per_player_second", figure, 0.0, 1_000.0)),
        ) {
            if !(figure.value.is_finite() && figure.value >= low && figure.value <= high) {
                return Err(CapacityError::Invalid(format!(
                    "{name} = {} is outside {low}..={high}",
                    figure.value
                )));
            }
            let provenance = &figure.provenance;
            if provenance.measured && provenance.command.trim().is_empty() {
                return Err(CapacityError::Invalid(format!(
                    "{name} says measured but names no command"
                )));
            }
            if !provenance.measured && provenance.note.trim().is_empty() {
                return Err(CapacityError::Invalid(format!(
                    "{name} is an assumption without a note saying why"
                )));
            }
        }
        Ok(())
    }

    /// Human seats one node of `cores` (shared or dedicated) and `memory_gb` offers: the
    /// CPU bound at the fill fraction, the memory bound at 80% of RAM, and the connection
    /// ceiling, whichever is lowest.
    pub fn seats_per_node(&self, cores: u32, shared_cpu: bool, memory_gb: f64) -> u32 {
        let effective_cores = if shared_cpu {
            f64::from(cores) * self.shared_vcpu_factor.value
        } else {
            f64::from(cores)
        };
        let by_cpu =
            effective_cores * self.players_per_core.value * self.fill_fraction_of_capacity.value;
        let by_memory = memory_gb * 1e9 * 0.8 / self.memory_per_player_bytes.value;
        let seats = by_cpu.min(by_memory).min(self.max_players_per_node.value);
        if seats.is_finite() && seats >= 1.0 {
            seats.floor() as u32
        } else {
            1
        }
    }

    /// The figures that are assumptions rather than measurements, for the report.
    pub fn assumptions(&self) -> Vec<String> {
        [
            ("players_per_core", &self.players_per_core),
            (
                "bytes_per_player_per_second_median",
                &self.bytes_per_player_per_second_median,
            ),
            (
                "bytes_per_player_per_second_p95",
                &self.bytes_per_player_per_second_p95,
            ),
            ("memory_per_player_bytes", &self.memory_per_player_bytes),
            ("shared_vcpu_factor", &self.shared_vcpu_factor),
            ("fill_fraction_of_capacity", &self.fill_fraction_of_capacity),
            ("max_players_per_node", &self.max_players_per_node),
        ]
        .into_iter()
        .filter(|(_, figure)| !figure.provenance.measured)
        .map(|(name, figure)| format!("{name} = {}: {}", figure.value, figure.provenance.note))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = include_str!("../../../deploy/capacity/measured.json");

    #[test]
    fn the_committed_capacity_file_parses_and_says_what_is_measured() {
        let input = CapacityInput::parse(COMMITTED, "measured.json").expect("valid");
        assert_eq!(input.bytes_per_player_per_second_median.value, 1034.0);
        assert!(input.bytes_per_player_per_second_median.provenance.measured);
        assert_eq!(input.bytes_per_player_per_second_p95.value, 1122.0);
        // The capacity figure says at which input rate it was measured (issue 16: players
        // who steer send one input per tick, not one every few seconds).
        let inputs = input.inputs_per_player_second.as_ref().expect("stated");
        assert!(
            inputs.provenance.measured && inputs.value >= 10.0,
            "{inputs:?}"
        );
        // Every unmeasured figure is listed as an assumption with its reason.
        let assumptions = input.assumptions();
        assert_eq!(
            assumptions.len(),
            [
                &input.players_per_core,
                &input.memory_per_player_bytes,
                &input.shared_vcpu_factor,
                &input.fill_fraction_of_capacity,
                &input.max_players_per_node
            ]
            .iter()
            .filter(|figure| !figure.provenance.measured)
            .count()
        );
    }

    #[test]
    fn a_loadtest_report_is_accepted_directly() {
        let report = r#"{
            "scenario": "arena-capacity", "started_at_unix_seconds": 1795000000,
            "traffic": {"bytes_per_player_per_second_mean": 1100.5},
            "server": {"rss_per_player_bytes": 40000.0},
            "capacity": {"server_cores": 2.0, "players_per_server_core": 3210.0,
                         "largest_ccu_held": 6420, "lower_bound": false,
                         "inputs_per_player_second": 10.7}
        }"#;
        let input = CapacityInput::parse(report, "report.json").expect("report accepted");
        assert_eq!(input.players_per_core.value, 3210.0);
        assert_eq!(input.inputs_per_player_second.map(|f| f.value), Some(10.7));
        assert!(input.players_per_core.provenance.measured);
        assert_eq!(input.bytes_per_player_per_second_median.value, 1100.5);
        assert_eq!(input.memory_per_player_bytes.value, 40000.0);
    }

    #[test]
    fn a_report_without_the_capacity_figure_is_refused() {
        let report = r#"{"traffic": {"bytes_per_player_per_second_mean": 1000.0},
                         "capacity": {"server_cores": 2.0, "players_per_server_core": null}}"#;
        assert!(CapacityInput::parse(report, "r").is_err());
    }

    #[test]
    fn seats_take_the_lowest_bound() {
        let mut input = CapacityInput::parse(COMMITTED, "m").expect("valid");
        input.players_per_core.value = 1000.0;
        input.fill_fraction_of_capacity.value = 0.75;
        input.shared_vcpu_factor.value = 0.5;
        input.memory_per_player_bytes.value = 65_536.0;
        assert_eq!(input.seats_per_node(8, false, 32.0), 6000);
        assert_eq!(input.seats_per_node(8, true, 32.0), 3000);
        // 1 GB at 80% / 64 KiB = 12,207 > CPU bound; 0.1 GB limits.
        assert_eq!(input.seats_per_node(2, false, 0.1), 1220);
        input.players_per_core.value = 100_000.0;
        assert_eq!(
            input.seats_per_node(16, false, 64.0),
            NODE_CONNECTION_CEILING
        );
        input.max_players_per_node.value = 30_000.0;
        assert_eq!(input.seats_per_node(16, false, 64.0), 30_000);
    }

    #[test]
    fn an_assumption_without_a_reason_is_refused() {
        let mut value: Value = serde_json::from_str(COMMITTED).expect("json");
        value["shared_vcpu_factor"]["provenance"]["measured"] = Value::Bool(false);
        value["shared_vcpu_factor"]["provenance"]["note"] = Value::String(String::new());
        assert!(CapacityInput::parse(&value.to_string(), "m").is_err());
    }
}
