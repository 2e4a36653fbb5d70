//! `cargo xtask upgrade`: the previous release (`RELEASES`) built from this repository's
//! history, then `system-tests/tests/upgrade.rs` upgrading from it and rolling back to it under
//! load. `cargo xtask test` runs the same when `releases::why_test` says the contract changed.

use std::path::Path;
use std::process::Command;

use xtask::cmd::{fail, output, run as run_cmd, step, Result};
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

/// Runs the upgrade test against `built`, the previous release. `cargo` is the test task's:
/// the test binary comes from the same `--workspace --all-targets` build as every other test
/// (selecting the one target would resolve the dependencies' features differently and compile
/// dozens of them again), then runs on its own.
pub fn test(built: &Built, cargo: &dyn Fn() -> Command) -> Result {
    step(&format!(
        "upgrade from {} and roll back to it, under load through the Worker (system-tests/tests/upgrade.rs)",
        built.release.version
    ));
    let listing = output(cargo().args([
        "test",
        "--workspace",
        "--all-targets",
        "--locked",
        "--no-run",
        "--message-format=json",
    ]))?;
    let Some(binary) = test_executable(&listing, "upgrade") else {
        return fail("cargo built no `upgrade` test target (system-tests/tests/upgrade.rs)");
    };
    let root = xtask::repo_root();
    run_cmd(
        Command::new(binary)
            .current_dir(root.join("system-tests"))
            .args(["--ignored", "--nocapture"])
            .env("DATABASE_URL", database_url())
            .env("PREVIOUS_VERSION", &built.release.version)
            .env("PREVIOUS_ORIGIN", &built.origin)
            .env("PREVIOUS_WORKER_CONFIG", &built.worker_config),
    )
}

/// The executable of the test target `name`, from cargo's `--message-format=json` lines.
fn test_executable(listing: &str, name: &str) -> Option<String> {
    let target = format!("\"kind\":[\"test\"],\"crate_types\":[\"bin\"],\"name\":\"{name}\"");
    let line = listing.lines().find(|l| l.contains(&target))?;
    let (_, rest) = line.split_once("\"executable\":\"")?;
    rest.split('"').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_test_executable_is_read_from_cargos_messages() {
        let listing = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"crate_types":["lib"],"name":"upgrade"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"crate_types":["bin"],"name":"upgrade","src_path":"/r/system-tests/tests/upgrade.rs"},"executable":"/r/target/debug/deps/upgrade-0f1e"}"#,
        );
        assert_eq!(
            super::test_executable(listing, "upgrade").as_deref(),
            Some("/r/target/debug/deps/upgrade-0f1e")
        );
        assert_eq!(super::test_executable(listing, "rotation"), None);
    }
}
