//! Micro-benchmarks (criterion), native: token issue and verify per algorithm, the password
//! policies, the OTP hash (the cases of `bench/micro`, which `cargo xtask bench` also runs as Wasm
//! under Node), and argon2id hash and verify at the configured parameters.
//!
//! `cargo bench -p origin --bench micro` (`MICRO_SECONDS` per case, default 2);
//! `cargo test -p origin --bench micro` runs each case once (the CI smoke).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use micro_cases::{Fixture, CASES};

const PASSWORD: &str = "73926481";

fn seconds() -> Duration {
    let secs: f64 = std::env::var("MICRO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn shared_cases(c: &mut Criterion) {
    let fixture = Fixture::new();
    for case in CASES {
        assert_eq!(
            micro_cases::run(&fixture, case, 1),
            1,
            "{} is broken",
            case.name
        );
        c.bench_function(case.name, |b| b.iter(|| (case.run)(&fixture)));
    }
}

/// As the origin's hashing threads run it: m=19456 KiB, t=2, p=1, memory kept between hashes.
fn argon2(c: &mut Criterion) {
    let mut memory = origin::password::Memory::default();
    let stored = memory.hash(PASSWORD).unwrap();
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function("hash", |b| b.iter(|| memory.hash(PASSWORD).unwrap()));
    group.bench_function("verify", |b| {
        b.iter(|| assert!(memory.verify(PASSWORD, &stored).ok))
    });
    group.finish();
}

fn config() -> Criterion {
    let measure = seconds();
    Criterion::default()
        .warm_up_time(measure / 4)
        .measurement_time(measure)
        .without_plots()
}

criterion_group! {
    name = micro;
    config = config();
    targets = shared_cases, argon2
}
criterion_main!(micro);
