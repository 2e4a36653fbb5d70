//! `cargo xtask upgrade`: the previous release (`RELEASES`) built from this repository's
//! history, then `system-tests/tests/upgrade.rs` upgrading from it and rolling back to it under
//! load. `cargo xtask test` runs the same when `releases::why_test` says the contract changed.

use std::path::Path;
use std::process::Command;

use xtask::cmd::{run as run_cmd, step, Result};
use xtask::releases::{self, Built};
use xtask::{toolchain, worker};

use super::{database_url, Args};

pub fn run(root: &Path, args: &[String]) -> Result {
    Args::parse(args, &[], &[])?;
    toolchain::ensure(root)?;
    worker::ensure_built(root)?;
    let built = releases::build(root, &releases::previous(root)?)?;
    test(&built, &|| {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root).env("DATABASE_URL", database_url());
        cmd
    })
}

/// Runs the upgrade test against `built`, the previous release, with `cargo` (the test task's,
/// so the test binary is the one its build made).
pub fn test(built: &Built, cargo: &dyn Fn() -> Command) -> Result {
    step(&format!(
        "upgrade from {} and roll back to it, under load through the Worker (system-tests/tests/upgrade.rs)",
        built.release.version
    ));
    run_cmd(
        cargo()
            // --workspace: its dependencies' features resolved as for the whole test build.
            .args(["test", "--workspace", "--locked", "--test", "upgrade"])
            .args(["--", "--ignored", "--nocapture"])
            .env("PREVIOUS_VERSION", &built.release.version)
            .env("PREVIOUS_ORIGIN", &built.origin)
            .env("PREVIOUS_WORKER_CONFIG", &built.worker_config),
    )
}
