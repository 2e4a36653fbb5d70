//! `cargo xtask test`: every check and test of the repository, as CI runs it (`.ci/run`).
//!
//! Nothing is built twice. Clippy does not run as a separate `cargo clippy` pass (which would
//! type-check every dependency a second time, about 9 of CI's minutes): clippy's driver is the
//! compiler of the workspace's own crates (`RUSTC_WORKSPACE_WRAPPER`, what `cargo clippy`
//! itself sets), with warnings denied, while every target is built for the tests (host) and
//! while the Worker is built (wasm32), so the lints are those of `cargo clippy --all-targets --
//! -D warnings` and the build is the one the tests, the fuzzing and the benchmark then use. The
//! benchmarks' smoke runs are targets of that same `cargo test --all-targets` (another cargo
//! invocation selecting only a bench resolves features differently and would compile about 60
//! dependencies again).

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::cmd::{fail, output, run as run_cmd, step, succeeds, Error, Result};
use xtask::{releases, toolchain, worker};

use super::{bench, database_url, dev::without_query, fuzz, upgrade, Args};

pub fn run(root: &Path, args: &[String]) -> Result {
    Args::parse(args, &[], &[])?;
    toolchain::ensure(root)?;
    let lints = Lints::new()?;
    let cargo = || {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root).env("DATABASE_URL", database_url());
        if std::env::var_os("CARGO_TERM_COLOR").is_none() {
            cmd.env("CARGO_TERM_COLOR", "never");
        }
        lints.apply(&mut cmd);
        cmd
    };

    let database = database_url();
    step(&format!("PostgreSQL at {}", without_query(&database)));
    if !succeeds(Command::new("pg_isready").args(["-d", &database, "-t", "5"])) {
        return fail(
            "PostgreSQL is not answering at DATABASE_URL; the integration tests need it. \
             Start it (e.g. pg_ctlcluster 15 main start) or set DATABASE_URL.",
        );
    }

    step("compose.yaml: docker compose config (with and without the required secrets)");
    let secrets = [
        ("ORIGIN_SIGNING_SECRET", "check"),
        ("RESET_TOKEN_SECRET", "check"),
        ("JWT_PRIVATE_KEY", "check"),
    ];
    run_cmd(
        toolchain::compose(root)?
            .args(["-f", "compose.yaml", "config", "-q"])
            .envs(secrets),
    )?;
    if succeeds(
        toolchain::compose(root)?
            .args(["-f", "compose.yaml", "config", "-q"])
            .envs(secrets)
            .env_remove("ORIGIN_SIGNING_SECRET"),
    ) {
        return fail("compose.yaml accepted a configuration without ORIGIN_SIGNING_SECRET");
    }
    println!("compose.yaml is valid; it refuses to start without the secrets");

    step("cargo fmt --check");
    run_cmd(
        Command::new("cargo")
            .current_dir(root)
            .args(["fmt", "--all", "--check"]),
    )?;

    step(
        "docs/capacity.md is what bench/results/bench.json gives (node bench/capacity.mjs --check)",
    );
    run_cmd(toolchain::command(root, "node").args(["bench/capacity.mjs", "--check"]))?;

    step("build every target for the tests, linted by clippy (host, -D warnings)");
    run_cmd(cargo().args([
        "test",
        "--workspace",
        "--all-targets",
        "--locked",
        "--no-run",
    ]))?;

    step(
        "build the Worker once, linted by clippy (wasm32, -D warnings; reused by every later step)",
    );
    worker::build(root, |cmd| lints.apply(cmd))?;
    let (raw, gzip) = worker::size(root)?;
    println!("Worker Wasm: {raw} bytes raw, {gzip} bytes gzip");

    step("wrangler deploy --dry-run: what a deploy from a fresh clone uploads (its own build, the docs bundles, bindings, Durable Object migrations, size)");
    let gzip = worker::deploy_dry_run(root, |cmd| lints.apply(cmd))?;
    println!(
        "deploy bundle: {gzip:.1} KiB gzip (Free plan limit {:.0} KiB)",
        worker::FREE_PLAN_GZIP_KIB
    );

    bench::prepare(root, true, &cargo)?;

    // --all-targets: the benchmarks run too, in the test profile and with BENCH_SMOKE=1 (a
    // second or two per workload, failing on any wrong answer), from the build above.
    step("cargo test: unit, property, integration on PostgreSQL + SMTP, end-to-end through wrangler dev, and the benchmarks' smoke runs");
    run_cmd(
        cargo()
            .args(["test", "--workspace", "--all-targets", "--locked"])
            .env("BENCH_SMOKE", "1")
            .env("MICRO_SECONDS", "0.2"),
    )?;

    step("fuzz the running system through its OpenAPI document (bounded; `cargo xtask fuzz api` runs > 1,000 cases)");
    fuzz::api(root, 15, Some(root.join("target/debug/origin")))?;

    step("cargo fuzz the shared parsers (bounded; `cargo xtask fuzz shared` runs 60 s per target)");
    fuzz::shared(root, 10)?;

    // Minutes of builds: only when what two releases share changed (`releases::why_test`).
    let previous = releases::previous(root)?;
    match releases::why_test(root)? {
        Some(why) => {
            println!("upgrade test: {why}");
            upgrade::test(&releases::build(root, &previous)?, &cargo)?;
        }
        None => println!(
            "upgrade test not run: {} and the previous release {} are unchanged since it \
             (`cargo xtask upgrade` or UPGRADE_TEST=1 runs it)",
            releases::CONTRACT.join(", "),
            previous.version
        ),
    }

    step("all checks passed");
    Ok(())
}

/// Clippy's lints, with warnings denied, on the workspace's own crates as they are compiled.
struct Lints {
    driver: PathBuf,
}

impl Lints {
    fn new() -> Result<Lints> {
        let driver =
            output(Command::new("rustup").args(["which", "clippy-driver"])).map_err(|err| {
                Error(format!(
                    "{err}: clippy is needed (rustup component add clippy)"
                ))
            })?;
        Ok(Lints {
            driver: PathBuf::from(driver.trim()),
        })
    }

    fn apply(&self, cmd: &mut Command) {
        // CLIPPY_ARGS is how `cargo clippy` passes `-- -D warnings` to the driver.
        cmd.env("RUSTC_WORKSPACE_WRAPPER", &self.driver).env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    }
}
