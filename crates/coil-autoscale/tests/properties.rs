//! Property tests: `decide` driven over random fleets and random demand series through a small
//! fleet model (servers boot late or never, creates get refused, marks fail to land, players
//! linger after an eviction). After every decision the safety invariants must hold:
//! - servers listed plus creations in flight never exceed the region or fleet maximum;
//! - only a node the snapshot shows DRAINING is ever deleted, and one with players only after
//!   its deadline and after an EvictPlayers issued in an earlier decision;
//! - a region never has two retirements at once;
//! - every action names a node that exists, and the same inputs give the same decision.
//!
//! A second property feeds arbitrary (even invalid) policies and garbage readings to show that
//! `decide` never panics on untrusted input.

use std::collections::{BTreeMap, BTreeSet};

use coil_autoscale::{
    Action, FleetSnapshot, NodeId, NodeSnapshot, NodeState, Policy, PolicyMemory, RegionId,
    RegionLimits, RegionSnapshot, decide,
};
use proptest::prelude::*;

const SEATS_PER_NODE: u32 = 100;

/// SplitMix64: a tiny deterministic generator so one proptest seed drives a whole series.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

#[derive(Clone, Debug)]
struct ModelNode {
    id: NodeId,
    region: usize,
    state: NodeState,
    created_at_ms: u64,
    /// When the node becomes active; `None` for a boot that never finishes.
    active_at_ms: Option<u64>,
    humans: u32,
    reserved: u32,
    drain_deadline_ms: Option<u64>,
    evicted_at_ms: Option<u64>,
}

struct InFlight {
    region: usize,
    lands_at_ms: u64,
}

#[derive(Clone, Debug)]
struct Scenario {
    seed: u64,
    regions: usize,
    min_nodes: u32,
    max_nodes: u32,
    max_total_nodes: Option<u32>,
    step_ms: u64,
    steps: usize,
    create_lag_ms: u64,
    report_refusals: bool,
}

fn scenarios() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        1_usize..=3,
        0_u32..=3,
        1_u32..=12,
        prop::option::of(2_u32..=20),
        prop::sample::select(vec![5_000_u64, 10_000, 15_000, 30_000]),
        150_usize..=350,
        prop::sample::select(vec![0_u64, 5_000, 20_000, 45_000]),
        any::<bool>(),
    )
        .prop_map(
            |(
                seed,
                regions,
                min_nodes,
                max_extra,
                max_total_nodes,
                step_ms,
                steps,
                create_lag_ms,
                report_refusals,
            )| Scenario {
                seed,
                regions,
                min_nodes,
                max_nodes: min_nodes + max_extra,
                max_total_nodes: max_total_nodes
                    .map(|max_total| max_total.max(min_nodes * regions as u32)),
                step_ms,
                steps,
                create_lag_ms,
                report_refusals,
            },
        )
}

/// A policy with short windows so a few hundred steps go through every phase.
fn fast_policy(scenario: &Scenario) -> Policy {
    Policy {
        seats_per_node: SEATS_PER_NODE,
        scale_out_window_ms: 60_000,
        scale_out_cooldown_ms: 60_000,
        scale_in_window_ms: 180_000,
        scale_in_delay_after_scale_out_ms: 180_000,
        scale_in_cooldown_ms: 60_000,
        drain_deadline_ms: 120_000,
        eviction_grace_ms: 20_000,
        action_retry_ms: 30_000,
        boot_timeout_ms: 180_000,
        pending_create_timeout_ms: 90_000,
        stale_history_after_ms: 120_000,
        default_limits: RegionLimits {
            min_nodes: scenario.min_nodes,
            max_nodes: scenario.max_nodes,
            schedule: Vec::new(),
        },
        max_total_nodes: scenario.max_total_nodes,
        ..Policy::default()
    }
}

fn region_id(index: usize) -> RegionId {
    RegionId::new(format!("region-{index}"))
}

struct Model {
    nodes: Vec<ModelNode>,
    in_flight: Vec<InFlight>,
    next_node: u64,
    demand: Vec<u32>,
    /// Nodes that got EvictPlayers, and when (from the decisions, not the policy's memory).
    evicted: BTreeMap<NodeId, u64>,
}

impl Model {
    fn snapshot(&self, now_ms: u64, random: &mut SplitMix) -> FleetSnapshot {
        let mut regions: Vec<RegionSnapshot> = (0..self.demand.len())
            .map(|index| RegionSnapshot::new(region_id(index)))
            .collect();
        for node in &self.nodes {
            let mut listed = NodeSnapshot::new(node.id.clone(), node.state);
            listed.created_at_ms = node.created_at_ms;
            listed.drain_deadline_ms = node.drain_deadline_ms;
            listed.humans = node.humans;
            listed.seats_reserved = node.reserved;
            listed.open_connections = node.humans + node.reserved;
            if node.state == NodeState::Active {
                let load = f64::from(node.humans) / f64::from(SEATS_PER_NODE);
                listed.cpu_utilization = (load * 0.85 + random.unit() * 0.1).min(1.0);
                listed.memory_utilization = 0.3 + 0.5 * load;
                listed.tick_p95_ms = 8.0 + 25.0 * load;
                listed.tick_p99_ms = 10.0 + 35.0 * load;
                listed.egress_bytes_per_second = f64::from(node.humans) * 20_000.0;
                listed.rooms.active = node.humans.div_ceil(120);
                listed.room_capacity = 4;
            }
            let region = &mut regions[node.region];
            region.humans += node.humans;
            region.seats_reserved += node.reserved;
            region.nodes.push(listed);
        }
        for (index, region) in regions.iter_mut().enumerate() {
            let placed: u32 = region.humans;
            region.unplaced_requests = self.demand[index].saturating_sub(placed).min(50);
            let _ = now_ms;
        }
        FleetSnapshot { regions }
    }

    /// Moves the world forward: boots finish, creations land, demand walks, players settle.
    fn advance(&mut self, now_ms: u64, random: &mut SplitMix, scenario: &Scenario) {
        let landed: Vec<usize> = self
            .in_flight
            .iter()
            .filter(|flight| flight.lands_at_ms <= now_ms)
            .map(|flight| flight.region)
            .collect();
        self.in_flight.retain(|flight| flight.lands_at_ms > now_ms);
        for region in landed {
            self.add_node(region, now_ms, random);
        }
        for node in &mut self.nodes {
            if node.state == NodeState::Booting && node.active_at_ms.is_some_and(|at| at <= now_ms)
            {
                node.state = NodeState::Active;
            }
        }
        for demand in &mut self.demand {
            let step = random.below(61) as i64 - 30;
            let jump = if random.chance(2) {
                random.below(801) as i64 - 400
            } else {
                0
            };
            *demand = (i64::from(*demand) + step + jump).clamp(0, 1_500) as u32;
        }
        // Players on draining nodes leave little by little (a round lasts minutes); after an
        // eviction most go at once and a few linger.
        for node in &mut self.nodes {
            if node.state == NodeState::Draining {
                let leaving = if node.evicted_at_ms.is_some() {
                    if random.chance(60) {
                        node.humans
                    } else {
                        node.humans / 2
                    }
                } else {
                    (f64::from(node.humans) * random.unit() * 0.08) as u32
                };
                node.humans -= leaving;
                if random.chance(30) {
                    node.reserved = 0;
                }
            }
        }
        // Seat everyone else evenly over active nodes (new rooms go to the least-loaded node),
        // up to the seat count, with some jitter so one node is the emptiest.
        for region in 0..self.demand.len() {
            let on_draining: u32 = self
                .nodes
                .iter()
                .filter(|node| node.region == region && node.state == NodeState::Draining)
                .map(|node| node.humans)
                .sum();
            let mut to_place = self.demand[region].saturating_sub(on_draining);
            let serving = self
                .nodes
                .iter()
                .filter(|node| node.region == region && node.state == NodeState::Active)
                .count() as u32;
            let mut remaining_nodes = serving;
            for node in self
                .nodes
                .iter_mut()
                .filter(|node| node.region == region && node.state == NodeState::Active)
            {
                let fair = to_place.div_ceil(remaining_nodes.max(1));
                let jitter = random.below(u64::from(fair / 4 + 1)) as u32;
                let seated = fair
                    .saturating_sub(jitter)
                    .min(SEATS_PER_NODE)
                    .min(to_place);
                node.humans = seated;
                node.reserved = if seated > 0 && random.chance(20) {
                    random.below(3) as u32
                } else {
                    0
                };
                to_place -= seated;
                remaining_nodes -= 1;
            }
        }
        let _ = scenario;
    }

    fn add_node(&mut self, region: usize, now_ms: u64, random: &mut SplitMix) {
        self.next_node += 1;
        let boot = if random.chance(5) {
            None
        } else {
            Some(now_ms + 5_000 + random.below(60_000))
        };
        self.nodes.push(ModelNode {
            id: NodeId::new(format!("node-{}", self.next_node)),
            region,
            state: NodeState::Booting,
            created_at_ms: now_ms,
            active_at_ms: boot,
            humans: 0,
            reserved: 0,
            drain_deadline_ms: None,
            evicted_at_ms: None,
        });
    }
}

fn check_invariants(
    snapshot: &FleetSnapshot,
    decision: &coil_autoscale::Decision,
    model: &Model,
    policy: &Policy,
    now_ms: u64,
) -> Result<(), TestCaseError> {
    let listed: BTreeMap<&NodeId, (&RegionId, &NodeSnapshot)> = snapshot
        .regions
        .iter()
        .flat_map(|region| {
            region
                .nodes
                .iter()
                .map(move |node| (&node.node, (&region.region, node)))
        })
        .collect();
    let mut marks_per_region: BTreeMap<&RegionId, BTreeSet<&NodeId>> = BTreeMap::new();
    for action in &decision.actions {
        if let Some(node) = action.node() {
            let found = listed.get(node);
            prop_assert!(found.is_some(), "{action} names a node not in the snapshot");
            let (region, _) = found.copied().unwrap_or((
                action.region(),
                &NodeSnapshot::new(node.clone(), NodeState::Active),
            ));
            prop_assert_eq!(region, action.region());
        }
        match action {
            Action::DeleteNode { node, .. } => {
                let (_, listed_node) = listed[node];
                prop_assert_eq!(
                    listed_node.state,
                    NodeState::Draining,
                    "deleted a node that is not DRAINING"
                );
                if !listed_node.is_empty_of_players() {
                    let evicted_at = model.evicted.get(node);
                    prop_assert!(
                        evicted_at.is_some_and(|at| *at < now_ms),
                        "deleted {} with players before an earlier EvictPlayers",
                        node
                    );
                    let deadline = model
                        .nodes
                        .iter()
                        .find(|n| &n.id == node)
                        .and_then(|n| n.drain_deadline_ms);
                    prop_assert!(
                        deadline.is_some_and(|deadline| deadline <= now_ms),
                        "deleted {} with players before its deadline",
                        node
                    );
                }
            }
            Action::MarkDraining { region, node, .. } => {
                marks_per_region.entry(region).or_default().insert(node);
            }
            _ => {}
        }
    }
    // One retirement at a time: the draining nodes listed plus the nodes marked now, plus any
    // retirement the policy already started, form at most one node per region.
    for region in &snapshot.regions {
        let mut retiring: BTreeSet<&NodeId> = region
            .nodes
            .iter()
            .filter(|node| node.state == NodeState::Draining)
            .map(|node| &node.node)
            .collect();
        if let Some(marks) = marks_per_region.get(&region.region) {
            retiring.extend(marks.iter().copied());
        }
        prop_assert!(
            retiring.len() <= 1,
            "two retirements at once in {}: {:?}",
            region.region,
            retiring
        );
    }
    // Ceilings: listed servers plus creations in flight plus the new creations.
    let mut total = model.in_flight.len() as u64;
    let mut created_total = 0_u64;
    for (index, region) in snapshot.regions.iter().enumerate() {
        let in_flight = model
            .in_flight
            .iter()
            .filter(|flight| flight.region == index)
            .count() as u32;
        let created: u32 = decision
            .actions
            .iter()
            .filter(|action| action.region() == &region.region)
            .map(|action| match action {
                Action::CreateNodes { count, .. } => *count,
                _ => 0,
            })
            .sum();
        let after = region.nodes.len() as u32 + in_flight + created;
        prop_assert!(
            created == 0 || after <= policy.limits_for(&region.region).max_nodes,
            "{} would hold {after} servers",
            region.region
        );
        total += region.nodes.len() as u64 + u64::from(created);
        created_total += u64::from(created);
    }
    // The starting fleet may already exceed the fleet ceiling; what matters is that the
    // policy never creates past it.
    if let Some(max_total) = policy.max_total_nodes {
        prop_assert!(
            created_total == 0 || total <= u64::from(max_total),
            "fleet would hold {total} servers"
        );
    }
    Ok(())
}

/// How often each path was taken, so a test can show the model reaches every rule.
#[derive(Debug, Default)]
struct Coverage {
    creates: u32,
    marks: u32,
    evictions: u32,
    deletes_empty: u32,
    deletes_with_players: u32,
    holds: u32,
}

fn run_scenario(scenario: &Scenario) -> Result<Coverage, TestCaseError> {
    let mut coverage = Coverage::default();
    let policy = fast_policy(scenario);
    prop_assert_eq!(policy.validate(), Ok(()));
    let mut random = SplitMix(scenario.seed);
    let mut model = Model {
        nodes: Vec::new(),
        in_flight: Vec::new(),
        next_node: 0,
        demand: (0..scenario.regions)
            .map(|_| random.below(600) as u32)
            .collect(),
        evicted: BTreeMap::new(),
    };
    let start_ms = 1_800_000_000_000;
    for region in 0..scenario.regions {
        for _ in 0..random.below(u64::from(scenario.max_nodes.min(4)) + 1) {
            model.add_node(region, start_ms - 600_000, &mut random);
        }
    }
    for node in &mut model.nodes {
        if node.active_at_ms.is_some() {
            node.state = NodeState::Active;
        }
    }
    let mut memory = PolicyMemory::default();
    let mut now_ms = start_ms;
    for _ in 0..scenario.steps {
        model.advance(now_ms, &mut random, scenario);
        let snapshot = model.snapshot(now_ms, &mut random);
        let (decision, next_memory) = decide(&snapshot, &policy, memory.clone(), now_ms);
        let (again, again_memory) = decide(&snapshot, &policy, memory, now_ms);
        prop_assert_eq!(&decision, &again, "same inputs, different decision");
        prop_assert_eq!(&next_memory, &again_memory);
        check_invariants(&snapshot, &decision, &model, &policy, now_ms)?;
        memory = next_memory;
        for action in &decision.actions {
            match action {
                Action::CreateNodes { .. } => coverage.creates += 1,
                Action::MarkDraining { .. } => coverage.marks += 1,
                Action::EvictPlayers { .. } => coverage.evictions += 1,
                Action::DeleteNode { node, .. } => {
                    let empty = snapshot
                        .regions
                        .iter()
                        .flat_map(|region| region.nodes.iter())
                        .any(|listed| &listed.node == node && listed.is_empty_of_players());
                    if empty {
                        coverage.deletes_empty += 1;
                    } else {
                        coverage.deletes_with_players += 1;
                    }
                }
                Action::Hold { .. } => coverage.holds += 1,
            }
        }
        // Execute, with the faults a real executor meets.
        for action in decision.actions_to_execute() {
            match action {
                Action::CreateNodes { region, count, .. } => {
                    let index = model
                        .demand
                        .iter()
                        .enumerate()
                        .position(|(i, _)| &region_id(i) == region)
                        .unwrap_or(0);
                    let mut refused = 0;
                    for _ in 0..*count {
                        if random.chance(10) {
                            refused += 1;
                        } else {
                            model.in_flight.push(InFlight {
                                region: index,
                                lands_at_ms: now_ms + scenario.create_lag_ms,
                            });
                        }
                    }
                    if refused > 0 && scenario.report_refusals {
                        memory.record_creations_failed(region, refused);
                    }
                }
                Action::MarkDraining {
                    node, deadline_ms, ..
                } => {
                    if !random.chance(10) {
                        if let Some(target) = model.nodes.iter_mut().find(|n| &n.id == node) {
                            target.state = NodeState::Draining;
                            target.drain_deadline_ms = Some(*deadline_ms);
                        }
                    }
                }
                Action::EvictPlayers { node, .. } => {
                    model.evicted.insert(node.clone(), now_ms);
                    if let Some(target) = model.nodes.iter_mut().find(|n| &n.id == node) {
                        target.evicted_at_ms = Some(now_ms);
                    }
                }
                Action::DeleteNode { node, .. } => {
                    if !random.chance(10) {
                        model.nodes.retain(|n| &n.id != node);
                    }
                }
                Action::Hold { .. } => {}
            }
        }
        // The fleet never holds more than the ceilings, whatever the faults.
        for region in 0..scenario.regions {
            let held = model.nodes.iter().filter(|n| n.region == region).count()
                + model
                    .in_flight
                    .iter()
                    .filter(|f| f.region == region)
                    .count();
            prop_assert!(held as u32 <= scenario.max_nodes);
        }
        now_ms += scenario.step_ms;
    }
    Ok(coverage)
}

#[test]
fn the_model_reaches_every_rule() {
    // Fixed seeds over the same model: the invariants above are only worth something if the
    // series really scale out, retire, evict and delete (with and without stragglers).
    let mut total = Coverage::default();
    for seed in 0..24 {
        let scenario = Scenario {
            seed,
            regions: 2,
            min_nodes: 1,
            max_nodes: 12,
            max_total_nodes: None,
            step_ms: 15_000,
            steps: 400,
            create_lag_ms: 20_000,
            report_refusals: seed % 2 == 0,
        };
        let coverage = run_scenario(&scenario).expect("invariants hold");
        total.creates += coverage.creates;
        total.marks += coverage.marks;
        total.evictions += coverage.evictions;
        total.deletes_empty += coverage.deletes_empty;
        total.deletes_with_players += coverage.deletes_with_players;
        total.holds += coverage.holds;
    }
    println!("{total:?}");
    assert!(total.creates > 0, "{total:?}");
    assert!(total.marks > 0, "{total:?}");
    assert!(total.evictions > 0, "{total:?}");
    assert!(total.deletes_empty > 0, "{total:?}");
    assert!(total.deletes_with_players > 0, "{total:?}");
    assert!(total.holds > 0, "{total:?}");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn safety_invariants_hold_over_random_fleets_and_demand(scenario in scenarios()) {
        run_scenario(&scenario)?;
    }

    #[test]
    fn untrusted_input_and_invalid_policies_never_panic(
        seed in any::<u64>(),
        buffer in prop::num::f64::ANY,
        margin in prop::num::f64::ANY,
        fraction in prop::num::f64::ANY,
        seats in any::<u32>(),
        min_nodes in any::<u32>(),
        max_nodes in any::<u32>(),
        max_total in prop::option::of(any::<u32>()),
        signals in any::<u32>(),
        dry_run in any::<bool>(),
        now_ms in any::<u64>(),
    ) {
        let mut random = SplitMix(seed);
        let policy = Policy {
            dry_run,
            spare_seat_buffer: buffer,
            scale_in_buffer_margin: margin,
            low_use_signal_fraction: fraction,
            seats_per_node: seats,
            min_pressure_signals: signals,
            default_limits: RegionLimits { min_nodes, max_nodes, schedule: Vec::new() },
            max_total_nodes: max_total,
            ..Policy::default()
        };
        let garbage = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, 0.5, 1e300];
        let mut snapshot = FleetSnapshot::default();
        for region_index in 0..random.below(3) + 1 {
            let mut region = RegionSnapshot::new(region_id(region_index as usize % 2));
            region.humans = random.next() as u32;
            region.seats_reserved = random.next() as u32;
            region.rooms_above_soft_cap = random.next() as u32;
            region.unplaced_requests = random.next() as u32;
            for node_index in 0..random.below(8) {
                let state = [NodeState::Booting, NodeState::Active, NodeState::Draining][random.below(3) as usize];
                let mut node = NodeSnapshot::new(NodeId::new(format!("n{}", node_index % 5)), state);
                node.created_at_ms = random.next();
                node.drain_deadline_ms = random.chance(50).then(|| random.next());
                node.seat_capacity = random.chance(50).then(|| random.next() as u32);
                node.cpu_utilization = garbage[random.below(7) as usize];
                node.memory_utilization = garbage[random.below(7) as usize];
                node.tick_p99_ms = garbage[random.below(7) as usize];
                node.tick_overrun_rate = garbage[random.below(7) as usize];
                node.egress_bytes_per_second = garbage[random.below(7) as usize];
                node.humans = random.next() as u32;
                node.seats_reserved = random.next() as u32;
                node.open_connections = random.next() as u32;
                node.room_capacity = random.below(3) as u32;
                region.nodes.push(node);
            }
            snapshot.regions.push(region);
        }
        let mut memory = PolicyMemory::default();
        let mut now = now_ms;
        for _ in 0..3 {
            let (decision, next) = decide(&snapshot, &policy, memory, now);
            // Even with nonsense in, deletions only ever target listed DRAINING nodes.
            for action in &decision.actions {
                if let Action::DeleteNode { node, .. } = action {
                    let draining = snapshot.regions.iter().flat_map(|r| r.nodes.iter()).any(|n| &n.node == node && n.state == NodeState::Draining);
                    prop_assert!(draining);
                }
            }
            memory = next;
            now = now.saturating_add(random.below(200_000));
        }
    }
}
