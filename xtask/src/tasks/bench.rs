//! `cargo xtask bench [--smoke]`: the benchmark, loopback only. The Worker (built once, as
//! `wrangler.toml` does) and the jose peer Worker; the micro-benchmarks natively (criterion) and
//! as wasm32 under Node; then `bench/system`: the origin binary, our Worker on workerd and under
//! wrangler dev, the jose peer, the Django original, pgbench -S and the argon2 ceiling, in one
//! run, folded into one table (bench/results/bench.{md,json}; a smoke run writes
//! target/bench/smoke/).
//!
//! Environment: BENCH_SECONDS (per HTTP workload, default 8), MICRO_SECONDS (per micro case,
//! default 2), BENCH_DJANGO_DIR, BENCH_JOSE_SRC (default ../shared/{reference/django,
//! peers/js-jose-worker}), DATABASE_URL (default the local PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::cmd::{elapsed, output, run as run_cmd, step, Result};
use xtask::{toolchain, worker};

use super::{database_url, Args};

pub fn run(root: &Path, args: &[String]) -> Result {
    let args = Args::parse(args, &["--smoke"], &[])?;
    toolchain::ensure(root)?;
    step("the Worker (worker-build --release, as wrangler.toml does; only if its sources changed)");
    worker::ensure_built(root)?;
    bench(root, args.has("--smoke"))
}

/// The benchmark after the Worker is built: [`prepare`], then the native micro-benchmarks and
/// the system benchmark (criterion and `bench/system` in their bench profile; a smoke run runs
/// them in the test profile, as `cargo test` does).
fn bench(root: &Path, smoke: bool) -> Result {
    let started = elapsed();
    let cargo = || {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root)
            .env("DATABASE_URL", database_url())
            .env("MICRO_SECONDS", micro_seconds(smoke));
        if smoke {
            cmd.env("BENCH_SMOKE", "1");
        }
        toolchain::configure(root, &mut cmd);
        cmd
    };
    prepare(root, smoke, &cargo)?;
    let mode = if smoke { "test" } else { "bench" };
    step("micro-benchmarks, native (criterion)");
    run_cmd(cargo().args([mode, "--workspace", "--locked", "--bench", "micro"]))?;
    step("system benchmark: origin, edge (workerd, wrangler dev), jose peer, Django original");
    run_cmd(cargo().args([mode, "--workspace", "--locked", "--bench", "system"]))?;
    if !smoke {
        step("the capacity model from the new results (docs/capacity.md)");
        run_cmd(toolchain::command(root, "node").arg("bench/capacity.mjs"))?;
    }
    println!(
        "benchmark finished in {} s (after the toolchain check)",
        elapsed() - started
    );
    Ok(())
}

fn micro_seconds(smoke: bool) -> String {
    if smoke {
        "0.2".to_owned()
    } else {
        std::env::var("MICRO_SECONDS").unwrap_or_else(|_| "2".into())
    }
}

/// What the system benchmark reads besides its own measurements: the jose peer Worker, built
/// into target/bench/jose, and the micro-benchmark cases compiled to wasm32 and run under Node
/// (target/bench/micro-wasm.json). `cargo` makes the cargo commands (the test task's carry its
/// lint settings).
pub fn prepare(root: &Path, smoke: bool, cargo: &dyn Fn() -> Command) -> Result {
    let target = root.join("target/bench");
    std::fs::create_dir_all(&target)?;
    step("the jose peer Worker (npm ci + esbuild)");
    match jose_source(root) {
        Some(source) => build_jose(root, &source)?,
        None => println!("the jose peer was not found (set BENCH_JOSE_SRC): its rows are skipped"),
    }

    step("micro-benchmarks, wasm32 under Node (the same cases)");
    // Release, as the Worker is built: most of its wasm32 dependencies are reused (a debug
    // build would compile them all again, about 2 minutes here).
    run_cmd(cargo().current_dir(root).args([
        "build",
        "--locked",
        "--release",
        "-p",
        "micro-cases",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let wasm = root.join("target/wasm32-unknown-unknown/release/micro_cases.wasm");
    let bindgen = toolchain::tool("WASM_BINDGEN_BIN", toolchain::cargo_bin("wasm-bindgen"));
    run_cmd(
        Command::new(bindgen)
            .args(["--target", "nodejs", "--out-dir"])
            .arg(target.join("micro-wasm"))
            .arg(&wasm),
    )?;
    let results = output(
        toolchain::command(root, "node")
            .arg("bench/micro/run.mjs")
            .arg(target.join("micro-wasm"))
            .arg(micro_seconds(smoke)),
    )?;
    std::fs::write(target.join("micro-wasm.json"), &results)?;
    println!("{results}");
    Ok(())
}

/// The jose peer's sources: BENCH_JOSE_SRC, else `../shared/peers/js-jose-worker` (optional).
fn jose_source(root: &Path) -> Option<PathBuf> {
    std::env::var_os("BENCH_JOSE_SRC")
        .map(PathBuf::from)
        .into_iter()
        .chain([root.join("../shared/peers/js-jose-worker")])
        .find(|dir| dir.join("worker.mjs").is_file())
}

/// Copies the peer into target/bench/jose (its source may be read-only) and bundles it.
fn build_jose(root: &Path, source: &Path) -> Result {
    let dir = root.join("target/bench/jose");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for file in ["worker.mjs", "package.json", "package-lock.json"] {
        let to = dir.join(file);
        std::fs::copy(source.join(file), &to)?;
        let mut permissions = std::fs::metadata(&to)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)] // a private copy under target/
        permissions.set_readonly(false);
        std::fs::set_permissions(&to, permissions)?;
    }
    run_cmd(toolchain::command(root, "npm").current_dir(&dir).args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--silent",
    ]))?;
    // Beside it, the same verify behind a Durable Object limiter (ours, in JavaScript).
    std::fs::copy(
        root.join("bench/edge/jose-limited.mjs"),
        dir.join("limited.mjs"),
    )?;
    for (entry, out) in [
        ("worker.mjs", "dist/worker.mjs"),
        ("limited.mjs", "dist/limited.mjs"),
    ] {
        run_cmd(toolchain::command(root, "npx").current_dir(&dir).args([
            "esbuild",
            entry,
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            &format!("--outfile={out}"),
            "--log-level=warning",
        ]))?;
    }
    Ok(())
}
