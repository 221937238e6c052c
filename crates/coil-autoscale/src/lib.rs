//! Coil's cost-first autoscaling policy, as a pure function.
//!
//! `decide(snapshot, policy, memory, now_ms) -> (Decision, PolicyMemory)` looks at a fleet
//! snapshot (per node: CPU, memory, connections, egress, tick p95/p99 and overruns, rooms and
//! seats; per region: humans, bots, rooms above the soft cap, WARM rooms, reserved seats) and
//! answers with actions as values: `CreateNodes`, `MarkDraining`, `EvictPlayers`, `DeleteNode`,
//! `Hold`, each carrying the reasons that justify it.
//!
//! # What this crate must not do
//! No IO, no clock, no tokio, no logging, no metrics registry: time arrives as `now_ms`, history
//! arrives and leaves as a `PolicyMemory` value. That is what lets the same code drive the live
//! controller (Redis, local processes or Hetzner) and a week-long discrete-time fleet
//! simulation, deterministically and in microseconds. Serde derives exist only so snapshots,
//! policies, memory and decisions can be logged and loaded from config.
//!
//! # Layout
//! - `snapshot`: the observed fleet (input).
//! - `policy`: every knob, its defaults, `Policy::validate`, scheduled floors.
//! - `memory`: history between calls (windows, cooldowns, pending creations, retirements).
//! - `signals`: pressure signals as ratios to their thresholds.
//! - `decide`: the rules.
//! - `decision`: actions, reasons, the per-region numbers.
//! - `metrics`: metric names and label values the controller records.
//!
//! The rules and the reasons for every default are written up in `docs/autoscaling.md`.

mod decide;
mod decision;
mod memory;
pub mod metrics;
mod policy;
mod signals;
mod snapshot;

pub use decide::decide;
pub use decision::{Action, Decision, MaximumScope, Reason, RegionAssessment};
pub use memory::{PendingCreation, PolicyMemory, RegionMemory, Retirement};
pub use policy::{Policy, PolicyError, PressureThresholds, RegionLimits, ScheduledFloor, Weekday};
pub use signals::{PressureSignal, SignalRatios};
pub use snapshot::{
    FleetSnapshot, NodeId, NodeSnapshot, NodeState, RegionId, RegionSnapshot, RoomCounts,
};
