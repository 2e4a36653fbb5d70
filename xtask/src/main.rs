//! `cargo xtask <task>`: the repository's tasks (see [`USAGE`]).

use std::process::ExitCode;

mod tasks;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  test                      every check and test, as CI runs it (.ci/run runs exactly this):
                            fmt, clippy (host and wasm32), the Worker build, cargo test,
                            bounded fuzzing of the API and the parsers, the benchmark's smoke run
  dev                       the whole system locally: PostgreSQL (a private cluster in .dev/
                            unless DATABASE_URL is set), the origin with console email, the
                            Worker under wrangler dev; Ctrl-C stops everything
                            (EDGE_PORT, ORIGIN_PORT, METRICS_PORT, THROTTLE_RATES,
                            CORS_ALLOWED_ORIGINS)
  bench [--smoke]           the benchmark, loopback only, ~8 minutes after the builds; writes
                            bench/results/ (--smoke: a second or two per workload, target/bench/)
  fuzz api [--examples N]   Schemathesis against the running stack's OpenAPI document
                            (default 120 examples per operation, > 1,500 cases)
  fuzz shared [--seconds N] cargo-fuzz on the shared parsers (default 60 s per target)
  upgrade                   the previous release (RELEASES) built from git history, upgraded
                            to this checkout and rolled back under load through the Worker;
                            `test` runs it when migrations/ or the request signature changed
                            since that release (or UPGRADE_TEST=1)
  openapi [--check]         regenerate edge/assets/api/schema/index.json from the Rust types
                            (--check: fail if it is not current)

Every task installs what it lacks from the package registries (rustup, npm, crates.io, PyPI).
DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres for test, bench and fuzz.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::repo_root();
    if let Err(err) = std::env::set_current_dir(&root) {
        eprintln!("error: cannot enter {}: {err}", root.display());
        return ExitCode::FAILURE;
    }
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "test" => tasks::test::run(&root, rest),
        "dev" => tasks::dev::run(&root, rest),
        "bench" => tasks::bench::run(&root, rest),
        "fuzz" => tasks::fuzz::run(&root, rest),
        "openapi" => tasks::openapi::run(&root, rest),
        "upgrade" => tasks::upgrade::run(&root, rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            return if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        other => Err(xtask::cmd::Error(format!(
            "unknown task `{other}` (cargo xtask help lists them)"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nerror: {err}");
            ExitCode::FAILURE
        }
    }
}
