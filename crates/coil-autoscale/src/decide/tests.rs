//! Table-driven tests, one group per rule of the policy. Time is driven by hand: every test
//! feeds `decide` a series of snapshots at chosen `now_ms` values and threads the memory.

use super::*;
use crate::policy::{PressureThresholds, ScheduledFloor, Weekday};
use crate::snapshot::{NodeId, RoomCounts};

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const DAY: u64 = 24 * 60 * MINUTE;
/// A Monday 00:00 UTC (1970-01-05 was a Monday; add whole weeks).
const MONDAY: u64 = (4 + 7 * 2_900) * DAY;
/// Evaluation cadence used by the series tests.
const STEP: u64 = 15 * SECOND;

fn ash() -> RegionId {
    RegionId::new("ash")
}

fn test_policy() -> Policy {
    Policy {
        seats_per_node: 100,
        scale_in_buffer_margin: 0.0,
        default_limits: RegionLimits {
            min_nodes: 1,
            max_nodes: 10,
            schedule: Vec::new(),
        },
        ..Policy::default()
    }
}

fn node(id: &str, state: NodeState, humans: u32) -> NodeSnapshot {
    let mut node = NodeSnapshot::new(NodeId::new(id), state);
    node.humans = humans;
    node.open_connections = humans;
    node
}

fn active(id: &str, humans: u32) -> NodeSnapshot {
    node(id, NodeState::Active, humans)
}

/// A region whose directory totals agree with its nodes.
fn region_of(nodes: Vec<NodeSnapshot>) -> RegionSnapshot {
    let mut region = RegionSnapshot::new(ash());
    region.humans = nodes.iter().map(|node| node.humans).sum();
    region.seats_reserved = nodes.iter().map(|node| node.seats_reserved).sum();
    region.nodes = nodes;
    region
}

fn fleet(nodes: Vec<NodeSnapshot>) -> FleetSnapshot {
    FleetSnapshot {
        regions: vec![region_of(nodes)],
    }
}

fn created(decision: &Decision) -> u32 {
    decision
        .actions
        .iter()
        .map(|action| match action {
            Action::CreateNodes { count, .. } => *count,
            _ => 0,
        })
        .sum()
}

fn marked(decision: &Decision) -> Vec<NodeId> {
    decision
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::MarkDraining { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

fn deleted(decision: &Decision) -> Vec<NodeId> {
    decision
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::DeleteNode { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

fn evicted(decision: &Decision) -> Vec<NodeId> {
    decision
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::EvictPlayers { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

fn hold_reasons(decision: &Decision) -> Vec<Reason> {
    decision
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::Hold { reasons, .. } => Some(reasons.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Runs `decide` every `STEP` from `start` to `end` inclusive on the same snapshot and
/// returns every decision with its time, and the final memory.
fn run_steady(
    snapshot: &FleetSnapshot,
    policy: &Policy,
    mut memory: PolicyMemory,
    start: u64,
    end: u64,
) -> (Vec<(u64, Decision)>, PolicyMemory) {
    let mut decisions = Vec::new();
    let mut now = start;
    while now <= end {
        let (decision, next) = decide(snapshot, policy, memory, now);
        memory = next;
        decisions.push((now, decision));
        now += STEP;
    }
    (decisions, memory)
}

/// Puts `signal` over its threshold on every active node (or the region).
fn apply_pressure(region: &mut RegionSnapshot, signal: PressureSignal) {
    let thresholds = PressureThresholds::default();
    for node in region
        .nodes
        .iter_mut()
        .filter(|node| node.state == NodeState::Active)
    {
        match signal {
            PressureSignal::Cpu => node.cpu_utilization = 0.9,
            PressureSignal::Memory => node.memory_utilization = 0.95,
            PressureSignal::TickHealth => node.tick_p99_ms = 45.0,
            PressureSignal::Connections => {
                node.open_connections = thresholds.node_connection_limit;
            }
            PressureSignal::Egress => {
                node.egress_bytes_per_second = thresholds.node_egress_limit_bytes_per_second;
            }
            PressureSignal::RoomsAboveSoftCap => node.rooms.active = 4,
            PressureSignal::RoomSlotsExhausted => {
                node.rooms.active = 4;
                node.room_capacity = 4;
            }
        }
    }
    match signal {
        PressureSignal::RoomsAboveSoftCap => {
            region.rooms_above_soft_cap = 4 * region.nodes.len() as u32;
        }
        PressureSignal::RoomSlotsExhausted => region.warm_rooms = 0,
        _ => {}
    }
}

/// Three active nodes at half their seats: the buffer is healthy, nothing presses.
fn calm_region() -> RegionSnapshot {
    region_of(vec![active("n1", 50), active("n2", 50), active("n3", 50)])
}

// ---------------------------------------------------------------------------------------
// Scale-out on sustained pressure
// ---------------------------------------------------------------------------------------

#[test]
fn one_signal_alone_never_scales_out_however_long_it_presses() {
    for signal in PressureSignal::ALL {
        let mut region = calm_region();
        apply_pressure(&mut region, signal);
        let snapshot = FleetSnapshot {
            regions: vec![region],
        };
        let policy = test_policy();
        let (decisions, _) = run_steady(
            &snapshot,
            &policy,
            PolicyMemory::default(),
            MONDAY,
            MONDAY + 10 * MINUTE,
        );
        let last = &decisions.last().expect("at least one decision").1;
        assert!(
            last.regions[0].sustained.contains(&signal),
            "{signal} should be sustained after 10 minutes"
        );
        for (now, decision) in &decisions {
            assert_eq!(created(decision), 0, "{signal} alone scaled out at {now}");
        }
        assert!(
            hold_reasons(last)
                .iter()
                .any(|reason| matches!(reason, Reason::PressureNotSustained { .. })),
            "{signal}: hold should say pressure is not sustained on enough signals"
        );
    }
}

#[test]
fn two_signals_scale_out_only_once_the_window_has_passed() {
    let pairs = [
        (PressureSignal::Cpu, PressureSignal::TickHealth),
        (PressureSignal::Cpu, PressureSignal::Memory),
        (PressureSignal::Connections, PressureSignal::Egress),
        (
            PressureSignal::TickHealth,
            PressureSignal::RoomsAboveSoftCap,
        ),
        (PressureSignal::RoomSlotsExhausted, PressureSignal::Cpu),
    ];
    for (first, second) in pairs {
        let mut region = calm_region();
        apply_pressure(&mut region, first);
        apply_pressure(&mut region, second);
        let snapshot = FleetSnapshot {
            regions: vec![region],
        };
        let policy = test_policy();
        let (decisions, _) = run_steady(
            &snapshot,
            &policy,
            PolicyMemory::default(),
            MONDAY,
            MONDAY + policy.scale_out_window_ms,
        );
        let (last_now, last) = decisions.last().expect("decisions");
        assert_eq!(*last_now, MONDAY + policy.scale_out_window_ms);
        for (now, decision) in &decisions[..decisions.len() - 1] {
            assert_eq!(
                created(decision),
                0,
                "{first}+{second} scaled out at {} s, before the window",
                (now - MONDAY) / SECOND
            );
        }
        assert!(created(last) >= 1, "{first}+{second} did not scale out");
        let reasons = last.actions[0].reasons();
        assert!(
            reasons.iter().any(|reason| matches!(
                reason,
                Reason::SustainedPressure { signals, .. }
                    if signals.contains(&first) && signals.contains(&second)
            )),
            "reasons should name both signals: {reasons:?}"
        );
    }
}

#[test]
fn pressure_scale_out_grows_with_the_largest_load_ratio() {
    // CPU at 0.9 against 0.75 is a ratio of 1.2: three nodes want ceil(3 × 1.2) = 4.
    // Memory at 0.95 against 0.85 is 1.12: smaller, so CPU decides.
    let mut region = calm_region();
    apply_pressure(&mut region, PressureSignal::Cpu);
    apply_pressure(&mut region, PressureSignal::Memory);
    let snapshot = FleetSnapshot {
        regions: vec![region],
    };
    let policy = test_policy();
    let (decisions, _) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_out_window_ms,
    );
    assert_eq!(created(&decisions.last().expect("decisions").1), 1);

    // CPU pinned at 1.0 on a 10-node region is a ratio of 1.33: 14 nodes, capped by max 20.
    let mut nodes: Vec<NodeSnapshot> = (0..10).map(|i| active(&format!("n{i}"), 40)).collect();
    for node in &mut nodes {
        node.cpu_utilization = 1.0;
        node.tick_p99_ms = 45.0;
    }
    let snapshot = fleet(nodes);
    let mut policy = test_policy();
    policy.default_limits.max_nodes = 20;
    let (decisions, _) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_out_window_ms,
    );
    let expected = ((10.0_f64 * (1.0 / 0.75)).ceil() as u32) - 10;
    assert_eq!(created(&decisions.last().expect("decisions").1), expected);
}

#[test]
fn a_pressure_streak_that_breaks_restarts_the_window() {
    let mut pressed = calm_region();
    apply_pressure(&mut pressed, PressureSignal::Cpu);
    apply_pressure(&mut pressed, PressureSignal::TickHealth);
    let pressed = FleetSnapshot {
        regions: vec![pressed],
    };
    let calm = FleetSnapshot {
        regions: vec![calm_region()],
    };
    let policy = test_policy();
    let mut memory = PolicyMemory::default();
    let mut now = MONDAY;
    // Pressure for 105 s, one calm sample, then pressure again: the window starts over.
    for _ in 0..8 {
        let (decision, next) = decide(&pressed, &policy, memory, now);
        assert_eq!(created(&decision), 0);
        memory = next;
        now += STEP;
    }
    let (decision, next) = decide(&calm, &policy, memory, now);
    assert_eq!(created(&decision), 0);
    memory = next;
    now += STEP;
    let restart = now;
    while now < restart + policy.scale_out_window_ms {
        let (decision, next) = decide(&pressed, &policy, memory, now);
        assert_eq!(
            created(&decision),
            0,
            "scaled out at {} s",
            (now - MONDAY) / SECOND
        );
        memory = next;
        now += STEP;
    }
    let (decision, _) = decide(&pressed, &policy, memory, now);
    assert!(created(&decision) >= 1);
}

#[test]
fn a_gap_between_evaluations_restarts_the_window() {
    let mut region = calm_region();
    apply_pressure(&mut region, PressureSignal::Cpu);
    apply_pressure(&mut region, PressureSignal::Egress);
    let snapshot = FleetSnapshot {
        regions: vec![region],
    };
    let policy = test_policy();
    let (_, memory) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    // The controller was away longer than stale_history_after_ms: no window was watched.
    let later = MONDAY + policy.stale_history_after_ms + MINUTE;
    let (decision, _) = decide(&snapshot, &policy, memory, later);
    assert_eq!(created(&decision), 0);
}

// ---------------------------------------------------------------------------------------
// Buffer breach: immediate, enough nodes, counting booting and requested ones
// ---------------------------------------------------------------------------------------

#[test]
fn buffer_breach_scales_out_at_once_with_just_enough_nodes() {
    // (active nodes, humans per node, reserved seats, expected new nodes). 100 seats per
    // node, 15% buffer: capacity must reach demand / 0.85.
    let cases: [(u32, u32, u32, u32); 6] = [
        (2, 85, 0, 0),    // 170 of 200: exactly 15% spare, holds
        (2, 90, 0, 1),    // 180 wants 211.8 seats: one more node
        (2, 100, 0, 1),   // 200 wants 235.3: one more
        (2, 100, 60, 2),  // 260 wants 305.9: four nodes in all
        (4, 100, 0, 1),   // 400 wants 470.6: five nodes
        (1, 100, 250, 4), // 350 wants 411.8: five nodes
    ];
    for (nodes, humans, reserved, expected) in cases {
        let mut list: Vec<NodeSnapshot> = (0..nodes)
            .map(|i| active(&format!("n{i}"), humans))
            .collect();
        list[0].seats_reserved = reserved;
        let snapshot = fleet(list);
        let policy = test_policy();
        let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
        assert_eq!(
            created(&decision),
            expected,
            "{nodes} nodes × {humans} humans + {reserved} reserved"
        );
        if expected > 0 {
            let demand = u64::from(nodes * humans + reserved);
            let capacity_after = u64::from((nodes + expected) * 100);
            assert!(buffer_holds(capacity_after, demand, 0.15));
            assert!(!buffer_holds(capacity_after - 100, demand, 0.15));
            assert!(matches!(
                decision.actions[0].reasons()[0],
                Reason::BufferBreach { .. }
            ));
        }
    }
}

#[test]
fn buffer_breach_ignores_the_pressure_cooldown_and_window() {
    let policy = test_policy();
    let mut memory = PolicyMemory::default();
    memory.regions.insert(
        ash(),
        RegionMemory {
            last_evaluated_ms: Some(MONDAY - STEP),
            last_scale_out_ms: Some(MONDAY - SECOND),
            last_pressure_scale_out_ms: Some(MONDAY - SECOND),
            ..RegionMemory::default()
        },
    );
    let snapshot = fleet(vec![active("n1", 100), active("n2", 100)]);
    let (decision, _) = decide(&snapshot, &policy, memory, MONDAY);
    assert_eq!(created(&decision), 1);
}

#[test]
fn booting_nodes_count_toward_capacity() {
    let policy = test_policy();
    // 250 humans on two active nodes: alone they breach; with one booting node (300 seats)
    // 250 ≤ 255 holds.
    let without_booting = fleet(vec![active("n1", 125), active("n2", 125)]);
    let (decision, _) = decide(&without_booting, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(created(&decision), 1);

    let mut booting = node("n3", NodeState::Booting, 0);
    booting.created_at_ms = MONDAY - 30 * SECOND;
    let with_booting = fleet(vec![active("n1", 125), active("n2", 125), booting]);
    let (decision, _) = decide(&with_booting, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(created(&decision), 0);
}

#[test]
fn requested_nodes_count_until_they_are_listed_or_time_out() {
    let policy = test_policy();
    let snapshot = fleet(vec![active("n1", 100), active("n2", 100)]);
    let (first, memory) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(created(&first), 1);
    // The executor has not listed the new server yet: no second create for the same need.
    let (second, memory) = decide(&snapshot, &policy, memory, MONDAY + STEP);
    assert_eq!(created(&second), 0);
    assert_eq!(second.regions[0].nodes_requested, 1);
    // The create was refused and the executor says so: the need shows again at once.
    let mut refused = memory.clone();
    refused.record_creations_failed(&ash(), 1);
    let (after_refusal, _) = decide(&snapshot, &policy, refused, MONDAY + 2 * STEP);
    assert_eq!(created(&after_refusal), 1);
    // Without a report, the request expires after pending_create_timeout_ms.
    let expired = MONDAY + policy.pending_create_timeout_ms;
    let (memory, mut now) = (memory, MONDAY + 2 * STEP);
    let mut memory = memory;
    while now < expired {
        let (decision, next) = decide(&snapshot, &policy, memory, now);
        assert_eq!(created(&decision), 0, "double create at {now}");
        memory = next;
        now += STEP;
    }
    let (decision, _) = decide(&snapshot, &policy, memory, expired);
    assert_eq!(created(&decision), 1);
}

// ---------------------------------------------------------------------------------------
// Maximum
// ---------------------------------------------------------------------------------------

#[test]
fn never_creates_above_the_region_or_fleet_maximum() {
    // Three listed nodes (two active, one draining) and 600 humans: 600 / 0.85 = 705.9 seats
    // want 8 serving nodes, 2 serve, so 6 are wanted. The draining node still counts toward
    // the ceilings because it is still billed.
    // (region max, fleet max, expected creates)
    let cases: [(u32, Option<u32>, u32); 6] = [
        (5, None, 2),
        (10, Some(4), 1),
        (3, None, 0),
        (2, None, 0), // above max after a config change: nothing, no underflow
        (10, None, 6),
        (20, Some(20), 6),
    ];
    for (max_nodes, max_total, expected) in cases {
        let mut policy = test_policy();
        policy.default_limits.max_nodes = max_nodes;
        policy.max_total_nodes = max_total;
        let mut nodes = vec![active("n1", 100), active("n2", 100)];
        nodes.push(draining("d0", 10, MONDAY + MINUTE));
        let mut snapshot = fleet(nodes);
        snapshot.regions[0].humans = 600;
        let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
        assert_eq!(
            created(&decision),
            expected,
            "max {max_nodes} total {max_total:?}"
        );
        let clamped = decision.actions.iter().any(|action| {
            action
                .reasons()
                .iter()
                .any(|reason| matches!(reason, Reason::ClampedToMaximum { wanted: 6, .. }))
        });
        assert_eq!(
            clamped,
            expected < 6,
            "a clamp must be explained: {:?}",
            decision.actions
        );
    }
}

#[test]
fn fleet_maximum_is_shared_across_regions_in_order() {
    let mut policy = test_policy();
    policy.max_total_nodes = Some(5);
    let mut east = region_of(vec![active("e1", 100), active("e2", 100)]);
    east.region = RegionId::new("ash");
    let mut west = region_of(vec![active("w1", 100)]);
    west.region = RegionId::new("hil");
    west.humans = 300;
    let snapshot = FleetSnapshot {
        regions: vec![west, east],
    };
    let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    // Three nodes listed, fleet room for two: ash (sorted first) takes one, hil the other.
    assert_eq!(created(&decision), 2);
    let listed = 3;
    assert!(listed + created(&decision) <= 5);
}

// ---------------------------------------------------------------------------------------
// Scale-in
// ---------------------------------------------------------------------------------------

/// Four nodes, 120 humans: after removing one, 120 of 300 seats is 60% spare.
fn idle_fleet() -> FleetSnapshot {
    fleet(vec![
        active("n1", 40),
        active("n2", 30),
        active("n3", 10),
        active("n4", 40),
    ])
}

#[test]
fn scale_in_waits_for_the_whole_low_use_window() {
    let policy = test_policy();
    let snapshot = idle_fleet();
    let (decisions, _) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_in_window_ms,
    );
    for (now, decision) in &decisions[..decisions.len() - 1] {
        assert!(
            marked(decision).is_empty(),
            "retired at {} s",
            (now - MONDAY) / SECOND
        );
    }
    let last = &decisions.last().expect("decisions").1;
    assert_eq!(marked(last), vec![NodeId::new("n3")]);
}

#[test]
fn a_busy_moment_restarts_the_low_use_window() {
    let policy = test_policy();
    let idle = idle_fleet();
    let mut busy = idle_fleet();
    for node in &mut busy.regions[0].nodes {
        node.cpu_utilization = 0.6; // below scale-out, above the low-use band
    }
    let mut memory = PolicyMemory::default();
    let mut now = MONDAY;
    while now < MONDAY + policy.scale_in_window_ms - MINUTE {
        let (decision, next) = decide(&idle, &policy, memory, now);
        assert!(marked(&decision).is_empty());
        memory = next;
        now += STEP;
    }
    let (decision, next) = decide(&busy, &policy, memory, now);
    assert!(marked(&decision).is_empty());
    memory = next;
    let restart = now + STEP;
    now = restart;
    while now < restart + policy.scale_in_window_ms {
        let (decision, next) = decide(&idle, &policy, memory, now);
        assert!(
            marked(&decision).is_empty(),
            "retired {} s after the busy moment",
            (now - restart) / SECOND
        );
        memory = next;
        now += STEP;
    }
    let (decision, _) = decide(&idle, &policy, memory, now);
    assert_eq!(marked(&decision).len(), 1);
}

#[test]
fn scale_in_only_when_the_buffer_holds_after_the_removal() {
    // Three nodes of 100 seats; the emptiest goes, leaving 200 seats: holds iff demand ≤ 170.
    let cases: [(u32, bool); 4] = [(150, true), (170, true), (171, false), (200, false)];
    for (humans, retires) in cases {
        let nodes = vec![
            active("n1", humans / 2),
            active("n2", humans - humans / 2),
            active("n3", 0),
        ];
        let snapshot = fleet(nodes);
        let policy = test_policy();
        let (decisions, _) = run_steady(
            &snapshot,
            &policy,
            PolicyMemory::default(),
            MONDAY,
            MONDAY + policy.scale_in_window_ms,
        );
        let last = &decisions.last().expect("decisions").1;
        assert_eq!(!marked(last).is_empty(), retires, "{humans} humans");
        if !retires {
            assert!(
                hold_reasons(last)
                    .iter()
                    .any(|reason| matches!(reason, Reason::BufferWouldBreakAfterRemoval { .. })),
                "{humans} humans: {:?}",
                hold_reasons(last)
            );
        }
    }
}

#[test]
fn the_margin_keeps_extra_room_after_a_removal() {
    let mut policy = test_policy();
    policy.scale_in_buffer_margin = 0.05;
    // 160 of 200 seats after removal is 20% spare: equal to buffer + margin, retires.
    // 161 is 19.5%: holds the buffer but not the margin, stays.
    for (humans, retires) in [(160_u32, true), (161, false)] {
        let snapshot = fleet(vec![
            active("n1", humans / 2),
            active("n2", humans - humans / 2),
            active("n3", 0),
        ]);
        let (decisions, _) = run_steady(
            &snapshot,
            &policy,
            PolicyMemory::default(),
            MONDAY,
            MONDAY + policy.scale_in_window_ms,
        );
        assert_eq!(
            !marked(&decisions.last().expect("decisions").1).is_empty(),
            retires,
            "{humans}"
        );
    }
}

#[test]
fn the_emptiest_node_is_chosen() {
    // (humans per node, reserved per node, expected pick)
    let cases: [([u32; 3], [u32; 3], &str); 4] = [
        ([50, 5, 30], [0, 0, 0], "n2"),
        ([5, 50, 30], [0, 0, 0], "n1"),
        ([10, 10, 30], [8, 0, 0], "n2"), // reserved seats count as players
        ([20, 20, 20], [0, 0, 0], "n1"), // full tie: lowest id, deterministic
    ];
    for (humans, reserved, expected) in cases {
        let nodes: Vec<NodeSnapshot> = (0..3)
            .map(|i| {
                let mut node = active(&format!("n{}", i + 1), humans[i]);
                node.seats_reserved = reserved[i];
                node
            })
            .collect();
        let snapshot = fleet(nodes);
        let policy = test_policy();
        let (decisions, _) = run_steady(
            &snapshot,
            &policy,
            PolicyMemory::default(),
            MONDAY,
            MONDAY + policy.scale_in_window_ms,
        );
        assert_eq!(
            marked(&decisions.last().expect("decisions").1),
            vec![NodeId::new(expected)],
            "{humans:?} {reserved:?}"
        );
    }
}

#[test]
fn only_one_retirement_at_a_time() {
    let policy = test_policy();
    let mut snapshot = idle_fleet();
    let (decisions, memory) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_in_window_ms,
    );
    let picked = marked(&decisions.last().expect("decisions").1);
    assert_eq!(picked.len(), 1);
    // The node is now DRAINING with a player who stays; use stays low for a long time.
    for node in &mut snapshot.regions[0].nodes {
        if node.node == picked[0] {
            node.state = NodeState::Draining;
        }
    }
    let start = MONDAY + policy.scale_in_window_ms + STEP;
    let (decisions, _) = run_steady(&snapshot, &policy, memory, start, start + 8 * MINUTE);
    for (now, decision) in &decisions {
        assert!(marked(decision).is_empty(), "second retirement at {now}");
        assert!(
            hold_reasons(decision)
                .iter()
                .any(|reason| matches!(reason, Reason::DrainInProgress { .. })),
            "{:?}",
            decision.actions
        );
    }
}

#[test]
fn an_operator_drained_node_is_adopted_and_blocks_another_retirement() {
    let policy = test_policy();
    let mut nodes = idle_fleet().regions.remove(0).nodes;
    nodes[0].state = NodeState::Draining;
    let snapshot = fleet(nodes);
    let (decisions, memory) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_in_window_ms + MINUTE,
    );
    assert!(
        decisions
            .iter()
            .all(|(_, decision)| marked(decision).is_empty())
    );
    let retirement = memory
        .retirements()
        .find(|(_, node, _)| node.0 == "n1")
        .map(|(_, _, retirement)| retirement.clone())
        .expect("adopted");
    assert_eq!(retirement.deadline_ms, MONDAY + policy.drain_deadline_ms);
}

// ---------------------------------------------------------------------------------------
// Drain, evict, delete
// ---------------------------------------------------------------------------------------

fn draining(id: &str, humans: u32, deadline_ms: u64) -> NodeSnapshot {
    let mut node = node(id, NodeState::Draining, humans);
    node.drain_deadline_ms = Some(deadline_ms);
    node
}

#[test]
fn a_node_with_players_is_deleted_only_after_its_deadline_and_an_eviction() {
    let policy = test_policy();
    let deadline = MONDAY + 10 * MINUTE;
    let with_players = fleet(vec![
        active("n1", 50),
        active("n2", 50),
        draining("d", 7, deadline),
    ]);
    // Before the deadline: nothing happens to d.
    let (decisions, memory) = run_steady(
        &with_players,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        deadline - STEP,
    );
    for (now, decision) in &decisions {
        assert!(
            deleted(decision).is_empty(),
            "deleted before deadline at {now}"
        );
        assert!(
            evicted(decision).is_empty(),
            "evicted before deadline at {now}"
        );
    }
    // At the deadline: evict, do not delete.
    let (at_deadline, memory) = decide(&with_players, &policy, memory, deadline);
    assert_eq!(evicted(&at_deadline), vec![NodeId::new("d")]);
    assert!(deleted(&at_deadline).is_empty());
    // During the eviction grace: neither again.
    let (during_grace, memory) = decide(
        &with_players,
        &policy,
        memory,
        deadline + policy.eviction_grace_ms - SECOND,
    );
    assert!(evicted(&during_grace).is_empty() && deleted(&during_grace).is_empty());
    // After the grace, with a straggler still there: delete.
    let (after_grace, _) = decide(
        &with_players,
        &policy,
        memory,
        deadline + policy.eviction_grace_ms,
    );
    assert_eq!(deleted(&after_grace), vec![NodeId::new("d")]);
    assert!(after_grace.actions.iter().any(|action| {
        action
            .reasons()
            .iter()
            .any(|reason| matches!(reason, Reason::EvictionGraceElapsed { players: 7, .. }))
    }));
}

#[test]
fn an_empty_draining_node_is_deleted_without_waiting_for_the_deadline() {
    let policy = test_policy();
    // (humans, reserved, connections, deleted now)
    let cases: [(u32, u32, u32, bool); 4] = [
        (0, 0, 0, true),
        (1, 0, 1, false),
        (0, 1, 0, false), // a reserved seat is a player on the way
        (0, 0, 1, false), // an open socket that has not joined yet
    ];
    for (humans, reserved, connections, deletes) in cases {
        let mut drained = draining("d", humans, MONDAY + 10 * MINUTE);
        drained.seats_reserved = reserved;
        drained.open_connections = connections;
        let snapshot = fleet(vec![active("n1", 20), active("n2", 20), drained]);
        let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
        assert_eq!(
            !deleted(&decision).is_empty(),
            deletes,
            "{humans}/{reserved}/{connections}"
        );
        assert!(evicted(&decision).is_empty());
    }
}

#[test]
fn zero_eviction_grace_still_deletes_in_a_later_decision() {
    let mut policy = test_policy();
    policy.eviction_grace_ms = 0;
    let deadline = MONDAY;
    let snapshot = fleet(vec![active("n1", 50), draining("d", 3, deadline)]);
    let (first, memory) = decide(&snapshot, &policy, PolicyMemory::default(), deadline);
    assert_eq!(evicted(&first), vec![NodeId::new("d")]);
    assert!(deleted(&first).is_empty());
    let (same_instant, memory) = decide(&snapshot, &policy, memory, deadline);
    assert!(deleted(&same_instant).is_empty());
    let (later, _) = decide(&snapshot, &policy, memory, deadline + 1);
    assert_eq!(deleted(&later), vec![NodeId::new("d")]);
}

#[test]
fn active_and_booting_nodes_are_never_deleted() {
    let policy = test_policy();
    let mut booting = node("b", NodeState::Booting, 0);
    booting.created_at_ms = MONDAY - 20 * MINUTE; // long past the boot timeout
    let snapshot = fleet(vec![active("n1", 0), active("n2", 0), booting]);
    let (decisions, _) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + 30 * MINUTE,
    );
    for (now, decision) in &decisions {
        for node in deleted(decision) {
            let state = snapshot.regions[0]
                .nodes
                .iter()
                .find(|n| n.node == node)
                .map(|n| n.state);
            assert_eq!(
                state,
                Some(NodeState::Draining),
                "deleted a non-draining node at {now}"
            );
        }
    }
    // The stuck booting node is retired through the drain path instead.
    assert_eq!(marked(&decisions[0].1), vec![NodeId::new("b")]);
    assert!(decisions[0].1.actions.iter().any(|action| {
        action
            .reasons()
            .iter()
            .any(|reason| matches!(reason, Reason::BootTimedOut { .. }))
    }));
}

#[test]
fn a_mark_that_did_not_land_is_retried_and_delete_is_retried() {
    let policy = test_policy();
    let snapshot = idle_fleet();
    let (decisions, memory) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_in_window_ms,
    );
    let picked = marked(&decisions.last().expect("decisions").1);
    assert_eq!(picked.len(), 1);
    // The executor failed: the node still shows active.
    let start = MONDAY + policy.scale_in_window_ms;
    let (soon, memory) = decide(&snapshot, &policy, memory, start + STEP);
    assert!(marked(&soon).is_empty());
    let (retry, _) = decide(&snapshot, &policy, memory, start + policy.action_retry_ms);
    assert_eq!(marked(&retry), picked);

    // A delete that did not take effect is retried after action_retry_ms, not every call.
    let empty = fleet(vec![active("n1", 10), draining("d", 0, MONDAY + MINUTE)]);
    let (first, memory) = decide(&empty, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(deleted(&first).len(), 1);
    let (again_soon, memory) = decide(&empty, &policy, memory, MONDAY + STEP);
    assert!(deleted(&again_soon).is_empty());
    let (again_later, _) = decide(&empty, &policy, memory, MONDAY + policy.action_retry_ms);
    assert_eq!(deleted(&again_later).len(), 1);
}

// ---------------------------------------------------------------------------------------
// Cooldowns and hysteresis
// ---------------------------------------------------------------------------------------

#[test]
fn pressure_scale_out_cooldown_blocks_a_second_step() {
    let mut region = calm_region();
    apply_pressure(&mut region, PressureSignal::Cpu);
    apply_pressure(&mut region, PressureSignal::TickHealth);
    let before = FleetSnapshot {
        regions: vec![region.clone()],
    };
    let policy = test_policy();
    let (decisions, memory) = run_steady(
        &before,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_out_window_ms,
    );
    let first_at = MONDAY + policy.scale_out_window_ms;
    assert!(created(&decisions.last().expect("decisions").1) >= 1);
    // The new node is active but idle; the old ones still press (the load has not moved yet).
    region.nodes.push(active("n4", 0));
    let mut after = FleetSnapshot {
        regions: vec![region],
    };
    after.regions[0].nodes[3].cpu_utilization = 0.9;
    after.regions[0].nodes[3].tick_p99_ms = 45.0;
    let (decisions, _) = run_steady(
        &after,
        &policy,
        memory,
        first_at + STEP,
        first_at + policy.scale_out_cooldown_ms - STEP,
    );
    for (now, decision) in &decisions {
        assert_eq!(
            created(decision),
            0,
            "second scale-out {} s after the first",
            (now - first_at) / SECOND
        );
    }
    assert!(decisions.iter().any(|(_, decision)| {
        hold_reasons(decision)
            .iter()
            .any(|reason| matches!(reason, Reason::ScaleOutCooldown { .. }))
    }));
}

#[test]
fn no_scale_in_soon_after_a_scale_out() {
    let policy = test_policy();
    // A breach scales out at MONDAY; then demand drops to nearly nothing at once.
    let breach = fleet(vec![active("n1", 100), active("n2", 100)]);
    let (decision, memory) = decide(&breach, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(created(&decision), 1);
    let quiet = fleet(vec![active("n1", 5), active("n2", 5), active("n3", 0)]);
    let (decisions, _) = run_steady(
        &quiet,
        &policy,
        memory,
        MONDAY + STEP,
        MONDAY + policy.scale_in_delay_after_scale_out_ms - STEP,
    );
    for (now, decision) in &decisions {
        assert!(
            marked(decision).is_empty(),
            "retired {} s after a scale-out",
            (now - MONDAY) / SECOND
        );
    }
    let last = &decisions.last().expect("decisions").1;
    assert!(
        hold_reasons(last)
            .iter()
            .any(|reason| matches!(reason, Reason::ScaleInDelayAfterScaleOut { .. }))
    );
}

#[test]
fn scale_in_cooldown_spaces_retirements() {
    let policy = test_policy();
    let mut memory = PolicyMemory::default();
    memory.regions.insert(
        ash(),
        RegionMemory {
            last_evaluated_ms: Some(MONDAY - STEP),
            low_use_since_ms: Some(MONDAY - policy.scale_in_window_ms),
            last_retirement_finished_ms: Some(MONDAY - MINUTE),
            ..RegionMemory::default()
        },
    );
    let snapshot = idle_fleet();
    let (blocked, memory) = decide(&snapshot, &policy, memory, MONDAY);
    assert!(marked(&blocked).is_empty());
    assert!(
        hold_reasons(&blocked)
            .iter()
            .any(|reason| matches!(reason, Reason::ScaleInCooldown { .. }))
    );
    let (_, allowed_at) = (
        memory.clone(),
        MONDAY - MINUTE + policy.scale_in_cooldown_ms,
    );
    let (decisions, _) = run_steady(&snapshot, &policy, memory, MONDAY + STEP, allowed_at);
    assert_eq!(marked(&decisions.last().expect("decisions").1).len(), 1);
}

#[test]
fn load_oscillating_around_the_buffer_does_not_flap() {
    // Demand swings between 72% and 88% of a three-node fleet every minute for two hours.
    // Every breach is answered once; the low-use band and margin stop the new node from
    // being retired while the swings go on, so actions stay few.
    let mut policy = test_policy();
    policy.scale_in_buffer_margin = 0.05;
    let mut memory = PolicyMemory::default();
    let mut nodes = vec![active("n1", 0), active("n2", 0), active("n3", 0)];
    let mut creates = 0;
    let mut retirements = 0;
    let mut now = MONDAY;
    let mut next_id = 4;
    while now < MONDAY + 120 * MINUTE {
        let minute = (now - MONDAY) / MINUTE;
        let demand = if minute % 2 == 0 { 216 } else { 264 };
        let serving: Vec<usize> = (0..nodes.len())
            .filter(|i| nodes[*i].state != NodeState::Draining)
            .collect();
        for (rank, index) in serving.iter().enumerate() {
            let share =
                demand / serving.len() as u32 + u32::from(rank < (demand as usize % serving.len()));
            nodes[*index].humans = share;
            nodes[*index].open_connections = share;
        }
        let snapshot = fleet(nodes.clone());
        let (decision, next) = decide(&snapshot, &policy, memory, now);
        memory = next;
        for action in &decision.actions {
            match action {
                Action::CreateNodes { count, .. } => {
                    creates += count;
                    for _ in 0..*count {
                        nodes.push(active(&format!("n{next_id}"), 0));
                        next_id += 1;
                    }
                }
                Action::MarkDraining { node, .. } => {
                    retirements += 1;
                    for listed in &mut nodes {
                        if &listed.node == node {
                            listed.state = NodeState::Draining;
                            listed.humans = 0;
                            listed.open_connections = 0;
                        }
                    }
                }
                Action::DeleteNode { node, .. } => nodes.retain(|listed| &listed.node != node),
                _ => {}
            }
        }
        now += STEP;
    }
    assert_eq!(creates, 1, "one node answers the swings");
    assert_eq!(retirements, 0, "and stays while they go on");
}

// ---------------------------------------------------------------------------------------
// Floors: minimum fleet, schedule, scale to zero
// ---------------------------------------------------------------------------------------

#[test]
fn below_min_nodes_creates_at_once_and_scale_in_stops_at_the_floor() {
    let mut policy = test_policy();
    policy.default_limits.min_nodes = 3;
    let (decision, _) = decide(
        &fleet(vec![active("n1", 0)]),
        &policy,
        PolicyMemory::default(),
        MONDAY,
    );
    assert_eq!(created(&decision), 2);
    assert!(matches!(
        decision.actions[0].reasons()[0],
        Reason::BelowFloor {
            nodes: 1,
            floor: 3,
            scheduled: false
        }
    ));

    let at_floor = fleet(vec![active("n1", 0), active("n2", 0), active("n3", 0)]);
    let (decisions, _) = run_steady(
        &at_floor,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + 30 * MINUTE,
    );
    assert!(
        decisions
            .iter()
            .all(|(_, decision)| marked(decision).is_empty())
    );
    assert!(
        hold_reasons(&decisions.last().expect("decisions").1)
            .iter()
            .any(|reason| matches!(reason, Reason::AtFloor { nodes: 3, floor: 3 }))
    );
}

#[test]
fn a_weekly_schedule_raises_the_floor_ahead_of_the_peak() {
    let mut policy = test_policy();
    policy.default_limits.schedule = vec![ScheduledFloor::Weekly {
        weekdays: vec![Weekday::Friday],
        start_minute_utc: 18 * 60,
        end_minute_utc: 23 * 60,
        min_nodes: 5,
    }];
    let friday = MONDAY + 4 * DAY;
    let snapshot = fleet(vec![active("n1", 10)]);
    // (time, expected creates)
    let cases = [
        (friday + 17 * 60 * MINUTE, 0), // an hour early: no
        (friday + 18 * 60 * MINUTE - policy.schedule_lead_ms, 4), // lead time: yes
        (friday + 20 * 60 * MINUTE, 4), // inside the window
        (friday + 23 * 60 * MINUTE, 0), // over
        (MONDAY + 3 * DAY + 20 * 60 * MINUTE, 0), // Thursday: no
    ];
    for (now, expected) in cases {
        let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), now);
        assert_eq!(
            created(&decision),
            expected,
            "at {} min into the week",
            (now - MONDAY) / MINUTE
        );
        if expected > 0 {
            assert!(decision.actions[0].reasons().iter().any(|reason| matches!(
                reason,
                Reason::BelowFloor {
                    scheduled: true,
                    floor: 5,
                    ..
                }
            )));
        }
    }
}

#[test]
fn schedule_windows_wrap_midnight_and_one_off_events_apply() {
    let limits = RegionLimits {
        min_nodes: 1,
        max_nodes: 50,
        schedule: vec![
            ScheduledFloor::Weekly {
                weekdays: Vec::new(),
                start_minute_utc: 22 * 60,
                end_minute_utc: 2 * 60,
                min_nodes: 4,
            },
            ScheduledFloor::Once {
                from_ms: MONDAY + 2 * DAY,
                until_ms: MONDAY + 3 * DAY,
                min_nodes: 9,
            },
            ScheduledFloor::Weekly {
                weekdays: vec![Weekday::Sunday],
                start_minute_utc: 23 * 60 + 50,
                end_minute_utc: 30,
                min_nodes: 6,
            },
        ],
    };
    let cases = [
        (MONDAY + 23 * 60 * MINUTE, 4),                         // Monday 23:00
        (MONDAY + DAY + 60 * MINUTE, 4), // Tuesday 01:00, the window from Monday
        (MONDAY + 12 * 60 * MINUTE, 1),  // Monday noon
        (MONDAY + 2 * DAY + 12 * 60 * MINUTE, 9), // Wednesday: the launch
        (MONDAY + 6 * DAY + 23 * 60 * MINUTE + 55 * MINUTE, 6), // Sunday 23:55
        (MONDAY + 7 * DAY + 20 * MINUTE, 6), // next Monday 00:20, wraps the week
    ];
    for (now, expected) in cases {
        assert_eq!(
            limits.floor_at(now, 0).0,
            expected,
            "{} min into the week",
            (now - MONDAY) / MINUTE
        );
    }
    // A floor is never above the maximum.
    let capped = RegionLimits {
        max_nodes: 3,
        ..limits
    };
    assert_eq!(capped.floor_at(MONDAY + 2 * DAY + 12 * 60 * MINUTE, 0).0, 3);
}

#[test]
fn min_nodes_zero_scales_to_zero_and_back() {
    let mut policy = test_policy();
    policy.default_limits.min_nodes = 0;
    let mut nodes = vec![active("n1", 0)];
    let mut memory = PolicyMemory::default();
    let mut now = MONDAY;
    let mut deleted_at = None;
    while now < MONDAY + 40 * MINUTE && deleted_at.is_none() {
        let (decision, next) = decide(&fleet(nodes.clone()), &policy, memory, now);
        memory = next;
        for action in &decision.actions {
            match action {
                Action::MarkDraining { node, .. } => nodes
                    .iter_mut()
                    .filter(|n| &n.node == node)
                    .for_each(|n| n.state = NodeState::Draining),
                Action::DeleteNode { node, .. } => {
                    nodes.retain(|n| &n.node != node);
                    deleted_at = Some(now);
                }
                _ => {}
            }
        }
        now += STEP;
    }
    assert!(
        deleted_at.is_some(),
        "the idle node should be retired and deleted"
    );
    assert!(nodes.is_empty());
    // Zero nodes, no demand: hold, on purpose.
    let (decision, memory) = decide(&fleet(Vec::new()), &policy, memory, now);
    assert_eq!(created(&decision), 0);
    assert!(hold_reasons(&decision).contains(&Reason::ScaledToZero));
    // A player asks and is turned away: that request is the demand that brings a node back.
    let mut asking = fleet(Vec::new());
    asking.regions[0].unplaced_requests = 1;
    let (decision, _) = decide(&asking, &policy, memory, now + STEP);
    assert_eq!(created(&decision), 1);
}

#[test]
fn a_region_known_only_to_the_policy_gets_its_floor() {
    let mut policy = test_policy();
    policy.regions.insert(
        RegionId::new("sin"),
        RegionLimits {
            min_nodes: 2,
            max_nodes: 4,
            schedule: Vec::new(),
        },
    );
    let (decision, _) = decide(
        &FleetSnapshot::default(),
        &policy,
        PolicyMemory::default(),
        MONDAY,
    );
    assert_eq!(created(&decision), 2);
    assert_eq!(decision.actions[0].region(), &RegionId::new("sin"));
}

// ---------------------------------------------------------------------------------------
// Dry run, determinism, bad input
// ---------------------------------------------------------------------------------------

#[test]
fn dry_run_reports_but_executes_nothing_and_remembers_no_effect() {
    let mut policy = test_policy();
    policy.dry_run = true;
    let snapshot = fleet(vec![active("n1", 100), active("n2", 100)]);
    let (first, memory) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(created(&first), 1, "the log still shows what would happen");
    assert!(first.actions_to_execute().is_empty());
    assert!(first.dry_run);
    // Nothing was created, so the next evaluation proposes the same again.
    let (second, _) = decide(&snapshot, &policy, memory, MONDAY + STEP);
    assert_eq!(created(&second), 1);
    assert!(second.actions_to_execute().is_empty());

    policy.dry_run = false;
    let (live, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(live.actions_to_execute().len(), live.actions.len());
}

#[test]
fn garbage_readings_never_trigger_a_scale_out() {
    let mut nodes = vec![active("n1", 50), active("n2", 50), active("n3", 50)];
    for node in &mut nodes {
        node.cpu_utilization = f64::NAN;
        node.memory_utilization = f64::INFINITY;
        node.tick_p99_ms = -5.0;
        node.egress_bytes_per_second = f64::NEG_INFINITY;
    }
    let snapshot = fleet(nodes);
    let policy = test_policy();
    let (decisions, _) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + 10 * MINUTE,
    );
    assert!(decisions.iter().all(|(_, decision)| created(decision) == 0));
}

#[test]
fn every_region_gets_exactly_one_hold_or_some_action_with_reasons() {
    let mut west = region_of(vec![active("w1", 100), active("w2", 100)]);
    west.region = RegionId::new("hil");
    let snapshot = FleetSnapshot {
        regions: vec![calm_region(), west],
    };
    let (decision, _) = decide(&snapshot, &test_policy(), PolicyMemory::default(), MONDAY);
    assert_eq!(decision.regions.len(), 2);
    for region in [RegionId::new("ash"), RegionId::new("hil")] {
        let actions: Vec<&Action> = decision
            .actions
            .iter()
            .filter(|action| action.region() == &region)
            .collect();
        assert!(!actions.is_empty());
        assert!(actions.iter().all(|action| !action.reasons().is_empty()));
        let holds = actions
            .iter()
            .filter(|action| matches!(action, Action::Hold { .. }))
            .count();
        assert!(holds == 0 || actions.len() == 1);
    }
    let counts = decision.counts_by_metric_label();
    assert_eq!(
        counts.iter().map(|(_, count)| count).sum::<u64>(),
        decision.actions.len() as u64
    );
}

#[test]
fn duplicate_regions_and_nodes_are_merged_not_double_counted() {
    let policy = test_policy();
    let mut first = region_of(vec![active("n1", 80), active("n2", 80)]);
    first.humans = 80;
    let mut second = region_of(vec![active("n2", 80)]);
    second.humans = 80;
    let snapshot = FleetSnapshot {
        regions: vec![first, second],
    };
    let (decision, _) = decide(&snapshot, &policy, PolicyMemory::default(), MONDAY);
    assert_eq!(decision.regions.len(), 1);
    assert_eq!(decision.regions[0].nodes_active, 2);
    assert_eq!(decision.regions[0].capacity_seats, 200);
    assert_eq!(decision.regions[0].demand_seats, 160);
}

#[test]
fn room_counts_total_adds_every_state() {
    let rooms = RoomCounts {
        warm: 1,
        active: 2,
        draining: 3,
    };
    assert_eq!(rooms.total(), 6);
}

#[test]
fn decisions_and_memory_survive_a_json_round_trip() {
    // The controller logs decisions as JSON and may persist memory across a restart; a
    // restored memory must lead to the same next decision.
    let policy = test_policy();
    let snapshot = idle_fleet();
    let (_, memory) = run_steady(
        &snapshot,
        &policy,
        PolicyMemory::default(),
        MONDAY,
        MONDAY + policy.scale_in_window_ms - STEP,
    );
    let stored = serde_json::to_string(&memory).expect("memory serializes");
    let restored: PolicyMemory = serde_json::from_str(&stored).expect("memory parses");
    assert_eq!(restored, memory);
    let now = MONDAY + policy.scale_in_window_ms;
    let (from_live, _) = decide(&snapshot, &policy, memory, now);
    let (from_restored, _) = decide(&snapshot, &policy, restored, now);
    assert_eq!(from_live, from_restored);
    assert_eq!(marked(&from_live).len(), 1);

    let logged = serde_json::to_string(&from_live).expect("decision serializes");
    let parsed: Decision = serde_json::from_str(&logged).expect("decision parses");
    assert_eq!(parsed, from_live);
    let line = from_live.actions[0].to_string();
    assert!(line.starts_with("mark n3 in ash draining until"), "{line}");
    assert!(line.contains("low use since"), "{line}");
}

#[test]
fn node_gauges_count_every_state() {
    let mut booting = node("b", NodeState::Booting, 0);
    booting.created_at_ms = MONDAY;
    let snapshot = fleet(vec![
        active("n1", 10),
        active("n2", 10),
        booting,
        draining("d", 3, MONDAY + MINUTE),
    ]);
    let (decision, _) = decide(&snapshot, &test_policy(), PolicyMemory::default(), MONDAY);
    assert_eq!(
        decision.node_gauges(),
        [("booting", 1), ("active", 2), ("draining", 1)]
    );
}
