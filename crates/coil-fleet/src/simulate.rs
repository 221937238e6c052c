//! The discrete-time week: players join and leave, the real autoscaling policy decides, nodes
//! boot, drain and are deleted, and every server's life is recorded for the bill.
//!
//! Owns the fleet model (nodes with seats and players, packing placement like the
//! matchmaker's, boot delays, drains with deadlines and evictions) and its statistics. It
//! must not make its own scaling decisions: every create, drain, eviction and delete comes
//! from `coil_autoscale::decide`. It does no IO and reads no clock; the same seed gives the
//! same week.

use std::collections::VecDeque;

use coil_autoscale::{
    Action, FleetSnapshot, NodeId, NodeSnapshot, NodeState, Policy, PolicyMemory, RegionId,
    RegionLimits, RegionSnapshot, RoomCounts, decide,
};
use serde::Serialize;

use crate::billing::{ServerLife, ServerPurchase};
use crate::traffic::{MINUTES_PER_WEEK, SeededRandom, TrafficShape};

/// Monday 1970-01-05 00:00 UTC: the policy's weekly schedules count from a Monday.
const WEEK_START_MS: u64 = 4 * 24 * 3_600_000;
const MS_PER_MINUTE: u64 = 60_000;
/// Soft cap of a room: the matchmaker stops placing at 120 humans.
const ROOM_SOFT_CAP: u32 = 120;

/// A kind of game node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeKind {
    pub purchase: ServerPurchase,
    pub seats: u32,
}

/// Long-lived nodes that stay all week; the autoscaler adds burst nodes above them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    pub kind: NodeKind,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulationConfig {
    pub region: String,
    pub traffic: TrafficShape,
    pub burst: NodeKind,
    pub baseline: Option<Baseline>,
    pub policy: Policy,
    /// Most game nodes the region may hold (the Hetzner project limit).
    pub max_nodes: u32,
    /// Server create to first heartbeat, uniformly in this range (snapshot boot + ready).
    pub boot_seconds_min: u32,
    pub boot_seconds_max: u32,
    pub mean_session_minutes: f64,
    /// A player who found no seat retries each minute and gives up after this long.
    pub join_patience_minutes: u32,
    /// Minute-to-minute noise on demand, as a share of it.
    pub demand_noise_fraction: f64,
    pub bytes_per_player_per_second: f64,
    pub seed: u64,
    /// Keep one series point every this many minutes.
    pub series_every_minutes: u32,
}

impl SimulationConfig {
    pub fn new(region: &str, traffic: TrafficShape, burst: NodeKind) -> Self {
        Self {
            region: region.to_owned(),
            traffic,
            burst,
            baseline: None,
            policy: Policy::default(),
            max_nodes: 1_000,
            boot_seconds_min: 60,
            boot_seconds_max: 150,
            mean_session_minutes: 20.0,
            join_patience_minutes: 2,
            demand_noise_fraction: 0.02,
            bytes_per_player_per_second: 1034.0,
            seed: 1,
            series_every_minutes: 10,
        }
    }
}

/// One point of the time series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub minute: u32,
    pub demand: f64,
    pub players: u64,
    pub waiting: u64,
    pub nodes_active: u32,
    pub nodes_booting: u32,
    pub nodes_draining: u32,
    pub capacity_seats: u64,
    /// What the servers alive now cost per hour (hourly prices; long-lived at monthly / 730).
    pub cost_eur_per_hour: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimulationStats {
    pub joins: u64,
    /// Joins that found no seat at once and waited at least one step.
    pub joins_delayed: u64,
    /// Players who waited longer than their patience and gave up.
    pub joins_refused: u64,
    pub peak_players: u64,
    pub peak_nodes: u32,
    pub node_hours: f64,
    /// Lowest share of free seats on accepting nodes over the week (negative never happens:
    /// placement never exceeds seats).
    pub lowest_spare_fraction: f64,
    pub lowest_spare_minute: u32,
    pub nodes_created: u32,
    pub drains: u32,
    pub drains_with_eviction: u32,
    pub players_evicted: u64,
    /// Must stay zero: a DeleteNode for a node that still had players.
    pub players_on_deleted_nodes: u64,
    /// Long-lived baseline nodes the policy retired (the policy has no "protected" flag).
    pub baseline_nodes_retired: u32,
    pub decisions: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulationResult {
    pub stats: SimulationStats,
    pub series: Vec<SeriesPoint>,
    #[serde(skip)]
    pub lives: Vec<ServerLife>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SimState {
    Booting { ready_minute: u32 },
    Active,
    Draining,
}

struct SimNode {
    id: NodeId,
    baseline: bool,
    seats: u32,
    players: u32,
    state: SimState,
    created_ms: u64,
    life: usize,
}

struct WaitingCohort {
    since_minute: u32,
    players: u64,
}

/// Hourly cost of a node, for the series: cloud at its hourly price, dedicated at monthly
/// over the month's hours. Supplied by the caller so this module stays price-free.
pub type HourlyCost<'price> = &'price dyn Fn(&ServerPurchase) -> f64;

/// Runs the week.
pub fn simulate(config: &SimulationConfig, hourly_cost: HourlyCost<'_>) -> SimulationResult {
    let mut random = SeededRandom::new(config.seed);
    let region = RegionId::new(config.region.clone());
    let demand = config.traffic.weekly_demand();
    let mut policy = config.policy.clone();
    policy.seats_per_node = config.burst.seats.max(1);
    let baseline_count = config
        .baseline
        .as_ref()
        .map_or(0, |baseline| baseline.count);
    policy.regions.insert(
        region.clone(),
        RegionLimits {
            min_nodes: baseline_count.max(1),
            max_nodes: config.max_nodes.max(baseline_count + 1),
            schedule: Vec::new(),
        },
    );
    let mut memory = PolicyMemory::default();
    let mut nodes: Vec<SimNode> = Vec::new();
    let mut lives: Vec<ServerLife> = Vec::new();
    let mut next_number: u32 = 0;
    let mut stats = SimulationStats {
        lowest_spare_fraction: 1.0,
        ..SimulationStats::default()
    };
    let mut series = Vec::new();
    let mut waiting: VecDeque<WaitingCohort> = VecDeque::new();
    let leave_probability = 1.0 - (-1.0 / config.mean_session_minutes.max(0.1)).exp();

    // Start in steady state: baseline nodes plus enough burst nodes for minute 0 with the
    // buffer, all pre-existing. Those still alive at the end are long-lived in the bill.
    let mut add_node = |nodes: &mut Vec<SimNode>,
                        lives: &mut Vec<ServerLife>,
                        kind: &NodeKind,
                        baseline: bool,
                        minute: Option<u32>,
                        state: SimState| {
        next_number += 1;
        // Baseline names sort after burst names, so on a tie in players the policy picks a
        // burst node as the emptiest.
        let name = if baseline {
            format!("{}-zz-base-{next_number:05}", config.region)
        } else {
            format!("{}-node-{next_number:05}", config.region)
        };
        lives.push(ServerLife {
            purchase: kind.purchase.clone(),
            created_minute: minute,
            deleted_minute: None,
            egress_bytes: 0.0,
        });
        nodes.push(SimNode {
            id: NodeId::new(name),
            baseline,
            seats: kind.seats.max(1),
            players: 0,
            state,
            created_ms: WEEK_START_MS + u64::from(minute.unwrap_or(0)) * MS_PER_MINUTE,
            life: lives.len() - 1,
        });
    };
    if let Some(baseline) = &config.baseline {
        for _ in 0..baseline.count {
            add_node(
                &mut nodes,
                &mut lives,
                &baseline.kind,
                true,
                None,
                SimState::Active,
            );
        }
    }
    let initial_demand = demand[0];
    let buffer = policy.spare_seat_buffer.clamp(0.0, 0.95);
    let baseline_seats: f64 = nodes.iter().map(|node| f64::from(node.seats)).sum();
    let wanted_seats = initial_demand / (1.0 - buffer) - baseline_seats;
    if wanted_seats > 0.0 || nodes.is_empty() {
        let count = (wanted_seats.max(1.0) / f64::from(config.burst.seats.max(1))).ceil() as u32;
        let room = config
            .max_nodes
            .saturating_sub(count_u32(nodes.len()))
            .max(1);
        for _ in 0..count.clamp(1, room) {
            add_node(
                &mut nodes,
                &mut lives,
                &config.burst,
                false,
                None,
                SimState::Active,
            );
        }
    }
    // Initial players, packed.
    let mut initial = initial_demand.round() as u64;
    for node in &mut nodes {
        let placed = initial.min(u64::from(node.seats));
        node.players = placed as u32;
        initial -= placed;
    }
    let seconds_per_step = 60.0;

    for minute in 0..MINUTES_PER_WEEK {
        let now_ms = WEEK_START_MS + u64::from(minute) * MS_PER_MINUTE;

        // Boots finish.
        for node in &mut nodes {
            if let SimState::Booting { ready_minute } = node.state
                && ready_minute <= minute
            {
                node.state = SimState::Active;
            }
        }

        // Leaves: every player leaves with the same chance per minute.
        let mut online: u64 = 0;
        for node in &mut nodes {
            let leaving = random
                .round_randomly(f64::from(node.players) * leave_probability)
                .min(u64::from(node.players));
            node.players -= leaving as u32;
            online += u64::from(node.players);
        }

        // Arrivals: enough to follow the curve (with noise); waiting players count as wanting.
        let noise = 1.0 + config.demand_noise_fraction * (2.0 * random.next_unit() - 1.0);
        let wanted = (demand[minute as usize] * noise).max(0.0);
        let already_waiting: u64 = waiting.iter().map(|cohort| cohort.players).sum();
        let arrivals = random.round_randomly(wanted - online as f64 - already_waiting as f64);
        if arrivals > 0 {
            waiting.push_back(WaitingCohort {
                since_minute: minute,
                players: arrivals,
            });
        }
        stats.joins += arrivals;

        // Placement packs: baseline nodes first, then the oldest burst node with a free seat,
        // so the newest nodes empty out for scale-in (Agones' Packed strategy).
        let mut cursor = 0;
        let order = placement_order(&nodes);
        while let Some(cohort) = waiting.front_mut() {
            while cohort.players > 0 && cursor < order.len() {
                let node = &mut nodes[order[cursor]];
                let free = u64::from(node.seats.saturating_sub(node.players));
                let placed = free.min(cohort.players);
                node.players += placed as u32;
                cohort.players -= placed;
                if node.players >= node.seats {
                    cursor += 1;
                }
            }
            if cohort.players == 0 {
                waiting.pop_front();
            } else {
                break;
            }
        }
        // Whoever is still waiting was delayed; whoever waited too long gives up.
        let mut still_waiting: u64 = 0;
        for cohort in &mut waiting {
            if cohort.since_minute == minute {
                stats.joins_delayed += cohort.players;
            }
        }
        while let Some(cohort) = waiting.front() {
            if minute.saturating_sub(cohort.since_minute) >= config.join_patience_minutes {
                stats.joins_refused += cohort.players;
                waiting.pop_front();
            } else {
                break;
            }
        }
        for cohort in &waiting {
            still_waiting += cohort.players;
        }

        // Egress and the spare on accepting nodes.
        let mut accepting_seats: u64 = 0;
        let mut accepting_players: u64 = 0;
        let mut players_now: u64 = 0;
        let mut cost_per_hour = 0.0;
        let (mut active_count, mut booting_count, mut draining_count) = (0u32, 0u32, 0u32);
        for node in &nodes {
            lives[node.life].egress_bytes +=
                f64::from(node.players) * config.bytes_per_player_per_second * seconds_per_step;
            players_now += u64::from(node.players);
            cost_per_hour += hourly_cost(&lives[node.life].purchase);
            match node.state {
                SimState::Active => {
                    active_count += 1;
                    accepting_seats += u64::from(node.seats);
                    accepting_players += u64::from(node.players);
                }
                SimState::Booting { .. } => booting_count += 1,
                SimState::Draining => draining_count += 1,
            }
        }
        let node_count = count_u32(nodes.len());
        stats.node_hours += f64::from(node_count) / 60.0;
        stats.peak_nodes = stats.peak_nodes.max(node_count);
        stats.peak_players = stats.peak_players.max(players_now);
        if accepting_seats > 0 {
            let spare =
                (accepting_seats as f64 - accepting_players as f64) / accepting_seats as f64;
            if spare < stats.lowest_spare_fraction {
                stats.lowest_spare_fraction = spare;
                stats.lowest_spare_minute = minute;
            }
        }
        if minute % config.series_every_minutes.max(1) == 0 {
            series.push(SeriesPoint {
                minute,
                demand: demand[minute as usize],
                players: players_now,
                waiting: still_waiting,
                nodes_active: active_count,
                nodes_booting: booting_count,
                nodes_draining: draining_count,
                capacity_seats: accepting_seats,
                cost_eur_per_hour: cost_per_hour,
            });
        }

        // The policy decides.
        let snapshot = fleet_snapshot(&region, &nodes, still_waiting, config, &policy);
        let (decision, next_memory) = decide(&snapshot, &policy, memory, now_ms);
        memory = next_memory;
        stats.decisions += 1;
        for action in decision.actions_to_execute() {
            match action {
                Action::CreateNodes { count, .. } => {
                    for _ in 0..*count {
                        let boot_seconds = config.boot_seconds_min
                            + (random.next_unit()
                                * f64::from(
                                    config
                                        .boot_seconds_max
                                        .saturating_sub(config.boot_seconds_min),
                                )) as u32;
                        let ready_minute = minute + boot_seconds.div_ceil(60).max(1);
                        add_node(
                            &mut nodes,
                            &mut lives,
                            &config.burst,
                            false,
                            Some(minute),
                            SimState::Booting { ready_minute },
                        );
                        stats.nodes_created += 1;
                    }
                }
                Action::MarkDraining { node, .. } => {
                    if let Some(target) = nodes.iter_mut().find(|sim| &sim.id == node)
                        && target.state != SimState::Draining
                    {
                        target.state = SimState::Draining;
                        stats.drains += 1;
                        if target.baseline {
                            stats.baseline_nodes_retired += 1;
                        }
                    }
                }
                Action::EvictPlayers { node, .. } => {
                    if let Some(target) = nodes.iter_mut().find(|sim| &sim.id == node) {
                        // Evicted clients re-matchmake at once; they queue like new joins.
                        let evicted = u64::from(target.players);
                        target.players = 0;
                        if evicted > 0 {
                            stats.players_evicted += evicted;
                            stats.drains_with_eviction += 1;
                            waiting.push_back(WaitingCohort {
                                since_minute: minute + 1,
                                players: evicted,
                            });
                        }
                    }
                }
                Action::DeleteNode { node, .. } => {
                    if let Some(position) = nodes.iter().position(|sim| &sim.id == node) {
                        let removed = nodes.remove(position);
                        stats.players_on_deleted_nodes += u64::from(removed.players);
                        lives[removed.life].deleted_minute = Some(minute + 1);
                    }
                }
                Action::Hold { .. } => {}
            }
        }
    }
    SimulationResult {
        stats,
        series,
        lives,
    }
}

fn placement_order(nodes: &[SimNode]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nodes.len())
        .filter(|index| nodes[*index].state == SimState::Active)
        .collect();
    // Nodes are kept in creation order; baseline nodes go first.
    order.sort_by_key(|index| (!nodes[*index].baseline, *index));
    order
}

fn fleet_snapshot(
    region: &RegionId,
    nodes: &[SimNode],
    waiting: u64,
    config: &SimulationConfig,
    policy: &Policy,
) -> FleetSnapshot {
    let fill = policy.thresholds.cpu_utilization.max(0.05);
    let mut region_snapshot = RegionSnapshot::new(region.clone());
    region_snapshot.unplaced_requests = u32::try_from(waiting).unwrap_or(u32::MAX);
    region_snapshot.nodes = nodes
        .iter()
        .map(|node| {
            let state = match node.state {
                SimState::Booting { .. } => NodeState::Booting,
                SimState::Active => NodeState::Active,
                SimState::Draining => NodeState::Draining,
            };
            let mut snapshot = NodeSnapshot::new(node.id.clone(), state);
            snapshot.created_at_ms = node.created_ms;
            snapshot.seat_capacity = Some(node.seats);
            snapshot.humans = node.players;
            snapshot.open_connections = node.players;
            // A full node sits at the fill fraction of its breaking load, which is the CPU
            // threshold: CPU share = fill × players / seats.
            snapshot.cpu_utilization = fill * f64::from(node.players) / f64::from(node.seats);
            snapshot.egress_bytes_per_second =
                f64::from(node.players) * config.bytes_per_player_per_second;
            snapshot.rooms = RoomCounts {
                warm: 0,
                active: node.players.div_ceil(ROOM_SOFT_CAP),
                draining: 0,
            };
            snapshot
        })
        .collect();
    region_snapshot.humans = nodes.iter().map(|node| node.players).sum();
    FleetSnapshot {
        regions: vec![region_snapshot],
    }
}

fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(peak: u32, seed: u64) -> SimulationConfig {
        let mut config = SimulationConfig::new(
            "us-east",
            TrafficShape::default_week(peak, 1.0),
            NodeKind {
                purchase: ServerPurchase::Cloud {
                    server_type: "ccx33".to_owned(),
                },
                seats: 600,
            },
        );
        config.seed = seed;
        config
    }

    fn no_cost(_: &ServerPurchase) -> f64 {
        0.0
    }

    #[test]
    fn the_same_seed_gives_the_same_week_and_another_seed_a_different_one() {
        let first = simulate(&config(6_000, 3), &no_cost);
        let second = simulate(&config(6_000, 3), &no_cost);
        let third = simulate(&config(6_000, 4), &no_cost);
        assert_eq!(first.stats, second.stats);
        assert_eq!(first.series, second.series);
        assert_eq!(first.lives, second.lives);
        assert_ne!(first.series, third.series);
    }

    #[test]
    fn with_ample_maximum_no_join_is_refused_no_node_is_deleted_with_players_and_spare_stays_positive()
     {
        let result = simulate(&config(12_000, 11), &no_cost);
        let stats = &result.stats;
        assert_eq!(stats.joins_refused, 0, "{stats:?}");
        assert_eq!(stats.players_on_deleted_nodes, 0);
        assert!(stats.lowest_spare_fraction >= 0.0, "{stats:?}");
        // The fleet really scaled: up for the peaks, down at night.
        assert!(stats.nodes_created > 0 && stats.drains > 0, "{stats:?}");
        let peak_players = stats.peak_players as f64;
        assert!(peak_players > 11_000.0, "{peak_players}");
        // Capacity is never negative and never below players on accepting nodes.
        for point in &result.series {
            assert!(point.capacity_seats as f64 >= 0.0);
        }
    }

    #[test]
    fn a_tight_maximum_refuses_joins_at_the_spike() {
        let mut tight = config(12_000, 11);
        // 12,000 players need 24+ nodes of 600 seats with the buffer.
        tight.max_nodes = 12;
        let result = simulate(&tight, &no_cost);
        assert!(result.stats.joins_refused > 0, "{:?}", result.stats);
        assert!(result.stats.peak_nodes <= 12);
    }

    #[test]
    fn baseline_nodes_stay_all_week_and_are_long_lived_in_the_bill() {
        let mut with_baseline = config(12_000, 5);
        with_baseline.baseline = Some(Baseline {
            kind: NodeKind {
                purchase: ServerPurchase::Dedicated {
                    name: "ax42".to_owned(),
                },
                seats: 1_000,
            },
            count: 4,
        });
        let result = simulate(&with_baseline, &no_cost);
        assert_eq!(result.stats.baseline_nodes_retired, 0, "{:?}", result.stats);
        let long_lived_dedicated = result
            .lives
            .iter()
            .filter(|life| {
                life.is_long_lived() && matches!(life.purchase, ServerPurchase::Dedicated { .. })
            })
            .count();
        assert_eq!(long_lived_dedicated, 4);
        assert_eq!(result.stats.joins_refused, 0);
    }
}
