//! A small, bounded benchmark of the origin (not a test): argon2id hash time, logins/s and
//! internal `me` requests/s over the signed internal API at concurrency 8, and `pgbench -S`
//! (one-row primary-key reads) on the same PostgreSQL in the same run as the ceiling.
//!
//! `cargo bench -p origin --bench internal_api` (BENCH_SECONDS, default 10, per workload).
//! Load generator, origin and PostgreSQL share this machine's cores; loopback only.

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::process::Command;
use std::time::{Duration, Instant};

use helpers::{spawn_app, TestApp, PASSWORD};
use reqwest::{Method, StatusCode};

const CONCURRENCY: usize = 8;

struct Figures {
    requests: usize,
    errors: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}

/// Runs `CONCURRENCY` loops of `one` for `seconds`; `one` returns whether the answer was right.
async fn load<F, Fut>(seconds: u64, one: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !one().await {
                        errors += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Figures {
        requests: all.len(),
        errors,
        per_sec: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    }
}

fn argon2_hash_ms() -> (f64, f64) {
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            origin::password::hash_blocking(PASSWORD).unwrap();
            t.elapsed().as_secs_f64() * 1_000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

/// `pgbench -S` tps on a scratch database (created, initialised at scale 10, dropped).
fn pgbench(seconds: u64) -> Option<f64> {
    let url = reqwest::Url::parse(&helpers::admin_url()).ok()?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432).to_string();
    let user = if url.username().is_empty() {
        "postgres".to_owned()
    } else {
        url.username().to_owned()
    };
    let db = format!("bench_pgbench_{}", std::process::id());
    let pg = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(["-h", &host, "-p", &port, "-U", &user])
            .args(args)
            .output()
            .ok()
    };
    pg("createdb", &[&db])?;
    let init = pg("pgbench", &["-i", "-q", "-s", "10", &db])?;
    let result = if init.status.success() {
        let out = pg(
            "pgbench",
            &["-S", "-c", "8", "-j", "2", "-T", &seconds.to_string(), &db],
        )?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| {
                l.trim_start_matches("tps = ")
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
    } else {
        eprintln!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        None
    };
    pg("dropdb", &[&db]);
    result
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("origin internal API benchmark: {cores} cores, concurrency {CONCURRENCY}, {seconds} s per workload");

    let (hash_median, hash_min) = argon2_hash_ms();
    println!(
        "argon2id hash (m=19456 KiB, t=2, p=1): median {hash_median:.1} ms, min {hash_min:.1} ms"
    );

    let app: &'static TestApp = Box::leak(Box::new(spawn_app().await));
    let (_, access, _) = app.signed_up("bench@example.com", "bench").await;
    let identity = app.identity(&access);

    let login = load(seconds, move || async move {
        app.login("bench@example.com", PASSWORD).await.status == StatusCode::OK
    })
    .await;
    let me = load(seconds, move || async move {
        app.send(Method::GET, "/internal/me", identity, None)
            .await
            .status
            == StatusCode::OK
    })
    .await;
    let tps = pgbench(seconds);
    let timing = login_timing(app).await;

    let ceiling = cores as f64 * 1_000.0 / hash_median;
    println!();
    println!("| workload | requests | errors | per second | p50 ms | p99 ms | reference |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| login (argon2 verify + family insert) | {} | {} | {:.1} | {:.1} | {:.1} | ceiling cores/argon2 = {:.1}/s ({:.0}%) |",
        login.requests, login.errors, login.per_sec, login.p50_ms, login.p99_ms, ceiling, 100.0 * login.per_sec / ceiling
    );
    let pg_ref = tps.map_or("pgbench -S: unavailable".to_owned(), |t| {
        format!(
            "pgbench -S c=8 = {t:.0} tps ({:.0}%)",
            100.0 * me.per_sec / t
        )
    });
    println!(
        "| internal me (signature + 1 row) | {} | {} | {:.1} | {:.2} | {:.2} | {pg_ref} |",
        me.requests, me.errors, me.per_sec, me.p50_ms, me.p99_ms
    );
    println!();
    println!(
        "login timing, {} interleaved rounds, medians: unknown email {:.1} ms, known email + wrong password {:.1} ms, right password {:.1} ms; unknown vs wrong differ by {:.1} ms ({:.1}%)",
        timing.rounds,
        timing.unknown_ms,
        timing.wrong_ms,
        timing.right_ms,
        (timing.unknown_ms - timing.wrong_ms).abs(),
        100.0 * (timing.unknown_ms - timing.wrong_ms).abs() / timing.wrong_ms
    );
}

struct Timing {
    rounds: usize,
    unknown_ms: f64,
    wrong_ms: f64,
    right_ms: f64,
}

/// Sequential logins, one of each kind per round (so drift hits all three alike): the
/// enumeration question is whether an unknown email answers faster than a known one.
async fn login_timing(app: &TestApp) -> Timing {
    const ROUNDS: usize = 40; // below the lockout threshold of 100 failures
    let reply = app.register("timing@example.com", "timing", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, (email, password)) in [
            ("nobody-here@example.com", "00000000"),
            ("timing@example.com", "00000000"),
            ("timing@example.com", PASSWORD),
        ]
        .into_iter()
        .enumerate()
        {
            let started = Instant::now();
            let _ = app.login(email, password).await;
            samples[i].push(started.elapsed());
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        percentile(v, 0.5)
    };
    let [mut unknown, mut wrong, mut right] = samples;
    Timing {
        rounds: ROUNDS,
        unknown_ms: median(&mut unknown),
        wrong_ms: median(&mut wrong),
        right_ms: median(&mut right),
    }
}
