//! `decide`: the autoscaling policy as one pure function of (snapshot, policy, memory, now).
//!
//! Owns the rules: scale out on a buffer breach or sustained multi-signal pressure, counting
//! booting and requested nodes, never above the maximum; scale in one node at a time after
//! sustained low use, only if the buffer holds without it; drain before delete, evict before
//! deleting a node that still has players. Must not do IO, read a clock, sleep, or keep state
//! outside the `PolicyMemory` value it returns. Regions are decided independently and in
//! sorted order, so the same inputs always give the same actions.

use std::collections::{BTreeMap, BTreeSet};

use crate::decision::{Action, Decision, MaximumScope, Reason, RegionAssessment};
use crate::memory::{PendingCreation, PolicyMemory, RegionMemory, Retirement};
use crate::policy::{Policy, RegionLimits};
use crate::signals::{PressureSignal, SignalRatios, read_signals};
use crate::snapshot::{FleetSnapshot, NodeSnapshot, NodeState, RegionId, RegionSnapshot};

/// A pressure scale-out grows a region by at most this factor per step: the signals are
/// means over nodes, and a broken reading far above threshold must not multiply the bill.
const MAX_PRESSURE_GROWTH_PER_STEP: f64 = 2.0;

/// Largest spare-seat buffer `decide` will work with, whatever the policy says (a buffer of
/// 100% would ask for infinite capacity). `Policy::validate` rejects such values anyway.
const MAX_EFFECTIVE_BUFFER: f64 = 0.95;

/// Decides what the fleet should do now. Returns the decision (actions with reasons, and the
/// numbers behind them) and the memory to pass to the next call.
///
/// Call it on a steady cadence (every 10–30 s); sustained windows are measured between calls,
/// and a gap longer than `Policy::stale_history_after_ms` restarts them.
pub fn decide(
    snapshot: &FleetSnapshot,
    policy: &Policy,
    memory: PolicyMemory,
    now_ms: u64,
) -> (Decision, PolicyMemory) {
    let mut old_regions = memory.regions;
    let views = region_views(snapshot, policy);

    // First pass: what every region already occupies, for the fleet-wide ceiling.
    let mut global_allowance = policy.max_total_nodes.map(|max_total| {
        let occupied: u64 = views
            .iter()
            .map(|(region, view)| {
                let region_memory = old_regions.get(region);
                u64::from(view.footprint_nodes(region_memory, now_ms))
            })
            .sum();
        u64::from(max_total).saturating_sub(occupied)
    });

    let mut actions = Vec::new();
    let mut assessments = Vec::with_capacity(views.len());
    let mut new_regions = BTreeMap::new();
    for (region, view) in views {
        let mut region_memory = old_regions.remove(region).unwrap_or_default();
        let assessment = decide_region(
            region,
            &view,
            policy,
            policy.limits_for(region),
            &mut region_memory,
            now_ms,
            &mut global_allowance,
            &mut actions,
        );
        assessments.push(assessment);
        new_regions.insert(region.clone(), region_memory);
    }
    let decision = Decision {
        now_ms,
        dry_run: policy.dry_run,
        actions,
        regions: assessments,
    };
    (
        decision,
        PolicyMemory {
            regions: new_regions,
        },
    )
}

/// One region's inputs with duplicates merged: several snapshot entries for one region add
/// up, and a node listed twice counts once (the first listing wins).
struct RegionView<'snapshot> {
    humans: u32,
    seats_reserved: u32,
    rooms_above_soft_cap: u32,
    warm_rooms: u32,
    unplaced_requests: u32,
    nodes: Vec<&'snapshot NodeSnapshot>,
}

impl RegionView<'_> {
    /// Servers this region holds or has asked for: what the ceilings count.
    fn footprint_nodes(&self, region_memory: Option<&RegionMemory>, now_ms: u64) -> u32 {
        let observed = observed_for_pending(&self.nodes, region_memory);
        let requested = region_memory
            .and_then(|memory| memory.pending_creation.as_ref())
            .filter(|pending| now_ms < pending.expires_at_ms)
            .map_or(0, |pending| pending.expected_nodes.saturating_sub(observed));
        count_u32(self.nodes.len()).saturating_add(requested)
    }
}

fn region_views<'snapshot>(
    snapshot: &'snapshot FleetSnapshot,
    policy: &'snapshot Policy,
) -> BTreeMap<&'snapshot RegionId, RegionView<'snapshot>> {
    let mut views: BTreeMap<&RegionId, RegionView<'_>> = BTreeMap::new();
    let mut seen_nodes: BTreeMap<&RegionId, BTreeSet<&str>> = BTreeMap::new();
    let empty_view = || RegionView {
        humans: 0,
        seats_reserved: 0,
        rooms_above_soft_cap: 0,
        warm_rooms: 0,
        unplaced_requests: 0,
        nodes: Vec::new(),
    };
    for region in &snapshot.regions {
        let view = views.entry(&region.region).or_insert_with(empty_view);
        merge_region(view, region);
        let seen = seen_nodes.entry(&region.region).or_default();
        for node in &region.nodes {
            if seen.insert(node.node.0.as_str()) {
                view.nodes.push(node);
            }
        }
    }
    // A region configured in the policy exists even when nothing runs there yet, so its
    // floor can bring up the first nodes.
    for region in policy.regions.keys() {
        views.entry(region).or_insert_with(empty_view);
    }
    for view in views.values_mut() {
        view.nodes.sort_by(|left, right| left.node.cmp(&right.node));
    }
    views
}

fn merge_region(view: &mut RegionView<'_>, region: &RegionSnapshot) {
    view.humans = view.humans.saturating_add(region.humans);
    view.seats_reserved = view.seats_reserved.saturating_add(region.seats_reserved);
    view.rooms_above_soft_cap = view
        .rooms_above_soft_cap
        .saturating_add(region.rooms_above_soft_cap);
    view.warm_rooms = view.warm_rooms.saturating_add(region.warm_rooms);
    view.unplaced_requests = view
        .unplaced_requests
        .saturating_add(region.unplaced_requests);
}

/// Nodes that a pending creation is waiting to see: every listed node that is neither
/// draining nor already being retired.
fn observed_for_pending(nodes: &[&NodeSnapshot], region_memory: Option<&RegionMemory>) -> u32 {
    count_u32(
        nodes
            .iter()
            .filter(|node| node.state != NodeState::Draining)
            .filter(|node| {
                region_memory.is_none_or(|memory| !memory.retirements.contains_key(&node.node))
            })
            .count(),
    )
}

fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

fn seats_of(node: &NodeSnapshot, policy: &Policy) -> u64 {
    u64::from(node.seat_capacity.unwrap_or(policy.seats_per_node))
}

fn effective_buffer(buffer: f64) -> f64 {
    if buffer.is_finite() {
        buffer.clamp(0.0, MAX_EFFECTIVE_BUFFER)
    } else {
        0.0
    }
}

/// True when `capacity` seats leave at least `buffer` of them free for `demand`. No demand
/// always holds, which is what lets a region scale to zero.
fn buffer_holds(capacity: u64, demand: u64, buffer: f64) -> bool {
    demand == 0 || capacity as f64 * (1.0 - effective_buffer(buffer)) >= demand as f64
}

fn spare_fraction(capacity: u64, demand: u64) -> f64 {
    if capacity == 0 {
        if demand == 0 { 1.0 } else { 0.0 }
    } else {
        (capacity as f64 - demand as f64) / capacity as f64
    }
}

/// The fewest nodes of `seats_per_node` to add so the buffer holds again.
fn nodes_to_restore_buffer(capacity: u64, demand: u64, buffer: f64, seats_per_node: u64) -> u32 {
    let seats_per_node = seats_per_node.max(1);
    let holds_with = |nodes: u64| {
        buffer_holds(
            capacity.saturating_add(nodes.saturating_mul(seats_per_node)),
            demand,
            buffer,
        )
    };
    let needed_seats = demand as f64 / (1.0 - effective_buffer(buffer)) - capacity as f64;
    let estimate = (needed_seats / seats_per_node as f64).ceil();
    let limit = u64::from(u32::MAX);
    let mut nodes = if estimate.is_finite() && estimate > 0.0 {
        (estimate as u64).min(limit)
    } else {
        0
    };
    // Floating point can land one off either way; settle on the exact boundary. Two steps
    // each way are always enough, the bound only guards against a pathological input.
    for _ in 0..4 {
        if nodes > 0 && holds_with(nodes - 1) {
            nodes -= 1;
        } else if !holds_with(nodes) && nodes < limit {
            nodes += 1;
        } else {
            break;
        }
    }
    u32::try_from(nodes).unwrap_or(u32::MAX)
}

#[allow(clippy::too_many_arguments)]
fn decide_region(
    region: &RegionId,
    view: &RegionView<'_>,
    policy: &Policy,
    limits: &RegionLimits,
    memory: &mut RegionMemory,
    now_ms: u64,
    global_allowance: &mut Option<u64>,
    actions: &mut Vec<Action>,
) -> RegionAssessment {
    let remember_effects = !policy.dry_run;
    let actions_before = actions.len();
    let mut hold_reasons: Vec<Reason> = Vec::new();

    // Windows are only trusted when the policy watched them: after a long gap (controller
    // down) or a clock step backwards, start them again.
    if let Some(last) = memory.last_evaluated_ms
        && (now_ms < last || now_ms - last > policy.stale_history_after_ms)
    {
        memory.pressing_since_ms.clear();
        memory.low_use_since_ms = None;
    }
    memory.last_evaluated_ms = Some(now_ms);

    // Retirements whose node is gone are finished (deleted, or vanished on its own).
    let before = memory.retirements.len();
    memory.retirements.retain(|node_id, _| {
        view.nodes
            .binary_search_by(|node| node.node.cmp(node_id))
            .is_ok()
    });
    if memory.retirements.len() < before {
        memory.last_retirement_finished_ms = Some(now_ms);
    }

    // Adopt DRAINING nodes this policy did not start: they are retirements like any other,
    // and only one retirement runs at a time.
    let mut adopted = BTreeSet::new();
    for node in view
        .nodes
        .iter()
        .filter(|node| node.state == NodeState::Draining)
    {
        if !memory.retirements.contains_key(&node.node) {
            let deadline_ms = node
                .drain_deadline_ms
                .unwrap_or_else(|| now_ms.saturating_add(policy.drain_deadline_ms));
            memory.retirements.insert(
                node.node.clone(),
                Retirement {
                    marked_at_ms: now_ms,
                    deadline_ms,
                    last_mark_issued_ms: now_ms,
                    eviction_issued_ms: None,
                    delete_issued_ms: None,
                },
            );
            adopted.insert(&node.node);
        }
    }

    // Classify the nodes.
    let mut active: Vec<&NodeSnapshot> = Vec::new();
    let mut booting: Vec<&NodeSnapshot> = Vec::new();
    let mut stuck_booting: Vec<&NodeSnapshot> = Vec::new();
    let mut draining: Vec<&NodeSnapshot> = Vec::new();
    let mut retiring_unmarked: Vec<&NodeSnapshot> = Vec::new();
    for node in &view.nodes {
        let retiring = memory.retirements.contains_key(&node.node);
        match (node.state, retiring) {
            (NodeState::Draining, _) => draining.push(node),
            (_, true) => retiring_unmarked.push(node),
            (NodeState::Booting, false) => {
                if now_ms.saturating_sub(node.created_at_ms) >= policy.boot_timeout_ms {
                    stuck_booting.push(node);
                } else {
                    booting.push(node);
                }
            }
            (NodeState::Active, false) => active.push(node),
        }
    }

    // Drains in progress: delete when empty; after the deadline evict first, then delete once
    // the players had their grace period. Never delete a node the snapshot does not show
    // DRAINING.
    for node in &draining {
        let Some(retirement) = memory.retirements.get_mut(&node.node) else {
            continue;
        };
        let mut reasons = Vec::new();
        if adopted.contains(&node.node) {
            reasons.push(Reason::AdoptedDrainingNode {
                deadline_ms: retirement.deadline_ms,
            });
        }
        let players = node.players();
        let delete_reason = if node.is_empty_of_players() {
            Some(Reason::DrainedEmpty)
        } else if now_ms >= retirement.deadline_ms {
            match retirement.eviction_issued_ms {
                None => {
                    reasons.push(Reason::DrainDeadlinePassed {
                        players,
                        deadline_ms: retirement.deadline_ms,
                    });
                    actions.push(Action::EvictPlayers {
                        region: region.clone(),
                        node: node.node.clone(),
                        reasons,
                    });
                    if remember_effects {
                        retirement.eviction_issued_ms = Some(now_ms);
                    }
                    continue;
                }
                // Strictly later than the eviction, so "evict, then delete" always spans two
                // decisions even with a zero grace period.
                Some(evicted_at_ms)
                    if now_ms > evicted_at_ms
                        && now_ms - evicted_at_ms >= policy.eviction_grace_ms =>
                {
                    Some(Reason::EvictionGraceElapsed {
                        evicted_at_ms,
                        players,
                    })
                }
                Some(_) => None,
            }
        } else {
            None
        };
        match delete_reason {
            Some(reason) => {
                let retry_due = retirement
                    .delete_issued_ms
                    .is_none_or(|issued| now_ms.saturating_sub(issued) >= policy.action_retry_ms);
                if retry_due {
                    if let Some(issued) = retirement.delete_issued_ms {
                        reasons.push(Reason::RetryingEarlierAction {
                            first_issued_ms: issued,
                        });
                    }
                    reasons.push(reason);
                    actions.push(Action::DeleteNode {
                        region: region.clone(),
                        node: node.node.clone(),
                        reasons,
                    });
                    if remember_effects {
                        retirement.delete_issued_ms = Some(now_ms);
                    }
                } else {
                    hold_reasons.push(Reason::RetirementInProgress {
                        node: node.node.clone(),
                    });
                }
            }
            None => hold_reasons.push(Reason::DrainInProgress {
                node: node.node.clone(),
                players,
                deadline_ms: retirement.deadline_ms,
            }),
        }
    }

    // Retirements decided earlier whose node still shows active: the mark did not land.
    for node in &retiring_unmarked {
        let Some(retirement) = memory.retirements.get_mut(&node.node) else {
            continue;
        };
        if now_ms.saturating_sub(retirement.last_mark_issued_ms) >= policy.action_retry_ms {
            actions.push(Action::MarkDraining {
                region: region.clone(),
                node: node.node.clone(),
                deadline_ms: retirement.deadline_ms,
                reasons: vec![Reason::RetryingEarlierAction {
                    first_issued_ms: retirement.marked_at_ms,
                }],
            });
            if remember_effects {
                retirement.last_mark_issued_ms = now_ms;
            }
        } else {
            hold_reasons.push(Reason::RetirementInProgress {
                node: node.node.clone(),
            });
        }
    }

    // Capacity, counting booting nodes and creations the snapshot does not list yet.
    let observed = observed_for_pending(&view.nodes, Some(memory));
    if let Some(pending) = &memory.pending_creation
        && (now_ms >= pending.expires_at_ms || observed >= pending.expected_nodes)
    {
        memory.pending_creation = None;
    }
    let requested = memory
        .pending_creation
        .as_ref()
        .map_or(0, |pending| pending.expected_nodes.saturating_sub(observed));
    let seats_per_node = u64::from(policy.seats_per_node);
    let capacity: u64 = active
        .iter()
        .chain(booting.iter())
        .map(|node| seats_of(node, policy))
        .sum::<u64>()
        .saturating_add(u64::from(requested).saturating_mul(seats_per_node));
    let active_count = count_u32(active.len());
    let booting_count = count_u32(booting.len());
    let serving_nodes = active_count
        .saturating_add(booting_count)
        .saturating_add(requested);
    let footprint = count_u32(view.nodes.len()).saturating_add(requested);
    let node_humans: u64 = view.nodes.iter().map(|node| u64::from(node.humans)).sum();
    let node_reserved: u64 = view
        .nodes
        .iter()
        .map(|node| u64::from(node.seats_reserved))
        .sum();
    // Players on draining nodes count: they will need a seat elsewhere when the drain ends.
    let demand = u64::from(view.humans)
        .max(node_humans)
        .saturating_add(u64::from(view.seats_reserved).max(node_reserved))
        .saturating_add(u64::from(view.unplaced_requests));
    let spare = spare_fraction(capacity, demand);
    let buffer = effective_buffer(policy.spare_seat_buffer);
    let (floor, floor_is_scheduled) = limits.floor_at(now_ms, policy.schedule_lead_ms);

    // Pressure signals and their windows.
    let ratios = read_signals(
        view.rooms_above_soft_cap,
        view.warm_rooms,
        &active,
        &policy.thresholds,
    );
    let mut pressing = Vec::new();
    let mut sustained = Vec::new();
    for signal in PressureSignal::ALL {
        if ratios.is_pressing(signal) {
            let since = *memory.pressing_since_ms.entry(signal).or_insert(now_ms);
            pressing.push(signal);
            if now_ms.saturating_sub(since) >= policy.scale_out_window_ms {
                sustained.push(signal);
            }
        } else {
            memory.pressing_since_ms.remove(&signal);
        }
    }

    // Scale-out: the largest of what the floor, the buffer and sustained pressure ask for.
    let wanted_for_floor = floor.saturating_sub(serving_nodes);
    let wanted_for_buffer = if buffer_holds(capacity, demand, buffer) {
        0
    } else {
        nodes_to_restore_buffer(capacity, demand, buffer, seats_per_node)
    };
    let required_signals = policy.min_pressure_signals.max(1);
    let mut wanted_for_pressure = 0;
    if count_u32(sustained.len()) >= required_signals {
        let cooldown_left = memory.last_pressure_scale_out_ms.map_or(0, |last| {
            last.saturating_add(policy.scale_out_cooldown_ms)
                .saturating_sub(now_ms)
        });
        if cooldown_left > 0 {
            hold_reasons.push(Reason::ScaleOutCooldown {
                remaining_ms: cooldown_left,
            });
        } else {
            let growth = sustained_growth(&sustained, &ratios);
            let target = ((f64::from(active_count) * growth).ceil() as u32)
                .max(active_count.saturating_add(1));
            wanted_for_pressure = target.saturating_sub(serving_nodes);
            if wanted_for_pressure == 0 {
                hold_reasons.push(Reason::BootingNodesCoverPressure {
                    booting: booting_count.saturating_add(requested),
                });
            }
        }
    } else if !pressing.is_empty() {
        hold_reasons.push(Reason::PressureNotSustained {
            pressing: pressing.clone(),
            sustained: sustained.clone(),
            required: required_signals,
        });
    }
    let wanted = wanted_for_floor
        .max(wanted_for_buffer)
        .max(wanted_for_pressure);
    if wanted > 0 {
        let region_room = limits.max_nodes.saturating_sub(footprint);
        let fleet_room = global_allowance.map_or(u32::MAX, |allowance| {
            u32::try_from(allowance).unwrap_or(u32::MAX)
        });
        let count = wanted.min(region_room).min(fleet_room);
        let mut reasons = Vec::new();
        if wanted_for_buffer > 0 {
            reasons.push(Reason::BufferBreach {
                spare_fraction: spare,
                buffer,
                capacity_seats: capacity,
                demand_seats: demand,
            });
        }
        if wanted_for_floor > 0 {
            reasons.push(Reason::BelowFloor {
                nodes: serving_nodes,
                floor,
                scheduled: floor_is_scheduled,
            });
        }
        if wanted_for_pressure > 0 {
            reasons.push(Reason::SustainedPressure {
                signals: sustained.clone(),
                window_ms: policy.scale_out_window_ms,
            });
        }
        if count < wanted {
            reasons.push(Reason::ClampedToMaximum {
                wanted,
                allowed: count,
                scope: if fleet_room < region_room {
                    MaximumScope::Fleet
                } else {
                    MaximumScope::Region
                },
            });
        }
        if count > 0 {
            actions.push(Action::CreateNodes {
                region: region.clone(),
                count,
                reasons,
            });
            if let Some(allowance) = global_allowance.as_mut() {
                *allowance = allowance.saturating_sub(u64::from(count));
            }
            if remember_effects {
                memory.pending_creation = Some(PendingCreation {
                    expected_nodes: observed.saturating_add(requested).saturating_add(count),
                    requested_at_ms: now_ms,
                    expires_at_ms: now_ms.saturating_add(policy.pending_create_timeout_ms),
                });
                memory.last_scale_out_ms = Some(now_ms);
                if wanted_for_pressure > 0 {
                    memory.last_pressure_scale_out_ms = Some(now_ms);
                }
            }
        } else {
            hold_reasons.extend(reasons);
        }
    }

    // Low use: no signal pressing, and the emptiest active node could go with the buffer (plus
    // its margin) intact and every load signal, spread over one node fewer, well below its
    // threshold. Tracked every evaluation so the window is real.
    let emptiest = active.iter().copied().min_by(|left, right| {
        (
            left.players(),
            left.open_connections,
            left.rooms.total(),
            &left.node,
        )
            .cmp(&(
                right.players(),
                right.open_connections,
                right.rooms.total(),
                &right.node,
            ))
    });
    let capacity_after_removal =
        emptiest.map(|node| capacity.saturating_sub(seats_of(node, policy)));
    let spare_after_removal = capacity_after_removal.map(|after| spare_fraction(after, demand));
    let low_use_now = wanted == 0
        && pressing.is_empty()
        && capacity_after_removal.is_some_and(|after| {
            buffer_holds(
                after,
                demand,
                buffer + policy.scale_in_buffer_margin.max(0.0),
            )
        })
        && load_stays_low_after_removal(&ratios, active_count, policy.low_use_signal_fraction);
    if low_use_now {
        memory.low_use_since_ms.get_or_insert(now_ms);
    } else {
        memory.low_use_since_ms = None;
    }

    // Scale-in: at most one retirement per region at a time.
    let retirement_in_progress = memory.retirements.keys().next().cloned();
    if let Some(node) = &retirement_in_progress {
        if wanted == 0 {
            hold_reasons.push(Reason::RetirementInProgress { node: node.clone() });
        }
    } else if let Some(stuck) = stuck_booting.first() {
        // A node that never finished booting holds no players and serves no one; retiring it
        // is pure saving, so it needs no low-use window (it still takes the one slot).
        let deadline_ms = now_ms.saturating_add(policy.drain_deadline_ms);
        actions.push(Action::MarkDraining {
            region: region.clone(),
            node: stuck.node.clone(),
            deadline_ms,
            reasons: vec![Reason::BootTimedOut {
                booting_for_ms: now_ms.saturating_sub(stuck.created_at_ms),
            }],
        });
        if remember_effects {
            memory
                .retirements
                .insert(stuck.node.clone(), new_retirement(now_ms, deadline_ms));
        }
    } else if wanted == 0 {
        let scale_in_delay_left = memory.last_scale_out_ms.map_or(0, |last| {
            last.saturating_add(policy.scale_in_delay_after_scale_out_ms)
                .saturating_sub(now_ms)
        });
        let scale_in_cooldown_left = memory.last_retirement_finished_ms.map_or(0, |last| {
            last.saturating_add(policy.scale_in_cooldown_ms)
                .saturating_sub(now_ms)
        });
        let low_use_for = memory
            .low_use_since_ms
            .map(|since| now_ms.saturating_sub(since));
        if serving_nodes == 0 {
            if demand == 0 {
                hold_reasons.push(Reason::ScaledToZero);
            }
        } else if booting_count.saturating_add(requested) > 0 {
            hold_reasons.push(Reason::NodesBooting {
                booting: booting_count.saturating_add(requested),
            });
        } else if serving_nodes <= floor {
            hold_reasons.push(Reason::AtFloor {
                nodes: serving_nodes,
                floor,
            });
        } else if let (Some(node), Some(after), Some(spare_after)) =
            (emptiest, capacity_after_removal, spare_after_removal)
        {
            if !buffer_holds(after, demand, buffer) {
                hold_reasons.push(Reason::BufferWouldBreakAfterRemoval {
                    spare_fraction_after_removal: spare_after,
                    buffer,
                });
            } else if let Some(low_for) = low_use_for {
                if low_for < policy.scale_in_window_ms {
                    hold_reasons.push(Reason::LowUseNotSustained {
                        remaining_ms: policy.scale_in_window_ms - low_for,
                    });
                } else if scale_in_delay_left > 0 {
                    hold_reasons.push(Reason::ScaleInDelayAfterScaleOut {
                        remaining_ms: scale_in_delay_left,
                    });
                } else if scale_in_cooldown_left > 0 {
                    hold_reasons.push(Reason::ScaleInCooldown {
                        remaining_ms: scale_in_cooldown_left,
                    });
                } else {
                    let deadline_ms = now_ms.saturating_add(policy.drain_deadline_ms);
                    actions.push(Action::MarkDraining {
                        region: region.clone(),
                        node: node.node.clone(),
                        deadline_ms,
                        reasons: vec![Reason::SustainedLowUse {
                            since_ms: now_ms.saturating_sub(low_for),
                            spare_fraction_after_removal: spare_after,
                            node_players: node.players(),
                        }],
                    });
                    if remember_effects {
                        memory
                            .retirements
                            .insert(node.node.clone(), new_retirement(now_ms, deadline_ms));
                    }
                }
            } else if pressing.is_empty() {
                hold_reasons.push(Reason::BufferHealthy {
                    spare_fraction: spare,
                });
            }
        }
    }

    if actions.len() == actions_before {
        if hold_reasons.is_empty() {
            hold_reasons.push(Reason::BufferHealthy {
                spare_fraction: spare,
            });
        }
        actions.push(Action::Hold {
            region: region.clone(),
            reasons: hold_reasons,
        });
    }

    RegionAssessment {
        region: region.clone(),
        nodes_active: active_count,
        nodes_booting: booting_count.saturating_add(count_u32(stuck_booting.len())),
        nodes_draining: count_u32(draining.len() + retiring_unmarked.len()),
        nodes_requested: requested,
        capacity_seats: capacity,
        demand_seats: demand,
        spare_fraction: spare,
        floor,
        max_nodes: limits.max_nodes,
        pressing,
        sustained,
    }
}

fn new_retirement(now_ms: u64, deadline_ms: u64) -> Retirement {
    Retirement {
        marked_at_ms: now_ms,
        deadline_ms,
        last_mark_issued_ms: now_ms,
        eviction_issued_ms: None,
        delete_issued_ms: None,
    }
}

/// How much larger the region should be, from the sustained load signals: the largest ratio
/// to threshold (a mean at 1.3 × its threshold wants about 1.3 × the nodes), capped per step.
/// Room signals are yes/no and ask for one more node, which the caller guarantees anyway.
fn sustained_growth(sustained: &[PressureSignal], ratios: &SignalRatios) -> f64 {
    sustained
        .iter()
        .filter(|signal| signal.is_proportional_to_load())
        .map(|signal| ratios.ratio(*signal))
        .fold(1.0, f64::max)
        .min(MAX_PRESSURE_GROWTH_PER_STEP)
}

/// True when every load signal, with the load of one node spread over the others, stays
/// below `fraction` of its threshold. This gap between "presses at 1.0" and "low below
/// `fraction`" is the hysteresis that stops a retirement from causing the next scale-out.
fn load_stays_low_after_removal(ratios: &SignalRatios, active_nodes: u32, fraction: f64) -> bool {
    let spread = if active_nodes > 1 {
        f64::from(active_nodes) / f64::from(active_nodes - 1)
    } else {
        1.0
    };
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    PressureSignal::ALL
        .iter()
        .filter(|signal| signal.is_proportional_to_load())
        .all(|signal| ratios.ratio(*signal) * spread < fraction)
}

#[cfg(test)]
mod tests;
