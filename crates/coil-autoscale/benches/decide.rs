//! Benchmark: one `decide` call over a 200-node fleet (4 regions × 50 nodes), the size the
//! week-long simulation and a 100k CCU fleet run at. Reports time, allocations and bytes per
//! call (the memory clone, the result's `Vec`s and the per-region scratch lists).

use coil_autoscale::{
    FleetSnapshot, NodeId, NodeSnapshot, NodeState, Policy, PolicyMemory, RegionId, RegionLimits,
    RegionSnapshot, decide,
};

// Counts allocations and bytes per call next to the time, as the style guide asks.
#[global_allocator]
static ALLOCATOR: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

fn fleet(regions: usize, nodes_per_region: usize) -> FleetSnapshot {
    let mut snapshot = FleetSnapshot::default();
    for region_index in 0..regions {
        let mut region = RegionSnapshot::new(RegionId::new(format!("region-{region_index}")));
        for node_index in 0..nodes_per_region {
            let mut node = NodeSnapshot::new(
                NodeId::new(format!("node-{region_index}-{node_index}")),
                NodeState::Active,
            );
            // A spread of loads so the emptiest-node search and every signal do real work.
            let load = (node_index % 10) as f64 / 10.0;
            node.cpu_utilization = 0.3 + 0.4 * load;
            node.memory_utilization = 0.4;
            node.humans = 300 + (node_index as u32 % 7) * 20;
            node.open_connections = node.humans;
            node.egress_bytes_per_second = 20_000_000.0 * load;
            node.tick_p95_ms = 10.0 + 10.0 * load;
            node.tick_p99_ms = 15.0 + 15.0 * load;
            node.rooms.active = 4;
            node.room_capacity = 6;
            region.humans += node.humans;
            region.nodes.push(node);
        }
        snapshot.regions.push(region);
    }
    snapshot
}

#[divan::bench]
fn decide_200_nodes(bencher: divan::Bencher) {
    let snapshot = fleet(4, 50);
    let policy = Policy {
        default_limits: RegionLimits {
            min_nodes: 1,
            max_nodes: 80,
            schedule: Vec::new(),
        },
        ..Policy::default()
    };
    // Warm memory: windows already open, as in a running controller.
    let (_, memory) = decide(&snapshot, &policy, PolicyMemory::default(), 1_000_000);
    let mut now_ms = 1_015_000;
    bencher.bench_local(|| {
        now_ms += 15_000;
        let (decision, next) = decide(divan::black_box(&snapshot), &policy, memory.clone(), now_ms);
        divan::black_box((decision, next))
    });
}
