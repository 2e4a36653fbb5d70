//! The system benchmark (`cargo xtask bench` runs it after the micro-benchmarks): the origin
//! binary on a fresh PostgreSQL database, our Worker on workerd (Miniflare, workerd's own
//! socket) and under `wrangler dev`, the JavaScript `jose` Worker on the same workerd, and the
//! Django original under gunicorn, all loaded from this process over loopback at the same
//! concurrency, with `pgbench -S` and the argon2 ceiling beside them. Folds in the micro
//! results (criterion's estimates, the Wasm run's JSON), prints one table and writes it as
//! JSON and Markdown.
//!
//! Environment: `BENCH_SECONDS` per workload (default 8), `BENCH_SMOKE=1` (a bounded check
//! that every workload runs and answers right; CI), `BENCH_OUT` (default `bench/results`, or
//! `target/bench/smoke` for a smoke run), `BENCH_ONLY` (sections: origin, workerd, wrangler,
//! django; default all), `BENCH_DJANGO_DIR` (the Django reference; default
//! `../shared/reference/django`), `BENCH_JOSE_DIR` (the built jose peer, from `cargo xtask bench`).
//! A workload with a wrong answer fails the run.

mod measure;
mod report;
mod sections;
mod systems;
mod workloads;

/// What every module of the benchmark uses.
mod prelude {
    pub(crate) use reqwest::{Method, StatusCode};
    pub(crate) use serde_json::{json, Value};
    pub(crate) use shared::keys::{Ed25519PrivateKey, Jwks, SigningKey};
    pub(crate) use shared::signing::{Identity, RequestSigner};
    pub(crate) use shared::token::{Claims, TokenIssuer, TokenKind};
    pub(crate) use std::fmt::Write as _;
    pub(crate) use std::future::Future;
    pub(crate) use std::io::{BufRead, BufReader};
    pub(crate) use std::path::PathBuf;
    pub(crate) use std::process::{Command, Stdio};
    pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
    pub(crate) use std::sync::{Arc, Mutex};
    pub(crate) use std::time::{Duration, Instant};
    pub(crate) use testkit::process::{
        built_worker, prebuilt_worker_config, repo_root, wait_until_up, wrangler_dev, Group,
    };
    pub(crate) use testkit::{free_port, signed_request, TestDb, PASSWORD};

    pub(crate) use crate::measure::*;
    pub(crate) use crate::report::*;
    pub(crate) use crate::systems::*;
    pub(crate) use crate::workloads::*;
    pub(crate) use crate::*;
}

use prelude::*;

pub(crate) const CONCURRENCY: usize = 16;

pub(crate) const SIGNING: &str = "bench-origin-signing-secret-0123456789abcdef";

pub(crate) const RESET: &str = "bench-reset-token-secret-0123456789abcdefghij";

pub(crate) const OTP: &str = "bench-otp-secret-0123456789abcdefghijklmnopq";

pub(crate) const HS_SECRET: &str = "bench-hs256-secret-0123456789abcdefghijklmn";

/// Limits no benchmark reaches (100,000 per period is the most `THROTTLE_RATES` takes), in the
/// periods production uses: `anon` and `user` per day (as
/// their defaults are; their leases then live a minute, `shared::lease::lease_ttl_ms`, and carry
/// 32 permits), `auth` and `password_reset` checked exactly on every request whatever the period.
/// A per-second window would end each lease after 125 ms, which no production rate does.
pub(crate) const RATES: &str =
    "anon=100000/day,user=100000/day,auth=100000/sec,password_reset=100000/sec";

/// The diagnostic rows: `anon` and `user` not throttled, so no limiter call on verify and /me.
pub(crate) const RATES_OFF: &str = "anon=none,user=none,auth=100000/sec,password_reset=100000/sec";

pub(crate) const UNTHROTTLED: &str = "ours (workerd, anon/user=none)";

/// The jose peer behind a Durable Object limiter (bench/edge/jose-limited.mjs).
pub(crate) const JOSE_LIMITED: &str = "jose + DO limiter (workerd)";

pub(crate) const COMPATIBILITY_DATE: &str = "2025-09-01";

// ---------------------------------------------------------------------------------------------
// Options, results

pub(crate) struct Opts {
    pub(crate) seconds: f64,
    pub(crate) smoke: bool,
    pub(crate) out: PathBuf,
    pub(crate) target: PathBuf,
}

impl Opts {
    pub(crate) fn from_env() -> Self {
        let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
        let seconds = std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if smoke { 1.5 } else { 8.0 });
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo_root().join("target"), PathBuf::from);
        let out = std::env::var_os("BENCH_OUT").map_or_else(
            || {
                if smoke {
                    target.join("bench/smoke")
                } else {
                    repo_root().join("bench/results")
                }
            },
            // cargo runs benches in the package's directory; a relative path means the
            // repository's, where `cargo xtask bench` is run.
            |dir| repo_root().join(dir),
        );
        Self {
            seconds,
            smoke,
            out,
            target,
        }
    }
}

pub(crate) fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ok = runtime.block_on(run());
    std::process::exit(if ok { 0 } else { 1 });
}

pub(crate) async fn run() -> bool {
    let opts = Opts::from_env();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "system benchmark: {cores} cores, concurrency {CONCURRENCY}, {} s per workload{}",
        opts.seconds,
        if opts.smoke { " (smoke)" } else { "" }
    );
    let mut bench = Bench {
        concurrency: CONCURRENCY,
        ticks: clock_ticks(),
        opts,
        rows: Vec::new(),
    };
    let http = http();

    // --- the origin, direct (the signed internal API) ------------------------------------
    println!("\n[origin: the internal API, direct]");
    let origin = start_origin(&bench.opts, &http).await;
    let (_, access, _) = origin.user(&http, "bench@example.com").await;
    let claims: Claims = {
        let keys = shared::keys::VerifyingKeys::from_jwks_json(&origin.jwks).unwrap();
        shared::token::TokenVerifier::new(keys, testkit::audience())
            .access(&access, testkit::now())
            .unwrap()
    };
    let identity = Identity::from(&claims);
    let o = Arc::new(origin);
    let (tps, tps8) = if bench.wants("origin") {
        sections::origin_direct(&mut bench, &http, &o, identity).await
    } else {
        (None, None)
    };
    let argon2_ms = argon2_median_ms(if bench.opts.smoke { 3 } else { 20 });
    let ceiling = cores as f64 * 1_000.0 / argon2_ms;
    println!("  argon2id hash median {argon2_ms:.1} ms → login ceiling {cores} cores ÷ argon2 = {ceiling:.1}/s");

    let timing = if bench.opts.smoke || !bench.wants("origin") {
        None
    } else {
        Some(login_timing(&o, &http).await)
    };

    if bench.wants("workerd") {
        sections::edge_ours(&mut bench, &http, &o).await;
        sections::edge_hs256(&mut bench, &o, &claims).await;
        sections::edge_unthrottled(&mut bench, &o, &access).await;
        sections::jose_peers(&mut bench, &http, &o, &claims, &access).await;
    }
    sections::wrangler(&mut bench, &http, &o).await;
    sections::django(&mut bench, &http).await;

    let micro = read_micro(&bench.opts);
    let pg = [tps, tps8];
    write_report(
        &bench,
        cores,
        pg,
        argon2_ms,
        o.watch.peak_rss_mib(),
        &micro,
        timing,
    );
    // Stop the origin before its database is dropped.
    if let Ok(mut o) = Arc::try_unwrap(o) {
        o.group.stop();
        drop(o.db);
    }

    verdict(&bench, &micro)
}

/// Prints the table and writes it as Markdown and JSON under `BENCH_OUT`.
fn write_report(
    bench: &Bench,
    cores: usize,
    [tps, tps8]: [Option<f64>; 2],
    argon2_ms: f64,
    origin_rss: f64,
    micro: &[Micro],
    timing: Option<[f64; 3]>,
) {
    let ceiling = cores as f64 * 1_000.0 / argon2_ms;
    let wasm = worker_size();
    let targets = targets(bench, [tps, tps8], ceiling, origin_rss, wasm, micro, timing);
    let report = Report {
        bench,
        cores,
        tps,
        tps8,
        argon2_ms,
        ceiling,
        origin_rss,
        micro,
        wasm,
        targets: &targets,
        timing,
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    std::fs::create_dir_all(&bench.opts.out).unwrap();
    std::fs::write(bench.opts.out.join("bench.md"), &markdown).unwrap();
    std::fs::write(
        bench.opts.out.join("bench.json"),
        serde_json::to_string_pretty(&report.json()).unwrap() + "\n",
    )
    .unwrap();
    println!(
        "written: {0}/bench.md, {0}/bench.json",
        bench.opts.out.display()
    );
}

/// The run passes when every workload answered right and, in a smoke run, every micro case
/// has its Wasm figure.
fn verdict(bench: &Bench, micro: &[Micro]) -> bool {
    let broken: Vec<_> = bench
        .rows
        .iter()
        .filter(|r| r.errors > 0 || r.requests == 0)
        .map(|r| {
            format!(
                "{} {}: {} of {} wrong",
                r.system, r.workload, r.errors, r.requests
            )
        })
        .collect();
    if !broken.is_empty() {
        eprintln!("workloads with wrong answers:\n  {}", broken.join("\n  "));
        return false;
    }
    if bench.opts.smoke {
        // Every shared case runs as Wasm too (argon2 is native only: the edge never hashes).
        let missing: Vec<_> = micro
            .iter()
            .filter(|m| m.wasm_ns.is_none() && !m.name.starts_with("argon2id"))
            .map(|m| m.name.clone())
            .collect();
        if !missing.is_empty() {
            eprintln!("micro cases without a Wasm figure: {missing:?}");
            return false;
        }
    }
    true
}
