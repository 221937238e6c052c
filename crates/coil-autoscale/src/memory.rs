//! What the policy remembers between evaluations, as a value that goes in and comes out.
//!
//! Owns `PolicyMemory`: when each signal started pressing, when low use started, the last
//! scale-out and retirement times, creations not yet visible, and the retirements in flight.
//! Keeping it a plain serializable value (not hidden state) is what keeps `decide` pure: the
//! controller may persist it across restarts, the simulation may fork it, a test may build it.
//! It must not hold anything derived from a clock other than the `now_ms` handed to `decide`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::signals::PressureSignal;
use crate::snapshot::{NodeId, RegionId};

/// History carried from one `decide` call to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyMemory {
    pub(crate) regions: BTreeMap<RegionId, RegionMemory>,
}

/// History for one region.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegionMemory {
    /// The `now_ms` of the previous evaluation; a long gap restarts every window.
    pub last_evaluated_ms: Option<u64>,
    /// Since when each signal has pressed at every evaluation.
    pub pressing_since_ms: BTreeMap<PressureSignal, u64>,
    /// Since when use has been low at every evaluation.
    pub low_use_since_ms: Option<u64>,
    pub last_scale_out_ms: Option<u64>,
    pub last_pressure_scale_out_ms: Option<u64>,
    pub last_retirement_finished_ms: Option<u64>,
    pub pending_creation: Option<PendingCreation>,
    pub retirements: BTreeMap<NodeId, Retirement>,
}

/// Nodes asked for that the snapshot may not list yet: they count as capacity until the
/// region lists `expected_nodes` servers or `expires_at_ms` passes (a refused create).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCreation {
    /// Servers (not draining) the region should list once the creations land.
    pub expected_nodes: u32,
    pub requested_at_ms: u64,
    pub expires_at_ms: u64,
}

/// One node on its way out: marked, maybe evicted, maybe deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    pub marked_at_ms: u64,
    pub deadline_ms: u64,
    /// When MarkDraining was last issued (re-issued if the node still shows active).
    pub last_mark_issued_ms: u64,
    /// When players were told to re-matchmake; a node with players is never deleted before.
    pub eviction_issued_ms: Option<u64>,
    pub delete_issued_ms: Option<u64>,
}

impl PolicyMemory {
    /// History of one region, if any.
    pub fn region(&self, region: &RegionId) -> Option<&RegionMemory> {
        self.regions.get(region)
    }

    /// Retirements in flight across all regions.
    pub fn retirements(&self) -> impl Iterator<Item = (&RegionId, &NodeId, &Retirement)> {
        self.regions.iter().flat_map(|(region, memory)| {
            memory
                .retirements
                .iter()
                .map(move |(node, retirement)| (region, node, retirement))
        })
    }

    /// The executor calls this when creates were refused (Hetzner `resource_unavailable`,
    /// rate limit, account limit) so the next decision sees the gap at once instead of
    /// counting phantom capacity until `pending_create_timeout_ms`.
    pub fn record_creations_failed(&mut self, region: &RegionId, failed: u32) {
        if let Some(memory) = self.regions.get_mut(region)
            && let Some(pending) = memory.pending_creation.as_mut()
        {
            pending.expected_nodes = pending.expected_nodes.saturating_sub(failed);
        }
    }
}
