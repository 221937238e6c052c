//! Benchmarks: the ranked queue's `form_matches` over 1,000 and 10,000 waiting tickets (breach
//! 4v4, a quarter of them parties of 2–4, four regions, ratings spread like a live population),
//! and one 4v4 rating update.
//! Run: `cargo bench -p coil-match --bench queue`.

use std::collections::BTreeMap;

use coil_match::{
    AccountKey, GameMode, MatchOutcome, QueueRules, Rating, RatingSettings, Region, Ticket,
    TicketId, TicketMember, form_matches, update_match,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// Counts allocations and bytes next to the time (STYLE.md: not only time).
#[global_allocator]
static ALLOCATOR: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

const REGIONS: [&str; 4] = ["us-east", "us-west", "eu-central", "ap-south"];
const NOW_MS: u64 = 120_000;

fn region(name: &str) -> Region {
    Region::parse(name).unwrap()
}

fn rules() -> QueueRules {
    let neighbours = BTreeMap::from([
        (
            region("us-east"),
            vec![region("us-west"), region("eu-central")],
        ),
        (region("us-west"), vec![region("us-east")]),
        (region("eu-central"), vec![region("us-east")]),
        (region("ap-south"), vec![region("us-west")]),
    ]);
    QueueRules::breach(neighbours)
}

/// A rating drawn around 25 (a sum of uniforms, close to normal with σ ≈ 6), its uncertainty
/// between 1 (veterans) and 8.3 (new accounts).
fn rating(random: &mut StdRng) -> Rating {
    let mean = 25.0 + (0..4).map(|_| random.gen_range(-5.0..5.0)).sum::<f64>();
    Rating {
        mean,
        uncertainty: random.gen_range(1.0..25.0 / 3.0),
    }
}

/// `count` tickets: three quarters solos, the rest parties of 2–4, queued over the last two
/// minutes.
fn tickets(count: u64) -> Vec<Ticket> {
    let mut random = StdRng::seed_from_u64(7);
    let mode = GameMode::parse("breach").unwrap();
    let mut next_account = 0u128;
    (0..count)
        .map(|id| {
            let size = if id % 4 == 3 {
                random.gen_range(2..=4)
            } else {
                1
            };
            let leader = rating(&mut random);
            let members = (0..size)
                .map(|_| {
                    next_account += 1;
                    // Parties are of friends: near the leader's rating.
                    let mut member = rating(&mut random);
                    member.mean = leader.mean + random.gen_range(-3.0..3.0);
                    TicketMember {
                        account: AccountKey(next_account),
                        rating: member,
                    }
                })
                .collect();
            Ticket {
                id: TicketId(id),
                members,
                mode: mode.clone(),
                region: region(REGIONS[random.gen_range(0..REGIONS.len())]),
                queued_at_ms: random.gen_range(0..NOW_MS),
            }
        })
        .collect()
}

#[divan::bench(args = [1_000, 10_000])]
fn form_matches_breach(bencher: divan::Bencher, count: u64) {
    let (tickets, rules) = (tickets(count), rules());
    let decision = form_matches(&tickets, &[], &rules, NOW_MS).unwrap();
    // Not a benchmark of doing nothing: most tickets find a match.
    assert!(
        decision.waiting.len() < tickets.len() / 4,
        "{}",
        decision.waiting.len()
    );
    bencher.bench_local(|| form_matches(divan::black_box(&tickets), &[], &rules, NOW_MS));
}

#[divan::bench]
fn rating_update_4v4(bencher: divan::Bencher) {
    let mut random = StdRng::seed_from_u64(11);
    let teams: Vec<Vec<Rating>> = (0..2)
        .map(|_| (0..4).map(|_| rating(&mut random)).collect())
        .collect();
    let settings = RatingSettings::default();
    bencher.bench_local(|| {
        update_match(
            divan::black_box(&teams),
            MatchOutcome::FirstTeamWon,
            &settings,
        )
    });
}
