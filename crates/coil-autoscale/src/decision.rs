//! The output of `decide`: actions as values, each with the reasons that justify it.
//!
//! Owns `Action`, `Reason`, `Decision` and `RegionAssessment`. Must not execute anything: the
//! controller turns actions into Hetzner calls or local process spawns, logs every action with
//! its reasons and counts it (see `metrics`). In dry-run mode `actions_to_execute` is empty,
//! so an executor that only ever reads that method cannot act by mistake.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::signals::PressureSignal;
use crate::snapshot::{NodeId, RegionId};

/// One thing the controller should do (or, for `Hold`, deliberately not do).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Create `count` game-node servers in `region`.
    CreateNodes {
        region: RegionId,
        count: u32,
        reasons: Vec<Reason>,
    },
    /// Mark `node` DRAINING: no new placements; players may stay until `deadline_ms`.
    MarkDraining {
        region: RegionId,
        node: NodeId,
        deadline_ms: u64,
        reasons: Vec<Reason>,
    },
    /// Tell the players still on `node` to re-matchmake (the client does it by itself).
    EvictPlayers {
        region: RegionId,
        node: NodeId,
        reasons: Vec<Reason>,
    },
    /// Delete the server. Only ever issued for a node the snapshot shows DRAINING, and only when
    /// it is empty or its deadline passed and EvictPlayers went out in an earlier decision.
    DeleteNode {
        region: RegionId,
        node: NodeId,
        reasons: Vec<Reason>,
    },
    /// Nothing to do in `region`, and why.
    Hold {
        region: RegionId,
        reasons: Vec<Reason>,
    },
}

impl Action {
    pub fn region(&self) -> &RegionId {
        match self {
            Action::CreateNodes { region, .. }
            | Action::MarkDraining { region, .. }
            | Action::EvictPlayers { region, .. }
            | Action::DeleteNode { region, .. }
            | Action::Hold { region, .. } => region,
        }
    }

    pub fn reasons(&self) -> &[Reason] {
        match self {
            Action::CreateNodes { reasons, .. }
            | Action::MarkDraining { reasons, .. }
            | Action::EvictPlayers { reasons, .. }
            | Action::DeleteNode { reasons, .. }
            | Action::Hold { reasons, .. } => reasons,
        }
    }

    /// The node an action targets, if it targets one.
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Action::MarkDraining { node, .. }
            | Action::EvictPlayers { node, .. }
            | Action::DeleteNode { node, .. } => Some(node),
            Action::CreateNodes { .. } | Action::Hold { .. } => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNodes { region, count, .. } => {
                write!(formatter, "create {count} node(s) in {region}")?;
            }
            Action::MarkDraining {
                region,
                node,
                deadline_ms,
                ..
            } => write!(
                formatter,
                "mark {node} in {region} draining until {deadline_ms}"
            )?,
            Action::EvictPlayers { region, node, .. } => {
                write!(formatter, "evict players from {node} in {region}")?;
            }
            Action::DeleteNode { region, node, .. } => {
                write!(formatter, "delete {node} in {region}")?;
            }
            Action::Hold { region, .. } => write!(formatter, "hold {region}")?,
        }
        let mut separator = ": ";
        for reason in self.reasons() {
            write!(formatter, "{separator}{reason}")?;
            separator = "; ";
        }
        Ok(())
    }
}

/// Which ceiling limited a scale-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaximumScope {
    Region,
    Fleet,
}

/// Why an action was chosen (or why the policy held). Structured so logs and tests can match
/// on values; `Display` gives a short human sentence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// Spare seats fell below the buffer (counting booting and requested nodes).
    BufferBreach {
        spare_fraction: f64,
        buffer: f64,
        capacity_seats: u64,
        demand_seats: u64,
    },
    /// Fewer nodes than the floor (`min_nodes` or a scheduled floor).
    BelowFloor {
        nodes: u32,
        floor: u32,
        scheduled: bool,
    },
    /// At least `min_pressure_signals` signals pressed for the whole window.
    SustainedPressure {
        signals: Vec<PressureSignal>,
        window_ms: u64,
    },
    /// Wanted more nodes than the ceiling allows.
    ClampedToMaximum {
        wanted: u32,
        allowed: u32,
        scope: MaximumScope,
    },
    /// Some signals press but not enough of them for long enough.
    PressureNotSustained {
        pressing: Vec<PressureSignal>,
        sustained: Vec<PressureSignal>,
        required: u32,
    },
    ScaleOutCooldown {
        remaining_ms: u64,
    },
    /// Sustained pressure, but booting or requested nodes already cover it.
    BootingNodesCoverPressure {
        booting: u32,
    },
    /// Buffer fine, no pressure: the normal steady state.
    BufferHealthy {
        spare_fraction: f64,
    },
    /// Use stayed low for the scale-in window; this is the emptiest node.
    SustainedLowUse {
        since_ms: u64,
        spare_fraction_after_removal: f64,
        node_players: u32,
    },
    /// A booting node never became active: retire it (it is billed like a working one).
    BootTimedOut {
        booting_for_ms: u64,
    },
    /// Low use, but removing the emptiest node would leave less spare than the buffer.
    BufferWouldBreakAfterRemoval {
        spare_fraction_after_removal: f64,
        buffer: f64,
    },
    AtFloor {
        nodes: u32,
        floor: u32,
    },
    /// Only one retirement at a time per region.
    RetirementInProgress {
        node: NodeId,
    },
    /// No scale-in while nodes are still booting or requested.
    NodesBooting {
        booting: u32,
    },
    ScaleInDelayAfterScaleOut {
        remaining_ms: u64,
    },
    ScaleInCooldown {
        remaining_ms: u64,
    },
    LowUseNotSustained {
        remaining_ms: u64,
    },
    /// The draining node has no players left.
    DrainedEmpty,
    /// The drain deadline passed with players still on the node.
    DrainDeadlinePassed {
        players: u32,
        deadline_ms: u64,
    },
    /// Players were told to re-matchmake and had their grace period.
    EvictionGraceElapsed {
        evicted_at_ms: u64,
        players: u32,
    },
    /// Drain under way; waiting for players to leave or for the deadline.
    DrainInProgress {
        node: NodeId,
        players: u32,
        deadline_ms: u64,
    },
    /// The snapshot showed a DRAINING node the policy did not start (operator, restart); it is
    /// now tracked like any retirement.
    AdoptedDrainingNode {
        deadline_ms: u64,
    },
    /// An earlier MarkDraining or DeleteNode has not shown up in the snapshot yet.
    RetryingEarlierAction {
        first_issued_ms: u64,
    },
    /// Region has no nodes and no demand: scaled to zero on purpose.
    ScaledToZero,
}

impl fmt::Display for Reason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BufferBreach {
                spare_fraction,
                buffer,
                capacity_seats,
                demand_seats,
            } => write!(
                formatter,
                "spare seats {:.1}% below buffer {:.1}% ({demand_seats} of {capacity_seats} seats wanted)",
                spare_fraction * 100.0,
                buffer * 100.0
            ),
            Reason::BelowFloor {
                nodes,
                floor,
                scheduled,
            } => write!(
                formatter,
                "{nodes} node(s) below {}floor {floor}",
                if *scheduled { "scheduled " } else { "" }
            ),
            Reason::SustainedPressure { signals, window_ms } => write!(
                formatter,
                "{} pressed for {} s",
                join_signals(signals),
                window_ms / 1000
            ),
            Reason::ClampedToMaximum {
                wanted,
                allowed,
                scope,
            } => write!(
                formatter,
                "wanted {wanted} node(s), {:?} maximum allows {allowed}",
                scope
            ),
            Reason::PressureNotSustained {
                pressing,
                sustained,
                required,
            } => write!(
                formatter,
                "pressing [{}], sustained [{}], need {required} sustained",
                join_signals(pressing),
                join_signals(sustained)
            ),
            Reason::ScaleOutCooldown { remaining_ms } => {
                write!(
                    formatter,
                    "scale-out cooldown, {} s left",
                    remaining_ms / 1000
                )
            }
            Reason::BootingNodesCoverPressure { booting } => {
                write!(formatter, "{booting} booting node(s) cover the pressure")
            }
            Reason::BufferHealthy { spare_fraction } => {
                write!(formatter, "spare seats {:.1}%", spare_fraction * 100.0)
            }
            Reason::SustainedLowUse {
                since_ms,
                spare_fraction_after_removal,
                node_players,
            } => write!(
                formatter,
                "low use since {since_ms}, emptiest node has {node_players} player(s), {:.1}% spare after removal",
                spare_fraction_after_removal * 100.0
            ),
            Reason::BootTimedOut { booting_for_ms } => {
                write!(formatter, "still booting after {} s", booting_for_ms / 1000)
            }
            Reason::BufferWouldBreakAfterRemoval {
                spare_fraction_after_removal,
                buffer,
            } => write!(
                formatter,
                "removal would leave {:.1}% spare, buffer is {:.1}%",
                spare_fraction_after_removal * 100.0,
                buffer * 100.0
            ),
            Reason::AtFloor { nodes, floor } => {
                write!(formatter, "{nodes} node(s), floor is {floor}")
            }
            Reason::RetirementInProgress { node } => {
                write!(formatter, "retirement of {node} in progress")
            }
            Reason::NodesBooting { booting } => {
                write!(formatter, "{booting} node(s) booting or requested")
            }
            Reason::ScaleInDelayAfterScaleOut { remaining_ms } => write!(
                formatter,
                "scale-in delay after scale-out, {} s left",
                remaining_ms / 1000
            ),
            Reason::ScaleInCooldown { remaining_ms } => {
                write!(
                    formatter,
                    "scale-in cooldown, {} s left",
                    remaining_ms / 1000
                )
            }
            Reason::LowUseNotSustained { remaining_ms } => {
                write!(
                    formatter,
                    "low use, {} s until sustained",
                    remaining_ms / 1000
                )
            }
            Reason::DrainedEmpty => write!(formatter, "drained empty"),
            Reason::DrainDeadlinePassed {
                players,
                deadline_ms,
            } => write!(
                formatter,
                "drain deadline {deadline_ms} passed with {players} player(s)"
            ),
            Reason::EvictionGraceElapsed {
                evicted_at_ms,
                players,
            } => write!(
                formatter,
                "players told to re-matchmake at {evicted_at_ms}, {players} left"
            ),
            Reason::DrainInProgress {
                node,
                players,
                deadline_ms,
            } => write!(
                formatter,
                "{node} draining with {players} player(s) until {deadline_ms}"
            ),
            Reason::AdoptedDrainingNode { deadline_ms } => {
                write!(formatter, "adopted a draining node, deadline {deadline_ms}")
            }
            Reason::RetryingEarlierAction { first_issued_ms } => {
                write!(
                    formatter,
                    "retrying an action first issued at {first_issued_ms}"
                )
            }
            Reason::ScaledToZero => write!(formatter, "no nodes and no demand"),
        }
    }
}

fn join_signals(signals: &[PressureSignal]) -> String {
    signals
        .iter()
        .map(|signal| signal.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The numbers behind one region's decision, for the log line and the node gauges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegionAssessment {
    pub region: RegionId,
    pub nodes_active: u32,
    pub nodes_booting: u32,
    pub nodes_draining: u32,
    /// Requested but not yet listed by the snapshot.
    pub nodes_requested: u32,
    pub capacity_seats: u64,
    pub demand_seats: u64,
    /// Free share of capacity; 1.0 when there is neither capacity nor demand.
    pub spare_fraction: f64,
    pub floor: u32,
    pub max_nodes: u32,
    pub pressing: Vec<PressureSignal>,
    pub sustained: Vec<PressureSignal>,
}

/// Everything one evaluation produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub now_ms: u64,
    pub dry_run: bool,
    /// Every action decided, in execution order, including in dry-run mode (for the log).
    pub actions: Vec<Action>,
    pub regions: Vec<RegionAssessment>,
}

impl Decision {
    /// The actions an executor may carry out: all of them, or none in dry-run mode.
    pub fn actions_to_execute(&self) -> &[Action] {
        if self.dry_run { &[] } else { &self.actions }
    }
}
