//! Benchmarks: the pure `place` over one region's candidates, a full in-process matchmake
//! (gather + place + reserve) against a 2,000-room directory, and token sign/verify.
//! Run: `cargo bench -p coil-match --bench matchmake`.

use std::time::Duration;

use coil_match::placement::{NodeCandidate, PlacementSnapshot, RegionView, RoomCandidate};
use coil_match::{
    DirectoryOptions, GameMode, Heartbeat, InMemoryDirectory, JoinClaims, MatchRequest, NodeId,
    NodeState, NodeStatus, Nonce, PlacementPolicy, Region, ReplayGuard, RoomDirectory, RoomId,
    RoomState, RoomStatus, TokenSigner, place,
};

fn main() {
    divan::main();
}

fn region() -> Region {
    Region::parse("us-east").unwrap()
}

fn policy() -> PlacementPolicy {
    PlacementPolicy {
        default_region: region(),
        ..PlacementPolicy::default()
    }
}

/// The snapshot a directory hands to placement: 2 × 8 room candidates and 8 nodes.
fn snapshot() -> PlacementSnapshot {
    let rooms = (0..16)
        .map(|index| RoomCandidate {
            room_id: RoomId::parse(&format!("us-east-{index}")).unwrap(),
            node_id: NodeId::parse(&format!("node-{}", index % 8)).unwrap(),
            region: region(),
            state: RoomState::Active,
            joinable: true,
            humans: 60 + index * 3,
            reserved: index % 4,
            tick_p95_ms: 8.0,
            node_state: NodeState::Active,
            mode: GameMode::arena(),
            private: false,
        })
        .collect();
    let nodes = (0..8)
        .map(|index| NodeCandidate {
            node_id: NodeId::parse(&format!("node-{index}")).unwrap(),
            state: NodeState::Active,
            room_capacity: 20,
            rooms: 10 + index,
            humans: 1_000 + index * 10,
        })
        .collect();
    PlacementSnapshot {
        regions: vec![RegionView {
            region: region(),
            rooms,
            nodes,
            seat_capacity: 240_000,
            seats_committed: 150_000,
        }],
        override_room: None,
    }
}

#[divan::bench]
fn place_one_region(bencher: divan::Bencher) {
    let (snapshot, policy) = (snapshot(), policy());
    let request = MatchRequest {
        preferred_region: Some(region()),
        room_override: None,
        mode: GameMode::arena(),
        ..MatchRequest::default()
    };
    bencher.bench_local(|| place(divan::black_box(&snapshot), &request, &policy));
}

#[divan::bench]
fn in_memory_matchmake_2000_rooms(bencher: divan::Bencher) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let directory = InMemoryDirectory::new(DirectoryOptions::default());
    let policy = policy();
    let heartbeat_ttl = Duration::from_secs(365 * 24 * 3_600);
    for node in 0..100u32 {
        let node_id = NodeId::parse(&format!("node-{node}")).unwrap();
        let rooms: Vec<RoomStatus> = (0..20u32)
            .map(|index| RoomStatus {
                room_id: RoomId::parse(&format!("r-{node}-{index}")).unwrap(),
                region: region(),
                node_id: node_id.clone(),
                humans: 10 + (node + index) % 100,
                bots: 0,
                state: RoomState::Active,
                tick_p95_ms: 5.0,
                joinable: true,
                mode: GameMode::arena(),
                lobby: None,
            })
            .collect();
        let heartbeat = Heartbeat {
            node: NodeStatus {
                node_id,
                region: region(),
                public_url: "ws://127.0.0.1:9001".into(),
                state: NodeState::Active,
                room_capacity: 30,
                rooms: 20,
                humans: rooms.iter().map(|room| room.humans).sum(),
                modes: Vec::new(),
            },
            rooms,
        };
        runtime
            .block_on(directory.heartbeat(&heartbeat, heartbeat_ttl, 0))
            .unwrap();
    }
    let request = MatchRequest {
        preferred_region: Some(region()),
        room_override: None,
        mode: GameMode::arena(),
        ..MatchRequest::default()
    };
    // Each iteration moves the clock past the previous reservation's expiry: a steady state in
    // which every matchmake also prunes one expired reservation.
    let mut now_ms = 1_000u64;
    bencher.bench_local(|| {
        now_ms += policy.seat_reservation_ttl_ms + 1;
        runtime
            .block_on(directory.matchmake(&request, &policy, now_ms))
            .unwrap()
    });
}

#[divan::bench]
fn sign_token(bencher: divan::Bencher) {
    let signer = TokenSigner::generate();
    let claims = claims();
    bencher.bench_local(|| signer.sign(divan::black_box(&claims)).unwrap());
}

// Bounded so the replay guard (1 Mi nonces) never fills: at most 100 × 1,000 tokens.
#[divan::bench(sample_count = 100, sample_size = 1_000)]
fn verify_and_admit_token(bencher: divan::Bencher) {
    let signer = TokenSigner::generate();
    let verifier = signer.verifier();
    let guard = ReplayGuard::new(1 << 20);
    bencher
        .with_inputs(|| {
            signer
                .sign(&JoinClaims {
                    nonce: Nonce::random(),
                    ..claims()
                })
                .unwrap()
        })
        .bench_local_values(|token| {
            coil_match::admit_join(
                &verifier,
                &guard,
                token.as_bytes(),
                "us-east-0a1b2c3d",
                "node-a",
                1_000,
            )
            .unwrap()
        });
}

fn claims() -> JoinClaims {
    JoinClaims {
        player_id: "player-123456".into(),
        player_name: "Snake Charmer".into(),
        room_id: "us-east-0a1b2c3d".into(),
        node_id: "node-a".into(),
        expires_at_ms: 30_000,
        nonce: Nonce::random(),
        mode: "arena".into(),
        role: 0,
        team: None,
        party: None,
        cosmetics: Vec::new(),
        account: false,
        host: false,
        private: false,
        rules: None,
        password: false,
        password_hash: None,
    }
}
