//! Pressure signals: turning one region's node readings into "how hard is each signal pressing".
//!
//! Owns `PressureSignal` and the per-region readings. Each reading is a ratio to its
//! threshold: 1.0 means "at the threshold", 2.0 "twice the threshold". Node signals are means
//! over ACTIVE nodes only: a booting node has no load yet and a draining node receives no new
//! players, so counting either would dilute or distort the region's real pressure. A mean (not
//! a max) keeps one misbehaving node from growing the whole fleet; that node is a placement
//! or a bug problem, not a capacity one. Must not keep state: windows live in `PolicyMemory`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::PressureThresholds;
use crate::snapshot::{NodeSnapshot, sanitized};

/// The distinct signals that can justify a pressure scale-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PressureSignal {
    Cpu,
    Memory,
    /// Tick p95, tick p99 or the overrun rate above threshold: one signal, because all three
    /// measure the same thing (the tick loop running out of budget).
    TickHealth,
    Connections,
    Egress,
    /// Too many rooms above the soft cap: players keep landing in full rooms.
    RoomsAboveSoftCap,
    /// No warm room and no free room slot on any active node: a new room has nowhere to go.
    RoomSlotsExhausted,
}

impl PressureSignal {
    pub const ALL: [PressureSignal; 7] = [
        PressureSignal::Cpu,
        PressureSignal::Memory,
        PressureSignal::TickHealth,
        PressureSignal::Connections,
        PressureSignal::Egress,
        PressureSignal::RoomsAboveSoftCap,
        PressureSignal::RoomSlotsExhausted,
    ];

    /// Load signals scale with players per node, so "1.3 × the threshold" means "about 1.3 ×
    /// the nodes"; room signals are yes/no and only ever justify one more node.
    pub fn is_proportional_to_load(self) -> bool {
        matches!(
            self,
            PressureSignal::Cpu
                | PressureSignal::Memory
                | PressureSignal::TickHealth
                | PressureSignal::Connections
                | PressureSignal::Egress
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PressureSignal::Cpu => "cpu",
            PressureSignal::Memory => "memory",
            PressureSignal::TickHealth => "tick_health",
            PressureSignal::Connections => "connections",
            PressureSignal::Egress => "egress",
            PressureSignal::RoomsAboveSoftCap => "rooms_above_soft_cap",
            PressureSignal::RoomSlotsExhausted => "room_slots_exhausted",
        }
    }

    fn index(self) -> usize {
        match self {
            PressureSignal::Cpu => 0,
            PressureSignal::Memory => 1,
            PressureSignal::TickHealth => 2,
            PressureSignal::Connections => 3,
            PressureSignal::Egress => 4,
            PressureSignal::RoomsAboveSoftCap => 5,
            PressureSignal::RoomSlotsExhausted => 6,
        }
    }
}

impl fmt::Display for PressureSignal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Each signal's reading as a ratio to its threshold; 0.0 when the signal is off or silent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SignalRatios {
    ratios: [f64; 7],
}

impl SignalRatios {
    pub fn ratio(&self, signal: PressureSignal) -> f64 {
        self.ratios[signal.index()]
    }

    pub fn is_pressing(&self, signal: PressureSignal) -> bool {
        self.ratio(signal) >= 1.0
    }

    fn set(&mut self, signal: PressureSignal, ratio: f64) {
        self.ratios[signal.index()] = sanitized(ratio);
    }
}

/// `value / threshold`, or 0 when the threshold switches the signal off.
fn ratio_to(value: f64, threshold: f64) -> f64 {
    let threshold = sanitized(threshold);
    if threshold > 0.0 {
        sanitized(value) / threshold
    } else {
        0.0
    }
}

/// Reads every signal for one region from its active nodes and directory counts.
pub(crate) fn read_signals(
    rooms_above_soft_cap: u32,
    warm_rooms: u32,
    active_nodes: &[&NodeSnapshot],
    thresholds: &PressureThresholds,
) -> SignalRatios {
    let mut ratios = SignalRatios::default();
    if active_nodes.is_empty() {
        return ratios;
    }
    let count = active_nodes.len() as f64;
    let mean = |reading: fn(&NodeSnapshot) -> f64| -> f64 {
        active_nodes
            .iter()
            .map(|node| sanitized(reading(node)))
            .sum::<f64>()
            / count
    };
    ratios.set(
        PressureSignal::Cpu,
        ratio_to(
            mean(|node| node.cpu_utilization),
            thresholds.cpu_utilization,
        ),
    );
    ratios.set(
        PressureSignal::Memory,
        ratio_to(
            mean(|node| node.memory_utilization),
            thresholds.memory_utilization,
        ),
    );
    let tick_ratio = ratio_to(mean(|node| node.tick_p95_ms), thresholds.tick_p95_ms)
        .max(ratio_to(
            mean(|node| node.tick_p99_ms),
            thresholds.tick_p99_ms,
        ))
        .max(ratio_to(
            mean(|node| node.tick_overrun_rate),
            thresholds.tick_overrun_rate,
        ));
    ratios.set(PressureSignal::TickHealth, tick_ratio);
    let near = sanitized(thresholds.near_limit_fraction);
    ratios.set(
        PressureSignal::Connections,
        ratio_to(
            mean(|node| f64::from(node.open_connections)),
            f64::from(thresholds.node_connection_limit) * near,
        ),
    );
    ratios.set(
        PressureSignal::Egress,
        ratio_to(
            mean(|node| node.egress_bytes_per_second),
            sanitized(thresholds.node_egress_limit_bytes_per_second) * near,
        ),
    );
    let active_rooms: u64 = active_nodes
        .iter()
        .map(|node| u64::from(node.rooms.active))
        .sum();
    if rooms_above_soft_cap > 0 {
        let share = f64::from(rooms_above_soft_cap) / active_rooms.max(1) as f64;
        ratios.set(
            PressureSignal::RoomsAboveSoftCap,
            ratio_to(share, thresholds.rooms_above_soft_cap_fraction),
        );
    }
    // Only judge room slots when every active node reports its room capacity: a node that
    // does not report it would otherwise look permanently full.
    let all_report_capacity = active_nodes.iter().all(|node| node.room_capacity > 0);
    if all_report_capacity && warm_rooms == 0 {
        let free_slots: u64 = active_nodes
            .iter()
            .map(|node| u64::from(node.room_capacity.saturating_sub(node.rooms.total())))
            .sum();
        let warm_on_nodes: u64 = active_nodes
            .iter()
            .map(|node| u64::from(node.rooms.warm))
            .sum();
        if free_slots == 0 && warm_on_nodes == 0 {
            ratios.set(PressureSignal::RoomSlotsExhausted, 1.0);
        }
    }
    ratios
}
