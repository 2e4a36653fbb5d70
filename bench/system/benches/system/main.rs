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
    let ow = o.watch.clone();
    let (tps, tps8) = if bench.wants("origin") {
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "login (internal)",
                Some(&ow),
                None,
                move |w| {
                    let (h, oo) = (h.clone(), oo.clone());
                    async move {
                        let body = json!({"email": "bench@example.com", "password": PASSWORD});
                        oo.call_from(
                            &h,
                            Method::POST,
                            "/internal/tokens",
                            Identity::Anonymous,
                            Some(&body),
                            &ip(w),
                        )
                        .await
                        .0 == StatusCode::OK
                    }
                },
            )
            .await;
        internal_me(&mut bench, "me (internal)", &o, identity).await;
        // Refresh rotation: each worker follows its own chain (every answer's refresh token is the
        // next request's).
        let mut chains = Vec::new();
        for _ in 0..CONCURRENCY {
            chains.push(Mutex::new(o.login(&http, "bench@example.com").await.1));
        }
        let chains = Arc::new(chains);
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "refresh rotation (internal)",
                Some(&ow),
                None,
                move |w| {
                    let (h, oo, chains) = (h.clone(), oo.clone(), chains.clone());
                    async move {
                        let token = chains[w].lock().unwrap().clone();
                        let body = json!({ "refresh": token });
                        let (status, reply) = oo
                            .call(
                                &h,
                                Method::POST,
                                "/internal/tokens/refresh",
                                Identity::Anonymous,
                                Some(&body),
                            )
                            .await;
                        match reply["refresh"].as_str() {
                            Some(next) if status == StatusCode::OK => {
                                *chains[w].lock().unwrap() = next.to_owned();
                                true
                            }
                            _ => false,
                        }
                    }
                },
            )
            .await;
        let counter = Arc::new(AtomicU64::new(0));
        let (h, oo) = (http.clone(), o.clone());
        bench
            .run(
                "origin",
                "origin",
                "register (internal)",
                Some(&ow),
                None,
                move |_| {
                    let (h, oo) = (h.clone(), oo.clone());
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let body = json!({
                            "email": format!("new{n}@example.com"),
                            "username": format!("new{n}"),
                            "password": PASSWORD,
                        });
                        oo.call(
                            &h,
                            Method::POST,
                            "/internal/users",
                            Identity::Anonymous,
                            Some(&body),
                        )
                        .await
                        .0 == StatusCode::CREATED
                    }
                },
            )
            .await;
        // The one-row lookup again at concurrency 8, beside pgbench at both: on 2 cores,
        // 16 loops over-subscribe the origin's runtime and the load generator more than they
        // do pgbench's C client.
        bench.concurrency = 8;
        internal_me(&mut bench, "me (internal, concurrency 8)", &o, identity).await;
        bench.concurrency = CONCURRENCY;
        print!("  pgbench -S -j 2 on the same PostgreSQL, -c {CONCURRENCY} and -c 8 ... ");
        let tps = pgbench(bench.opts.seconds, &[CONCURRENCY, 8]);
        let show = |t: Option<f64>| t.map_or("unavailable".into(), |t| format!("{t:.0} tps"));
        println!("{} and {}", show(tps[0]), show(tps[1]));
        (tps[0], tps[1])
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
        // --- the edge: our Worker on workerd, the jose peer on the same workerd ----------------
        println!("\n[edge: workerd via Miniflare (workerd's own socket)]");
        let ours = our_worker(
            &bench.opts,
            "workerd-ours",
            our_worker_bindings(&o, "EdDSA"),
        );
        public_workloads(
            &mut bench,
            "edge",
            "ours (workerd)",
            &ours.base,
            &ours.watch,
            Some(&ow),
            "edge@example.com",
        )
        .await;
        let (h, b) = (http.clone(), ours.base.clone());
        bench
            .run(
                "edge",
                "ours (workerd)",
                "GET /.well-known/jwks.json (floor)",
                Some(&ours.watch),
                None,
                move |w| {
                    status_is(
                        h.get(format!("{b}/.well-known/jwks.json"))
                            .header("CF-Connecting-IP", ip(w)),
                        StatusCode::OK,
                    )
                },
            )
            .await;
        drop(ours);

        // HS256: a Worker configured for it; tokens minted here with the same secret.
        let hs_token = {
            let issuer = TokenIssuer::new(
                SigningKey::hs256(HS_SECRET.as_bytes()).unwrap(),
                testkit::audience(),
            );
            let subject = shared::token::Subject {
                user_id: claims.user_id,
                token_version: claims.ver,
                role: claims.role.clone(),
            };
            let c = issuer.claims(
                TokenKind::Access,
                &subject,
                "bench-hs256".into(),
                testkit::now(),
                3600,
            );
            issuer.sign(&c).unwrap()
        };
        let ours_hs = our_worker(
            &bench.opts,
            "workerd-ours-hs256",
            our_worker_bindings(&o, "HS256"),
        );
        let hs_body = json!({ "token": hs_token }).to_string();
        verify_loop(
            &mut bench,
            "ours (workerd)",
            "POST /jwt/verify/ HS256",
            &ours_hs,
            "/api/auth/jwt/verify/",
            &hs_body,
        )
        .await;
        drop(ours_hs);

        // The same Worker with the anon and user scopes off: what the limiter call costs.
        let ed_body = json!({ "token": access }).to_string();
        let mut bindings = our_worker_bindings(&o, "EdDSA");
        bindings["THROTTLE_RATES"] = json!(RATES_OFF);
        let off = our_worker(&bench.opts, "workerd-ours-unthrottled", bindings);
        verify_loop(
            &mut bench,
            UNTHROTTLED,
            "POST /jwt/verify/",
            &off,
            "/api/auth/jwt/verify/",
            &ed_body,
        )
        .await;
        public(
            &mut bench,
            "edge",
            UNTHROTTLED,
            "GET /me/",
            &off.watch,
            Some(&ow),
            format!("{}/api/auth/me/", off.base),
            Payload::Bearer(access.clone()),
        )
        .await;
        drop(off);

        match jose_peer() {
            Some(dir) => {
                let peer = serve_on_workerd(
                    &bench.opts,
                    "workerd-jose",
                    json!({
                        "modulesRoot": dir,
                        "modules": [{"type": "ESModule", "path": dir.join("worker.mjs")}],
                        "bindings": {"ED_X": o.key_x, "HS_SECRET": HS_SECRET},
                    }),
                );
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/eddsa",
                    &peer,
                    "/verify/eddsa",
                    &ed_body,
                )
                .await;
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/hs256key",
                    &peer,
                    "/verify/hs256key",
                    &hs_body,
                )
                .await;
                verify_loop(
                    &mut bench,
                    "jose (workerd)",
                    "POST /verify/hs256",
                    &peer,
                    "/verify/hs256",
                    &hs_body,
                )
                .await;
                let (h, b) = (http.clone(), peer.base.clone());
                bench
                    .run(
                        "edge",
                        "jose (workerd)",
                        "GET /hello (floor)",
                        Some(&peer.watch),
                        None,
                        move |_| status_is(h.get(format!("{b}/hello")), StatusCode::OK),
                    )
                    .await;
                drop(peer);
                // The JS way of doing our job: the same verify behind a Durable Object limiter
                // of our semantics, at our `anon` rate.
                let limited = serve_on_workerd(
                    &bench.opts,
                    "workerd-jose-limited",
                    json!({
                        "modulesRoot": dir,
                        "modules": [{"type": "ESModule", "path": dir.join("limited.mjs")}],
                        "bindings": {"ED_X": o.key_x, "ANON_RATE": RATES.split(',').next().unwrap().trim_start_matches("anon=")},
                        "durableObjects": {"LIMITER": "Limiter"},
                    }),
                );
                verify_loop(
                    &mut bench,
                    JOSE_LIMITED,
                    "POST /verify/eddsa",
                    &limited,
                    "/verify/eddsa",
                    &ed_body,
                )
                .await;
            }
            None => {
                println!("  the jose peer is not built (`cargo xtask bench` builds it): skipped")
            }
        }
    }

    // --- the same Worker under wrangler dev ------------------------------------------------
    println!("\n[edge: wrangler dev (for reference: its Node proxy sits in front of workerd)]");
    if bench.wants("wrangler") {
        let state = bench
            .opts
            .target
            .join(format!("bench/wrangler-state-{}", std::process::id()));
        std::fs::create_dir_all(&state).unwrap();
        let port = free_port();
        let vars: Vec<String> = our_worker_bindings(&o, "EdDSA")
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap()))
            .collect();
        let log = bench.opts.target.join("bench/wrangler.log");
        let config = prebuilt_worker_config("bench", true);
        let mut dev = wrangler_dev(Some(&config), port, &state, &log, &vars);
        let base = format!("http://127.0.0.1:{port}");
        wait_until_up(
            &http,
            &format!("{base}/.well-known/jwks.json"),
            Duration::from_secs(600),
        )
        .await;
        let watch = Watch::Group(i32::try_from(dev.child().id()).unwrap());
        public_workloads(
            &mut bench,
            "edge",
            "ours (wrangler dev)",
            &base,
            &watch,
            Some(&ow),
            "dev@example.com",
        )
        .await;
        drop(dev);
        let _ = std::fs::remove_dir_all(&state);
    }

    // --- the Django original -----------------------------------------------------------------
    println!(
        "\n[the Django original: Django + DRF + Djoser + SimpleJWT, gunicorn, same PostgreSQL]"
    );
    if !bench.wants("django") {
        println!("  skipped (BENCH_ONLY)");
    } else if let Some(django) = start_django(&bench.opts, &http).await {
        let watch = django.watch.clone();
        let base = django.base.clone();
        public_workloads(
            &mut bench,
            "django",
            "django (gunicorn)",
            &base,
            &watch,
            None,
            "bench@example.com",
        )
        .await;
        django.stop().await;
    }

    let origin_rss = o.watch.peak_rss_mib();
    let micro = read_micro(&bench.opts);
    let wasm = worker_size();
    let targets = targets(
        &bench,
        [tps, tps8],
        ceiling,
        origin_rss,
        wasm,
        &micro,
        timing,
    );
    let report = Report {
        bench: &bench,
        cores,
        tps,
        tps8,
        argon2_ms,
        ceiling,
        origin_rss,
        micro: &micro,
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

    // Stop the origin before its database is dropped.
    if let Ok(mut o) = Arc::try_unwrap(o) {
        o.group.stop();
        drop(o.db);
    }

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
