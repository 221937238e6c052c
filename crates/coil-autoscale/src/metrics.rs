//! Metric names and label values for autoscaler decisions, declared in one place.
//!
//! This crate records nothing (it has no registry and no IO); the controller owns the
//! `metrics` recorder and uses these names and labels so dashboards and alerts match the
//! names Coil exports. Labels are bounded: an action kind or a node state, never a node id.

use crate::decision::{Action, Decision};

/// Counter, label `action` = one of [`DECISION_ACTION_LABELS`].
pub const DECISIONS_TOTAL: &str = "coil_autoscaler_decisions_total";
/// Gauge, label `state` = `booting` | `active` | `draining`.
pub const NODES: &str = "coil_autoscaler_nodes";

pub const DECISION_ACTION_LABELS: [&str; 5] = ["scale_out", "scale_in", "drain", "delete", "hold"];

impl Action {
    /// The `action` label of `coil_autoscaler_decisions_total` for this action. Starting a
    /// retirement (MarkDraining) is the scale-in decision; EvictPlayers is the forced end of a
    /// drain.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Action::CreateNodes { .. } => "scale_out",
            Action::MarkDraining { .. } => "scale_in",
            Action::EvictPlayers { .. } => "drain",
            Action::DeleteNode { .. } => "delete",
            Action::Hold { .. } => "hold",
        }
    }
}

impl Decision {
    /// How many actions of each label this decision holds, in `DECISION_ACTION_LABELS` order,
    /// so a controller can increment the counter without matching on actions itself.
    pub fn counts_by_metric_label(&self) -> [(&'static str, u64); 5] {
        let mut counts = DECISION_ACTION_LABELS.map(|label| (label, 0_u64));
        for action in &self.actions {
            let label = action.metric_label();
            if let Some(entry) = counts.iter_mut().find(|(name, _)| *name == label) {
                entry.1 += 1;
            }
        }
        counts
    }

    /// Node gauge values `(state, count)` summed over regions.
    pub fn node_gauges(&self) -> [(&'static str, u64); 3] {
        let mut booting = 0_u64;
        let mut active = 0_u64;
        let mut draining = 0_u64;
        for region in &self.regions {
            booting += u64::from(region.nodes_booting) + u64::from(region.nodes_requested);
            active += u64::from(region.nodes_active);
            draining += u64::from(region.nodes_draining);
        }
        [
            ("booting", booting),
            ("active", active),
            ("draining", draining),
        ]
    }
}
