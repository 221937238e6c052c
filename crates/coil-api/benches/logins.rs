//! Login load: real HTTP against real API replicas (`cargo bench -p coil-api --bench logins`).
//!
//! Two measurements, each printed as one line:
//! 1. `login latency, OWASP cost`: one replica, Argon2id m=19 MiB t=2 p=1 (the default), logins
//!    one after another, rate limits off (one account logging in 100 times would meet its own
//!    limit): p50/p99 show what one login costs when nothing queues.
//! 2. `sustained logins, LOWERED COST`: two replicas sharing PostgreSQL + Redis (when
//!    TEST_DATABASE_URL / TEST_REDIS_URL are set; otherwise SQLite + in-memory, and the line
//!    says so), Argon2 at the smallest parameters (named as such: this measures everything but
//!    the hash), requests sent open-loop at BENCH_RATE per second (default 1000) for
//!    BENCH_SECONDS (default 10), alternating replicas, rate limits on (loopback exempt from
//!    the per-address rules, as in `coil serve`; 2,000 accounts so no account reaches its own
//!    limit).
//!
//! Bounded: at most 1,024 requests in flight, and the run stops after its duration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coil_api::{AccountsConfig, Platform, RateLimits};
use coil_auth::{
    AccessTokenSigner, AccountEvents, Argon2Settings, MemoryAccountEvents, MemoryRateLimiter,
    MemoryRevocationList, RateLimiter, RedisAccountEvents, RedisLink, RedisRateLimiter,
    RedisRevocationList, RevocationList, TrustedProxies, system_clock,
};
use coil_store::Leaderboard;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

struct Backends {
    database_url: String,
    label: &'static str,
    revocations: Arc<dyn RevocationList>,
    events: Arc<dyn AccountEvents>,
    limiter: Arc<dyn RateLimiter>,
    directory: tempfile::TempDir,
    /// PostgreSQL: (admin URL, schema) to drop at the end.
    postgres_schema: Option<(String, String)>,
}

async fn backends() -> Backends {
    let directory = tempfile::tempdir().unwrap();
    let clock = system_clock();
    match (
        std::env::var("TEST_DATABASE_URL"),
        std::env::var("TEST_REDIS_URL"),
    ) {
        (Ok(database), Ok(redis)) => {
            let schema = format!("bench_{:016x}", rand::random::<u64>());
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&database)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let separator = if database.contains('?') { '&' } else { '?' };
            let prefix = format!("coil-bench:{schema}:");
            let link = RedisLink::connect(&redis, &prefix, Duration::from_secs(2))
                .await
                .unwrap();
            Backends {
                database_url: format!("{database}{separator}options[search_path]={schema}"),
                label: "PostgreSQL + Redis",
                revocations: Arc::new(RedisRevocationList::new(link.clone(), clock.clone())),
                events: Arc::new(RedisAccountEvents::start(link.clone())),
                limiter: Arc::new(RedisRateLimiter::new(link, clock)),
                directory,
                postgres_schema: Some((database, schema)),
            }
        }
        _ => Backends {
            database_url: format!("sqlite://{}", directory.path().join("bench.db").display()),
            label: "SQLite + in-memory (TEST_DATABASE_URL/TEST_REDIS_URL unset)",
            revocations: Arc::new(MemoryRevocationList::new(clock.clone())),
            events: Arc::new(MemoryAccountEvents::default()),
            limiter: Arc::new(MemoryRateLimiter::new(clock)),
            directory,
            postgres_schema: None,
        },
    }
}

async fn replica(
    backends: &Backends,
    seed: &str,
    argon2: Argon2Settings,
    limits: RateLimits,
) -> SocketAddr {
    let mut config = AccountsConfig::for_tests(backends.directory.path());
    config.argon2 = argon2;
    config.limits = limits;
    let signer = AccessTokenSigner::from_seed_base64(seed, config.access.clone()).unwrap();
    let platform = Platform::from_parts(
        config,
        signer,
        backends.revocations.clone(),
        backends.events.clone(),
        backends.limiter.clone(),
        system_clock(),
    )
    .unwrap();
    let leaderboard = Leaderboard::connect_with(
        &backends.database_url,
        coil_store::LeaderboardSettings {
            max_connections: 16,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let router = platform.router(leaderboard.accounts());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn seed() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

async fn register(client: &reqwest::Client, addr: SocketAddr, username: &str) {
    let response = client
        .post(format!("http://{addr}/api/auth/register"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "register {username}");
}

async fn login(client: &reqwest::Client, addr: SocketAddr, username: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = match client
        .post(format!("http://{addr}/api/auth/login"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    };
    (status, started.elapsed())
}

async fn owasp_latency(backends: &Backends) {
    // Limits off here: 100 logins of one account would meet its own limit (20 per 15 min).
    let addr = replica(
        backends,
        &seed(),
        Argon2Settings::default(),
        RateLimits::off(),
    )
    .await;
    let client = reqwest::Client::new();
    register(&client, addr, "owasp").await;
    let mut samples = Vec::new();
    for _ in 0..100 {
        let (status, elapsed) = login(&client, addr, "owasp").await;
        assert_eq!(status, 200);
        samples.push(elapsed);
    }
    samples.sort();
    println!(
        "login latency, OWASP cost (m=19 MiB t=2 p=1), one replica on {}, sequential, n=100 | p50 {} | p99 {} | max {}",
        backends.label,
        millis(percentile(&samples, 0.5)),
        millis(percentile(&samples, 0.99)),
        millis(*samples.last().unwrap())
    );
}

async fn sustained(backends: &Backends, rate: u64, seconds: u64) {
    let seed = seed();
    let fast = Argon2Settings::insecure_fast_for_tests();
    let limits = RateLimits {
        exempt: TrustedProxies::parse("127.0.0.0/8").unwrap(),
        ..RateLimits::default()
    };
    let replicas = [
        replica(backends, &seed, fast.clone(), limits.clone()).await,
        replica(backends, &seed, fast, limits).await,
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let accounts = 2_000usize;
    let registering = Arc::new(tokio::sync::Semaphore::new(64));
    let mut registrations = Vec::new();
    for index in 0..accounts {
        let (client, permit) = (client.clone(), registering.clone());
        let addr = replicas[index % 2];
        registrations.push(tokio::spawn(async move {
            let _permit = permit.acquire().await.unwrap();
            register(&client, addr, &format!("user{index}")).await;
        }));
    }
    for registration in registrations {
        registration.await.unwrap();
    }
    let in_flight = Arc::new(tokio::sync::Semaphore::new(1024));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut not_sent = 0u64;
    for index in 0..total {
        let due = started + interval.mul_f64(index as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            not_sent += 1;
            continue;
        };
        let client = client.clone();
        let addr = replicas[(index % 2) as usize];
        let username = format!("user{}", index as usize % accounts);
        tasks.push(tokio::spawn(async move {
            let result = login(&client, addr, &username).await;
            drop(permit);
            result
        }));
    }
    let mut samples = Vec::with_capacity(tasks.len());
    let mut failures = 0u64;
    for task in tasks {
        let (status, elapsed) = task.await.unwrap();
        if status == 200 {
            samples.push(elapsed);
        } else {
            failures += 1;
        }
    }
    let wall = started.elapsed();
    samples.sort();
    println!(
        "sustained logins, LOWERED COST (Argon2 m=8 KiB t=1), 2 replicas on {}, offered {rate}/s for {seconds} s | achieved {:.0}/s | ok {} | failed {failures} | not sent (1,024 in flight) {not_sent} | p50 {} | p99 {} | max {}",
        backends.label,
        samples.len() as f64 / wall.as_secs_f64(),
        samples.len(),
        millis(percentile(&samples, 0.5)),
        millis(percentile(&samples, 0.99)),
        millis(samples.last().copied().unwrap_or_default()),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    runtime.block_on(async {
        let backends = backends().await;
        owasp_latency(&backends).await;
        sustained(&backends, rate, seconds).await;
        if let Some((database, schema)) = &backends.postgres_schema {
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(database)
                .await
                .unwrap();
            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut admin)
                .await;
        }
    });
}
